/*
 * attention.c: the `attention` stage (spec 7, issue 13): per crop, the
 * Grad-CAM++ map of the fracture classifier and its probability of a
 * fracture, plus the two numbers the store keeps of each map and the
 * reference's files (the map as NIfTI, a JET overlay PNG).
 *
 * The classifier (hv_model_cam, hv/model.h) is opened once per process by
 * the caller (the runner, `healthivert attention`) and lent through
 * hv_pipe_opts.attention_model: loading and planning its graph costs more
 * than a vertebra, and a missing or wrong file must stop a run before its
 * first case. Crops run one after the other: an hv_model_cam is not
 * thread-safe and batches the 30 slices of one crop itself.
 *
 * A crop whose map cannot be made (non-finite logits or gradients, or an
 * error of the classifier other than out-of-memory) keeps no map (NaN
 * summary, cam NULL) and the log says why; the case goes on, and the gan
 * then gets the all-ones HGAM input for that vertebra as it would without
 * the stage. A vertebra without a crop has no entry with its label.
 *
 * Summary numbers (what `attention.store = summary` keeps): the fraction of
 * the map's mass on the 30 LR slices that lies inside the target's
 * de-pedicled body (the crop's label volume == target label: the body is
 * what a fracture deforms, so a classifier that looks at the fracture puts
 * its mass there), and the LR slice of the map's largest voxel.
 *
 * The overlay follows the reference's figure: the CT slice in grey with the
 * map in the JET colour map blended at alpha 0.4 (0.6 grey + 0.4 colour).
 * JET here is the usual piecewise-linear one (blue -> cyan -> yellow ->
 * red; r, g, b = clamp(1.5 - |4x - 3|), clamp(1.5 - |4x - 2|),
 * clamp(1.5 - |4x - 1|)), which is what cv2's and matplotlib's tables
 * sample. The blend itself is hv_io_jet_overlay (hv/io.h), which `export`
 * also draws the store's maps with.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "pipeline_internal.h"

const hv_pipe_attn *hv_pipe_attn_find(const hv_pipe_state *s, int label)
{
    for (size_t i = 0; i < s->n_attn; i++)
        if (s->attn[i].label == label && label > 0) return &s->attn[i];
    return NULL;
}

hv_status hv_pipe_attn_summary(const hv_spine_crop *cr, const hv_volume *cam, double *mass_in_body,
                               int *max_slice)
{
    const hv_volume *lab = cr->labels;
    for (int a = 0; a < 3; a++)
        if (cam->dim[a] != lab->dim[a])
            return hv_error_set(HV_ERR_ARG,
                                "CAM dims %lld x %lld x %lld differ from the crop's %lld x %lld x "
                                "%lld",
                                (long long)cam->dim[0], (long long)cam->dim[1],
                                (long long)cam->dim[2], (long long)lab->dim[0],
                                (long long)lab->dim[1], (long long)lab->dim[2]);
    const int64_t lo = HV_MODEL_CAM_FIRST, hi = HV_MODEL_CAM_FIRST + HV_MODEL_CAM_COUNT;
    double in = 0, all = 0, best = -INFINITY;
    int arg = -1;
    for (int64_t k = 0; k < cam->dim[2]; k++)
        for (int64_t j = 0; j < cam->dim[1]; j++)
            for (int64_t i = 0; i < cam->dim[0]; i++) {
                size_t q = hv_vol_idx(cam, i, j, k);
                double v = hv_vol_get(cam, q);
                if (!isfinite(v)) continue;
                /* the first maximum in storage order (i fastest) */
                if (v > best) {
                    best = v;
                    arg = (int)i;
                }
                if (i < lo || i >= hi) continue;
                all += v;
                if (lrint(hv_vol_get(lab, q)) == cr->label) in += v;
            }
    *mass_in_body = all > 0 ? in / all : NAN;
    *max_slice = best > 0 ? arg : -1;
    return HV_OK;
}

hv_status hv_pipe_attn_overlay(const hv_spine_crop *cr, const hv_volume *cam, int64_t slice,
                               uint8_t *rgb)
{
    int64_t rows, cols;
    hv_spine_slice_dims(cr->ct, HV_SPINE_SAGITTAL, &rows, &cols);
    if (slice < 0 || slice >= cr->ct->dim[0])
        return hv_error_set(HV_ERR_ARG, "overlay slice %lld is outside 0..%lld", (long long)slice,
                            (long long)cr->ct->dim[0] - 1);
    for (int a = 0; a < 3; a++)
        if (cam->dim[a] != cr->ct->dim[a])
            return hv_error_set(HV_ERR_ARG, "CAM dims differ from the crop's");
    size_t n = (size_t)rows * (size_t)cols;
    float *ct = malloc(n * sizeof *ct), *m = malloc(n * sizeof *m);
    uint8_t *grey = malloc(n);
    hv_status st = HV_OK;
    if (!ct || !m || !grey) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory for an overlay");
        goto done;
    }
    if ((st = hv_spine_slice_extract(cr->ct, HV_SPINE_SAGITTAL, slice, ct)) != HV_OK) goto done;
    if ((st = hv_spine_slice_extract(cam, HV_SPINE_SAGITTAL, slice, m)) != HV_OK) goto done;
    /* the CT as the QC pictures keep it, then the one blend (hv/io.h) */
    for (size_t p = 0; p < n; p++) grey[p] = hv_spine_qc_grey(ct[p]);
    hv_io_jet_overlay(grey, m, n, rgb);
done:
    free(ct);
    free(m);
    free(grey);
    return st;
}

hv_status hv_pipe_attn_write(const char *dir, const char *case_id, const hv_spine_crop *cr,
                             const hv_pipe_attn *a, int64_t slice)
{
    hv_status st;
    hv_volume *ref = NULL;
    uint8_t *rgb = NULL;
    char *nii = NULL, *png = NULL;
    if (!a->cam) return hv_error_set(HV_ERR_ARG, "vertebra %d has no attention map", cr->label);
    if (slice < 0) slice = a->max_slice >= 0 ? a->max_slice : cr->ct->dim[0] / 2;
    nii = hv_strfmt("%s/%s_%d_cam.nii.gz", dir, case_id, cr->label);
    png = hv_strfmt("%s/%s_%d_cam.png", dir, case_id, cr->label);
    int64_t rows, cols;
    hv_spine_slice_dims(cr->ct, HV_SPINE_SAGITTAL, &rows, &cols);
    rgb = malloc((size_t)rows * (size_t)cols * 3);
    if (!nii || !png || !rgb) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_mkdir_p(dir)) != HV_OK) goto done;
    if ((st = hv_pipe_crop_reference_layout(a->cam, NULL, &ref)) != HV_OK) goto done;
    hv_nifti_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.datatype = 16; /* NIFTI_TYPE_FLOAT32 */
    wo.descrip = "healthivert Grad-CAM++ (reference layout)";
    if ((st = hv_io_nifti_write(nii, ref, &wo)) != HV_OK) goto done;
    if ((st = hv_pipe_attn_overlay(cr, a->cam, slice, rgb)) != HV_OK) goto done;
    st = hv_io_png_write(png, (int)cols, (int)rows, 3, rgb);
done:
    hv_vol_free(ref);
    free(rgb);
    free(nii);
    free(png);
    return st;
}

static void attn_free(hv_pipe_state *s)
{
    for (size_t i = 0; i < s->n_attn; i++) hv_vol_free(s->attn[i].cam);
    free(s->attn);
    s->attn = NULL;
    s->n_attn = 0;
}

hv_status hv_pipe_attention_run(const hv_pipe_opts *o, hv_pipe_state *s)
{
    hv_model_cam *model = o->attention_model;
    const char *cid = s->cs && s->cs->id ? s->cs->id : "case";
    if (!model) return hv_error_set(HV_ERR_ARG, "the attention stage has no classifier");
    attn_free(s);
    s->attn = calloc(s->n_crops ? s->n_crops : 1, sizeof *s->attn);
    if (!s->attn) return hv_error_set(HV_ERR_NOMEM, "out of memory for %zu maps", s->n_crops);
    s->n_attn = s->n_crops;
    for (size_t n = 0; n < s->n_crops; n++) {
        hv_pipe_attn *a = &s->attn[n];
        a->p_fracture = NAN;
        a->mass_in_body = NAN;
        a->max_slice = -1;
        const hv_spine_crop *cr = s->crops[n];
        if (!cr) continue;
        a->label = cr->label;
        const char *name = hv_label_name(cr->label);
        hv_model_cam_result res;
        memset(&res, 0, sizeof res);
        hv_status st = hv_model_cam_crop(model, cr, &res);
        if (st == HV_ERR_NOMEM) return st;
        if (st != HV_OK) {
            hv_log_warn("case %s %s: no attention map: %s", cid, name ? name : "?",
                        hv_error_detail());
            hv_error_clear();
            continue;
        }
        if (res.nonfinite) {
            a->nonfinite = 1;
            hv_log_warn("case %s %s: the classifier gave non-finite values: no attention map",
                        cid, name ? name : "?");
            hv_model_cam_result_free(&res);
            continue;
        }
        st = hv_pipe_attn_summary(cr, res.cam, &a->mass_in_body, &a->max_slice);
        if (st != HV_OK) {
            hv_model_cam_result_free(&res);
            return st;
        }
        a->p_fracture = res.p_fracture;
        a->cam = res.cam; /* handed over */
        res.cam = NULL;
        hv_model_cam_result_free(&res);
    }
    return HV_OK;
}

void hv_pipe_attention_clear(hv_pipe_state *s) { attn_free(s); }
