/*
 * shape_cuda.c: the CUDA backend's dispatch for the generator's shape and
 * channel ops, forward and backward: UPSAMPLE, DOWNSAMPLE, CONCAT, PAD,
 * SLICE, GAP, CHANNEL_MUL (kernels in shape_kernels.cu), LINEAR (cuBLAS,
 * cublas_gemm.c, plain fp32; its bias with a kernel) and AOT-GAN's
 * REFLECT_PAD, UPSAMPLE_BILINEAR and AOT_NORM (kernels in aot_kernels.cu).
 * Each one mirrors its reference kernel in src/nn/cpu/ref_ops.c (AOT-GAN's:
 * src/nn/cpu/ref_ops_aot.c): forward writes the node's data,
 * backward ADDS into the gradient of every input that has one. None needs
 * per-node state or workspace.
 */
#include <limits.h>

#include "cuda_backend.h"
#include "shape_kernels.h"

/* the node's 4-D shape is x's with H and W grown as the op says (the graph
 * builders guarantee it; checked so that a kernel never indexes past x) */
static int aot_shape_ok(const hv_nn_tensor *n)
{
    if (n->nsrc != 1 || n->ndim != 4 || n->src[0]->ndim != 4) return 0;
    const hv_nn_tensor *x = n->src[0];
    const int64_t h = x->shape[2], w = x->shape[3];
    if (n->shape[0] != x->shape[0] || n->shape[1] != x->shape[1]) return 0;
    switch (n->op) {
    case HV_NN_OP_REFLECT_PAD:
        /* one reflection at most: every pad below its axis */
        for (int k = 0; k < 4; k++)
            if (n->ip[k] < 0 || n->ip[k] >= (k < 2 ? h : w)) return 0;
        return n->shape[2] == h + n->ip[0] + n->ip[1] && n->shape[3] == w + n->ip[2] + n->ip[3];
    case HV_NN_OP_UPSAMPLE_BILINEAR:
        return n->ip[0] >= 1 && n->shape[2] == h * n->ip[0] && n->shape[3] == w * n->ip[0];
    case HV_NN_OP_AOT_NORM: /* the unbiased std divides by H*W - 1 */
        return n->shape[2] == h && n->shape[3] == w && h * w >= 2;
    default: return 0;
    }
}

int hv__cuda_shape_supported(const hv_nn_tensor *n)
{
    switch (n->op) {
    case HV_NN_OP_REFLECT_PAD:
    case HV_NN_OP_UPSAMPLE_BILINEAR:
    case HV_NN_OP_AOT_NORM: return aot_shape_ok(n);
    case HV_NN_OP_UPSAMPLE:
    case HV_NN_OP_DOWNSAMPLE:
        return n->nsrc == 1 && n->ndim == 4 && n->src[0]->ndim == 4 && n->ip[0] >= 1;
    case HV_NN_OP_PAD:
    case HV_NN_OP_GAP: return n->nsrc == 1 && n->ndim == 4 && n->src[0]->ndim == 4;
    case HV_NN_OP_SLICE: return n->nsrc == 1;
    case HV_NN_OP_CONCAT: return n->nsrc >= 1 && n->ndim >= 2;
    case HV_NN_OP_CHANNEL_MUL:
        return n->nsrc == 2 && n->ndim == 4 && n->src[1]->numel == n->shape[0] * n->shape[1];
    case HV_NN_OP_LINEAR: {
        const hv_nn_tensor *w = n->src[1];
        /* the GEMM sizes are cuBLAS ints */
        return n->nsrc >= 2 && w->ndim == 2 && n->shape[0] <= INT_MAX && w->shape[0] <= INT_MAX &&
               w->shape[1] <= INT_MAX;
    }
    default: return 0;
    }
}

static int64_t inner_from(const hv_nn_tensor *t, int d0)
{
    int64_t inner = 1;
    for (int d = d0; d < t->ndim; d++) inner *= t->shape[d];
    return inner;
}

/* the slice's blocks: outer, the source's extent of dim, inner */
static void slice_geom(const hv_nn_tensor *n, int64_t *outer, int64_t *xd, int64_t *inner)
{
    const hv_nn_tensor *x = n->src[0];
    const int dim = n->ip[0];
    *outer = 1;
    for (int d = 0; d < dim; d++) *outer *= x->shape[d];
    *inner = inner_from(x, dim + 1);
    *xd = x->shape[dim];
}

hv_status hv__cuda_shape_forward(hv_cuda_be *cb, hv_nn_tensor *n)
{
    cudaStream_t s = cb->stream;
    hv_nn_tensor *x = n->src[0];
    hv_status st = HV_OK;
    switch (n->op) {
    case HV_NN_OP_UPSAMPLE:
        return HV_CU(hv__cuda_upsample_fwd(s, x->data, n->data, x->shape[0] * x->shape[1],
                                           x->shape[2], x->shape[3], n->ip[0]));
    case HV_NN_OP_DOWNSAMPLE:
        return HV_CU(hv__cuda_downsample_fwd(s, x->data, n->data, n->shape[0] * n->shape[1],
                                             n->shape[2], n->shape[3], n->ip[0]));
    case HV_NN_OP_CONCAT: {
        const int64_t outer = n->shape[0], ctot = n->shape[1], inner = inner_from(n, 2);
        int64_t c0 = 0;
        for (int k = 0; k < n->nsrc && st == HV_OK; k++) {
            const int64_t cs = n->src[k]->shape[1];
            st = HV_CU(hv__cuda_block_copy(s, n->src[k]->data, cs * inner, 0, n->data,
                                           ctot * inner, c0 * inner, outer, cs * inner, 0));
            c0 += cs;
        }
        return st;
    }
    case HV_NN_OP_PAD:
        return HV_CU(hv__cuda_pad_fwd(s, x->data, n->data, x->shape[0] * x->shape[1], x->shape[2],
                                      x->shape[3], n->shape[2], n->shape[3], n->ip[0], n->ip[2]));
    case HV_NN_OP_REFLECT_PAD:
        return HV_CU(hv__cuda_reflect_pad_fwd(s, x->data, n->data, x->shape[0] * x->shape[1],
                                              x->shape[2], x->shape[3], n->shape[2], n->shape[3],
                                              n->ip[0], n->ip[2]));
    case HV_NN_OP_UPSAMPLE_BILINEAR:
        return HV_CU(hv__cuda_upsample_bilinear_fwd(s, x->data, n->data, x->shape[0] * x->shape[1],
                                                    x->shape[2], x->shape[3], n->ip[0]));
    case HV_NN_OP_AOT_NORM:
        return HV_CU(hv__cuda_aot_norm_fwd(s, x->data, n->data, n->shape[0] * n->shape[1],
                                           n->shape[2] * n->shape[3]));
    case HV_NN_OP_SLICE: {
        int64_t outer, xd, inner;
        const int64_t start = n->ip[1], len = n->ip[2];
        slice_geom(n, &outer, &xd, &inner);
        return HV_CU(hv__cuda_block_copy(s, x->data, xd * inner, start * inner, n->data,
                                         len * inner, 0, outer, len * inner, 0));
    }
    case HV_NN_OP_GAP:
        return HV_CU(hv__cuda_gap_fwd(s, x->data, n->data, n->numel, x->shape[2] * x->shape[3]));
    case HV_NN_OP_CHANNEL_MUL:
        return HV_CU(hv__cuda_chmul_fwd(s, x->data, n->src[1]->data, n->data,
                                        n->shape[0] * n->shape[1], n->shape[2] * n->shape[3]));
    case HV_NN_OP_LINEAR: {
        const hv_nn_tensor *w = n->src[1];
        const int64_t nb = n->shape[0], mo = n->shape[1], k = w->shape[1];
        st = hv__cuda_gemm(cb, 0, 1, nb, mo, k, 1.0f, x->data, k, w->data, k, 0.0f, n->data, mo);
        if (st == HV_OK && n->nsrc > 2)
            st = HV_CU(hv__cuda_bias_rows(s, n->data, n->src[2]->data, nb, mo));
        return st;
    }
    default:
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s is not a shape op",
                            hv_nn_op_name(n->op));
    }
}

hv_status hv__cuda_shape_backward(hv_cuda_be *cb, hv_nn_tensor *n)
{
    cudaStream_t s = cb->stream;
    hv_nn_tensor *x = n->src[0];
    hv_status st = HV_OK;
    switch (n->op) {
    case HV_NN_OP_UPSAMPLE:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_upsample_bwd(s, n->grad, x->grad, x->shape[0] * x->shape[1],
                                           x->shape[2], x->shape[3], n->ip[0]));
    case HV_NN_OP_DOWNSAMPLE:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_downsample_bwd(s, n->grad, x->grad, n->shape[0] * n->shape[1],
                                             n->shape[2], n->shape[3], n->ip[0]));
    case HV_NN_OP_CONCAT: {
        const int64_t outer = n->shape[0], ctot = n->shape[1], inner = inner_from(n, 2);
        int64_t c0 = 0;
        for (int k = 0; k < n->nsrc && st == HV_OK; k++) {
            const int64_t cs = n->src[k]->shape[1];
            if (n->src[k]->grad)
                st = HV_CU(hv__cuda_block_copy(s, n->grad, ctot * inner, c0 * inner,
                                               n->src[k]->grad, cs * inner, 0, outer, cs * inner,
                                               1));
            c0 += cs;
        }
        return st;
    }
    case HV_NN_OP_PAD:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_pad_bwd(s, n->grad, x->grad, x->shape[0] * x->shape[1], x->shape[2],
                                      x->shape[3], n->shape[2], n->shape[3], n->ip[0], n->ip[2]));
    case HV_NN_OP_REFLECT_PAD:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_reflect_pad_bwd(s, n->grad, x->grad, x->shape[0] * x->shape[1],
                                              x->shape[2], x->shape[3], n->shape[2], n->shape[3],
                                              n->ip[0], n->ip[2]));
    case HV_NN_OP_UPSAMPLE_BILINEAR:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_upsample_bilinear_bwd(s, n->grad, x->grad, x->shape[0] * x->shape[1],
                                                    x->shape[2], x->shape[3], n->ip[0]));
    case HV_NN_OP_AOT_NORM:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_aot_norm_bwd(s, x->data, n->grad, x->grad, n->shape[0] * n->shape[1],
                                           n->shape[2] * n->shape[3]));
    case HV_NN_OP_SLICE: {
        int64_t outer, xd, inner;
        const int64_t start = n->ip[1], len = n->ip[2];
        if (!x->grad) return HV_OK;
        slice_geom(n, &outer, &xd, &inner);
        return HV_CU(hv__cuda_block_copy(s, n->grad, len * inner, 0, x->grad, xd * inner,
                                         start * inner, outer, len * inner, 1));
    }
    case HV_NN_OP_GAP:
        if (!x->grad) return HV_OK;
        return HV_CU(hv__cuda_gap_bwd(s, n->grad, x->grad, n->numel, x->shape[2] * x->shape[3]));
    case HV_NN_OP_CHANNEL_MUL: {
        hv_nn_tensor *sc = n->src[1];
        if (!x->grad && !sc->grad) return HV_OK;
        return HV_CU(hv__cuda_chmul_bwd(s, x->data, sc->data, n->grad, x->grad, sc->grad,
                                        n->shape[0] * n->shape[1], n->shape[2] * n->shape[3]));
    }
    case HV_NN_OP_LINEAR: {
        hv_nn_tensor *w = n->src[1];
        const int64_t nb = n->shape[0], mo = n->shape[1], k = w->shape[1];
        if (x->grad)
            st = hv__cuda_gemm(cb, 0, 0, nb, k, mo, 1.0f, n->grad, mo, w->data, k, 1.0f, x->grad, k);
        if (st == HV_OK && w->grad)
            st = hv__cuda_gemm(cb, 1, 0, mo, k, nb, 1.0f, n->grad, mo, x->data, k, 1.0f, w->grad, k);
        if (st == HV_OK && n->nsrc > 2 && n->src[2]->grad)
            st = HV_CU(hv__cuda_bias_rows_grad(s, n->grad, n->src[2]->grad, nb, mo));
        return st;
    }
    default:
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s is not a shape op",
                            hv_nn_op_name(n->op));
    }
}
