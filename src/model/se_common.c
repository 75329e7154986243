/*
 * se_common.c: what the two SE-ResNets share (se_common.h): their layers'
 * parameters with MONAI's initialisation (convolutions Kaiming normal over
 * fan_in, batch norm 1/0 with running statistics 0/1, linear weights
 * PyTorch's default with zero biases) and the graph pieces over them.
 */
#include <math.h>
#include <stdio.h>

#include "se_common.h"

hv_status hv__model_add_conv(hv_nn_params *ps, const char *name, int64_t cout, int64_t cin,
                             int64_t k, int nsp, hv_rng *rng)
{
    hv_nn_param *p;
    int64_t sh[5] = {cout, cin, k, k, k};
    double fan = (double)cin;
    for (int a = 0; a < nsp; a++) fan *= (double)k;
    hv_status st = hv_nn_params_add(ps, name, 2 + nsp, sh, 1, &p);
    if (st) return st;
    hv_nn_init_normal(p, rng, 0.0, sqrt(2.0 / fan));
    return HV_OK;
}

hv_status hv__model_add_bn(hv_nn_params *ps, const char *prefix, int64_t c)
{
    static const char *const sfx[4] = {"weight", "bias", "running_mean", "running_var"};
    char nm[192];
    for (int k = 0; k < 4; k++) {
        hv_nn_param *p;
        snprintf(nm, sizeof nm, "%s.%s", prefix, sfx[k]);
        hv_status st = hv_nn_params_add(ps, nm, 1, &c, k < 2, &p);
        if (st) return st;
        if (k == 0 || k == 3) hv_nn_init_const(p, 1.0);
    }
    return HV_OK;
}

hv_status hv__model_add_linear(hv_nn_params *ps, const char *prefix, int64_t out, int64_t in,
                               hv_rng *rng)
{
    char nm[192];
    hv_nn_param *w, *b;
    int64_t ws[2] = {out, in};
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    hv_status st = hv_nn_params_add(ps, nm, 2, ws, 1, &w);
    if (st) return st;
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    if ((st = hv_nn_params_add(ps, nm, 1, &out, 1, &b))) return st;
    hv_nn_init_torch_default(w, NULL, rng); /* bias stays 0 (MONAI) */
    return HV_OK;
}

hv_nn_tensor *hv__model_par(hv__model_builder *b, const char *name)
{
    hv_nn_param *p = hv_nn_params_find(b->ps, name);
    if (!p) {
        if (b->st == HV_OK)
            b->st = hv_error_set(HV_ERR_NOT_FOUND, "model %s: no parameter %s", b->model, name);
        return NULL;
    }
    return hv_nn_param_tensor(b->g, p);
}

hv_nn_tensor *hv__model_bn(hv__model_builder *b, hv_nn_tensor *x, const char *prefix)
{
    char n0[192], n1[192], n2[192], n3[192];
    snprintf(n0, sizeof n0, "%s.weight", prefix);
    snprintf(n1, sizeof n1, "%s.bias", prefix);
    snprintf(n2, sizeof n2, "%s.running_mean", prefix);
    snprintf(n3, sizeof n3, "%s.running_var", prefix);
    return hv_nn_batch_norm(b->g, x, hv__model_par(b, n0), hv__model_par(b, n1),
                            hv__model_par(b, n2), hv__model_par(b, n3), 0.1f, 1e-5f);
}

hv_nn_tensor *hv__model_se_layer(hv__model_builder *b, hv_nn_tensor *x, const char *prefix)
{
    char w0[192], b0[192], w2[192], b2[192];
    snprintf(w0, sizeof w0, "%s.fc.0.weight", prefix);
    snprintf(b0, sizeof b0, "%s.fc.0.bias", prefix);
    snprintf(w2, sizeof w2, "%s.fc.2.weight", prefix);
    snprintf(b2, sizeof b2, "%s.fc.2.bias", prefix);
    hv_nn_tensor *y = hv_nn_gap(b->g, x);
    y = hv_nn_relu(b->g, hv_nn_linear(b->g, y, hv__model_par(b, w0), hv__model_par(b, b0)));
    y = hv_nn_sigmoid(b->g, hv_nn_linear(b->g, y, hv__model_par(b, w2), hv__model_par(b, b2)));
    return hv_nn_channel_mul(b->g, x, y);
}
