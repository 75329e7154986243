/*
 * test_measure_bad.c: robust heights on hand-built masks with known answers,
 * and the awkward inputs: a single vertebra, vertebrae with no neighbour, all
 * vertebrae fractured, a vertebra cut by the field of view, an empty mask, a
 * float mask. Each gives a clear error or a flagged row, never a silent zero.
 * Also writes the CSV, the loss-map CSV/PNGs and checks them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/measure.h"
#include "hv_test.h"

/* Body boxes on a 1 mm RAS grid: label L centred at z = zc(L), x in
 * [-20, 20), y (anterior +) in [-15, 15); the height along z varies linearly
 * in y from hp (back, y = -15) to ha (front, y = +15). */
typedef struct body { int label; double ha, hp; } body;

static double zc_of(int label) { return 20.0 + (24 - label) * 40.0; }

static hv_volume *make_stack(const body *b, int n, int64_t nz, double zshift)
{
    int64_t dim[3] = {60, 50, nz};
    double A[4][4] = {{1, 0, 0, -30}, {0, 1, 0, -25}, {0, 0, 1, zshift + 0.5}, {0, 0, 0, 1}};
    hv_volume *v = NULL;
    if (hv_vol_create(&v, dim, HV_DTYPE_U8, A) != HV_OK) return NULL;
    uint8_t *d = v->data;
    for (int q = 0; q < n; q++) {
        double zc = zc_of(b[q].label);
        for (int64_t k = 0; k < nz; k++)
            for (int64_t j = 0; j < 50; j++)
                for (int64_t i = 0; i < 60; i++) {
                    double x = i - 30 + 0.5, y = j - 25 + 0.5, z = k + 0.5 + zshift;
                    if (x < -20 || x >= 20 || y < -15 || y >= 15) continue;
                    double h = b[q].hp + (b[q].ha - b[q].hp) * (y + 15) / 30.0;
                    if (fabs(z - zc) <= h / 2) d[hv_vol_idx(v, i, j, k)] = (uint8_t)b[q].label;
                }
    }
    return v;
}

static const hv_vert_measure *find(const hv_spine_measure *m, int label)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (m->v[i].label == label) return &m->v[i];
    return NULL;
}

int main(void)
{
    hv_spine_measure *m = NULL;
    /* 1. a healthy stack L1..L5 of flat 24 mm bodies, one wedge (L3: anterior
     * 12 mm, posterior 24 mm): heights at 1/6, 1/2, 5/6 of the depth on the
     * linear profile are 14, 18, 22 mm (the voxelised boundary adds at most a
     * voxel; measured error below 0.6 mm, bound 1 mm). */
    body st[5] = {{20, 24, 24}, {21, 24, 24}, {22, 12, 24}, {23, 24, 24}, {24, 24, 24}};
    hv_volume *v = make_stack(st, 5, 200, 0);
    HV_REQUIRE(v, "stack");
    HV_CHECK_OK(hv_measure_spine(v, NULL, NULL, &m));
    HV_REQUIRE(m && m->n == 5, "5 vertebrae");
    const hv_vert_measure *l3 = find(m, 22), *l2 = find(m, 21);
    HV_REQUIRE(l3 && l2, "L2, L3 found");
    HV_CHECK_CLOSE(l2->h_ori[HV_REG_MID], 24.0, 1.0, "flat body height");
    HV_CHECK_CLOSE(l3->h_ori[HV_REG_ANT], 14.0, 1.0, "wedge anterior");
    HV_CHECK_CLOSE(l3->h_ori[HV_REG_MID], 18.0, 1.0, "wedge middle");
    HV_CHECK_CLOSE(l3->h_ori[HV_REG_POST], 22.0, 1.0, "wedge posterior");
    HV_CHECK_CLOSE(l2->depth_mm, 30.0, 1.0, "depth");
    HV_CHECK_CLOSE(l2->width_mm, 40.0, 1.0, "width");
    HV_CHECK(fabs(l2->axis[2]) > 0.999, "axis along z");
    HV_CHECK(l2->ant[1] > 0.999, "anterior = +y");
    HV_CHECK_OK(hv_measure_baseline(m, NULL));
    /* healthy L3 predicted from L2 and L4 (24 mm, scaled by the level prior) */
    HV_CHECK(fabs(l3->h_syn[HV_REG_ANT] - 24.0) < 2.0, "L3 healthy anterior %.2f", l3->h_syn[1]);
    HV_CHECK(l3->rhlv[HV_REG_ANT] > 0.35 && l3->rhlv[HV_REG_ANT] < 0.5, "L3 anterior RHLV %.3f",
             l3->rhlv[HV_REG_ANT]);
    HV_CHECK(l3->flags & HV_MEAS_DEFORMED, "L3 flagged deformed");
    HV_CHECK(!(l2->flags & HV_MEAS_DEFORMED), "L2 not deformed");
    HV_CHECK(hv_measure_genant_vert(l3) == 3, "L3 grade 3 (loss ~42 %%)");
    HV_CHECK(hv_measure_genant_vert(l2) == 0, "L2 grade 0");
    HV_CHECK(find(m, 20)->flags & HV_MEAS_ONE_SIDED, "L1 has references below only");

    /* outputs: CSV with the required header, loss map data and PNGs */
    const char *tmp = hv_test_tmpdir("measure_bad");
    HV_REQUIRE(tmp, "tmpdir");
    char p[4200];
    snprintf(p, sizeof p, "%s/m.csv", tmp);
    HV_CHECK_OK(hv_measure_write_csv(p, "stack", m, 0));
    FILE *f = fopen(p, "r");
    char line[1024] = "";
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    const char *want = "case,label,level,h_ori_ant_mm,h_ori_mid_mm,h_ori_post_mm,h_syn_ant_mm,"
                       "h_syn_mid_mm,h_syn_post_mm,rhlv_all,rhlv_ant,rhlv_mid,rhlv_post,grade,";
    HV_CHECK(strncmp(line, want, strlen(want)) == 0, "CSV header: %s", line);
    snprintf(p, sizeof p, "%s/L3_map.png", tmp);
    HV_CHECK_OK(hv_measure_write_loss_map_png(p, l3));
    unsigned char sig[8] = {0};
    f = fopen(p, "rb");
    if (f) {
        if (fread(sig, 1, 8, f) != 8) sig[0] = 0;
        fclose(f);
    }
    HV_CHECK(sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G', "PNG signature");
    snprintf(p, sizeof p, "%s/L3_curve.png", tmp);
    HV_CHECK_OK(hv_measure_write_loss_curve_png(p, l3));
    snprintf(p, sizeof p, "%s/L3_map.csv", tmp);
    HV_CHECK_OK(hv_measure_write_loss_map_csv(p, l3));
    /* the map's anterior loss is large, the posterior small */
    const hv_height_map *om = &l3->ori_map, *sm = &l3->syn_map;
    int il = om->nl / 2;
    double la = (sm->h[2 + om->na * il] - om->h[2 + om->na * il]) / sm->h[2 + om->na * il];
    double lp = (sm->h[om->na - 3 + om->na * il] - om->h[om->na - 3 + om->na * il]) /
                sm->h[om->na - 3 + om->na * il];
    HV_CHECK(la > 0.4 && lp < 0.15, "map: anterior loss %.2f, posterior %.2f", la, lp);
    hv_measure_spine_free(m);
    hv_vol_free(v);

    /* 2. all fractured: every body is a strong wedge; no undeformed reference
     * is left, so heights come from the prior scaled by the depth, flagged. */
    body wf[4] = {{20, 13, 26}, {21, 13, 26}, {22, 13, 26}, {23, 13, 26}};
    v = make_stack(wf, 4, 200, 0);
    m = NULL;
    HV_CHECK_OK(hv_measure_spine(v, NULL, NULL, &m));
    /* the loop below passes on an empty result: require L1-L4, in order */
    HV_REQUIRE(m && m->n == 4, "all fractured: 4 vertebrae, got %zu", m ? m->n : 0);
    for (size_t i = 0; i < m->n; i++)
        HV_CHECK(m->v[i].label == 20 + (int)i, "all fractured: row %zu is label %d", i, m->v[i].label);
    HV_CHECK_OK(hv_measure_baseline(m, NULL));
    for (size_t i = 0; m && i < m->n; i++) {
        HV_CHECK(m->v[i].flags & HV_MEAS_DEFORMED, "all fractured: %d deformed", m->v[i].label);
        HV_CHECK(m->v[i].flags & HV_MEAS_NO_REFERENCE, "all fractured: %d no reference",
                 m->v[i].label);
        HV_CHECK(hv_measure_genant_vert(&m->v[i]) >= 2, "all fractured: %d graded %d",
                 m->v[i].label, hv_measure_genant_vert(&m->v[i]));
    }
    hv_measure_spine_free(m);
    hv_vol_free(v);

    /* 3. a single vertebra: axis from PCA, no reference */
    body one[1] = {{22, 25, 25}};
    v = make_stack(one, 1, 200, 0);
    m = NULL;
    HV_CHECK_OK(hv_measure_spine(v, NULL, NULL, &m));
    HV_REQUIRE(m && m->n == 1, "single vertebra");
    HV_CHECK(m->v[0].flags & HV_MEAS_AXIS_PCA, "single: axis from PCA");
    HV_CHECK_CLOSE(m->v[0].h_ori[HV_REG_MID], 25.0, 1.0, "single: height");
    HV_CHECK_OK(hv_measure_baseline(m, NULL));
    HV_CHECK(m->v[0].flags & HV_MEAS_NO_REFERENCE, "single: no reference flagged");
    HV_CHECK(isfinite(m->v[0].h_syn[HV_REG_MID]), "single: prior estimate");
    hv_measure_spine_free(m);
    hv_vol_free(v);

    /* 4. no neighbour within two levels (T12 and L3, sized like the priors):
     * the axis comes from PCA, each predicts the other from one side */
    body far[2] = {{19, 22.5, 23.5}, {22, 26.3, 26.8}};
    v = make_stack(far, 2, 240, 0);
    m = NULL;
    HV_CHECK_OK(hv_measure_spine(v, NULL, NULL, &m));
    HV_REQUIRE(m && m->n == 2 && find(m, 19) && find(m, 22), "far apart: T12 and L3 measured (%zu rows)",
               m ? m->n : 0);
    for (size_t i = 0; m && i < m->n; i++)
        HV_CHECK(m->v[i].flags & HV_MEAS_AXIS_PCA, "far apart: %d axis from PCA", m->v[i].label);
    HV_CHECK_OK(hv_measure_baseline(m, NULL));
    for (size_t i = 0; m && i < m->n; i++)
        HV_CHECK(m->v[i].flags & HV_MEAS_ONE_SIDED, "far apart: %d one-sided (flags %#x)",
                 m->v[i].label, m->v[i].flags);
    hv_measure_spine_free(m);
    hv_vol_free(v);

    /* 5. a vertebra cut by the field of view: flagged truncated, not a reference */
    body cut[3] = {{21, 24, 24}, {22, 24, 24}, {23, 24, 24}};
    v = make_stack(cut, 3, 80, 70.0); /* z from 70 to 150: L2 (z 140) is cut */
    m = NULL;
    HV_CHECK_OK(hv_measure_spine(v, NULL, NULL, &m));
    const hv_vert_measure *tl = find(m, 21);
    HV_CHECK(tl && (tl->flags & HV_MEAS_TRUNCATED), "L2 truncated");
    hv_measure_spine_free(m);
    hv_vol_free(v);

    /* 6. errors: empty mask, float mask */
    int64_t dim[3] = {10, 10, 10};
    v = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_U8, NULL));
    m = NULL;
    HV_CHECK(hv_measure_spine(v, NULL, NULL, &m) == HV_ERR_EMPTY && m == NULL, "empty mask");
    hv_vol_free(v);
    v = NULL;
    HV_CHECK_OK(hv_vol_create(&v, dim, HV_DTYPE_F32, NULL));
    HV_CHECK(hv_measure_spine(v, NULL, NULL, &m) == HV_ERR_ARG, "float mask rejected");
    hv_vol_free(v);
    HV_CHECK(hv_measure_baseline(NULL, NULL) == HV_ERR_ARG, "baseline NULL");
    return hv_test_done();
}
