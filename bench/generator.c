/*
 * bench/generator.c: how fast the reference generator runs on our engine,
 * against ceilings and PyTorch measured in the same run.
 *
 * Prints, for batch 1 and 8 (256x256 slices, cnum 16, inference graph on the
 * "cpu" backend):
 *   - median seconds per slice over --reps runs, and the GFLOP/s that means
 *     (FLOPs counted from the graph: convolutions, linear, attention);
 *   - the ceilings measured in this run: sgemm (2048^3: oneDNN's, the one our
 *     GEMMs run on, and OpenBLAS' as a peer) and a large
 *     3x3 oneDNN convolution (64->64 channels, 8x128x128, blocked layouts, no
 *     reorders), as GFLOP/s, and our fraction of each (design.md: the sgemm
 *     ceiling is pinned to AVX2 here, so the convolution is the fair one);
 *   - PyTorch's seconds per slice (scripts/bench_generator_torch.py with
 *     Debian's python3-torch, when present) and our speed-up over it;
 *     --python PATH (up to 4 times) names the interpreters to measure, each
 *     printed with its torch version (default /usr/bin/python3; a venv with
 *     the current PyPI release is the stronger peer issue 12 asks for).
 * Also a per-op profile of one batch-1 forward, and one training step at
 * batch 4 (--no-train skips it): the generator in training mode with the
 * three PatchGAN discriminators of spec 5.4 (G step: G forward, D1-D3 on the
 * fake outputs, BCE + L1 + Dice losses, backward through D and G, Adam on G;
 * D step: each discriminator on the 4 fake and 4 real images as one batch of
 * 8, BCE, backward, Adam), median seconds per step.
 *
 * --precision bf16 adds, after each batch's fp32 line, the same generator
 * (same weights, inputs and threads) on a bf16 backend
 * (hv_nn_backend_set_precision): its seconds per slice, how many of the
 * nodes ran in bf16 (convolutions, and contextual attention's GEMMs), its
 * speed as a multiple of the fp32 run just before it, and the largest absolute difference of its outputs x_stage2
 * (in [-1, 1]) and fine_seg (a probability) from the fp32 ones; and its
 * profile. On a CPU without avx512_bf16/AMX it stops with the backend's
 * message before measuring anything.
 *
 * Usage: generator [--threads N] [--reps N] [--precision fp32|bf16] [--no-torch] [--no-train]
 *        [--python PATH]...
 * The thread count applies to OpenMP (our kernels, oneDNN, OpenBLAS'
 * pthreads via openblas_set_num_threads) and to PyTorch.
 *
 * CPU time: each timed line also has a "cpu" twin, the same measurement in
 * the process's CPU seconds (CLOCK_PROCESS_CPUTIME_ID, every thread
 * summed) instead of wall seconds: GFLOP per CPU-second, and ours as a
 * fraction of the convolution ceiling's. On a machine shared with other
 * jobs the wall times follow the others' load (the ceiling, measured once
 * at the start, and the generator, seconds later, see different loads: the
 * wall ratio scattered 0.3-1.7 at load 5-8), while a descheduled thread
 * accrues no CPU time, so the CPU-time ratio is the steadier comparison
 * there (with passive waiting; spinning waits count as CPU time).
 *
 * OpenMP wait policy: taken from the environment and printed (PyTorch
 * inherits it). On a quiet machine the default (spin, then sleep) is fastest
 * (batch 1: 0.083 s vs 0.138 s passive); when other processes share the cores,
 * spinning workers steal them from OpenBLAS' threads and from each other and
 * OMP_WAIT_POLICY=passive was 3-5x faster. results/bench-generator.txt has
 * both.
 */
#include <math.h>
#include <omp.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include "hv/core.h"
#include "hv/model.h"
#include "hv/nn.h"

void openblas_set_num_threads(int num_threads);

/* The process's CPU seconds (all threads). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* GFLOP/s of a 2048^3 sgemm: oneDNN's (dnnl = 1) or OpenBLAS' */
static void sgemm_once(int dnnl, int n, const float *a, const float *b, float *c)
{
    if (dnnl)
        dnnl_sgemm('N', 'N', n, n, n, 1, a, n, b, n, 0, c, n);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
}

static double sgemm_gflops(int reps, int dnnl)
{
    const int n = 2048;
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float));
    float *c = malloc((size_t)n * n * sizeof(float));
    double t[16];
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    sgemm_once(dnnl, n, a, b, c);
    for (int r = 0; r < reps; r++) {
        double t0 = hv_time_now();
        sgemm_once(dnnl, n, a, b, c);
        t[r] = hv_time_now() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / median(t, reps) / 1e9;
}

#define CK(x)                                                                      \
    do {                                                                           \
        if ((x) != dnnl_success) {                                                 \
            fprintf(stderr, "oneDNN call failed: %s\n", #x);                       \
            return 0;                                                              \
        }                                                                          \
    } while (0)

/* A large 3x3 convolution in oneDNN's preferred layouts: the convolution
 * ceiling of this machine and library. */
static double conv_gflops(int reps, double *cpu_gflops)
{
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    const int64_t n = 8, c = 64, h = 128;
    dnnl_dims_t xs = {n, c, h, h}, ws = {c, c, 3, 3}, st = {1, 1}, pd = {1, 1}, dl = {0, 0};
    dnnl_memory_desc_t x, w, y;
    CK(dnnl_memory_desc_init_by_tag(&x, 4, xs, dnnl_f32, dnnl_format_tag_any));
    CK(dnnl_memory_desc_init_by_tag(&w, 4, ws, dnnl_f32, dnnl_format_tag_any));
    CK(dnnl_memory_desc_init_by_tag(&y, 4, xs, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t d;
    CK(dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct,
                                                  &x, &w, NULL, &y, st, dl, pd, pd));
    dnnl_primitive_desc_t p;
    CK(dnnl_primitive_desc_create(&p, &d, NULL, eng, NULL));
    dnnl_primitive_t prim;
    CK(dnnl_primitive_create(&prim, p));
    dnnl_memory_t mx, mw, my;
    CK(dnnl_memory_create(&mx, dnnl_primitive_desc_query_md(p, dnnl_query_src_md, 0), eng, DNNL_MEMORY_ALLOCATE));
    CK(dnnl_memory_create(&mw, dnnl_primitive_desc_query_md(p, dnnl_query_weights_md, 0), eng, DNNL_MEMORY_ALLOCATE));
    CK(dnnl_memory_create(&my, dnnl_primitive_desc_query_md(p, dnnl_query_dst_md, 0), eng, DNNL_MEMORY_ALLOCATE));
    void *hx, *hw;
    CK(dnnl_memory_get_data_handle(mx, &hx));
    CK(dnnl_memory_get_data_handle(mw, &hw));
    memset(hx, 0, (size_t)(n * c * h * h) * sizeof(float));
    memset(hw, 0, (size_t)(c * c * 9) * sizeof(float));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
    double t[16], tc[16];
    CK(dnnl_primitive_execute(prim, strm, 3, args));
    CK(dnnl_stream_wait(strm));
    for (int r = 0; r < reps; r++) {
        double t0 = hv_time_now(), c0 = cpu_now();
        CK(dnnl_primitive_execute(prim, strm, 3, args));
        CK(dnnl_stream_wait(strm));
        t[r] = hv_time_now() - t0;
        tc[r] = cpu_now() - c0;
    }
    dnnl_memory_destroy(mx);
    dnnl_memory_destroy(mw);
    dnnl_memory_destroy(my);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(p);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    const double flop = 2.0 * (double)(n * c * h * h) * (double)(c * 9);
    *cpu_gflops = flop / median(tc, reps) / 1e9;
    return flop / median(t, reps) / 1e9;
}

typedef struct gen_run {
    double s_per_slice, cpu_s_per_slice, gflop_per_slice;
    int bf16_nodes;
    float *xs2, *fseg; /* the outputs x_stage2 and fine_seg (malloc'd, caller frees) */
    char profile[2048];
} gen_run;

static int run_generator(hv_nn_params *ps, int batch, int reps, hv_nn_precision prec, gen_run *out)
{
    hv_nn_backend *be = NULL;
    hv_nn_graph *g = NULL;
    hv_model_generator_io io;
    int ok = 0;
    const size_t n = (size_t)batch * 256 * 256;
    float *x = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float));
    float *c = malloc(n * sizeof(float)), *q = malloc(n * sizeof(float));
    hv_rng r;
    memset(out, 0, sizeof *out);
    hv_rng_seed(&r, 11, (uint64_t)batch);
    if (!x || !m || !c || !q) goto done;
    for (size_t i = 0; i < n; i++) {
        int row = (int)((i / 256) % 256);
        m[i] = (row >= 108 && row < 148) ? 1.0f : 0.0f;
        x[i] = m[i] ? -1.0f : (float)hv_rng_range(&r, -1, 1);
        c[i] = (float)hv_rng_uniform(&r);
        q[i] = 0.3f;
    }
    out->xs2 = malloc(n * sizeof(float));
    out->fseg = malloc(n * sizeof(float));
    if (!out->xs2 || !out->fseg) goto done;
    if (hv_nn_backend_create_cpu(&be) || hv_nn_backend_set_precision(be, prec) ||
        hv_nn_graph_create(&g) || hv_model_generator_build(g, ps, 16, batch, 256, 256, &io) ||
        hv_nn_graph_plan(g, be, 0) ||
        hv_nn_tensor_set(io.x, x, n) || hv_nn_tensor_set(io.mask, m, n) ||
        hv_nn_tensor_set(io.cam, c, n) || hv_nn_tensor_set(io.ratio, q, n) ||
        hv_nn_graph_forward(g)) {
        fprintf(stderr, "generator: %s\n", hv_error_detail());
        goto done;
    }
    double t[64], tc[64];
    for (int k = 0; k < reps; k++) {
        double t0 = hv_time_now(), c0 = cpu_now();
        if (hv_nn_graph_forward(g)) goto done;
        t[k] = (hv_time_now() - t0) / batch;
        tc[k] = (cpu_now() - c0) / batch;
    }
    out->s_per_slice = median(t, reps);
    out->cpu_s_per_slice = median(tc, reps);
    out->gflop_per_slice = hv_nn_graph_flops(g) / batch / 1e9;
    out->bf16_nodes = hv_nn_graph_bf16_nodes(g);
    if (hv_nn_tensor_get(io.x_stage2, out->xs2, n) || hv_nn_tensor_get(io.fine_seg, out->fseg, n))
        goto done;
    hv_nn_graph_set_profiling(g, 1);
    if (hv_nn_graph_forward(g)) goto done;
    hv_nn_graph_profile_report(g, out->profile, sizeof out->profile);
    ok = 1;
done:
    if (!ok) {
        free(out->xs2);
        free(out->fseg);
        out->xs2 = out->fseg = NULL;
    }
    free(x);
    free(m);
    free(c);
    free(q);
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
    return ok;
}

/* ---------------------------------------------------------- training step */

static double train_step_seconds(hv_nn_params *gps, int reps)
{
    const int nb = 4;
    const int64_t sh[4] = {nb, 1, 256, 256}, sh8[4] = {2 * nb, 1, 256, 256};
    hv_nn_params *dps[3] = {NULL, NULL, NULL};
    hv_nn_adam *ga = NULL, *da[3] = {NULL, NULL, NULL};
    hv_nn_graph *gg = NULL, *dg[3] = {NULL, NULL, NULL};
    hv_nn_backend *be = NULL;
    hv_model_generator_io io;
    hv_nn_tensor *dx[3], *dt[3], *dloss[3], *gloss = NULL, *real, *tgt, *loc, *ones[3];
    double result = -1, t[16];
    float *buf = NULL, *buf8 = NULL;
    hv_rng r;
    hv_rng_seed(&r, 5, 0);
    const size_t n = (size_t)nb * 256 * 256;
    if (hv_nn_backend_create_cpu(&be) || hv_nn_adam_create(gps, 2e-4, 0.5, 0.999, 1e-8, &ga))
        goto done;
    for (int k = 0; k < 3; k++) {
        if (hv_nn_params_create(&dps[k]) || hv_model_patchgan_params(dps[k], "", 1, &r) ||
            hv_nn_adam_create(dps[k], 2e-4, 0.5, 0.999, 1e-8, &da[k]))
            goto done;
    }
    /* G step graph */
    if (hv_nn_graph_create(&gg) || hv_model_generator_build(gg, gps, 16, nb, 256, 256, &io)) goto done;
    real = hv_nn_input(gg, "real", 4, sh);
    tgt = hv_nn_input(gg, "target_mask", 4, sh);
    loc = hv_nn_input(gg, "local_mask", 4, sh);
    hv_nn_tensor *fake_in[3] = {io.x_stage2, io.fine_seg, hv_nn_mul(gg, io.x_stage2, loc)};
    hv_nn_tensor *lg = NULL;
    for (int k = 0; k < 3; k++) {
        hv_nn_tensor *o = hv_model_patchgan_build(gg, dps[k], "", fake_in[k]);
        int64_t os[HV_NN_MAX_DIMS];
        hv_nn_tensor_shape(o, os);
        ones[k] = hv_nn_input(gg, "ones", 4, os);
        hv_nn_tensor *l = hv_nn_bce_logits(gg, o, ones[k]);
        lg = lg ? hv_nn_add(gg, lg, l) : l;
    }
    hv_nn_tensor *l1 = hv_nn_scale(gg, hv_nn_l1(gg, io.x_stage2, real), 100.0f, 0.0f);
    hv_nn_tensor *dice = hv_nn_scale(gg, hv_nn_dice(gg, io.fine_seg, tgt), -15.0f, 15.0f);
    gloss = hv_nn_add(gg, hv_nn_add(gg, hv_nn_scale(gg, lg, 1.0f / 6.0f, 0.0f), l1), dice);
    if (hv_nn_graph_plan(gg, be, HV_NN_PLAN_TRAIN)) goto done;
    /* D step graphs: fake and real as one batch of 8 */
    for (int k = 0; k < 3; k++) {
        if (hv_nn_graph_create(&dg[k])) goto done;
        dx[k] = hv_nn_input(dg[k], "x", 4, sh8);
        hv_nn_tensor *o = hv_model_patchgan_build(dg[k], dps[k], "", dx[k]);
        int64_t os[HV_NN_MAX_DIMS];
        hv_nn_tensor_shape(o, os);
        dt[k] = hv_nn_input(dg[k], "labels", 4, os);
        dloss[k] = hv_nn_bce_logits(dg[k], o, dt[k]);
        if (hv_nn_graph_plan(dg[k], be, HV_NN_PLAN_TRAIN)) goto done;
    }
    buf = malloc(n * sizeof(float));
    buf8 = malloc(2 * n * sizeof(float));
    if (!buf || !buf8) goto done;
    hv_nn_tensor *ins[7] = {io.x, io.mask, io.cam, io.ratio, real, tgt, loc};
    for (int k = 0; k < 7; k++) {
        for (size_t i = 0; i < n; i++) buf[i] = (float)hv_rng_uniform(&r);
        if (hv_nn_tensor_set(ins[k], buf, n)) goto done;
    }
    for (int k = 0; k < 3; k++) {
        size_t no = (size_t)hv_nn_tensor_numel(ones[k]);
        for (size_t i = 0; i < no; i++) buf8[i] = 1.0f;
        if (hv_nn_tensor_set(ones[k], buf8, no)) goto done;
        size_t nl = (size_t)hv_nn_tensor_numel(dt[k]);
        for (size_t i = 0; i < nl; i++) buf8[i] = i < nl / 2 ? 0.0f : 1.0f;
        if (hv_nn_tensor_set(dt[k], buf8, nl)) goto done;
    }
    for (int rep = 0; rep <= reps; rep++) {
        double t0 = hv_time_now();
        hv_nn_graph_set_profiling(gg, rep == reps);
        hv_nn_params_zero_grad(gps);
        if (hv_nn_graph_forward(gg) || hv_nn_graph_backward(gg, gloss) || hv_nn_adam_step(ga))
            goto done;
        hv_nn_tensor *fk[3] = {io.x_stage2, io.fine_seg, io.x_stage2};
        for (int k = 0; k < 3; k++) {
            if (hv_nn_tensor_get(fk[k], buf8, n) || hv_nn_tensor_get(real, buf8 + n, n)) goto done;
            hv_nn_params_zero_grad(dps[k]);
            if (hv_nn_tensor_set(dx[k], buf8, 2 * n) || hv_nn_graph_forward(dg[k]) ||
                hv_nn_graph_backward(dg[k], dloss[k]) || hv_nn_adam_step(da[k]))
                goto done;
        }
        if (rep) t[rep - 1] = hv_time_now() - t0;
    }
    result = median(t, reps);
    char prof[2048];
    hv_nn_graph_profile_report(gg, prof, sizeof prof);
    printf("profile of one G step (generator + discriminators on fakes), batch 4:\n%s", prof);
done:
    if (result < 0) fprintf(stderr, "training step: %s\n", hv_error_detail());
    free(buf);
    free(buf8);
    hv_nn_graph_free(gg);
    for (int k = 0; k < 3; k++) {
        hv_nn_graph_free(dg[k]);
        hv_nn_adam_free(da[k]);
        hv_nn_params_free(dps[k]);
    }
    hv_nn_adam_free(ga);
    hv_nn_backend_free(be);
    return result;
}

/* Runs the PyTorch script under interpreter py; fills sec[batch index] (0
 * when unavailable). */
static void run_torch(const char *py, int threads, int reps, const int *batches, int nb, double *sec)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s/scripts/bench_generator_torch.py %d %d %d %d 2>/dev/null", py,
             HV_SOURCE_DIR, threads, reps, batches[0], batches[1]);
    for (int i = 0; i < nb; i++) sec[i] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return;
    char line[256];
    while (fgets(line, sizeof line, p)) {
        int b;
        double s;
        if (sscanf(line, "torch batch %d seconds_per_slice %lf", &b, &s) == 2)
            for (int i = 0; i < nb; i++)
                if (batches[i] == b) sec[i] = s;
    }
    pclose(p);
}

/* The torch version interpreter py imports into ver ("" when it cannot). */
static void torch_version(const char *py, char *ver, size_t n)
{
    char cmd[1200];
    ver[0] = 0;
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch; print(torch.__version__)' 2>/dev/null", py);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(ver, (int)n, p)) ver[strcspn(ver, "\n")] = 0;
    else ver[0] = 0;
    pclose(p);
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 5, torch = 1, train = 1, npy = 0;
    hv_nn_precision prec = HV_NN_FP32;
    const char *pys[4];
    char vers[4][64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch"))
            torch = 0;
        else if (!strcmp(argv[i], "--no-train"))
            train = 0;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc &&
                 hv_nn_precision_parse(argv[i + 1], &prec) == HV_OK)
            i++;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc && npy < 4 &&
                 strlen(argv[i + 1]) < 1000 && !strchr(argv[i + 1], '\''))
            pys[npy++] = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--reps N] [--precision fp32|bf16] [--no-torch] "
                    "[--no-train] [--python PATH (at most 4)]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || reps > 15) {
        fprintf(stderr, "bad --threads or --reps (1..15)\n");
        return 2;
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    if (prec != HV_NN_FP32) { /* refused before anything is measured */
        hv_nn_backend *be = NULL;
        hv_status st = hv_nn_backend_create_cpu(&be);
        if (st == HV_OK) st = hv_nn_backend_set_precision(be, prec);
        hv_nn_backend_free(be);
        if (st != HV_OK) {
            fprintf(stderr, "--precision %s: %s\n", hv_nn_precision_name(prec), hv_error_detail());
            return 1;
        }
    }

    hv_nn_params *ps = NULL;
    hv_rng r;
    hv_rng_seed(&r, 2025, 0);
    if (hv_nn_params_create(&ps) || hv_model_generator_params(ps, 16, &r) ||
        hv_model_generator_sn_warmup(ps, 3)) {
        fprintf(stderr, "generator params: %s\n", hv_error_detail());
        return 1;
    }
    printf("healthivert %s (%s), bench/generator: reference generator, cnum 16, 256x256, "
           "%lld parameters, %d threads, median of %d, OMP_WAIT_POLICY=%s\n",
           hv_version(), hv_git_revision(), (long long)hv_nn_params_numel(ps, 1), threads, reps,
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset (default)");
    double conv_cpu = 0, gemm_ob = sgemm_gflops(reps, 0), gemm = sgemm_gflops(reps, 1);
    double conv = conv_gflops(reps, &conv_cpu);
    printf("peer     OpenBLAS sgemm 2048^3          %8.1f GFLOP/s\n", gemm_ob);
    printf("ceiling  oneDNN sgemm 2048^3            %8.1f GFLOP/s\n", gemm);
    printf("ceiling  oneDNN conv3x3 64->64 8x128^2  %8.1f GFLOP/s\n", conv);
    printf("cpu      oneDNN conv3x3 64->64 8x128^2  %8.1f GFLOP per CPU-second\n", conv_cpu);
    const int batches[2] = {1, 8};
    double tsec[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    if (!npy) pys[npy++] = "/usr/bin/python3";
    for (int k = 0; torch && k < npy; k++) {
        torch_version(pys[k], vers[k], sizeof vers[k]);
        if (vers[k][0]) {
            printf("pytorch  peer %d: %s, torch %s\n", k + 1, pys[k], vers[k]);
            run_torch(pys[k], threads, reps, batches, 2, tsec[k]);
        } else {
            printf("pytorch  peer %d missing: %s cannot import torch; no ratio\n", k + 1, pys[k]);
        }
    }
    char profile[2048] = "", profile_b[2048] = "";
    for (int i = 0; i < 2; i++) {
        gen_run gr, gb;
        if (!run_generator(ps, batches[i], reps, HV_NN_FP32, &gr)) {
            hv_nn_params_free(ps);
            return 1;
        }
        double gf = gr.gflop_per_slice / gr.s_per_slice;
        printf("ours     batch %d: %.4f s/slice, %.2f GFLOP/slice, %.1f GFLOP/s = %.2f of the conv "
               "ceiling, %.2f of sgemm; floor at the conv ceiling %.4f s\n",
               batches[i], gr.s_per_slice, gr.gflop_per_slice, gf, gf / conv, gf / gemm,
               gr.gflop_per_slice / conv);
        printf("cpu      batch %d: %.4f CPU-s/slice, %.1f GFLOP per CPU-second = %.2f of the conv "
               "ceiling's\n", batches[i], gr.cpu_s_per_slice,
               gr.gflop_per_slice / gr.cpu_s_per_slice,
               gr.gflop_per_slice / gr.cpu_s_per_slice / conv_cpu);
        for (int k = 0; torch && k < npy; k++) {
            if (!vers[k][0]) continue;
            if (tsec[k][i] > 0)
                printf("pytorch  batch %d: %.4f s/slice (%.1f GFLOP/s, torch %s); ours is %.2fx "
                       "faster\n", batches[i], tsec[k][i], gr.gflop_per_slice / tsec[k][i], vers[k],
                       tsec[k][i] / gr.s_per_slice);
            else
                printf("pytorch  batch %d: the peer script failed under %s\n", batches[i], pys[k]);
        }
        if (i == 0) snprintf(profile, sizeof profile, "%s", gr.profile);
        if (prec != HV_NN_FP32) {
            /* the same weights and inputs; the same thread count, right after */
            if (!run_generator(ps, batches[i], reps, prec, &gb)) {
                free(gr.xs2);
                free(gr.fseg);
                hv_nn_params_free(ps);
                return 1;
            }
            const size_t n = (size_t)batches[i] * 256 * 256;
            double dx = 0, ds = 0;
            for (size_t j = 0; j < n; j++) {
                double a = fabs((double)gb.xs2[j] - gr.xs2[j]), b = fabs((double)gb.fseg[j] - gr.fseg[j]);
                if (a > dx) dx = a;
                if (b > ds) ds = b;
            }
            gf = gb.gflop_per_slice / gb.s_per_slice;
            printf("%-8s batch %d: %.4f s/slice, %.1f GFLOP/s, %d nodes in %s (convolutions, contextual "
                   "attention); %.2fx the "
                   "fp32 speed; max |diff| to fp32: x_stage2 %.4f, fine_seg %.4f\n",
                   hv_nn_precision_name(prec), batches[i], gb.s_per_slice, gf, gb.bf16_nodes,
                   hv_nn_precision_name(prec), gr.s_per_slice / gb.s_per_slice, dx, ds);
            if (i == 0) snprintf(profile_b, sizeof profile_b, "%s", gb.profile);
            free(gb.xs2);
            free(gb.fseg);
        }
        free(gr.xs2);
        free(gr.fseg);
    }
    printf("profile of one batch-1 forward (op, calls, seconds):\n%s", profile);
    if (prec != HV_NN_FP32)
        printf("profile of one batch-1 forward in %s:\n%s", hv_nn_precision_name(prec), profile_b);
    if (train) {
        double ts = train_step_seconds(ps, reps < 3 ? reps : 3);
        if (ts < 0) {
            hv_nn_params_free(ps);
            return 1;
        }
        printf("training step, batch 4 (G + 3 PatchGANs, forward + backward + Adam): %.3f s/step, "
               "%.3f s/slice\n", ts, ts / 4);
    }
    hv_nn_params_free(ps);
    return 0;
}
