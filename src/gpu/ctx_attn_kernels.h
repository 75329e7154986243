/*
 * ctx_attn_kernels.h: the kernels of the CUDA backend's contextual
 * attention (ctx_attn_kernels.cu), called from its dispatch (ctx_attn_cuda.c),
 * which runs the two big contractions through cuBLAS in between. Private to
 * src/gpu.
 *
 * Every launcher queues its kernel on `stream` and returns the launch status
 * (cudaGetLastError). Pointers are device memory owned by the caller; the
 * matrices are row-major with L = Hs*Ws columns (the arithmetic of
 * src/nn/cpu/ref_ctx_attn.c, one batch item per call).
 */
#ifndef HV_GPU_CTX_ATTN_KERNELS_H
#define HV_GPU_CTX_ATTN_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A square-kernel im2col/col2im geometry over a "logical" image of c x ih x
 * iw pixels whose pixel (ch, y, x) sits at ch*plane + (y*row + x)*step of
 * the buffer: step 1, row iw, plane ih*iw is a plain image; step r, row W,
 * plane H*W is the nearest downsampling by r of a H x W image (index i*r),
 * read in place. kk: kernel size, s: stride, p: padding, ho x wo: the
 * positions (columns of the col matrix, (c*kk*kk) x (ho*wo)). */
typedef struct hv_cuda_geom {
    int64_t c, ih, iw;
    int64_t step, row, plane;
    int64_t kk, s, p, ho, wo;
} hv_cuda_geom;

/* col = alpha * im2col(img) (zero outside the image) */
cudaError_t hv__cuda_im2col(cudaStream_t s, hv_cuda_geom g, const float *img, float alpha,
                            float *col);
/* img = (accumulate ? img : 0) + alpha * col2im(col): the adjoint of
 * im2col, gathered per pixel (deterministic, no atomics); only the logical
 * pixels are written. */
cudaError_t hv__cuda_col2im(cudaStream_t s, hv_cuda_geom g, const float *col, float alpha,
                            int accumulate, float *img);
/* nrm[j] = max(sqrt(sum_r col[r][j]^2), 1e-4), col rows x l */
cudaError_t hv__cuda_ca_colnorm(cudaStream_t s, const float *col, int64_t rows, int64_t l,
                                float *nrm);
/* out[r][j] = in[r][j] / nrm[j] (rows x l; out may be in) */
cudaError_t hv__cuda_ca_divcols(cudaStream_t s, const float *in, const float *nrm, int64_t rows,
                                int64_t l, float *out);
/* out = D(in) (transposed 0) or D_T(in) (1) on L x L, L = hs*ws: the sum
 * over the diagonal of half-width half in the row-major (D) or transposed,
 * column-major over hs x ws (D_T), ordering of both indices. out != in. */
cudaError_t hv__cuda_ca_diag(cudaStream_t s, const float *in, int64_t hs, int64_t ws,
                             int64_t half, int transposed, float *out);
/* mm[l] = 1 iff the mask (one item, (hs*q) x (ws*q)) is zero at every
 * (y*q, x*q) of the k x k window (half = k/2) of patch l, else 0 */
cudaError_t hv__cuda_ca_valid(cudaStream_t s, const float *mask, int64_t hs, int64_t ws,
                              int64_t q, int64_t half, float *mm);
/* att[p][:] = mm * softmax(scale * s[p][:] * mm), rows p of l (masked
 * logits 0, not -inf) */
cudaError_t hv__cuda_ca_softmax_fwd(cudaStream_t s, const float *sc, const float *mm, int64_t l,
                                    float scale, float *att);
/* ds[p][j] = mm[j] scale att[p][j] (datt[p][j] mm[j] - sum_j att datt mm) */
cudaError_t hv__cuda_ca_softmax_bwd(cudaStream_t s, const float *att, const float *datt,
                                    const float *mm, int64_t l, float scale, float *ds);
/* Backward of Wn = colB / max(|colB|, 1e-4) column by column: g (rows x l)
 * holds dL/dWn on entry and dL/dcolB on return. */
cudaError_t hv__cuda_ca_norm_bwd(cudaStream_t s, const float *colb, const float *wn,
                                 const float *nrm, int64_t rows, int64_t l, float *g);

#ifdef __cplusplus
}
#endif
#endif /* HV_GPU_CTX_ATTN_KERNELS_H */
