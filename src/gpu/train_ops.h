/*
 * train_ops.h: the CUDA backend's training and classifier ops (train_ops.c):
 * the whole-tensor reductions and losses, softmax, batch norm, max pooling,
 * Sobel and spectral norm. backend_cuda.c hands every node whose op
 * hv__cuda_train_owns() claims to these functions, one call per hook of its
 * vtable. Private to src/gpu.
 */
#ifndef HV_GPU_TRAIN_OPS_H
#define HV_GPU_TRAIN_OPS_H

#include "cuda_backend.h"

/* 1 when op is one of this file's ops (whatever the node's shapes). */
int hv__cuda_train_owns(hv_nn_op op);
/* 1 when the backend runs node n (an owned op) natively; 0: declined (the
 * graph then stages it through the host). */
int hv__cuda_train_supported(const hv_nn_tensor *n);
/* Per-node state (batch norm: a host buffer for a synchronising reducer,
 * in node->be_state) and the workspace floats the node needs (*work_n). */
hv_status hv__cuda_train_prepare(hv_cuda_be *cb, hv_nn_tensor *n, int grads, size_t *work_n);
void hv__cuda_train_release(hv_nn_tensor *n);
hv_status hv__cuda_train_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);
hv_status hv__cuda_train_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex);

#endif /* HV_GPU_TRAIN_OPS_H */
