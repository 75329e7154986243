/*
 * test_repro_quality.c: the per-vertebra measures of reproduce's
 * synthesis-quality table (hv_repro_quality_slice) on slices made by hand,
 * with the expected values worked out from the definitions:
 *  - a synthesized slice equal to the original: Dice 1, SSIM 1, PSNR the
 *    cap (identical patches have PSNR +inf);
 *  - a CT off by +5 on the original target's rows and by +50 elsewhere, the
 *    target label shifted by half its height: PSNR = 20 log10(199 / 5) (the
 *    patch is the target's rows only, data range 219 - 20 of the original
 *    slice), Dice = 2 * 1200 / (2400 + 2400) = 0.5;
 *  - no target in the original, and a target of 5 rows: refused
 *    (HV_ERR_EMPTY), the values NaN.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hv/reproduce.h"
#include "hv_test.h"

#define N HV_RUN_QC

static void rect(uint8_t *m, int r0, int r1, int c0, int c1)
{
    memset(m, 0, (size_t)N * N);
    for (int r = r0; r <= r1; r++)
        for (int c = c0; c <= c1; c++) m[(size_t)r * N + c] = 255;
}

int main(void)
{
    const size_t plane = (size_t)N * N;
    uint8_t *ct = malloc(plane), *lab = malloc(plane), *sct = malloc(plane), *slab = malloc(plane);
    HV_REQUIRE(ct && lab && sct && slab, "out of memory");
    /* a ramp of 20..219: data range 199 */
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) ct[(size_t)r * N + c] = (uint8_t)((r + c) % 200 + 20);
    rect(lab, 100, 139, 60, 119); /* 40 rows x 60 columns */
    double q[3];

    /* identical */
    memcpy(sct, ct, plane);
    memcpy(slab, lab, plane);
    HV_CHECK_OK(hv_repro_quality_slice(ct, lab, sct, slab, q));
    HV_CHECK(q[0] == HV_REPRO_PSNR_CAP, "identical: PSNR %g, want the cap %g", q[0], HV_REPRO_PSNR_CAP);
    HV_CHECK_CLOSE(q[1], 1.0, 1e-12, "identical: SSIM");
    HV_CHECK_CLOSE(q[2], 1.0, 1e-12, "identical: Dice");

    /* +5 on the target's rows, +50 elsewhere; label shifted 20 rows */
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) {
            size_t i = (size_t)r * N + c;
            sct[i] = (uint8_t)(ct[i] + (r >= 100 && r <= 139 ? 5 : 50));
        }
    rect(slab, 120, 159, 60, 119);
    HV_CHECK_OK(hv_repro_quality_slice(ct, lab, sct, slab, q));
    HV_CHECK_CLOSE(q[0], 20.0 * log10(199.0 / 5.0), 1e-9, "offset: PSNR on the target's rows");
    HV_CHECK_CLOSE(q[2], 0.5, 1e-12, "half-height shift: Dice");
    HV_CHECK(q[1] > 0.5 && q[1] < 1.0, "offset: SSIM %g in (0.5, 1)", q[1]);

    /* refusals */
    memset(lab, 0, plane);
    HV_CHECK(hv_repro_quality_slice(ct, lab, sct, slab, q) == HV_ERR_EMPTY, "no target refused");
    HV_CHECK(isnan(q[0]) && isnan(q[1]) && isnan(q[2]), "no target: NaN");
    hv_error_clear();
    rect(lab, 100, 104, 60, 119);
    HV_CHECK(hv_repro_quality_slice(ct, lab, sct, slab, q) == HV_ERR_EMPTY, "5-row target refused");
    HV_CHECK(strstr(hv_error_detail(), "5 rows") != NULL, "says why: %s", hv_error_detail());
    hv_error_clear();
    free(ct);
    free(lab);
    free(sct);
    free(slab);
    return hv_test_done();
}
