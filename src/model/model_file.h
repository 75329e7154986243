/*
 * model_file.h: small HDF5 helpers shared by the readers of model files
 * (synth.c: generators, gradcam.c: classifiers) and by the networks' shape
 * checks (classifier.c), so that every "parameter X has shape [a, b] in the
 * file, the network needs [c, d]" message is formed the same way.
 * Internal to src/model; nothing here allocates.
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

#endif /* HV_MODEL_FILE_H */
