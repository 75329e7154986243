/*
 * hv/gpu.h: the CUDA backend's public face. Built only when CUDA is found
 * (HV_HAVE_CUDA); nothing CUDA-typed appears here. hv_gpu_probe is in the
 * hv_gpu library (CUDA runtime only); hv_gpu_backend_create in
 * hv_gpu_backend (also cuDNN, and the NN engine).
 */
#ifndef HV_GPU_H
#define HV_GPU_H

#include <stddef.h>

#include "hv/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Look for devices and run one checked test kernel on device 0. Writes a
 * one-line description into buf (always NUL-terminated). Returns the number
 * of devices (0: none or no driver, the CPU path is used), or -1 when a
 * device exists but the test kernel failed. */
int hv_gpu_probe(char *buf, size_t len);

/* The NN engine's CUDA backend on device `device` (0-based): device
 * buffers, one stream, cuDNN convolutions and its own elementwise kernels
 * and Adam; every other op runs on host staging copies (docs/nn.md "CUDA
 * backend"). Parameters must be bound to it (hv_nn_params_bind) before a
 * graph is planned on it. TF32 tensor-core math in the convolutions is on
 * unless the environment variable HV_CUDA_TF32 is "0" when the backend is
 * created. HV_ERR_GPU with a message naming the failing call when there is
 * no driver, no such device, or CUDA/cuDNN cannot start; HV_ERR_ARG for a
 * NULL out or a negative device. *out is freed with hv_nn_backend_free.
 * The device is made current (cudaSetDevice) for the calling thread at
 * creation; use one CUDA backend per thread. */
hv_status hv_gpu_backend_create(int device, hv_nn_backend **out);
/* Wait until the work queued on a CUDA backend is done (graph forwards are
 * asynchronous; hv_nn_tensor_get waits by itself). HV_ERR_ARG when be is not
 * a CUDA backend, HV_ERR_GPU when a queued kernel failed. */
hv_status hv_gpu_backend_sync(hv_nn_backend *be);
/* 1 when the backend lets cuDNN use TF32 (see above), 0 when it computes in
 * plain fp32; -1 when be is not a CUDA backend. */
int hv_gpu_backend_tf32(const hv_nn_backend *be);

#ifdef __cplusplus
}
#endif
#endif /* HV_GPU_H */
