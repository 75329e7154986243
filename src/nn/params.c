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
 * converted PyTorch optimiser state continues where it stopped. The update
 * loop is on the host; a device backend would add an optimiser op (ggml's
 * OPT_STEP_ADAMW) when it exists.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_backend.h"

struct hv_nn_params {
    hv_nn_param **p;
    size_t n, cap;
};

struct hv_nn_adam {
    hv_nn_params *ps;
    double lr, beta1, beta2, eps;
    int64_t step;
    size_t n;      /* parameters covered (trainable ones at creation) */
    float **m, **v;
    hv_nn_param **p;
};

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
        free(ps->p[i]->data);
        free(ps->p[i]->grad);
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
    for (size_t i = 0; ps && i < ps->n; i++)
        if (ps->p[i]->grad) memset(ps->p[i]->grad, 0, (size_t)ps->p[i]->numel * sizeof(float));
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
float *hv_nn_param_data(hv_nn_param *p) { return p ? p->data : NULL; }
float *hv_nn_param_grad(hv_nn_param *p) { return p ? p->grad : NULL; }

/* ------------------------------------------------------------------ init */

void hv_nn_init_uniform(hv_nn_param *p, hv_rng *rng, double lo, double hi)
{
    for (int64_t i = 0; i < p->numel; i++) p->data[i] = (float)hv_rng_range(rng, lo, hi);
    p->version++;
}

void hv_nn_init_normal(hv_nn_param *p, hv_rng *rng, double mean, double std)
{
    for (int64_t i = 0; i < p->numel; i++) p->data[i] = (float)(mean + std * hv_rng_normal(rng));
    p->version++;
}

void hv_nn_init_const(hv_nn_param *p, double value)
{
    for (int64_t i = 0; i < p->numel; i++) p->data[i] = (float)value;
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
    normalise(u->data, u->numel);
    normalise(v->data, v->numel);
}

void hv_nn_sn_power_iteration(const hv_nn_param *w, hv_nn_param *u, hv_nn_param *v, int iters)
{
    const int64_t h = w->shape[0], wd = w->numel / h;
    if (u->numel != h || v->numel != wd) return;
    for (int it = 0; it < iters; it++) {
        for (int64_t j = 0; j < wd; j++) {
            double s = 0;
            for (int64_t i = 0; i < h; i++) s += (double)w->data[i * wd + j] * u->data[i];
            v->data[j] = (float)s;
        }
        normalise(v->data, wd);
        for (int64_t i = 0; i < h; i++) {
            double s = 0;
            for (int64_t j = 0; j < wd; j++) s += (double)w->data[i * wd + j] * v->data[j];
            u->data[i] = (float)s;
        }
        normalise(u->data, h);
    }
    u->version++;
    v->version++;
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
    a->m = hv__nn_calloc(n, sizeof *a->m);
    a->v = hv__nn_calloc(n, sizeof *a->v);
    a->p = hv__nn_calloc(n, sizeof *a->p);
    if (!a->m || !a->v || !a->p) goto nomem;
    for (size_t i = 0; i < ps->n; i++) {
        hv_nn_param *p = ps->p[i];
        if (!p->trainable) continue;
        a->p[a->n] = p;
        a->m[a->n] = hv__nn_calloc((size_t)p->numel, sizeof(float));
        a->v[a->n] = hv__nn_calloc((size_t)p->numel, sizeof(float));
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
        free(a->m[i]);
        free(a->v[i]);
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

hv_status hv_nn_adam_step(hv_nn_adam *a)
{
    if (!a) return hv_error_set(HV_ERR_ARG, "nn adam_step: NULL optimiser");
    a->step++;
    const double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    const double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    const float b1 = (float)a->beta1, b2 = (float)a->beta2;
    const float step = (float)(a->lr / bc1);
    const float sbc2 = (float)sqrt(bc2), eps = (float)a->eps;
    for (size_t i = 0; i < a->n; i++) {
        hv_nn_param *p = a->p[i];
        float *m = a->m[i], *v = a->v[i];
        const float *gr = p->grad;
        float *w = p->data;
        for (int64_t k = 0; k < p->numel; k++) {
            float gk = gr[k];
            if (!isfinite(gk))
                return hv_error_set(HV_ERR_NUMERIC, "nn adam_step: non-finite gradient in %s",
                                    p->name);
            m[k] = b1 * m[k] + (1.0f - b1) * gk;
            v[k] = b2 * v[k] + (1.0f - b2) * gk * gk;
            w[k] -= step * m[k] / (sqrtf(v[k]) / sbc2 + eps);
        }
        p->version++;
    }
    return HV_OK;
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
