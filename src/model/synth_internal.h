/*
 * synth_internal.h: what the two halves of the synthesis (issue 12, spec 8)
 * share. synth.c opens model files (shape checks, /meta plane), plans the
 * inference graphs and exports training checkpoints; synth_run.c runs the
 * iterative neighbours-first synthesis of one crop on those graphs. Not a
 * public header: hv/model.h ("synthesis") is the contract.
 */
#ifndef HV_MODEL_SYNTH_INTERNAL_H
#define HV_MODEL_SYNTH_INTERNAL_H

#include "hv/model.h"

/* Slices of a synthesis graph (the crops' sagittal slice and coronal canvas). */
#define HV__SYNTH_ROWS 256
#define HV__SYNTH_COLS 256

/* One plane's generator: its weights and one inference graph for
 * opts.batch slices. ps == NULL: no model for this plane. */
typedef struct hv__synth_net {
    hv_nn_params *ps;            /* owned */
    hv_nn_graph *g;              /* owned, planned for inference (flags 0) */
    hv_model_generator_io io;    /* tensors of g (HEALTHIVERT) */
    int cnum;                    /* width (AOTGAN: AOT-GAN's width) */
    int kind;                    /* hv_model_generator_kind */
    int aot_blocks;              /* AOTGAN: blocks */
    hv_nn_tensor *ax, *amask, *aout; /* AOTGAN: tensors of g (B,2,H,W; B,1,H,W; B,2,H,W) */
} hv__synth_net;

struct hv_model_synth {
    hv_model_synth_opts o;
    hv_nn_backend *be;                 /* borrowed */
    hv__synth_net net[2];              /* [HV_SPINE_SAGITTAL], [HV_SPINE_CORONAL] */
    hv_model_synth_trace_fn trace;
    void *trace_ctx;
    /* host buffers of one generator call, batch * rows * cols floats each
     * (p1, p2: batch floats) */
    float *in_x, *in_mask, *in_cam, *in_ratio;
    float *out_xs2, *out_fseg, *out_chk, *out_p1, *out_p2;
    float *aot_io;                     /* AOTGAN: 2 batch planes, its input then output */
};

#endif /* HV_MODEL_SYNTH_INTERNAL_H */
