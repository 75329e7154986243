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
 *
 * Built a second time as tests/gpu's test_gpu_model with HV_TEST_CUDA: the
 * device is then the CUDA backend on GPU 0 (HV_CUDA_TF32=0: plain fp32
 * convolutions; its native kernels plus host staging for the ops it
 * declines), exit 77 where no GPU is usable. cuDNN and the GPU kernels sum
 * in other orders than the reference loops, so equality becomes bounds:
 * each step's losses within 1e-4 relative; the parameters after the steps
 * within 1e-2 of the distance they travelled from their initial values
 * (||p_gpu - p_ref|| / ||p_ref - p_0||: Adam's first steps move each weight
 * by about lr * sign(g), so a gradient of rounding-noise size whose sign
 * differs moves a weight the other way; the bound says the trajectories
 * agree, not that every weight does); inference outputs (in [0, 1]) within
 * 1e-3 absolute and heights within 1e-3 relative.
 */
#include "hv_test.h"
#include "gan_batch.h"
#include "hv/train.h"
#ifdef HV_TEST_CUDA
#include "hv/gpu.h"
#else
#include "../nn/fake_device.h"
#endif

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
    float *params, *params0, *comp, *seg, h[2];
    size_t np, np0;
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
    hv_nn_params *sets[4];
    for (int k = 0; k < 4; k++) sets[k] = hv_model_gan_params(m, k);
    r->params0 = params_copy(sets, 4, &r->np0);
    for (int s = 0; s < STEPS; s++) HV_CHECK_OK(hv_model_gan_step(m, &b, &r->ls[s]));
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

/* The device under test: the fake device (dev_ops as fake_device_create)
 * or, in the CUDA build, the CUDA backend on GPU 0. */
static hv_nn_backend *device_create(int dev_ops)
{
    hv_nn_backend *dev = NULL;
#ifdef HV_TEST_CUDA
    (void)dev_ops;
    HV_CHECK_OK(hv_gpu_backend_create(0, &dev));
#else
    HV_CHECK_OK(fake_device_create(&dev, NULL, dev_ops));
#endif
    return dev;
}

#ifdef HV_TEST_CUDA
#define LOSS_REL 1e-4 /* per step, relative */
#define TRAJ_REL 1e-2 /* ||p_dev - p_ref|| / ||p_ref - p_0|| */
#define OUT_ABS 1e-3  /* composite and segmentation, in [0, 1] */
#define H_REL 1e-3    /* predicted heights, relative */
#else
#define LOSS_REL 0.0
#define TRAJ_REL 0.0
#define OUT_ABS 0.0
#define H_REL 0.0
#endif

/* |a - b| <= rel * max(|a|, |b|); NaN never passes. */
static int close_rel(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

/* The parameters on the device against the reference: equal for the fake
 * device, within TRAJ_REL of the distance travelled for the GPU. */
static void check_params(const char *what, const float *pr, const float *p0, const float *pd,
                         size_t n)
{
    double e = max_abs_diff(pr, pd, n), dd = 0, dt = 0;
    for (size_t i = 0; i < n; i++) {
        double a = (double)pd[i] - (double)pr[i], b = (double)pr[i] - (double)p0[i];
        dd += a * a, dt += b * b;
    }
    const double rel = dt > 0 ? sqrt(dd / dt) : (dd > 0 ? INFINITY : 0);
    printf("# %s: %zu parameters after %d steps, max |ref - device| %g, "
           "||ref - device|| / ||ref - initial|| %g\n", what, n, STEPS, e, rel);
    HV_CHECK(dt > 0, "%s: the steps did not change the parameters", what);
    if (TRAJ_REL == 0) HV_CHECK(e == 0, "%s: parameters differ after %d steps: max %g", what, STEPS, e);
    else HV_CHECK(rel <= TRAJ_REL, "%s: parameters after %d steps differ by %g of the distance travelled "
                  "(bound %g)", what, STEPS, rel, TRAJ_REL);
}

static void test_gan(hv_nn_backend *ref, int dev_ops)
{
    hv_nn_backend *dev = device_create(dev_ops);
    if (!dev) return;
    gan_out a, d;
    gan_run(ref, &a);
    gan_run(dev, &d);
#ifndef HV_TEST_CUDA
    fake_dev *fd = fake_device_state(dev);
    printf("# gan, fake device ops %d: %llu kernels, %llu adam steps, %llu copies in, %llu out\n",
           dev_ops, (unsigned long long)fd->n_kernels, (unsigned long long)fd->n_adam,
           (unsigned long long)fd->n_copy_in, (unsigned long long)fd->n_copy_out);
    HV_CHECK(fd->n_adam > 0, "Adam did not run on the device");
    if (dev_ops < 0) HV_CHECK(fd->n_kernels > 0, "no kernel ran on the device");
#endif
    HV_CHECK(a.reduced > 0 && a.reduced == d.reduced, "reducer calls %d (host) vs %d (device)",
             a.reduced, d.reduced);
    for (int s = 0; s < STEPS; s++) {
        const hv_model_gan_losses *x = &a.ls[s], *y = &d.ls[s];
        printf("# step %d: G %.9g / %.9g, D %.9g %.9g %.9g / %.9g %.9g %.9g (ref / device)\n", s,
               x->g_total, y->g_total, x->d1, x->d2, x->d3, y->d1, y->d2, y->d3);
        HV_CHECK(close_rel(x->g_total, y->g_total, LOSS_REL) && close_rel(x->d1, y->d1, LOSS_REL) &&
                     close_rel(x->d2, y->d2, LOSS_REL) && close_rel(x->d3, y->d3, LOSS_REL) &&
                     close_rel(x->g_l1, y->g_l1, LOSS_REL),
                 "step %d losses: ref G %.9g D %.9g %.9g %.9g, device G %.9g D %.9g %.9g %.9g", s,
                 x->g_total, x->d1, x->d2, x->d3, y->g_total, y->d1, y->d2, y->d3);
    }
    HV_CHECK(a.params && d.params && a.params0 && a.np == d.np && a.np0 == a.np,
             "parameter counts %zu vs %zu", a.np, d.np);
    if (a.params && d.params && a.params0 && a.np == d.np && a.np0 == a.np)
        check_params("gan", a.params, a.params0, d.params, a.np);
    if (a.comp && d.comp && a.seg && d.seg) {
        const size_t pl = (size_t)(2 * R * CL);
        double ec = max_abs_diff(a.comp, d.comp, pl), es = max_abs_diff(a.seg, d.seg, pl);
        int hok = close_rel(a.h[0], d.h[0], H_REL) && close_rel(a.h[1], d.h[1], H_REL);
        printf("# gan inference: max |ref - device| composite %g, fine seg %g, heights %g %g / %g %g\n",
               ec, es, a.h[0], a.h[1], d.h[0], d.h[1]);
        HV_CHECK(ec <= OUT_ABS && es <= OUT_ABS && hok,
                 "inference differs: composite %g seg %g heights %g %g vs %g %g", ec, es, a.h[0],
                 a.h[1], d.h[0], d.h[1]);
    }
    gan_out *o[2] = {&a, &d};
    for (int i = 0; i < 2; i++)
        free(o[i]->params), free(o[i]->params0), free(o[i]->comp), free(o[i]->seg);
    hv_nn_backend_free(dev);
}

/* The classifier's training step (width 2, 2 slices of 256 x 256). */
static void cls_run(hv_nn_backend *be, double loss[STEPS], float d[2], float **params,
                    float **params0, size_t *np, int *reduced)
{
    hv_rng rng;
    hv_rng_seed(&rng, 5, 0);
    hv_train_cls *m = NULL;
    size_t np0 = 0;
    *params = *params0 = NULL;
    const size_t px = 256 * 256;
    float *x = malloc(2 * px * sizeof(float)), y[2] = {0.0f, 1.0f};
    for (size_t k = 0; x && k < 2 * px; k++)
        x[k] = (float)sin(0.001 * (double)k) * (k >= px ? 0.5f : 1.0f);
    HV_CHECK_OK(hv_train_cls_create(2, 2, 2, 2, 1e-3, 0.9, 0.999, &rng, be, &m));
    if (!m || !x) goto done;
    hv_train_cls_set_reducer(m, one_rank_sum, reduced);
    hv_nn_params *ps = hv_train_cls_params(m);
    *params0 = params_copy(&ps, 1, &np0);
    for (int s = 0; s < STEPS; s++) HV_CHECK_OK(hv_train_cls_step(m, x, y, &loss[s], d));
    *params = params_copy(&ps, 1, np);
    HV_CHECK(np0 == *np, "classifier parameter count changed: %zu -> %zu", np0, *np);
done:
    hv_train_cls_free(m);
    free(x);
}

static void test_cls(hv_nn_backend *ref, int dev_ops)
{
    hv_nn_backend *dev = device_create(dev_ops);
    if (!dev) return;
    double la[STEPS] = {0}, ld[STEPS] = {0};
    float da[2] = {0}, dd[2] = {0}, *pa = NULL, *pd = NULL, *p0a = NULL, *p0d = NULL;
    size_t na = 0, nd = 0;
    int ra = 0, rd = 0;
    cls_run(ref, la, da, &pa, &p0a, &na, &ra);
    cls_run(dev, ld, dd, &pd, &p0d, &nd, &rd);
#ifndef HV_TEST_CUDA
    HV_CHECK(fake_device_state(dev)->n_adam > 0, "Adam did not run on the device");
#endif
    HV_CHECK(ra > 0 && ra == rd, "reducer calls %d (host) vs %d (device)", ra, rd);
    for (int s = 0; s < STEPS; s++) {
        printf("# classifier step %d: loss %.9g / %.9g (ref / device)\n", s, la[s], ld[s]);
        HV_CHECK(close_rel(la[s], ld[s], LOSS_REL), "classifier step %d: loss ref %.9g, device %.9g",
                 s, la[s], ld[s]);
    }
    /* logit differences: near 0 for an untrained net, so relative to 1 */
    HV_CHECK(fabs(da[0] - dd[0]) <= OUT_ABS * fmax(1, fabs(da[0])) &&
                 fabs(da[1] - dd[1]) <= OUT_ABS * fmax(1, fabs(da[1])),
             "classifier logit differences: ref %g %g, device %g %g", da[0], da[1], dd[0], dd[1]);
    HV_CHECK(pa && pd && p0a && na == nd, "classifier parameters not read back");
    if (pa && pd && p0a && na == nd) check_params("classifier", pa, p0a, pd, na);
    free(pa), free(pd), free(p0a), free(p0d);
    hv_nn_backend_free(dev);
}

int main(int argc, char **argv)
{
    const char *part = argc > 1 ? argv[1] : "gan";
    hv_nn_backend *ref = NULL;
#ifdef HV_TEST_CUDA
    setenv("HV_CUDA_TF32", "0", 1); /* plain fp32 convolutions */
    hv_nn_backend *probe = NULL;
    if (hv_gpu_backend_create(0, &probe) != HV_OK) {
        printf("# %s\n", hv_error_detail());
        return hv_test_skip("no usable CUDA device: the models on the cuda backend need one");
    }
    hv_nn_backend_free(probe);
#endif
    HV_REQUIRE(hv_nn_backend_create_ref(&ref) == HV_OK, "reference backend");
    if (!strcmp(part, "gan")) test_gan(ref, -1);
    else if (!strcmp(part, "gan_staged")) test_gan(ref, 0);
    else if (!strcmp(part, "cls")) test_cls(ref, -1);
    else HV_CHECK(0, "unknown part '%s' (gan, gan_staged, cls)", part);
    hv_nn_backend_free(ref);
    return hv_test_done();
}
