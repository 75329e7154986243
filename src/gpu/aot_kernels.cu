/*
 * aot_kernels.cu: the CUDA backend's kernels for AOT-GAN's own shape and
 * normalisation ops, forward and backward (interface in shape_kernels.h,
 * dispatch in shape_cuda.c): reflect_pad, upsample_bilinear (integer
 * factor, align_corners) and aot_norm (the gate's my_layer_norm). Each
 * mirrors its reference kernel in src/nn/cpu/ref_ops_aot.c expression by
 * expression; forward writes y, backward ADDS into dx. Tanh, elementwise,
 * is in cuda_kernels.cu with the other activations.
 *
 * Deterministic, no atomics: both backward passes GATHER. Each input
 * element is owned by one thread, which adds the contributions of every
 * output that reads it, one float addition at a time, in the order the
 * reference's scatter loop adds them (outputs row by row, then, for the
 * bilinear case, the four taps in the order 00, 01, 10, 11), so that dx
 * equals the reference bit for bit. Bilinear weights and products are
 * formed in double exactly as the reference forms them (built with
 * -fmad=false, as loss_kernels.cu, so nvcc cannot contract them into fused
 * multiply-adds, which the host (strict C11) does not use either).
 *
 * aot_norm: one block per (item, channel) plane (grid stride over planes),
 * its mean and squared deviations summed in double by cuda_reduce.cuh's
 * fixed-order tree (the reference sums sequentially: the statistics differ
 * by double rounding only, run to run they reproduce bit for bit), then the
 * reference's per-element expressions in double. The backward recomputes
 * mean and s from x with the same code, so forward and backward see the
 * same statistics, as in the reference.
 */
#include <math.h>

#include "cuda_reduce.cuh"
#include "shape_kernels.h"

/* ------------------------------------------------------ reflection padding */

/* ref_ops_aot.c's reflect(): source index of output index o along an axis
 * of n padded by `before` (pads < n: one reflection at most) */
__device__ static inline int64_t reflect_src(int64_t o, int64_t before, int64_t n)
{
    int64_t i = o - before;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

/* The output indices (of no, padded by `before`) whose source is s, in
 * ascending order: at most three (the top reflection before - s, the copy
 * before + s, the bottom reflection before + 2 (n - 1) - s), each checked
 * against reflect_src; returns the count. */
__device__ static inline int reflect_dst(int64_t s, int64_t before, int64_t n, int64_t no,
                                         int64_t out[3])
{
    const int64_t cand[3] = {before - s, before + s, before + 2 * (n - 1) - s};
    int k = 0;
    for (int c = 0; c < 3; c++) {
        const int64_t o = cand[c];
        if (o < 0 || o >= no || (k > 0 && o <= out[k - 1])) continue;
        if (reflect_src(o, before, n) == s) out[k++] = o;
    }
    return k;
}

__global__ static void reflect_pad_fwd_k(const float *x, float *y, int64_t nc, int64_t h,
                                         int64_t w, int64_t ho, int64_t wo, int64_t t, int64_t l)
{
    HV_GRID_LOOP(idx, nc * ho * wo)
    {
        const int64_t p = idx / (ho * wo), rest = idx - p * ho * wo;
        const int64_t i = rest / wo, j = rest - i * wo;
        y[idx] = x[(p * h + reflect_src(i, t, h)) * w + reflect_src(j, l, w)];
    }
}

/* one thread per input element: dy of the outputs reading it, rows
 * ascending, then columns ascending (the reference loop's order) */
__global__ static void reflect_pad_bwd_k(const float *dy, float *dx, int64_t nc, int64_t h,
                                         int64_t w, int64_t ho, int64_t wo, int64_t t, int64_t l)
{
    HV_GRID_LOOP(idx, nc * h * w)
    {
        const int64_t p = idx / (h * w), rest = idx - p * h * w;
        const int64_t si = rest / w, sj = rest - si * w;
        int64_t rows[3], cols[3];
        const int nr = reflect_dst(si, t, h, ho, rows), ncl = reflect_dst(sj, l, w, wo, cols);
        const float *gp = dy + p * ho * wo;
        float v = dx[idx];
        for (int a = 0; a < nr; a++)
            for (int b = 0; b < ncl; b++) v += gp[rows[a] * wo + cols[b]];
        dx[idx] = v;
    }
}

/* ------------------------------------------------- bilinear upsampling */

/* ref_ops_aot.c's src_pos(): align_corners position of output o of no
 * along an input axis of ni: floor i0, next index i1 (clamped), fraction f
 * (exact integers before the one division) */
__device__ static inline void src_pos(int64_t o, int64_t ni, int64_t no, int64_t *i0, int64_t *i1,
                                      double *f)
{
    if (no <= 1) {
        *i0 = *i1 = 0;
        *f = 0;
        return;
    }
    const int64_t num = o * (ni - 1);
    *i0 = num / (no - 1);
    *f = (double)(num % (no - 1)) / (double)(no - 1);
    *i1 = *i0 + 1 < ni ? *i0 + 1 : *i0;
}

/* A range [*lo, *hi] of output indices that holds every o whose i0 or i1
 * is r (i0 is non-decreasing in o; i0 in {r - 1, r} covers both; the range
 * may hold a few more, which the caller skips). */
__device__ static inline void src_range(int64_t r, int64_t ni, int64_t no, int64_t *lo,
                                        int64_t *hi)
{
    if (ni <= 1 || no <= 1) {
        *lo = 0;
        *hi = no - 1;
        return;
    }
    *lo = r <= 1 ? 0 : (r - 1) * (no - 1) / (ni - 1);
    const int64_t h = (r + 1) * (no - 1) / (ni - 1);
    *hi = h < no - 1 ? h : no - 1;
}

__global__ static void upbl_fwd_k(const float *x, float *y, int64_t nc, int64_t h, int64_t w,
                                  int64_t ho, int64_t wo)
{
    HV_GRID_LOOP(idx, nc * ho * wo)
    {
        const int64_t p = idx / (ho * wo), rest = idx - p * ho * wo;
        const int64_t i = rest / wo, j = rest - i * wo;
        const float *xp = x + p * h * w;
        int64_t r0, r1, c0, c1;
        double fy, fx;
        src_pos(i, h, ho, &r0, &r1, &fy);
        src_pos(j, w, wo, &c0, &c1, &fx);
        const double w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx;
        const double w10 = fy * (1 - fx), w11 = fy * fx;
        y[idx] = (float)(w00 * xp[r0 * w + c0] + w01 * xp[r0 * w + c1] + w10 * xp[r1 * w + c0] +
                         w11 * xp[r1 * w + c1]);
    }
}

/* one thread per input element (r, c): for every output (i, j) in row-major
 * order, its taps that land on (r, c) in the reference's order 00, 01, 10,
 * 11, each (float)(weight * dy) added as the reference adds it */
__global__ static void upbl_bwd_k(const float *dy, float *dx, int64_t nc, int64_t h, int64_t w,
                                  int64_t ho, int64_t wo)
{
    HV_GRID_LOOP(idx, nc * h * w)
    {
        const int64_t p = idx / (h * w), rest = idx - p * h * w;
        const int64_t r = rest / w, c = rest - r * w;
        const float *gp = dy + p * ho * wo;
        int64_t ilo, ihi, jlo, jhi;
        src_range(r, h, ho, &ilo, &ihi);
        src_range(c, w, wo, &jlo, &jhi);
        float v = dx[idx];
        for (int64_t i = ilo; i <= ihi; i++) {
            int64_t r0, r1;
            double fy;
            src_pos(i, h, ho, &r0, &r1, &fy);
            if (r0 != r && r1 != r) continue;
            for (int64_t j = jlo; j <= jhi; j++) {
                int64_t c0, c1;
                double fx;
                src_pos(j, w, wo, &c0, &c1, &fx);
                if (c0 != c && c1 != c) continue;
                const double w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx;
                const double w10 = fy * (1 - fx), w11 = fy * fx;
                const double g = gp[i * wo + j];
                if (r0 == r && c0 == c) v += (float)(w00 * g);
                if (r0 == r && c1 == c) v += (float)(w01 * g);
                if (r1 == r && c0 == c) v += (float)(w10 * g);
                if (r1 == r && c1 == c) v += (float)(w11 * g);
            }
        }
        dx[idx] = v;
    }
}

/* ------------------------------------------------------ AOT gate norm */

/* y = 5 (2 d / (s + 1e-9) - 1), d = x - mean, s the unbiased standard
 * deviation of the plane (m = H*W >= 2, the graph builder's check); the
 * backward's formula is in ref_ops_aot.c. */
#define AOT_EPS 1e-9

/* the block's plane xp of m: mean and unbiased s (every thread gets them) */
__device__ static void plane_stats(const float *xp, int64_t m, double *sh, double *mean, double *s)
{
    double sum = 0, ss = 0;
    for (int64_t k = threadIdx.x; k < m; k += blockDim.x) sum += xp[k];
    sum = hv_block_sum(sum, sh);
    const double mu = sum / (double)m;
    for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
        const double d = xp[k] - mu;
        ss += d * d;
    }
    ss = hv_block_sum(ss, sh);
    *mean = mu;
    *s = sqrt(ss / (double)(m - 1));
}

__global__ static void aot_norm_fwd_k(const float *x, float *y, int64_t nc, int64_t m)
{
    __shared__ double sh[32];
    for (int64_t p = blockIdx.x; p < nc; p += gridDim.x) {
        const float *xp = x + p * m;
        float *yp = y + p * m;
        double mean, s;
        plane_stats(xp, m, sh, &mean, &s);
        const double den = s + AOT_EPS;
        for (int64_t k = threadIdx.x; k < m; k += blockDim.x)
            yp[k] = (float)(5.0 * (2.0 * (xp[k] - mean) / den - 1.0));
    }
}

__global__ static void aot_norm_bwd_k(const float *x, const float *dy, float *dx, int64_t nc,
                                      int64_t m)
{
    __shared__ double sh[32];
    for (int64_t p = blockIdx.x; p < nc; p += gridDim.x) {
        const float *xp = x + p * m, *gp = dy + p * m;
        float *dp = dx + p * m;
        double mean, s, gsum = 0, gd = 0;
        plane_stats(xp, m, sh, &mean, &s);
        const double den = s + AOT_EPS;
        for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
            gsum += gp[k];
            gd += gp[k] * (xp[k] - mean);
        }
        gsum = hv_block_sum(gsum, sh);
        gd = hv_block_sum(gd, sh);
        const double gmean = gsum / (double)m;
        /* a constant plane (s = 0): the std term is left out, as the
         * reference does */
        const double c = s > 0 ? gd / (den * den * (double)(m - 1) * s) : 0.0;
        for (int64_t k = threadIdx.x; k < m; k += blockDim.x)
            dp[k] += (float)(10.0 * ((gp[k] - gmean) / den - (xp[k] - mean) * c));
    }
}

/* ------------------------------------------------------------ launchers */

extern "C" cudaError_t hv__cuda_reflect_pad_fwd(cudaStream_t s, const float *x, float *y,
                                                int64_t nc, int64_t h, int64_t w, int64_t ho,
                                                int64_t wo, int64_t t, int64_t l)
{
    reflect_pad_fwd_k<<<hv_cuda_grid(nc * ho * wo), HV_CUDA_THREADS, 0, s>>>(x, y, nc, h, w, ho,
                                                                           wo, t, l);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_reflect_pad_bwd(cudaStream_t s, const float *dy, float *dx,
                                                int64_t nc, int64_t h, int64_t w, int64_t ho,
                                                int64_t wo, int64_t t, int64_t l)
{
    reflect_pad_bwd_k<<<hv_cuda_grid(nc * h * w), HV_CUDA_THREADS, 0, s>>>(dy, dx, nc, h, w, ho,
                                                                         wo, t, l);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_upsample_bilinear_fwd(cudaStream_t s, const float *x, float *y,
                                                      int64_t nc, int64_t h, int64_t w,
                                                      int64_t f)
{
    const int64_t ho = h * f, wo = w * f;
    upbl_fwd_k<<<hv_cuda_grid(nc * ho * wo), HV_CUDA_THREADS, 0, s>>>(x, y, nc, h, w, ho, wo);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_upsample_bilinear_bwd(cudaStream_t s, const float *dy, float *dx,
                                                      int64_t nc, int64_t h, int64_t w,
                                                      int64_t f)
{
    const int64_t ho = h * f, wo = w * f;
    upbl_bwd_k<<<hv_cuda_grid(nc * h * w), HV_CUDA_THREADS, 0, s>>>(dy, dx, nc, h, w, ho, wo);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_aot_norm_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                             int64_t m)
{
    aot_norm_fwd_k<<<hv_cuda_rows(nc), HV_CUDA_THREADS, 0, s>>>(x, y, nc, m);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_aot_norm_bwd(cudaStream_t s, const float *x, const float *dy,
                                             float *dx, int64_t nc, int64_t m)
{
    aot_norm_bwd_k<<<hv_cuda_rows(nc), HV_CUDA_THREADS, 0, s>>>(x, dy, dx, nc, m);
    return cudaGetLastError();
}
