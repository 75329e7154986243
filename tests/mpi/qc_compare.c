/*
 * qc_compare.c: test tool for tests/mpi/test_qc.sh: the QC pictures as a
 * run's store holds them, read back (PNG decoded by libpng through
 * hv_store_read_qc), against the pictures the pipeline draws.
 *
 *   qc_compare STORE nonzero SLOT VIEW CHANNEL
 *       print the nonzero pixels of one 256 x 256 picture of the store
 *   qc_compare STORE pipeline DATASET
 *       run the pipeline (load, straighten, crop, measure, pictures; default
 *       options, as the runner's defaults) on every done case of the store
 *       from DATASET, and compare each vertebra's QC slot byte for byte with
 *       the store's; print "slots N equal E blank B" and exit 1 on any
 *       difference (naming the case and level) or when nothing was compared
 *
 * Why a program of its own rather than h5dump: a v3 store keeps each slot
 * as PNG bytes; decoding them needs a PNG library, and the pipeline's own
 * drawing is the independent source of what the pictures must be.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/io.h"
#include "hv/pipeline.h"
#include "hv/store.h"

static int cmd_nonzero(hv_store *s, long slot, int view, int ch)
{
    uint8_t *px = malloc(HV_RUN_QC_BYTES);
    if (!px) return 2;
    int present = 0;
    hv_status st = hv_store_read_qc(s, slot, px, &present);
    if (st != HV_OK) {
        fprintf(stderr, "qc_compare: %s\n", hv_error_detail());
        free(px);
        return 1;
    }
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    const uint8_t *p = px + ((size_t)view * HV_QC_CHANNELS + (size_t)ch) * plane;
    long n = 0;
    for (size_t i = 0; i < plane; i++) n += p[i] != 0;
    printf("%ld\n", n);
    free(px);
    return 0;
}

static int cmd_pipeline(hv_store *s, const char *dataset)
{
    hv_manifest *man = NULL;
    hv_status st = hv_io_dataset_scan(dataset, NULL, &man);
    if (st != HV_OK) {
        fprintf(stderr, "qc_compare: %s\n", hv_error_detail());
        return 2;
    }
    long nc = hv_store_n_cases(s);
    hv_run_crow *cr = calloc((size_t)nc + 1, sizeof *cr);
    uint8_t *stt = calloc((size_t)nc + 1, 1), *px = malloc(HV_RUN_QC_BYTES);
    long n_slots = 0, n_equal = 0, n_blank = 0, n_diff = 0;
    int rc = 0;
    if (!cr || !stt || !px || hv_store_read_cases(s, cr, stt) != HV_OK) {
        fprintf(stderr, "qc_compare: cannot read the store's cases\n");
        rc = 2;
        goto done;
    }
    hv_pipe_opts o;
    hv_pipe_opts_default(&o);
    o.pictures = HV_PIPE_PICTURES_QC;
    hv_pipe_plan plan;
    if (hv_pipe_plan_make(hv_pipe_default(), &o, HV_PIPE_PICTURES, &plan) != HV_OK) {
        fprintf(stderr, "qc_compare: %s\n", hv_error_detail());
        rc = 2;
        goto done;
    }
    for (long i = 0; i < nc; i++) {
        if (stt[i] != HV_CASE_DONE) continue;
        const hv_case *cs = NULL;
        for (size_t k = 0; k < man->n; k++)
            if (!strcmp(man->cases[k].id, cr[i].id)) cs = &man->cases[k];
        if (!cs) {
            fprintf(stderr, "qc_compare: case %s is not in %s\n", cr[i].id, dataset);
            rc = 1;
            continue;
        }
        hv_pipe_state ps;
        hv_pipe_state_init(&ps, cs);
        st = hv_pipe_run(&plan, &ps);
        if (st != HV_OK || !ps.m || (int)ps.m->n != cr[i].n_vert) {
            fprintf(stderr, "qc_compare: case %s: pipeline gave %d vertebrae (store %d): %s\n",
                    cr[i].id, ps.m ? (int)ps.m->n : -1, cr[i].n_vert,
                    st != HV_OK ? hv_error_detail() : "");
            hv_pipe_state_clear(&ps);
            rc = 1;
            continue;
        }
        for (int k = 0; k < cr[i].n_vert; k++) {
            int present = 0;
            n_slots++;
            if (hv_store_read_qc(s, i * HV_RUN_MAX_VERT + k, px, &present) != HV_OK) {
                fprintf(stderr, "qc_compare: case %s slot %d: %s\n", cr[i].id, k, hv_error_detail());
                n_diff++;
                continue;
            }
            static const uint8_t zero[HV_RUN_QC_BYTES];
            const uint8_t *want = ps.qc ? ps.qc + (size_t)k * HV_RUN_QC_BYTES : zero;
            if (memcmp(px, want, HV_RUN_QC_BYTES) != 0) {
                size_t nd = 0;
                for (size_t q = 0; q < HV_RUN_QC_BYTES; q++) nd += px[q] != want[q];
                fprintf(stderr, "qc_compare: case %s vertebra %d: %zu of %zu bytes differ\n",
                        cr[i].id, k, nd, (size_t)HV_RUN_QC_BYTES);
                n_diff++;
            } else {
                n_equal++;
                n_blank += !present;
            }
        }
        hv_pipe_state_clear(&ps);
    }
    printf("slots %ld equal %ld blank %ld\n", n_slots, n_equal, n_blank);
    if (n_diff || n_slots == 0) rc = 1;
done:
    free(cr);
    free(stt);
    free(px);
    hv_io_manifest_free(man);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: qc_compare STORE nonzero SLOT VIEW CHANNEL | "
                        "qc_compare STORE pipeline DATASET\n");
        return 2;
    }
    hv_store *s = NULL; /* a serial open needs no MPI_Init */
    int rc = 2;
    if (hv_store_open_serial(argv[1], 0, &s) != HV_OK) {
        fprintf(stderr, "qc_compare: %s\n", hv_error_detail());
    } else if (!strcmp(argv[2], "nonzero") && argc == 6) {
        rc = cmd_nonzero(s, atol(argv[3]), atoi(argv[4]), atoi(argv[5]));
    } else if (!strcmp(argv[2], "pipeline") && argc == 4) {
        rc = cmd_pipeline(s, argv[3]);
    } else {
        fprintf(stderr, "qc_compare: bad arguments\n");
    }
    hv_store_close(s);
    return rc;
}
