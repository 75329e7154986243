/*
 * pipeline_internal.h: what the files of src/pipeline share (not public).
 */
#ifndef HV_PIPELINE_INTERNAL_H
#define HV_PIPELINE_INTERNAL_H

#include "hv/pipeline.h"

/* The `pictures` stage (pictures.c). */
hv_status hv_pipe_pictures_run(const hv_pipe_opts *o, hv_pipe_state *s);

/* The learned synthesis methods (synth_gan.c): `gan` and `mask`. */
hv_status hv_pipe_synth_gan(const hv_pipe_opts *o, hv_pipe_state *s);
hv_status hv_pipe_synth_mask(const hv_pipe_opts *o, hv_pipe_state *s);

/* A crop volume (hv_spine_crop layout: i LR, j AP anterior increasing, k
 * rows caudal first) in the reference's array layout (spec 2.5, 8): i = rows
 * from cranial, j = AP from anterior, k = LR, F32, with an affine that keeps
 * every voxel's world position. keep_slices (may be NULL): per crop LR index,
 * 0 leaves that slice zero. *out owned by the caller. */
hv_status hv_pipe_crop_reference_layout(const hv_volume *crop, const uint8_t *keep_slices,
                                        hv_volume **out);

#endif /* HV_PIPELINE_INTERNAL_H */
