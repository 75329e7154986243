/*
 * probe.cu: the smallest useful piece of the CUDA backend: find the devices
 * and run one kernel on the first, so `healthivert version` can say whether
 * the GPU path works here. Without a driver or a device it reports that and
 * the program carries on on the CPU.
 */
#include <cuda_runtime.h>
#include <stdio.h>

#include "hv/gpu.h"

__global__ static void hv_gpu_axpy_kernel(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" int hv_gpu_probe(char *buf, size_t len)
{
    int count = 0, rt = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    cudaRuntimeGetVersion(&rt);
    if (err != cudaSuccess || count == 0) {
        snprintf(buf, len, "runtime %d.%d, no usable device (%s)", rt / 1000,
                 (rt % 1000) / 10, err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
        cudaGetLastError();
        return 0;
    }
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    /* One kernel launch, checked: y = 2*x + y on 256 elements. */
    float hx[256], hy[256];
    for (int i = 0; i < 256; i++) {
        hx[i] = (float)i;
        hy[i] = 1.0f;
    }
    float *dx = NULL, *dy = NULL;
    int ok = 0;
    if (cudaMalloc(&dx, sizeof hx) == cudaSuccess && cudaMalloc(&dy, sizeof hy) == cudaSuccess &&
        cudaMemcpy(dx, hx, sizeof hx, cudaMemcpyHostToDevice) == cudaSuccess &&
        cudaMemcpy(dy, hy, sizeof hy, cudaMemcpyHostToDevice) == cudaSuccess) {
        hv_gpu_axpy_kernel<<<1, 256>>>(256, 2.0f, dx, dy);
        if (cudaGetLastError() == cudaSuccess &&
            cudaMemcpy(hy, dy, sizeof hy, cudaMemcpyDeviceToHost) == cudaSuccess) {
            ok = 1;
            for (int i = 0; i < 256; i++)
                if (hy[i] != 2.0f * (float)i + 1.0f) ok = 0;
        }
    }
    cudaFree(dx);
    cudaFree(dy);
    snprintf(buf, len, "runtime %d.%d; %d device(s); device 0: %s (sm_%d%d, %.1f GiB); test kernel %s",
             rt / 1000, (rt % 1000) / 10, count, prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), ok ? "ok" : "FAILED");
    return ok ? count : -1;
}
