/*
 * test_model_gradcam.c: Grad-CAM++ (src/model/gradcam.c, issue 13, spec 7):
 * the arithmetic, the resize, the classifier model file and the CAM volume
 * of a crop.
 *
 *  - hv_model_gradcampp on a tiny case computed by hand (below, in the
 *    comments of test_hand), and its edge cases (all-zero activations or
 *    gradients, a map that the ReLU makes all zero: all zeros, no NaN);
 *  - against PyTorch: tests/model/fixtures/cls_w4.bin (made by
 *    scripts/make_cls_fixture.py, autograd + torch ops in float64) holds,
 *    for a width-4 classifier on 2 items of 64 x 64, the target
 *    activations, their gradient, the two 2 x 2 maps and the maps resized to
 *    64 x 64 with F.interpolate(bilinear, align_corners=False). Checked:
 *    our arithmetic on torch's activations/gradients (1e-5), the whole chain
 *    from our own graph (forward + backward on the ref and cpu backends,
 *    then gradcampp; 1e-3) and the resize (1e-5);
 *  - hv_model_cam_resize on a 2 x 2 -> 4 x 4 case computed by hand;
 *  - hv_model_cam_open: a missing file is HV_ERR_NOT_FOUND; a GAN model file
 *    (a generator's /params, /meta plane, no kind), a truncated classifier
 *    file, a classifier file with one parameter of another shape and a
 *    classifier file with /meta kind "gan" are HV_ERR_FORMAT naming the
 *    file (and the kind or parameter); hv_model_classifier_save_file then
 *    hv_model_cam_open round-trips the width;
 *  - hv_model_cam_crop on a phantom crop (width-4 classifier with random
 *    weights, batch 8, so the last batch of the 30 slices is partial):
 *    zeros outside slices 17..46, values in [0, 1], every slice 17..46 is
 *    the map that a separate batch-1 graph + hv_model_gradcampp +
 *    hv_model_cam_resize gives for that slice, read back with
 *    hv_spine_slice_extract (so the volume's layout is the slices' own);
 *    p_fracture is the mean of p_slice; a crop of other dims is HV_ERR_ARG.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"
#include "hv/phantom.h"
#include "hv/spine.h"
#include "hv_test.h"
#include "nn/nn_fixture.h"

static int ok_(hv_status st, const char *what)
{
    return HV_CHECK(st == HV_OK, "%s -> %s: %s", what, hv_status_name(st), hv_error_detail());
}
#define OK(expr) ok_((expr), #expr)

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN wins */
    }
    return m;
}

/* k = 2 maps of 2 x 2, S = 0 (exp(S) = 1; it scales every w_k alike and
 * cancels in the normalisation).
 *   A0 = [1 2; 0 1] (sum 4), g0 = [1 -1; 0.5 0]
 *     q0: g 1:    den = 2*1 + 4*1 + 1e-7 = 6.0000001, alpha = 1/6.0000001,
 *                 ReLU(g) = 1 -> 0.16666666388889
 *     q1: g -1:   ReLU(g) = 0 -> 0 (alpha = 1/-1.9999999, irrelevant)
 *     q2: g 0.5:  den = 2*0.25 + 4*0.125 + 1e-7 = 1.0000001,
 *                 alpha = 0.25/1.0000001, ReLU = 0.5 -> 0.12499998750000
 *     q3: g 0:    den = 1e-7, alpha = 0 -> 0
 *     w0 = 0.29166665138889
 *   A1 = [0 1; 3 0] (sum 4), g1 = 0.5 everywhere: each q as q2 above,
 *     w1 = 4 * 0.12499998750000 = 0.49999995000000
 *   cam = w0 A0 + w1 A1 = [0.29166665 1.08333325; 1.49999985 0.29166665]
 *   (all > 0: the ReLU keeps it); min 0.29166665, max 1.49999985;
 *   (cam - min) / max = [0 0.52777779; 0.80555555 0] (the spec's formula:
 *   the top is 0.806, not 1, because min > 0). */
static void test_hand(void)
{
    const float act[8] = {1, 2, 0, 1, 0, 1, 3, 0};
    const float grad[8] = {1, -1, 0.5f, 0, 0.5f, 0.5f, 0.5f, 0.5f};
    const float want[4] = {0.0f, 0.52777779f, 0.80555555f, 0.0f};
    float cam[4] = {-1, -1, -1, -1};
    hv_model_gradcampp(act, grad, 2, 2, 2, 0.0, cam);
    for (int q = 0; q < 4; q++)
        HV_CHECK_CLOSE(cam[q], want[q], 1e-6, "hand case");
    /* a score S != 0 scales every w_k by exp(S): same normalised map */
    hv_model_gradcampp(act, grad, 2, 2, 2, 1.7, cam);
    for (int q = 0; q < 4; q++)
        HV_CHECK_CLOSE(cam[q], want[q], 1e-6, "hand case, S = 1.7");

    /* edge cases: zero activations, zero gradients (alpha = 0/1e-7), and
     * negative weights everywhere (ReLU -> all 0): all zeros, not NaN */
    const float zero[8] = {0};
    const float neg[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    float c2[4];
    hv_model_gradcampp(zero, grad, 2, 2, 2, 0.0, c2);
    HV_CHECK(c2[0] == 0 && c2[1] == 0 && c2[2] == 0 && c2[3] == 0, "zero activations: %g %g %g %g",
             c2[0], c2[1], c2[2], c2[3]);
    hv_model_gradcampp(act, zero, 2, 2, 2, 0.0, c2);
    HV_CHECK(c2[0] == 0 && c2[1] == 0 && c2[2] == 0 && c2[3] == 0, "zero gradients: %g %g %g %g",
             c2[0], c2[1], c2[2], c2[3]);
    /* activations -1 with positive gradients: w_k > 0, sum_k w_k A_k < 0 */
    const float gpos[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    hv_model_gradcampp(neg, gpos, 2, 2, 2, 0.0, c2);
    HV_CHECK(c2[0] == 0 && c2[1] == 0 && c2[2] == 0 && c2[3] == 0, "ReLU'd map: %g %g %g %g",
             c2[0], c2[1], c2[2], c2[3]);
    /* one positive pixel: min 0, max x -> exactly 1 there */
    const float one[4] = {0, 0, 0, 2};
    const float g1[4] = {1, 1, 1, 1};
    hv_model_gradcampp(one, g1, 1, 2, 2, 0.0, c2);
    HV_CHECK(c2[0] == 0 && c2[1] == 0 && c2[2] == 0 && fabsf(c2[3] - 1) < 1e-7f,
             "single pixel: %g %g %g %g", c2[0], c2[1], c2[2], c2[3]);
}

/* [0 1; 2 3] -> 4 x 4, half-pixel centres: source coordinate
 * (d + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> index 1,
 * no right neighbour). Row 0 = [0 0.25 0.75 1]; row 3 = row 0 + 2;
 * row 1 = 0.75 row0 + 0.25 row3; row 2 = 0.25 row0 + 0.75 row3. */
static void test_resize_hand(void)
{
    const float in[4] = {0, 1, 2, 3};
    const float want[16] = {0,   0.25f, 0.75f, 1,    0.5f, 0.75f, 1.25f, 1.5f,
                            1.5f, 1.75f, 2.25f, 2.5f, 2,    2.25f, 2.75f, 3};
    float out[16];
    hv_model_cam_resize(in, 2, 2, out, 4, 4);
    HV_CHECK(max_abs_diff(out, want, 16) < 1e-6, "resize 2x2 -> 4x4: max diff %g",
             max_abs_diff(out, want, 16));
}

static hv_nn_params *fixture_params(const fx_file *fx)
{
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 3, 0);
    if (!OK(hv_nn_params_create(&ps)) || !OK(hv_model_classifier_params(ps, 4, &rng))) {
        hv_nn_params_free(ps);
        return NULL;
    }
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        char nm[200];
        snprintf(nm, sizeof nm, "w.%s", hv_nn_param_name(p));
        const fx_tensor *f = fx_find(fx, nm);
        if (!HV_CHECK(f && f->n == hv_nn_param_numel(p), "fixture weight %s", nm)) {
            hv_nn_params_free(ps);
            return NULL;
        }
        memcpy(hv_nn_param_data(p), f->data, (size_t)f->n * sizeof(float));
    }
    hv_nn_params_touch(ps);
    return ps;
}

/* PyTorch's maps from (a) torch's activations/gradients through our
 * arithmetic, (b) our graph's, on backend cpu/ref; and the resize. */
static void test_vs_torch(const fx_file *fx, hv_nn_params *ps, int cpu)
{
    const fx_tensor *A = fx_find(fx, "eval.target"), *G = fx_find(fx, "eval.grad"),
                    *L = fx_find(fx, "eval.logits"), *X = fx_find(fx, "x");
    HV_REQUIRE_V(A && G && L && X && A->ndim == 4, "fixture tensors");
    const int64_t k = A->shape[1], h = A->shape[2], w = A->shape[3], kw = k * h * w;
    float map[64], up[64 * 64];
    HV_REQUIRE_V(h * w <= 64, "map size");
    for (int n = 0; n < 2 && !cpu; n++) {
        char nm[32];
        snprintf(nm, sizeof nm, "cam.%d", n);
        const fx_tensor *C = fx_find(fx, nm);
        snprintf(nm, sizeof nm, "cam64.%d", n);
        const fx_tensor *U = fx_find(fx, nm);
        HV_REQUIRE_V(C && U && C->n == h * w && U->n == 64 * 64, "fixture maps");
        hv_model_gradcampp(A->data + n * kw, G->data + n * kw, k, h, w, L->data[2 * n + 1], map);
        HV_CHECK(max_abs_diff(map, C->data, h * w) < 1e-5, "item %d: our arithmetic on torch's "
                 "A and g vs torch's map: max diff %g", n, max_abs_diff(map, C->data, h * w));
        hv_model_cam_resize(C->data, h, w, up, 64, 64);
        HV_CHECK(max_abs_diff(up, U->data, 64 * 64) < 1e-5, "item %d: resize vs F.interpolate: "
                 "max diff %g", n, max_abs_diff(up, U->data, 64 * 64));
        HV_CHECK(fx_rel_l2(up, U->data, 64 * 64, NULL) < 1e-6, "item %d: resize relative L2", n);
    }
    /* the chain on our engine */
    hv_nn_backend *be = NULL;
    hv_nn_graph *g = NULL;
    float *act = malloc((size_t)(2 * kw) * sizeof(float)), *grad = malloc((size_t)(2 * kw) * sizeof(float));
    float logits[4];
    hv_model_classifier_io io;
    if (!HV_CHECK(act && grad, "oom")) goto done;
    if (!OK(cpu ? hv_nn_backend_create_cpu(&be) : hv_nn_backend_create_ref(&be))) goto done;
    if (!OK(hv_nn_graph_create(&g)) || !OK(hv_model_classifier_build(g, ps, 4, 2, 64, 64, &io)))
        goto done;
    hv_nn_tensor *s = hv_nn_sum(g, hv_nn_slice(g, io.logits, 1, 1, 1));
    if (!OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_GRAD)) ||
        !OK(hv_nn_tensor_set(io.x, X->data, (size_t)X->n)) || !OK(hv_nn_graph_forward(g)) ||
        !OK(hv_nn_graph_backward(g, s)) || !OK(hv_nn_tensor_get(io.logits, logits, 4)) ||
        !OK(hv_nn_tensor_get(io.target, act, (size_t)(2 * kw))) ||
        !OK(hv_nn_tensor_get_grad(io.target, grad, (size_t)(2 * kw))))
        goto done;
    for (int n = 0; n < 2; n++) {
        char nm[32];
        snprintf(nm, sizeof nm, "cam.%d", n);
        const fx_tensor *C = fx_find(fx, nm);
        hv_model_gradcampp(act + n * kw, grad + n * kw, k, h, w, logits[2 * n + 1], map);
        HV_CHECK(max_abs_diff(map, C->data, h * w) < 1e-3, "%s item %d: our chain vs torch's map: "
                 "max diff %g", cpu ? "cpu" : "ref", n, max_abs_diff(map, C->data, h * w));
    }
done:
    free(act);
    free(grad);
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
}

static void expect_format(const char *path, hv_nn_backend *be, const char *needle, const char *what)
{
    hv_model_cam *c = NULL;
    hv_status st = hv_model_cam_open(path, 2, be, &c);
    HV_CHECK(st == HV_ERR_FORMAT && c == NULL && strstr(hv_error_detail(), path) &&
                 (!needle || strstr(hv_error_detail(), needle)),
             "%s: %s (%s)", what, hv_status_name(st), hv_error_detail());
    hv_model_cam_free(c);
}

static void test_open_errors(const char *dir, hv_nn_backend *be)
{
    char path[4400], gan[4400], trunc[4400], bad[4400], kind[4400];
    hv_model_cam *c = NULL;
    snprintf(path, sizeof path, "%s/none.h5", dir);
    HV_CHECK(hv_model_cam_open(path, 2, be, &c) == HV_ERR_NOT_FOUND && !c &&
                 strstr(hv_error_detail(), path),
             "missing file: %s", hv_error_detail());

    hv_rng rng;
    hv_rng_seed(&rng, 11, 0);
    /* a GAN model file: a generator at /params with /meta plane (what
     * scripts/pth_to_hv.py and hv_model_synth_export write), no kind */
    hv_nn_params *gp = NULL, *cp = NULL;
    snprintf(gan, sizeof gan, "%s/gan.h5", dir);
    if (OK(hv_nn_params_create(&gp)) && OK(hv_model_generator_params(gp, 2, &rng))) {
        const char *kv[2] = {"plane", "sagittal"};
        if (OK(hv_nn_checkpoint_save(gan, gp, NULL, kv, 1)))
            expect_format(gan, be, "kind", "GAN model file");
    }
    hv_nn_params_free(gp);

    snprintf(path, sizeof path, "%s/cls.h5", dir);
    if (!OK(hv_nn_params_create(&cp)) || !OK(hv_model_classifier_params(cp, 4, &rng)) ||
        !OK(hv_model_classifier_save_file(cp, 4, 1, "test", path)))
        goto done;
    if (OK(hv_model_cam_open(path, 2, be, &c))) HV_CHECK(hv_model_cam_width(c) == 4, "width 4");
    hv_model_cam_free(c);
    c = NULL;
    char buf[64];
    HV_CHECK(hv_nn_checkpoint_meta(path, "kind", buf, sizeof buf) == HV_OK &&
                 !strcmp(buf, "classifier"), "kind '%s'", buf);
    HV_CHECK(hv_nn_checkpoint_meta(path, "threshold", buf, sizeof buf) == HV_OK && !strcmp(buf, "1"),
             "threshold '%s'", buf);
    /* save_file refuses a set of another width */
    HV_CHECK(hv_model_classifier_save_file(cp, 8, 1, "test", path) == HV_ERR_ARG, "width 8 refused");

    /* truncated: the first half of the file */
    snprintf(trunc, sizeof trunc, "%s/trunc.h5", dir);
    FILE *a = fopen(path, "rb"), *b = fopen(trunc, "wb");
    if (HV_CHECK(a && b, "files")) {
        fseek(a, 0, SEEK_END);
        long n = ftell(a) / 2;
        fseek(a, 0, SEEK_SET);
        char *tmp = malloc((size_t)n);
        if (tmp && fread(tmp, 1, (size_t)n, a) == (size_t)n) fwrite(tmp, 1, (size_t)n, b);
        free(tmp);
    }
    if (a) fclose(a);
    if (b) fclose(b);
    expect_format(trunc, be, NULL, "truncated file");

    /* one parameter of another shape (written under kind classifier) */
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    hv_nn_params *bp = NULL;
    if (OK(hv_nn_params_create(&bp))) {
        for (size_t i = 0; i < hv_nn_params_size(cp); i++) {
            hv_nn_param *p = hv_nn_params_at(cp, i);
            int64_t sh[HV_NN_MAX_DIMS];
            int nd = hv_nn_param_shape(p, sh);
            if (!strcmp(hv_nn_param_name(p), "layer3.1.conv2.conv.weight")) sh[1]++;
            hv_nn_params_add(bp, hv_nn_param_name(p), nd, sh, hv_nn_param_trainable(p), NULL);
        }
        const char *kv[4] = {"kind", "classifier", "width", "4"};
        if (OK(hv_nn_checkpoint_save(bad, bp, NULL, kv, 2)))
            expect_format(bad, be, "layer3.1.conv2.conv.weight", "parameter of another shape");
    }
    hv_nn_params_free(bp);

    /* the classifier's weights under another kind */
    snprintf(kind, sizeof kind, "%s/kind.h5", dir);
    const char *kv[2] = {"kind", "gan"};
    if (OK(hv_nn_checkpoint_save(kind, cp, NULL, kv, 1)))
        expect_format(kind, be, "'gan'", "kind gan");
done:
    hv_nn_params_free(cp);
}

static void test_crop(const char *dir, hv_nn_backend *be)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/crop_cls.h5", dir);
    hv_rng rng;
    hv_rng_seed(&rng, 2026, 0);
    hv_nn_params *ps = NULL;
    hv_model_cam *c = NULL;
    hv_phantom_case *pc = NULL;
    hv_spine_case *sc = NULL;
    hv_spine_crop *cr = NULL;
    hv_volume *ct8 = NULL;
    hv_nn_graph *g = NULL;
    hv_model_cam_result r = {0};
    float *x = NULL, *act = NULL, *grad = NULL, *sl = NULL, *up = NULL;
    if (!OK(hv_nn_params_create(&ps)) || !OK(hv_model_classifier_params(ps, 4, &rng)) ||
        !OK(hv_model_classifier_save_file(ps, 4, 1, "test", path)))
        goto done;
    if (!OK(hv_model_cam_open(path, 8, be, &c))) goto done;

    hv_phantom_opts po;
    hv_phantom_opts_default(&po);
    po.first_label = 19;
    po.last_label = 21;
    po.fracture_rate = 0;
    po.scoliosis_rate = 0;
    if (!OK(hv_phantom_case_make(&po, 0, &pc)) || !OK(hv_phantom_case_render(&po, pc)) ||
        !OK(hv_spine_case_run(pc->ct, pc->mask, NULL, NULL, &sc)) ||
        !OK(hv_spine_crop_make(sc, 20, &cr)))
        goto done;
    if (!OK(hv_model_cam_crop(c, cr, &r))) goto done;
    const hv_volume *v = r.cam;
    HV_REQUIRE_V(v && v->dtype == HV_DTYPE_F32 && v->dim[0] == 64 && v->dim[1] == 256 &&
                     v->dim[2] == 256, "cam volume dims");
    HV_CHECK(!memcmp(v->affine, cr->ct->affine, sizeof v->affine), "the crop's affine");
    HV_CHECK(!r.nonfinite, "finite");
    const float *cv = v->data;
    int outside = 0, range = 1, any = 0;
    for (int64_t k = 0; k < 256; k++)
        for (int64_t j = 0; j < 256; j++)
            for (int64_t i = 0; i < 64; i++) {
                float q = cv[hv_vol_idx(v, i, j, k)];
                if (i < HV_MODEL_CAM_FIRST || i >= HV_MODEL_CAM_FIRST + HV_MODEL_CAM_COUNT)
                    outside += q != 0;
                else {
                    range &= q >= 0 && q <= 1;
                    any |= q > 0;
                }
            }
    HV_CHECK(outside == 0, "%d nonzero voxels outside slices 17..46", outside);
    HV_CHECK(range, "values in [0, 1]");
    HV_CHECK(any, "some nonzero map");
    double ps_sum = 0;
    for (int s = 0; s < HV_MODEL_CAM_COUNT; s++) {
        ps_sum += r.p_slice[s];
        HV_CHECK(r.p_slice[s] > 0 && r.p_slice[s] < 1, "p_slice[%d] = %g", s, r.p_slice[s]);
    }
    HV_CHECK_CLOSE(r.p_fracture, ps_sum / HV_MODEL_CAM_COUNT, 1e-12, "p_fracture = mean p_slice");

    /* slices 17, 30, 46 (first batch, a middle one, the partial last batch)
     * from a batch-1 graph of the same weights */
    if (!OK(hv_model_trainset_ct_u8(cr->ct, &ct8))) goto done;
    hv_model_classifier_io io;
    if (!OK(hv_nn_graph_create(&g)) || !OK(hv_model_classifier_build(g, ps, 4, 1, 256, 256, &io)))
        goto done;
    hv_nn_tensor *s1 = hv_nn_slice(g, io.logits, 1, 1, 1);
    if (!OK(hv_nn_graph_plan(g, be, HV_NN_PLAN_GRAD))) goto done;
    const int64_t kw = 32 * 8 * 8;
    x = malloc(256 * 256 * sizeof(float));
    sl = malloc(256 * 256 * sizeof(float));
    up = malloc(256 * 256 * sizeof(float));
    act = malloc((size_t)kw * sizeof(float));
    grad = malloc((size_t)kw * sizeof(float));
    if (!HV_CHECK(x && sl && up && act && grad, "oom")) goto done;
    const int64_t check[3] = {17, 30, 46};
    for (int t = 0; t < 3; t++) {
        const int64_t i = check[t];
        float lg[2], map[64];
        if (!OK(hv_spine_slice_extract(ct8, HV_SPINE_SAGITTAL, i, x))) break;
        for (int q = 0; q < 256 * 256; q++) x[q] /= 255.0f;
        if (!OK(hv_nn_tensor_set(io.x, x, 256 * 256)) || !OK(hv_nn_graph_forward(g)) ||
            !OK(hv_nn_graph_backward(g, s1)) || !OK(hv_nn_tensor_get(io.logits, lg, 2)) ||
            !OK(hv_nn_tensor_get(io.target, act, (size_t)kw)) ||
            !OK(hv_nn_tensor_get_grad(io.target, grad, (size_t)kw)))
            break;
        hv_model_gradcampp(act, grad, 32, 8, 8, lg[1], map);
        hv_model_cam_resize(map, 8, 8, up, 256, 256);
        if (!OK(hv_spine_slice_extract(v, HV_SPINE_SAGITTAL, i, sl))) break;
        double d = max_abs_diff(sl, up, 256 * 256);
        HV_CHECK(d < 1e-4, "slice %lld: volume vs a batch-1 graph's map: max diff %g", (long long)i, d);
        double p = 1.0 / (1.0 + exp((double)lg[0] - lg[1]));
        HV_CHECK_CLOSE(r.p_slice[i - HV_MODEL_CAM_FIRST], p, 1e-5, "p_slice");
        float mx = 0;
        for (int q = 0; q < 64; q++) mx = map[q] > mx ? map[q] : mx;
        /* the upsampled map's top: no output centre is an input one; the
         * nearest is 1/64 input pixels off on each axis */
        float vmax = 0;
        for (int q = 0; q < 256 * 256; q++) vmax = sl[q] > vmax ? sl[q] : vmax;
        const double lo = (1 - 1 / 64.0) * (1 - 1 / 64.0) * mx;
        HV_CHECK(mx > 0 && vmax <= mx + 1e-6 && vmax >= lo - 1e-6, "slice %lld: volume max %g, map "
                 "max %g (bound %g)", (long long)i, vmax, mx, lo);
        printf("slice %lld: p %.4f, map max %.4f, volume slice max %.4f\n", (long long)i, p, mx,
               vmax);
    }

    /* a crop of other dims */
    hv_spine_crop small = *cr;
    hv_volume *sv = NULL;
    if (OK(hv_vol_create(&sv, (int64_t[]){32, 256, 256}, HV_DTYPE_F32, cr->ct->affine))) {
        small.ct = sv;
        hv_model_cam_result r2 = {0};
        HV_CHECK(hv_model_cam_crop(c, &small, &r2) == HV_ERR_ARG && r2.cam == NULL,
                 "32 x 256 x 256 crop refused: %s", hv_error_detail());
        hv_model_cam_result_free(&r2);
    }
    hv_vol_free(sv);
done:
    free(x);
    free(sl);
    free(up);
    free(act);
    free(grad);
    hv_nn_graph_free(g);
    hv_model_cam_result_free(&r);
    hv_vol_free(ct8);
    hv_spine_crop_free(cr);
    hv_spine_case_free(sc);
    hv_phantom_case_free(pc);
    hv_model_cam_free(c);
    hv_nn_params_free(ps);
}

int main(void)
{
    test_hand();
    test_resize_hand();
    char path[1024];
    snprintf(path, sizeof path, "%s/model/fixtures/cls_w4.bin", HV_TEST_SOURCE_DIR);
    fx_file fx;
    HV_REQUIRE(fx_read(path, &fx) == 0, "cannot read %s", path);
    hv_nn_params *ps = fixture_params(&fx);
    if (ps) {
        test_vs_torch(&fx, ps, 0);
        test_vs_torch(&fx, ps, 1);
    }
    hv_nn_params_free(ps);
    fx_free(&fx);
    const char *dir = hv_test_tmpdir("model_gradcam");
    HV_REQUIRE(dir != NULL, "tmpdir");
    char d[4096];
    snprintf(d, sizeof d, "%s", dir);
    hv_nn_backend *be = NULL;
    HV_REQUIRE(hv_nn_backend_create_cpu(&be) == HV_OK, "cpu backend");
    test_open_errors(d, be);
    test_crop(d, be);
    hv_nn_backend_free(be);
    return hv_test_done();
}
