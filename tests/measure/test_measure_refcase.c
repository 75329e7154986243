/*
 * test_measure_refcase.c: hv_measure_reference_case (the reference's RHLV on
 * a whole case: straighten, pseudo-healthy mask, de-pedicle, crop, column
 * counts) against an independent numpy re-implementation of the reference
 * algorithm as the spec writes it (scripts/make_refcase_fixture.py, committed
 * with its output in tests/measure/fixtures/refcase_*).
 *
 * The fixture is a straight 1 mm lumbar stack with posterior arches; L3 is an
 * anterior wedge (12 mm in front, 24 mm behind), the others flat 24 mm.
 *  - h_ori depends only on the mask and the algorithm. Our straightening
 *    samples a smooth curve where the spec's is a polyline, so next to the
 *    wedge (where the curve bends) a column can gain or lose a voxel:
 *    measured worst 0.60 mm (L4 anterior), bound 0.75 mm.
 *  - h_syn and RHLV: the script's "fake" is the ideal healthy body (the flat
 *    24 mm box); ours is the baseline's pseudo-healthy mask, predicted from
 *    the neighbours with level priors, not the ideal: measured worst 1.80 mm
 *    (L1 middle) and 0.081 (L1 middle), bounds 2.0 mm and 0.10. A swapped AP layout
 *    (anterior and posterior exchanged) moves L3's h_ori by 7 mm and its
 *    anterior RHLV by 0.3; an RHLV of 0 everywhere misses L3 by 0.38.
 */
#include "hv/io.h"
#include "hv/measure.h"
#include "hv_test.h"

int main(void)
{
    char path[4096], exp_path[4096];
    snprintf(path, sizeof path, "%s/measure/fixtures/refcase_mask.nii.gz", HV_TEST_SOURCE_DIR);
    snprintf(exp_path, sizeof exp_path, "%s/measure/fixtures/refcase_expected.txt", HV_TEST_SOURCE_DIR);
    hv_volume *mask = NULL;
    HV_CHECK_OK(hv_io_nifti_read(path, HV_DTYPE_U8, NULL, &mask, NULL));
    HV_REQUIRE(mask != NULL, "fixture mask read");
    FILE *f = fopen(exp_path, "r");
    HV_REQUIRE(f != NULL, "%s", exp_path);
    double want[5][12];
    int lab[5], n = 0;
    char line[1024];
    while (n < 5 && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        double *w = want[n];
        int got = sscanf(line, "%d %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &lab[n], &w[0], &w[1], &w[2],
                         &w[3], &w[4], &w[5], &w[6], &w[7], &w[8], &w[9], &w[10], &w[11]);
        HV_REQUIRE(got == 13, "fixture line: %s", line);
        n++;
    }
    fclose(f);
    HV_REQUIRE(n == 5, "5 expected rows, got %d", n);

    hv_spine_measure *m = NULL;
    HV_CHECK_OK(hv_measure_spine(mask, NULL, NULL, &m));
    HV_REQUIRE(m && m->n == 5, "L1-L5 measured (%zu)", m ? m->n : 0);
    HV_CHECK_OK(hv_measure_baseline(m, NULL));
    HV_CHECK_OK(hv_measure_reference_case(mask, NULL, m, 0.7));
    double w_ori = 0, w_syn = 0, w_rhlv = 0;
    for (int q = 0; q < 5; q++) {
        const hv_vert_measure *v = &m->v[q];
        HV_CHECK(v->label == lab[q], "row %d: label %d, expected %d", q, v->label, lab[q]);
        printf("# %s  h_ori %6.2f %6.2f %6.2f %6.2f (ref %6.2f %6.2f %6.2f %6.2f)  h_syn %6.2f %6.2f %6.2f %6.2f "
               "(ref %6.2f %6.2f %6.2f %6.2f)  rhlv %6.3f %6.3f %6.3f %6.3f (ref %6.3f %6.3f %6.3f %6.3f)\n",
               hv_label_name(v->label), v->h_ori[0], v->h_ori[1], v->h_ori[2], v->h_ori[3], want[q][0],
               want[q][1], want[q][2], want[q][3], v->h_syn[0], v->h_syn[1], v->h_syn[2], v->h_syn[3],
               want[q][4], want[q][5], want[q][6], want[q][7], v->rhlv[0], v->rhlv[1], v->rhlv[2], v->rhlv[3],
               want[q][8], want[q][9], want[q][10], want[q][11]);
        for (int g = 0; g < HV_REG_COUNT; g++) {
            char what[64];
            snprintf(what, sizeof what, "%s region %d h_ori", hv_label_name(v->label), g);
            HV_CHECK_CLOSE(v->h_ori[g], want[q][g], 0.75, what);
            snprintf(what, sizeof what, "%s region %d h_syn", hv_label_name(v->label), g);
            HV_CHECK_CLOSE(v->h_syn[g], want[q][4 + g], 2.0, what);
            snprintf(what, sizeof what, "%s region %d rhlv", hv_label_name(v->label), g);
            HV_CHECK_CLOSE(v->rhlv[g], want[q][8 + g], 0.10, what);
            w_ori = fmax(w_ori, fabs(v->h_ori[g] - want[q][g]));
            w_syn = fmax(w_syn, fabs(v->h_syn[g] - want[q][4 + g]));
            w_rhlv = fmax(w_rhlv, fabs(v->rhlv[g] - want[q][8 + g]));
        }
    }
    printf("# worst |ours - numpy reference|: h_ori %.3f mm, h_syn %.3f mm, rhlv %.4f\n", w_ori, w_syn, w_rhlv);
    hv_measure_spine_free(m);
    hv_vol_free(mask);
    return hv_test_done();
}
