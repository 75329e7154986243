/*
 * cls_train_config.c: the keys of `healthivert train-classifier`
 * ([classifier] section), one typed table read by the run's strict parser
 * (config.c) like the GAN's [train] keys (train_config.c): the same
 * messages, ranges, --set and canonical text. Each key fills a field of
 * hv_train_cls_opts (hv/train.h) through offsetof.
 *
 * "results" marks the keys that change the weights a training reaches: a
 * checkpoint written under other values of them is refused (the message
 * names the keys). Output folder, steps, intervals and threads do not, so a
 * stopped training may be continued with more classifier.steps.
 */
#include <stddef.h>

#include "hv/run.h"
#include "hv/train.h"
#include "run_internal.h" /* hv_compute_choices */

#define FIELD(f) .offset = offsetof(hv_train_cls_opts, f), .size = sizeof(((hv_train_cls_opts *)0)->f)
#define RES .results = 1

static const char *const ch_balance[] = {"none", "sample", NULL}; /* HV_TRAIN_CLS_BALANCE_* */

static const hv_run_key keys[] = {
    {"classifier", "file", "",
     "the training file written by `healthivert prepare` (required; every graded item is used)",
     HV_KEY_PATH, RES, FIELD(file)},
    {"classifier", "output", "runs/classifier",
     "output folder: checkpoint.h5, classifier.h5 (the model), val.csv, losses.csv, val_*.png",
     HV_KEY_PATH, FIELD(output)},
    {"classifier", "seed", "1",
     "seed of the initial weights, the epochs' lists and the slice draws", HV_KEY_INT, 0,
     2147483647.0, RES, FIELD(seed)},
    {"classifier", "width", "16",
     "network width: stem channels and layer1's planes (64 = MONAI's SEResNet50; 16 for CPUs)",
     HV_KEY_INT, 1, 256, RES, FIELD(width)},
    {"classifier", "batch", "16", "global batch: slices per step over all ranks (>= ranks)",
     HV_KEY_INT, 1, 4096, RES, FIELD(batch)},
    {"classifier", "lr", "0.0001", "Adam learning rate", HV_KEY_DOUBLE, 0, 1, .min_open = 1, RES,
     FIELD(lr)},
    {"classifier", "beta1", "0.9", "Adam beta1", HV_KEY_DOUBLE, 0, 1, RES, FIELD(beta1)},
    {"classifier", "beta2", "0.999", "Adam beta2", HV_KEY_DOUBLE, 0, 1, RES, FIELD(beta2)},
    {"classifier", "steps", "0",
     "stop after this many steps in all (0: after classifier.epochs epochs); may be raised to "
     "continue a finished training",
     HV_KEY_INT, 0, 2000000000, FIELD(steps)},
    {"classifier", "epochs", "20",
     "epochs (lists of the balanced sampler, or of every labelled item) when steps = 0",
     HV_KEY_INT, 1, 1000000, RES, FIELD(epochs)},
    {"classifier", "threshold", "1",
     "grade from which a vertebra counts as a fracture (spec 7: 1; unknown grades are skipped)",
     HV_KEY_INT, 1, 3, RES, FIELD(threshold)},
    {"classifier", "balance", "sample",
     "sample: each epoch lists every item of the larger class once and as many draws with "
     "replacement from the smaller one; none: every item once",
     HV_KEY_CHOICE, .choices = ch_balance, RES, FIELD(balance)},
    {"classifier", "flip", "0", "1: mirror a training slice's columns with probability 0.5",
     HV_KEY_BOOL, RES, FIELD(flip)},
    HV__TRAIN_INTERVAL_KEYS("classifier", FIELD, "200", "200", "loss"),
    HV__TRAIN_RUN_KEYS("classifier", FIELD, "the classifier"),
};

const hv_run_key *hv_train_cls_config_keys(size_t *n)
{
    if (n) *n = sizeof keys / sizeof keys[0];
    return keys;
}
