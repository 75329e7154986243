/*
 * bench/cam/cam.c: seconds per vertebra of the fracture classifier's
 * Grad-CAM++ (issue 13): hv_model_cam_crop on a 64 x 256 x 256 crop (30
 * slices of 256 x 256 in batches of --batch: forward, one backward per
 * batch, the maps, the resize, the volume), "cpu" backend, at the widths
 * given (default 64 = MONAI's SEResNet50, and 16), against PyTorch running
 * the same work (scripts/bench_cam_torch.py, two ways of taking the
 * gradient, see there) in the same run, printed as ratios.
 *
 * The weights are random (a saved, freshly initialised classifier): the
 * time does not depend on them. The crop's CT is seeded noise in [0, 255].
 *
 * Usage: gradcam [--threads N] [--reps N] [--batch N] [--no-torch] [--width W]...
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/core.h"
#include "hv/model.h"
#include "hv/nn.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per vertebra at width w; -1 on error. */
static double ours(int w, int batch, int reps, hv_spine_crop *crop)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/bench_cam_w%d_%ld.h5", w, (long)getpid());
    hv_nn_params *ps = NULL;
    hv_nn_backend *be = NULL;
    hv_model_cam *c = NULL;
    double med = -1, *t = calloc((size_t)reps, sizeof *t);
    hv_rng rng;
    hv_rng_seed(&rng, (uint64_t)w, 0);
    hv_status st;
    if (!t || (st = hv_nn_params_create(&ps)) || (st = hv_model_classifier_params(ps, w, &rng)) ||
        (st = hv_model_classifier_save_file(ps, w, 1, "bench", path)) ||
        (st = hv_nn_backend_create_cpu(&be)) || (st = hv_model_cam_open(path, batch, be, &c))) {
        fprintf(stderr, "cam: width %d: %s\n", w, hv_error_detail());
        goto done;
    }
    hv_model_cam_result r;
    if (hv_model_cam_crop(c, crop, &r)) { /* warm-up */
        fprintf(stderr, "cam: %s\n", hv_error_detail());
        goto done;
    }
    hv_model_cam_result_free(&r);
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        if (hv_model_cam_crop(c, crop, &r)) goto done;
        t[i] = now() - t0;
        hv_model_cam_result_free(&r);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
done:
    hv_model_cam_free(c);
    hv_nn_backend_free(be);
    hv_nn_params_free(ps);
    remove(path);
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3, batch = 5, torch = 1, nw = 0, widths[8];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--width") && i + 1 < argc && nw < 8) widths[nw++] = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--reps N] [--batch N] [--no-torch] "
                    "[--width W]...\n", argv[0]);
            return 2;
        }
    }
    if (!nw) {
        widths[nw++] = 64;
        widths[nw++] = 16;
    }
    if (threads < 1 || reps < 1 || batch < 1) return 2;
    omp_set_num_threads(threads);
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("bench cam: threads %d, reps %d (median), batch %d, OMP_WAIT_POLICY %s\n", threads, reps,
           batch, wp ? wp : "(default)");
    hv_spine_crop crop = {0};
    double aff[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
    if (hv_vol_create(&crop.ct, (int64_t[]){64, 256, 256}, HV_DTYPE_F32, aff)) return 1;
    hv_rng rng;
    hv_rng_seed(&rng, 99, 0);
    float *ct = crop.ct->data;
    for (size_t q = 0; q < crop.ct->nvox; q++) ct[q] = (float)(255.0 * hv_rng_uniform(&rng));
    crop.label = 20;
    for (int k = 0; k < nw; k++) {
        double s = ours(widths[k], batch, reps, &crop);
        double tf = 0, tm = 0;
        if (torch) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/bench_cam_torch.py %d %d %d %d "
                     "2>/dev/null", HV_SOURCE_DIR, threads, reps, batch, widths[k]);
            FILE *p = popen(cmd, "r");
            char line[256];
            while (p && fgets(line, sizeof line, p)) {
                int w;
                char mode[16];
                double v;
                if (sscanf(line, "torch width %d mode %15s seconds_per_vertebra %lf", &w, mode, &v) == 3) {
                    if (!strcmp(mode, "full")) tf = v;
                    else tm = v;
                }
            }
            if (p) pclose(p);
        }
        printf("width %3d: ours %.3f s/vertebra", widths[k], s);
        if (tf > 0 && s > 0)
            printf(", torch full backward %.3f s (ours %.2fx faster), torch backward to the target "
                   "only %.3f s (ours %.2fx)", tf, tf / s, tm, tm / s);
        else if (torch)
            printf(", torch unavailable");
        printf("\n");
        fflush(stdout);
    }
    hv_vol_free(crop.ct);
    return 0;
}
