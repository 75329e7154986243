/*
 * params.c: parameter sets, seeded initialisation and the Adam optimiser.
 *
 * A parameter set is a flat list of named host tensors (trainable weights and
 * non-trainable buffers such as BN running statistics or spectral-norm
 * vectors), independent of any graph so that several graphs (training and
 * inference, several networks of one model) share them. Every parameter has a
 * version counter bumped whenever its data changes (init, Adam, checkpoint
 * load, hv_nn_params_touch) so that inference graphs know when to recompute
 * folded values.
 *
 * Adam follows torch.optim.Adam exactly (bias corrections applied to the step
 * size and to the denominator, eps outside the square root) so that a
 * converted PyTorch optimiser state continues where it stopped.
 *
 * Placement: hv_nn_params_bind moves the data and gradients of a set into a
 * device backend's buffers (host_memory 0); p->be then names the backend
 * and every host access goes through its copies (hv__nn_param_copy_in/out:
 * get/set, initialisation through a temporary host view, checkpoints). An
 * optimiser keeps its moments where the parameters were when it was
 * created and updates them with the backend's adam_step hook (the host loop
 * on host memory). A step checks all its gradients before any update (a
 * device through grad_check / grad_check_result: one wait per step), so a
 * non-finite one changes nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_backend.h"

struct hv_nn_params {
    hv_nn_param **p;
    size_t n, cap;
    hv_nn_backend *be; /* bound device backend, NULL: host memory */
};

struct hv_nn_adam {
    hv_nn_params *ps;
    double lr, beta1, beta2, eps;
    int64_t step;
    size_t n;      /* parameters covered (trainable ones at creation) */
    float **m, **v;
    hv_nn_param **p;
    hv_nn_backend *be; /* where m and v live (the parameters' backend at creation) */
};

/* ------------------------------------------------------------- placement */

/* Buffers of `floats` floats, zero-filled, in be's memory (NULL: host). */
static float *buf_alloc(hv_nn_backend *be, int64_t floats)
{
    if (!be) return hv__nn_calloc((size_t)floats, sizeof(float));
    void *b = NULL;
    if (be->iface->buffer_alloc(be, (size_t)floats * sizeof(float), &b) != HV_OK) return NULL;
    return b;
}

static void buf_free(hv_nn_backend *be, float *b)
{
    if (!b) return;
    if (be)
        be->iface->buffer_free(be, b);
    else
        free(b);
}

hv_status hv__nn_param_copy_out(const hv_nn_param *p, float *host, const float *buf, int64_t n)
{
    hv_nn_backend *be = p->be;
    if (!be) {
        if (host != buf) memcpy(host, buf, (size_t)n * sizeof(float));
        return HV_OK;
    }
    hv_status st = be->iface->synchronize ? be->iface->synchronize(be) : HV_OK;
    if (st == HV_OK) st = be->iface->copy_out(be, host, buf, (size_t)n * sizeof(float));
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "nn: reading parameter %s from %s", p->name,
                                              be->iface->name);
}

hv_status hv__nn_param_copy_in(const hv_nn_param *p, float *buf, const float *host, int64_t n)
{
    hv_nn_backend *be = p->be;
    if (!be) {
        if (host != buf) memcpy(buf, host, (size_t)n * sizeof(float));
        return HV_OK;
    }
    hv_status st = be->iface->copy_in(be, buf, host, (size_t)n * sizeof(float));
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "nn: writing parameter %s to %s", p->name,
                                              be->iface->name);
}

/* Move p's data and gradient to `to` (NULL: host memory) through a host copy. */
static hv_status param_move(hv_nn_param *p, hv_nn_backend *to)
{
    hv_status st = HV_OK;
    float *host = NULL, *d = NULL, *g = NULL;
    const int has_g = p->grad != NULL;
    if (p->be == to) return HV_OK;
    host = hv__nn_malloc((size_t)p->numel * (has_g ? 2 : 1) * sizeof(float));
    d = buf_alloc(to, p->numel);
    g = has_g ? buf_alloc(to, p->numel) : NULL;
    if (!host || !d || (has_g && !g)) {
        st = hv_error_set(HV_ERR_NOMEM, "nn params_bind: cannot allocate %s on %s", p->name,
                          to ? to->iface->name : "the host");
        goto done;
    }
    if ((st = hv__nn_param_copy_out(p, host, p->data, p->numel))) goto done;
    if (has_g && (st = hv__nn_param_copy_out(p, host + p->numel, p->grad, p->numel))) goto done;
    hv_nn_backend *from = p->be;
    p->be = to;
    if ((st = hv__nn_param_copy_in(p, d, host, p->numel)) ||
        (has_g && (st = hv__nn_param_copy_in(p, g, host + p->numel, p->numel)))) {
        p->be = from;
        goto done;
    }
    buf_free(from, p->data);
    buf_free(from, p->grad);
    p->data = d;
    p->grad = g;
    d = g = NULL;
done:
    buf_free(to, d);
    buf_free(to, g);
    free(host);
    return st;
}

hv_status hv_nn_params_bind(hv_nn_params *ps, hv_nn_backend *be)
{
    if (!ps) return hv_error_set(HV_ERR_ARG, "nn params_bind: NULL parameter set");
    hv_nn_backend *to = (be && !be->iface->host_memory) ? be : NULL;
    if (to && (!to->iface->buffer_alloc || !to->iface->buffer_free || !to->iface->copy_in ||
               !to->iface->copy_out || !to->iface->clear))
        return hv_error_set(HV_ERR_ARG, "nn params_bind: backend %s keeps device memory but lacks "
                            "buffer_alloc, buffer_free, copy_in, copy_out or clear", to->iface->name);
    for (size_t i = 0; i < ps->n; i++) {
        hv_status st = param_move(ps->p[i], to);
        if (st != HV_OK) return st;
    }
    ps->be = to;
    return HV_OK;
}

hv_status hv_nn_param_get(const hv_nn_param *p, float *dst, size_t n)
{
    if (!p || !dst || n != (size_t)p->numel)
        return hv_error_set(HV_ERR_ARG, "nn param_get: bad arguments");
    return hv__nn_param_copy_out(p, dst, p->data, p->numel);
}

hv_status hv_nn_param_get_grad(const hv_nn_param *p, float *dst, size_t n)
{
    if (!p || !dst || !p->grad || n != (size_t)p->numel)
        return hv_error_set(HV_ERR_ARG, "nn param_get_grad: bad arguments or no gradient");
    return hv__nn_param_copy_out(p, dst, p->grad, p->numel);
}

hv_status hv_nn_param_set(hv_nn_param *p, const float *src, size_t n)
{
    if (!p || !src || n != (size_t)p->numel)
        return hv_error_set(HV_ERR_ARG, "nn param_set: bad arguments");
    hv_status st = hv__nn_param_copy_in(p, p->data, src, p->numel);
    if (st == HV_OK) p->version++;
    return st;
}

hv_status hv_nn_param_set_grad(hv_nn_param *p, const float *src, size_t n)
{
    if (!p || !src || !p->grad || n != (size_t)p->numel)
        return hv_error_set(HV_ERR_ARG, "nn param_set_grad: bad arguments or no gradient");
    return hv__nn_param_copy_in(p, p->grad, src, p->numel);
}

/* A host view of p's data for the host code below: p->data itself on the
 * host, else a temporary copy (copied out when `read`), written back and
 * freed by view_end. NULL (logged) when the copy fails. */
static float *view_begin(hv_nn_param *p, int read)
{
    if (!p->be) return p->data;
    float *h = hv__nn_malloc((size_t)p->numel * sizeof(float));
    if (!h || (read && hv__nn_param_copy_out(p, h, p->data, p->numel) != HV_OK)) {
        hv_log_error("nn: no host view of parameter %s: %s", p->name, hv_error_detail());
        free(h);
        return NULL;
    }
    return h;
}

static void view_end(hv_nn_param *p, float *h, int write)
{
    if (!h || !p->be) return;
    if (write && hv__nn_param_copy_in(p, p->data, h, p->numel) != HV_OK)
        hv_log_error("nn: writing parameter %s back: %s", p->name, hv_error_detail());
    free(h);
}

hv_status hv_nn_params_create(hv_nn_params **out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "nn params: out is NULL");
    *out = hv__nn_calloc(1, sizeof **out);
    return *out ? HV_OK : hv_error_set(HV_ERR_NOMEM, "nn params: out of memory");
}

void hv_nn_params_free(hv_nn_params *ps)
{
    if (!ps) return;
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->p[i]->name);
        buf_free(ps->p[i]->be, ps->p[i]->data);
        buf_free(ps->p[i]->be, ps->p[i]->grad);
        free(ps->p[i]);
    }
    free(ps->p);
    free(ps);
}

hv_status hv_nn_params_add(hv_nn_params *ps, const char *name, int ndim, const int64_t *shape,
                           int trainable, hv_nn_param **out)
{
    hv_status st = HV_OK;
    hv_nn_param *p = NULL;
    if (!ps || !name || !*name || !shape || ndim < 1 || ndim > HV_NN_MAX_DIMS)
        return hv_error_set(HV_ERR_ARG, "nn params_add: bad arguments");
    if (hv_nn_params_find(ps, name))
        return hv_error_set(HV_ERR_ARG, "nn params_add: duplicate name '%s'", name);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || numel > INT32_MAX / shape[i])
            return hv_error_set(HV_ERR_ARG, "nn params_add: bad shape for '%s'", name);
        numel *= shape[i];
    }
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 32;
        hv_nn_param **np = realloc(ps->p, cap * sizeof *np);
        if (!np) return hv_error_set(HV_ERR_NOMEM, "nn params_add: out of memory");
        ps->p = np;
        ps->cap = cap;
    }
    p = hv__nn_calloc(1, sizeof *p);
    if (!p) {
        st = hv_error_set(HV_ERR_NOMEM, "nn params_add: out of memory");
        goto done;
    }
    p->name = hv_strdup(name);
    p->data = hv__nn_calloc((size_t)numel, sizeof(float));
    p->grad = trainable ? hv__nn_calloc((size_t)numel, sizeof(float)) : NULL;
    if (!p->name || !p->data || (trainable && !p->grad)) {
        st = hv_error_set(HV_ERR_NOMEM, "nn params_add: out of memory");
        goto done;
    }
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    p->numel = numel;
    p->trainable = trainable != 0;
    if (ps->be && (st = param_move(p, ps->be)) != HV_OK) goto done; /* a bound set */
    ps->p[ps->n++] = p;
    if (out) *out = p;
    p = NULL;
done:
    if (p) {
        free(p->name);
        free(p->data);
        free(p->grad);
        free(p);
    }
    return st;
}

hv_nn_param *hv_nn_params_find(const hv_nn_params *ps, const char *name)
{
    if (!ps || !name) return NULL;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i]->name, name) == 0) return ps->p[i];
    return NULL;
}

size_t hv_nn_params_size(const hv_nn_params *ps) { return ps ? ps->n : 0; }

hv_nn_param *hv_nn_params_at(const hv_nn_params *ps, size_t i)
{
    return (ps && i < ps->n) ? ps->p[i] : NULL;
}

int64_t hv_nn_params_numel(const hv_nn_params *ps, int trainable_only)
{
    int64_t n = 0;
    for (size_t i = 0; ps && i < ps->n; i++)
        if (!trainable_only || ps->p[i]->trainable) n += ps->p[i]->numel;
    return n;
}

void hv_nn_params_zero_grad(hv_nn_params *ps)
{
    for (size_t i = 0; ps && i < ps->n; i++) {
        hv_nn_param *p = ps->p[i];
        if (!p->grad) continue;
        if (!p->be) {
            memset(p->grad, 0, (size_t)p->numel * sizeof(float));
        } else if (p->be->iface->clear(p->be, p->grad, (size_t)p->numel * sizeof(float)) != HV_OK) {
            hv_log_error("nn params_zero_grad: clearing %s: %s", p->name, hv_error_detail());
        }
    }
}

void hv_nn_params_touch(hv_nn_params *ps)
{
    for (size_t i = 0; ps && i < ps->n; i++) ps->p[i]->version++;
}

const char *hv_nn_param_name(const hv_nn_param *p) { return p ? p->name : ""; }

int hv_nn_param_shape(const hv_nn_param *p, int64_t shape[HV_NN_MAX_DIMS])
{
    if (!p) return 0;
    for (int i = 0; i < HV_NN_MAX_DIMS; i++) shape[i] = i < p->ndim ? p->shape[i] : 1;
    return p->ndim;
}

int64_t hv_nn_param_numel(const hv_nn_param *p) { return p ? p->numel : 0; }
int hv_nn_param_trainable(const hv_nn_param *p) { return p ? p->trainable : 0; }
float *hv_nn_param_data(hv_nn_param *p) { return (p && !p->be) ? p->data : NULL; }
float *hv_nn_param_grad(hv_nn_param *p) { return (p && !p->be) ? p->grad : NULL; }

/* ------------------------------------------------------------------ init */

void hv_nn_init_uniform(hv_nn_param *p, hv_rng *rng, double lo, double hi)
{
    float *d = view_begin(p, 0);
    if (!d) return;
    for (int64_t i = 0; i < p->numel; i++) d[i] = (float)hv_rng_range(rng, lo, hi);
    view_end(p, d, 1);
    p->version++;
}

void hv_nn_init_normal(hv_nn_param *p, hv_rng *rng, double mean, double std)
{
    float *d = view_begin(p, 0);
    if (!d) return;
    for (int64_t i = 0; i < p->numel; i++) d[i] = (float)(mean + std * hv_rng_normal(rng));
    view_end(p, d, 1);
    p->version++;
}

void hv_nn_init_const(hv_nn_param *p, double value)
{
    float *d = view_begin(p, 0);
    if (!d) return;
    for (int64_t i = 0; i < p->numel; i++) d[i] = (float)value;
    view_end(p, d, 1);
    p->version++;
}

void hv_nn_init_torch_default(hv_nn_param *w, hv_nn_param *b, hv_rng *rng)
{
    /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound
     * gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); the bias uses the same bound. */
    double fan_in = (double)(w->numel / w->shape[0]);
    double bound = 1.0 / sqrt(fan_in);
    hv_nn_init_uniform(w, rng, -bound, bound);
    if (b) hv_nn_init_uniform(b, rng, -bound, bound);
}

static void normalise(float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double d = fmax(sqrt(s), 1e-12);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] / d);
}

void hv_nn_init_sn_vectors(hv_nn_param *u, hv_nn_param *v, hv_rng *rng)
{
    hv_nn_init_normal(u, rng, 0, 1);
    hv_nn_init_normal(v, rng, 0, 1);
    float *du = view_begin(u, 1), *dv = view_begin(v, 1);
    if (du) normalise(du, u->numel);
    if (dv) normalise(dv, v->numel);
    view_end(u, du, 1);
    view_end(v, dv, 1);
}

void hv_nn_sn_power_iteration(const hv_nn_param *w, hv_nn_param *u, hv_nn_param *v, int iters)
{
    const int64_t h = w->shape[0], wd = w->numel / h;
    if (u->numel != h || v->numel != wd) return;
    float *wv = view_begin((hv_nn_param *)w, 1), *uv = view_begin(u, 1), *vv = view_begin(v, 1);
    if (!wv || !uv || !vv) goto done;
    for (int it = 0; it < iters; it++) {
        for (int64_t j = 0; j < wd; j++) {
            double s = 0;
            for (int64_t i = 0; i < h; i++) s += (double)wv[i * wd + j] * uv[i];
            vv[j] = (float)s;
        }
        normalise(vv, wd);
        for (int64_t i = 0; i < h; i++) {
            double s = 0;
            for (int64_t j = 0; j < wd; j++) s += (double)wv[i * wd + j] * vv[j];
            uv[i] = (float)s;
        }
        normalise(uv, h);
    }
    u->version++;
    v->version++;
done:
    view_end((hv_nn_param *)w, wv, 0);
    view_end(u, uv, 1);
    view_end(v, vv, 1);
}

/* ------------------------------------------------------------------ Adam */

hv_status hv_nn_adam_create(hv_nn_params *ps, double lr, double beta1, double beta2, double eps,
                            hv_nn_adam **out)
{
    if (!ps || !out || !(lr > 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) ||
        !(eps > 0))
        return hv_error_set(HV_ERR_ARG, "nn adam: bad arguments");
    hv_nn_adam *a = hv__nn_calloc(1, sizeof *a);
    if (!a) return hv_error_set(HV_ERR_NOMEM, "nn adam: out of memory");
    a->ps = ps;
    a->lr = lr;
    a->beta1 = beta1;
    a->beta2 = beta2;
    a->eps = eps;
    size_t n = 0;
    for (size_t i = 0; i < ps->n; i++) n += ps->p[i]->trainable;
    a->be = ps->be;
    a->m = hv__nn_calloc(n, sizeof *a->m);
    a->v = hv__nn_calloc(n, sizeof *a->v);
    a->p = hv__nn_calloc(n, sizeof *a->p);
    if (!a->m || !a->v || !a->p) goto nomem;
    for (size_t i = 0; i < ps->n; i++) {
        hv_nn_param *p = ps->p[i];
        if (!p->trainable) continue;
        a->p[a->n] = p;
        a->m[a->n] = buf_alloc(a->be, p->numel);
        a->v[a->n] = buf_alloc(a->be, p->numel);
        a->n++;
        if (!a->m[a->n - 1] || !a->v[a->n - 1]) goto nomem;
    }
    *out = a;
    return HV_OK;
nomem:
    hv_nn_adam_free(a);
    return hv_error_set(HV_ERR_NOMEM, "nn adam: out of memory");
}

void hv_nn_adam_free(hv_nn_adam *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        buf_free(a->be, a->m[i]);
        buf_free(a->be, a->v[i]);
    }
    free(a->m);
    free(a->v);
    free(a->p);
    free(a);
}

void hv_nn_adam_set_lr(hv_nn_adam *a, double lr)
{
    if (a && lr > 0) a->lr = lr;
}

int64_t hv_nn_adam_steps(const hv_nn_adam *a) { return a ? a->step : 0; }

hv_status hv__nn_adam_update(float *w, float *m, float *v, const float *g, int64_t n,
                             const hv_nn_adam_hp *hp)
{
    const float b1 = hp->beta1, b2 = hp->beta2, step = hp->step_size, sbc2 = hp->sqrt_bc2,
                eps = hp->eps;
    for (int64_t k = 0; k < n; k++) {
        float gk = g[k];
        if (!isfinite(gk)) return HV_ERR_NUMERIC;
        m[k] = b1 * m[k] + (1.0f - b1) * gk;
        v[k] = b2 * v[k] + (1.0f - b2) * gk * gk;
        w[k] -= step * m[k] / (sqrtf(v[k]) / sbc2 + eps);
    }
    return HV_OK;
}

hv_status hv_nn_adam_step(hv_nn_adam *a)
{
    if (!a) return hv_error_set(HV_ERR_ARG, "nn adam_step: NULL optimiser");
    hv_status (*hook)(hv_nn_backend *, float *, float *, float *, const float *, int64_t,
                      const hv_nn_adam_hp *) = a->be ? a->be->iface->adam_step : NULL;
    if (a->be && !hook)
        return hv_error_set(HV_ERR_ARG, "nn adam_step: backend %s holds the parameters but has "
                            "no adam_step", a->be->iface->name);
    for (size_t i = 0; i < a->n; i++)
        if (a->p[i]->be != a->be)
            return hv_error_set(HV_ERR_ARG, "nn adam_step: parameter %s moved to %s after the "
                                "optimiser was created on %s (bind first, then create it)",
                                a->p[i]->name, a->p[i]->be ? a->p[i]->be->iface->name : "the host",
                                a->be ? a->be->iface->name : "the host");
    if (hook && (!a->be->iface->grad_check || !a->be->iface->grad_check_result))
        return hv_error_set(HV_ERR_ARG, "nn adam_step: backend %s has adam_step but no "
                            "grad_check/grad_check_result", a->be->iface->name);
    if (a->n > (size_t)INT32_MAX)
        return hv_error_set(HV_ERR_LIMIT, "nn adam_step: %zu parameters", a->n);
    /* Every gradient of the step is checked before anything is updated, so
     * that a non-finite one anywhere changes nothing (weights, moments, step
     * count): on the host directly, on a device through one queued check
     * per parameter and ONE wait for the whole step. */
    size_t bad = a->n;
    if (hook) {
        hv_nn_backend *be = a->be;
        for (size_t i = 0; i < a->n; i++) {
            hv_status st = be->iface->grad_check(be, a->p[i]->grad, a->p[i]->numel, (int)i + 1);
            if (st != HV_OK) return hv_error_wrap(st, "nn adam_step: checking %s", a->p[i]->name);
        }
        int tag = 0;
        hv_status st = be->iface->grad_check_result(be, &tag);
        if (st != HV_OK) return hv_error_wrap(st, "nn adam_step: the gradients' check");
        if (tag < 0 || (size_t)tag > a->n)
            return hv_error_set(HV_ERR_INTERNAL, "nn adam_step: check answered %d", tag);
        if (tag > 0) bad = (size_t)tag - 1;
    } else {
        for (size_t i = 0; i < a->n && bad == a->n; i++)
            for (int64_t k = 0; k < a->p[i]->numel; k++)
                if (!isfinite(a->p[i]->grad[k])) {
                    bad = i;
                    break;
                }
    }
    if (bad < a->n)
        return hv_error_set(HV_ERR_NUMERIC, "nn adam_step: non-finite gradient in %s",
                            a->p[bad]->name);
    a->step++;
    const double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    const double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    const hv_nn_adam_hp hp = {(float)a->beta1, (float)a->beta2, (float)(a->lr / bc1),
                              (float)sqrt(bc2), (float)a->eps};
    for (size_t i = 0; i < a->n; i++) {
        hv_nn_param *p = a->p[i];
        hv_status st = hook ? hook(a->be, p->data, a->m[i], a->v[i], p->grad, p->numel, &hp)
                            : hv__nn_adam_update(p->data, a->m[i], a->v[i], p->grad, p->numel, &hp);
        if (st == HV_ERR_NUMERIC)
            return hv_error_set(HV_ERR_NUMERIC, "nn adam_step: non-finite gradient in %s", p->name);
        if (st != HV_OK) return hv_error_wrap(st, "nn adam_step: %s", p->name);
        p->version++;
    }
    return HV_OK;
}

int hv__nn_adam_placed(const hv_nn_adam *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->p[i]->be != a->be) return 0;
    return 1;
}

size_t hv__nn_adam_state(const hv_nn_adam *a, size_t i, hv_nn_param **p, float **m, float **v)
{
    if (i >= a->n) return a->n;
    *p = a->p[i];
    *m = a->m[i];
    *v = a->v[i];
    return a->n;
}

void hv__nn_adam_hyper(hv_nn_adam *a, double hp[4], int64_t *step, int set)
{
    if (set) {
        a->lr = hp[0];
        a->beta1 = hp[1];
        a->beta2 = hp[2];
        a->eps = hp[3];
        a->step = *step;
    } else {
        hp[0] = a->lr;
        hp[1] = a->beta1;
        hp[2] = a->beta2;
        hp[3] = a->eps;
        *step = a->step;
    }
}
