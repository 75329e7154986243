/*
 * test_measure_ref.c: the reference-mode RHLV (spec section 9) on hand-built
 * crops whose column counts give known heights. Layout: rows (craniocaudal)
 * x columns (AP, anterior small) x slices (LR), rows fastest.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv_test.h"

enum { R = 40, C = 60, S = 16 };

static uint8_t *vol(void) { return calloc((size_t)R * C * S, 1); }

static void column(uint8_t *v, int c, int s, int r0, int h)
{
    for (int r = r0; r < r0 + h; r++) v[r + R * (c + C * s)] = 1;
}

int main(void)
{
    const int64_t dim[3] = {R, C, S};
    uint8_t *ori = vol(), *syn = vol();
    HV_REQUIRE(ori && syn, "alloc");
    hv_rhlv_ref out;

    /* 1. boxes: original 20 rows, synthesized 30 rows, columns 10..39,
     * slices 2..12. LR: zmin 2, zmax 12, zc = int(7) = 7, len = 10 // 5 = 2:
     * slices 5..8 (4). Thirds from the synthesized extent 10..39:
     * t1 = int(10 + 29/3) = 19, t2 = int(10 + 58/3) = 29: anterior columns
     * 10..18 (9), middle 19..28 (10), posterior 29..39 (11). */
    for (int s = 2; s <= 12; s++)
        for (int c = 10; c <= 39; c++) {
            column(ori, c, s, 10, 20);
            column(syn, c, s, 5, 30);
        }
    HV_CHECK_OK(hv_measure_rhlv_reference(ori, syn, dim, 0.7, &out));
    HV_CHECK(out.n_slices_used == 4, "4 central slices, got %d", out.n_slices_used);
    HV_CHECK(out.n_cols[0][HV_REG_ANT] == 36 && out.n_cols[0][HV_REG_MID] == 40 &&
             out.n_cols[0][HV_REG_POST] == 44 && out.n_cols[0][HV_REG_ALL] == 120,
             "column counts per third %ld %ld %ld %ld", out.n_cols[0][1], out.n_cols[0][2],
             out.n_cols[0][3], out.n_cols[0][0]);
    for (int r = 0; r < HV_REG_COUNT; r++) {
        HV_CHECK_CLOSE(out.h_syn[r], 30.0, 1e-12, "box syn height");
        HV_CHECK_CLOSE(out.h_ori[r], 20.0, 1e-12, "box ori height");
        HV_CHECK_CLOSE(out.rhlv[r], 10.0 / (30.0 + 1e-6), 1e-12, "box RHLV = 1/3");
    }
    HV_CHECK_CLOSE(out.relative_height_label, 20.0 / (20.0 + 1e-6), 1e-12, "RHL label");

    /* 2. wedge: original anterior columns 12 rows, middle 18, posterior 20;
     * synthesized box of 20. The original's centre column is
     * int(sum c*h / sum h) = int(13222 / 508) = 26 (height 18), so its
     * threshold is 0.7 * 18 = 12.6 and the 12-row anterior columns are all
     * dropped: H_ori anterior = 0 and RHLV anterior = 1 (the reference's
     * behaviour, reproduced). all: (10*18 + 11*20) / 21 kept columns. */
    memset(ori, 0, (size_t)R * C * S);
    memset(syn, 0, (size_t)R * C * S);
    for (int s = 2; s <= 12; s++)
        for (int c = 10; c <= 39; c++) {
            column(ori, c, s, 10, c <= 18 ? 12 : (c <= 28 ? 18 : 20));
            column(syn, c, s, 10, 20);
        }
    HV_CHECK_OK(hv_measure_rhlv_reference(ori, syn, dim, 0.7, &out));
    HV_CHECK_CLOSE(out.h_ori[HV_REG_ANT], 0.0, 0, "anterior dropped by the 0.7 threshold");
    HV_CHECK_CLOSE(out.rhlv[HV_REG_ANT], 20.0 / (20.0 + 1e-6), 1e-12, "anterior RHLV ~1");
    HV_CHECK_CLOSE(out.h_ori[HV_REG_MID], 18.0, 1e-12, "middle 18");
    HV_CHECK_CLOSE(out.rhlv[HV_REG_MID], 2.0 / (20.0 + 1e-6), 1e-12, "middle RHLV 0.1");
    HV_CHECK_CLOSE(out.rhlv[HV_REG_POST], 0.0, 1e-12, "posterior RHLV 0");
    HV_CHECK_CLOSE(out.h_ori[HV_REG_ALL], 400.0 / 21.0, 1e-12, "all = 400/21");
    /* with the function default T = 0.64 (threshold 11.52) they are kept */
    HV_CHECK_OK(hv_measure_rhlv_reference(ori, syn, dim, 0.64, &out));
    HV_CHECK_CLOSE(out.h_ori[HV_REG_ANT], 12.0, 1e-12, "anterior kept at T=0.64");
    HV_CHECK_CLOSE(out.rhlv[HV_REG_ANT], 8.0 / (20.0 + 1e-6), 1e-12, "anterior RHLV 0.4");

    /* 3. upward rescaling: synthesized 16 rows is shorter than the original
     * 20: per region it is scaled by 20 / (16 + 1e-6), so RHLV ~ 0. */
    memset(ori, 0, (size_t)R * C * S);
    memset(syn, 0, (size_t)R * C * S);
    for (int s = 2; s <= 12; s++)
        for (int c = 10; c <= 39; c++) {
            column(ori, c, s, 10, 20);
            column(syn, c, s, 12, 16);
        }
    HV_CHECK_OK(hv_measure_rhlv_reference(ori, syn, dim, 0.7, &out));
    for (int r = 0; r < HV_REG_COUNT; r++) {
        HV_CHECK_CLOSE(out.h_syn[r], 16.0 * 20.0 / (16.0 + 1e-6), 1e-9, "syn scaled up");
        HV_CHECK(fabs(out.rhlv[r]) < 1e-6, "RHLV ~0 after scaling: %g", out.rhlv[r]);
    }

    /* 4. label crops through the hv_volume wrapper; another label is ignored */
    hv_volume *vo = NULL, *vs = NULL;
    HV_CHECK_OK(hv_vol_create(&vo, dim, HV_DTYPE_U8, NULL));
    HV_CHECK_OK(hv_vol_create(&vs, dim, HV_DTYPE_U8, NULL));
    if (vo && vs) {
        uint8_t *a = vo->data, *b = vs->data;
        for (int s = 2; s <= 12; s++)
            for (int c = 10; c <= 39; c++)
                for (int r = 0; r < R; r++) {
                    if (r >= 10 && r < 30) a[r + R * (c + C * s)] = 21;
                    if (r >= 5 && r < 35) b[r + R * (c + C * s)] = 21;
                    if (r < 4) a[r + R * (c + C * s)] = b[r + R * (c + C * s)] = 20;
                }
        HV_CHECK_OK(hv_measure_rhlv_reference_vol(vo, vs, 21, 0.7, &out));
        HV_CHECK_CLOSE(out.rhlv[HV_REG_MID], 10.0 / (30.0 + 1e-6), 1e-12, "label crop RHLV");
        HV_CHECK(hv_measure_rhlv_reference_vol(vo, vs, 22, 0.7, &out) == HV_ERR_EMPTY,
                 "absent label -> empty");
    }
    hv_vol_free(vo);
    hv_vol_free(vs);

    /* 5. empty original, empty synthesized */
    memset(ori, 0, (size_t)R * C * S);
    HV_CHECK(hv_measure_rhlv_reference(ori, syn, dim, 0.7, &out) == HV_ERR_EMPTY, "empty original");
    column(ori, 20, 5, 10, 10);
    memset(syn, 0, (size_t)R * C * S);
    HV_CHECK_OK(hv_measure_rhlv_reference(ori, syn, dim, 0.7, &out));
    HV_CHECK(out.n_slices_used == 0, "no slice with both masks: n_slices_used 0 flags it");
    free(ori);
    free(syn);
    return hv_test_done();
}
