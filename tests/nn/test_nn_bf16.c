/*
 * test_nn_bf16.c: the CPU backend's bf16 inference precision
 * (hv_nn_backend_set_precision) against the reference backend in fp32, on
 * random data; and its refusals.
 *
 * Tolerances, from bf16's 8-bit significand (7 stored bits and the implicit
 * one): rounding to nearest changes a value by at most u = 2^-8 of itself.
 *
 *  - One convolution y = b + sum_k w_k x_k (K = Cin k^2 terms), bf16 x and w,
 *    fp32 bias and accumulation, bf16 output: each product w_k x_k becomes
 *    w_k x_k (1 + d1)(1 + d2), |d| <= u, so the sum moves by at most
 *    (2u + u^2) S with S = sum_k |w_k x_k| (computed here by the reference
 *    backend as |x| conv |w|); both fp32 accumulations (ours and the
 *    reference's) add at most K 2^-24 S each; the fused activation (ELU,
 *    1-Lipschitz) does not enlarge the difference, and rounding the output to
 *    bf16 adds u |y'| <= u (|y| + D) (a convolution whose output leaves the
 *    bf16 chains, as here, writes fp32; the bound covers both). Elementwise:
 *        |y_bf16 - y_ref| <= D + u (|y_ref| + D),  D = (2u + u^2 + 2K 2^-24) S.
 *    This bound is rigorous; it is checked on every element.
 *  - A chain of L convolutions (bf16 between them, in the blocked layout):
 *    per layer the output's relative error is that of a sum of products
 *    whose two factors each carry a relative error of at most u, plus the
 *    output's rounding; with products of random sign the relative rms of the
 *    sum equals that of its terms, so one layer adds at most sqrt(3) u
 *    (relative rms), and with Lipschitz-1 activations and weights of unit
 *    gain (1/sqrt(K) scaling) the layers add at most linearly:
 *        relative rms error <= L sqrt(3) u.
 *  - Silently fp32? fp32 alone differs from the reference by ~1e-7 relative
 *    rms; bf16 rounding by ~u/sqrt(3) per rounded operand. The test demands a
 *    relative rms error above u/16 (2.4e-4), which fp32 cannot reach, and
 *    also that the backend reports every convolution as bf16
 *    (hv_nn_graph_bf16_nodes) and the chain tensors as blocked bf16.
 *  - A convolution with fewer than HV_NN_BF16_MIN_COUT output channels (an
 *    output head) must run in fp32: no bf16 node, and fp32's error (< 1e-6).
 *  - Contextual attention (its two GEMMs as bf16 matmuls, the rest fp32):
 *    rounding a GEMM's operands to bf16 is a relative perturbation of at
 *    most u of each. No closed bound is useful here (the softmax at scale 10
 *    amplifies score changes by up to the scale), so the yardstick is
 *    measured in the same run: the fp32 reference's response when f and b
 *    (whose values are the operands' entries, but for the normalised patches
 *    and the attention weights) get a random relative perturbation of u each.
 *    The bf16 layer must stay within 4x that response (a swapped operand, a
 *    wrong stride or a stale buffer is an O(1) error), above u/16 (not
 *    silently fp32), with the node reported as bf16; and with
 *    hv__nn_cpu_set_ctx_attn_bf16(0) it must be fp32 (no bf16 node, < 1e-5).
 *
 * Needs avx512_bf16 or AMX: exit 77 (skip) where the CPU lacks them. With
 * --expect-unavailable (ctest runs it so under ONEDNN_MAX_CPU_ISA =
 * AVX512_CORE_VNNI, which hides bf16 from oneDNN) it checks instead that
 * asking for bf16 is refused with a message naming what is missing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/nn.h"
#include "hv_test.h"

#include "../../src/nn/nn_backend.h"

#define U (1.0 / 256.0) /* 2^-8 */

typedef struct conv_case {
    const char *name;
    int64_t n, cin, h, w, cout, k;
    int stride, pad, dil, elu;
} conv_case;

static float *rand_buf(hv_rng *r, size_t n, double scale)
{
    float *b = malloc(n * sizeof(float));
    for (size_t i = 0; b && i < n; i++) b[i] = (float)(scale * hv_rng_normal(r));
    return b;
}

static void fabs_buf(float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) b[i] = fabsf(b[i]);
}

/* y = [elu](conv(x, w, b)) on backend be (NULL bias: none); out: numel floats. */
static int run_conv(hv_nn_backend *be, const conv_case *c, const float *x, const float *w,
                    const float *b, float *out, int *bf16_nodes)
{
    hv_nn_graph *g = NULL;
    hv_nn_params *ps = NULL;
    hv_nn_param *pw = NULL, *pb = NULL;
    int ok = 0;
    const int64_t xs[4] = {c->n, c->cin, c->h, c->w}, ws[4] = {c->cout, c->cin, c->k, c->k};
    const int64_t bs[1] = {c->cout};
    if (hv_nn_graph_create(&g) || hv_nn_params_create(&ps) ||
        hv_nn_params_add(ps, "w", 4, ws, 1, &pw) || (b && hv_nn_params_add(ps, "b", 1, bs, 1, &pb)))
        goto done;
    memcpy(hv_nn_param_data(pw), w, (size_t)hv_nn_param_numel(pw) * sizeof(float));
    if (b) memcpy(hv_nn_param_data(pb), b, (size_t)c->cout * sizeof(float));
    hv_nn_tensor *tx = hv_nn_input(g, "x", 4, xs);
    hv_nn_tensor *y = hv_nn_conv2d(g, tx, hv_nn_param_tensor(g, pw), b ? hv_nn_param_tensor(g, pb) : NULL,
                                   c->stride, c->pad, c->dil);
    if (c->elu) y = hv_nn_elu(g, y, 1.0f);
    hv_nn_set_output(y);
    if (hv_nn_graph_plan(g, be, 0) || hv_nn_tensor_set(tx, x, (size_t)(c->n * c->cin * c->h * c->w)) ||
        hv_nn_graph_forward(g) || hv_nn_tensor_get(y, out, (size_t)hv_nn_tensor_numel(y)))
        goto done;
    if (bf16_nodes) *bf16_nodes = hv_nn_graph_bf16_nodes(g);
    ok = 1;
done:
    HV_CHECK(ok, "%s: conv graph failed: %s", c->name, hv_error_detail());
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
    return ok;
}

static int64_t out_size(int64_t in, const conv_case *c)
{
    return (in + 2 * c->pad - c->dil * (c->k - 1) - 1) / c->stride + 1;
}

static void check_conv(hv_nn_backend *bf, hv_nn_backend *ref, const conv_case *c, uint64_t seed)
{
    hv_rng r;
    hv_rng_seed(&r, 31, seed);
    const size_t nx = (size_t)(c->n * c->cin * c->h * c->w), nw = (size_t)(c->cout * c->cin * c->k * c->k);
    const size_t ny = (size_t)(c->n * c->cout * out_size(c->h, c) * out_size(c->w, c));
    const int64_t K = c->cin * c->k * c->k;
    float *x = rand_buf(&r, nx, 1.0), *w = rand_buf(&r, nw, 1.0 / sqrt((double)K));
    float *b = rand_buf(&r, (size_t)c->cout, 0.1);
    float *yb = malloc(ny * sizeof(float)), *yr = malloc(ny * sizeof(float)), *s = malloc(ny * sizeof(float));
    conv_case ca = *c;
    int nb = -1;
    if (!x || !w || !b || !yb || !yr || !s) {
        HV_CHECK(0, "out of memory");
        goto done;
    }
    if (!run_conv(bf, c, x, w, b, yb, &nb) || !run_conv(ref, c, x, w, b, yr, NULL)) goto done;
    /* S = |x| conv |w|, no bias, no activation */
    fabs_buf(x, nx);
    fabs_buf(w, nw);
    ca.elu = 0;
    if (!run_conv(ref, &ca, x, w, NULL, s, NULL)) goto done;
    const double D1 = 2 * U + U * U + 2.0 * (double)K / 16777216.0;
    double worst = 0, num = 0, den = 0;
    size_t bad = 0;
    for (size_t i = 0; i < ny; i++) {
        const double d = fabs((double)yb[i] - yr[i]), D = D1 * s[i];
        const double bound = D + U * (fabs((double)yr[i]) + D) + 1e-30;
        if (d > bound) bad++;
        if (d / bound > worst) worst = d / bound;
        num += d * d;
        den += (double)yr[i] * yr[i];
    }
    const double rel = sqrt(num / den);
    printf("  %-28s bf16 convs %d, relative rms error %.2e, worst |diff| / bound %.3f\n", c->name, nb,
           rel, worst);
    if (c->cout < HV_NN_BF16_MIN_COUT) {
        /* an output head: fp32 through, so fp32's error, far inside the bound */
        HV_CHECK(nb == 0, "%s: the backend ran %d convolutions in bf16, not 0 (cout %lld < %d)",
                 c->name, nb, (long long)c->cout, HV_NN_BF16_MIN_COUT);
        HV_CHECK(rel < 1e-6, "%s: relative rms error %.2e is bf16's, not fp32's", c->name, rel);
        goto done;
    }
    HV_CHECK(nb == 1, "%s: the backend ran %d convolutions in bf16, not 1", c->name, nb);
    HV_CHECK(bad == 0, "%s: %zu of %zu elements beyond the bf16 bound (worst %.3f x the bound)",
             c->name, bad, ny, worst);
    HV_CHECK(rel > U / 16, "%s: relative rms error %.2e is fp32's, not bf16's (> %.2e expected)",
             c->name, rel, U / 16);
done:
    free(x);
    free(w);
    free(b);
    free(yb);
    free(yr);
    free(s);
}

/* A generator-like chain: L convolutions joined by fused ELUs (bf16 blocked
 * chains between them), the last without activation. probe: the input of
 * the last convolution (a chain tensor; nothing is placed after it, so it
 * still holds its value after forward). */
typedef struct chain_net {
    hv_nn_graph *g;
    hv_nn_params *ps;
    hv_nn_tensor *x, *y, *probe, *alias[8];
    int nalias;
} chain_net;

#define CHAIN_L 5

static int build_chain(chain_net *cn, hv_nn_backend *be, const float *xin)
{
    static const int64_t cfg[CHAIN_L][6] = {/* cin cout k stride pad dil */
                                            {3, 16, 5, 1, 2, 1},  {16, 32, 3, 2, 1, 1},
                                            {32, 64, 3, 1, 2, 2}, {64, 32, 3, 1, 1, 1},
                                            {32, 4, 3, 1, 1, 1}};
    hv_rng r;
    hv_rng_seed(&r, 47, 0);
    memset(cn, 0, sizeof *cn);
    if (hv_nn_graph_create(&cn->g) || hv_nn_params_create(&cn->ps)) return 0;
    const int64_t xs[4] = {2, 3, 64, 64};
    cn->x = hv_nn_input(cn->g, "x", 4, xs);
    hv_nn_tensor *y = cn->x;
    for (int l = 0; l < CHAIN_L; l++) {
        const int64_t *c = cfg[l], ws[4] = {c[1], c[0], c[2], c[2]}, bs[1] = {c[1]};
        char nw[16], nb[16];
        snprintf(nw, sizeof nw, "w%d", l);
        snprintf(nb, sizeof nb, "b%d", l);
        hv_nn_param *pw, *pb;
        if (hv_nn_params_add(cn->ps, nw, 4, ws, 1, &pw) || hv_nn_params_add(cn->ps, nb, 1, bs, 1, &pb))
            return 0;
        float *w = hv_nn_param_data(pw), *b = hv_nn_param_data(pb);
        const double sc = 1.0 / sqrt((double)(c[0] * c[2] * c[2]));
        for (int64_t i = 0; i < hv_nn_param_numel(pw); i++) w[i] = (float)(sc * hv_rng_normal(&r));
        for (int64_t i = 0; i < c[1]; i++) b[i] = (float)(0.1 * hv_rng_normal(&r));
        y = hv_nn_conv2d(cn->g, y, hv_nn_param_tensor(cn->g, pw), hv_nn_param_tensor(cn->g, pb),
                         (int)c[3], (int)c[4], (int)c[5]);
        if (l + 1 < CHAIN_L) {
            y = hv_nn_elu(cn->g, y, 1.0f);
            cn->alias[cn->nalias++] = y;
        }
    }
    cn->probe = cn->alias[cn->nalias - 1];
    cn->y = y;
    hv_nn_set_output(y);
    if (hv_nn_graph_plan(cn->g, be, 0)) return 0;
    return hv_nn_tensor_set(cn->x, xin, (size_t)hv_nn_tensor_numel(cn->x)) == HV_OK &&
           hv_nn_graph_forward(cn->g) == HV_OK;
}

static void free_chain(chain_net *cn)
{
    hv_nn_graph_free(cn->g);
    hv_nn_params_free(cn->ps);
}

static double rel_rms(const hv_nn_tensor *a, const hv_nn_tensor *b)
{
    size_t n = (size_t)hv_nn_tensor_numel(b);
    float *p = malloc(n * sizeof(float)), *q = malloc(n * sizeof(float));
    double num = 0, den = 0;
    if (p && q && hv_nn_tensor_get(a, p, n) == HV_OK && hv_nn_tensor_get(b, q, n) == HV_OK) {
        for (size_t i = 0; i < n; i++) {
            num += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
            den += (double)q[i] * q[i];
        }
    } else {
        num = INFINITY;
        den = 1;
    }
    free(p);
    free(q);
    return sqrt(num / den);
}

static void check_chain(hv_nn_backend *bf, hv_nn_backend *ref)
{
    hv_rng r;
    hv_rng_seed(&r, 53, 0);
    float *x = rand_buf(&r, 2 * 3 * 64 * 64, 1.0);
    chain_net cb, cr;
    int okb = x && build_chain(&cb, bf, x), okr = x && build_chain(&cr, ref, x);
    HV_CHECK(okb && okr, "chain: build/plan/forward failed: %s", hv_error_detail());
    if (okb && okr) {
        const int nb = hv_nn_graph_bf16_nodes(cb.g);
        int blocked = 0;
        for (int i = 0; i < cb.nalias; i++) blocked += cb.alias[i]->blk > 0 && cb.alias[i]->alias_of &&
                                                       cb.alias[i]->alias_of->bf16;
        const double eo = rel_rms(cb.y, cr.y), ep = rel_rms(cb.probe, cr.probe);
        const double bo = CHAIN_L * sqrt(3.0) * U, bp = (CHAIN_L - 1) * sqrt(3.0) * U;
        printf("  chain of %d convolutions: %d in bf16, %d of %d chain tensors blocked bf16 "
               "(blocks", CHAIN_L, nb, blocked, cb.nalias);
        for (int i = 0; i < cb.nalias; i++) printf(" %d", cb.alias[i]->blk);
        printf("); relative rms error: output %.2e (bound %.2e), last chain tensor %.2e "
               "(bound %.2e)\n", eo, bo, ep, bp);
        HV_CHECK(nb == CHAIN_L, "chain: %d of %d convolutions ran in bf16", nb, CHAIN_L);
        HV_CHECK(blocked == cb.nalias, "chain: %d of %d chain tensors kept blocked bf16", blocked,
                 cb.nalias);
        HV_CHECK(eo < bo, "chain: output relative rms error %.3g beyond %.3g", eo, bo);
        HV_CHECK(ep < bp, "chain: chain tensor (read back as plain fp32) error %.3g beyond %.3g", ep,
                 bp);
        HV_CHECK(eo > U / 16, "chain: output error %.3g is fp32's, not bf16's", eo);
    }
    if (okb || cb.g) free_chain(&cb);
    if (okr || cr.g) free_chain(&cr);
    free(x);
}

/* Contextual attention's output on backend be for inputs f, b and mask m
 * (n x c x h x w, masks n x 1 x h x w), into out; *nb its bf16 nodes. */
static int run_ca(hv_nn_backend *be, const int64_t *sh, const float *f, const float *b,
                  const float *m, float *out, int *nb)
{
    hv_nn_graph *g = NULL;
    const int64_t ms[4] = {sh[0], 1, sh[2], sh[3]};
    const size_t n = (size_t)(sh[0] * sh[1] * sh[2] * sh[3]);
    int ok = 0;
    if (hv_nn_graph_create(&g) != HV_OK) return 0;
    hv_nn_tensor *tf = hv_nn_input(g, "f", 4, sh), *tb = hv_nn_input(g, "b", 4, sh);
    hv_nn_tensor *tm = hv_nn_input(g, "m", 4, ms);
    hv_nn_ctx_attn_opts o = {3, 2, 3, 10.0f};
    hv_nn_tensor *y = hv_nn_ctx_attn(g, tf, tb, tm, &o);
    hv_nn_set_output(y);
    if (hv_nn_graph_plan(g, be, 0) == HV_OK && hv_nn_tensor_set(tf, f, n) == HV_OK &&
        hv_nn_tensor_set(tb, b, n) == HV_OK &&
        hv_nn_tensor_set(tm, m, (size_t)(sh[0] * sh[2] * sh[3])) == HV_OK &&
        hv_nn_graph_forward(g) == HV_OK && hv_nn_tensor_get(y, out, n) == HV_OK) {
        *nb = hv_nn_graph_bf16_nodes(g);
        ok = 1;
    }
    hv_nn_graph_free(g);
    return ok;
}

static double rel_rms_buf(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static void check_ctx_attn(hv_nn_backend *bf, hv_nn_backend *ref)
{
    /* the generator's layer at a quarter of its width and size: 2 items, 16
     * channels, 32 x 32 (L = 256 patches); a masked band per item */
    const int64_t sh[4] = {2, 16, 32, 32};
    const size_t n = 2 * 16 * 32 * 32, nm = 2 * 32 * 32;
    hv_rng r;
    hv_rng_seed(&r, 71, 0);
    float *f = rand_buf(&r, n, 1.0), *b = rand_buf(&r, n, 1.0), *m = calloc(nm, sizeof(float));
    float *fp = malloc(n * sizeof(float)), *bp = malloc(n * sizeof(float));
    float *y_ref = malloc(n * sizeof(float)), *y_pert = malloc(n * sizeof(float));
    float *y_bf = malloc(n * sizeof(float)), *y_off = malloc(n * sizeof(float));
    int ok = f && b && m && fp && bp && y_ref && y_pert && y_bf && y_off;
    HV_CHECK(ok, "ctx_attn: out of memory");
    for (int64_t i = 0; ok && i < 2; i++)
        for (int64_t y = 10 + 4 * i; y < 18 + 4 * i; y++)
            for (int64_t x = 0; x < 32; x++) m[(i * 32 + y) * 32 + x] = 1.0f;
    for (size_t i = 0; ok && i < n; i++) {
        fp[i] = f[i] * (float)(1.0 + U * (2.0 * hv_rng_uniform(&r) - 1.0));
        bp[i] = b[i] * (float)(1.0 + U * (2.0 * hv_rng_uniform(&r) - 1.0));
    }
    int nb_ref = -1, nb_pert = -1, nb_bf = -1, nb_off = -1;
    ok = ok && run_ca(ref, sh, f, b, m, y_ref, &nb_ref) && run_ca(ref, sh, fp, bp, m, y_pert, &nb_pert) &&
         run_ca(bf, sh, f, b, m, y_bf, &nb_bf);
    hv__nn_cpu_set_ctx_attn_bf16(0);
    ok = ok && run_ca(bf, sh, f, b, m, y_off, &nb_off);
    hv__nn_cpu_set_ctx_attn_bf16(1);
    HV_CHECK(ok, "ctx_attn: build/plan/forward failed: %s", hv_error_detail());
    if (ok) {
        const double e_pert = rel_rms_buf(y_pert, y_ref, n), e_bf = rel_rms_buf(y_bf, y_ref, n);
        const double e_off = rel_rms_buf(y_off, y_ref, n);
        printf("  contextual attention 2x16x32x32: relative rms error bf16 GEMMs %.2e (%d bf16 "
               "node), fp32 GEMMs %.2e (%d); the fp32 reference's response to a relative "
               "perturbation of u: %.2e\n", e_bf, nb_bf, e_off, nb_off, e_pert);
        HV_CHECK(nb_bf == 1, "ctx_attn: %d bf16 nodes, 1 expected", nb_bf);
        HV_CHECK(e_bf < 4 * e_pert, "ctx_attn: bf16 error %.3g beyond 4x the perturbation's %.3g",
                 e_bf, e_pert);
        HV_CHECK(e_bf > U / 16, "ctx_attn: bf16 error %.3g is fp32's, not bf16's", e_bf);
        HV_CHECK(nb_off == 0 && e_off < 1e-5, "ctx_attn with fp32 GEMMs: %d bf16 nodes, error %.3g",
                 nb_off, e_off);
    }
    free(f);
    free(b);
    free(m);
    free(fp);
    free(bp);
    free(y_ref);
    free(y_pert);
    free(y_bf);
    free(y_off);
}

/* bf16 only for inference: a graph with gradients is refused at plan time. */
static void check_refusals(hv_nn_backend *bf)
{
    static const unsigned flags[2] = {HV_NN_PLAN_TRAIN, HV_NN_PLAN_GRAD};
    static const char *const names[2] = {"HV_NN_PLAN_TRAIN", "HV_NN_PLAN_GRAD"};
    for (int f = 0; f < 2; f++) {
        hv_nn_graph *g = NULL;
        hv_nn_params *ps = NULL;
        hv_nn_param *pw = NULL;
        const int64_t xs[4] = {1, 16, 8, 8}, ws[4] = {16, 16, 3, 3};
        HV_CHECK_OK(hv_nn_graph_create(&g));
        HV_CHECK_OK(hv_nn_params_create(&ps));
        HV_CHECK_OK(hv_nn_params_add(ps, "w", 4, ws, 1, &pw));
        hv_nn_tensor *x = hv_nn_input(g, "x", 4, xs);
        hv_nn_tensor *loss = hv_nn_sum(g, hv_nn_conv2d(g, x, hv_nn_param_tensor(g, pw), NULL, 1, 1, 1));
        hv_nn_set_output(loss);
        hv_status st = hv_nn_graph_plan(g, bf, flags[f]);
        const char *msg = hv_error_detail();
        printf("  plan with %s on a bf16 backend: status %d, \"%s\"\n", names[f], (int)st, msg);
        HV_CHECK(st == HV_ERR_UNSUPPORTED, "%s on a bf16 backend: status %d, not HV_ERR_UNSUPPORTED",
                 names[f], (int)st);
        HV_CHECK(strstr(msg, "bf16") && strstr(msg, "inference"),
                 "%s: the message does not say why: %s", names[f], msg);
        HV_CHECK(hv_nn_graph_forward(g) != HV_OK, "%s: the refused graph ran", names[f]);
        hv_nn_graph_free(g);
        hv_nn_params_free(ps);
    }
}

static void check_api(void)
{
    hv_nn_precision p = HV_NN_BF16;
    HV_CHECK(hv_nn_precision_parse("fp32", &p) == HV_OK && p == HV_NN_FP32, "parse fp32");
    HV_CHECK(hv_nn_precision_parse("bf16", &p) == HV_OK && p == HV_NN_BF16, "parse bf16");
    HV_CHECK(hv_nn_precision_parse("BF16", &p) == HV_ERR_ARG, "parse is exact");
    HV_CHECK(hv_nn_precision_parse("fp16", &p) == HV_ERR_ARG, "fp16 refused");
    HV_CHECK(!strcmp(hv_nn_precision_name(HV_NN_BF16), "bf16"), "name bf16");
    hv_nn_backend *ref = NULL;
    HV_CHECK_OK(hv_nn_backend_create_ref(&ref));
    hv_status st = hv_nn_backend_set_precision(ref, HV_NN_BF16);
    HV_CHECK(st == HV_ERR_UNSUPPORTED && strstr(hv_error_detail(), "ref"),
             "the ref backend accepted bf16 (status %d: %s)", (int)st, hv_error_detail());
    HV_CHECK(hv_nn_backend_precision(ref) == HV_NN_FP32, "a refused precision changed the backend");
    HV_CHECK(hv_nn_backend_set_precision(ref, (hv_nn_precision)42) == HV_ERR_ARG, "precision 42");
    HV_CHECK_OK(hv_nn_backend_set_precision(ref, HV_NN_FP32));
    hv_nn_backend_free(ref);
}

int main(int argc, char **argv)
{
    const int expect_unavailable = argc > 1 && !strcmp(argv[1], "--expect-unavailable");
    check_api();
    hv_nn_backend *bf = NULL, *ref = NULL;
    HV_REQUIRE(hv_nn_backend_create_cpu(&bf) == HV_OK && hv_nn_backend_create_ref(&ref) == HV_OK,
               "backends: %s", hv_error_detail());
    hv_status st = hv_nn_backend_set_precision(bf, HV_NN_BF16);
    if (expect_unavailable) {
        const char *msg = hv_error_detail();
        printf("  bf16 with oneDNN's ISA capped: status %d, \"%s\"\n", (int)st, msg);
        HV_CHECK(st == HV_ERR_UNSUPPORTED, "bf16 accepted without avx512_bf16 (status %d)", (int)st);
        HV_CHECK(strstr(msg, "avx512_bf16") != NULL, "the message does not say what is missing: %s",
                 msg);
        HV_CHECK(hv_nn_backend_precision(bf) == HV_NN_FP32, "the refused precision was kept");
    } else if (st != HV_OK) {
        char why[512];
        snprintf(why, sizeof why, "bf16 unavailable here: %s", hv_error_detail());
        hv_nn_backend_free(bf);
        hv_nn_backend_free(ref);
        return hv_test_skip(why);
    } else {
        HV_CHECK(hv_nn_backend_precision(bf) == HV_NN_BF16, "precision not kept");
        static const conv_case cases[] = {
            {"3x3 16->32", 2, 16, 20, 24, 32, 3, 1, 1, 1, 0},
            {"3x3 32->32 ELU", 1, 32, 16, 16, 32, 3, 1, 1, 1, 1},
            {"5x5 3->16 ELU (cin 3)", 2, 3, 24, 24, 16, 5, 1, 2, 1, 1},
            {"3x3 stride 2", 2, 16, 24, 24, 32, 3, 2, 1, 1, 1},
            {"3x3 dilation 4", 1, 32, 24, 24, 32, 3, 1, 4, 4, 1},
            {"3x3 64->4 (cout 4)", 2, 64, 16, 16, 4, 3, 1, 1, 1, 0},
            {"3x3 64->1 (cout 1: a head, fp32)", 2, 64, 16, 16, 1, 3, 1, 1, 1, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(bf, ref, &cases[i], i);
        check_chain(bf, ref);
        check_ctx_attn(bf, ref);
        check_refusals(bf);
    }
    hv_nn_backend_free(bf);
    hv_nn_backend_free(ref);
    return hv_test_done();
}
