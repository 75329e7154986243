/*
 * cuda_kernels.cu: the CUDA backend's own elementwise kernels and Adam
 * (interface and contracts in cuda_kernels.h). Kept to plain grid-stride
 * loops, one thread per element: these ops are memory-bound, and a small
 * .cu file keeps nvcc's share of the build short. The arithmetic mirrors
 * the reference kernels of src/nn/cpu/ref_ops.c expression by expression;
 * Adam uses the _rn intrinsics so that nvcc cannot contract it into fused
 * multiply-adds, which the host loop (gcc, strict C11: no contraction) does
 * not use either, so both round identically.
 */
#include <math.h>

#include "cuda_kernels.h"
#include "hv/nn.h"

#include "cuda_grid.cuh"

__global__ static void unary_fwd_k(int op, const float *x, float *y, int64_t n, float a, float b)
{
    HV_GRID_LOOP(i, n)
    {
        float v = x[i], r;
        switch (op) {
        case HV_NN_OP_ELU: r = v > 0 ? v : a * expm1f(v); break;
        case HV_NN_OP_RELU: r = v > 0 ? v : 0.0f; break;
        case HV_NN_OP_LEAKY_RELU: r = v > 0 ? v : a * v; break;
        case HV_NN_OP_SIGMOID: r = 1.0f / (1.0f + expf(-v)); break;
        case HV_NN_OP_TANH: r = tanhf(v); break; /* CUDA's: within 2 ulp of the host's */
        case HV_NN_OP_CLAMP: r = v < a ? a : (v > b ? b : v); break;
        case HV_NN_OP_SCALE: r = a * v + b; break;
        default: r = v; break; /* RESHAPE: a copy */
        }
        y[i] = r;
    }
}

__global__ static void unary_bwd_k(int op, const float *x, const float *y, const float *dy,
                                   float *dx, int64_t n, float a, float b)
{
    HV_GRID_LOOP(i, n)
    {
        float g = dy[i], r;
        switch (op) {
        case HV_NN_OP_ELU: r = x[i] > 0 ? g : g * (y[i] + a); break;
        case HV_NN_OP_RELU: r = x[i] > 0 ? g : 0.0f; break;
        case HV_NN_OP_LEAKY_RELU: r = x[i] > 0 ? g : a * g; break;
        case HV_NN_OP_SIGMOID: r = g * y[i] * (1.0f - y[i]); break;
        /* dy (1 - y^2) from the output, each operation rounded as the
         * host's, no fused multiply-add */
        case HV_NN_OP_TANH: r = __fmul_rn(g, __fsub_rn(1.0f, __fmul_rn(y[i], y[i]))); break;
        case HV_NN_OP_CLAMP: r = (x[i] >= a && x[i] <= b) ? g : 0.0f; break;
        case HV_NN_OP_SCALE: r = a * g; break;
        default: r = g; break; /* RESHAPE */
        }
        dx[i] += r;
    }
}

__global__ static void binary_fwd_k(int op, const float *a, const float *b, float *y, int64_t n)
{
    HV_GRID_LOOP(i, n)
    {
        y[i] = op == HV_NN_OP_ADD ? a[i] + b[i] : op == HV_NN_OP_SUB ? a[i] - b[i] : a[i] * b[i];
    }
}

__global__ static void binary_bwd_k(int op, const float *a, const float *b, const float *dy,
                                    float *da, float *db, int64_t n)
{
    HV_GRID_LOOP(i, n)
    {
        float g = dy[i];
        if (op == HV_NN_OP_MUL) {
            if (da) da[i] += g * b[i];
            if (db) db[i] += g * a[i];
        } else {
            if (da) da[i] += g;
            if (db) db[i] += op == HV_NN_OP_SUB ? -g : g;
        }
    }
}

__global__ static void act_k(int op, float *y, int64_t n, float a)
{
    HV_GRID_LOOP(i, n)
    {
        float x = y[i];
        if (op == HV_NN_OP_ELU)
            y[i] = x > 0 ? x : a * expm1f(x);
        else if (op == HV_NN_OP_RELU || op == HV_NN_OP_LEAKY_RELU)
            y[i] = x > 0 ? x : a * x;
        else
            y[i] = 1.0f / (1.0f + expf(-x));
    }
}

__global__ static void finite_k(const float *g, int64_t n, int *flag, int tag)
{
    HV_GRID_LOOP(i, n)
    {
        if (!isfinite(g[i]) && *flag == 0) *flag = tag;
    }
}

/* m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g; w -= step m / (sqrt(v) /
 * sbc2 + eps), each operation rounded on its own as in the host loop. */
__global__ static void adam_k(float *w, float *m, float *v, const float *g, int64_t n, float b1,
                              float b2, float step, float sbc2, float eps, const int *flag)
{
    if (*flag) return;
    HV_GRID_LOOP(k, n)
    {
        float gk = g[k];
        float mk = __fadd_rn(__fmul_rn(b1, m[k]), __fmul_rn(__fsub_rn(1.0f, b1), gk));
        float vk = __fadd_rn(__fmul_rn(b2, v[k]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), gk), gk));
        m[k] = mk;
        v[k] = vk;
        float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vk), sbc2), eps);
        w[k] = __fsub_rn(w[k], __fdiv_rn(__fmul_rn(step, mk), den));
    }
}

extern "C" cudaError_t hv__cuda_unary_fwd(cudaStream_t s, int op, const float *x, float *y,
                                          int64_t n, float a, float b)
{
    unary_fwd_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(op, x, y, n, a, b);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_unary_bwd(cudaStream_t s, int op, const float *x, const float *y,
                                          const float *dy, float *dx, int64_t n, float a, float b)
{
    unary_bwd_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(op, x, y, dy, dx, n, a, b);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_binary_fwd(cudaStream_t s, int op, const float *a, const float *b,
                                           float *y, int64_t n)
{
    binary_fwd_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(op, a, b, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_binary_bwd(cudaStream_t s, int op, const float *a, const float *b,
                                           const float *dy, float *da, float *db, int64_t n)
{
    binary_bwd_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(op, a, b, dy, da, db, n);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_act(cudaStream_t s, int op, float *y, int64_t n, float alpha)
{
    act_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(op, y, n, alpha);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_finite(cudaStream_t s, const float *g, int64_t n, int *flag,
                                       int tag)
{
    finite_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(g, n, flag, tag);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_adam(cudaStream_t s, float *w, float *m, float *v, const float *g,
                                     int64_t n, float beta1, float beta2, float step_size,
                                     float sqrt_bc2, float eps, const int *flag)
{
    adam_k<<<hv_cuda_grid(n), HV_CUDA_THREADS, 0, s>>>(w, m, v, g, n, beta1, beta2, step_size,
                                                           sqrt_bc2, eps, flag);
    return cudaGetLastError();
}
