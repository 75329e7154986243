/*
 * cuda_kernels.h: the CUDA backend's own kernels (cuda_kernels.cu), called
 * from the backend (backend_cuda.c, conv_cudnn.c). Private to src/gpu.
 *
 * Every launcher queues its kernel on `stream` and returns the launch status
 * (cudaGetLastError); errors inside a kernel surface at the next
 * synchronisation. Pointers are device memory owned by the caller; n is the
 * element count. The arithmetic of each kernel is that of the reference
 * kernel of the same op (src/nn/cpu/ref_ops.c): forward writes y, backward
 * ADDS into the input gradients (a NULL gradient is skipped).
 */
#ifndef HV_GPU_CUDA_KERNELS_H
#define HV_GPU_CUDA_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unary ops: op is an hv_nn_op (ELU, RELU, LEAKY_RELU, SIGMOID, TANH,
 * CLAMP, SCALE, RESHAPE), a = fp[0], b = fp[1] of the node. Backward reads
 * x (ELU, RELU, LEAKY_RELU, CLAMP) or y (ELU, SIGMOID, TANH). */
cudaError_t hv__cuda_unary_fwd(cudaStream_t s, int op, const float *x, float *y, int64_t n,
                               float a, float b);
cudaError_t hv__cuda_unary_bwd(cudaStream_t s, int op, const float *x, const float *y,
                               const float *dy, float *dx, int64_t n, float a, float b);
/* Binary ops ADD, SUB, MUL (same shapes). da and db may be the same buffer
 * (x op x): one thread handles both terms of an element. */
cudaError_t hv__cuda_binary_fwd(cudaStream_t s, int op, const float *a, const float *b, float *y,
                                int64_t n);
cudaError_t hv__cuda_binary_bwd(cudaStream_t s, int op, const float *a, const float *b,
                                const float *dy, float *da, float *db, int64_t n);
/* y = act(y) in place: hv__nn_apply_act's arithmetic (op ELU, RELU,
 * LEAKY_RELU or SIGMOID with alpha). */
cudaError_t hv__cuda_act(cudaStream_t s, int op, float *y, int64_t n, float alpha);
/* The finite check of n gradient values: *flag (device int) is set to tag
 * when some value is not finite and *flag is still 0 (the kernels of one
 * stream run in order, so the first tag queued with a non-finite value
 * stays). */
cudaError_t hv__cuda_finite(cudaStream_t s, const float *g, int64_t n, int *flag, int tag);
/* One Adam update with hv__nn_adam_update's arithmetic, operation for
 * operation in round-to-nearest float (no fused multiply-add); it changes
 * nothing when *flag (device int) is not 0. */
cudaError_t hv__cuda_adam(cudaStream_t s, float *w, float *m, float *v, const float *g, int64_t n,
                          float beta1, float beta2, float step_size, float sqrt_bc2, float eps,
                          const int *flag);

#ifdef __cplusplus
}
#endif
#endif /* HV_GPU_CUDA_KERNELS_H */
