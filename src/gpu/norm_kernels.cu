/*
 * norm_kernels.cu: the CUDA backend's batch norm, max pooling, Sobel and
 * spectral norm, forward and backward (interface in train_kernels.h).
 *
 * Batch norm: per-channel statistics over a fixed number of blocks per
 * channel (hv__cuda_bn_split: a function of the shape only), each block
 * summing its strided share in double (cuda_reduce.cuh's fixed order) into
 * a partial, then one thread per channel adding the partials in block
 * order; the passes split where the reference kernel calls its reducer,
 * so that train_ops.c can sum them over ranks in between; normalisation
 * and the input gradient one thread per element. Max pooling and Sobel
 * backward gather instead of scatter: each input element sums the
 * contributions of the outputs whose window holds it in the reference
 * loop's order (outputs row by row, then the window's
 * taps), so they need no atomics and equal the reference bit for bit.
 * Spectral norm: the power iteration in one block (W is a convolution
 * kernel, at most a few million floats), warp per row for W v.
 * Built with -fmad=false (as loss_kernels.cu).
 */
#include <math.h>

#include "cuda_reduce.cuh"
#include "train_kernels.h"

/* ------------------------------------------------------------ batch norm */

/* element e of channel k (of nb items of c channels of hw pixels) */
__device__ static inline int64_t bn_at(int64_t e, int64_t k, int64_t c, int64_t hw)
{
    return ((e / hw) * c + k) * hw + e % hw;
}

/* What the partial sums of a channel add up (bn_part_k, bn_total_k). */
enum { BN_SUMS, BN_SQUARES, BN_GRADS };

/* Blocks per channel: enough blocks to fill a large GPU (about 512 in
 * all) while each keeps at least 4096 elements, at most 64. */
extern "C" int64_t hv__cuda_bn_split(int64_t nb, int64_t c, int64_t hw)
{
    const int64_t m = nb * hw;
    int64_t sp = (512 + c - 1) / c, most = (m + 4095) / 4096;
    if (sp > most) sp = most;
    if (sp > 64) sp = 64;
    return sp < 1 ? 1 : sp;
}

/* block b = k * sp + j: the j-th share (elements j*blockDim + t, stride
 * sp*blockDim) of channel k. BN_SUMS: part[b] = sum x; BN_SQUARES: part[b]
 * = sum (x - mu)^2 with the reference's float mean mu = red[k] / red[c];
 * BN_GRADS: part[b] = sum dy, part[c sp + b] = sum dy xhat (float terms as
 * the reference). */
__global__ static void bn_part_k(int mode, const float *x, const float *dy, int64_t nb, int64_t c,
                                 int64_t hw, int64_t sp, const float *red, const float *mean,
                                 const float *istd, double *part)
{
    __shared__ double sh[32];
    const int64_t b = blockIdx.x, k = b / sp, j = b % sp, m = nb * hw;
    double s1 = 0, s2 = 0;
    if (mode == BN_SUMS) {
        for (int64_t e = j * blockDim.x + threadIdx.x; e < m; e += sp * blockDim.x)
            s1 += x[bn_at(e, k, c, hw)];
    } else if (mode == BN_SQUARES) {
        const double mu = (float)(red[k] / (double)red[c]);
        for (int64_t e = j * blockDim.x + threadIdx.x; e < m; e += sp * blockDim.x) {
            const double d = x[bn_at(e, k, c, hw)] - mu;
            s1 += d * d;
        }
    } else {
        const float mu = mean[k], is = istd[k];
        for (int64_t e = j * blockDim.x + threadIdx.x; e < m; e += sp * blockDim.x) {
            const int64_t i = bn_at(e, k, c, hw);
            s1 += dy[i];
            s2 += dy[i] * (x[i] - mu) * is;
        }
        s2 = hv_block_sum(s2, sh);
    }
    s1 = hv_block_sum(s1, sh);
    if (threadIdx.x == 0) {
        part[b] = s1;
        if (mode == BN_GRADS) part[c * sp + b] = s2;
    }
}

/* one thread per channel: its sp partials in block order, then as the
 * reference after its loops */
__global__ static void bn_total_k(int mode, int64_t nb, int64_t c, int64_t hw, int64_t sp,
                                  const double *part, float *red, float *mean, float *count,
                                  float *dgamma, float *dbeta)
{
    HV_GRID_LOOP(k, c)
    {
        double s1 = 0, s2 = 0;
        for (int64_t j = 0; j < sp; j++) s1 += part[k * sp + j];
        if (mode == BN_SUMS) {
            red[k] = (float)s1;
            if (k == 0) red[c] = (float)((double)nb * hw);
        } else if (mode == BN_SQUARES) {
            const double cnt = red[c];
            mean[k] = (float)(red[k] / cnt); /* bn_part_k's mu */
            red[k] = (float)s1;
            if (k == 0) count[0] = (float)cnt;
        } else {
            for (int64_t j = 0; j < sp; j++) s2 += part[(c + k) * sp + j];
            if (dgamma) dgamma[k] += (float)s2;
            if (dbeta) dbeta[k] += (float)s1;
            red[k] = (float)s1;
            red[c + k] = (float)s2;
        }
    }
}

__global__ static void bn_finish_k(int64_t c, const float *red, const float *mean,
                                   const float *count, double mom, double eps, float *rm, float *rv,
                                   float *istd)
{
    const double m = count[0];
    HV_GRID_LOOP(k, c)
    {
        const double var = red[k] / m;
        rm[k] = (float)((1 - mom) * rm[k] + mom * mean[k]);
        rv[k] = (float)((1 - mom) * rv[k] + mom * (m > 1 ? red[k] / (m - 1) : var));
        istd[k] = (float)(1.0 / sqrt(var + eps));
    }
}

__global__ static void bn_eval_k(int64_t c, const float *rm, const float *rv, double eps,
                                 double items, float *mean, float *istd, float *count)
{
    HV_GRID_LOOP(k, c)
    {
        mean[k] = rm[k];
        istd[k] = (float)(1.0 / sqrt((double)rv[k] + eps));
        if (k == 0) count[0] = (float)items;
    }
}

__global__ static void bn_apply_k(const float *x, float *y, const float *gamma, const float *beta,
                                  const float *mean, const float *istd, int64_t numel, int64_t c,
                                  int64_t hw)
{
    HV_GRID_LOOP(e, numel)
    {
        const int64_t k = (e / hw) % c;
        y[e] = gamma[k] * (x[e] - mean[k]) * istd[k] + beta[k];
    }
}

__global__ static void bn_grad_x_k(const float *x, const float *dy, float *dx, const float *gamma,
                                   const float *mean, const float *istd, const float *red,
                                   const float *count, int64_t numel, int64_t c, int64_t hw,
                                   int training)
{
    const double m = count[0];
    HV_GRID_LOOP(e, numel)
    {
        const int64_t k = (e / hw) % c;
        const double gi = gamma[k] * istd[k];
        if (training) {
            const double sdy = red[k], sdyx = red[c + k];
            const double xh = (x[e] - mean[k]) * istd[k];
            dx[e] += (float)(gi * (dy[e] - sdy / m - xh * sdyx / m));
        } else {
            dx[e] += (float)(gi * dy[e]);
        }
    }
}

static cudaError_t bn_sum_pass(cudaStream_t s, int mode, const float *x, const float *dy,
                               int64_t nb, int64_t c, int64_t hw, float *red, float *mean,
                               const float *istd, float *count, float *dgamma, float *dbeta,
                               double *part)
{
    const int64_t sp = hv__cuda_bn_split(nb, c, hw);
    bn_part_k<<<(unsigned)(c * sp), HV_CUDA_THREADS, 0, s>>>(mode, x, dy, nb, c, hw, sp, red, mean,
                                                             istd, part);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    bn_total_k<<<hv_cuda_grid(c), HV_CUDA_THREADS, 0, s>>>(mode, nb, c, hw, sp, part, red, mean,
                                                           count, dgamma, dbeta);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_bn_sums(cudaStream_t s, const float *x, int64_t nb, int64_t c,
                                        int64_t hw, float *red, double *part)
{
    return bn_sum_pass(s, BN_SUMS, x, NULL, nb, c, hw, red, NULL, NULL, NULL, NULL, NULL, part);
}

extern "C" cudaError_t hv__cuda_bn_squares(cudaStream_t s, const float *x, int64_t nb, int64_t c,
                                           int64_t hw, float *red, float *mean, float *count,
                                           double *part)
{
    return bn_sum_pass(s, BN_SQUARES, x, NULL, nb, c, hw, red, mean, NULL, count, NULL, NULL,
                       part);
}

extern "C" cudaError_t hv__cuda_bn_finish(cudaStream_t s, int64_t c, const float *red,
                                          const float *mean, const float *count, double mom,
                                          double eps, float *rm, float *rv, float *istd)
{
    bn_finish_k<<<hv_cuda_grid(c), HV_CUDA_THREADS, 0, s>>>(c, red, mean, count, mom, eps, rm, rv,
                                                            istd);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_bn_eval(cudaStream_t s, int64_t c, const float *rm,
                                        const float *rv, double eps, double items, float *mean,
                                        float *istd, float *count)
{
    bn_eval_k<<<hv_cuda_grid(c), HV_CUDA_THREADS, 0, s>>>(c, rm, rv, eps, items, mean, istd,
                                                          count);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_bn_apply(cudaStream_t s, const float *x, float *y,
                                         const float *gamma, const float *beta, const float *mean,
                                         const float *istd, int64_t numel, int64_t c, int64_t hw)
{
    bn_apply_k<<<hv_cuda_grid(numel), HV_CUDA_THREADS, 0, s>>>(x, y, gamma, beta, mean, istd,
                                                               numel, c, hw);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_bn_grad_sums(cudaStream_t s, const float *x, const float *dy,
                                             const float *mean, const float *istd, int64_t nb,
                                             int64_t c, int64_t hw, float *dgamma, float *dbeta,
                                             float *red, double *part)
{
    return bn_sum_pass(s, BN_GRADS, x, dy, nb, c, hw, red, (float *)mean, istd, NULL, dgamma,
                       dbeta, part);
}

extern "C" cudaError_t hv__cuda_bn_grad_x(cudaStream_t s, const float *x, const float *dy,
                                          float *dx, const float *gamma, const float *mean,
                                          const float *istd, const float *red, const float *count,
                                          int64_t numel, int64_t c, int64_t hw, int training)
{
    bn_grad_x_k<<<hv_cuda_grid(numel), HV_CUDA_THREADS, 0, s>>>(x, dy, dx, gamma, mean, istd, red,
                                                                count, numel, c, hw, training);
    return cudaGetLastError();
}

/* ----------------------------------------------------------- max pooling */

__global__ static void maxpool_fwd_k(const float *x, float *y, float *arg, int64_t nc, int64_t h,
                                     int64_t w, int64_t ho, int64_t wo, int k, int st, int p)
{
    HV_GRID_LOOP(o, nc * ho * wo)
    {
        const int64_t q = o / (ho * wo), i = (o / wo) % ho, j = o % wo;
        const float *xp = x + q * h * w;
        float best = -INFINITY;
        int64_t a = -1;
        for (int64_t ky = 0; ky < k; ky++) {
            const int64_t yy = i * st - p + ky;
            if (yy < 0 || yy >= h) continue;
            for (int64_t kx = 0; kx < k; kx++) {
                const int64_t xx = j * st - p + kx;
                if (xx < 0 || xx >= w) continue;
                if (a < 0 || xp[yy * w + xx] > best) {
                    best = xp[yy * w + xx];
                    a = yy * w + xx;
                }
            }
        }
        y[o] = best;
        arg[o] = (float)a;
    }
}

/* outputs [lo, hi] along one axis whose window (size k, stride st, padding
 * p) holds input position v; empty when lo > hi */
__device__ static inline void pool_range(int64_t v, int64_t n_out, int k, int st, int p,
                                         int64_t *lo, int64_t *hi)
{
    const int64_t num = v + p - k + 1; /* i st - p + k - 1 >= v */
    *lo = num <= 0 ? 0 : (num + st - 1) / st;
    *hi = (v + p) / st; /* i st - p <= v */
    if (*hi > n_out - 1) *hi = n_out - 1;
}

__global__ static void maxpool_bwd_k(const float *dy, const float *arg, float *dx, int64_t nc,
                                     int64_t h, int64_t w, int64_t ho, int64_t wo, int k, int st,
                                     int p)
{
    HV_GRID_LOOP(e, nc * h * w)
    {
        const int64_t q = e / (h * w), r = e % (h * w), yy = r / w, xx = r % w;
        int64_t i0, i1, j0, j1;
        pool_range(yy, ho, k, st, p, &i0, &i1);
        pool_range(xx, wo, k, st, p, &j0, &j1);
        float acc = dx[e];
        for (int64_t i = i0; i <= i1; i++)
            for (int64_t j = j0; j <= j1; j++) {
                const int64_t o = (q * ho + i) * wo + j;
                if ((int64_t)arg[o] == r) acc += dy[o];
            }
        dx[e] = acc;
    }
}

extern "C" cudaError_t hv__cuda_maxpool_fwd(cudaStream_t s, const float *x, float *y, float *arg,
                                            int64_t nc, int64_t h, int64_t w, int64_t ho,
                                            int64_t wo, int k, int st, int p)
{
    maxpool_fwd_k<<<hv_cuda_grid(nc * ho * wo), HV_CUDA_THREADS, 0, s>>>(x, y, arg, nc, h, w, ho,
                                                                         wo, k, st, p);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_maxpool_bwd(cudaStream_t s, const float *dy, const float *arg,
                                            float *dx, int64_t nc, int64_t h, int64_t w,
                                            int64_t ho, int64_t wo, int k, int st, int p)
{
    maxpool_bwd_k<<<hv_cuda_grid(nc * h * w), HV_CUDA_THREADS, 0, s>>>(dy, arg, dx, nc, h, w, ho,
                                                                       wo, k, st, p);
    return cudaGetLastError();
}

/* ----------------------------------------------------------------- Sobel */

__constant__ float sobel_gx[3][3] = {{-1, 0, 1}, {-2, 0, 2}, {-1, 0, 1}};
__constant__ float sobel_gy[3][3] = {{1, 2, 1}, {0, 0, 0}, {-1, -2, -1}};

__device__ static inline int64_t clampi(int64_t v, int64_t hi)
{
    return v < 0 ? 0 : (v > hi ? hi : v);
}

/* the two responses at pixel (i, j) of img (h x w, edges replicated) */
__device__ static inline void sobel_at(const float *img, int64_t h, int64_t w, int64_t i,
                                       int64_t j, float *gx, float *gy)
{
    float sx = 0, sy = 0;
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const float v = img[clampi(i + ky - 1, h - 1) * w + clampi(j + kx - 1, w - 1)];
            sx += sobel_gx[ky][kx] * v;
            sy += sobel_gy[ky][kx] * v;
        }
    *gx = sx;
    *gy = sy;
}

__global__ static void sobel_fwd_k(const float *x, float *y, int64_t nb, int64_t h, int64_t w)
{
    HV_GRID_LOOP(o, nb * h * w)
    {
        const int64_t b = o / (h * w), i = (o / w) % h, j = o % w;
        float gx, gy;
        sobel_at(x + b * h * w, h, w, i, j, &gx, &gy);
        const float mag = sqrtf(gx * gx + gy * gy);
        y[o] = mag < 1.0f ? mag : 1.0f;
    }
}

/* input pixel (r, s): the taps of outputs (i, j) within one pixel of it (the
 * only ones whose clamped taps reach it), in the reference's order */
__global__ static void sobel_bwd_k(const float *x, const float *dy, float *dx, int64_t nb,
                                   int64_t h, int64_t w)
{
    HV_GRID_LOOP(e, nb * h * w)
    {
        const int64_t b = e / (h * w), r = (e / w) % h, s = e % w;
        const float *img = x + b * h * w;
        float acc = dx[e];
        for (int64_t i = r > 0 ? r - 1 : 0; i <= r + 1 && i < h; i++)
            for (int64_t j = s > 0 ? s - 1 : 0; j <= s + 1 && j < w; j++) {
                float gx, gy;
                sobel_at(img, h, w, i, j, &gx, &gy);
                const float mag = sqrtf(gx * gx + gy * gy);
                if (!(mag > 0.0f && mag < 1.0f)) continue; /* clipped or zero: no gradient */
                const float g = dy[b * h * w + i * w + j];
                const float dgx = g * gx / mag, dgy = g * gy / mag;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        if (clampi(i + ky - 1, h - 1) == r && clampi(j + kx - 1, w - 1) == s)
                            acc += dgx * sobel_gx[ky][kx] + dgy * sobel_gy[ky][kx];
            }
        dx[e] = acc;
    }
}

extern "C" cudaError_t hv__cuda_sobel_fwd(cudaStream_t s, const float *x, float *y, int64_t nb,
                                          int64_t h, int64_t w)
{
    sobel_fwd_k<<<hv_cuda_grid(nb * h * w), HV_CUDA_THREADS, 0, s>>>(x, y, nb, h, w);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_sobel_bwd(cudaStream_t s, const float *x, const float *dy,
                                          float *dx, int64_t nb, int64_t h, int64_t w)
{
    sobel_bwd_k<<<hv_cuda_grid(nb * h * w), HV_CUDA_THREADS, 0, s>>>(x, dy, dx, nb, h, w);
    return cudaGetLastError();
}

/* --------------------------------------------------------- spectral norm */

#define SN_THREADS 1024

/* x[0..n) /= max(||x||, 1e-12) (PyTorch's normalize), by the whole block */
__device__ static void sn_normalise(float *x, int64_t n, double *sh)
{
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += (double)x[i] * x[i];
    const double d = fmax(sqrt(hv_block_sum(s, sh)), 1e-12);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) x[i] = (float)(x[i] / d);
    __syncthreads();
}

/* one block: [v = W^T u, normalised; u = W v, normalised;] sigma = u^T W v */
__global__ static void sn_power_k(const float *W, float *u, float *v, int64_t h, int64_t wd,
                                  int training, float *sigma, float *inv)
{
    __shared__ double sh[32];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (training) {
        for (int64_t j = threadIdx.x; j < wd; j += blockDim.x) {
            double s = 0;
            for (int64_t i = 0; i < h; i++) s += (double)W[i * wd + j] * u[i];
            v[j] = (float)s;
        }
        __syncthreads();
        sn_normalise(v, wd, sh);
        for (int64_t i = wid; i < h; i += nw) { /* warp per row */
            double s = 0;
            for (int64_t j = lane; j < wd; j += 32) s += (double)W[i * wd + j] * v[j];
            s = hv_warp_sum(s);
            if (lane == 0) u[i] = (float)s;
        }
        __syncthreads();
        sn_normalise(u, h, sh);
    }
    double acc = 0; /* lane 0 of each warp: its rows' u_i (W v)_i */
    for (int64_t i = wid; i < h; i += nw) {
        double s = 0;
        for (int64_t j = lane; j < wd; j += 32) s += (double)W[i * wd + j] * v[j];
        s = hv_warp_sum(s);
        if (lane == 0) acc += u[i] * s;
    }
    const double sg = hv_block_sum(lane == 0 ? acc : 0.0, sh);
    if (threadIdx.x == 0) {
        sigma[0] = (float)sg;
        inv[0] = (float)(1.0 / sg);
    }
}

__global__ static void sn_scale_k(const float *W, const float *inv, float *y, int64_t n)
{
    const float f = inv[0];
    HV_GRID_LOOP(k, n) y[k] = W[k] * f;
}

__global__ static void sn_bwd_k(const float *u, const float *v, const float *G,
                                const float *sigma, const double *gw, float *dW, int64_t h,
                                int64_t wd)
{
    const double sg = sigma[0], c = gw[0] / (sg * sg);
    HV_GRID_LOOP(k, h * wd)
    {
        const int64_t i = k / wd, j = k % wd;
        dW[k] += (float)(G[k] / sg - c * u[i] * v[j]);
    }
}

extern "C" cudaError_t hv__cuda_sn_fwd(cudaStream_t s, const float *W, float *u, float *v,
                                       int64_t h, int64_t wd, int training, float *sigma,
                                       float *y, float *ws)
{
    sn_power_k<<<1, SN_THREADS, 0, s>>>(W, u, v, h, wd, training, sigma, ws);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    sn_scale_k<<<hv_cuda_grid(h * wd), HV_CUDA_THREADS, 0, s>>>(W, ws, y, h * wd);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_sn_bwd(cudaStream_t s, const float *W, const float *u,
                                       const float *v, const float *G, const float *sigma,
                                       float *dW, int64_t h, int64_t wd, double *ws)
{
    double *gw = ws + HV_CUDA_RED_PARTS;
    cudaError_t e = hv__cuda_dot(s, G, W, h * wd, ws, gw);
    if (e != cudaSuccess) return e;
    sn_bwd_k<<<hv_cuda_grid(h * wd), HV_CUDA_THREADS, 0, s>>>(u, v, G, sigma, gw, dW, h, wd);
    return cudaGetLastError();
}
