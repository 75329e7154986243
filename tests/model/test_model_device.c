/*
 * test_model_device.c: the GAN's and the classifier's training paths and the
 * GAN's inference on a device backend (compute.device = cuda), proved
 * without a GPU on the test-only fake device (tests/nn/fake_device.h),
 * whose memory faults when host code touches it: the models bind their
 * parameters to the backend (hv_nn_params_bind) and reach them only through
 * copies (snapshot of the running statistics, the packed gradients of the
 * data-parallel sum, the finite checks).
 *
 * The truth is the same model on the host reference backend: the fake
 * device runs the same reference kernels and the host loop's Adam
 * arithmetic, so every loss, every parameter after the steps and every
 * inference output must be equal (tolerance 0: the same float operations in
 * the same order; a placement bug shows as a fault, an error, or a
 * difference). Two device variants: every op a device kernel (-1), and
 * every op declined (0: each node staged through host copies).
 */
#include "hv_test.h"
#include "gan_batch.h"
#include "hv/train.h"
#include "../nn/fake_device.h"

#define R 64
#define CL 64
#define BAND 16
#define STEPS 3

/* A one-participant "sum": the gradients still go out through the packed
 * host buffer and back (get_grad / set_grad), as on an MPI rank. */
static int one_rank_sum(void *ctx, float *buf, size_t n)
{
    (void)buf, (void)n;
    (*(int *)ctx)++;
    return 0;
}

static void small_opts(hv_model_gan_opts *o)
{
    hv_model_gan_opts_default(o);
    o->cnum = 4;
    o->ndf = 8;
    o->rows = R;
    o->cols = CL;
    o->band_rows = BAND;
    o->local_cols = 18;
    o->batch_local = 2;
    o->batch_global = 2;
}

/* Every parameter of the sets, in order, copied to the host. */
static float *params_copy(hv_nn_params *const *sets, int nsets, size_t *n)
{
    size_t tot = 0;
    for (int k = 0; k < nsets; k++) tot += (size_t)hv_nn_params_numel(sets[k], 0);
    float *out = malloc(tot * sizeof(float)), *q = out;
    for (int k = 0; out && k < nsets; k++)
        for (size_t i = 0; i < hv_nn_params_size(sets[k]); i++) {
            hv_nn_param *p = hv_nn_params_at(sets[k], i);
            size_t m = (size_t)hv_nn_param_numel(p);
            if (hv_nn_param_get(p, q, m) != HV_OK) {
                free(out);
                return NULL;
            }
            q += m;
        }
    *n = tot;
    return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e; /* NaN counts as a difference */
    }
    return d;
}

typedef struct gan_out {
    hv_model_gan_losses ls[STEPS];
    float *params, *comp, *seg, h[2];
    size_t np;
    int reduced;
} gan_out;

static void gan_run(hv_nn_backend *be, gan_out *r)
{
    memset(r, 0, sizeof *r);
    hv_model_gan_opts o;
    small_opts(&o);
    hv_rng rng;
    hv_rng_seed(&rng, 11, 0);
    hv_model_gan *m = NULL;
    hv_model_batch b;
    gan_batch_alloc(&b, 2, R, CL, BAND);
    for (int64_t i = 0; i < 2; i++) {
        gan_batch_item(&b, i, 24 + 2 * i, 9 + i, 0.5 * (double)i);
        b.ratio[i] = 0.1f * (float)(i + 1);
    }
    HV_CHECK_OK(hv_model_gan_create(&o, be, &rng, &m));
    if (!m) goto done;
    hv_model_gan_set_reducer(m, one_rank_sum, &r->reduced);
    for (int s = 0; s < STEPS; s++) HV_CHECK_OK(hv_model_gan_step(m, &b, &r->ls[s]));
    hv_nn_params *sets[4];
    for (int k = 0; k < 4; k++) sets[k] = hv_model_gan_params(m, k);
    r->params = params_copy(sets, 4, &r->np);
    HV_CHECK(r->params != NULL, "parameters read back: %s", hv_error_detail());
    const size_t pl = (size_t)(2 * R * CL);
    r->comp = malloc(pl * sizeof(float));
    r->seg = malloc(pl * sizeof(float));
    HV_CHECK_OK(hv_model_gan_infer(m, &b, r->comp, r->seg, r->h));
done:
    hv_model_gan_free(m);
    gan_batch_free(&b);
}

static void test_gan(hv_nn_backend *ref, int dev_ops)
{
    hv_nn_backend *dev = NULL;
    HV_CHECK_OK(fake_device_create(&dev, NULL, dev_ops));
    gan_out a, d;
    gan_run(ref, &a);
    gan_run(dev, &d);
    fake_dev *fd = fake_device_state(dev);
    printf("# gan, fake device ops %d: %llu kernels, %llu adam steps, %llu copies in, %llu out\n",
           dev_ops, (unsigned long long)fd->n_kernels, (unsigned long long)fd->n_adam,
           (unsigned long long)fd->n_copy_in, (unsigned long long)fd->n_copy_out);
    HV_CHECK(fd->n_adam > 0, "Adam did not run on the device");
    if (dev_ops < 0) HV_CHECK(fd->n_kernels > 0, "no kernel ran on the device");
    HV_CHECK(a.reduced > 0 && a.reduced == d.reduced, "reducer calls %d (host) vs %d (device)",
             a.reduced, d.reduced);
    for (int s = 0; s < STEPS; s++) {
        const double *x = &a.ls[s].g_total, *y = &d.ls[s].g_total;
        HV_CHECK(a.ls[s].g_total == d.ls[s].g_total && a.ls[s].d1 == d.ls[s].d1 &&
                     a.ls[s].d2 == d.ls[s].d2 && a.ls[s].d3 == d.ls[s].d3 &&
                     a.ls[s].g_l1 == d.ls[s].g_l1,
                 "step %d losses: host G %.9g D %.9g %.9g %.9g, device G %.9g D %.9g %.9g %.9g", s,
                 *x, a.ls[s].d1, a.ls[s].d2, a.ls[s].d3, *y, d.ls[s].d1, d.ls[s].d2, d.ls[s].d3);
    }
    HV_CHECK(a.params && d.params && a.np == d.np, "parameter counts %zu vs %zu", a.np, d.np);
    if (a.params && d.params && a.np == d.np) {
        double e = max_abs_diff(a.params, d.params, a.np);
        printf("# gan: %zu parameters after %d steps, max |host - device| %g\n", a.np, STEPS, e);
        HV_CHECK(e == 0, "parameters differ after %d steps: max %g", STEPS, e);
    }
    if (a.comp && d.comp && a.seg && d.seg) {
        const size_t pl = (size_t)(2 * R * CL);
        double ec = max_abs_diff(a.comp, d.comp, pl), es = max_abs_diff(a.seg, d.seg, pl),
               eh = max_abs_diff(a.h, d.h, 2);
        printf("# gan inference: max |host - device| composite %g, fine seg %g, heights %g\n", ec,
               es, eh);
        HV_CHECK(ec == 0 && es == 0 && eh == 0, "inference differs: composite %g seg %g heights %g",
                 ec, es, eh);
    }
    gan_out *o[2] = {&a, &d};
    for (int i = 0; i < 2; i++) free(o[i]->params), free(o[i]->comp), free(o[i]->seg);
    hv_nn_backend_free(dev);
}

/* The classifier's training step (width 2, 2 slices of 256 x 256). */
static void cls_run(hv_nn_backend *be, double loss[STEPS], float d[2], float **params, size_t *np,
                    int *reduced)
{
    hv_rng rng;
    hv_rng_seed(&rng, 5, 0);
    hv_train_cls *m = NULL;
    *params = NULL;
    const size_t px = 256 * 256;
    float *x = malloc(2 * px * sizeof(float)), y[2] = {0.0f, 1.0f};
    for (size_t k = 0; x && k < 2 * px; k++)
        x[k] = (float)sin(0.001 * (double)k) * (k >= px ? 0.5f : 1.0f);
    HV_CHECK_OK(hv_train_cls_create(2, 2, 2, 2, 1e-3, 0.9, 0.999, &rng, be, &m));
    if (!m || !x) goto done;
    hv_train_cls_set_reducer(m, one_rank_sum, reduced);
    for (int s = 0; s < STEPS; s++) HV_CHECK_OK(hv_train_cls_step(m, x, y, &loss[s], d));
    hv_nn_params *ps = hv_train_cls_params(m);
    *params = params_copy(&ps, 1, np);
done:
    hv_train_cls_free(m);
    free(x);
}

static void test_cls(hv_nn_backend *ref, int dev_ops)
{
    hv_nn_backend *dev = NULL;
    HV_CHECK_OK(fake_device_create(&dev, NULL, dev_ops));
    double la[STEPS] = {0}, ld[STEPS] = {0};
    float da[2] = {0}, dd[2] = {0}, *pa = NULL, *pd = NULL;
    size_t na = 0, nd = 0;
    int ra = 0, rd = 0;
    cls_run(ref, la, da, &pa, &na, &ra);
    cls_run(dev, ld, dd, &pd, &nd, &rd);
    HV_CHECK(fake_device_state(dev)->n_adam > 0, "Adam did not run on the device");
    HV_CHECK(ra > 0 && ra == rd, "reducer calls %d (host) vs %d (device)", ra, rd);
    for (int s = 0; s < STEPS; s++)
        HV_CHECK(la[s] == ld[s], "classifier step %d: loss host %.9g, device %.9g", s, la[s], ld[s]);
    HV_CHECK(da[0] == dd[0] && da[1] == dd[1], "classifier logit differences differ");
    HV_CHECK(pa && pd && na == nd, "classifier parameters not read back");
    if (pa && pd && na == nd) {
        double e = max_abs_diff(pa, pd, na);
        printf("# classifier, fake device ops %d: %zu parameters, max |host - device| %g\n",
               dev_ops, na, e);
        HV_CHECK(e == 0, "classifier parameters differ: max %g", e);
    }
    free(pa), free(pd);
    hv_nn_backend_free(dev);
}

int main(int argc, char **argv)
{
    const char *part = argc > 1 ? argv[1] : "gan";
    hv_nn_backend *ref = NULL;
    HV_REQUIRE(hv_nn_backend_create_ref(&ref) == HV_OK, "reference backend");
    if (!strcmp(part, "gan")) test_gan(ref, -1);
    else if (!strcmp(part, "gan_staged")) test_gan(ref, 0);
    else if (!strcmp(part, "cls")) test_cls(ref, -1);
    else HV_CHECK(0, "unknown part '%s' (gan, gan_staged, cls)", part);
    hv_nn_backend_free(ref);
    return hv_test_done();
}
