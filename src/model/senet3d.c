/*
 * src/model/senet3d.c: the 3-D SE-ResNet of the SupCon direct grader
 * (issue 15; layout, names and the reasons in include/hv/model.h and
 * docs/model.md "3-D SupCon-SENet"), as parameters and as a graph recorded
 * from the public engine ops of hv/nn.h (conv3d, batch norm, max-pool 3-D,
 * gap, channel_mul, linear, l2_normalize).
 *
 * Why basic blocks and a 3x3x3 stem rather than the 2-D classifier's
 * bottlenecks and 7x7/2 stem: a vertebra crop is a few dozen voxels a side,
 * so a 7x7x7/2 stem followed by a pool would quarter each axis before any
 * block sees it, at 343 taps a voxel; and a basic block's output has
 * `planes` channels where a bottleneck's has 4 x planes, so at the same
 * width the activations (what bounds 3-D training on a CPU) take a quarter
 * of the memory.
 *
 * Every convolution has no bias (BN follows); BN eps 1e-5, momentum 0.1.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "se_common.h"
#include "hv/model.h"

static int64_t se_channels(int64_t c) { return c / 16 > 0 ? c / 16 : 1; }

static hv_status check_cfg(const hv_model_senet3d_config *cfg)
{
    if (!cfg) return hv_error_set(HV_ERR_ARG, "model senet3d: NULL configuration");
    if (cfg->width < 1 || cfg->width > 1024)
        return hv_error_set(HV_ERR_ARG, "model senet3d: width %d (need 1..1024)", cfg->width);
    for (int l = 0; l < 4; l++)
        if (cfg->blocks[l] < 1 || cfg->blocks[l] > 16)
            return hv_error_set(HV_ERR_ARG, "model senet3d: blocks[%d] = %d (need 1..16)", l,
                                cfg->blocks[l]);
    if (cfg->proj_dim < 1 || cfg->proj_dim > 4096)
        return hv_error_set(HV_ERR_ARG, "model senet3d: proj_dim %d (need 1..4096)",
                            cfg->proj_dim);
    return HV_OK;
}

/* ------------------------------------------------------------- parameters */

hv_status hv_model_senet3d_params(hv_nn_params *ps, const hv_model_senet3d_config *cfg,
                                  hv_rng *rng)
{
    hv_status st = check_cfg(cfg);
    if (st) return st;
    if (!ps || !rng) return hv_error_set(HV_ERR_ARG, "model senet3d: NULL parameters or rng");
    char nm[192], pre[96];
    const int64_t w = cfg->width;
    if ((st = hv__model_add_conv(ps, "layer0.conv1.weight", w, 1, 3, 3, rng))) return st;
    if ((st = hv__model_add_bn(ps, "layer0.bn1", w))) return st;
    int64_t inplanes = w;
    for (int l = 0; l < 4; l++) {
        const int64_t planes = w << l;
        for (int b = 0; b < cfg->blocks[l]; b++) {
            const int64_t cin = b ? planes : inplanes;
            snprintf(nm, sizeof nm, "layer%d.%d.conv1.conv.weight", l + 1, b);
            if ((st = hv__model_add_conv(ps, nm, planes, cin, 3, 3, rng))) return st;
            snprintf(pre, sizeof pre, "layer%d.%d.conv1.adn.N", l + 1, b);
            if ((st = hv__model_add_bn(ps, pre, planes))) return st;
            snprintf(nm, sizeof nm, "layer%d.%d.conv2.conv.weight", l + 1, b);
            if ((st = hv__model_add_conv(ps, nm, planes, planes, 3, 3, rng))) return st;
            snprintf(pre, sizeof pre, "layer%d.%d.conv2.adn.N", l + 1, b);
            if ((st = hv__model_add_bn(ps, pre, planes))) return st;
            const int64_t r = se_channels(planes);
            snprintf(pre, sizeof pre, "layer%d.%d.se_layer.fc.0", l + 1, b);
            if ((st = hv__model_add_linear(ps, pre, r, planes, rng))) return st;
            snprintf(pre, sizeof pre, "layer%d.%d.se_layer.fc.2", l + 1, b);
            if ((st = hv__model_add_linear(ps, pre, planes, r, rng))) return st;
            if (b == 0 && l > 0) { /* stride 2 and twice the channels */
                snprintf(nm, sizeof nm, "layer%d.0.project.conv.weight", l + 1);
                if ((st = hv__model_add_conv(ps, nm, planes, cin, 1, 3, rng))) return st;
                snprintf(pre, sizeof pre, "layer%d.0.project.adn.N", l + 1);
                if ((st = hv__model_add_bn(ps, pre, planes))) return st;
            }
        }
        inplanes = planes;
    }
    const int64_t f = 8 * w;
    if ((st = hv__model_add_linear(ps, "head.0", f, f, rng))) return st;
    if ((st = hv__model_add_linear(ps, "head.2", cfg->proj_dim, f, rng))) return st;
    return hv__model_add_linear(ps, "last_linear", HV_MODEL_SENET3D_GRADES, f, rng);
}

/* ------------------------------------------------------------------ build */

typedef hv__model_builder builder;

static hv_nn_tensor *conv(builder *b, hv_nn_tensor *x, const char *wname, int stride, int pad)
{
    const int s[3] = {stride, stride, stride}, p[3] = {pad, pad, pad}, one[3] = {1, 1, 1};
    return hv_nn_conv3d(b->g, x, hv__model_par(b, wname), NULL, s, p, one);
}

/* conv (no bias) then BN, named "<prefix>.conv.weight" / "<prefix>.adn.N" */
static hv_nn_tensor *conv_bn(builder *b, hv_nn_tensor *x, const char *prefix, int stride, int pad)
{
    char nm[192];
    snprintf(nm, sizeof nm, "%s.conv.weight", prefix);
    hv_nn_tensor *y = conv(b, x, nm, stride, pad);
    snprintf(nm, sizeof nm, "%s.adn.N", prefix);
    return hv__model_bn(b, y, nm);
}

static hv_nn_tensor *linear(builder *b, hv_nn_tensor *x, const char *prefix)
{
    char w[192], bb[192];
    snprintf(w, sizeof w, "%s.weight", prefix);
    snprintf(bb, sizeof bb, "%s.bias", prefix);
    return hv_nn_linear(b->g, x, hv__model_par(b, w), hv__model_par(b, bb));
}

static hv_nn_tensor *block(builder *b, hv_nn_tensor *x, int l, int i, int stride)
{
    char pre[96];
    snprintf(pre, sizeof pre, "layer%d.%d.conv1", l, i);
    hv_nn_tensor *y = hv_nn_relu(b->g, conv_bn(b, x, pre, stride, 1));
    snprintf(pre, sizeof pre, "layer%d.%d.conv2", l, i);
    y = conv_bn(b, y, pre, 1, 1);
    snprintf(pre, sizeof pre, "layer%d.%d.se_layer", l, i);
    y = hv__model_se_layer(b, y, pre);
    hv_nn_tensor *res = x;
    if (i == 0 && l > 1) {
        snprintf(pre, sizeof pre, "layer%d.0.project", l);
        res = conv_bn(b, x, pre, stride, 0);
    }
    return hv_nn_relu(b->g, hv_nn_add(b->g, y, res));
}

hv_status hv_model_senet3d_build(hv_nn_graph *g, hv_nn_params *ps,
                                 const hv_model_senet3d_config *cfg, int64_t n, int64_t d,
                                 int64_t h, int64_t w, hv_model_senet3d_io *io)
{
    hv_status st = check_cfg(cfg);
    if (st) return st;
    if (!g || !ps || !io)
        return hv_error_set(HV_ERR_ARG, "model senet3d: NULL graph, parameters or io");
    if (n < 1 || d < 16 || h < 16 || w < 16 || d % 16 || h % 16 || w % 16)
        return hv_error_set(HV_ERR_ARG, "model senet3d: input %lld x 1 x %lld x %lld x %lld "
                            "(need n >= 1 and D, H, W multiples of 16: the stem's pool and "
                            "three strided layers halve each axis)", (long long)n,
                            (long long)d, (long long)h, (long long)w);
    memset(io, 0, sizeof *io);
    builder b = {g, ps, HV_OK, "senet3d"};
    hv_nn_tensor *x = hv_nn_input(g, "x", 5, (int64_t[]){n, 1, d, h, w});
    io->x = x;
    hv_nn_tensor *y = conv(&b, x, "layer0.conv1.weight", 1, 1);
    y = hv_nn_relu(g, hv__model_bn(&b, y, "layer0.bn1"));
    y = hv_nn_maxpool3d(g, y, (const int[]){3, 3, 3}, (const int[]){2, 2, 2},
                        (const int[]){1, 1, 1});
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < cfg->blocks[l]; i++) y = block(&b, y, l + 1, i, (i == 0 && l > 0) ? 2 : 1);
    const int64_t c = 8 * (int64_t)cfg->width;
    hv_nn_tensor *feat = hv_nn_reshape(g, hv_nn_gap(g, y), 2, (int64_t[]){n, c});
    hv_nn_tensor *p = hv_nn_relu(g, linear(&b, feat, "head.0"));
    p = hv_nn_l2_normalize(g, linear(&b, p, "head.2"), 1e-12f);
    hv_nn_tensor *logits = linear(&b, feat, "last_linear");
    if (b.st != HV_OK) return b.st;
    st = hv_nn_graph_status(g);
    if (st != HV_OK) return hv_error_wrap(st, "model senet3d: building the graph");
    hv_nn_set_output(feat);
    hv_nn_set_output(p);
    hv_nn_set_output(logits);
    io->feat = feat;
    io->proj = p;
    io->logits = logits;
    return HV_OK;
}
