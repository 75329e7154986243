/*
 * cmd_train.c: `healthivert train CONFIG.ini [--set train.key=value]...` and
 * `healthivert train-classifier CONFIG.ini [--set classifier.key=value]...`
 *
 * Both trainings share this front end (train_main, on cli_front.c's like
 * run and reproduce): arguments, the config read over the command's key
 * table, signals, MPI; each has its usage, key table, section and summary
 * (train_cmd).
 *
 * Reads the [train] config (every value checked before MPI starts), turns
 * SIGTERM, SIGINT (Ctrl-C on a run without mpiexec: under mpiexec, mpiexec
 * takes it and ends the job) and SIGUSR1 (Slurm's warning before the time
 * limit) into a stop
 * request (a checkpoint, for the classifier also classifier.h5 marked
 * stopped, then exit 75: re-running resumes), trains
 * (src/mpi/train_run.c) and prints a summary on rank 0. Exit status: 0 done,
 * 75 stopped by a signal, 1 error, 2 usage or config.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"
#include "hv/train.h"

/* `train --validate-model FILE`: the model file to validate instead of
 * training (NULL: train). Set once by train_main before MPI starts. */
static const char *g_validate;

static void usage_gan(FILE *f)
{
    fprintf(f,
            "usage: healthivert train CONFIG.ini [--set train.key=value]... [--fresh]\n"
            "       mpirun -n R healthivert train CONFIG.ini ...\n"
            "       healthivert train CONFIG.ini --validate-model MODEL.h5 [--set ...]\n"
            "\n"
            "Trains the HealthiVert GAN (generator, three PatchGANs) on the healthy\n"
            "vertebrae of a training file (`healthivert prepare`), data parallel over the\n"
            "MPI ranks: each rank runs its share of every global batch (train.batch) and\n"
            "the gradients are summed over the ranks, so 1, 2 or 3 ranks reach the same\n"
            "weights. The output folder (train.output) gets checkpoint.h5 (also the\n"
            "generator's model file: synthesis.model reads it as it is), losses.csv,\n"
            "val.csv with its curves (val_*.png) and a grid of sample syntheses per\n"
            "validation (samples/step-N.png: input | attention | output | truth).\n"
            "--set compute.device=auto|cpu|cuda: where it trains (auto: a GPU per rank\n"
            "when built with CUDA and one is usable; cuda without one is refused first).\n"
            "\n"
            "--validate-model MODEL.h5: no training; one validation of that generator\n"
            "(a model file: models/phantom-*.h5, a checkpoint.h5, a converted .pth) on the\n"
            "val items of train.file, as a training validates, printed as val.csv rows\n"
            "(copy_input, then model) on stdout; nothing is written. Its seg_threshold\n"
            "column is the value for synthesis.seg_threshold. train.cnum and train.plane\n"
            "must be the model's (refused naming both); one process, no mpirun.\n"
            "\n"
            "  --set train.key=value     override one config key (repeatable)\n"
            "  --fresh                   discard an earlier checkpoint (= --set train.fresh=1)\n"
            "  --keys                    list every config key with its default and meaning\n"
            "\n"
            "Resuming: running the same command again continues from the last checkpoint\n"
            "and reaches the same weights as an uninterrupted run. SIGTERM, SIGUSR1 or\n"
            "SIGINT (Ctrl-C without mpiexec) write a checkpoint and exit 75; after SIGKILL\n"
            "a re-run loses at most the steps since the last checkpoint. A checkpoint of\n"
            "another config or width is refused.\n"
            "\n"
            "Exit status: 0 done; 75 stopped early, resumable; 1 error (a refused training\n"
            "file, a non-finite loss, a checkpoint that could not be written); 2 usage.\n"
            "\n"
            "Examples:\n"
            "  healthivert prepare configs/prepare-phantom.ini\n"
            "  mpirun -n 2 healthivert train configs/train-phantom.ini\n"
            "  healthivert train configs/train-phantom.ini --set train.max_steps=50\n");
}

static void usage_cls(FILE *f)
{
    fprintf(f,
            "usage: healthivert train-classifier CONFIG.ini [--set classifier.key=value]... [--fresh]\n"
            "       mpirun -n R healthivert train-classifier CONFIG.ini ...\n"
            "\n"
            "Trains the fracture classifier whose Grad-CAM++ map guides the GAN (spec 7:\n"
            "MONAI's SEResNet50 layout at classifier.width; 64 = MONAI) on one sagittal\n"
            "slice (17..46) of each vertebra's CT crop of a training file (`healthivert\n"
            "prepare`), label grade >= classifier.threshold, balanced sampling by default,\n"
            "data parallel over the MPI ranks (1, 2 or 3 ranks reach the same weights).\n"
            "The output folder (classifier.output) gets checkpoint.h5, classifier.h5 (the\n"
            "model, at the end; at a stop too, marked in /meta as stopped at its step),\n"
            "losses.csv, val.csv (AUC, sensitivity, specificity, recall per grade, per\n"
            "vertebra over its 30 middle slices) and val_*.png.\n"
            "--set compute.device=auto|cpu|cuda: where it trains (as `healthivert train`).\n"
            "\n"
            "  --set classifier.key=value  override one config key (repeatable)\n"
            "  --fresh                     discard an earlier checkpoint\n"
            "  --keys                      list every config key with its default and meaning\n"
            "\n"
            "Resuming, signals and exit status as `healthivert train`: the same command\n"
            "continues from the last checkpoint to the same weights; SIGTERM, SIGUSR1 or\n"
            "SIGINT (Ctrl-C without mpiexec) write a checkpoint, then classifier.h5 from\n"
            "it with /meta stopped = \"written at a stop ... at step K of N: not a\n"
            "finished training\" (the finished run overwrites it without the marker), and\n"
            "exit 75; 1 error; 2 usage.\n"
            "\n"
            "Example:\n"
            "  healthivert train-classifier configs/train-classifier-phantom.ini\n");
}

/* One training command: its name, section, keys, usage and what it runs
 * (rank 0 prints the summary of a finished or stopped training). */
typedef struct train_cmd {
    const char *name, *section;
    const hv_run_key *(*keys)(size_t *n);
    void (*usage)(FILE *f);
    void (*print_keys)(void);
    hv_status (*run)(const hv_run_config *cfg, int rank, int size);
} train_cmd;

static hv_status run_validate(const hv_run_config *cfg)
{
    hv_train_val_row rows[2];
    hv_status st = hv_train_validate_model(cfg, MPI_COMM_WORLD, g_validate, rows);
    if (st != HV_OK) return st;
    hv_train_val_print(stdout, rows, 2);
    return HV_OK;
}

static hv_status run_gan(const hv_run_config *cfg, int rank, int size)
{
    if (g_validate) return run_validate(cfg);
    hv_train_summary s;
    hv_status st = hv_train_execute(cfg, MPI_COMM_WORLD, &s);
    if (rank != 0 || (st != HV_OK && st != HV_ERR_INTERRUPTED)) return st;
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
    return st;
}

static hv_status run_cls(const hv_run_config *cfg, int rank, int size)
{
    hv_train_cls_summary s;
    hv_status st = hv_train_cls_execute(cfg, MPI_COMM_WORLD, &s);
    if (rank != 0 || (st != HV_OK && st != HV_ERR_INTERRUPTED)) return st;
    printf("healthivert train-classifier: steps %lld..%lld of %lld (%lld per epoch; %ld train "
           "items: %ld fractures, %ld not; %ld of unknown grade skipped; %ld val items; %d "
           "rank%s; %.1f s)%s\n",
           s.step_start, s.step_end, s.total_steps, s.steps_per_epoch, s.n_train, s.n_pos,
           s.n_neg, s.n_unknown, s.n_val, size, size == 1 ? "" : "s", s.seconds,
           s.resumed ? ", resumed from the checkpoint" : "");
    if (s.step_end > s.step_start) printf("last step's cross entropy: %.4f\n", s.loss);
    if (s.have_val) {
        printf("validation (%g vertebrae): %-12s %7s %7s %7s %7s %7s %7s %7s %8s\n", s.last[0], "",
               "AUC", "sens", "spec", "rec g0", "rec g1", "rec g2", "rec g3", "CE");
        char nm[64];
        for (int i = 0; i < 2; i++) {
            const double *v = i ? s.last : s.untrained;
            if (i == 0 && !(v[0] > 0)) continue;
            snprintf(nm, sizeof nm, i ? "step %lld" : "untrained", s.last_val_step);
            printf("  %-36s %7.4f %7.4f %7.4f %7.3f %7.3f %7.3f %7.3f %8.4f\n", nm, v[1], v[2],
                   v[3], v[4], v[5], v[6], v[7], v[8]);
        }
    }
    printf("outputs: %s/ (checkpoint.h5, classifier.h5, losses.csv, val.csv, val_*.png)\n",
           s.out_dir);
    return st;
}

static hv_status set_key(void *cfg, const char *kv) { return hv_run_config_set(cfg, kv); }

static int train_main(int argc, char **argv, const train_cmd *c)
{
    const char *cfgpath = NULL;
    hv_run_config *cfg = NULL;
    size_t nk;
    const hv_run_key *keys = c->keys(&nk);
    char fresh[64];
    snprintf(fresh, sizeof fresh, "%s.fresh=1", c->section);
    const int gan = !strcmp(c->name, "train");
    const hv_cli_front f = {c->name, c->usage, c->print_keys, fresh,
                            gan ? "--validate-model" : NULL, "a model file", &g_validate};
    int rc = hv_cli_front_parse(&f, argc, argv, &cfgpath);
    if (rc != HV_CLI_GO_ON) return rc;
    if (hv_run_config_load_table(keys, nk, cfgpath, &cfg) != HV_OK) {
        fprintf(stderr, "healthivert %s: %s\n", c->name, hv_error_detail());
        return HV_EXIT_USAGE;
    }
    if ((rc = hv_cli_front_sets(&f, argc, argv, set_key, cfg)) != HV_CLI_GO_ON) {
        hv_run_config_free(cfg);
        return rc;
    }
    const char *file = hv_run_config_get(cfg, c->section, "file");
    if (!file || !*file) {
        fprintf(stderr, "healthivert %s: %s: %s.file is not set (the training file that "
                        "`healthivert prepare` writes)\n", c->name, cfgpath, c->section);
        hv_run_config_free(cfg);
        return HV_EXIT_USAGE;
    }

    int rank = 0, size = 1;
    if ((rc = hv_cli_mpi_start(c->name, &argc, &argv, &rank, &size)) != HV_CLI_GO_ON) {
        hv_run_config_free(cfg);
        return rc;
    }
    hv_status st = c->run(cfg, rank, size);
    rc = st == HV_OK ? HV_EXIT_OK : st == HV_ERR_INTERRUPTED ? HV_EXIT_RESUMABLE : HV_EXIT_FAIL;
    if (rank == 0) {
        if (st == HV_ERR_INTERRUPTED) printf("stopped early: %s\n", hv_error_detail());
        else if (st != HV_OK)
            fprintf(stderr, "healthivert %s: %s: %s\n", c->name, hv_status_name(st),
                    hv_error_detail());
    }
    hv_run_config_free(cfg);
    return hv_cli_mpi_end(c->name, rank, rc);
}

static void keys_gan(void)
{
    size_t n;
    const hv_run_key *k = hv_train_config_keys(&n);
    hv_cli_print_keys(k, n, "changes the weights");
}

static void keys_cls(void)
{
    size_t n;
    const hv_run_key *k = hv_train_cls_config_keys(&n);
    hv_cli_print_keys(k, n, "changes the weights");
}

int hv_cmd_train(int argc, char **argv)
{
    static const train_cmd c = {"train", "train", hv_train_config_keys, usage_gan, keys_gan, run_gan};
    return train_main(argc, argv, &c);
}

int hv_cmd_train_classifier(int argc, char **argv)
{
    static const train_cmd c = {"train-classifier", "classifier", hv_train_cls_config_keys,
                                usage_cls, keys_cls, run_cls};
    return train_main(argc, argv, &c);
}
