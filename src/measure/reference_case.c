/*
 * reference_case.c: the reference's RHLV (spec section 9) on a whole case.
 *
 * The reference counts voxels column by column on straightened, de-pedicled
 * 1 mm crops of the original mask and of the synthesized one. To compare our
 * numbers with the published pipeline's, this file builds exactly those
 * inputs from our own stages: one spine map for the case (src/spine), the
 * baseline pseudo-healthy mask of each vertebra (hv_measure_synth_mask),
 * both resampled through that same map, de-pedicled, cropped around the
 * target (256 rows x 256 AP x 64 LR) and handed to the column counter in the
 * reference's axis order (rows, AP columns with anterior first, LR slices).
 *
 * The spine stage wants a CT; when the caller has none, the mask itself
 * stands in (only the label volumes are used here).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv/spine.h"

/* Binary target mask of `vol` (straightened grid) in the crop window at
 * `offset` with the crop's dims, laid out for hv_measure_rhlv_reference:
 * element (r, c, s) at r + rows * (c + cols * s), with r = crop k, c = AP
 * reversed (anterior first), s = crop i (LR). */
static void to_reference_layout(const hv_volume *vol, const int64_t offset[3], const int64_t cdim[3],
                                int label, uint8_t *out)
{
    const int64_t rows = cdim[2], cols = cdim[1], slices = cdim[0];
    for (int64_t s = 0; s < slices; s++)
        for (int64_t c = 0; c < cols; c++)
            for (int64_t r = 0; r < rows; r++) {
                int64_t i = s + offset[0], j = (cols - 1 - c) + offset[1], k = r + offset[2];
                uint8_t v = 0;
                if (i >= 0 && j >= 0 && k >= 0 && i < vol->dim[0] && j < vol->dim[1] && k < vol->dim[2])
                    v = hv_vol_get(vol, hv_vol_idx(vol, i, j, k)) == (double)label;
                out[r + rows * (c + cols * s)] = v;
            }
}

hv_status hv_measure_reference_case(const hv_volume *mask, const hv_volume *ct, hv_spine_measure *m,
                                    double threshold)
{
    hv_status st = HV_OK;
    hv_volume *stand_in = NULL;
    hv_spine_case *sc = NULL;
    uint8_t *ori = NULL, *syn = NULL;
    if (!ct) {
        st = hv_vol_convert(mask, HV_DTYPE_F32, &stand_in);
        if (st != HV_OK) goto done;
        ct = stand_in;
    }
    st = hv_spine_case_run(ct, mask, NULL, NULL, &sc);
    if (st != HV_OK) {
        hv_error_wrap(st, "reference RHLV: straightening");
        goto done;
    }
    for (size_t n = 0; n < m->n; n++) {
        hv_vert_measure *v = &m->v[n];
        hv_volume *synth = NULL, *straight = NULL;
        hv_spine_crop *cr = NULL;
        hv_rhlv_ref r;
        hv_status vst = HV_OK;
        for (int g = 0; g < HV_REG_COUNT; g++) v->h_ori[g] = v->h_syn[g] = v->rhlv[g] = NAN;
        if (!v->ori_map.h || !v->syn_map.h) {
            v->flags |= HV_MEAS_NO_SYNTH;
            continue;
        }
        vst = hv_spine_crop_make(sc, v->label, &cr);
        if (vst == HV_OK) vst = hv_measure_synth_mask(mask, m, v->label, &synth);
        if (vst == HV_OK) vst = hv_spine_straighten(sc->map, synth, HV_INTERP_NEAREST, 0, &straight);
        if (vst == HV_OK) vst = hv_spine_depedicle(sc->map, straight, NULL);
        if (vst == HV_OK) {
            const int64_t *cd = cr->labels->dim;
            size_t nv = (size_t)(cd[0] * cd[1] * cd[2]);
            if (!ori) {
                ori = malloc(nv);
                syn = malloc(nv);
            }
            if (!ori || !syn) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            } else {
                to_reference_layout(sc->labels, cr->offset, cd, v->label, ori);
                to_reference_layout(straight, cr->offset, cd, v->label, syn);
                int64_t rdim[3] = {cd[2], cd[1], cd[0]};
                vst = hv_measure_rhlv_reference(ori, syn, rdim, threshold, &r);
            }
        }
        if (st == HV_OK && vst == HV_OK) {
            for (int g = 0; g < HV_REG_COUNT; g++) {
                v->h_ori[g] = r.h_ori[g];
                v->h_syn[g] = r.h_syn[g];
                v->rhlv[g] = r.rhlv[g];
            }
        } else if (st == HV_OK) {
            hv_log_warn("reference RHLV: %s: %s", hv_label_name(v->label) ? hv_label_name(v->label) : "?",
                        hv_error_detail());
            v->flags |= HV_MEAS_NO_SYNTH;
        }
        hv_spine_crop_free(cr);
        hv_vol_free(synth);
        hv_vol_free(straight);
        if (st != HV_OK) goto done;
    }
done:
    free(ori);
    free(syn);
    hv_spine_case_free(sc);
    hv_vol_free(stand_in);
    return st;
}
