/*
 * src/model/classifier.c: the fracture classifier of spec 7 (issue 13):
 * MONAI's SEResNet50 (spatial_dims 2, in_channels 1, num_classes 2) at a
 * configurable width, as parameters under MONAI's state_dict names and as
 * a graph recorded from the public engine ops of hv/nn.h.
 *
 * Layout (MONAI monai/networks/nets/senet.py with SEResNetBottleneck of
 * blocks/squeeze_and_excitation.py, checked against MONAI's source):
 *   layer0: conv1 7x7/2 pad 3 no bias (w channels), bn1, relu1,
 *           pool = MaxPool(3, 2, ceil_mode=True)
 *   layer1..4: 3, 4, 6, 3 SEResNetBottlenecks of planes w, 2w, 4w, 8w
 *           (stride 1, 2, 2, 2 in the first block, on conv1 = the 1x1
 *           convolution, "Caffe style", not on the 3x3):
 *           conv1 1x1/stride BN ReLU, conv2 3x3 pad 1 BN ReLU, conv3 1x1 BN
 *           (outputs 4 planes), se_layer = global average pool,
 *           Linear(C, C/16) ReLU Linear(C/16, C) Sigmoid, x * y; then
 *           + shortcut, then ReLU. The shortcut of the first block of every
 *           layer (stride != 1 or channels differ) is a 1x1/stride convolution
 *           without bias + BN (MONAI's Convolution "project"); identity else.
 *   adaptive average pool, flatten, last_linear (8w * 4 -> 2).
 * Every convolution has no bias; BN eps 1e-5, momentum 0.1.
 *
 * Names: MONAI's Convolution blocks are Sequentials of "conv" and "adn"
 * (ADN with the norm as "N"), so a bottleneck's convolutions are
 * "layer1.0.conv1.conv.weight", "layer1.0.conv1.adn.N.weight" (bias,
 * running_mean, running_var); the shortcut is stored by SEBlock as
 * `project`: "layer1.0.project.conv.weight", "layer1.0.project.adn.N.*"
 * (MONAI's own pretrained-weight loader renames Cadene's
 * "downsample.0"/"downsample.1" to exactly these); SE: "se_layer.fc.0.*",
 * "se_layer.fc.2.*"; the stem is a plain Sequential: "layer0.conv1.weight",
 * "layer0.bn1.*"; "last_linear.weight/bias". BN's num_batches_tracked (an
 * integer counter) is not kept.
 *
 * Width: w = the stem's channels = layer1's planes (64 in MONAI). The SE
 * bottleneck has max(1, C / 16) channels (MONAI refuses C < 16; the reduced
 * widths used for CPU training would hit that at w < 4).
 *
 * Ceil-mode max-pool: the engine's max-pool is floor mode. MaxPool2d(3, 2,
 * ceil_mode=True) adds one output window wherever (L - 3) is odd (L = the
 * stem's output rows or cols, e.g. 128 -> 64 windows, floor mode gives 63);
 * that window starts inside the input and runs one past its end. Its input
 * is a ReLU output (>= 0), so zero-padding one row (col) at the bottom
 * (right) and pooling in floor mode gives the same maxima: the padded zero
 * can never exceed a real value >= 0, and a tie at 0 is won by the real
 * element that comes first in the window (the engine routes the gradient
 * to the first maximum, as PyTorch does), so the gradients agree too.
 *
 * Initialisation as MONAI's SENet constructor: every convolution
 * kaiming_normal_ (fan_in, gain sqrt(2): N(0, 2 / fan_in)), BN weight 1 bias
 * 0 (running mean 0, var 1), every Linear (last_linear and the SE's) bias 0
 * with PyTorch's default weight U(+-1/sqrt(fan_in)).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "se_common.h"
#include "model_file.h"
#include "cls_internal.h"

static const int n_blocks[4] = {3, 4, 6, 3};

/* SE bottleneck channels of a C-channel SE layer. */
static int64_t se_channels(int64_t c)
{
    return c / 16 > 0 ? c / 16 : 1;
}

hv_status hv_model_classifier_params(hv_nn_params *ps, int width, hv_rng *rng)
{
    if (!ps || !rng || width < 1 || width > 4096)
        return hv_error_set(HV_ERR_ARG, "model classifier: bad arguments (width %d)", width);
    hv_status st;
    char nm[192], pre[96];
    const int64_t w = width;
    if ((st = hv__model_add_conv(ps, "layer0.conv1.weight", w, 1, 7, 2, rng))) return st;
    if ((st = hv__model_add_bn(ps, "layer0.bn1", w))) return st;
    int64_t inplanes = w;
    for (int l = 0; l < 4; l++) {
        const int64_t planes = w << l, outc = 4 * planes;
        for (int b = 0; b < n_blocks[l]; b++) {
            const int64_t cin = b ? outc : inplanes;
            static const char *const cv[3] = {"conv1", "conv2", "conv3"};
            const int64_t co[3] = {planes, planes, outc}, ci[3] = {cin, planes, planes};
            const int64_t ks[3] = {1, 3, 1};
            for (int c = 0; c < 3; c++) {
                snprintf(nm, sizeof nm, "layer%d.%d.%s.conv.weight", l + 1, b, cv[c]);
                if ((st = hv__model_add_conv(ps, nm, co[c], ci[c], ks[c], 2, rng))) return st;
                snprintf(pre, sizeof pre, "layer%d.%d.%s.adn.N", l + 1, b, cv[c]);
                if ((st = hv__model_add_bn(ps, pre, co[c]))) return st;
            }
            const int64_t r = se_channels(outc);
            snprintf(pre, sizeof pre, "layer%d.%d.se_layer.fc.0", l + 1, b);
            if ((st = hv__model_add_linear(ps, pre, r, outc, rng))) return st;
            snprintf(pre, sizeof pre, "layer%d.%d.se_layer.fc.2", l + 1, b);
            if ((st = hv__model_add_linear(ps, pre, outc, r, rng))) return st;
            if (b == 0) { /* stride 2 or inplanes != 4 planes: always a projection */
                snprintf(nm, sizeof nm, "layer%d.0.project.conv.weight", l + 1);
                if ((st = hv__model_add_conv(ps, nm, outc, cin, 1, 2, rng))) return st;
                snprintf(pre, sizeof pre, "layer%d.0.project.adn.N", l + 1);
                if ((st = hv__model_add_bn(ps, pre, outc))) return st;
            }
        }
        inplanes = outc;
    }
    return hv__model_add_linear(ps, "last_linear", 2, 32 * w, rng);
}

int hv_model_classifier_width(const hv_nn_params *ps)
{
    if (!ps) {
        hv_error_set(HV_ERR_FORMAT, "model classifier: no parameters");
        return 0;
    }
    const char *first = "layer0.conv1.weight";
    hv_nn_param *p0 = hv_nn_params_find(ps, first);
    if (!p0) {
        hv_error_set(HV_ERR_FORMAT, "model classifier: parameter '%s' missing", first);
        return 0;
    }
    int64_t sh[HV_NN_MAX_DIMS];
    int nd = hv_nn_param_shape(p0, sh);
    if (nd != 4 || sh[0] < 1 || sh[0] > 4096 || sh[1] != 1 || sh[2] != 7 || sh[3] != 7) {
        char hs[128];
        hv__model_shape_str(hs, sizeof hs, nd, sh);
        hv_error_set(HV_ERR_FORMAT, "model classifier: parameter '%s' has shape %s, the classifier "
                     "needs [width, 1, 7, 7]", first, hs);
        return 0;
    }
    const int width = (int)sh[0];
    hv_nn_params *ref = NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 0, 0);
    int ok = 0;
    if (hv_nn_params_create(&ref) || hv_model_classifier_params(ref, width, &rng)) goto done;
    for (size_t i = 0; i < hv_nn_params_size(ref); i++) {
        const hv_nn_param *r = hv_nn_params_at(ref, i);
        const char *name = hv_nn_param_name(r);
        const hv_nn_param *p = hv_nn_params_find(ps, name);
        int64_t want[HV_NN_MAX_DIMS], have[HV_NN_MAX_DIMS];
        int nw = hv_nn_param_shape(r, want);
        char ws[128], hs[128];
        hv__model_shape_str(ws, sizeof ws, nw, want);
        if (!p) {
            hv_error_set(HV_ERR_FORMAT, "model classifier: parameter '%s' missing (a classifier of "
                         "width %d has it with shape %s)", name, width, ws);
            goto done;
        }
        int nh = hv_nn_param_shape(p, have), same = nh == nw;
        for (int k = 0; same && k < nw; k++) same = have[k] == want[k];
        if (!same) {
            hv__model_shape_str(hs, sizeof hs, nh, have);
            hv_error_set(HV_ERR_FORMAT, "model classifier: parameter '%s' has shape %s, a classifier "
                         "of width %d (read from %s) needs %s", name, hs, width, first, ws);
            goto done;
        }
    }
    ok = 1;
done:
    hv_nn_params_free(ref);
    return ok ? width : 0;
}

/* ------------------------------------------------------------------ build */

typedef hv__model_builder builder;

/* MONAI Convolution (conv, BN[, ReLU]) named "<prefix>.conv" / ".adn.N";
 * *pre_bn (may be NULL) gets the convolution's output. */
static hv_nn_tensor *conv_block(builder *b, hv_nn_tensor *x, const char *prefix, int stride,
                                int pad, int relu, hv_nn_tensor **pre_bn)
{
    char nm[192];
    snprintf(nm, sizeof nm, "%s.conv.weight", prefix);
    hv_nn_tensor *c = hv_nn_conv2d(b->g, x, hv__model_par(b, nm), NULL, stride, pad, 1);
    if (pre_bn) *pre_bn = c;
    snprintf(nm, sizeof nm, "%s.adn.N", prefix);
    hv_nn_tensor *y = hv__model_bn(b, c, nm);
    return relu ? hv_nn_relu(b->g, y) : y;
}

/* MONAI ChannelSELayer: x * sigmoid(fc2(relu(fc0(gap(x))))). */
/* One SEResNetBottleneck "layer<l>.<i>"; *conv1_out (may be NULL): its first
 * convolution's output before BN. */
static hv_nn_tensor *bottleneck(builder *b, hv_nn_tensor *x, int l, int i, int stride,
                                hv_nn_tensor **conv1_out, hv_nn_tensor **se_out)
{
    char pre[96];
    snprintf(pre, sizeof pre, "layer%d.%d.conv1", l, i);
    hv_nn_tensor *y = conv_block(b, x, pre, stride, 0, 1, conv1_out);
    snprintf(pre, sizeof pre, "layer%d.%d.conv2", l, i);
    y = conv_block(b, y, pre, 1, 1, 1, NULL);
    snprintf(pre, sizeof pre, "layer%d.%d.conv3", l, i);
    y = conv_block(b, y, pre, 1, 0, 0, NULL);
    snprintf(pre, sizeof pre, "layer%d.%d.se_layer", l, i);
    y = hv__model_se_layer(b, y, pre);
    if (se_out) *se_out = y;
    hv_nn_tensor *res = x;
    if (i == 0) {
        snprintf(pre, sizeof pre, "layer%d.0.project", l);
        res = conv_block(b, x, pre, stride, 0, 0, NULL);
    }
    return hv_nn_relu(b->g, hv_nn_add(b->g, y, res));
}

/* MaxPool2d(3, 2, ceil_mode=True) of x >= 0 (see the top of the file). */
static hv_nn_tensor *maxpool_ceil(builder *b, hv_nn_tensor *x)
{
    if (!x) return NULL;
    int64_t sh[HV_NN_MAX_DIMS];
    hv_nn_tensor_shape(x, sh);
    int extra[2] = {0, 0};
    for (int d = 0; d < 2; d++) {
        const int64_t L = sh[2 + d];
        const int64_t out_floor = (L - 3) / 2 + 1;
        int64_t out_ceil = (L - 3 + 1) / 2 + 1; /* ceil((L - 3) / 2) + 1 */
        if ((out_ceil - 1) * 2 >= L) out_ceil--; /* PyTorch: last window starts inside */
        if (out_ceil > out_floor) extra[d] = (int)((out_ceil - 1) * 2 + 3 - L);
    }
    if (extra[0] || extra[1]) x = hv_nn_pad(b->g, x, 0, extra[0], 0, extra[1]);
    return hv_nn_maxpool(b->g, x, 3, 2, 0);
}

hv_status hv_model_classifier_build(hv_nn_graph *g, hv_nn_params *ps, int width, int64_t n,
                                    int64_t h, int64_t w, hv_model_classifier_io *io)
{
    return hv__model_classifier_build_taps(g, ps, width, n, h, w, io, NULL);
}

hv_status hv__model_classifier_build_taps(hv_nn_graph *g, hv_nn_params *ps, int width, int64_t n,
                                          int64_t h, int64_t w, hv_model_classifier_io *io,
                                          hv__cls_taps *taps)
{
    if (!g || !ps || !io || width < 1 || n < 1 || h < 32 || w < 32 || h % 32 || w % 32)
        return hv_error_set(HV_ERR_ARG, "model classifier: bad arguments (width %d, %lld x %lld x "
                            "%lld; H, W multiples of 32)", width, (long long)n, (long long)h,
                            (long long)w);
    memset(io, 0, sizeof *io);
    if (hv_model_classifier_width(ps) != width)
        return hv_error_wrap(HV_ERR_FORMAT, "model classifier: parameters are not a classifier of "
                             "width %d", width);
    builder b = {g, ps, HV_OK, "classifier"};
    hv_nn_tensor *x = hv_nn_input(g, "x", 4, (int64_t[]){n, 1, h, w});
    io->x = x;
    hv_nn_tensor *y = hv_nn_conv2d(g, x, hv__model_par(&b, "layer0.conv1.weight"), NULL, 2, 3, 1);
    y = hv_nn_relu(g, hv__model_bn(&b, y, "layer0.bn1"));
    y = maxpool_ceil(&b, y);
    hv__cls_taps tp = {y, NULL, NULL};
    hv_nn_tensor *target = NULL;
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < n_blocks[l]; i++) {
            y = bottleneck(&b, y, l + 1, i, (i == 0 && l > 0) ? 2 : 1,
                           (l == 3 && i == n_blocks[3] - 1) ? &target : NULL,
                           (l == 0 && i == 0) ? &tp.se1 : NULL);
            if (l == 0 && i == 0) tp.block1 = y;
        }
    y = hv_nn_linear(g, hv_nn_gap(g, y), hv__model_par(&b, "last_linear.weight"),
                     hv__model_par(&b, "last_linear.bias"));
    if (b.st != HV_OK) return b.st;
    hv_status st = hv_nn_graph_status(g);
    if (st != HV_OK) return hv_error_wrap(st, "model classifier: building the graph");
    hv_nn_set_output(y);
    hv_nn_set_output(target);
    io->logits = y;
    io->target = target;
    if (taps) {
        *taps = tp;
        hv_nn_set_output(tp.pool);
        hv_nn_set_output(tp.se1);
        hv_nn_set_output(tp.block1);
    }
    return HV_OK;
}
