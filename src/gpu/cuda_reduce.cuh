/*
 * cuda_reduce.cuh: the deterministic block reductions shared by the CUDA
 * backend's reduction kernels (loss_kernels.cu, norm_kernels.cu). Private to
 * src/gpu; included by .cu files only.
 *
 * Sums are in double, in a fixed order: each thread's own strided part in
 * index order, then a shuffle tree within each warp, then the warps' sums by
 * the same tree in warp 0. The order depends on the block size only, never
 * on timing, so a result reproduces bit for bit from run to run (no atomics).
 */
#ifndef HV_GPU_CUDA_REDUCE_CUH
#define HV_GPU_CUDA_REDUCE_CUH

#include <stdint.h>

#include "cuda_grid.cuh"

/* Sum of v over the 32 lanes of a full warp; the total is in lane 0. */
__device__ static inline double hv_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* Sum of v over the whole block, returned to every thread. blockDim.x must
 * be a multiple of 32 (at most 1024), every thread of the block must call
 * it, and sh is 32 doubles of shared memory (reusable from call to call). */
__device__ static inline double hv_block_sum(double v, double *sh)
{
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = hv_warp_sum(v);
    __syncthreads(); /* sh may still be read by the previous call */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nw ? sh[lane] : 0.0;
        v = hv_warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

#endif /* HV_GPU_CUDA_REDUCE_CUH */
