/*
 * cuda_grid.cuh: the launch shape every kernel of the CUDA backend uses
 * (cuda_kernels.cu, ctx_attn_kernels.cu, shape_kernels.cu, loss_kernels.cu,
 * norm_kernels.cu): blocks of HV_CUDA_THREADS threads, at most 65536 blocks,
 * and grid-stride loops that cover whatever the grid does not. One place, so
 * that a change of block size reaches every kernel. Private to src/gpu;
 * included by .cu files only.
 */
#ifndef HV_GPU_CUDA_GRID_CUH
#define HV_GPU_CUDA_GRID_CUH

#include <stdint.h>

#define HV_CUDA_THREADS 256

/* Blocks of HV_CUDA_THREADS for a grid-stride loop over n elements. */
static inline unsigned hv_cuda_grid(int64_t n)
{
    int64_t b = (n + HV_CUDA_THREADS - 1) / HV_CUDA_THREADS;
    if (b < 1) b = 1;
    if (b > 65536) b = 65536; /* the grid-stride loops cover the rest */
    return (unsigned)b;
}

/* One block per row for `rows` rows, at most 65536 (the kernels loop over
 * rows with a grid stride). */
static inline unsigned hv_cuda_rows(int64_t rows)
{
    if (rows < 1) return 1;
    return rows > 65536 ? 65536u : (unsigned)rows;
}

#define HV_GRID_LOOP(i, n)                                                                    \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                 \
         i += (int64_t)gridDim.x * blockDim.x)

#endif /* HV_GPU_CUDA_GRID_CUH */
