/*
 * placement.c: running the nodes a device backend declines.
 *
 * A backend whose buffers are device memory (hv_nn_backend_i.host_memory 0)
 * may decline ops (supports_op). Such a node runs on the reference kernels
 * on the host, over host staging copies of its tensors: the graph sizes one
 * staging area at plan time (hv__nn_stage_floats, the largest declined node)
 * and runs the node through hv__nn_run_staged, which copies in and out
 * through the backend's copy_in/copy_out. Chosen over refusing a mixed
 * placement so that a device backend can be brought up op by op, and so
 * that rarely used ops (contextual attention, Sobel) need no device kernel
 * to run at all; the price is the copies of every declined node on every
 * pass, so a device backend should run its hot path itself.
 */
#include "nn_backend.h"

static size_t round64(size_t n) { return (n + 15) / 16 * 16; } /* as the arena */

hv_status hv__nn_sync(const hv_nn_backend *be)
{
    if (!be->iface->synchronize) return HV_OK;
    hv_status st = be->iface->synchronize((hv_nn_backend *)be);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "nn: synchronising backend %s", be->iface->name);
}

/* Is src[s] of t the first occurrence of that tensor among t's inputs? */
static int first_src(const hv_nn_tensor *t, int s)
{
    for (int k = 0; k < s; k++)
        if (t->src[k] == t->src[s]) return 0;
    return 1;
}

size_t hv__nn_stage_floats(const hv_nn_tensor *t)
{
    size_t n = round64((size_t)t->numel) * (t->requires_grad ? 2 : 1);
    for (int s = 0; s < t->nsrc; s++)
        if (first_src(t, s))
            n += round64((size_t)t->src[s]->numel) * (t->src[s]->requires_grad ? 2 : 1);
    return n;
}

hv_status hv__nn_run_staged(hv_nn_backend *be, hv_nn_tensor *t, int backward, float *stage,
                            const hv_nn_exec *hex)
{
    const hv_nn_backend_i *bi = be->iface;
    float *dev_d[HV_NN_MAX_SRC + 1] = {0}, *dev_g[HV_NN_MAX_SRC + 1] = {0};
    hv_nn_tensor *ts[HV_NN_MAX_SRC + 1];
    int nt = 0;
    float *p = stage;
    hv_status st = hv__nn_sync(be);
    if (st != HV_OK) return st;
    for (int s = 0; s < t->nsrc; s++)
        if (first_src(t, s)) ts[nt++] = t->src[s];
    ts[nt++] = t; /* the node itself last */
    for (int k = 0; k < nt; k++) { /* point at the staging copies first ... */
        hv_nn_tensor *x = ts[k];
        dev_d[k] = x->data;
        dev_g[k] = x->grad;
        x->data = p;
        p += round64((size_t)x->numel);
        if (x->requires_grad) {
            if (x->grad) x->grad = p; /* NULL: a frozen parameter */
            p += round64((size_t)x->numel);
        }
    }
    for (int k = 0; k < nt; k++) { /* ... then copy, so that `done` restores all */
        hv_nn_tensor *x = ts[k];
        const size_t bytes = (size_t)x->numel * sizeof(float);
        if ((k < nt - 1 || backward) && (st = bi->copy_out(be, x->data, dev_d[k], bytes))) goto done;
        if (backward && x->grad && (st = bi->copy_out(be, x->grad, dev_g[k], bytes))) goto done;
    }
    st = backward ? hv__nn_ref_backward(t, hex) : hv__nn_ref_forward(t, hex);
    if (st != HV_OK) goto done;
    for (int k = 0; k < nt; k++) {
        hv_nn_tensor *x = ts[k];
        const size_t bytes = (size_t)x->numel * sizeof(float);
        const int self = k == nt - 1;
        if (!backward && (self || (x->op == HV_NN_OP_PARAM && !x->param->trainable)))
            st = bi->copy_in(be, dev_d[k], x->data, bytes);
        else if (backward && !self && dev_g[k])
            st = bi->copy_in(be, dev_g[k], x->grad, bytes);
        if (st != HV_OK) goto done;
    }
done:
    for (int k = 0; k < nt; k++) {
        ts[k]->data = dev_d[k];
        ts[k]->grad = dev_g[k];
    }
    return st;
}
