/*
 * bench/synthesis.c: seconds of GAN synthesis (hv_model_synth_vertebra,
 * spec 8) per vertebra, batched (batch 8) against the reference's way (a
 * slice-by-slice loop, batch 1) in the same run.
 *
 *   synthesis [--cnum N] [--reps R] [--coronal] [--no-neighbours] [--precision bf16]
 *
 * --precision bf16 adds a third row: batch 8 on a bf16 backend
 * (synthesis.precision = bf16; a CPU with avx512_bf16 or AMX), and its speed
 * against the fp32 batch-8 row of the same run.
 *
 * The crop is built by hand with the size of a lumbar body at 1 mm: the
 * target 40 LR x 35 AP x 30 rows between two neighbours of the same size,
 * so the sagittal range has 32 slices and the coronal one 28, and every
 * neighbour step runs on every slice (3 x 32 sagittal runs, plus 3 x 28
 * coronal). The generator has seeded random weights (the time does not
 * depend on the values), written to a model file in the current folder's
 * temporary name and removed at the end. One warm-up vertebra per
 * configuration is not timed. Wall and process CPU seconds are printed:
 * on a shared machine the CPU time is the steadier of the two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/model.h"

static hv_spine_crop *make_crop(void)
{
    hv_spine_crop *cr = calloc(1, sizeof *cr);
    const int64_t dim[3] = {64, 256, 256};
    if (!cr || hv_vol_create(&cr->ct, dim, HV_DTYPE_F32, NULL) != HV_OK ||
        hv_vol_create(&cr->labels, dim, HV_DTYPE_U8, NULL) != HV_OK) {
        hv_spine_crop_free(cr);
        return NULL;
    }
    cr->label = 21;
    /* label, rows [k0, k1); all over LR [12, 52), AP [105, 140) */
    const int lv[3][3] = {{20, 144, 174}, {21, 110, 140}, {22, 76, 106}};
    float *ct = cr->ct->data;
    uint8_t *lb = cr->labels->data;
    for (int64_t k = 0; k < 256; k++)
        for (int64_t j = 0; j < 256; j++)
            for (int64_t i = 0; i < 64; i++) {
                size_t q = hv_vol_idx(cr->ct, i, j, k);
                ct[q] = (float)(30 + (3 * i + 5 * j + 7 * k) % 40);
                if (i < 12 || i >= 52 || j < 105 || j >= 140) continue;
                for (int v = 0; v < 3; v++)
                    if (k >= lv[v][1] && k < lv[v][2]) {
                        lb[q] = (uint8_t)lv[v][0];
                        ct[q] = (float)(150 + (3 * i + 5 * j + 7 * k) % 60);
                    }
            }
    return cr;
}

/* Mean wall and CPU seconds per vertebra over reps timed vertebrae (after
 * one untimed), batch `batch` on backend be; *runs the generator runs of
 * one vertebra. 0 on success. */
static int time_config(const char *path, int coronal, int neighbours, int64_t batch, int reps,
                       const hv_nn_params *ps, const hv_spine_crop *cr, hv_nn_backend *be,
                       double *sec, double *cpu, int64_t *runs)
{
    hv_model_synth_opts o;
    hv_model_synth_opts_default(&o);
    o.batch = batch;
    o.neighbours = neighbours;
    hv_model_synth *s = NULL;
    *sec = *cpu = 0;
    if (hv_model_synth_open(path, NULL, &o, be, &s) != HV_OK) {
        fprintf(stderr, "synthesis: open: %s\n", hv_error_detail());
        return 1;
    }
    if (coronal) {
        /* the same weights as a coronal model */
        const char *kc[] = {"plane", "coronal"};
        char cpath[80];
        snprintf(cpath, sizeof cpath, "%s.cor", path);
        hv_model_synth_free(s);
        s = NULL;
        if (hv_nn_checkpoint_save(cpath, ps, NULL, kc, 1) ||
            hv_model_synth_open(path, cpath, &o, be, &s)) {
            fprintf(stderr, "synthesis: open coronal: %s\n", hv_error_detail());
            remove(cpath);
            return 1;
        }
        remove(cpath);
    }
    hv_model_synth_result r;
    for (int k = 0; k <= reps; k++) {
        double t0 = hv_time_now();
        clock_t c0 = clock();
        if (hv_model_synth_vertebra(s, cr, NULL, &r) != HV_OK) {
            fprintf(stderr, "synthesis: %s\n", hv_error_detail());
            hv_model_synth_free(s);
            return 1;
        }
        if (k) {
            *sec += hv_time_now() - t0;
            *cpu += (double)(clock() - c0) / CLOCKS_PER_SEC;
        }
        *runs = r.n_sagittal + r.n_coronal + r.n_neighbour_runs;
        hv_model_synth_result_free(&r);
    }
    *sec /= reps;
    *cpu /= reps;
    hv_model_synth_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    int cnum = 16, reps = 2, coronal = 0, neighbours = 1, bf16 = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--cnum") && a + 1 < argc) cnum = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--reps") && a + 1 < argc) reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--coronal")) coronal = 1;
        else if (!strcmp(argv[a], "--no-neighbours")) neighbours = 0;
        else if (!strcmp(argv[a], "--precision") && a + 1 < argc &&
                 (!strcmp(argv[a + 1], "bf16") || !strcmp(argv[a + 1], "fp32")))
            bf16 = !strcmp(argv[++a], "bf16");
        else {
            fprintf(stderr, "usage: %s [--cnum N] [--reps R] [--coronal] [--no-neighbours] "
                    "[--precision fp32|bf16]\n", argv[0]);
            return 2;
        }
    }
    if (cnum < 2 || cnum % 2 || reps < 1) {
        fprintf(stderr, "synthesis: cnum must be even >= 2, reps >= 1\n");
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "bench-synth-%d.h5", (int)getpid());
    hv_nn_params *ps = NULL;
    hv_nn_backend *be = NULL, *be16 = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 3, 0);
    const char *kv[] = {"plane", "sagittal"};
    hv_spine_crop *cr = make_crop();
    int rc = 1;
    if (!cr || hv_nn_params_create(&ps) || hv_model_generator_params(ps, cnum, &rng) ||
        hv_model_generator_sn_warmup(ps, 2) || hv_nn_checkpoint_save(path, ps, NULL, kv, 1) ||
        hv_nn_backend_create_cpu(&be)) {
        fprintf(stderr, "synthesis: setup failed: %s\n", hv_error_detail());
        goto done;
    }
    if (bf16 && (hv_nn_backend_create_cpu(&be16) || hv_nn_backend_set_precision(be16, HV_NN_BF16))) {
        fprintf(stderr, "synthesis: --precision bf16: %s\n", hv_error_detail());
        goto done;
    }
    printf("bench/synthesis: cnum %d, planes %s, neighbours %s, %d timed vertebrae per batch size\n",
           cnum, coronal ? "sagittal+coronal" : "sagittal", neighbours ? "on" : "off", reps);
    const int64_t batches[3] = {8, 1, 8};
    double sec[3] = {0, 0, 0}, cpu[3] = {0, 0, 0};
    for (int b = 0; b < (bf16 ? 3 : 2); b++) {
        int64_t runs = 0;
        if (time_config(path, coronal, neighbours, batches[b], reps, ps, cr, b == 2 ? be16 : be,
                        &sec[b], &cpu[b], &runs))
            goto done;
        printf("%sbatch %lld: %.2f s per vertebra, %.2f CPU s (%lld generator runs, %.3f s per "
               "slice run)\n", b == 2 ? "bf16 " : "", (long long)batches[b], sec[b], cpu[b],
               (long long)runs, sec[b] / (double)runs);
    }
    printf("batched / slice loop: %.2fx (wall), %.2fx (CPU)\n", sec[1] / sec[0], cpu[1] / cpu[0]);
    if (bf16)
        printf("bf16 / fp32 at batch 8: %.2fx (wall), %.2fx (CPU)\n", sec[0] / sec[2],
               cpu[0] / cpu[2]);
    rc = 0;
done:
    remove(path);
    hv_nn_backend_free(be);
    hv_nn_backend_free(be16);
    hv_nn_params_free(ps);
    hv_spine_crop_free(cr);
    return rc;
}
