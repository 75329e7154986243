/*
 * cuda_backend.h: the inside of the CUDA backend of the NN engine, shared by
 * backend_cuda.c (the vtable: memory, copies, elementwise ops, Adam),
 * conv_cudnn.c (convolutions through cuDNN), cublas_gemm.c (the cuBLAS
 * handle and GEMM), ctx_attn_cuda.c (contextual attention) and shape_cuda.c
 * (shape and channel ops, linear). Private to src/gpu.
 *
 * The backend owns one CUDA stream and one cuDNN and one cuBLAS handle bound
 * to it; every kernel, copy, cuDNN and cuBLAS call of a graph is queued on
 * that stream, so the
 * graph's order is the execution order and synchronize() is one
 * cudaStreamSynchronize.
 */
#ifndef HV_GPU_CUDA_BACKEND_H
#define HV_GPU_CUDA_BACKEND_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "../nn/nn_backend.h"

typedef struct hv_cuda_be {
    int device;
    int tf32;              /* 1: cuDNN may use TF32 tensor cores (CUDNN_TENSOR_OP_MATH) */
    cudaStream_t stream;
    cudnnHandle_t dnn;
    cublasHandle_t blas;   /* on `stream`, plain fp32 math (cublas_gemm.c) */
    int *flag_d;           /* device int: Adam's non-finite gradient flag */
    int *flag_h;           /* pinned host copy of it */
} hv_cuda_be;

/* HV_ERR_GPU with "cuda backend: <call> failed: <CUDA's message>"; HV_OK on
 * cudaSuccess. */
hv_status hv__cuda_check(cudaError_t e, const char *call);
hv_status hv__cudnn_check(cudnnStatus_t e, const char *call);
#define HV_CU(call) hv__cuda_check((call), #call)
#define HV_DNN(call) hv__cudnn_check((call), #call)

/* cuBLAS (cublas_gemm.c): the status check, the handle's set-up (stream,
 * CUBLAS_DEFAULT_MATH: plain fp32, never TF32) and a row-major GEMM in the
 * cblas convention of hv_nn_gemm_fn: C[m,n] = alpha op(A) op(B) + beta C,
 * queued on the backend's stream. HV_ERR_GPU when a size does not fit
 * cuBLAS's int. */
hv_status hv__cublas_check(cublasStatus_t e, const char *call);
#define HV_BLAS(call) hv__cublas_check((call), #call)
hv_status hv__cuda_blas_create(hv_cuda_be *cb);
hv_status hv__cuda_gemm(hv_cuda_be *cb, int trans_a, int trans_b, int64_t m, int64_t n,
                        int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc);

/* Contextual attention (ctx_attn_cuda.c): the fused DeepFill v1 layer of
 * src/nn/cpu/ref_ctx_attn.c, its GEMMs through cuBLAS. The node's aux
 * (device memory, the reference's layout) keeps the attention, the patch
 * norms and the valid-patch mask between the passes; *work_n: its scratch. */
int hv__cuda_ca_supported(const hv_nn_tensor *n);
hv_status hv__cuda_ca_prepare(hv_nn_tensor *n, int grads, size_t *work_n);
hv_status hv__cuda_ca_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);
hv_status hv__cuda_ca_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);

/* Shape and channel ops (shape_cuda.c): UPSAMPLE, DOWNSAMPLE, CONCAT, PAD,
 * SLICE, GAP, CHANNEL_MUL, LINEAR; no per-node state, no workspace.
 * supported is 0 for every other op. */
int hv__cuda_shape_supported(const hv_nn_tensor *n);
hv_status hv__cuda_shape_forward(hv_cuda_be *cb, hv_nn_tensor *n);
hv_status hv__cuda_shape_backward(hv_cuda_be *cb, hv_nn_tensor *n);

/* Convolution and transposed convolution nodes (conv_cudnn.c): cuDNN descriptors and algorithms chosen
 * once in prepare (node->be_state), the largest workspace of the chosen
 * algorithms in *work_n (floats; the graph's shared workspace ex->work). */
int hv__cuda_conv_supported(const hv_nn_tensor *n);
hv_status hv__cuda_conv_prepare(hv_cuda_be *cb, hv_nn_tensor *n, int grads, size_t *work_n);
void hv__cuda_conv_release(hv_nn_tensor *n);
hv_status hv__cuda_conv_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);
hv_status hv__cuda_conv_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);

#endif /* HV_GPU_CUDA_BACKEND_H */
