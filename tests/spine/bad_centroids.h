/*
 * bad_centroids.h: the VerSe centroid file with impossible centroids (issue
 * 9) that both `straighten` (tests/spine/test_spine_inputs.c) and `measure`
 * (tests/measure/test_measure_inputs.c) must survive, written from one
 * place so the two tests feed the same hostile file.
 *
 * For a synthetic spine of five vertebrae (synth.h) rendered on the grid A,
 * the entries are, in voxel coordinates of that grid ("direction" R, A, S):
 *   v[0], v[4]  at their true centres (good: no warning expected);
 *   v[1]        X = 1e308, Y = -1e308, Z = 1e308 (outside the volume);
 *   v[2]        X = -5000 (outside the volume), Y and Z true;
 *   v[3]        its true centre moved off_mm along the grid's k axis (more
 *               than HV_SPINE_CENTROID_MAX_MM off, still inside the volume).
 * With syn_make(&s, 5, 18, ...) these are labels 18 (T11) .. 22 (L3): T12,
 * L1 and L2 are the impossible ones.
 */
#ifndef HV_TEST_SPINE_BAD_CENTROIDS_H
#define HV_TEST_SPINE_BAD_CENTROIDS_H

#include <math.h>
#include <stdio.h>

#include "hv/core.h"
#include "synth.h"

/* Write the file to `path` (both strings and `s` borrowed). HV_ERR_ARG when
 * the spine has fewer than five vertebrae, HV_ERR_IO when the file cannot be
 * written, or the status of inverting A. */
static inline hv_status syn_write_bad_centroids(const char *path, const syn_spine *s,
                                                const double A[4][4], double off_mm)
{
    if (s->n < 5) return hv_error_set(HV_ERR_ARG, "bad centroids: %d vertebrae, need 5", s->n);
    double inv[4][4], ijk[5][3];
    hv_status st = hv_affine_invert(A, inv);
    if (st != HV_OK) return st;
    for (int q = 0; q < 5; q++) hv_affine_apply((const double(*)[4])inv, s->v[q].c, ijk[q]);
    const double sk = sqrt(A[0][2] * A[0][2] + A[1][2] * A[1][2] + A[2][2] * A[2][2]);
    FILE *f = fopen(path, "w");
    if (!f) return hv_error_set(HV_ERR_IO, "bad centroids: cannot write %s", path);
    fprintf(f,
            "[{\"direction\": [\"R\", \"A\", \"S\"]},"
            " {\"label\": %d, \"X\": %.4f, \"Y\": %.4f, \"Z\": %.4f},"
            " {\"label\": %d, \"X\": 1e308, \"Y\": -1e308, \"Z\": 1e308},"
            " {\"label\": %d, \"X\": -5000, \"Y\": %.4f, \"Z\": %.4f},"
            " {\"label\": %d, \"X\": %.4f, \"Y\": %.4f, \"Z\": %.4f},"
            " {\"label\": %d, \"X\": %.4f, \"Y\": %.4f, \"Z\": %.4f}]",
            s->v[0].label, ijk[0][0], ijk[0][1], ijk[0][2], s->v[1].label, s->v[2].label,
            ijk[2][1], ijk[2][2], s->v[3].label, ijk[3][0], ijk[3][1], ijk[3][2] + off_mm / sk,
            s->v[4].label, ijk[4][0], ijk[4][1], ijk[4][2]);
    return fclose(f) == 0 ? HV_OK : hv_error_set(HV_ERR_IO, "bad centroids: writing %s", path);
}

#endif /* HV_TEST_SPINE_BAD_CENTROIDS_H */
