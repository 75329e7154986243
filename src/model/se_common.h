/*
 * se_common.h: what the two SE-ResNets (the 2-D fracture classifier,
 * classifier.c, and the 3-D SupCon-SENet, senet3d.c) share, in one place so
 * that they cannot drift apart: their layers' parameters with MONAI's
 * initialisation, and the graph pieces over those parameters (a parameter
 * by name, batch norm, the SE layer). Not a public header.
 *
 * The hv__model_add_* add to ps (borrowed) under the names given and draw
 * from rng (borrowed) in call order.
 */
#ifndef HV_MODEL_SE_COMMON_H
#define HV_MODEL_SE_COMMON_H

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

/* Recording a network on g from the parameters in ps (both borrowed); the
 * first missing parameter's status stays in st (later calls then return
 * NULL or pass NULL on, which the graph reports). model names it in the
 * message ("classifier", "senet3d"). */
typedef struct hv__model_builder {
    hv_nn_graph *g;
    hv_nn_params *ps;
    hv_status st;
    const char *model;
} hv__model_builder;

/* The parameter `name` as a graph tensor; NULL (and b->st) when missing. */
hv_nn_tensor *hv__model_par(hv__model_builder *b, const char *name);
/* Batch norm of x with "<prefix>.weight", ".bias", ".running_mean",
 * ".running_var" (momentum 0.1, eps 1e-5: PyTorch's defaults). */
hv_nn_tensor *hv__model_bn(hv__model_builder *b, hv_nn_tensor *x, const char *prefix);
/* Hu et al.'s SE layer on x (N, C, ...): x * sigmoid(fc.2(relu(fc.0(gap(x))))),
 * the linears "<prefix>.fc.0" and "<prefix>.fc.2". */
hv_nn_tensor *hv__model_se_layer(hv__model_builder *b, hv_nn_tensor *x, const char *prefix);

#endif /* HV_MODEL_SE_COMMON_H */
