/*
 * store_internal.h: what the files of src/store share (not public).
 *
 * The store handle's fields, the compound types of the rows (schema.c), and
 * the HDF5 helpers of h5util.c: the diagnosis of a failed HDF5 call (the
 * operating system's reason, not only HDF5's innermost message), scalar
 * attributes, and raw-data writes of a run of rows. Every file of the module
 * reads and writes the schema through these, so there is one definition of
 * each type and one way an HDF5 failure is reported.
 */
#ifndef HV_STORE_INTERNAL_H
#define HV_STORE_INTERNAL_H

#include <errno.h>
#include <hdf5.h>

#include "hv/store.h"

struct hv_store {
    hid_t file;
    hid_t cases, status, verts, images, qc;
    hid_t vol[HV_STORE_N_VOL];        /* /vertebrae/<hv_store_vol_name>; -1  */
                                      /* when absent or opened through      */
                                      /* MPI-IO                             */
    int has_vol[HV_STORE_N_VOL];      /* the file has that dataset          */
    hid_t seconds;                    /* /cases/seconds; -1 in a v1 store    */
    long n_cases;
    int n_img;
    int mpi;
    int version;                      /* /@schema_version: 1 to 4            */
    int n_stages;                     /* stage names, from the file          */
    char stage_buf[HV_STORE_MAX_STAGES][HV_STORE_STAGE_NAME_MAX];
    const char *stage_ptr[HV_STORE_MAX_STAGES];
};

/* Schema v1 kept per-stage seconds as a fixed array in the case row: six
 * stages with these names, float64[6] at byte 856 of a 904-byte row. Fixed
 * numbers, not offsetof: they describe files already written. */
#define HV_STORE_V1_STAGES 6
#define HV_STORE_V1_CROW_SIZE 904
#define HV_STORE_V1_SECONDS_OFFSET 856
extern const char *const hv_store_v1_stage_names[HV_STORE_V1_STAGES];

/* ------------------------------------------------------- errors (h5util.c) */

/* HV_ERR_HDF5 with the message and the HDF5 reason appended (the OS's or
 * MPI's own message when the error stack carries one); `err` is the errno
 * the failing call left (0: none). */
hv_status hv_h5_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Inside a function with `hv_status st` and a `done:` label: run expr and,
 * when it fails (< 0), set st through hv_h5_fail and goto done. */
#define H5CHK(expr, ...)                                                       \
    do {                                                                       \
        errno = 0;                                                             \
        if ((expr) < 0) {                                                      \
            st = hv_h5_fail(errno, __VA_ARGS__);                               \
            goto done;                                                         \
        }                                                                      \
    } while (0)

/* The same for a call that returns hv_status (the attribute helpers below):
 * H5CHK would let their failures through, hv_status errors being > 0. */
#define ATTRCHK(expr)                                                          \
    do {                                                                       \
        if ((st = (expr)) != HV_OK) goto done;                                 \
    } while (0)

/* Turn off HDF5's automatic printing of its error stack (we report). */
void hv_h5_quiet(void);

/* --------------------------------------------------- attributes (h5util.c) */

/* A fixed-length, NUL-terminated string type of n bytes (H5Tclose it). */
hid_t hv_h5_str_type(size_t n);
/* Write a scalar attribute, replacing one of the same name. */
hv_status hv_h5_attr_str(hid_t obj, const char *name, const char *value);
hv_status hv_h5_attr_int(hid_t obj, const char *name, long value);
hv_status hv_h5_attr_double(hid_t obj, const char *name, double value);
/* Read a string attribute into a new string (free() it); NULL when absent
 * or not a fixed-length string. */
char *hv_h5_read_attr_str(hid_t obj, const char *name);
/* Read a numeric attribute: 1 when read, 0 when absent or unreadable. */
int hv_h5_read_attr_long(hid_t obj, const char *name, long *out);
int hv_h5_read_attr_double(hid_t obj, const char *name, double *out);

/* --------------------------------------------------- raw writes (h5util.c) */

/* Write `count` rows from `start` of dataset d (rank 1..5; `inner` holds the
 * rank-1 inner dimensions, NULL for rank 1) from buf of memory type `type`.
 * A failed write says why in the OS's words (a full disk: ENOSPC, a file
 * size limit: EFBIG), also where HDF5's MPI-IO driver does not. */
hv_status hv_h5_write_rows(hid_t d, hid_t type, hsize_t start, hsize_t count, int rank,
                           const hsize_t *inner, const void *buf);

/* ------------------------------------------------- row types (schema.c) */

/* The HDF5 compound types of hv_run_crow and hv_run_vrow (built from
 * offsetof: memory and file layouts are the same) and the status enum.
 * H5Tclose each. */
hid_t hv_store_crow_type(void);
/* /vertebrae/<hv_store_vol_name(w)> in group g for nv slots, with its
 * "meaning" attribute (images.c); -1 on failure. */
hid_t hv_store_make_vol(hid_t g, int w, hsize_t nv);
hid_t hv_store_vrow_type(void);
/* The vertebra row of stores written before the attention columns
 * (p_fracture, cam_mass_body, cam_max_slice): read with hv_store_vrow_type
 * (HDF5 converts by member name; the readers fill the missing ones with
 * "no value" first, hv_run_vrow_attn_none). */
hid_t hv_store_vrow_type_noattn(void);
hid_t hv_store_status_type(void);
/* The file type of a v1 /cases/table (the v2 members plus `seconds`). */
hid_t hv_store_crow_v1_type(void);

/* ------------------------------------------------------ images (images.c) */

/* Create /images/planes (dims: N*S, n_img, I, I: chunked one case of S
 * slots a chunk, shuffle + deflate) and /images/qc (vlen uint8[nv], chunked
 * one case a chunk) in group g of a new store; < 0 on failure. */
hid_t hv_store_make_planes(hid_t g, const hsize_t *dims);
hid_t hv_store_make_qc(hid_t g, hsize_t nv);
/* The file type of /images/qc in v3 (H5Tclose it). */
hid_t hv_store_qc_png_type(void);
/* v3: the QC slots 0..nv of case ci are each empty or a PNG whose header
 * says 8-bit grey 256 x 1024 (no decoding); *bad_k is the first slot that
 * is not, -1 when all are. HV_OK unless the slots cannot be read. */
hv_status hv_store_qc_check_case(hv_store *s, long ci, int nv, int *bad_k);

/* *written = 1 when vertebra slot `slot` of crop volume w has a chunk in
 * the file (a crop was stored there), 0 when it has none (reads as the fill
 * value, 0). Serially opened store with that dataset only. */
hv_status hv_store_vol_written(hv_store *s, int w, long slot, int *written);

/* ------------------------------------------------- stage names (stages.c) */

/* Copy names[0..n) (already checked) into the handle. */
void hv_store_set_stages(hv_store *s, int n, const char *const *names);
/* Read /cases/stage_names of a v2 store into the handle; HV_ERR_FORMAT
 * when it is missing, not strings, or not a valid stage list. */
hv_status hv_store_load_stages(hv_store *s);
/* The type of /cases/stage_names (H5Tclose it). */
hid_t hv_store_stage_name_type(void);

/* The whole tables of an open store, as describe and export read them:
 * every case row and status byte, the per-stage seconds (n_cases x
 * n_stages) and the used vertebra rows of done cases. Every array is the
 * caller's to free(), also after a failure (then some may be NULL). */
hv_status hv_store_read_tables(hv_store *s, hv_run_crow **cr, uint8_t **stt, double **secs,
                               hv_run_vrow **vr, size_t *nv);

#endif /* HV_STORE_INTERNAL_H */
