/*
 * phantom.c: the synthetic spine model and its voxelisation.
 *
 * (One file of ~1,250 lines on purpose: the model's geometry (bodies,
 * posterior elements, discs, centreline) and its voxelisation share the same
 * local frames and profile functions, and the ground truth is only exact if
 * both read them from one place; cohort.c writes cohorts around it.)
 *
 * A case is an analytic model in world RAS+ millimetres, drawn from explicit
 * RNG streams keyed by (seed, case index, purpose), so it depends on nothing
 * else: not on the output grid, not on the thread count, not on the level
 * range (all of C7..S1 is always drawn; the range only picks what is drawn
 * into the volumes), and the geometry does not change with the fracture rate.
 *
 * Why analytic: every later stage (straightening, heights, RHLV, grading) is
 * checked against this ground truth, so the numbers in hv_phantom_vert must
 * be exact, not "whatever the voxels came out as". Each vertebral body is an
 * extrusion, along its local axis, of a flat-backed elliptic cross-section
 * (depth D, width W) between two endplate surfaces that depend only on the
 * antero-posterior coordinate v. The height profile h(v) passes exactly
 * through the anterior / middle / posterior heights at v = +D/3, 0, -D/3 (the
 * 1/6, 1/2, 5/6 points of the depth) with smoothstep pieces between them and
 * constant beyond, so the profile is bounded by its knot values and flat at
 * the knots (a ray along the axis through a knot measures exactly that knot's
 * height). A fracture lowers the superior endplate by a second profile of the
 * same kind through the three losses; the inferior endplate stays put.
 *
 * Neighbouring bodies never touch: vertebrae are placed along a smooth
 * centreline (kyphosis, lordosis, optional scoliosis) at their nominal disc
 * spacing and pushed down the curve until every sampled endplate point keeps
 * >= 1 mm of disc from the neighbour. Discs fill the space between endplates
 * (a collapsed endplate's gap is filled by disc, like a disc bulging into it).
 *
 * Voxelisation samples the model at voxel centres (mask and CT from the same
 * test, so they agree). Materials are resolved by precedence: any body, then
 * any posterior element, then discs, canal, torso. Per voxel only the model
 * elements whose world bounding box overlaps the voxel's z bin are tested.
 * The CT noise is a hash of (seed, case, world position), so it does not
 * depend on the grid's enumeration order or on threads. The orthogonal
 * orientations (LPS, PIR) are the RAS grid's own voxels, rendered once on the
 * canonical grid and copied with permuted/flipped axes: reorienting them back
 * gives the RAS arrays bit for bit.
 */
#include "hv/phantom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PH_NLEV 19        /* C7 (virtual), T1..L5, S1 (virtual) */
#define PH_DEG (M_PI / 180.0)
#define PH_MIN_GAP 1.0    /* mm of disc kept between neighbouring bodies */
#define PH_ZBIN 2.0       /* mm per candidate bin along world z */

/* ------------------------------------------------------------ level tables */

/* Adult vertebral body morphometry by level, index 0 = C7 (virtual, only its
 * inferior endplate is used for the C7/T1 disc), 1..17 = T1..L5, 18 = S1
 * (virtual). Values in mm, rounded approximations of published adult means
 * (see docs/phantom.md): posterior and anterior body height, AP depth, LR
 * width of the body, and the disc below the level (mid-disc thickness). */
static const double tab_hp[PH_NLEV] = {14.0, 15.0, 15.9, 16.7, 17.4, 18.1, 18.8, 19.6, 20.4, 21.2,
                                       22.0, 23.0, 24.0, 26.0, 26.8, 27.0, 27.0, 26.5, 28.0};
static const double tab_ha[PH_NLEV] = {13.6, 13.8, 14.6, 15.2, 15.8, 16.4, 17.0, 17.8, 18.6, 19.5,
                                       20.5, 21.7, 22.8, 25.2, 26.4, 27.2, 27.6, 28.2, 30.0};
static const double tab_d[PH_NLEV] = {15.5, 16.0, 16.8, 17.8, 18.9, 20.0, 21.2, 22.5, 23.8, 25.2,
                                      26.6, 28.0, 29.5, 30.8, 31.8, 32.8, 33.5, 34.0, 35.0};
static const double tab_w[PH_NLEV] = {24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.2, 31.5, 33.0, 34.8,
                                      36.8, 39.2, 41.8, 43.5, 45.5, 47.5, 49.0, 50.0, 50.0};
static const double tab_disc[PH_NLEV] = {4.0, 4.0, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.8,
                                         5.0, 5.4, 6.5, 8.5, 9.5, 10.5, 11.0, 10.5, 0.0};
/* Posterior elements (mm, degrees): canal width/depth, pedicle width (LR)
 * and height, lamina thickness and height, spinous process length from the
 * lamina, angle below the horizontal, thickness (LR) and height, transverse
 * process length from the pedicle, radius and backward angle. */
static const double tab_cw[PH_NLEV] = {17.0, 16.5, 15.5, 15.0, 15.0, 15.0, 15.0, 15.0, 15.3, 15.6,
                                       16.0, 17.0, 18.0, 21.0, 21.5, 22.0, 23.0, 24.5, 25.0};
static const double tab_cd[PH_NLEV] = {14.5, 14.5, 14.5, 14.5, 14.5, 14.5, 14.5, 14.5, 14.5, 14.8,
                                       15.0, 15.5, 16.0, 16.5, 16.5, 16.5, 16.5, 17.0, 17.0};
static const double tab_pw[PH_NLEV] = {6.5, 8.0, 7.0, 5.5, 5.0, 5.0, 5.2, 5.5, 6.0, 6.5,
                                       7.0, 8.0, 8.0, 8.0, 8.5, 10.0, 11.5, 13.0, 13.0};
static const double tab_ph[PH_NLEV] = {9.0, 10.0, 10.5, 11.1, 11.6, 12.2, 12.7, 13.3, 13.8, 14.4,
                                       14.9, 15.5, 16.0, 15.5, 15.0, 15.0, 14.5, 14.0, 14.0};
static const double tab_sl[PH_NLEV] = {30.0, 32.0, 33.0, 34.0, 35.0, 36.0, 36.0, 36.0, 35.0, 34.0,
                                       33.0, 31.0, 30.0, 29.0, 29.0, 28.0, 26.0, 24.0, 20.0};
static const double tab_sa[PH_NLEV] = {20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 45.0, 45.0, 45.0, 40.0,
                                       35.0, 28.0, 20.0, 12.0, 10.0, 8.0, 6.0, 5.0, 5.0};
static const double tab_sh[PH_NLEV] = {8.0, 8.0, 8.0, 8.5, 8.5, 9.0, 9.0, 9.5, 10.0, 10.5,
                                       11.0, 12.0, 13.0, 18.0, 19.0, 19.0, 17.0, 14.0, 14.0};
static const double tab_tl[PH_NLEV] = {26.0, 30.0, 29.0, 28.0, 27.0, 26.0, 25.0, 24.0, 23.0, 21.0,
                                       19.0, 16.0, 14.0, 18.0, 22.0, 27.0, 24.0, 22.0, 22.0};
static const double tab_ta[PH_NLEV] = {20.0, 25.0, 30.0, 33.0, 35.0, 35.0, 35.0, 35.0, 34.0, 32.0,
                                       30.0, 28.0, 25.0, 12.0, 10.0, 10.0, 12.0, 15.0, 15.0};

static int lev_is_lumbar(int n) { return n >= 13; }

/* ------------------------------------------------------------- the model */

typedef struct ph_vert {
    int label;              /* VerSe label; 0 for the virtual C7 / S1     */
    double s;               /* arc length of the centre on the centreline */
    double c[3];            /* world centre of the healthy body           */
    double R[3][3];         /* rows: right (u), anterior (v), axis (w)    */
    double h[3];            /* healthy heights ant, mid, post             */
    double dl[3];           /* superior endplate drop (mm) ant, mid, post */
    double D, W, shell;
    double disc_below;      /* nominal disc thickness to the next level   */
    /* posterior elements, local frame */
    double cw, cd, vc;      /* canal half-axes source and centre v        */
    double pw, ph, wpc;     /* pedicle width, height, centre w            */
    double lt, lh, lslope;  /* lamina thickness, height, tan(slope)       */
    double s0[3], sd[3], sp[3], sl, st, sh; /* spinous start, dir, perp, sizes */
    double t0[3], tdir[3], tl, tr;          /* right transverse process        */
    double lmin[3], lmax[3];                /* local bone bounding box         */
    double back;            /* body centre to skin of the back (mm)       */
    /* CT */
    double hu_trab, hu_post;
    /* ground truth */
    int grade;
    hv_fracture_type type;
    double loss, lossp[3];
} ph_vert;

typedef struct ph_model {
    uint64_t seed;
    int index;
    int first, last;        /* rendered levels (1..17)                     */
    ph_vert lv[PH_NLEV];
    /* centreline table r(s) for s = s_lo + i*ds */
    double s_lo, ds;
    int n_cl;
    double *cl;             /* n_cl x 3                                   */
    /* angles */
    double th_knot_s[3], th_knot[3];
    int scoliotic;
    double sc_s0, sc_len, sc_psi;
    /* tissue */
    double hu_air, hu_fat, hu_soft, hu_cort, hu_disc, hu_csf;
    double fat_thick, torso_a, torso_b;
    double noise;
} ph_model;

typedef struct ph_case_impl {
    hv_phantom_case pub;    /* first member: the public handle points here */
    ph_model m;
} ph_case_impl;

const char *hv_fracture_type_name(hv_fracture_type t)
{
    switch (t) {
    case HV_FRACTURE_NONE: return "none";
    case HV_FRACTURE_WEDGE: return "wedge";
    case HV_FRACTURE_BICONCAVE: return "biconcave";
    case HV_FRACTURE_CRUSH: return "crush";
    }
    return "unknown";
}

void hv_phantom_opts_default(hv_phantom_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->first_label = HV_LABEL_T1;
    o->last_label = HV_LABEL_L5;
    o->spacing[0] = o->spacing[1] = o->spacing[2] = 1.0;
    o->orientation = HV_PHANTOM_RAS;
    o->fracture_rate = 0.15;
    o->scoliosis_rate = 0.3;
    o->noise_hu = 20.0;
}

static hv_status opts_check(const hv_phantom_opts *o)
{
    if (!o) return hv_error_set(HV_ERR_ARG, "phantom: no options");
    if (o->first_label < HV_LABEL_T1 || o->last_label > HV_LABEL_L5 || o->first_label > o->last_label)
        return hv_error_set(HV_ERR_ARG, "phantom: level range %d..%d is not within T1..L5 (8..24) top to bottom",
                            o->first_label, o->last_label);
    for (int a = 0; a < 3; a++)
        if (!isfinite(o->spacing[a]) || o->spacing[a] < 0.1 || o->spacing[a] > 20.0)
            return hv_error_set(HV_ERR_ARG, "phantom: spacing %g mm on axis %d is outside 0.1..20",
                                o->spacing[a], a);
    if ((int)o->orientation < HV_PHANTOM_RAS || (int)o->orientation > HV_PHANTOM_OBLIQUE)
        return hv_error_set(HV_ERR_ARG, "phantom: unknown orientation %d", (int)o->orientation);
    if (!(o->fracture_rate >= 0.0 && o->fracture_rate <= 1.0))
        return hv_error_set(HV_ERR_ARG, "phantom: fracture rate %g is outside [0, 1]", o->fracture_rate);
    if (!(o->scoliosis_rate >= 0.0 && o->scoliosis_rate <= 1.0))
        return hv_error_set(HV_ERR_ARG, "phantom: scoliosis rate %g is outside [0, 1]", o->scoliosis_rate);
    if (!(o->noise_hu >= 0.0 && o->noise_hu <= 1000.0))
        return hv_error_set(HV_ERR_ARG, "phantom: noise %g HU is outside [0, 1000]", o->noise_hu);
    return HV_OK;
}

/* ------------------------------------------------------------ small maths */

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
static double smooth01(double t) { return t * t * (3.0 - 2.0 * t); }

/* The three-knot profile: value a at v = +D/3 (anterior), m at 0, p at -D/3,
 * smoothstep in between, constant beyond. */
static inline double prof3(double v, double D, const double k[3])
{
    double v3 = D / 3.0;
    if (v >= v3) return k[0];
    if (v <= -v3) return k[2];
    if (v >= 0.0) return k[1] + (k[0] - k[1]) * smooth01(v / v3);
    return k[1] + (k[2] - k[1]) * smooth01(-v / v3);
}

static void cross3(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot3(const double a[3], const double b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static void norm3(double a[3])
{
    double n = sqrt(dot3(a, a));
    a[0] /= n;
    a[1] /= n;
    a[2] /= n;
}

/* Frame from an axis (towards superior): anterior = +y made perpendicular. */
static void frame_from_axis(const double axis[3], double R[3][3])
{
    double a[3] = {axis[0], axis[1], axis[2]};
    norm3(a);
    double y[3] = {0.0, 1.0, 0.0};
    double d = dot3(y, a);
    double an[3] = {y[0] - d * a[0], y[1] - d * a[1], y[2] - d * a[2]};
    norm3(an);
    double r[3];
    cross3(an, a, r); /* right = anterior x axis (x = y cross z) */
    for (int c = 0; c < 3; c++) {
        R[0][c] = r[c];
        R[1][c] = an[c];
        R[2][c] = a[c];
    }
}

static inline void to_local(const double R[3][3], const double c[3], const double p[3], double q[3])
{
    double d0 = p[0] - c[0], d1 = p[1] - c[1], d2 = p[2] - c[2];
    q[0] = R[0][0] * d0 + R[0][1] * d1 + R[0][2] * d2;
    q[1] = R[1][0] * d0 + R[1][1] * d1 + R[1][2] * d2;
    q[2] = R[2][0] * d0 + R[2][1] * d1 + R[2][2] * d2;
}

static void to_world(const double R[3][3], const double c[3], const double q[3], double p[3])
{
    for (int a = 0; a < 3; a++) p[a] = c[a] + R[0][a] * q[0] + R[1][a] * q[1] + R[2][a] * q[2];
}

/* Cross-section shape function, homogeneous of degree 1: ellipse in front,
 * a flatter superellipse (power 4) behind, so the posterior wall is flat. */
static inline double xsec_f(double u, double v, double a, double b)
{
    double x = u / a, y = v / b;
    if (v >= 0.0) return sqrt(x * x + y * y);
    double x2 = x * x, y2 = y * y;
    return sqrt(sqrt(x2 * x2 + y2 * y2));
}

/* ------------------------------------------------------------- centreline */

static void centre_angles(const ph_model *m, double s, double *theta, double *psi)
{
    const double *ks = m->th_knot_s, *kt = m->th_knot;
    double th;
    if (s <= ks[0]) th = kt[0];
    else if (s <= ks[1]) th = kt[0] + (kt[1] - kt[0]) * smooth01((s - ks[0]) / (ks[1] - ks[0]));
    else if (s <= ks[2]) th = kt[1] + (kt[2] - kt[1]) * smooth01((s - ks[1]) / (ks[2] - ks[1]));
    else th = kt[2];
    double ps = 0.0;
    if (m->scoliotic && s > m->sc_s0 && s < m->sc_s0 + m->sc_len)
        ps = m->sc_psi * sin(2.0 * M_PI * (s - m->sc_s0) / m->sc_len);
    *theta = th;
    *psi = ps;
}

/* Unit tangent towards caudal. */
static void centre_tangent(const ph_model *m, double s, double t[3])
{
    double th, ps;
    centre_angles(m, s, &th, &ps);
    t[0] = sin(ps);
    t[1] = cos(ps) * sin(th);
    t[2] = -cos(ps) * cos(th);
}

static hv_status centre_build(ph_model *m, double s_lo, double s_hi)
{
    m->ds = 0.25;
    m->s_lo = s_lo;
    m->n_cl = (int)ceil((s_hi - s_lo) / m->ds) + 2;
    m->cl = malloc((size_t)m->n_cl * 3 * sizeof(double));
    if (!m->cl) return hv_error_set(HV_ERR_NOMEM, "phantom: out of memory (centreline)");
    /* r(0) = origin at s = 0 (C7 centre); integrate both ways (midpoint rule). */
    int i0 = (int)llround((0.0 - s_lo) / m->ds);
    m->s_lo = -i0 * m->ds;
    double *r = m->cl;
    r[3 * i0 + 0] = r[3 * i0 + 1] = r[3 * i0 + 2] = 0.0;
    for (int i = i0 + 1; i < m->n_cl; i++) {
        double t[3], s = m->s_lo + (i - 0.5) * m->ds;
        centre_tangent(m, s, t);
        for (int a = 0; a < 3; a++) r[3 * i + a] = r[3 * (i - 1) + a] + m->ds * t[a];
    }
    for (int i = i0 - 1; i >= 0; i--) {
        double t[3], s = m->s_lo + (i + 0.5) * m->ds;
        centre_tangent(m, s, t);
        for (int a = 0; a < 3; a++) r[3 * i + a] = r[3 * (i + 1) + a] - m->ds * t[a];
    }
    return HV_OK;
}

static void centre_point(const ph_model *m, double s, double p[3])
{
    double x = (s - m->s_lo) / m->ds;
    int i = (int)floor(x);
    if (i < 0) i = 0;
    if (i > m->n_cl - 2) i = m->n_cl - 2;
    double f = x - i;
    for (int a = 0; a < 3; a++) p[a] = m->cl[3 * i + a] * (1.0 - f) + m->cl[3 * (i + 1) + a] * f;
}

static void vert_place(const ph_model *m, ph_vert *V, double s)
{
    double t[3], ax[3];
    V->s = s;
    centre_point(m, s, V->c);
    centre_tangent(m, s, t);
    ax[0] = -t[0];
    ax[1] = -t[1];
    ax[2] = -t[2];
    frame_from_axis(ax, V->R);
}

/* Largest amount by which the healthy endplates of upper U and lower L come
 * closer than PH_MIN_GAP (0 or negative when they keep their distance). */
static double endplate_deficit(const ph_vert *U, const ph_vert *L)
{
    double worst = -1e9;
    for (int side = 0; side < 2; side++) {
        const ph_vert *A = side == 0 ? L : U; /* surface owner */
        const ph_vert *B = side == 0 ? U : L; /* frame it must stay clear of */
        for (int iu = -4; iu <= 4; iu++)
            for (int iv = -4; iv <= 4; iv++) {
                double u = iu / 4.0 * A->W / 2.0, v = iv / 4.0 * A->D / 2.0;
                if (xsec_f(u, v, A->W / 2.0, A->D / 2.0) > 1.0 + 1e-9) continue;
                double hv_ = prof3(v, A->D, A->h);
                double q[3] = {u, v, side == 0 ? hv_ / 2.0 : -hv_ / 2.0}, p[3], qb[3];
                to_world(A->R, A->c, q, p);
                to_local(B->R, B->c, p, qb);
                if (xsec_f(qb[0], qb[1], B->W / 2.0 * 1.1, B->D / 2.0 * 1.1) > 1.0) continue;
                double hb = prof3(qb[1], B->D, B->h);
                double def = side == 0 ? qb[2] - (-hb / 2.0 - PH_MIN_GAP) /* below U's floor */
                                       : (hb / 2.0 + PH_MIN_GAP) - qb[2]; /* above L's top */
                if (def > worst) worst = def;
            }
    }
    return worst;
}

/* ------------------------------------------------------------ model draw */

static double rn_clip(hv_rng *r, double mean, double sd, double lo, double hi)
{
    return clampd(mean + sd * hv_rng_normal(r), lo, hi);
}

enum { PH_STREAM_GEOM = 1, PH_STREAM_TISSUE = 2, PH_STREAM_FRACTURE = 0x40 };

static uint64_t stream_id(int index, int purpose) { return ((uint64_t)(uint32_t)index << 8) | (uint64_t)purpose; }

static void draw_fracture(const hv_phantom_opts *o, int index, int n, ph_vert *V)
{
    hv_rng r;
    hv_rng_seed(&r, o->seed, stream_id(index, PH_STREAM_FRACTURE + n));
    /* Always the same number of draws, whatever the outcome. */
    double u_frac = hv_rng_uniform(&r), u_grade = hv_rng_uniform(&r), u_type = hv_rng_uniform(&r);
    double u_loss = hv_rng_uniform(&r), f1 = hv_rng_uniform(&r), f2 = hv_rng_uniform(&r);
    double f3 = hv_rng_uniform(&r);
    double p = o->fracture_rate * (n <= 3 ? 0.25 : 1.0); /* T1..T3 rarely fracture */
    V->grade = 0;
    V->type = HV_FRACTURE_NONE;
    V->loss = 0.0;
    V->lossp[0] = V->lossp[1] = V->lossp[2] = 0.0;
    if (n < 1 || n > 17 || !(u_frac < p)) return;
    /* Genant bands, drawn strictly inside with >= 0.5 point margins. */
    int g = u_grade < 0.45 ? 1 : u_grade < 0.80 ? 2 : 3;
    static const double lo[4] = {0, 0.205, 0.255, 0.405}, hi[4] = {0, 0.245, 0.395, 0.55};
    double L = lo[g] + (hi[g] - lo[g]) * u_loss;
    hv_fracture_type t = u_type < 0.5 ? HV_FRACTURE_WEDGE : u_type < 0.75 ? HV_FRACTURE_BICONCAVE
                                                                          : HV_FRACTURE_CRUSH;
    double fa, fm, fp;
    if (t == HV_FRACTURE_WEDGE) {
        fa = 1.0;
        fm = 0.40 + 0.25 * f1;
        fp = 0.15 * f2;
    } else if (t == HV_FRACTURE_BICONCAVE) {
        fm = 1.0;
        fa = 0.15 + 0.30 * f1;
        fp = 0.10 + 0.25 * f2;
    } else {
        double f[3] = {0.85 + 0.12 * f1, 0.85 + 0.12 * f2, 0.85 + 0.12 * f3};
        int worst = (int)(u_type * 4.0 * 3.0) % 3; /* from the unused part of u_type */
        f[worst] = 1.0;
        fa = f[0];
        fm = f[1];
        fp = f[2];
    }
    V->grade = g;
    V->type = t;
    V->loss = L;
    V->lossp[0] = L * fa;
    V->lossp[1] = L * fm;
    V->lossp[2] = L * fp;
}

static void vert_posterior(ph_vert *V, int n, double sx)
{
    int lum = lev_is_lumbar(n);
    double hmax = fmax(V->h[0], fmax(V->h[1], V->h[2]));
    V->shell = 1.2 * sx;
    V->cw = tab_cw[n] * sx;
    V->cd = tab_cd[n] * sx;
    V->vc = -V->D / 2.0 - V->cd / 2.0;
    V->pw = tab_pw[n] * sx;
    V->ph = tab_ph[n] * sx;
    V->wpc = 0.12 * V->h[2];
    V->lt = (lum ? 7.0 : 6.0) * sx;
    V->lh = (lum ? 22.0 : 15.0 + 0.5 * n) * sx;
    V->lslope = tan((lum ? 20.0 : 35.0) * PH_DEG);
    double vs = V->vc - V->cd / 2.0 - V->lt / 2.0;
    double beta = tab_sa[n] * PH_DEG;
    V->s0[0] = 0.0;
    V->s0[1] = vs;
    V->s0[2] = V->wpc - (V->vc - vs) * V->lslope;
    V->sd[0] = 0.0;
    V->sd[1] = -cos(beta);
    V->sd[2] = -sin(beta);
    V->sp[0] = 0.0;
    V->sp[1] = -sin(beta);
    V->sp[2] = cos(beta);
    V->sl = tab_sl[n] * sx;
    V->st = (lum ? 8.0 : 6.0) * sx;
    V->sh = tab_sh[n] * sx;
    double gam = tab_ta[n] * PH_DEG;
    V->t0[0] = V->cw / 2.0 + V->pw / 2.0;
    V->t0[1] = V->vc;
    V->t0[2] = V->wpc;
    V->tdir[0] = cos(gam);
    V->tdir[1] = -sin(gam);
    V->tdir[2] = 0.0;
    V->tl = tab_tl[n] * sx;
    V->tr = (lum ? 3.5 : 4.5) * sx;
    /* local bone box */
    double tip_v = V->s0[1] + V->sl * V->sd[1];
    double tip_w = V->s0[2] + V->sl * V->sd[2];
    double umax = fmax(V->W / 2.0, fmax(V->cw / 2.0 + V->pw, V->t0[0] + V->tl * V->tdir[0] + V->tr));
    double vmin = fmin(V->vc - V->cd / 2.0 - V->lt, tip_v - V->sh / 2.0);
    vmin = fmin(vmin, V->t0[1] + V->tl * V->tdir[1] - V->tr);
    double lam_lo = V->wpc - (V->vc - (V->vc - V->cd / 2.0 - V->lt)) * V->lslope - V->lh / 2.0;
    double wmin = fmin(-hmax / 2.0, fmin(lam_lo, tip_w - V->sh / 2.0));
    wmin = fmin(wmin, V->wpc - V->ph / 2.0);
    double wmax = fmax(hmax / 2.0, fmax(V->wpc + V->lh / 2.0, V->s0[2] + V->sh / 2.0));
    wmax = fmax(wmax, V->wpc + fmax(V->ph / 2.0, V->tr));
    V->lmin[0] = -umax - 0.5;
    V->lmax[0] = umax + 0.5;
    V->lmin[1] = vmin - 0.5;
    V->lmax[1] = V->D / 2.0 + 0.5;
    V->lmin[2] = wmin - 0.5;
    V->lmax[2] = wmax + 0.5;
}

static hv_status model_make(const hv_phantom_opts *o, int index, ph_model *m)
{
    memset(m, 0, sizeof *m);
    m->seed = o->seed;
    m->index = index;
    m->first = o->first_label - HV_LABEL_T1 + 1;
    m->last = o->last_label - HV_LABEL_T1 + 1;
    m->noise = o->noise_hu;

    hv_rng r;
    hv_rng_seed(&r, o->seed, stream_id(index, PH_STREAM_GEOM));
    double size = rn_clip(&r, 1.0, 0.06, 0.85, 1.15);
    double kyph = rn_clip(&r, 40.0, 8.0, 22.0, 58.0) * PH_DEG;
    double lord = rn_clip(&r, 45.0, 8.0, 28.0, 62.0) * PH_DEG;
    double tilt = rn_clip(&r, 0.0, 3.0, -6.0, 6.0) * PH_DEG;
    double u_sc = hv_rng_uniform(&r), sc_cobb = hv_rng_range(&r, 10.0, 30.0);
    /* apex level T6..L2, thoracic apices (the commoner ones) twice as likely:
     * 16 outcomes, T6..T12 two each, L1 and L2 one each */
    int sc_apex = 6 + (int)hv_rng_below(&r, 16);
    if (sc_apex > 14) sc_apex -= 9;
    double sc_len = hv_rng_range(&r, 200.0, 300.0) * size;
    double sc_sign = hv_rng_uniform(&r) < 0.5 ? -1.0 : 1.0;
    double jx[PH_NLEV], conc[PH_NLEV];
    for (int n = 0; n < PH_NLEV; n++) {
        ph_vert *V = &m->lv[n];
        double jh = rn_clip(&r, 1.0, 0.03, 0.92, 1.08);
        jx[n] = rn_clip(&r, 1.0, 0.03, 0.92, 1.08);
        double da = hv_rng_range(&r, -0.3, 0.3), dm = hv_rng_range(&r, -0.3, 0.3);
        conc[n] = lev_is_lumbar(n) ? hv_rng_range(&r, 0.8, 1.5) : hv_rng_range(&r, 0.5, 1.1);
        double dj = hv_rng_range(&r, 0.9, 1.1);
        double hp = tab_hp[n], ha = tab_ha[n] + da;
        double hm = 0.5 * (ha + hp) - conc[n] + dm;
        /* natural shape: keep 1 - min/max under 14 % (unfractured < 15 %) */
        double hmx = fmax(ha, fmax(hm, hp));
        if (ha < 0.86 * hmx) ha = 0.86 * hmx;
        if (hm < 0.86 * hmx) hm = 0.86 * hmx;
        double k = size * jh;
        V->h[0] = ha * k;
        V->h[1] = hm * k;
        V->h[2] = hp * k;
        V->D = tab_d[n] * size * jx[n];
        V->W = tab_w[n] * size * jx[n];
        V->disc_below = tab_disc[n] * size * dj;
        V->label = (n >= 1 && n <= 17) ? HV_LABEL_T1 + n - 1 : 0;
    }
    /* tissue, from its own stream */
    hv_rng t;
    hv_rng_seed(&t, o->seed, stream_id(index, PH_STREAM_TISSUE));
    m->hu_air = -1000.0;
    /* whole HU, as a scanner reports them */
    m->hu_fat = round(rn_clip(&t, -100.0, 10.0, -130.0, -70.0));
    m->hu_soft = round(rn_clip(&t, 40.0, 5.0, 25.0, 55.0));
    m->hu_cort = round(rn_clip(&t, 850.0, 80.0, 700.0, 1000.0));
    m->hu_disc = round(rn_clip(&t, 85.0, 5.0, 70.0, 100.0));
    m->hu_csf = 15.0;
    double trab = rn_clip(&t, 200.0, 30.0, 130.0, 270.0);
    m->fat_thick = hv_rng_range(&t, 6.0, 22.0) * size;
    m->torso_a = 150.0 * size * hv_rng_range(&t, 0.9, 1.15);
    m->torso_b = 105.0 * size * hv_rng_range(&t, 0.9, 1.1);
    double soft_back = hv_rng_range(&t, 12.0, 28.0) * size;
    for (int n = 0; n < PH_NLEV; n++) {
        m->lv[n].hu_trab = round(clampd(trab + 10.0 * hv_rng_normal(&t), 120.0, 290.0));
        m->lv[n].hu_post = round(0.5 * (m->lv[n].hu_trab + m->hu_cort));
    }
    /* fractures: one stream per level */
    for (int n = 0; n < PH_NLEV; n++) {
        ph_vert *V = &m->lv[n];
        draw_fracture(o, index, n, V);
        for (int k = 0; k < 3; k++) V->dl[k] = V->lossp[k] * V->h[k];
        if (V->grade > 0) V->hu_trab += 40.0; /* compressed bone is denser */
    }
    for (int n = 0; n < PH_NLEV; n++) vert_posterior(&m->lv[n], n, size * jx[n]);

    /* nominal arc positions, then the sagittal angle knots */
    double sn[PH_NLEV];
    sn[0] = 0.0;
    for (int n = 0; n + 1 < PH_NLEV; n++)
        sn[n + 1] = sn[n] + m->lv[n].h[1] / 2.0 + m->lv[n].disc_below + m->lv[n + 1].h[1] / 2.0;
    m->th_knot_s[0] = sn[1];
    m->th_knot_s[1] = 0.5 * (sn[12] + sn[13]);
    m->th_knot_s[2] = sn[17];
    m->th_knot[0] = -kyph / 2.0 + tilt;
    m->th_knot[1] = kyph / 2.0 + tilt;
    m->th_knot[2] = kyph / 2.0 - lord + tilt;
    m->scoliotic = u_sc < o->scoliosis_rate;
    m->sc_len = sc_len;
    m->sc_s0 = sn[sc_apex] - sc_len / 2.0;
    m->sc_psi = sc_sign * sc_cobb / 2.0 * PH_DEG;
    hv_status st = centre_build(m, -60.0, sn[PH_NLEV - 1] * 1.3 + 120.0);
    if (st != HV_OK) return st;

    /* place the levels, pushing each down the curve until its endplates clear */
    vert_place(m, &m->lv[0], 0.0);
    double s_max = m->s_lo + (m->n_cl - 1) * m->ds - 40.0;
    for (int n = 0; n + 1 < PH_NLEV; n++) {
        ph_vert *U = &m->lv[n], *L = &m->lv[n + 1];
        double s = U->s + U->h[1] / 2.0 + U->disc_below + L->h[1] / 2.0;
        int it = 0;
        for (;; it++) {
            vert_place(m, L, s);
            double def = endplate_deficit(U, L);
            if (def <= 0.0) break;
            if (it > 200 || s > s_max)
                return hv_error_set(HV_ERR_INTERNAL, "phantom: cannot separate levels %d and %d", n, n + 1);
            s += def + 0.05;
        }
    }
    /* skin of the back: behind the spinous tip by the soft-tissue depth */
    for (int n = 0; n < PH_NLEV; n++) {
        ph_vert *V = &m->lv[n];
        double tip_v = V->s0[1] + V->sl * V->sd[1];
        V->back = -tip_v + V->sh / 2.0 + soft_back;
    }
    return HV_OK;
}

static void vert_fill_public(const ph_vert *V, hv_phantom_vert *P)
{
    memset(P, 0, sizeof *P);
    P->label = V->label;
    P->grade = V->grade;
    P->type = V->type;
    P->loss = V->loss;
    for (int k = 0; k < 3; k++) {
        P->healthy_mm[k] = V->h[k];
        P->observed_mm[k] = V->h[k] - V->dl[k];
        P->center[k] = V->c[k];
        P->axis[k] = V->R[2][k];
        P->anterior[k] = V->R[1][k];
    }
    P->depth_mm = V->D;
    P->width_mm = V->W;
    P->truncated = 0;
}

hv_status hv_phantom_case_make(const hv_phantom_opts *o, int index, hv_phantom_case **out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "phantom: no output pointer");
    *out = NULL;
    hv_status st = opts_check(o);
    if (st != HV_OK) return st;
    if (index < 0) return hv_error_set(HV_ERR_ARG, "phantom: case index %d is negative", index);
    ph_case_impl *ci = calloc(1, sizeof *ci);
    if (!ci) return hv_error_set(HV_ERR_NOMEM, "phantom: out of memory");
    st = model_make(o, index, &ci->m);
    if (st != HV_OK) goto done;
    snprintf(ci->pub.id, sizeof ci->pub.id, "ph%04d", index);
    ci->pub.n_vert = ci->m.last - ci->m.first + 1;
    ci->pub.vert = calloc((size_t)ci->pub.n_vert, sizeof *ci->pub.vert);
    if (!ci->pub.vert) {
        st = hv_error_set(HV_ERR_NOMEM, "phantom: out of memory");
        goto done;
    }
    for (int i = 0; i < ci->pub.n_vert; i++) vert_fill_public(&ci->m.lv[ci->m.first + i], &ci->pub.vert[i]);
    *out = &ci->pub;
done:
    if (st != HV_OK) {
        hv_error_wrap(st, "phantom case %d", index);
        free(ci->m.cl);
        free(ci->pub.vert);
        free(ci);
    }
    return st;
}

void hv_phantom_case_free(hv_phantom_case *c)
{
    if (!c) return;
    ph_case_impl *ci = (ph_case_impl *)c;
    hv_vol_free(c->ct);
    hv_vol_free(c->mask);
    free(c->vert);
    free(ci->m.cl);
    free(ci);
}

/* ------------------------------------------------------------ voxelising */

typedef struct ph_disc {
    const ph_vert *U, *L;
    double c[3], R[3][3], D, W;
} ph_disc;

#define PH_MAXEL 40

typedef struct ph_render {
    const ph_model *m;
    int nv, nd;
    const ph_vert *v[PH_NLEV];  /* rendered vertebrae, top to bottom     */
    double zone_lo[PH_NLEV], zone_hi[PH_NLEV]; /* canal zone in local w  */
    ph_disc d[PH_NLEV];
    double bmin[PH_MAXEL][3], bmax[PH_MAXEL][3]; /* world boxes: v then d */
    double z0;                  /* world z of bin 0                       */
    int nbin;
    uint64_t *bins;             /* candidate element bits per z bin      */
    /* torso table over world z */
    double tz0, tdz;
    int nt;
    double *tx, *ty;            /* torso ellipse centre per z           */
    uint64_t key;
} ph_render;

static void box_world(const double R[3][3], const double c[3], const double lo[3], const double hi[3],
                      double bmin[3], double bmax[3])
{
    for (int a = 0; a < 3; a++) {
        bmin[a] = 1e300;
        bmax[a] = -1e300;
    }
    for (int k = 0; k < 8; k++) {
        double q[3] = {(k & 1) ? hi[0] : lo[0], (k & 2) ? hi[1] : lo[1], (k & 4) ? hi[2] : lo[2]}, p[3];
        to_world(R, c, q, p);
        for (int a = 0; a < 3; a++) {
            if (p[a] < bmin[a]) bmin[a] = p[a];
            if (p[a] > bmax[a]) bmax[a] = p[a];
        }
    }
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDull;
    z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53ull;
    return z ^ (z >> 33);
}

/* Inverse of the standard normal CDF: Acklam's rational approximation
 * (relative error < 1.2e-9), a log and a square root only in the 4.85 % of
 * tails. With the cast-based quantisation below the noise costs ~12 ns per
 * voxel, against ~40 ns for Box-Muller (log + cos) with llround. */
static inline double inv_norm_cdf(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    const double plow = 0.02425;
    if (p < plow || p > 1.0 - plow) {
        double q = sqrt(-2.0 * log(p < plow ? p : 1.0 - p));
        double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                   ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
        return p < plow ? x : -x;
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* World coordinate quantised to 1/1024 mm (round half away from zero). */
static inline uint64_t quant(double x)
{
    double y = x * 1024.0;
    return (uint64_t)(int64_t)(y >= 0.0 ? y + 0.5 : y - 0.5);
}

/* Standard normal deviate from a hash of the world position. */
static inline double noise_at(uint64_t key, const double p[3])
{
    uint64_t h = key;
    h = mix64(h ^ quant(p[0]) * 0x9E3779B97F4A7C15ull);
    h = mix64(h ^ quant(p[1]) * 0xC2B2AE3D27D4EB4Full);
    h = mix64(h ^ quant(p[2]) * 0x165667B19E3779F9ull);
    return inv_norm_cdf(((double)(h >> 11) + 0.5) * 0x1.0p-53);
}

static hv_status render_prepare(const ph_model *m, const double A[4][4], const int64_t dim[3], ph_render *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->m = m;
    rc->nv = m->last - m->first + 1;
    for (int i = 0; i < rc->nv; i++) {
        int n = m->first + i;
        const ph_vert *V = &m->lv[n];
        rc->v[i] = V;
        double hmax = fmax(V->h[0], fmax(V->h[1], V->h[2]));
        rc->zone_lo[i] = -hmax / 2.0 - V->disc_below - 1.0;
        rc->zone_hi[i] = hmax / 2.0 + m->lv[n - 1].disc_below + 1.0;
        double lo[3] = {V->lmin[0], V->lmin[1], fmin(V->lmin[2], rc->zone_lo[i])};
        double hi[3] = {V->lmax[0], V->lmax[1], fmax(V->lmax[2], rc->zone_hi[i])};
        box_world(V->R, V->c, lo, hi, rc->bmin[i], rc->bmax[i]);
    }
    /* discs above the first through below the last rendered level */
    rc->nd = rc->nv + 1;
    for (int i = 0; i < rc->nd; i++) {
        int n = m->first - 1 + i;
        ph_disc *d = &rc->d[i];
        d->U = &m->lv[n];
        d->L = &m->lv[n + 1];
        double ax[3];
        for (int a = 0; a < 3; a++) {
            d->c[a] = 0.5 * (d->U->c[a] + d->L->c[a]);
            ax[a] = d->U->R[2][a] + d->L->R[2][a];
        }
        frame_from_axis(ax, d->R);
        d->D = 0.5 * (d->U->D + d->L->D);
        d->W = 0.5 * (d->U->W + d->L->W);
        double bu0[3], bu1[3], bl0[3], bl1[3];
        double hu = fmax(d->U->h[0], fmax(d->U->h[1], d->U->h[2]));
        double hl = fmax(d->L->h[0], fmax(d->L->h[1], d->L->h[2]));
        double lo_u[3] = {-d->U->W / 2.0, -d->U->D / 2.0, -hu / 2.0}, hi_u[3] = {d->U->W / 2.0, d->U->D / 2.0, hu / 2.0};
        double lo_l[3] = {-d->L->W / 2.0, -d->L->D / 2.0, -hl / 2.0}, hi_l[3] = {d->L->W / 2.0, d->L->D / 2.0, hl / 2.0};
        box_world(d->U->R, d->U->c, lo_u, hi_u, bu0, bu1);
        box_world(d->L->R, d->L->c, lo_l, hi_l, bl0, bl1);
        for (int a = 0; a < 3; a++) {
            rc->bmin[rc->nv + i][a] = fmin(bu0[a], bl0[a]) - 4.0;
            rc->bmax[rc->nv + i][a] = fmax(bu1[a], bl1[a]) + 4.0;
        }
    }
    /* world z range of the grid */
    double zlo = 1e300, zhi = -1e300;
    for (int k = 0; k < 8; k++) {
        double ijk[3] = {(k & 1) ? (double)(dim[0] - 1) : 0.0, (k & 2) ? (double)(dim[1] - 1) : 0.0,
                         (k & 4) ? (double)(dim[2] - 1) : 0.0},
               p[3];
        hv_affine_apply(A, ijk, p);
        zlo = fmin(zlo, p[2]);
        zhi = fmax(zhi, p[2]);
    }
    zlo -= 1.0;
    zhi += 1.0;
    rc->z0 = zlo;
    rc->nbin = (int)ceil((zhi - zlo) / PH_ZBIN) + 1;
    rc->bins = calloc((size_t)rc->nbin, sizeof *rc->bins);
    /* torso table */
    rc->tdz = 1.0;
    rc->tz0 = zlo;
    rc->nt = (int)ceil((zhi - zlo) / rc->tdz) + 2;
    rc->tx = malloc((size_t)rc->nt * sizeof(double));
    rc->ty = malloc((size_t)rc->nt * sizeof(double));
    if (!rc->bins || !rc->tx || !rc->ty) return hv_error_set(HV_ERR_NOMEM, "phantom: out of memory (render)");
    int nel = rc->nv + rc->nd;
    for (int e = 0; e < nel; e++) {
        int b0 = (int)floor((rc->bmin[e][2] - rc->z0) / PH_ZBIN), b1 = (int)floor((rc->bmax[e][2] - rc->z0) / PH_ZBIN);
        if (b0 < 0) b0 = 0;
        if (b1 >= rc->nbin) b1 = rc->nbin - 1;
        for (int b = b0; b <= b1; b++) rc->bins[b] |= 1ull << e;
    }
    /* torso centre per z: follows the centreline's AP course (not its lateral
     * one), with the back skin 'back' mm behind the body centres. */
    double xm = 0.0;
    for (int i = 0; i < rc->nv; i++) xm += rc->v[i]->c[0];
    xm /= rc->nv;
    for (int t = 0; t < rc->nt; t++) {
        double z = rc->tz0 + t * rc->tdz;
        /* levels are ordered by decreasing z; interpolate y and back */
        double y, back;
        const ph_vert *lv = m->lv;
        if (z >= lv[0].c[2]) {
            y = lv[0].c[1];
            back = lv[0].back;
        } else if (z <= lv[PH_NLEV - 1].c[2]) {
            y = lv[PH_NLEV - 1].c[1];
            back = lv[PH_NLEV - 1].back;
        } else {
            int n = 0;
            while (n + 1 < PH_NLEV && lv[n + 1].c[2] > z) n++;
            double f = (lv[n].c[2] - z) / (lv[n].c[2] - lv[n + 1].c[2]);
            y = lv[n].c[1] * (1.0 - f) + lv[n + 1].c[1] * f;
            back = lv[n].back * (1.0 - f) + lv[n + 1].back * f;
        }
        rc->tx[t] = xm;
        rc->ty[t] = y - back + m->torso_b;
    }
    rc->key = mix64(m->seed ^ mix64((uint64_t)(uint32_t)m->index + 0x51ED270B27A5A3F1ull));
    return HV_OK;
}

static void render_release(ph_render *rc)
{
    free(rc->bins);
    free(rc->tx);
    free(rc->ty);
}

static inline int in_box(const double p[3], const double lo[3], const double hi[3])
{
    return p[0] >= lo[0] && p[0] <= hi[0] && p[1] >= lo[1] && p[1] <= hi[1] && p[2] >= lo[2] && p[2] <= hi[2];
}

/* Body test in local coordinates; returns 0 outside, else 1 and the HU. */
static inline int body_hu(const ph_model *m, const ph_vert *V, const double q[3], double *hu)
{
    double u = q[0], v = q[1], w = q[2];
    double a = V->W / 2.0, b = V->D / 2.0;
    if (v > b || v < -b || u > a || u < -a) return 0;
    double f = xsec_f(u, v, a, b);
    if (f > 1.0) return 0;
    double h = prof3(v, V->D, V->h);
    double wlo = -h / 2.0, whi = h / 2.0;
    if (V->grade > 0) whi -= prof3(v, V->D, V->dl);
    if (w < wlo || w > whi) return 0;
    double dz = fmin(w - wlo, whi - w);
    double r = sqrt(u * u + v * v);
    double dr = f > 1e-6 ? (1.0 - f) * r / f : b;
    double d = fmin(dz, dr);
    if (d < V->shell) *hu = m->hu_cort;
    else if (V->grade > 0 && whi - w < 3.0 * V->shell) *hu = V->hu_trab + 150.0; /* impaction band */
    else *hu = V->hu_trab;
    return 1;
}

static inline int posterior_hit(const ph_vert *V, const double q[3])
{
    double u = q[0], v = q[1], w = q[2];
    if (v > -V->D / 2.0 + 2.0) return 0;
    double au = fabs(u);
    /* ring around the canal: pedicles in front of the canal centre, laminae behind */
    double cu = V->cw / 2.0, cv = V->cd / 2.0;
    double ou = cu + V->pw, ov = cv + V->lt;
    double x = u / ou, y = (v - V->vc) / ov;
    if (x * x + y * y <= 1.0) {
        double xi = u / cu, yi = (v - V->vc) / cv;
        if (xi * xi + yi * yi > 1.0) {
            if (v >= V->vc) {
                if (au >= 0.55 * cu && fabs(w - V->wpc) <= V->ph / 2.0) return 1;
            } else {
                double wl = V->wpc - (V->vc - v) * V->lslope;
                if (fabs(w - wl) <= V->lh / 2.0) return 1;
            }
        }
    }
    /* spinous process: a box along sd */
    double d0 = u - V->s0[0], d1 = v - V->s0[1], d2 = w - V->s0[2];
    double t = d1 * V->sd[1] + d2 * V->sd[2];
    if (t >= 0.0 && t <= V->sl && fabs(d0) <= V->st / 2.0 && fabs(d1 * V->sp[1] + d2 * V->sp[2]) <= V->sh / 2.0)
        return 1;
    /* transverse processes: cylinders, mirrored in u */
    double e0 = au - V->t0[0], e1 = v - V->t0[1], e2 = w - V->t0[2];
    double tt = e0 * V->tdir[0] + e1 * V->tdir[1];
    if (tt >= 0.0 && tt <= V->tl) {
        double r2 = e0 * e0 + e1 * e1 + e2 * e2 - tt * tt;
        if (r2 <= V->tr * V->tr) return 1;
    }
    return 0;
}

static inline int disc_hu(const ph_model *m, const ph_disc *d, const double p[3], double *hu)
{
    double q[3];
    to_local(d->R, d->c, p, q);
    double f = xsec_f(q[0], q[1], d->W / 2.0, d->D / 2.0);
    if (f > 1.0) return 0;
    double qu[3], ql[3];
    to_local(d->U->R, d->U->c, p, qu);
    if (qu[2] > -prof3(qu[1], d->U->D, d->U->h) / 2.0) return 0;
    to_local(d->L->R, d->L->c, p, ql);
    double top = prof3(ql[1], d->L->D, d->L->h) / 2.0;
    if (d->L->grade > 0 && d->L->label) top -= prof3(ql[1], d->L->D, d->L->dl);
    if (ql[2] < top) return 0;
    *hu = m->hu_disc - 10.0 + 25.0 * f; /* nucleus darker than the annulus */
    return 1;
}

static inline int canal_hit(const ph_render *rc, int i, const double q[3])
{
    const ph_vert *V = rc->v[i];
    if (q[2] < rc->zone_lo[i] || q[2] > rc->zone_hi[i] || q[1] > -V->D / 2.0) return 0;
    double x = q[0] / (V->cw / 2.0), y = (q[1] - V->vc) / (V->cd / 2.0);
    return x * x + y * y <= 1.0;
}

/* Label and noiseless HU at world point p. */
static inline void sample_point(const ph_render *rc, const double p[3], int *label, double *hu)
{
    const ph_model *m = rc->m;
    int b = (int)floor((p[2] - rc->z0) / PH_ZBIN);
    uint64_t cand = (b >= 0 && b < rc->nbin) ? rc->bins[b] : 0;
    uint64_t vmask = cand & ((1ull << rc->nv) - 1);
    double q[PH_NLEV][3];
    uint64_t inbox = 0;
    for (uint64_t mm = vmask; mm; mm &= mm - 1) {
        int i = __builtin_ctzll(mm);
        if (!in_box(p, rc->bmin[i], rc->bmax[i])) continue;
        to_local(rc->v[i]->R, rc->v[i]->c, p, q[i]);
        inbox |= 1ull << i;
        if (body_hu(m, rc->v[i], q[i], hu)) {
            *label = rc->v[i]->label;
            return;
        }
    }
    for (uint64_t mm = inbox; mm; mm &= mm - 1) {
        int i = __builtin_ctzll(mm);
        const ph_vert *V = rc->v[i];
        if (q[i][0] >= V->lmin[0] && q[i][0] <= V->lmax[0] && q[i][1] >= V->lmin[1] && q[i][2] >= V->lmin[2] &&
            q[i][2] <= V->lmax[2] && posterior_hit(V, q[i])) {
            *label = V->label;
            *hu = V->hu_post;
            return;
        }
    }
    *label = 0;
    for (uint64_t mm = cand >> rc->nv; mm; mm &= mm - 1) {
        int i = __builtin_ctzll(mm);
        if (!in_box(p, rc->bmin[rc->nv + i], rc->bmax[rc->nv + i])) continue;
        if (disc_hu(m, &rc->d[i], p, hu)) return;
    }
    for (uint64_t mm = inbox; mm; mm &= mm - 1) {
        int i = __builtin_ctzll(mm);
        if (canal_hit(rc, i, q[i])) {
            *hu = m->hu_csf;
            return;
        }
    }
    /* torso */
    double tzf = (p[2] - rc->tz0) / rc->tdz;
    int t = (int)floor(tzf);
    if (t < 0) t = 0;
    if (t > rc->nt - 2) t = rc->nt - 2;
    double f = tzf - t;
    f = clampd(f, 0.0, 1.0);
    double cx = rc->tx[t] * (1.0 - f) + rc->tx[t + 1] * f, cy = rc->ty[t] * (1.0 - f) + rc->ty[t + 1] * f;
    double dx = p[0] - cx, dy = p[1] - cy;
    double ea = dx / m->torso_a, eb = dy / m->torso_b;
    if (ea * ea + eb * eb > 1.0) {
        *hu = m->hu_air;
        return;
    }
    double ia = dx / (m->torso_a - m->fat_thick), ib = dy / (m->torso_b - m->fat_thick);
    *hu = (ia * ia + ib * ib > 1.0) ? m->hu_fat : m->hu_soft;
}

static hv_status render_into(const ph_model *m, const double A[4][4], const int64_t dim[3], hv_volume *ct,
                             hv_volume *mask)
{
    ph_render *rc = malloc(sizeof *rc);
    if (!rc) return hv_error_set(HV_ERR_NOMEM, "phantom: out of memory (render)");
    hv_status st = render_prepare(m, A, dim, rc);
    if (st != HV_OK) {
        render_release(rc);
        free(rc);
        return st;
    }
    int16_t *cd = ct->data;
    uint8_t *md = mask->data;
    const double noise = m->noise;
    const int64_t nx = dim[0], ny = dim[1], nz = dim[2];
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < nz; k++) {
        for (int64_t j = 0; j < ny; j++) {
            size_t row = (size_t)nx * ((size_t)j + (size_t)ny * (size_t)k);
            for (int64_t i = 0; i < nx; i++) {
                double p[3];
                for (int a = 0; a < 3; a++)
                    p[a] = A[a][0] * (double)i + A[a][1] * (double)j + A[a][2] * (double)k + A[a][3];
                int label;
                double hu;
                sample_point(rc, p, &label, &hu);
                if (noise > 0.0) hu += noise * noise_at(rc->key, p);
                long v = lrint(hu);
                if (v < -1024) v = -1024;
                if (v > 3071) v = 3071;
                cd[row + (size_t)i] = (int16_t)v;
                md[row + (size_t)i] = (uint8_t)label;
            }
        }
    }
    render_release(rc);
    free(rc);
    return HV_OK;
}

/* Mark vertebrae whose label touches the grid boundary (or is absent). */
static void mark_truncated(hv_phantom_case *c)
{
    const hv_volume *mk = c->mask;
    const uint8_t *d = mk->data;
    unsigned char touch[32] = {0};
    size_t count[32] = {0};
    for (int64_t k = 0; k < mk->dim[2]; k++)
        for (int64_t j = 0; j < mk->dim[1]; j++) {
            size_t row = hv_vol_idx(mk, 0, j, k);
            int edge_row = (k == 0 || k == mk->dim[2] - 1 || j == 0 || j == mk->dim[1] - 1);
            for (int64_t i = 0; i < mk->dim[0]; i++) {
                uint8_t l = d[row + (size_t)i];
                if (!l || l >= 32) continue;
                count[l]++;
                if (edge_row || i == 0 || i == mk->dim[0] - 1) touch[l] = 1;
            }
        }
    for (int i = 0; i < c->n_vert; i++) {
        int l = c->vert[i].label;
        c->vert[i].truncated = (l > 0 && l < 32) ? (touch[l] || count[l] == 0) : 1;
    }
}

hv_status hv_phantom_case_render_grid(const hv_phantom_opts *o, hv_phantom_case *c, const double affine[4][4],
                                      const int64_t dim[3])
{
    if (!c || !affine || !dim) return hv_error_set(HV_ERR_ARG, "phantom render: missing argument");
    hv_status st = opts_check(o);
    if (st != HV_OK) return st;
    ph_case_impl *ci = (ph_case_impl *)c;
    hv_volume *ct = NULL, *mask = NULL;
    st = hv_vol_create(&ct, dim, HV_DTYPE_I16, affine);
    if (st == HV_OK) st = hv_vol_create(&mask, dim, HV_DTYPE_U8, affine);
    if (st == HV_OK) {
        /* The noise level comes from the options at render time. */
        ci->m.noise = o->noise_hu;
        st = render_into(&ci->m, affine, dim, ct, mask);
    }
    if (st != HV_OK) {
        hv_vol_free(ct);
        hv_vol_free(mask);
        return hv_error_wrap(st, "phantom %s", c->id);
    }
    hv_vol_free(c->ct);
    hv_vol_free(c->mask);
    c->ct = ct;
    c->mask = mask;
    mark_truncated(c);
    return HV_OK;
}

/* The canonical (RAS) box around the rendered levels for a given canonical
 * spacing: LR +-100 mm around the body centres, from just behind the skin of
 * the back to 100 mm in front of the body centres, and 6 mm beyond the bone
 * above and below. The origin is a multiple of the spacing. */
static void canonical_box(const ph_model *m, const double sc[3], double A[4][4], int64_t dim[3])
{
    double lo[3] = {1e300, 1e300, 1e300}, hi[3] = {-1e300, -1e300, -1e300};
    double xlo = 1e300, xhi = -1e300;
    for (int n = m->first; n <= m->last; n++) {
        const ph_vert *V = &m->lv[n];
        double b0[3], b1[3];
        box_world(V->R, V->c, V->lmin, V->lmax, b0, b1);
        for (int a = 0; a < 3; a++) {
            lo[a] = fmin(lo[a], b0[a]);
            hi[a] = fmax(hi[a], b1[a]);
        }
        xlo = fmin(xlo, V->c[0]);
        xhi = fmax(xhi, V->c[0]);
        lo[1] = fmin(lo[1], V->c[1] - V->back - 8.0);
        hi[1] = fmax(hi[1], V->c[1] + 100.0);
    }
    double xm = 0.5 * (xlo + xhi);
    lo[0] = fmin(lo[0] - 5.0, xm - 100.0);
    hi[0] = fmax(hi[0] + 5.0, xm + 100.0);
    lo[2] -= 6.0;
    hi[2] += 6.0;
    hv_affine_identity(A);
    for (int a = 0; a < 3; a++) {
        double o = floor(lo[a] / sc[a]) * sc[a];
        dim[a] = (int64_t)ceil((hi[a] - o) / sc[a] - 1e-9) + 1;
        A[a][a] = sc[a];
        A[a][3] = o;
    }
}

hv_status hv_phantom_case_render(const hv_phantom_opts *o, hv_phantom_case *c)
{
    if (!c) return hv_error_set(HV_ERR_ARG, "phantom render: no case");
    hv_status st = opts_check(o);
    if (st != HV_OK) return st;
    const ph_model *m = &((ph_case_impl *)c)->m;
    /* output axis a runs along world axis perm[a] with sign sgn[a] */
    int perm[3] = {0, 1, 2};
    int sgn[3] = {1, 1, 1};
    if (o->orientation == HV_PHANTOM_LPS) {
        sgn[0] = sgn[1] = -1;
    } else if (o->orientation == HV_PHANTOM_PIR) {
        perm[0] = 1;
        perm[1] = 2;
        perm[2] = 0;
        sgn[0] = sgn[1] = -1;
    }
    double sc[3];
    for (int a = 0; a < 3; a++) sc[perm[a]] = o->spacing[a];
    double A[4][4];
    int64_t dim[3];
    canonical_box(m, sc, A, dim);

    if (o->orientation == HV_PHANTOM_OBLIQUE) {
        /* the canonical box rotated about its centre (7 deg about x, then 4
         * deg about z), grown so it still contains the whole canonical box */
        double ax = 7.0 * PH_DEG, az = 4.0 * PH_DEG;
        double Rx[3][3] = {{1, 0, 0}, {0, cos(ax), -sin(ax)}, {0, sin(ax), cos(ax)}};
        double Rz[3][3] = {{cos(az), -sin(az), 0}, {sin(az), cos(az), 0}, {0, 0, 1}};
        double Rm[3][3];
        for (int r = 0; r < 3; r++)
            for (int cc = 0; cc < 3; cc++) {
                Rm[r][cc] = 0.0;
                for (int k = 0; k < 3; k++) Rm[r][cc] += Rz[r][k] * Rx[k][cc];
            }
        double ctr[3], half[3] = {0, 0, 0};
        for (int a = 0; a < 3; a++) ctr[a] = A[a][3] + 0.5 * (double)(dim[a] - 1) * sc[a];
        for (int k = 0; k < 8; k++) {
            double d[3];
            for (int a = 0; a < 3; a++) d[a] = ((k >> a) & 1 ? 0.5 : -0.5) * (double)(dim[a] - 1) * sc[a];
            for (int a = 0; a < 3; a++) {
                double t = Rm[0][a] * d[0] + Rm[1][a] * d[1] + Rm[2][a] * d[2]; /* R^T d */
                if (fabs(t) > half[a]) half[a] = fabs(t);
            }
        }
        double B[4][4];
        int64_t odim[3];
        hv_affine_identity(B);
        for (int a = 0; a < 3; a++) odim[a] = (int64_t)ceil(2.0 * half[a] / o->spacing[a] - 1e-9) + 1;
        for (int r = 0; r < 3; r++) {
            B[r][3] = ctr[r];
            for (int a = 0; a < 3; a++) {
                B[r][a] = Rm[r][a] * o->spacing[a];
                B[r][3] -= Rm[r][a] * o->spacing[a] * 0.5 * (double)(odim[a] - 1);
            }
        }
        return hv_phantom_case_render_grid(o, c, (const double(*)[4])B, odim);
    }

    st = hv_phantom_case_render_grid(o, c, (const double(*)[4])A, dim);
    if (st != HV_OK || o->orientation == HV_PHANTOM_RAS) return st;

    /* LPS / PIR: the same voxels, enumerated along permuted/flipped axes */
    int64_t odim[3];
    for (int a = 0; a < 3; a++) odim[a] = dim[perm[a]];
    double B[4][4];
    hv_affine_identity(B);
    int64_t i0[3];
    for (int a = 0; a < 3; a++) i0[perm[a]] = sgn[a] > 0 ? 0 : dim[perm[a]] - 1;
    for (int r = 0; r < 3; r++) {
        B[r][3] = A[r][3] + A[r][r] * (double)i0[r];
        for (int a = 0; a < 3; a++) B[r][a] = (r == perm[a]) ? sgn[a] * sc[r] : 0.0;
    }
    hv_volume *ct = NULL, *mask = NULL;
    st = hv_vol_create(&ct, odim, HV_DTYPE_I16, (const double(*)[4])B);
    if (st == HV_OK) st = hv_vol_create(&mask, odim, HV_DTYPE_U8, (const double(*)[4])B);
    if (st != HV_OK) {
        hv_vol_free(ct);
        hv_vol_free(mask);
        return hv_error_wrap(st, "phantom %s", c->id);
    }
    const int16_t *sct = c->ct->data;
    const uint8_t *smk = c->mask->data;
    int16_t *dct = ct->data;
    uint8_t *dmk = mask->data;
    /* canonical strides of the output axes */
    int64_t cstride[3] = {1, dim[0], dim[0] * dim[1]};
    int64_t step[3], base = 0;
    for (int a = 0; a < 3; a++) {
        step[a] = sgn[a] * cstride[perm[a]];
        base += i0[perm[a]] * cstride[perm[a]];
    }
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < odim[2]; k++)
        for (int64_t j = 0; j < odim[1]; j++) {
            int64_t src = base + k * step[2] + j * step[1];
            size_t dst = (size_t)odim[0] * ((size_t)j + (size_t)odim[1] * (size_t)k);
            for (int64_t i = 0; i < odim[0]; i++, src += step[0]) {
                dct[dst + (size_t)i] = sct[src];
                dmk[dst + (size_t)i] = smk[src];
            }
        }
    hv_vol_free(c->ct);
    hv_vol_free(c->mask);
    c->ct = ct;
    c->mask = mask;
    return HV_OK;
}
