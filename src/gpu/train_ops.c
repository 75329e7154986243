/*
 * train_ops.c: the CUDA backend's training and classifier ops, the part of
 * the GAN losses and the SE-ResNet classifier that used to be staged
 * through the host every step: the whole-tensor reductions and losses (sum,
 * mean, BCE with logits, L1, MSE, soft Dice) and softmax over dimension 1
 * (kernels in loss_kernels.cu).
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
    return is_reduction(op) || op == HV_NN_OP_DICE || op == HV_NN_OP_SOFTMAX;
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
    default: return 0;
    }
}

/* scratch floats of a node (forward and, with grads, backward) */
static size_t work_floats(const hv_nn_tensor *n)
{
    const size_t dbl = sizeof(double) / sizeof(float);
    if (is_reduction(n->op)) return HV_CUDA_RED_WS * dbl;
    if (n->op == HV_NN_OP_DICE) return 3 * (size_t)n->src[0]->shape[0] * dbl;
    return 0;
}

hv_status hv__cuda_train_prepare(hv_cuda_be *cb, hv_nn_tensor *n, int grads, size_t *work_n)
{
    (void)cb;
    (void)grads;
    *work_n = work_floats(n);
    return HV_OK;
}

void hv__cuda_train_release(hv_nn_tensor *n) { (void)n; }

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
    return hv_error_set(HV_ERR_INTERNAL, "cuda backend: backward of op %s it declined",
                        hv_nn_op_name(n->op));
}
