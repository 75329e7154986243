/*
 * cuda_backend.h: the inside of the CUDA backend of the NN engine, shared by
 * backend_cuda.c (the vtable: memory, copies, elementwise ops, Adam) and
 * conv_cudnn.c (convolutions through cuDNN). Private to src/gpu.
 *
 * The backend owns one CUDA stream and one cuDNN handle bound to it; every
 * kernel, copy and cuDNN call of a graph is queued on that stream, so the
 * graph's order is the execution order and synchronize() is one
 * cudaStreamSynchronize.
 */
#ifndef HV_GPU_CUDA_BACKEND_H
#define HV_GPU_CUDA_BACKEND_H

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "../nn/nn_backend.h"

typedef struct hv_cuda_be {
    int device;
    int tf32;              /* 1: cuDNN may use TF32 tensor cores (CUDNN_TENSOR_OP_MATH) */
    cudaStream_t stream;
    cudnnHandle_t dnn;
    int *flag_d;           /* device int: Adam's non-finite gradient flag */
    int *flag_h;           /* pinned host copy of it */
} hv_cuda_be;

/* HV_ERR_GPU with "cuda backend: <call> failed: <CUDA's message>"; HV_OK on
 * cudaSuccess. */
hv_status hv__cuda_check(cudaError_t e, const char *call);
hv_status hv__cudnn_check(cudnnStatus_t e, const char *call);
#define HV_CU(call) hv__cuda_check((call), #call)
#define HV_DNN(call) hv__cudnn_check((call), #call)

/* Convolution and transposed convolution nodes (conv_cudnn.c): cuDNN descriptors and algorithms chosen
 * once in prepare (node->be_state), the largest workspace of the chosen
 * algorithms in *work_n (floats; the graph's shared workspace ex->work). */
int hv__cuda_conv_supported(const hv_nn_tensor *n);
hv_status hv__cuda_conv_prepare(hv_cuda_be *cb, hv_nn_tensor *n, int grads, size_t *work_n);
void hv__cuda_conv_release(hv_nn_tensor *n);
hv_status hv__cuda_conv_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);
hv_status hv__cuda_conv_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);

#endif /* HV_GPU_CUDA_BACKEND_H */
