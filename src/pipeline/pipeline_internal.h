/*
 * pipeline_internal.h: what the files of src/pipeline share (not public).
 */
#ifndef HV_PIPELINE_INTERNAL_H
#define HV_PIPELINE_INTERNAL_H

#include "hv/pipeline.h"

/* The `pictures` stage (pictures.c). */
hv_status hv_pipe_pictures_run(const hv_pipe_opts *o, hv_pipe_state *s);

#endif /* HV_PIPELINE_INTERNAL_H */
