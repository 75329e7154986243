/*
 * ctx_attn_kernels.cu: the kernels of the CUDA backend's contextual
 * attention (interface in ctx_attn_kernels.h; the GEMMs are cuBLAS calls in
 * ctx_attn_cuda.c). Each kernel is one loop of src/nn/cpu/ref_ctx_attn.c
 * with the same arithmetic: the same float/double accumulators, the same
 * order of the per-element terms where a thread owns an element (diagonal
 * fuse, the patch norms, the norm backward); the row reductions of the
 * softmax run as block reductions, so they sum in another order than the
 * host loop (float rounding only).
 *
 * Elementwise kernels are grid-stride loops with 64-bit indices; the row
 * kernels (softmax) take one block of HV_CUDA_THREADS threads per row.
 * col2im gathers: each image pixel sums the columns that cover it, so no
 * atomics and a deterministic result (the host loop scatters; the sums are
 * the same terms in another order).
 */
#include <math.h>

#include "block_reduce.cuh"
#include "ctx_attn_kernels.h"

#include "cuda_grid.cuh"

/* ---------------------------------------------------------- reductions */

/* ------------------------------------------------------- im2col/col2im */

__global__ static void im2col_k(hv_cuda_geom g, const float *img, float alpha, float *col)
{
    const int64_t hw = g.ho * g.wo, n = g.c * g.kk * g.kk * hw;
    HV_GRID_LOOP(idx, n)
    {
        const int64_t rr = idx / hw, pos = idx - rr * hw;
        const int64_t kx = rr % g.kk, ky = (rr / g.kk) % g.kk, ch = rr / (g.kk * g.kk);
        const int64_t oy = pos / g.wo, ox = pos - oy * g.wo;
        const int64_t iy = oy * g.s - g.p + ky, ix = ox * g.s - g.p + kx;
        col[idx] = (iy >= 0 && iy < g.ih && ix >= 0 && ix < g.iw)
                       ? alpha * img[ch * g.plane + (iy * g.row + ix) * g.step]
                       : 0.0f;
    }
}

__global__ static void col2im_k(hv_cuda_geom g, const float *col, float alpha, int accumulate,
                                float *img)
{
    const int64_t hw = g.ho * g.wo, n = g.c * g.ih * g.iw;
    HV_GRID_LOOP(idx, n)
    {
        const int64_t ch = idx / (g.ih * g.iw), rest = idx - ch * g.ih * g.iw;
        const int64_t iy = rest / g.iw, ix = rest - iy * g.iw;
        float acc = 0.0f;
        for (int64_t ky = 0; ky < g.kk; ky++) {
            const int64_t ty = iy + g.p - ky; /* = oy * s */
            if (ty < 0 || ty % g.s) continue;
            const int64_t oy = ty / g.s;
            if (oy >= g.ho) continue;
            for (int64_t kx = 0; kx < g.kk; kx++) {
                const int64_t tx = ix + g.p - kx;
                if (tx < 0 || tx % g.s) continue;
                const int64_t ox = tx / g.s;
                if (ox >= g.wo) continue;
                acc += col[((ch * g.kk + ky) * g.kk + kx) * hw + oy * g.wo + ox];
            }
        }
        float *d = img + ch * g.plane + (iy * g.row + ix) * g.step;
        *d = accumulate ? *d + alpha * acc : alpha * acc;
    }
}

/* ------------------------------------------------------ the score side */

__global__ static void colnorm_k(const float *col, int64_t rows, int64_t l, float *nrm)
{
    HV_GRID_LOOP(j, l)
    {
        float acc = 0.0f;
        for (int64_t r = 0; r < rows; r++) acc += col[r * l + j] * col[r * l + j];
        nrm[j] = fmaxf(sqrtf(acc), 1e-4f);
    }
}

__global__ static void divcols_k(const float *in, const float *nrm, int64_t n, int64_t l,
                                 float *out)
{
    HV_GRID_LOOP(idx, n) out[idx] = in[idx] / nrm[idx % l];
}

/* transposed position of row-major index a over hs x ws, and back */
__device__ static int64_t tpos(int64_t a, int64_t hs, int64_t ws) { return (a % ws) * hs + a / ws; }
__device__ static int64_t tperm(int64_t t, int64_t hs, int64_t ws) { return (t % hs) * ws + t / hs; }

__global__ static void diag_k(const float *in, int64_t hs, int64_t ws, int64_t half,
                              int transposed, float *out)
{
    const int64_t l = hs * ws;
    HV_GRID_LOOP(idx, l * l)
    {
        const int64_t a = idx / l, b = idx - a * l;
        float acc = 0.0f;
        if (!transposed) {
            for (int64_t k = -half; k <= half; k++) {
                const int64_t ak = a + k, bk = b + k;
                if (ak < 0 || ak >= l || bk < 0 || bk >= l) continue;
                acc += in[ak * l + bk];
            }
        } else {
            const int64_t ta = tpos(a, hs, ws), tb = tpos(b, hs, ws);
            for (int64_t k = -half; k <= half; k++) {
                const int64_t ak = ta + k, bk = tb + k;
                if (ak < 0 || ak >= l || bk < 0 || bk >= l) continue;
                acc += in[tperm(ak, hs, ws) * l + tperm(bk, hs, ws)];
            }
        }
        out[idx] = acc;
    }
}

__global__ static void valid_k(const float *mask, int64_t hs, int64_t ws, int64_t q, int64_t half,
                               float *mm)
{
    const int64_t wm = ws * q;
    HV_GRID_LOOP(idx, hs * ws)
    {
        const int64_t ly = idx / ws, lx = idx - ly * ws;
        double s = 0;
        for (int64_t ky = -half; ky <= half; ky++)
            for (int64_t kx = -half; kx <= half; kx++) {
                const int64_t y = ly + ky, x = lx + kx;
                if (y < 0 || y >= hs || x < 0 || x >= ws) continue;
                s += mask[(y * q) * wm + x * q];
            }
        mm[idx] = s == 0.0 ? 1.0f : 0.0f;
    }
}

/* ------------------------------------------------------------- softmax */

__global__ static void softmax_fwd_k(const float *sc, const float *mm, int64_t l, float scale,
                                     float *att)
{
    __shared__ float shf[32];
    for (int64_t p = blockIdx.x; p < l; p += gridDim.x) {
        const float *sp = sc + p * l;
        float *ap = att + p * l;
        float mx = -INFINITY;
        for (int64_t j = threadIdx.x; j < l; j += blockDim.x) {
            const float v = scale * sp[j] * mm[j];
            ap[j] = v;
            mx = v > mx ? v : mx;
        }
        mx = block_reduce(mx, op_max(), -INFINITY, shf);
        float sum = 0.0f;
        for (int64_t j = threadIdx.x; j < l; j += blockDim.x) { /* this thread's own ap[j] */
            const float e = expf(ap[j] - mx);
            ap[j] = e;
            sum += e;
        }
        sum = block_reduce(sum, op_add_f(), 0.0f, shf);
        const float inv = 1.0f / sum;
        for (int64_t j = threadIdx.x; j < l; j += blockDim.x) ap[j] *= inv * mm[j];
    }
}

__global__ static void softmax_bwd_k(const float *att, const float *datt, const float *mm,
                                     int64_t l, float scale, float *ds)
{
    __shared__ double shd[32];
    for (int64_t p = blockIdx.x; p < l; p += gridDim.x) {
        const float *ap = att + p * l, *gp = datt + p * l;
        float *dp = ds + p * l;
        double dot = 0;
        for (int64_t j = threadIdx.x; j < l; j += blockDim.x) dot += (double)ap[j] * gp[j] * mm[j];
        dot = block_reduce(dot, op_add_d(), 0.0, shd);
        const float fdot = (float)dot;
        for (int64_t j = threadIdx.x; j < l; j += blockDim.x)
            dp[j] = mm[j] * scale * ap[j] * (gp[j] * mm[j] - fdot);
    }
}

/* ------------------------------------------------------ norm backward */

__global__ static void norm_bwd_k(const float *colb, const float *wn, const float *nrm,
                                  int64_t rows, int64_t l, float *g)
{
    HV_GRID_LOOP(j, l)
    {
        double raw = 0, dot = 0;
        for (int64_t r = 0; r < rows; r++) {
            raw += (double)colb[r * l + j] * colb[r * l + j];
            dot += (double)wn[r * l + j] * g[r * l + j];
        }
        const int clipped = !(sqrt(raw) > 1e-4);
        for (int64_t r = 0; r < rows; r++) {
            const float gwn = g[r * l + j];
            g[r * l + j] = clipped ? gwn / nrm[j] : (float)((gwn - wn[r * l + j] * dot) / nrm[j]);
        }
    }
}

/* ------------------------------------------------------------ launchers */

extern "C" cudaError_t hv__cuda_im2col(cudaStream_t s, hv_cuda_geom g, const float *img,
                                       float alpha, float *col)
{
    im2col_k<<<hv_cuda_grid(g.c * g.kk * g.kk * g.ho * g.wo), HV_CUDA_THREADS, 0, s>>>(g, img, alpha,
                                                                                  col);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_col2im(cudaStream_t s, hv_cuda_geom g, const float *col,
                                       float alpha, int accumulate, float *img)
{
    col2im_k<<<hv_cuda_grid(g.c * g.ih * g.iw), HV_CUDA_THREADS, 0, s>>>(g, col, alpha, accumulate,
                                                                    img);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_colnorm(cudaStream_t s, const float *col, int64_t rows,
                                           int64_t l, float *nrm)
{
    colnorm_k<<<hv_cuda_grid(l), HV_CUDA_THREADS, 0, s>>>(col, rows, l, nrm);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_divcols(cudaStream_t s, const float *in, const float *nrm,
                                           int64_t rows, int64_t l, float *out)
{
    divcols_k<<<hv_cuda_grid(rows * l), HV_CUDA_THREADS, 0, s>>>(in, nrm, rows * l, l, out);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_diag(cudaStream_t s, const float *in, int64_t hs, int64_t ws,
                                        int64_t half, int transposed, float *out)
{
    const int64_t l = hs * ws;
    diag_k<<<hv_cuda_grid(l * l), HV_CUDA_THREADS, 0, s>>>(in, hs, ws, half, transposed, out);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_valid(cudaStream_t s, const float *mask, int64_t hs,
                                         int64_t ws, int64_t q, int64_t half, float *mm)
{
    valid_k<<<hv_cuda_grid(hs * ws), HV_CUDA_THREADS, 0, s>>>(mask, hs, ws, q, half, mm);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_softmax_fwd(cudaStream_t s, const float *sc, const float *mm,
                                               int64_t l, float scale, float *att)
{
    softmax_fwd_k<<<hv_cuda_rows(l), HV_CUDA_THREADS, 0, s>>>(sc, mm, l, scale, att);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_softmax_bwd(cudaStream_t s, const float *att,
                                               const float *datt, const float *mm, int64_t l,
                                               float scale, float *ds)
{
    softmax_bwd_k<<<hv_cuda_rows(l), HV_CUDA_THREADS, 0, s>>>(att, datt, mm, l, scale, ds);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_ca_norm_bwd(cudaStream_t s, const float *colb, const float *wn,
                                            const float *nrm, int64_t rows, int64_t l, float *g)
{
    norm_bwd_k<<<hv_cuda_grid(l), HV_CUDA_THREADS, 0, s>>>(colb, wn, nrm, rows, l, g);
    return cudaGetLastError();
}
