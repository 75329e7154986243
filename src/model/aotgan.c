/*
 * src/model/aotgan.c: AOT-GAN's inpainting generator (Zeng et al.,
 * "Aggregated Contextual Transformations for High-Resolution Image
 * Inpainting", IEEE TVCG 2022), the comparison method of issue 15, as its
 * public code defines it (researchmm/AOT-GAN-for-Inpainting,
 * src/model/aotgan.py, InpaintGenerator):
 *   encoder: ReflectionPad2d(3), Conv2d(img_ch + 1, w, 7), ReLU,
 *            Conv2d(w, 2w, 4, stride 2, pad 1), ReLU,
 *            Conv2d(2w, 4w, 4, stride 2, pad 1), ReLU
 *   middle:  n_blocks AOT blocks at d = 4w channels: four branches
 *            ReflectionPad2d(r), Conv2d(d, d/4, 3, dilation r), ReLU for the
 *            rates r; out = fuse(concat) with fuse = ReflectionPad2d(1),
 *            Conv2d(d, d, 3); mask = sigmoid(my_layer_norm(gate(x))) with
 *            gate like fuse; x (1 - mask) + out mask
 *   decoder: UpConv(4w, 2w), ReLU, UpConv(2w, w), ReLU, Conv2d(w, img_ch, 3,
 *            pad 1); UpConv = bilinear x2 (align_corners) then Conv2d(3, pad 1)
 *   output:  tanh.
 * Parameter names are its state_dict keys (Sequential indices), so that its
 * checkpoints convert by copy. The builder reads every width from the
 * parameters' shapes and counts the blocks. Built from the public engine ops
 * of hv/nn.h only (reflect_pad, upsample_bilinear, aot_norm and tanh were
 * added for it).
 */
#include <stdio.h>

#include "hv/model.h"

static hv_status add_conv(hv_nn_params *ps, hv_rng *rng, const char *name, int64_t cout,
                          int64_t cin, int64_t k)
{
    char nm[160];
    hv_nn_param *w, *b;
    int64_t ws[4] = {cout, cin, k, k};
    hv_status st;
    snprintf(nm, sizeof nm, "%s.weight", name);
    if ((st = hv_nn_params_add(ps, nm, 4, ws, 1, &w))) return st;
    hv_nn_init_normal(w, rng, 0.0, 0.02);
    snprintf(nm, sizeof nm, "%s.bias", name);
    return hv_nn_params_add(ps, nm, 1, &cout, 1, &b); /* zero-filled: its init */
}

hv_status hv_model_aotgan_params(hv_nn_params *ps, int img_ch, int width, int n_blocks,
                                 hv_rng *rng)
{
    if (!ps || !rng || img_ch < 1 || width < 1 || width > 4096 || n_blocks < 0 || n_blocks > 256)
        return hv_error_set(HV_ERR_ARG, "model aotgan: bad arguments (img_ch %d, width %d, "
                            "n_blocks %d)", img_ch, width, n_blocks);
    const int64_t w = width, d = 4 * (int64_t)width;
    char nm[160];
    hv_status st;
    if ((st = add_conv(ps, rng, "encoder.1", w, img_ch + 1, 7))) return st;
    if ((st = add_conv(ps, rng, "encoder.3", 2 * w, w, 4))) return st;
    if ((st = add_conv(ps, rng, "encoder.5", d, 2 * w, 4))) return st;
    for (int b = 0; b < n_blocks; b++) {
        for (int i = 0; i < 4; i++) {
            snprintf(nm, sizeof nm, "middle.%d.block%02d.1", b, i);
            if ((st = add_conv(ps, rng, nm, d / 4, d, 3))) return st;
        }
        snprintf(nm, sizeof nm, "middle.%d.fuse.1", b);
        if ((st = add_conv(ps, rng, nm, d, d, 3))) return st;
        snprintf(nm, sizeof nm, "middle.%d.gate.1", b);
        if ((st = add_conv(ps, rng, nm, d, d, 3))) return st;
    }
    if ((st = add_conv(ps, rng, "decoder.0.conv", 2 * w, d, 3))) return st;
    if ((st = add_conv(ps, rng, "decoder.2.conv", w, 2 * w, 3))) return st;
    return add_conv(ps, rng, "decoder.4", img_ch, w, 3);
}

/* The builder's first missing parameter: the graph errors that follow it
 * (NULL inputs) overwrite the error buffer, so the build ends by setting it
 * again from here. */
typedef struct miss {
    hv_status st;
    char name[160];
} miss;

/* The weight and bias nodes of convolution `name`; a missing one is noted. */
static hv_nn_tensor *conv_p(hv_nn_graph *g, hv_nn_params *ps, const char *name, miss *st,
                            hv_nn_tensor **bias)
{
    char nm[160];
    hv_nn_param *p[2];
    static const char *const sfx[2] = {"weight", "bias"};
    for (int k = 0; k < 2; k++) {
        snprintf(nm, sizeof nm, "%s.%s", name, sfx[k]);
        p[k] = hv_nn_params_find(ps, nm);
        if (!p[k] && st->st == HV_OK) {
            st->st = HV_ERR_NOT_FOUND;
            snprintf(st->name, sizeof st->name, "%s", nm);
        }
    }
    *bias = p[1] ? hv_nn_param_tensor(g, p[1]) : NULL;
    return p[0] ? hv_nn_param_tensor(g, p[0]) : NULL;
}

/* reflect-pad by `pad` (0: none), then the convolution `name` (stride,
 * zero pad, dilation) */
static hv_nn_tensor *conv(hv_nn_graph *g, hv_nn_params *ps, const char *name, hv_nn_tensor *x,
                          int rpad, int stride, int pad, int dil, miss *st)
{
    hv_nn_tensor *b = NULL, *w = conv_p(g, ps, name, st, &b);
    if (rpad) x = hv_nn_reflect_pad(g, x, rpad, rpad, rpad, rpad);
    return hv_nn_conv2d(g, x, w, b, stride, pad, dil);
}

static hv_nn_tensor *aot_block(hv_nn_graph *g, hv_nn_params *ps, int blk, const int rates[4],
                               hv_nn_tensor *x, miss *st)
{
    char nm[160];
    hv_nn_tensor *br[4];
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof nm, "middle.%d.block%02d.1", blk, i);
        br[i] = hv_nn_relu(g, conv(g, ps, nm, x, rates[i], 1, 0, rates[i], st));
    }
    snprintf(nm, sizeof nm, "middle.%d.fuse.1", blk);
    hv_nn_tensor *out = conv(g, ps, nm, hv_nn_concat(g, 4, br), 1, 1, 0, 1, st);
    snprintf(nm, sizeof nm, "middle.%d.gate.1", blk);
    hv_nn_tensor *m = hv_nn_sigmoid(g, hv_nn_aot_norm(g, conv(g, ps, nm, x, 1, 1, 0, 1, st)));
    /* x (1 - m) + out m = x + (out - x) m */
    return hv_nn_add(g, x, hv_nn_mul(g, hv_nn_sub(g, out, x), m));
}

hv_nn_tensor *hv_model_aotgan_build(hv_nn_graph *g, hv_nn_params *ps, const int rates[4],
                                    hv_nn_tensor *x, hv_nn_tensor *mask)
{
    if (!g || !ps || !rates || !x || !mask) return NULL;
    for (int i = 0; i < 4; i++)
        if (rates[i] < 1) {
            hv_error_set(HV_ERR_ARG, "model aotgan: rate %d is %d (need >= 1)", i, rates[i]);
            return NULL;
        }
    int64_t xs[HV_NN_MAX_DIMS] = {0};
    if (hv_nn_tensor_shape(x, xs) != 4 || xs[2] % 4 || xs[3] % 4) {
        hv_error_set(HV_ERR_ARG, "model aotgan: x must be N, C, H, W with H and W multiples of "
                     "4 (got %lld x %lld)", (long long)xs[2], (long long)xs[3]);
        return NULL;
    }
    miss st = {HV_OK, ""};
    hv_nn_tensor *in2[2] = {x, mask};
    hv_nn_tensor *h = hv_nn_concat(g, 2, in2);
    h = hv_nn_relu(g, conv(g, ps, "encoder.1", h, 3, 1, 0, 1, &st));
    h = hv_nn_relu(g, conv(g, ps, "encoder.3", h, 0, 2, 1, 1, &st));
    h = hv_nn_relu(g, conv(g, ps, "encoder.5", h, 0, 2, 1, 1, &st));
    char nm[160];
    for (int b = 0; st.st == HV_OK; b++) {
        snprintf(nm, sizeof nm, "middle.%d.fuse.1.weight", b);
        if (!hv_nn_params_find(ps, nm)) break;
        h = aot_block(g, ps, b, rates, h, &st);
    }
    h = hv_nn_relu(g, conv(g, ps, "decoder.0.conv", hv_nn_upsample_bilinear(g, h, 2), 0, 1, 1, 1, &st));
    h = hv_nn_relu(g, conv(g, ps, "decoder.2.conv", hv_nn_upsample_bilinear(g, h, 2), 0, 1, 1, 1, &st));
    h = hv_nn_tanh(g, conv(g, ps, "decoder.4", h, 0, 1, 1, 1, &st));
    if (st.st != HV_OK) {
        hv_error_set(st.st, "model aotgan: no parameter %s", st.name);
        return NULL;
    }
    return h;
}
