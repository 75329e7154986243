/*
 * train_config.c: the keys of `healthivert train` ([train] section), one
 * typed table read by the run's own strict parser (config.c): the same
 * messages, ranges, --set and canonical text. Each key fills a field of
 * hv_train_opts (hv/train.h) through offsetof.
 *
 * "results" marks the keys that change the weights a training reaches: a
 * checkpoint written under other values of them is not resumed (the
 * message names the keys). Output folder, step limit, intervals and threads
 * do not change the weights, so a stopped training may be continued with a
 * higher train.max_steps or another checkpoint interval.
 */
#include <stddef.h>

#include "hv/run.h"
#include "hv/train.h"
#include "run_internal.h" /* hv_compute_choices */

#define FIELD(f) .offset = offsetof(hv_train_opts, f), .size = sizeof(((hv_train_opts *)0)->f)
#define RES .results = 1
#define RES_NEW .results = 2 /* results, added later: see hv_run_key */

static const char *const ch_plane[] = {"sagittal", "coronal", NULL}; /* hv_spine_plane */
/* hv_model_generator_kind */
static const char *const ch_generator[] = {"healthivert", "aotgan", NULL};

static const hv_run_key keys[] = {
    {"train", "file", "", "the training file written by `healthivert prepare` (required)",
     HV_KEY_PATH, RES, FIELD(file)},
    {"train", "output", "runs/train",
     "output folder: checkpoint.h5, val.csv, losses.csv, val_*.png curves, samples/",
     HV_KEY_PATH, FIELD(output)},
    {"train", "seed", "1",
     "seed of the initial weights, the epochs' shuffles and the slice draws (spec 3.2)",
     HV_KEY_INT, 0, 2147483647.0, RES, FIELD(seed)},
    {"train", "batch", "12",
     "global batch: items per step over all ranks (spec 6: 12; the README 16); at least the "
     "number of ranks",
     HV_KEY_INT, 1, 4096, RES, FIELD(batch)},
    {"train", "lr", "0.0002", "Adam learning rate of G and each D (spec 6)", HV_KEY_DOUBLE, 0,
     1, .min_open = 1, RES, FIELD(lr)},
    {"train", "beta1", "0.5", "Adam beta1 (spec 6)", HV_KEY_DOUBLE, 0, 1, RES, FIELD(beta1)},
    {"train", "beta2", "0.999", "Adam beta2 (spec 6)", HV_KEY_DOUBLE, 0, 1, RES, FIELD(beta2)},
    {"train", "n_epochs", "200", "epochs at the initial learning rate (spec 6 'linear' policy)",
     HV_KEY_INT, 0, 1000000, RES, FIELD(n_epochs)},
    {"train", "n_epochs_decay", "800",
     "epochs over which the learning rate decays linearly to 0 after n_epochs", HV_KEY_INT, 0,
     1000000, RES, FIELD(n_epochs_decay)},
    {"train", "max_steps", "0",
     "stop after this many steps in all (0: when the epochs are done); may be raised to "
     "continue a finished training",
     HV_KEY_INT, 0, 2000000000, FIELD(max_steps)},
    {"train", "cnum", "16",
     "generator width (spec 5: 16; even); with train.generator = aotgan AOT-GAN's width (64 "
     "there)", HV_KEY_INT, 1, 256, RES, FIELD(cnum)},
    {"train", "generator", "healthivert",
     "generator trained: healthivert (spec 5) or aotgan (AOT-GAN's InpaintGenerator, issue 15: "
     "same data, masks, discriminators and schedule; terms L1, fine Dice and adversarial only)",
     HV_KEY_CHOICE, .choices = ch_generator, RES_NEW, FIELD(generator)},
    {"train", "aot_blocks", "8",
     "AOT blocks of the aotgan generator (8 there; rates 1, 2, 4, 8); unused by healthivert",
     HV_KEY_INT, 1, 64, RES_NEW, FIELD(aot_blocks)},
    {"train", "ndf", "64", "discriminator width (spec 5.4: 64)", HV_KEY_INT, 1, 1024, RES,
     FIELD(ndf)},
    {"train", "lambda_l1", "200", "weight of the L1 term (spec 6)", HV_KEY_DOUBLE, 0, 1e6, RES,
     FIELD(lambda_l1)},
    {"train", "lambda_dice_fine", "15", "weight of the fine segmentation's Dice term",
     HV_KEY_DOUBLE, 0, 1e6, RES, FIELD(lambda_dice_fine)},
    {"train", "lambda_dice_coarse", "10", "weight of the coarse (AHVS) Dice term",
     HV_KEY_DOUBLE, 0, 1e6, RES, FIELD(lambda_dice_coarse)},
    {"train", "lambda_edge", "800", "weight of the edge (EEM) term", HV_KEY_DOUBLE, 0, 1e6, RES,
     FIELD(lambda_edge)},
    {"train", "lambda_height", "40", "weight of the height (SHRM) term", HV_KEY_DOUBLE, 0, 1e6,
     RES, FIELD(lambda_height)},
    {"train", "lambda_gan", "0.1666666666666667",
     "weight of the generator's adversarial terms (spec 6: their sum / 6)", HV_KEY_DOUBLE, 0,
     1e6, RES, FIELD(lambda_gan)},
    {"train", "d2_soft", "1",
     "1: D2 and the edge term see the sigmoid segmentation (gradient flows); 0: the binarised "
     "one, as the reference (no gradient)",
     HV_KEY_BOOL, RES, FIELD(d2_soft)},
    {"train", "local_cols", "70", "width of D3's local window in columns (spec 5.4)", HV_KEY_INT,
     8, 256, RES, FIELD(local_cols)},
    {"train", "band_rows", "40", "rows of the synthesised band (spec 3.3)", HV_KEY_INT, 8, 128,
     RES, FIELD(band_rows)},
    {"train", "healthy_max_grade", "1",
     "items with 0 <= grade <= this are healthy and trained/validated on (reference: 1)",
     HV_KEY_INT, 0, 3, RES, FIELD(healthy_max_grade)},
    {"train", "plane", "sagittal",
     "slices the generator is trained on: sagittal (spec 4, the current reference) or coronal "
     "(spec 4's deleted 2024 loader: the crop[:, j, :] strip of 64 columns pasted into a "
     "256-wide canvas, the band only inside the strip); written into the checkpoint as 'plane'",
     HV_KEY_CHOICE, .choices = ch_plane, RES_NEW, FIELD(plane)},
    HV__TRAIN_INTERVAL_KEYS("train", FIELD, "500", "500", "losses"),
    {"train", "val_grid", "4", "val items drawn in each validation's sample grid", HV_KEY_INT, 1,
     64, FIELD(val_grid)},
    HV__TRAIN_RUN_KEYS("train", FIELD, "the GAN"),
};

const hv_run_key *hv_train_config_keys(size_t *n)
{
    if (n) *n = sizeof keys / sizeof keys[0];
    return keys;
}
