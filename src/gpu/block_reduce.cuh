/*
 * block_reduce.cuh: a block-wide reduction for the CUDA backend's row and
 * plane kernels (ctx_attn_kernels.cu, shape_kernels.cu): warp shuffles,
 * then one warp over the warps' partial results. The terms are combined in
 * a tree, not in the host loops' sequential order (float rounding only).
 * Private to src/gpu, CUDA C++ only.
 */
#ifndef HV_GPU_BLOCK_REDUCE_CUH
#define HV_GPU_BLOCK_REDUCE_CUH

struct op_max {
    __device__ float operator()(float a, float b) const { return a > b ? a : b; }
};
struct op_add_f {
    __device__ float operator()(float a, float b) const { return a + b; }
};
struct op_add_d {
    __device__ double operator()(double a, double b) const { return a + b; }
};

/* Reduce v over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. ident: op's identity (the value of the missing
 * warps). sh: 32 elements of shared memory, reused by the next call only
 * after the __syncthreads at the end. */
template <typename T, typename Op>
__device__ static T block_reduce(T v, Op op, T ident, T *sh)
{
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T w = lane < nw ? sh[lane] : ident;
        for (int o = 16; o > 0; o >>= 1) w = op(w, __shfl_down_sync(0xffffffffu, w, o));
        if (lane == 0) sh[0] = w;
    }
    __syncthreads();
    T r = sh[0];
    __syncthreads();
    return r;
}

#endif /* HV_GPU_BLOCK_REDUCE_CUH */
