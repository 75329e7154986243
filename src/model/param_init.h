/*
 * param_init.h: adding the parameters of the SE-ResNets' layers (the 2-D
 * fracture classifier, classifier.c, and the 3-D SupCon-SENet, senet3d.c)
 * with MONAI's initialisation, in one place so the two networks cannot
 * drift apart. Not a public header.
 *
 * Each adds to ps (borrowed) under the names given and draws from rng
 * (borrowed) in call order, so a seed gives the same weights as before.
 */
#ifndef HV_MODEL_PARAM_INIT_H
#define HV_MODEL_PARAM_INIT_H

#include "hv/model.h"

/* A bias-free convolution weight "name" (cout, cin, k^nsp: nsp = 2 or 3
 * spatial axes), Kaiming normal over fan_in = cin k^nsp. */
hv_status hv__model_add_conv(hv_nn_params *ps, const char *name, int64_t cout, int64_t cin,
                             int64_t k, int nsp, hv_rng *rng);
/* Batch norm "<prefix>.weight" (1), ".bias" (0), ".running_mean" (0),
 * ".running_var" (1); the running statistics not trainable. */
hv_status hv__model_add_bn(hv_nn_params *ps, const char *prefix, int64_t c);
/* Linear "<prefix>.weight" (out, in), PyTorch's default, and ".bias" 0. */
hv_status hv__model_add_linear(hv_nn_params *ps, const char *prefix, int64_t out, int64_t in,
                               hv_rng *rng);

#endif /* HV_MODEL_PARAM_INIT_H */
