/*
 * hv/core.h: the types every other module stands on.
 *
 *  - hv_status: every fallible call returns one; the human-readable detail of
 *    the most recent failure lives in a per-thread buffer (hv_error_*), so a
 *    status can travel up the stack while each layer adds its context
 *    ("reading case 0007: L2: ..."). Library code never prints or exits.
 *  - logging: levelled, to stderr only, with an optional MPI rank prefix.
 *  - hv_volume: a 3-D grid with dims, spacing and a 4x4 voxel-to-world affine in
 *    NIfTI RAS+ millimetres. It is a plain public struct (like ggml's tensor):
 *    kernels read dims and data directly. Index i runs fastest in memory.
 *  - orientation: axis codes from an affine, exact reorientation to the
 *    canonical RAS grid by axis permutation and flips, and general resampling
 *    onto any target grid (trilinear for CT, nearest for labels).
 *  - hv_rng: explicit, seedable random streams (xoshiro256**); no rand().
 *  - vertebra label names in the VerSe convention, and the per-label voxel
 *    count, index sums and bounding box of a label map (one pass).
 *
 * Ownership: a function that returns a new object through an `out` pointer
 * hands it to the caller, who frees it with the matching *_free. Pointers
 * passed in are borrowed for the duration of the call unless stated.
 */
#ifndef HV_CORE_H
#define HV_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

typedef enum hv_status {
    HV_OK = 0,
    HV_ERR_ARG,          /* caller passed an invalid argument or option      */
    HV_ERR_NOMEM,        /* allocation failed                                */
    HV_ERR_IO,           /* open/read/write failed (errno detail in message) */
    HV_ERR_FORMAT,       /* a file is malformed                              */
    HV_ERR_LIMIT,        /* input exceeds a configured size limit            */
    HV_ERR_NOT_FOUND,    /* file, label or key not present                   */
    HV_ERR_UNSUPPORTED,  /* valid input we do not handle                     */
    HV_ERR_EMPTY,        /* nothing to work on (empty mask, empty split)     */
    HV_ERR_NUMERIC,      /* NaN/Inf or a degenerate geometry                 */
    HV_ERR_INTERRUPTED,  /* stopped by a signal; the work is resumable       */
    HV_ERR_MPI,          /* an MPI call failed                               */
    HV_ERR_HDF5,         /* an HDF5 call failed                              */
    HV_ERR_GPU,          /* a CUDA/cuDNN call failed or no device            */
    HV_ERR_INTERNAL,     /* a bug: an invariant did not hold                 */
    HV_STATUS_COUNT      /* keep last; add new codes just above              */
} hv_status;

/* Short stable name of a status ("format", "io", ...). Never NULL. */
const char *hv_status_name(hv_status st);

/* Record the detail of a failure in this thread's error buffer, replacing what
 * was there, and return `st` so callers can write `return hv_error_set(...)`. */
hv_status hv_error_set(hv_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prepend context to the current detail ("ctx: old detail"); returns `st`. */
hv_status hv_error_wrap(hv_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The current thread's detail; "" when none. Valid until the next hv_error_*. */
const char *hv_error_detail(void);
void hv_error_clear(void);

/* --------------------------------------------------------------- logging */

typedef enum hv_log_level {
    HV_LOG_ERROR = 0,
    HV_LOG_WARN,
    HV_LOG_INFO,
    HV_LOG_DEBUG
} hv_log_level;

void hv_log_set_level(hv_log_level level);
hv_log_level hv_log_get_level(void);
/* Set the MPI rank printed in front of every line; -1 (default) prints none. */
void hv_log_set_rank(int rank);
void hv_log(hv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hv_logv(hv_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define hv_log_error(...) hv_log(HV_LOG_ERROR, __VA_ARGS__)
#define hv_log_warn(...)  hv_log(HV_LOG_WARN, __VA_ARGS__)
#define hv_log_info(...)  hv_log(HV_LOG_INFO, __VA_ARGS__)
#define hv_log_debug(...) hv_log(HV_LOG_DEBUG, __VA_ARGS__)

/* Monotonic wall clock in seconds (for timings and progress). */
double hv_time_now(void);
/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ" (for provenance and locks). */
void hv_utc_now(char buf[32]);

/* ---------------------------------------------------------------- volume */

typedef enum hv_dtype {
    HV_DTYPE_U8 = 1,
    HV_DTYPE_I16,
    HV_DTYPE_U16,
    HV_DTYPE_I32,
    HV_DTYPE_F32
} hv_dtype;

size_t hv_dtype_size(hv_dtype dt);
const char *hv_dtype_name(hv_dtype dt);

typedef struct hv_volume {
    int64_t dim[3];        /* voxels along i, j, k (each >= 1)             */
    double spacing[3];     /* mm per voxel along i, j, k (affine col norms) */
    double affine[4][4];   /* voxel (i,j,k,1) -> world RAS+ mm              */
    hv_dtype dtype;
    size_t nvox;           /* dim[0]*dim[1]*dim[2]                          */
    void *data;            /* owned; nvox elements, i fastest, then j, k    */
} hv_volume;

/* New zero-filled volume. `affine` may be NULL (identity: 1 mm, RAS, origin 0).
 * Fails with HV_ERR_LIMIT if the size overflows, HV_ERR_NUMERIC if the affine
 * is singular or not finite. */
hv_status hv_vol_create(hv_volume **out, const int64_t dim[3], hv_dtype dtype,
                        const double affine[4][4]);
void hv_vol_free(hv_volume *v);
hv_status hv_vol_clone(const hv_volume *v, hv_volume **out);
/* Copy converting the dtype; integer targets round to nearest and saturate,
 * NaN becomes 0 for integer targets. */
hv_status hv_vol_convert(const hv_volume *v, hv_dtype dtype, hv_volume **out);
/* Recompute spacing from the affine (after the affine was edited by hand). */
void hv_vol_update_spacing(hv_volume *v);
/* HV_OK when `a` and `b` lie on the same voxel grid: equal dims and
 * voxel-to-world affines equal within 1e-3 relative per entry. Otherwise
 * HV_ERR_FORMAT naming both ("CT and mask affines differ (row 0, column 3:
 * 50 vs 0): ..."). name_a/name_b ("CT", "mask") may be NULL. This is the
 * check `run` and `measure --ct` share before voxels of one are read at the
 * indices of the other. */
hv_status hv_vol_check_same_grid(const hv_volume *a, const hv_volume *b, const char *name_a,
                                 const char *name_b);

static inline size_t hv_vol_idx(const hv_volume *v, int64_t i, int64_t j, int64_t k)
{
    return (size_t)i + (size_t)v->dim[0] * ((size_t)j + (size_t)v->dim[1] * (size_t)k);
}
/* Value at a linear index as double, whatever the dtype. */
double hv_vol_get(const hv_volume *v, size_t idx);
/* Store a double at a linear index (rounded/saturated for integer dtypes). */
void hv_vol_set(hv_volume *v, size_t idx, double value);
/* Min and max over all finite voxels; *n_nonfinite counts NaN/Inf (may be NULL). */
void hv_vol_range(const hv_volume *v, double *min, double *max, size_t *n_nonfinite);

/* ----------------------------------------------------- affine/orientation */

/* out = A applied to point p (homogeneous w = 1). */
void hv_affine_apply(const double A[4][4], const double p[3], double out[3]);
/* Apply only the 3x3 linear part (a direction). */
void hv_affine_apply_dir(const double A[4][4], const double d[3], double out[3]);
hv_status hv_affine_invert(const double A[4][4], double out[4][4]);
void hv_affine_mul(const double A[4][4], const double B[4][4], double out[4][4]);
void hv_affine_identity(double A[4][4]);
/* |det| of the linear 3x3 part: the volume of one voxel in mm^3, exact for
 * oblique and sheared grids too. */
double hv_affine_voxel_mm3(const double A[4][4]);
/* Axis codes of the closest orthogonal orientation ("RAS", "LPS", "PIR", ...):
 * codes[n] names the world direction in which voxel index n increases.
 * `codes` receives 3 letters and a NUL. Uses the same greedy rule as nibabel's
 * io_orientation (largest remaining |cosine| first). */
void hv_affine_axcodes(const double A[4][4], char codes[4]);
/* Largest angle (degrees) between a voxel axis and its closest world axis:
 * 0 for a permutation/flip grid, > 0 for an oblique one. */
double hv_affine_obliquity_deg(const double A[4][4]);

/* Permute and flip axes so that the result's axis codes are RAS. Exact (no
 * interpolation); the affine is updated so every voxel keeps its world
 * position. An oblique grid stays oblique (its closest canonical form), as
 * nibabel's as_closest_canonical does. */
hv_status hv_vol_reorient_canonical(const hv_volume *in, hv_volume **out);

typedef enum hv_interp {
    HV_INTERP_NEAREST = 0, /* labels */
    HV_INTERP_LINEAR       /* CT: trilinear */
} hv_interp;

/* Resample `in` onto the grid (affine, dim): every output voxel's world point
 * is mapped into `in` and interpolated; points outside get `fill`. The output
 * dtype is in's dtype. Multithreaded (OpenMP). */
hv_status hv_vol_resample(const hv_volume *in, const double affine[4][4],
                          const int64_t dim[3], hv_interp interp, double fill,
                          hv_volume **out);
/* Resample to a new voxel spacing (mm) keeping the axis directions and the
 * world extent of the grid (voxel centres of the first voxel coincide). */
hv_status hv_vol_resample_spacing(const hv_volume *in, const double spacing[3],
                                  hv_interp interp, double fill, hv_volume **out);
/* Resample onto an axis-aligned RAS grid of the given spacing that covers the
 * world bounding box of `in` (used to bring oblique scans to canonical). */
hv_status hv_vol_resample_to_ras(const hv_volume *in, const double spacing[3],
                                 hv_interp interp, double fill, hv_volume **out);

/* ------------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64 from (seed, stream): streams with the
 * same seed and different stream ids are independent. Plain value type. */
typedef struct hv_rng {
    uint64_t s[4];
    int have_spare;
    double spare;
} hv_rng;

void hv_rng_seed(hv_rng *r, uint64_t seed, uint64_t stream);
uint64_t hv_rng_u64(hv_rng *r);
double hv_rng_uniform(hv_rng *r);                      /* [0, 1)        */
double hv_rng_range(hv_rng *r, double lo, double hi);  /* [lo, hi)      */
double hv_rng_normal(hv_rng *r);                       /* N(0, 1)       */
uint64_t hv_rng_below(hv_rng *r, uint64_t n);          /* [0, n), n > 0 */

/* --------------------------------------------------------------- labels */

/* VerSe labels: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 28 T13. */
#define HV_LABEL_T1 8
#define HV_LABEL_L5 24
/* Level name of a VerSe label ("T12"); NULL when the label has no name. */
const char *hv_label_name(int label);
/* Inverse of hv_label_name (case-insensitive); 0 when unknown. */
int hv_label_from_name(const char *name);
/* Craniocaudal order of a VerSe label, used for sorting and for neighbour
 * distances: 1..25 as themselves, T13 (28) at 19.5 between T12 and L1;
 * -1 for labels that are not vertebrae (26 sacrum, 27, > 28, <= 0). */
double hv_label_order(int label);

/* Highest VerSe vertebra label (T13). */
#define HV_LABEL_MAX 28

/* What one pass over a label map knows about one vertebra label. */
typedef struct hv_label_stats {
    size_t count;          /* voxels carrying the label; 0 = absent               */
    double sum[3];         /* sums of the voxel indices i, j, k (integers: exact)  */
    int64_t lo[3], hi[3];  /* inclusive bounding box, voxel indices; when count is
                              0, lo = INT64_MAX and hi = -1 (lo > hi)               */
} hv_label_stats;

/* One pass over an integer label map (U8, I16, U16, I32; F32 is HV_ERR_ARG)
 * that fills st[0 .. HV_LABEL_MAX]: st[l] for every vertebra label l
 * (hv_label_order(l) >= 0); st[0], st[26], st[27] stay empty. Other nonzero
 * voxels (negative, 26 sacrum, 27, > 28) are not counted; how many there
 * were goes to *ignored (`ignored` may be NULL). Logs nothing: the caller
 * says what ignoring means for it. Multithreaded (OpenMP); the results do not
 * depend on the number of threads. `mask` is borrowed; `st` is the caller's
 * array of HV_LABEL_MAX + 1 entries, overwritten. */
hv_status hv_label_stats_collect(const hv_volume *mask, hv_label_stats st[HV_LABEL_MAX + 1],
                                 size_t *ignored);
/* World centre of mass (mm) of a label with count > 0: the mean voxel index
 * through the voxel-to-world affine `A`. */
void hv_label_stats_centroid(const hv_label_stats *s, const double A[4][4], double out[3]);
/* 1 when the label has a voxel on a face of a grid of `dim` voxels (a
 * vertebra cut by the field of view), else 0 (also when count is 0). */
int hv_label_stats_on_border(const hv_label_stats *s, const int64_t dim[3]);

/* ------------------------------------------------------------ utilities */

/* Duplicate a string (NULL on allocation failure); free with free(). */
char *hv_strdup(const char *s);
/* printf into a new string; NULL on failure; free with free(). */
char *hv_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* mkdir -p; HV_ERR_IO with the failing component on error. */
hv_status hv_mkdir_p(const char *path);

/* Check that `path` names an existing regular file (symlinks followed), so
 * that a directory, FIFO (which would block forever), socket or device given
 * as an input file fails at once with a message that says what it is:
 * "WHAT: PATH: is a directory, not a regular file", "...: does not exist",
 * "...: is a FIFO (named pipe), not a regular file", all HV_ERR_IO (as a
 * failed open always was). `what` names the argument for the message ("--centroids",
 * "CT"); NULL or "" for none. Both strings are borrowed. */
hv_status hv_file_check_regular(const char *path, const char *what);
/* Read a whole regular file (checked as above; opened non-blocking, so a FIFO
 * never hangs) into a new buffer with a NUL after its last byte. Files over
 * `max_bytes` fail with HV_ERR_LIMIT, naming the size and the limit. On
 * success *out (owned by the caller, free() it) holds *len bytes (`len` may
 * be NULL); on failure *out is NULL. */
hv_status hv_file_read_all(const char *path, const char *what, size_t max_bytes, char **out,
                           size_t *len);
/* Longest name hv_file_name_check accepts (bytes). */
#define HV_FILE_NAME_MAX 128
/* Check that `name` (a case id, a level name: anything output file names are
 * built from) is one plain file-name component, so "DIR/NAME_ct.nii.gz"
 * stays inside DIR: not empty, not "." or "..", no '/', no control
 * characters (bytes < 0x20 and 0x7f), at most HV_FILE_NAME_MAX bytes.
 * HV_ERR_ARG with "WHAT 'NAME' is not a plain file name (why)" (control
 * characters shown as \xNN); `what` names it ("--id"); both borrowed. */
hv_status hv_file_name_check(const char *name, const char *what);

/* Writing a file so that readers see the old file or the whole new one,
 * never a part: the content goes to "PATH.tmp<pid>.<n>" in the same folder
 * and is renamed over PATH only once completely written (and, with
 * `durable`, fsync'd with its folder). Every failure removes the temporary
 * file and names PATH and the reason (strerror: "No space left on device").
 * The temporary is created exclusively (O_EXCL) under a name unique to the
 * process and the call, skipping names that exist (a killed writer's
 * leftover), so any number of processes may write the same PATH at once:
 * the last rename wins and no one sees another's half-written file.
 *
 *   hv_atomic_file *a; FILE *f;
 *   if ((st = hv_atomic_open(path, &a, &f))) return st;
 *   fprintf(f, ...);                      // any stdio writes
 *   st = hv_atomic_commit(a, 0);          // or hv_atomic_abort(a)
 *
 * The handle owns the stream: do not fclose it. Commit and abort free the
 * handle whatever they return. */
typedef struct hv_atomic_file hv_atomic_file;
hv_status hv_atomic_open(const char *path, hv_atomic_file **out, FILE **f);
hv_status hv_atomic_commit(hv_atomic_file *a, int durable);
void hv_atomic_abort(hv_atomic_file *a);
/* The same for a whole buffer of n bytes (borrowed). */
hv_status hv_file_write_atomic(const char *path, const void *data, size_t n, int durable);

/* CSV fields for the project's tables: a text field as is, or in double
 * quotes (inner quotes doubled, RFC 4180) when it holds a comma, a quote or
 * a newline; a number as round-trip-exact %.17g, NaN as "nan" (runs and
 * rank counts are compared byte for byte on these). `s` is borrowed. */
void hv_csv_put_str(FILE *f, const char *s);
void hv_csv_put_num(FILE *f, double x);

/* Version string and git revision baked in at build time. */
const char *hv_version(void);
const char *hv_git_revision(void);

#ifdef __cplusplus
}
#endif
#endif /* HV_CORE_H */
