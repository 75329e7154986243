/*
 * shape_kernels.cu: the CUDA backend's kernels for upsample, downsample,
 * concat/slice (one strided block copy), pad, global average pooling,
 * channel_mul and linear's bias (interface in shape_kernels.h).
 *
 * One thread per output element (forward) or per gradient element it owns
 * (backward), grid-stride loops with 64-bit indices, so the backward
 * accumulations need no atomics: upsampling's backward gathers the f x f
 * block of each input pixel in the reference's order, added one term at a
 * time into dx as the host loop does. The plane sums (gap forward,
 * channel_mul's scale gradient) are double accumulations as in the
 * reference, one block per plane (tree order instead of the host's
 * sequential one: double rounding only).
 */
#include "block_reduce.cuh"
#include "shape_kernels.h"

#include "cuda_grid.cuh"

__global__ static void upsample_fwd_k(const float *x, float *y, int64_t nc, int64_t hi,
                                      int64_t wi, int64_t f)
{
    const int64_t ho = hi * f, wo = wi * f;
    HV_GRID_LOOP(idx, nc * ho * wo)
    {
        const int64_t p = idx / (ho * wo), rest = idx - p * ho * wo;
        const int64_t yy = rest / wo, xx = rest - yy * wo;
        y[idx] = x[p * hi * wi + (yy / f) * wi + xx / f];
    }
}

__global__ static void upsample_bwd_k(const float *dy, float *dx, int64_t nc, int64_t hi,
                                      int64_t wi, int64_t f)
{
    const int64_t ho = hi * f, wo = wi * f;
    HV_GRID_LOOP(idx, nc * hi * wi)
    {
        const int64_t p = idx / (hi * wi), rest = idx - p * hi * wi;
        const int64_t i = rest / wi, j = rest - i * wi;
        const float *yp = dy + p * ho * wo;
        float v = dx[idx];
        for (int64_t r = 0; r < f; r++)
            for (int64_t c = 0; c < f; c++) v += yp[(i * f + r) * wo + j * f + c];
        dx[idx] = v;
    }
}

__global__ static void downsample_k(const float *src, float *dst, int64_t nc, int64_t ho,
                                    int64_t wo, int64_t f, int backward)
{
    const int64_t hi = ho * f, wi = wo * f;
    HV_GRID_LOOP(idx, nc * ho * wo)
    {
        const int64_t p = idx / (ho * wo), rest = idx - p * ho * wo;
        const int64_t i = rest / wo, j = rest - i * wo;
        const int64_t xi = p * hi * wi + i * f * wi + j * f;
        if (backward)
            dst[xi] += src[idx]; /* src = dy, dst = dx: distinct targets */
        else
            dst[idx] = src[xi];
    }
}

__global__ static void block_copy_k(const float *src, int64_t sstride, int64_t soff, float *dst,
                                    int64_t dstride, int64_t doff, int64_t outer, int64_t len,
                                    int accumulate)
{
    HV_GRID_LOOP(idx, outer * len)
    {
        const int64_t o = idx / len, k = idx - o * len;
        const float v = src[o * sstride + soff + k];
        float *d = dst + o * dstride + doff + k;
        *d = accumulate ? *d + v : v;
    }
}

__global__ static void pad_fwd_k(const float *x, float *y, int64_t nc, int64_t h, int64_t w,
                                 int64_t ho, int64_t wo, int64_t t, int64_t l)
{
    HV_GRID_LOOP(idx, nc * ho * wo)
    {
        const int64_t p = idx / (ho * wo), rest = idx - p * ho * wo;
        const int64_t iy = rest / wo - t, ix = rest % wo - l;
        y[idx] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(p * h + iy) * w + ix] : 0.0f;
    }
}

__global__ static void pad_bwd_k(const float *dy, float *dx, int64_t nc, int64_t h, int64_t w,
                                 int64_t ho, int64_t wo, int64_t t, int64_t l)
{
    HV_GRID_LOOP(idx, nc * h * w)
    {
        const int64_t p = idx / (h * w), rest = idx - p * h * w;
        const int64_t i = rest / w, j = rest - i * w;
        dx[idx] += dy[p * ho * wo + (i + t) * wo + j + l];
    }
}

__global__ static void gap_fwd_k(const float *x, float *y, int64_t nc, int64_t hw)
{
    __shared__ double sh[32];
    for (int64_t p = blockIdx.x; p < nc; p += gridDim.x) {
        double s = 0;
        for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) s += x[p * hw + j];
        s = block_reduce(s, op_add_d(), 0.0, sh);
        if (threadIdx.x == 0) y[p] = (float)(s / (double)hw);
    }
}

__global__ static void gap_bwd_k(const float *dy, float *dx, int64_t nc, int64_t hw)
{
    HV_GRID_LOOP(idx, nc * hw) dx[idx] += dy[idx / hw] / (float)hw;
}

__global__ static void chmul_fwd_k(const float *x, const float *sc, float *y, int64_t nc,
                                   int64_t hw)
{
    HV_GRID_LOOP(idx, nc * hw) y[idx] = x[idx] * sc[idx / hw];
}

__global__ static void chmul_dx_k(const float *sc, const float *dy, float *dx, int64_t nc,
                                  int64_t hw)
{
    HV_GRID_LOOP(idx, nc * hw) dx[idx] += dy[idx] * sc[idx / hw];
}

__global__ static void chmul_ds_k(const float *x, const float *dy, float *dsc, int64_t nc,
                                  int64_t hw)
{
    __shared__ double sh[32];
    for (int64_t q = blockIdx.x; q < nc; q += gridDim.x) {
        double acc = 0;
        for (int64_t j = threadIdx.x; j < hw; j += blockDim.x)
            acc += (double)dy[q * hw + j] * x[q * hw + j];
        acc = block_reduce(acc, op_add_d(), 0.0, sh);
        if (threadIdx.x == 0) dsc[q] += (float)acc;
    }
}

__global__ static void bias_rows_k(float *y, const float *b, int64_t rows, int64_t cols)
{
    HV_GRID_LOOP(idx, rows * cols) y[idx] += b[idx % cols];
}

__global__ static void bias_rows_grad_k(const float *dy, float *db, int64_t rows, int64_t cols)
{
    HV_GRID_LOOP(j, cols)
    {
        float v = db[j];
        for (int64_t i = 0; i < rows; i++) v += dy[i * cols + j];
        db[j] = v;
    }
}

/* ------------------------------------------------------------ launchers */

extern "C" cudaError_t hv__cuda_upsample_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                             int64_t hi, int64_t wi, int64_t f)
{
    upsample_fwd_k<<<hv_cuda_grid(nc * hi * f * wi * f), HV_CUDA_THREADS, 0, s>>>(x, y, nc, hi, wi, f);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_upsample_bwd(cudaStream_t s, const float *dy, float *dx,
                                             int64_t nc, int64_t hi, int64_t wi, int64_t f)
{
    upsample_bwd_k<<<hv_cuda_grid(nc * hi * wi), HV_CUDA_THREADS, 0, s>>>(dy, dx, nc, hi, wi, f);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_downsample_fwd(cudaStream_t s, const float *x, float *y,
                                               int64_t nc, int64_t ho, int64_t wo, int64_t f)
{
    downsample_k<<<hv_cuda_grid(nc * ho * wo), HV_CUDA_THREADS, 0, s>>>(x, y, nc, ho, wo, f, 0);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_downsample_bwd(cudaStream_t s, const float *dy, float *dx,
                                               int64_t nc, int64_t ho, int64_t wo, int64_t f)
{
    downsample_k<<<hv_cuda_grid(nc * ho * wo), HV_CUDA_THREADS, 0, s>>>(dy, dx, nc, ho, wo, f, 1);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_block_copy(cudaStream_t s, const float *src, int64_t sstride,
                                           int64_t soff, float *dst, int64_t dstride,
                                           int64_t doff, int64_t outer, int64_t len,
                                           int accumulate)
{
    block_copy_k<<<hv_cuda_grid(outer * len), HV_CUDA_THREADS, 0, s>>>(src, sstride, soff, dst, dstride,
                                                                  doff, outer, len, accumulate);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_pad_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                        int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t t,
                                        int64_t l)
{
    pad_fwd_k<<<hv_cuda_grid(nc * ho * wo), HV_CUDA_THREADS, 0, s>>>(x, y, nc, h, w, ho, wo, t, l);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_pad_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc,
                                        int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t t,
                                        int64_t l)
{
    pad_bwd_k<<<hv_cuda_grid(nc * h * w), HV_CUDA_THREADS, 0, s>>>(dy, dx, nc, h, w, ho, wo, t, l);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_gap_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                        int64_t hw)
{
    gap_fwd_k<<<hv_cuda_rows(nc), HV_CUDA_THREADS, 0, s>>>(x, y, nc, hw);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_gap_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc,
                                        int64_t hw)
{
    gap_bwd_k<<<hv_cuda_grid(nc * hw), HV_CUDA_THREADS, 0, s>>>(dy, dx, nc, hw);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_chmul_fwd(cudaStream_t s, const float *x, const float *sc,
                                          float *y, int64_t nc, int64_t hw)
{
    chmul_fwd_k<<<hv_cuda_grid(nc * hw), HV_CUDA_THREADS, 0, s>>>(x, sc, y, nc, hw);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_chmul_bwd(cudaStream_t s, const float *x, const float *sc,
                                          const float *dy, float *dx, float *dsc, int64_t nc,
                                          int64_t hw)
{
    if (dx) {
        chmul_dx_k<<<hv_cuda_grid(nc * hw), HV_CUDA_THREADS, 0, s>>>(sc, dy, dx, nc, hw);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    if (dsc) {
        chmul_ds_k<<<hv_cuda_rows(nc), HV_CUDA_THREADS, 0, s>>>(x, dy, dsc, nc, hw);
        return cudaGetLastError();
    }
    return cudaSuccess;
}

extern "C" cudaError_t hv__cuda_bias_rows(cudaStream_t s, float *y, const float *b, int64_t rows,
                                          int64_t cols)
{
    bias_rows_k<<<hv_cuda_grid(rows * cols), HV_CUDA_THREADS, 0, s>>>(y, b, rows, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t hv__cuda_bias_rows_grad(cudaStream_t s, const float *dy, float *db,
                                               int64_t rows, int64_t cols)
{
    bias_rows_grad_k<<<hv_cuda_grid(cols), HV_CUDA_THREADS, 0, s>>>(dy, db, rows, cols);
    return cudaGetLastError();
}
