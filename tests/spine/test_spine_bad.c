/*
 * test_spine_bad: bad and awkward inputs to the spine stage each give a clear
 * error or a flagged vertebra, never a crash: an empty mask, a float mask, a
 * mask with one vertebra, labels that skip a level, centroids outside the
 * volume (one, and all) or far from their label (ignored: the label's own
 * centre is used, issue 9), a centroid file whose axes do not match the mask,
 * a vertebra cut by the field of view, crops of vertebrae without a body.
 */
#include "hv/spine.h"
#include "hv_test.h"
#include "synth.h"

static const double sp2[3] = {2, 2, 2};

static int has_flag(const hv_spine_case *c, int label, unsigned flag)
{
    long q = hv_spine_verts_find(c->verts, label);
    return q >= 0 && (c->verts->v[q].flags & flag) != 0;
}

int main(void)
{
    syn_spine s;
    double A[4][4], bc[SYN_MAXV][3];
    int64_t dim[3];
    hv_volume *mask = NULL, *ct = NULL;
    hv_spine_case *c = NULL;
    hv_status st;

    /* empty mask */
    syn_make(&s, 0, 18, 20, 25, 1);
    syn_grid(sp2, 0, 0, -40, 40, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, NULL) == HV_OK, "render");
    st = hv_spine_case_run(ct, mask, NULL, NULL, &c);
    HV_CHECK(st == HV_ERR_EMPTY && c == NULL && strstr(hv_error_detail(), "no vertebra"),
             "empty mask: %s: %s", hv_status_name(st), hv_error_detail());
    printf("# empty mask -> %s: %s\n", hv_status_name(st), hv_error_detail());
    /* float mask */
    {
        hv_volume *f = NULL;
        HV_CHECK_OK(hv_vol_convert(mask, HV_DTYPE_F32, &f));
        st = hv_spine_case_run(ct, f, NULL, NULL, &c);
        HV_CHECK(st == HV_ERR_ARG && c == NULL, "float mask: %s: %s", hv_status_name(st), hv_error_detail());
        hv_vol_free(f);
    }
    hv_vol_free(mask);
    hv_vol_free(ct);

    /* one vertebra: straight line, flagged SINGLE, crop works */
    syn_make(&s, 1, 21, 0, 0, 1);
    syn_grid(sp2, 0, 0, 20, 140, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, NULL) == HV_OK, "render");
    st = hv_spine_case_run(ct, mask, NULL, NULL, &c);
    HV_CHECK(st == HV_OK, "one vertebra: %s", hv_error_detail());
    if (c) {
        HV_CHECK(has_flag(c, 21, HV_SPINE_FLAG_SINGLE), "one vertebra: not flagged single");
        hv_spine_crop *cr = NULL;
        HV_CHECK_OK(hv_spine_crop_make(c, 21, &cr));
        hv_spine_crop_free(cr);
    }
    hv_spine_case_free(c);
    c = NULL;
    hv_vol_free(mask);
    hv_vol_free(ct);

    /* labels skipping a level: L1 (20) missing between T12 and L2 */
    syn_make(&s, 5, 18, 20, 25, 1);
    syn_grid(sp2, 0, 0, -90, 120, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, bc) == HV_OK, "render");
    {
        hv_volume *gap = NULL;
        HV_CHECK_OK(hv_vol_clone(mask, &gap));
        for (size_t n = 0; gap && n < gap->nvox; n++)
            if (((uint8_t *)gap->data)[n] == 20) ((uint8_t *)gap->data)[n] = 0;
        st = hv_spine_case_run(ct, gap, NULL, NULL, &c);
        HV_CHECK(st == HV_OK, "gap: %s", hv_error_detail());
        if (c) {
            HV_CHECK(c->verts->n == 4, "gap: %zu vertebrae", c->verts->n);
            HV_CHECK(has_flag(c, 19, HV_SPINE_FLAG_GAP) && has_flag(c, 21, HV_SPINE_FLAG_GAP) &&
                     !has_flag(c, 18, HV_SPINE_FLAG_GAP), "gap: flags wrong");
        }
        hv_spine_case_free(c);
        c = NULL;
        hv_vol_free(gap);
    }

    /* centroids from JSON: one outside the volume is flagged, all outside is an error */
    {
        double inv[4][4];
        HV_REQUIRE(hv_affine_invert(mask->affine, inv) == HV_OK, "invert");
        hv_centroid items[5];
        hv_centroids cj = {"", 5, items};
        for (int q = 0; q < 5; q++) {
            double ijk[3];
            hv_affine_apply(inv, s.v[q].c, ijk);
            items[q] = (hv_centroid){s.v[q].label, ijk[0], ijk[1], ijk[2]};
        }
        /* issue 9: a centroid outside the volume, or > 20 mm from its label's
         * voxels, is flagged and not used: the vertebra gets its label's own
         * centre of mass, exactly as with no centroid file at all. */
        hv_spine_verts *own = NULL;
        HV_REQUIRE(hv_spine_centroids_from_mask(mask, NULL, &own) == HV_OK, "mask centroids");
        double given[5][3];
        for (int q = 0; q < 5; q++) {
            double ijk[3] = {items[q].x, items[q].y, items[q].z};
            hv_affine_apply(mask->affine, ijk, given[q]);
        }
        items[4].z = -500;                       /* L3 far below the volume */
        items[3].z += 15;                        /* L2 30 mm (2 mm voxels) off: too far */
        items[2].z += 5;                         /* L1 10 mm off: within 20 mm, used */
        given[2][2] += 10;
        st = hv_spine_case_run(ct, mask, &cj, NULL, &c);
        HV_CHECK(st == HV_OK, "json one outside: %s", hv_error_detail());
        if (c) {
            long q3 = hv_spine_verts_find(c->verts, 22), q2 = hv_spine_verts_find(c->verts, 21);
            long q1 = hv_spine_verts_find(c->verts, 20);
            long o3 = hv_spine_verts_find(own, 22), o2 = hv_spine_verts_find(own, 21);
            HV_REQUIRE(q3 >= 0 && q2 >= 0 && q1 >= 0 && o3 >= 0 && o2 >= 0, "labels found");
            HV_CHECK(c->verts->v[q3].flags == HV_SPINE_FLAG_OUTSIDE,
                     "json: L3 flags %s, want outside only", hv_spine_flags_str(c->verts->v[q3].flags));
            HV_CHECK(c->verts->v[q2].flags == HV_SPINE_FLAG_CTD_FAR,
                     "json: L2 flags %s, want ctd_far only", hv_spine_flags_str(c->verts->v[q2].flags));
            HV_CHECK(c->verts->v[q1].flags == 0, "json: L1 (10 mm off) flagged %s",
                     hv_spine_flags_str(c->verts->v[q1].flags));
            for (int d = 0; d < 3; d++) {
                HV_CHECK_CLOSE(c->verts->v[q3].centroid[d], own->v[o3].centroid[d], 1e-9,
                               "L3 falls back to its own centre");
                HV_CHECK_CLOSE(c->verts->v[q2].centroid[d], own->v[o2].centroid[d], 1e-9,
                               "L2 falls back to its own centre");
                HV_CHECK_CLOSE(c->verts->v[q1].centroid[d], given[2][d], 1e-9,
                               "L1 keeps the file's centroid");
            }
        }
        hv_spine_case_free(c);
        c = NULL;
        for (int q = 0; q < 5; q++) items[q].x = 1e4 + q;
        items[0].x = -1e308, items[1].y = 1e308;
        st = hv_spine_case_run(ct, mask, &cj, NULL, &c);
        HV_CHECK(st == HV_OK, "json all outside: %s: %s", hv_status_name(st), hv_error_detail());
        if (c)
            for (size_t q = 0; q < c->verts->n; q++) {
                long o = hv_spine_verts_find(own, c->verts->v[q].label);
                HV_CHECK(o >= 0 && c->verts->v[q].flags == HV_SPINE_FLAG_OUTSIDE &&
                             fabs(c->verts->v[q].centroid[2] - own->v[o].centroid[2]) < 1e-9,
                         "json all outside: label %d flags %s", c->verts->v[q].label,
                         hv_spine_flags_str(c->verts->v[q].flags));
            }
        hv_spine_case_free(c);
        c = NULL;
        hv_spine_verts_free(own);
        /* axis codes that are not a permutation of the mask's */
        hv_centroids bad = {"IPX", 5, items};
        st = hv_spine_case_run(ct, mask, &bad, NULL, &c);
        HV_CHECK(st == HV_ERR_FORMAT && c == NULL, "json direction: %s: %s", hv_status_name(st),
                 hv_error_detail());
        /* a permuted direction (the mask is RAS; write the same points as SAR) */
        for (int q = 0; q < 5; q++) {
            double ijk[3];
            hv_affine_apply(inv, s.v[q].c, ijk);
            items[q] = (hv_centroid){s.v[q].label, ijk[2], ijk[1], ijk[0]};
        }
        hv_centroids perm = {"SAR", 5, items};
        st = hv_spine_case_run(ct, mask, &perm, NULL, &c);
        HV_CHECK(st == HV_OK, "json permuted: %s", hv_error_detail());
        if (c)
            for (size_t q = 0; q < c->verts->n; q++)
                HV_CHECK(c->verts->v[q].flags == 0, "json permuted: label %d flagged %s",
                         c->verts->v[q].label, hv_spine_flags_str(c->verts->v[q].flags));
        hv_spine_case_free(c);
        c = NULL;
        /* a label in the file but not in the mask */
        items[0].label = 17;
        st = hv_spine_case_run(ct, mask, &perm, NULL, &c);
        HV_CHECK(st == HV_OK, "json extra label: %s", hv_error_detail());
        if (c) {
            HV_CHECK(has_flag(c, 17, HV_SPINE_FLAG_NO_MASK), "json: T10 not flagged no_mask");
            hv_spine_crop *cr = NULL;
            st = hv_spine_crop_make(c, 17, &cr);
            HV_CHECK(st == HV_ERR_NOT_FOUND && cr == NULL, "crop of a vertebra without a body: %s",
                     hv_status_name(st));
            st = hv_spine_crop_make(c, 5, &cr);
            HV_CHECK(st == HV_ERR_NOT_FOUND && cr == NULL, "crop of an absent label: %s",
                     hv_status_name(st));
        }
        hv_spine_case_free(c);
        c = NULL;
    }
    hv_vol_free(mask);
    hv_vol_free(ct);

    /* a vertebra cut by the field of view (top of the volume through T11) */
    syn_grid(sp2, 0, 0, -90, 84, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, bc) == HV_OK, "render");
    st = hv_spine_case_run(ct, mask, NULL, NULL, &c);
    HV_CHECK(st == HV_OK, "fov: %s", hv_error_detail());
    if (c) {
        HV_CHECK(has_flag(c, 18, HV_SPINE_FLAG_FOV), "fov: T11 not flagged");
        for (int l = 19; l <= 22; l++)
            HV_CHECK(!has_flag(c, l, HV_SPINE_FLAG_FOV), "fov: label %d flagged", l);
    }
    hv_spine_case_free(c);
    hv_vol_free(mask);
    hv_vol_free(ct);
    return hv_test_done();
}
