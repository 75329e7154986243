/*
 * graph.c: recording ops, planning memory, running forward and backward.
 *
 * Design (after ggml's graph/compute split): an hv_nn_* op call only appends
 * a node with its shape to the graph; nothing is computed. hv_nn_graph_plan
 * then, once:
 *   1. marks which nodes need gradients (training graphs) and which depend on
 *      parameters only (inference graphs: "constant" nodes such as the
 *      spectrally normalised weights, folded = computed once and again only
 *      when a parameter's version changes);
 *   2. places every tensor in ONE arena: in inference graphs by lifetime
 *      (first-fit offsets; a tensor's block is free again after its last
 *      reader ran), in training graphs every activation and gradient keeps
 *      its own block because the reverse pass reads them;
 *   3. asks the backend which nodes it runs and lets it build its per-node
 *      state (oneDNN primitives), and sizes one shared workspace.
 * Graphs that never run interleaved may then share one arena and workspace
 * (hv_nn_graphs_share: pointers into a graph's own arena are rebased onto
 * the group's, which is as large as the group's first graph). Sharing after
 * planning, not planning into a shared block, keeps plan() unchanged and
 * lets each graph join as soon as it is planned.
 * Forward and backward then only run kernels: they never allocate, which the
 * tests check through hv_nn_alloc_count().
 *
 * Reverse mode is a tape walk: nodes run backward in reverse order, each
 * adding into its inputs' gradients (rejected alternative: generating
 * gradient nodes as ggml does; it allows higher-order gradients, which we do
 * not need, at the price of many more graph nodes and no fused backward
 * kernels such as oneDNN's convolution backward).
 *
 * On a backend whose buffers are device memory, the nodes it declines run
 * on host staging copies (placement.c).
 *
 * One file of ~1,480 lines on purpose: recording, planning (gradient marks,
 * constant folding, arena placement) and the two passes all walk the same
 * node array with the same invariants, which are easier to check in one
 * place than across files.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_backend.h"

struct hv_nn_graph {
    hv_nn_tensor **nodes;
    int n, cap;
    hv_status err;
    hv_nn_backend *be;
    int planned;
    int training;
    int grads;
    float *arena;
    size_t arena_n;
    float *work;
    size_t work_n;
    hv_nn_exec ex;
    /* device backends (host_memory 0): the host side of the nodes the
     * backend declines: their aux, scratch and staging copies of their
     * tensors (placement.c) */
    int host;
    float *haux, *hwork, *stage;
    size_t haux_n, hwork_n, stage_n;
    hv_nn_exec hex;
    int profiling;
    int frozen; /* backward computes no parameter gradients */
    /* arena and workspace shared with other graphs (hv_nn_graphs_share);
     * NULL: arena and work are the graph's own */
    struct graph_share *share;
    double prof_s[HV_NN_OP_COUNT], prof_bs[HV_NN_OP_COUNT];
    int64_t prof_n[HV_NN_OP_COUNT], prof_bn[HV_NN_OP_COUNT];
};

/* --------------------------------------------------------- counted alloc */

static _Atomic uint64_t alloc_count;

uint64_t hv_nn_alloc_count(void) { return atomic_load(&alloc_count); }

void *hv__nn_malloc(size_t bytes)
{
    atomic_fetch_add(&alloc_count, 1);
    return malloc(bytes ? bytes : 1);
}

void *hv__nn_calloc(size_t n, size_t size)
{
    atomic_fetch_add(&alloc_count, 1);
    return calloc(n ? n : 1, size ? size : 1);
}

void *hv__nn_aligned(size_t bytes)
{
    atomic_fetch_add(&alloc_count, 1);
    size_t sz = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, sz ? sz : 64);
}

void hv__nn_free(void *p) { free(p); }

/* ------------------------------------------------------------ op names */

static const char *const op_names[HV_NN_OP_COUNT] = {
    "input", "param", "conv2d", "deconv2d", "spectral_norm", "elu", "relu",
    "leaky_relu", "sigmoid", "clamp", "upsample", "downsample", "concat", "pad",
    "slice", "batch_norm", "gap", "linear", "softmax", "add", "sub", "mul", "scale",
    "sum", "mean", "sobel", "bce_logits", "l1", "mse", "dice", "ctx_attn", "reshape",
    "maxpool", "channel_mul", "conv3d", "maxpool3d", "tanh", "reflect_pad",
    "upsample_bilinear", "aot_norm", "l2_normalize", "supcon", "cross_entropy"};

const char *hv_nn_op_name(hv_nn_op op)
{
    return (op >= 0 && op < HV_NN_OP_COUNT) ? op_names[op] : "?";
}

/* --------------------------------------------------------------- graph */

hv_status hv_nn_graph_create(hv_nn_graph **out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "nn graph: out is NULL");
    hv_nn_graph *g = hv__nn_calloc(1, sizeof *g);
    if (!g) return hv_error_set(HV_ERR_NOMEM, "nn graph: out of memory");
    *out = g;
    return HV_OK;
}

/* One arena and workspace held by the graphs of a hv_nn_graphs_share call:
 * the last graph freed frees them. */
typedef struct graph_share {
    float *arena, *work;
    int refs;
} graph_share;

static void share_release(graph_share *sh)
{
    if (sh && --sh->refs == 0) {
        free(sh->arena);
        free(sh->work);
        free(sh);
    }
}

void hv_nn_graph_free(hv_nn_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        if (g->be && t->be_state && g->be->iface->node_release)
            g->be->iface->node_release(g->be, t);
        free(t);
    }
    free(g->nodes);
    if (g->share) {
        share_release(g->share);
    } else if (g->be && g->be->iface->buffer_free) {
        if (g->arena) g->be->iface->buffer_free(g->be, g->arena);
        if (g->work) g->be->iface->buffer_free(g->be, g->work);
    } else {
        free(g->arena);
        free(g->work);
    }
    free(g->haux);
    free(g->hwork);
    free(g->stage);
    free(g);
}

hv_status hv_nn_graph_status(const hv_nn_graph *g) { return g ? g->err : HV_ERR_ARG; }

hv_nn_tensor *const *hv__nn_graph_nodes(const hv_nn_graph *g, int *n)
{
    *n = g ? g->n : 0;
    return g ? g->nodes : NULL;
}

static void *fail(hv_nn_graph *g, hv_status st, const char *what)
{
    if (g->err == HV_OK) {
        g->err = hv_error_set(st, "nn graph: %s", what);
    }
    return NULL;
}

/* fail() with a formatted message (shape errors name the shapes). */
static void *failf(hv_nn_graph *g, hv_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(g, st, msg);
}

/* A tensor's shape as "(a, b, c)" in buf (for error messages); returns buf. */
static const char *shape_str(const hv_nn_tensor *t, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < t->ndim && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%lld", i ? ", " : "(", (long long)t->shape[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used + 1 < len) snprintf(buf + used, len - used, ")");
    return buf;
}

/* New node with the given shape; srcs must be non-NULL (checked by callers). */
static hv_nn_tensor *node_new(hv_nn_graph *g, hv_nn_op op, int ndim, const int64_t *shape,
                              int nsrc, hv_nn_tensor *const *src)
{
    if (g->err) return NULL;
    if (g->planned) return fail(g, HV_ERR_ARG, "graph is already planned");
    if (ndim < 1 || ndim > HV_NN_MAX_DIMS || nsrc > HV_NN_MAX_SRC)
        return fail(g, HV_ERR_ARG, "bad rank or too many inputs");
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || numel > INT64_MAX / shape[i])
            return fail(g, HV_ERR_ARG, "bad shape");
        numel *= shape[i];
    }
    for (int i = 0; i < nsrc; i++)
        if (src[i]->graph != g) return fail(g, HV_ERR_ARG, "input from another graph");
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        hv_nn_tensor **nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return fail(g, HV_ERR_NOMEM, "out of memory");
        atomic_fetch_add(&alloc_count, 1);
        g->nodes = nn;
        g->cap = cap;
    }
    hv_nn_tensor *t = hv__nn_calloc(1, sizeof *t);
    if (!t) return fail(g, HV_ERR_NOMEM, "out of memory");
    t->op = op;
    t->id = g->n;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    t->nsrc = nsrc;
    for (int i = 0; i < nsrc; i++) t->src[i] = src[i];
    t->graph = g;
    snprintf(t->name, sizeof t->name, "%s_%d", hv_nn_op_name(op), g->n);
    g->nodes[g->n++] = t;
    return t;
}

#define NEED(g, ...)                                                                   \
    do {                                                                               \
        const hv_nn_tensor *need_[] = {__VA_ARGS__};                                   \
        if (!(g) || (g)->err) return NULL;                                             \
        for (size_t i_ = 0; i_ < sizeof need_ / sizeof need_[0]; i_++)                 \
            if (!need_[i_]) return fail((g), HV_ERR_ARG, "NULL input tensor");         \
    } while (0)

hv_nn_tensor *hv_nn_input(hv_nn_graph *g, const char *name, int ndim, const int64_t *shape)
{
    if (!g || g->err) return NULL;
    if (!shape) return fail(g, HV_ERR_ARG, "input: NULL shape");
    hv_nn_tensor *t = node_new(g, HV_NN_OP_INPUT, ndim, shape, 0, NULL);
    if (t && name) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

void hv_nn_set_requires_grad(hv_nn_tensor *t)
{
    if (t) t->requires_grad = 1;
}

void hv_nn_set_output(hv_nn_tensor *t)
{
    if (t) t->is_output = 1;
}

hv_nn_tensor *hv_nn_param_tensor(hv_nn_graph *g, hv_nn_param *p)
{
    if (!g || g->err) return NULL;
    if (!p) return fail(g, HV_ERR_ARG, "param_tensor: NULL parameter");
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->param == p) return g->nodes[i];
    hv_nn_tensor *t = node_new(g, HV_NN_OP_PARAM, p->ndim, p->shape, 0, NULL);
    if (!t) return NULL;
    t->param = p;
    snprintf(t->name, sizeof t->name, "%s", p->name);
    return t;
}

static int same_shape(const hv_nn_tensor *a, const hv_nn_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

hv_nn_tensor *hv_nn_conv2d(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w,
                           hv_nn_tensor *b, int stride, int pad, int dilation)
{
    NEED(g, x, w);
    if (x->ndim != 4 || w->ndim != 4 || w->shape[1] != x->shape[1] || stride < 1 ||
        pad < 0 || dilation < 1)
        return fail(g, HV_ERR_ARG, "conv2d: bad shapes or parameters");
    if (b && (b->numel != w->shape[0])) return fail(g, HV_ERR_ARG, "conv2d: bad bias");
    int64_t kh = w->shape[2], kw = w->shape[3];
    int64_t ho = (x->shape[2] + 2 * pad - dilation * (kh - 1) - 1) / stride + 1;
    int64_t wo = (x->shape[3] + 2 * pad - dilation * (kw - 1) - 1) / stride + 1;
    if (ho < 1 || wo < 1) return fail(g, HV_ERR_ARG, "conv2d: empty output");
    int64_t shape[4] = {x->shape[0], w->shape[0], ho, wo};
    hv_nn_tensor *src[3] = {x, w, b};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_CONV2D, 4, shape, b ? 3 : 2, src);
    if (t) {
        t->ip[0] = stride;
        t->ip[1] = pad;
        t->ip[2] = dilation;
    }
    return t;
}

hv_nn_tensor *hv_nn_deconv2d(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w,
                             hv_nn_tensor *b, int stride, int pad, int out_pad)
{
    NEED(g, x, w);
    if (x->ndim != 4 || w->ndim != 4 || w->shape[0] != x->shape[1] || stride < 1 ||
        pad < 0 || out_pad < 0 || out_pad >= stride)
        return fail(g, HV_ERR_ARG, "deconv2d: bad shapes or parameters");
    if (b && (b->numel != w->shape[1])) return fail(g, HV_ERR_ARG, "deconv2d: bad bias");
    int64_t ho = (x->shape[2] - 1) * stride - 2 * pad + w->shape[2] + out_pad;
    int64_t wo = (x->shape[3] - 1) * stride - 2 * pad + w->shape[3] + out_pad;
    if (ho < 1 || wo < 1) return fail(g, HV_ERR_ARG, "deconv2d: empty output");
    int64_t shape[4] = {x->shape[0], w->shape[1], ho, wo};
    hv_nn_tensor *src[3] = {x, w, b};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_DECONV2D, 4, shape, b ? 3 : 2, src);
    if (t) {
        t->ip[0] = stride;
        t->ip[1] = pad;
        t->ip[2] = out_pad;
    }
    return t;
}

hv_nn_tensor *hv_nn_spectral_norm(hv_nn_graph *g, hv_nn_tensor *w, hv_nn_tensor *u,
                                  hv_nn_tensor *v)
{
    NEED(g, w, u, v);
    if (u->numel != w->shape[0] || v->numel != w->numel / w->shape[0])
        return fail(g, HV_ERR_ARG, "spectral_norm: u/v sizes do not match w");
    if (u->op != HV_NN_OP_PARAM || v->op != HV_NN_OP_PARAM || u->param->trainable ||
        v->param->trainable)
        return fail(g, HV_ERR_ARG, "spectral_norm: u and v must be non-trainable parameters");
    hv_nn_tensor *src[3] = {w, u, v};
    return node_new(g, HV_NN_OP_SPECTRAL_NORM, w->ndim, w->shape, 3, src);
}

static hv_nn_tensor *unary(hv_nn_graph *g, hv_nn_op op, hv_nn_tensor *x, float a, float b)
{
    NEED(g, x);
    hv_nn_tensor *t = node_new(g, op, x->ndim, x->shape, 1, &x);
    if (t) {
        t->fp[0] = a;
        t->fp[1] = b;
    }
    return t;
}

hv_nn_tensor *hv_nn_elu(hv_nn_graph *g, hv_nn_tensor *x, float alpha)
{
    return unary(g, HV_NN_OP_ELU, x, alpha, 0);
}
hv_nn_tensor *hv_nn_relu(hv_nn_graph *g, hv_nn_tensor *x)
{
    return unary(g, HV_NN_OP_RELU, x, 0, 0);
}
hv_nn_tensor *hv_nn_leaky_relu(hv_nn_graph *g, hv_nn_tensor *x, float slope)
{
    return unary(g, HV_NN_OP_LEAKY_RELU, x, slope, 0);
}
hv_nn_tensor *hv_nn_sigmoid(hv_nn_graph *g, hv_nn_tensor *x)
{
    return unary(g, HV_NN_OP_SIGMOID, x, 0, 0);
}
hv_nn_tensor *hv_nn_clamp(hv_nn_graph *g, hv_nn_tensor *x, float lo, float hi)
{
    if (g && !g->err && !(lo <= hi)) return fail(g, HV_ERR_ARG, "clamp: lo > hi");
    return unary(g, HV_NN_OP_CLAMP, x, lo, hi);
}
hv_nn_tensor *hv_nn_scale(hv_nn_graph *g, hv_nn_tensor *x, float a, float b)
{
    return unary(g, HV_NN_OP_SCALE, x, a, b);
}

hv_nn_tensor *hv_nn_upsample(hv_nn_graph *g, hv_nn_tensor *x, int factor)
{
    NEED(g, x);
    if (x->ndim != 4 || factor < 1) return fail(g, HV_ERR_ARG, "upsample: bad input");
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] * factor, x->shape[3] * factor};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_UPSAMPLE, 4, shape, 1, &x);
    if (t) t->ip[0] = factor;
    return t;
}

hv_nn_tensor *hv_nn_downsample(hv_nn_graph *g, hv_nn_tensor *x, int factor)
{
    NEED(g, x);
    if (x->ndim != 4 || factor < 1 || x->shape[2] % factor || x->shape[3] % factor)
        return fail(g, HV_ERR_ARG, "downsample: H, W must be multiples of the factor");
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] / factor, x->shape[3] / factor};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_DOWNSAMPLE, 4, shape, 1, &x);
    if (t) t->ip[0] = factor;
    return t;
}

hv_nn_tensor *hv_nn_concat(hv_nn_graph *g, int n, hv_nn_tensor *const *xs)
{
    if (!g || g->err) return NULL;
    if (n < 1 || n > HV_NN_MAX_SRC || !xs) return fail(g, HV_ERR_ARG, "concat: bad count");
    int64_t c = 0;
    for (int i = 0; i < n; i++) {
        if (!xs[i]) return fail(g, HV_ERR_ARG, "NULL input tensor");
        if (xs[i]->ndim != xs[0]->ndim || xs[i]->ndim < 2)
            return fail(g, HV_ERR_ARG, "concat: rank mismatch");
        for (int d = 0; d < xs[0]->ndim; d++)
            if (d != 1 && xs[i]->shape[d] != xs[0]->shape[d])
                return fail(g, HV_ERR_ARG, "concat: shape mismatch");
        c += xs[i]->shape[1];
    }
    int64_t shape[HV_NN_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[1] = c;
    return node_new(g, HV_NN_OP_CONCAT, xs[0]->ndim, shape, n, xs);
}

hv_nn_tensor *hv_nn_pad(hv_nn_graph *g, hv_nn_tensor *x, int top, int bottom, int left,
                        int right)
{
    NEED(g, x);
    if (x->ndim != 4 || top < 0 || bottom < 0 || left < 0 || right < 0)
        return fail(g, HV_ERR_ARG, "pad: bad input");
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] + top + bottom,
                        x->shape[3] + left + right};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_PAD, 4, shape, 1, &x);
    if (t) {
        t->ip[0] = top;
        t->ip[1] = bottom;
        t->ip[2] = left;
        t->ip[3] = right;
    }
    return t;
}

hv_nn_tensor *hv_nn_slice(hv_nn_graph *g, hv_nn_tensor *x, int dim, int64_t start,
                          int64_t len)
{
    NEED(g, x);
    if (dim < 0 || dim >= x->ndim || start < 0 || len < 1 || start + len > x->shape[dim] ||
        start > INT32_MAX || len > INT32_MAX)
        return fail(g, HV_ERR_ARG, "slice: out of range");
    int64_t shape[HV_NN_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = len;
    hv_nn_tensor *t = node_new(g, HV_NN_OP_SLICE, x->ndim, shape, 1, &x);
    if (t) {
        t->ip[0] = dim;
        t->ip[1] = (int32_t)start;
        t->ip[2] = (int32_t)len;
    }
    return t;
}

hv_nn_tensor *hv_nn_batch_norm(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *gamma,
                               hv_nn_tensor *beta, hv_nn_tensor *running_mean,
                               hv_nn_tensor *running_var, float momentum, float eps)
{
    NEED(g, x, gamma, beta, running_mean, running_var);
    int64_t c = x->ndim >= 2 ? x->shape[1] : 0;
    char sx[96];
    if (x->ndim != 4 && x->ndim != 5)
        return failf(g, HV_ERR_ARG, "batch_norm: x %s must be N, C, H, W or N, C, D, H, W",
                     shape_str(x, sx, sizeof sx));
    if (gamma->numel != c || beta->numel != c || running_mean->numel != c ||
        running_var->numel != c || !(eps > 0))
        return failf(g, HV_ERR_ARG, "batch_norm: x %s has %lld channels; gamma, beta, running "
                     "mean and variance must have that many (%lld, %lld, %lld, %lld), eps > 0",
                     shape_str(x, sx, sizeof sx), (long long)c, (long long)gamma->numel,
                     (long long)beta->numel, (long long)running_mean->numel,
                     (long long)running_var->numel);
    if (running_mean->op != HV_NN_OP_PARAM || running_var->op != HV_NN_OP_PARAM ||
        running_mean->param->trainable || running_var->param->trainable)
        return fail(g, HV_ERR_ARG, "batch_norm: running stats must be buffers");
    hv_nn_tensor *src[5] = {x, gamma, beta, running_mean, running_var};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_BATCH_NORM, x->ndim, x->shape, 5, src);
    if (t) {
        t->fp[0] = momentum;
        t->fp[1] = eps;
    }
    return t;
}

hv_nn_tensor *hv_nn_gap(hv_nn_graph *g, hv_nn_tensor *x)
{
    NEED(g, x);
    char sx[96];
    if (x->ndim != 4 && x->ndim != 5)
        return failf(g, HV_ERR_ARG, "gap: x %s must be N, C, H, W or N, C, D, H, W",
                     shape_str(x, sx, sizeof sx));
    int64_t shape[5] = {x->shape[0], x->shape[1], 1, 1, 1};
    return node_new(g, HV_NN_OP_GAP, x->ndim, shape, 1, &x);
}

hv_nn_tensor *hv_nn_linear(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w, hv_nn_tensor *b)
{
    NEED(g, x, w);
    if (w->ndim != 2 || x->numel / x->shape[0] != w->shape[1])
        return fail(g, HV_ERR_ARG, "linear: shapes do not match");
    if (b && b->numel != w->shape[0]) return fail(g, HV_ERR_ARG, "linear: bad bias");
    int64_t shape[2] = {x->shape[0], w->shape[0]};
    hv_nn_tensor *src[3] = {x, w, b};
    return node_new(g, HV_NN_OP_LINEAR, 2, shape, b ? 3 : 2, src);
}

hv_nn_tensor *hv_nn_softmax(hv_nn_graph *g, hv_nn_tensor *x)
{
    NEED(g, x);
    if (x->ndim < 2) return fail(g, HV_ERR_ARG, "softmax: needs rank >= 2");
    return node_new(g, HV_NN_OP_SOFTMAX, x->ndim, x->shape, 1, &x);
}

static hv_nn_tensor *binary(hv_nn_graph *g, hv_nn_op op, hv_nn_tensor *a, hv_nn_tensor *b)
{
    NEED(g, a, b);
    if (!same_shape(a, b)) return fail(g, HV_ERR_ARG, "elementwise op: shapes differ");
    hv_nn_tensor *src[2] = {a, b};
    return node_new(g, op, a->ndim, a->shape, 2, src);
}

hv_nn_tensor *hv_nn_add(hv_nn_graph *g, hv_nn_tensor *a, hv_nn_tensor *b)
{
    return binary(g, HV_NN_OP_ADD, a, b);
}
hv_nn_tensor *hv_nn_sub(hv_nn_graph *g, hv_nn_tensor *a, hv_nn_tensor *b)
{
    return binary(g, HV_NN_OP_SUB, a, b);
}
hv_nn_tensor *hv_nn_mul(hv_nn_graph *g, hv_nn_tensor *a, hv_nn_tensor *b)
{
    return binary(g, HV_NN_OP_MUL, a, b);
}

static hv_nn_tensor *reduce(hv_nn_graph *g, hv_nn_op op, int n, hv_nn_tensor *a,
                            hv_nn_tensor *b)
{
    if (n == 2) {
        NEED(g, a, b);
        if (!same_shape(a, b)) return fail(g, HV_ERR_ARG, "loss: shapes differ");
    } else {
        NEED(g, a);
    }
    int64_t one = 1;
    hv_nn_tensor *src[2] = {a, b};
    return node_new(g, op, 1, &one, n, src);
}

hv_nn_tensor *hv_nn_sum(hv_nn_graph *g, hv_nn_tensor *x) { return reduce(g, HV_NN_OP_SUM, 1, x, NULL); }
hv_nn_tensor *hv_nn_mean(hv_nn_graph *g, hv_nn_tensor *x) { return reduce(g, HV_NN_OP_MEAN, 1, x, NULL); }
hv_nn_tensor *hv_nn_bce_logits(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *t)
{
    return reduce(g, HV_NN_OP_BCE_LOGITS, 2, x, t);
}
hv_nn_tensor *hv_nn_l1(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *t)
{
    return reduce(g, HV_NN_OP_L1, 2, x, t);
}
hv_nn_tensor *hv_nn_mse(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *t)
{
    return reduce(g, HV_NN_OP_MSE, 2, x, t);
}
hv_nn_tensor *hv_nn_dice(hv_nn_graph *g, hv_nn_tensor *p, hv_nn_tensor *t)
{
    return reduce(g, HV_NN_OP_DICE, 2, p, t);
}

hv_nn_tensor *hv_nn_sobel(hv_nn_graph *g, hv_nn_tensor *x)
{
    NEED(g, x);
    if (x->ndim != 4 || x->shape[1] != 1) return fail(g, HV_ERR_ARG, "sobel: needs N,1,H,W");
    return node_new(g, HV_NN_OP_SOBEL, 4, x->shape, 1, &x);
}

hv_nn_tensor *hv_nn_reshape(hv_nn_graph *g, hv_nn_tensor *x, int ndim, const int64_t *shape)
{
    NEED(g, x);
    if (!shape || ndim < 1 || ndim > HV_NN_MAX_DIMS) return fail(g, HV_ERR_ARG, "reshape: bad rank");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i] > 0 ? shape[i] : 0;
    if (n != x->numel) return fail(g, HV_ERR_ARG, "reshape: element count differs");
    return node_new(g, HV_NN_OP_RESHAPE, ndim, shape, 1, &x);
}

hv_nn_tensor *hv_nn_maxpool(hv_nn_graph *g, hv_nn_tensor *x, int kernel, int stride, int pad)
{
    NEED(g, x);
    char sx[96];
    if (x->ndim != 4 || kernel < 1 || stride < 1 || pad < 0 || 2 * (int64_t)pad > kernel)
        return failf(g, HV_ERR_ARG, "maxpool: x %s (N, C, H, W), kernel %d, stride %d, pad %d "
                     "(need kernel, stride >= 1 and 0 <= 2 pad <= kernel)",
                     shape_str(x, sx, sizeof sx), kernel, stride, pad);
    if (x->shape[2] * x->shape[3] > ((int64_t)1 << 24))
        return failf(g, HV_ERR_ARG, "maxpool: x %s has more than 2^24 elements per plane "
                     "(the saved argmax is a float)", shape_str(x, sx, sizeof sx));
    int64_t ho = (x->shape[2] + 2 * pad - kernel) / stride + 1;
    int64_t wo = (x->shape[3] + 2 * pad - kernel) / stride + 1;
    if (ho < 1 || wo < 1) return fail(g, HV_ERR_ARG, "maxpool: empty output");
    int64_t shape[4] = {x->shape[0], x->shape[1], ho, wo};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_MAXPOOL, 4, shape, 1, &x);
    if (t) {
        t->ip[0] = kernel;
        t->ip[1] = stride;
        t->ip[2] = pad;
    }
    return t;
}

hv_nn_tensor *hv_nn_channel_mul(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *s)
{
    NEED(g, x, s);
    char sx[96], ss[96];
    if ((x->ndim != 4 && x->ndim != 5) || s->shape[0] != x->shape[0] ||
        s->numel != x->shape[0] * x->shape[1])
        return failf(g, HV_ERR_ARG, "channel_mul: x %s must be N, C, H, W or N, C, D, H, W and "
                     "s %s must be (N, C), (N, C, 1, 1) or (N, C, 1, 1, 1)",
                     shape_str(x, sx, sizeof sx), shape_str(s, ss, sizeof ss));
    hv_nn_tensor *src[2] = {x, s};
    return node_new(g, HV_NN_OP_CHANNEL_MUL, x->ndim, x->shape, 2, src);
}

hv_nn_tensor *hv_nn_conv3d(hv_nn_graph *g, hv_nn_tensor *x, hv_nn_tensor *w, hv_nn_tensor *b,
                           const int stride[3], const int pad[3], const int dilation[3])
{
    NEED(g, x, w);
    char sx[96], sw[96], sb[96];
    if (!stride || !pad || !dilation)
        return fail(g, HV_ERR_ARG, "conv3d: NULL stride, pad or dilation");
    if (x->ndim != 5 || w->ndim != 5 || w->shape[1] != x->shape[1])
        return failf(g, HV_ERR_ARG, "conv3d: x %s must be N, Cin, D, H, W and w %s Cout, Cin, "
                     "kd, kh, kw with the same Cin", shape_str(x, sx, sizeof sx),
                     shape_str(w, sw, sizeof sw));
    if (b && b->numel != w->shape[0])
        return failf(g, HV_ERR_ARG, "conv3d: bias %s must have Cout = %lld elements",
                     shape_str(b, sb, sizeof sb), (long long)w->shape[0]);
    int64_t shape[5] = {x->shape[0], w->shape[0], 0, 0, 0};
    for (int a = 0; a < 3; a++) {
        if (stride[a] < 1 || pad[a] < 0 || dilation[a] < 1)
            return failf(g, HV_ERR_ARG, "conv3d: axis %d has stride %d, pad %d, dilation %d "
                         "(need >= 1, >= 0, >= 1)", a, stride[a], pad[a], dilation[a]);
        const int64_t span = (int64_t)dilation[a] * (w->shape[2 + a] - 1) + 1;
        shape[2 + a] = (x->shape[2 + a] + 2 * (int64_t)pad[a] - span) / stride[a] + 1;
        if (x->shape[2 + a] + 2 * (int64_t)pad[a] < span)
            return failf(g, HV_ERR_ARG, "conv3d: empty output: x %s, w %s, pad %d on axis %d",
                         shape_str(x, sx, sizeof sx), shape_str(w, sw, sizeof sw), pad[a], a);
    }
    hv_nn_tensor *src[3] = {x, w, b};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_CONV3D, 5, shape, b ? 3 : 2, src);
    if (t)
        for (int a = 0; a < 3; a++) {
            t->ip[a] = stride[a];
            t->ip[3 + a] = pad[a];
            t->ip[6 + a] = dilation[a];
        }
    return t;
}

hv_nn_tensor *hv_nn_maxpool3d(hv_nn_graph *g, hv_nn_tensor *x, const int kernel[3],
                              const int stride[3], const int pad[3])
{
    NEED(g, x);
    char sx[96];
    if (!kernel || !stride || !pad)
        return fail(g, HV_ERR_ARG, "maxpool3d: NULL kernel, stride or pad");
    if (x->ndim != 5)
        return failf(g, HV_ERR_ARG, "maxpool3d: x %s must be N, C, D, H, W",
                     shape_str(x, sx, sizeof sx));
    if (x->shape[2] * x->shape[3] * x->shape[4] > ((int64_t)1 << 24))
        return failf(g, HV_ERR_ARG, "maxpool3d: x %s has more than 2^24 elements per volume "
                     "(the saved argmax is a float)", shape_str(x, sx, sizeof sx));
    int64_t shape[5] = {x->shape[0], x->shape[1], 0, 0, 0};
    for (int a = 0; a < 3; a++) {
        if (kernel[a] < 1 || stride[a] < 1 || pad[a] < 0 || 2 * (int64_t)pad[a] > kernel[a])
            return failf(g, HV_ERR_ARG, "maxpool3d: axis %d has kernel %d, stride %d, pad %d "
                         "(need kernel, stride >= 1 and 0 <= 2 pad <= kernel)", a, kernel[a],
                         stride[a], pad[a]);
        if (x->shape[2 + a] + 2 * (int64_t)pad[a] < kernel[a])
            return failf(g, HV_ERR_ARG, "maxpool3d: empty output: x %s, kernel %d, pad %d on "
                         "axis %d", shape_str(x, sx, sizeof sx), kernel[a], pad[a], a);
        shape[2 + a] = (x->shape[2 + a] + 2 * (int64_t)pad[a] - kernel[a]) / stride[a] + 1;
    }
    hv_nn_tensor *t = node_new(g, HV_NN_OP_MAXPOOL3D, 5, shape, 1, &x);
    if (t)
        for (int a = 0; a < 3; a++) {
            t->ip[a] = kernel[a];
            t->ip[3 + a] = stride[a];
            t->ip[6 + a] = pad[a];
        }
    return t;
}

/* AOT-GAN's ops (kernels in cpu/ref_ops_aot.c) */
hv_nn_tensor *hv_nn_tanh(hv_nn_graph *g, hv_nn_tensor *x)
{
    return unary(g, HV_NN_OP_TANH, x, 0, 0);
}

hv_nn_tensor *hv_nn_reflect_pad(hv_nn_graph *g, hv_nn_tensor *x, int top, int bottom, int left,
                                int right)
{
    NEED(g, x);
    char sx[96];
    if (x->ndim != 4)
        return failf(g, HV_ERR_ARG, "reflect_pad: x %s must be N, C, H, W",
                     shape_str(x, sx, sizeof sx));
    if (top < 0 || bottom < 0 || left < 0 || right < 0 || top >= x->shape[2] ||
        bottom >= x->shape[2] || left >= x->shape[3] || right >= x->shape[3])
        return failf(g, HV_ERR_ARG, "reflect_pad: pads top %d, bottom %d, left %d, right %d of x "
                     "%s: each must be >= 0 and less than its axis (H %lld for top and bottom, "
                     "W %lld for left and right)", top, bottom, left, right,
                     shape_str(x, sx, sizeof sx), (long long)x->shape[2], (long long)x->shape[3]);
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] + top + bottom,
                        x->shape[3] + left + right};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_REFLECT_PAD, 4, shape, 1, &x);
    if (t) {
        t->ip[0] = top;
        t->ip[1] = bottom;
        t->ip[2] = left;
        t->ip[3] = right;
    }
    return t;
}

hv_nn_tensor *hv_nn_upsample_bilinear(hv_nn_graph *g, hv_nn_tensor *x, int factor)
{
    NEED(g, x);
    char sx[96];
    if (x->ndim != 4)
        return failf(g, HV_ERR_ARG, "upsample_bilinear: x %s must be N, C, H, W",
                     shape_str(x, sx, sizeof sx));
    if (factor < 1 || x->shape[2] * factor > INT32_MAX || x->shape[3] * factor > INT32_MAX)
        return failf(g, HV_ERR_ARG, "upsample_bilinear: factor %d for x %s (need >= 1 and an "
                     "output side below 2^31)", factor, shape_str(x, sx, sizeof sx));
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] * factor, x->shape[3] * factor};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_UPSAMPLE_BILINEAR, 4, shape, 1, &x);
    if (t) t->ip[0] = factor;
    return t;
}

hv_nn_tensor *hv_nn_aot_norm(hv_nn_graph *g, hv_nn_tensor *x)
{
    NEED(g, x);
    char sx[96];
    if (x->ndim != 4 || x->shape[2] * x->shape[3] < 2)
        return failf(g, HV_ERR_ARG, "aot_norm: x %s must be N, C, H, W with H*W >= 2 (the "
                     "standard deviation divides by H*W - 1)", shape_str(x, sx, sizeof sx));
    return node_new(g, HV_NN_OP_AOT_NORM, 4, x->shape, 1, &x);
}

/* supervised contrastive learning (kernels in cpu/ref_ops_supcon.c) */
hv_nn_tensor *hv_nn_l2_normalize(hv_nn_graph *g, hv_nn_tensor *x, float eps)
{
    NEED(g, x);
    char sx[96];
    if (x->ndim != 2)
        return failf(g, HV_ERR_ARG, "l2_normalize: x %s must be N, K",
                     shape_str(x, sx, sizeof sx));
    if (!(eps > 0) || !isfinite(eps))
        return failf(g, HV_ERR_ARG, "l2_normalize: eps %g must be finite and > 0", (double)eps);
    hv_nn_tensor *t = node_new(g, HV_NN_OP_L2_NORMALIZE, 2, x->shape, 1, &x);
    if (t) t->fp[0] = eps;
    return t;
}

hv_nn_tensor *hv_nn_supcon(hv_nn_graph *g, hv_nn_tensor *z, hv_nn_tensor *labels,
                           float temperature)
{
    NEED(g, z, labels);
    char sz[96], sl[96];
    if (z->ndim != 2 || z->shape[0] < 2)
        return failf(g, HV_ERR_ARG, "supcon: features z %s must be N, K with N >= 2",
                     shape_str(z, sz, sizeof sz));
    if (labels->numel != z->shape[0] || labels->shape[0] != z->shape[0])
        return failf(g, HV_ERR_ARG, "supcon: labels %s must hold one label per item of z %s",
                     shape_str(labels, sl, sizeof sl), shape_str(z, sz, sizeof sz));
    if (!(temperature > 0) || !isfinite(temperature))
        return failf(g, HV_ERR_ARG, "supcon: temperature %g must be finite and > 0",
                     (double)temperature);
    int64_t one = 1;
    hv_nn_tensor *src[2] = {z, labels};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_SUPCON, 1, &one, 2, src);
    if (t) t->fp[0] = temperature;
    return t;
}

hv_nn_tensor *hv_nn_cross_entropy(hv_nn_graph *g, hv_nn_tensor *logits, hv_nn_tensor *labels,
                                  hv_nn_tensor *weights)
{
    NEED(g, logits, labels);
    char sz[96], sl[96];
    if (logits->ndim != 2)
        return failf(g, HV_ERR_ARG, "cross_entropy: logits %s must be N, C",
                     shape_str(logits, sz, sizeof sz));
    if (labels->numel != logits->shape[0] || labels->shape[0] != logits->shape[0])
        return failf(g, HV_ERR_ARG, "cross_entropy: labels %s must hold one label per item of "
                     "logits %s", shape_str(labels, sl, sizeof sl),
                     shape_str(logits, sz, sizeof sz));
    if (weights && (weights->ndim != 1 || weights->shape[0] != logits->shape[1]))
        return failf(g, HV_ERR_ARG, "cross_entropy: weights %s must be (C) for logits %s",
                     shape_str(weights, sl, sizeof sl), shape_str(logits, sz, sizeof sz));
    int64_t one = 1;
    hv_nn_tensor *src[3] = {logits, labels, weights};
    return node_new(g, HV_NN_OP_CROSS_ENTROPY, 1, &one, weights ? 3 : 2, src);
}

hv_nn_tensor *hv_nn_ctx_attn(hv_nn_graph *g, hv_nn_tensor *f, hv_nn_tensor *b,
                             hv_nn_tensor *mask, const hv_nn_ctx_attn_opts *opts)
{
    NEED(g, f, b, mask);
    hv_nn_ctx_attn_opts o = {3, 2, 3, 10.0f};
    if (opts) o = *opts;
    if (f->ndim != 4 || !same_shape(f, b) || mask->ndim != 4 || mask->shape[0] != f->shape[0] ||
        mask->shape[1] != 1 || o.rate < 1 || o.ksize < 1 || o.ksize % 2 == 0 ||
        (o.fuse_k && o.fuse_k % 2 == 0) || f->shape[2] % o.rate || f->shape[3] % o.rate)
        return fail(g, HV_ERR_ARG, "ctx_attn: bad shapes or options");
    int64_t hs = f->shape[2] / o.rate, ws = f->shape[3] / o.rate;
    if (mask->shape[2] % hs || mask->shape[3] % ws || mask->shape[2] / hs != mask->shape[3] / ws)
        return fail(g, HV_ERR_ARG, "ctx_attn: mask size must be a multiple of H/rate");
    hv_nn_tensor *src[3] = {f, b, mask};
    hv_nn_tensor *t = node_new(g, HV_NN_OP_CTX_ATTN, 4, b->shape, 3, src);
    if (t) {
        t->ip[0] = o.ksize;
        t->ip[1] = o.rate;
        t->ip[2] = o.fuse_k;
        t->ip[3] = (int32_t)(mask->shape[2] / hs);
        t->fp[0] = o.softmax_scale;
    }
    return t;
}

int hv_nn_tensor_shape(const hv_nn_tensor *t, int64_t shape[HV_NN_MAX_DIMS])
{
    if (!t) return 0;
    for (int i = 0; i < HV_NN_MAX_DIMS; i++) shape[i] = i < t->ndim ? t->shape[i] : 1;
    return t->ndim;
}

int64_t hv_nn_tensor_numel(const hv_nn_tensor *t) { return t ? t->numel : 0; }
hv_nn_op hv_nn_tensor_op(const hv_nn_tensor *t) { return t ? t->op : HV_NN_OP_COUNT; }

/* ------------------------------------------------------------- planning */

static size_t round64(size_t n) { return (n + 15) / 16 * 16; } /* floats -> 64 bytes */

typedef struct block {
    size_t off, len;
    int free_after; /* node index after which the block is released */
} block;

/* First-fit placement among live blocks (sorted by offset). */
static size_t place(block *live, int *n_live, size_t len, int free_after, size_t *top)
{
    size_t off = 0;
    int pos = 0;
    for (; pos < *n_live; pos++) {
        if (live[pos].off >= off + len) break;
        if (live[pos].off + live[pos].len > off) off = live[pos].off + live[pos].len;
    }
    memmove(live + pos + 1, live + pos, (size_t)(*n_live - pos) * sizeof *live);
    live[pos] = (block){off, len, free_after};
    (*n_live)++;
    if (off + len > *top) *top = off + len;
    return off;
}

static void release(block *live, int *n_live, int step)
{
    int k = 0;
    for (int i = 0; i < *n_live; i++)
        if (live[i].free_after >= step) live[k++] = live[i];
    *n_live = k;
}

hv_status hv_nn_graph_plan(hv_nn_graph *g, hv_nn_backend *be, unsigned flags)
{
    if (!g || !be) return hv_error_set(HV_ERR_ARG, "nn plan: NULL graph or backend");
    if (g->err) return g->err;
    if (g->planned) return hv_error_set(HV_ERR_ARG, "nn plan: graph already planned");
    hv_status st = HV_OK;
    size_t *offs = NULL, *goffs = NULL, *aoffs = NULL;
    block *live = NULL;
    const int n = g->n;
    const int training = (flags & HV_NN_PLAN_TRAIN) != 0;
    const int grads = (flags & (HV_NN_PLAN_TRAIN | HV_NN_PLAN_GRAD)) != 0;
    g->training = training;
    g->grads = grads;
    g->be = be;
    const hv_nn_backend_i *bi = be->iface;
    if (grads && be->precision != HV_NN_FP32) {
        st = hv_error_set(HV_ERR_UNSUPPORTED, "nn plan: backend %s runs %s, an inference "
                          "precision; a graph with gradients (training or Grad-CAM) needs an "
                          "fp32 backend", bi->name, hv_nn_precision_name(be->precision));
        goto done;
    }
    g->host = bi->host_memory != 0;
    if (!g->host && (!bi->buffer_alloc || !bi->buffer_free || !bi->copy_in || !bi->copy_out ||
                     !bi->clear)) {
        st = hv_error_set(HV_ERR_ARG, "nn plan: backend %s keeps device memory but lacks "
                          "buffer_alloc, buffer_free, copy_in, copy_out or clear", bi->name);
        goto done;
    }

    offs = hv__nn_calloc((size_t)n, sizeof *offs);
    goffs = hv__nn_calloc((size_t)n, sizeof *goffs);
    aoffs = hv__nn_calloc((size_t)n, sizeof *aoffs);
    live = hv__nn_calloc((size_t)n + 1, sizeof *live);
    if (!offs || !goffs || !aoffs || !live) {
        st = hv_error_set(HV_ERR_NOMEM, "nn plan: out of memory");
        goto done;
    }

    /* 1. gradients, constants, lifetimes */
    for (int i = 0; i < n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        t->last_use = i;
        if (t->op == HV_NN_OP_PARAM) {
            t->requires_grad = grads && t->param->trainable;
            t->is_const = !grads;
        } else if (t->op == HV_NN_OP_INPUT) {
            t->requires_grad = grads && t->requires_grad;
            t->is_const = 0;
        } else {
            int rg = 0, cst = !grads;
            for (int s = 0; s < t->nsrc; s++) {
                /* the attention mask carries no gradient */
                if (!(t->op == HV_NN_OP_CTX_ATTN && s == 2)) rg |= t->src[s]->requires_grad;
                cst &= t->src[s]->is_const;
            }
            t->requires_grad = grads && rg;
            t->is_const = cst;
        }
        for (int s = 0; s < t->nsrc; s++)
            if (t->src[s]->last_use < i) t->src[s]->last_use = i;
    }

    /* 1b. inference graphs: fuse an activation into the convolution before
     * it when the convolution has no other reader (oneDNN post-op; the
     * reference kernel applies it in place) */
    for (int i = 0; i < n; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++) g->nodes[i]->src[s]->n_consumers++;
    for (int i = 0; i < n && !grads; i++) {
        hv_nn_tensor *e = g->nodes[i], *c = e->nsrc ? e->src[0] : NULL;
        if (!(e->op == HV_NN_OP_ELU || e->op == HV_NN_OP_RELU || e->op == HV_NN_OP_LEAKY_RELU ||
              e->op == HV_NN_OP_SIGMOID) ||
            c->op != HV_NN_OP_CONV2D || c->is_output || c->is_const || c->n_consumers != 1 ||
            c->ip[4])
            continue;
        c->ip[4] = (int32_t)e->op;
        c->fp[2] = e->op == HV_NN_OP_RELU ? 0.0f : e->fp[0];
        e->alias_of = c;
        if (e->last_use > c->last_use) c->last_use = e->last_use;
        if (e->is_output) c->is_output = 1;
    }

    /* 2. backend choice and workspace. On a device backend a declined node
     * gets host scratch (hwork) and host staging copies (stage) instead. */
    size_t work = 0, hwork = 0, stage = 0;
    for (int i = 0; i < n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        if (t->op == HV_NN_OP_PARAM && t->param->be != (g->host ? NULL : be)) {
            if (g->host)
                st = hv_error_set(HV_ERR_ARG, "nn plan: parameter %s is bound to backend %s, the "
                                  "graph is planned on %s (hv_nn_params_bind(ps, NULL) brings it "
                                  "back)", t->name, t->param->be->iface->name, bi->name);
            else
                st = hv_error_set(HV_ERR_ARG, "nn plan: parameter %s is not bound to backend %s, "
                                  "which keeps device memory (hv_nn_params_bind)", t->name, bi->name);
            goto done;
        }
        if (t->op == HV_NN_OP_INPUT || t->op == HV_NN_OP_PARAM || t->alias_of) continue;
        t->on_backend = be->iface->node_forward &&
                        (!be->iface->supports_op || be->iface->supports_op(be, t, grads));
        size_t w = hv__nn_ref_work_size(t, grads);
        if (t->on_backend && be->iface->node_prepare) {
            size_t bw = 0;
            st = be->iface->node_prepare(be, t, grads, &bw);
            if (st != HV_OK) {
                st = hv_error_wrap(st, "nn plan: %s backend, node %s", be->iface->name, t->name);
                goto done;
            }
            if (bw > w) w = bw;
        }
        if (g->host || t->on_backend) {
            if (w > work) work = w;
        } else {
            size_t sn = hv__nn_stage_floats(t);
            if (w > hwork) hwork = w;
            if (sn > stage) stage = sn;
        }
        t->aux_n = hv__nn_ref_aux_size(t, grads);
    }

    /* 3. memory: persistent part first (inputs, outputs, constants, aux,
     * everything in training), then lifetime-planned activations */
    size_t top = 0, htop = 0;
    for (int i = 0; i < n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        if (t->aux_n && !g->host && !t->on_backend) { /* host aux of a declined node */
            aoffs[i] = htop;
            htop += round64(t->aux_n);
        } else if (t->aux_n) {
            aoffs[i] = top;
            top += round64(t->aux_n);
        }
        if (t->op == HV_NN_OP_PARAM || t->alias_of) continue;
        int persistent = grads || t->is_output || t->is_const || t->op == HV_NN_OP_INPUT;
        if (persistent) {
            offs[i] = top;
            top += round64((size_t)t->numel);
        }
        if (t->requires_grad) {
            goffs[i] = top;
            top += round64((size_t)t->numel);
        }
    }
    size_t base = top, dyn_top = 0;
    int n_live = 0;
    for (int i = 0; i < n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        release(live, &n_live, i);
        int persistent = grads || t->is_output || t->is_const || t->op == HV_NN_OP_INPUT ||
                         t->op == HV_NN_OP_PARAM || t->alias_of;
        if (persistent) continue;
        offs[i] = base + place(live, &n_live, round64((size_t)t->numel), t->last_use, &dyn_top);
    }
    g->arena_n = base + dyn_top;
    g->work_n = work;
    if (be->iface->buffer_alloc) {
        void *a = NULL, *w = NULL;
        st = be->iface->buffer_alloc(be, g->arena_n * sizeof(float), &a);
        if (st == HV_OK && work) st = be->iface->buffer_alloc(be, work * sizeof(float), &w);
        g->arena = a;
        g->work = w;
        if (st != HV_OK) {
            st = hv_error_wrap(st, "nn plan: %s buffers", be->iface->name);
            goto done;
        }
    } else {
        g->arena = hv__nn_aligned(g->arena_n * sizeof(float));
        g->work = work ? hv__nn_aligned(work * sizeof(float)) : NULL;
        if (!g->arena || (work && !g->work)) {
            st = hv_error_set(HV_ERR_NOMEM, "nn plan: cannot allocate %zu + %zu floats",
                              g->arena_n, work);
            goto done;
        }
        memset(g->arena, 0, g->arena_n * sizeof(float));
    }
    if (!g->host) {
        g->haux_n = htop;
        g->hwork_n = hwork;
        g->stage_n = stage;
        g->haux = htop ? hv__nn_aligned(htop * sizeof(float)) : NULL;
        g->hwork = hwork ? hv__nn_aligned(hwork * sizeof(float)) : NULL;
        g->stage = stage ? hv__nn_aligned(stage * sizeof(float)) : NULL;
        if ((htop && !g->haux) || (hwork && !g->hwork) || (stage && !g->stage)) {
            st = hv_error_set(HV_ERR_NOMEM, "nn plan: cannot allocate %zu floats of host staging",
                              htop + hwork + stage);
            goto done;
        }
        if (htop) memset(g->haux, 0, htop * sizeof(float));
    }
    for (int i = 0; i < n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        t->aux = !t->aux_n ? NULL
                 : (!g->host && !t->on_backend) ? g->haux + aoffs[i]
                                                : g->arena + aoffs[i];
        if (t->op == HV_NN_OP_PARAM) {
            t->data = t->param->data;
            t->grad = t->requires_grad ? t->param->grad : NULL;
        } else if (t->alias_of) {
            t->data = t->alias_of->data; /* the convolution comes first */
            t->grad = NULL;
        } else {
            t->data = g->arena + offs[i];
            t->grad = t->requires_grad ? g->arena + goffs[i] : NULL;
        }
        t->const_version = UINT64_MAX;
    }
    g->ex.training = training;
    g->ex.work = g->work;
    g->ex.work_n = g->work_n;
    g->ex.gemm = hv__nn_gemm_ref;
    g->hex = g->ex;
    g->hex.work = g->hwork;
    g->hex.work_n = g->hwork_n;
    g->planned = 1;
    hv_log_debug("nn plan: %d nodes on %s, arena %.1f MiB (%.1f MiB lifetime-planned), "
                 "workspace %.1f MiB", n, be->iface->name, g->arena_n * 4.0 / 1048576.0,
                 dyn_top * 4.0 / 1048576.0, work * 4.0 / 1048576.0);
done:
    free(offs);
    free(goffs);
    free(aoffs);
    free(live);
    if (st != HV_OK) g->err = st;
    return st;
}

double hv_nn_graph_flops(const hv_nn_graph *g)
{
    double f = 0;
    for (int i = 0; g && i < g->n; i++) {
        const hv_nn_tensor *t = g->nodes[i];
        if (t->op == HV_NN_OP_CONV2D || t->op == HV_NN_OP_CONV3D) {
            const hv_nn_tensor *w = t->src[1];
            f += 2.0 * (double)t->numel * (double)(w->numel / w->shape[0]);
        } else if (t->op == HV_NN_OP_DECONV2D) {
            const hv_nn_tensor *w = t->src[1];
            f += 2.0 * (double)t->src[0]->numel * (double)(w->numel / w->shape[0]);
        } else if (t->op == HV_NN_OP_LINEAR) {
            f += 2.0 * (double)t->numel * (double)t->src[1]->shape[1];
        } else if (t->op == HV_NN_OP_CTX_ATTN) {
            /* scores (L x P x C k^2) and pasting (C (2r)^2 x L x P) per item */
            const hv_nn_tensor *b = t->src[1];
            double c = (double)b->shape[1], r = t->ip[1], k = t->ip[0];
            double l = (double)(b->shape[2] / t->ip[1]) * (double)(b->shape[3] / t->ip[1]);
            f += 2.0 * (double)b->shape[0] * l * l * c * (k * k + 4 * r * r);
        }
    }
    return f;
}

int hv_nn_graph_bf16_nodes(const hv_nn_graph *g)
{
    int k = 0;
    for (int i = 0; g && g->planned && i < g->n; i++) k += g->nodes[i]->bf16 != 0;
    return k;
}

/* Rebase p from [old, old + n) onto nw; pointers outside (parameters, host
 * staging) stay. */
static float *rebase(float *p, const float *old, size_t n, float *nw)
{
    if (!p || !old || p < old || p >= old + n) return p;
    return nw + (p - old);
}

hv_status hv_nn_graphs_share(hv_nn_graph *const *gs, int n)
{
    if (!gs || n < 1) return hv_error_set(HV_ERR_ARG, "nn share: no graph");
    for (int k = 0; k < n; k++) {
        const hv_nn_graph *g = gs[k];
        if (!g || !g->planned || g->err)
            return hv_error_set(HV_ERR_ARG, "nn share: graph %d is NULL, unplanned or failed", k);
        if (k && g->share) return hv_error_set(HV_ERR_ARG, "nn share: graph %d already shares", k);
        if (!g->grads) /* its folded constants live in the arena between runs */
            return hv_error_set(HV_ERR_ARG, "nn share: graph %d is an inference graph", k);
        for (int j = 0; j < k; j++)
            if (gs[j] == g) return hv_error_set(HV_ERR_ARG, "nn share: graph %d given twice", k);
    }
    for (int k = 0; k < n; k++)
        if (!gs[k]->host || gs[k]->be->iface->buffer_alloc)
            return HV_OK; /* device (or backend-allocated) memory: each keeps its own */
    for (int k = 1; k < n; k++)
        if (gs[k]->arena_n > gs[0]->arena_n || gs[k]->work_n > gs[0]->work_n)
            return hv_error_set(HV_ERR_ARG, "nn share: graph %d needs %zu + %zu floats, more "
                                "than graph 0's %zu + %zu (name the largest first)", k,
                                gs[k]->arena_n, gs[k]->work_n, gs[0]->arena_n, gs[0]->work_n);
    hv_nn_graph *g0 = gs[0];
    if (!g0->share) { /* g0's memory becomes the group's */
        graph_share *sh = calloc(1, sizeof *sh);
        if (!sh) return hv_error_set(HV_ERR_NOMEM, "nn share: out of memory");
        sh->arena = g0->arena;
        sh->work = g0->work;
        sh->refs = 1;
        g0->share = sh;
    }
    graph_share *sh = g0->share;
    for (int k = 1; k < n; k++) {
        hv_nn_graph *g = gs[k];
        for (int i = 0; i < g->n; i++) {
            hv_nn_tensor *t = g->nodes[i];
            t->data = rebase(t->data, g->arena, g->arena_n, sh->arena);
            t->grad = rebase(t->grad, g->arena, g->arena_n, sh->arena);
            t->aux = rebase(t->aux, g->arena, g->arena_n, sh->arena);
        }
        free(g->arena);
        free(g->work);
        g->arena = sh->arena;
        g->work = g->work_n ? sh->work : NULL;
        g->ex.work = g->work;
        g->share = sh;
        sh->refs++;
    }
    hv_log_debug("nn share: %d graphs in one arena of %.1f MiB and workspace of %.1f MiB",
                 sh->refs, g0->arena_n * 4.0 / 1048576.0, g0->work_n * 4.0 / 1048576.0);
    return HV_OK;
}

size_t hv_nn_graph_bytes(const hv_nn_graph *g)
{
    return g ? (g->arena_n + g->work_n + g->haux_n + g->hwork_n + g->stage_n) * sizeof(float) : 0;
}

/* ------------------------------------------------------------- running */

static hv_status sync_backend(const hv_nn_backend *be)
{
    return be ? hv__nn_sync(be) : HV_OK;
}

static hv_status run_forward(hv_nn_graph *g, hv_nn_tensor *t)
{
    hv_status st;
    double t0 = g->profiling ? hv_time_now() : 0;
    if (t->on_backend)
        st = g->be->iface->node_forward(g->be, t, &g->ex);
    else if (!g->host)
        st = hv__nn_run_staged(g->be, t, 0, g->stage, &g->hex);
    else
        st = hv__nn_ref_forward(t, &g->ex);
    if (g->profiling) {
        g->prof_s[t->op] += hv_time_now() - t0;
        g->prof_n[t->op]++;
    }
    if (st != HV_OK) return hv_error_wrap(st, "forward of %s (%s)", t->name, hv_nn_op_name(t->op));
    return HV_OK;
}

/* A parameter set bound elsewhere (hv_nn_params_bind) after planning
 * leaves the graph with pointers to freed storage: refuse to run. */
static hv_status params_moved(const hv_nn_graph *g, const char *who)
{
    for (int i = 0; i < g->n; i++) {
        const hv_nn_tensor *t = g->nodes[i];
        if (t->op == HV_NN_OP_PARAM && t->data != t->param->data)
            return hv_error_set(HV_ERR_ARG, "%s: parameter %s was moved (hv_nn_params_bind) after "
                                "the graph was planned; plan a new graph", who, t->name);
    }
    return HV_OK;
}

hv_status hv_nn_graph_forward(hv_nn_graph *g)
{
    if (!g) return hv_error_set(HV_ERR_ARG, "nn forward: NULL graph");
    if (!g->planned) return hv_error_set(HV_ERR_ARG, "nn forward: graph not planned");
    hv_status mst = params_moved(g, "nn forward");
    if (mst != HV_OK) return mst;
    /* Folded constants: recompute a constant node when the versions of the
     * parameters below it changed (the sum of versions only grows). */
    for (int i = 0; i < g->n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        if (t->op == HV_NN_OP_PARAM) {
            t->const_version = t->param->version;
            continue;
        }
        if (t->op == HV_NN_OP_INPUT || t->alias_of) continue;
        if (t->is_const) {
            uint64_t v = 0;
            for (int s = 0; s < t->nsrc; s++) v += t->src[s]->const_version;
            if (v == t->const_version) continue;
            t->const_version = v;
        }
        hv_status st = run_forward(g, t);
        if (st != HV_OK) return st;
    }
    return HV_OK;
}

static hv_status backward_nodes(hv_nn_graph *g, hv_nn_tensor *loss, int first);

hv_status hv_nn_graph_backward(hv_nn_graph *g, hv_nn_tensor *loss)
{
    return hv_nn_graph_backward_to(g, loss, NULL);
}

hv_status hv_nn_graph_backward_to(hv_nn_graph *g, hv_nn_tensor *loss, hv_nn_tensor *stop)
{
    if (!g || !loss || loss->graph != g || (stop && stop->graph != g))
        return hv_error_set(HV_ERR_ARG, "nn backward: bad arguments");
    if (stop && stop->id >= loss->id)
        return hv_error_set(HV_ERR_ARG, "nn backward: the stop tensor %s is not recorded before the loss",
                            stop->name);
    if (!g->planned || !g->grads)
        return hv_error_set(HV_ERR_ARG, "nn backward: graph not planned with gradients");
    if (loss->numel != 1) return hv_error_set(HV_ERR_ARG, "nn backward: loss must be a scalar");
    if (!loss->requires_grad) return hv_error_set(HV_ERR_ARG, "nn backward: loss depends on no parameter");
    hv_status mst = params_moved(g, "nn backward");
    if (mst != HV_OK) return mst;
    const hv_nn_backend_i *bi = g->be->iface;
    for (int i = 0; i < g->n; i++) {
        hv_nn_tensor *t = g->nodes[i];
        if (!t->grad || t->op == HV_NN_OP_PARAM) continue;
        size_t bytes = (size_t)t->numel * sizeof(float);
        if (bi->clear) {
            hv_status st = bi->clear(g->be, t->grad, bytes);
            if (st != HV_OK) return hv_error_wrap(st, "nn backward: clearing gradients");
        } else {
            memset(t->grad, 0, bytes);
        }
    }
    /* Frozen: the parameter leaves lose their gradient pointers for this
     * pass (every kernel skips a NULL gradient), and get them back below. */
    if (g->frozen)
        for (int i = 0; i < g->n; i++)
            if (g->nodes[i]->op == HV_NN_OP_PARAM) g->nodes[i]->grad = NULL;
    /* nodes are in recording order, so every consumer of `stop` comes after
     * it: running the kernels of the later nodes only completes its gradient */
    hv_status st = backward_nodes(g, loss, stop ? stop->id + 1 : 0);
    if (g->frozen)
        for (int i = 0; i < g->n; i++) {
            hv_nn_tensor *t = g->nodes[i];
            if (t->op == HV_NN_OP_PARAM) t->grad = t->requires_grad ? t->param->grad : NULL;
        }
    return st;
}

static hv_status backward_nodes(hv_nn_graph *g, hv_nn_tensor *loss, int first)
{
    const hv_nn_backend_i *bi = g->be->iface;
    const float one = 1.0f;
    if (bi->copy_in) {
        hv_status st = bi->copy_in(g->be, loss->grad, &one, sizeof one);
        if (st != HV_OK) return hv_error_wrap(st, "nn backward: seeding the loss gradient");
    } else {
        loss->grad[0] = one;
    }
    for (int i = loss->id; i >= first; i--) {
        hv_nn_tensor *t = g->nodes[i];
        if (!t->requires_grad || t->op == HV_NN_OP_INPUT || t->op == HV_NN_OP_PARAM) continue;
        double t0 = g->profiling ? hv_time_now() : 0;
        hv_status st = t->on_backend ? g->be->iface->node_backward(g->be, t, &g->ex)
                       : !g->host    ? hv__nn_run_staged(g->be, t, 1, g->stage, &g->hex)
                                     : hv__nn_ref_backward(t, &g->ex);
        if (g->profiling) {
            g->prof_bs[t->op] += hv_time_now() - t0;
            g->prof_bn[t->op]++;
        }
        if (st != HV_OK)
            return hv_error_wrap(st, "backward of %s (%s)", t->name, hv_nn_op_name(t->op));
    }
    return HV_OK;
}

hv_status hv_nn_tensor_set(hv_nn_tensor *t, const float *src, size_t n)
{
    if (!t || !src || !t->data || n != (size_t)t->numel)
        return hv_error_set(HV_ERR_ARG, "nn tensor_set: bad arguments or graph not planned");
    if (t->op == HV_NN_OP_PARAM) return hv_nn_param_set(t->param, src, n);
    if (t->op != HV_NN_OP_INPUT)
        return hv_error_set(HV_ERR_ARG, "nn tensor_set: %s is not an input", t->name);
    const hv_nn_backend *be = t->graph->be;
    if (be && be->iface->copy_in)
        return be->iface->copy_in((hv_nn_backend *)be, t->data, src, n * sizeof(float));
    memcpy(t->data, src, n * sizeof(float));
    return HV_OK;
}

static hv_status copy_out(const hv_nn_tensor *t, float *dst, const float *src, size_t n)
{
    const hv_nn_backend *be = t->graph->be;
    /* parameters are where the graph's tensors are (checked at plan time) */
    if (be && be->iface->copy_out)
        return be->iface->copy_out((hv_nn_backend *)be, dst, src, n * sizeof(float));
    memcpy(dst, src, n * sizeof(float));
    return HV_OK;
}

/* A tensor the backend keeps in the blocked nChw{B}c layout (t->blk, host
 * memory) is handed out as plain NCHW. */
static hv_status copy_out_plain(const hv_nn_tensor *t, float *dst, const float *src, size_t n)
{
    if (!t->blk) return copy_out(t, dst, src, n);
    const int64_t B = t->blk, nb = t->shape[0], c = t->shape[1], hw = t->shape[2] * t->shape[3];
    if (t->blk_bf16 && src == t->data) { /* bf16 values: the high half of an fp32 */
        const uint16_t *h = (const uint16_t *)src;
        for (int64_t i = 0; i < nb; i++)
            for (int64_t k = 0; k < c; k++) {
                const uint16_t *p = h + ((i * (c / B) + k / B) * hw) * B + k % B;
                float *q = dst + (i * c + k) * hw;
                for (int64_t j = 0; j < hw; j++) {
                    uint32_t u = (uint32_t)p[j * B] << 16;
                    memcpy(&q[j], &u, sizeof u);
                }
            }
        return HV_OK;
    }
    for (int64_t i = 0; i < nb; i++)
        for (int64_t k = 0; k < c; k++) {
            const float *p = src + ((i * (c / B) + k / B) * hw) * B + k % B;
            float *q = dst + (i * c + k) * hw;
            for (int64_t j = 0; j < hw; j++) q[j] = p[j * B];
        }
    return HV_OK;
}

hv_status hv_nn_tensor_get(const hv_nn_tensor *t, float *dst, size_t n)
{
    if (!t || !dst || !t->data || n != (size_t)t->numel)
        return hv_error_set(HV_ERR_ARG, "nn tensor_get: bad arguments or graph not planned");
    hv_status st = sync_backend(t->graph->be);
    return st != HV_OK ? st : copy_out_plain(t, dst, t->data, n);
}

hv_status hv_nn_tensor_get_grad(const hv_nn_tensor *t, float *dst, size_t n)
{
    if (!t || !dst || !t->grad || n != (size_t)t->numel)
        return hv_error_set(HV_ERR_ARG, "nn tensor_get_grad: tensor has no gradient");
    hv_status st = sync_backend(t->graph->be);
    return st != HV_OK ? st : copy_out_plain(t, dst, t->grad, n);
}

void hv_nn_graph_set_reducer(hv_nn_graph *g, hv_nn_reduce_fn fn, void *ctx)
{
    if (!g) return;
    g->ex.reduce = fn;
    g->ex.reduce_ctx = fn ? ctx : NULL;
    /* the host staging copy of ex (a planned graph on a device backend) too:
     * a reducer set after planning must reach the nodes staged on the host */
    g->hex.reduce = g->ex.reduce;
    g->hex.reduce_ctx = g->ex.reduce_ctx;
}

void hv_nn_graph_set_frozen(hv_nn_graph *g, int on)
{
    if (g) g->frozen = on != 0;
}

void hv_nn_graph_set_profiling(hv_nn_graph *g, int on)
{
    if (g) g->profiling = on != 0;
}

void hv_nn_graph_profile_report(const hv_nn_graph *g, char *buf, size_t len)
{
    if (!buf || !len) return;
    buf[0] = 0;
    if (!g) return;
    int done[HV_NN_OP_COUNT] = {0};
    size_t used = 0;
    for (;;) {
        int best = -1;
        for (int i = 0; i < HV_NN_OP_COUNT; i++)
            if (!done[i] && (g->prof_n[i] || g->prof_bn[i]) &&
                (best < 0 || g->prof_s[i] + g->prof_bs[i] > g->prof_s[best] + g->prof_bs[best]))
                best = i;
        if (best < 0 || used + 1 >= len) break;
        done[best] = 1;
        int w = snprintf(buf + used, len - used, "%-14s %6lld %9.4f", hv_nn_op_name((hv_nn_op)best),
                         (long long)g->prof_n[best], g->prof_s[best]);
        if (w > 0 && g->prof_bn[best] && (size_t)w + used < len)
            w += snprintf(buf + used + w, len - used - (size_t)w, "  backward %6lld %9.4f",
                          (long long)g->prof_bn[best], g->prof_bs[best]);
        if (w < 0 || (size_t)w + 1 >= len - used) break;
        used += (size_t)w;
        buf[used++] = '\n';
        buf[used] = 0;
    }
}

/* --------------------------------------------------------------- backend */

void hv_nn_backend_free(hv_nn_backend *be)
{
    if (be && be->iface->destroy) be->iface->destroy(be);
}

const char *hv_nn_backend_name(const hv_nn_backend *be) { return be ? be->iface->name : "?"; }
