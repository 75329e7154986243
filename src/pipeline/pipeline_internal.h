/*
 * pipeline_internal.h: what the files of src/pipeline share (not public).
 */
#ifndef HV_PIPELINE_INTERNAL_H
#define HV_PIPELINE_INTERNAL_H

#include "hv/pipeline.h"

/* The `pictures` stage (pictures.c). */
hv_status hv_pipe_pictures_run(const hv_pipe_opts *o, hv_pipe_state *s);

/* The `attention` stage (attention.c) and the freeing of its products
 * (hv_pipe_state_clear). */
hv_status hv_pipe_attention_run(const hv_pipe_opts *o, hv_pipe_state *s);
void hv_pipe_attention_clear(hv_pipe_state *s);

/* The learned synthesis methods (synth_gan.c): `gan` and `mask`. */
hv_status hv_pipe_synth_gan(const hv_pipe_opts *o, hv_pipe_state *s);
hv_status hv_pipe_synth_mask(const hv_pipe_opts *o, hv_pipe_state *s);

/* The gan's measurement of vertebra v (s->m) against the synthesized label
 * crop syn_labels of its crop cr (same dims; synthesised: per crop LR index,
 * 1 = the synthesis wrote that slice): robust heights with the original's
 * rays after the paste into the straightened labels and the way back to the
 * scanner grid, and with o->rhlv_reference the reference's column counts
 * (synth_gan.c explains both). On success v's h_syn, rhlv, syn_map (and in
 * reference mode h_ori) are replaced and why[0] is 0; a result that cannot
 * be used leaves v as it was and says why in `why` (HV_OK still); only
 * out-of-memory is an error. */
hv_status hv_pipe_gan_measure(const hv_pipe_opts *o, const hv_pipe_state *s,
                              const hv_spine_crop *cr, const hv_volume *syn_labels,
                              const uint8_t *synthesised, hv_vert_measure *v, char *why,
                              size_t cap);

/* A crop volume (hv_spine_crop layout: i LR, j AP anterior increasing, k
 * rows caudal first) in the reference's array layout (spec 2.5, 8): i = rows
 * from cranial, j = AP from anterior, k = LR, F32, with an affine that keeps
 * every voxel's world position. keep_slices (may be NULL): per crop LR index,
 * 0 leaves that slice zero. *out owned by the caller. */
hv_status hv_pipe_crop_reference_layout(const hv_volume *crop, const uint8_t *keep_slices,
                                        hv_volume **out);

#endif /* HV_PIPELINE_INTERNAL_H */
