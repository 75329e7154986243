/*
 * bench/gpu/gpu_bench.c: the CUDA backend's speed against cuDNN's own in the
 * same run (run by bench/gpu/device-check.sh; docs/nn.md "CUDA backend").
 *
 * For fp32 (CUDNN_FMA_MATH, HV_CUDA_TF32=0) and TF32 (CUDNN_TENSOR_OP_MATH,
 * the backend's default):
 *   - ceiling: cuDNN alone on a large 3x3 convolution (batch 64, 256 -> 256
 *     channels, 64x64, padding 1), its fastest algorithm measured by
 *     cudnnFindConvolutionForwardAlgorithmEx, median of REPS timed calls
 *     (CUDA events), as TFLOP/s (2 per multiply-add);
 *   - the engine: the same convolution as one conv2d node of an inference
 *     graph on the CUDA backend at batch 1, 16 and 64 (forward REPS times,
 *     then one synchronisation), TFLOP/s and the fraction of the ceiling;
 *   - the generator (hv_model_generator_build, cnum 16, 256x256, inference,
 *     TF32 only, median of up to 5 forwards):
 *     slices per second at batch 1, 16 and 64 and the fraction of the
 *     ceiling its FLOPs reach. Ops the backend declines would run on the
 *     host reference kernels on staging copies; since contextual attention
 *     and the shape ops run on the GPU, the generator's inference graph has
 *     none (the per-op profile lists what ran); a larger batch is skipped when its
 *     forward would take more than GEN_MAX_S seconds at the speed per slice
 *     of the batch before. A per-op profile of one batch-1
 *     forward shows where the time goes.
 * bf16 is not implemented in the backend and not measured.
 *
 * Usage: gpu_bench [--reps N] [--no-generator]. Exit 0 when every
 * measurement ran, 1 otherwise.
 */
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/core.h"
#include "hv/gpu.h"
#include "hv/model.h"
#include "hv/nn.h"

#define CB 64
#define CC 256
#define CHW 64
#define GEN_MAX_S 20.0

static int reps = 20;

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

static double conv_flops(int n) { return 2.0 * n * CC * CC * 9.0 * CHW * CHW; }

#define CU(x)                                                                                 \
    do {                                                                                      \
        cudaError_t e_ = (x);                                                                 \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "ceiling: %s failed: %s\n", #x, cudaGetErrorString(e_));          \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)
#define DNN(x)                                                                                \
    do {                                                                                      \
        cudnnStatus_t e_ = (x);                                                               \
        if (e_ != CUDNN_STATUS_SUCCESS) {                                                     \
            fprintf(stderr, "ceiling: %s failed: %s\n", #x, cudnnGetErrorString(e_));         \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)

/* cuDNN alone: TFLOP/s of its fastest algorithm, 0 on error */
static double ceiling(int tf32)
{
    cudnnHandle_t h = NULL;
    cudnnTensorDescriptor_t xd = NULL, yd = NULL;
    cudnnFilterDescriptor_t wd = NULL;
    cudnnConvolutionDescriptor_t cd = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float *x = NULL, *w = NULL, *y = NULL;
    void *ws = NULL;
    const size_t ws_max = (size_t)1 << 30, nx = (size_t)CB * CC * CHW * CHW;
    double res = 0, t[256];
    const float one = 1.0f, zero = 0.0f;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    DNN(cudnnCreate(&h));
    DNN(cudnnCreateTensorDescriptor(&xd));
    DNN(cudnnCreateTensorDescriptor(&yd));
    DNN(cudnnCreateFilterDescriptor(&wd));
    DNN(cudnnCreateConvolutionDescriptor(&cd));
    DNN(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, CB, CC, CHW, CHW));
    DNN(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, CB, CC, CHW, CHW));
    DNN(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CC, CC, 3, 3));
    DNN(cudnnSetConvolution2dDescriptor(cd, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    CU(cudaMalloc((void **)&x, nx * sizeof(float)));
    CU(cudaMalloc((void **)&y, nx * sizeof(float)));
    CU(cudaMalloc((void **)&w, (size_t)CC * CC * 9 * sizeof(float)));
    CU(cudaMalloc(&ws, ws_max));
    CU(cudaMemset(x, 0, nx * sizeof(float)));
    CU(cudaMemset(w, 0, (size_t)CC * CC * 9 * sizeof(float)));
    DNN(cudnnFindConvolutionForwardAlgorithmEx(h, xd, x, wd, w, cd, yd, y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, ws,
                                               ws_max));
    /* the fastest algorithm the math mode allows (as the backend chooses:
     * no tensor-op math without TF32, never fp16 conversion), run with the
     * math type cuDNN measured it with */
    int best = -1;
    for (int i = 0; i < got && best < 0; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS &&
            perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
            (tf32 || perf[i].mathType != CUDNN_TENSOR_OP_MATH))
            best = i;
    if (best < 0) {
        fprintf(stderr, "ceiling: cuDNN found no algorithm\n");
        goto done;
    }
    if (tf32) DNN(cudnnSetConvolutionMathType(cd, perf[best].mathType));
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    for (int k = 0; k < reps + 2; k++) {
        float ms = 0;
        CU(cudaEventRecord(e0, 0));
        DNN(cudnnConvolutionForward(h, &one, xd, x, wd, w, cd, perf[best].algo, ws, ws_max, &zero,
                                    yd, y));
        CU(cudaEventRecord(e1, 0));
        CU(cudaEventSynchronize(e1));
        CU(cudaEventElapsedTime(&ms, e0, e1));
        if (k >= 2) t[k - 2] = ms * 1e-3; /* two warm-up calls */
    }
    res = conv_flops(CB) / median(t, reps) / 1e12;
    printf("ceiling %-4s cuDNN conv 3x3 %dx%d->%d %dx%d: algo %d, %.3f ms, %.1f TFLOP/s\n",
           tf32 ? "tf32" : "fp32", CB, CC, CC, CHW, CHW, (int)perf[best].algo,
           median(t, reps) * 1e3, res);
done:
    if (e0) (void)cudaEventDestroy(e0);
    if (e1) (void)cudaEventDestroy(e1);
    (void)cudaFree(x);
    (void)cudaFree(y);
    (void)cudaFree(w);
    (void)cudaFree(ws);
    if (cd) (void)cudnnDestroyConvolutionDescriptor(cd);
    if (wd) (void)cudnnDestroyFilterDescriptor(wd);
    if (xd) (void)cudnnDestroyTensorDescriptor(xd);
    if (yd) (void)cudnnDestroyTensorDescriptor(yd);
    if (h) (void)cudnnDestroy(h);
    return res;
}

/* the engine's conv2d node on the backend: TFLOP/s, 0 on error */
static double engine_conv(hv_nn_backend *be, int n)
{
    hv_nn_params *ps = NULL;
    hv_nn_graph *g = NULL;
    hv_nn_param *w = NULL, *b = NULL;
    float *x = NULL;
    double res = 0;
    const int64_t ws[4] = {CC, CC, 3, 3}, bs[1] = {CC}, xs[4] = {n, CC, CHW, CHW};
    const size_t nx = (size_t)n * CC * CHW * CHW;
    hv_rng r;
    hv_rng_seed(&r, 3, 0);
    if (hv_nn_params_create(&ps) || hv_nn_params_add(ps, "w", 4, ws, 1, &w) ||
        hv_nn_params_add(ps, "b", 1, bs, 1, &b))
        goto done;
    hv_nn_init_torch_default(w, b, &r);
    if (hv_nn_params_bind(ps, be) || hv_nn_graph_create(&g)) goto done;
    hv_nn_tensor *xt = hv_nn_input(g, "x", 4, xs);
    hv_nn_tensor *y = hv_nn_conv2d(g, xt, hv_nn_param_tensor(g, w), hv_nn_param_tensor(g, b), 1, 1, 1);
    hv_nn_set_output(y);
    x = calloc(nx, sizeof(float));
    if (!x || hv_nn_graph_plan(g, be, 0) || hv_nn_tensor_set(xt, x, nx) || hv_nn_graph_forward(g) ||
        hv_gpu_backend_sync(be))
        goto done;
    double t0 = hv_time_now();
    for (int k = 0; k < reps; k++)
        if (hv_nn_graph_forward(g)) goto done;
    if (hv_gpu_backend_sync(be)) goto done;
    double s = (hv_time_now() - t0) / reps;
    res = conv_flops(n) / s / 1e12;
done:
    if (res == 0) fprintf(stderr, "engine conv batch %d: %s\n", n, hv_error_detail());
    free(x);
    hv_nn_graph_free(g);
    hv_nn_params_free(ps);
    return res;
}

/* the generator at batch n: seconds per forward (0 on error); *flops per
 * forward; prof (when not NULL) the per-op profile of one forward */
static double generator(hv_nn_backend *be, hv_nn_params *ps, int n, double *flops, char *prof,
                        size_t plen)
{
    hv_nn_graph *g = NULL;
    hv_model_generator_io io;
    double res = 0;
    const size_t cnt = (size_t)n * 256 * 256;
    float *x = malloc(cnt * sizeof(float)), *m = malloc(cnt * sizeof(float));
    float *c = malloc(cnt * sizeof(float)), *q = malloc(cnt * sizeof(float));
    hv_rng r;
    hv_rng_seed(&r, 11, (uint64_t)n);
    if (!x || !m || !c || !q) goto done;
    for (size_t i = 0; i < cnt; i++) {
        int row = (int)((i / 256) % 256);
        m[i] = (row >= 108 && row < 148) ? 1.0f : 0.0f;
        x[i] = m[i] ? -1.0f : (float)hv_rng_range(&r, -1, 1);
        c[i] = (float)hv_rng_uniform(&r);
        q[i] = 0.3f;
    }
    if (hv_nn_graph_create(&g) || hv_model_generator_build(g, ps, 16, n, 256, 256, &io) ||
        hv_nn_graph_plan(g, be, 0) || hv_nn_tensor_set(io.x, x, cnt) ||
        hv_nn_tensor_set(io.mask, m, cnt) || hv_nn_tensor_set(io.cam, c, cnt) ||
        hv_nn_tensor_set(io.ratio, q, cnt) || hv_nn_graph_forward(g) || hv_gpu_backend_sync(be))
        goto done;
    double t[64];
    int k = 0;
    for (; k < reps && k < 5; k++) {
        double t0 = hv_time_now();
        if (hv_nn_graph_forward(g) || hv_gpu_backend_sync(be)) goto done;
        t[k] = hv_time_now() - t0;
        if (t[k] > GEN_MAX_S / 4) { k++; break; } /* a few slow ones are enough */
    }
    res = median(t, k);
    *flops = hv_nn_graph_flops(g);
    if (prof) {
        hv_nn_graph_set_profiling(g, 1);
        if (hv_nn_graph_forward(g) || hv_gpu_backend_sync(be)) goto done;
        hv_nn_graph_profile_report(g, prof, plen);
    }
done:
    if (res == 0) fprintf(stderr, "generator batch %d: %s\n", n, hv_error_detail());
    free(x);
    free(m);
    free(c);
    free(q);
    hv_nn_graph_free(g);
    return res;
}

int main(int argc, char **argv)
{
    int gen = 1, fails = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-generator"))
            gen = 0;
        else {
            fprintf(stderr, "usage: gpu_bench [--reps N] [--no-generator]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 200) {
        fprintf(stderr, "gpu_bench: --reps must be 1..200\n");
        return 2;
    }
    char probe[512];
    if (hv_gpu_probe(probe, sizeof probe) <= 0) {
        printf("gpu_bench: %s\n", probe);
        return 1;
    }
    printf("# %s\n# reps %d; TFLOP/s count 2 per multiply-add\n", probe, reps);
    static const int batches[3] = {1, 16, 64};
    static char prof[16384];
    for (int tf32 = 0; tf32 <= 1; tf32++) {
        const char *mode = tf32 ? "tf32" : "fp32";
        double ceil_tf = ceiling(tf32);
        if (ceil_tf <= 0) {
            fails++;
            continue;
        }
        hv_nn_backend *be = NULL;
        setenv("HV_CUDA_TF32", tf32 ? "1" : "0", 1);
        if (hv_gpu_backend_create(0, &be)) {
            printf("%s: %s\n", mode, hv_error_detail());
            fails++;
            continue;
        }
        for (int i = 0; i < 3; i++) {
            double e = engine_conv(be, batches[i]);
            if (e <= 0) fails++;
            printf("engine  %-4s conv2d node  batch %2d: %7.1f TFLOP/s = %.2f of the ceiling\n", mode,
                   batches[i], e, e / ceil_tf);
        }
        if (gen && tf32) { /* the backend's default mode only: time */
            hv_nn_params *ps = NULL;
            hv_rng r;
            hv_rng_seed(&r, 5, 0);
            if (hv_nn_params_create(&ps) || hv_model_generator_params(ps, 16, &r) ||
                hv_model_generator_sn_warmup(ps, 3) || hv_nn_params_bind(ps, be)) {
                printf("generator: %s\n", hv_error_detail());
                fails++;
            } else {
                for (int i = 0; i < 3; i++) {
                    double fl = 0, s = generator(be, ps, batches[i], &fl, i == 0 ? prof : NULL,
                                                 sizeof prof);
                    if (s <= 0) {
                        fails++;
                        break;
                    }
                    printf("engine  %-4s generator    batch %2d: %8.1f slices/s (%.4f s per forward), "
                           "%.2f TFLOP/s = %.3f of the ceiling\n", mode, batches[i],
                           batches[i] / s, s, fl / s / 1e12, fl / s / 1e12 / ceil_tf);
                    /* the next batch's forward, at this batch's speed per slice */
                    if (i < 2 && s * batches[i + 1] / batches[i] > GEN_MAX_S) {
                        printf("engine  %-4s generator: batch %d and larger skipped (a forward would "
                               "take about %.0f s > %.0f s)\n", mode, batches[i + 1],
                               s * batches[i + 1] / batches[i], GEN_MAX_S);
                        break;
                    }
                }
            }
            hv_nn_params_free(ps);
        }
        hv_nn_backend_free(be);
    }
    if (gen && prof[0]) printf("# generator batch 1, tf32, per-op profile:\n%s\n", prof);
    printf("# bf16: not implemented in the CUDA backend, not measured\n");
    return fails ? 1 : 0;
}
