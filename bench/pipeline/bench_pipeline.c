/*
 * bench_pipeline: one phantom case with 17 vertebrae (T1..L5) through the
 * default stage table (hv/pipeline.h) with QC pictures, as `healthivert run`
 * does with output.images = qc: seconds per stage (median of 5 runs), and
 * the pictures stage against the load stage of the same case (the ratio the
 * issue asks for: drawing must cost a small fraction of reading the case).
 *
 * usage: bench_pipeline [OUTDIR] [SPACING_MM]   (default ./bench-pipeline-tmp, 1)
 * The phantom case is written once (not timed) and left in OUTDIR.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/phantom.h"
#include "hv/pipeline.h"

#define REPS 5

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench-pipeline-tmp";
    double spacing = argc > 2 ? atof(argv[2]) : 1.0;
    hv_phantom_opts po;
    hv_phantom_opts_default(&po);
    po.first_label = 8; /* T1 */
    po.last_label = 24; /* L5 */
    po.spacing[0] = po.spacing[1] = po.spacing[2] = spacing;
    po.seed = 7;
    double t0 = hv_time_now();
    if (hv_phantom_cohort_write(&po, dir, 1, NULL, NULL) != HV_OK) {
        fprintf(stderr, "bench_pipeline: phantom: %s\n", hv_error_detail());
        return 1;
    }
    hv_phantom_case *pc = NULL;
    if (hv_phantom_case_make(&po, 0, &pc) != HV_OK) {
        fprintf(stderr, "bench_pipeline: phantom model: %s\n", hv_error_detail());
        return 1;
    }
    char ct[4200], msk[4200], ctd[4200];
    snprintf(ct, sizeof ct, "%s/raw/%s/%s.nii.gz", dir, pc->id, pc->id);
    snprintf(msk, sizeof msk, "%s/raw/%s/%s_msk.nii.gz", dir, pc->id, pc->id);
    snprintf(ctd, sizeof ctd, "%s/raw/%s/%s.json", dir, pc->id, pc->id);
    printf("# bench_pipeline: phantom case %s, %d vertebrae at %.2f mm, written in %.1f s\n",
           pc->id, pc->n_vert, spacing, hv_time_now() - t0);
    hv_case cs = {pc->id, ct, msk, ctd, HV_OK, NULL};
    hv_pipe_opts o;
    hv_pipe_opts_default(&o);
    o.pictures = HV_PIPE_PICTURES_QC;
    hv_pipe_plan p;
    if (hv_pipe_plan_make(hv_pipe_default(), &o, HV_PIPE_GRADES | HV_PIPE_PICTURES, &p) != HV_OK) {
        fprintf(stderr, "bench_pipeline: plan: %s\n", hv_error_detail());
        return 1;
    }
    const hv_pipe_table *t = p.t;
    int rc = 0;
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        double sec[HV_PIPE_MAX_STAGES][REPS], total[REPS];
        size_t nv = 0;
        for (int r = 0; r < REPS; r++) {
            hv_pipe_state s;
            hv_pipe_state_init(&s, &cs);
            double tc = hv_time_now();
            if (hv_pipe_run(&p, &s) != HV_OK) {
                fprintf(stderr, "bench_pipeline: %s\n", hv_error_detail());
                rc = 1;
            }
            total[r] = hv_time_now() - tc;
            nv = s.m ? s.m->n : 0;
            for (int i = 0; i < t->n; i++) sec[i][r] = s.seconds[i];
            hv_pipe_state_clear(&s);
        }
        if (threads == 1) {
            printf("threads,n_vert");
            for (int i = 0; i < t->n; i++) printf(",%s_s", t->stage[i].name);
            printf(",total_s,pictures_over_load\n");
        }
        double med[HV_PIPE_MAX_STAGES];
        for (int i = 0; i < t->n; i++) {
            qsort(sec[i], REPS, sizeof(double), cmp_d);
            med[i] = sec[i][REPS / 2];
        }
        qsort(total, REPS, sizeof(double), cmp_d);
        int il = 0, ip = t->n - 1;
        printf("%d,%zu", threads, nv);
        for (int i = 0; i < t->n; i++) printf(",%.4f", med[i]);
        printf(",%.3f,%.3f\n", total[REPS / 2], med[ip] / med[il]);
    }
    hv_phantom_case_free(pc);
    return rc;
}
