/*
 * dummy_stage_run.c: `healthivert run` with one more row in the stage table.
 *
 * The row is the only change: the default table's rows copied, plus a stage
 * "dummy" that needs the measured heights, sleeps 25 ms and makes a product
 * nobody else uses (HV_PIPE_EXTRA0; the runner asks for every extra
 * product). tests/mpi/test_dummy_stage.sh runs this under mpiexec and looks
 * for the stage, by name, in the log, the store and the exported tables.
 *
 * usage: dummy_stage_run COHORT.ini OUTDIR
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hv/pipeline.h"
#include "hv/run.h"

static hv_status dummy_run(const hv_pipe_opts *o, hv_pipe_state *s)
{
    (void)o;
    if (!s->m || s->m->n == 0) return hv_error_set(HV_ERR_INTERNAL, "dummy: no heights");
    struct timespec ts = {0, 25 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return HV_OK;
}

int main(int argc, char **argv)
{
    int provided = 0, rc = 1;
    if (argc != 3) {
        fprintf(stderr, "usage: dummy_stage_run COHORT.ini OUTDIR\n");
        return 2;
    }
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    const hv_pipe_table *def = hv_pipe_default();
    hv_pipe_stage rows[HV_PIPE_MAX_STAGES];
    memcpy(rows, def->stage, (size_t)def->n * sizeof rows[0]);
    rows[def->n] = (hv_pipe_stage){"dummy", "sleeps 25 ms (a test stage)", HV_PIPE_HEIGHTS, 0,
                                   HV_PIPE_EXTRA0, NULL, NULL, dummy_run};
    hv_pipe_table t = {rows, def->n + 1};

    hv_run_config *cfg = NULL;
    char dir[2048];
    snprintf(dir, sizeof dir, "output.dir=%s", argv[2]);
    hv_run_summary sum;
    if (hv_run_config_load(argv[1], &cfg) != HV_OK || hv_run_config_set(cfg, dir) != HV_OK ||
        hv_run_config_set(cfg, "output.images=none") != HV_OK) {
        fprintf(stderr, "dummy_stage_run: config: %s\n", hv_error_detail());
        goto done;
    }
    if (hv_run_execute_with(cfg, MPI_COMM_WORLD, &t, &sum) != HV_OK) {
        fprintf(stderr, "dummy_stage_run: %s\n", hv_error_detail());
        goto done;
    }
    rc = sum.n_failed == 0 && sum.n_done == sum.n_cases ? 0 : 1;
done:
    hv_run_config_free(cfg);
    MPI_Finalize();
    return rc;
}
