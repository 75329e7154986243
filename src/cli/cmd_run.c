/*
 * cmd_run.c: `healthivert run CONFIG.ini [--set section.key=value]...`
 *
 * Initialises MPI (a plain process is an MPI singleton), turns SIGTERM,
 * SIGUSR1 (Slurm's warning before the time limit) and a first Ctrl-C into a
 * stop request (cli_front.c, shared with reproduce and the trainings), runs
 * the cohort (src/mpi) and prints the run's summary on rank 0. Exit status:
 * 0 all cases done, 3 finished with failed cases, 75 stopped by a signal
 * (re-run the same command to resume), 1 error, 2 usage. The body
 * (hv_cli_run_like) is shared with `healthivert prepare` (cmd_prepare.c),
 * which is this command with prepare.enabled = 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"
#include "hv/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert run CONFIG.ini [--set section.key=value]... [--fresh]\n"
            "       mpirun -n R healthivert run CONFIG.ini ...\n"
            "\n"
            "Runs the whole pipeline on a cohort: every case is loaded, measured, given\n"
            "pseudo-healthy heights (synthesis.method) and graded; all results go into one\n"
            "HDF5 store shared by the MPI ranks; after the last case the grader is trained\n"
            "and evaluated and the output folder gets CSV tables, PNG plots and summary.md.\n"
            "Stages per case: load, straighten, crop, attention, measure, synthesize, grade,\n"
            "pictures; straighten and crop run when something needs the crops (gan,\n"
            "output.images, attention), attention only with attention.model (the fracture\n"
            "classifier's Grad-CAM++ maps: the gan's HGAM input, and per-vertebra columns\n"
            "or maps in the store, attention.store). compute.device = auto|cpu|cuda says\n"
            "where the networks run (auto: a GPU per rank when built with CUDA and one is\n"
            "usable; cuda without one is refused before anything is written).\n"
            "\n"
            "  --set section.key=value   override one config key (repeatable)\n"
            "  --fresh                   discard an earlier attempt's journal (the same as\n"
            "                            --set run.fresh=1)\n"
            "  --keys                    list every config key with its default and meaning\n"
            "\n"
            "Every value is checked before anything runs: unknown keys, values of the\n"
            "wrong type or out of range, and a key given twice in the file or twice on the\n"
            "command line are errors (exit 2). --set over a value of the file is allowed.\n"
            "\n"
            "Resuming: running the same command again skips finished cases. SIGTERM,\n"
            "SIGUSR1 or Ctrl-C make every rank finish its current case, close the store and\n"
            "exit 75 (a second Ctrl-C ends at once; under mpiexec, mpiexec takes Ctrl-C);\n"
            "even after SIGKILL a re-run loses at most the cases that were in flight.\n"
            "\n"
            "Exit status: 0 all cases done; 3 done but some cases failed (reasons in the\n"
            "summary); 75 stopped early, resumable; 1 error; 2 usage.\n"
            "\n"
            "Examples:\n"
            "  mpirun -n 2 healthivert run configs/phantom.ini\n"
            "  healthivert run configs/phantom.ini --set phantom.cases=4 --set output.dir=/tmp/r\n"
            "Inspect the result with `healthivert inspect <output.dir>/store.h5`.\n");
}

static void print_keys(void)
{
    size_t n;
    const hv_run_key *k = hv_run_config_keys(&n);
    hv_cli_print_keys(k, n, "changes results");
}

static hv_status set_key(void *cfg, const char *kv) { return hv_run_config_set(cfg, kv); }

int hv_cmd_run(int argc, char **argv) { return hv_cli_run_like(argc, argv, "run", usage, 0); }

int hv_cli_run_like(int argc, char **argv, const char *cmd, void (*help)(FILE *), int prepare)
{
    const char *cfgpath = NULL;
    hv_run_config *cfg = NULL;
    const hv_cli_front f = {cmd, help, print_keys, "run.fresh=1", NULL, NULL, NULL};
    int rc = hv_cli_front_parse(&f, argc, argv, &cfgpath);
    if (rc != HV_CLI_GO_ON) return rc;
    if (hv_run_config_load(cfgpath, &cfg) != HV_OK) {
        fprintf(stderr, "healthivert %s: %s\n", cmd, hv_error_detail());
        return HV_EXIT_USAGE;
    }
    if ((rc = hv_cli_front_sets(&f, argc, argv, set_key, cfg)) != HV_CLI_GO_ON) {
        hv_run_config_free(cfg);
        return rc;
    }
    /* `prepare` is `run` with the training-set stage on */
    if (prepare) {
        const char *en = hv_run_config_get(cfg, "prepare", "enabled");
        if (en && strcmp(en, "1") && hv_run_config_set(cfg, "prepare.enabled=1") != HV_OK) {
            fprintf(stderr, "healthivert %s: prepare.enabled cannot be 0 here: %s\n", cmd,
                    hv_error_detail());
            hv_run_config_free(cfg);
            return HV_EXIT_USAGE;
        }
    }
    /* what single values cannot say (input.source = dataset without a
     * dataset, ...): before MPI starts, like every other config error */
    if (hv_run_config_check(cfg) != HV_OK) {
        fprintf(stderr, "healthivert %s: %s\n", cmd, hv_error_detail());
        hv_run_config_free(cfg);
        return HV_EXIT_USAGE;
    }

    int rank = 0, size = 1;
    if ((rc = hv_cli_mpi_start(cmd, &argc, &argv, &rank, &size)) != HV_CLI_GO_ON) {
        hv_run_config_free(cfg);
        return rc;
    }

    hv_run_summary sum;
    hv_status st = hv_run_execute(cfg, MPI_COMM_WORLD, &sum);
    if (rank == 0) {
        if (st == HV_OK || st == HV_ERR_INTERRUPTED) {
            printf("healthivert %s: %ld cases: %ld done, %ld failed, %ld pending "
                   "(attempt %d, %d rank%s, %.1f s; %ld finished by earlier attempts)\n",
                   cmd, sum.n_cases, sum.n_done, sum.n_failed, sum.n_pending, sum.attempt, size,
                   size == 1 ? "" : "s", sum.seconds, sum.n_resumed);
        }
        if (st == HV_OK) {
            char *text = NULL;
            if (hv_store_describe(sum.store_path, &text) == HV_OK) fputs(text, stdout);
            free(text);
            const char *shards = hv_run_config_get(cfg, "run", "shard_count");
            if (shards && strcmp(shards, "1"))
                printf("\nshard store: %s (its cases only; an unsharded run of the same config "
                       "gathers every shard and grades)\n", sum.store_path);
            else
                printf("\noutputs: %s/ (store.h5, summary.md, cases.csv, vertebrae.csv, "
                       "grader_metrics.csv, confusion.png, rhlv_by_grade.png)\n", sum.out_dir);
            if (sum.train_path[0])
                printf("training set: %s (%ld vertebrae, %ld skipped; parts in %s/prepare/)\n",
                       sum.train_path, sum.n_train_items, sum.n_train_skipped, sum.out_dir);
            rc = sum.n_failed > 0 ? HV_EXIT_PARTIAL : HV_EXIT_OK;
        } else if (st == HV_ERR_INTERRUPTED) {
            printf("stopped early: %s\n", hv_error_detail());
            rc = HV_EXIT_RESUMABLE;
        } else {
            fprintf(stderr, "healthivert %s: %s: %s\n", cmd, hv_status_name(st), hv_error_detail());
            rc = HV_EXIT_FAIL;
        }
        fflush(stdout);
    } else {
        rc = st == HV_OK ? (sum.n_failed > 0 ? HV_EXIT_PARTIAL : HV_EXIT_OK)
             : st == HV_ERR_INTERRUPTED ? HV_EXIT_RESUMABLE
                                        : HV_EXIT_FAIL;
    }
    hv_run_config_free(cfg);
    return hv_cli_mpi_end(cmd, rank, rc);
}
