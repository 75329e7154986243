/*
 * store.c: the run's HDF5 store, schema v1 (docs/hdf5-schema.md).
 *
 * Parallel HDF5 requires every structural change (file, groups, datasets,
 * attributes) to be collective with identical arguments, while ranks finish
 * cases at different times. So the file is laid out once, serially, before
 * the ranks open it: rank 0 creates every dataset at its final size with
 * early allocation (contiguous, no fill), closes the file, and only then do
 * all ranks open it through MPI-IO. From there on ranks do nothing but
 * independent raw-data writes into their own slots, which touch no HDF5
 * metadata at all: a rank killed mid-write cannot damage the file's
 * structure, only leave its own slot half-written, and a case counts as done
 * only when its status byte (written last) says so. The grader results and
 * the end-of-run attributes are written afterwards by rank 0 alone, on a
 * serially reopened file. No compression: parallel filters need collective
 * writes, which a dynamic queue cannot provide.
 *
 * Over 1,000 lines because it still holds five jobs: the schema and its
 * creation, per-case writes, validation/description (`inspect`), export
 * (`export`, QC PNGs) and the write-error diagnosis. They move into their
 * own files under src/store with the pipeline issue (10), which also brings
 * schema v2; until then they stay together so the schema has one reader.
 *
 * Layout (N cases, S = 26 vertebra slots per case):
 *   /                      attrs schema, schema_version, state, max_vert, img_size, n_img
 *   /provenance            attrs config, version, git_revision, hdf5_version,
 *                          mpi_library, ranks, attempt, started_utc, ended_utc, input_root
 *   /cases/table           compound[N]       (hv_run_crow)
 *   /cases/status          enum u8[N]        pending | done | failed (written last)
 *   /vertebrae/table       compound[N*S]     (hv_run_vrow), slot case*S + k
 *   /images/planes         float32[N*S][n_img][32][32]   (output.images != none)
 *   /images/qc             uint8[N*S][2][2][256][256]    (output.images != none;
 *                          optional in v1: stores written before it lack it)
 *   /grader                (after gather) attrs + confusion, classes, folds
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "hv/io.h"
#include "hv/store.h"

struct hv_store {
    hid_t file;
    hid_t cases, status, verts, images, qc;
    long n_cases;
    int n_img;
    int mpi;
};

/* The reason of the HDF5 failure just seen, from the library's error stack
 * (H5Ewalk2): the operating system's or MPI's own message when an entry
 * carries one ("error message = '...'" from the sec2 driver, "MPI error
 * string is '...'" from the MPI-IO driver), else the innermost entry's
 * description. Every rank's message then says why (a full disk says "No
 * space left on device" on every rank, not only where a journal write
 * failed). Empty when the stack is empty. */
typedef struct {
    char inner[256];
    char os[256];
} h5_why;

static void h5_extract(const char *desc, const char *tag, char *out, size_t cap)
{
    const char *p = strstr(desc, tag);
    if (!p || out[0]) return;
    p += strlen(tag);
    const char *q = strchr(p, '\'');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *user)
{
    h5_why *w = user;
    const char *d = e->desc ? e->desc : "";
    if (n == 0) snprintf(w->inner, sizeof w->inner, "%s", d);
    h5_extract(d, "error message = '", w->os, sizeof w->os);
    h5_extract(d, "MPI error string is '", w->os, sizeof w->os);
    return 0;
}

static const char *h5_reason(char *buf, size_t cap, int err)
{
    h5_why w;
    memset(&w, 0, sizeof w);
    buf[0] = 0;
    if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk, &w) < 0) return buf;
    /* HDF5 1.10's MPI-IO driver reports a short write only as "file write
     * failed": then the errno the failing call left (cleared before it) is
     * the reason */
    if (!w.os[0] && err) snprintf(w.os, sizeof w.os, "%s", strerror(err));
    if (w.os[0] && w.inner[0] && !strstr(w.inner, w.os))
        snprintf(buf, cap, ": %s (HDF5: %.120s)", w.os, w.inner);
    else if (w.os[0]) snprintf(buf, cap, ": %s", w.os);
    else if (w.inner[0]) snprintf(buf, cap, " (HDF5: %s)", w.inner);
    return buf;
}

/* HV_ERR_HDF5 with the message and the HDF5 reason appended; `err` is the
 * errno the failing call left (0: none). */
static hv_status h5_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static hv_status h5_fail(int err, const char *fmt, ...)
{
    char why[600], msg[1024];
    h5_reason(why, sizeof why, err); /* first: nothing below touches HDF5 */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hv_error_set(HV_ERR_HDF5, "%s%s", msg, why);
}

#define H5CHK(expr, ...)                                                       \
    do {                                                                       \
        errno = 0;                                                             \
        if ((expr) < 0) {                                                      \
            st = h5_fail(errno, __VA_ARGS__);                                  \
            goto done;                                                         \
        }                                                                      \
    } while (0)

static void quiet_hdf5(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* -------------------------------------------------------------- row helpers */

const char *const hv_stage_names[HV_STAGE_COUNT] = {
    "load", "measure", "synthesis", "grade", "images", "journal"};

const char *hv_case_state_name(int s)
{
    switch (s) {
    case HV_CASE_PENDING: return "pending";
    case HV_CASE_DONE: return "done";
    case HV_CASE_FAILED: return "failed";
    default: return "invalid";
    }
}

void hv_case_result_clear(hv_case_result *r)
{
    free(r->img);
    free(r->qc);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ types */

static hid_t str_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

static hid_t crow_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(hv_run_crow));
    hid_t s64 = str_type(64), s256 = str_type(256);
    hsize_t ns = HV_STAGE_COUNT;
    hid_t sec = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &ns);
    H5Tinsert(t, "id", offsetof(hv_run_crow, id), s64);
    H5Tinsert(t, "ct_path", offsetof(hv_run_crow, ct_path), s256);
    H5Tinsert(t, "mask_path", offsetof(hv_run_crow, mask_path), s256);
    H5Tinsert(t, "error", offsetof(hv_run_crow, error), s256);
    H5Tinsert(t, "error_code", offsetof(hv_run_crow, error_code), H5T_NATIVE_INT32);
    H5Tinsert(t, "rank", offsetof(hv_run_crow, rank), H5T_NATIVE_INT32);
    H5Tinsert(t, "attempt", offsetof(hv_run_crow, attempt), H5T_NATIVE_INT32);
    H5Tinsert(t, "n_vert", offsetof(hv_run_crow, n_vert), H5T_NATIVE_INT32);
    H5Tinsert(t, "cost", offsetof(hv_run_crow, cost), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "seconds", offsetof(hv_run_crow, seconds), sec);
    H5Tclose(s64);
    H5Tclose(s256);
    H5Tclose(sec);
    return t;
}

static hid_t vrow_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(hv_run_vrow));
    hid_t s8 = str_type(8);
    hsize_t n3 = 3, n4 = HV_REG_COUNT;
    hid_t a3 = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &n3);
    hid_t a4 = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &n4);
    H5Tinsert(t, "case_index", offsetof(hv_run_vrow, case_index), H5T_NATIVE_INT32);
    H5Tinsert(t, "label", offsetof(hv_run_vrow, label), H5T_NATIVE_INT32);
    H5Tinsert(t, "level", offsetof(hv_run_vrow, level), s8);
    H5Tinsert(t, "known_grade", offsetof(hv_run_vrow, known_grade), H5T_NATIVE_INT32);
    H5Tinsert(t, "split_set", offsetof(hv_run_vrow, split_set), H5T_NATIVE_INT32);
    H5Tinsert(t, "grade_rule", offsetof(hv_run_vrow, grade_rule), H5T_NATIVE_INT32);
    H5Tinsert(t, "grade_pred", offsetof(hv_run_vrow, grade_pred), H5T_NATIVE_INT32);
    H5Tinsert(t, "flags", offsetof(hv_run_vrow, flags), H5T_NATIVE_UINT32);
    H5Tinsert(t, "pad_", offsetof(hv_run_vrow, pad_), H5T_NATIVE_INT32);
    H5Tinsert(t, "volume_ml", offsetof(hv_run_vrow, volume_ml), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "mean_hu", offsetof(hv_run_vrow, mean_hu), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "centroid", offsetof(hv_run_vrow, centroid), a3);
    H5Tinsert(t, "h_ori", offsetof(hv_run_vrow, h_ori), a4);
    H5Tinsert(t, "h_syn", offsetof(hv_run_vrow, h_syn), a4);
    H5Tinsert(t, "rhlv", offsetof(hv_run_vrow, rhlv), a4);
    H5Tclose(s8);
    H5Tclose(a3);
    H5Tclose(a4);
    return t;
}

static hid_t status_type(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_UINT8);
    uint8_t v;
    v = HV_CASE_PENDING;
    H5Tenum_insert(t, "pending", &v);
    v = HV_CASE_DONE;
    H5Tenum_insert(t, "done", &v);
    v = HV_CASE_FAILED;
    H5Tenum_insert(t, "failed", &v);
    return t;
}

/* ------------------------------------------------------------- attributes */

static hv_status attr_str(hid_t obj, const char *name, const char *value)
{
    hv_status st = HV_OK;
    hid_t t = str_type(strlen(value) + 1), sp = H5Screate(H5S_SCALAR), a = -1;
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(a, "cannot create attribute %s", name);
    H5CHK(H5Awrite(a, t, value), "cannot write attribute %s", name);
done:
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return st;
}

static hv_status attr_int(hid_t obj, const char *name, long value)
{
    hv_status st = HV_OK;
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    int64_t v = value;
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(a, "cannot create attribute %s", name);
    H5CHK(H5Awrite(a, H5T_NATIVE_INT64, &v), "cannot write attribute %s", name);
done:
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return st;
}

static hv_status attr_double(hid_t obj, const char *name, double value)
{
    hv_status st = HV_OK;
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(a, "cannot create attribute %s", name);
    H5CHK(H5Awrite(a, H5T_NATIVE_DOUBLE, &value), "cannot write attribute %s", name);
done:
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return st;
}

/* Read a string attribute into a new string; NULL when absent or not a string. */
static char *read_attr_str(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        hid_t mt = str_type(n + 1);
        out = calloc(1, n + 2);
        if (out && H5Aread(a, mt, out) < 0) {
            free(out);
            out = NULL;
        }
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

static int read_attr_long(hid_t obj, const char *name, long *out)
{
    if (H5Aexists(obj, name) <= 0) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    int64_t v = 0;
    int ok = H5Aread(a, H5T_NATIVE_INT64, &v) >= 0;
    H5Aclose(a);
    if (ok) *out = (long)v;
    return ok;
}

static int read_attr_double(hid_t obj, const char *name, double *out)
{
    if (H5Aexists(obj, name) <= 0) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    int ok = H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0;
    H5Aclose(a);
    return ok;
}

hv_status hv_store_set_attr_str(hv_store *s, const char *obj, const char *name,
                                const char *value)
{
    hid_t o = H5Oopen(s->file, obj, H5P_DEFAULT);
    if (o < 0) return hv_error_set(HV_ERR_HDF5, "store: no object %s", obj);
    hv_status st = attr_str(o, name, value);
    H5Oclose(o);
    return st;
}

/* ----------------------------------------------------------------- create */

static hid_t make_dataset(hid_t loc, const char *name, hid_t type, int rank,
                          const hsize_t *dims)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

static void store_free(hv_store *s)
{
    if (!s) return;
    if (s->qc >= 0) H5Dclose(s->qc);
    if (s->images >= 0) H5Dclose(s->images);
    if (s->verts >= 0) H5Dclose(s->verts);
    if (s->status >= 0) H5Dclose(s->status);
    if (s->cases >= 0) H5Dclose(s->cases);
    if (s->file >= 0) H5Fclose(s->file);
    free(s);
}

static hv_store *store_alloc(void)
{
    hv_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->file = s->cases = s->status = s->verts = s->images = s->qc = -1;
    return s;
}

hv_status hv_store_create(const char *path, const hv_store_create_info *info,
                          const hv_run_crow *cases, hv_store **out)
{
    *out = NULL;
    quiet_hdf5();
    hv_status st = HV_OK;
    hid_t g = -1, ct = -1, vt = -1, et = -1, fapl = -1;
    uint8_t *stat0 = NULL;
    hv_store *s = store_alloc();
    if (!s) return hv_error_set(HV_ERR_NOMEM, "store: out of memory");
    s->n_cases = info->n_cases;
    s->n_img = info->n_img;

    /* 1 MiB alignment for big objects keeps ranks' slots off shared FS blocks
     * only where it matters (large datasets); small metadata stays packed. */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_alignment(fapl, 1 << 20, 1 << 20);
    s->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5CHK(s->file, "cannot create store %s", path);

    H5CHK(attr_str(s->file, "schema", "healthivert-store"), "attr");
    H5CHK(attr_int(s->file, "schema_version", HV_STORE_SCHEMA_VERSION), "attr");
    H5CHK(attr_str(s->file, "state", "running"), "attr");
    H5CHK(attr_int(s->file, "max_vert", HV_RUN_MAX_VERT), "attr");
    H5CHK(attr_int(s->file, "img_size", HV_RUN_IMG), "attr");
    H5CHK(attr_int(s->file, "n_img", info->n_img), "attr");

    g = H5Gcreate2(s->file, "provenance", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(g, "cannot create /provenance");
    {
        char mpiver[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int len = 0;
        MPI_Get_library_version(mpiver, &len);
        char *nl = strchr(mpiver, '\n');
        if (nl) *nl = 0;
        char *comma = strchr(mpiver, ',');
        if (comma) *comma = 0;
        unsigned maj, min, rel;
        H5get_libversion(&maj, &min, &rel);
        char h5ver[32];
        snprintf(h5ver, sizeof h5ver, "%u.%u.%u", maj, min, rel);
        st = attr_str(g, "config", info->config_text ? info->config_text : "");
        if (st == HV_OK) st = attr_str(g, "version", hv_version());
        if (st == HV_OK) st = attr_str(g, "git_revision", hv_git_revision());
        if (st == HV_OK) st = attr_str(g, "hdf5_version", h5ver);
        if (st == HV_OK) st = attr_str(g, "mpi_library", mpiver);
        if (st == HV_OK) st = attr_int(g, "ranks", info->ranks);
        if (st == HV_OK) st = attr_int(g, "attempt", info->attempt);
        if (st == HV_OK) st = attr_str(g, "started_utc", info->started_utc);
        if (st == HV_OK) st = attr_str(g, "ended_utc", "");
        if (st == HV_OK) st = attr_str(g, "input_root", info->input_root ? info->input_root : "");
        if (st != HV_OK) goto done;
    }
    H5Gclose(g);
    g = -1;

    hsize_t n = (hsize_t)info->n_cases;
    hsize_t nv = n * HV_RUN_MAX_VERT;
    ct = crow_type();
    vt = vrow_type();
    et = status_type();
    g = H5Gcreate2(s->file, "cases", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(g, "cannot create /cases");
    s->cases = make_dataset(g, "table", ct, 1, &n);
    H5CHK(s->cases, "cannot create /cases/table");
    s->status = make_dataset(g, "status", et, 1, &n);
    H5CHK(s->status, "cannot create /cases/status");
    H5Gclose(g);
    g = H5Gcreate2(s->file, "vertebrae", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(g, "cannot create /vertebrae");
    s->verts = make_dataset(g, "table", vt, 1, &nv);
    H5CHK(s->verts, "cannot create /vertebrae/table");
    H5Gclose(g);
    g = -1;
    if (info->n_img > 0) {
        g = H5Gcreate2(s->file, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(g, "cannot create /images");
        hsize_t d4[4] = {nv, (hsize_t)info->n_img, HV_RUN_IMG, HV_RUN_IMG};
        s->images = make_dataset(g, "planes", H5T_IEEE_F32LE, 4, d4);
        H5CHK(s->images, "cannot create /images/planes");
        H5CHK(attr_str(s->images, "planes", info->n_img == 1 ? "loss" : "loss,h_ori,h_syn"),
              "attr");
        H5CHK(attr_str(s->images, "units", "loss: fraction; h_ori, h_syn: mm"), "attr");
        hsize_t d5[5] = {nv, HV_QC_VIEWS, HV_QC_CHANNELS, HV_RUN_QC, HV_RUN_QC};
        s->qc = make_dataset(g, "qc", H5T_STD_U8LE, 5, d5);
        H5CHK(s->qc, "cannot create /images/qc");
        H5CHK(attr_str(s->qc, "views", "sagittal,coronal"), "attr");
        H5CHK(attr_str(s->qc, "channels", "ct,label"), "attr");
        H5CHK(attr_str(s->qc, "meaning",
                       "straightened crop of the vertebra: mid-sagittal and mid-coronal slice, "
                       "row 0 cranial; ct = HU window [-300, 800] as 0..255; label = 255 inside "
                       "the target's de-pedicled body label; all zero = no picture"),
              "attr");
        H5Gclose(g);
        g = -1;
    }

    if (n > 0) {
        H5CHK(H5Dwrite(s->cases, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, cases),
              "cannot write /cases/table");
        stat0 = calloc((size_t)n, 1);
        if (!stat0) {
            st = hv_error_set(HV_ERR_NOMEM, "store: out of memory");
            goto done;
        }
        H5CHK(H5Dwrite(s->status, et, H5S_ALL, H5S_ALL, H5P_DEFAULT, stat0),
              "cannot write /cases/status");
    }
    *out = s;
    s = NULL;
done:
    free(stat0);
    if (g >= 0) H5Gclose(g);
    if (ct >= 0) H5Tclose(ct);
    if (vt >= 0) H5Tclose(vt);
    if (et >= 0) H5Tclose(et);
    if (fapl >= 0) H5Pclose(fapl);
    store_free(s);
    return st;
}

/* ------------------------------------------------------------------- open */

static hv_status open_objects(hv_store *s)
{
    hv_status st = HV_OK;
    long ver = 0;
    if (!read_attr_long(s->file, "schema_version", &ver))
        return hv_error_set(HV_ERR_FORMAT, "not a healthivert store (no schema_version)");
    if (ver != HV_STORE_SCHEMA_VERSION)
        return hv_error_set(HV_ERR_FORMAT, "store schema version %ld; this build reads %d", ver,
                            HV_STORE_SCHEMA_VERSION);
    s->cases = H5Dopen2(s->file, "cases/table", H5P_DEFAULT);
    H5CHK(s->cases, "store: no /cases/table");
    s->status = H5Dopen2(s->file, "cases/status", H5P_DEFAULT);
    H5CHK(s->status, "store: no /cases/status");
    s->verts = H5Dopen2(s->file, "vertebrae/table", H5P_DEFAULT);
    H5CHK(s->verts, "store: no /vertebrae/table");
    hid_t sp = H5Dget_space(s->cases);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    s->n_cases = (long)n;
    long ni = 0;
    read_attr_long(s->file, "n_img", &ni);
    s->n_img = (int)ni;
    if (s->n_img > 0) {
        s->images = H5Dopen2(s->file, "images/planes", H5P_DEFAULT);
        H5CHK(s->images, "store: no /images/planes although n_img = %d", s->n_img);
        /* optional within v1 (stores written before the QC pictures lack it) */
        if (H5Lexists(s->file, "images/qc", H5P_DEFAULT) > 0) {
            s->qc = H5Dopen2(s->file, "images/qc", H5P_DEFAULT);
            H5CHK(s->qc, "store: cannot open /images/qc");
        }
    }
done:
    return st;
}

hv_status hv_store_open_mpi(const char *path, MPI_Comm comm, hv_store **out)
{
    *out = NULL;
    quiet_hdf5();
    hv_status st = HV_OK;
    hv_store *s = store_alloc();
    if (!s) return hv_error_set(HV_ERR_NOMEM, "store: out of memory");
    s->mpi = 1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    /* every rank opens the same objects: metadata reads done once, collectively */
    H5Pset_all_coll_metadata_ops(fapl, 1);
    s->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    H5CHK(s->file, "cannot open store %s through MPI-IO", path);
    st = open_objects(s);
    if (st != HV_OK) goto done;
    *out = s;
    s = NULL;
done:
    store_free(s);
    return st;
}

hv_status hv_store_open_serial(const char *path, int writable, hv_store **out)
{
    *out = NULL;
    quiet_hdf5();
    hv_status st = HV_OK;
    struct stat sb;
    if (stat(path, &sb) != 0) return hv_error_set(HV_ERR_NOT_FOUND, "no store at %s", path);
    hv_store *s = store_alloc();
    if (!s) return hv_error_set(HV_ERR_NOMEM, "store: out of memory");
    s->file = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
    H5CHK(s->file, "cannot open store %s (not an HDF5 file, or damaged)", path);
    st = open_objects(s);
    if (st != HV_OK) {
        hv_error_wrap(st, "%s", path);
        goto done;
    }
    *out = s;
    s = NULL;
done:
    store_free(s);
    return st;
}

hv_status hv_store_close(hv_store *s)
{
    if (!s) return HV_OK;
    hv_status st = HV_OK;
    if (s->qc >= 0) H5Dclose(s->qc);
    if (s->images >= 0) H5Dclose(s->images);
    if (s->verts >= 0) H5Dclose(s->verts);
    if (s->status >= 0) H5Dclose(s->status);
    if (s->cases >= 0) H5Dclose(s->cases);
    errno = 0;
    if (s->file >= 0 && H5Fclose(s->file) < 0) st = h5_fail(errno, "store: close failed");
    free(s);
    return st;
}

long hv_store_n_cases(const hv_store *s) { return s->n_cases; }
int hv_store_n_img(const hv_store *s) { return s->n_img; }

/* ------------------------------------------------------------------ write */

/* Why a raw-data write of `bytes` bytes into d's file failed, as an errno:
 * the one the call left, else what the file system says (HDF5 1.10's MPI-IO
 * driver sees a short write and reports only "file write failed"): ENOSPC
 * when fewer bytes are free than the write needed, EFBIG when the file is
 * larger than this process's RLIMIT_FSIZE; 0 when neither explains it. */
static int write_errno(hid_t d, int err, size_t bytes)
{
    if (err) return err;
    char name[4096];
    ssize_t n = H5Fget_name(d, name, sizeof name);
    if (n <= 0 || (size_t)n >= sizeof name) return 0;
    struct statvfs vs;
    if (statvfs(name, &vs) == 0 && (double)vs.f_bavail * (double)vs.f_frsize < (double)bytes)
        return ENOSPC;
    struct rlimit rl;
    struct stat sb;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && stat(name, &sb) == 0 &&
        (rlim_t)sb.st_size >= rl.rlim_cur)
        return EFBIG;
    return 0;
}

static hv_status write_rows(hid_t d, hid_t type, hsize_t start, hsize_t count, int rank,
                            const hsize_t *inner, const void *buf)
{
    hv_status st = HV_OK;
    hsize_t st4[5] = {start, 0, 0, 0, 0}, ct4[5] = {count, 0, 0, 0, 0};
    for (int i = 1; i < rank && i < 5; i++) ct4[i] = inner[i - 1];
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, ct4, NULL);
    H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, st4, NULL, ct4, NULL), "store: selection");
    errno = 0;
    if (H5Dwrite(d, type, ms, fs, H5P_DEFAULT, buf) < 0) {
        int e = errno;
        hid_t stack = H5Eget_current_stack(); /* the calls below would clear it */
        size_t bytes = (size_t)H5Sget_select_npoints(ms) * H5Tget_size(type);
        e = write_errno(d, e, bytes);
        if (stack >= 0) H5Eset_current_stack(stack);
        st = h5_fail(e, "store: write failed");
        goto done;
    }
done:
    H5Sclose(ms);
    H5Sclose(fs);
    return st;
}

hv_status hv_store_put_case(hv_store *s, long ci, const hv_case_result *r)
{
    if (ci < 0 || ci >= s->n_cases) return hv_error_set(HV_ERR_ARG, "store: case %ld out of range", ci);
    hv_status st = HV_OK;
    hid_t ct = crow_type(), vt = vrow_type(), et = status_type();
    uint8_t *blank = NULL;
    int nv = r->state == HV_CASE_DONE ? r->c.n_vert : 0;
    if (nv > 0) {
        hv_run_vrow rows[HV_RUN_MAX_VERT];
        memcpy(rows, r->v, (size_t)nv * sizeof rows[0]);
        for (int k = 0; k < nv; k++) rows[k].case_index = (int32_t)ci;
        st = write_rows(s->verts, vt, (hsize_t)ci * HV_RUN_MAX_VERT, (hsize_t)nv, 1, NULL, rows);
        if (st != HV_OK) goto done;
        if (s->images >= 0 && r->img && r->n_img == s->n_img) {
            hsize_t inner[3] = {(hsize_t)s->n_img, HV_RUN_IMG, HV_RUN_IMG};
            st = write_rows(s->images, H5T_NATIVE_FLOAT, (hsize_t)ci * HV_RUN_MAX_VERT,
                            (hsize_t)nv, 4, inner, r->img);
            if (st != HV_OK) goto done;
        }
        if (s->qc >= 0) {
            /* a done case always overwrites its slots: blank when it has no
             * pictures (a journal record of a build without them) */
            hsize_t inner[4] = {HV_QC_VIEWS, HV_QC_CHANNELS, HV_RUN_QC, HV_RUN_QC};
            const uint8_t *src = r->qc;
            if (!src && !(blank = calloc((size_t)nv, HV_RUN_QC_BYTES))) {
                st = hv_error_set(HV_ERR_NOMEM, "store: out of memory");
                goto done;
            }
            st = write_rows(s->qc, H5T_NATIVE_UINT8, (hsize_t)ci * HV_RUN_MAX_VERT, (hsize_t)nv,
                            5, inner, src ? src : blank);
            if (st != HV_OK) goto done;
        }
    }
    st = write_rows(s->cases, ct, (hsize_t)ci, 1, 1, NULL, &r->c);
    if (st != HV_OK) goto done;
    uint8_t sv = (uint8_t)r->state;
    st = write_rows(s->status, et, (hsize_t)ci, 1, 1, NULL, &sv);
done:
    free(blank);
    H5Tclose(ct);
    H5Tclose(vt);
    H5Tclose(et);
    if (st != HV_OK) hv_error_wrap(st, "writing case %ld", ci);
    return st;
}

/* ------------------------------------------------------------------- read */

hv_status hv_store_read_cases(hv_store *s, hv_run_crow *rows, uint8_t *status)
{
    hv_status st = HV_OK;
    hid_t ct = crow_type(), et = status_type();
    if (s->n_cases > 0) {
        if (rows)
            H5CHK(H5Dread(s->cases, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows),
                  "store: cannot read /cases/table");
        if (status)
            H5CHK(H5Dread(s->status, et, H5S_ALL, H5S_ALL, H5P_DEFAULT, status),
                  "store: cannot read /cases/status");
    }
done:
    H5Tclose(ct);
    H5Tclose(et);
    return st;
}

hv_status hv_store_read_vertebrae(hv_store *s, hv_run_vrow **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    hv_status st = HV_OK;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *out = NULL;
    hid_t vt = vrow_type();
    size_t nc = (size_t)s->n_cases;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    if (!cr || !stt) {
        st = hv_error_set(HV_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    st = hv_store_read_cases(s, cr, stt);
    if (st != HV_OK) goto done;
    size_t total = 0;
    for (size_t i = 0; i < nc; i++)
        if (stt[i] == HV_CASE_DONE && cr[i].n_vert > 0 && cr[i].n_vert <= HV_RUN_MAX_VERT)
            total += (size_t)cr[i].n_vert;
    out = malloc((total ? total : 1) * sizeof *out);
    if (!out) {
        st = hv_error_set(HV_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < nc; i++) {
        if (stt[i] != HV_CASE_DONE || cr[i].n_vert <= 0 || cr[i].n_vert > HV_RUN_MAX_VERT) continue;
        hsize_t start = (hsize_t)i * HV_RUN_MAX_VERT, cnt = (hsize_t)cr[i].n_vert;
        hid_t fs = H5Dget_space(s->verts), ms = H5Screate_simple(1, &cnt, NULL);
        herr_t e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL);
        if (e >= 0) e = H5Dread(s->verts, vt, ms, fs, H5P_DEFAULT, out + k);
        H5Sclose(ms);
        H5Sclose(fs);
        H5CHK(e, "store: cannot read vertebrae of case %zu", i);
        k += (size_t)cr[i].n_vert;
    }
    *rows = out;
    *n = total;
    out = NULL;
done:
    free(out);
    free(cr);
    free(stt);
    H5Tclose(vt);
    return st;
}

hv_status hv_store_set_pred(hv_store *s, const hv_run_vrow *rows, size_t n)
{
    hv_status st = HV_OK;
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(int32_t));
    H5Tinsert(mt, "grade_pred", 0, H5T_NATIVE_INT32);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int32_t buf[HV_RUN_MAX_VERT];
        while (j < n && rows[j].case_index == rows[i].case_index && j - i < HV_RUN_MAX_VERT) {
            buf[j - i] = rows[j].grade_pred;
            j++;
        }
        st = write_rows(s->verts, mt, (hsize_t)rows[i].case_index * HV_RUN_MAX_VERT,
                        (hsize_t)(j - i), 1, NULL, buf);
        if (st != HV_OK) break;
        i = j;
    }
    H5Tclose(mt);
    return st;
}

/* ----------------------------------------------------------------- grader */

hv_status hv_store_write_grader(hv_store *s, const hv_grader_result *g)
{
    hv_status st = HV_OK;
    hid_t grp = -1, d = -1, sp = -1;
    if (H5Lexists(s->file, "grader", H5P_DEFAULT) > 0) H5Ldelete(s->file, "grader", H5P_DEFAULT);
    grp = H5Gcreate2(s->file, "grader", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(grp, "cannot create /grader");
    if ((st = attr_str(grp, "method", g->method)) != HV_OK) goto done;
    if ((st = attr_str(grp, "evaluated_on", g->evaluated_on)) != HV_OK) goto done;
    if ((st = attr_str(grp, "note", g->note)) != HV_OK) goto done;
    if ((st = attr_int(grp, "have_metrics", g->have_metrics)) != HV_OK) goto done;
    if ((st = attr_int(grp, "n_folds", g->n_folds)) != HV_OK) goto done;
    if (g->have_metrics) {
        const hv_class_metrics *m = &g->m;
        if ((st = attr_double(grp, "macro_f1", m->macro_f1)) != HV_OK) goto done;
        if ((st = attr_double(grp, "macro_precision", m->macro_precision)) != HV_OK) goto done;
        if ((st = attr_double(grp, "macro_recall", m->macro_recall)) != HV_OK) goto done;
        if ((st = attr_double(grp, "accuracy", m->accuracy)) != HV_OK) goto done;
        if ((st = attr_double(grp, "kappa_linear", m->kappa_linear)) != HV_OK) goto done;
        hsize_t k = (hsize_t)m->n_classes;
        sp = H5Screate_simple(1, &k, NULL);
        d = H5Dcreate2(grp, "classes", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/classes");
        H5CHK(H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->classes), "write");
        H5Dclose(d);
        H5Sclose(sp);
        hsize_t kk[2] = {k, k};
        int64_t conf[16 * 16];
        for (int a = 0; a < m->n_classes; a++)
            for (int b = 0; b < m->n_classes; b++) conf[a * m->n_classes + b] = m->confusion[a][b];
        sp = H5Screate_simple(2, kk, NULL);
        d = H5Dcreate2(grp, "confusion", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/confusion");
        H5CHK(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, conf), "write");
        H5CHK(attr_str(d, "axes", "[true][predicted] over /grader/classes"), "attr");
        H5Dclose(d);
        H5Sclose(sp);
        d = sp = -1;
    }
    if (g->n_folds > 0) {
        hsize_t fd[2] = {(hsize_t)g->n_folds, 4};
        sp = H5Screate_simple(2, fd, NULL);
        d = H5Dcreate2(grp, "folds", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/folds");
        H5CHK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, g->fold_metrics),
              "write");
        H5CHK(attr_str(d, "columns", "macro_f1,macro_precision,macro_recall,accuracy"), "attr");
        H5Dclose(d);
        H5Sclose(sp);
        d = sp = -1;
        hsize_t two[2] = {2, 4};
        double mv[8];
        memcpy(mv, g->mean, sizeof g->mean);
        memcpy(mv + 4, g->var, sizeof g->var);
        sp = H5Screate_simple(2, two, NULL);
        d = H5Dcreate2(grp, "fold_mean_var", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT);
        H5CHK(d, "cannot create /grader/fold_mean_var");
        H5CHK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mv), "write");
    }
done:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (grp >= 0) H5Gclose(grp);
    return st;
}

hv_status hv_store_read_grader(hv_store *s, hv_grader_result *g, int *present)
{
    memset(g, 0, sizeof *g);
    *present = 0;
    if (H5Lexists(s->file, "grader", H5P_DEFAULT) <= 0) return HV_OK;
    hv_status st = HV_OK;
    hid_t grp = H5Gopen2(s->file, "grader", H5P_DEFAULT), d = -1;
    if (grp < 0) return hv_error_set(HV_ERR_HDF5, "store: cannot open /grader");
    char *t;
    if ((t = read_attr_str(grp, "method"))) snprintf(g->method, sizeof g->method, "%s", t), free(t);
    if ((t = read_attr_str(grp, "evaluated_on")))
        snprintf(g->evaluated_on, sizeof g->evaluated_on, "%s", t), free(t);
    if ((t = read_attr_str(grp, "note"))) snprintf(g->note, sizeof g->note, "%s", t), free(t);
    long v = 0;
    if (read_attr_long(grp, "have_metrics", &v)) g->have_metrics = (int)v;
    if (read_attr_long(grp, "n_folds", &v)) g->n_folds = (int)(v > 16 ? 16 : v);
    if (g->have_metrics) {
        hv_class_metrics *m = &g->m;
        read_attr_double(grp, "macro_f1", &m->macro_f1);
        read_attr_double(grp, "macro_precision", &m->macro_precision);
        read_attr_double(grp, "macro_recall", &m->macro_recall);
        read_attr_double(grp, "accuracy", &m->accuracy);
        read_attr_double(grp, "kappa_linear", &m->kappa_linear);
        d = H5Dopen2(grp, "classes", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/classes");
        hid_t sp = H5Dget_space(d);
        hsize_t k = 0;
        H5Sget_simple_extent_dims(sp, &k, NULL);
        H5Sclose(sp);
        if (k < 1 || k > 16) {
            st = hv_error_set(HV_ERR_FORMAT, "store: /grader/classes has %llu classes",
                              (unsigned long long)k);
            goto done;
        }
        m->n_classes = (int)k;
        H5CHK(H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->classes), "read");
        H5Dclose(d);
        int64_t conf[256];
        d = H5Dopen2(grp, "confusion", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/confusion");
        H5CHK(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, conf), "read");
        for (int a = 0; a < m->n_classes; a++)
            for (int b = 0; b < m->n_classes; b++) m->confusion[a][b] = (long)conf[a * m->n_classes + b];
        H5Dclose(d);
        d = -1;
    }
    if (g->n_folds > 0) {
        d = H5Dopen2(grp, "folds", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/folds");
        H5CHK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, g->fold_metrics), "read");
        H5Dclose(d);
        double mv[8];
        d = H5Dopen2(grp, "fold_mean_var", H5P_DEFAULT);
        H5CHK(d, "store: no /grader/fold_mean_var");
        H5CHK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mv), "read");
        memcpy(g->mean, mv, sizeof g->mean);
        memcpy(g->var, mv + 4, sizeof g->var);
        H5Dclose(d);
        d = -1;
    }
    *present = 1;
done:
    if (d >= 0) H5Dclose(d);
    H5Gclose(grp);
    return st;
}

/* ------------------------------------------------------------ text output */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

hv_status hv_store_describe(const char *path, char **text)
{
    *text = NULL;
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *vr = NULL;
    size_t nv = 0;
    sbuf b = {0};
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) return st;
    size_t nc = (size_t)s->n_cases;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    if (!cr || !stt) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_store_read_vertebrae(s, &vr, &nv)) != HV_OK) goto done;

    char *state = read_attr_str(s->file, "state");
    hid_t prov = H5Gopen2(s->file, "provenance", H5P_DEFAULT);
    char *ver = prov >= 0 ? read_attr_str(prov, "version") : NULL;
    char *rev = prov >= 0 ? read_attr_str(prov, "git_revision") : NULL;
    char *t0 = prov >= 0 ? read_attr_str(prov, "started_utc") : NULL;
    char *t1 = prov >= 0 ? read_attr_str(prov, "ended_utc") : NULL;
    long ranks = 0, attempt = 0;
    if (prov >= 0) {
        read_attr_long(prov, "ranks", &ranks);
        read_attr_long(prov, "attempt", &attempt);
        H5Gclose(prov);
    }
    sb_add(&b, "store:          %s\n", path);
    sb_add(&b, "schema:         healthivert-store v%d\n", HV_STORE_SCHEMA_VERSION);
    sb_add(&b, "state:          %s\n", state ? state : "?");
    sb_add(&b, "written by:     healthivert %s (git %s), %ld rank(s), attempt %ld\n",
           ver ? ver : "?", rev ? rev : "?", ranks, attempt);
    sb_add(&b, "started/ended:  %s / %s\n", t0 ? t0 : "?", t1 && *t1 ? t1 : "(not ended)");
    free(state);
    free(ver);
    free(rev);
    free(t0);
    free(t1);
    long cnt[3] = {0, 0, 0};
    double sec[HV_STAGE_COUNT] = {0};
    for (size_t i = 0; i < nc; i++) {
        if (stt[i] <= 2) cnt[stt[i]]++;
        if (stt[i] == HV_CASE_DONE)
            for (int k = 0; k < HV_STAGE_COUNT; k++) sec[k] += cr[i].seconds[k];
    }
    sb_add(&b, "cases:          %zu total, %ld done, %ld failed, %ld pending\n", nc, cnt[1], cnt[2],
           cnt[0]);
    sb_add(&b, "vertebrae:      %zu (in done cases)\n", nv);
    if (cnt[1] > 0) {
        sb_add(&b, "seconds/case:  ");
        for (int k = 0; k < HV_STAGE_COUNT; k++)
            sb_add(&b, " %s %.3f", hv_stage_names[k], sec[k] / (double)cnt[1]);
        sb_add(&b, "\n");
    }
    /* vertebrae by level and predicted (else rule) grade */
    if (nv > 0) {
        sb_add(&b, "\nvertebrae by level and grade (%s):\n",
               vr[0].grade_pred >= 0 ? "predicted by the grader" : "Genant rule");
        sb_add(&b, "  level      g0    g1    g2    g3   n/a\n");
        for (int lab = 1; lab <= 28; lab++) {
            long c[5] = {0};
            int any = 0;
            for (size_t i = 0; i < nv; i++) {
                if (vr[i].label != lab) continue;
                int g = vr[i].grade_pred >= 0 ? vr[i].grade_pred : vr[i].grade_rule;
                c[(g >= 0 && g <= 3) ? g : 4]++;
                any = 1;
            }
            if (any)
                sb_add(&b, "  %-6s %5ld %5ld %5ld %5ld %5ld\n", hv_label_name(lab) ? hv_label_name(lab) : "?",
                       c[0], c[1], c[2], c[3], c[4]);
        }
    }
    if (cnt[2] > 0) {
        long bykind[HV_STATUS_COUNT + 1] = {0};
        for (size_t i = 0; i < nc; i++)
            if (stt[i] == HV_CASE_FAILED)
                bykind[cr[i].error_code > 0 && cr[i].error_code < HV_STATUS_COUNT ? cr[i].error_code
                                                                                : HV_STATUS_COUNT]++;
        sb_add(&b, "\nfailures by kind:");
        const char *sep = " ";
        for (int k = 1; k <= HV_STATUS_COUNT; k++)
            if (bykind[k]) {
                sb_add(&b, "%s%ld %s", sep, bykind[k],
                       k < HV_STATUS_COUNT ? hv_status_name((hv_status)k) : "unknown");
                sep = ", ";
            }
        sb_add(&b, "\nfailures:\n");
        long shown = 0;
        for (size_t i = 0; i < nc; i++) {
            if (stt[i] != HV_CASE_FAILED) continue;
            if (shown++ < 100) sb_add(&b, "  %-16s %s\n", cr[i].id, cr[i].error);
        }
        if (shown > 100) sb_add(&b, "  ... and %ld more (cases.csv lists every one)\n", shown - 100);
    }
    hv_grader_result g;
    int present = 0;
    if ((st = hv_store_read_grader(s, &g, &present)) != HV_OK) goto done;
    if (present) {
        sb_add(&b, "\ngrader:         %s%s%s\n", g.method, *g.note ? " — " : "", g.note);
        if (g.have_metrics) {
            sb_add(&b, "metrics (%s): macro-F1 %.4f, precision %.4f, recall %.4f, accuracy %.4f, "
                       "linear kappa %.4f\n",
                   g.evaluated_on, g.m.macro_f1, g.m.macro_precision, g.m.macro_recall,
                   g.m.accuracy, g.m.kappa_linear);
            sb_add(&b, "confusion [true rows x predicted columns]:\n       ");
            for (int c = 0; c < g.m.n_classes; c++) sb_add(&b, " %5d", g.m.classes[c]);
            sb_add(&b, "\n");
            for (int r = 0; r < g.m.n_classes; r++) {
                sb_add(&b, "  %5d", g.m.classes[r]);
                for (int c = 0; c < g.m.n_classes; c++) sb_add(&b, " %5ld", g.m.confusion[r][c]);
                sb_add(&b, "\n");
            }
        }
        if (g.n_folds > 0)
            sb_add(&b, "folds: %d, mean macro-F1 %.4f (variance %.5f)\n", g.n_folds, g.mean[0],
                   g.var[0]);
    } else {
        sb_add(&b, "\ngrader:         (not run yet)\n");
    }
    if (b.oom) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    *text = b.p;
    b.p = NULL;
done:
    free(b.p);
    free(cr);
    free(stt);
    free(vr);
    hv_store_close(s);
    return st;
}

/* --------------------------------------------------------------- validate */

static int check_dims(hid_t d, int rank, const hsize_t *want)
{
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8];
    int r = H5Sget_simple_extent_ndims(sp);
    int ok = r == rank && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0;
    for (int i = 0; ok && i < rank; i++) ok = dims[i] == want[i];
    H5Sclose(sp);
    return ok;
}

/* The file type must equal ours member for member (names, offsets, types). */
static int check_type(hid_t d, hid_t want)
{
    hid_t ft = H5Dget_type(d);
    int ok = H5Tequal(ft, want) > 0;
    H5Tclose(ft);
    return ok;
}

static int finite_or_nan_ok(double x)
{
    return !isinf(x);
}

hv_status hv_store_validate(const char *path, char **report)
{
    if (report) *report = NULL;
    sbuf b = {0};
    long nprob = 0;
#define PROBLEM(...)                                                           \
    do {                                                                       \
        if (nprob < 50) sb_add(&b, __VA_ARGS__);                               \
        nprob++;                                                               \
    } while (0)
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *vr = NULL;
    hid_t ct = crow_type(), vt = vrow_type(), et = status_type();
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) {
        PROBLEM("cannot open: %s\n", hv_error_detail());
        goto finish;
    }
    char *schema = read_attr_str(s->file, "schema");
    if (!schema || strcmp(schema, "healthivert-store")) PROBLEM("/@schema is not 'healthivert-store'\n");
    free(schema);
    char *state = read_attr_str(s->file, "state");
    int complete = state && !strcmp(state, "complete");
    if (!state || (strcmp(state, "running") && strcmp(state, "interrupted") &&
                   strcmp(state, "partial") && !complete))
        PROBLEM("/@state is '%s' (running, interrupted, partial or complete)\n",
                state ? state : "(absent)");
    free(state);
    long mv = 0, isz = 0;
    if (!read_attr_long(s->file, "max_vert", &mv) || mv != HV_RUN_MAX_VERT)
        PROBLEM("/@max_vert is %ld (want %d)\n", mv, HV_RUN_MAX_VERT);
    if (!read_attr_long(s->file, "img_size", &isz) || isz != HV_RUN_IMG)
        PROBLEM("/@img_size is %ld (want %d)\n", isz, HV_RUN_IMG);
    if (s->n_img != 0 && s->n_img != 1 && s->n_img != 3) PROBLEM("/@n_img is %d\n", s->n_img);
    hid_t prov = H5Gopen2(s->file, "provenance", H5P_DEFAULT);
    if (prov < 0) {
        PROBLEM("/provenance is missing\n");
    } else {
        static const char *sa[] = {"config", "version", "git_revision", "hdf5_version",
                                   "mpi_library", "started_utc", "ended_utc", "input_root"};
        for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++) {
            char *v = read_attr_str(prov, sa[i]);
            if (!v) PROBLEM("/provenance/@%s is missing or not a string\n", sa[i]);
            else if (complete && !strcmp(sa[i], "ended_utc") && !*v)
                PROBLEM("complete store without /provenance/@ended_utc\n");
            free(v);
        }
        long r = 0;
        if (!read_attr_long(prov, "ranks", &r) || r < 1) PROBLEM("/provenance/@ranks is %ld\n", r);
        if (!read_attr_long(prov, "attempt", &r) || r < 1) PROBLEM("/provenance/@attempt is %ld\n", r);
        H5Gclose(prov);
    }
    hsize_t n = (hsize_t)s->n_cases, nvs = n * HV_RUN_MAX_VERT;
    if (!check_type(s->cases, ct)) PROBLEM("/cases/table has an unexpected type\n");
    if (!check_type(s->status, et)) PROBLEM("/cases/status has an unexpected type\n");
    if (!check_type(s->verts, vt)) PROBLEM("/vertebrae/table has an unexpected type\n");
    if (!check_dims(s->status, 1, &n)) PROBLEM("/cases/status length differs from /cases/table\n");
    if (!check_dims(s->verts, 1, &nvs)) PROBLEM("/vertebrae/table is not %d slots per case\n", HV_RUN_MAX_VERT);
    if (s->images >= 0) {
        hsize_t d4[4] = {nvs, (hsize_t)s->n_img, HV_RUN_IMG, HV_RUN_IMG};
        if (!check_dims(s->images, 4, d4)) PROBLEM("/images/planes has unexpected dimensions\n");
    }
    if (s->qc >= 0) {
        hsize_t d5[5] = {nvs, HV_QC_VIEWS, HV_QC_CHANNELS, HV_RUN_QC, HV_RUN_QC};
        if (!check_dims(s->qc, 5, d5)) PROBLEM("/images/qc has unexpected dimensions\n");
        if (!check_type(s->qc, H5T_STD_U8LE)) PROBLEM("/images/qc is not uint8\n");
    } else if (H5Lexists(s->file, "images/qc", H5P_DEFAULT) > 0) {
        PROBLEM("/images/qc present although /@n_img = 0\n");
    }
    if (nprob) goto finish;

    size_t nc = (size_t)n;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    if (!cr || !stt) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto finish;
    }
    if (hv_store_read_cases(s, cr, stt) != HV_OK) {
        PROBLEM("cannot read the cases: %s\n", hv_error_detail());
        goto finish;
    }
    long done_n = 0;
    for (size_t i = 0; i < nc; i++) {
        const hv_run_crow *c = &cr[i];
        if (!memchr(c->id, 0, sizeof c->id) || !c->id[0]) PROBLEM("case %zu: empty id\n", i);
        if (i > 0 && strcmp(cr[i - 1].id, c->id) >= 0)
            PROBLEM("case %zu: ids not strictly increasing ('%s' after '%s')\n", i, c->id, cr[i - 1].id);
        if (stt[i] > 2) {
            PROBLEM("case %s: status %u\n", c->id, stt[i]);
            continue;
        }
        if (complete && stt[i] == HV_CASE_PENDING) PROBLEM("case %s: pending in a complete store\n", c->id);
        if (stt[i] == HV_CASE_DONE) {
            done_n++;
            if (c->n_vert < 1 || c->n_vert > HV_RUN_MAX_VERT) PROBLEM("case %s: done with n_vert %d\n", c->id, c->n_vert);
            if (c->error[0]) PROBLEM("case %s: done but has an error text\n", c->id);
        }
        if (stt[i] == HV_CASE_FAILED) {
            if (!c->error[0]) PROBLEM("case %s: failed without a reason\n", c->id);
            if (c->error_code <= 0 || c->error_code >= HV_STATUS_COUNT)
                PROBLEM("case %s: failed with error_code %d\n", c->id, c->error_code);
            if (c->n_vert != 0) PROBLEM("case %s: failed but n_vert %d\n", c->id, c->n_vert);
        }
        if (stt[i] != HV_CASE_PENDING) {
            if (c->rank < 0) PROBLEM("case %s: finished without a rank\n", c->id);
            if (c->attempt < 1) PROBLEM("case %s: finished without an attempt\n", c->id);
            for (int k = 0; k < HV_STAGE_COUNT; k++)
                if (!(c->seconds[k] >= 0) || isinf(c->seconds[k]))
                    PROBLEM("case %s: seconds[%s] = %g\n", c->id, hv_stage_names[k], c->seconds[k]);
        }
    }
    size_t nv = 0;
    if (hv_store_read_vertebrae(s, &vr, &nv) != HV_OK) {
        PROBLEM("cannot read the vertebrae: %s\n", hv_error_detail());
        goto finish;
    }
    int graded = H5Lexists(s->file, "grader", H5P_DEFAULT) > 0;
    for (size_t i = 0; i < nv; i++) {
        const hv_run_vrow *v = &vr[i];
        if (v->case_index < 0 || (size_t)v->case_index >= nc || stt[v->case_index] != HV_CASE_DONE) {
            PROBLEM("vertebra row %zu: case_index %d is not a done case\n", i, v->case_index);
            continue;
        }
        const char *id = cr[v->case_index].id;
        if (!hv_label_name(v->label) || strncmp(v->level, hv_label_name(v->label), sizeof v->level))
            PROBLEM("case %s: label %d with level '%.8s'\n", id, v->label, v->level);
        if (i > 0 && vr[i - 1].case_index == v->case_index &&
            !(hv_label_order(vr[i - 1].label) < hv_label_order(v->label)))
            PROBLEM("case %s: vertebrae not in cranio-caudal order at %s\n", id, v->level);
        if (v->known_grade < -1 || v->known_grade > 3) PROBLEM("case %s %s: known_grade %d\n", id, v->level, v->known_grade);
        if (v->split_set < -1 || v->split_set > 2) PROBLEM("case %s %s: split_set %d\n", id, v->level, v->split_set);
        if (v->grade_rule < -1 || v->grade_rule > 3) PROBLEM("case %s %s: grade_rule %d\n", id, v->level, v->grade_rule);
        if (v->grade_pred < -1 || v->grade_pred > 3) PROBLEM("case %s %s: grade_pred %d\n", id, v->level, v->grade_pred);
        if (complete && graded && v->grade_pred < 0 && v->grade_rule >= 0)
            PROBLEM("case %s %s: graded store without a prediction\n", id, v->level);
        int all_nan = 1; /* over anterior, middle, posterior: what the rule grades */
        for (int g = 0; g < HV_REG_COUNT; g++) {
            if (!finite_or_nan_ok(v->h_ori[g]) || !finite_or_nan_ok(v->h_syn[g]) || !finite_or_nan_ok(v->rhlv[g]))
                PROBLEM("case %s %s: infinite height or RHLV\n", id, v->level);
            if (!isnan(v->h_ori[g]) && v->h_ori[g] < 0) PROBLEM("case %s %s: negative height\n", id, v->level);
            if (g != HV_REG_ALL && !isnan(v->rhlv[g])) all_nan = 0;
            /* RHLV is (syn - ori) / syn, stored as computed */
            if (!isnan(v->rhlv[g]) && !isnan(v->h_syn[g]) && !isnan(v->h_ori[g]) && v->h_syn[g] > 0 &&
                fabs(v->rhlv[g] - (v->h_syn[g] - v->h_ori[g]) / v->h_syn[g]) > 1e-9)
                PROBLEM("case %s %s: rhlv[%d] disagrees with its heights\n", id, v->level, g);
        }
        if (all_nan && !(v->flags & (HV_MEAS_SMALL | HV_MEAS_NO_SYNTH | HV_MEAS_EMPTY_REGION)))
            PROBLEM("case %s %s: no RHLV and no flag saying why\n", id, v->level);
        if ((v->grade_rule >= 0) != !all_nan)
            PROBLEM("case %s %s: rule grade %d with%s RHLV\n", id, v->level, v->grade_rule, all_nan ? "out" : "");
    }
    if (graded) {
        hv_grader_result g;
        int present;
        if (hv_store_read_grader(s, &g, &present) != HV_OK) {
            PROBLEM("/grader: %s\n", hv_error_detail());
        } else {
            if (strcmp(g.method, "svm") && strcmp(g.method, "rule"))
                PROBLEM("/grader/@method is '%s'\n", g.method);
            if (g.have_metrics) {
                long tot = 0;
                for (int a = 0; a < g.m.n_classes; a++)
                    for (int c = 0; c < g.m.n_classes; c++) {
                        if (g.m.confusion[a][c] < 0) PROBLEM("/grader/confusion has a negative count\n");
                        tot += g.m.confusion[a][c];
                    }
                if (tot < 1) PROBLEM("/grader/confusion is empty\n");
                if (!(g.m.macro_f1 >= 0 && g.m.macro_f1 <= 1)) PROBLEM("/grader/@macro_f1 = %g\n", g.m.macro_f1);
                if (!(g.m.accuracy >= 0 && g.m.accuracy <= 1)) PROBLEM("/grader/@accuracy = %g\n", g.m.accuracy);
            }
        }
    } else if (complete && done_n > 0) {
        PROBLEM("complete store without /grader\n");
    }
finish:
    free(cr);
    free(stt);
    free(vr);
    H5Tclose(ct);
    H5Tclose(vt);
    H5Tclose(et);
    hv_store_close(s);
    if (nprob > 50) sb_add(&b, "... and %ld more problems\n", nprob - 50);
    if (report) {
        *report = b.p;
        b.p = NULL;
    }
    free(b.p);
    if (st == HV_ERR_NOMEM) return st;
    if (nprob) return hv_error_set(HV_ERR_FORMAT, "%s: %ld schema problem(s)", path, nprob);
    return HV_OK;
#undef PROBLEM
}

/* ----------------------------------------------------------------- export */

static void csv_str(FILE *f, const char *s)
{
    int quote = strpbrk(s, ",\"\n") != NULL;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Round-trip-exact doubles (bitwise comparisons across runs rest on this). */
static void csv_num(FILE *f, double x)
{
    if (isnan(x)) fputs("nan", f);
    else fprintf(f, "%.17g", x);
}

static hv_status export_tables(const char *path, const char *dir)
{
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *vr = NULL;
    size_t nv = 0;
    FILE *f = NULL;
    char *fn = NULL;
    hv_status st = hv_mkdir_p(dir);
    if (st != HV_OK) return st;
    if ((st = hv_store_open_serial(path, 0, &s)) != HV_OK) return st;
    size_t nc = (size_t)s->n_cases;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    if (!cr || !stt) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_store_read_vertebrae(s, &vr, &nv)) != HV_OK) goto done;

    fn = hv_strfmt("%s/cases.csv", dir);
    if (!fn || !(f = fopen(fn, "w"))) {
        st = hv_error_set(HV_ERR_IO, "cannot write %s", fn ? fn : dir);
        goto done;
    }
    fprintf(f, "case,status,n_vert,rank,attempt,error_code,error,ct_path,mask_path");
    for (int k = 0; k < HV_STAGE_COUNT; k++) fprintf(f, ",s_%s", hv_stage_names[k]);
    fputc('\n', f);
    for (size_t i = 0; i < nc; i++) {
        csv_str(f, cr[i].id);
        fprintf(f, ",%s,%d,%d,%d,%s,", hv_case_state_name(stt[i]), cr[i].n_vert, cr[i].rank,
                cr[i].attempt, cr[i].error_code ? hv_status_name((hv_status)cr[i].error_code) : "");
        csv_str(f, cr[i].error);
        fputc(',', f);
        csv_str(f, cr[i].ct_path);
        fputc(',', f);
        csv_str(f, cr[i].mask_path);
        for (int k = 0; k < HV_STAGE_COUNT; k++) fprintf(f, ",%.6f", cr[i].seconds[k]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = hv_error_set(HV_ERR_IO, "cannot write %s", fn);
        goto done;
    }
    f = NULL;
    free(fn);

    fn = hv_strfmt("%s/vertebrae.csv", dir);
    if (!fn || !(f = fopen(fn, "w"))) {
        st = hv_error_set(HV_ERR_IO, "cannot write %s", fn ? fn : dir);
        goto done;
    }
    fprintf(f, "case,label,level,known_grade,split,grade_rule,grade_pred,flags,volume_ml,mean_hu,"
               "cx,cy,cz,h_ori_all,h_ori_ant,h_ori_mid,h_ori_post,h_syn_all,h_syn_ant,h_syn_mid,"
               "h_syn_post,rhlv_all,rhlv_ant,rhlv_mid,rhlv_post\n");
    for (size_t i = 0; i < nv; i++) {
        const hv_run_vrow *v = &vr[i];
        char fl[256];
        hv_measure_flags_str(v->flags, fl, sizeof fl);
        csv_str(f, cr[v->case_index].id);
        fprintf(f, ",%d,%.8s,%d,%s,%d,%d,%s", v->label, v->level, v->known_grade,
                v->split_set >= 0 ? hv_split_set_name((hv_split_set)v->split_set) : "",
                v->grade_rule, v->grade_pred, fl);
        const double *cols[] = {&v->volume_ml, &v->mean_hu};
        for (int k = 0; k < 2; k++) fputc(',', f), csv_num(f, *cols[k]);
        for (int k = 0; k < 3; k++) fputc(',', f), csv_num(f, v->centroid[k]);
        for (int k = 0; k < 4; k++) fputc(',', f), csv_num(f, v->h_ori[k]);
        for (int k = 0; k < 4; k++) fputc(',', f), csv_num(f, v->h_syn[k]);
        for (int k = 0; k < 4; k++) fputc(',', f), csv_num(f, v->rhlv[k]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = hv_error_set(HV_ERR_IO, "cannot write %s", fn);
        goto done;
    }
    f = NULL;
    free(fn);
    fn = NULL;

    hv_grader_result g;
    int present = 0;
    if ((st = hv_store_read_grader(s, &g, &present)) != HV_OK) goto done;
    if (present) {
        fn = hv_strfmt("%s/grader_metrics.csv", dir);
        if (!fn || !(f = fopen(fn, "w"))) {
            st = hv_error_set(HV_ERR_IO, "cannot write %s", fn ? fn : dir);
            goto done;
        }
        fprintf(f, "method,evaluated_on,macro_f1,macro_precision,macro_recall,accuracy,kappa_linear,"
                   "n_folds,fold_mean_f1,fold_var_f1,note\n");
        fprintf(f, "%s,%s,", g.method, g.evaluated_on);
        if (g.have_metrics) {
            csv_num(f, g.m.macro_f1), fputc(',', f);
            csv_num(f, g.m.macro_precision), fputc(',', f);
            csv_num(f, g.m.macro_recall), fputc(',', f);
            csv_num(f, g.m.accuracy), fputc(',', f);
            csv_num(f, g.m.kappa_linear);
        } else {
            fputs(",,,,", f);
        }
        fprintf(f, ",%d,", g.n_folds);
        if (g.n_folds) csv_num(f, g.mean[0]);
        fputc(',', f);
        if (g.n_folds) csv_num(f, g.var[0]);
        fputc(',', f);
        csv_str(f, g.note);
        fputc('\n', f);
        if (g.have_metrics) {
            fprintf(f, "\ntrue\\pred");
            for (int c = 0; c < g.m.n_classes; c++) fprintf(f, ",%d", g.m.classes[c]);
            fputc('\n', f);
            for (int r = 0; r < g.m.n_classes; r++) {
                fprintf(f, "%d", g.m.classes[r]);
                for (int c = 0; c < g.m.n_classes; c++) fprintf(f, ",%ld", g.m.confusion[r][c]);
                fputc('\n', f);
            }
        }
        if (fclose(f) != 0) {
            f = NULL;
            st = hv_error_set(HV_ERR_IO, "cannot write %s", fn);
            goto done;
        }
        f = NULL;
        if (g.n_folds > 0) {
            free(fn);
            fn = hv_strfmt("%s/grader_folds.csv", dir);
            if (!fn || !(f = fopen(fn, "w"))) {
                st = hv_error_set(HV_ERR_IO, "cannot write %s", fn ? fn : dir);
                goto done;
            }
            fprintf(f, "fold,macro_f1,macro_precision,macro_recall,accuracy\n");
            for (int k = 0; k < g.n_folds; k++) {
                fprintf(f, "%d", k);
                for (int c = 0; c < 4; c++) fputc(',', f), csv_num(f, g.fold_metrics[k][c]);
                fputc('\n', f);
            }
            if (fclose(f) != 0) {
                f = NULL;
                st = hv_error_set(HV_ERR_IO, "cannot write %s", fn);
                goto done;
            }
            f = NULL;
        }
    }
done:
    if (f) fclose(f);
    free(fn);
    free(cr);
    free(stt);
    free(vr);
    hv_store_close(s);
    return st;
}

/* One view of a QC slot as RGB: the CT in grey, the target's contour (label
 * pixels with a 4-neighbour outside the label, or on the border) in red. */
static hv_status export_qc_png(const char *path, const char *dir, long *n_png)
{
    hv_store *s = NULL;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL, *slot = NULL;
    unsigned char *rgb = NULL;
    char *qdir = NULL, *fn = NULL;
    hv_status st = hv_store_open_serial(path, 0, &s);
    if (st != HV_OK) return st;
    if (s->qc < 0) goto done; /* images = none, or a store from before the QC pictures */
    size_t nc = (size_t)s->n_cases;
    const size_t plane = (size_t)HV_RUN_QC * HV_RUN_QC;
    cr = malloc((nc ? nc : 1) * sizeof *cr);
    stt = malloc(nc ? nc : 1);
    slot = malloc(HV_RUN_QC_BYTES);
    rgb = malloc(plane * 3);
    qdir = hv_strfmt("%s/qc", dir);
    if (!cr || !stt || !slot || !rgb || !qdir) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hv_store_read_cases(s, cr, stt)) != HV_OK) goto done;
    if ((st = hv_mkdir_p(qdir)) != HV_OK) goto done;
    hsize_t inner[5] = {1, HV_QC_VIEWS, HV_QC_CHANNELS, HV_RUN_QC, HV_RUN_QC};
    hid_t ms = H5Screate_simple(5, inner, NULL);
    for (size_t i = 0; i < nc && st == HV_OK; i++) {
        if (stt[i] != HV_CASE_DONE || cr[i].n_vert <= 0 || cr[i].n_vert > HV_RUN_MAX_VERT) continue;
        hv_run_vrow rows[HV_RUN_MAX_VERT];
        hid_t vt = vrow_type();
        hsize_t vstart = (hsize_t)i * HV_RUN_MAX_VERT, vcnt = (hsize_t)cr[i].n_vert;
        hid_t vfs = H5Dget_space(s->verts), vms = H5Screate_simple(1, &vcnt, NULL);
        herr_t e = H5Sselect_hyperslab(vfs, H5S_SELECT_SET, &vstart, NULL, &vcnt, NULL);
        if (e >= 0) e = H5Dread(s->verts, vt, vms, vfs, H5P_DEFAULT, rows);
        H5Sclose(vms);
        H5Sclose(vfs);
        H5Tclose(vt);
        if (e < 0) {
            st = hv_error_set(HV_ERR_HDF5, "store: cannot read vertebrae of case %s", cr[i].id);
            break;
        }
        for (int k = 0; k < cr[i].n_vert && st == HV_OK; k++) {
            hsize_t start[5] = {vstart + (hsize_t)k, 0, 0, 0, 0};
            hid_t fs = H5Dget_space(s->qc);
            e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, inner, NULL);
            if (e >= 0) e = H5Dread(s->qc, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, slot);
            H5Sclose(fs);
            if (e < 0) {
                st = hv_error_set(HV_ERR_HDF5, "store: cannot read /images/qc of case %s",
                                  cr[i].id);
                break;
            }
            int any = 0;
            for (size_t q = 0; q < HV_RUN_QC_BYTES && !any; q++) any = slot[q] != 0;
            if (!any) continue; /* no picture: the spine stage failed there */
            for (int view = 0; view < HV_QC_VIEWS && st == HV_OK; view++) {
                const uint8_t *v0 = slot + (size_t)view * HV_QC_CHANNELS * plane;
                hv_io_paint_contours(rgb, 3 * HV_RUN_QC, v0 + HV_QC_CT * plane,
                                     v0 + HV_QC_LABEL * plane, HV_RUN_QC, HV_RUN_QC, 255);
                free(fn);
                fn = hv_strfmt("%s/%s_%.8s_%s.png", qdir, cr[i].id, rows[k].level,
                               view == HV_QC_SAG ? "sag" : "cor");
                if (!fn) {
                    st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                    break;
                }
                st = hv_io_png_write(fn, HV_RUN_QC, HV_RUN_QC, 3, rgb);
                if (st == HV_OK && n_png) (*n_png)++;
            }
        }
    }
    H5Sclose(ms);
done:
    free(fn);
    free(qdir);
    free(rgb);
    free(slot);
    free(cr);
    free(stt);
    hv_store_close(s);
    return st;
}

hv_status hv_store_export(const char *path, const char *dir, int qc_png, long *n_png)
{
    if (n_png) *n_png = 0;
    hv_status st = export_tables(path, dir);
    if (st == HV_OK && qc_png) st = export_qc_png(path, dir, n_png);
    return st;
}

hv_status hv_store_export_csv(const char *path, const char *dir)
{
    return hv_store_export(path, dir, 1, NULL);
}
