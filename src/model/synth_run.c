/*
 * synth_run.c: the pseudo-healthy vertebra of one crop from trained
 * generators (spec 8; contract in hv/model.h "synthesis"; model files and
 * graphs in synth.c).
 *
 * Per plane (sagittal; coronal when a coronal model is open), over the
 * slices of hv_spine_slice_range_get (the central 80 % of the target's
 * extent along that plane's slicing axis), three steps, each batched over
 * every slice where it applies (the reference runs one slice at a time):
 *   0  the upper neighbour, on the crop's slices;
 *   1  the lower neighbour, on step 0's output (or the crop's slice where
 *      step 0 did not run);
 *   2  the target, on step 1's output; its result is the plane's output.
 * A neighbour step runs on a slice when the neighbour has more than
 * neighbour_min_px pixels in the ORIGINAL slice (spec 8 steps 1-2). The
 * neighbours are the adjacent levels by anatomical order (hv_label_order:
 * T13 between T12 and L1, L6 below L5) present in the crop, none when the
 * adjacent level is missing (a gap) and none when it is cervical (the
 * reference's "label > 8" / "label < 24" on VerSe ids, generalised to
 * T13 and L6; docs/model.md "Synthesis" says why).
 *
 * One run (label t on one slice), as training builds a slot (sample.c):
 * the label slice cleaned of t's 8-connected components < clean_min_px
 * (nothing left: no run on that slice), hv_spine_band_find (a t taller
 * than the band is clamped around its centre: too_tall), the CT, the CAM
 * (original, quantised to u8 as the training file stores it) shifted with
 * hv_spine_band_shift, x = (v / 255 - 0.5) / 0.5, the band mask (the
 * pasted strip's columns only on the coronal canvas), the slice ratio of
 * the target's range; one generator forward; then the composite of spec 5.5
 * by p2 (hv__gan_composite, the training code's): generator rows
 * [x_up, x_lo) get (x_stage2 + 1) * 127.5 and label t where fine_seg > 0.5
 * (opts.seg_threshold; 0 elsewhere in those rows), other rows the input CT and labels moved as
 * the composite moves them (other ids kept). Rows outside the generator
 * rows are copied in [0, 255] directly rather than through [-1, 1] and
 * back, which is the same up to float rounding but keeps the u8
 * truncation between steps from turning an unchanged 100 into 99.
 * Between steps the CT is truncated to u8 (the reference's uint8 cast);
 * the target step's CT is kept as float.
 *
 * Batching: a step's runs go through the graph opts.batch at a time; a last
 * partial batch is padded with copies of its last item whose outputs are
 * ignored (items never interact in the generator: no batch norm, and the
 * engine's contextual attention uses each item's own mask), so batch 8 and
 * batch 1 give the same volumes (test_model_synth).
 *
 * Fusion of the planes: a sagittal target slice i writes every voxel
 * (i, *, *), a coronal slice j the voxels (*, j, *) of its pasted strip.
 * Where both wrote a voxel: CT = the mean, probability = the mean, label =
 * t where the mean probability > 0.5 (opts.seg_threshold) (the 2024 reference's fusion, spec 4:
 * "label = 1 where the summed sigmoid > 1"), else the sagittal label when
 * it is not t, else the coronal one when it is not t, else 0; where one
 * plane wrote, that plane's. The probability of a written voxel is
 * fine_seg on the generator rows, and 1 / 0 elsewhere for t / not t (the
 * input's own t pixels outside the generator rows only occur when a
 * too-tall target was clamped).
 *
 * NaN/Inf in any output of a real item stops the synthesis: the result is
 * returned with nonfinite = 1 (not an error; the caller falls back).
 *
 * AOT-GAN's generator (issue 15; opts.generator = AOTGAN, synth.c) runs the
 * same steps on the same inputs prepared as its training (gan.c): channel 0
 * the shifted CT, channel 1 the target's label in [-1, 1] in the shifted
 * frame (-1 outside the band), each image * (1 - mask) + mask, and the
 * mask; no CAM or ratio. Its outputs become x_stage2 (channel 0), fine_seg
 * = (y + 1) / 2 (channel 1) and p1 = p2 = 0, so the composite is the one of
 * height h (hv__gan_composite floors the height at h): AOT-GAN has no
 * height head and inpaints the band at the height it is given.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan_internal.h"
#include "synth_internal.h"

#define RR HV__SYNTH_ROWS
#define CC HV__SYNTH_COLS
#define RC ((size_t)RR * (size_t)CC)

typedef struct plane_work {
    int plane;
    hv_spine_slice_range rg;
    int64_t n;                 /* slices rg.count                              */
    int64_t strip_lo, strip_hi;/* band-mask columns                            */
    float *ct, *lab, *cl;      /* n * RC each: current CT, labels, cleaned     */
    float *prob;               /* n * RC: the target step's probability        */
    int64_t *cnt_up, *cnt_lo;  /* n: neighbour pixels in the original slice    */
    hv_spine_band *band;       /* n                                            */
    uint8_t *done;             /* n: the target step wrote slice s             */
    int64_t *win;              /* n: first row of the target step's window     */
    int64_t *idx;              /* n: runnable slices of a step                 */
} plane_work;

typedef struct scratch {
    float *sh, *w, *rest, *camsl;
    int64_t *zs;               /* batch */
} scratch;

static void plane_work_free(plane_work *pw)
{
    free(pw->ct);
    free(pw->lab);
    free(pw->cl);
    free(pw->prob);
    free(pw->cnt_up);
    free(pw->cnt_lo);
    free(pw->band);
    free(pw->done);
    free(pw->win);
    free(pw->idx);
    memset(pw, 0, sizeof *pw);
}

void hv_model_synth_result_free(hv_model_synth_result *r)
{
    if (!r) return;
    hv_vol_free(r->ct);
    hv_vol_free(r->labels);
    hv_vol_free(r->prob);
    free(r->synthesised);
    free(r->band_row);
    memset(r, 0, sizeof *r);
}

/* The adjacent level above (dir -1) or below (+1) t present in the crop;
 * 0 when missing or cervical. */
static int neighbour_of(const hv_label_stats *st, int t, int dir)
{
    const double ot = hv_label_order(t);
    if (ot < 0) return 0;
    int best = 0;
    double bd = 0;
    for (int l = 1; l <= HV_LABEL_MAX; l++) {
        if (l == t || !st[l].count) continue;
        const double ol = hv_label_order(l);
        if (ol < 0) continue;
        const double d = (ol - ot) * dir;
        if (d <= 0 || d > 1.0) continue;
        if (!best || d < bd) best = l, bd = d;
    }
    if (best && hv_label_order(best) < HV_LABEL_T1) return 0; /* cervical */
    return best;
}

static inline float trunc_u8(float v)
{
    if (!(v > 0.0f)) return 0.0f;
    if (v >= 255.0f) return 255.0f;
    return floorf(v);
}

static hv_status plane_setup(plane_work *pw, int plane, const hv_spine_crop *crop,
                             const hv_volume *ct8, int up, int lo)
{
    hv_status st;
    memset(pw, 0, sizeof *pw);
    pw->plane = plane;
    if ((st = hv_spine_slice_range_get(crop->labels, crop->label, plane, &pw->rg)))
        return hv_error_wrap(st, "model synth: label %d", crop->label);
    const int64_t n = pw->n = pw->rg.count;
    if (plane == HV_SPINE_SAGITTAL) {
        pw->strip_lo = 0;
        pw->strip_hi = CC;
    } else {
        pw->strip_lo = (CC - crop->labels->dim[0]) / 2;
        pw->strip_hi = pw->strip_lo + crop->labels->dim[0];
    }
    const size_t big = (size_t)n * RC;
    pw->ct = malloc(big * sizeof(float));
    pw->lab = malloc(big * sizeof(float));
    pw->cl = malloc(big * sizeof(float));
    pw->prob = malloc(big * sizeof(float));
    pw->cnt_up = calloc((size_t)n, sizeof(int64_t));
    pw->cnt_lo = calloc((size_t)n, sizeof(int64_t));
    pw->band = calloc((size_t)n, sizeof(hv_spine_band));
    pw->done = calloc((size_t)n, 1);
    pw->win = calloc((size_t)n, sizeof(int64_t));
    pw->idx = calloc((size_t)n, sizeof(int64_t));
    if (!pw->ct || !pw->lab || !pw->cl || !pw->prob || !pw->cnt_up || !pw->cnt_lo || !pw->band ||
        !pw->done || !pw->win || !pw->idx)
        return hv_error_set(HV_ERR_NOMEM, "model synth: %lld slices of label %d", (long long)n,
                            crop->label);
    for (int64_t s = 0; s < n; s++) {
        const int64_t z = pw->rg.first + s;
        float *c = pw->ct + (size_t)s * RC, *l = pw->lab + (size_t)s * RC;
        if ((st = hv_spine_slice_extract(ct8, plane, z, c)) ||
            (st = hv_spine_slice_extract(crop->labels, plane, z, l)))
            return st;
        for (size_t q = 0; q < RC; q++) {
            const int v = (int)lrintf(l[q]);
            pw->cnt_up[s] += up && v == up;
            pw->cnt_lo[s] += lo && v == lo;
        }
    }
    return HV_OK;
}

/* Whether any of n floats is NaN or infinite. */
/* One AOT-GAN call on the B items in in_x / in_mask: out_xs2, out_fseg,
 * out_p1 = out_p2 = 0 as the HealthiVert generator's outputs. */
static hv_status aot_run(hv_model_synth *sy, const hv__synth_net *net, int64_t B)
{
    const size_t pl = (size_t)B * RC;
    for (int64_t q = 0; q < B; q++) {
        const float *x = sy->in_x + (size_t)q * RC, *mk = sy->in_mask + (size_t)q * RC;
        float *c0 = sy->aot_io + (size_t)(2 * q) * RC, *c1 = c0 + RC;
        for (size_t k = 0; k < RC; k++) {
            c0[k] = x[k] * (1.0f - mk[k]) + mk[k];
            c1[k] = -1.0f * (1.0f - mk[k]) + mk[k];
        }
    }
    hv_status st;
    if ((st = hv_nn_tensor_set(net->ax, sy->aot_io, 2 * pl)) ||
        (st = hv_nn_tensor_set(net->amask, sy->in_mask, pl)) || (st = hv_nn_graph_forward(net->g)) ||
        (st = hv_nn_tensor_get(net->aout, sy->aot_io, 2 * pl)))
        return st;
    for (int64_t q = 0; q < B; q++) {
        const float *c0 = sy->aot_io + (size_t)(2 * q) * RC, *c1 = c0 + RC;
        float *xs = sy->out_xs2 + (size_t)q * RC, *fs = sy->out_fseg + (size_t)q * RC;
        for (size_t k = 0; k < RC; k++) xs[k] = c0[k], fs[k] = 0.5f * c1[k] + 0.5f;
        sy->out_p1[q] = sy->out_p2[q] = 0.0f;
    }
    return HV_OK;
}

static int any_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 1;
    return 0;
}

/* Stats of the result a run adds to. */
typedef struct run_stats {
    int64_t neighbour_runs, target_runs;
    double height_sum;
    int too_tall, nonfinite;
} run_stats;

/* One step (0 up, 1 down, 2 target) of label `label` over the slices s
 * where want(s) holds (want NULL: all). */
static hv_status run_step(hv_model_synth *sy, plane_work *pw, const hv_spine_crop *crop,
                          const hv_volume *cam, int step, int label, const int64_t *cnt,
                          scratch *sc, run_stats *rs)
{
    const hv_model_synth_opts *o = &sy->o;
    const float thr = (float)o->seg_threshold;
    hv__synth_net *net = &sy->net[pw->plane];
    hv_status st = HV_OK;
    /* runnable slices: the label present after cleaning */
    int64_t nrun = 0;
    int tall_here = 0;
    for (int64_t s = 0; s < pw->n; s++) {
        if (cnt && cnt[s] <= o->neighbour_min_px) continue;
        float *cl = pw->cl + (size_t)s * RC;
        memcpy(cl, pw->lab + (size_t)s * RC, RC * sizeof(float));
        if (hv_spine_slice_clean(cl, RR, CC, label, o->clean_min_px) <= 0) continue;
        if ((st = hv_spine_band_find(cl, RR, CC, label, o->band_rows, pw->strip_lo, pw->strip_hi,
                                     &pw->band[s])))
            return hv_error_wrap(st, "model synth: label %d, slice %lld", label,
                                 (long long)(pw->rg.first + s));
        if (step == 2 && pw->band[s].too_tall) tall_here = 1;
        pw->idx[nrun++] = s;
    }
    if (tall_here) {
        rs->too_tall = 1;
        hv_log_warn("model synth: label %d is taller than the %lld-row band on some %s slices; "
                    "its rows were clamped around its centre (spec 8)", label,
                    (long long)o->band_rows,
                    pw->plane == HV_SPINE_CORONAL ? "coronal" : "sagittal");
    }
    const int64_t B = o->batch;
    for (int64_t off = 0; off < nrun; off += B) {
        const int64_t m = nrun - off < B ? nrun - off : B;
        for (int64_t q = 0; q < B; q++) {
            float *x = sy->in_x + (size_t)q * RC, *mk = sy->in_mask + (size_t)q * RC;
            float *cm = sy->in_cam + (size_t)q * RC, *ra = sy->in_ratio + (size_t)q * RC;
            if (q >= m) { /* padding: a copy of the last real item */
                const size_t src = (size_t)(m - 1) * RC;
                memcpy(x, sy->in_x + src, RC * sizeof(float));
                memcpy(mk, sy->in_mask + src, RC * sizeof(float));
                memcpy(cm, sy->in_cam + src, RC * sizeof(float));
                memcpy(ra, sy->in_ratio + src, RC * sizeof(float));
                continue;
            }
            const int64_t s = pw->idx[off + q], z = pw->rg.first + s;
            const hv_spine_band *b = &pw->band[s];
            sc->zs[q] = z;
            hv_spine_band_shift(b, pw->ct + (size_t)s * RC, RR, CC, sc->sh);
            for (size_t k = 0; k < RC; k++) x[k] = (sc->sh[k] / 255.0f - 0.5f) / 0.5f;
            hv_spine_band_mask(b, RR, CC, mk);
            if (cam) {
                if ((st = hv_spine_slice_extract(cam, pw->plane, z, sc->camsl))) return st;
                for (size_t k = 0; k < RC; k++) sc->camsl[k] = trunc_u8(sc->camsl[k] * 255.0f);
                hv_spine_band_shift(b, sc->camsl, RR, CC, sc->sh);
                for (size_t k = 0; k < RC; k++) cm[k] = sc->sh[k] / 255.0f;
            } else {
                memset(cm, 0, RC * sizeof(float));
            }
            const float r = (float)hv_spine_slice_ratio(&pw->rg, z);
            for (size_t k = 0; k < RC; k++) ra[k] = r;
        }
        if (sy->trace) sy->trace(sy->trace_ctx, step, pw->plane, label, sc->zs, m);
        const size_t pl = (size_t)B * RC, pm = (size_t)m * RC;
        const hv_model_generator_io *io = &net->io;
        if (net->kind == HV_MODEL_GEN_AOTGAN) {
            if ((st = aot_run(sy, net, B)))
                return hv_error_wrap(st, "model synth: generator run (label %d)", label);
        } else if ((st = hv_nn_tensor_set(io->x, sy->in_x, pl)) ||
            (st = hv_nn_tensor_set(io->mask, sy->in_mask, pl)) ||
            (st = hv_nn_tensor_set(io->cam, sy->in_cam, pl)) ||
            (st = hv_nn_tensor_set(io->ratio, sy->in_ratio, pl)) ||
            (st = hv_nn_graph_forward(net->g)) ||
            (st = hv_nn_tensor_get(io->x_stage2, sy->out_xs2, pl)) ||
            (st = hv_nn_tensor_get(io->fine_seg, sy->out_fseg, pl)) ||
            (st = hv_nn_tensor_get(io->p2, sy->out_p2, (size_t)B)) ||
            (st = hv_nn_tensor_get(io->p1, sy->out_p1, (size_t)B)))
            return hv_error_wrap(st, "model synth: generator run (label %d)", label);
        int bad = any_nonfinite(sy->out_xs2, pm) || any_nonfinite(sy->out_fseg, pm) ||
                  any_nonfinite(sy->out_p2, (size_t)m) || any_nonfinite(sy->out_p1, (size_t)m);
        if (!bad && net->kind != HV_MODEL_GEN_AOTGAN) {
            if ((st = hv_nn_tensor_get(io->x_stage1, sy->out_chk, pl))) return st;
            bad = any_nonfinite(sy->out_chk, pm);
        }
        if (!bad && net->kind != HV_MODEL_GEN_AOTGAN) {
            if ((st = hv_nn_tensor_get(io->coarse_seg, sy->out_chk, pl))) return st;
            bad = any_nonfinite(sy->out_chk, pm);
        }
        if (bad) {
            rs->nonfinite = 1;
            hv_log_warn("model synth: the generator gave NaN/Inf (label %d, step %d); the result "
                        "is unusable", label, step);
            return HV_OK;
        }
        for (int64_t q = 0; q < m; q++) {
            const int64_t s = pw->idx[off + q];
            const hv_spine_band *b = &pw->band[s];
            float *ct = pw->ct + (size_t)s * RC, *lab = pw->lab + (size_t)s * RC;
            const float *xs2 = sy->out_xs2 + (size_t)q * RC, *fs = sy->out_fseg + (size_t)q * RC;
            const float p2 = sy->out_p2[q];
            /* CT: rest = the input rows moved, in [0, 255] */
            hv__gan_composite(p2, b->x1, b->x2, o->band_rows, RR, CC, ct, sc->w, sc->rest);
            for (size_t k = 0; k < RC; k++) {
                float v = sc->w[k] != 0.0f ? (xs2[k] + 1.0f) * 127.5f : sc->rest[k];
                ct[k] = step < 2 ? trunc_u8(v) : v;
            }
            /* labels: the cleaned input moved; t where fine_seg > the threshold (0.5)
             * on the generator rows */
            hv__gan_composite(p2, b->x1, b->x2, o->band_rows, RR, CC, pw->cl + (size_t)s * RC,
                              sc->w, sc->rest);
            for (size_t k = 0; k < RC; k++)
                lab[k] = sc->w[k] != 0.0f ? (fs[k] > thr ? (float)label : 0.0f) : sc->rest[k];
            if (step == 2) {
                float *pr = pw->prob + (size_t)s * RC;
                for (size_t k = 0; k < RC; k++)
                    pr[k] = sc->w[k] != 0.0f ? fs[k] : ((int)lrintf(lab[k]) == label ? 1.0f : 0.0f);
                pw->done[s] = 1;
                /* the band_rows-row window holding the generator rows
                 * [x_up, x_lo) whatever the height (hv__gan_composite:
                 * x_up = x1 - floor(d / 2), d = hp - h <= band_rows - h) */
                int64_t w0 = b->x1 - (o->band_rows - (b->x2 - b->x1)) / 2;
                if (w0 > RR - o->band_rows) w0 = RR - o->band_rows;
                pw->win[s] = w0 < 0 ? 0 : w0;
                rs->target_runs++;
                rs->height_sum += net->kind == HV_MODEL_GEN_AOTGAN
                                      ? (double)(b->x2 - b->x1) /* its composite: height h */
                                      : (double)p2 * (double)o->band_rows;
            } else {
                rs->neighbour_runs++;
            }
        }
    }
    (void)crop;
    return HV_OK;
}

static inline uint8_t lab_u8(float v)
{
    long l = lrintf(v);
    return (uint8_t)(l < 0 ? 0 : l > 255 ? 255 : l);
}

/* Write the sagittal target slices into the result. */
static void write_sagittal(const plane_work *pw, hv_model_synth_result *r)
{
    const hv_volume *v = r->ct;
    const int64_t J = v->dim[1], K = v->dim[2];
    float *ct = r->ct->data, *pr = r->prob->data;
    uint8_t *lb = r->labels->data;
    for (int64_t s = 0; s < pw->n; s++) {
        if (!pw->done[s]) continue;
        const int64_t i = pw->rg.first + s;
        const float *c = pw->ct + (size_t)s * RC, *l = pw->lab + (size_t)s * RC;
        const float *p = pw->prob + (size_t)s * RC;
        for (int64_t row = 0; row < RR; row++)
            for (int64_t col = 0; col < CC && col < J; col++) {
                const size_t q = hv_vol_idx(v, i, J - 1 - col, K - 1 - row);
                const size_t k = (size_t)(row * CC + col);
                ct[q] = c[k];
                lb[q] = lab_u8(l[k]);
                pr[q] = p[k];
            }
        r->synthesised[i] = 1;
        r->band_row[i] = pw->win[s];
        r->n_sagittal++;
    }
}

/* Write (or fuse with the sagittal result) the coronal target slices. */
static void write_coronal(const plane_work *pw, int t, float thr, hv_model_synth_result *r)
{
    const hv_volume *v = r->ct;
    const int64_t I = v->dim[0], K = v->dim[2];
    float *ct = r->ct->data, *pr = r->prob->data;
    uint8_t *lb = r->labels->data;
    for (int64_t s = 0; s < pw->n; s++) {
        if (!pw->done[s]) continue;
        const int64_t j = pw->rg.first + s;
        const float *c = pw->ct + (size_t)s * RC, *l = pw->lab + (size_t)s * RC;
        const float *p = pw->prob + (size_t)s * RC;
        for (int64_t row = 0; row < RR; row++)
            for (int64_t x = 0; x < I; x++) {
                const int64_t i = I - 1 - x;
                const size_t q = hv_vol_idx(v, i, j, K - 1 - row);
                const size_t k = (size_t)(row * CC + pw->strip_lo + x);
                const uint8_t lc = lab_u8(l[k]);
                if (!r->synthesised[i]) {
                    ct[q] = c[k];
                    lb[q] = lc;
                    pr[q] = p[k];
                    continue;
                }
                const float pm = 0.5f * (pr[q] + p[k]);
                ct[q] = 0.5f * (ct[q] + c[k]);
                const uint8_t ls = lb[q];
                lb[q] = pm > thr ? (uint8_t)t : ls != t ? ls : lc != t ? lc : 0;
                pr[q] = pm;
            }
        r->n_coronal++;
    }
}

hv_status hv_model_synth_vertebra(hv_model_synth *s, const hv_spine_crop *crop,
                                  const hv_volume *cam, hv_model_synth_result *out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "model synth: NULL result");
    memset(out, 0, sizeof *out);
    if (!s || !crop || !crop->ct || !crop->labels)
        return hv_error_set(HV_ERR_ARG, "model synth: NULL model or crop");
    const int t = crop->label;
    if (memcmp(crop->ct->dim, crop->labels->dim, sizeof crop->ct->dim) ||
        (cam && memcmp(cam->dim, crop->labels->dim, sizeof cam->dim)))
        return hv_error_set(HV_ERR_ARG, "model synth: label %d: the crop's %s dims differ from its "
                            "labels'", t, cam && memcmp(cam->dim, crop->labels->dim, sizeof cam->dim)
                                          ? "CAM" : "CT");
    if (crop->labels->dtype != HV_DTYPE_U8 || crop->ct->dtype != HV_DTYPE_F32 ||
        (cam && cam->dtype != HV_DTYPE_F32))
        return hv_error_set(HV_ERR_ARG, "model synth: label %d: the crop must be F32 CT, U8 labels "
                            "(and an F32 CAM)", t);
    for (int p = 0; p < 2; p++) {
        if (!s->net[p].ps) continue;
        int64_t rows, cols;
        hv_spine_slice_dims(crop->labels, (hv_spine_plane)p, &rows, &cols);
        if (rows != RR || cols != CC)
            return hv_error_set(HV_ERR_ARG, "model synth: label %d: %s slices of %lld x %lld, the "
                                "generator takes %d x %d", t, p ? "coronal" : "sagittal",
                                (long long)rows, (long long)cols, RR, CC);
    }
    hv_status st;
    hv_volume *ct8 = NULL;
    plane_work pw[2];
    memset(pw, 0, sizeof pw);
    scratch sc = {0};
    run_stats rs = {0};
    hv_label_stats ls[HV_LABEL_MAX + 1];
    if ((st = hv_label_stats_collect(crop->labels, ls, NULL))) goto done;
    const int up = s->o.neighbours ? neighbour_of(ls, t, -1) : 0;
    const int lo = s->o.neighbours ? neighbour_of(ls, t, +1) : 0;
    if ((st = hv_model_trainset_ct_u8(crop->ct, &ct8)) ||
        (st = hv_vol_clone(crop->ct, &out->ct)) ||
        (st = hv_vol_clone(crop->labels, &out->labels)) ||
        (st = hv_vol_create(&out->prob, crop->ct->dim, HV_DTYPE_F32, crop->ct->affine)))
        goto done;
    out->synthesised = calloc((size_t)crop->ct->dim[0], 1);
    out->band_row = malloc((size_t)crop->ct->dim[0] * sizeof *out->band_row);
    if (out->band_row)
        for (int64_t i = 0; i < crop->ct->dim[0]; i++) out->band_row[i] = -1;
    sc.sh = malloc(RC * sizeof(float));
    sc.w = malloc(RC * sizeof(float));
    sc.rest = malloc(RC * sizeof(float));
    sc.camsl = malloc(RC * sizeof(float));
    sc.zs = calloc((size_t)s->o.batch, sizeof(int64_t));
    if (!out->synthesised || !out->band_row || !sc.sh || !sc.w || !sc.rest || !sc.camsl || !sc.zs) {
        st = hv_error_set(HV_ERR_NOMEM, "model synth: out of memory");
        goto done;
    }
    for (int p = 0; p < 2 && !rs.nonfinite; p++) {
        if (!s->net[p].ps) continue;
        if ((st = plane_setup(&pw[p], p, crop, ct8, up, lo))) goto done;
        if (up && (st = run_step(s, &pw[p], crop, cam, 0, up, pw[p].cnt_up, &sc, &rs))) goto done;
        if (!rs.nonfinite && lo &&
            (st = run_step(s, &pw[p], crop, cam, 1, lo, pw[p].cnt_lo, &sc, &rs)))
            goto done;
        if (!rs.nonfinite && (st = run_step(s, &pw[p], crop, cam, 2, t, NULL, &sc, &rs))) goto done;
        if (rs.nonfinite) break;
        if (p == HV_SPINE_SAGITTAL) write_sagittal(&pw[p], out);
        else write_coronal(&pw[p], t, (float)s->o.seg_threshold, out);
        /* the slices are written: free this plane's work before the next */
        plane_work_free(&pw[p]);
    }
    out->n_neighbour_runs = rs.neighbour_runs;
    out->too_tall = rs.too_tall;
    out->nonfinite = rs.nonfinite;
    out->height_rows = rs.target_runs ? rs.height_sum / (double)rs.target_runs : 0.0;
    if (!rs.nonfinite && rs.target_runs == 0)
        st = hv_error_set(HV_ERR_EMPTY, "model synth: label %d has no slice with %lld or more "
                          "connected pixels in the central 80 %% of its extent", t,
                          (long long)s->o.clean_min_px);
done:
    for (int p = 0; p < 2; p++) plane_work_free(&pw[p]);
    free(sc.sh);
    free(sc.w);
    free(sc.rest);
    free(sc.camsl);
    free(sc.zs);
    hv_vol_free(ct8);
    if (st != HV_OK) hv_model_synth_result_free(out);
    return st;
}
