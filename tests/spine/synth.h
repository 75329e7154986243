/*
 * synth.h: a small analytic spine for the spine tests, independent of the
 * phantom module (so the spine tests stand on their own and can check the
 * phantom too). Each vertebra is an elliptic-cylinder body (optionally a
 * wedge: anterior height differs from posterior) around the local tangent of
 * a curved, scoliotic centre line, plus a posterior ring (arch) around a
 * canal. Rendered by voxel centre onto any grid (affine, dims); the renderer
 * also returns each body's voxel centroid in world mm.
 */
#ifndef HV_TEST_SPINE_SYNTH_H
#define HV_TEST_SPINE_SYNTH_H

#include "hv/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SYN_MAXV 12
#define SYN_PI 3.14159265358979323846

typedef struct syn_vert {
    int label;
    double zc;                /* centre line parameter (world z of the centre line) */
    double h_ant, h_post;     /* body heights (mm) at the anterior / posterior walls */
    double depth, width;      /* body AP depth and LR width (mm) */
    double c[3], t[3], ant[3], lat[3]; /* centre, axis (superior), anterior, lateral */
} syn_vert;

typedef struct syn_spine {
    int n;
    syn_vert v[SYN_MAXV];
    double ax, px, ay, py;    /* centre line: x = ax sin(2pi z/px), y = ay sin(2pi z/py) */
    int arch;                 /* render the posterior ring */
} syn_spine;

static inline void syn_line(const syn_spine *s, double z, double p[3])
{
    p[0] = s->ax * sin(2 * SYN_PI * z / s->px);
    p[1] = s->ay * sin(2 * SYN_PI * z / s->py);
    p[2] = z;
}

/* n vertebrae, labels first_label.. going caudal (decreasing z), 32 mm apart. */
static inline void syn_make(syn_spine *s, int n, int first_label, double ax, double ay, int arch)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->ax = ax;
    s->px = 520;
    s->ay = ay;
    s->py = 700;
    s->arch = arch;
    for (int q = 0; q < n; q++) {
        syn_vert *v = &s->v[q];
        v->label = first_label + q;
        v->zc = 80.0 - 32.0 * q;
        v->h_post = 24.0 + 0.37 * q;
        v->h_ant = v->h_post - (q == 1 ? 6.3 : 0.0) + 0.21 * q;  /* vertebra 1 is a wedge */
        v->depth = 33.0 + 0.5 * q;
        v->width = 44.0 + 0.7 * q;
        double p0[3], p1[3];
        syn_line(s, v->zc, v->c);
        syn_line(s, v->zc - 0.01, p0);
        syn_line(s, v->zc + 0.01, p1);
        double nn = 0;
        for (int d = 0; d < 3; d++) { v->t[d] = p1[d] - p0[d]; nn += v->t[d] * v->t[d]; }
        for (int d = 0; d < 3; d++) v->t[d] /= sqrt(nn);
        /* anterior: world +y projected perpendicular to the axis */
        double Y[3] = {0, 1, 0}, dy = v->t[1];
        nn = 0;
        for (int d = 0; d < 3; d++) { v->ant[d] = Y[d] - dy * v->t[d]; nn += v->ant[d] * v->ant[d]; }
        for (int d = 0; d < 3; d++) v->ant[d] /= sqrt(nn);
        /* lateral = ant x t (patient right for t = +z, ant = +y) */
        v->lat[0] = v->ant[1] * v->t[2] - v->ant[2] * v->t[1];
        v->lat[1] = v->ant[2] * v->t[0] - v->ant[0] * v->t[2];
        v->lat[2] = v->ant[0] * v->t[1] - v->ant[1] * v->t[0];
    }
}

/* Body height at AP position a (mm, + anterior, 0 = centre). */
static inline double syn_height_at(const syn_vert *v, double a)
{
    double f = (a + v->depth / 2) / v->depth;
    return v->h_post + (v->h_ant - v->h_post) * f;
}

/* 1 = body, 2 = arch, 0 = outside, for vertebra v at world point w. */
static inline int syn_inside(const syn_spine *s, const syn_vert *v, const double w[3])
{
    double d[3] = {w[0] - v->c[0], w[1] - v->c[1], w[2] - v->c[2]};
    double u = d[0] * v->t[0] + d[1] * v->t[1] + d[2] * v->t[2];
    double a = d[0] * v->ant[0] + d[1] * v->ant[1] + d[2] * v->ant[2];
    double l = d[0] * v->lat[0] + d[1] * v->lat[1] + d[2] * v->lat[2];
    double hmax = v->h_post > v->h_ant ? v->h_post : v->h_ant;
    if (fabs(u) > hmax) return 0;
    double e = (l / (v->width / 2)) * (l / (v->width / 2)) + (a / (v->depth / 2)) * (a / (v->depth / 2));
    if (e <= 1.0) {
        double h = syn_height_at(v, a);
        if (u >= -h / 2 && u <= h / 2) return 1;
    }
    if (s->arch && fabs(u) <= 0.3 * v->h_post) {
        double ca = a + v->depth / 2 + 8.0;      /* canal centre 8 mm behind the body */
        double rr = sqrt(ca * ca + l * l);
        if (rr >= 8.0 && rr <= 14.0) return 2;
        if (fabs(l) <= 3.0 && ca < -12.0 && ca > -35.0) return 2;   /* spinous process */
    }
    return 0;
}

/* Render labels (U8) and a CT (I16: body 250 HU, arch 400, else 0) on a grid.
 * body_c receives each vertebra's body voxel centroid (world mm). */
static inline hv_status syn_render(const syn_spine *s, const double A[4][4], const int64_t dim[3],
                                   hv_volume **mask, hv_volume **ct, double body_c[][3])
{
    hv_status st = hv_vol_create(mask, dim, HV_DTYPE_U8, A);
    if (st) return st;
    st = hv_vol_create(ct, dim, HV_DTYPE_I16, A);
    if (st) { hv_vol_free(*mask); *mask = NULL; return st; }
    uint8_t *m = (*mask)->data;
    int16_t *c = (*ct)->data;
    double sum[SYN_MAXV][4];
    memset(sum, 0, sizeof sum);
    for (int64_t k = 0; k < dim[2]; k++)
        for (int64_t j = 0; j < dim[1]; j++)
            for (int64_t i = 0; i < dim[0]; i++) {
                double vx[3] = {(double)i, (double)j, (double)k}, w[3];
                hv_affine_apply(A, vx, w);
                size_t idx = (size_t)i + (size_t)dim[0] * ((size_t)j + (size_t)dim[1] * (size_t)k);
                c[idx] = -50;
                for (int q = 0; q < s->n; q++) {
                    if (fabs(w[2] - s->v[q].c[2]) > 60) continue;
                    int in = syn_inside(s, &s->v[q], w);
                    if (!in) continue;
                    m[idx] = (uint8_t)s->v[q].label;
                    c[idx] = in == 1 ? 250 : 400;
                    if (in == 1) {
                        sum[q][0] += w[0]; sum[q][1] += w[1]; sum[q][2] += w[2]; sum[q][3] += 1;
                    }
                    break;
                }
            }
    if (body_c)
        for (int q = 0; q < s->n; q++)
            for (int d = 0; d < 3; d++) body_c[q][d] = sum[q][3] > 0 ? sum[q][d] / sum[q][3] : NAN;
    return HV_OK;
}

/* A grid of given spacing and rotation (degrees about x then z) covering the
 * box [-100,100] x [-100,100] x [zlo, zhi] in world mm. */
static inline void syn_grid(const double sp[3], double rx_deg, double rz_deg, double zlo, double zhi,
                            double A[4][4], int64_t dim[3])
{
    double ax = rx_deg * SYN_PI / 180, az = rz_deg * SYN_PI / 180;
    double Rx[3][3] = {{1, 0, 0}, {0, cos(ax), -sin(ax)}, {0, sin(ax), cos(ax)}};
    double Rz[3][3] = {{cos(az), -sin(az), 0}, {sin(az), cos(az), 0}, {0, 0, 1}};
    double R[3][3];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            R[a][b] = 0;
            for (int q = 0; q < 3; q++) R[a][b] += Rz[a][q] * Rx[q][b];
        }
    double ext[3] = {200, 200, zhi - zlo}, ctr[3] = {0, 0, (zlo + zhi) / 2};
    /* enlarge a little so the rotated box still covers the region */
    double grow = fabs(rx_deg) + fabs(rz_deg) > 0 ? 1.15 : 1.0;
    for (int d = 0; d < 3; d++) dim[d] = (int64_t)ceil(ext[d] * grow / sp[d]) + 1;
    memset(A, 0, 16 * sizeof(double));
    A[3][3] = 1;
    for (int a = 0; a < 3; a++) {
        for (int b = 0; b < 3; b++) A[a][b] = R[a][b] * sp[b];
        A[a][3] = ctr[a];
        for (int b = 0; b < 3; b++) A[a][3] -= R[a][b] * sp[b] * (double)(dim[b] - 1) / 2;
    }
}

#endif
