/*
 * cmd_train.c: `healthivert train CONFIG.ini [--set train.key=value]...`
 *
 * Reads the [train] config (every value checked before MPI starts), turns
 * SIGTERM and SIGUSR1 (Slurm's warning before the time limit) into a stop
 * request (a checkpoint, then exit 75: re-running resumes), trains
 * (src/mpi/train_run.c) and prints a summary on rank 0. Exit status: 0 done,
 * 75 stopped by a signal, 1 error, 2 usage or config.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"

static void on_signal(int sig)
{
    (void)sig;
    hv_run_request_stop();
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert train CONFIG.ini [--set train.key=value]... [--fresh]\n"
            "       mpirun -n R healthivert train CONFIG.ini ...\n"
            "\n"
            "Trains the HealthiVert GAN (generator, three PatchGANs) on the healthy\n"
            "vertebrae of a training file (`healthivert prepare`), data parallel over the\n"
            "MPI ranks: each rank runs its share of every global batch (train.batch) and\n"
            "the gradients are summed over the ranks, so 1, 2 or 3 ranks reach the same\n"
            "weights. The output folder (train.output) gets checkpoint.h5, losses.csv,\n"
            "val.csv with its curves (val_*.png) and a grid of sample syntheses per\n"
            "validation (samples/step-N.png: input | attention | output | truth).\n"
            "\n"
            "  --set train.key=value     override one config key (repeatable)\n"
            "  --fresh                   discard an earlier checkpoint (= --set train.fresh=1)\n"
            "  --keys                    list every config key with its default and meaning\n"
            "\n"
            "Resuming: running the same command again continues from the last checkpoint\n"
            "and reaches the same weights as an uninterrupted run. SIGTERM or SIGUSR1 write\n"
            "a checkpoint and exit 75; after SIGKILL a re-run loses at most the steps since\n"
            "the last checkpoint. A checkpoint of another config or width is refused.\n"
            "\n"
            "Exit status: 0 done; 75 stopped early, resumable; 1 error (a refused training\n"
            "file, a non-finite loss, a checkpoint that could not be written); 2 usage.\n"
            "\n"
            "Examples:\n"
            "  healthivert prepare configs/prepare-phantom.ini\n"
            "  mpirun -n 2 healthivert train configs/train-phantom.ini\n"
            "  healthivert train configs/train-phantom.ini --set train.max_steps=50\n");
}

static void print_keys(void)
{
    size_t n;
    const hv_run_key *k = hv_train_config_keys(&n);
    char allowed[256];
    for (size_t i = 0; i < n; i++) {
        hv_run_key_allowed(&k[i], allowed, sizeof allowed);
        printf("%s.%s = %s\n    %s\n    allowed: %s%s\n", k[i].section, k[i].key, k[i].def,
               k[i].help, allowed, k[i].results ? " (changes the weights)" : "");
    }
}

int hv_cmd_train(int argc, char **argv)
{
    const char *cfgpath = NULL;
    hv_run_config *cfg = NULL;
    size_t nk;
    const hv_run_key *keys = hv_train_config_keys(&nk);
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            usage(stdout);
            return HV_EXIT_OK;
        }
        if (!strcmp(argv[a], "--keys")) {
            print_keys();
            return HV_EXIT_OK;
        }
    }
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--set")) {
            a++;
            continue;
        }
        if (!strncmp(argv[a], "--set=", 6) || !strcmp(argv[a], "--fresh")) continue;
        if (argv[a][0] == '-' || cfgpath) {
            fprintf(stderr, "healthivert train: unexpected argument '%s'\n\n", argv[a]);
            usage(stderr);
            return HV_EXIT_USAGE;
        }
        cfgpath = argv[a];
    }
    if (!cfgpath) {
        usage(stderr);
        return HV_EXIT_USAGE;
    }
    if (hv_run_config_load_table(keys, nk, cfgpath, &cfg) != HV_OK) {
        fprintf(stderr, "healthivert train: %s\n", hv_error_detail());
        return HV_EXIT_USAGE;
    }
    for (int a = 1; a < argc; a++) {
        const char *as = NULL;
        if (!strcmp(argv[a], "--set")) {
            if (a + 1 >= argc) {
                fprintf(stderr, "healthivert train: --set needs section.key=value\n");
                hv_run_config_free(cfg);
                return HV_EXIT_USAGE;
            }
            as = argv[++a];
        } else if (!strncmp(argv[a], "--set=", 6)) {
            as = argv[a] + 6;
        } else if (!strcmp(argv[a], "--fresh")) {
            as = "train.fresh=1";
        }
        if (as && hv_run_config_set(cfg, as) != HV_OK) {
            fprintf(stderr, "healthivert train: %s\n", hv_error_detail());
            hv_run_config_free(cfg);
            return HV_EXIT_USAGE;
        }
    }
    const char *file = hv_run_config_get(cfg, "train", "file");
    if (!file || !*file) {
        fprintf(stderr, "healthivert train: %s: train.file is not set (the training file that "
                        "`healthivert prepare` writes)\n", cfgpath);
        hv_run_config_free(cfg);
        return HV_EXIT_USAGE;
    }

    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "healthivert train: MPI_Init failed\n");
        hv_run_config_free(cfg);
        return HV_EXIT_FAIL;
    }
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    hv_train_summary s;
    hv_status st = hv_train_execute(cfg, MPI_COMM_WORLD, &s);
    int rc = st == HV_OK ? HV_EXIT_OK : st == HV_ERR_INTERRUPTED ? HV_EXIT_RESUMABLE : HV_EXIT_FAIL;
    if (rank == 0) {
        if (st == HV_OK || st == HV_ERR_INTERRUPTED) {
            printf("healthivert train: steps %lld..%lld of %lld (%lld per epoch; %ld train, %ld "
                   "val items; %d rank%s; %.1f s)%s\n",
                   s.step_start, s.step_end, s.total_steps, s.steps_per_epoch, s.n_train, s.n_val,
                   size, size == 1 ? "" : "s", s.seconds,
                   s.resumed ? ", resumed from the checkpoint" : "");
            if (s.have_val) {
                const char *nm[3] = {"copy the input", "untrained (step 0)", "trained"};
                const double *v[3] = {s.copy_input, s.untrained, s.last};
                printf("validation (%g items): %-20s %9s %9s %8s %8s %12s\n", s.copy_input[0], "",
                       "band L1", "PSNR dB", "SSIM", "Dice", "height err %");
                for (int i = 0; i < 3; i++)
                    if (v[i][0] > 0)
                        printf("  %-38s %9.4f %9.2f %8.4f %8.4f %12.2f\n", nm[i], v[i][1], v[i][2],
                               v[i][3], v[i][4], v[i][5]);
            }
            printf("outputs: %s/ (checkpoint.h5, losses.csv, val.csv, val_*.png, samples/)\n",
                   s.out_dir);
        }
        if (st == HV_ERR_INTERRUPTED) printf("stopped early: %s\n", hv_error_detail());
        else if (st != HV_OK)
            fprintf(stderr, "healthivert train: %s: %s\n", hv_status_name(st), hv_error_detail());
        fflush(stdout);
    }
    hv_run_config_free(cfg);
    MPI_Finalize();
    return rc;
}
