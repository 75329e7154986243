/*
 * train_kernels.h: the CUDA backend's kernels for the training and
 * classifier ops (reductions and losses, softmax: loss_kernels.cu; batch
 * norm, max pooling, Sobel, spectral norm: norm_kernels.cu), called from
 * train_ops.c. Private to src/gpu.
 *
 * As in cuda_kernels.h: each launcher queues its kernels on stream s and
 * returns the launch status; pointers are device memory owned by the
 * caller; element counts are 64-bit. The arithmetic is that of the
 * reference kernel of the same op (src/nn/cpu/ref_ops.c), sums in double;
 * forward writes its output, backward ADDS into the gradients given (NULL:
 * skipped). Every sum runs in a fixed order (cuda_reduce.cuh), so results
 * reproduce from run to run; no kernel uses atomics. `ws` arguments are
 * scratch in the graph's workspace, of the size given at each launcher.
 */
#ifndef HV_GPU_TRAIN_KERNELS_H
#define HV_GPU_TRAIN_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blocks of the first pass of a whole-tensor sum, at most; each writes one
 * double partial sum. */
#define HV_CUDA_RED_PARTS 1024
/* doubles of scratch a whole-tensor sum needs: the partials and the result */
#define HV_CUDA_RED_WS (HV_CUDA_RED_PARTS + 2)

/* ---- loss_kernels.cu */
/* Whole-tensor reductions, y[0] = the op's value. op: SUM, MEAN (a only),
 * BCE_LOGITS, L1, MSE (a the prediction, b the target; n each). ws:
 * HV_CUDA_RED_WS doubles. */
cudaError_t hv__cuda_reduce_fwd(cudaStream_t s, int op, const float *a, const float *b, int64_t n,
                                float *y, double *ws);
/* Their backward from dy[0] (device): da (and db for the two-input ops). */
cudaError_t hv__cuda_reduce_bwd(cudaStream_t s, int op, const float *a, const float *b,
                                const float *dy, float *da, float *db, int64_t n);
/* *out = sum_k a[k] b[k] (double, device) over n; ws: HV_CUDA_RED_WS
 * doubles, out may point into it at ws + HV_CUDA_RED_PARTS. */
cudaError_t hv__cuda_dot(cudaStream_t s, const float *a, const float *b, int64_t n, double *ws,
                         double *out);
/* Soft Dice of nb items of per elements each (p, t); ws: 3 nb doubles. */
cudaError_t hv__cuda_dice_fwd(cudaStream_t s, const float *p, const float *t, int64_t nb,
                              int64_t per, float *y, double *ws);
cudaError_t hv__cuda_dice_bwd(cudaStream_t s, const float *p, const float *t, const float *dy,
                              float *dp, float *dt, int64_t nb, int64_t per, double *ws);
/* Softmax over dimension 1 of (outer, c, inner). Backward needs y and dy. */
cudaError_t hv__cuda_softmax_fwd(cudaStream_t s, const float *x, float *y, int64_t outer,
                                 int64_t c, int64_t inner);
cudaError_t hv__cuda_softmax_bwd(cudaStream_t s, const float *y, const float *dy, float *dx,
                                 int64_t outer, int64_t c, int64_t inner);

/* ---- norm_kernels.cu */
/* Batch norm over x (nb, c, hw) in plain NCHW. red is the statistics'
 * buffer (2c + 1 floats, the one a reducer sums); mean, istd (c each) and
 * count (1 float) are the node's aux. Training forward: bn_sums (red[k] =
 * sum of channel k, red[c] = nb*hw), [reduce c + 1], bn_squares (count =
 * red[c], mean = red / count, red[k] = the centred sum of squares), [reduce
 * c], bn_finish (running statistics, istd); eval forward: bn_eval; then
 * bn_apply. Backward: bn_grad_sums (dgamma, dbeta += this part; red[k] =
 * sum dy, red[c + k] = sum dy xhat), [reduce 2c], bn_grad_x.
 * The three sums split each channel over hv__cuda_bn_split() blocks
 * (a function of the shape only), each writing double partials to part
 * (2 c split doubles of scratch), which one thread per channel then adds
 * in block order. */
int64_t hv__cuda_bn_split(int64_t nb, int64_t c, int64_t hw);
cudaError_t hv__cuda_bn_sums(cudaStream_t s, const float *x, int64_t nb, int64_t c, int64_t hw,
                             float *red, double *part);
cudaError_t hv__cuda_bn_squares(cudaStream_t s, const float *x, int64_t nb, int64_t c, int64_t hw,
                                float *red, float *mean, float *count, double *part);
cudaError_t hv__cuda_bn_finish(cudaStream_t s, int64_t c, const float *red, const float *mean,
                               const float *count, double mom, double eps, float *rm, float *rv,
                               float *istd);
cudaError_t hv__cuda_bn_eval(cudaStream_t s, int64_t c, const float *rm, const float *rv,
                             double eps, double items, float *mean, float *istd, float *count);
cudaError_t hv__cuda_bn_apply(cudaStream_t s, const float *x, float *y, const float *gamma,
                              const float *beta, const float *mean, const float *istd,
                              int64_t numel, int64_t c, int64_t hw);
cudaError_t hv__cuda_bn_grad_sums(cudaStream_t s, const float *x, const float *dy,
                                  const float *mean, const float *istd, int64_t nb, int64_t c,
                                  int64_t hw, float *dgamma, float *dbeta, float *red,
                                  double *part);
cudaError_t hv__cuda_bn_grad_x(cudaStream_t s, const float *x, const float *dy, float *dx,
                               const float *gamma, const float *mean, const float *istd,
                               const float *red, const float *count, int64_t numel, int64_t c,
                               int64_t hw, int training);
/* Max pooling of nc planes h x w to ho x wo (kernel k, stride st, padding
 * p); arg[o] = the flat in-plane index of output o's maximum (float). */
cudaError_t hv__cuda_maxpool_fwd(cudaStream_t s, const float *x, float *y, float *arg, int64_t nc,
                                 int64_t h, int64_t w, int64_t ho, int64_t wo, int k, int st,
                                 int p);
cudaError_t hv__cuda_maxpool_bwd(cudaStream_t s, const float *dy, const float *arg, float *dx,
                                 int64_t nc, int64_t h, int64_t w, int64_t ho, int64_t wo, int k,
                                 int st, int p);
/* Sobel gradient magnitude clipped to 1 of nb single-channel h x w images. */
cudaError_t hv__cuda_sobel_fwd(cudaStream_t s, const float *x, float *y, int64_t nb, int64_t h,
                               int64_t w);
cudaError_t hv__cuda_sobel_bwd(cudaStream_t s, const float *x, const float *dy, float *dx,
                               int64_t nb, int64_t h, int64_t w);
/* Spectral norm of W (h rows of wd): training runs one power iteration
 * updating u (h) and v (wd); sigma = u^T W v goes to sigma[0] (the node's
 * aux), y = W / sigma; ws: 1 float. */
cudaError_t hv__cuda_sn_fwd(cudaStream_t s, const float *W, float *u, float *v, int64_t h,
                            int64_t wd, int training, float *sigma, float *y, float *ws);
/* dW += G / sigma - (sum(G .* W) / sigma^2) u v^T; ws: HV_CUDA_RED_WS
 * doubles. */
cudaError_t hv__cuda_sn_bwd(cudaStream_t s, const float *W, const float *u, const float *v,
                            const float *G, const float *sigma, float *dW, int64_t h, int64_t wd,
                            double *ws);

#ifdef __cplusplus
}
#endif
#endif /* HV_GPU_TRAIN_KERNELS_H */
