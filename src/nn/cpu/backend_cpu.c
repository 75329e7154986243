/*
 * backend_cpu.c: the two CPU backends.
 *
 *  - "ref": every node on the plain reference kernels (ref_ops.c) with plain
 *    GEMM loops. The ground truth of the op tests.
 *  - "cpu": oneDNN 2.6 primitives for conv2d and conv3d (forward, backward
 *    data, backward weights) and the activations ELU/ReLU/LeakyReLU/sigmoid/tanh
 *    (forward and backward); oneDNN's sgemm inside the reference kernels for everything
 *    else (linear, transposed conv, contextual attention). Not OpenBLAS: its
 *    pthreads build keeps a second pool of threads beside OpenMP's, sized by
 *    the machine rather than by run.threads, whose idle workers spin and yield
 *    while oneDNN's run (up to 8 % of a forward's cycles here, and an
 *    oversubscribed node when MPI ranks share it); oneDNN's sgemm runs on the
 *    OpenMP threads every other op uses, and measured 0-7 % faster on the
 *    contextual attention's shapes (bench/generator prints both).
 *
 * oneDNN use: primitives are created once per graph node at plan time
 * (node_prepare) with "any" memory formats so that oneDNN picks its fastest
 * layout (nChw16c on AVX-512); the graph keeps plain NCHW, and reorders
 * (also created once) convert at the node's boundary. Every buffer a
 * primitive needs (reordered tensors, its scratchpad in user mode) is an
 * offset into the graph's shared workspace, so running a node allocates
 * nothing on our side. oneDNN overwrites its outputs, while our backward
 * contract accumulates, so gradients are produced in the workspace and added.
 *
 * Blocked chains (link_producer): between two backend convolutions joined
 * only by elementwise activations and batch norms, each tensor with a single
 * reader, the activations and their gradients stay in the convolutions'
 * blocked layout (nChw8c on AVX2; nChw16c in training and NHWC, oneDNN's
 * acdb = nChw{C}c, in inference on AVX-512, whatever oneDNN picks for the
 * convolutions at both ends), in training and inference, so the
 * reorder pair of each pass disappears. Elsewhere the graph stays plain
 * NCHW: the other reference kernels, the model code and the tests know only
 * that layout (t->blk marks the exceptions; batch norm handles blocks of up
 * to 16 channels, and hv_nn_tensor_get returns plain).
 * NHWC regions (link_nhwc; inference, where oneDNN picks NHWC): the
 * layout also crosses a concat along channels and a nearest upsampling, and
 * a tensor may have further readers when they are earlier convolutions that
 * want the same NHWC source or a global average pool (ref_ops_layout.c has
 * those ops' NHWC kernels), so the generator's fp32 forward reorders only
 * around contextual attention. In bf16 such a region holds bf16 and is read
 * by bf16 convolutions only (see link_nhwc: the outputs stay bit-identical).
 *
 * conv3d runs on the same code as conv2d with three spatial axes (its own
 * stride, pad and dilation per axis) and plain NCDHW at its boundary: no
 * blocked chains, no fused activation (the graph fuses into conv2d only)
 * and fp32 always.
 * bf16 inference (hv_nn_backend_set_precision, on avx512_bf16/AMX only):
 * each 2-D convolution is a bf16 primitive (bf16 source and weights, fp32 bias,
 * fp32 accumulation, fp32 output) when oneDNN has a native kernel for its
 * shape and it has at least HV_NN_BF16_MIN_COUT output channels (else it
 * stays fp32: n->bf16 says which). The narrow ones are the networks' output
 * heads (the generator's CT and label convolutions, one channel each): under
 * 1 % of the work, and the label's probabilities are compared with a
 * threshold, which bf16 rounding of their inputs and weights moved RHLV by
 * several points on held-out phantoms (results/bf16-synthesis.md). The graph keeps fp32:
 * the input reorder converts fp32 plain -> bf16 blocked, the weights are
 * converted with the reorder the fp32 path already caches (once per change
 * of their version). Inside a blocked chain the activation is bf16 (the
 * producer is rebuilt to write it: half the bytes, no reorders); such a
 * chain holds only the activation fused into its producer, since no other
 * kernel reads bf16 (but the NHWC regions' concat and upsample, above).
 * Outputs leaving a chain stay unrounded fp32: rounded,
 * a probability just above 0.5 became 0.5 and left a thresholded mask.
 * Training graphs are refused.
 *
 * One file of ~1,350 lines on purpose: the per-node oneDNN state (slot,
 * conv_state) is private to it, and the layout linking (link_producer,
 * link_nhwc) reads and rewrites that state of several nodes at once; the
 * kernels that work on the linked layouts live elsewhere (ref_ops.c's batch
 * norm, ref_ops_layout.c), so a split would only move the state into a
 * header for one more reader. The bf16 GEMMs of contextual attention
 * (ca_bf16) are more of that per-node state, built with the same helpers
 * (prim_make, native_impl, the workspace offsets).
 */
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "../nn_backend.h"

/* ------------------------------------------------------------------ ref */

static void ref_destroy(hv_nn_backend *be) { free(be); }

static hv_status ref_forward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    (void)be;
    return hv__nn_ref_forward(n, ex);
}

static hv_status ref_backward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    (void)be;
    return hv__nn_ref_backward(n, ex);
}

static const hv_nn_backend_i ref_iface = {
    .name = "ref",
    .destroy = ref_destroy,
    .host_memory = 1,
    .supports_op = NULL,
    .node_prepare = NULL,
    .node_release = NULL,
    .node_forward = ref_forward,
    .node_backward = ref_backward,
};

hv_status hv_nn_backend_create_ref(hv_nn_backend **out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "nn backend: out is NULL");
    hv_nn_backend *be = calloc(1, sizeof *be);
    if (!be) return hv_error_set(HV_ERR_NOMEM, "nn backend: out of memory");
    be->iface = &ref_iface;
    *out = be;
    return HV_OK;
}

/* ---------------------------------------------------------------- sgemm */

/* Row-major C = alpha op(A) op(B) + beta C through oneDNN's sgemm (on the
 * OpenMP threads). It fails only on arguments no kernel passes (negative
 * sizes, a leading dimension too small); the plain loops then give the
 * answer rather than nothing, since the GEMM hook cannot report. */
static void gemm_dnnl(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc)
{
    if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c,
                   ldc) != dnnl_success)
        hv__nn_gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* --------------------------------------------------------------- oneDNN */

typedef struct cpu_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int bf16; /* this plan's convolutions in bf16 (the backend's precision) */
} cpu_ctx;

#define DNNL_TRY(call)                                                                     \
    do {                                                                                   \
        dnnl_status_t ds_ = (call);                                                        \
        if (ds_ != dnnl_success) {                                                         \
            st = hv_error_set(HV_ERR_UNSUPPORTED, "oneDNN: %s failed (status %d)", #call,  \
                              (int)ds_);                                                   \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

/* A tensor as the graph holds it (user, plain) and as a primitive wants it. */
typedef struct slot {
    dnnl_memory_t user, prim;
    dnnl_primitive_t reorder; /* user->prim for inputs, prim->user for outputs */
    size_t off;               /* prim buffer (floats) in the workspace, if reordered */
    size_t tmp_off;           /* plain temporary for accumulated outputs */
    size_t n;                 /* plain element count */
    int used;
} slot;

typedef struct prim_state {
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
    size_t scratch_off;
} prim_state;

typedef struct conv_state {
    prim_state fwd, bwd_d, bwd_w;
    slot f_src, f_w, f_b, f_dst;
    slot d_ddst, d_w, d_dsrc;
    slot w_src, w_ddst, w_dw, w_db;
    /* eltwise */
    prim_state e_fwd, e_bwd;
    dnnl_memory_t e_src, e_dst, e_ddst, e_dsrc;
    size_t e_dsrc_off;
    /* inference: reordered weights kept across runs, redone when the
     * weight's version changes */
    float *w_cache;
    uint64_t w_version;
    int w_valid;
    /* inference chains: this convolution's input / output stay in oneDNN's
     * blocked layout inside the (same-sized) graph buffer */
    int in_blocked, out_blocked;
    /* training: backward-data and backward-weights want the same blocked
     * diff_dst; it is reordered once (into d_ddst's buffer) for both */
    int share_ddst;
    /* inference: the forward descriptor and the workspace floats this node
     * uses, so that a bf16 producer can be rebuilt to write bf16 once a
     * consumer joins it into a chain (link_producer) */
    dnnl_convolution_desc_t fdesc;
    size_t top_end;
    /* contextual attention on a bf16 backend: its two GEMMs in bf16 */
    struct ca_bf16 *ca;
} conv_state;

/* One GEMM shape of a contextual attention node as a bf16 oneDNN matmul:
 * C (fp32) = op(A) op(B), A and B rounded into bf16 copies in the
 * workspace (dense, in the caller's element order: transposes are strides) */
typedef struct ca_gemm_prim {
    int ta, tb;
    int64_t m, n, k;
    prim_state mm;
    dnnl_memory_t a, b, c;
    size_t a_off, b_off; /* the bf16 copies (floats into the workspace) */
} ca_gemm_prim;

typedef struct ca_bf16 {
    cpu_ctx *cx;
    float *work; /* the running graph's workspace, set before each forward */
    ca_gemm_prim g[2];
} ca_bf16;

static int ca_gemm_bf16(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                        int64_t ldc);

static size_t md_floats(const dnnl_memory_desc_t *md)
{
    return (dnnl_memory_desc_get_size(md) + sizeof(float) - 1) / sizeof(float);
}

static size_t ws_take(size_t *top, size_t n)
{
    size_t off = *top;
    *top += (n + 15) / 16 * 16;
    return off;
}

/* output: prim -> user reorder; accumulate: the plain result goes to a
 * temporary and is added to the user buffer by the caller. */
static hv_status slot_init(cpu_ctx *cx, slot *s, const dnnl_memory_desc_t *user_md,
                           const dnnl_memory_desc_t *prim_md, int output, int accumulate,
                           size_t *top)
{
    hv_status st = HV_OK;
    dnnl_primitive_desc_t rpd = NULL;
    s->used = 1;
    s->n = md_floats(user_md);
    DNNL_TRY(dnnl_memory_create(&s->user, user_md, cx->engine, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(user_md, prim_md)) {
        s->prim = s->user;
        if (accumulate) s->off = ws_take(top, s->n);
    } else {
        DNNL_TRY(dnnl_memory_create(&s->prim, prim_md, cx->engine, DNNL_MEMORY_NONE));
        s->off = ws_take(top, md_floats(prim_md));
        if (output)
            DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, prim_md, cx->engine, user_md,
                                                        cx->engine, NULL));
        else
            DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, user_md, cx->engine, prim_md,
                                                        cx->engine, NULL));
        DNNL_TRY(dnnl_primitive_create(&s->reorder, rpd));
    }
    if (accumulate) s->tmp_off = ws_take(top, s->n);
done:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return st;
}

static void slot_release(slot *s)
{
    if (!s->used) return;
    if (s->reorder) dnnl_primitive_destroy(s->reorder);
    if (s->prim && s->prim != s->user) dnnl_memory_destroy(s->prim);
    if (s->user) dnnl_memory_destroy(s->user);
    memset(s, 0, sizeof *s);
}

/* Reorders run by this backend, every graph and thread together
 * (hv__nn_cpu_reorders): the tests' view of the layout chains. */
static uint64_t n_reorders;

uint64_t hv__nn_cpu_reorders(void) { return __atomic_load_n(&n_reorders, __ATOMIC_RELAXED); }

/* bf16 NHWC regions on (link_nhwc); off gives the bf16 path without them,
 * which the tests compare byte for byte. Read at plan time. */
static int bf16_regions = 1;
/* contextual attention's GEMMs in bf16 on a bf16 backend (1, the default);
 * 0 keeps them fp32 (tests compare the two) */
static int ctx_attn_bf16 = 1;
void hv__nn_cpu_set_ctx_attn_bf16(int on)
{
    __atomic_store_n(&ctx_attn_bf16, on != 0, __ATOMIC_RELAXED);
}

void hv__nn_cpu_set_bf16_regions(int on) { __atomic_store_n(&bf16_regions, on != 0, __ATOMIC_RELAXED); }

static hv_status run_reorder(cpu_ctx *cx, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    hv_status st = HV_OK;
    __atomic_fetch_add(&n_reorders, 1, __ATOMIC_RELAXED);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DNNL_TRY(dnnl_primitive_execute(r, cx->stream, 2, args));
done:
    return st;
}

/* Bind an input: returns the memory the primitive reads. */
static hv_status slot_in(cpu_ctx *cx, slot *s, const float *data, float *work, dnnl_memory_t *out)
{
    hv_status st = HV_OK;
    DNNL_TRY(dnnl_memory_set_data_handle(s->user, (void *)data));
    if (s->reorder) {
        DNNL_TRY(dnnl_memory_set_data_handle(s->prim, work + s->off));
        st = run_reorder(cx, s->reorder, s->user, s->prim);
    }
    *out = s->prim;
done:
    return st;
}

/* Bind an output before the primitive runs. With accumulate the plain result
 * lands in work + tmp_off. */
static hv_status slot_out(slot *s, float *data, float *work, int accumulate, dnnl_memory_t *out)
{
    hv_status st = HV_OK;
    float *user = accumulate ? work + s->tmp_off : data;
    DNNL_TRY(dnnl_memory_set_data_handle(s->user, user));
    if (s->reorder) DNNL_TRY(dnnl_memory_set_data_handle(s->prim, work + s->off));
    *out = s->prim;
done:
    return st;
}

static void add_into(float *data, const float *t, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) data[i] += t[i];
}

static hv_status slot_out_finish(cpu_ctx *cx, slot *s, float *data, float *work, int accumulate)
{
    hv_status st = HV_OK;
    if (s->reorder) {
        st = run_reorder(cx, s->reorder, s->prim, s->user);
        if (st != HV_OK) return st;
    }
    if (accumulate) add_into(data, work + s->tmp_off, (int64_t)s->n);
    return st;
}

static void eltwise_alg_of(int op, dnnl_alg_kind_t *alg)
{
    switch (op) {
    case HV_NN_OP_ELU: *alg = dnnl_eltwise_elu; break;
    case HV_NN_OP_RELU:
    case HV_NN_OP_LEAKY_RELU: *alg = dnnl_eltwise_relu; break;
    default: *alg = dnnl_eltwise_logistic; break;
    }
}

/* act_op != 0: fuse that activation as an eltwise post-op. */
static hv_status prim_make(cpu_ctx *cx, prim_state *p, const void *op_desc,
                           const_dnnl_primitive_desc_t hint, int act_op, float alpha,
                           dnnl_primitive_desc_t *pd_out, size_t *top)
{
    hv_status st = HV_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_post_ops_t po = NULL;
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (act_op) {
        dnnl_alg_kind_t alg;
        eltwise_alg_of(act_op, &alg);
        DNNL_TRY(dnnl_post_ops_create(&po));
        DNNL_TRY(dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, 0.0f));
        DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    DNNL_TRY(dnnl_primitive_desc_create(&pd, op_desc, attr, cx->engine, hint));
    DNNL_TRY(dnnl_primitive_create(&p->prim, pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd && dnnl_memory_desc_get_size(smd) > 0) {
        DNNL_TRY(dnnl_memory_create(&p->scratch, smd, cx->engine, DNNL_MEMORY_NONE));
        p->scratch_off = ws_take(top, md_floats(smd));
    }
    *pd_out = pd;
    pd = NULL;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

/* A real implementation: not oneDNN's reference loops ("ref:any"), which
 * for bf16 would be far slower than the fp32 kernel. */
static int native_impl(const_dnnl_primitive_desc_t pd)
{
    const char *info = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, (void *)&info) != dnnl_success ||
        !info)
        return 0;
    return strncmp(info, "ref", 3) != 0;
}

static void prim_release(prim_state *p)
{
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    memset(p, 0, sizeof *p);
}

static hv_status prim_run(cpu_ctx *cx, prim_state *p, float *work, dnnl_exec_arg_t *args, int nargs)
{
    hv_status st = HV_OK;
    if (p->scratch) {
        DNNL_TRY(dnnl_memory_set_data_handle(p->scratch, work + p->scratch_off));
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->scratch;
        nargs++;
    }
    DNNL_TRY(dnnl_primitive_execute(p->prim, cx->stream, nargs, args));
    DNNL_TRY(dnnl_stream_wait(cx->stream));
done:
    return st;
}

static void typed_md(dnnl_memory_desc_t *md, int ndim, const int64_t *shape, int any,
                     dnnl_data_type_t dt)
{
    static const dnnl_format_tag_t tags[6] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab,
                                              dnnl_abc, dnnl_abcd, dnnl_abcde};
    dnnl_dims_t d = {0};
    for (int i = 0; i < ndim; i++) d[i] = shape[i];
    dnnl_memory_desc_init_by_tag(md, ndim, d, dt, any ? dnnl_format_tag_any : tags[ndim]);
}

static void plain_md(dnnl_memory_desc_t *md, int ndim, const int64_t *shape, int any)
{
    typed_md(md, ndim, shape, any, dnnl_f32);
}

static int is_eltwise(hv_nn_op op)
{
    return op == HV_NN_OP_ELU || op == HV_NN_OP_RELU || op == HV_NN_OP_LEAKY_RELU ||
           op == HV_NN_OP_SIGMOID || op == HV_NN_OP_TANH;
}

static int is_conv(hv_nn_op op) { return op == HV_NN_OP_CONV2D || op == HV_NN_OP_CONV3D; }

/* Nodes on oneDNN primitives; the CPU backend runs every other node on the
 * reference kernels with oneDNN's sgemm (run_ref). */
static int on_dnnl(const hv_nn_tensor *n)
{
    return is_conv(n->op) || is_eltwise(n->op);
}

/* The reference kernels with oneDNN's sgemm for their GEMMs: a private copy of the
 * graph's exec context (a few words, no allocation). */
static hv_status run_ref(hv_nn_tensor *n, const hv_nn_exec *ex, int backward)
{
    hv_nn_exec e = *ex;
    const conv_state *cs = n->be_state;
    e.gemm = gemm_dnnl;
    if (!backward && cs && cs->ca) {
        cs->ca->work = ex->work;
        e.gemm_bf16 = ca_gemm_bf16;
        e.gemm_bf16_ctx = cs->ca;
    }
    return backward ? hv__nn_ref_backward(n, &e) : hv__nn_ref_forward(n, &e);
}

/* The block size B when md is oneDNN's nChw{B}c for shape (B = 8, 16), else 0;
 * also NHWC (oneDNN's acdb, the choice of its brgemm convolutions on
 * AVX-512 for fp32 and bf16 alike), which is nChw{C}c: B = C. The batch norm
 * kernel handles blocks up to BN_MAX_BLOCK only (ref_ops.c's BN_MAXB), so
 * link_producer keeps a chain with a batch norm out of a wider NHWC. */
#define BN_MAX_BLOCK 16
static int md_block(const dnnl_memory_desc_t *md)
{
    static const dnnl_format_tag_t tags[2] = {dnnl_aBcd8b, dnnl_aBcd16b};
    static const int blks[2] = {8, 16};
    if (md->ndims != 4) return 0;
    for (int i = 0; i < 2; i++) {
        dnnl_memory_desc_t b;
        if (md->dims[1] % blks[i]) continue;
        if (dnnl_memory_desc_init_by_tag(&b, 4, md->dims, md->data_type, tags[i]) != dnnl_success)
            continue;
        if (dnnl_memory_desc_equal(md, &b)) return blks[i];
    }
    dnnl_memory_desc_t h;
    if (md->dims[1] <= INT32_MAX &&
        dnnl_memory_desc_init_by_tag(&h, 4, md->dims, md->data_type, dnnl_acdb) == dnnl_success &&
        dnnl_memory_desc_equal(md, &h))
        return (int)md->dims[1];
    return 0;
}

static const dnnl_memory_desc_t *slot_md(const slot *s)
{
    const dnnl_memory_desc_t *md = NULL;
    if (!s->used || !s->prim || dnnl_memory_get_memory_desc(s->prim, &md) != dnnl_success) return NULL;
    return md;
}

/* Blocked chains. If this convolution reads, through a chain of nodes that
 * do not care about the layout (elementwise activations: the oneDNN
 * eltwise primitive and the reference kernels treat the buffer as a flat
 * array, which is exact because nChw{B}c with C a multiple of B has no
 * padding) or know it (batch norm, ref_ops.c), the output of another backend
 * convolution, every tensor of the chain has exactly one reader and none is
 * a graph output, and every primitive involved (producer: forward dst,
 * backward diff_dst; consumer: forward src, backward diff_src, backward-
 * weights src) wants the same nChw{B}c layout (NHWC included: B = C), then
 * the whole chain keeps
 * that layout: the producer writes it, the consumer reads it, its gradients
 * flow in it, and the two reorders per node and pass disappear. The tensors
 * are marked (t->blk) so that batch norm and hv_nn_tensor_get see it.
 * bf16 (inference): the chain holds bf16 values, which only the two
 * convolutions read, so it may hold nothing but the activation fused into
 * the producer (the eltwise and batch norm kernels read fp32). A bf16
 * convolution writes fp32 (its accumulator, unrounded) until a consumer
 * joins it: it is then rebuilt to write the consumer's bf16 source layout
 * (producer_rebuild: a destination md of the same shape, bf16 here, or
 * back to fp32 when link_nhwc gives a region up), the scratch it then needs
 * counted in *top. */
static int producer_rebuild(cpu_ctx *cx, hv_nn_tensor *p, conv_state *ps,
                            const dnnl_memory_desc_t *d16, size_t *top)
{
    dnnl_primitive_desc_t pd = NULL;
    prim_state np;
    slot ns;
    memset(&np, 0, sizeof np);
    memset(&ns, 0, sizeof ns);
    /* the same source, weights and bias layouts as the slots and the cached
     * weights already hold; only the destination changes */
    dnnl_convolution_desc_t fd = ps->fdesc;
    const dnnl_memory_desc_t *sm = slot_md(&ps->f_src), *wm = slot_md(&ps->f_w);
    const dnnl_memory_desc_t *bm = ps->f_b.used ? slot_md(&ps->f_b) : NULL;
    if (!sm || !wm || (ps->f_b.used && !bm)) return 0;
    fd.src_desc = *sm;
    fd.weights_desc = *wm;
    if (bm) fd.bias_desc = *bm;
    fd.dst_desc = *d16;
    size_t ptop = ps->top_end;
    dnnl_memory_desc_t yu;
    plain_md(&yu, 4, p->shape, 0);
    int ok = prim_make(cx, &np, &fd, NULL, p->ip[4], p->fp[2], &pd, &ptop) == HV_OK &&
             native_impl(pd) &&
             dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), d16) &&
             slot_init(cx, &ns, &yu, d16, 1, 0, &ptop) == HV_OK;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (!ok) { /* the producer stays as it was: no chain */
        prim_release(&np);
        slot_release(&ns);
        return 0;
    }
    prim_release(&ps->fwd);
    ps->fwd = np;
    slot_release(&ps->f_dst);
    ps->f_dst = ns;
    ps->top_end = ptop;
    if (ptop > *top) *top = ptop;
    return 1;
}

static void link_producer(cpu_ctx *cx, hv_nn_tensor *n, conv_state *cs, int training, size_t *top)
{
    hv_nn_tensor *chain[16], *t = n->src[0], *p = NULL;
    int nc = 0;
    for (;;) {
        if (t->is_output || t->n_consumers != 1 || nc == 16) return;
        chain[nc++] = t;
        if (t->alias_of) { /* an activation fused into the convolution before it */
            p = t->alias_of;
            break;
        }
        if (t->op == HV_NN_OP_CONV2D) {
            p = t;
            nc--; /* the producer itself is not part of the chain */
            break;
        }
        if (!is_eltwise(t->op) && t->op != HV_NN_OP_BATCH_NORM) return;
        t = t->src[0];
    }
    conv_state *ps = p->be_state;
    const dnnl_memory_desc_t *want = ps ? slot_md(&ps->f_dst) : NULL;
    if (!p->on_backend || !ps || ps->out_blocked || p->is_output || p->n_consumers != 1 ||
        !ps->f_dst.reorder ||
        !cs->f_src.reorder || !want || p->bf16 != n->bf16)
        return;
    /* bf16: the producer's fp32 output layout, in bf16 */
    dnnl_memory_desc_t w16;
    if (n->bf16) {
        w16 = *want;
        w16.data_type = dnnl_bf16;
        want = &w16;
    }
    /* no padding: the chain fits the graph's buffer of numel floats */
    const size_t esz = want->data_type == dnnl_bf16 ? 2 : sizeof(float);
    if (dnnl_memory_desc_get_size(want) != (size_t)p->numel * esz) return;
    for (int i = 0; esz != sizeof(float) && i < nc; i++)
        if (!chain[i]->alias_of) return;
    const int blk = md_block(want);
    if (!blk) return;
    for (int i = 0; blk > BN_MAX_BLOCK && i < nc; i++)
        if (chain[i]->op == HV_NN_OP_BATCH_NORM) return;
    const slot *need[6] = {&cs->f_src, NULL, NULL, NULL, NULL, NULL};
    int nn = 1;
    if (training) {
        need[nn++] = &ps->d_ddst;
        need[nn++] = &ps->w_ddst;
        need[nn++] = &cs->d_dsrc;
        need[nn++] = &cs->w_src;
    }
    for (int i = 0; i < nn; i++) {
        const dnnl_memory_desc_t *md = slot_md(need[i]);
        if (!md || !need[i]->reorder || !dnnl_memory_desc_equal(md, want)) return;
    }
    if (n->bf16 && !producer_rebuild(cx, p, ps, want, top)) return;
    ps->out_blocked = 1;
    cs->in_blocked = 1;
    p->blk = blk;
    p->blk_bf16 = n->bf16;
    for (int i = 0; i < nc; i++) {
        chain[i]->blk = blk;
        chain[i]->blk_bf16 = n->bf16;
    }
}

/* NHWC regions (inference). link_producer's chains end at a tensor
 * with a second reader, a concat or an upsampling; on AVX-512, where the
 * inference convolutions read and write NHWC (acdb), link_nhwc carries the
 * layout through those too, when a convolution's source is:
 *   - a backend convolution's output (its fused activation included) that
 *     wants to write NHWC, or (fp32) an elementwise activation of such a
 *     tensor;
 *   - a concat along channels: it writes NHWC, each input NHWC when that
 *     input is itself such a region, else read plain (ref_ops_layout.c);
 *   - a nearest upsampling: the same with its one input;
 * and every other reader of each tensor in it is a backend convolution
 * recorded before this one that wants the same NHWC source (it then reads
 * it without its reorder), or (fp32) a global average pool (which reads any
 * blocked layout). A convolution reader recorded after this one decides
 * instead, when its turn comes (node_prepare runs in node order), so a
 * tensor read by two convolutions (conv16 -> conv17, conv18) is linked at
 * the second. Graph outputs, constants and training stay as they were
 * (plain outside link_producer's chains).
 * bf16 (a bf16 convolution's source): the region holds bf16 NHWC, so it is
 * made of bf16 convolutions only: each producer is rebuilt to write bf16
 * (producer_rebuild) and every convolution reader is bf16; the concat and
 * upsample kernels copy bf16 and round a plain fp32 input (RNE, as the
 * reorder would). Every reader of a region tensor then rounds it to bf16
 * anyway, which is why the outputs are bit-identical to the path without
 * regions (bf16 -> fp32 -> bf16 is exact). Hence no gap reader (it sums the
 * unrounded fp32 values), no elementwise node (its kernel reads fp32) and no
 * fp32 convolution (< HV_NN_BF16_MIN_COUT outputs) in a bf16 region: those
 * tensors stay plain fp32 as before. An fp32 region (an fp32 convolution's
 * source, e.g. the output heads') may hold a bf16 convolution's output: it
 * is fp32 (unrounded) there, written in NHWC instead of reordered to plain,
 * so exact too. hv__nn_cpu_set_bf16_regions(0) gives the path before both
 * (bf16 regions and bf16 convolutions in fp32 regions). t->blk_bf16 says
 * which tensors hold bf16. */
#define NHWC_MAX 64
typedef struct nhwc_plan {
    const hv_nn_tensor *root;   /* the convolution being prepared */
    hv_nn_tensor *const *nodes; /* the graph's nodes, by id */
    int nnodes;
    int bf16;     /* a bf16 region */
    int mixed_ok; /* an fp32 region may hold bf16 convolutions' outputs */
    hv_nn_tensor *mark[NHWC_MAX], *prodt[NHWC_MAX];
    conv_state *prod[NHWC_MAX], *rd[NHWC_MAX];
    int nm, np, nr;
} nhwc_plan;

static void nhwc_md(dnnl_memory_desc_t *md, const hv_nn_tensor *t, int bf16)
{
    dnnl_dims_t d = {t->shape[0], t->shape[1], t->shape[2], t->shape[3]};
    dnnl_memory_desc_init_by_tag(md, 4, d, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_acdb);
}

/* Does slot s (with a reorder) want t in NHWC (bf16: of bf16 values)? */
static int slot_wants_nhwc(const slot *s, const hv_nn_tensor *t, int bf16)
{
    const dnnl_memory_desc_t *md = slot_md(s);
    dnnl_memory_desc_t h;
    if (!md || !s->reorder) return 0;
    nhwc_md(&h, t, bf16);
    return dnnl_memory_desc_equal(md, &h);
}

/* Every reader of t other than `from` can read it in NHWC. */
static int nhwc_readers(nhwc_plan *pl, const hv_nn_tensor *t, const hv_nn_tensor *from)
{
    for (int j = 0; j < pl->nnodes; j++) {
        hv_nn_tensor *c = pl->nodes[j];
        int reads = 0;
        for (int s = 0; s < c->nsrc; s++) reads += c->src[s] == t;
        if (!reads || c == from) continue;
        if (c->op == HV_NN_OP_GAP && c->ndim == 4 && !pl->bf16) continue;
        conv_state *cc = c->be_state;
        if (c->op != HV_NN_OP_CONV2D || c == pl->root || c->id > pl->root->id || reads != 1 ||
            c->src[0] != t || !c->on_backend || !cc || c->bf16 != pl->bf16 || cc->in_blocked ||
            !slot_wants_nhwc(&cc->f_src, t, pl->bf16) || pl->nr == NHWC_MAX)
            return 0;
        pl->rd[pl->nr++] = cc;
    }
    return 1;
}

/* Can t be delivered to `from` in NHWC? Records what must change. */
static int nhwc_visit(nhwc_plan *pl, hv_nn_tensor *t, const hv_nn_tensor *from)
{
    for (int i = 0; i < pl->nm; i++)
        if (pl->mark[i] == t) return 1;
    /* a fused activation (alias_of) runs as part of its convolution */
    hv_nn_tensor *p = t->alias_of ? t->alias_of : t;
    if (t->ndim != 4 || t->is_output || t->is_const || t->blk || !p->on_backend ||
        pl->nm == NHWC_MAX || !nhwc_readers(pl, t, from))
        return 0;
    pl->mark[pl->nm++] = t;
    if (p->op == HV_NN_OP_CONV2D) {
        /* its fp32 destination in NHWC; a bf16 region rebuilds it for bf16 */
        conv_state *ps = p->be_state;
        if (!p->on_backend || !ps || (pl->bf16 ? !p->bf16 : p->bf16 && !pl->mixed_ok) ||
            ps->out_blocked ||
            pl->np == NHWC_MAX || !slot_wants_nhwc(&ps->f_dst, p, 0))
            return 0;
        if (p != t) {
            if (p->is_output || p->n_consumers != 1 || pl->nm == NHWC_MAX) return 0;
            pl->mark[pl->nm++] = p;
        }
        pl->prodt[pl->np] = p;
        pl->prod[pl->np++] = ps;
        return 1;
    }
    if (is_eltwise(t->op)) return !pl->bf16 && nhwc_visit(pl, t->src[0], t);
    if (t->op == HV_NN_OP_CONCAT || t->op == HV_NN_OP_UPSAMPLE) {
        /* an input that cannot come in NHWC is read plain */
        for (int s = 0; s < t->nsrc; s++) {
            const int nm = pl->nm, np = pl->np, nr = pl->nr;
            if (!nhwc_visit(pl, t->src[s], t)) {
                pl->nm = nm;
                pl->np = np;
                pl->nr = nr;
            }
        }
        return 1;
    }
    return 0;
}

static void link_nhwc(cpu_ctx *cx, hv_nn_tensor *n, conv_state *cs, size_t *top)
{
    nhwc_plan pl;
    pl.root = n;
    pl.nodes = hv__nn_graph_nodes(n->graph, &pl.nnodes);
    pl.bf16 = n->bf16;
    pl.mixed_ok = __atomic_load_n(&bf16_regions, __ATOMIC_RELAXED);
    pl.nm = pl.np = pl.nr = 0;
    if (cs->in_blocked || (n->bf16 && !pl.mixed_ok) ||
        !pl.nodes || !slot_wants_nhwc(&cs->f_src, n->src[0], pl.bf16) ||
        !nhwc_visit(&pl, n->src[0], n))
        return;
    /* bf16: every producer writes bf16 NHWC, or the region is given up (those
     * already rebuilt go back to their fp32 NHWC destination) */
    for (int i = 0; pl.bf16 && i < pl.np; i++) {
        dnnl_memory_desc_t h;
        nhwc_md(&h, pl.prodt[i], 1);
        if (producer_rebuild(cx, pl.prodt[i], pl.prod[i], &h, top)) continue;
        while (i-- > 0) {
            nhwc_md(&h, pl.prodt[i], 0);
            (void)producer_rebuild(cx, pl.prodt[i], pl.prod[i], &h, top);
        }
        return;
    }
    cs->in_blocked = 1;
    for (int i = 0; i < pl.nr; i++) pl.rd[i]->in_blocked = 1;
    for (int i = 0; i < pl.np; i++) pl.prod[i]->out_blocked = 1;
    for (int i = 0; i < pl.nm; i++) {
        pl.mark[i]->blk = (int)pl.mark[i]->shape[1];
        pl.mark[i]->blk_bf16 = pl.bf16;
    }
}

static hv_status conv_prepare(cpu_ctx *cx, conv_state *cs, hv_nn_tensor *n, int training,
                              size_t *top)
{
    hv_status st = HV_OK;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    const hv_nn_tensor *x = n->src[0], *w = n->src[1];
    const int has_b = n->nsrc > 2;
    dnnl_memory_desc_t xu, wu, bu, yu, xa, wa, ba, ya;
    /* conv2d: 2 spatial axes, one stride/pad/dilation (ip[0..2]); conv3d:
     * 3, each with its own (ip[0..2], ip[3..5], ip[6..8]) */
    const int nd = x->ndim, nsp = nd - 2, is3 = n->op == HV_NN_OP_CONV3D;
    plain_md(&xu, nd, x->shape, 0);
    plain_md(&wu, nd, w->shape, 0);
    plain_md(&yu, nd, n->shape, 0);
    int64_t nb = w->shape[0];
    plain_md(&bu, 1, &nb, 0);
    plain_md(&ba, 1, &nb, 1);
    /* oneDNN wants explicit right padding so that the output size matches,
     * and counts dilation from 0 */
    dnnl_dims_t strides, dil, pl, pr;
    for (int a = 0; a < nsp; a++) {
        const int64_t s = is3 ? n->ip[a] : n->ip[0], p = is3 ? n->ip[3 + a] : n->ip[1];
        const int64_t dl = (is3 ? n->ip[6 + a] : n->ip[2]) - 1;
        int64_t in = x->shape[2 + a], out = n->shape[2 + a], k = w->shape[2 + a];
        strides[a] = s;
        dil[a] = dl;
        pl[a] = p;
        pr[a] = (out - 1) * s + (k - 1) * (dl + 1) + 1 - in - p;
    }
    const int act = is3 ? 0 : n->ip[4]; /* the graph fuses activations into conv2d only */
    dnnl_convolution_desc_t fd;
    const size_t top0 = *top;
    /* bf16 (conv2d only): source and weights bf16, bias and output fp32
     * (accumulation is fp32 inside oneDNN; the output becomes bf16 when a
     * consumer joins it into a chain, link_producer); the slots' reorders
     * convert from the graph's fp32. A shape oneDNN has only its reference
     * bf16 kernel for (or none) is fp32 instead. */
    for (int bf16 = cx->bf16 && !training && !is3 && n->shape[1] >= HV_NN_BF16_MIN_COUT;;
         bf16 = 0) {
        const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
        typed_md(&xa, nd, x->shape, 1, dt);
        typed_md(&wa, nd, w->shape, 1, dt);
        typed_md(&ya, nd, n->shape, 1, dnnl_f32);
        DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(
            &fd, training ? dnnl_forward_training : dnnl_forward_inference,
            dnnl_convolution_direct, &xa, &wa, has_b ? &ba : NULL, &ya, strides, dil, pl, pr));
        st = prim_make(cx, &cs->fwd, &fd, NULL, training ? 0 : act, n->fp[2], &fpd, top);
        if (!bf16) break;
        if (st == HV_OK && native_impl(fpd)) {
            n->bf16 = 1;
            break;
        }
        if (fpd) dnnl_primitive_desc_destroy(fpd);
        fpd = NULL;
        prim_release(&cs->fwd);
        *top = top0;
        st = HV_OK;
    }
    if (st) goto done;
    st = slot_init(cx, &cs->f_src, &xu, dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0), 0, 0, top);
    if (!st) st = slot_init(cx, &cs->f_w, &wu, dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0), 0, 0, top);
    if (!st && has_b) st = slot_init(cx, &cs->f_b, &bu, dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 1), 0, 0, top);
    if (!st) st = slot_init(cx, &cs->f_dst, &yu, dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0), 1, 0, top);
    if (st) goto done;
    if (!training) {
        if (cs->f_w.reorder) {
            const dnnl_memory_desc_t *wmd;
            DNNL_TRY(dnnl_memory_get_memory_desc(cs->f_w.prim, &wmd));
            cs->w_cache = aligned_alloc(64, (md_floats(wmd) * sizeof(float) + 63) / 64 * 64);
            if (!cs->w_cache) {
                st = hv_error_set(HV_ERR_NOMEM, "oneDNN: out of memory");
                goto done;
            }
        }
        cs->fdesc = fd;
        cs->top_end = *top;
        if (!is3) link_producer(cx, n, cs, 0, top);
        if (!is3) link_nhwc(cx, n, cs, top);
        cs->top_end = *top;
        goto done;
    }

    dnnl_convolution_desc_t dd, wd;
    DNNL_TRY(dnnl_dilated_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &xa, &wa,
                                                              &ya, strides, dil, pl, pr));
    st = prim_make(cx, &cs->bwd_d, &dd, fpd, 0, 0.0f, &dpd, top);
    if (st) goto done;
    st = slot_init(cx, &cs->d_ddst, &yu, dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_dst_md, 0), 0, 0, top);
    if (!st) st = slot_init(cx, &cs->d_w, &wu, dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0), 0, 0, top);
    if (!st) st = slot_init(cx, &cs->d_dsrc, &xu, dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_src_md, 0), 1, 1, top);
    if (st) goto done;
    DNNL_TRY(dnnl_dilated_convolution_backward_weights_desc_init(
        &wd, dnnl_convolution_direct, &xa, &wa, has_b ? &ba : NULL, &ya, strides, dil, pl, pr));
    st = prim_make(cx, &cs->bwd_w, &wd, fpd, 0, 0.0f, &wpd, top);
    if (st) goto done;
    st = slot_init(cx, &cs->w_src, &xu, dnnl_primitive_desc_query_md(wpd, dnnl_query_src_md, 0), 0, 0, top);
    if (!st) st = slot_init(cx, &cs->w_ddst, &yu, dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0), 0, 0, top);
    if (!st) st = slot_init(cx, &cs->w_dw, &wu, dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0), 1, 1, top);
    if (!st && has_b) st = slot_init(cx, &cs->w_db, &bu, dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 1), 1, 1, top);
    if (!st && cs->d_ddst.reorder && cs->w_ddst.reorder) {
        const dnnl_memory_desc_t *a, *b;
        DNNL_TRY(dnnl_memory_get_memory_desc(cs->d_ddst.prim, &a));
        DNNL_TRY(dnnl_memory_get_memory_desc(cs->w_ddst.prim, &b));
        cs->share_ddst = dnnl_memory_desc_equal(a, b);
    }
    if (!st && !is3) link_producer(cx, n, cs, 1, top);
done:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    return st;
}

static void eltwise_alg(const hv_nn_tensor *n, dnnl_alg_kind_t *alg, float *alpha)
{
    *alpha = 0.0f;
    switch (n->op) {
    case HV_NN_OP_ELU: *alg = dnnl_eltwise_elu; *alpha = n->fp[0]; break;
    case HV_NN_OP_RELU: *alg = dnnl_eltwise_relu; break;
    case HV_NN_OP_LEAKY_RELU: *alg = dnnl_eltwise_relu; *alpha = n->fp[0]; break;
    case HV_NN_OP_TANH: *alg = dnnl_eltwise_tanh; break;
    default: *alg = dnnl_eltwise_logistic; break;
    }
}

static hv_status eltwise_prepare(cpu_ctx *cx, conv_state *cs, hv_nn_tensor *n, int training,
                                 size_t *top)
{
    hv_status st = HV_OK;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_memory_desc_t md;
    plain_md(&md, n->ndim, n->shape, 0);
    dnnl_alg_kind_t alg;
    float alpha;
    eltwise_alg(n, &alg, &alpha);
    dnnl_eltwise_desc_t fd, bd;
    DNNL_TRY(dnnl_eltwise_forward_desc_init(
        &fd, training ? dnnl_forward_training : dnnl_forward_inference, alg, &md, alpha, 0.0f));
    st = prim_make(cx, &cs->e_fwd, &fd, NULL, 0, 0.0f, &fpd, top);
    if (st) goto done;
    DNNL_TRY(dnnl_memory_create(&cs->e_src, &md, cx->engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&cs->e_dst, &md, cx->engine, DNNL_MEMORY_NONE));
    if (!training) goto done;
    DNNL_TRY(dnnl_eltwise_backward_desc_init(&bd, alg, &md, &md, alpha, 0.0f));
    st = prim_make(cx, &cs->e_bwd, &bd, fpd, 0, 0.0f, &bpd, top);
    if (st) goto done;
    DNNL_TRY(dnnl_memory_create(&cs->e_ddst, &md, cx->engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&cs->e_dsrc, &md, cx->engine, DNNL_MEMORY_NONE));
    cs->e_dsrc_off = ws_take(top, (size_t)n->numel);
done:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    return st;
}

/* ------------------------------------- contextual attention's GEMMs in bf16
 *
 * On a bf16 backend (inference), contextual attention's two contractions,
 * the patch scores (L x L x C9) and the paste (C 4r^2 x L x L), are ~20 % of
 * the generator's FLOPs and, in fp32, 35-40 % of a bf16 forward. They run as
 * bf16 matmuls (brgemm on avx512_bf16: bf16 inputs, fp32 accumulation and
 * output); everything else of the layer (normalisation, the diagonal fuse,
 * the softmax, the paste's col2im) stays fp32 in ref_ctx_attn.c, which asks
 * for these through ex->gemm_bf16. A shape oneDNN has only reference code
 * for is left to fp32 (no state, n->bf16 = 0). */
static void ca_release(ca_bf16 *ca)
{
    if (!ca) return;
    for (int i = 0; i < 2; i++) {
        prim_release(&ca->g[i].mm);
        dnnl_memory_t mems[3] = {ca->g[i].a, ca->g[i].b, ca->g[i].c};
        for (int j = 0; j < 3; j++)
            if (mems[j]) dnnl_memory_destroy(mems[j]);
    }
    free(ca);
}

/* Strided 2-D descriptor of op(X) (rows x cols), X stored dense row-major
 * untransposed (rows x cols) or transposed (cols x rows). */
static void strided_md(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int trans,
                       dnnl_data_type_t dt)
{
    dnnl_dims_t d = {rows, cols}, st = {trans ? 1 : cols, trans ? rows : 1};
    dnnl_memory_desc_init_by_strides(md, 2, d, dt, st);
}

static hv_status ca_gemm_prepare(cpu_ctx *cx, ca_gemm_prim *g, int ta, int tb, int64_t m,
                                 int64_t n, int64_t k, size_t *top)
{
    hv_status st = HV_OK;
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    *g = (ca_gemm_prim){.ta = ta, .tb = tb, .m = m, .n = n, .k = k};
    strided_md(&amd, m, k, ta, dnnl_bf16);
    strided_md(&bmd, k, n, tb, dnnl_bf16);
    strided_md(&cmd, m, n, 0, dnnl_f32);
    DNNL_TRY(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
    if ((st = prim_make(cx, &g->mm, &md, NULL, 0, 0.0f, &pd, top))) goto done;
    if (!native_impl(pd)) {
        st = hv_error_set(HV_ERR_UNSUPPORTED, "oneDNN: no native bf16 matmul %lldx%lldx%lld",
                          (long long)m, (long long)n, (long long)k);
        goto done;
    }
    DNNL_TRY(dnnl_memory_create(&g->a, &amd, cx->engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&g->b, &bmd, cx->engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&g->c, &cmd, cx->engine, DNNL_MEMORY_NONE));
    g->a_off = ws_take(top, (size_t)(m * k + 1) / 2);
    g->b_off = ws_take(top, (size_t)(k * n + 1) / 2);
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The node's two GEMMs (ref_ctx_attn.c's forward calls, in its order), their
 * bf16 copies placed after the reference kernel's fp32 scratch. NULL (and
 * no error) when either has no native kernel: the layer then runs in fp32. */
static ca_bf16 *ca_prepare(cpu_ctx *cx, const hv_nn_tensor *n, size_t *top)
{
    const hv_nn_ca_dims d = hv__nn_ca_dims(n);
    ca_bf16 *ca = calloc(1, sizeof *ca);
    if (!ca) return NULL;
    ca->cx = cx;
    *top = hv__nn_ca_work_size(n);
    if (ca_gemm_prepare(cx, &ca->g[0], 1, 0, d.l, d.l, d.c9, top) ||
        ca_gemm_prepare(cx, &ca->g[1], 0, 1, d.ckk, d.l, d.l, top)) {
        hv_error_clear();
        ca_release(ca);
        *top = 0;
        return NULL;
    }
    return ca;
}

static void round_bf16(const float *x, int64_t n, uint16_t *y)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = hv__nn_to_bf16(x[i]);
}

static int ca_gemm_bf16(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                        int64_t ldc)
{
    ca_bf16 *ca = ctx;
    hv_status st = HV_OK;
    ca_gemm_prim *g = NULL;
    for (int i = 0; i < 2 && !g; i++) {
        ca_gemm_prim *h = &ca->g[i];
        if (h->ta == ta && h->tb == tb && h->m == m && h->n == n && h->k == k &&
            lda == (ta ? m : k) && ldb == (tb ? k : n) && ldc == n)
            g = h;
    }
    if (!g || !ca->work) return 1; /* not a prepared shape: the caller's fp32 GEMM */
    uint16_t *ab = (uint16_t *)(ca->work + g->a_off), *bb = (uint16_t *)(ca->work + g->b_off);
    round_bf16(a, m * k, ab);
    round_bf16(b, k * n, bb);
    DNNL_TRY(dnnl_memory_set_data_handle(g->a, ab));
    DNNL_TRY(dnnl_memory_set_data_handle(g->b, bb));
    DNNL_TRY(dnnl_memory_set_data_handle(g->c, c));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, g->a}, {DNNL_ARG_WEIGHTS, g->b}, {DNNL_ARG_DST, g->c}};
    st = prim_run(ca->cx, &g->mm, ca->work, args, 3);
done:
    if (st) hv_error_clear();
    return st != HV_OK; /* nonzero: C was not written, the caller's fp32 GEMM */
}

static void cpu_release(hv_nn_backend *be, hv_nn_tensor *n)
{
    (void)be;
    conv_state *cs = n->be_state;
    if (!cs) return;
    prim_release(&cs->fwd);
    prim_release(&cs->bwd_d);
    prim_release(&cs->bwd_w);
    prim_release(&cs->e_fwd);
    prim_release(&cs->e_bwd);
    free(cs->w_cache);
    ca_release(cs->ca);
    slot *slots[] = {&cs->f_src, &cs->f_w, &cs->f_b, &cs->f_dst, &cs->d_ddst, &cs->d_w,
                     &cs->d_dsrc, &cs->w_src, &cs->w_ddst, &cs->w_dw, &cs->w_db};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) slot_release(slots[i]);
    dnnl_memory_t mems[] = {cs->e_src, cs->e_dst, cs->e_ddst, cs->e_dsrc};
    for (size_t i = 0; i < 4; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(cs);
    n->be_state = NULL;
    n->bf16 = 0;
    n->blk_bf16 = 0;
}

static hv_status cpu_prepare(hv_nn_backend *be, hv_nn_tensor *n, int training, size_t *work_n)
{
    cpu_ctx *cx = be->ctx;
    /* the planner refuses it first (graph.c); a backward in bf16 is never run */
    if (training && be->precision != HV_NN_FP32)
        return hv_error_set(HV_ERR_UNSUPPORTED, "oneDNN: bf16 is an inference precision, the "
                            "graph has gradients");
    cx->bf16 = be->precision == HV_NN_BF16;
    if (!on_dnnl(n)) {
        *work_n = 0; /* the graph sizes the reference kernels' scratch */
        if (n->op != HV_NN_OP_CTX_ATTN || !cx->bf16 || training ||
            !__atomic_load_n(&ctx_attn_bf16, __ATOMIC_RELAXED))
            return HV_OK;
        conv_state *cs = calloc(1, sizeof *cs);
        if (!cs) return hv_error_set(HV_ERR_NOMEM, "oneDNN: out of memory");
        size_t top = 0;
        if (!(cs->ca = ca_prepare(cx, n, &top))) {
            free(cs);
            return HV_OK;
        }
        n->be_state = cs;
        n->bf16 = 1;
        *work_n = top;
        return HV_OK;
    }
    conv_state *cs = calloc(1, sizeof *cs);
    if (!cs) return hv_error_set(HV_ERR_NOMEM, "oneDNN: out of memory");
    n->be_state = cs;
    size_t top = 0;
    hv_status st = is_conv(n->op) ? conv_prepare(cx, cs, n, training, &top)
                                  : eltwise_prepare(cx, cs, n, training, &top);
    if (st != HV_OK) {
        cpu_release(be, n);
        return st;
    }
    *work_n = top;
    return HV_OK;
}

static hv_status cpu_forward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    cpu_ctx *cx = be->ctx;
    conv_state *cs = n->be_state;
    hv_status st = HV_OK;
    dnnl_exec_arg_t args[8];
    if (!on_dnnl(n)) return run_ref(n, ex, 0);
    if (!is_conv(n->op)) {
        DNNL_TRY(dnnl_memory_set_data_handle(cs->e_src, n->src[0]->data));
        DNNL_TRY(dnnl_memory_set_data_handle(cs->e_dst, n->data));
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, cs->e_src};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, cs->e_dst};
        return prim_run(cx, &cs->e_fwd, ex->work, args, 2);
    }
    dnnl_memory_t src, w, b = NULL, dst;
    int na = 0;
    const hv_nn_tensor *wt = n->src[1];
    if (cs->in_blocked) {
        DNNL_TRY(dnnl_memory_set_data_handle(cs->f_src.prim, n->src[0]->data));
        src = cs->f_src.prim;
    } else if ((st = slot_in(cx, &cs->f_src, n->src[0]->data, ex->work, &src))) {
        goto done;
    }
    if (cs->w_cache) {
        /* folded weights are reordered once per change of their version */
        if (!cs->w_valid || !wt->is_const || wt->const_version != cs->w_version) {
            DNNL_TRY(dnnl_memory_set_data_handle(cs->f_w.user, wt->data));
            DNNL_TRY(dnnl_memory_set_data_handle(cs->f_w.prim, cs->w_cache));
            if ((st = run_reorder(cx, cs->f_w.reorder, cs->f_w.user, cs->f_w.prim))) goto done;
            cs->w_version = wt->const_version;
            cs->w_valid = 1;
        }
        w = cs->f_w.prim;
    } else if ((st = slot_in(cx, &cs->f_w, wt->data, ex->work, &w))) {
        goto done;
    }
    if (n->nsrc > 2 && (st = slot_in(cx, &cs->f_b, n->src[2]->data, ex->work, &b))) goto done;
    if (cs->out_blocked) {
        DNNL_TRY(dnnl_memory_set_data_handle(cs->f_dst.prim, n->data));
        dst = cs->f_dst.prim;
    } else if ((st = slot_out(&cs->f_dst, n->data, ex->work, 0, &dst))) {
        goto done;
    }
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, src};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, w};
    if (b) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, b};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    if ((st = prim_run(cx, &cs->fwd, ex->work, args, na))) goto done;
    if (!cs->out_blocked) st = slot_out_finish(cx, &cs->f_dst, n->data, ex->work, 0);
done:
    return st;
}

static hv_status cpu_backward(hv_nn_backend *be, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    cpu_ctx *cx = be->ctx;
    conv_state *cs = n->be_state;
    hv_status st = HV_OK;
    dnnl_exec_arg_t args[8];
    if (!on_dnnl(n)) return run_ref(n, ex, 1);
    hv_nn_tensor *x = n->src[0], *w = n->src[1], *b = n->nsrc > 2 ? n->src[2] : NULL;
    if (!is_conv(n->op)) {
        if (!x->grad) return HV_OK;
        /* only reader of a cleared gradient: write it directly */
        const int direct = x->n_consumers == 1 && x->op != HV_NN_OP_PARAM;
        float *tmp = direct ? x->grad : ex->work + cs->e_dsrc_off;
        DNNL_TRY(dnnl_memory_set_data_handle(cs->e_src, x->data));
        DNNL_TRY(dnnl_memory_set_data_handle(cs->e_ddst, n->grad));
        DNNL_TRY(dnnl_memory_set_data_handle(cs->e_dsrc, tmp));
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, cs->e_src};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, cs->e_ddst};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, cs->e_dsrc};
        if ((st = prim_run(cx, &cs->e_bwd, ex->work, args, 3))) goto done;
        if (direct) return HV_OK;
        const int64_t cnt = n->numel;
#pragma omp parallel for schedule(static) if (cnt > 32768)
        for (int64_t i = 0; i < cnt; i++) x->grad[i] += tmp[i];
        return HV_OK;
    }
    dnnl_memory_t m0, m1, m2, m3 = NULL;
    /* out_blocked: n->grad already is in the primitives' blocked layout */
    const int ddst_ready = x->grad && cs->share_ddst && !cs->out_blocked;
    if (x->grad) {
        /* x's gradient was cleared and this is its only reader: write it
         * instead of computing into a temporary and adding */
        const int acc = !(x->n_consumers == 1 && x->op != HV_NN_OP_PARAM);
        if (cs->out_blocked) {
            DNNL_TRY(dnnl_memory_set_data_handle(cs->d_ddst.prim, n->grad));
            m0 = cs->d_ddst.prim;
        } else if ((st = slot_in(cx, &cs->d_ddst, n->grad, ex->work, &m0))) {
            goto done;
        }
        if ((st = slot_in(cx, &cs->d_w, w->data, ex->work, &m1))) goto done;
        if (cs->in_blocked) {
            /* x->grad is blocked too: no reorder, the sum is layout-agnostic */
            float *to = acc ? ex->work + cs->d_dsrc.tmp_off : x->grad;
            DNNL_TRY(dnnl_memory_set_data_handle(cs->d_dsrc.prim, to));
            m2 = cs->d_dsrc.prim;
        } else if ((st = slot_out(&cs->d_dsrc, x->grad, ex->work, acc, &m2))) {
            goto done;
        }
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, m0};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m1};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, m2};
        if ((st = prim_run(cx, &cs->bwd_d, ex->work, args, 3))) goto done;
        if (cs->in_blocked) {
            if (acc) add_into(x->grad, ex->work + cs->d_dsrc.tmp_off, (int64_t)cs->d_dsrc.n);
        } else if ((st = slot_out_finish(cx, &cs->d_dsrc, x->grad, ex->work, acc))) {
            goto done;
        }
    }
    if (w->grad || (b && b->grad)) {
        /* oneDNN computes both; a missing destination goes to the temporary only */
        int na = 0;
        if (cs->in_blocked) {
            DNNL_TRY(dnnl_memory_set_data_handle(cs->w_src.prim, x->data));
            m0 = cs->w_src.prim;
        } else if ((st = slot_in(cx, &cs->w_src, x->data, ex->work, &m0))) {
            goto done;
        }
        if (cs->out_blocked) {
            DNNL_TRY(dnnl_memory_set_data_handle(cs->w_ddst.prim, n->grad));
            m1 = cs->w_ddst.prim;
        } else if (ddst_ready) {
            DNNL_TRY(dnnl_memory_set_data_handle(cs->w_ddst.prim, ex->work + cs->d_ddst.off));
            m1 = cs->w_ddst.prim;
        } else if ((st = slot_in(cx, &cs->w_ddst, n->grad, ex->work, &m1))) {
            goto done;
        }
        if ((st = slot_out(&cs->w_dw, w->grad, ex->work, 1, &m2))) goto done;
        if (b && (st = slot_out(&cs->w_db, b->grad, ex->work, 1, &m3))) goto done;
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m0};
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, m1};
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, m2};
        if (b) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, m3};
        if ((st = prim_run(cx, &cs->bwd_w, ex->work, args, na))) goto done;
        if (w->grad && (st = slot_out_finish(cx, &cs->w_dw, w->grad, ex->work, 1))) goto done;
        if (b && b->grad && (st = slot_out_finish(cx, &cs->w_db, b->grad, ex->work, 1))) goto done;
    }
done:
    return st;
}

static void cpu_destroy(hv_nn_backend *be)
{
    cpu_ctx *cx = be->ctx;
    if (cx) {
        if (cx->stream) dnnl_stream_destroy(cx->stream);
        if (cx->engine) dnnl_engine_destroy(cx->engine);
        free(cx);
    }
    free(be);
}

/* bf16 needs oneDNN's native bf16 kernels: avx512_bf16 (avx512_core_bf16)
 * or AMX; below that oneDNN 2.6 has no bf16 convolution but its reference
 * loops (or emulates bf16 on plain AVX-512 at no gain). The effective ISA
 * also honours ONEDNN_MAX_CPU_ISA. */
static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic:
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

static hv_status cpu_check_precision(hv_nn_backend *be, hv_nn_precision p)
{
    (void)be;
    if (p != HV_NN_BF16) return hv_error_set(HV_ERR_UNSUPPORTED, "cpu backend: precision %d", (int)p);
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) !=
        (unsigned)dnnl_cpu_isa_avx512_core_bf16)
        return hv_error_set(HV_ERR_UNSUPPORTED, "cpu backend: bf16 needs a CPU with avx512_bf16 "
                            "or AMX (oneDNN's avx512_core_bf16); this one runs oneDNN at %s "
                            "(use precision fp32)", isa_name(isa));
    return HV_OK;
}

static const hv_nn_backend_i cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .host_memory = 1,
    .supports_op = NULL, /* every node: oneDNN or a reference kernel with oneDNN's sgemm */
    .node_prepare = cpu_prepare,
    .node_release = cpu_release,
    .node_forward = cpu_forward,
    .node_backward = cpu_backward,
    .check_precision = cpu_check_precision,
};

hv_status hv_nn_backend_create_cpu(hv_nn_backend **out)
{
    hv_status st = HV_OK;
    hv_nn_backend *be = NULL;
    cpu_ctx *cx = NULL;
    if (!out) return hv_error_set(HV_ERR_ARG, "nn backend: out is NULL");
    be = calloc(1, sizeof *be);
    cx = calloc(1, sizeof *cx);
    if (!be || !cx) {
        st = hv_error_set(HV_ERR_NOMEM, "nn backend: out of memory");
        goto done;
    }
    be->iface = &cpu_iface;
    be->ctx = cx;
    DNNL_TRY(dnnl_engine_create(&cx->engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&cx->stream, cx->engine, dnnl_stream_default_flags));
    *out = be;
    be = NULL;
    cx = NULL;
done:
    if (be) {
        be->ctx = cx;
        cpu_destroy(be);
    } else {
        free(cx);
    }
    return st;
}
