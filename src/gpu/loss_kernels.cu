/*
 * loss_kernels.cu: the CUDA backend's whole-tensor reductions and losses
 * (sum, mean, BCE with logits, L1, MSE, soft Dice) and softmax over
 * dimension 1, forward and backward (interface in train_kernels.h).
 *
 * A whole-tensor sum runs in two passes: a fixed number of blocks (a
 * function of the element count only, at most HV_CUDA_RED_PARTS) each sums
 * its grid-stride share into one double partial, then one block sums the
 * partials (cuda_reduce.cuh's fixed order): no atomics, and the same result
 * on every run. Dice sums each item in one block. Softmax runs one thread
 * per (outer, inner) column over its c channels, in the reference kernel's
 * order. Built with -fmad=false (src/gpu/CMakeLists.txt) so that float
 * expressions round as the reference kernels' (gcc in strict C11 does not
 * contract them either).
 */
#include <math.h>

#include "cuda_reduce.cuh"
#include "hv/nn.h"
#include "train_kernels.h"

/* blocks of the first pass for n elements: about 8 elements per thread */
static unsigned red_parts(int64_t n)
{
    int64_t b = (n + HV_CUDA_THREADS * 8 - 1) / (HV_CUDA_THREADS * 8);
    if (b < 1) b = 1;
    if (b > HV_CUDA_RED_PARTS) b = HV_CUDA_RED_PARTS;
    return (unsigned)b;
}

/* one term of the op's sum (the reference's expression, in double) */
__device__ static inline double red_term(int op, float a, float b)
{
    switch (op) {
    case HV_NN_OP_BCE_LOGITS:
        return fmax((double)a, 0.0) - (double)a * b + log1p(exp(-fabs((double)a)));
    case HV_NN_OP_L1: return fabs((double)a - b);
    case HV_NN_OP_MSE: return ((double)a - b) * ((double)a - b);
    case HV_NN_OP_MUL: return (double)a * b; /* the dot product */
    default: return a; /* SUM, MEAN */
    }
}

__global__ static void red_part_k(int op, const float *a, const float *b, int64_t n, double *part)
{
    __shared__ double sh[32];
    double s = 0;
    HV_GRID_LOOP(i, n) s += red_term(op, a[i], b ? b[i] : 0.0f);
    s = hv_block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* sum of the np partials; yf (if not NULL) = (float)(sum / div), yd (if not
 * NULL) = sum */
__global__ static void red_final_k(const double *part, int np, double div, float *yf, double *yd)
{
    __shared__ double sh[32];
    double s = 0;
    for (int i = threadIdx.x; i < np; i += blockDim.x) s += part[i];
    s = hv_block_sum(s, sh);
    if (threadIdx.x == 0) {
        if (yf) *yf = (float)(s / div);
        if (yd) *yd = s;
    }
}

static cudaError_t red_launch(cudaStream_t s, int op, const float *a, const float *b, int64_t n,
                              double div, float *yf, double *yd, double *ws)
{
    const unsigned np = red_parts(n);
    red_part_k<<<np, HV_CUDA_THREADS, 0, s>>>(op, a, b, n, ws);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    red_final_k<<<1, HV_CUDA_THREADS, 0, s>>>(ws, (int)np, div, yf, yd);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_reduce_fwd(cudaStream_t s, int op, const float *a, const float *b,
                                           int64_t n, float *y, double *ws)
{
    /* SUM divides by 1 (exact): the reference's s, others s / count */
    const double div = op == HV_NN_OP_SUM ? 1.0 : (double)n;
    return red_launch(s, op, a, op == HV_NN_OP_SUM || op == HV_NN_OP_MEAN ? NULL : b, n, div, y,
                      NULL, ws);
}

extern "C" cudaError_t hv__cuda_dot(cudaStream_t s, const float *a, const float *b, int64_t n,
                                    double *ws, double *out)
{
    return red_launch(s, HV_NN_OP_MUL, a, b, n, 1.0, NULL, out, ws);
}

__global__ static void red_bwd_k(int op, const float *a, const float *b, const float *dy,
                                 float *da, float *db, int64_t n)
{
    const double g = dy[0], gm = g / (double)n;
    HV_GRID_LOOP(i, n)
    {
        switch (op) {
        case HV_NN_OP_SUM:
        case HV_NN_OP_MEAN:
            if (da) da[i] += (float)(op == HV_NN_OP_SUM ? g : gm);
            break;
        case HV_NN_OP_BCE_LOGITS:
            if (da) da[i] += (float)(gm * (1.0 / (1.0 + exp(-(double)a[i])) - b[i]));
            if (db) db[i] += (float)(-gm * a[i]);
            break;
        case HV_NN_OP_L1: {
            const double sg = a[i] > b[i] ? 1.0 : (a[i] < b[i] ? -1.0 : 0.0);
            if (da) da[i] += (float)(gm * sg);
            if (db) db[i] -= (float)(gm * sg);
            break;
        }
        case HV_NN_OP_MSE: {
            const double d = 2.0 * ((double)a[i] - b[i]) * gm;
            if (da) da[i] += (float)d;
            if (db) db[i] -= (float)d;
            break;
        }
        default: break;
        }
    }
}

extern "C" cudaError_t hv__cuda_reduce_bwd(cudaStream_t s, int op, const float *a, const float *b,
                                           const float *dy, float *da, float *db, int64_t n)
{
    red_bwd_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(op, a, b, dy, da, db, n);
    return cudaGetLastError();
}

/* ------------------------------------------------------------------ Dice */

/* block i: ws[3i..3i+2] = sum p t, sum p, sum t over item i */
__global__ static void dice_sums_k(const float *p, const float *t, int64_t per, double *ws)
{
    __shared__ double sh[32];
    const int64_t i = blockIdx.x, base = i * per;
    double in = 0, sp = 0, st = 0;
    for (int64_t k = threadIdx.x; k < per; k += blockDim.x) {
        in += (double)p[base + k] * t[base + k];
        sp += p[base + k];
        st += t[base + k];
    }
    in = hv_block_sum(in, sh);
    sp = hv_block_sum(sp, sh);
    st = hv_block_sum(st, sh);
    if (threadIdx.x == 0) {
        ws[3 * i] = in;
        ws[3 * i + 1] = sp;
        ws[3 * i + 2] = st;
    }
}

/* the items' scores in item order (one thread: nb is a batch size) */
__global__ static void dice_final_k(const double *ws, int64_t nb, float *y)
{
    double s = 0;
    for (int64_t i = 0; i < nb; i++)
        s += (2 * ws[3 * i] + 1e-5) / (ws[3 * i + 1] + ws[3 * i + 2] + 1e-5);
    y[0] = (float)(s / (double)nb);
}

__global__ static void dice_bwd_k(const float *p, const float *t, const float *dy, float *dp,
                                  float *dt, int64_t nb, int64_t per, const double *ws)
{
    const double g = dy[0], gi = g / (double)nb;
    HV_GRID_LOOP(k, nb * per)
    {
        const int64_t i = k / per;
        const double den = ws[3 * i + 1] + ws[3 * i + 2] + 1e-5, num = 2 * ws[3 * i] + 1e-5;
        if (dp) dp[k] += (float)(gi * (2.0 * t[k] * den - num) / (den * den));
        if (dt) dt[k] += (float)(gi * (2.0 * p[k] * den - num) / (den * den));
    }
}

static cudaError_t dice_sums(cudaStream_t s, const float *p, const float *t, int64_t nb,
                             int64_t per, double *ws)
{
    dice_sums_k<<<(unsigned)nb, HV_CUDA_THREADS, 0, s>>>(p, t, per, ws);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_dice_fwd(cudaStream_t s, const float *p, const float *t,
                                         int64_t nb, int64_t per, float *y, double *ws)
{
    cudaError_t e = dice_sums(s, p, t, nb, per, ws);
    if (e != cudaSuccess) return e;
    dice_final_k<<<1, 1, 0, s>>>(ws, nb, y);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_dice_bwd(cudaStream_t s, const float *p, const float *t,
                                         const float *dy, float *dp, float *dt, int64_t nb,
                                         int64_t per, double *ws)
{
    cudaError_t e = dice_sums(s, p, t, nb, per, ws);
    if (e != cudaSuccess) return e;
    dice_bwd_k<<<hv_cuda_grid(nb * per), HV_CUDA_THREADS, 0, s>>>(p, t, dy, dp, dt, nb, per, ws);
    return cudaGetLastError();
}

/* --------------------------------------------------------------- softmax */

__global__ static void softmax_fwd_k(const float *x, float *y, int64_t outer, int64_t c,
                                     int64_t inner)
{
    HV_GRID_LOOP(col, outer * inner)
    {
        const int64_t o = col / inner, q = col % inner, base = o * c * inner + q;
        float mx = x[base];
        for (int64_t k = 1; k < c; k++)
            if (x[base + k * inner] > mx) mx = x[base + k * inner];
        double s = 0;
        for (int64_t k = 0; k < c; k++) {
            const float e = expf(x[base + k * inner] - mx);
            y[base + k * inner] = e;
            s += e;
        }
        const float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < c; k++) y[base + k * inner] *= inv;
    }
}

__global__ static void softmax_bwd_k(const float *y, const float *dy, float *dx, int64_t outer,
                                     int64_t c, int64_t inner)
{
    HV_GRID_LOOP(col, outer * inner)
    {
        const int64_t o = col / inner, q = col % inner, base = o * c * inner + q;
        double s = 0;
        for (int64_t k = 0; k < c; k++) s += (double)dy[base + k * inner] * y[base + k * inner];
        for (int64_t k = 0; k < c; k++) {
            const int64_t i = base + k * inner;
            dx[i] += y[i] * (float)(dy[i] - s);
        }
    }
}

extern "C" cudaError_t hv__cuda_softmax_fwd(cudaStream_t s, const float *x, float *y,
                                            int64_t outer, int64_t c, int64_t inner)
{
    softmax_fwd_k<<<hv_cuda_grid(outer * inner), HV_CUDA_THREADS, 0, s>>>(x, y, outer, c, inner);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_softmax_bwd(cudaStream_t s, const float *y, const float *dy,
                                            float *dx, int64_t outer, int64_t c, int64_t inner)
{
    softmax_bwd_k<<<hv_cuda_grid(outer * inner), HV_CUDA_THREADS, 0, s>>>(y, dy, dx, outer, c,
                                                                          inner);
    return cudaGetLastError();
}
