/*
 * stage.c: the per-case stages, with no MPI in sight.
 *
 * hv_stage_run_case takes one manifest case through load -> measure ->
 * pseudo-healthy synthesis -> rule grade -> optional images and returns the
 * vertebra rows with the seconds each stage took. A case that cannot be
 * processed does not abort anything: it comes back failed with the stage and
 * the reason ("load: <file>: not a NIfTI file"), which the runner records.
 *
 * Synthesis goes through hv_synth_method so that the GAN can replace the
 * baseline without the runner changing. A case needs at least two labelled
 * vertebrae: the baseline (and the reference GAN, which conditions on the
 * neighbours) has nothing to estimate a healthy height from otherwise, and a
 * number made up from size priors alone would look like a result.
 *
 * With output.images = qc | full the images stage also runs the spine stage
 * (straightening, hv_spine_case_run) and keeps, per vertebra, the
 * mid-sagittal and mid-coronal slice of its straightened crop as 8-bit
 * pictures with the target's label as a second channel (run_internal.h).
 * That costs about as much as everything else together, so images = none
 * skips it. A spine failure never fails the case: the measurement stands on
 * the mask alone; the pictures stay blank and a warning says why (the case
 * row has no field for notes, and a done case carries no error text).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/spine.h"
#include "run_internal.h"

const char *const hv_stage_names[HV_STAGE_COUNT] = {
    "load", "measure", "synthesis", "grade", "images", "journal"};

static hv_status synth_baseline(hv_spine_measure *m, const hv_measure_opts *o, void *ctx)
{
    (void)ctx;
    return hv_measure_baseline(m, o);
}

hv_status hv_synth_method_find(const char *name, hv_synth_method *out)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "baseline")) {
        out->name = "baseline";
        out->synth = synth_baseline;
        return HV_OK;
    }
    return hv_error_set(HV_ERR_UNSUPPORTED,
                        "synthesis.method '%s' is not available (this build has: baseline)", name);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!src) src = "";
    size_t n = strlen(src);
    if (n >= cap) {
        /* keep the tail: for paths and messages the end is the useful part */
        src += n - (cap - 4);
        snprintf(dst, cap, "...%s", src);
    } else {
        memcpy(dst, src, n + 1);
    }
}

/* Nearest-neighbour resample of a height map onto IMG x IMG: rows run from
 * anterior (top) to posterior, columns left to right along the map's l. */
static void map_to_img(const hv_height_map *a, const hv_height_map *b, int what, float *img)
{
    for (int y = 0; y < HV_RUN_IMG; y++) {
        int ia = (int)((y + 0.5) * a->na / HV_RUN_IMG);
        for (int x = 0; x < HV_RUN_IMG; x++) {
            int il = (int)((x + 0.5) * a->nl / HV_RUN_IMG);
            size_t k = (size_t)ia + (size_t)a->na * (size_t)il;
            double ho = a->h ? a->h[k] : NAN;
            double hs = (b && b->h) ? b->h[k] : NAN;
            double v;
            if (what == HV_IMG_ORI) v = ho;
            else if (what == HV_IMG_SYN) v = hs;
            else v = hv_measure_rhlv(hs, ho);
            img[(size_t)y * HV_RUN_IMG + (size_t)x] = (float)v;
        }
    }
}

/* Nearest resample of a rows x cols slice onto QC x QC bytes: CT clipped and
 * rounded to 0..255, labels to 255 where the slice holds `label`. The crop's
 * default slices are already 256 x 256; this only guards other crop sizes. */
static void slice_to_qc(const float *in, int64_t rows, int64_t cols, int label, uint8_t *out)
{
    for (int y = 0; y < HV_RUN_QC; y++) {
        int64_t sy = (int64_t)((y + 0.5) * (double)rows / HV_RUN_QC);
        for (int x = 0; x < HV_RUN_QC; x++) {
            int64_t sx = (int64_t)((x + 0.5) * (double)cols / HV_RUN_QC);
            float v = in[sy * cols + sx];
            uint8_t b;
            if (label > 0) b = lrintf(v) == label ? 255 : 0;
            else b = hv_spine_qc_grey(v);
            out[(size_t)y * HV_RUN_QC + (size_t)x] = b;
        }
    }
}

/* Both views of one crop into qc (HV_RUN_QC_BYTES), on the slices
 * hv_spine_qc_slices picks (as `straighten --png` does). */
static hv_status crop_to_qc(const hv_spine_crop *cr, uint8_t *qc)
{
    hv_status st = HV_OK;
    float *buf = NULL;
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    int64_t isag, jcor;
    hv_spine_qc_slices(cr, &isag, &jcor);
    for (int view = 0; view < HV_QC_VIEWS; view++) {
        hv_spine_plane pl = view == HV_QC_SAG ? HV_SPINE_SAGITTAL : HV_SPINE_CORONAL;
        int64_t idx = view == HV_QC_SAG ? isag : jcor;
        int64_t rows, cols;
        hv_spine_slice_dims(cr->ct, pl, &rows, &cols);
        if (rows < 1 || cols < 1) {
            st = hv_error_set(HV_ERR_LIMIT, "empty crop slice");
            goto done;
        }
        free(buf);
        buf = malloc((size_t)(rows * cols) * sizeof *buf);
        if (!buf) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory for a QC slice");
            goto done;
        }
        uint8_t *dst = qc + (size_t)view * HV_QC_CHANNELS * plane;
        if ((st = hv_spine_slice_extract(cr->ct, pl, idx, buf)) != HV_OK) goto done;
        slice_to_qc(buf, rows, cols, 0, dst + HV_QC_CT * plane);
        if ((st = hv_spine_slice_extract(cr->labels, pl, idx, buf)) != HV_OK) goto done;
        slice_to_qc(buf, rows, cols, cr->label, dst + HV_QC_LABEL * plane);
    }
done:
    free(buf);
    return st;
}

/* The spine stage for the QC pictures of every measured vertebra into qc
 * (m->n * HV_RUN_QC_BYTES, zeroed by the caller). Problems are logged and
 * leave the vertebra, or the whole case, blank. */
static void qc_images(const hv_case *cs, const hv_volume *ct, const hv_volume *mask,
                      const hv_centroids *ctd, const hv_spine_measure *m, uint8_t *qc)
{
    hv_spine_case *sc = NULL;
    if (!ct) {
        hv_log_warn("case %s: no CT, QC pictures left blank", cs->id);
        return;
    }
    /* test hook (tests/mpi/test_qc.sh): HV_TEST_SPINE_FAIL=<case id> makes the
     * spine stage fail on that case, to check that the case still gets done */
    const char *hook = getenv("HV_TEST_SPINE_FAIL");
    hv_status sst = hook && !strcmp(hook, cs->id)
                        ? hv_error_set(HV_ERR_NUMERIC, "HV_TEST_SPINE_FAIL asked for a failure")
                        : hv_spine_case_run(ct, mask, ctd, NULL, &sc);
    if (sst != HV_OK) {
        hv_log_warn("case %s: spine stage failed, QC pictures left blank: %s", cs->id,
                    hv_error_detail());
        hv_error_clear();
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        int label = m->v[i].label;
        const char *name = hv_label_name(label) ? hv_label_name(label) : "?";
        long k = hv_spine_verts_find(sc->verts, label);
        if (k < 0 || !sc->verts->v[k].has_body) {
            hv_log_warn("case %s %s: the spine stage found no vertebral body, QC picture left blank",
                        cs->id, name);
            continue;
        }
        hv_spine_crop *cr = NULL;
        hv_status st = hv_spine_crop_make(sc, label, &cr);
        if (st == HV_OK) st = crop_to_qc(cr, qc + i * HV_RUN_QC_BYTES);
        hv_spine_crop_free(cr);
        if (st != HV_OK) {
            memset(qc + i * HV_RUN_QC_BYTES, 0, HV_RUN_QC_BYTES);
            hv_log_warn("case %s %s: QC picture left blank: %s", cs->id, name, hv_error_detail());
            hv_error_clear();
        }
    }
    hv_spine_case_free(sc);
}

void hv_stage_run_case(const hv_stage_ctx *ctx, const hv_case *cs, int case_index,
                       hv_case_result *r)
{
    hv_volume *ct = NULL, *mask = NULL;
    hv_centroids *ctd = NULL;
    hv_spine_measure *m = NULL;
    hv_status st = HV_OK;
    const char *stage = "load";
    double t0 = hv_time_now(), t;

    r->state = HV_CASE_FAILED;
    r->n_img = 0;
    r->img = NULL;
    r->qc = NULL;
    r->c.n_vert = 0;
    r->c.error[0] = 0;
    r->c.error_code = 0;
    for (int s = 0; s < HV_STAGE_COUNT; s++) r->seconds[s] = 0;
    hv_error_clear();

    /* ---- load */
    if (cs->status != HV_OK) {
        st = hv_error_set(cs->status, "%s", cs->problem ? cs->problem : "case is incomplete");
        goto done;
    }
    if (!cs->mask_path) {
        st = hv_error_set(HV_ERR_NOT_FOUND, "no mask file");
        goto done;
    }
    st = hv_io_nifti_read(cs->mask_path, HV_DTYPE_I16, NULL, &mask, NULL);
    if (st != HV_OK) goto done;
    if (cs->ct_path) {
        st = hv_io_nifti_read(cs->ct_path, HV_DTYPE_F32, NULL, &ct, NULL);
        if (st != HV_OK) goto done;
        st = hv_vol_check_same_grid(ct, mask, "CT", "mask");
        if (st != HV_OK) goto done;
    }
    hv_measure_opts mo = ctx->mopts;
    mo.centroids = NULL;
    if (ctx->use_centroids && cs->centroid_path) {
        st = hv_io_centroids_read(cs->centroid_path, &ctd);
        if (st != HV_OK) goto done;
        mo.centroids = ctd;
    }
    t = hv_time_now();
    r->seconds[HV_STAGE_LOAD] = t - t0;
    t0 = t;

    /* ---- measure */
    stage = "measure";
    st = hv_measure_spine(mask, ct, &mo, &m);
    if (st != HV_OK) goto done;
    if (m->n == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "the mask has no vertebra label");
        goto done;
    }
    if (m->n == 1) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "only one vertebra (%s) is labelled: a pseudo-healthy estimate needs "
                          "at least one labelled neighbour",
                          hv_label_name(m->v[0].label) ? hv_label_name(m->v[0].label) : "?");
        goto done;
    }
    if (m->n > HV_RUN_MAX_VERT) {
        st = hv_error_set(HV_ERR_LIMIT, "%zu vertebrae (at most %d)", m->n, HV_RUN_MAX_VERT);
        goto done;
    }
    t = hv_time_now();
    r->seconds[HV_STAGE_MEASURE] = t - t0;
    t0 = t;

    /* ---- synthesis */
    stage = "synthesis";
    st = ctx->synth.synth(m, &mo, ctx->synth.ctx);
    if (st != HV_OK) goto done;
    t = hv_time_now();
    r->seconds[HV_STAGE_SYNTH] = t - t0;
    t0 = t;

    /* ---- grade (rule) and rows */
    stage = "grade";
    for (size_t i = 0; i < m->n; i++) {
        const hv_vert_measure *v = &m->v[i];
        hv_run_vrow *row = &r->v[i];
        memset(row, 0, sizeof *row);
        row->case_index = case_index;
        row->label = v->label;
        copy_str(row->level, sizeof row->level, hv_label_name(v->label));
        row->known_grade = -1;
        row->split_set = -1;
        if (ctx->split) {
            long k = hv_io_split_find(ctx->split, cs->id, v->label);
            if (k >= 0) {
                row->known_grade = ctx->split->items[k].grade;
                row->split_set = (int32_t)ctx->split->items[k].set;
            }
        }
        row->grade_rule = hv_measure_genant_vert(v);
        row->grade_pred = -1;
        row->flags = v->flags;
        row->volume_ml = v->volume_ml;
        row->mean_hu = v->mean_hu;
        for (int d = 0; d < 3; d++) row->centroid[d] = v->centroid[d];
        for (int g = 0; g < HV_REG_COUNT; g++) {
            row->h_ori[g] = v->h_ori[g];
            row->h_syn[g] = v->h_syn[g];
            row->rhlv[g] = v->rhlv[g];
        }
    }
    r->c.n_vert = (int32_t)m->n;
    t = hv_time_now();
    r->seconds[HV_STAGE_GRADE] = t - t0;
    t0 = t;

    /* ---- images */
    stage = "images";
    if (ctx->n_img > 0) {
        size_t plane = (size_t)HV_RUN_IMG * HV_RUN_IMG;
        r->img = malloc(m->n * (size_t)ctx->n_img * plane * sizeof(float));
        if (!r->img) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory for images");
            goto done;
        }
        r->n_img = ctx->n_img;
        for (size_t i = 0; i < m->n; i++) {
            const hv_vert_measure *v = &m->v[i];
            for (int p = 0; p < ctx->n_img; p++) {
                float *dst = r->img + (i * (size_t)ctx->n_img + (size_t)p) * plane;
                if (!v->ori_map.h || v->ori_map.na < 1 || v->ori_map.nl < 1) {
                    for (size_t q = 0; q < plane; q++) dst[q] = NAN;
                    continue;
                }
                const hv_height_map *syn = v->syn_map.h && v->syn_map.na == v->ori_map.na &&
                                                   v->syn_map.nl == v->ori_map.nl
                                               ? &v->syn_map
                                               : NULL;
                map_to_img(&v->ori_map, syn, p, dst);
            }
        }
        r->qc = calloc(m->n, HV_RUN_QC_BYTES);
        if (!r->qc) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory for QC pictures");
            goto done;
        }
        qc_images(cs, ct, mask, mo.centroids, m, r->qc);
    }
    r->seconds[HV_STAGE_IMAGES] = hv_time_now() - t0;
    r->state = HV_CASE_DONE;

done:
    if (st != HV_OK) {
        char msg[512];
        const char *det = hv_error_detail();
        size_t ls = strlen(stage);
        /* the module may already have said where ("measure: ...") */
        if (!strncmp(det, stage, ls) && det[ls] == ':') snprintf(msg, sizeof msg, "%s", det);
        else snprintf(msg, sizeof msg, "%s: %s", stage, det);
        copy_str(r->c.error, sizeof r->c.error, msg);
        r->c.error_code = (int32_t)st;
        r->c.n_vert = 0;
        free(r->img);
        r->img = NULL;
        r->n_img = 0;
        free(r->qc);
        r->qc = NULL;
        r->state = HV_CASE_FAILED;
    }
    hv_measure_spine_free(m);
    hv_io_centroids_free(ctd);
    hv_vol_free(ct);
    hv_vol_free(mask);
}
