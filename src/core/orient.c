/*
 * orient.c: affine arithmetic and exact reorientation.
 *
 * The axis-code rule is the greedy one nibabel uses (io_orientation): pick the
 * largest |cosine| in the 3x3 direction matrix, assign that voxel axis to that
 * world axis, remove both and repeat. Reorientation to canonical RAS is then a
 * pure permutation/flip of the array with the affine adjusted so every voxel
 * keeps its world position: no interpolation, so labels and HU survive exactly.
 */
#include "hv/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hv_affine_identity(double A[4][4])
{
    memset(A, 0, 16 * sizeof(double));
    for (int i = 0; i < 4; i++) A[i][i] = 1.0;
}

void hv_affine_apply(const double A[4][4], const double p[3], double out[3])
{
    double r[3];
    for (int i = 0; i < 3; i++) r[i] = A[i][0] * p[0] + A[i][1] * p[1] + A[i][2] * p[2] + A[i][3];
    memcpy(out, r, sizeof r);
}

void hv_affine_apply_dir(const double A[4][4], const double d[3], double out[3])
{
    double r[3];
    for (int i = 0; i < 3; i++) r[i] = A[i][0] * d[0] + A[i][1] * d[1] + A[i][2] * d[2];
    memcpy(out, r, sizeof r);
}

void hv_affine_mul(const double A[4][4], const double B[4][4], double out[4][4])
{
    double r[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += A[i][k] * B[k][j];
            r[i][j] = s;
        }
    memcpy(out, r, sizeof r);
}

hv_status hv_affine_invert(const double A[4][4], double out[4][4])
{
    /* Gauss-Jordan with partial pivoting on the full 4x4. */
    double m[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) m[i][j] = j < 4 ? A[i][j] : (j - 4 == i ? 1.0 : 0.0);
    double scale = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) scale = fmax(scale, fabs(A[i][j]));
    if (!(scale > 0) || !isfinite(scale))
        return hv_error_set(HV_ERR_NUMERIC, "affine is zero or not finite");
    for (int c = 0; c < 4; c++) {
        int p = c;
        for (int r = c + 1; r < 4; r++)
            if (fabs(m[r][c]) > fabs(m[p][c])) p = r;
        if (fabs(m[p][c]) < 1e-12 * fmax(scale, 1.0))
            return hv_error_set(HV_ERR_NUMERIC, "affine is singular");
        if (p != c)
            for (int j = 0; j < 8; j++) {
                double t = m[c][j];
                m[c][j] = m[p][j];
                m[p][j] = t;
            }
        double d = m[c][c];
        for (int j = 0; j < 8; j++) m[c][j] /= d;
        for (int r = 0; r < 4; r++) {
            if (r == c) continue;
            double f = m[r][c];
            if (f != 0)
                for (int j = 0; j < 8; j++) m[r][j] -= f * m[c][j];
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) out[i][j] = m[i][j + 4];
    return HV_OK;
}

/* For each voxel axis n: world axis perm[n] (0=x,1=y,2=z) and sign flip[n]
 * (+1 when the index increases towards R/A/S). */
static void axis_mapping(const double A[4][4], int perm[3], int flip[3])
{
    double cosm[3][3]; /* [world][voxel], columns normalised */
    for (int c = 0; c < 3; c++) {
        double n = sqrt(A[0][c] * A[0][c] + A[1][c] * A[1][c] + A[2][c] * A[2][c]);
        for (int r = 0; r < 3; r++) cosm[r][c] = n > 0 ? A[r][c] / n : 0;
    }
    int used_w[3] = {0, 0, 0}, used_v[3] = {0, 0, 0};
    for (int it = 0; it < 3; it++) {
        int bw = -1, bv = -1;
        double best = -1;
        for (int w = 0; w < 3; w++) {
            if (used_w[w]) continue;
            for (int v = 0; v < 3; v++) {
                if (used_v[v]) continue;
                if (fabs(cosm[w][v]) > best) {
                    best = fabs(cosm[w][v]);
                    bw = w;
                    bv = v;
                }
            }
        }
        used_w[bw] = used_v[bv] = 1;
        perm[bv] = bw;
        flip[bv] = cosm[bw][bv] >= 0 ? 1 : -1;
    }
}

void hv_affine_axcodes(const double A[4][4], char codes[4])
{
    static const char pos[3] = {'R', 'A', 'S'}, neg[3] = {'L', 'P', 'I'};
    int perm[3], flip[3];
    axis_mapping(A, perm, flip);
    for (int n = 0; n < 3; n++) codes[n] = flip[n] > 0 ? pos[perm[n]] : neg[perm[n]];
    codes[3] = '\0';
}

double hv_affine_obliquity_deg(const double A[4][4])
{
    int perm[3], flip[3];
    axis_mapping(A, perm, flip);
    double worst = 0;
    for (int c = 0; c < 3; c++) {
        double n = sqrt(A[0][c] * A[0][c] + A[1][c] * A[1][c] + A[2][c] * A[2][c]);
        if (!(n > 0)) continue;
        double cosv = fabs(A[perm[c]][c]) / n;
        if (cosv > 1) cosv = 1;
        double ang = acos(cosv) * 180.0 / M_PI;
        if (ang > worst) worst = ang;
    }
    return worst;
}

hv_status hv_vol_reorient_canonical(const hv_volume *in, hv_volume **out)
{
    int perm[3], flip[3];
    axis_mapping((const double(*)[4])in->affine, perm, flip);
    /* Output axis w takes input axis src[w]. */
    int src[3];
    for (int n = 0; n < 3; n++) src[perm[n]] = n;
    int64_t odim[3];
    for (int w = 0; w < 3; w++) odim[w] = in->dim[src[w]];
    /* Output voxel (a0,a1,a2) = input voxel with index along src[w] equal to
     * a_w (flip +1) or dim-1-a_w (flip -1). As a 4x4: in_vox = T * out_vox. */
    double T[4][4];
    memset(T, 0, sizeof T);
    T[3][3] = 1;
    for (int w = 0; w < 3; w++) {
        int n = src[w];
        if (flip[n] > 0) {
            T[n][w] = 1;
        } else {
            T[n][w] = -1;
            T[n][3] = (double)(in->dim[n] - 1);
        }
    }
    double A[4][4];
    hv_affine_mul((const double(*)[4])in->affine, (const double(*)[4])T, A);
    hv_status st = hv_vol_create(out, odim, in->dtype, (const double(*)[4])A);
    if (st != HV_OK) return st;
    hv_volume *o = *out;
    size_t es = hv_dtype_size(in->dtype);
    const unsigned char *sp = in->data;
    unsigned char *dp = o->data;
    /* Strides of the input along each output axis, and start offset. */
    int64_t istride[3] = {1, in->dim[0], in->dim[0] * in->dim[1]};
    int64_t ostep[3], start = 0;
    for (int w = 0; w < 3; w++) {
        int n = src[w];
        ostep[w] = flip[n] > 0 ? istride[n] : -istride[n];
        if (flip[n] < 0) start += (in->dim[n] - 1) * istride[n];
    }
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < odim[2]; k++) {
        for (int64_t j = 0; j < odim[1]; j++) {
            int64_t base = start + k * ostep[2] + j * ostep[1];
            size_t obase = (size_t)(odim[0] * (j + odim[1] * k));
            if (es == 1) {
                for (int64_t i = 0; i < odim[0]; i++) dp[obase + (size_t)i] = sp[base + i * ostep[0]];
            } else {
                for (int64_t i = 0; i < odim[0]; i++)
                    memcpy(dp + (obase + (size_t)i) * es, sp + (size_t)(base + i * ostep[0]) * es, es);
            }
        }
    }
    return HV_OK;
}

double hv_affine_voxel_mm3(const double A[4][4])
{
    double d = A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) -
               A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0]) +
               A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]);
    return fabs(d);
}
