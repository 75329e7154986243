/*
 * ref_ops_layout.c: concat, nearest upsampling and global average pooling on
 * tensors the CPU backend keeps in oneDNN's layouts (t->blk > 0).
 *
 * The CPU backend's fp32 inference chains (backend_cpu.c, link_nhwc) keep
 * NHWC (oneDNN's acdb; nChw{C}c, blk = C) through a concat along channels
 * and a nearest x f upsampling between convolutions, so that the next
 * convolution reads them without a reorder; and a chain tensor may also be
 * read by a global average pool. These kernels are those ops' forward for
 * such tensors, picked by hv__nn_ref_forward when hv__nn_layout_kernel says
 * so; ref_ops.c keeps the plain ones. Element (item i, channel k, pixel j)
 * of a tensor with block B = blk lies at ((i * C/B + k/B) * H*W + j) * B +
 * k%B (nn_backend.h); B = C is NHWC, where one pixel's channels are
 * contiguous, so concat and upsampling copy whole pixels.
 *   - concat: output NHWC; each input NHWC (a pixel's channels copied into
 *     its channel slice) or plain NCHW (gathered: the transposition the
 *     next convolution's reorder would otherwise do, on this input only).
 *   - upsample: output NHWC, input NHWC or plain.
 *   - gap: input in any nChw{B}c (B = C included), output plain N, C, 1, 1;
 *     sums in double, as the plain kernel.
 * Forward only: only inference graphs hold these layouts at these ops; a
 * backward reaching one is an internal error, never a silent wrong number.
 */
#include <string.h>

#include "../nn_backend.h"

#define PAR_MIN 32768 /* elements below which a loop runs on one thread */
#define GAP_CHUNK 256 /* channels summed at once (a double accumulator each) */

/* Offset of element (i, k, j) of a 4-D tensor of c channels, hw pixels, block b
 * (b = 0: plain). */
static inline int64_t at(int64_t i, int64_t k, int64_t j, int64_t c, int64_t hw, int64_t b)
{
    if (!b) return (i * c + k) * hw + j;
    return ((i * (c / b) + k / b) * hw + j) * b + k % b;
}

static int is_nhwc(const hv_nn_tensor *t) { return t->ndim == 4 && t->blk == t->shape[1]; }

int hv__nn_layout_kernel(const hv_nn_tensor *n)
{
    switch (n->op) {
    case HV_NN_OP_CONCAT:
    case HV_NN_OP_UPSAMPLE: return n->blk > 0;
    case HV_NN_OP_GAP: return n->src[0]->blk > 0;
    default: return 0;
    }
}

static hv_status concat_nhwc(hv_nn_tensor *n)
{
    if (!is_nhwc(n))
        return hv_error_set(HV_ERR_INTERNAL, "concat: output layout block %d is not NHWC", n->blk);
    const int64_t nb = n->shape[0], ct = n->shape[1], hw = n->shape[2] * n->shape[3];
    int64_t c0 = 0;
    for (int s = 0; s < n->nsrc; s++) {
        const hv_nn_tensor *x = n->src[s];
        const int64_t cs = x->shape[1];
        if (x->blk && !is_nhwc(x))
            return hv_error_set(HV_ERR_INTERNAL, "concat: input %d has layout block %d", s, x->blk);
        const float *xd = x->data;
        float *yd = n->data;
        const int nhwc = x->blk > 0;
#pragma omp parallel for schedule(static) if (nb * hw * ct > PAR_MIN)
        for (int64_t p = 0; p < nb * hw; p++) {
            float *y = yd + p * ct + c0;
            if (nhwc) {
                memcpy(y, xd + p * cs, (size_t)cs * sizeof(float));
            } else {
                const int64_t i = p / hw, j = p % hw;
                for (int64_t k = 0; k < cs; k++) y[k] = xd[(i * cs + k) * hw + j];
            }
        }
        c0 += cs;
    }
    return HV_OK;
}

static hv_status upsample_nhwc(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0];
    if (!is_nhwc(n) || (x->blk && !is_nhwc(x)))
        return hv_error_set(HV_ERR_INTERNAL, "upsample: layout blocks %d -> %d, NHWC expected",
                            x->blk, n->blk);
    const int64_t nb = n->shape[0], c = n->shape[1], ho = n->shape[2], wo = n->shape[3];
    const int64_t hi = x->shape[2], wi = x->shape[3], f = n->ip[0];
    const int nhwc = x->blk > 0;
    const float *xd = x->data;
    float *yd = n->data;
    /* one output row from its input row, then the f-1 copies of it */
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t r = 0; r < nb * hi; r++) {
        const int64_t i = r / hi, h = r % hi;
        float *y = yd + ((i * ho + h * f) * wo) * c;
        for (int64_t w = 0; w < wi; w++)
            for (int64_t q = 0; q < f; q++) {
                float *yp = y + (w * f + q) * c;
                if (nhwc)
                    memcpy(yp, xd + ((i * hi + h) * wi + w) * c, (size_t)c * sizeof(float));
                else
                    for (int64_t k = 0; k < c; k++) yp[k] = xd[((i * c + k) * hi + h) * wi + w];
            }
        for (int64_t q = 1; q < f; q++) memcpy(y + q * wo * c, y, (size_t)(wo * c) * sizeof(float));
    }
    return HV_OK;
}

static hv_status gap_blocked(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0];
    if (x->ndim != 4 || x->blk <= 0 || x->shape[1] % x->blk)
        return hv_error_set(HV_ERR_INTERNAL, "gap: unsupported input layout (block %d)", x->blk);
    const int64_t nb = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3], b = x->blk;
    const int64_t nchunk = (c + GAP_CHUNK - 1) / GAP_CHUNK;
#pragma omp parallel for schedule(static) if (x->numel > PAR_MIN)
    for (int64_t q = 0; q < nb * nchunk; q++) {
        const int64_t i = q / nchunk, k0 = q % nchunk * GAP_CHUNK;
        const int64_t kn = c - k0 < GAP_CHUNK ? c - k0 : GAP_CHUNK;
        double acc[GAP_CHUNK];
        int64_t off[GAP_CHUNK]; /* element (i, k, 0); pixel j is j * b further */
        for (int64_t k = 0; k < kn; k++) {
            acc[k] = 0.0;
            off[k] = at(i, k0 + k, 0, c, hw, b);
        }
        for (int64_t j = 0; j < hw; j++) {
            const float *xj = x->data + j * b;
            for (int64_t k = 0; k < kn; k++) acc[k] += xj[off[k]];
        }
        for (int64_t k = 0; k < kn; k++) n->data[i * c + k0 + k] = (float)(acc[k] / (double)hw);
    }
    return HV_OK;
}

hv_status hv__nn_layout_forward(hv_nn_tensor *n)
{
    switch (n->op) {
    case HV_NN_OP_CONCAT: return concat_nhwc(n);
    case HV_NN_OP_UPSAMPLE: return upsample_nhwc(n);
    case HV_NN_OP_GAP: return gap_blocked(n);
    default:
        return hv_error_set(HV_ERR_INTERNAL, "nn: no kernel for op %d in a blocked layout", (int)n->op);
    }
}
