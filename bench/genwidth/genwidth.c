/*
 * bench/genwidth: seconds per 256x256 slice of the generator's inference
 * forward (hv_model_generator_build, "cpu" backend) at each width (cnum)
 * given, at batch 1 and 8, median of --reps runs after one warm-up, with
 * the thread count given. It exists to size the shipped phantom models
 * (models/README.md): a vertebra's GAN synthesis is about 30 slices x 3
 * steps (upper, lower neighbour, target) x 2 planes of these forwards, so
 * seconds per slice x 180 is the generator's share of one vertebra.
 *
 * Usage: build/bench/generator_width [--threads N] [--reps N] CNUM...   (default: 4 8 16)
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/core.h"
#include "hv/model.h"
#include "hv/nn.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median seconds per slice of the forward at (cnum, batch); < 0 on error */
static double per_slice(int cnum, int batch, int reps)
{
    hv_nn_params *ps = NULL;
    hv_nn_backend *be = NULL;
    hv_nn_graph *g = NULL;
    hv_model_generator_io io;
    hv_rng rng;
    double res = -1, *t = calloc((size_t)reps, sizeof *t);
    const size_t n = (size_t)batch * 256 * 256;
    float *x = malloc(n * sizeof *x);
    if (!t || !x) goto done;
    hv_rng_seed(&rng, 1, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(hv_rng_uniform(&rng) * 2 - 1);
    if (hv_nn_params_create(&ps) || hv_model_generator_params(ps, cnum, &rng) ||
        hv_nn_backend_create_cpu(&be) || hv_nn_graph_create(&g) ||
        hv_model_generator_build(g, ps, cnum, batch, 256, 256, &io) || hv_nn_graph_plan(g, be, 0))
        goto done;
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.9f ? 1.0f : 0.0f; /* a mask */
    if (hv_nn_tensor_set(io.mask, x, n) || hv_nn_tensor_set(io.x, x, n) ||
        hv_nn_tensor_set(io.cam, x, n) || hv_nn_tensor_set(io.ratio, x, n) ||
        hv_nn_graph_forward(g))
        goto done;
    for (int r = 0; r < reps; r++) {
        double t0 = hv_time_now();
        if (hv_nn_graph_forward(g)) goto done;
        t[r] = (hv_time_now() - t0) / batch;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    res = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
done:
    if (res < 0) fprintf(stderr, "genwidth: cnum %d batch %d: %s\n", cnum, batch, hv_error_detail());
    hv_nn_graph_free(g);
    hv_nn_backend_free(be);
    hv_nn_params_free(ps);
    free(t);
    free(x);
    return res;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5, widths[16], nw = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (nw < 16 && atoi(argv[i]) >= 2 && atoi(argv[i]) % 2 == 0) widths[nw++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--reps N] CNUM...\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (!nw) widths[nw++] = 4, widths[nw++] = 8, widths[nw++] = 16;
    omp_set_num_threads(threads);
    printf("bench/genwidth: generator inference, 256x256, %d thread(s), median of %d\n", threads, reps);
    printf("cnum  batch  s/slice  s/vertebra (x180: 30 slices x 3 steps x 2 planes)\n");
    int rc = 0;
    for (int k = 0; k < nw; k++)
        for (int b = 1; b <= 8; b += 7) {
            double s = per_slice(widths[k], b, reps);
            if (s < 0) rc = 1;
            else printf("%4d  %5d  %7.4f  %6.2f\n", widths[k], b, s, s * 180);
        }
    return rc;
}
