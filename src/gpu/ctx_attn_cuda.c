/*
 * ctx_attn_cuda.c: the CUDA backend's contextual attention (HV_NN_OP_CTX_ATTN,
 * the fused DeepFill v1 layer), forward and backward, with the semantics of
 * the reference kernel src/nn/cpu/ref_ctx_attn.c step for step: each item
 * its own mask, masked logits 0 (not -inf) before the softmax and the
 * attention multiplied by the mask after it, the 1e-4 floor of the patch
 * norms (and its clipped branch in the backward), the diagonal fuse D_T(D(.))
 * and its adjoint D(D_T(.)).
 *
 * One batch item at a time, as the reference: the kernels of
 * ctx_attn_kernels.cu for downsampling + im2col (read in place through a
 * strided geometry), the norms, the fuse, the mask, the softmax and col2im;
 * the four contractions (scores colF^T colB, the paste colRaw att^T, and in
 * the backward their adjoints) as row-major cuBLAS GEMMs (cublas_gemm.c) in
 * plain fp32 even when TF32 is on for convolutions: the softmax at scale 10
 * amplifies TF32's error of the scores. The node's aux is device memory in
 * the reference's layout (per item: att L x L position-major, nrm L, mm L),
 * so forward leaves there what backward reads. Scratch: the graph's shared
 * workspace, sized in prepare (no allocation per batch).
 */
#include <limits.h>

#include "ctx_attn_kernels.h"
#include "cuda_backend.h"

static size_t seg(int64_t floats) { return ((size_t)floats + 63) / 64 * 64; } /* 256 bytes */

/* scratch of one pass (floats) */
static size_t work_floats(const hv_nn_ca_dims *d, int backward)
{
    if (!backward) /* colF, colB, colR, colO, s, s1 */
        return 2 * seg(d->c9 * d->l) + 2 * seg(d->ckk * d->l) + 2 * seg(d->l * d->l);
    /* colF, colB, dcolF, Wn, colR, dcolO, dcolR, datt, ds, tmp */
    return 4 * seg(d->c9 * d->l) + 3 * seg(d->ckk * d->l) + 3 * seg(d->l * d->l);
}

int hv__cuda_ca_supported(const hv_nn_tensor *n)
{
    if (n->nsrc != 3 || n->src[0]->ndim != 4 || n->src[2]->ndim != 4) return 0;
    hv_nn_ca_dims d = hv__nn_ca_dims(n);
    /* the GEMM sizes are cuBLAS ints; the rest is 64-bit */
    return d.r >= 1 && d.k >= 1 && d.q >= 1 && d.l >= 1 && d.l <= INT_MAX && d.c9 <= INT_MAX &&
           d.ckk <= INT_MAX && n->src[0]->numel == n->src[1]->numel &&
           n->src[2]->shape[0] == d.n && d.msz == d.l * d.q * d.q;
}

hv_status hv__cuda_ca_prepare(hv_nn_tensor *n, int grads, size_t *work_n)
{
    /* aux (the reference's size, hv__nn_ca_aux_size) is placed after
     * prepare; forward and backward check it */
    hv_nn_ca_dims d = hv__nn_ca_dims(n);
    *work_n = work_floats(&d, grads);
    return HV_OK;
}

static hv_status need(const hv_nn_ca_dims *d, const hv_nn_tensor *n, const hv_nn_exec *ex,
                      int backward)
{
    size_t w = work_floats(d, backward);
    if (ex->work_n < w)
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: ctx_attn %s needs %zu floats of "
                            "workspace, the graph gave %zu", n->name, w, ex->work_n);
    if (!n->aux || n->aux_n < (size_t)(d->n * (d->l * d->l + 2 * d->l)))
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: ctx_attn %s has %zu floats of aux, "
                            "needs %lld", n->name, n->aux_n,
                            (long long)(d->n * (d->l * d->l + 2 * d->l)));
    return HV_OK;
}

/* the downsampled feature map of one item (hs x ws, every r-th pixel) as
 * patches k x k, stride 1, pad k/2 */
static hv_cuda_geom geom_small(const hv_nn_ca_dims *d)
{
    hv_cuda_geom g = {d->c, d->hs, d->ws, d->r, d->w, d->h * d->w, d->k, 1, d->k / 2, d->hs, d->ws};
    return g;
}

/* the full-resolution item as patches 2r x 2r, stride r, pad r/2 */
static hv_cuda_geom geom_raw(const hv_nn_ca_dims *d)
{
    hv_cuda_geom g = {d->c, d->h, d->w, 1, d->w, d->h * d->w, 2 * d->r, d->r, d->r / 2, d->hs, d->ws};
    return g;
}

#define CK(call)                                                                               \
    do {                                                                                       \
        if ((st = HV_CU(call)) != HV_OK) goto done;                                            \
    } while (0)
#define CKS(call)                                                                              \
    do {                                                                                       \
        if ((st = (call)) != HV_OK) goto done;                                                 \
    } while (0)

hv_status hv__cuda_ca_forward(hv_cuda_be *cb, hv_nn_tensor *t, const hv_nn_exec *ex)
{
    const hv_nn_ca_dims d = hv__nn_ca_dims(t);
    const hv_nn_tensor *f = t->src[0], *b = t->src[1], *m = t->src[2];
    const int64_t l = d.l, img = d.c * d.h * d.w;
    const hv_cuda_geom gs = geom_small(&d), gr = geom_raw(&d);
    cudaStream_t s = cb->stream;
    hv_status st = need(&d, t, ex, 0);
    if (st != HV_OK) return st;
    float *colF = ex->work, *colB = colF + seg(d.c9 * l), *colR = colB + seg(d.c9 * l);
    float *colO = colR + seg(d.ckk * l), *sc = colO + seg(d.ckk * l), *s1 = sc + seg(l * l);
    for (int64_t i = 0; i < d.n; i++) {
        float *att = t->aux + i * (l * l + 2 * l), *nrm = att + l * l, *mm = nrm + l;
        const float *fi = f->data + i * img, *bi = b->data + i * img;
        CK(hv__cuda_im2col(s, gs, fi, 1.0f, colF));
        CK(hv__cuda_im2col(s, gs, bi, 1.0f, colB));
        CK(hv__cuda_ca_colnorm(s, colB, d.c9, l, nrm));
        /* s[p][l] = colF[:,p] . colB[:,l], then / nrm[l] */
        CKS(hv__cuda_gemm(cb, 1, 0, l, l, d.c9, 1.0f, colF, l, colB, l, 0.0f, sc, l));
        CK(hv__cuda_ca_divcols(s, sc, nrm, l, l, sc));
        if (d.fk) {
            CK(hv__cuda_ca_diag(s, sc, d.hs, d.ws, d.fk / 2, 0, s1));
            CK(hv__cuda_ca_diag(s, s1, d.hs, d.ws, d.fk / 2, 1, sc));
        }
        CK(hv__cuda_ca_valid(s, m->data + i * d.msz, d.hs, d.ws, d.q, d.k / 2, mm));
        CK(hv__cuda_ca_softmax_fwd(s, sc, mm, l, d.scale, att));
        /* paste: colO = colRaw att^T, y = col2im(colO) / r^2 */
        CK(hv__cuda_im2col(s, gr, bi, 1.0f, colR));
        CKS(hv__cuda_gemm(cb, 0, 1, d.ckk, l, l, 1.0f, colR, l, att, l, 0.0f, colO, l));
        CK(hv__cuda_col2im(s, gr, colO, 1.0f / (float)(d.r * d.r), 0, t->data + i * img));
    }
done:
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "ctx_attn %s forward", t->name);
}

hv_status hv__cuda_ca_backward(hv_cuda_be *cb, hv_nn_tensor *t, const hv_nn_exec *ex)
{
    const hv_nn_ca_dims d = hv__nn_ca_dims(t);
    hv_nn_tensor *f = t->src[0], *b = t->src[1];
    const int64_t l = d.l, img = d.c * d.h * d.w;
    const hv_cuda_geom gs = geom_small(&d), gr = geom_raw(&d);
    cudaStream_t s = cb->stream;
    if (!f->grad && !b->grad) return HV_OK;
    hv_status st = need(&d, t, ex, 1);
    if (st != HV_OK) return st;
    float *colF = ex->work, *colB = colF + seg(d.c9 * l), *dcolF = colB + seg(d.c9 * l);
    float *wn = dcolF + seg(d.c9 * l), *colR = wn + seg(d.c9 * l), *dcolO = colR + seg(d.ckk * l);
    float *dcolR = dcolO + seg(d.ckk * l), *datt = dcolR + seg(d.ckk * l), *ds = datt + seg(l * l);
    float *tmp = ds + seg(l * l);
    for (int64_t i = 0; i < d.n; i++) {
        const float *att = t->aux + i * (l * l + 2 * l), *nrm = att + l * l, *mm = nrm + l;
        const float *fi = f->data + i * img, *bi = b->data + i * img;
        /* paste backward: dcolO = im2col(dy) / r^2, datt = dcolO^T colRaw */
        CK(hv__cuda_im2col(s, gr, t->grad + i * img, 1.0f / (float)(d.r * d.r), dcolO));
        CK(hv__cuda_im2col(s, gr, bi, 1.0f, colR));
        CKS(hv__cuda_gemm(cb, 1, 0, l, l, d.ckk, 1.0f, dcolO, l, colR, l, 0.0f, datt, l));
        if (b->grad) {
            CKS(hv__cuda_gemm(cb, 0, 0, d.ckk, l, l, 1.0f, dcolO, l, att, l, 0.0f, dcolR, l));
            CK(hv__cuda_col2im(s, gr, dcolR, 1.0f, 1, b->grad + i * img));
        }
        CK(hv__cuda_ca_softmax_bwd(s, att, datt, mm, l, d.scale, ds));
        if (d.fk) { /* adjoint of D_T(D(.)) is D(D_T(.)) */
            CK(hv__cuda_ca_diag(s, ds, d.hs, d.ws, d.fk / 2, 1, tmp));
            CK(hv__cuda_ca_diag(s, tmp, d.hs, d.ws, d.fk / 2, 0, ds));
        }
        /* scores backward */
        CK(hv__cuda_im2col(s, gs, fi, 1.0f, colF));
        CK(hv__cuda_im2col(s, gs, bi, 1.0f, colB));
        CK(hv__cuda_ca_divcols(s, colB, nrm, d.c9, l, wn));
        if (f->grad) {
            /* dcolF[:,p] = Wn ds[p][:]^T, then col2im on the small grid,
             * added at every r-th pixel of df */
            CKS(hv__cuda_gemm(cb, 0, 1, d.c9, l, l, 1.0f, wn, l, ds, l, 0.0f, dcolF, l));
            CK(hv__cuda_col2im(s, gs, dcolF, 1.0f, 1, f->grad + i * img));
        }
        if (b->grad) {
            /* dWn = colF ds, through the norm into dcolB */
            CKS(hv__cuda_gemm(cb, 0, 0, d.c9, l, l, 1.0f, colF, l, ds, l, 0.0f, dcolF, l));
            CK(hv__cuda_ca_norm_bwd(s, colB, wn, nrm, d.c9, l, dcolF));
            CK(hv__cuda_col2im(s, gs, dcolF, 1.0f, 1, b->grad + i * img));
        }
    }
done:
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "ctx_attn %s backward", t->name);
}
