/*
 * cls_internal.h: the classifier's builder with taps on intermediate
 * tensors, for tests/model/test_model_classifier.c (the SE block and one
 * bottleneck against PyTorch). Not part of the public API.
 */
#ifndef HV_MODEL_CLS_INTERNAL_H
#define HV_MODEL_CLS_INTERNAL_H

#include "hv/model.h"

typedef struct hv__cls_taps {
    hv_nn_tensor *pool;     /* layer0's output (after the ceil-mode pool)      */
    hv_nn_tensor *se1;      /* layer1.0.se_layer's output (before + shortcut)  */
    hv_nn_tensor *block1;   /* layer1.0's output (after its final ReLU)        */
} hv__cls_taps;

/* hv_model_classifier_build, plus the taps (marked as outputs) when taps is
 * not NULL. Tensors are owned by g. */
hv_status hv__model_classifier_build_taps(hv_nn_graph *g, hv_nn_params *ps, int width, int64_t n,
                                          int64_t h, int64_t w, hv_model_classifier_io *io,
                                          hv__cls_taps *taps);

#endif
