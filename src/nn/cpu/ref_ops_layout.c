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
 * bf16 inference: a concat or upsample in a bf16 region (t->blk_bf16)
 * writes bf16 NHWC (2 bytes a value, the first half of its buffer); its
 * inputs are bf16 NHWC (copied) or plain fp32 (rounded while gathered, to
 * nearest even with denormals flushed, as oneDNN's fp32 -> bf16 reorder on
 * avx512_bf16 does, vcvtneps2bf16). An fp32 NHWC input of a bf16 output, or
 * the reverse, is never planned and is refused; gap reads fp32 only (its
 * bf16 readers are kept out of the regions: it sums unrounded values).
 * Forward only: only inference graphs hold these layouts at these ops; a
 * backward reaching one is an internal error, never a silent wrong number.
 */
#include <stdint.h>
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

/* Does t hold bf16 values (t->blk_bf16, nn_backend.h)? */
static int holds_bf16(const hv_nn_tensor *t) { return t->blk > 0 && t->blk_bf16; }

/* Pixel j of item i (channels k = 0..c-1) of t, NHWC or plain, into y, whose
 * values are bf16 (ybf) or fp32. */
static inline void gather_pixel(void *y, int ybf, const hv_nn_tensor *x, int64_t i, int64_t j,
                                int64_t c, int64_t hw)
{
    const int64_t p = i * hw + j;
    if (x->blk) { /* NHWC of y's type */
        const size_t esz = ybf ? sizeof(uint16_t) : sizeof(float);
        memcpy(y, (const char *)x->data + (size_t)(p * c) * esz, (size_t)c * esz);
        return;
    }
    const float *xd = x->data + i * c * hw + j;
    if (ybf) {
        uint16_t *yb = y;
        for (int64_t k = 0; k < c; k++) yb[k] = hv__nn_to_bf16(xd[k * hw]);
    } else {
        float *yf = y;
        for (int64_t k = 0; k < c; k++) yf[k] = xd[k * hw];
    }
}

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
    const int ybf = holds_bf16(n);
    const size_t esz = ybf ? sizeof(uint16_t) : sizeof(float);
    int64_t c0 = 0;
    for (int s = 0; s < n->nsrc; s++) {
        const hv_nn_tensor *x = n->src[s];
        const int64_t cs = x->shape[1];
        if (x->blk && (!is_nhwc(x) || holds_bf16(x) != ybf))
            return hv_error_set(HV_ERR_INTERNAL, "concat: input %d has layout block %d (%s) for "
                                "a %s output", s, x->blk, holds_bf16(x) ? "bf16" : "fp32",
                                ybf ? "bf16" : "fp32");
        char *yd = (char *)n->data;
#pragma omp parallel for schedule(static) if (nb * hw * ct > PAR_MIN)
        for (int64_t p = 0; p < nb * hw; p++)
            gather_pixel(yd + (size_t)(p * ct + c0) * esz, ybf, x, p / hw, p % hw, cs, hw);
        c0 += cs;
    }
    return HV_OK;
}

static hv_status upsample_nhwc(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0];
    const int ybf = holds_bf16(n);
    if (!is_nhwc(n) || (x->blk && (!is_nhwc(x) || holds_bf16(x) != ybf)))
        return hv_error_set(HV_ERR_INTERNAL, "upsample: layout blocks %d -> %d (%s -> %s), NHWC "
                            "of one type expected", x->blk, n->blk, holds_bf16(x) ? "bf16" : "fp32",
                            ybf ? "bf16" : "fp32");
    const int64_t nb = n->shape[0], c = n->shape[1], ho = n->shape[2], wo = n->shape[3];
    const int64_t hi = x->shape[2], wi = x->shape[3], f = n->ip[0];
    const size_t esz = ybf ? sizeof(uint16_t) : sizeof(float);
    char *yd = (char *)n->data;
    /* one output row from its input row, then the f-1 copies of it */
#pragma omp parallel for schedule(static) if (n->numel > PAR_MIN)
    for (int64_t r = 0; r < nb * hi; r++) {
        const int64_t i = r / hi, h = r % hi;
        char *y = yd + (size_t)((i * ho + h * f) * wo * c) * esz;
        for (int64_t w = 0; w < wi; w++) {
            char *y0 = y + (size_t)(w * f * c) * esz;
            gather_pixel(y0, ybf, x, i, h * wi + w, c, hi * wi);
            for (int64_t q = 1; q < f; q++) memcpy(y0 + (size_t)(q * c) * esz, y0, (size_t)c * esz);
        }
        for (int64_t q = 1; q < f; q++)
            memcpy(y + (size_t)(q * wo * c) * esz, y, (size_t)(wo * c) * esz);
    }
    return HV_OK;
}

static hv_status gap_blocked(hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->src[0];
    if (x->ndim != 4 || x->blk <= 0 || x->shape[1] % x->blk || holds_bf16(x))
        return hv_error_set(HV_ERR_INTERNAL, "gap: unsupported input layout (block %d%s)", x->blk,
                            holds_bf16(x) ? ", bf16" : "");
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
