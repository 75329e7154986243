/*
 * rhlv_ref.c: the reference's RHLV (spec section 9), reproduced as written,
 * so that our numbers can be set beside the published pipeline's.
 *
 * It works on a straightened crop: rows run craniocaudally, columns
 * antero-posteriorly (anterior = small index), slices left-right, 1 mm
 * voxels assumed (heights are voxel counts). Per sagittal slice in the
 * central ~40 % of the original vertebra's LR extent:
 *   - column height = foreground count in the column;
 *   - thirds from the synthesized mask's column extent [ymin, ymax]:
 *     t1 = int(ymin + (ymax-ymin)/3), t2 = int(ymin + 2(ymax-ymin)/3);
 *     anterior [0, t1), middle [t1, t2), posterior [t2, ncols), all [0, ncols);
 *   - centre height = height of the column int(mean column index of the
 *     slice's foreground pixels), for each mask separately;
 *   - per region, if the original's tallest column is taller than the
 *     synthesized one's, the synthesized heights are scaled up by
 *     orig_max / (syn_max + 1e-6); the "all" factor (computed first) also
 *     scales the synthesized centre height used by every region;
 *   - columns with height > T x centre height are kept (synthesized columns
 *     against the synthesized centre, original against the original's).
 * Heights are the means of the kept columns pooled over slices (0 when none,
 * as the reference does), RHLV = (H_syn - H_ori) / (H_syn + 1e-6).
 * Where the spec is silent (the order of the "all" scaling, pixel-weighted
 * column mean) the choice is the natural reading of the description and is
 * stated here; the robust mode (heights.c) is what fixes these defects.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"

static size_t at(const int64_t dim[3], int64_t r, int64_t c, int64_t s)
{
    return (size_t)r + (size_t)dim[0] * ((size_t)c + (size_t)dim[1] * (size_t)s);
}

hv_status hv_measure_rhlv_reference(const uint8_t *ori, const uint8_t *syn,
                                    const int64_t dim[3], double threshold,
                                    hv_rhlv_ref *out)
{
    hv_status st = HV_OK;
    long *ho = NULL, *hs = NULL;
    double *hsf = NULL;
    if (!ori || !syn || !dim || !out) return hv_error_set(HV_ERR_ARG, "rhlv reference: NULL argument");
    if (dim[0] < 1 || dim[1] < 1 || dim[2] < 1)
        return hv_error_set(HV_ERR_ARG, "rhlv reference: bad dims");
    memset(out, 0, sizeof *out);
    const int64_t R = dim[0], C = dim[1], S = dim[2];

    /* LR extent and mean slice of the original */
    int64_t zmin = -1, zmax = -1;
    double zsum = 0;
    size_t nz = 0;
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++)
                if (ori[at(dim, r, c, s)]) {
                    if (zmin < 0) zmin = s;
                    zmax = s;
                    zsum += (double)s;
                    nz++;
                }
    if (nz == 0) return hv_error_set(HV_ERR_EMPTY, "rhlv reference: the original mask is empty");
    int64_t zc = (int64_t)(zsum / (double)nz);
    int64_t len = (zmax - zmin) / 5;
    int64_t z0 = zc - len, z1 = zc + len;
    if (z0 < 0) z0 = 0;
    if (z1 > S) z1 = S;

    ho = calloc((size_t)C, sizeof *ho);
    hs = calloc((size_t)C, sizeof *hs);
    hsf = calloc((size_t)C, sizeof *hsf);
    if (!ho || !hs || !hsf) {
        st = hv_error_set(HV_ERR_NOMEM, "rhlv reference: %lld columns", (long long)C);
        goto done;
    }
    double sum[2][HV_REG_COUNT] = {{0}};
    for (int64_t s = z0; s < z1; s++) {
        long no = 0, ns = 0;
        double co = 0, cs = 0;
        int64_t ymin = -1, ymax = -1;
        for (int64_t c = 0; c < C; c++) {
            ho[c] = hs[c] = 0;
            for (int64_t r = 0; r < R; r++) {
                if (ori[at(dim, r, c, s)]) ho[c]++;
                if (syn[at(dim, r, c, s)]) hs[c]++;
            }
            no += ho[c];
            ns += hs[c];
            co += (double)c * (double)ho[c];
            cs += (double)c * (double)hs[c];
            if (hs[c]) {
                if (ymin < 0) ymin = c;
                ymax = c;
            }
        }
        if (no == 0 || ns == 0) continue;
        out->n_slices_used++;
        int64_t t1 = (int64_t)((double)ymin + (double)(ymax - ymin) / 3.0);
        int64_t t2 = (int64_t)((double)ymin + 2.0 * (double)(ymax - ymin) / 3.0);
        double cen_o = (double)ho[(int64_t)(co / (double)no)];
        double cen_s = (double)hs[(int64_t)(cs / (double)ns)];
        const int64_t lo[HV_REG_COUNT] = {0, 0, t1, t2};
        const int64_t hi[HV_REG_COUNT] = {C, t1, t2, C};
        for (int reg = 0; reg < HV_REG_COUNT; reg++) {
            long mo = 0, ms = 0;
            for (int64_t c = lo[reg]; c < hi[reg]; c++) {
                if (ho[c] > mo) mo = ho[c];
                if (hs[c] > ms) ms = hs[c];
            }
            double f = 1.0;
            if (mo > ms) f = (double)mo / ((double)ms + 1e-6);
            if (reg == HV_REG_ALL) cen_s *= f;
            for (int64_t c = lo[reg]; c < hi[reg]; c++) {
                hsf[c] = (double)hs[c] * f;
                if (hsf[c] > cen_s * threshold) {
                    sum[0][reg] += hsf[c];
                    out->n_cols[0][reg]++;
                }
                if ((double)ho[c] > cen_o * threshold) {
                    sum[1][reg] += (double)ho[c];
                    out->n_cols[1][reg]++;
                }
            }
        }
    }
    for (int reg = 0; reg < HV_REG_COUNT; reg++) {
        out->h_syn[reg] = out->n_cols[0][reg] ? sum[0][reg] / (double)out->n_cols[0][reg] : 0.0;
        out->h_ori[reg] = out->n_cols[1][reg] ? sum[1][reg] / (double)out->n_cols[1][reg] : 0.0;
        out->rhlv[reg] = (out->h_syn[reg] - out->h_ori[reg]) / (out->h_syn[reg] + 1e-6);
    }
    double mn = fmin(out->h_ori[HV_REG_ANT], fmin(out->h_ori[HV_REG_MID], out->h_ori[HV_REG_POST]));
    double mx = fmax(out->h_ori[HV_REG_ANT], fmax(out->h_ori[HV_REG_MID], out->h_ori[HV_REG_POST]));
    out->relative_height_label = mn / (mx + 1e-6);
done:
    free(ho);
    free(hs);
    free(hsf);
    return st;
}

hv_status hv_measure_rhlv_reference_vol(const hv_volume *ori, const hv_volume *syn,
                                        int label, double threshold, hv_rhlv_ref *out)
{
    hv_status st = HV_OK;
    uint8_t *a = NULL, *b = NULL;
    if (!ori || !syn) return hv_error_set(HV_ERR_ARG, "rhlv reference: NULL volume");
    for (int d = 0; d < 3; d++)
        if (ori->dim[d] != syn->dim[d])
            return hv_error_set(HV_ERR_ARG, "rhlv reference: original and synthesized crops differ in size");
    a = malloc(ori->nvox ? ori->nvox : 1);
    b = malloc(ori->nvox ? ori->nvox : 1);
    if (!a || !b) {
        st = hv_error_set(HV_ERR_NOMEM, "rhlv reference: %zu voxels", ori->nvox);
        goto done;
    }
    for (size_t i = 0; i < ori->nvox; i++) {
        a[i] = hv_vol_get(ori, i) == (double)label;
        b[i] = hv_vol_get(syn, i) == (double)label;
    }
    st = hv_measure_rhlv_reference(a, b, ori->dim, threshold, out);
    if (st != HV_OK) hv_error_wrap(st, "label %d", label);
done:
    free(a);
    free(b);
    return st;
}
