/*
 * src/model/patchgan.c: the pix2pix PatchGAN discriminator of the reference
 * (spec 5.4: "basic", n_layers 3, ndf 64, batch norm): a 256x256 image gives
 * 30x30 logits (70x70 receptive field). Three identical copies judge the
 * composite CT, the binarised segmentation and the local window.
 *
 * Parameter names are the reference's state_dict keys under a caller prefix
 * ("<prefix>model.0.weight", "model.3.running_mean", ...; the Sequential
 * indices of NLayerDiscriminator), so released D checkpoints convert by copy.
 * BN's num_batches_tracked (an integer counter) is not kept. The width ndf
 * (64 in the reference) is a parameter; the builder reads the widths from
 * the parameters' shapes, so it serves every width.
 * Initialisation as the reference's init_net("normal", 0.02): conv weights
 * N(0, 0.02), BN weights N(1, 0.02), biases 0.
 * Built from the public engine ops of hv/nn.h only.
 */
#include <stdio.h>

#include "hv/model.h"

/* Sequential index of conv i (0..4) and of the BN after conv i (1..3). */
static const int conv_idx[5] = {0, 2, 5, 8, 11};
static const int bn_idx[4] = {0, 3, 6, 9};
hv_status hv_model_patchgan_params(hv_nn_params *ps, const char *prefix, int in_ch, hv_rng *rng)
{
    return hv_model_patchgan_params_ndf(ps, prefix, in_ch, 64, rng);
}

hv_status hv_model_patchgan_params_ndf(hv_nn_params *ps, const char *prefix, int in_ch, int ndf,
                                       hv_rng *rng)
{
    if (!ps || !prefix || !rng || in_ch < 1 || ndf < 1 || ndf > 4096)
        return hv_error_set(HV_ERR_ARG, "model patchgan: bad arguments (ndf %d)", ndf);
    int chans[6] = {in_ch, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1};
    char nm[160];
    hv_status st;
    for (int i = 0; i < 5; i++) {
        int cin = i ? chans[i] : in_ch;
        int64_t ws[4] = {chans[i + 1], cin, 4, 4};
        hv_nn_param *w, *b;
        snprintf(nm, sizeof nm, "%smodel.%d.weight", prefix, conv_idx[i]);
        if ((st = hv_nn_params_add(ps, nm, 4, ws, 1, &w))) return st;
        hv_nn_init_normal(w, rng, 0.0, 0.02);
        if (i == 0 || i == 4) { /* the convolutions followed by BN have no bias */
            int64_t bs = chans[i + 1];
            snprintf(nm, sizeof nm, "%smodel.%d.bias", prefix, conv_idx[i]);
            if ((st = hv_nn_params_add(ps, nm, 1, &bs, 1, &b))) return st;
        }
        if (i >= 1 && i <= 3) {
            static const char *const sfx[4] = {"weight", "bias", "running_mean", "running_var"};
            int64_t c = chans[i + 1];
            for (int k = 0; k < 4; k++) {
                hv_nn_param *p;
                snprintf(nm, sizeof nm, "%smodel.%d.%s", prefix, bn_idx[i], sfx[k]);
                if ((st = hv_nn_params_add(ps, nm, 1, &c, k < 2, &p))) return st;
                if (k == 0) hv_nn_init_normal(p, rng, 1.0, 0.02);
                if (k == 3) hv_nn_init_const(p, 1.0);
            }
        }
    }
    return HV_OK;
}

static hv_nn_tensor *pt(hv_nn_graph *g, hv_nn_params *ps, const char *prefix, int idx,
                        const char *what, hv_status *st)
{
    char nm[160];
    snprintf(nm, sizeof nm, "%smodel.%d.%s", prefix, idx, what);
    hv_nn_param *p = hv_nn_params_find(ps, nm);
    if (!p && *st == HV_OK) *st = hv_error_set(HV_ERR_NOT_FOUND, "model patchgan: no parameter %s", nm);
    return p ? hv_nn_param_tensor(g, p) : NULL;
}

hv_nn_tensor *hv_model_patchgan_build(hv_nn_graph *g, hv_nn_params *ps, const char *prefix,
                                      hv_nn_tensor *x)
{
    hv_status st = HV_OK;
    if (!g || !ps || !prefix || !x) return NULL;
    for (int i = 0; i < 5 && x; i++) {
        hv_nn_tensor *b = (i == 0 || i == 4) ? pt(g, ps, prefix, conv_idx[i], "bias", &st) : NULL;
        x = hv_nn_conv2d(g, x, pt(g, ps, prefix, conv_idx[i], "weight", &st), b, i < 3 ? 2 : 1, 1, 1);
        if (i >= 1 && i <= 3)
            x = hv_nn_batch_norm(g, x, pt(g, ps, prefix, bn_idx[i], "weight", &st),
                                 pt(g, ps, prefix, bn_idx[i], "bias", &st),
                                 pt(g, ps, prefix, bn_idx[i], "running_mean", &st),
                                 pt(g, ps, prefix, bn_idx[i], "running_var", &st), 0.1f, 1e-5f);
        if (i < 4) x = hv_nn_leaky_relu(g, x, 0.2f);
    }
    return st == HV_OK ? x : NULL;
}
