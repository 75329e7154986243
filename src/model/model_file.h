/*
 * model_file.h: small HDF5 functions shared by the readers of model files
 * (synth.c: generators, gradcam.c: classifiers) and by the networks' shape
 * checks (classifier.c), so that every "parameter X has shape [a, b] in the
 * file, the network needs [c, d]" message is formed the same way, and one
 * opener (hv__model_file_open) refuses a missing, unreadable or foreign file
 * alike for both kinds of network.
 * Internal to src/model; nothing here allocates except the HDF5 handles of
 * an hv__model_file, which hv__model_file_close releases.
 */
#ifndef HV_MODEL_FILE_H
#define HV_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "hv/nn.h"

/* "[a, b, c]" for the nd entries of sh into buf (truncated to len). */
void hv__model_shape_str(char *buf, size_t len, int nd, const int64_t *sh);

/* Shape of dataset `name` in group loc: 1 found (*nd, sh set), 0 missing,
 * -1 not a dataset of at most HV_NN_MAX_DIMS dimensions. HDF5's error
 * printing is the caller's to switch off. */
int hv__model_probe_shape(hid_t loc, const char *name, int *nd, int64_t sh[HV_NN_MAX_DIMS]);

/* What a model file must hold for one kind of network (static data of the
 * reader; every string borrowed). The width is read from the first
 * convolution's weight, [width, in_ch, ksize, ksize]. */
typedef struct hv__model_kind {
    const char *net;         /* "classifier": "holds no classifier", "a classifier needs" */
    const char *ckpt_group;  /* "C": a training checkpoint's parameters at /C/params */
    const char *meta_kind;   /* /meta kind must start with this; NULL: not checked */
    const char *first_conv;  /* the first convolution's weight                      */
    int64_t in_ch, ksize;    /* its input channels and kernel size                  */
    int even;                /* the width must be even (and >= 2)                   */
    const char *first_needs; /* "[width, 1, 7, 7]": what the message says is needed */
    const char *width_name;  /* "width" | "width cnum": "a <net> of <width_name> 8" */
} hv__model_kind;

/* A model file open for reading: the file, the parameters' group, and the
 * width read from the first convolution. */
typedef struct hv__model_file {
    hid_t f, gp;
    int in_ckpt; /* 1: parameters at /<ckpt_group>/params; 0: /params */
    int width;
} hv__model_file;

/* Open path and check it as a model file of kind k: a readable regular
 * HDF5 file with /params (unless need_ckpt) or /<ckpt_group>/params, /meta
 * kind (when k->meta_kind), and the first convolution's shape. Refusals
 * read "<pfx> '<path>' ..." (pfx e.g. "model classifier: file"). On error
 * m holds no handle. HDF5's error printing is the caller's to switch off. */
hv_status hv__model_file_open(const char *path, const char *pfx, const hv__model_kind *k,
                              int need_ckpt, hv__model_file *m);

/* Every parameter of ref present in m's group with ref's shape, else
 * HV_ERR_FORMAT naming the parameter and both shapes. */
hv_status hv__model_file_check_shapes(const hv__model_file *m, const char *path, const char *pfx,
                                      const hv__model_kind *k, const hv_nn_params *ref);

/* Release m's handles (idempotent). */
void hv__model_file_close(hv__model_file *m);

#endif /* HV_MODEL_FILE_H */
