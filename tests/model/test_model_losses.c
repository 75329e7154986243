/*
 * test_model_losses.c: the generator-side losses of the GAN step
 * (src/model/losses.c) against hand arithmetic on tiny tensors, the
 * composite of spec 5.5 on hand examples, and the gradients of the
 * Edge-Enhancing Module and of the Sobel op against finite differences;
 * AOT-GAN's loss graph (src/model/aot_loss.c) the same way (test_aot_*).
 */
#include "hv_test.h"
#include "../../src/model/gan_internal.h"

/* ------------------------------------------------------------ composite */

/* rows = 10, cols = 1, band 4, real[r] = r; gen marks its rows with 100 + r:
 * comp[r] = gen[r] w[r] + rest[r]. expect[] is comp written out by hand. */
static void comp_case(const char *what, float p, int64_t x1, int64_t x2, int64_t hp, int64_t x_up,
                      const float expect[10])
{
    float real[10], w[10], rest[10];
    for (int r = 0; r < 10; r++) real[r] = (float)r;
    hv__gan_comp c = hv__gan_composite(p, x1, x2, 4, 10, 1, real, w, rest);
    HV_CHECK(c.hp == hp && c.x_up == x_up && c.x_lo == x_up + hp, "%s: hp %lld x_up %lld x_lo %lld",
             what, (long long)c.hp, (long long)c.x_up, (long long)c.x_lo);
    for (int r = 0; r < 10; r++) {
        float comp = (100.0f + (float)r) * w[r] + rest[r];
        HV_CHECK(comp == expect[r], "%s: row %d is %g, expected %g", what, r, comp, expect[r]);
    }
}

static void test_composite(void)
{
    /* h = 3 (rows 3..5), p = 0.5: ceil(0.5*4) = 2 < h -> Hp = 3, d = 0:
     * generator rows 3..5, the rest unmoved */
    const float a[10] = {0, 1, 2, 103, 104, 105, 6, 7, 8, 9};
    comp_case("Hp floored at h", 0.5f, 3, 6, 3, 3, a);
    /* h = 2 (rows 3..4), p = 0.7: ceil(2.8) = 3, d = 1 (odd): x_up = 3 - 0,
     * x_lo = 6; above unmoved (floor(1/2) = 0), below from x2 = 5 on:
     * rows 6..9 <- 5..8 (moved down by ceil(1/2) = 1) */
    const float b[10] = {0, 1, 2, 103, 104, 105, 5, 6, 7, 8};
    comp_case("d odd", 0.7f, 3, 5, 3, 3, b);
    /* h = 2, p = 1: Hp = 4, d = 2 (even): x_up = 2, x_lo = 6; rows 0..1 <-
     * 1..2 (up by 1), rows 6..9 <- 5..8 (down by 1) */
    const float c[10] = {1, 2, 102, 103, 104, 105, 5, 6, 7, 8};
    comp_case("d even", 1.0f, 3, 5, 4, 2, c);
    /* x1 = 0, h = 1, p = 1: Hp = 4, d = 3, x_up = -1 (the reference indexes
     * row -1 from the end here; we cut): generator rows 0..2, rows 3..9 <-
     * 1..7 */
    const float d[10] = {100, 101, 102, 1, 2, 3, 4, 5, 6, 7};
    comp_case("x_up < 0 cut", 1.0f, 0, 1, 4, -1, d);
}

/* ------------------------------------------------------------- the terms */

#define N 2
#define S 4
#define P (N * S * S)

static void set(hv_nn_tensor *t, const float *v, size_t n) { HV_CHECK_OK(hv_nn_tensor_set(t, v, n)); }
static float get(hv_nn_tensor *t)
{
    float v = NAN;
    HV_CHECK_OK(hv_nn_tensor_get(t, &v, 1));
    return v;
}

static void tiny_opts(hv_model_gan_opts *o)
{
    hv_model_gan_opts_default(o);
    o->rows = S;
    o->cols = S;
    o->band_rows = 2;
}

/* Fill the loss graph's inputs with the hand example (see test_terms). */
static void fill_example(hv__gan_loss *L, float seed)
{
    float zero[P] = {0}, half[P], one[P], xs2[P], w2[P], rest2[P], rmask[P], seedc[P];
    for (int i = 0; i < P; i++) half[i] = 0.5f, one[i] = 1.0f, seedc[i] = seed;
    for (int i = 0; i < P; i++) {
        int item = i / (S * S), row = (i / S) % S;
        xs2[i] = 0.5f;
        w2[i] = row == 3 ? 0.0f : 1.0f;     /* row 3 not from the generator ... */
        rest2[i] = row == 3 ? 0.5f : 0.0f;  /* ... but holding the same value */
        rmask[i] = item == 0 ? 1.0f : (row == 0 ? 1.0f : 0.0f);
    }
    const float p1[N] = {0.5f, 0.25f}, p2[N] = {0.75f, 0.5f};
    const float inv_h[N] = {40.0f / 20.0f, 40.0f / 10.0f}, inv_nnz = 1.0f / 8.0f;
    set(L->xs1, half, P), set(L->xs2, xs2, P), set(L->cseg, one, P), set(L->fseg, half, P);
    set(L->p1, p1, N), set(L->p2, p2, N);
    set(L->w1, zero, P), set(L->rest1, zero, P), set(L->w2, w2, P), set(L->rest2, rest2, P);
    set(L->real, zero, P), set(L->real_mask, rmask, P), set(L->normal, zero, P);
    set(L->inv_h, inv_h, N), set(L->inv_nnz, &inv_nnz, 1);
    set(L->seed_comp, seedc, P), set(L->seed_seg, zero, P);
}

static void test_terms(hv_nn_backend *be)
{
    hv_model_gan_opts o;
    tiny_opts(&o);
    hv__gan_loss L;
    for (int half = 0; half < 2; half++) {
        /* ratio 1 (one process), then 0.5 (this process holds half the
         * global batch): every term halves, so two such ranks sum to it */
        const double ratio = half ? 0.5 : 1.0;
        HV_REQUIRE_V(hv__gan_loss_build(&L, &o, N, ratio, be) == HV_OK, "build: %s", hv_error_detail());
        fill_example(&L, 2.0f);
        HV_CHECK_OK(hv_nn_graph_forward(L.g));
        /* A = 0; comp2 = 0.5 everywhere (generator rows 0..2, rest row 3);
         * comp1 = 0 * xs1 + A = 0. L1 = 0.5 (0.5 + 0) * 200 * (4*4 / nnz 8) * 2 = 200 */
        HV_CHECK_CLOSE(get(L.l1), 200.0 * ratio, 1e-3, "L1");
        /* Dice fine, fseg = 0.5: item 0 (mask all 16): (2*8 + e)/(8 + 16 + e) = 2/3;
         * item 1 (mask = row 0, 4 px): (2*2 + e)/(8 + 4 + e) = 1/3; mean 1/2:
         * 15 (1 - 1/2) = 7.5 (e = 1e-5 moves it by < 1e-5) */
        HV_CHECK_CLOSE(get(L.dice_f), 7.5 * ratio, 2e-5, "Dice fine");
        /* Dice coarse, cseg = 1, normal = 0: (0 + e)/(16 + e) = 6.25e-7 per
         * item: 10 (1 - 6.25e-7) = 9.99999375 */
        HV_CHECK_CLOSE(get(L.dice_c), 9.99999375 * ratio, 1e-5, "Dice coarse");
        /* edge: Sobel(0.5 constant) = 0; Sobel(mask): item 0 constant -> 0;
         * item 1 (row 0 ones, replicate padding): rows 0 and 1 have
         * gy = 4 -> clipped to 1, rows 2-3 are 0: 8 of 32 pixels at 1:
         * MSE = 8/32 = 0.25, 800 * 0.25 = 200 */
        HV_CHECK_CLOSE(get(L.edge), 200.0 * ratio, 1e-3, "edge");
        /* height: H1 = (20, 10) = h -> 0; H2 = (30, 20), h = (20, 10):
         * |H2 - h|/h = (0.5, 1); mean over items of the sums = 0.75; 40 * 0.75 = 30 */
        HV_CHECK_CLOSE(get(L.height), 30.0 * ratio, 1e-4, "height");
        /* total = the five + sum(comp2 * seed) = 447.49999375 + 2 * 0.5 * 32
         * (the seeds are the discriminators' gradients, already scaled) */
        HV_CHECK_CLOSE(get(L.total), 447.49999375 * ratio + 32.0, 2e-3, "total");
        /* gradient to the generator's fine CT: through the composite's w only.
         * L1: 0.5*200*16/8*2 / 32 px * sign(0.5 - 0) = 12.5 (times ratio); seed 2; so 14.5 on
         * generator rows, 0 on row 3 (copied from the original) */
        HV_CHECK_OK(hv_nn_graph_backward(L.g, L.total));
        float g[P];
        HV_CHECK_OK(hv_nn_tensor_get_grad(L.xs2, g, P));
        int bad = 0;
        for (int i = 0; i < P; i++) {
            double want = ((i / S) % S == 3) ? 0.0 : 12.5 * ratio + 2.0;
            if (fabs(g[i] - want) > 1e-4) bad++;
        }
        HV_CHECK(bad == 0, "%d wrong d total / d x_stage2 (e.g. %g)", bad, g[0]);
        /* and no gradient to the heads through the crop: d/dp2 comes only
         * from L_h: 40 * ratio / N * sign * inv_h = 40/2 * (2, 4) = (40, 80) */
        float gp[N];
        HV_CHECK_OK(hv_nn_tensor_get_grad(L.p2, gp, N));
        HV_CHECK_CLOSE(gp[0], 40.0 * ratio, 1e-3, "d/dp2 item 0");
        HV_CHECK_CLOSE(gp[1], 80.0 * ratio, 1e-3, "d/dp2 item 1");
        hv__gan_loss_free(&L);
    }
}

/* ------------------------------------------------- EEM and Sobel gradients */

#define E 8

/* The EEM alone (other weights 0): total = 800 * MSE(Sobel(fseg), Sobel(mask)).
 * Gradient vs central differences at every pixel whose 3x3 outputs are
 * away from Sobel's kinks (magnitude 0 < m < 0.02 or |m - 1| < 0.02). */
static void test_eem(hv_nn_backend *be)
{
    hv_model_gan_opts o;
    hv_model_gan_opts_default(&o);
    o.rows = E, o.cols = E;
    o.lambda_l1 = 0, o.lambda_dice_fine = 0, o.lambda_dice_coarse = 0, o.lambda_height = 0;
    hv__gan_loss L;
    HV_REQUIRE_V(hv__gan_loss_build(&L, &o, 1, 1.0, be) == HV_OK, "build: %s", hv_error_detail());
    float z[E * E] = {0}, seg[E * E], mask[E * E], one = 1.0f, ones1[1] = {1};
    hv_rng rng;
    hv_rng_seed(&rng, 99, 0);
    for (int i = 0; i < E * E; i++) {
        int r = i / E, c = i % E;
        mask[i] = (r >= 2 && r < 6 && c >= 2 && c < 6) ? 1.0f : 0.0f;
        seg[i] = (float)(0.3 + 0.1 * hv_rng_uniform(&rng)); /* low contrast: mostly unclipped */
    }
    hv_nn_tensor *zs[] = {L.xs1, L.xs2, L.cseg, L.w1, L.rest1, L.w2, L.rest2, L.real, L.normal,
                          L.seed_comp, L.seed_seg};
    for (size_t k = 0; k < sizeof zs / sizeof zs[0]; k++) set(zs[k], z, E * E);
    set(L.p1, ones1, 1), set(L.p2, ones1, 1), set(L.inv_h, ones1, 1), set(L.inv_nnz, &one, 1);
    set(L.real_mask, mask, E * E);
    set(L.fseg, seg, E * E);
    HV_CHECK_OK(hv_nn_graph_forward(L.g));
    HV_CHECK_OK(hv_nn_graph_backward(L.g, L.total));
    float g[E * E];
    HV_CHECK_OK(hv_nn_tensor_get_grad(L.fseg, g, E * E));
    double gmax = 0;
    for (int i = 0; i < E * E; i++) gmax = fmax(gmax, fabs(g[i]));
    HV_CHECK(gmax > 1.0, "EEM gradient is (near) zero: max %g", gmax);
    const float eps = 1e-3f;
    int checked = 0, bad = 0;
    for (int i = 0; i < E * E; i++) {
        float s0 = seg[i];
        seg[i] = s0 + eps;
        set(L.fseg, seg, E * E);
        HV_CHECK_OK(hv_nn_graph_forward(L.g));
        double lp = get(L.total);
        seg[i] = s0 - eps;
        set(L.fseg, seg, E * E);
        HV_CHECK_OK(hv_nn_graph_forward(L.g));
        double lm = get(L.total);
        seg[i] = s0;
        double fd = (lp - lm) / (2 * eps);
        /* the total is 800 * mean over 64 px; float noise ~1e-7 * 800 / eps */
        if (fabs(fd - g[i]) > 0.02 * fabs(fd) + 0.2) bad++;
        checked++;
    }
    HV_CHECK(bad == 0, "EEM gradient: %d of %d pixels disagree with finite differences", bad, checked);

    /* The reference's EEM binarises the segmentation first (> 0.5): a step
     * function of fseg, so any perturbation that crosses no threshold leaves
     * the loss unchanged and its gradient is zero everywhere (torch.where
     * passes none): shown here with the same finite differences on the
     * binarised input, which never move the loss. */
    float bin[E * E];
    int moved = 0;
    for (int i = 0; i < E * E; i++) {
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            for (int k = 0; k < E * E; k++) {
                float v = seg[k] + (k == i ? (sgn ? eps : -eps) : 0.0f);
                bin[k] = v > 0.5f ? 1.0f : 0.0f;
            }
            set(L.fseg, bin, E * E);
            HV_CHECK_OK(hv_nn_graph_forward(L.g));
            l[sgn] = get(L.total);
        }
        if (l[0] != l[1]) moved++;
    }
    HV_CHECK(moved == 0, "binarised EEM moved under %d perturbations", moved);
    hv__gan_loss_free(&L);
}

/* d2_soft = 0 (the key's documented "binarised, as the reference" mode):
 * the edge term sees the binarised segmentation, passes no gradient to
 * fseg, and its value is that of the thresholded map. fseg = 0.55 on the
 * mask's rows 2..5 x cols 2..5, 0.45 elsewhere: binarised it IS the mask,
 * so the term is 0; on the soft map Sobel's magnitudes at the border are
 * 0.1 x (1..4) < 1 against the mask's 1, so the soft term is > 0 (and is
 * what d2_soft = 1 computes, with a gradient). */
static void test_edge_hard(hv_nn_backend *be)
{
    float z[E * E] = {0}, seg[E * E], bin[E * E], mask[E * E], one = 1.0f, ones1[1] = {1};
    for (int i = 0; i < E * E; i++) {
        int r = i / E, c = i % E;
        mask[i] = (r >= 2 && r < 6 && c >= 2 && c < 6) ? 1.0f : 0.0f;
        seg[i] = mask[i] > 0 ? 0.55f : 0.45f;
        bin[i] = mask[i];
    }
    for (int soft = 0; soft < 2; soft++) {
        hv_model_gan_opts o;
        hv_model_gan_opts_default(&o);
        o.rows = E, o.cols = E;
        o.lambda_l1 = 0, o.lambda_dice_fine = 0, o.lambda_dice_coarse = 0, o.lambda_height = 0;
        o.d2_soft = soft;
        hv__gan_loss L;
        HV_REQUIRE_V(hv__gan_loss_build(&L, &o, 1, 1.0, be) == HV_OK, "build: %s", hv_error_detail());
        HV_CHECK(soft ? L.fseg_bin == NULL : L.fseg_bin != NULL, "d2_soft %d: binarised input %s",
                 soft, L.fseg_bin ? "present" : "absent");
        hv_nn_tensor *zs[] = {L.xs1, L.xs2, L.cseg, L.w1, L.rest1, L.w2, L.rest2, L.real, L.normal,
                              L.seed_comp, L.seed_seg};
        for (size_t k = 0; k < sizeof zs / sizeof zs[0]; k++) set(zs[k], z, E * E);
        set(L.p1, ones1, 1), set(L.p2, ones1, 1), set(L.inv_h, ones1, 1), set(L.inv_nnz, &one, 1);
        set(L.real_mask, mask, E * E);
        set(L.fseg, seg, E * E);
        if (L.fseg_bin) set(L.fseg_bin, bin, E * E); /* what the step writes: seg > 0.5 */
        HV_CHECK_OK(hv_nn_graph_forward(L.g));
        HV_CHECK_OK(hv_nn_graph_backward(L.g, L.total));
        float g[E * E];
        HV_CHECK_OK(hv_nn_tensor_get_grad(L.fseg, g, E * E));
        double gmax = 0;
        for (int i = 0; i < E * E; i++) gmax = fmax(gmax, fabs(g[i]));
        double e = get(L.edge);
        if (soft) {
            HV_CHECK(e > 1.0 && gmax > 1.0, "soft edge: term %g, max |gradient| %g (both > 1)", e, gmax);
        } else {
            HV_CHECK(e == 0.0, "binarised edge term %g, expected 0 (the binarised map is the mask)", e);
            HV_CHECK(gmax == 0.0, "binarised edge passed a gradient to fseg: max %g", gmax);
        }
        hv__gan_loss_free(&L);
    }
}

/* hv_nn_sobel alone: loss = sum(Sobel(x) * w). x has a constant block
 * (magnitude 0), a low-contrast random block (0 < m < 1) and a
 * high-contrast block (clipped at 1). Backward must be finite everywhere
 * and match central differences at every pixel whose outputs are away from
 * the kinks (all affected outputs with m = 0 exactly, 0.02 < m < 0.98 or
 * m > 1.02; a zero output contributes 0 to both: |t| is symmetric). */
static void test_sobel(hv_nn_backend *be)
{
    hv_nn_graph *g = NULL;
    HV_REQUIRE_V(hv_nn_graph_create(&g) == HV_OK, "graph");
    const int64_t sh[4] = {1, 1, 12, 12};
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, sh), *w = hv_nn_input(g, "w", 4, sh);
    hv_nn_set_requires_grad(x);
    hv_nn_tensor *s = hv_nn_sobel(g, x);
    hv_nn_set_output(s);
    hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_mul(g, s, w));
    HV_REQUIRE_V(hv_nn_graph_plan(g, be, HV_NN_PLAN_TRAIN) == HV_OK, "plan: %s", hv_error_detail());
    float xv[144], wv[144], mag[144], dx[144];
    hv_rng rng;
    hv_rng_seed(&rng, 5, 1);
    for (int i = 0; i < 144; i++) {
        int r = i / 12, c = i % 12;
        if (c < 5) xv[i] = 0.25f;                                          /* flat */
        else if (r < 6) xv[i] = (float)(0.05 * hv_rng_uniform(&rng));      /* unclipped */
        else xv[i] = (float)(2.0 * hv_rng_uniform(&rng));                  /* clipped */
        wv[i] = (float)(hv_rng_uniform(&rng) - 0.3);
    }
    HV_CHECK_OK(hv_nn_tensor_set(w, wv, 144));
    HV_CHECK_OK(hv_nn_tensor_set(x, xv, 144));
    HV_CHECK_OK(hv_nn_graph_forward(g));
    HV_CHECK_OK(hv_nn_tensor_get(s, mag, 144));
    HV_CHECK_OK(hv_nn_graph_backward(g, loss));
    HV_CHECK_OK(hv_nn_tensor_get_grad(x, dx, 144));
    int zeros = 0, clipped = 0, mid = 0, nonfinite = 0;
    for (int i = 0; i < 144; i++) {
        zeros += mag[i] == 0.0f;
        clipped += mag[i] >= 1.0f;
        mid += mag[i] > 0.0f && mag[i] < 1.0f;
        nonfinite += !isfinite(dx[i]);
    }
    HV_CHECK(zeros >= 10 && clipped >= 10 && mid >= 10, "coverage: %d zero, %d clipped, %d between",
             zeros, clipped, mid);
    HV_CHECK(nonfinite == 0, "%d non-finite input gradients", nonfinite);
    /* the unclipped magnitude, by hand (the op outputs min(m, 1)) */
    float full[144];
    for (int i = 0; i < 144; i++) {
        int r = i / 12, c = i % 12;
        double gx = 0, gy = 0;
        for (int dr = -1; dr <= 1; dr++)
            for (int dc = -1; dc <= 1; dc++) {
                int rr = r + dr < 0 ? 0 : (r + dr > 11 ? 11 : r + dr);
                int cc = c + dc < 0 ? 0 : (c + dc > 11 ? 11 : c + dc);
                double v = xv[rr * 12 + cc];
                gx += dc * (dr == 0 ? 2 : 1) * v;  /* [[-1,0,1],[-2,0,2],[-1,0,1]] */
                gy += -dr * (dc == 0 ? 2 : 1) * v; /* [[1,2,1],[0,0,0],[-1,-2,-1]] */
            }
        full[i] = (float)sqrt(gx * gx + gy * gy);
        HV_CHECK(fabsf(fminf(full[i], 1.0f) - mag[i]) < 1e-5f, "Sobel forward at %d: %g vs %g", i,
                 mag[i], full[i]);
    }
    int clipped_checked = 0;
    const float eps = 1e-4f;
    int checked = 0, bad = 0;
    for (int i = 0; i < 144; i++) {
        int r = i / 12, c = i % 12, kink = 0;
        for (int dr = -1; dr <= 1; dr++)
            for (int dc = -1; dc <= 1; dc++) {
                int rr = r + dr, cc = c + dc;
                if (rr < 0 || rr >= 12 || cc < 0 || cc >= 12) continue;
                float m = full[rr * 12 + cc];
                if (m != 0.0f && (m < 0.02f || (m > 0.98f && m < 1.02f))) kink = 1;
            }
        if (kink) continue;
        float x0 = xv[i];
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            xv[i] = x0 + (sgn ? eps : -eps);
            HV_CHECK_OK(hv_nn_tensor_set(x, xv, 144));
            HV_CHECK_OK(hv_nn_graph_forward(g));
            float lv = NAN;
            HV_CHECK_OK(hv_nn_tensor_get(loss, &lv, 1));
            l[sgn] = lv;
        }
        xv[i] = x0;
        double fd = (l[1] - l[0]) / (2 * eps);
        if (fabs(fd - dx[i]) > 0.02 * fabs(fd) + 0.05) bad++;
        checked++;
        clipped_checked += full[i] > 1.02f;
    }
    HV_CHECK(checked >= 60 && clipped_checked >= 10, "only %d pixels away from the kinks (%d clipped)",
             checked, clipped_checked);
    HV_CHECK(bad == 0, "Sobel gradient: %d of %d pixels disagree with finite differences", bad, checked);
    hv_nn_graph_free(g);
}

/* ------------------------------------------------- AOT-GAN's loss graph */

/* N = 2 items of 4 x 4, nnz 8. ct = 0.5; w = 1 on rows 0..1 (generator
 * rows), rest = 0.25 on rows 2..3; A = 0: comp = 0.5 on rows 0..1, 0.25 on
 * rows 2..3, mean |comp - A| = (8 * 0.5 + 8 * 0.25) / 16 = 0.375.
 *   l1 = 200 * 2 * 16 * 0.375 / 8 = 300 (times ratio).
 * label: item 0 all +1 (prob 1), item 1 all 0 (prob 0.5); A_mask = row 0
 * (4 px) in both. Dice item 0 = (2*4 + 1e-5) / (16 + 4 + 1e-5) = 0.4,
 * item 1 = (2*2 + 1e-5) / (8 + 4 + 1e-5) = 1/3; mean 0.366667:
 *   dice = 15 * (1 - 0.366667) = 9.5 (times ratio).
 * seeds: seed_comp = 1: sum(comp) = 2 * (8 * 0.5 + 8 * 0.25) = 12;
 * seed_seg = 2: 2 sum(prob) = 2 * (16 + 8) = 48 (not scaled by ratio).
 *   total = 300 r + 9.5 r + 60. */
static void test_aot_terms(hv_nn_backend *be)
{
    hv_model_gan_opts o;
    tiny_opts(&o);
    o.generator = HV_MODEL_GEN_AOTGAN;
    for (int half = 0; half < 2; half++) {
        const double r = half ? 0.5 : 1.0;
        hv__aot_loss A;
        HV_REQUIRE_V(hv__aot_loss_build(&A, &o, N, r, be) == HV_OK, "build: %s", hv_error_detail());
        float ct[P], lab[P], w[P], rest[P], zero[P] = {0}, rm[P], sc[P], ss[P];
        for (int i = 0; i < P; i++) {
            int item = i / (S * S), row = (i / S) % S;
            ct[i] = 0.5f;
            w[i] = row < 2 ? 1.0f : 0.0f;
            rest[i] = row < 2 ? 0.0f : 0.25f;
            lab[i] = item == 0 ? 1.0f : 0.0f;
            rm[i] = row == 0 ? 1.0f : 0.0f;
            sc[i] = 1.0f, ss[i] = 2.0f;
        }
        const float inv_nnz = 1.0f / 8.0f;
        set(A.ct, ct, P), set(A.lab, lab, P), set(A.w, w, P), set(A.rest, rest, P);
        set(A.real, zero, P), set(A.real_mask, rm, P), set(A.inv_nnz, &inv_nnz, 1);
        set(A.seed_comp, sc, P), set(A.seed_seg, ss, P);
        HV_CHECK_OK(hv_nn_graph_forward(A.g));
        const double l1 = get(A.l1), dice = get(A.dice), tot = get(A.total);
        HV_CHECK(fabs(l1 - 300.0 * r) < 1e-3, "aot l1 %g (ratio %g, expected %g)", l1, r, 300 * r);
        HV_CHECK(fabs(dice - 9.5 * r) < 1e-3, "aot dice %g (ratio %g, expected %g)", dice, r, 9.5 * r);
        HV_CHECK(fabs(tot - (309.5 * r + 60.0)) < 2e-3, "aot total %g (ratio %g, expected %g)", tot,
                 r, 309.5 * r + 60.0);
        float comp[P], prob[P];
        HV_CHECK_OK(hv_nn_tensor_get(A.comp, comp, P));
        HV_CHECK_OK(hv_nn_tensor_get(A.prob, prob, P));
        int bad = 0;
        for (int i = 0; i < P; i++) {
            int item = i / (S * S), row = (i / S) % S;
            bad += comp[i] != (row < 2 ? 0.5f : 0.25f) || prob[i] != (item == 0 ? 1.0f : 0.5f);
        }
        HV_CHECK(bad == 0, "aot composite/probability: %d values differ from the hand ones", bad);
        hv__aot_loss_free(&A);
    }
}

/* The gradient of the AOT loss graph's total with respect to its CT and
 * label inputs (the new path of the AOT step: these become the seed of the
 * generator's two output channels) against central finite differences, at
 * random values (pixels where the composite is within the step of A, the
 * L1 kink, are skipped). */
static void test_aot_fd(hv_nn_backend *be)
{
    hv_model_gan_opts o;
    tiny_opts(&o);
    o.generator = HV_MODEL_GEN_AOTGAN;
    o.lambda_l1 = 1.0;
    hv__aot_loss A;
    HV_REQUIRE_V(hv__aot_loss_build(&A, &o, N, 1.0, be) == HV_OK, "build: %s", hv_error_detail());
    hv_rng rng;
    hv_rng_seed(&rng, 123, 0);
    float in[2][P], w[P], rest[P], real[P], rm[P], sc[P], ss[P];
    for (int i = 0; i < P; i++) {
        int row = (i / S) % S;
        in[0][i] = (float)(1.8 * hv_rng_uniform(&rng) - 0.9);
        in[1][i] = (float)(1.8 * hv_rng_uniform(&rng) - 0.9);
        w[i] = row == 1 || row == 2 ? 1.0f : 0.0f;
        rest[i] = w[i] ? 0.0f : (float)(hv_rng_uniform(&rng) - 0.5);
        real[i] = (float)(2 * hv_rng_uniform(&rng) - 1);
        rm[i] = hv_rng_uniform(&rng) < 0.4 ? 1.0f : 0.0f;
        sc[i] = (float)(hv_rng_uniform(&rng) - 0.5);
        ss[i] = (float)(hv_rng_uniform(&rng) - 0.5);
    }
    const float inv_nnz = 1.0f / 16.0f;
    set(A.w, w, P), set(A.rest, rest, P), set(A.real, real, P), set(A.real_mask, rm, P);
    set(A.inv_nnz, &inv_nnz, 1), set(A.seed_comp, sc, P), set(A.seed_seg, ss, P);
    set(A.ct, in[0], P), set(A.lab, in[1], P);
    HV_CHECK_OK(hv_nn_graph_forward(A.g));
    HV_CHECK_OK(hv_nn_graph_backward(A.g, A.total));
    float g[2][P];
    HV_CHECK_OK(hv_nn_tensor_get_grad(A.ct, g[0], P));
    HV_CHECK_OK(hv_nn_tensor_get_grad(A.lab, g[1], P));
    const float eps = 1e-2f;
    int checked = 0, bad = 0;
    double gmax[2] = {0, 0};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < P; i++) {
            if (c == 0 && w[i] != 0.0f && fabs(in[0][i] - real[i]) < 2 * eps) continue;
            float v0 = in[c][i];
            double l[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                in[c][i] = v0 + (sgn ? eps : -eps);
                set(c ? A.lab : A.ct, in[c], P);
                HV_CHECK_OK(hv_nn_graph_forward(A.g));
                l[sgn] = get(A.total);
            }
            in[c][i] = v0;
            set(c ? A.lab : A.ct, in[c], P);
            double fd = (l[1] - l[0]) / (2 * eps);
            gmax[c] = fmax(gmax[c], fabs(g[c][i]));
            if (fabs(fd - g[c][i]) > 0.01 * fabs(fd) + 2e-3) {
                if (bad < 5)
                    printf("# aot fd: channel %d px %d: backward %g, fd %g\n", c, i, g[c][i], fd);
                bad++;
            }
            checked++;
        }
    printf("# aot fd: %d values checked, max |grad| ct %g label %g\n", checked, gmax[0], gmax[1]);
    HV_CHECK(checked > 50 && bad == 0, "AOT loss gradient: %d of %d disagree with finite differences",
             bad, checked);
    HV_CHECK(gmax[0] > 0.01 && gmax[1] > 0.01, "AOT loss gradient (near) zero: %g %g", gmax[0], gmax[1]);
    hv__aot_loss_free(&A);
}

int main(void)
{
    hv_nn_backend *be = NULL;
    HV_REQUIRE(hv_nn_backend_create_cpu(&be) == HV_OK, "cpu backend");
    test_composite();
    test_terms(be);
    test_eem(be);
    test_edge_hard(be);
    test_sobel(be);
    test_aot_terms(be);
    test_aot_fd(be);
    hv_nn_backend_free(be);
    return hv_test_done();
}
