/*
 * make_gan_model.c: a tiny generator model file for the tests of the `gan`
 * synthesis (tests/pipeline, tests/mpi): the reference generator at width
 * cnum (default 2) with seeded random weights (PyTorch's default init, a few
 * spectral-norm power iterations as a trained file carries), saved as a
 * model file (/params, /meta plane) the way hv_model_synth_export and
 * scripts/pth_to_hv.py write one. Its pseudo-healthy vertebrae are
 * arbitrary; what the tests check does not depend on them (rank-count and
 * resume identity, fallbacks, outputs, refusals).
 *
 *   hv_make_gan_model OUT.h5 [--seed N] [--cnum C] [--plane sagittal|coronal]
 *                            [--seg-bias B] [--nan] [--broken] [--aot BLOCKS]
 * --aot BLOCKS: AOT-GAN's generator instead (issue 15; width C, img_ch 2,
 * BLOCKS blocks) with uniform weights in +-0.25 (its N(0, 0.02) init gives a
 * nearly constant output); --seg-bias B then sets its label channel's bias
 * (decoder.4.bias[1]: 8 makes (tanh + 1) / 2 above 0.5 everywhere);
 * --seg-bias B: the fine segmentation head's bias set to B (8: the sigmoid
 * is above 0.5 everywhere, so the synthesized target fills the restored
 * rows of the band: a measurable vertebra, where random weights give a
 * scatter of pixels);
 * --nan: every weight NaN (every generator output is non-finite);
 * --broken: the first parameter left out (a file of another architecture).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/model.h"
#include "hv/nn.h"

int main(int argc, char **argv)
{
    const char *out = NULL, *plane = "sagittal";
    unsigned long long seed = 1;
    int cnum = 2, nan = 0, broken = 0, have_bias = 0, aot = 0;
    double seg_bias = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--cnum") && i + 1 < argc) cnum = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--plane") && i + 1 < argc) plane = argv[++i];
        else if (!strcmp(argv[i], "--seg-bias") && i + 1 < argc) seg_bias = atof(argv[++i]), have_bias = 1;
        else if (!strcmp(argv[i], "--nan")) nan = 1;
        else if (!strcmp(argv[i], "--broken")) broken = 1;
        else if (!strcmp(argv[i], "--aot") && i + 1 < argc) aot = atoi(argv[++i]);
        else if (!out && argv[i][0] != '-') out = argv[i];
        else {
            fprintf(stderr, "usage: hv_make_gan_model OUT.h5 [--seed N] [--cnum C] "
                            "[--plane P] [--seg-bias B] [--nan] [--broken] [--aot BLOCKS]\n");
            return 2;
        }
    }
    if (!out || cnum < 1) {
        fprintf(stderr, "hv_make_gan_model: an output path and cnum >= 1 are needed\n");
        return 2;
    }
    hv_nn_params *ps = NULL, *keep = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, seed, 0);
    hv_status st = hv_nn_params_create(&ps);
    if (st == HV_OK && aot) {
        st = hv_model_aotgan_params(ps, 2, cnum, aot, &rng);
        for (size_t i = 0; st == HV_OK && i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i);
            float *d = hv_nn_param_data(p);
            for (int64_t k = 0; k < hv_nn_param_numel(p); k++)
                d[k] = (float)(0.5 * (hv_rng_uniform(&rng) - 0.5));
        }
        hv_nn_param *b = hv_nn_params_find(ps, "decoder.4.bias");
        if (st == HV_OK && have_bias) {
            if (!b) st = hv_error_set(HV_ERR_NOT_FOUND, "no label channel bias");
            else hv_nn_param_data(b)[1] = (float)seg_bias;
        }
        have_bias = 0;
    } else {
        if (st == HV_OK) st = hv_model_generator_params(ps, cnum, &rng);
        if (st == HV_OK) st = hv_model_generator_sn_warmup(ps, 3);
    }
    if (st == HV_OK && have_bias) {
        hv_nn_param *b = hv_nn_params_find(ps, "fine_generator.allconv18.conv.bias");
        if (!b) st = hv_error_set(HV_ERR_NOT_FOUND, "no fine segmentation bias");
        else hv_nn_param_data(b)[0] = (float)seg_bias;
    }
    if (st == HV_OK && nan)
        for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i);
            float *d = hv_nn_param_data(p);
            for (int64_t k = 0; k < hv_nn_param_numel(p); k++) d[k] = NAN;
        }
    const hv_nn_params *save = ps;
    if (st == HV_OK && broken) {
        st = hv_nn_params_create(&keep);
        for (size_t i = 1; st == HV_OK && i < hv_nn_params_size(ps); i++) {
            hv_nn_param *p = hv_nn_params_at(ps, i), *q = NULL;
            int64_t sh[HV_NN_MAX_DIMS];
            int nd = hv_nn_param_shape(p, sh);
            st = hv_nn_params_add(keep, hv_nn_param_name(p), nd, sh, hv_nn_param_trainable(p), &q);
            if (st == HV_OK)
                memcpy(hv_nn_param_data(q), hv_nn_param_data(p),
                       (size_t)hv_nn_param_numel(p) * sizeof(float));
        }
        save = keep;
    }
    const char *kv[] = {"plane", plane};
    if (st == HV_OK) st = hv_nn_checkpoint_save(out, save, NULL, kv, 1);
    hv_nn_params_free(ps);
    hv_nn_params_free(keep);
    if (st != HV_OK) {
        fprintf(stderr, "hv_make_gan_model: %s: %s\n", hv_status_name(st), hv_error_detail());
        return 1;
    }
    return 0;
}
