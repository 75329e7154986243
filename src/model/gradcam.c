/*
 * src/model/gradcam.c: Grad-CAM++ of the fracture classifier (issue 13,
 * spec 7) and the classifier's model file.
 *
 * Grad-CAM++ (hv_model_gradcampp) is spec 7's arithmetic on one item's
 * target activations A (k maps) and gradients g = dS/dA: alpha = g^2 /
 * (2 g^2 + sum_xy(A) g^3 + 1e-7), w_k = sum_xy alpha ReLU(exp(S) g),
 * cam = ReLU(sum_k w_k A_k), then (cam - min) / max exactly as the reference
 * writes it (not (cam - min) / (max - min): after the ReLU min is usually 0,
 * and where it is not the map's top stays below 1; kept as written). In
 * double, so the g^3 and exp(S) terms do not lose digits.
 *
 * The gradients come from the engine's autodiff: the graph is the
 * classifier's, planned with HV_NN_PLAN_GRAD (BN with running statistics,
 * as the reference's model.eval()), plus S_sum = sum over the batch of the
 * class-1 logit; one backward from S_sum gives every item's dS_n/dA_n at
 * once, because in eval mode the items do not interact (BN uses stored
 * statistics), so d(sum_m S_m)/dA_n = dS_n/dA_n. Parameter gradients are
 * not needed: the graph is frozen (hv_nn_graph_set_frozen), which skips
 * them, and the backward stops at the target layer
 * (hv_nn_graph_backward_to): the stem-to-target part of a full backward is
 * most of its cost and feeds nothing Grad-CAM++ reads. A partial last batch is padded with zero slices, whose outputs are
 * ignored (again: items are independent).
 *
 * The slices: the crop's sagittal slices i = 17..46 (spec 7: the middle 30
 * of 64 LR slices of the straightened, UNMASKED crop) in the layout of
 * hv_spine_slice_extract (row r = k = K-1-r, column c = j = J-1-c), the CT
 * truncated to u8 by hv_model_trainset_ct_u8 (the training set's own
 * conversion, the reference's uint8 cast) and divided by 255. Each 8 x 8
 * map is resized to the slice's rows x cols by bilinear interpolation with
 * half-pixel centres (hv_model_cam_resize: PyTorch's interpolate with
 * align_corners=False and cv2.resize's INTER_LINEAR agree on upsampling;
 * the deleted script's resize is unknown, this is the common choice) and
 * written back at slice i through the inverse of that layout; every other
 * slice stays 0.
 *
 * Model file: an hv_nn checkpoint with /params and /meta kind =
 * "classifier", width, threshold, source and any extra pairs
 * (hv_model_classifier_save_file_meta: the training's step, total_steps and,
 * when it was written at a stop, `stopped`, which the opener repeats as a
 * warning); a classifier training checkpoint (/C/params) opens too. Before anything is
 * read, the width is taken from layer0.conv1.weight's shape and every
 * parameter of a classifier of that width is probed for presence and shape,
 * so a mismatch names the parameter and both shapes (the opener and the
 * shape check are model_file.c's, shared with synth.c's generators).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "model_file.h"
#include "hv/model.h"

#define CAM_ROWS 256
#define CAM_COLS 256
#define CAM_LR 64
#define FIRST_CONV "layer0.conv1.weight"

/* ------------------------------------------------------------ arithmetic */

void hv_model_gradcampp(const float *act, const float *grad, int64_t k, int64_t h, int64_t w,
                        double score, float *cam)
{
    if (!act || !grad || !cam || k < 1 || h < 1 || w < 1) return;
    const int64_t hw = h * w;
    const double es = exp(score);
    double *acc = calloc((size_t)hw, sizeof *acc);
    if (!acc) { /* no memory for the map: an all-zero map, as for max 0 */
        memset(cam, 0, (size_t)hw * sizeof *cam);
        return;
    }
    for (int64_t c = 0; c < k; c++) {
        const float *a = act + c * hw, *g = grad + c * hw;
        double sum_a = 0, wk = 0;
        for (int64_t q = 0; q < hw; q++) sum_a += a[q];
        for (int64_t q = 0; q < hw; q++) {
            const double gq = g[q], g2 = gq * gq, g3 = g2 * gq;
            const double den = 2.0 * g2 + sum_a * g3 + 1e-7;
            const double alpha = den != 0.0 ? g2 / den : 0.0;
            const double r = es * gq;
            wk += alpha * (r > 0 ? r : 0.0);
        }
        for (int64_t q = 0; q < hw; q++) acc[q] += wk * a[q];
    }
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t q = 0; q < hw; q++) {
        if (!(acc[q] > 0)) acc[q] = 0; /* ReLU */
        if (acc[q] < mn) mn = acc[q];
        if (acc[q] > mx) mx = acc[q];
    }
    for (int64_t q = 0; q < hw; q++) cam[q] = mx > 0 ? (float)((acc[q] - mn) / mx) : 0.0f;
    free(acc);
}

/* PyTorch's source index for align_corners=False (clamped at 0). */
static void src_index(int64_t d, int64_t in, int64_t out, int64_t *i0, int64_t *i1, double *l)
{
    double s = ((double)d + 0.5) * ((double)in / (double)out) - 0.5;
    if (s < 0) s = 0;
    int64_t i = (int64_t)s;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l = s - (double)i;
}

void hv_model_cam_resize(const float *in, int64_t h, int64_t w, float *out, int64_t H, int64_t W)
{
    if (!in || !out || h < 1 || w < 1 || H < 1 || W < 1) return;
    for (int64_t y = 0; y < H; y++) {
        int64_t y0, y1;
        double ly;
        src_index(y, h, H, &y0, &y1, &ly);
        for (int64_t x = 0; x < W; x++) {
            int64_t x0, x1;
            double lx;
            src_index(x, w, W, &x0, &x1, &lx);
            double top = (1 - lx) * in[y0 * w + x0] + lx * in[y0 * w + x1];
            double bot = (1 - lx) * in[y1 * w + x0] + lx * in[y1 * w + x1];
            out[y * W + x] = (float)((1 - ly) * top + ly * bot);
        }
    }
}

/* ------------------------------------------------------------ model file */

hv_status hv_model_classifier_save_file_meta(const hv_nn_params *ps, int width, int threshold,
                                             const char *source, const char *const *extra_kv,
                                             size_t n_extra, const char *path)
{
    static const char *const own[4] = {"kind", "width", "threshold", "source"};
    if (!ps || !path || width < 1 || (n_extra && !extra_kv) || n_extra > 16)
        return hv_error_set(HV_ERR_ARG, "model classifier: save: bad arguments");
    for (size_t i = 0; i < n_extra; i++) {
        if (!extra_kv[2 * i] || !extra_kv[2 * i + 1] || !extra_kv[2 * i][0])
            return hv_error_set(HV_ERR_ARG, "model classifier: save: extra /meta pair %zu is "
                                "empty", i);
        for (size_t k = 0; k < 4; k++)
            if (!strcmp(extra_kv[2 * i], own[k]))
                return hv_error_set(HV_ERR_ARG, "model classifier: save: /meta '%s' is the "
                                    "file's own key, not an extra one", own[k]);
    }
    int have = hv_model_classifier_width(ps);
    if (have != width)
        return hv_error_wrap(HV_ERR_ARG, "model classifier: save '%s': parameters are not a "
                             "classifier of width %d", path, width);
    char ws[32], ts[32];
    snprintf(ws, sizeof ws, "%d", width);
    snprintf(ts, sizeof ts, "%d", threshold);
    const char *kv[8 + 2 * 16] = {"kind", "classifier", "width", ws, "threshold", ts, "source",
                                  source ? source : ""};
    for (size_t i = 0; i < 2 * n_extra; i++) kv[8 + i] = extra_kv[i];
    hv_status st = hv_nn_checkpoint_save(path, ps, NULL, kv, 4 + n_extra);
    if (st != HV_OK) return hv_error_wrap(st, "model classifier: saving '%s'", path);
    return HV_OK;
}

hv_status hv_model_classifier_save_file(const hv_nn_params *ps, int width, int threshold,
                                        const char *source, const char *path)
{
    return hv_model_classifier_save_file_meta(ps, width, threshold, source, NULL, 0, path);
}

struct hv_model_cam {
    hv_nn_backend *be;             /* borrowed */
    hv_nn_params *ps;
    hv_nn_graph *g;
    hv_model_classifier_io io;
    hv_nn_tensor *score;           /* sum over the batch of the class-1 logit */
    int width;
    int64_t batch, k, h, w;        /* target: k maps of h x w                 */
    float *x, *logits, *act, *grad, *map, *up;
};

static const hv__model_kind CLASSIFIER = {
    .net = "classifier", .ckpt_group = "C", .meta_kind = "classifier", .first_conv = FIRST_CONV,
    .in_ch = 1, .ksize = 7, .even = 0, .first_needs = "[width, 1, 7, 7]", .width_name = "width"};

/* Open path (model_file.c: the parameters' group, /meta kind, the width),
 * check /meta width against it and every shape; *width and *in_c (1:
 * /C/params) on success. HDF5's error printing is off in the caller. */
static hv_status check_file(const char *path, int *width, int *in_c)
{
    static const char pfx[] = "model classifier: file";
    hv__model_file m;
    hv_nn_params *ref = NULL;
    hv_status st = hv__model_file_open(path, pfx, &CLASSIFIER, 0, &m);
    if (st != HV_OK) return st;
    *width = m.width;
    *in_c = m.in_ckpt;
    char mw[32];
    if (hv_nn_checkpoint_meta(path, "width", mw, sizeof mw) == HV_OK && atoi(mw) != *width) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s': /meta width %s, but %s has width %d", pfx, path,
                          mw, FIRST_CONV, *width);
        goto done;
    }
    hv_rng rng;
    hv_rng_seed(&rng, 0, 0);
    if ((st = hv_nn_params_create(&ref)) || (st = hv_model_classifier_params(ref, *width, &rng)))
        goto done;
    st = hv__model_file_check_shapes(&m, path, pfx, &CLASSIFIER, ref);
done:
    hv_nn_params_free(ref);
    hv__model_file_close(&m);
    return st;
}

void hv_model_cam_free(hv_model_cam *c)
{
    if (!c) return;
    hv_nn_graph_free(c->g);
    hv_nn_params_free(c->ps);
    free(c->x);
    free(c->logits);
    free(c->act);
    free(c->grad);
    free(c->map);
    free(c->up);
    free(c);
}

int hv_model_cam_width(const hv_model_cam *c)
{
    return c ? c->width : 0;
}

hv_status hv_model_cam_open(const char *path, int64_t batch, hv_nn_backend *be, hv_model_cam **out)
{
    if (out) *out = NULL;
    if (!path || !be || !out || batch < 1 || batch > 4096)
        return hv_error_set(HV_ERR_ARG, "model classifier: cam_open: bad arguments (batch %lld)",
                            (long long)batch);
    hv_model_cam *c = calloc(1, sizeof *c);
    if (!c) return hv_error_set(HV_ERR_NOMEM, "model classifier: out of memory");
    c->be = be;
    c->batch = batch;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int in_c = 0;
    hv_status st = check_file(path, &c->width, &in_c);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (st != HV_OK) goto done;
    hv_rng rng;
    hv_rng_seed(&rng, 0, 0); /* overwritten by the file's values */
    if ((st = hv_nn_params_create(&c->ps)) ||
        (st = hv_model_classifier_params(c->ps, c->width, &rng)))
        goto done;
    if (in_c) {
        const char *gn[1] = {"C"};
        hv_nn_params *pss[1] = {c->ps};
        st = hv_nn_checkpoint_load_groups(path, 1, gn, pss, NULL);
    } else {
        st = hv_nn_checkpoint_load(path, c->ps, NULL, 1);
    }
    if (st != HV_OK) {
        hv_error_wrap(st, "model classifier: file '%s'", path);
        goto done;
    }
    /* into the backend's memory (nothing moves on a host-memory backend) */
    if ((st = hv_nn_params_bind(c->ps, be))) goto done;
    if ((st = hv_nn_graph_create(&c->g))) goto done;
    st = hv_model_classifier_build(c->g, c->ps, c->width, batch, CAM_ROWS, CAM_COLS, &c->io);
    if (st == HV_OK) {
        c->score = hv_nn_sum(c->g, hv_nn_slice(c->g, c->io.logits, 1, 1, 1));
        hv_nn_graph_set_frozen(c->g, 1);
        st = hv_nn_graph_plan(c->g, be, HV_NN_PLAN_GRAD);
    }
    if (st != HV_OK) {
        hv_error_wrap(st, "model classifier: planning the Grad-CAM++ graph (width %d, batch %lld)",
                      c->width, (long long)batch);
        goto done;
    }
    int64_t sh[HV_NN_MAX_DIMS];
    hv_nn_tensor_shape(c->io.target, sh);
    c->k = sh[1];
    c->h = sh[2];
    c->w = sh[3];
    const size_t tn = (size_t)(batch * c->k * c->h * c->w);
    c->x = malloc((size_t)batch * CAM_ROWS * CAM_COLS * sizeof *c->x);
    c->logits = malloc((size_t)batch * 2 * sizeof *c->logits);
    c->act = malloc(tn * sizeof *c->act);
    c->grad = malloc(tn * sizeof *c->grad);
    c->map = malloc((size_t)(c->h * c->w) * sizeof *c->map);
    c->up = malloc((size_t)CAM_ROWS * CAM_COLS * sizeof *c->up);
    if (!c->x || !c->logits || !c->act || !c->grad || !c->map || !c->up)
        st = hv_error_set(HV_ERR_NOMEM, "model classifier: out of memory (batch %lld)",
                          (long long)batch);
    /* a model file that a stopped training wrote says so (cls_train_run.c):
     * it opens, with a warning, so that nobody takes it for a finished one */
    char stop[256];
    if (st == HV_OK && !in_c && hv_nn_checkpoint_meta(path, "stopped", stop, sizeof stop) == HV_OK)
        hv_log_warn("model classifier: '%s' was %s", path, stop);
done:
    if (st != HV_OK) hv_model_cam_free(c);
    else *out = c;
    return st;
}

void hv_model_cam_result_free(hv_model_cam_result *r)
{
    if (!r) return;
    hv_vol_free(r->cam);
    r->cam = NULL;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

hv_status hv_model_cam_crop(hv_model_cam *c, const hv_spine_crop *crop, hv_model_cam_result *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!c || !crop || !crop->ct || !out)
        return hv_error_set(HV_ERR_ARG, "model classifier: cam_crop: missing input");
    const hv_volume *ct = crop->ct;
    if (ct->dim[0] != CAM_LR || ct->dim[1] != CAM_COLS || ct->dim[2] != CAM_ROWS)
        return hv_error_set(HV_ERR_ARG, "model classifier: crop of vertebra %d has dims %lld x %lld "
                            "x %lld, the classifier needs %d x %d x %d", crop->label,
                            (long long)ct->dim[0], (long long)ct->dim[1], (long long)ct->dim[2],
                            CAM_LR, CAM_COLS, CAM_ROWS);
    hv_volume *ct8 = NULL, *cam = NULL;
    hv_status st = hv_model_trainset_ct_u8(ct, &ct8);
    if (st != HV_OK) goto done;
    if ((st = hv_vol_create(&cam, ct->dim, HV_DTYPE_F32, ct->affine))) goto done;
    float *cv = cam->data;
    memset(cv, 0, cam->nvox * sizeof *cv);
    const int64_t plane = CAM_ROWS * CAM_COLS, hw = c->h * c->w, kw = c->k * hw;
    const int64_t J = ct->dim[1], K = ct->dim[2];
    int nonfinite = 0;
    double psum = 0;
    for (int64_t s0 = 0; s0 < HV_MODEL_CAM_COUNT; s0 += c->batch) {
        const int64_t nb = s0 + c->batch <= HV_MODEL_CAM_COUNT ? c->batch : HV_MODEL_CAM_COUNT - s0;
        memset(c->x, 0, (size_t)(c->batch * plane) * sizeof *c->x); /* padding items: zeros */
        for (int64_t b = 0; b < nb; b++) {
            float *xb = c->x + b * plane;
            if ((st = hv_spine_slice_extract(ct8, HV_SPINE_SAGITTAL, HV_MODEL_CAM_FIRST + s0 + b,
                                             xb)))
                goto done;
            for (int64_t q = 0; q < plane; q++) xb[q] /= 255.0f;
        }
        if ((st = hv_nn_tensor_set(c->io.x, c->x, (size_t)(c->batch * plane))) ||
            (st = hv_nn_graph_forward(c->g)) || (st = hv_nn_graph_backward_to(c->g, c->score, c->io.target)) ||
            (st = hv_nn_tensor_get(c->io.logits, c->logits, (size_t)c->batch * 2)) ||
            (st = hv_nn_tensor_get(c->io.target, c->act, (size_t)(c->batch * kw))) ||
            (st = hv_nn_tensor_get_grad(c->io.target, c->grad, (size_t)(c->batch * kw)))) {
            hv_error_wrap(st, "model classifier: Grad-CAM++ of vertebra %d", crop->label);
            goto done;
        }
        for (int64_t b = 0; b < nb; b++) {
            const int64_t si = s0 + b, i = HV_MODEL_CAM_FIRST + si;
            const float *l = c->logits + 2 * b;
            const float *a = c->act + b * kw, *g = c->grad + b * kw;
            /* softmax(l)[1] = 1 / (1 + exp(l0 - l1)) */
            const double p = 1.0 / (1.0 + exp((double)l[0] - (double)l[1]));
            out->p_slice[si] = p;
            psum += p;
            if (!all_finite(l, 2) || !all_finite(a, (size_t)kw) || !all_finite(g, (size_t)kw)) {
                nonfinite = 1;
                continue;
            }
            hv_model_gradcampp(a, g, c->k, c->h, c->w, (double)l[1], c->map);
            hv_model_cam_resize(c->map, c->h, c->w, c->up, CAM_ROWS, CAM_COLS);
            /* inverse of hv_spine_slice_extract's sagittal layout:
             * out[r][col] = vol(i, J-1-col, K-1-r) */
            for (int64_t r = 0; r < CAM_ROWS; r++)
                for (int64_t col = 0; col < CAM_COLS; col++)
                    cv[hv_vol_idx(cam, i, J - 1 - col, K - 1 - r)] = c->up[r * CAM_COLS + col];
        }
    }
    if (nonfinite) memset(cv, 0, cam->nvox * sizeof *cv);
    out->nonfinite = nonfinite;
    out->p_fracture = psum / HV_MODEL_CAM_COUNT;
    out->cam = cam;
    cam = NULL;
done:
    hv_vol_free(ct8);
    hv_vol_free(cam);
    return st;
}
