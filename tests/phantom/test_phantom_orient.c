/*
 * test_phantom_orient.c: one case written in every orientation is one
 * anatomy.
 *
 *  - RAS, LPS and PIR renders (also with anisotropic spacing) reorient to
 *    canonical with identical CT and mask arrays and affines within 1e-9;
 *    their axis codes are what was asked for;
 *  - the oblique render (7 deg about x, 4 deg about z) resampled onto the
 *    RAS grid agrees with the RAS render: per-label Dice, centroids in world
 *    mm, CT difference; hv_vol_resample_to_ras brings it to an axis-aligned
 *    grid with the same label volumes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_test.h"
#include "hv/core.h"
#include "hv/phantom.h"

static hv_phantom_case *render(const hv_phantom_opts *base, hv_phantom_orient orient, const double sp[3])
{
    hv_phantom_opts o = *base;
    o.orientation = orient;
    memcpy(o.spacing, sp, sizeof o.spacing);
    hv_phantom_case *c = NULL;
    HV_CHECK_OK(hv_phantom_case_make(&o, 1, &c));
    if (!c) return NULL;
    HV_CHECK_OK(hv_phantom_case_render(&o, c));
    if (!c->ct) {
        hv_phantom_case_free(c);
        return NULL;
    }
    return c;
}

static int same_volume(const hv_volume *a, const hv_volume *b, const char *what)
{
    int ok = a->dim[0] == b->dim[0] && a->dim[1] == b->dim[1] && a->dim[2] == b->dim[2] && a->dtype == b->dtype;
    HV_CHECK(ok, "%s: dims %lldx%lldx%lld vs %lldx%lldx%lld", what, (long long)a->dim[0], (long long)a->dim[1],
             (long long)a->dim[2], (long long)b->dim[0], (long long)b->dim[1], (long long)b->dim[2]);
    if (!ok) return 0;
    double worst = 0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) worst = fmax(worst, fabs(a->affine[r][c] - b->affine[r][c]));
    HV_CHECK(worst <= 1e-9, "%s: affines differ by %g", what, worst);
    int eq = memcmp(a->data, b->data, a->nvox * hv_dtype_size(a->dtype)) == 0;
    HV_CHECK(eq, "%s: arrays identical", what);
    return eq && worst <= 1e-9;
}

static void check_orthogonal(const hv_phantom_opts *base, const double sp_ras[3], const double sp_lps[3],
                             const double sp_pir[3], const char *what)
{
    hv_phantom_case *r = render(base, HV_PHANTOM_RAS, sp_ras);
    hv_phantom_case *l = render(base, HV_PHANTOM_LPS, sp_lps);
    hv_phantom_case *p = render(base, HV_PHANTOM_PIR, sp_pir);
    if (!r || !l || !p) goto done;
    char codes[4];
    hv_affine_axcodes((const double(*)[4])r->ct->affine, codes);
    HV_CHECK(strcmp(codes, "RAS") == 0, "%s: RAS render codes %s", what, codes);
    hv_affine_axcodes((const double(*)[4])l->ct->affine, codes);
    HV_CHECK(strcmp(codes, "LPS") == 0, "%s: LPS render codes %s", what, codes);
    hv_affine_axcodes((const double(*)[4])p->ct->affine, codes);
    HV_CHECK(strcmp(codes, "PIR") == 0, "%s: PIR render codes %s", what, codes);
    for (int a = 0; a < 3; a++) {
        HV_CHECK_CLOSE(l->ct->spacing[a], sp_lps[a], 1e-12, "LPS spacing on output axis");
        HV_CHECK_CLOSE(p->ct->spacing[a], sp_pir[a], 1e-12, "PIR spacing on output axis");
    }
    for (int s = 0; s < 2; s++) {
        hv_phantom_case *x = s == 0 ? l : p;
        hv_volume *cct = NULL, *cmk = NULL;
        HV_CHECK_OK(hv_vol_reorient_canonical(x->ct, &cct));
        HV_CHECK_OK(hv_vol_reorient_canonical(x->mask, &cmk));
        if (cct && cmk) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s %s CT", what, s == 0 ? "LPS" : "PIR");
            same_volume(cct, r->ct, msg);
            snprintf(msg, sizeof msg, "%s %s mask", what, s == 0 ? "LPS" : "PIR");
            same_volume(cmk, r->mask, msg);
        }
        hv_vol_free(cct);
        hv_vol_free(cmk);
        for (int v = 0; v < x->n_vert; v++)
            HV_CHECK(x->vert[v].truncated == r->vert[v].truncated, "truncation flags agree");
    }
done:
    hv_phantom_case_free(r);
    hv_phantom_case_free(l);
    hv_phantom_case_free(p);
}

static void world_centroid(const hv_volume *mk, int label, double w[3], long *count)
{
    double s[3] = {0, 0, 0};
    long n = 0;
    const uint8_t *d = mk->data;
    for (int64_t k = 0; k < mk->dim[2]; k++)
        for (int64_t j = 0; j < mk->dim[1]; j++)
            for (int64_t i = 0; i < mk->dim[0]; i++)
                if (d[hv_vol_idx(mk, i, j, k)] == label) {
                    s[0] += (double)i;
                    s[1] += (double)j;
                    s[2] += (double)k;
                    n++;
                }
    double ijk[3] = {n ? s[0] / n : 0, n ? s[1] / n : 0, n ? s[2] / n : 0};
    hv_affine_apply((const double(*)[4])mk->affine, ijk, w);
    *count = n;
}

static void check_oblique(const hv_phantom_opts *base)
{
    double sp[3] = {1, 1, 1};
    hv_phantom_case *r = render(base, HV_PHANTOM_RAS, sp);
    hv_phantom_case *q = render(base, HV_PHANTOM_OBLIQUE, sp);
    hv_volume *mk = NULL, *ct = NULL, *ras_mk = NULL;
    if (!r || !q) goto done;
    double obl = hv_affine_obliquity_deg((const double(*)[4])q->ct->affine);
    HV_CHECK(obl > 6.9 && obl < 8.5, "oblique grid is %.2f deg off its closest axes", obl);
    char codes[4];
    hv_affine_axcodes((const double(*)[4])q->ct->affine, codes);
    HV_CHECK(strcmp(codes, "RAS") == 0, "oblique closest codes %s", codes);
    for (int v = 0; v < q->n_vert; v++) HV_CHECK(!q->vert[v].truncated, "oblique: nothing truncated");

    HV_CHECK_OK(hv_vol_resample(q->mask, (const double(*)[4])r->mask->affine, r->mask->dim, HV_INTERP_NEAREST, 0,
                                &mk));
    HV_CHECK_OK(hv_vol_resample(q->ct, (const double(*)[4])r->ct->affine, r->ct->dim, HV_INTERP_LINEAR, -1024,
                                &ct));
    if (!mk || !ct) goto done;
    const uint8_t *a = r->mask->data, *b = mk->data;
    double worst_dice = 1, worst_shift = 0;
    for (int v = 0; v < r->n_vert; v++) {
        int l = r->vert[v].label;
        long na = 0, nb = 0, both = 0;
        for (size_t i = 0; i < r->mask->nvox; i++) {
            na += a[i] == l;
            nb += b[i] == l;
            both += a[i] == l && b[i] == l;
        }
        double dice = 2.0 * both / (double)(na + nb);
        worst_dice = fmin(worst_dice, dice);
        double wa[3], wb[3];
        long ca, cb;
        world_centroid(r->mask, l, wa, &ca);
        world_centroid(q->mask, l, wb, &cb);
        double d = sqrt((wa[0] - wb[0]) * (wa[0] - wb[0]) + (wa[1] - wb[1]) * (wa[1] - wb[1]) +
                        (wa[2] - wb[2]) * (wa[2] - wb[2]));
        worst_shift = fmax(worst_shift, d);
        HV_CHECK(labs(ca - cb) < 0.03 * ca, "%s: voxel counts %ld (RAS) vs %ld (oblique)", hv_label_name(l), ca, cb);
    }
    /* CT agreement inside the torso, away from the grid edges */
    const int16_t *ha = r->ct->data, *hb = ct->data;
    double sad = 0;
    long n = 0;
    for (size_t i = 0; i < r->ct->nvox; i++)
        if (ha[i] > -500 && hb[i] > -500) {
            sad += fabs((double)ha[i] - (double)hb[i]);
            n++;
        }
    double mad = sad / (double)n;
    printf("# oblique vs RAS: worst per-label Dice %.4f, worst centroid shift %.3f mm, CT mean |diff| %.1f HU\n",
           worst_dice, worst_shift, mad);
    /* measured (seed 77): Dice 0.965, shift 0.06 mm, 20.8 HU (two noise fields,
     * one smoothed by interpolation, plus edge voxels); bounds leave ~2x */
    HV_CHECK(worst_dice > 0.9, "per-label Dice %.4f > 0.9", worst_dice);
    HV_CHECK(worst_shift < 0.15, "centroids agree in world mm (%.3f)", worst_shift);
    HV_CHECK(mad < 40, "CT mean |diff| %.1f HU", mad);

    /* hv_vol_resample_to_ras: an axis-aligned grid holding the same labels */
    HV_CHECK_OK(hv_vol_resample_to_ras(q->mask, sp, HV_INTERP_NEAREST, 0, &ras_mk));
    if (ras_mk) {
        HV_CHECK(hv_affine_obliquity_deg((const double(*)[4])ras_mk->affine) < 1e-9, "resampled grid is axis-aligned");
        for (int v = 0; v < r->n_vert; v++) {
            double wa[3], wb[3];
            long ca, cb;
            world_centroid(r->mask, r->vert[v].label, wa, &ca);
            world_centroid(ras_mk, r->vert[v].label, wb, &cb);
            HV_CHECK(labs(ca - cb) < 0.03 * ca && fabs(wa[2] - wb[2]) < 0.5, "%s after resample_to_ras",
                     hv_label_name(r->vert[v].label));
        }
    }
done:
    hv_vol_free(mk);
    hv_vol_free(ct);
    hv_vol_free(ras_mk);
    hv_phantom_case_free(r);
    hv_phantom_case_free(q);
}

int main(void)
{
    hv_log_set_level(HV_LOG_WARN);
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 77;
    o.first_label = 19;
    o.last_label = 21;
    o.fracture_rate = 0.5;
    o.scoliosis_rate = 1.0;
    double iso[3] = {1, 1, 1};
    check_orthogonal(&o, iso, iso, iso, "1 mm");
    /* anisotropic: the spacing names the file's i, j, k axes; PIR's i, j, k
     * are P, I, R, so (0.9, 2.0, 0.8) there is (0.8, 0.9, 2.0) in RAS */
    double ras[3] = {0.8, 0.9, 2.0}, pir[3] = {0.9, 2.0, 0.8};
    check_orthogonal(&o, ras, ras, pir, "0.8x0.9x2 mm");
    check_oblique(&o);
    return hv_test_done();
}
