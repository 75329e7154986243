/*
 * synth_gan.c: the learned synthesis methods of the `synthesize` stage:
 * `gan` (the two-stage generator of spec 8, through hv_model_synth) and
 * `mask` (a pseudo-healthy label map made elsewhere, on the case's grid).
 * Both measure RHLV against a synthesized vertebra with our own height
 * code, so the numbers compare with the baseline's.
 *
 * gan, per measured vertebra with a crop:
 *  1. hv_model_synth_vertebra on the crop with the attention stage's map of
 *     that crop when the stage ran and made one (the net's HGAM input is
 *     1 - CAM, spec 5.6); NULL otherwise (an all-ones HGAM input).
 *  2. robust RHLV (default): the synthesized label crop is pasted into a copy
 *     of the straightened, de-pedicled label volume at the crop's offset,
 *     carried back to the scanner grid through the exact map
 *     (hv_spine_unstraighten_labels) and measured with the rays of the
 *     original measurement (hv_measure_heights_frame), so that h_syn and h_ori
 *     differ by the shape only.
 *     What is pasted: exactly the crop voxels the synthesis changed (the
 *     target's new shape, the background it gave up, and the neighbours'
 *     voxels the composite shifted). Every other voxel keeps the straightened
 *     volume's value, which is the crop's own there, so nothing the GAN did
 *     not touch moves; crop padding beyond the straightened volume is not
 *     pasted (it is no voxel of the case). Only the target label is read by
 *     the height code; the shifted neighbours are pasted so that the volume
 *     stays one consistent label map (the --synth-mask NIfTI shows it).
 *     Slices not synthesized (outside the central 80 % of the target's LR
 *     extent): the target keeps its original shape there, so a ray whose
 *     base point falls on such a slice would measure the fracture, not the
 *     pseudo-healthy vertebra. Those rays are not cast (NaN in the height map
 *     there, left out of the pools); the region heights' parasagittal rays
 *     span +-12 % of the width, well inside the central 80 %, so they are
 *     all kept on any ordinary vertebra.
 *     The unstraightening covers a cube of 60 mm around the body centroid
 *     (clipped to the scan), not the whole scan: no ray of the height code
 *     leaves it.
 *  3. reference RHLV (rhlv_reference): the reference's column counting
 *     (spec 9) on the original label crop against the synthesized one, both
 *     in the reference's crop layout (rows, AP anterior first, LR slices).
 *     The height map still comes from step 2, for the pictures.
 *  4. a vertebra the GAN fails on (an error, non-finite output, a
 *     synthesized target that cannot be measured where the original could,
 *     no crop) keeps the fallback: the baseline's values, computed for every
 *     vertebra before the GAN runs (the reference-mode baseline in reference
 *     mode), or NaN with no_synth when synthesis.fallback = none. Either way
 *     it is flagged HV_MEAS_SYNTH_FALLBACK and the log says why: never a
 *     silent number.
 * Vertebrae run one after the other: an hv_model_synth is not thread-safe and
 * batches the slices of one vertebra itself.
 *
 * Optional outputs: the reference's CT_fake/ and label_fake/<case>_<label>
 * .nii.gz (float64, the reference's array layout 256 rows x 256 AP x 64 LR
 * with an affine that keeps every voxel's world position, zeros outside the
 * synthesized slices, as spec 8 writes them) beside label/<case>_<label>
 * .nii.gz, the original label crop in that layout (the reference's own
 * straightening writes those; with them the folder is a crop pair that
 * `measure --synth-mask --synth-orig` reads), and the synthesized crops as
 * U8 in the state for the store.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "pipeline_internal.h"

/* Rays of the synthesized vertebra: cast only on synthesized LR slices. */
typedef struct keep_ctx {
    const hv_spine_map *map;
    const hv_spine_crop *cr;
    const uint8_t *synthesised; /* per crop LR index                      */
    double hint_row;
} keep_ctx;

static int keep_synthesised(void *vctx, const double p[3])
{
    const keep_ctx *k = vctx;
    double ijk[3];
    hv_spine_map_from_world(k->map, p, k->hint_row, ijk);
    if (!isfinite(ijk[0])) return 0;
    int64_t i = (int64_t)floor(ijk[0] + 0.5) - k->cr->offset[0];
    return i >= 0 && i < k->cr->labels->dim[0] && k->synthesised[i];
}

/* A copy of the straightened labels with the crop voxels the synthesis
 * changed pasted in (the header comment says why only those). */
static hv_status paste_changed(const hv_volume *straight, const hv_spine_crop *cr,
                               const hv_volume *syn, hv_volume **out)
{
    hv_volume *o = NULL;
    hv_status st = hv_vol_clone(straight, &o);
    if (st != HV_OK) return st;
    const hv_volume *in = cr->labels;
    for (int64_t k = 0; k < in->dim[2]; k++) {
        int64_t sk = k + cr->offset[2];
        if (sk < 0 || sk >= o->dim[2]) continue;
        for (int64_t j = 0; j < in->dim[1]; j++) {
            int64_t sj = j + cr->offset[1];
            if (sj < 0 || sj >= o->dim[1]) continue;
            for (int64_t i = 0; i < in->dim[0]; i++) {
                int64_t si = i + cr->offset[0];
                if (si < 0 || si >= o->dim[0]) continue;
                size_t q = hv_vol_idx(in, i, j, k);
                double a = hv_vol_get(in, q), b = hv_vol_get(syn, q);
                if (a != b) hv_vol_set(o, hv_vol_idx(o, si, sj, sk), b);
            }
        }
    }
    *out = o;
    return HV_OK;
}

/* Scanner-grid bounding boxes of every label 1..HV_LABEL_MAX of mask. */
typedef struct label_box {
    int64_t lo[3], hi[3];
    int any;
} label_box;

static void label_boxes(const hv_volume *mask, label_box *box)
{
    for (int l = 0; l <= HV_LABEL_MAX; l++) box[l].any = 0;
    for (int64_t k = 0; k < mask->dim[2]; k++)
        for (int64_t j = 0; j < mask->dim[1]; j++)
            for (int64_t i = 0; i < mask->dim[0]; i++) {
                double v = hv_vol_get(mask, hv_vol_idx(mask, i, j, k));
                int l = (int)v;
                if (l < 1 || l > HV_LABEL_MAX || (double)l != v) continue;
                label_box *b = &box[l];
                int64_t p[3] = {i, j, k};
                for (int a = 0; a < 3; a++) {
                    if (!b->any || p[a] < b->lo[a]) b->lo[a] = p[a];
                    if (!b->any || p[a] > b->hi[a]) b->hi[a] = p[a];
                }
                b->any = 1;
            }
}

/* An empty U8 volume on the part of mask's grid that lies within r_mm of
 * world point c along every world axis (a cube, clipped to the volume).
 * 60 mm around the body centroid holds every ray of the height code: base
 * points within about 25 mm of the centroid, 40 mm either way along the
 * axis. */
static hv_status cube_grid(const hv_volume *mask, const double c[3], double r_mm, hv_volume **out)
{
    double inv[4][4], A[4][4], lo[3] = {INFINITY, INFINITY, INFINITY};
    double hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    hv_status st = hv_affine_invert(mask->affine, inv);
    if (st != HV_OK) return st;
    for (int q = 0; q < 8; q++) {
        double w[3] = {c[0] + ((q & 1) ? r_mm : -r_mm), c[1] + ((q & 2) ? r_mm : -r_mm),
                       c[2] + ((q & 4) ? r_mm : -r_mm)},
               v[3];
        hv_affine_apply((const double(*)[4])inv, w, v);
        for (int a = 0; a < 3; a++) {
            lo[a] = fmin(lo[a], v[a]);
            hi[a] = fmax(hi[a], v[a]);
        }
    }
    int64_t l[3], dim[3];
    for (int a = 0; a < 3; a++) {
        if (!(hi[a] >= 0 && lo[a] <= (double)(mask->dim[a] - 1)))
            return hv_error_set(HV_ERR_EMPTY, "the vertebra lies outside the scan");
        l[a] = lo[a] < 0 ? 0 : (int64_t)floor(lo[a]);
        int64_t h = hi[a] > (double)(mask->dim[a] - 1) ? mask->dim[a] - 1 : (int64_t)ceil(hi[a]);
        dim[a] = h - l[a] + 1;
    }
    memcpy(A, mask->affine, sizeof A);
    for (int r = 0; r < 3; r++)
        A[r][3] = mask->affine[r][3] + mask->affine[r][0] * (double)l[0] +
                  mask->affine[r][1] * (double)l[1] + mask->affine[r][2] * (double)l[2];
    return hv_vol_create(out, dim, HV_DTYPE_U8, (const double(*)[4])A);
}

/* A crop volume (i LR, j AP anterior increasing, k rows caudal first) as the
 * reference's arrays: (r, c, s) = (rows from cranial, AP from anterior, LR),
 * element r + R * (c + C * s). */
static void crop_to_reference(const hv_volume *v, int label, uint8_t *out)
{
    const int64_t S = v->dim[0], C = v->dim[1], R = v->dim[2];
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++)
                out[r + R * (c + C * s)] =
                    hv_vol_get(v, hv_vol_idx(v, s, C - 1 - c, R - 1 - r)) == (double)label;
}

hv_status hv_pipe_crop_reference_layout(const hv_volume *crop, const uint8_t *keep_slices,
                                        hv_volume **out)
{
    const int64_t S = crop->dim[0], C = crop->dim[1], R = crop->dim[2];
    const int64_t dim[3] = {R, C, S};
    double A[4][4];
    const double(*B)[4] = (const double(*)[4])crop->affine;
    memset(A, 0, sizeof A);
    for (int r = 0; r < 3; r++) {
        A[r][0] = -B[r][2];
        A[r][1] = -B[r][1];
        A[r][2] = B[r][0];
        A[r][3] = B[r][3] + B[r][1] * (double)(C - 1) + B[r][2] * (double)(R - 1);
    }
    A[3][3] = 1;
    hv_volume *o = NULL;
    hv_status st = hv_vol_create(&o, dim, HV_DTYPE_F32, (const double(*)[4])A);
    if (st != HV_OK) return st;
    float *d = o->data;
    for (int64_t s = 0; s < S; s++) {
        if (keep_slices && !keep_slices[s]) continue;
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++)
                d[r + R * (c + C * s)] =
                    (float)hv_vol_get(crop, hv_vol_idx(crop, s, C - 1 - c, R - 1 - r));
    }
    *out = o;
    return HV_OK;
}

/* One crop volume in the reference's layout as <dir>/<sub>/<case>_<label>.nii.gz
 * (float64 on disk, as the reference writes its crops). */
static hv_status write_ref_crop(const char *dir, const char *sub, const char *case_id, int label,
                                const hv_volume *crop, const uint8_t *keep, const char *descrip)
{
    hv_status st;
    hv_volume *v = NULL;
    char *d = hv_strfmt("%s/%s", dir, sub);
    char *p = hv_strfmt("%s/%s/%s_%d.nii.gz", dir, sub, case_id, label);
    if (!d || !p) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
    else if ((st = hv_mkdir_p(d)) == HV_OK &&
             (st = hv_pipe_crop_reference_layout(crop, keep, &v)) == HV_OK) {
        hv_nifti_write_opts wo;
        memset(&wo, 0, sizeof wo);
        wo.datatype = 64; /* NIFTI_TYPE_FLOAT64 */
        wo.descrip = descrip;
        st = hv_io_nifti_write(p, v, &wo);
    }
    hv_vol_free(v);
    free(d);
    free(p);
    return st;
}

/* CT_fake/ and label_fake/<case>_<label>.nii.gz (zeros off the synthesized
 * slices, spec 8), and label/<case>_<label>.nii.gz, the original label crop
 * in the same layout: the pair `measure --synth-mask --synth-orig` reads. */
static hv_status write_fake(const char *dir, const char *case_id, const hv_spine_crop *cr,
                            const hv_model_synth_result *res)
{
    hv_status st = write_ref_crop(dir, "CT_fake", case_id, cr->label, res->ct, res->synthesised,
                                  "healthivert gan CT_fake (reference layout)");
    if (st == HV_OK)
        st = write_ref_crop(dir, "label_fake", case_id, cr->label, res->labels, res->synthesised,
                            "healthivert gan label_fake (reference layout)");
    if (st == HV_OK)
        st = write_ref_crop(dir, "label", case_id, cr->label, cr->labels, NULL,
                            "healthivert label crop (reference layout)");
    return st;
}

/* The fallback for vertebra v (its fallback values are already in v). */
static void fall_back(const hv_pipe_opts *o, const hv_pipe_state *s, hv_vert_measure *v,
                      const char *why)
{
    const char *name = hv_label_name(v->label);
    v->flags |= HV_MEAS_SYNTH_FALLBACK;
    if (!o->synth_fallback) {
        for (int r = 0; r < HV_REG_COUNT; r++) v->h_syn[r] = v->rhlv[r] = NAN;
        free(v->syn_map.h);
        memset(&v->syn_map, 0, sizeof v->syn_map);
        v->flags |= HV_MEAS_NO_SYNTH;
    }
    hv_log_warn("case %s %s: gan synthesis not used (%s); %s", s->cs && s->cs->id ? s->cs->id : "?",
                name ? name : "?", why,
                o->synth_fallback ? "the baseline's values are kept (flag synth_fallback)"
                                  : "no pseudo-healthy values (flags synth_fallback, no_synth)");
}

hv_status hv_pipe_gan_measure(const hv_pipe_opts *o, const hv_pipe_state *s,
                              const hv_spine_crop *cr, const hv_volume *syn_labels,
                              const uint8_t *synthesised, hv_vert_measure *v, char *why,
                              size_t cap)
{
    hv_status st = HV_OK;
    hv_volume *pasted = NULL, *like = NULL, *back = NULL;
    uint8_t *ori = NULL, *syn = NULL;
    hv_vert_measure t = *v;
    why[0] = 0;
    memset(&t.syn_map, 0, sizeof t.syn_map);
    st = paste_changed(s->spine->labels, cr, syn_labels, &pasted);
    if (st == HV_OK) st = cube_grid(s->mask, v->centroid, 60.0, &like);
    if (st == HV_OK) st = hv_spine_unstraighten_labels(s->spine->map, pasted, like, &back);
    if (st != HV_OK) goto fail;
    keep_ctx kc = {s->spine->map, cr, synthesised,
                   (double)cr->offset[2] + 0.5 * (double)cr->labels->dim[2]};
    st = hv_measure_heights_frame(back, &o->measure, keep_synthesised, &kc, &t);
    if (st != HV_OK) goto fail;
    for (int r = HV_REG_ANT; r <= HV_REG_POST; r++)
        if (isfinite(v->h_ori[r]) && !isfinite(t.h_syn[r])) {
            static const char *const reg[] = {"all", "anterior", "middle", "posterior"};
            snprintf(why, cap, "the synthesized vertebra has no %s height", reg[r]);
            goto done;
        }
    if (o->rhlv_reference) {
        const int64_t *cd = cr->labels->dim;
        size_t nv = (size_t)(cd[0] * cd[1] * cd[2]);
        ori = malloc(nv);
        syn = malloc(nv);
        if (!ori || !syn) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory for the reference RHLV");
            goto done;
        }
        crop_to_reference(cr->labels, v->label, ori);
        crop_to_reference(syn_labels, v->label, syn);
        const int64_t rdim[3] = {cd[2], cd[1], cd[0]};
        hv_rhlv_ref rr;
        st = hv_measure_rhlv_reference(ori, syn, rdim, 0.7, &rr);
        if (st != HV_OK) goto fail;
        for (int g = 0; g < HV_REG_COUNT; g++) {
            t.h_ori[g] = rr.h_ori[g];
            t.h_syn[g] = rr.h_syn[g];
            t.rhlv[g] = rr.rhlv[g];
        }
    }
    for (int g = 0; g < HV_REG_COUNT; g++) {
        v->h_ori[g] = t.h_ori[g];
        v->h_syn[g] = t.h_syn[g];
        v->rhlv[g] = t.rhlv[g];
    }
    free(v->syn_map.h);
    v->syn_map = t.syn_map;
    memset(&t.syn_map, 0, sizeof t.syn_map);
    v->flags &= ~(HV_MEAS_NO_SYNTH | HV_MEAS_ONE_SIDED | HV_MEAS_NO_REFERENCE);
    goto done;
fail:
    if (st == HV_ERR_NOMEM) goto done;
    snprintf(why, cap, "%s", hv_error_detail());
    hv_error_clear();
    st = HV_OK;
done:
    free(t.syn_map.h);
    free(ori);
    free(syn);
    hv_vol_free(pasted);
    hv_vol_free(like);
    hv_vol_free(back);
    return st;
}

hv_status hv_pipe_synth_gan(const hv_pipe_opts *o, hv_pipe_state *s)
{
    hv_model_synth *model = o->synth_model;
    hv_spine_measure *m = s->m;
    const char *cid = s->cs && s->cs->id ? s->cs->id : "case";
    hv_status st;
    if (!model) return hv_error_set(HV_ERR_ARG, "synthesis 'gan' has no model");
    /* the fallback values of every vertebra first */
    hv_measure_opts mo = o->measure;
    mo.centroids = s->ctd;
    if ((st = hv_measure_baseline(m, &mo)) != HV_OK) return st;
    if (o->rhlv_reference && (st = hv_measure_reference_case(s->mask, s->ct, m, 0.7)) != HV_OK)
        return st;
    if (o->synth_crops > 0) {
        s->syn_labels = calloc(m->n ? m->n : 1, sizeof *s->syn_labels);
        s->syn_ct = calloc(m->n ? m->n : 1, sizeof *s->syn_ct);
        if (!s->syn_labels || !s->syn_ct)
            return hv_error_set(HV_ERR_NOMEM, "out of memory for synthesized crops");
        s->n_syn = m->n;
    }
    for (size_t n = 0; n < m->n; n++) {
        hv_vert_measure *v = &m->v[n];
        const hv_spine_crop *cr = hv_pipe_crop_find(s, v->label);
        char why[512] = "";
        if (!cr) {
            snprintf(why, sizeof why, "no crop: the spine stage found no body");
            fall_back(o, s, v, why);
            continue;
        }
        if (!v->ori_map.h) {
            snprintf(why, sizeof why, "the original vertebra has no measured heights");
            fall_back(o, s, v, why);
            continue;
        }
        hv_model_synth_result res;
        memset(&res, 0, sizeof res);
        /* cam: the attention stage's Grad-CAM++ map of this crop when it
         * ran (HV_PIPE_ATTENTION); NULL feeds an all-ones HGAM input */
        const hv_pipe_attn *at =
            (s->have & HV_PIPE_ATTENTION) ? hv_pipe_attn_find(s, v->label) : NULL;
        st = hv_model_synth_vertebra(model, cr, at ? at->cam : NULL, &res);
        if (st == HV_ERR_NOMEM) return st;
        if (st != HV_OK) {
            snprintf(why, sizeof why, "%s", hv_error_detail());
            hv_error_clear();
        } else if (res.nonfinite) {
            snprintf(why, sizeof why, "the generator gave non-finite values");
        } else {
            /* the height head's restored height (spec 5.5) beside the
             * observed one: tells a short synthesized label coming from
             * the height head from one coming from the segmentation */
            hv_log_info("case %s %s: %s %.1f rows over %d target slices (observed "
                        "middle height %.1f mm)", cid,
                        hv_model_synth_generator(model) == HV_MODEL_GEN_AOTGAN
                            ? "height given to AOT-GAN (its own, no height head)"
                            : "SHRM height",
                        hv_label_name(v->label) ? hv_label_name(v->label) : "?", res.height_rows,
                        (int)(res.n_sagittal + res.n_coronal), v->h_ori[HV_REG_MID]);
            if (res.too_tall)
                hv_log_warn("case %s %s: the target is taller than the band on some slice "
                            "(clamped as spec 8)", cid, hv_label_name(v->label) ? hv_label_name(v->label) : "?");
            st = hv_pipe_gan_measure(o, s, cr, res.labels, res.synthesised, v, why, sizeof why);
            if (st != HV_OK) {
                hv_model_synth_result_free(&res);
                return st;
            }
        }
        if (!why[0] && o->synth_nifti_dir) {
            st = write_fake(o->synth_nifti_dir, cid, cr, &res);
            if (st != HV_OK) {
                hv_model_synth_result_free(&res);
                return hv_error_wrap(st, "synthesis.nifti");
            }
        }
        if (!why[0] && o->synth_crops > 0) {
            st = hv_vol_clone(res.labels, &s->syn_labels[n]);
            if (st == HV_OK && o->synth_crops > 1)
                st = hv_model_trainset_ct_u8(res.ct, &s->syn_ct[n]);
            if (st != HV_OK) {
                hv_model_synth_result_free(&res);
                return st;
            }
        }
        hv_model_synth_result_free(&res);
        if (why[0]) fall_back(o, s, v, why);
    }
    return HV_OK;
}

/* `mask`: every measured vertebra against the same label in o->synth_mask
 * (on the case's grid), with the original's rays. A vertebra missing from
 * the map, or that cannot be measured there, gets NaN and no_synth. */
hv_status hv_pipe_synth_mask(const hv_pipe_opts *o, hv_pipe_state *s)
{
    hv_status st;
    if (!o->synth_mask) return hv_error_set(HV_ERR_ARG, "synthesis 'mask' has no label map");
    if (o->rhlv_reference)
        return hv_error_set(HV_ERR_UNSUPPORTED,
                            "reference RHLV from a scanner-grid pseudo-healthy mask is not "
                            "supported: give the reference's label_fake crop with its original "
                            "label crop instead");
    st = hv_vol_check_same_grid(o->synth_mask, s->mask, "pseudo-healthy mask", "mask");
    if (st != HV_OK)
        return hv_error_wrap(st, "the pseudo-healthy mask is not on the case's grid (a "
                                 "reference label_fake crop goes with its original label crop: "
                                 "measure --synth-mask FAKE --synth-orig ORIG)");
    label_box box[HV_LABEL_MAX + 1];
    label_boxes(o->synth_mask, box);
    for (size_t n = 0; n < s->m->n; n++) {
        hv_vert_measure *v = &s->m->v[n];
        const char *name = hv_label_name(v->label) ? hv_label_name(v->label) : "?";
        for (int r = 0; r < HV_REG_COUNT; r++) v->h_syn[r] = v->rhlv[r] = NAN;
        if (!box[v->label].any) {
            hv_log_warn("%s: not in the pseudo-healthy mask: no RHLV", name);
            v->flags |= HV_MEAS_NO_SYNTH;
            continue;
        }
        st = hv_measure_heights_frame(o->synth_mask, &o->measure, NULL, NULL, v);
        if (st == HV_ERR_NOMEM) return st;
        if (st != HV_OK) {
            hv_log_warn("%s: %s: no RHLV", name, hv_error_detail());
            hv_error_clear();
            v->flags |= HV_MEAS_NO_SYNTH;
        }
    }
    return HV_OK;
}
