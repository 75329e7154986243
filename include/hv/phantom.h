/*
 * hv/phantom.h: a synthetic spine cohort with known ground truth.
 *
 * Each case is an analytic model in world (RAS+ mm) space: a torso, a curved
 * spine of vertebrae sized by level (body, cortical shell, trabecular bone,
 * pedicles, lamina, spinous and transverse processes around a spinal canal),
 * discs, and fractures (wedge, biconcave, crush) whose height loss is drawn
 * strictly inside a Genant band. The model is voxelised onto any grid
 * (RAS/LPS/PIR/oblique, any spacing), so the same anatomy can be written in
 * every orientation and tested for equality after reorientation.
 *
 * Heights: a vertebra's anterior, middle and posterior heights are measured
 * along its local spine axis in its mid-sagittal plane at 1/6, 1/2 and 5/6 of
 * the body's antero-posterior depth (the centres of the anterior, middle and
 * posterior thirds). "healthy" is the height before the fracture; "observed"
 * is what the mask shows.
 *
 * Everything is deterministic for (seed, case index). Ownership: objects
 * returned through `out` belong to the caller; free with the *_free function.
 */
#ifndef HV_PHANTOM_H
#define HV_PHANTOM_H

#include "hv/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hv_phantom_orient {
    HV_PHANTOM_RAS = 0,
    HV_PHANTOM_LPS,
    HV_PHANTOM_PIR,
    HV_PHANTOM_OBLIQUE     /* RAS rotated by a few degrees about two axes */
} hv_phantom_orient;

typedef enum hv_fracture_type {
    HV_FRACTURE_NONE = 0,
    HV_FRACTURE_WEDGE,     /* anterior height lost             */
    HV_FRACTURE_BICONCAVE, /* middle height lost               */
    HV_FRACTURE_CRUSH      /* all three heights lost           */
} hv_fracture_type;

const char *hv_fracture_type_name(hv_fracture_type t);

typedef struct hv_phantom_opts {
    uint64_t seed;
    int first_label;       /* VerSe label of the top vertebra (default 8, T1)    */
    int last_label;        /* bottom vertebra (default 24, L5)                   */
    double spacing[3];     /* output voxel spacing in mm along i, j, k (1,1,1)   */
    hv_phantom_orient orientation;
    double fracture_rate;  /* probability that a vertebra is fractured (0.15)    */
    double scoliosis_rate; /* probability that a case has a scoliotic curve (0.3) */
    double noise_hu;       /* CT noise sigma in HU (20)                          */
} hv_phantom_opts;

/* Fill `o` with the defaults above. */
void hv_phantom_opts_default(hv_phantom_opts *o);

typedef struct hv_phantom_vert {
    int label;             /* VerSe label                                       */
    int grade;             /* Genant 0..3                                       */
    hv_fracture_type type;
    double loss;           /* relative height loss at the worst point (0 if none) */
    double healthy_mm[3];  /* anterior, middle, posterior healthy heights       */
    double observed_mm[3]; /* anterior, middle, posterior heights in the mask   */
    double center[3];      /* world mm: centre of the healthy body              */
    double axis[3];        /* unit local spine axis (towards superior)          */
    double anterior[3];    /* unit, perpendicular to axis, towards anterior     */
    double depth_mm;       /* antero-posterior body depth                       */
    double width_mm;       /* left-right body width                             */
    int truncated;         /* cut by the field of view                          */
} hv_phantom_vert;

/* One case's model and, once rendered, its volumes. */
typedef struct hv_phantom_case {
    char id[32];           /* "ph0000"                                          */
    int n_vert;
    hv_phantom_vert *vert; /* owned, top to bottom                              */
    hv_volume *ct;         /* owned; int16 HU; NULL before render               */
    hv_volume *mask;       /* owned; uint8 VerSe labels; NULL before render     */
} hv_phantom_case;

/* Draw case `index` of the cohort described by `o` (model only). */
hv_status hv_phantom_case_make(const hv_phantom_opts *o, int index,
                               hv_phantom_case **out);
/* Voxelise the model onto the grid chosen by o->spacing and o->orientation. */
hv_status hv_phantom_case_render(const hv_phantom_opts *o, hv_phantom_case *c);
/* Voxelise onto a caller-given grid (affine, dim). */
hv_status hv_phantom_case_render_grid(const hv_phantom_opts *o, hv_phantom_case *c,
                                      const double affine[4][4], const int64_t dim[3]);
void hv_phantom_case_free(hv_phantom_case *c);

/* Progress callback: called after each case with (done, total). */
typedef void (*hv_progress_fn)(void *user, long done, long total);

/* Write a cohort of `n_cases` under `outdir` in the reference layout:
 *   outdir/raw/<id>/<id>.nii.gz, <id>_msk.nii.gz, <id>.json (centroids)
 *   outdir/split.json        (train/val/test by case, Genant grades)
 *   outdir/ground_truth.csv  (one row per vertebra)
 * Cases are generated in parallel (OpenMP); files are identical for the same
 * options whatever the thread count. `progress` may be NULL. */
hv_status hv_phantom_cohort_write(const hv_phantom_opts *o, const char *outdir,
                                  int n_cases, hv_progress_fn progress, void *user);

#ifdef __cplusplus
}
#endif
#endif /* HV_PHANTOM_H */
