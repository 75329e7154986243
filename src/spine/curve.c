/*
 * curve.c: the spine curve, its moving frames, and the exact mapping between
 * a straightened grid and world space (spec §2.2-§2.4, done differently).
 *
 * The reference draws a piecewise-linear polyline through voxel-index
 * centroids and uses a frame tied to array axes 0 and 2 (so it silently
 * assumes an I,P,L input at 1 mm). Here:
 *  - control points are world-mm centroids (any orientation and spacing);
 *  - the curve is a cubic spline parametrised by chord length with Bessel
 *    end tangents, extended straight `extend_mm` beyond each end along them
 *    (the reference extends 20 voxels along the last chord), so position and
 *    tangent are continuous (C2) and the vertebrae are not sheared at
 *    polyline corners; it is resampled at equal arc length (step_mm) by
 *    inverting a dense arc-length table;
 *  - frames are rotation-minimising (Wang et al.'s double reflection), which
 *    never flips and adds no twist; the one free twist angle is chosen as the
 *    circular mean that keeps r closest to the patient's right over the whole
 *    curve, so "lateral" stays lateral on scoliotic spines. The reference's
 *    frame (r in the coronal plane) is an option for fidelity runs.
 *  - hv_spine_map_rigidify then makes the map rigid over each vertebral
 *    body (see its comment in spine.h): a smooth curve bends space inside
 *    the bodies too and biases heights at the anterior/posterior thirds.
 * The map stores every row's point and frame, so any point can be carried
 * between spaces exactly (at integer rows) and written beside the volume.
 */
#include "spine_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dense sub-samples per spline segment for the arc-length table. */
#define ARC_SUB 64

void hv_spine_straighten_opts_default(hv_spine_straighten_opts *o)
{
    memset(o, 0, sizeof *o);
    o->curve = HV_SPINE_CURVE_SPLINE;
    o->frame = HV_SPINE_FRAME_RMF;
    o->through = HV_SPINE_THROUGH_BODY;
    o->width = 128;
    o->height = 128;
    o->step_mm = 1.0;
    o->extend_mm = 20.0;
    o->ct_fill = -1024.0;
    o->rigid_bodies = 1;
}

void hv_spine_map_free(hv_spine_map *m)
{
    if (!m) return;
    free(m->p);
    free(m->t);
    free(m->r);
    free(m->a);
    free(m);
}

static hv_status map_alloc(int64_t n, hv_spine_map **out)
{
    hv_spine_map *m = calloc(1, sizeof *m);
    if (!m) return hv_error_set(HV_ERR_NOMEM, "spine map");
    m->n = n;
    size_t sz = (size_t)n * 3 * sizeof(double);
    m->p = malloc(sz);
    m->t = malloc(sz);
    m->r = malloc(sz);
    m->a = malloc(sz);
    if (!m->p || !m->t || !m->r || !m->a) {
        hv_spine_map_free(m);
        return hv_error_set(HV_ERR_NOMEM, "spine map of %lld rows", (long long)n);
    }
    *out = m;
    return HV_OK;
}

/* The NIfTI affine: the exact mapping of row n/2 extended linearly. */
static void map_finish(hv_spine_map *m)
{
    int64_t kc = m->n / 2;
    const double *p = m->p + 3 * kc, *t = m->t + 3 * kc, *r = m->r + 3 * kc, *a = m->a + 3 * kc;
    hv_affine_identity(m->affine);
    for (int d = 0; d < 3; d++) {
        m->affine[d][0] = m->step * r[d];
        m->affine[d][1] = m->step * a[d];
        m->affine[d][2] = m->step * t[d];
        m->affine[d][3] = p[d] - m->ci * m->step * r[d] - m->cj * m->step * a[d]
                        - (double)kc * m->step * t[d];
    }
}

/* ------------------------------------------------------------ the curve */

typedef struct curve {
    int np;            /* points                                 */
    double *x;         /* 3*np                                   */
    double *u;         /* chord-length parameter per point       */
    double *m2;        /* 3*np second derivatives (spline)       */
    double *tan;       /* 3*np tangents at points (polyline)     */
    int spline;
    double ext;        /* spline: straight extension before u[0] and after u[np-1] */
    double d0[3], dn[3]; /* spline: unit tangents at the two ends */
} curve;

/* Clamped cubic spline second derivatives for one coordinate (Thomas
 * algorithm): the end first derivatives d0 and dn are given. np >= 2. */
static void spline_coeffs(const double *u, const double *x, int np, int d, double d0, double dn,
                          double *m2, double *work)
{
    double *c = work, *rhs = work + np;
    for (int i = 0; i < np; i++) {
        double sub = 0, diag, sup = 0, r;
        if (i == 0) {
            double h0 = u[1] - u[0];
            diag = 2 * h0;
            sup = h0;
            r = 6.0 * ((x[3 + d] - x[d]) / h0 - d0);
        } else if (i == np - 1) {
            double h = u[np - 1] - u[np - 2];
            sub = h;
            diag = 2 * h;
            r = 6.0 * (dn - (x[3 * (np - 1) + d] - x[3 * (np - 2) + d]) / h);
        } else {
            double h0 = u[i] - u[i - 1], h1 = u[i + 1] - u[i];
            double s0 = (x[3 * i + d] - x[3 * (i - 1) + d]) / h0;
            double s1 = (x[3 * (i + 1) + d] - x[3 * i + d]) / h1;
            sub = h0;
            diag = 2.0 * (h0 + h1);
            sup = h1;
            r = 6.0 * (s1 - s0);
        }
        double den = diag - (i > 0 ? sub * c[i - 1] : 0.0);
        c[i] = sup / den;
        rhs[i] = (r - (i > 0 ? sub * rhs[i - 1] : 0.0)) / den;
    }
    m2[3 * (np - 1) + d] = rhs[np - 1];
    for (int i = np - 2; i >= 0; i--) m2[3 * i + d] = rhs[i] - c[i] * m2[3 * (i + 1) + d];
}

/* Derivative at the first point of the parabola through three points at
 * parameters 0, h0, h0 + h1 (Bessel's end condition). */
static void bessel_end(const double *p0, const double *p1, const double *p2, double h0, double h1,
                       double out[3])
{
    double a = -(2 * h0 + h1) / (h0 * (h0 + h1)), b = (h0 + h1) / (h0 * h1), c = -h0 / (h1 * (h0 + h1));
    for (int d = 0; d < 3; d++) out[d] = a * p0[d] + b * p1[d] + c * p2[d];
}

/* Position and derivative (d/du) at parameter uu. */
static void curve_eval(const curve *cv, double uu, double pos[3], double der[3])
{
    if (cv->spline && (uu < cv->u[0] || uu > cv->u[cv->np - 1])) {
        int lo = uu < cv->u[0];
        const double *e = lo ? cv->x : cv->x + 3 * (cv->np - 1), *t = lo ? cv->d0 : cv->dn;
        double du = lo ? uu - cv->u[0] : uu - cv->u[cv->np - 1];
        for (int d = 0; d < 3; d++) {
            pos[d] = e[d] + du * t[d];
            der[d] = t[d];
        }
        return;
    }
    int seg = 0;
    while (seg < cv->np - 2 && uu > cv->u[seg + 1]) seg++;
    double u0 = cv->u[seg], u1 = cv->u[seg + 1], h = u1 - u0;
    double A = (u1 - uu) / h, B = (uu - u0) / h;
    for (int d = 0; d < 3; d++) {
        double x0 = cv->x[3 * seg + d], x1 = cv->x[3 * (seg + 1) + d];
        if (cv->spline) {
            double m0 = cv->m2[3 * seg + d], m1 = cv->m2[3 * (seg + 1) + d];
            pos[d] = A * x0 + B * x1 + ((A * A * A - A) * m0 + (B * B * B - B) * m1) * h * h / 6.0;
            der[d] = (x1 - x0) / h + (-(3 * A * A - 1) * m0 + (3 * B * B - 1) * m1) * h / 6.0;
        } else {
            pos[d] = A * x0 + B * x1;
            /* the reference's tangent: point tangents interpolated along the curve */
            der[d] = A * cv->tan[3 * seg + d] + B * cv->tan[3 * (seg + 1) + d];
        }
    }
}

/* Control points, caudal first. */
static hv_status collect_points(const hv_spine_verts *vs, int use_body, double extend,
                                int add_ext, double **pts, int *np_out)
{
    int nc = 0;
    for (size_t n = 0; n < vs->n; n++)
        if (!(vs->v[n].flags & HV_SPINE_FLAG_OFF_CURVE)) nc++;
    if (nc == 0)
        return hv_error_set(HV_ERR_EMPTY, "no vertebra is usable as a curve control point");
    double *x = malloc((size_t)(nc + 2) * 3 * sizeof *x);
    if (!x) return hv_error_set(HV_ERR_NOMEM, "curve points");
    int k = 1;
    for (size_t n = vs->n; n-- > 0;) {           /* caudal (last) first */
        const hv_spine_vert *v = &vs->v[n];
        if (v->flags & HV_SPINE_FLAG_OFF_CURVE) continue;
        const double *c = (use_body && v->has_body) ? v->body_centroid : v->centroid;
        memcpy(x + 3 * k, c, 3 * sizeof *x);
        k++;
    }
    if (nc == 1) {
        /* One vertebra: a straight line along world superior through it,
         * at least 40 mm either side so its neighbours' parts fit. */
        double e1 = extend > 40.0 ? extend : 40.0;
        for (int d = 0; d < 3; d++) {
            x[d] = x[3 + d];
            x[6 + d] = x[3 + d];
        }
        x[2] -= e1;
        x[6 + 2] += e1;
        memcpy(x + 3, x + 6, 3 * sizeof *x);   /* drop the middle point */
        *pts = x;
        *np_out = 2;
        return HV_OK;
    }
    if (!add_ext || !(extend > 0)) {             /* no extension points */
        memmove(x, x + 3, (size_t)nc * 3 * sizeof *x);
        *pts = x;
        *np_out = nc;
        return HV_OK;
    }
    for (int e = 0; e < 2; e++) {
        int end = e == 0 ? 1 : nc, in = e == 0 ? 2 : nc - 1, dst = e == 0 ? 0 : nc + 1;
        double dir[3] = {x[3 * end] - x[3 * in], x[3 * end + 1] - x[3 * in + 1],
                         x[3 * end + 2] - x[3 * in + 2]};
        if (hv_v3_normalize(dir) <= 1e-6) {
            free(x);
            return hv_error_set(HV_ERR_NUMERIC, "two curve control points coincide");
        }
        for (int d = 0; d < 3; d++) x[3 * dst + d] = x[3 * end + d] + extend * dir[d];
    }
    *pts = x;
    *np_out = nc + 2;
    return HV_OK;
}

/* Rotation-minimising frames by double reflection, then the global twist that
 * keeps r closest to world +x (patient right) on average. */
static void frames_rmf(hv_spine_map *m)
{
    const double X[3] = {1, 0, 0}, Y[3] = {0, 1, 0};
    double *t = m->t, *r = m->r, *a = m->a, *p = m->p;
    const double *ref = fabs(hv_v3_dot(t, X)) < 0.9 ? X : Y;
    double d0 = hv_v3_dot(ref, t);
    for (int d = 0; d < 3; d++) r[d] = ref[d] - d0 * t[d];
    hv_v3_normalize(r);
    for (int64_t k = 0; k + 1 < m->n; k++) {
        const double *x0 = p + 3 * k, *x1 = p + 3 * (k + 1);
        const double *t0 = t + 3 * k, *t1 = t + 3 * (k + 1), *r0 = r + 3 * k;
        double v1[3] = {x1[0] - x0[0], x1[1] - x0[1], x1[2] - x0[2]};
        double c1 = hv_v3_dot(v1, v1), rl[3], tl[3];
        if (c1 < 1e-18) {
            memcpy(rl, r0, sizeof rl);
            memcpy(tl, t0, sizeof tl);
        } else {
            double fr = 2.0 / c1 * hv_v3_dot(v1, r0), ft = 2.0 / c1 * hv_v3_dot(v1, t0);
            for (int d = 0; d < 3; d++) {
                rl[d] = r0[d] - fr * v1[d];
                tl[d] = t0[d] - ft * v1[d];
            }
        }
        double v2[3] = {t1[0] - tl[0], t1[1] - tl[1], t1[2] - tl[2]};
        double c2 = hv_v3_dot(v2, v2);
        double *r1 = r + 3 * (k + 1);
        if (c2 < 1e-18) {
            memcpy(r1, rl, 3 * sizeof *r1);
        } else {
            double f = 2.0 / c2 * hv_v3_dot(v2, rl);
            for (int d = 0; d < 3; d++) r1[d] = rl[d] - f * v2[d];
        }
        /* keep it exactly orthonormal against rounding drift */
        double dt = hv_v3_dot(r1, t1);
        for (int d = 0; d < 3; d++) r1[d] -= dt * t1[d];
        hv_v3_normalize(r1);
    }
    double sc = 0, ss = 0;
    for (int64_t k = 0; k < m->n; k++) {
        double *rk = r + 3 * k, *ak = a + 3 * k;
        hv_v3_cross(t + 3 * k, rk, ak);
        sc += hv_v3_dot(X, rk);   /* weighted by the projection length */
        ss += hv_v3_dot(X, ak);
    }
    double phi = (sc * sc + ss * ss > 1e-18) ? atan2(ss, sc) : 0.0;
    double cph = cos(phi), sph = sin(phi);
    for (int64_t k = 0; k < m->n; k++) {
        double *rk = r + 3 * k, *ak = a + 3 * k;
        for (int d = 0; d < 3; d++) {
            double nr = cph * rk[d] + sph * ak[d];
            rk[d] = nr;
        }
        hv_v3_cross(t + 3 * k, rk, ak);
    }
}

/* Spec §2.3 expressed in world coordinates: r perpendicular to t within the
 * coronal (x-z) plane, a = t x r. */
static void frames_reference(hv_spine_map *m)
{
    for (int64_t k = 0; k < m->n; k++) {
        const double *t = m->t + 3 * k;
        double *r = m->r + 3 * k, *a = m->a + 3 * k;
        r[0] = t[2];
        r[1] = 0.0;
        r[2] = -t[0];
        if (hv_v3_normalize(r) < 1e-9) { r[0] = 1; r[1] = 0; r[2] = 0; }
        hv_v3_cross(t, r, a);
    }
}

hv_status hv_spine_map_build(const hv_spine_verts *vs, int use_body,
                             const hv_spine_straighten_opts *o, hv_spine_map **out)
{
    hv_status st = HV_OK;
    hv_spine_straighten_opts def;
    curve cv = {0};
    double *arc_s = NULL, *arc_u = NULL, *work = NULL, *bp = NULL;
    hv_spine_map *m = NULL;
    *out = NULL;
    if (!o) { hv_spine_straighten_opts_default(&def); o = &def; }
    if (!vs) return hv_error_set(HV_ERR_ARG, "map: no vertebrae");
    if (!(o->step_mm > 0) || o->width < 2 || o->height < 2 || o->width > 4096 ||
        o->height > 4096 || !(o->extend_mm >= 0))
        return hv_error_set(HV_ERR_ARG, "straighten: bad grid (step %g mm, %lldx%lld, extend %g)",
                            o->step_mm, (long long)o->width, (long long)o->height, o->extend_mm);
    cv.spline = o->curve == HV_SPINE_CURVE_SPLINE;
    /* the polyline gets the reference's extension knots; the spline extends
     * straight along its (Bessel) end tangents instead */
    st = collect_points(vs, use_body, o->extend_mm, !cv.spline, &cv.x, &cv.np);
    if (st) return st;
    cv.u = malloc((size_t)cv.np * sizeof *cv.u);
    cv.m2 = calloc((size_t)cv.np * 3, sizeof *cv.m2);
    cv.tan = calloc((size_t)cv.np * 3, sizeof *cv.tan);
    work = malloc((size_t)cv.np * 2 * sizeof *work);
    if (!cv.u || !cv.m2 || !cv.tan || !work) { st = hv_error_set(HV_ERR_NOMEM, "curve"); goto done; }
    cv.u[0] = 0.0;
    for (int i = 1; i < cv.np; i++) {
        double d[3] = {cv.x[3 * i] - cv.x[3 * i - 3], cv.x[3 * i + 1] - cv.x[3 * i - 2],
                       cv.x[3 * i + 2] - cv.x[3 * i - 1]};
        double len = hv_v3_norm(d);
        if (len < 1e-6) { st = hv_error_set(HV_ERR_NUMERIC, "two curve control points coincide"); goto done; }
        cv.u[i] = cv.u[i - 1] + len;
    }
    if (cv.spline) {
        /* End tangents: Bessel (the parabola through the last three points)
         * rather than natural ends: a natural end leaves the end vertebra's
         * tangent near its chord, off by half a segment's bend (5-9 degrees
         * on a lordotic phantom), and the rigid body inherits that tilt. */
        int L = cv.np - 1;
        if (cv.np >= 3) {
            double e[3];
            bessel_end(cv.x, cv.x + 3, cv.x + 6, cv.u[1] - cv.u[0], cv.u[2] - cv.u[1], cv.d0);
            bessel_end(cv.x + 3 * L, cv.x + 3 * (L - 1), cv.x + 3 * (L - 2), cv.u[L] - cv.u[L - 1],
                       cv.u[L - 1] - cv.u[L - 2], e);
            for (int d = 0; d < 3; d++) cv.dn[d] = -e[d];   /* reversed parameter */
        } else {
            for (int d = 0; d < 3; d++) cv.d0[d] = cv.dn[d] = (cv.x[3 * L + d] - cv.x[d]) / cv.u[L];
        }
        for (int d = 0; d < 3; d++)
            spline_coeffs(cv.u, cv.x, cv.np, d, cv.d0[d], cv.dn[d], cv.m2, work);
        if (hv_v3_normalize(cv.d0) < 1e-9 || hv_v3_normalize(cv.dn) < 1e-9) {
            st = hv_error_set(HV_ERR_NUMERIC, "spine curve: degenerate end tangent");
            goto done;
        }
        cv.ext = o->extend_mm;
    }
    for (int i = 0; i < cv.np; i++) {    /* index-space central differences */
        int lo = i > 0 ? i - 1 : 0, hi = i < cv.np - 1 ? i + 1 : cv.np - 1;
        for (int d = 0; d < 3; d++)
            cv.tan[3 * i + d] = (cv.x[3 * hi + d] - cv.x[3 * lo + d]) / (double)(hi - lo);
    }
    /* Arc-length table over the breakpoints (extensions included). */
    int nb = 0;
    bp = malloc((size_t)(cv.np + 2) * sizeof *bp);
    if (!bp) { st = hv_error_set(HV_ERR_NOMEM, "arc table"); goto done; }
    if (cv.ext > 0) bp[nb++] = cv.u[0] - cv.ext;
    for (int i = 0; i < cv.np; i++) bp[nb++] = cv.u[i];
    if (cv.ext > 0) bp[nb++] = cv.u[cv.np - 1] + cv.ext;
    size_t na = (size_t)(nb - 1) * ARC_SUB + 1;
    arc_s = malloc(na * sizeof *arc_s);
    arc_u = malloc(na * sizeof *arc_u);
    if (!arc_s || !arc_u) { st = hv_error_set(HV_ERR_NOMEM, "arc table"); goto done; }
    double prev[3], der[3];
    curve_eval(&cv, bp[0], prev, der);
    arc_s[0] = 0.0;
    arc_u[0] = bp[0];
    for (size_t q = 1; q < na; q++) {
        size_t seg = (q - 1) / ARC_SUB, sub = (q - 1) % ARC_SUB + 1;
        double uu = bp[seg] + (bp[seg + 1] - bp[seg]) * (double)sub / ARC_SUB;
        double pos[3];
        curve_eval(&cv, uu, pos, der);
        double dd[3] = {pos[0] - prev[0], pos[1] - prev[1], pos[2] - prev[2]};
        arc_s[q] = arc_s[q - 1] + hv_v3_norm(dd);
        arc_u[q] = uu;
        memcpy(prev, pos, sizeof prev);
    }
    double total = arc_s[na - 1];
    if (!isfinite(total) || total < 2 * o->step_mm) {
        st = hv_error_set(HV_ERR_NUMERIC, "spine curve too short (%g mm)", total);
        goto done;
    }
    if (total / o->step_mm > 1e6) {
        st = hv_error_set(HV_ERR_LIMIT, "spine curve of %g mm is implausibly long", total);
        goto done;
    }
    int64_t n = (int64_t)floor(total / o->step_mm + 1e-9) + 1;
    st = map_alloc(n, &m);
    if (st) goto done;
    m->width = o->width;
    m->height = o->height;
    m->step = o->step_mm;
    m->ci = (double)(o->width / 2);
    m->cj = (double)(o->height / 2);
    size_t q = 0;
    for (int64_t k = 0; k < n; k++) {
        double s = (double)k * o->step_mm;
        while (q + 2 < na && arc_s[q + 1] < s) q++;
        double f = (arc_s[q + 1] > arc_s[q]) ? (s - arc_s[q]) / (arc_s[q + 1] - arc_s[q]) : 0.0;
        if (f > 1.0) f = 1.0;
        double uu = arc_u[q] + f * (arc_u[q + 1] - arc_u[q]);
        double *t = m->t + 3 * k;
        curve_eval(&cv, uu, m->p + 3 * k, t);
        if (hv_v3_normalize(t) < 1e-12) {
            st = hv_error_set(HV_ERR_NUMERIC, "spine curve has a zero tangent at row %lld",
                              (long long)k);
            goto done;
        }
    }
    if (o->frame == HV_SPINE_FRAME_REFERENCE) frames_reference(m);
    else frames_rmf(m);
    map_finish(m);
    *out = m;
    m = NULL;
done:
    free(cv.x);
    free(cv.u);
    free(cv.m2);
    free(cv.tan);
    free(work);
    free(arc_s);
    free(arc_u);
    free(bp);
    hv_spine_map_free(m);
    return st;
}

/* ------------------------------------------------------------- mapping */

/* Interpolated point and frame at fractional row u (points extrapolate along
 * the end tangents; frames clamp). */
static void map_at(const hv_spine_map *m, double u, double p[3], double r[3], double a[3])
{
    int64_t k = (int64_t)floor(u);
    if (k < 0) k = 0;
    if (k > m->n - 2) k = m->n - 2;
    double f = u - (double)k;
    if (m->n < 2) { k = 0; f = 0; }
    double fc = f < 0 ? 0 : (f > 1 ? 1 : f);
    const double *p0 = m->p + 3 * k, *p1 = m->p + 3 * (k + (m->n > 1));
    for (int d = 0; d < 3; d++) {
        r[d] = (1 - fc) * m->r[3 * k + d] + fc * m->r[3 * (k + (m->n > 1)) + d];
        a[d] = (1 - fc) * m->a[3 * k + d] + fc * m->a[3 * (k + (m->n > 1)) + d];
        if (f < 0) p[d] = p0[d] + f * m->step * m->t[3 * k + d];
        else if (f > 1) p[d] = p1[d] + (f - 1) * m->step * m->t[3 * (k + 1) + d];
        else p[d] = (1 - f) * p0[d] + f * p1[d];
    }
}

void hv_spine_map_to_world(const hv_spine_map *m, const double ijk[3], double world[3])
{
    double p[3], r[3], a[3];
    map_at(m, ijk[2], p, r, a);
    double di = (ijk[0] - m->ci) * m->step, dj = (ijk[1] - m->cj) * m->step;
    for (int d = 0; d < 3; d++) world[d] = p[d] + di * r[d] + dj * a[d];
}

static inline double plane_dist(const hv_spine_map *m, int64_t k, const double w[3])
{
    const double *p = m->p + 3 * k, *t = m->t + 3 * k;
    return (w[0] - p[0]) * t[0] + (w[1] - p[1]) * t[1] + (w[2] - p[2]) * t[2];
}

int hv_spine_map_from_world(const hv_spine_map *m, const double w[3], double hint_row,
                            double ijk[3])
{
    int64_t k;
    if (hint_row >= 0 && hint_row <= (double)(m->n - 1)) {
        k = (int64_t)hint_row;
    } else {
        double best = INFINITY;
        k = 0;
        for (int64_t q = 0; q < m->n; q++) {
            const double *p = m->p + 3 * q;
            double d2 = (w[0] - p[0]) * (w[0] - p[0]) + (w[1] - p[1]) * (w[1] - p[1]) +
                        (w[2] - p[2]) * (w[2] - p[2]);
            if (d2 < best) { best = d2; k = q; }
        }
    }
    if (k > m->n - 2) k = m->n - 2;
    if (k < 0) k = 0;
    double fk = plane_dist(m, k, w);
    while (k > 0 && fk < 0) fk = plane_dist(m, --k, w);
    double fk1 = plane_dist(m, k + 1, w);
    while (k < m->n - 2 && fk1 >= 0) {
        k++;
        fk = fk1;
        fk1 = plane_dist(m, k + 1, w);
    }
    double u;
    int inside = 1;
    if (fk < 0) {                         /* before the first row */
        u = fk / m->step;
        inside = 0;
    } else if (fk1 >= 0) {                /* beyond the last row */
        u = (double)(m->n - 1) + fk1 / m->step;
        inside = 0;
    } else {
        u = (double)k + fk / (fk - fk1);
    }
    double p[3], r[3], a[3];
    map_at(m, u, p, r, a);
    double d[3] = {w[0] - p[0], w[1] - p[1], w[2] - p[2]};
    ijk[0] = m->ci + hv_v3_dot(d, r) / m->step;
    ijk[1] = m->cj + hv_v3_dot(d, a) / m->step;
    ijk[2] = u;
    return inside;
}

/* --------------------------------------------------------- rigid bodies */

/* Frame (r, a, t as columns) at fractional row u, re-orthonormalised. */
static void frame_at(const hv_spine_map *m, double u, double p[3], double F[3][3])
{
    int64_t k = (int64_t)floor(u);
    if (k < 0) k = 0;
    if (k > m->n - 2) k = m->n - 2;
    double f = u - (double)k;
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    double t[3], r[3], a[3];
    for (int d = 0; d < 3; d++) {
        p[d] = (1 - f) * m->p[3 * k + d] + f * m->p[3 * (k + 1) + d];
        t[d] = (1 - f) * m->t[3 * k + d] + f * m->t[3 * (k + 1) + d];
        r[d] = (1 - f) * m->r[3 * k + d] + f * m->r[3 * (k + 1) + d];
    }
    hv_v3_normalize(t);
    double dt = hv_v3_dot(r, t);
    for (int d = 0; d < 3; d++) r[d] -= dt * t[d];
    hv_v3_normalize(r);
    hv_v3_cross(t, r, a);
    for (int d = 0; d < 3; d++) {
        F[d][0] = r[d];
        F[d][1] = a[d];
        F[d][2] = t[d];
    }
}

/* Rotation by `angle` about unit `ax` applied to the columns of F. */
static void rotate_frame(const double ax[3], double angle, const double F[3][3], double out[3][3])
{
    double c = cos(angle), s = sin(angle);
    for (int col = 0; col < 3; col++) {
        double v[3] = {F[0][col], F[1][col], F[2][col]}, x[3];
        hv_v3_cross(ax, v, x);
        double dv = hv_v3_dot(ax, v);
        for (int d = 0; d < 3; d++) out[d][col] = v[d] * c + x[d] * s + ax[d] * dv * (1 - c);
    }
}

/* Axis and angle of the rotation R = B A^T taking frame A onto frame B. */
static void frame_delta(const double A[3][3], const double B[3][3], double ax[3], double *angle)
{
    double R[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            R[i][j] = 0;
            for (int q = 0; q < 3; q++) R[i][j] += B[i][q] * A[j][q];
        }
    double tr = R[0][0] + R[1][1] + R[2][2];
    double cs = (tr - 1) / 2;
    if (cs > 1) cs = 1;
    if (cs < -1) cs = -1;
    *angle = acos(cs);
    ax[0] = R[2][1] - R[1][2];
    ax[1] = R[0][2] - R[2][0];
    ax[2] = R[1][0] - R[0][1];
    if (hv_v3_normalize(ax) < 1e-12) {
        ax[0] = 1; ax[1] = 0; ax[2] = 0;
        *angle = 0;                        /* near-identity (a 180 degree turn cannot occur here) */
    }
}

static void set_row(hv_spine_map *m, int64_t k, const double p[3], const double F[3][3])
{
    for (int d = 0; d < 3; d++) {
        m->p[3 * k + d] = p[d];
        m->r[3 * k + d] = F[d][0];
        m->a[3 * k + d] = F[d][1];
        m->t[3 * k + d] = F[d][2];
    }
}

hv_status hv_spine_map_rigidify(hv_spine_map *m, const hv_spine_zone *zones, size_t nz)
{
    hv_status st = HV_OK;
    hv_spine_map *orig = NULL;
    hv_spine_zone *z = NULL;
    double (*P)[3] = NULL, (*F)[3][3] = NULL;
    if (!m || (nz && !zones)) return hv_error_set(HV_ERR_ARG, "rigidify: missing input");
    if (nz == 0) return HV_OK;
    z = malloc(nz * sizeof *z);
    P = malloc(nz * sizeof *P);
    F = malloc(nz * sizeof *F);
    if (!z || !P || !F) { st = hv_error_set(HV_ERR_NOMEM, "rigidify"); goto done; }
    memcpy(z, zones, nz * sizeof *z);
    for (size_t v = 0; v < nz; v++) {
        if (!(z[v].lo <= z[v].centre && z[v].centre <= z[v].hi) || !isfinite(z[v].lo) ||
            !isfinite(z[v].hi) || (v > 0 && z[v].centre <= z[v - 1].centre)) {
            st = hv_error_set(HV_ERR_ARG, "rigidify: zone %zu [%g, %g] around %g is not ordered", v,
                              z[v].lo, z[v].hi, z[v].centre);
            goto done;
        }
    }
    /* zones that overlap meet half way */
    for (size_t v = 0; v + 1 < nz; v++)
        if (z[v].hi > z[v + 1].lo) {
            double mid = 0.5 * (z[v].hi + z[v + 1].lo);
            if (mid < z[v].centre) mid = z[v].centre;
            if (mid > z[v + 1].centre) mid = z[v + 1].centre;
            z[v].hi = z[v + 1].lo = mid;
        }
    st = map_alloc(m->n, &orig);
    if (st) goto done;
    size_t sz = (size_t)m->n * 3 * sizeof(double);
    memcpy(orig->p, m->p, sz);
    memcpy(orig->t, m->t, sz);
    memcpy(orig->r, m->r, sz);
    memcpy(orig->a, m->a, sz);
    orig->step = m->step;
    for (size_t v = 0; v < nz; v++) {
        frame_at(orig, z[v].centre, P[v], F[v]);
        if (z[v].has_point) memcpy(P[v], z[v].point, sizeof P[v]);
    }
    size_t v = 0;
    for (int64_t k = 0; k < m->n; k++) {
        double kk = (double)k, p[3];
        while (v + 1 < nz && kk > z[v].hi) v++;
        /* kk <= z[v].hi, or kk beyond the last zone */
        if (kk >= z[v].lo || (v == 0 && kk < z[0].lo) || (v == nz - 1 && kk > z[v].hi)) {
            /* inside zone v, or beyond the end zones: the rigid body's own frame */
            double du = (kk - z[v].centre) * m->step;
            for (int d = 0; d < 3; d++) p[d] = P[v][d] + du * F[v][d][2];
            set_row(m, k, p, F[v]);
            continue;
        }
        /* a disc between zone v-1 (below) and zone v (above) */
        size_t a0 = v - 1, b0 = v;
        double e = z[a0].hi, b = z[b0].lo, len = (b - e) * m->step;
        double u = (kk - e) / (b - e);
        double PA[3], PB[3];
        for (int d = 0; d < 3; d++) {
            PA[d] = P[a0][d] + (e - z[a0].centre) * m->step * F[a0][d][2];
            PB[d] = P[b0][d] + (b - z[b0].centre) * m->step * F[b0][d][2];
        }
        double h00 = 2 * u * u * u - 3 * u * u + 1, h10 = u * u * u - 2 * u * u + u;
        double h01 = -2 * u * u * u + 3 * u * u, h11 = u * u * u - u * u;
        for (int d = 0; d < 3; d++)
            p[d] = h00 * PA[d] + h10 * len * F[a0][d][2] + h01 * PB[d] + h11 * len * F[b0][d][2];
        double ax[3], ang, Fk[3][3];
        frame_delta(F[a0], F[b0], ax, &ang);
        rotate_frame(ax, u * ang, F[a0], Fk);
        set_row(m, k, p, Fk);
    }
    map_finish(m);
done:
    hv_spine_map_free(orig);
    free(z);
    free(P);
    free(F);
    return st;
}

/* ------------------------------------------------------------- file I/O */

hv_status hv_spine_map_write(const char *path, const hv_spine_map *m)
{
    hv_atomic_file *a;
    FILE *f;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fprintf(f, "# hv-spine-map 1\n");
    fprintf(f, "# n=%lld width=%lld height=%lld step=%.17g ci=%.17g cj=%.17g\n",
            (long long)m->n, (long long)m->width, (long long)m->height, m->step, m->ci, m->cj);
    fprintf(f, "# world(i,j,k) = p_k + (i-ci)*step*r_k + (j-cj)*step*a_k  (RAS+ mm)\n");
    fprintf(f, "k,px,py,pz,tx,ty,tz,rx,ry,rz,ax,ay,az\n");
    for (int64_t k = 0; k < m->n; k++) {
        const double *v[4] = {m->p + 3 * k, m->t + 3 * k, m->r + 3 * k, m->a + 3 * k};
        fprintf(f, "%lld", (long long)k);
        for (int q = 0; q < 4; q++)
            fprintf(f, ",%.17g,%.17g,%.17g", v[q][0], v[q][1], v[q][2]);
        fputc('\n', f);
    }
    return hv_atomic_commit(a, 0);
}

hv_status hv_spine_map_read(const char *path, hv_spine_map **out)
{
    hv_status st = HV_OK;
    hv_spine_map *m = NULL;
    char line[1024];
    long long n = -1, w = 0, h = 0;
    double step = 0, ci = 0, cj = 0;
    *out = NULL;
    if ((st = hv_file_check_regular(path, "spine map")) != HV_OK) return st;
    FILE *f = fopen(path, "r");
    if (!f) return hv_error_set(HV_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (!fgets(line, sizeof line, f) || strncmp(line, "# hv-spine-map 1", 16) != 0) {
        st = hv_error_set(HV_ERR_FORMAT, "%s: not a spine map (header)", path);
        goto done;
    }
    if (!fgets(line, sizeof line, f) ||
        sscanf(line, "# n=%lld width=%lld height=%lld step=%lf ci=%lf cj=%lf", &n, &w, &h,
               &step, &ci, &cj) != 6 || n < 2 || n > 10000000 || w < 2 || h < 2 ||
        w > 4096 || h > 4096 || !(step > 0) || !isfinite(step) || !isfinite(ci) ||
        !isfinite(cj)) {
        st = hv_error_set(HV_ERR_FORMAT, "%s: bad grid line", path);
        goto done;
    }
    st = map_alloc(n, &m);
    if (st) goto done;
    m->width = w;
    m->height = h;
    m->step = step;
    m->ci = ci;
    m->cj = cj;
    int64_t k = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == 'k' || line[0] == '\n') continue;
        if (k >= m->n) { st = hv_error_set(HV_ERR_FORMAT, "%s: more rows than n=%lld", path, n); goto done; }
        char *s = line, *e;
        long long kk = strtoll(s, &e, 10);
        if (e == s || kk != k) { st = hv_error_set(HV_ERR_FORMAT, "%s: row %lld out of order", path, (long long)k); goto done; }
        s = e;
        double *dst[4] = {m->p + 3 * k, m->t + 3 * k, m->r + 3 * k, m->a + 3 * k};
        for (int q = 0; q < 12; q++) {
            if (*s != ',') { st = hv_error_set(HV_ERR_FORMAT, "%s: row %lld: expected 13 fields", path, (long long)k); goto done; }
            s++;
            double v = strtod(s, &e);
            if (e == s || !isfinite(v)) { st = hv_error_set(HV_ERR_FORMAT, "%s: row %lld: bad number", path, (long long)k); goto done; }
            dst[q / 3][q % 3] = v;
            s = e;
        }
        k++;
    }
    if (k != m->n) { st = hv_error_set(HV_ERR_FORMAT, "%s: %lld rows, header says %lld", path, (long long)k, n); goto done; }
    map_finish(m);
    *out = m;
    m = NULL;
done:
    fclose(f);
    hv_spine_map_free(m);
    return st;
}
