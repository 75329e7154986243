/*
 * hv/model.h: the HealthiVert networks, built on the engine of hv/nn.h. The
 * engine (src/nn) knows ops, graphs and optimisers only; what a network looks
 * like, and the reference's PyTorch state_dict names of its parameters, live
 * here (src/model).
 *
 * For now the module holds the two reference networks:
 *
 *  - the generator (spec 5.1-5.3): coarse stage with the adjacent-vertebra
 *    segmentation head, fine stage with contextual attention, both SHRM
 *    height heads (hv_model_generator_*);
 *  - the pix2pix PatchGAN discriminator (spec 5.4; hv_model_patchgan_*).
 *
 * Each network is two calls: *_params creates its parameters, under the
 * reference's state_dict names, in a parameter set (so a converted .pth
 * file loads by name, see docs/nn.md), and *_build records its forward on a
 * graph from those parameters. The same parameter set may serve any number
 * of graphs (an inference graph and a training graph, several batch sizes).
 * Plan, run and train the graph with hv/nn.h.
 *
 * Ownership: nothing here allocates anything the caller frees. Parameters
 * are added to the caller's hv_nn_params (owned by the set, freed with
 * hv_nn_params_free). Tensors recorded by *_build (the inputs and outputs in
 * hv_model_generator_io, the logits of hv_model_patchgan_build) belong to the
 * graph and live until hv_nn_graph_free; the graph borrows the parameter set,
 * which must outlive it. The rng, prefix and other arguments are borrowed for
 * the duration of the call.
 */
#ifndef HV_MODEL_H
#define HV_MODEL_H

#include <stdint.h>

#include "hv/core.h"
#include "hv/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------- the reference generator (5.1-5.3) */

/* Create the generator's parameters in ps with the reference's PyTorch
 * state_dict names ("coarse_generator.conv1.conv.weight_orig", ...; see
 * docs/nn.md), initialised as PyTorch does by default (seeded). The trainable
 * count at cnum 16 is 986,888. */
hv_status hv_model_generator_params(hv_nn_params *ps, int cnum, hv_rng *rng);

/* hv_nn_sn_power_iteration on every spectral-normalised convolution of the
 * generator in ps (as `iters` training steps would). */
hv_status hv_model_generator_sn_warmup(hv_nn_params *ps, int iters);

typedef struct hv_model_generator_io {
    /* inputs, N,1,H,W each (H, W multiples of 32) */
    hv_nn_tensor *x;      /* masked CT in [-1, 1]                     */
    hv_nn_tensor *mask;   /* 1 in the band to synthesise              */
    hv_nn_tensor *cam;    /* Grad-CAM++ map; the net uses 1 - cam      */
    hv_nn_tensor *ratio;  /* slice_ratio, constant plane per item      */
    /* outputs */
    hv_nn_tensor *coarse_seg; /* sigmoid, N,1,H,W                      */
    hv_nn_tensor *x_stage1;   /* coarse CT, clamped to [-1, 1]         */
    hv_nn_tensor *p1;         /* SHRM head 1, sigmoid, N,1             */
    hv_nn_tensor *fine_seg;
    hv_nn_tensor *x_stage2;
    hv_nn_tensor *p2;
} hv_model_generator_io;

/* Record the generator on g (inputs created here, outputs marked). */
hv_status hv_model_generator_build(hv_nn_graph *g, hv_nn_params *ps, int cnum, int64_t n,
                                   int64_t h, int64_t w, hv_model_generator_io *io);

/* ------------------------------------ the reference PatchGAN discriminator (5.4) */

/* Parameters of one PatchGAN (n_layers 3, ndf 64, batch norm) with the
 * reference's state_dict names behind `prefix` (e.g. "" or "D1."):
 * "<prefix>model.0.weight", "model.3.running_mean", ...; initialised as the
 * reference (N(0, 0.02) convolutions, BN weight N(1, 0.02), biases 0).
 * in_ch is 1 in the reference. 2,763,585 trainable parameters. */
hv_status hv_model_patchgan_params(hv_nn_params *ps, const char *prefix, int in_ch,
                                   hv_rng *rng);
/* Record the discriminator on x (N, in_ch, H, W); returns the logits
 * (N, 1, H/8 - 2, W/8 - 2), NULL on error (graph status or a missing
 * parameter, whose detail is in the error buffer). */
hv_nn_tensor *hv_model_patchgan_build(hv_nn_graph *g, hv_nn_params *ps, const char *prefix,
                                      hv_nn_tensor *x);

#ifdef __cplusplus
}
#endif
#endif /* HV_MODEL_H */
