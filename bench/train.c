/*
 * bench/train.c: seconds per HealthiVert-GAN training step (hv_model_gan_step:
 * G forward, composites, generator-side losses, D1-D3 updates, G update, four
 * Adam steps) at batch 4 on 256x256 slices, against PyTorch doing the same
 * step in the same run.
 *
 * Lines printed, each for the reference widths (cnum 16, ndf 64) and a small
 * width (cnum 4, ndf 8):
 *   ours     median seconds per step over --reps steps after one warm-up step
 *   pytorch  the same from scripts/bench_train_torch.py (same thread count,
 *            same environment; the generator of make_generator_fixture.py,
 *            pix2pix discriminators, the same loss terms and Adam), and the
 *            ratio "ours is R x faster"; or a line saying the peer is missing
 *            when the interpreter cannot import torch. --python PATH (up to
 *            4 times) names the interpreters to measure, each printed with
 *            its torch version (default /usr/bin/python3, Debian's
 *            python3-torch; a venv with the current PyPI release is the
 *            other peer issue 11 asks for).
 * And a per-op profile of one more step at the reference widths, summed over the
 * step's eight graphs (G, losses, each D's fake and real graph), with the
 * time outside any graph op (Adam, the gradient packing, host composites and
 * copies) as "outside ops".
 *
 * The batch is synthetic (timing does not depend on the values): a 40-row
 * band at rows 108..147, a 30-row target at 113..142, random CT and CAM.
 *
 * Usage: train [--threads N] [--reps N] [--no-torch] [--no-small] [--python PATH]...
 * OpenMP wait policy: from the environment, printed (see bench/generator.c).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/core.h"
#include "hv/model.h"
#include "hv/nn.h"

#include "../src/model/gan_internal.h"

void openblas_set_num_threads(int num_threads);

#define NB 4
#define ROWS 256
#define COLS 256

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The synthetic batch; arrays owned by the caller's bench_batch. */
typedef struct bench_batch {
    hv_model_batch b;
    float *planes[6], ratio[NB], height[NB];
    int64_t x1[NB], x2[NB], band_lo[NB];
} bench_batch;

static int batch_make(bench_batch *bb)
{
    const size_t pl = (size_t)NB * ROWS * COLS;
    memset(bb, 0, sizeof *bb);
    for (int i = 0; i < 6; i++)
        if (!(bb->planes[i] = calloc(pl, sizeof(float)))) return 0;
    float *x = bb->planes[0], *mask = bb->planes[1], *cam = bb->planes[2], *real = bb->planes[3];
    float *rmask = bb->planes[4], *normal = bb->planes[5];
    hv_rng r;
    hv_rng_seed(&r, 5, 0);
    for (size_t k = 0; k < pl; k++) {
        int row = (int)((k / COLS) % ROWS), col = (int)(k % COLS);
        mask[k] = (row >= 108 && row < 148) ? 1.0f : 0.0f;
        real[k] = (float)hv_rng_range(&r, -1, 1);
        x[k] = mask[k] ? -1.0f : real[k];
        cam[k] = (float)hv_rng_uniform(&r);
        rmask[k] = (row >= 113 && row < 143 && col >= 90 && col < 166) ? 1.0f : 0.0f;
        normal[k] = (((row >= 60 && row < 100) || (row >= 150 && row < 190)) && col >= 90 && col < 166)
                        ? 1.0f : 0.0f;
    }
    for (int i = 0; i < NB; i++) {
        bb->ratio[i] = 0.4f;
        bb->x1[i] = 113;
        bb->x2[i] = 143;
        bb->band_lo[i] = 108;
        bb->height[i] = 30.0f;
    }
    hv_model_batch *b = &bb->b;
    b->n = NB;
    b->rows = ROWS;
    b->cols = COLS;
    b->x = x;
    b->mask = mask;
    b->cam = cam;
    b->ratio = bb->ratio;
    b->real = real;
    b->real_mask = rmask;
    b->normal = normal;
    b->x1 = bb->x1;
    b->x2 = bb->x2;
    b->band_lo = bb->band_lo;
    b->height = bb->height;
    b->band_rows = 40;
    return 1;
}

static void batch_free(bench_batch *bb)
{
    for (int i = 0; i < 6; i++) free(bb->planes[i]);
}

/* Per-op sums over the step's graphs, parsed from hv_nn_graph_profile_report. */
typedef struct op_row {
    char name[32];
    long long fn, bn;
    double fs, bs;
} op_row;

static int add_report(op_row *rows, int nrows, const char *rep)
{
    char line[256];
    const char *p = rep;
    while (*p) {
        size_t l = strcspn(p, "\n");
        if (l >= sizeof line) l = sizeof line - 1;
        memcpy(line, p, l);
        line[l] = 0;
        p += l + (p[l] == '\n');
        op_row r;
        memset(&r, 0, sizeof r);
        int got = sscanf(line, "%31s %lld %lf backward %lld %lf", r.name, &r.fn, &r.fs, &r.bn, &r.bs);
        if (got < 3) continue;
        int k;
        for (k = 0; k < nrows; k++)
            if (!strcmp(rows[k].name, r.name)) break;
        if (k == nrows) {
            if (nrows == 64) continue;
            rows[nrows++] = (op_row){.fn = 0};
            snprintf(rows[k].name, sizeof rows[k].name, "%s", r.name);
        }
        rows[k].fn += r.fn;
        rows[k].fs += r.fs;
        rows[k].bn += r.bn;
        rows[k].bs += r.bs;
    }
    return nrows;
}

static int cmp_row(const void *a, const void *b)
{
    const op_row *x = a, *y = b;
    double u = x->fs + x->bs, v = y->fs + y->bs;
    return (u < v) - (u > v);
}

/* Median seconds per step; with profile, prints the per-op table of one more
 * step. Returns -1 on failure (message on stderr). */
static double bench_ours(int cnum, int ndf, int reps, int profile)
{
    hv_nn_backend *be = NULL;
    hv_model_gan *m = NULL;
    bench_batch bb;
    double res = -1, t[32];
    hv_rng rng;
    hv_rng_seed(&rng, 2025, 0);
    hv_model_gan_opts o;
    hv_model_gan_opts_default(&o);
    o.cnum = cnum;
    o.ndf = ndf;
    o.batch_local = o.batch_global = NB;
    if (!batch_make(&bb)) {
        fprintf(stderr, "train bench: out of memory\n");
        goto done;
    }
    if (hv_nn_backend_create_cpu(&be) || hv_model_gan_create(&o, be, &rng, &m)) goto fail;
    hv_model_gan_losses ls;
    if (hv_model_gan_step(m, &bb.b, &ls)) goto fail; /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = hv_time_now();
        if (hv_model_gan_step(m, &bb.b, &ls)) goto fail;
        t[r] = hv_time_now() - t0;
    }
    res = median(t, reps);
    if (profile) {
        hv_nn_graph *gs[8];
        const char *names[8];
        int ng = hv__gan_graphs(m, gs, names, 8);
        for (int i = 0; i < ng; i++) hv_nn_graph_set_profiling(gs[i], 1);
        double t0 = hv_time_now();
        if (hv_model_gan_step(m, &bb.b, &ls)) goto fail;
        double step = hv_time_now() - t0;
        static op_row rows[64];
        int nrows = 0;
        static char rep[4096];
        double per_graph[8];
        for (int i = 0; i < ng; i++) {
            hv_nn_graph_profile_report(gs[i], rep, sizeof rep);
            op_row one[64];
            int n1 = add_report(one, 0, rep);
            per_graph[i] = 0;
            for (int k = 0; k < n1; k++) per_graph[i] += one[k].fs + one[k].bs;
            nrows = add_report(rows, nrows, rep);
            hv_nn_graph_set_profiling(gs[i], 0);
        }
        qsort(rows, (size_t)nrows, sizeof rows[0], cmp_row);
        double sum = 0;
        printf("profile of one step, cnum %d ndf %d batch %d: %.3f s (op, forward calls, s, "
               "backward calls, s; all 8 graphs)\n", cnum, ndf, NB, step);
        for (int k = 0; k < nrows; k++) {
            printf("  %-14s %5lld %8.4f  %5lld %8.4f  %5.1f %%\n", rows[k].name, rows[k].fn,
                   rows[k].fs, rows[k].bn, rows[k].bs, 100.0 * (rows[k].fs + rows[k].bs) / step);
            sum += rows[k].fs + rows[k].bs;
        }
        printf("  %-14s %30.4f  %5.1f %%  (Adam, gradient packing, composites, copies)\n",
               "outside ops", step - sum, 100.0 * (step - sum) / step);
        printf("  per graph:");
        for (int i = 0; i < ng; i++) printf(" %s %.3f;", names[i], per_graph[i]);
        printf("\n");
    }
    goto done;
fail:
    fprintf(stderr, "train bench (cnum %d, ndf %d): %s\n", cnum, ndf, hv_error_detail());
    res = -1;
done:
    hv_model_gan_free(m);
    hv_nn_backend_free(be);
    batch_free(&bb);
    return res;
}

/* Seconds per step of the PyTorch peer run by interpreter py; 0 when it or
 * torch is missing. */
static double bench_torch(const char *py, int threads, int reps, int cnum, int ndf)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s/scripts/bench_train_torch.py %d %d %d %d %d 2>/dev/null", py,
             HV_SOURCE_DIR, threads, reps, cnum, ndf, NB);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[256];
    double s = 0;
    while (fgets(line, sizeof line, p)) {
        int c, d, b;
        double v;
        if (sscanf(line, "torch train cnum %d ndf %d batch %d seconds_per_step %lf", &c, &d, &b, &v) == 4 &&
            c == cnum && d == ndf && b == NB)
            s = v;
    }
    pclose(p);
    return s;
}

/* The torch version interpreter py imports into ver ("" when it cannot). */
static void torch_version(const char *py, char *ver, size_t n)
{
    char cmd[1200];
    ver[0] = 0;
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch; print(torch.__version__)' 2>/dev/null", py);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(ver, (int)n, p)) ver[strcspn(ver, "\n")] = 0;
    else ver[0] = 0;
    pclose(p);
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3, torch = 1, small = 1, npy = 0;
    const char *pys[4];
    char vers[4][64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch"))
            torch = 0;
        else if (!strcmp(argv[i], "--no-small"))
            small = 0;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc && npy < 4 &&
                 strlen(argv[i + 1]) < 1000 && !strchr(argv[i + 1], '\''))
            pys[npy++] = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--reps N] [--no-torch] [--no-small] "
                    "[--python PATH (at most 4)]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || reps > 31) {
        fprintf(stderr, "bad --threads or --reps (1..31)\n");
        return 2;
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    printf("healthivert %s (%s), bench/train: hv_model_gan_step, batch %d, %dx%d, %d threads, "
           "median of %d steps after 1 warm-up, OMP_WAIT_POLICY=%s\n",
           hv_version(), hv_git_revision(), NB, ROWS, COLS, threads, reps,
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset (default)");
    if (!npy) pys[npy++] = "/usr/bin/python3";
    int ok = 0;
    for (int k = 0; torch && k < npy; k++) {
        torch_version(pys[k], vers[k], sizeof vers[k]);
        if (vers[k][0]) {
            printf("pytorch  peer %d: %s, torch %s\n", k + 1, pys[k], vers[k]);
            ok = 1;
        } else {
            printf("pytorch  peer %d missing: %s cannot import torch; no ratio\n", k + 1, pys[k]);
        }
    }
    torch = torch && ok;
    const int widths[2][2] = {{16, 64}, {4, 8}};
    for (int w = 0; w < (small ? 2 : 1); w++) {
        const int cnum = widths[w][0], ndf = widths[w][1];
        double ts[4] = {0, 0, 0, 0};
        for (int k = 0; torch && k < npy; k++)
            if (vers[k][0]) ts[k] = bench_torch(pys[k], threads, reps, cnum, ndf);
        double ours = bench_ours(cnum, ndf, reps, w == 0);
        if (ours < 0) return 1;
        printf("ours     cnum %2d ndf %2d: %.3f s/step\n", cnum, ndf, ours);
        for (int k = 0; torch && k < npy; k++) {
            if (!vers[k][0]) continue;
            if (ts[k] > 0)
                printf("pytorch  cnum %2d ndf %2d: %.3f s/step (torch %s); ours is %.2fx faster\n",
                       cnum, ndf, ts[k], vers[k], ts[k] / ours);
            else
                printf("pytorch  cnum %2d ndf %2d: the peer script failed under %s (run it by hand "
                       "to see why)\n", cnum, ndf, pys[k]);
        }
        fflush(stdout);
    }
    return 0;
}
