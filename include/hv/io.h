/*
 * hv/io.h: reading and writing the files a run touches.
 *
 *  - NIfTI-1/-2 (.nii, .nii.gz) through nifticlib, with our own header
 *    validation first: Debian's nifticlib 3.0.1 trusts headers that fuzzers
 *    have shown to allocate ~18 GB or overflow stack arrays, so no header
 *    reaches nifticlib before hv_io_nifti_check has accepted it.
 *  - VerSe centroid JSON and HealthiVert split files (cJSON).
 *  - Dataset discovery: the reference layout <root>/raw/<id>/<id>.nii.gz,
 *    VerSe's layout, or a CSV manifest listing the files of every case.
 *
 * Volumes come back in the file's own voxel order with the affine that maps
 * them to world RAS+ mm (sform preferred, then qform, then pixdim). Callers
 * that need the canonical orientation call hv_vol_reorient_canonical.
 *
 * Ownership: objects returned through `out` belong to the caller and are
 * released with the matching *_free (each accepts NULL).
 */
#ifndef HV_IO_H
#define HV_IO_H

#include "hv/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ NIfTI */

/* Default upper bound on the voxel data of one file (bytes, in its on-disk
 * datatype): 4 GiB. A 512x512x2000 int16 CT is 1 GiB. */
#define HV_NIFTI_DEFAULT_MAX_BYTES (4ull << 30)

typedef struct hv_nifti_opts {
    uint64_t max_bytes;    /* 0 = HV_NIFTI_DEFAULT_MAX_BYTES                 */
} hv_nifti_opts;

/* What the validated header says (filled by hv_io_nifti_check). */
typedef struct hv_nifti_info {
    int version;           /* 1 or 2                                         */
    int gzipped;
    int datatype;          /* NIFTI_TYPE_* code                              */
    int bitpix;
    int64_t ndim;          /* dim[0]                                         */
    int64_t dim[8];        /* dim[1..7] used; dim[0] = ndim                  */
    double pixdim[8];
    double scl_slope, scl_inter;
    int qform_code, sform_code;
    int64_t vox_offset;
    uint64_t data_bytes;   /* nvox * bytes per voxel                         */
    int swapped;           /* file is in the other byte order                */
    char descrip[81];
} hv_nifti_info;

/* Validate a NIfTI file's header (and, for .gz, that the stream decompresses
 * to at least vox_offset + data_bytes) without allocating voxel data. On
 * failure returns HV_ERR_FORMAT / HV_ERR_LIMIT / HV_ERR_IO with a message that
 * names the file and the problem. `opts` and `info` may be NULL. */
hv_status hv_io_nifti_check(const char *path, const hv_nifti_opts *opts,
                            hv_nifti_info *info);

/* Read a 3-D volume (4-D+ files must have dim[4..7] == 1). The data are
 * converted to `dtype`:
 *   HV_DTYPE_F32: intensities with scl_slope/scl_inter applied (CT);
 *   integer dtypes: labels; every voxel must be integral and in range,
 *                   otherwise HV_ERR_FORMAT (a float mask 0.0/1.0 is fine).
 * `opts` may be NULL. `info` (may be NULL) receives the header facts. */
hv_status hv_io_nifti_read(const char *path, hv_dtype dtype,
                           const hv_nifti_opts *opts, hv_volume **out,
                           hv_nifti_info *info);

typedef struct hv_nifti_write_opts {
    int version;           /* 1 (default when 0) or 2                        */
    int datatype;          /* NIFTI_TYPE_* on disk; 0 = from the volume's dtype */
    double scl_slope;      /* 0 = none (1, 0)                                */
    double scl_inter;
    const char *descrip;   /* up to 79 chars; NULL = none                    */
    int gzip_level;        /* 1..9 for .gz paths; 0 = 1 (fast)               */
    int intent_label;      /* write NIFTI_INTENT_LABEL                       */
} hv_nifti_write_opts;

/* Write `v` to `path` (.nii or .nii.gz by suffix), both sform and qform set
 * from the affine (qform_code = sform_code = scanner). Values that do not fit
 * the on-disk datatype fail with HV_ERR_ARG (never silently saturate). The
 * file is written to a temporary name and renamed, so a crash never leaves a
 * half-written file under `path`. `opts` may be NULL. */
hv_status hv_io_nifti_write(const char *path, const hv_volume *v,
                            const hv_nifti_write_opts *opts);

/* ------------------------------------------------------------- centroids */

typedef struct hv_centroid {
    int label;
    double x, y, z;        /* voxel coordinates along the grid's axes 0,1,2 */
} hv_centroid;

typedef struct hv_centroids {
    char direction[4];     /* axis codes of the voxel grid ("IPL"); "" if absent */
    size_t n;
    hv_centroid *items;    /* sorted by label */
} hv_centroids;

/* Read a VerSe-style centroid file: a JSON list of {"label","X","Y","Z"},
 * optionally led by {"direction": ["I","P","L"]}. Entries without "X" or with
 * a null label are skipped (as the reference does); a label outside 1..28, a
 * duplicate label or a non-numeric coordinate is HV_ERR_FORMAT. */
hv_status hv_io_centroids_read(const char *path, hv_centroids **out);
hv_status hv_io_centroids_write(const char *path, const hv_centroids *c);
void hv_io_centroids_free(hv_centroids *c);

/* ------------------------------------------------------------ split file */

typedef enum hv_split_set {
    HV_SPLIT_TRAIN = 0,
    HV_SPLIT_VAL,
    HV_SPLIT_TEST,
    HV_SPLIT_COUNT
} hv_split_set;

const char *hv_split_set_name(hv_split_set s);

typedef struct hv_split_entry {
    char *case_id;         /* "sub-verse004" (owned)                         */
    int label;             /* VerSe label                                    */
    int grade;             /* Genant 0..3                                    */
    hv_split_set set;
} hv_split_entry;

typedef struct hv_split {
    size_t n;
    hv_split_entry *items; /* in file order: sets in the order they appear, keys in order */
} hv_split;

/* Read a split file {"train"|"val"|"test": {"<case>_<label>": grade}}. Keys are
 * split on the last underscore. Unknown set names, labels outside 1..28,
 * grades outside 0..3 and duplicate keys are HV_ERR_FORMAT. */
hv_status hv_io_split_read(const char *path, hv_split **out);
/* Write in the same format, sets in the order test, train, val (the
 * reference's order, which its SVM fold construction depends on). */
hv_status hv_io_split_write(const char *path, const hv_split *s);
void hv_io_split_free(hv_split *s);
/* Index of (case_id, label) in s, or -1. */
long hv_io_split_find(const hv_split *s, const char *case_id, int label);

/* --------------------------------------------------------------- dataset */

typedef struct hv_case {
    char *id;              /* "0007"                                         */
    char *ct_path;         /* NULL when missing                              */
    char *mask_path;       /* NULL when missing                              */
    char *centroid_path;   /* NULL when absent (optional)                    */
    hv_status status;      /* HV_OK, or why the case cannot run              */
    char *problem;         /* NULL when status == HV_OK                      */
} hv_case;

typedef struct hv_manifest {
    size_t n;
    hv_case *cases;        /* sorted by id (byte order)                      */
    size_t n_bad;          /* cases with status != HV_OK                     */
} hv_manifest;

/* Discover cases under `root`. Layouts, tried in this order:
 *  - reference: <root>/raw/<id>/<id>.nii.gz + <id>_msk.nii.gz (or _seg),
 *    optional <id>.json; also <root>/<id>/... when there is no raw/ folder;
 *  - VerSe: <root>/rawdata/<sub>/<sub>[_seriesN]_ct.nii.gz with
 *    <root>/derivatives/<sub>/<sub>[_seriesN]_seg-vert_msk.nii.gz and
 *    _seg-subreg_ctd.json (one case per series).
 * (.nii is accepted wherever .nii.gz is.) A case whose CT or mask is missing
 * or unreadable is kept in the manifest with status and problem set
 * (reported, not fatal). With `check_opts` non-NULL every file's header is
 * also validated with hv_io_nifti_check (costly: it inflates .gz streams);
 * with NULL that is left to the stage that reads the case. An unreadable
 * root, or one with no case at all, is an error. */
hv_status hv_io_dataset_scan(const char *root, const hv_nifti_opts *check_opts,
                             hv_manifest **out);
void hv_io_manifest_free(hv_manifest *m);

/* Read a cohort listed in a CSV file (input.source = manifest).
 *
 * Format (docs/architecture.md, "Inputs", says the same with an example):
 *  - UTF-8 text, an optional byte-order mark, LF or CRLF line ends. Lines
 *    whose first character is '#' are comments; blank lines (spaces only)
 *    are skipped. Neither counts as a row; line numbers count every line.
 *  - Fields are separated by ','. RFC 4180 quoting: a field that starts
 *    with '"' runs to the next lone '"' and may hold commas, line breaks
 *    and quotes written twice (""). Spaces and tabs around a field are
 *    trimmed unless they are inside its quotes.
 *  - The first row is the header: the column names, lower case, in any
 *    order. Required: id, ct, mask. Optional: centroids, split, grades.
 *    Any other name (also "grade") is an error; so is a name given twice.
 *    Every row has as many fields as the header.
 *  - id: one plain file name (hv_file_name_check), unique in the file.
 *  - ct, mask: the CT and the vertebra label map (NIfTI); both required
 *    and non-empty (a run straightens the spine on the CT). centroids: a
 *    VerSe centroid JSON, or empty. A relative path is taken from the
 *    CSV's folder, an absolute one as is; each must name an existing
 *    regular file. Several ids may share the same files.
 *  - split: empty, or train, val or test. grades: empty, or the case's
 *    known per-vertebra Genant grades as LEVEL:GRADE items separated by
 *    ';' ("T12:2; L1:0"), LEVEL a level name (T12) or a VerSe label (20),
 *    GRADE 0..3, each vertebra once. A grade belongs to a vertebra, not a
 *    case, hence no per-case grade column. split and grades come together
 *    or not at all: the split puts the case's graded vertebrae in a set.
 *
 * Every row is checked before anything is returned (with `check_opts`
 * non-NULL every CT and mask header too, through hv_io_nifti_check). When
 * anything is wrong the call returns HV_ERR_FORMAT, *out stays NULL and the
 * error detail lists every problem as "PATH:LINE: what" in line order (at
 * most 50, then "... and N more problem(s)"). A header without data rows is
 * HV_ERR_EMPTY; an unreadable file HV_ERR_IO.
 *
 * On success *out holds the cases sorted by id (byte order), every one
 * with status HV_OK and ct_path and mask_path set (paths resolved as
 * above; centroid_path NULL when none). With `split_out` non-NULL,
 * *split_out receives the grades as a split (cases by id, labels
 * ascending), or NULL when no row has grades. Both belong to the caller
 * (hv_io_manifest_free, hv_io_split_free); `path` and `check_opts` are
 * borrowed. */
hv_status hv_io_manifest_read(const char *path, const hv_nifti_opts *check_opts, hv_manifest **out,
                              hv_split **split_out);

/* ------------------------------------------------ pictures (src/io/draw.c)
 * One PNG writer and the figures, drawn with cairo (DejaVu Sans through
 * fontconfig). Every function borrows its arguments and keeps nothing; the
 * file is written to a temporary name and renamed, so it is whole or absent.
 * Text arguments may be NULL (nothing drawn). */

/* w x h pixels, `channels` 1 (grey) or 3 (RGB) bytes each, rows top down. */
hv_status hv_io_png_write(const char *path, int w, int h, int channels, const uint8_t *px);

/* An 8-bit grey w x h picture (rows top down) as PNG bytes in memory, made
 * the same way every time (Paeth filter on every row, zlib level 6,
 * Z_FILTERED, no ancillary chunks): the same pixels give the same bytes.
 * *out (malloc'd, the caller's to free) and *len receive them. */
hv_status hv_io_png_encode_grey(int w, int h, const uint8_t *px, uint8_t **out, size_t *len);
/* Decode PNG bytes (borrowed) that must be an 8-bit grey w x h picture,
 * non-interlaced, into px (w*h bytes, the caller's). HV_ERR_FORMAT naming
 * the problem for anything else: not a PNG, other size or colour type,
 * truncated or damaged (CRC or zlib errors). */
hv_status hv_io_png_decode_grey(const uint8_t *buf, size_t len, int w, int h, uint8_t *px);

/* Grey w x h picture with label contours into RGB (stride bytes a row):
 * each non-zero label's edge pixels (on the picture's border or beside
 * another value, 4-neighbourhood) in a colour of its own, `target`'s red. */
void hv_io_paint_contours(uint8_t *rgb, int stride, const uint8_t *grey, const uint8_t *labels,
                          int w, int h, int target);

/* The outline of a mask over an RGB picture (stride bytes a row): every
 * non-zero mask pixel on the picture's border or with a zero 4-neighbour
 * becomes `colour`; every other pixel is left as it is. */
void hv_io_paint_outline(uint8_t *rgb, int stride, const uint8_t *mask, int w, int h,
                         const uint8_t colour[3]);

/* An attention map over a grey slice, as the reference's figure (spec 7):
 * n pixels, grey[p] (0..255; the CT slice) blended with the JET colour of
 * map[p] (clamped to [0, 1], non-finite as 0) at alpha 0.4, i.e. each
 * channel lrint(0.6 grey + 0.4 x 255 x jet); grey NULL: the map alone,
 * lrint(255 x jet). JET: r, g, b = clamp(1.5 - |4x - 3|), clamp(1.5 -
 * |4x - 2|), clamp(1.5 - |4x - 1|). rgb: n x 3 bytes, the caller's. */
void hv_io_jet_overlay(const uint8_t *grey, const float *map, size_t n, uint8_t *rgb);

/* The font file fontconfig gives the figures' text (DejaVu Sans) into
 * file (cap bytes; may be NULL); HV_ERR_NOT_FOUND, naming the package, when
 * that family is not installed (figures then warn once and use cairo's
 * built-in fallback font). */
hv_status hv_io_figure_font(char *file, size_t cap);

/* A picture with a caption strip beneath it: px (w x h packed RGB, rows
 * top down) is written unchanged as rows 0..h-1, then a black strip of
 * HV_IO_CAPTION_ROWS(lines) rows holding the items, lines the highest item
 * line + 1 (no strip without items). An item is text (light grey, 12 px,
 * left-aligned; NULL: none) at column x of caption line `line` (0 first,
 * HV_IO_CAPTION_LINE rows each, vertically centred), after a 10 x 10
 * swatch of colour `swatch` (exact RGB, not anti-aliased; NULL: none) when
 * given. HV_ERR_ARG for an item outside [0, HV_IO_CAPTION_MAX_LINES) x
 * [0, w). */
#define HV_IO_CAPTION_LINE 18
#define HV_IO_CAPTION_MAX_LINES 8
#define HV_IO_CAPTION_ROWS(lines) ((lines) > 0 ? HV_IO_CAPTION_LINE * (lines) + 4 : 0)
typedef struct hv_io_caption {
    int line, x;
    const uint8_t *swatch; /* 3 bytes or NULL */
    const char *text;
} hv_io_caption;
hv_status hv_io_png_write_captioned(const char *path, int w, int h, const uint8_t *px,
                                    const hv_io_caption *items, int n);

/* viridis colour of t in [0, 1] (clamped; NaN gives the low end). */
void hv_io_colormap(double t, uint8_t out[3]);

/* A k x k confusion matrix: count[r * k + c] cases of true class r predicted
 * as c; cells shaded by the row fraction (recall). names: k labels or NULL. */
typedef struct hv_io_confusion {
    const char *title, *caption;
    int k;
    const char *const *names;
    const long *count;
} hv_io_confusion;
hv_status hv_io_plot_confusion(const char *path, const hv_io_confusion *c);

/* Values by group, as jittered points with the group mean as a bar;
 * horizontal dashed marks (e.g. the Genant band edges) with names. The y
 * range covers [ylo, yhi] and every finite value. group[i] outside
 * [0, n_groups) leaves value i out. */
typedef struct hv_io_groups {
    const char *title, *ylabel, *caption;
    size_t n;
    const double *v;
    const int *group;
    int n_groups;
    const char *const *group_names;
    double ylo, yhi;
    int n_marks;
    const double *marks;
    const char *const *mark_names;
} hv_io_groups;
hv_status hv_io_plot_groups(const char *path, const hv_io_groups *g);

/* Grouped bars: n_groups groups (at most 16) of n_series bars (at most 6),
 * value[g * n_series + s] (non-finite: no bar, "n/a"), with a whisker of
 * +- spread[...] (NULL or non-finite: none) and a short black reference
 * line at ref[...] (NULL or non-finite: none; named ref_name in the
 * legend). group_notes (NULL or per group, may be NULL) print a red note
 * under a group's name. The y axis is [ylo, yhi]; values are clipped. */
typedef struct hv_io_bars {
    const char *title, *ylabel, *caption, *ref_name;
    int n_groups, n_series;
    const char *const *group_names;
    const char *const *group_notes;
    const char *const *series_names;
    const double *value, *spread, *ref;
    double ylo, yhi;
} hv_io_bars;
hv_status hv_io_plot_bars(const char *path, const hv_io_bars *b);

/* A heatmap of z[ix + nx * iy] (NaN: grey, no data) on the fixed colour
 * scale [zlo, zhi], with a colour bar, marks on the bar, labels at the
 * left/right edges and the top/bottom rows, and a caption. */
typedef struct hv_io_heatmap {
    const char *title, *caption, *zlabel;
    const char *left, *right, *top, *bottom;
    int nx, ny;
    const double *z;
    double zlo, zhi;
    int n_marks;
    const double *marks;
} hv_io_heatmap;
hv_status hv_io_plot_heatmap(const char *path, const hv_io_heatmap *m);

/* Line plot: series of (x, y) (x NULL: 0, 1, 2, ...; a NaN y breaks the
 * line), y range [ylo, yhi] when yhi > ylo (values clipped) else from the
 * data, dashed marks at given y, end labels instead of x ticks when xleft or
 * xright is set. */
typedef struct hv_io_series {
    const char *name;
    int n;
    const double *x, *y;
} hv_io_series;
typedef struct hv_io_lines {
    const char *title, *xlabel, *ylabel;
    const char *xleft, *xright;
    int n_series;
    const hv_io_series *series;
    double ylo, yhi;
    int n_marks;
    const double *marks;
} hv_io_lines;
hv_status hv_io_plot_lines(const char *path, const hv_io_lines *p);

#ifdef __cplusplus
}
#endif
#endif /* HV_IO_H */
