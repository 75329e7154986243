/*
 * cmd_reproduce.c: `healthivert reproduce CONFIG.ini [--set section.key=value]...`
 *
 * The comparison table of the seed paper from one command: for each method
 * of reproduce.methods, a `run` of the configured cohort with that
 * synthesis method into <reproduce.output>/<method>/ (resumed by its own
 * journals when it was started before), graded by the SVM protocol, then
 * table.csv, table.md and table.png (src/mpi/reproduce.c, repro_table.c).
 * Everything is checked before MPI starts; an unknown method writes
 * nothing. Exit status: 0 every method graded; 3 a method failed (its row
 * says why; the others are in the table) or some cases of a method failed;
 * 75 stopped by a signal (re-run to resume); 1 error; 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "hv/reproduce.h"
#include "hv/run.h"
#include "hv/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert reproduce CONFIG.ini [--set section.key=value]...\n"
            "       mpirun -n R healthivert reproduce CONFIG.ini ...\n"
            "\n"
            "Regenerates the seed paper's comparison table on the configured data. CONFIG.ini\n"
            "is a run configuration (`healthivert run --keys`) plus a [reproduce] section:\n"
            "  methods   = baseline, gan   synthesis methods to compare (the choices of\n"
            "                              synthesis.method; their keys, e.g. synthesis.model,\n"
            "                              come from the run sections), or senet3d: the\n"
            "                              baseline graded by the 3-D SupCon-SENet\n"
            "                              (grader.senet3d_* keys) in the same protocol\n"
            "  output    = DIR             where everything goes\n"
            "  published = auto            verse19 | none | auto (verse19 when input.split's\n"
            "                              file name contains 'verse19')\n"
            "  table     = auto            grading | quality | auto (quality when\n"
            "                              input.source = dataset and input.split is empty)\n"
            "\n"
            "Keys for one method only: a section [reproduce.METHOD] of section.key = value\n"
            "lines (e.g. [reproduce.aotgan] synthesis.model = FILE), applied to that\n"
            "method's run after the run sections and --set.\n"
            "\n"
            "What runs: for each method in order, the whole pipeline (`healthivert run`) with\n"
            "synthesis.method set, into DIR/<method>/ (its store, tables and figures as\n"
            "`run` writes them), graded by the SVM protocol (spec 10: linear SVC on the\n"
            "pre/mid/post RHLV, 5-fold stratified over train+test, each fold scored on\n"
            "val). The split must have train, val and test rows. Progress goes to stderr.\n"
            "\n"
            "Outputs: DIR/table.csv (exact numbers), DIR/table.md, DIR/table.png (grouped\n"
            "bars with the fold spread). Columns: macro-P, macro-R, macro-F1 as mean and\n"
            "population variance over the folds; val P/R/F1 and recall per Genant grade of\n"
            "the grader trained on all train+test rows, scored on val. With published set,\n"
            "the published VerSe 2019 numbers are a separate table labelled published\n"
            "(and marks in the figure), never rows of ours.\n"
            "\n"
            "Data without grades (table = quality; VerSe 2020, CTSpine1K): no grading;\n"
            "instead spec 11's measures of each method's synthesized vertebra against the\n"
            "real one on healthy levels: patch and global PSNR and SSIM over the central\n"
            "80 %% of the target's LR slices, Dice, IoU and relative volume difference of\n"
            "the 3-D target (needs, for every method but baseline, synthesis.crops = full,\n"
            "which keeps the synthesized and the original crops), mean and population\n"
            "variance over the vertebrae; a method without a synthesized image is 'n/a'\n"
            "(docs/reproduce.md).\n"
            "\n"
            "Resuming: run the same command again. Each method's run resumes from its\n"
            "journals (a finished one is only re-graded, with the same numbers); SIGTERM,\n"
            "SIGUSR1 or Ctrl-C stop after the current cases (exit 75); after SIGKILL a re-run\n"
            "loses at most the cases that were in flight.\n"
            "\n"
            "  --set section.key=value   override one key (reproduce.* or a run key; not\n"
            "                            synthesis.method or output.dir, which are set per\n"
            "                            method)\n"
            "  --keys                    list the [reproduce] keys\n"
            "\n"
            "A method whose run fails is a row 'failed' with the reason; the other methods\n"
            "still run and are reported.\n"
            "Exit status: 0 every method graded; 3 a method failed or some of its cases\n"
            "failed; 75 stopped early, resumable; 1 error; 2 usage (bad config, unknown\n"
            "method: nothing is written).\n"
            "\n"
            "Example:\n"
            "  mpirun -n 2 healthivert reproduce configs/reproduce-phantom.ini\n");
}

static void print_keys(void)
{
    size_t n;
    const hv_run_key *k = hv_repro_config_keys(&n);
    hv_cli_print_keys(k, n, NULL);
    printf("(and every run key: healthivert run --keys)\n");
}

static hv_status set_key(void *r, const char *kv) { return hv_repro_set(r, kv); }

int hv_cmd_reproduce(int argc, char **argv)
{
    const char *cfgpath = NULL;
    hv_repro *r = NULL;
    const hv_cli_front f = {"reproduce", usage, print_keys, NULL, NULL, NULL, NULL};
    int rc = hv_cli_front_parse(&f, argc, argv, &cfgpath);
    if (rc != HV_CLI_GO_ON) return rc;
    if (hv_repro_load(cfgpath, &r) != HV_OK) {
        fprintf(stderr, "healthivert reproduce: %s\n", hv_error_detail());
        return HV_EXIT_USAGE;
    }
    if ((rc = hv_cli_front_sets(&f, argc, argv, set_key, r)) != HV_CLI_GO_ON) {
        hv_repro_free(r);
        return rc;
    }
    if (hv_repro_check(r) != HV_OK) {
        fprintf(stderr, "healthivert reproduce: %s\n", hv_error_detail());
        hv_repro_free(r);
        return HV_EXIT_USAGE;
    }
    if (hv_repro_prepare_output(r) != HV_OK) {
        fprintf(stderr, "healthivert reproduce: %s\n", hv_error_detail());
        hv_repro_free(r);
        return HV_EXIT_FAIL;
    }

    int rank = 0, size = 1;
    if ((rc = hv_cli_mpi_start("reproduce", &argc, &argv, &rank, &size)) != HV_CLI_GO_ON) {
        hv_repro_free(r);
        return rc;
    }

    hv_repro_summary sum;
    hv_status st = hv_repro_execute(r, MPI_COMM_WORLD, &sum);
    if (st == HV_OK) {
        rc = sum.n_failed > 0 || sum.n_partial > 0 ? HV_EXIT_PARTIAL : HV_EXIT_OK;
        if (rank == 0)
            printf("healthivert reproduce: %d method%s: %d %s, %d failed%s\n"
                   "table: %s/table.csv, table.md, table.png\n",
                   sum.n_methods, sum.n_methods == 1 ? "" : "s", sum.n_ok,
                   sum.quality ? "scored or n/a" : "graded", sum.n_failed,
                   sum.n_partial ? " (some cases failed: see table.md)" : "", sum.table_dir);
    } else if (st == HV_ERR_INTERRUPTED) {
        rc = HV_EXIT_RESUMABLE;
        if (rank == 0) printf("stopped early: %s\n", hv_error_detail());
    } else {
        rc = HV_EXIT_FAIL;
        if (rank == 0)
            fprintf(stderr, "healthivert reproduce: %s: %s\n", hv_status_name(st),
                    hv_error_detail());
    }
    hv_repro_free(r);
    return hv_cli_mpi_end("reproduce", rank, rc);
}
