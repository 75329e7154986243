/*
 * param_init.c: the SE-ResNets' layer parameters with MONAI's
 * initialisation (param_init.h): convolutions Kaiming normal over fan_in,
 * batch norm 1/0 with running statistics 0/1, linear weights PyTorch's
 * default with zero biases.
 */
#include <math.h>
#include <stdio.h>

#include "param_init.h"

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
