/*
 * src/model/generator.c: the reference HealthiVert generator (spec 5.1-5.3),
 * coarse and fine stages with contextual attention, assembled from the
 * public engine ops of hv/nn.h (no engine internals). It is also the
 * engine's benchmark and end-to-end correctness target (bench/generator.c,
 * tests/model/test_model_nets.c). The losses, the SHRM composite and training
 * are still to come in this module (issue 11).
 *
 * Parameters carry the reference's PyTorch state_dict names verbatim
 * ("coarse_generator.conv1.conv.weight_orig", ".conv.bias", ".conv.weight_u",
 * ".conv.weight_v", "fine_generator.fc_height.weight", ...), so converting a
 * released .pth file is a copy and the mapping in docs/nn.md is the identity.
 * Every "gen_conv" block is spectral_norm(weight) -> conv2d(bias) ->
 * activation (ELU unless stated), zero padding inside the convolution.
 */
#include <stdio.h>
#include <string.h>

#include "hv/model.h"

typedef enum act { ACT_ELU, ACT_RELU, ACT_NONE, ACT_SIGMOID } act;

typedef struct conv_spec {
    const char *name;
    int cin, cout, k, s, p, d;
    act a;
} conv_spec;

/* in/out channels are multiples of cnum/2 plus a constant: (mul_half, add) */
#define C(mh, add) ((mh) * half + (add))

static int coarse_specs(int half, conv_spec *o)
{
    const conv_spec s[] = {
        {"conv1", C(0, 3), C(2, 0), 5, 1, 2, 1, ACT_ELU},
        {"conv2_downsample", C(2, 0), C(4, 0), 3, 2, 1, 1, ACT_ELU},
        {"conv3", C(4, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv4_downsample", C(4, 0), C(8, 0), 3, 2, 1, 1, ACT_ELU},
        {"conv5", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv6", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv7_atrous", C(8, 0), C(8, 0), 3, 1, 2, 2, ACT_ELU},
        {"conv8_atrous", C(8, 0), C(8, 0), 3, 1, 4, 4, ACT_ELU},
        {"conv9_atrous", C(8, 0), C(8, 0), 3, 1, 8, 8, ACT_ELU},
        {"conv10_atrous", C(8, 0), C(8, 0), 3, 1, 16, 16, ACT_ELU},
        {"conv11", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv12", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv20", C(8, 1), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv13", C(8, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv14", C(4, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv19", C(4, 1), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv15", C(4, 0), C(2, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv16", C(2, 0), C(1, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv17", C(1, 0), 1, 3, 1, 1, 1, ACT_NONE},
        {"conv18", C(1, 0), 1, 3, 1, 1, 1, ACT_SIGMOID},
    };
    memcpy(o, s, sizeof s);
    return (int)(sizeof s / sizeof s[0]);
}

static int fine_specs(int half, conv_spec *o)
{
    const conv_spec s[] = {
        {"conv1", C(0, 4), C(2, 0), 5, 1, 2, 1, ACT_ELU},
        {"conv2_downsample", C(2, 0), C(2, 0), 3, 2, 1, 1, ACT_ELU},
        {"conv3", C(2, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv4_downsample", C(4, 0), C(4, 0), 3, 2, 1, 1, ACT_ELU},
        {"conv5", C(4, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv6", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"conv7_atrous", C(8, 0), C(8, 0), 3, 1, 2, 2, ACT_ELU},
        {"conv8_atrous", C(8, 0), C(8, 0), 3, 1, 4, 4, ACT_ELU},
        {"conv9_atrous", C(8, 0), C(8, 0), 3, 1, 8, 8, ACT_ELU},
        {"conv10_atrous", C(8, 0), C(8, 0), 3, 1, 16, 16, ACT_ELU},
        {"pmconv1", C(0, 4), C(2, 0), 5, 1, 2, 1, ACT_ELU},
        {"pmconv2_downsample", C(2, 0), C(2, 0), 3, 2, 1, 1, ACT_ELU},
        {"pmconv3", C(2, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"pmconv4_downsample", C(4, 0), C(8, 0), 3, 2, 1, 1, ACT_ELU},
        {"pmconv5", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"pmconv6", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_RELU},
        {"pmconv9", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"pmconv10", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv11", C(16, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv19", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv12", C(8, 0), C(8, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv13", C(8, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv14", C(4, 0), C(4, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv15", C(4, 0), C(2, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv16", C(2, 0), C(1, 0), 3, 1, 1, 1, ACT_ELU},
        {"allconv17", C(1, 1), 1, 3, 1, 1, 1, ACT_NONE},
        {"allconv18", C(1, 1), 1, 3, 1, 1, 1, ACT_SIGMOID},
    };
    memcpy(o, s, sizeof s);
    return (int)(sizeof s / sizeof s[0]);
}

#define MAX_SPECS 32

static hv_status add_conv(hv_nn_params *ps, const char *stage, const conv_spec *c, hv_rng *rng)
{
    char nm[4][160];
    snprintf(nm[0], sizeof nm[0], "%s.%s.conv.weight_orig", stage, c->name);
    snprintf(nm[1], sizeof nm[1], "%s.%s.conv.bias", stage, c->name);
    snprintf(nm[2], sizeof nm[2], "%s.%s.conv.weight_u", stage, c->name);
    snprintf(nm[3], sizeof nm[3], "%s.%s.conv.weight_v", stage, c->name);
    int64_t ws[4] = {c->cout, c->cin, c->k, c->k}, bs = c->cout, vs = (int64_t)c->cin * c->k * c->k;
    hv_nn_param *w, *b, *u, *v;
    hv_status st;
    if ((st = hv_nn_params_add(ps, nm[0], 4, ws, 1, &w)) ||
        (st = hv_nn_params_add(ps, nm[1], 1, &bs, 1, &b)) ||
        (st = hv_nn_params_add(ps, nm[2], 1, &bs, 0, &u)) ||
        (st = hv_nn_params_add(ps, nm[3], 1, &vs, 0, &v)))
        return st;
    hv_nn_init_torch_default(w, b, rng);
    hv_nn_init_sn_vectors(u, v, rng);
    return HV_OK;
}

static hv_status add_fc(hv_nn_params *ps, const char *stage, int in, hv_rng *rng)
{
    char nw[96], nb[96];
    snprintf(nw, sizeof nw, "%s.fc_height.weight", stage);
    snprintf(nb, sizeof nb, "%s.fc_height.bias", stage);
    int64_t ws[2] = {1, in}, bs = 1;
    hv_nn_param *w, *b;
    hv_status st;
    if ((st = hv_nn_params_add(ps, nw, 2, ws, 1, &w)) || (st = hv_nn_params_add(ps, nb, 1, &bs, 1, &b)))
        return st;
    hv_nn_init_torch_default(w, b, rng);
    return HV_OK;
}

hv_status hv_model_generator_params(hv_nn_params *ps, int cnum, hv_rng *rng)
{
    if (!ps || !rng || cnum < 2 || cnum % 2)
        return hv_error_set(HV_ERR_ARG, "model generator: cnum must be even and >= 2");
    conv_spec sp[MAX_SPECS];
    hv_status st;
    int n = coarse_specs(cnum / 2, sp);
    for (int i = 0; i < n; i++)
        if ((st = add_conv(ps, "coarse_generator", &sp[i], rng))) return st;
    if ((st = add_fc(ps, "coarse_generator", 4 * cnum, rng))) return st;
    n = fine_specs(cnum / 2, sp);
    for (int i = 0; i < n; i++)
        if ((st = add_conv(ps, "fine_generator", &sp[i], rng))) return st;
    return add_fc(ps, "fine_generator", 4 * cnum, rng);
}

hv_status hv_model_generator_sn_warmup(hv_nn_params *ps, int iters)
{
    const char *suffix = ".conv.weight_orig";
    const size_t ls = strlen(suffix);
    int found = 0;
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *w = hv_nn_params_at(ps, i);
        const char *wn = hv_nn_param_name(w);
        size_t ln = strlen(wn);
        if (ln <= ls || strcmp(wn + ln - ls, suffix)) continue;
        char nu[192], nv[192];
        snprintf(nu, sizeof nu, "%.*s.conv.weight_u", (int)(ln - ls), wn);
        snprintf(nv, sizeof nv, "%.*s.conv.weight_v", (int)(ln - ls), wn);
        hv_nn_param *u = hv_nn_params_find(ps, nu), *v = hv_nn_params_find(ps, nv);
        if (!u || !v) return hv_error_set(HV_ERR_NOT_FOUND, "model generator: no u/v for %s", wn);
        hv_nn_sn_power_iteration(w, u, v, iters);
        found++;
    }
    return found ? HV_OK : hv_error_set(HV_ERR_NOT_FOUND, "model generator: no spectral-norm weights");
}

typedef struct builder {
    hv_nn_graph *g;
    hv_nn_params *ps;
    const char *stage;
    conv_spec sp[MAX_SPECS];
    int nsp;
    hv_status st;
} builder;

static hv_nn_tensor *pt(builder *b, const char *name)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", b->stage, name);
    hv_nn_param *p = hv_nn_params_find(b->ps, full);
    if (!p && b->st == HV_OK)
        b->st = hv_error_set(HV_ERR_NOT_FOUND, "model generator: parameter %s missing", full);
    return p ? hv_nn_param_tensor(b->g, p) : NULL;
}

static hv_nn_tensor *block(builder *b, const char *name, hv_nn_tensor *x)
{
    const conv_spec *c = NULL;
    for (int i = 0; i < b->nsp; i++)
        if (strcmp(b->sp[i].name, name) == 0) c = &b->sp[i];
    if (!c) {
        if (b->st == HV_OK) b->st = hv_error_set(HV_ERR_INTERNAL, "model generator: no block %s", name);
        return NULL;
    }
    char nm[4][96];
    snprintf(nm[0], sizeof nm[0], "%s.conv.weight_orig", name);
    snprintf(nm[1], sizeof nm[1], "%s.conv.bias", name);
    snprintf(nm[2], sizeof nm[2], "%s.conv.weight_u", name);
    snprintf(nm[3], sizeof nm[3], "%s.conv.weight_v", name);
    hv_nn_tensor *w = hv_nn_spectral_norm(b->g, pt(b, nm[0]), pt(b, nm[2]), pt(b, nm[3]));
    hv_nn_tensor *y = hv_nn_conv2d(b->g, x, w, pt(b, nm[1]), c->s, c->p, c->d);
    switch (c->a) {
    case ACT_ELU: return hv_nn_elu(b->g, y, 1.0f);
    case ACT_RELU: return hv_nn_relu(b->g, y);
    case ACT_SIGMOID: return hv_nn_sigmoid(b->g, y);
    default: return y;
    }
}

static hv_nn_tensor *height_head(builder *b, hv_nn_tensor *x)
{
    hv_nn_tensor *h = hv_nn_linear(b->g, hv_nn_gap(b->g, x), pt(b, "fc_height.weight"),
                                   pt(b, "fc_height.bias"));
    return hv_nn_sigmoid(b->g, h);
}

hv_status hv_model_generator_build(hv_nn_graph *g, hv_nn_params *ps, int cnum, int64_t n,
                                   int64_t h, int64_t w, hv_model_generator_io *io)
{
    if (!g || !ps || !io || cnum < 2 || cnum % 2 || n < 1 || h < 32 || w < 32 || h % 32 || w % 32)
        return hv_error_set(HV_ERR_ARG, "model generator: bad arguments (H, W multiples of 32)");
    memset(io, 0, sizeof *io);
    builder b = {.g = g, .ps = ps, .stage = "coarse_generator", .st = HV_OK};
    const int64_t shape[4] = {n, 1, h, w};
    io->x = hv_nn_input(g, "x", 4, shape);
    io->mask = hv_nn_input(g, "mask", 4, shape);
    io->cam = hv_nn_input(g, "cam", 4, shape);
    io->ratio = hv_nn_input(g, "slice_ratio", 4, shape);

    /* coarse stage */
    b.nsp = coarse_specs(cnum / 2, b.sp);
    hv_nn_tensor *cam_inv = hv_nn_scale(g, io->cam, -1.0f, 1.0f);
    hv_nn_tensor *in3[3] = {io->x, io->ratio, io->mask};
    hv_nn_tensor *x = block(&b, "conv1", hv_nn_concat(g, 3, in3));
    x = block(&b, "conv2_downsample", x);
    x = block(&b, "conv3", x);
    x = block(&b, "conv4_downsample", x);
    x = block(&b, "conv5", x);
    x = block(&b, "conv6", x);
    x = block(&b, "conv7_atrous", x);
    x = block(&b, "conv8_atrous", x);
    x = block(&b, "conv9_atrous", x);
    x = block(&b, "conv10_atrous", x);
    io->p1 = height_head(&b, x);
    x = block(&b, "conv11", x);
    x = block(&b, "conv12", x);
    hv_nn_tensor *c2[2] = {hv_nn_upsample(g, x, 2), hv_nn_downsample(g, cam_inv, 2)};
    x = block(&b, "conv20", hv_nn_concat(g, 2, c2));
    x = block(&b, "conv13", x);
    x = block(&b, "conv14", x);
    hv_nn_tensor *c3[2] = {hv_nn_upsample(g, x, 2), cam_inv};
    x = block(&b, "conv19", hv_nn_concat(g, 2, c3));
    x = block(&b, "conv15", x);
    x = block(&b, "conv16", x);
    io->x_stage1 = hv_nn_clamp(g, block(&b, "conv17", x), -1.0f, 1.0f);
    io->coarse_seg = block(&b, "conv18", x);

    /* fine stage */
    b.stage = "fine_generator";
    b.nsp = fine_specs(cnum / 2, b.sp);
    hv_nn_tensor *in4[4] = {io->x, io->coarse_seg, io->mask, io->ratio};
    hv_nn_tensor *xnow = hv_nn_concat(g, 4, in4);
    x = block(&b, "conv1", xnow);
    x = block(&b, "conv2_downsample", x);
    x = block(&b, "conv3", x);
    x = block(&b, "conv4_downsample", x);
    x = block(&b, "conv5", x);
    x = block(&b, "conv6", x);
    x = block(&b, "conv7_atrous", x);
    x = block(&b, "conv8_atrous", x);
    x = block(&b, "conv9_atrous", x);
    hv_nn_tensor *hallu = block(&b, "conv10_atrous", x);
    x = block(&b, "pmconv1", xnow);
    x = block(&b, "pmconv2_downsample", x);
    x = block(&b, "pmconv3", x);
    x = block(&b, "pmconv4_downsample", x);
    x = block(&b, "pmconv5", x);
    x = block(&b, "pmconv6", x);
    hv_nn_ctx_attn_opts ca = {3, 2, 3, 10.0f};
    x = hv_nn_ctx_attn(g, x, x, io->mask, &ca);
    x = block(&b, "pmconv9", x);
    x = block(&b, "pmconv10", x);
    hv_nn_tensor *c4[2] = {hallu, x};
    x = block(&b, "allconv11", hv_nn_concat(g, 2, c4));
    io->p2 = height_head(&b, x);
    x = block(&b, "allconv12", x);
    x = block(&b, "allconv19", x);
    x = block(&b, "allconv13", hv_nn_upsample(g, x, 2));
    x = block(&b, "allconv14", x);
    x = block(&b, "allconv15", hv_nn_upsample(g, x, 2));
    x = block(&b, "allconv16", x);
    hv_nn_tensor *c5[2] = {x, io->x_stage1};
    x = hv_nn_concat(g, 2, c5);
    io->x_stage2 = hv_nn_clamp(g, block(&b, "allconv17", x), -1.0f, 1.0f);
    io->fine_seg = block(&b, "allconv18", x);

    hv_nn_tensor *outs[6] = {io->coarse_seg, io->x_stage1, io->p1, io->fine_seg, io->x_stage2, io->p2};
    for (int i = 0; i < 6; i++) hv_nn_set_output(outs[i]);
    if (b.st != HV_OK) return b.st;
    hv_status st = hv_nn_graph_status(g);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "model generator");
}
