/*
 * straighten.c: resampling onto and back from the straightened grid, the HU
 * window, de-pedicle, body centroids, and the whole spine stage of one case.
 *
 * Resampling reads world coordinates only: each straightened row's point and
 * frame are pushed through the inverse of the source affine once, so the
 * inner loop is two vector additions and one interpolation per voxel (OpenMP
 * over rows). CT is trilinear (edge-replicated within half a voxel of the
 * volume, `fill` beyond), labels nearest (0 beyond), as in the reference.
 *
 * The stage runs two passes by default: the reference puts the curve through
 * whole-vertebra centroids, which lie near the posterior wall of the body or
 * in the canal, so the bodies end up off the central axis. Pass 1 straightens
 * the labels through those, de-pedicles them and measures each body's
 * centre; pass 2 rebuilds the curve through the body centres, which puts
 * every body on the central axis of the straightened volume.
 */
#include "spine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Source voxel coordinates of straightened voxel (0, j, k) and the steps per
 * i and per j, for one row. */
static void row_geometry(const hv_spine_map *m, const double inv[4][4], int64_t k,
                         double base[3], double di[3], double dj[3])
{
    const double *p = m->p + 3 * k, *r = m->r + 3 * k, *a = m->a + 3 * k;
    double w0[3], rs[3], as[3];
    for (int d = 0; d < 3; d++) {
        w0[d] = p[d] - m->ci * m->step * r[d] - m->cj * m->step * a[d];
        rs[d] = m->step * r[d];
        as[d] = m->step * a[d];
    }
    hv_affine_apply(inv, w0, base);
    hv_affine_apply_dir(inv, rs, di);
    hv_affine_apply_dir(inv, as, dj);
}

static inline float trilinear(const float *src, const int64_t dim[3], double x, double y,
                              double z, float fill)
{
    if (x < -0.5 || y < -0.5 || z < -0.5 || x > (double)dim[0] - 0.5 ||
        y > (double)dim[1] - 0.5 || z > (double)dim[2] - 0.5)
        return fill;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (z < 0) z = 0;
    if (x > (double)(dim[0] - 1)) x = (double)(dim[0] - 1);
    if (y > (double)(dim[1] - 1)) y = (double)(dim[1] - 1);
    if (z > (double)(dim[2] - 1)) z = (double)(dim[2] - 1);
    int64_t x0 = (int64_t)x, y0 = (int64_t)y, z0 = (int64_t)z;
    int64_t x1 = x0 + (x0 + 1 < dim[0]), y1 = y0 + (y0 + 1 < dim[1]), z1 = z0 + (z0 + 1 < dim[2]);
    double fx = x - (double)x0, fy = y - (double)y0, fz = z - (double)z0;
    size_t sx = 1, sy = (size_t)dim[0], sz = (size_t)dim[0] * (size_t)dim[1];
    const float *b = src;
#define AT(i, j, k) ((double)b[(size_t)(i) * sx + (size_t)(j) * sy + (size_t)(k) * sz])
    double c00 = AT(x0, y0, z0) * (1 - fx) + AT(x1, y0, z0) * fx;
    double c10 = AT(x0, y1, z0) * (1 - fx) + AT(x1, y1, z0) * fx;
    double c01 = AT(x0, y0, z1) * (1 - fx) + AT(x1, y0, z1) * fx;
    double c11 = AT(x0, y1, z1) * (1 - fx) + AT(x1, y1, z1) * fx;
#undef AT
    double c0 = c00 * (1 - fy) + c10 * fy, c1 = c01 * (1 - fy) + c11 * fy;
    return (float)(c0 * (1 - fz) + c1 * fz);
}

hv_status hv_spine_straighten(const hv_spine_map *m, const hv_volume *in, hv_interp interp,
                              double fill, hv_volume **out)
{
    hv_status st = HV_OK;
    hv_volume *res = NULL, *conv = NULL;
    double inv[4][4];
    *out = NULL;
    if (!m || !in || !in->data) return hv_error_set(HV_ERR_ARG, "straighten: missing input");
    st = hv_affine_invert(in->affine, inv);
    if (st) return hv_error_wrap(st, "straighten: source affine");
    int64_t dim[3] = {m->width, m->height, m->n};
    if (interp == HV_INTERP_LINEAR) {
        const hv_volume *src = in;
        if (in->dtype != HV_DTYPE_F32) {
            st = hv_vol_convert(in, HV_DTYPE_F32, &conv);
            if (st) goto done;
            src = conv;
        }
        st = hv_vol_create(&res, dim, HV_DTYPE_F32, m->affine);
        if (st) goto done;
        const float *sp = src->data;
        float *dp = res->data, ff = (float)fill;
#pragma omp parallel for schedule(dynamic, 4)
        for (int64_t k = 0; k < m->n; k++) {
            double base[3], di[3], dj[3];
            row_geometry(m, inv, k, base, di, dj);
            for (int64_t j = 0; j < m->height; j++) {
                float *o = dp + (size_t)m->width * ((size_t)j + (size_t)m->height * (size_t)k);
                for (int64_t i = 0; i < m->width; i++) {
                    double x = base[0] + (double)i * di[0] + (double)j * dj[0];
                    double y = base[1] + (double)i * di[1] + (double)j * dj[1];
                    double z = base[2] + (double)i * di[2] + (double)j * dj[2];
                    o[i] = trilinear(sp, src->dim, x, y, z, ff);
                }
            }
        }
    } else {
        size_t es = hv_dtype_size(in->dtype);
        st = hv_vol_create(&res, dim, in->dtype, m->affine);
        if (st) goto done;
        const unsigned char *sp = in->data;
        unsigned char *dp = res->data;
#pragma omp parallel for schedule(dynamic, 4)
        for (int64_t k = 0; k < m->n; k++) {
            double base[3], di[3], dj[3];
            row_geometry(m, inv, k, base, di, dj);
            for (int64_t j = 0; j < m->height; j++) {
                for (int64_t i = 0; i < m->width; i++) {
                    double x = base[0] + (double)i * di[0] + (double)j * dj[0];
                    double y = base[1] + (double)i * di[1] + (double)j * dj[1];
                    double z = base[2] + (double)i * di[2] + (double)j * dj[2];
                    long xi = lround(x), yi = lround(y), zi = lround(z);
                    if (xi < 0 || yi < 0 || zi < 0 || xi >= in->dim[0] || yi >= in->dim[1] ||
                        zi >= in->dim[2])
                        continue;                       /* stays 0 */
                    size_t s = hv_vol_idx(in, xi, yi, zi), d = hv_vol_idx(res, i, j, k);
                    memcpy(dp + d * es, sp + s * es, es);
                }
            }
        }
    }
    *out = res;
    res = NULL;
done:
    hv_vol_free(conv);
    hv_vol_free(res);
    return st;
}

hv_status hv_spine_unstraighten_labels(const hv_spine_map *m, const hv_volume *straight,
                                       const hv_volume *like, hv_volume **out)
{
    hv_status st = HV_OK;
    hv_volume *res = NULL;
    *out = NULL;
    if (!m || !straight || !like) return hv_error_set(HV_ERR_ARG, "unstraighten: missing input");
    if (straight->dim[0] != m->width || straight->dim[1] != m->height || straight->dim[2] != m->n)
        return hv_error_set(HV_ERR_ARG, "unstraighten: volume %lldx%lldx%lld is not the map's grid",
                            (long long)straight->dim[0], (long long)straight->dim[1],
                            (long long)straight->dim[2]);
    st = hv_vol_create(&res, like->dim, straight->dtype, like->affine);
    if (st) return st;
    size_t es = hv_dtype_size(straight->dtype);
    const unsigned char *sp = straight->data;
    unsigned char *dp = res->data;
    double inv[4][4];
    st = hv_affine_invert(like->affine, inv);
    if (st) { hv_vol_free(res); return hv_error_wrap(st, "unstraighten: target affine"); }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < like->dim[2]; k++) {
        double hint = -1.0;
        for (int64_t j = 0; j < like->dim[1]; j++) {
            double line_hint = hint;
            int first = 1;
            for (int64_t i = 0; i < like->dim[0]; i++) {
                double v[3] = {(double)i, (double)j, (double)k}, w[3], ijk[3];
                hv_affine_apply(like->affine, v, w);
                int in = hv_spine_map_from_world(m, w, line_hint, ijk);
                line_hint = ijk[2];
                if (first) { hint = ijk[2]; first = 0; }
                if (!in && (ijk[2] < -0.5 || ijk[2] > (double)m->n - 0.5)) continue;
                if (ijk[0] < -0.5 || ijk[1] < -0.5 || ijk[0] > (double)m->width - 0.5 ||
                    ijk[1] > (double)m->height - 0.5)
                    continue;
                /* The 8 straightened voxels around the point. One that was
                 * sampled from this very voxel carries its label exactly;
                 * otherwise the label with the largest trilinear weight wins. */
                int64_t x0 = (int64_t)floor(ijk[0]), y0 = (int64_t)floor(ijk[1]), z0 = (int64_t)floor(ijk[2]);
                double fx = ijk[0] - (double)x0, fy = ijk[1] - (double)y0, fz = ijk[2] - (double)z0;
                long lab[8];
                double wt[8];
                size_t sidx[8];
                int nc = 0, exact = -1;
                double exact_w = -1;
                for (int c = 0; c < 8; c++) {
                    int64_t xi = x0 + (c & 1), yi = y0 + ((c >> 1) & 1), zi = z0 + ((c >> 2) & 1);
                    if (xi < 0 || yi < 0 || zi < 0 || xi >= m->width || yi >= m->height || zi >= m->n)
                        continue;
                    double wc = ((c & 1) ? fx : 1 - fx) * (((c >> 1) & 1) ? fy : 1 - fy) *
                                (((c >> 2) & 1) ? fz : 1 - fz);
                    const double *pk = m->p + 3 * zi, *rk = m->r + 3 * zi, *ak = m->a + 3 * zi;
                    double di = ((double)xi - m->ci) * m->step, dj = ((double)yi - m->cj) * m->step;
                    double cw[3] = {pk[0] + di * rk[0] + dj * ak[0], pk[1] + di * rk[1] + dj * ak[1],
                                    pk[2] + di * rk[2] + dj * ak[2]}, src[3];
                    hv_affine_apply(inv, cw, src);
                    size_t q = hv_vol_idx(straight, xi, yi, zi);
                    if (lround(src[0]) == i && lround(src[1]) == j && lround(src[2]) == k && wc > exact_w) {
                        exact = nc;
                        exact_w = wc;
                    }
                    lab[nc] = hv_spine_label_at(straight, q);
                    wt[nc] = wc;
                    sidx[nc] = q;
                    nc++;
                }
                if (nc == 0) continue;
                int pick = exact;
                if (pick < 0) {
                    double best = -1;
                    for (int a = 0; a < nc; a++) {
                        double tot = 0;
                        for (int b = 0; b < nc; b++) tot += lab[b] == lab[a] ? wt[b] : 0;
                        if (tot > best || (tot == best && wt[a] > wt[pick])) { best = tot; pick = a; }
                    }
                }
                size_t d = hv_vol_idx(res, i, j, k);
                memcpy(dp + d * es, sp + sidx[pick] * es, es);
            }
        }
    }
    *out = res;
    return HV_OK;
}

hv_status hv_spine_hu_window(const hv_volume *ct, double lo, double hi, hv_volume **out)
{
    hv_status st;
    hv_volume *res = NULL;
    *out = NULL;
    if (!ct || !(hi > lo)) return hv_error_set(HV_ERR_ARG, "HU window [%g, %g] is empty", lo, hi);
    st = hv_vol_create(&res, ct->dim, HV_DTYPE_F32, ct->affine);
    if (st) return st;
    float *o = res->data;
    const double scale = 255.0 / (hi - lo);
    const size_t nv = ct->nvox;
    if (ct->dtype == HV_DTYPE_F32) {
        const float *s = ct->data;
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < nv; n++) {
            double v = ((double)s[n] - lo) * scale;
            o[n] = (float)(v < 0 || v != v ? 0 : (v > 255 ? 255 : v));
        }
    } else {
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < nv; n++) {
            double v = (hv_vol_get(ct, n) - lo) * scale;
            o[n] = (float)(v < 0 || v != v ? 0 : (v > 255 ? 255 : v));
        }
    }
    *out = res;
    return HV_OK;
}

hv_status hv_spine_depedicle(const hv_spine_map *m, hv_volume *labels, hv_spine_verts *vs)
{
    if (!m || !labels) return hv_error_set(HV_ERR_ARG, "depedicle: missing input");
    if (!hv_spine_is_label_dtype(labels->dtype))
        return hv_error_set(HV_ERR_ARG, "depedicle: labels must be an integer type");
    const int64_t W = labels->dim[0], H = labels->dim[1], N = labels->dim[2];
    int64_t ci = (int64_t)m->ci, cj = (int64_t)m->cj;
    if (ci >= W || cj >= H || H > 4096)
        return hv_error_set(HV_ERR_ARG, "depedicle: grid %lldx%lld does not match the map",
                            (long long)W, (long long)H);
    /* present[l][j]: label l occurs at (ci, j, some k). */
    unsigned char (*present)[4096] = calloc(HV_SPINE_MAX_LABEL + 1, sizeof *present);
    int seen[HV_SPINE_MAX_LABEL + 1] = {0};
    if (!present) return hv_error_set(HV_ERR_NOMEM, "depedicle");
    for (int64_t k = 0; k < N; k++)
        for (int64_t j = 0; j < H; j++) {
            long l = hv_spine_label_at(labels, hv_vol_idx(labels, ci, j, k));
            if (l > 0 && l <= HV_SPINE_MAX_LABEL) present[l][j] = 1;
        }
    for (size_t n = 0; n < labels->nvox; n++) {
        long l = hv_spine_label_at(labels, n);
        if (l > 0 && l <= HV_SPINE_MAX_LABEL) seen[l] = 1;
    }
    int64_t cut[HV_SPINE_MAX_LABEL + 1];
    for (int l = 0; l <= HV_SPINE_MAX_LABEL; l++) {
        cut[l] = -1;
        if (!seen[l]) continue;
        int64_t j = cj;
        while (j >= 0 && present[l][j]) j--;
        if (j >= 0) {
            cut[l] = j;                     /* delete at AP index <= j */
        } else if (vs) {
            long idx = hv_spine_verts_find(vs, l);
            if (idx >= 0) vs->v[idx].flags |= HV_SPINE_FLAG_NO_CANAL;
        }
    }
    free(present);
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < N; k++)
        for (int64_t j = 0; j < H; j++)
            for (int64_t i = 0; i < W; i++) {
                size_t idx = hv_vol_idx(labels, i, j, k);
                long l = hv_spine_label_at(labels, idx);
                if (l > 0 && l <= HV_SPINE_MAX_LABEL && cut[l] >= 0 && j <= cut[l])
                    hv_vol_set(labels, idx, 0.0);
            }
    return HV_OK;
}

hv_status hv_spine_body_centroids(const hv_spine_map *m, const hv_volume *labels,
                                  hv_spine_verts *vs)
{
    if (!m || !labels || !vs) return hv_error_set(HV_ERR_ARG, "body centroids: missing input");
    double cnt[HV_SPINE_MAX_LABEL + 1] = {0}, sum[HV_SPINE_MAX_LABEL + 1][3] = {{0}};
    for (int64_t k = 0; k < labels->dim[2]; k++)
        for (int64_t j = 0; j < labels->dim[1]; j++)
            for (int64_t i = 0; i < labels->dim[0]; i++) {
                long l = hv_spine_label_at(labels, hv_vol_idx(labels, i, j, k));
                if (l <= 0 || l > HV_SPINE_MAX_LABEL) continue;
                cnt[l] += 1;
                sum[l][0] += (double)i;
                sum[l][1] += (double)j;
                sum[l][2] += (double)k;
            }
    for (size_t n = 0; n < vs->n; n++) {
        hv_spine_vert *v = &vs->v[n];
        int l = v->label;
        if (l <= 0 || l > HV_SPINE_MAX_LABEL || cnt[l] == 0) {
            v->has_body = 0;
            v->row = NAN;
            continue;
        }
        double ijk[3] = {sum[l][0] / cnt[l], sum[l][1] / cnt[l], sum[l][2] / cnt[l]};
        hv_spine_map_to_world(m, ijk, v->body_centroid);
        v->has_body = 1;
        v->row = ijk[2];
    }
    return HV_OK;
}

/* ------------------------------------------------------------ the stage */

void hv_spine_opts_default(hv_spine_opts *o)
{
    memset(o, 0, sizeof *o);
    hv_spine_centroid_opts_default(&o->centroids);
    hv_spine_straighten_opts_default(&o->straighten);
    o->window_lo = -300.0;
    o->window_hi = 800.0;
    o->crop_lr = 64;
    o->crop_ap = 256;
    o->crop_rows = 256;
}

void hv_spine_case_free(hv_spine_case *c)
{
    if (!c) return;
    hv_spine_verts_free(c->verts);
    hv_spine_map_free(c->map);
    hv_vol_free(c->ct);
    hv_vol_free(c->ct_win);
    hv_vol_free(c->labels);
    hv_vol_free(c->labels_whole);
    free(c);
}

/* Straighten the mask and keep only vertebra labels, as U8. */
static hv_status straighten_labels(const hv_spine_map *m, const hv_volume *mask, hv_volume **out)
{
    hv_volume *s = NULL, *u8 = NULL;
    *out = NULL;
    hv_status st = hv_spine_straighten(m, mask, HV_INTERP_NEAREST, 0.0, &s);
    if (st) return st;
    int64_t dim[3] = {s->dim[0], s->dim[1], s->dim[2]};
    st = hv_vol_create(&u8, dim, HV_DTYPE_U8, s->affine);
    if (st) { hv_vol_free(s); return st; }
    uint8_t *o = u8->data;
    for (size_t n = 0; n < s->nvox; n++) {
        long l = hv_spine_label_at(s, n);
        o[n] = (l > 0 && l <= HV_SPINE_MAX_LABEL && hv_label_order((int)l) >= 0) ? (uint8_t)l : 0;
    }
    hv_vol_free(s);
    *out = u8;
    return HV_OK;
}

/* Rigid zones from a de-pedicled straightened volume: each body's row range
 * (padded by one row), ascending rows. Vertebrae off the curve or without a
 * body are left to the curve. */
static hv_status body_zones(const hv_volume *labels, const hv_spine_verts *vs, hv_spine_zone **out,
                            size_t *nz)
{
    int64_t lo[HV_SPINE_MAX_LABEL + 1], hi[HV_SPINE_MAX_LABEL + 1];
    for (int l = 0; l <= HV_SPINE_MAX_LABEL; l++) { lo[l] = INT64_MAX; hi[l] = -1; }
    for (int64_t k = 0; k < labels->dim[2]; k++)
        for (int64_t j = 0; j < labels->dim[1]; j++)
            for (int64_t i = 0; i < labels->dim[0]; i++) {
                long l = hv_spine_label_at(labels, hv_vol_idx(labels, i, j, k));
                if (l <= 0 || l > HV_SPINE_MAX_LABEL) continue;
                if (k < lo[l]) lo[l] = k;
                if (k > hi[l]) hi[l] = k;
            }
    hv_spine_zone *z = malloc((vs->n ? vs->n : 1) * sizeof *z);
    if (!z) return hv_error_set(HV_ERR_NOMEM, "zones");
    size_t n = 0;
    for (size_t q = vs->n; q-- > 0;) {           /* caudal first: ascending rows */
        const hv_spine_vert *v = &vs->v[q];
        int l = v->label;
        if (!v->has_body || (v->flags & HV_SPINE_FLAG_OFF_CURVE) || l > HV_SPINE_MAX_LABEL || hi[l] < 0)
            continue;
        /* the body's own centroid: the body lands on the axis even where the
         * curve (through the previous pass's centroids) missed it a little */
        hv_spine_zone zz = {v->row, (double)lo[l] - 1.0, (double)hi[l] + 1.0, 1,
                            {v->body_centroid[0], v->body_centroid[1], v->body_centroid[2]}};
        if (n > 0 && !(zz.centre > z[n - 1].centre)) {
            free(z);
            return hv_error_set(HV_ERR_NUMERIC, "vertebra %d lies out of craniocaudal order on the "
                                "curve (labels swapped?)", l);
        }
        z[n++] = zz;
    }
    *out = z;
    *nz = n;
    return HV_OK;
}

hv_status hv_spine_case_run(const hv_volume *ct, const hv_volume *mask, const hv_centroids *json,
                            const hv_spine_opts *o, hv_spine_case **out)
{
    hv_status st = HV_OK;
    hv_spine_opts def;
    hv_spine_case *c = NULL;
    hv_spine_map *map1 = NULL;
    hv_volume *lab1 = NULL;
    *out = NULL;
    if (!o) { hv_spine_opts_default(&def); o = &def; }
    if (!ct || !mask) return hv_error_set(HV_ERR_ARG, "spine stage: CT and mask are required");
    if (o->crop_lr < 1 || o->crop_ap < 1 || o->crop_rows < 1)
        return hv_error_set(HV_ERR_ARG, "spine stage: crop size must be positive");
    c = calloc(1, sizeof *c);
    if (!c) return hv_error_set(HV_ERR_NOMEM, "spine case");
    c->opts = *o;
    double t0 = hv_time_now();
    st = json ? hv_spine_centroids_from_json(json, mask, &o->centroids, &c->verts)
              : hv_spine_centroids_from_mask(mask, &o->centroids, &c->verts);
    if (st) { hv_error_wrap(st, "centroids"); goto done; }
    size_t on_curve = 0;
    for (size_t n = 0; n < c->verts->n; n++)
        on_curve += !(c->verts->v[n].flags & HV_SPINE_FLAG_OFF_CURVE);
    if (on_curve == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "no vertebra can anchor the spine curve (%zu listed, all "
                          "outside the volume, cut by the FOV or too small)", c->verts->n);
        goto done;
    }
    if (on_curve == 1) {
        for (size_t n = 0; n < c->verts->n; n++)
            if (!(c->verts->v[n].flags & HV_SPINE_FLAG_OFF_CURVE)) {
                c->verts->v[n].flags |= HV_SPINE_FLAG_SINGLE;
                hv_log_warn("only one vertebra (%d) anchors the curve: straight line along world "
                            "superior, no straightening", c->verts->v[n].label);
            }
    }
    double t1 = hv_time_now();
    c->seconds[0] = t1 - t0;
    if (o->straighten.through == HV_SPINE_THROUGH_BODY) {
        st = hv_spine_map_build(c->verts, 0, &o->straighten, &map1);
        if (st) { hv_error_wrap(st, "curve (pass 1)"); goto done; }
        st = straighten_labels(map1, mask, &lab1);
        if (st) goto done;
        st = hv_spine_depedicle(map1, lab1, c->verts);
        if (!st) st = hv_spine_body_centroids(map1, lab1, c->verts);
        if (st) goto done;
        for (size_t n = 0; n < c->verts->n; n++) c->verts->v[n].flags &= ~HV_SPINE_FLAG_NO_CANAL;
    }
    st = hv_spine_map_build(c->verts, o->straighten.through == HV_SPINE_THROUGH_BODY,
                            &o->straighten, &c->map);
    if (st) { hv_error_wrap(st, "curve"); goto done; }
    if (o->straighten.through == HV_SPINE_THROUGH_BODY && o->straighten.rigid_bodies &&
        on_curve > 1) {
        /* pass 3: bodies rigid, the bend in the discs */
        hv_spine_zone *zones = NULL;
        size_t nz = 0;
        hv_vol_free(lab1);
        lab1 = NULL;
        st = straighten_labels(c->map, mask, &lab1);
        if (!st) st = hv_spine_depedicle(c->map, lab1, c->verts);
        if (!st) st = hv_spine_body_centroids(c->map, lab1, c->verts);
        if (!st) st = body_zones(lab1, c->verts, &zones, &nz);
        if (!st) st = hv_spine_map_rigidify(c->map, zones, nz);
        free(zones);
        if (st) { hv_error_wrap(st, "rigid bodies"); goto done; }
        for (size_t n = 0; n < c->verts->n; n++) c->verts->v[n].flags &= ~HV_SPINE_FLAG_NO_CANAL;
    }
    st = straighten_labels(c->map, mask, &c->labels_whole);
    if (!st) st = hv_vol_clone(c->labels_whole, &c->labels);
    if (!st) st = hv_spine_depedicle(c->map, c->labels, c->verts);
    if (!st) st = hv_spine_body_centroids(c->map, c->labels, c->verts);
    if (st) goto done;
    double t2 = hv_time_now();
    c->seconds[1] = t2 - t1;
    st = hv_spine_straighten(c->map, ct, HV_INTERP_LINEAR, o->straighten.ct_fill, &c->ct);
    double t3 = hv_time_now();
    c->seconds[2] = t3 - t2;
    if (!st) st = hv_spine_hu_window(c->ct, o->window_lo, o->window_hi, &c->ct_win);
    c->seconds[3] = hv_time_now() - t3;
    if (st) goto done;
    for (size_t n = 0; n < c->verts->n; n++)
        if (!c->verts->v[n].has_body && !(c->verts->v[n].flags & HV_SPINE_FLAG_NO_MASK))
            hv_log_warn("vertebra %d: nothing of it lies inside the straightened volume",
                        c->verts->v[n].label);
    *out = c;
    c = NULL;
done:
    hv_spine_map_free(map1);
    hv_vol_free(lab1);
    hv_spine_case_free(c);
    return st;
}

/* ------------------------------------------------------------- crops */

void hv_spine_crop_free(hv_spine_crop *cr)
{
    if (!cr) return;
    hv_vol_free(cr->ct);
    hv_vol_free(cr->labels);
    free(cr);
}

hv_status hv_spine_crop_make(const hv_spine_case *c, int label, hv_spine_crop **out)
{
    hv_status st = HV_OK;
    hv_spine_crop *cr = NULL;
    *out = NULL;
    if (!c) return hv_error_set(HV_ERR_ARG, "crop: no case");
    long idx = hv_spine_verts_find(c->verts, label);
    if (idx < 0) return hv_error_set(HV_ERR_NOT_FOUND, "crop: vertebra %d is not in the case", label);
    const hv_spine_vert *v = &c->verts->v[idx];
    if (!v->has_body || !isfinite(v->row))
        return hv_error_set(HV_ERR_NOT_FOUND, "crop: vertebra %d has no body in the straightened "
                            "volume (flags: %s)", label, hv_spine_flags_str(v->flags));
    const hv_spine_opts *o = &c->opts;
    cr = calloc(1, sizeof *cr);
    if (!cr) return hv_error_set(HV_ERR_NOMEM, "crop");
    cr->label = label;
    cr->offset[0] = (int64_t)c->map->ci - o->crop_lr / 2;
    cr->offset[1] = (int64_t)c->map->cj - o->crop_ap / 2;
    cr->offset[2] = (int64_t)lround(v->row) - o->crop_rows / 2;
    double T[4][4], A[4][4];
    hv_affine_identity(T);
    for (int d = 0; d < 3; d++) T[d][3] = (double)cr->offset[d];
    hv_affine_mul(c->ct_win->affine, T, A);
    int64_t dim[3] = {o->crop_lr, o->crop_ap, o->crop_rows};
    st = hv_vol_create(&cr->ct, dim, HV_DTYPE_F32, A);
    if (!st) st = hv_vol_create(&cr->labels, dim, HV_DTYPE_U8, A);
    if (st) goto done;
    const hv_volume *sc = c->ct_win, *sl = c->labels;
    float *oc = cr->ct->data;
    uint8_t *ol = cr->labels->data;
    const float *ic = sc->data;
    const uint8_t *il = sl->data;
    for (int64_t z = 0; z < dim[2]; z++) {
        int64_t k = z + cr->offset[2];
        if (k < 0 || k >= sc->dim[2]) continue;
        for (int64_t y = 0; y < dim[1]; y++) {
            int64_t j = y + cr->offset[1];
            if (j < 0 || j >= sc->dim[1]) continue;
            for (int64_t x = 0; x < dim[0]; x++) {
                int64_t i = x + cr->offset[0];
                if (i < 0 || i >= sc->dim[0]) continue;
                size_t s = hv_vol_idx(sc, i, j, k), d = hv_vol_idx(cr->ct, x, y, z);
                oc[d] = ic[s];
                ol[d] = il[s];
            }
        }
    }
    *out = cr;
    cr = NULL;
done:
    hv_spine_crop_free(cr);
    return st;
}
