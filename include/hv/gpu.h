/*
 * hv/gpu.h: the CUDA backend's public face. Built only when CUDA is found
 * (HV_HAVE_CUDA); nothing CUDA-typed appears here.
 */
#ifndef HV_GPU_H
#define HV_GPU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Look for devices and run one checked test kernel on device 0. Writes a
 * one-line description into buf (always NUL-terminated). Returns the number
 * of devices (0: none or no driver, the CPU path is used), or -1 when a
 * device exists but the test kernel failed. */
int hv_gpu_probe(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* HV_GPU_H */
