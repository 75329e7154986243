/*
 * make_cls_model.c: a tiny classifier model file for the tests of the
 * attention stage (tests/pipeline, tests/mpi): MONAI's SEResNet50 layout at
 * width W (default 2) with seeded random weights (MONAI's init, from
 * hv_model_classifier_params), saved with hv_model_classifier_save_file as
 * `healthivert train-classifier` saves a trained one. Its maps and
 * probabilities are arbitrary; what the tests check does not depend on
 * them (dims, ranges, zero slices, rank-count and resume identity,
 * refusals).
 *
 *   hv_make_cls_model OUT.h5 [--seed N] [--width W] [--nan]
 * --nan: every weight NaN (every map non-finite).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"

int main(int argc, char **argv)
{
    const char *out = NULL;
    unsigned long long seed = 1;
    int width = 2, nan = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--width") && i + 1 < argc) width = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--nan")) nan = 1;
        else if (!out && argv[i][0] != '-') out = argv[i];
        else {
            fprintf(stderr, "usage: hv_make_cls_model OUT.h5 [--seed N] [--width W] [--nan]\n");
            return 2;
        }
    }
    if (!out || width < 1) {
        fprintf(stderr, "hv_make_cls_model: an output path and width >= 1 are needed\n");
        return 2;
    }
    hv_nn_params *ps = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, seed, 0);
    hv_status st = hv_nn_params_create(&ps);
    if (st == HV_OK) st = hv_model_classifier_params(ps, width, &rng);
    if (st == HV_OK && nan)
        for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i);
            float *d = hv_nn_param_data(p);
            for (int64_t k = 0; k < hv_nn_param_numel(p); k++) d[k] = NAN;
        }
    if (st == HV_OK)
        st = hv_model_classifier_save_file(ps, width, 1, "tests: hv_make_cls_model", out);
    hv_nn_params_free(ps);
    if (st != HV_OK) {
        fprintf(stderr, "hv_make_cls_model: %s\n", hv_error_detail());
        return 1;
    }
    return 0;
}
