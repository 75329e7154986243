/*
 * hv/spine.h: spine preprocessing. Centroids, straightening along the spine
 * curve, HU window, de-pedicle, per-vertebra crops, the fixed-height band
 * mask with the shifted input, and 2.5D slice extraction and sampling.
 *
 * Everything here works in world coordinates (NIfTI RAS+ mm): the input CT and
 * mask may have any orientation, spacing and even different grids; nothing
 * assumes that a voxel axis is craniocaudal (the reference does, spec §2.3).
 *
 * Straightened grid convention (docs/spine.md explains it at length):
 *   voxel (i, j, k) of a straightened volume with dims (W, H, N):
 *     k = row along the curve, k = 0 at the CAUDAL end, increasing SUPERIOR,
 *         one row every `step_mm` of arc length (exactly step_mm apart along
 *         each body's own axis inside the rigid body zones, see
 *         hv_spine_map_rigidify; the discs take the bend);
 *     i = lateral, increasing toward the patient's RIGHT (frame vector r_k);
 *     j = antero-posterior, increasing toward ANTERIOR (frame vector a_k);
 *   world(i, j, k) = p_k + (i - ci) * step * r_k + (j - cj) * step * a_k,
 *   with the curve point p_k, unit tangent t_k (superior), (r_k, a_k, t_k)
 *   right-handed, ci = W / 2, cj = H / 2 (integer division: 64 for 128).
 *   So the grid is "RAS-like" in the spine's own frame and a viewer shows it
 *   upright. The affine written to NIfTI is the exact mapping of the central
 *   row (k = N / 2) extended linearly: that row overlays the scanner volume
 *   exactly, the others approximately. The exact per-row mapping is the
 *   hv_spine_map, stored beside the volume as CSV (hv_spine_map_write).
 *
 * Crops (dims (64, 256, 256) by default, i.e. LR x AP x rows; the reference's
 * 256x256x64 rows x AP x LR): the straightened volume's full cross-section
 * placed in the centre, the target's body-centroid row on crop row 128; rows
 * beyond the straightened volume are padded (the target is never shifted off
 * centre, unlike the reference, spec §2.5).
 *
 * 2D slices (2.5D, spec §4) are row-major float images with row 0 = CRANIAL
 * (caudal down). Sagittal: columns = AP with ANTERIOR at column 0 (the
 * reference's layout). Coronal: columns = LR, patient RIGHT at the left of the
 * image (radiological display), the crop's LR width pasted into the centre of
 * a canvas as wide as the sagittal image (columns 96..159 for 64 in 256).
 *
 * Ownership: objects returned through `out` belong to the caller and are freed
 * with the matching *_free (each accepts NULL). Inputs are borrowed.
 * All functions are thread-safe on distinct objects; the heavy ones use OpenMP.
 */
#ifndef HV_SPINE_H
#define HV_SPINE_H

#include "hv/core.h"
#include "hv/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------- vertebrae */

/* Per-vertebra flags: anything but 0 means "do not measure blindly". */
#define HV_SPINE_FLAG_FOV       0x01u /* touches the volume border: cut by the FOV   */
#define HV_SPINE_FLAG_SMALL     0x02u /* end vertebra dropped by the §1.2 size rule  */
#define HV_SPINE_FLAG_OUTSIDE   0x04u /* centroid outside the volume                 */
#define HV_SPINE_FLAG_NO_MASK   0x08u /* centroid given, label absent from the mask  */
#define HV_SPINE_FLAG_GAP       0x10u /* an adjacent level is missing (labels skip)  */
#define HV_SPINE_FLAG_SINGLE    0x20u /* only vertebra: straight line along world S  */
#define HV_SPINE_FLAG_NO_CANAL  0x40u /* de-pedicle found no canal gap               */
#define HV_SPINE_FLAG_OFF_CURVE 0x80u /* not used as a curve control point           */
#define HV_SPINE_FLAG_CTD_FAR  0x100u /* given centroid > HV_SPINE_CENTROID_MAX_MM   */
                                      /* from its label's voxels: the label's own   */
                                      /* centre is used instead                     */
/* Largest distance (mm) a centroid from a file may lie from the centre of
 * mass of its label's voxels before it is ignored (flag CTD_FAR). */
#define HV_SPINE_CENTROID_MAX_MM 20

/* Human-readable list of the set flags ("fov|gap"), "" for none; a
 * thread-local buffer valid until the next call in the same thread. */
const char *hv_spine_flags_str(unsigned flags);

typedef struct hv_spine_vert {
    int label;               /* VerSe label (1-25, 28 = T13)                 */
    unsigned flags;          /* HV_SPINE_FLAG_*                              */
    size_t nvox;             /* voxels of the label in the mask              */
    double volume_mm3;       /* nvox * voxel volume                          */
    double centroid[3];      /* world mm: centre of mass of the whole label  */
                             /* (or the JSON centroid converted to world)    */
    int has_body;            /* body_centroid valid                          */
    double body_centroid[3]; /* world mm: centre of the de-pedicled body     */
    double row;              /* straightened row of the body (or curve) centre; */
                             /* NAN before straightening                     */
} hv_spine_vert;

typedef struct hv_spine_verts {
    size_t n;
    hv_spine_vert *v;        /* owned; cranial to caudal (label order, T13 after T12) */
} hv_spine_verts;

void hv_spine_verts_free(hv_spine_verts *vs);
/* Index of `label` in vs, or -1. */
long hv_spine_verts_find(const hv_spine_verts *vs, int label);

typedef struct hv_spine_centroid_opts {
    /* Reference rule (spec §1.2): drop the cranial end vertebra when its
     * volume is below 6000 mm^3 and the caudal one below 8000 mm^3 (the
     * reference counts voxels of a 1 mm grid). Dropped ones are kept in the
     * list, flagged SMALL|OFF_CURVE. Default 0 (off). */
    int reference_end_rule;
    /* Vertebrae touching the FOV are still curve control points unless their
     * volume is below this fraction of the median untouched volume (a sliver's
     * centroid says little about the spine). Default 0.5. */
    double fov_min_fraction;
} hv_spine_centroid_opts;

void hv_spine_centroid_opts_default(hv_spine_centroid_opts *o);

/* Centres of mass per vertebra label of `mask` (any integer dtype), in world
 * mm, with FOV/GAP flags. Labels that are not vertebrae (26, 27, > 28) are
 * ignored with a warning. HV_ERR_EMPTY if no vertebra label is present.
 * `o` may be NULL (defaults). */
hv_status hv_spine_centroids_from_mask(const hv_volume *mask,
                                       const hv_spine_centroid_opts *o,
                                       hv_spine_verts **out);

/* Centroids from a VerSe JSON (voxel coordinates in the mask's grid; a
 * "direction" entry that names a permutation/flip of the mask's own axis
 * codes is honoured) converted to world through mask's affine. nvox, FOV and
 * NO_MASK come from the mask. A centroid outside the volume, or more than
 * HV_SPINE_CENTROID_MAX_MM from the centre of mass of its label's voxels, is
 * not used: a warning names the label and the distance, the vertebra is
 * flagged OUTSIDE or CTD_FAR and gets its label's own centre, as if no
 * centroid had been given. Only a centroid of a label absent from the mask
 * stays where it is (NO_MASK, and OUTSIDE|OFF_CURVE when outside).
 * HV_ERR_EMPTY when c has no entry. `measure` (hv_measure_spine) and the
 * spine stage both take file centroids through this function. */
hv_status hv_spine_centroids_from_json(const hv_centroids *c, const hv_volume *mask,
                                       const hv_spine_centroid_opts *o,
                                       hv_spine_verts **out);

/* ------------------------------------------------------------------ map */

typedef enum hv_spine_curve_kind {
    HV_SPINE_CURVE_SPLINE = 0,   /* cubic spline, chord length, Bessel end tangents */
    HV_SPINE_CURVE_POLYLINE      /* the reference's piecewise-linear curve (§2.2)    */
} hv_spine_curve_kind;

typedef enum hv_spine_frame_kind {
    HV_SPINE_FRAME_RMF = 0,      /* rotation-minimising (double reflection), twist   */
                                 /* chosen so r stays closest to the patient's right  */
    HV_SPINE_FRAME_REFERENCE     /* §2.3: r in the coronal plane, a = t x r           */
} hv_spine_frame_kind;

typedef enum hv_spine_through {
    HV_SPINE_THROUGH_BODY = 0,   /* two passes: curve through the de-pedicled body   */
                                 /* centroids (bodies land on the central axis)      */
    HV_SPINE_THROUGH_WHOLE       /* one pass through whole-label centroids (reference) */
} hv_spine_through;

typedef struct hv_spine_straighten_opts {
    hv_spine_curve_kind curve;
    hv_spine_frame_kind frame;
    hv_spine_through through;
    int64_t width;               /* LR voxels (i), default 128                      */
    int64_t height;              /* AP voxels (j), default 128                      */
    double step_mm;              /* row and pixel spacing, default 1.0              */
    double extend_mm;            /* curve extension beyond each end centroid (20)   */
    double ct_fill;              /* CT value outside the scan (-1024 HU)            */
    int rigid_bodies;            /* 1 (default, with THROUGH_BODY): a third pass     */
                                 /* maps every body rigidly (hv_spine_map_rigidify) */
} hv_spine_straighten_opts;

void hv_spine_straighten_opts_default(hv_spine_straighten_opts *o);

/* The exact mapping between a straightened grid and world space. */
typedef struct hv_spine_map {
    int64_t n;                   /* rows (k)                                        */
    int64_t width, height;       /* i and j extents                                 */
    double step;                 /* mm                                              */
    double ci, cj;               /* centre column (width / 2, height / 2)           */
    double *p;                   /* owned, 3n: curve point of row k (world mm)      */
    double *t;                   /* owned, 3n: unit tangent (superior)              */
    double *r;                   /* owned, 3n: unit lateral (patient right)         */
    double *a;                   /* owned, 3n: unit anterior (a = t x r)            */
    double affine[4][4];         /* the NIfTI affine (exact at row n / 2)           */
} hv_spine_map;

void hv_spine_map_free(hv_spine_map *m);

/* Build the curve through the control points of `vs` (those without
 * OFF_CURVE, in craniocaudal order) and sample it. One control point gives a
 * straight line along world superior (the vertebra is flagged SINGLE); none is
 * HV_ERR_EMPTY. `o` may be NULL. */
hv_status hv_spine_map_build(const hv_spine_verts *vs, int use_body,
                             const hv_spine_straighten_opts *o, hv_spine_map **out);

/* Straightened (fractional) voxel coordinates -> world mm (rows interpolated
 * linearly; exact at integer k). */
void hv_spine_map_to_world(const hv_spine_map *m, const double ijk[3], double world[3]);
/* World mm -> straightened voxel coordinates. `hint_row` (< 0: none) starts the
 * search (continuation for neighbouring points). Returns 1 when the point's
 * row lies inside [0, n-1], 0 when it is beyond either end (ijk extrapolated). */
int hv_spine_map_from_world(const hv_spine_map *m, const double world[3],
                            double hint_row, double ijk[3]);

/* A rigid zone: rows [lo, hi] (fractional rows of the map) hold one
 * vertebral body whose centre is on row `centre`; with has_point the zone's
 * axis passes through `point` (world mm, e.g. the body centroid) instead of
 * the curve point of that row. */
typedef struct hv_spine_zone {
    double centre, lo, hi;
    int has_point;
    double point[3];
} hv_spine_zone;

/* Make the map rigid over each zone (sorted by centre, ascending rows): inside
 * a zone every row uses the frame of the zone's centre row and the rows are
 * parallel planes exactly step mm apart along that frame's tangent, so the
 * body is moved, not bent; between zones (the discs) the position follows a
 * cubic Hermite curve and the frame turns at a constant rate from one body's
 * frame to the next. Rows beyond the end zones continue the end bodies'
 * frames. Why: a smooth curve through the centroids bends space inside the
 * bodies too; at a radius of curvature R a column at a mm from the axis is
 * stretched by 1 / (1 - a / R), which at the anterior and posterior thirds of
 * a lumbar body (a ~ 11 mm, R ~ 100-250 mm) biases the heights by 1-3 mm.
 * Real bodies are rigid and the discs take the bend, so the map does too. The
 * cost: with a sharp bend over a thin disc the row planes cross at a distance
 * (disc rows x step / bend angle) on the concave side, so far from the axis
 * some disc-level tissue is sampled twice and some on the convex side
 * skipped. Overlapping zones meet half way. */
hv_status hv_spine_map_rigidify(hv_spine_map *m, const hv_spine_zone *zones, size_t nz);

/* The mapping as text: '#' header lines with the grid, then one CSV row per k:
 * k,px,py,pz,tx,ty,tz,rx,ry,rz,ax,ay,az (%.17g: exact round trip). */
hv_status hv_spine_map_write(const char *path, const hv_spine_map *m);
hv_status hv_spine_map_read(const char *path, hv_spine_map **out);

/* --------------------------------------------------------- straightening */

/* Resample `in` onto the straightened grid of `m`: HV_INTERP_LINEAR for CT
 * (result F32, `fill` outside), HV_INTERP_NEAREST for labels (result in the
 * input's dtype, 0 outside). */
hv_status hv_spine_straighten(const hv_spine_map *m, const hv_volume *in,
                              hv_interp interp, double fill, hv_volume **out);

/* Carry a straightened label volume back onto a scanner grid (`like` gives
 * dim and affine): nearest neighbour through hv_spine_map_from_world; voxels
 * outside the straightened volume get 0. Result dtype = straight's dtype. */
hv_status hv_spine_unstraighten_labels(const hv_spine_map *m, const hv_volume *straight,
                                       const hv_volume *like, hv_volume **out);

/* HU window (spec §2.1): v' = 255 (v - lo) / (hi - lo) clipped to [0, 255],
 * F32 out. Always applied (the reference skips it when the range already
 * lies inside the window; we do not guess). lo = -300, hi = 800 in the
 * reference. */
hv_status hv_spine_hu_window(const hv_volume *ct, double lo, double hi, hv_volume **out);

/* De-pedicle (spec §3.1) a straightened label volume in place: for each label,
 * walk the centre LR column (i = ci) from the curve's AP centre (j = cj)
 * toward posterior; at the first j where the label occurs in no row, delete
 * it from every voxel with AP index <= j (pedicles, arch, processes). Labels
 * where no gap exists are flagged NO_CANAL in `vs` (may be NULL). The CT keeps
 * everything. */
hv_status hv_spine_depedicle(const hv_spine_map *m, hv_volume *labels, hv_spine_verts *vs);

/* Body centroids (world) and rows from a de-pedicled straightened volume;
 * sets has_body, body_centroid and row of each vertebra in `vs`. */
hv_status hv_spine_body_centroids(const hv_spine_map *m, const hv_volume *labels,
                                  hv_spine_verts *vs);

/* ------------------------------------------------------- the whole stage */

typedef struct hv_spine_opts {
    hv_spine_centroid_opts centroids;
    hv_spine_straighten_opts straighten;
    double window_lo, window_hi;   /* -300, 800                                 */
    int64_t crop_lr, crop_ap, crop_rows; /* 64, 256, 256                        */
} hv_spine_opts;

void hv_spine_opts_default(hv_spine_opts *o);

/* One case through the spine stage. */
typedef struct hv_spine_case {
    hv_spine_verts *verts;   /* owned: centroids, flags, body centroids, rows   */
    hv_spine_map *map;       /* owned: the exact straightened <-> world mapping */
    hv_volume *ct;           /* owned: straightened CT, F32 HU                  */
    hv_volume *ct_win;       /* owned: the same windowed to [0, 255], F32       */
    hv_volume *labels;       /* owned: straightened labels, de-pedicled, U8     */
    hv_volume *labels_whole; /* owned: straightened labels before de-pedicle    */
    hv_spine_opts opts;      /* the options used                                */
    double seconds[4];       /* wall time of the stages: centroids, curve and   */
                             /* label passes, CT straightening, HU window       */
} hv_spine_case;

/* CT (any dtype, HU) + mask (integer labels) [+ VerSe centroids, may be NULL]
 * -> straightened volumes and per-vertebra flags. CT and mask may lie on
 * different grids. `o` may be NULL. */
hv_status hv_spine_case_run(const hv_volume *ct, const hv_volume *mask,
                            const hv_centroids *json, const hv_spine_opts *o,
                            hv_spine_case **out);
void hv_spine_case_free(hv_spine_case *c);

typedef struct hv_spine_crop {
    int label;
    int64_t offset[3];       /* crop voxel (0,0,0) = straightened voxel offset  */
    hv_volume *ct;           /* owned: windowed CT [0,255] F32, 0 outside        */
    hv_volume *labels;       /* owned: de-pedicled labels (all levels), U8       */
} hv_spine_crop;

/* Crop vertebra `label` (must be in c->verts with a body): the target's body
 * row on crop row crop_rows / 2, cross-section centred, zero padding. The
 * crops' affines are the straightened affine shifted by `offset`. */
hv_status hv_spine_crop_make(const hv_spine_case *c, int label, hv_spine_crop **out);
void hv_spine_crop_free(hv_spine_crop *cr);

/* The 3-D grader's box (src/spine/box.c; grader.method = senet3d): `side`^3
 * voxels of cr's windowed CT centred on the crop's centre voxel (dim / 2
 * along each axis: the target's body row and the cross-section's centre),
 * box voxel (a, b, c) = crop voxel (dim[0]/2 - side/2 + a, ...); as U8, the
 * value truncated (as the store's crops; NaN and voxels outside the crop 0).
 * Its affine is the crop's shifted to the box's first voxel. side 1..1024;
 * *out owned by the caller (hv_vol_free). */
hv_status hv_spine_crop_box(const hv_spine_crop *cr, int side, hv_volume **out);

/* ------------------------------------------------------------ 2.5D slices */

typedef enum hv_spine_plane {
    HV_SPINE_SAGITTAL = 0,   /* fixed LR index i                                 */
    HV_SPINE_CORONAL         /* fixed AP index j                                 */
} hv_spine_plane;

/* Size of the 2D image of `plane` for a crop volume: rows = dim[2];
 * cols = dim[1] (sagittal) or max(dim[0], dim[1]) (coronal canvas). */
void hv_spine_slice_dims(const hv_volume *crop, hv_spine_plane plane,
                         int64_t *rows, int64_t *cols);
/* Extract slice `index` (an i for sagittal, a j for coronal) into `out`
 * (rows*cols floats, caller-allocated, row-major, layout in the header
 * comment). Coronal canvas columns outside the pasted strip are 0. */
hv_status hv_spine_slice_extract(const hv_volume *crop, hv_spine_plane plane,
                                 int64_t index, float *out);

/* The slices to use for a target (spec §3.2/§8): the central 80 % of the
 * target's extent along the slicing axis. One range for training and
 * inference. */
typedef struct hv_spine_slice_range {
    int64_t extent_lo, extent_len;  /* target extent: first index, count (L)  */
    int64_t first, count;           /* used slices [first, first + count) (M) */
    double centre;                  /* c = first + (count - 1) / 2             */
} hv_spine_slice_range;

hv_status hv_spine_slice_range_get(const hv_volume *crop_labels, int label,
                                   hv_spine_plane plane, hv_spine_slice_range *out);
/* |z - c| / L * 2 (fed to the networks, spec §3.2). */
double hv_spine_slice_ratio(const hv_spine_slice_range *r, int64_t z);

/* Fixed-height band (spec §3.3). Rows are 2D image rows (0 = cranial). */
typedef struct hv_spine_band {
    int64_t x1, x2;          /* target rows [x1, x2) (half-open), after clamping */
    int64_t height;          /* true target height in rows (x2 - x1 before clamping) */
    int64_t lo, hi;          /* band rows [lo, hi), hi - lo = band rows          */
    int64_t col_lo, col_hi;  /* band columns [col_lo, col_hi)                    */
    int too_tall;            /* height > band: x1, x2 clamped around the centre  */
} hv_spine_band;

/* Find the target's rows in a label slice and place the band (band_rows = 40
 * at 1 mm: one value for training and inference, unlike the reference's
 * 40/41). Columns [col_lo, col_hi) (pass 0, cols for the whole width).
 * HV_ERR_EMPTY when the target is absent from the slice. */
hv_status hv_spine_band_find(const float *labels, int64_t rows, int64_t cols, int label,
                             int64_t band_rows, int64_t col_lo, int64_t col_hi,
                             hv_spine_band *out);
/* Shifted input: the target rows [x1, x2) cut out, rows above pushed up to end
 * at lo and rows from x2 down placed from hi; band rows are 0 across the
 * whole width (all columns are shifted). Apply to CT, CAM and label slices
 * alike. `in` and `out` must not overlap. */
void hv_spine_band_shift(const hv_spine_band *b, const float *in, int64_t rows, int64_t cols,
                         float *out);
/* The band mask: 1 inside rows [lo, hi) x cols [col_lo, col_hi), else 0. */
void hv_spine_band_mask(const hv_spine_band *b, int64_t rows, int64_t cols, float *out);

/* Remove 8-connected components of `label` smaller than min_px from a label
 * slice in place (set to 0); returns the remaining pixel count of the label. */
int64_t hv_spine_slice_clean(float *labels, int64_t rows, int64_t cols, int label,
                             int64_t min_px);

/* Seeded training draw (spec §3.2) from the range `rg` of
 * hv_spine_slice_range_get (computed once per item): triangular weights
 * w(z) = 1 - |z - c| / (M - 1), the slice cleaned (components < 50 px
 * removed); accepted when > 50 px remain and the target fits the band
 * (height <= band_rows); up to 100 draws, then HV_ERR_NOT_FOUND (the
 * reference crashes). On success *z and *ratio are set and `label_slice`
 * (rows*cols, may be NULL) holds the cleaned label slice. */
hv_status hv_spine_slice_draw(const hv_volume *crop_labels, int label, hv_spine_plane plane,
                              const hv_spine_slice_range *rg, int64_t band_rows, hv_rng *rng,
                              int64_t *z, double *ratio, float *label_slice);

/* ---------------------------------------------------------------- QC */

/* The two slices every QC picture of a crop shows: the sagittal slice
 * through the crop's LR centre (*sag_i) and the coronal slice through the
 * target body's AP centre (*cor_j). */
void hv_spine_qc_slices(const hv_spine_crop *cr, int64_t *sag_i, int64_t *cor_j);

/* A crop's windowed CT value (0..255 F32) as a QC grey byte, rounded. */
uint8_t hv_spine_qc_grey(float v);

/* One PNG per vertebra: mid-sagittal and mid-coronal slices of the crop side
 * by side (grey CT, label contours in colour, the target in red). */
hv_status hv_spine_qc_png(const char *path, const hv_spine_crop *cr);

#ifdef __cplusplus
}
#endif
#endif /* HV_SPINE_H */
