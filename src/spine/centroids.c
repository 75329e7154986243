/*
 * centroids.c: per-vertebra centres of mass in world coordinates, and the
 * flags that keep doubtful vertebrae from being measured blindly.
 *
 * One pass over the mask (hv_label_stats_collect in src/core, shared with
 * `measure`) gives, per VerSe label, the voxel count, the sum of voxel
 * indices and the bounding box (on the volume border = the box touches a
 * face); the mean index is converted to world mm through the affine (never
 * "voxel = mm" as the reference does).
 * Vertebrae that touch the border are flagged FOV; a sliver of a vertebra at
 * the edge is also taken off the curve because its centroid is meaningless.
 * The reference's end-vertebra size rule (§1.2) is available as an option and
 * works in mm^3 so it means the same at any spacing.
 *
 * Centroids from a JSON file are vetted here, the one place `straighten`,
 * `measure` and `run` all go through: one outside the volume or more than
 * HV_SPINE_CENTROID_MAX_MM from its label's own centre of mass (VerSe
 * centroids are the label's centre, so a few mm is already odd) is flagged
 * OUTSIDE or CTD_FAR with a warning naming the label and the distance, and
 * the label's own centre is used instead, as if no centroid had been given.
 */
#include "spine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NLAB (HV_LABEL_MAX + 1)
#define HV_SPINE_STR_(x) #x
#define HV_SPINE_STR(x) HV_SPINE_STR_(x)

void hv_spine_centroid_opts_default(hv_spine_centroid_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reference_end_rule = 0;
    o->fov_min_fraction = 0.5;
}

void hv_spine_verts_free(hv_spine_verts *vs)
{
    if (!vs) return;
    free(vs->v);
    free(vs);
}

long hv_spine_verts_find(const hv_spine_verts *vs, int label)
{
    if (!vs) return -1;
    for (size_t n = 0; n < vs->n; n++)
        if (vs->v[n].label == label) return (long)n;
    return -1;
}

const char *hv_spine_flags_str(unsigned flags)
{
    static _Thread_local char buf[128];
    static const struct { unsigned bit; const char *name; } names[] = {
        {HV_SPINE_FLAG_FOV, "fov"},         {HV_SPINE_FLAG_SMALL, "small"},
        {HV_SPINE_FLAG_OUTSIDE, "outside"}, {HV_SPINE_FLAG_NO_MASK, "no_mask"},
        {HV_SPINE_FLAG_GAP, "gap"},         {HV_SPINE_FLAG_SINGLE, "single"},
        {HV_SPINE_FLAG_NO_CANAL, "no_canal"}, {HV_SPINE_FLAG_OFF_CURVE, "off_curve"},
        {HV_SPINE_FLAG_CTD_FAR, "ctd_far"},
    };
    buf[0] = '\0';
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        if (!(flags & names[n].bit)) continue;
        if (buf[0]) strcat(buf, "|");
        strcat(buf, names[n].name);
    }
    return buf;
}

static int cmp_vert(const void *pa, const void *pb)
{
    const hv_spine_vert *a = pa, *b = pb;
    double oa = hv_label_order(a->label), ob = hv_label_order(b->label);
    return (oa > ob) - (oa < ob);
}

/* Per-label statistics of the mask (one parallel pass, hv_label_stats_collect),
 * with a warning about voxels that carry no vertebra label. */
static hv_status mask_stats(const hv_volume *mask, hv_label_stats st[NLAB])
{
    size_t ignored = 0;
    hv_status status = hv_label_stats_collect(mask, st, &ignored);
    if (status != HV_OK) return status;
    if (ignored)
        hv_log_warn("mask: %zu voxels carry labels that are not vertebrae (26, 27, > 28); ignored",
                    ignored);
    return HV_OK;
}

/* Flags that depend on the whole list: gaps, the end rule, FOV slivers. */
static void flag_list(hv_spine_verts *vs, const hv_spine_centroid_opts *o)
{
    for (size_t n = 0; n + 1 < vs->n; n++) {
        double a = hv_label_order(vs->v[n].label);
        double b = hv_label_order(vs->v[n + 1].label);
        /* T12 -> T13 -> L1 are 0.5 apart; anything more than 1 apart skips. */
        if (b - a > 1.0 + 1e-9) {
            vs->v[n].flags |= HV_SPINE_FLAG_GAP;
            vs->v[n + 1].flags |= HV_SPINE_FLAG_GAP;
        }
    }
    if (o->reference_end_rule && vs->n >= 2) {
        /* §1.2: highest label (caudal end) < 8000 voxels, lowest (cranial) <
         * 6000 voxels at 1 mm; expressed in mm^3. */
        hv_spine_vert *caudal = &vs->v[vs->n - 1], *cranial = &vs->v[0];
        if (caudal->volume_mm3 < 8000.0)
            caudal->flags |= HV_SPINE_FLAG_SMALL | HV_SPINE_FLAG_OFF_CURVE;
        if (cranial->volume_mm3 < 6000.0)
            cranial->flags |= HV_SPINE_FLAG_SMALL | HV_SPINE_FLAG_OFF_CURVE;
    }
    /* Median volume of the vertebrae inside the FOV. */
    double *vol = malloc(vs->n * sizeof *vol);
    size_t nv = 0;
    if (vol) {
        for (size_t n = 0; n < vs->n; n++)
            if (!(vs->v[n].flags & HV_SPINE_FLAG_FOV) && vs->v[n].nvox > 0)
                vol[nv++] = vs->v[n].volume_mm3;
        for (size_t a = 1; a < nv; a++)          /* insertion sort: n <= 26 */
            for (size_t b = a; b > 0 && vol[b - 1] > vol[b]; b--) {
                double t = vol[b]; vol[b] = vol[b - 1]; vol[b - 1] = t;
            }
        double med = nv ? vol[nv / 2] : 0.0;
        for (size_t n = 0; n < vs->n; n++)
            if ((vs->v[n].flags & HV_SPINE_FLAG_FOV) && nv > 0 &&
                vs->v[n].volume_mm3 < o->fov_min_fraction * med)
                vs->v[n].flags |= HV_SPINE_FLAG_OFF_CURVE;
        free(vol);
    }
    for (size_t n = 0; n < vs->n; n++)
        if (vs->v[n].flags)
            hv_log_info("vertebra %s (%d): flagged %s", hv_label_name(vs->v[n].label)
                        ? hv_label_name(vs->v[n].label) : "?", vs->v[n].label,
                        hv_spine_flags_str(vs->v[n].flags));
}

hv_status hv_spine_centroids_from_mask(const hv_volume *mask, const hv_spine_centroid_opts *o,
                                       hv_spine_verts **out)
{
    hv_status st = HV_OK;
    hv_spine_centroid_opts def;
    hv_spine_verts *vs = NULL;
    hv_label_stats ls[NLAB];
    *out = NULL;
    if (!o) { hv_spine_centroid_opts_default(&def); o = &def; }
    if (!mask || !mask->data) return hv_error_set(HV_ERR_ARG, "centroids: no mask");
    st = mask_stats(mask, ls);
    if (st) goto done;
    size_t count = 0;
    for (int l = 1; l < NLAB; l++) count += ls[l].count > 0;
    if (count == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "mask contains no vertebra label (1-25, 28)");
        goto done;
    }
    vs = calloc(1, sizeof *vs);
    if (!vs || !(vs->v = calloc(count, sizeof *vs->v))) {
        st = hv_error_set(HV_ERR_NOMEM, "vertebra list");
        goto done;
    }
    double vv = hv_affine_voxel_mm3((const double(*)[4])mask->affine);
    for (int l = 1; l < NLAB; l++) {
        if (ls[l].count == 0) continue;
        hv_spine_vert *v = &vs->v[vs->n++];
        v->label = l;
        v->nvox = ls[l].count;
        v->volume_mm3 = (double)ls[l].count * vv;
        hv_label_stats_centroid(&ls[l], (const double(*)[4])mask->affine, v->centroid);
        if (hv_label_stats_on_border(&ls[l], mask->dim)) v->flags |= HV_SPINE_FLAG_FOV;
        v->row = NAN;
    }
    qsort(vs->v, vs->n, sizeof *vs->v, cmp_vert);
    flag_list(vs, o);
    *out = vs;
    vs = NULL;
done:
    hv_spine_verts_free(vs);
    return st;
}

/* Map JSON voxel coordinates given in the axis codes `dir` onto the mask grid.
 * Returns 0 when dir is not a permutation/flip of the mask's codes. */
static int json_to_mask_index(const char *dir, const hv_volume *mask, const double in[3],
                              double out[3])
{
    char mc[4];
    hv_affine_axcodes(mask->affine, mc);
    if (!dir[0]) { memcpy(out, in, 3 * sizeof *out); return 1; }
    static const char *pairs = "RLAPSI";
    for (int m = 0; m < 3; m++) {
        const char *pm = strchr(pairs, mc[m]);
        int found = 0;
        for (int d = 0; d < 3 && !found; d++) {
            const char *pd = strchr(pairs, dir[d] >= 'a' ? dir[d] - 32 : dir[d]);
            if (!pm || !pd) return 0;
            int am = (int)(pm - pairs) / 2, ad = (int)(pd - pairs) / 2;
            if (am != ad) continue;
            found = 1;
            out[m] = (pm == pd) ? in[d] : (double)(mask->dim[m] - 1) - in[d];
        }
        if (!found) return 0;
    }
    return 1;
}

hv_status hv_spine_centroids_from_json(const hv_centroids *c, const hv_volume *mask,
                                       const hv_spine_centroid_opts *o, hv_spine_verts **out)
{
    hv_status st = HV_OK;
    hv_spine_centroid_opts def;
    hv_spine_verts *vs = NULL;
    hv_label_stats ls[NLAB];
    *out = NULL;
    if (!o) { hv_spine_centroid_opts_default(&def); o = &def; }
    if (!c || !mask) return hv_error_set(HV_ERR_ARG, "centroids: no JSON or no mask");
    if (c->n == 0) return hv_error_set(HV_ERR_EMPTY, "centroid file lists no vertebra");
    st = mask_stats(mask, ls);
    if (st) goto done;
    vs = calloc(1, sizeof *vs);
    if (!vs || !(vs->v = calloc(c->n, sizeof *vs->v))) {
        st = hv_error_set(HV_ERR_NOMEM, "vertebra list");
        goto done;
    }
    double vv = hv_affine_voxel_mm3((const double(*)[4])mask->affine);
    for (size_t n = 0; n < c->n; n++) {
        const hv_centroid *e = &c->items[n];
        if (hv_label_order(e->label) < 0) {
            hv_log_warn("centroid file: label %d is not a vertebra; ignored", e->label);
            continue;
        }
        hv_spine_vert *v = &vs->v[vs->n++];
        v->label = e->label;
        v->row = NAN;
        double in[3] = {e->x, e->y, e->z}, ijk[3];
        if (!isfinite(in[0]) || !isfinite(in[1]) || !isfinite(in[2])) {
            st = hv_error_set(HV_ERR_FORMAT, "centroid of label %d is not finite", e->label);
            goto done;
        }
        if (!json_to_mask_index(c->direction, mask, in, ijk)) {
            char mc[4];
            hv_affine_axcodes(mask->affine, mc);
            st = hv_error_set(HV_ERR_FORMAT,
                              "centroid file direction \"%s\" does not match the mask's axes %s",
                              c->direction, mc);
            goto done;
        }
        hv_affine_apply(mask->affine, ijk, v->centroid);
        int outside = 0;
        for (int d = 0; d < 3; d++)
            if (!(ijk[d] >= -0.5 && ijk[d] <= (double)mask->dim[d] - 0.5)) outside = 1;
        int l = e->label;
        if (ls[l].count > 0) {
            v->nvox = ls[l].count;
            v->volume_mm3 = (double)ls[l].count * vv;
            if (hv_label_stats_on_border(&ls[l], mask->dim)) v->flags |= HV_SPINE_FLAG_FOV;
            /* A centroid outside the volume or far from its own label's
             * voxels is a broken file, not anatomy: flag it, say so, and use
             * the label's centre of mass as if no centroid had been given. */
            double com[3];
            hv_label_stats_centroid(&ls[l], (const double(*)[4])mask->affine, com);
            double dist = sqrt((v->centroid[0] - com[0]) * (v->centroid[0] - com[0]) +
                               (v->centroid[1] - com[1]) * (v->centroid[1] - com[1]) +
                               (v->centroid[2] - com[2]) * (v->centroid[2] - com[2]));
            if (outside || !(dist <= HV_SPINE_CENTROID_MAX_MM)) {
                const char *name = hv_label_name(l);
                hv_log_warn("centroid file: label %d (%s): the given centroid (%g, %g, %g) %s "
                            "%.4g mm from the centre of the label's own voxels%s; ignored, the "
                            "label's own centre is used",
                            l, name ? name : "?", e->x, e->y, e->z,
                            outside ? "lies outside the volume," : "lies", dist,
                            outside ? "" : " (more than " HV_SPINE_STR(HV_SPINE_CENTROID_MAX_MM) " mm)");
                v->flags |= outside ? HV_SPINE_FLAG_OUTSIDE : HV_SPINE_FLAG_CTD_FAR;
                memcpy(v->centroid, com, sizeof com);
            }
        } else {
            v->flags |= HV_SPINE_FLAG_NO_MASK;
            if (outside) v->flags |= HV_SPINE_FLAG_OUTSIDE | HV_SPINE_FLAG_OFF_CURVE;
        }
    }
    if (vs->n == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "centroid file lists no vertebra label");
        goto done;
    }
    qsort(vs->v, vs->n, sizeof *vs->v, cmp_vert);
    for (size_t n = 0; n + 1 < vs->n; n++)
        if (vs->v[n].label == vs->v[n + 1].label) {
            st = hv_error_set(HV_ERR_FORMAT, "centroid file lists label %d twice", vs->v[n].label);
            goto done;
        }
    flag_list(vs, o);
    *out = vs;
    vs = NULL;
done:
    hv_spine_verts_free(vs);
    return st;
}
