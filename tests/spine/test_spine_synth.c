/*
 * test_spine_synth: straightening on an analytic curved, scoliotic spine
 * (tests/spine/synth.h), independent of the phantom module.
 *
 * Checks: bodies on the central axis; wedge/normal heights at the anterior,
 * middle and posterior thirds; label order; carry-back of the straightened
 * labels (a whole vertebra lost scores 0); the NIfTI affines of the
 * straightened volume and a crop against the analytic spine; exact map file
 * round trip; the same anatomy on an LPS grid gives
 * the same straightened labels; an oblique anisotropic grid; the reference
 * frame/polyline options; de-pedicle removes the arch.
 */
#include "hv/spine.h"
#include "hv_test.h"
#include "spine_check.h"
#include "synth.h"

typedef struct run_result {
    double worst_axis;     /* max |i-ci|,|j-cj| of GT body centroids (voxels) */
    double worst_height;   /* max |measured - true| over ant/mid/post (mm)    */
} run_result;

static void check_case(const char *what, const syn_spine *s, const hv_spine_case *c,
                       double body_c[][3], double tol_axis, double tol_h, run_result *rr)
{
    const hv_spine_map *m = c->map;
    rr->worst_axis = 0;
    rr->worst_height = 0;
    HV_CHECK(c->verts->n == (size_t)s->n, "%s: %zu vertebrae, expected %d", what, c->verts->n, s->n);
    double prev_row = INFINITY;
    for (int q = 0; q < s->n && q < (int)c->verts->n; q++) {
        const syn_vert *v = &s->v[q];
        const hv_spine_vert *sv = &c->verts->v[q];
        HV_CHECK(sv->label == v->label, "%s: vertebra %d label %d", what, q, sv->label);
        HV_CHECK(sv->flags == 0, "%s: label %d flagged %s", what, v->label, hv_spine_flags_str(sv->flags));
        HV_CHECK(sv->row < prev_row, "%s: label %d row %.1f not below the one above (%.1f)", what,
                 v->label, sv->row, prev_row);
        prev_row = sv->row;
        double ijk[3];
        HV_CHECK(hv_spine_map_from_world(m, body_c[q], -1, ijk), "%s: body %d outside the rows", what, q);
        double off = fmax(fabs(ijk[0] - m->ci), fabs(ijk[1] - m->cj));
        if (off > rr->worst_axis) rr->worst_axis = off;
        HV_CHECK(off <= tol_axis, "%s: label %d body centroid at (%.2f, %.2f), axis (%.0f, %.0f)",
                 what, v->label, ijk[0], ijk[1], m->ci, m->cj);
        /* heights at the thirds, columns through the analytic centre */
        double cijk[3];
        hv_spine_map_from_world(m, v->c, ijk[2], cijk);
        const double pos[3] = {v->depth / 3, 0, -v->depth / 3};
        const char *nm[3] = {"anterior", "middle", "posterior"};
        for (int h = 0; h < 3; h++) {
            double truth = syn_height_at(v, pos[h]);
            double got = chk_height(c->labels, v->label, cijk[0], cijk[1] + pos[h] / m->step, 2) * m->step;
            double err = fabs(got - truth);
            if (err > rr->worst_height) rr->worst_height = err;
            HV_CHECK(err <= tol_h, "%s: label %d %s height %.2f mm, truth %.2f mm", what, v->label,
                     nm[h], got, truth);
        }
    }
}

/* The analytic label at world point w: the vertebra's label, 0 outside;
 * with bodies_only, -1 on the arch (de-pedicle may keep a little of it). */
static int syn_label_at(const syn_spine *s, const double w[3], int bodies_only)
{
    for (int q = 0; q < s->n; q++) {
        int in = syn_inside(s, &s->v[q], w);
        if (in == 1 || (in == 2 && !bodies_only)) return s->v[q].label;
        if (in == 2) return -1;
    }
    return 0;
}

/* Independent check of a straightened (or cropped) label volume's NIfTI
 * affine on slice k: at each voxel whose surroundings (a cube of one source
 * voxel, 1 mm, around affine(i, j, k)) the analytic spine labels uniformly,
 * the volume must hold that label. An affine that is off by a millimetre or
 * turned by a degree fails near every boundary; the test does not ask the
 * code under test where a voxel is. Returns the number of mismatches; *n_fg
 * gets the number of uniformly-labelled foreground voxels checked. */
static size_t affine_vs_analytic(const syn_spine *s, const hv_volume *vol, int64_t k, int bodies_only,
                                 size_t *n_fg)
{
    size_t bad = 0;
    *n_fg = 0;
    for (int64_t j = 0; j < vol->dim[1]; j++)
        for (int64_t i = 0; i < vol->dim[0]; i++) {
            double x[3] = {(double)i, (double)j, (double)k}, w[3];
            hv_affine_apply(vol->affine, x, w);
            int want = -2, uniform = 1;
            for (int c = 0; c < 8 && uniform; c++) {
                double wc[3] = {w[0] + (c & 1 ? 0.5 : -0.5), w[1] + (c & 2 ? 0.5 : -0.5),
                                w[2] + (c & 4 ? 0.5 : -0.5)};
                int l = syn_label_at(s, wc, bodies_only);
                if (want == -2) want = l;
                uniform = l == want && l >= 0;
            }
            if (!uniform) continue;
            *n_fg += want > 0;
            bad += (int)hv_vol_get(vol, hv_vol_idx(vol, i, j, k)) != want;
        }
    return bad;
}

int main(void)
{
    syn_spine s;
    syn_make(&s, 5, 18, 22.0, 28.0, 1);
    double body_c[SYN_MAXV][3];
    double A[4][4];
    int64_t dim[3];
    hv_volume *mask = NULL, *ct = NULL;
    hv_spine_case *c = NULL;
    run_result rr;

    /* 1 mm RAS */
    const double sp1[3] = {1, 1, 1};
    syn_grid(sp1, 0, 0, -90, 120, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, body_c) == HV_OK, "render");
    double t0 = hv_time_now();
    HV_CHECK_OK(hv_spine_case_run(ct, mask, NULL, NULL, &c));
    HV_REQUIRE(c != NULL, "case");
    printf("# 1 mm RAS: straightened %lldx%lldx%lld in %.2f s\n", (long long)c->ct->dim[0],
           (long long)c->ct->dim[1], (long long)c->ct->dim[2], hv_time_now() - t0);
    /* 1 voxel on the axis (issue bound); 0.5 mm heights (issue bound). */
    check_case("1mm", &s, c, body_c, 1.0, 0.5, &rr);
    printf("# 1 mm: worst body offset from the axis %.3f voxel, worst height error %.3f mm\n",
           rr.worst_axis, rr.worst_height);
    {
        int wl, wl2;
        double wb = chk_carry_back(c->map, c->labels, mask, 1, &wl);
        double ww = chk_carry_back(c->map, c->labels_whole, mask, 0, &wl2);
        /* issue bound 99 % for bodies; whole labels measured 0.998: bound 0.99 */
        HV_CHECK(wb >= 0.99, "carry back: body %d keeps %.4f", wl, wb);
        HV_CHECK(ww >= 0.99, "carry back: label %d keeps %.4f", wl2, ww);
        printf("# 1 mm: carry back, worst body keeps %.4f of its voxels, worst whole label %.4f\n", wb, ww);
        /* the score itself: a vertebra missing from the straightened volume
         * (here erased) must bring it to 0, in both modes */
        hv_volume *lost = NULL;
        HV_CHECK_OK(hv_vol_convert(c->labels, HV_DTYPE_U8, &lost));
        if (lost) {
            int gone = s.v[2].label;
            for (size_t q = 0; q < lost->nvox; q++)
                if (((uint8_t *)lost->data)[q] == gone) ((uint8_t *)lost->data)[q] = 0;
            double lb = chk_carry_back(c->map, lost, mask, 1, &wl);
            HV_CHECK(lb == 0.0 && wl == gone, "carry back with label %d erased: %.4f (label %d)", gone, lb, wl);
            lb = chk_carry_back(c->map, lost, mask, 0, &wl);
            HV_CHECK(lb == 0.0 && wl == gone, "carry back (whole) with label %d erased: %.4f (label %d)", gone,
                     lb, wl);
        }
        hv_vol_free(lost);
    }

    /* de-pedicle: nothing of the label remains behind the canal */
    {
        size_t behind = 0, whole_behind = 0;
        int64_t jcut = (int64_t)c->map->cj - 35;   /* body half depth 17 + canal 16 */
        for (int64_t k = 0; k < c->labels->dim[2]; k++)
            for (int64_t j = 0; j < jcut; j++)
                for (int64_t i = 0; i < c->labels->dim[0]; i++) {
                    size_t idx = hv_vol_idx(c->labels, i, j, k);
                    behind += ((uint8_t *)c->labels->data)[idx] != 0;
                    whole_behind += ((uint8_t *)c->labels_whole->data)[idx] != 0;
                }
        HV_CHECK(behind == 0 && whole_behind > 1000, "de-pedicle: %zu voxels behind the canal "
                 "after, %zu before", behind, whole_behind);
    }

    /* the NIfTI affine on the central row, for the volume and a crop: first
     * against the analytic spine (independent of the code under test), then
     * agreement with the map's own forward transform (consistency: the two
     * are computed separately in src/spine and must not drift apart) */
    {
        size_t nfg = 0, bad = affine_vs_analytic(&s, c->labels_whole, c->map->n / 2, 0, &nfg);
        HV_CHECK(bad == 0 && nfg > 500, "straightened affine vs the analytic spine on the central row: %zu of "
                 "%zu uniformly labelled voxels disagree", bad, nfg);
        printf("# affine vs analytic labels, central row: %zu foreground voxels, %zu mismatches\n", nfg, bad);
    }
    {
        int64_t kc = c->map->n / 2;
        double worst_aff = 0;
        for (int64_t j = 0; j < c->map->height; j += 9)
            for (int64_t i = 0; i < c->map->width; i += 7) {
                double ijk[3] = {(double)i, (double)j, (double)kc}, wa[3], wm[3];
                hv_affine_apply(c->labels->affine, ijk, wa);
                hv_spine_map_to_world(c->map, ijk, wm);
                for (int d = 0; d < 3; d++) worst_aff = fmax(worst_aff, fabs(wa[d] - wm[d]));
            }
        HV_CHECK(worst_aff < 1e-9, "affine vs map on the central row: %.3g mm", worst_aff);
        hv_spine_crop *cr = NULL;
        HV_CHECK_OK(hv_spine_crop_make(c, 20, &cr));
        if (cr) {
            size_t nfg = 0, bad = affine_vs_analytic(&s, cr->labels, kc - cr->offset[2], 1, &nfg);
            HV_CHECK(bad == 0 && nfg > 300, "crop affine vs the analytic spine: %zu of %zu uniformly "
                     "labelled voxels disagree", bad, nfg);
            printf("# crop affine vs analytic bodies: %zu foreground voxels, %zu mismatches\n", nfg, bad);
        }
        if (cr) {
            double x[3] = {10, 100, (double)(kc - cr->offset[2])}, wa[3], wm[3];
            double sx[3] = {x[0] + (double)cr->offset[0], x[1] + (double)cr->offset[1], (double)kc};
            hv_affine_apply(cr->ct->affine, x, wa);
            hv_spine_map_to_world(c->map, sx, wm);
            double e = fmax(fabs(wa[0] - wm[0]), fmax(fabs(wa[1] - wm[1]), fabs(wa[2] - wm[2])));
            HV_CHECK(e < 1e-9, "crop affine vs map: %.3g mm", e);
        }
        hv_spine_crop_free(cr);
    }

    /* map file round trip */
    {
        const char *dir = hv_test_tmpdir("spine_synth");
        char path[4200];
        snprintf(path, sizeof path, "%s/map.csv", dir ? dir : ".");
        hv_spine_map *m2 = NULL;
        HV_CHECK_OK(hv_spine_map_write(path, c->map));
        HV_CHECK_OK(hv_spine_map_read(path, &m2));
        if (m2) {
            int same = m2->n == c->map->n && m2->width == c->map->width &&
                       memcmp(m2->p, c->map->p, (size_t)m2->n * 3 * sizeof(double)) == 0 &&
                       memcmp(m2->r, c->map->r, (size_t)m2->n * 3 * sizeof(double)) == 0 &&
                       memcmp(m2->a, c->map->a, (size_t)m2->n * 3 * sizeof(double)) == 0 &&
                       memcmp(m2->affine, c->map->affine, sizeof m2->affine) == 0;
            HV_CHECK(same, "map read back differs");
        }
        hv_spine_map_free(m2);
        /* forward/inverse on random points near the curve */
        hv_rng rng;
        hv_rng_seed(&rng, 7, 0);
        double worst_rt = 0;
        for (int q = 0; q < 2000; q++) {
            double ijk[3] = {hv_rng_range(&rng, 20, 108), hv_rng_range(&rng, 20, 108),
                             (double)hv_rng_below(&rng, (uint64_t)c->map->n)}, w[3], back[3];
            hv_spine_map_to_world(c->map, ijk, w);
            hv_spine_map_from_world(c->map, w, -1, back);
            for (int d = 0; d < 3; d++) worst_rt = fmax(worst_rt, fabs(back[d] - ijk[d]));
        }
        /* exact at integer rows up to rounding */
        HV_CHECK(worst_rt < 1e-6, "map forward/inverse round trip error %.3g voxel", worst_rt);
    }

    /* the same anatomy on an LPS grid gives the same straightened labels */
    {
        double B[4][4];
        memcpy(B, A, sizeof B);
        for (int d = 0; d < 2; d++) {   /* flip i and j: voxel centres unchanged as a set */
            B[d][3] = A[d][3] + A[d][d] * (double)(dim[d] - 1);
            B[d][d] = -A[d][d];
        }
        hv_volume *m2 = NULL, *c2 = NULL;
        hv_spine_case *cc = NULL;
        HV_CHECK_OK(syn_render(&s, B, dim, &m2, &c2, NULL));
        HV_CHECK_OK(hv_spine_case_run(c2, m2, NULL, NULL, &cc));
        if (cc) {
            size_t diff = 0, fg = 0;
            int same_grid = cc->labels->nvox == c->labels->nvox;
            HV_CHECK(same_grid, "LPS: straightened grid differs");
            for (size_t n = 0; same_grid && n < c->labels->nvox; n++) {
                uint8_t a = ((uint8_t *)c->labels->data)[n], b = ((uint8_t *)cc->labels->data)[n];
                fg += a != 0;
                diff += a != b;
            }
            /* measured 0 differing voxels; allow rounding at 0.1 % */
            HV_CHECK(same_grid && diff <= fg / 1000, "LPS vs RAS: %zu of %zu voxels differ", diff, fg);
            printf("# LPS vs RAS: %zu of %zu label voxels differ\n", diff, fg);
        }
        hv_spine_case_free(cc);
        hv_vol_free(m2);
        hv_vol_free(c2);
    }

    /* reference options: polyline, coronal-plane frame, curve through whole centroids */
    {
        hv_spine_opts o;
        hv_spine_opts_default(&o);
        o.straighten.curve = HV_SPINE_CURVE_POLYLINE;
        o.straighten.frame = HV_SPINE_FRAME_REFERENCE;
        o.straighten.through = HV_SPINE_THROUGH_WHOLE;
        hv_spine_case *cr = NULL;
        HV_CHECK_OK(hv_spine_case_run(ct, mask, NULL, &o, &cr));
        if (cr) {
            double prev = INFINITY;
            for (size_t q = 0; q < cr->verts->n; q++) {
                HV_CHECK(cr->verts->v[q].has_body && cr->verts->v[q].row < prev,
                         "reference options: label %d row %.1f", cr->verts->v[q].label,
                         cr->verts->v[q].row);
                prev = cr->verts->v[q].row;
            }
        }
        hv_spine_case_free(cr);
    }
    hv_spine_case_free(c);
    c = NULL;
    hv_vol_free(mask);
    hv_vol_free(ct);

    /* oblique, anisotropic grid: 0.9 x 1.1 x 2.0 mm, rotated 7 and -12 degrees */
    {
        const double sp2[3] = {0.9, 1.1, 2.0};
        syn_grid(sp2, 7, -12, -90, 120, A, dim);
        HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, body_c) == HV_OK, "render oblique");
        HV_CHECK_OK(hv_spine_case_run(ct, mask, NULL, NULL, &c));
        if (c) {
            /* issue bound: 1 mm at anisotropic/oblique grids */
            check_case("oblique", &s, c, body_c, 1.0, 1.0, &rr);
            printf("# oblique 0.9x1.1x2.0: worst axis offset %.3f voxel, worst height error %.3f mm\n",
                   rr.worst_axis, rr.worst_height);
        }
        hv_spine_case_free(c);
        hv_vol_free(mask);
        hv_vol_free(ct);
    }
    return hv_test_done();
}
