/*
 * shape_kernels.h: the CUDA backend's kernels for the generator's shape and
 * channel ops (shape_kernels.cu), called from their dispatch (shape_cuda.c).
 * Private to src/gpu.
 *
 * Every launcher queues its kernel on `stream` and returns the launch status
 * (cudaGetLastError). Pointers are device memory owned by the caller; nc is
 * the number of N*C planes. The arithmetic is that of the reference kernels
 * (src/nn/cpu/ref_ops.c; AOT-GAN's, in aot_kernels.cu, those of
 * src/nn/cpu/ref_ops_aot.c): forward writes y, backward ADDS into dx.
 */
#ifndef HV_GPU_SHAPE_KERNELS_H
#define HV_GPU_SHAPE_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* nearest upsampling by f of nc planes hi x wi: y (nc, hi f, wi f) */
cudaError_t hv__cuda_upsample_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                  int64_t hi, int64_t wi, int64_t f);
cudaError_t hv__cuda_upsample_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc,
                                  int64_t hi, int64_t wi, int64_t f);
/* nearest downsampling by f (index i*f) to nc planes ho x wo */
cudaError_t hv__cuda_downsample_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                    int64_t ho, int64_t wo, int64_t f);
cudaError_t hv__cuda_downsample_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc,
                                    int64_t ho, int64_t wo, int64_t f);
/* outer blocks of len floats: dst[o*dstride + doff + k] = (or += when
 * accumulate) src[o*sstride + soff + k], k < len (concat, slice) */
cudaError_t hv__cuda_block_copy(cudaStream_t s, const float *src, int64_t sstride, int64_t soff,
                                float *dst, int64_t dstride, int64_t doff, int64_t outer,
                                int64_t len, int accumulate);
/* zero padding of nc planes h x w by top t, left l into ho x wo */
cudaError_t hv__cuda_pad_fwd(cudaStream_t s, const float *x, float *y, int64_t nc, int64_t h,
                             int64_t w, int64_t ho, int64_t wo, int64_t t, int64_t l);
cudaError_t hv__cuda_pad_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc, int64_t h,
                             int64_t w, int64_t ho, int64_t wo, int64_t t, int64_t l);
/* global average pool of nc planes of hw: y[p] = mean (summed in double) */
cudaError_t hv__cuda_gap_fwd(cudaStream_t s, const float *x, float *y, int64_t nc, int64_t hw);
cudaError_t hv__cuda_gap_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc, int64_t hw);
/* y = x * sc[plane]; backward dx += dy sc[plane] (dx may be NULL), dsc[q]
 * += sum_j dy x (in double; dsc may be NULL) */
cudaError_t hv__cuda_chmul_fwd(cudaStream_t s, const float *x, const float *sc, float *y,
                               int64_t nc, int64_t hw);
cudaError_t hv__cuda_chmul_bwd(cudaStream_t s, const float *x, const float *sc, const float *dy,
                               float *dx, float *dsc, int64_t nc, int64_t hw);
/* linear's bias: y[i][j] += b[j]; db[j] += sum_i dy[i][j] (i in order) */
cudaError_t hv__cuda_bias_rows(cudaStream_t s, float *y, const float *b, int64_t rows,
                               int64_t cols);
cudaError_t hv__cuda_bias_rows_grad(cudaStream_t s, const float *dy, float *db, int64_t rows,
                                    int64_t cols);

/* AOT-GAN's ops (aot_kernels.cu). Reflection padding of nc planes h x w by
 * top t, left l into ho x wo (every pad below its axis); the backward
 * gathers, in the reference's order. */
cudaError_t hv__cuda_reflect_pad_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                     int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t t,
                                     int64_t l);
cudaError_t hv__cuda_reflect_pad_bwd(cudaStream_t s, const float *dy, float *dx, int64_t nc,
                                     int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t t,
                                     int64_t l);
/* bilinear upsampling by f (align_corners) of nc planes h x w into
 * (h f) x (w f); the backward gathers, in the reference's order */
cudaError_t hv__cuda_upsample_bilinear_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                           int64_t h, int64_t w, int64_t f);
cudaError_t hv__cuda_upsample_bilinear_bwd(cudaStream_t s, const float *dy, float *dx,
                                           int64_t nc, int64_t h, int64_t w, int64_t f);
/* aot_norm of nc planes of m >= 2 elements (statistics in double); the
 * backward reads x (recomputing mean and std) and dy */
cudaError_t hv__cuda_aot_norm_fwd(cudaStream_t s, const float *x, float *y, int64_t nc,
                                  int64_t m);
cudaError_t hv__cuda_aot_norm_bwd(cudaStream_t s, const float *x, const float *dy, float *dx,
                                  int64_t nc, int64_t m);

#ifdef __cplusplus
}
#endif
#endif /* HV_GPU_SHAPE_KERNELS_H */
