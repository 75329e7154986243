/*
 * cublas_gemm.c: the CUDA backend's cuBLAS handle and its one GEMM entry,
 * used by contextual attention (ctx_attn_cuda.c) and linear (shape_cuda.c).
 *
 * The handle is created with the backend (hv_gpu_backend_create), bound to
 * the backend's stream and left in CUBLAS_DEFAULT_MATH: plain fp32 FMA
 * arithmetic, no TF32 tensor cores, whatever the backend's TF32 switch
 * says for convolutions. Contextual attention scales its scores by 10
 * before a softmax, which amplifies TF32's 1e-3 relative error of the
 * scores into the attention weights; linear is small. (The environment's
 * NVIDIA_TF32_OVERRIDE can only turn TF32 off, never on.)
 *
 * The engine's matrices are row-major (the cblas convention of the
 * reference's hv_nn_gemm_fn), cuBLAS's are column-major: a row-major X is
 * the column-major X^T over the same memory, so C = op(A) op(B) row-major is
 * C^T = op(B)^T op(A)^T column-major, one cublasSgemm with the operands
 * swapped and the same transpose flags.
 */
#include <limits.h>

#include "cuda_backend.h"

hv_status hv__cublas_check(cublasStatus_t e, const char *call)
{
    if (e == CUBLAS_STATUS_SUCCESS) return HV_OK;
    return hv_error_set(HV_ERR_GPU, "cuda backend: %s failed: %s (%s)", call,
                        cublasGetStatusString(e), cublasGetStatusName(e));
}

hv_status hv__cuda_blas_create(hv_cuda_be *cb)
{
    hv_status st = HV_BLAS(cublasCreate(&cb->blas));
    if (st != HV_OK) {
        cb->blas = NULL;
        return st;
    }
    if ((st = HV_BLAS(cublasSetStream(cb->blas, cb->stream))) != HV_OK) return st;
    return HV_BLAS(cublasSetMathMode(cb->blas, CUBLAS_DEFAULT_MATH));
}

static int fits(int64_t v) { return v >= 0 && v <= INT_MAX; }

hv_status hv__cuda_gemm(hv_cuda_be *cb, int trans_a, int trans_b, int64_t m, int64_t n,
                        int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (!fits(m) || !fits(n) || !fits(k) || !fits(lda) || !fits(ldb) || !fits(ldc))
        return hv_error_set(HV_ERR_GPU, "cuda backend: GEMM %lld x %lld x %lld exceeds cuBLAS's "
                            "int sizes", (long long)m, (long long)n, (long long)k);
    if (m == 0 || n == 0) return HV_OK;
    return HV_BLAS(cublasSgemm(cb->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                               trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha,
                               b, (int)ldb, a, (int)lda, &beta, c, (int)ldc));
}
