/*
 * train_ops.c: the CUDA backend's training and classifier ops, the part of
 * the GAN losses and the SE-ResNet classifier that used to be staged
 * through the host every step: the whole-tensor reductions and losses (sum,
 * mean, BCE with logits, L1, MSE, soft Dice) and softmax over dimension 1
 * (kernels in loss_kernels.cu); batch norm, max pooling, Sobel and spectral
 * norm (norm_kernels.cu).
 *
 * Batch norm in a training graph with a reducer (synchronised batch norm,
 * hv_nn_graph_set_reducer): the reducer sums host memory, so its statistics
 * (c + 1, c, then 2c floats) go to a host buffer made in prepare, through
 * the reducer and back, with a stream synchronisation each time, exactly
 * where the reference kernel calls it. Batch norm and spectral norm bump the
 * versions of the buffers they update (running statistics, u and v) as the
 * reference does.
 *
 * backend_cuda.c hands over every node of an op hv__cuda_train_owns()
 * claims (supports, prepare, release, forward, backward); this file checks
 * the shapes it takes, sizes the scratch each node needs in prepare (the
 * graph's shared workspace, ex->work: nothing is allocated per batch) and
 * launches the kernels on the backend's stream. The arithmetic is the
 * reference kernels' (src/nn/cpu/ref_ops.c); sums are in double in a fixed
 * order, so every result reproduces from run to run.
 */
#include <limits.h>
#include <stdlib.h>

#include "train_kernels.h"
#include "train_ops.h"

static int is_reduction(hv_nn_op op)
{
    return op == HV_NN_OP_SUM || op == HV_NN_OP_MEAN || op == HV_NN_OP_BCE_LOGITS ||
           op == HV_NN_OP_L1 || op == HV_NN_OP_MSE;
}

int hv__cuda_train_owns(hv_nn_op op)
{
    return is_reduction(op) || op == HV_NN_OP_DICE || op == HV_NN_OP_SOFTMAX ||
           op == HV_NN_OP_BATCH_NORM || op == HV_NN_OP_MAXPOOL || op == HV_NN_OP_SOBEL ||
           op == HV_NN_OP_SPECTRAL_NORM;
}

static int same_shape(const hv_nn_tensor *a, const hv_nn_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

int hv__cuda_train_supported(const hv_nn_tensor *n)
{
    const hv_nn_tensor *x = n->nsrc > 0 ? n->src[0] : NULL;
    if (!x || x->numel < 1) return 0;
    switch (n->op) {
    case HV_NN_OP_SUM:
    case HV_NN_OP_MEAN: return n->nsrc == 1 && n->numel == 1;
    case HV_NN_OP_BCE_LOGITS:
    case HV_NN_OP_L1:
    case HV_NN_OP_MSE:
        return n->nsrc == 2 && n->numel == 1 && n->src[1]->numel == x->numel;
    case HV_NN_OP_DICE:
        /* one block per item: the grid's x dimension holds INT_MAX */
        return n->nsrc == 2 && n->numel == 1 && n->src[1]->numel == x->numel && x->ndim >= 1 &&
               x->shape[0] >= 1 && x->shape[0] <= INT_MAX && x->numel % x->shape[0] == 0;
    case HV_NN_OP_SOFTMAX:
        return n->nsrc == 1 && n->ndim >= 2 && x->numel == n->numel && n->shape[0] >= 1 &&
               n->shape[1] >= 1;
    case HV_NN_OP_BATCH_NORM:
        /* plain NCHW only (the blocked layout is oneDNN's); at most 64
         * blocks per channel in the grid's x dimension */
        if (n->nsrc != 5 || x->ndim != 4 || !same_shape(x, n) || x->blk || n->blk) return 0;
        for (int s = 1; s < 5; s++)
            if (n->src[s]->numel != x->shape[1]) return 0;
        return x->shape[1] <= INT_MAX / 64;
    case HV_NN_OP_MAXPOOL:
        /* the saved argmax is a float: exact up to 2^24 elements a plane */
        return n->nsrc == 1 && x->ndim == 4 && n->ndim == 4 && n->ip[0] >= 1 && n->ip[1] >= 1 &&
               n->ip[2] >= 0 && x->shape[2] * x->shape[3] <= ((int64_t)1 << 24) &&
               n->shape[0] == x->shape[0] && n->shape[1] == x->shape[1];
    case HV_NN_OP_SOBEL:
        return n->nsrc == 1 && x->ndim == 4 && x->shape[1] == 1 && same_shape(x, n);
    case HV_NN_OP_SPECTRAL_NORM:
        return n->nsrc == 3 && x->ndim >= 1 && x->shape[0] >= 1 && n->numel == x->numel &&
               n->src[1]->numel == x->shape[0] && n->src[2]->numel == x->numel / x->shape[0];
    default: return 0;
    }
}

/* batch norm's scratch: red (2c + 1 floats, rounded up to whole doubles),
 * then the partial sums (2 c split doubles) */
static size_t bn_red_floats(const hv_nn_tensor *n) { return 2 * (size_t)n->shape[1] + 2; }

static size_t bn_work_floats(const hv_nn_tensor *n)
{
    const int64_t sp = hv__cuda_bn_split(n->shape[0], n->shape[1], n->shape[2] * n->shape[3]);
    const size_t dbl = sizeof(double) / sizeof(float);
    return bn_red_floats(n) + 2 * (size_t)n->shape[1] * (size_t)sp * dbl;
}

/* scratch floats of a node (forward and, with grads, backward) */
static size_t work_floats(const hv_nn_tensor *n)
{
    const size_t dbl = sizeof(double) / sizeof(float);
    if (is_reduction(n->op)) return HV_CUDA_RED_WS * dbl;
    if (n->op == HV_NN_OP_DICE) return 3 * (size_t)n->src[0]->shape[0] * dbl;
    if (n->op == HV_NN_OP_BATCH_NORM) return bn_work_floats(n);
    if (n->op == HV_NN_OP_SPECTRAL_NORM) return HV_CUDA_RED_WS * dbl; /* >= 1 (1/sigma) */
    return 0;
}

hv_status hv__cuda_train_prepare(hv_cuda_be *cb, hv_nn_tensor *n, int grads, size_t *work_n)
{
    (void)cb;
    (void)grads;
    *work_n = work_floats(n);
    if (n->op == HV_NN_OP_BATCH_NORM) { /* the reducer's host copy of red */
        n->be_state = malloc((2 * (size_t)n->shape[1] + 1) * sizeof(float));
        if (!n->be_state) return hv_error_set(HV_ERR_NOMEM, "cuda backend: out of memory");
    }
    return HV_OK;
}

void hv__cuda_train_release(hv_nn_tensor *n)
{
    if (n->op == HV_NN_OP_BATCH_NORM) {
        free(n->be_state);
        n->be_state = NULL;
    }
}

/* the scratch of node n, checked against what prepare asked for */
static hv_status scratch(const hv_nn_tensor *n, const hv_nn_exec *ex, void **ws)
{
    const size_t need = work_floats(n);
    *ws = ex->work;
    if (need > ex->work_n || (need && !ex->work))
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: %s (%s) needs %zu floats of "
                            "workspace, the graph gave %zu", n->name, hv_nn_op_name(n->op), need,
                            ex->work_n);
    return HV_OK;
}

/* (outer, c, inner) of a softmax over dimension 1 */
static void softmax_dims(const hv_nn_tensor *n, int64_t *outer, int64_t *c, int64_t *inner)
{
    *outer = n->shape[0];
    *c = n->shape[1];
    *inner = n->numel / (*outer * *c);
}

/* Sum cnt floats of red (device) over the reducer's participants through
 * the node's host buffer; what names the pass in an error. */
static hv_status bn_reduce(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex, float *red,
                           size_t cnt, const char *what)
{
    float *host = n->be_state;
    if (!host)
        return hv_error_set(HV_ERR_INTERNAL, "cuda backend: batch norm %s not prepared", n->name);
    hv_status st = HV_CU(cudaMemcpyAsync(host, red, cnt * sizeof(float), cudaMemcpyDeviceToHost,
                                         cb->stream));
    if (st == HV_OK) st = HV_CU(cudaStreamSynchronize(cb->stream));
    if (st != HV_OK) return st;
    if (ex->reduce(ex->reduce_ctx, host, cnt) != 0)
        return hv_error_set(HV_ERR_IO, "batch norm: the reducer failed (%s)", what);
    /* pageable source: returns once host has been read */
    return HV_CU(cudaMemcpyAsync(red, host, cnt * sizeof(float), cudaMemcpyHostToDevice,
                                 cb->stream));
}

static hv_status bn_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex, float *red)
{
    double *part = (double *)(red + bn_red_floats(n));
    const hv_nn_tensor *x = n->src[0];
    const float *gam = n->src[1]->data, *bet = n->src[2]->data;
    float *rm = n->src[3]->data, *rv = n->src[4]->data;
    const int64_t nb = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    const double mom = n->fp[0], eps = n->fp[1];
    float *mean = n->aux, *istd = n->aux + c, *count = n->aux + 2 * c;
    const int sync = ex->training && ex->reduce;
    hv_status st = HV_OK;
    if (x->blk || n->blk)
        return hv_error_set(HV_ERR_INTERNAL, "batch norm: unsupported layout (block %d)", x->blk);
    if (ex->training) {
        if ((st = HV_CU(hv__cuda_bn_sums(cb->stream, x->data, nb, c, hw, red, part))) != HV_OK)
            return st;
        if (sync && (st = bn_reduce(cb, n, ex, red, (size_t)c + 1, "sums")) != HV_OK) return st;
        if ((st = HV_CU(hv__cuda_bn_squares(cb->stream, x->data, nb, c, hw, red, mean, count,
                                             part))) != HV_OK)
            return st;
        if (sync && (st = bn_reduce(cb, n, ex, red, (size_t)c, "squares")) != HV_OK) return st;
        if ((st = HV_CU(hv__cuda_bn_finish(cb->stream, c, red, mean, count, mom, eps, rm, rv,
                                           istd))) != HV_OK)
            return st;
        n->src[3]->param->version++;
        n->src[4]->param->version++;
    } else if ((st = HV_CU(hv__cuda_bn_eval(cb->stream, c, rm, rv, eps, (double)nb * hw, mean,
                                              istd, count))) != HV_OK) {
        return st;
    }
    return HV_CU(hv__cuda_bn_apply(cb->stream, x->data, n->data, gam, bet, mean, istd, n->numel,
                                   c, hw));
}

static hv_status bn_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex, float *red)
{
    double *part = (double *)(red + bn_red_floats(n));
    hv_nn_tensor *x = n->src[0], *gs = n->src[1], *bs = n->src[2];
    const int64_t nb = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    const float *mean = n->aux, *istd = n->aux + c, *count = n->aux + 2 * c;
    hv_status st = HV_OK;
    if (x->blk || n->blk)
        return hv_error_set(HV_ERR_INTERNAL, "batch norm: unsupported layout (block %d)", x->blk);
    if (!x->grad && !gs->grad && !bs->grad) return HV_OK;
    if ((st = HV_CU(hv__cuda_bn_grad_sums(cb->stream, x->data, n->grad, mean, istd, nb, c, hw,
                                          gs->grad, bs->grad, red, part))) != HV_OK)
        return st;
    if (!x->grad) return HV_OK;
    if (ex->training && ex->reduce &&
        (st = bn_reduce(cb, n, ex, red, 2 * (size_t)c, "gradient sums")) != HV_OK)
        return st;
    return HV_CU(hv__cuda_bn_grad_x(cb->stream, x->data, n->grad, x->grad, gs->data, mean, istd,
                                    red, count, n->numel, c, hw, ex->training));
}

hv_status hv__cuda_train_forward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    const hv_nn_tensor *x = n->src[0], *t = n->nsrc > 1 ? n->src[1] : NULL;
    void *ws = NULL;
    hv_status st = scratch(n, ex, &ws);
    if (st != HV_OK) return st;
    if (is_reduction(n->op))
        return HV_CU(hv__cuda_reduce_fwd(cb->stream, (int)n->op, x->data, t ? t->data : NULL,
                                         x->numel, n->data, ws));
    if (n->op == HV_NN_OP_DICE)
        return HV_CU(hv__cuda_dice_fwd(cb->stream, x->data, t->data, x->shape[0],
                                       x->numel / x->shape[0], n->data, ws));
    if (n->op == HV_NN_OP_SOFTMAX) {
        int64_t outer, c, inner;
        softmax_dims(n, &outer, &c, &inner);
        return HV_CU(hv__cuda_softmax_fwd(cb->stream, x->data, n->data, outer, c, inner));
    }
    if (n->op == HV_NN_OP_BATCH_NORM) return bn_forward(cb, n, ex, ws);
    if (n->op == HV_NN_OP_MAXPOOL)
        return HV_CU(hv__cuda_maxpool_fwd(cb->stream, x->data, n->data, n->aux,
                                          n->shape[0] * n->shape[1], x->shape[2], x->shape[3],
                                          n->shape[2], n->shape[3], n->ip[0], n->ip[1], n->ip[2]));
    if (n->op == HV_NN_OP_SOBEL)
        return HV_CU(hv__cuda_sobel_fwd(cb->stream, x->data, n->data, x->shape[0], x->shape[2],
                                        x->shape[3]));
    if (n->op == HV_NN_OP_SPECTRAL_NORM) {
        const int64_t h = x->shape[0];
        st = HV_CU(hv__cuda_sn_fwd(cb->stream, x->data, n->src[1]->data, n->src[2]->data, h,
                                   x->numel / h, ex->training, n->aux, n->data, ws));
        if (st == HV_OK && ex->training) {
            n->src[1]->param->version++;
            n->src[2]->param->version++;
        }
        return st;
    }
    return hv_error_set(HV_ERR_INTERNAL, "cuda backend: forward of op %s it declined",
                        hv_nn_op_name(n->op));
}

hv_status hv__cuda_train_backward(hv_cuda_be *cb, hv_nn_tensor *n, const hv_nn_exec *ex)
{
    hv_nn_tensor *x = n->src[0], *t = n->nsrc > 1 ? n->src[1] : NULL;
    float *dx = x->grad, *dt = t ? t->grad : NULL;
    void *ws = NULL;
    hv_status st = scratch(n, ex, &ws);
    if (st != HV_OK) return st;
    if (n->op == HV_NN_OP_BATCH_NORM) return bn_backward(cb, n, ex, ws); /* gamma, beta too */
    if (!dx && !dt) return HV_OK;
    if (is_reduction(n->op))
        return HV_CU(hv__cuda_reduce_bwd(cb->stream, (int)n->op, x->data, t ? t->data : NULL,
                                         n->grad, dx, dt, x->numel));
    if (n->op == HV_NN_OP_DICE)
        return HV_CU(hv__cuda_dice_bwd(cb->stream, x->data, t->data, n->grad, dx, dt,
                                       x->shape[0], x->numel / x->shape[0], ws));
    if (n->op == HV_NN_OP_SOFTMAX) {
        int64_t outer, c, inner;
        if (!dx) return HV_OK;
        softmax_dims(n, &outer, &c, &inner);
        return HV_CU(hv__cuda_softmax_bwd(cb->stream, n->data, n->grad, dx, outer, c, inner));
    }
    if (n->op == HV_NN_OP_MAXPOOL && dx)
        return HV_CU(hv__cuda_maxpool_bwd(cb->stream, n->grad, n->aux, dx,
                                          n->shape[0] * n->shape[1], x->shape[2], x->shape[3],
                                          n->shape[2], n->shape[3], n->ip[0], n->ip[1], n->ip[2]));
    if (n->op == HV_NN_OP_SOBEL && dx)
        return HV_CU(hv__cuda_sobel_bwd(cb->stream, x->data, n->grad, dx, x->shape[0],
                                        x->shape[2], x->shape[3]));
    if (n->op == HV_NN_OP_SPECTRAL_NORM && dx) {
        const int64_t h = x->shape[0];
        return HV_CU(hv__cuda_sn_bwd(cb->stream, x->data, n->src[1]->data, n->src[2]->data,
                                     n->grad, n->aux, dx, h, x->numel / h, ws));
    }
    if (n->op == HV_NN_OP_MAXPOOL || n->op == HV_NN_OP_SOBEL || n->op == HV_NN_OP_SPECTRAL_NORM)
        return HV_OK; /* no gradient into x */
    return hv_error_set(HV_ERR_INTERNAL, "cuda backend: backward of op %s it declined",
                        hv_nn_op_name(n->op));
}
