/*
 * nn_fixture.h: reader of the PyTorch fixtures in tests/nn/fixtures and
 * tests/model/fixtures (written by scripts/hvfx.py for the
 * scripts/make_*_fixture.py): b"HVFX", uint32 version 1, uint32 count, then
 * per tensor uint32 name length, name, uint32 ndim, int64 shape[ndim],
 * float32 data, all little endian. Header-only (static functions) so that
 * each test stays one source file.
 */
#ifndef HV_TESTS_NN_FIXTURE_H
#define HV_TESTS_NN_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_tensor {
    char name[128];
    int ndim;
    int64_t shape[8];
    int64_t n;
    float *data;
} fx_tensor;

typedef struct fx_file {
    fx_tensor *t;
    int n;
} fx_file;

static void fx_free(fx_file *fx)
{
    for (int i = 0; fx->t && i < fx->n; i++) free(fx->t[i].data);
    free(fx->t);
    fx->t = NULL;
    fx->n = 0;
}

/* 0 on success; on failure fx is empty. */
static int fx_read(const char *path, fx_file *fx)
{
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[4];
    uint32_t ver = 0, cnt = 0;
    int rc = -1;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "HVFX", 4) || fread(&ver, 4, 1, f) != 1 ||
        fread(&cnt, 4, 1, f) != 1 || ver != 1 || cnt > 4096)
        goto done;
    fx->t = calloc(cnt, sizeof *fx->t);
    if (!fx->t) goto done;
    fx->n = (int)cnt;
    for (uint32_t i = 0; i < cnt; i++) {
        fx_tensor *t = &fx->t[i];
        uint32_t nl = 0, nd = 0;
        if (fread(&nl, 4, 1, f) != 1 || nl >= sizeof t->name || fread(t->name, 1, nl, f) != nl ||
            fread(&nd, 4, 1, f) != 1 || nd > 8 || fread(t->shape, 8, nd, f) != nd)
            goto done;
        t->ndim = (int)nd;
        t->n = 1;
        for (uint32_t d = 0; d < nd; d++) t->n *= t->shape[d];
        if (t->n < 0 || t->n > (1 << 24)) goto done;
        t->data = malloc((size_t)(t->n ? t->n : 1) * sizeof(float));
        if (!t->data || fread(t->data, 4, (size_t)t->n, f) != (size_t)t->n) goto done;
    }
    rc = 0;
done:
    fclose(f);
    if (rc) fx_free(fx);
    return rc;
}

static const fx_tensor *fx_find(const fx_file *fx, const char *name)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
    return NULL;
}

/* relative L2 error |a - b| / |b| (|a - b| when b is all zeros) and the
 * largest absolute difference */
static double fx_rel_l2(const float *a, const float *b, int64_t n, double *maxabs)
{
    double num = 0, den = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
        if (fabs(d) > mx || d != d) mx = d != d ? INFINITY : fabs(d);
    }
    if (maxabs) *maxabs = mx;
    double e = sqrt(num / (den > 0 ? den : 1));
    return e == e ? e : INFINITY;
}

/* A planned tensor's value (or, with grad, its gradient) against the
 * fixture tensor `name`: relative L2 error <= tol, printed as a "#" line;
 * ctx names the case in messages. Needs hv_test.h and hv/nn.h included
 * before this header. (static inline: a test that does not use it gets no
 * unused-function warning.) */
static inline void fx_cmp(const hv_nn_tensor *t, int grad, const fx_file *fx, const char *name,
                          double tol, const char *ctx)
{
    const fx_tensor *f = fx_find(fx, name);
    HV_REQUIRE_V(f != NULL, "fixture lacks %s", name);
    HV_REQUIRE_V(t && hv_nn_tensor_numel(t) == f->n, "%s %s: %lld elements, fixture %lld", ctx,
                 name, t ? (long long)hv_nn_tensor_numel(t) : -1LL, (long long)f->n);
    float *y = malloc((size_t)f->n * sizeof(float));
    HV_REQUIRE_V(y != NULL, "out of memory");
    hv_status st = grad ? hv_nn_tensor_get_grad(t, y, (size_t)f->n)
                        : hv_nn_tensor_get(t, y, (size_t)f->n);
    if (HV_CHECK(st == HV_OK, "%s %s: reading it: %s", ctx, name, hv_error_detail())) {
        double mx, e = fx_rel_l2(y, f->data, f->n, &mx);
        HV_CHECK(e <= tol, "%s %s%s: relative L2 error %.3g (max abs %.3g) > %.1g", ctx,
                 grad ? "grad of " : "", name, e, mx, tol);
        printf("# %s %s%s: %.2e\n", ctx, grad ? "grad of " : "", name, e);
    }
    free(y);
}

/* Every parameter of ps set from the fixture tensor "w.<its name>" (then
 * hv_nn_params_touch), BY NAME: each must be there with its size, and the
 * fixture must hold no other "w." tensors (`what` names ps in that message,
 * e.g. "our classifier"). 1 when all hold; else 0, each miss a failed check.
 * Needs hv_test.h and hv/nn.h included before this header. */
static inline int fx_load_params(hv_nn_params *ps, const fx_file *fx, const char *what)
{
    int ok = 1;
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        char nm[200];
        snprintf(nm, sizeof nm, "w.%s", hv_nn_param_name(p));
        const fx_tensor *f = fx_find(fx, nm);
        if (!HV_CHECK(f && f->n == hv_nn_param_numel(p), "parameter %s: not in the fixture or "
                      "another size", hv_nn_param_name(p))) {
            ok = 0;
            continue;
        }
        memcpy(hv_nn_param_data(p), f->data, (size_t)f->n * sizeof(float));
    }
    int n_w = 0;
    for (int i = 0; i < fx->n; i++) n_w += strncmp(fx->t[i].name, "w.", 2) == 0;
    ok &= HV_CHECK((size_t)n_w == hv_nn_params_size(ps), "fixture has %d weights, %s %zu "
                   "parameters", n_w, what, hv_nn_params_size(ps));
    hv_nn_params_touch(ps);
    return ok;
}

#endif /* HV_TESTS_NN_FIXTURE_H */
