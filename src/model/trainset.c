/*
 * trainset.c: the training set file of hv/model.h (schema in docs/model.md,
 * "Training set file"): writer, merge of per-case parts, and the in-memory
 * reader the trainer draws its samples from.
 *
 * Why this way:
 *  - One serial HDF5 file, one chunk per vertebra (1 x K x J x I of u8,
 *    deflate): a reader takes whole vertebrae, and a vertebra's chunk is
 *    written and read in one piece. The volume datasets' first dimension is
 *    unlimited only so that a part with no item is still a valid file.
 *  - Parts have the very same schema as the whole file (plus the attribute
 *    part_case): `prepare` writes one per case on whichever rank ran it,
 *    and rank 0's merge orders every item by (case id, label), so the
 *    training file does not depend on the rank count or on the order in
 *    which cases finished. The merge streams one item at a time.
 *  - Everything is written under "<path>.tmp<pid>", fsync'd and renamed:
 *    readers see the old file or the whole new one (a killed prepare leaves
 *    at most a stray temporary, never a half part under the real name).
 *  - The reader loads the selected splits whole, or only their tables
 *    (hv_model_trainset_open_meta) and then the volumes of the items a
 *    caller names (hv_model_trainset_hold, _load), through an item cache
 *    with a byte budget: a cohort's file (~2,700 items of 12 MiB) does not
 *    fit in every rank's memory, and a step needs only its share of the
 *    batch. Eviction is least recently used among the items not held (a
 *    step's own items are held until the next step's hold, so the budget
 *    never takes what a batch is drawing from); the LRU pick is a scan of
 *    the items' last-use ticks, nothing next to a 12 MiB read. The file
 *    and its datasets stay open between reads (hv_model_trainset_free
 *    closes them). Item indices are the same either way (the trainer's
 *    draws are keyed by them), and an item read again is the file's bytes,
 *    so what is trained on does not depend on the budget.
 *  - HDF5's own error printing is off around our calls; failures become
 *    HV_ERR_HDF5 / HV_ERR_FORMAT naming the file and the object.
 *
 * One file of ~1,180 lines on purpose: the writer, the merge and the reader
 * (with its cache) are the three users of one schema, and share its private HDF5 helpers
 * (the attribute and table readers and writers, rfile_open, which the merge
 * and the reader both use); a split would put the schema's internals in a
 * header for files that exist only to be split.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "hv/model.h"
#include "hv/spine.h"

#define TS_FORMAT "healthivert-train"
#define TS_VERSION 1
#define TS_GRADES 32
/* deflate level: 1 costs a third of level 4's time on the phantom's crops
 * for a file about 10 % larger (docs/model.md has the numbers) */
#define HV_TRAINSET_DEFLATE 1

#define H5_TRY(expr, ...)                                                                 \
    do {                                                                                  \
        if ((expr) < 0) {                                                                 \
            st = hv_error_set(HV_ERR_HDF5, __VA_ARGS__);                                  \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)

/* HDF5 error printing off for the duration of one public call. */
typedef struct {
    H5E_auto2_t fn;
    void *data;
} h5_quiet;

static void quiet_on(h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_off(const h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

/* ---------------------------------------------------------------- writing */

static herr_t attr_str(hid_t loc, const char *key, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Awrite(a, t, value) : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return r;
}

static herr_t attr_i64(hid_t loc, const char *key, const int64_t *v, hsize_t n)
{
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(loc, key, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Awrite(a, H5T_NATIVE_INT64, v) : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return r;
}

/* A 1-D or 2-D dataset of n rows written at once. */
static herr_t write_rows(hid_t f, const char *name, hid_t ftype, hid_t mtype, hsize_t n,
                         hsize_t width, const void *data)
{
    hsize_t dims[2] = {n, width};
    hid_t sp = H5Screate_simple(width ? 2 : 1, dims, NULL);
    hid_t ds = sp >= 0 ? H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                       : -1;
    herr_t r = ds >= 0 ? 0 : -1;
    if (ds >= 0 && n > 0) r = H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    return r;
}

/* Strings as one fixed-length type as long as the longest (+ NUL). */
static herr_t write_strings(hid_t f, const char *name, const char *const *s, size_t n)
{
    size_t w = 2;
    for (size_t i = 0; i < n; i++)
        if (strlen(s[i]) + 1 > w) w = strlen(s[i]) + 1;
    char *buf = calloc(n ? n : 1, w);
    if (!buf) return -1;
    for (size_t i = 0; i < n; i++) memcpy(buf + i * w, s[i], strlen(s[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    herr_t r = write_rows(f, name, t, t, n, 0, buf);
    H5Tclose(t);
    free(buf);
    return r;
}

/* The u8 volume datasets (N, K, J, I), one deflated chunk per item. */
static hid_t create_vol(hid_t f, const char *name, hsize_t n, const int64_t dim[3])
{
    hsize_t dims[4] = {n, (hsize_t)dim[2], (hsize_t)dim[1], (hsize_t)dim[0]};
    hsize_t maxd[4] = {H5S_UNLIMITED, dims[1], dims[2], dims[3]};
    hsize_t chunk[4] = {1, dims[1], dims[2], dims[3]};
    hid_t sp = H5Screate_simple(4, dims, maxd), pl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = -1;
    if (sp >= 0 && pl >= 0 && H5Pset_chunk(pl, 4, chunk) >= 0 && H5Pset_deflate(pl, HV_TRAINSET_DEFLATE) >= 0)
        ds = H5Dcreate2(f, name, H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    return ds;
}

/* Write (or read, when `data` is to be filled) item row i of a volume set. */
static herr_t vol_row(hid_t ds, hsize_t i, const int64_t dim[3], void *data, int write)
{
    hsize_t start[4] = {i, 0, 0, 0};
    hsize_t count[4] = {1, (hsize_t)dim[2], (hsize_t)dim[1], (hsize_t)dim[0]};
    hid_t fs = H5Dget_space(ds);
    hid_t ms = H5Screate_simple(4, count, NULL);
    herr_t r = -1;
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
        r = write ? H5Dwrite(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, data)
                  : H5Dread(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, data);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return r;
}

/* fsync a closed file by name, then rename it over path and fsync the
 * folder: the new file is whole and durable before it is visible. */
static hv_status commit_file(const char *tmp, const char *path)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0) close(fd);
        return hv_error_set(HV_ERR_IO, "%s: cannot sync %s", path, tmp);
    }
    close(fd);
    if (rename(tmp, path) != 0) return hv_error_set(HV_ERR_IO, "cannot rename %s into place", path);
    char *dir = hv_strdup(path);
    if (!dir) return HV_OK;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    fd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
    return HV_OK;
}

static int cmp_key(const char *ca, int la, const char *cb, int lb)
{
    int c = strcmp(ca, cb);
    if (c) return c;
    return (la > lb) - (la < lb);
}

/* Writer state shared by hv_model_trainset_write and the merge: the file
 * is opened with all its datasets, then items are put in order. */
typedef struct {
    hid_t f, ct, lab, cam;
    char *tmp;
    int64_t dim[3];
} writer;

static hv_status writer_open(writer *w, const char *path, size_t n, const int64_t dim[3],
                             int with_cam, const char *part_case, int64_t band_rows)
{
    hv_status st = HV_OK;
    memset(w, 0, sizeof *w);
    w->f = w->ct = w->lab = w->cam = -1;
    memcpy(w->dim, dim, sizeof w->dim);
    w->tmp = hv_strfmt("%s.tmp%ld", path, (long)getpid());
    if (!w->tmp) return hv_error_set(HV_ERR_NOMEM, "training set %s: out of memory", path);
    w->f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5_TRY(w->f, "training set: cannot create %s", w->tmp);
    int64_t ver = TS_VERSION;
    H5_TRY(attr_str(w->f, "format", TS_FORMAT), "training set %s: attributes", path);
    H5_TRY(attr_i64(w->f, "version", &ver, 1), "training set %s: attributes", path);
    H5_TRY(attr_i64(w->f, "dims", dim, 3), "training set %s: attributes", path);
    H5_TRY(attr_i64(w->f, "band_rows", &band_rows, 1), "training set %s: attributes", path);
    if (part_case) H5_TRY(attr_str(w->f, "part_case", part_case), "training set %s: attributes", path);
    H5_TRY(w->ct = create_vol(w->f, "ct", n, dim), "training set %s: dataset ct", path);
    H5_TRY(w->lab = create_vol(w->f, "labels", n, dim), "training set %s: dataset labels", path);
    if (with_cam) H5_TRY(w->cam = create_vol(w->f, "cam", n, dim), "training set %s: dataset cam", path);
done:
    return st;
}

/* Close; on success commit under path, else remove the temporary. */
static hv_status writer_close(writer *w, const char *path, hv_status st)
{
    if (w->cam >= 0) H5Dclose(w->cam);
    if (w->lab >= 0) H5Dclose(w->lab);
    if (w->ct >= 0) H5Dclose(w->ct);
    if (w->f >= 0 && H5Fclose(w->f) < 0 && st == HV_OK)
        st = hv_error_set(HV_ERR_HDF5, "training set: closing %s", w->tmp);
    if (st == HV_OK) st = commit_file(w->tmp, path);
    if (st != HV_OK && w->tmp) remove(w->tmp);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    return st;
}

/* The per-item tables of n items (already in order). */
typedef struct {
    const char **cases;
    int32_t *label;
    int8_t *grade, *grades;
    uint8_t *split;
} tables;

static hv_status tables_alloc(tables *t, size_t n)
{
    size_t m = n ? n : 1;
    t->cases = calloc(m, sizeof *t->cases);
    t->label = calloc(m, sizeof *t->label);
    t->grade = calloc(m, 1);
    t->grades = calloc(m, TS_GRADES);
    t->split = calloc(m, 1);
    if (!t->cases || !t->label || !t->grade || !t->grades || !t->split)
        return hv_error_set(HV_ERR_NOMEM, "training set: out of memory");
    return HV_OK;
}

static void tables_free(tables *t)
{
    free(t->cases);
    free(t->label);
    free(t->grade);
    free(t->grades);
    free(t->split);
    memset(t, 0, sizeof *t);
}

static hv_status tables_write(hid_t f, const tables *t, size_t n, const hv_model_train_skip *sk,
                              const size_t *sk_order, size_t n_skip, const char *path)
{
    hv_status st = HV_OK;
    const char **sc = NULL, **sr = NULL;
    int32_t *sl = NULL;
    H5_TRY(write_strings(f, "case", t->cases, n), "training set %s: dataset case", path);
    H5_TRY(write_rows(f, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, n, 0, t->label),
           "training set %s: dataset label", path);
    H5_TRY(write_rows(f, "grade", H5T_STD_I8LE, H5T_NATIVE_INT8, n, 0, t->grade),
           "training set %s: dataset grade", path);
    H5_TRY(write_rows(f, "split", H5T_STD_U8LE, H5T_NATIVE_UINT8, n, 0, t->split),
           "training set %s: dataset split", path);
    H5_TRY(write_rows(f, "case_grades", H5T_STD_I8LE, H5T_NATIVE_INT8, n, TS_GRADES, t->grades),
           "training set %s: dataset case_grades", path);
    if (n_skip) {
        sc = calloc(n_skip, sizeof *sc);
        sr = calloc(n_skip, sizeof *sr);
        sl = calloc(n_skip, sizeof *sl);
        if (!sc || !sr || !sl) {
            st = hv_error_set(HV_ERR_NOMEM, "training set: out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_skip; i++) {
            const hv_model_train_skip *s = &sk[sk_order ? sk_order[i] : i];
            sc[i] = s->case_id ? s->case_id : "";
            sr[i] = s->reason ? s->reason : "";
            sl[i] = s->label;
        }
        H5_TRY(write_strings(f, "skipped_case", sc, n_skip), "training set %s: skipped", path);
        H5_TRY(write_strings(f, "skipped_reason", sr, n_skip), "training set %s: skipped", path);
        H5_TRY(write_rows(f, "skipped_label", H5T_STD_I32LE, H5T_NATIVE_INT32, n_skip, 0, sl),
               "training set %s: skipped", path);
    }
done:
    free(sc);
    free(sr);
    free(sl);
    return st;
}

/* Sort keys: (case id, label) and where the record came from. */
typedef struct {
    size_t file, row;
    const char *case_id;
    int label;
} mkey;

static int cmp_mkey(const void *a, const void *b)
{
    const mkey *x = a, *y = b;
    return cmp_key(x->case_id, x->label, y->case_id, y->label);
}

hv_status hv_model_trainset_write(const char *path, const hv_model_train_item *items, size_t n,
                                  const hv_model_train_skip *skipped, size_t n_skip,
                                  const char *part_case, int64_t band_rows)
{
    hv_status st = HV_OK;
    size_t *ord = NULL, *sko = NULL;
    mkey *ok = NULL, *sk = NULL;
    tables t = {0};
    writer w;
    int64_t dim[3];
    if (!path || (n && !items) || (n_skip && !skipped))
        return hv_error_set(HV_ERR_ARG, "training set write: bad arguments");
    if (n) memcpy(dim, items[0].ct ? items[0].ct->dim : (int64_t[3]){0, 0, 0}, sizeof dim);
    else {
        hv_spine_opts so;
        hv_spine_opts_default(&so);
        dim[0] = so.crop_lr, dim[1] = so.crop_ap, dim[2] = so.crop_rows;
    }
    const int with_cam = n && items[0].cam;
    for (size_t i = 0; i < n; i++) {
        const hv_model_train_item *it = &items[i];
        const hv_volume *v[3] = {it->ct, it->labels, it->cam};
        if (!it->case_id || !it->case_id[0])
            return hv_error_set(HV_ERR_ARG, "training set %s: item %zu has no case id", path, i);
        if ((it->cam != NULL) != with_cam)
            return hv_error_set(HV_ERR_ARG, "training set %s: %s label %d: CAM %s while item 0 "
                                "%s one", path, it->case_id, it->label, it->cam ? "given" : "missing",
                                with_cam ? "has" : "has none");
        for (int k = 0; k < 3; k++) {
            if (k == 2 && !with_cam) break;
            if (!v[k] || v[k]->dtype != HV_DTYPE_U8 || memcmp(v[k]->dim, dim, sizeof dim))
                return hv_error_set(HV_ERR_ARG, "training set %s: %s label %d: %s is not a U8 "
                                    "volume of dims %lldx%lldx%lld", path, it->case_id,
                                    it->label, k == 0 ? "ct" : k == 1 ? "labels" : "cam",
                                    (long long)dim[0], (long long)dim[1], (long long)dim[2]);
        }
        if (it->grade < -1 || it->grade > 127 || (unsigned)it->split > HV_MODEL_SPLIT_NONE)
            return hv_error_set(HV_ERR_ARG, "training set %s: %s label %d: grade %d or split "
                                "%d out of range", path, it->case_id, it->label, it->grade,
                                (int)it->split);
    }
    ok = malloc((n ? n : 1) * sizeof *ok);
    sk = malloc((n_skip ? n_skip : 1) * sizeof *sk);
    ord = malloc((n ? n : 1) * sizeof *ord);
    sko = malloc((n_skip ? n_skip : 1) * sizeof *sko);
    if (!ok || !sk || !ord || !sko || tables_alloc(&t, n) != HV_OK) {
        st = hv_error_set(HV_ERR_NOMEM, "training set %s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) ok[i] = (mkey){0, i, items[i].case_id, items[i].label};
    for (size_t i = 0; i < n_skip; i++)
        sk[i] = (mkey){0, i, skipped[i].case_id ? skipped[i].case_id : "", skipped[i].label};
    qsort(ok, n, sizeof *ok, cmp_mkey);
    qsort(sk, n_skip, sizeof *sk, cmp_mkey);
    for (size_t i = 0; i < n; i++) ord[i] = ok[i].row;
    for (size_t i = 0; i < n_skip; i++) sko[i] = sk[i].row;
    for (size_t i = 0; i < n; i++) {
        const hv_model_train_item *it = &items[ord[i]];
        if (i && !cmp_key(items[ord[i - 1]].case_id, items[ord[i - 1]].label, it->case_id,
                          it->label)) {
            st = hv_error_set(HV_ERR_ARG, "training set %s: %s label %d given twice", path,
                              it->case_id, it->label);
            goto done;
        }
        t.cases[i] = it->case_id;
        t.label[i] = it->label;
        t.grade[i] = (int8_t)it->grade;
        t.split[i] = (uint8_t)it->split;
        for (int g = 0; g < TS_GRADES; g++)
            t.grades[i * TS_GRADES + g] = it->case_grades ? it->case_grades[g] : -1;
    }
    h5_quiet q;
    quiet_on(&q);
    st = writer_open(&w, path, n, dim, with_cam, part_case, band_rows);
    for (size_t i = 0; st == HV_OK && i < n; i++) {
        const hv_model_train_item *it = &items[ord[i]];
        if (vol_row(w.ct, i, dim, it->ct->data, 1) < 0 ||
            vol_row(w.lab, i, dim, it->labels->data, 1) < 0 ||
            (with_cam && vol_row(w.cam, i, dim, it->cam->data, 1) < 0))
            st = hv_error_set(HV_ERR_HDF5, "training set %s: writing %s label %d", path,
                              it->case_id, it->label);
    }
    if (st == HV_OK) st = tables_write(w.f, &t, n, skipped, sko, n_skip, path);
    st = writer_close(&w, path, st);
    quiet_off(&q);
done:
    tables_free(&t);
    free(ok);
    free(sk);
    free(ord);
    free(sko);
    return st;
}

hv_status hv_model_trainset_ct_u8(const hv_volume *ct, hv_volume **out)
{
    *out = NULL;
    if (!ct) return hv_error_set(HV_ERR_ARG, "training set: no CT crop");
    hv_volume *v = NULL;
    hv_status st = hv_vol_create(&v, ct->dim, HV_DTYPE_U8, ct->affine);
    if (st != HV_OK) return st;
    uint8_t *o = v->data;
    const float *f = ct->dtype == HV_DTYPE_F32 ? ct->data : NULL; /* the crops' own dtype */
    for (size_t q = 0; q < ct->nvox; q++) {
        double x = f ? (double)f[q] : hv_vol_get(ct, q);
        o[q] = !(x > 0) ? 0 : x >= 255 ? 255 : (uint8_t)x; /* truncation, as the uint8 cast */
    }
    *out = v;
    return HV_OK;
}

/* ---------------------------------------------------------------- reading */

/* An open file with its checked header and per-item tables. */
typedef struct {
    hid_t f;
    size_t n;
    int64_t dim[3], band_rows;
    int has_cam;
    char part_case[256];
    size_t case_w;          /* width of the fixed strings of /case           */
    char *cases;            /* n * case_w                                    */
    int32_t *label;
    int8_t *grade, *grades;
    uint8_t *split;
    size_t n_skip, skc_w, skr_w;
    char *sk_case, *sk_reason;
    int32_t *sk_label;
} rfile;

static void rfile_close(rfile *r)
{
    if (r->f >= 0) H5Fclose(r->f);
    free(r->cases);
    free(r->label);
    free(r->grade);
    free(r->grades);
    free(r->split);
    free(r->sk_case);
    free(r->sk_reason);
    free(r->sk_label);
    memset(r, 0, sizeof *r);
    r->f = -1;
}

static int read_attr_i64(hid_t loc, const char *key, int64_t *v, hsize_t n)
{
    if (H5Aexists(loc, key) <= 0) return 1;
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t sp = H5Aget_space(a);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int rc = np == (hssize_t)n ? (H5Aread(a, H5T_NATIVE_INT64, v) < 0 ? -1 : 0) : 2;
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(a);
    return rc;
}

static int read_attr_str(hid_t loc, const char *key, char *buf, size_t cap)
{
    buf[0] = 0;
    if (H5Aexists(loc, key) <= 0) return 1;
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int rc = -1;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t)) {
        size_t sz = H5Tget_size(t);
        char *tmp = calloc(sz + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        if (tmp && H5Aread(a, mt, tmp) >= 0) {
            snprintf(buf, cap, "%s", tmp);
            rc = 0;
        }
        H5Tclose(mt);
        free(tmp);
    } else {
        rc = 2;
    }
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/* Read a whole 1-D/2-D dataset of `n` rows of `width` (0: 1-D) into a new
 * buffer of elements of `mtype`. 1 = missing, 2 = wrong shape, -1 = HDF5. */
static int read_table(hid_t f, const char *name, hid_t mtype, size_t esize, size_t n,
                      size_t width, void **out)
{
    *out = NULL;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return 1;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int rc = 0;
    if (nd != (width ? 2 : 1)) rc = 2;
    else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        if (dims[0] != n || (width && dims[1] != width)) rc = 2;
    }
    if (rc == 0) {
        *out = calloc((n ? n : 1) * (width ? width : 1), esize);
        if (!*out) rc = -1;
        else if (n && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) rc = -1;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Fixed strings of n rows: *w receives the width (NUL-terminated rows). */
static int read_strings(hid_t f, const char *name, size_t n, size_t *w, char **out)
{
    *out = NULL;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return 1;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t t = H5Dget_type(ds);
    int rc = 0;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t)) rc = 2;
    size_t sz = rc ? 0 : H5Tget_size(t);
    if (t >= 0) H5Tclose(t);
    H5Dclose(ds);
    if (rc) return rc;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, sz + 1);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    void *buf = NULL;
    rc = read_table(f, name, mt, sz + 1, n, 0, &buf);
    H5Tclose(mt);
    *w = sz + 1;
    *out = buf;
    return rc;
}

static hv_status rfile_open(const char *path, rfile *r)
{
    hv_status st = HV_OK;
    memset(r, 0, sizeof *r);
    r->f = -1;
    char fmt[64];
    int64_t ver = 0;
    hv_spine_opts so;
    hv_spine_opts_default(&so);
    const int64_t want[3] = {so.crop_lr, so.crop_ap, so.crop_rows};
    if (access(path, F_OK) != 0)
        return hv_error_set(HV_ERR_NOT_FOUND, "training set %s: no such file", path);
    r->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->f < 0) return hv_error_set(HV_ERR_FORMAT, "training set %s: not an HDF5 file", path);
    if (read_attr_str(r->f, "format", fmt, sizeof fmt) != 0 || strcmp(fmt, TS_FORMAT)) {
        st = hv_error_set(HV_ERR_FORMAT, "training set %s: format '%s', expected '%s'", path,
                          fmt[0] ? fmt : "(none)", TS_FORMAT);
        goto done;
    }
    if (read_attr_i64(r->f, "version", &ver, 1) != 0 || ver != TS_VERSION) {
        st = hv_error_set(HV_ERR_FORMAT, "training set %s: version %lld, this build reads "
                          "version %d", path, (long long)ver, TS_VERSION);
        goto done;
    }
    if (read_attr_i64(r->f, "dims", r->dim, 3) != 0 || memcmp(r->dim, want, sizeof want)) {
        st = hv_error_set(HV_ERR_FORMAT, "training set %s: crop dims %lldx%lldx%lld (LR x AP x "
                          "rows), expected the crop dims %lldx%lldx%lld", path,
                          (long long)r->dim[0], (long long)r->dim[1], (long long)r->dim[2],
                          (long long)want[0], (long long)want[1], (long long)want[2]);
        goto done;
    }
    if (read_attr_i64(r->f, "band_rows", &r->band_rows, 1) != 0 || r->band_rows < 2) {
        st = hv_error_set(HV_ERR_FORMAT, "training set %s: no valid band_rows attribute", path);
        goto done;
    }
    read_attr_str(r->f, "part_case", r->part_case, sizeof r->part_case);
    /* the item count from /label; every other table must agree */
    {
        hid_t ds = H5Lexists(r->f, "label", H5P_DEFAULT) > 0 ? H5Dopen2(r->f, "label", H5P_DEFAULT) : -1;
        if (ds < 0) {
            st = hv_error_set(HV_ERR_FORMAT, "training set %s: no /label", path);
            goto done;
        }
        hid_t sp = H5Dget_space(ds);
        hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        if (sp >= 0) H5Sclose(sp);
        H5Dclose(ds);
        if (np < 0) {
            st = hv_error_set(HV_ERR_FORMAT, "training set %s: unreadable /label", path);
            goto done;
        }
        r->n = (size_t)np;
    }
    void *p;
    static const char *const names[] = {"label", "grade", "split", "case_grades"};
    int rc[5];
    rc[0] = read_table(r->f, "label", H5T_NATIVE_INT32, 4, r->n, 0, &p);
    r->label = p;
    rc[1] = read_table(r->f, "grade", H5T_NATIVE_INT8, 1, r->n, 0, &p);
    r->grade = p;
    rc[2] = read_table(r->f, "split", H5T_NATIVE_UINT8, 1, r->n, 0, &p);
    r->split = p;
    rc[3] = read_table(r->f, "case_grades", H5T_NATIVE_INT8, 1, r->n, TS_GRADES, &p);
    r->grades = p;
    rc[4] = read_strings(r->f, "case", r->n, &r->case_w, &r->cases);
    for (int k = 0; k < 5; k++)
        if (rc[k]) {
            st = hv_error_set(rc[k] < 0 ? HV_ERR_HDF5 : HV_ERR_FORMAT,
                              "training set %s: /%s %s", path, k < 4 ? names[k] : "case",
                              rc[k] == 1 ? "missing" : rc[k] == 2 ? "has the wrong shape or type"
                                                                  : "unreadable");
            goto done;
        }
    static const char *const vols[] = {"ct", "labels", "cam"};
    for (int k = 0; k < 3; k++) {
        int ex = H5Lexists(r->f, vols[k], H5P_DEFAULT) > 0;
        if (k == 2) {
            r->has_cam = ex;
            if (!ex) break;
        }
        hid_t ds = ex ? H5Dopen2(r->f, vols[k], H5P_DEFAULT) : -1;
        hsize_t d[4] = {0, 0, 0, 0};
        int ok = 0;
        if (ds >= 0) {
            hid_t sp = H5Dget_space(ds);
            ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 4;
            if (ok) H5Sget_simple_extent_dims(sp, d, NULL);
            if (sp >= 0) H5Sclose(sp);
            H5Dclose(ds);
        }
        if (!ok || d[0] != r->n || d[1] != (hsize_t)r->dim[2] || d[2] != (hsize_t)r->dim[1] ||
            d[3] != (hsize_t)r->dim[0]) {
            st = hv_error_set(HV_ERR_FORMAT, "training set %s: /%s %s", path, vols[k],
                              ex ? "does not match the item count and dims" : "missing");
            goto done;
        }
        }
    for (size_t i = 0; i < r->n; i++)
        if (r->split[i] > HV_MODEL_SPLIT_NONE) {
            st = hv_error_set(HV_ERR_FORMAT, "training set %s: item %zu has split %d", path, i,
                              r->split[i]);
            goto done;
        }
    /* skipped vertebrae (optional, all three or none) */
    if (H5Lexists(r->f, "skipped_label", H5P_DEFAULT) > 0) {
        hid_t ds = H5Dopen2(r->f, "skipped_label", H5P_DEFAULT);
        hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
        hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        if (sp >= 0) H5Sclose(sp);
        if (ds >= 0) H5Dclose(ds);
        r->n_skip = np > 0 ? (size_t)np : 0;
        int a = read_table(r->f, "skipped_label", H5T_NATIVE_INT32, 4, r->n_skip, 0, &p);
        r->sk_label = p;
        int b = read_strings(r->f, "skipped_case", r->n_skip, &r->skc_w, &r->sk_case);
        int c = read_strings(r->f, "skipped_reason", r->n_skip, &r->skr_w, &r->sk_reason);
        if (np < 0 || a || b || c) {
            st = hv_error_set(HV_ERR_FORMAT, "training set %s: bad skipped-vertebra tables", path);
            goto done;
        }
    }
done:
    if (st != HV_OK) rfile_close(r);
    return st;
}

/* --------------------------------------------------------- part check */

hv_status hv_model_trainset_part_check(const char *path, const char *case_id)
{
    if (!path || !case_id) return hv_error_set(HV_ERR_ARG, "part check: bad arguments");
    h5_quiet q;
    quiet_on(&q);
    rfile r;
    hv_status st = rfile_open(path, &r);
    const int opened = st == HV_OK; /* rfile_open closes what it opened on failure */
    if (st == HV_OK && strcmp(r.part_case, case_id))
        st = hv_error_set(HV_ERR_FORMAT, "training set part %s: belongs to case '%s', not '%s'",
                          path, r.part_case, case_id);
    for (size_t i = 0; st == HV_OK && i < r.n; i++)
        if (strcmp(r.cases + i * r.case_w, case_id))
            st = hv_error_set(HV_ERR_FORMAT, "training set part %s: item %zu of case '%s'", path,
                              i, r.cases + i * r.case_w);
    if (opened) rfile_close(&r);
    quiet_off(&q);
    return st;
}

/* ----------------------------------------------------------------- merge */

hv_status hv_model_trainset_merge(const char *const *paths, size_t n, const char *out_path,
                                  size_t *n_items, size_t *n_skipped)
{
    hv_status st = HV_OK;
    rfile *rf = NULL;
    mkey *keys = NULL, *skeys = NULL;
    hv_model_train_skip *sk = NULL;
    uint8_t *buf = NULL;
    tables t = {0};
    size_t total = 0, total_skip = 0;
    writer w;
    int wopen = 0;
    if (!paths || !out_path) return hv_error_set(HV_ERR_ARG, "training set merge: bad arguments");
    h5_quiet q;
    quiet_on(&q);
    rf = calloc(n ? n : 1, sizeof *rf);
    if (!rf) {
        st = hv_error_set(HV_ERR_NOMEM, "training set merge: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) rf[i].f = -1;
    for (size_t i = 0; i < n; i++) {
        if ((st = rfile_open(paths[i], &rf[i])) != HV_OK) goto done;
        if (rf[i].band_rows != rf[0].band_rows || rf[i].has_cam != rf[0].has_cam) {
            st = hv_error_set(HV_ERR_FORMAT, "training set merge: %s and %s differ in %s",
                              paths[0], paths[i],
                              rf[i].band_rows != rf[0].band_rows ? "band_rows" : "having a CAM");
            goto done;
        }
        total += rf[i].n;
        total_skip += rf[i].n_skip;
    }
    keys = malloc((total ? total : 1) * sizeof *keys);
    skeys = malloc((total_skip ? total_skip : 1) * sizeof *skeys);
    sk = malloc((total_skip ? total_skip : 1) * sizeof *sk);
    if (!keys || !skeys || !sk || tables_alloc(&t, total) != HV_OK) {
        st = hv_error_set(HV_ERR_NOMEM, "training set merge: out of memory");
        goto done;
    }
    size_t k = 0, ks = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rf[i].n; j++)
            keys[k++] = (mkey){i, j, rf[i].cases + j * rf[i].case_w, rf[i].label[j]};
        for (size_t j = 0; j < rf[i].n_skip; j++)
            skeys[ks++] = (mkey){i, j, rf[i].sk_case + j * rf[i].skc_w, rf[i].sk_label[j]};
    }
    qsort(keys, total, sizeof *keys, cmp_mkey);
    qsort(skeys, total_skip, sizeof *skeys, cmp_mkey);
    for (size_t i = 0; i < total; i++) {
        if (i && !cmp_mkey(&keys[i - 1], &keys[i])) {
            st = hv_error_set(HV_ERR_FORMAT, "training set merge: %s label %d is in both %s and %s",
                              keys[i].case_id, keys[i].label, paths[keys[i - 1].file],
                              paths[keys[i].file]);
            goto done;
        }
        const rfile *r = &rf[keys[i].file];
        size_t j = keys[i].row;
        t.cases[i] = keys[i].case_id;
        t.label[i] = r->label[j];
        t.grade[i] = r->grade[j];
        t.split[i] = r->split[j];
        memcpy(t.grades + i * TS_GRADES, r->grades + j * TS_GRADES, TS_GRADES);
    }
    for (size_t i = 0; i < total_skip; i++) {
        const rfile *r = &rf[skeys[i].file];
        sk[i] = (hv_model_train_skip){skeys[i].case_id, skeys[i].label,
                                      r->sk_reason + skeys[i].row * r->skr_w};
    }
    int64_t dim[3];
    hv_spine_opts so;
    hv_spine_opts_default(&so);
    dim[0] = so.crop_lr, dim[1] = so.crop_ap, dim[2] = so.crop_rows;
    const size_t vox = (size_t)(dim[0] * dim[1] * dim[2]);
    buf = malloc(vox);
    if (!buf) {
        st = hv_error_set(HV_ERR_NOMEM, "training set merge: out of memory");
        goto done;
    }
    st = writer_open(&w, out_path, total, dim, n ? rf[0].has_cam : 0, NULL,
                     n ? rf[0].band_rows : 40);
    wopen = 1;
    static const char *const vols[] = {"ct", "labels", "cam"};
    for (size_t i = 0; st == HV_OK && i < total; i++) {
        const rfile *r = &rf[keys[i].file];
        hid_t outs[3] = {w.ct, w.lab, w.cam};
        for (int v = 0; v < (r->has_cam ? 3 : 2) && st == HV_OK; v++) {
            hid_t ds = H5Dopen2(r->f, vols[v], H5P_DEFAULT);
            if (ds < 0 || vol_row(ds, keys[i].row, dim, buf, 0) < 0)
                st = hv_error_set(HV_ERR_HDF5, "training set merge: reading /%s of %s label %d "
                                  "from %s", vols[v], keys[i].case_id, keys[i].label,
                                  paths[keys[i].file]);
            else if (vol_row(outs[v], i, dim, buf, 1) < 0)
                st = hv_error_set(HV_ERR_HDF5, "training set merge: writing %s", out_path);
            if (ds >= 0) H5Dclose(ds);
        }
    }
    if (st == HV_OK) st = tables_write(w.f, &t, total, sk, NULL, total_skip, out_path);
done:
    if (wopen) st = writer_close(&w, out_path, st);
    if (st == HV_OK && n_items) *n_items = total;
    if (st == HV_OK && n_skipped) *n_skipped = total_skip;
    for (size_t i = 0; rf && i < n; i++) rfile_close(&rf[i]);
    quiet_off(&q);
    free(rf);
    free(keys);
    free(skeys);
    free(sk);
    free(buf);
    tables_free(&t);
    return st;
}

/* ------------------------------------------------------ the in-memory set */

struct hv_model_trainset {
    size_t n;
    char *path;                      /* the file, for the reads of the cache  */
    int has_cam;
    int64_t dim[3];
    size_t *row;                     /* n: the item's row in the file         */
    char **case_id;
    int *label, *grade;
    hv_model_split *split;
    int8_t *grades;                  /* n * 32 */
    hv_volume **ct, **labels, **cam; /* cam NULL when the file has none */
    size_t n_skip;
    char **sk_case, **sk_reason;
    int *sk_label;
    /* the item cache: an item is resident when ct[i] is set (then all of its
     * volumes are); its bytes are item_bytes */
    size_t item_bytes;               /* one item's volumes                    */
    size_t budget;                   /* bytes, 0: no limit                    */
    uint64_t *used;                  /* n: tick of the last hold/load (LRU)   */
    uint8_t *held;                   /* n: 1 while held                       */
    uint64_t tick;
    hv_model_trainset_cache_stats stats;
    hid_t f, ds[3];                  /* the file and its ct, labels, cam sets, */
                                     /* opened at the first read (-1 before)   */
};

/* Free item i's volumes (resident or partly read). */
static void item_drop(hv_model_trainset *ts, size_t i)
{
    if (ts->ct[i]) ts->stats.resident -= ts->item_bytes;
    hv_vol_free(ts->ct[i]);
    hv_vol_free(ts->labels[i]);
    ts->ct[i] = ts->labels[i] = NULL;
    if (ts->cam) {
        hv_vol_free(ts->cam[i]);
        ts->cam[i] = NULL;
    }
}

void hv_model_trainset_free(hv_model_trainset *ts)
{
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) {
        free(ts->case_id[i]);
        if (ts->ct) item_drop(ts, i);
    }
    for (size_t i = 0; i < ts->n_skip; i++) {
        free(ts->sk_case[i]);
        free(ts->sk_reason[i]);
    }
    h5_quiet q;
    quiet_on(&q);
    for (int v = 0; v < 3; v++)
        if (ts->ds[v] >= 0) H5Dclose(ts->ds[v]);
    if (ts->f >= 0) H5Fclose(ts->f);
    quiet_off(&q);
    free(ts->path);
    free(ts->row);
    free(ts->case_id);
    free(ts->label);
    free(ts->grade);
    free(ts->split);
    free(ts->grades);
    free(ts->ct);
    free(ts->labels);
    free(ts->cam);
    free(ts->used);
    free(ts->held);
    free(ts->sk_case);
    free(ts->sk_reason);
    free(ts->sk_label);
    free(ts);
}

hv_status hv_model_trainset_open_meta(const char *path, unsigned split_mask,
                                      hv_model_trainset **out)
{
    hv_status st = HV_OK;
    hv_model_trainset *ts = NULL;
    rfile r;
    if (!out) return hv_error_set(HV_ERR_ARG, "training set open: bad arguments");
    *out = NULL;
    if (!path) return hv_error_set(HV_ERR_ARG, "training set open: no path");
    h5_quiet q;
    quiet_on(&q);
    if ((st = rfile_open(path, &r)) != HV_OK) {
        quiet_off(&q);
        return st;
    }
    size_t m = 0;
    for (size_t i = 0; i < r.n; i++) m += (split_mask >> r.split[i]) & 1u;
    if (m == 0) {
        char sel[64] = "";
        static const char *const sn[] = {"train", "val", "test", "none"};
        for (int s = 0; s < 4; s++)
            if (split_mask & (1u << s))
                snprintf(sel + strlen(sel), sizeof sel - strlen(sel), "%s%s", sel[0] ? "+" : "",
                         sn[s]);
        st = hv_error_set(HV_ERR_EMPTY, "training set %s: no item in the split%s %s (%zu items "
                          "in the file)", path, strchr(sel, '+') ? "s" : "",
                          sel[0] ? sel : "(none selected)", r.n);
        goto done;
    }
    ts = calloc(1, sizeof *ts);
    if (!ts) goto nomem;
    ts->f = ts->ds[0] = ts->ds[1] = ts->ds[2] = -1;
    ts->path = hv_strdup(path);
    ts->has_cam = r.has_cam;
    memcpy(ts->dim, r.dim, sizeof ts->dim);
    ts->item_bytes = (size_t)(r.dim[0] * r.dim[1] * r.dim[2]) * (r.has_cam ? 3u : 2u);
    ts->row = calloc(m, sizeof *ts->row);
    ts->case_id = calloc(m, sizeof *ts->case_id);
    ts->label = calloc(m, sizeof *ts->label);
    ts->grade = calloc(m, sizeof *ts->grade);
    ts->split = calloc(m, sizeof *ts->split);
    ts->grades = calloc(m, TS_GRADES);
    ts->ct = calloc(m, sizeof *ts->ct);
    ts->labels = calloc(m, sizeof *ts->labels);
    ts->used = calloc(m, sizeof *ts->used);
    ts->held = calloc(m, 1);
    if (r.has_cam) ts->cam = calloc(m, sizeof *ts->cam);
    if (!ts->path || !ts->row || !ts->case_id || !ts->label || !ts->grade || !ts->split ||
        !ts->grades || !ts->ct || !ts->labels || !ts->used || !ts->held ||
        (r.has_cam && !ts->cam))
        goto nomem;
    for (size_t i = 0; i < r.n; i++) {
        if (!((split_mask >> r.split[i]) & 1u)) continue;
        size_t o = ts->n++;
        ts->row[o] = i;
        ts->case_id[o] = hv_strdup(r.cases + i * r.case_w);
        ts->label[o] = r.label[i];
        ts->grade[o] = r.grade[i];
        ts->split[o] = (hv_model_split)r.split[i];
        memcpy(ts->grades + o * TS_GRADES, r.grades + i * TS_GRADES, TS_GRADES);
        if (!ts->case_id[o]) goto nomem;
    }
    if (r.n_skip) {
        ts->sk_case = calloc(r.n_skip, sizeof *ts->sk_case);
        ts->sk_reason = calloc(r.n_skip, sizeof *ts->sk_reason);
        ts->sk_label = calloc(r.n_skip, sizeof *ts->sk_label);
        if (!ts->sk_case || !ts->sk_reason || !ts->sk_label) goto nomem;
        ts->n_skip = r.n_skip;
        for (size_t i = 0; i < r.n_skip; i++) {
            ts->sk_case[i] = hv_strdup(r.sk_case + i * r.skc_w);
            ts->sk_reason[i] = hv_strdup(r.sk_reason + i * r.skr_w);
            ts->sk_label[i] = r.sk_label[i];
            if (!ts->sk_case[i] || !ts->sk_reason[i]) goto nomem;
        }
    }
    goto done;
nomem:
    st = hv_error_set(HV_ERR_NOMEM, "training set %s: out of memory", path);
done:
    rfile_close(&r);
    quiet_off(&q);
    if (st != HV_OK) {
        hv_model_trainset_free(ts);
        return st;
    }
    *out = ts;
    return HV_OK;
}

/* The file and its volume datasets, opened once and kept until the set is
 * freed (HDF5 errors quiet: the caller's). */
static hv_status file_ready(hv_model_trainset *ts)
{
    if (ts->f >= 0) return HV_OK;
    static const char *const dn[3] = {"ct", "labels", "cam"};
    hid_t f = H5Fopen(ts->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return hv_error_set(HV_ERR_HDF5, "training set %s: cannot open it again", ts->path);
    hid_t ds[3] = {-1, -1, -1};
    for (int v = 0; v < (ts->has_cam ? 3 : 2); v++)
        if ((ds[v] = H5Dopen2(f, dn[v], H5P_DEFAULT)) < 0) {
            for (int u = 0; u < v; u++) H5Dclose(ds[u]);
            H5Fclose(f);
            return hv_error_set(HV_ERR_HDF5, "training set %s: no dataset /%s", ts->path, dn[v]);
        }
    ts->f = f;
    memcpy(ts->ds, ds, sizeof ds);
    return HV_OK;
}

/* Evict least recently used items that are not held until `need` more
 * bytes fit the budget, or no such item is left (a scan of the items per
 * eviction: a few thousand bytes read against a 12 MiB item read). */
static void make_room(hv_model_trainset *ts, size_t need)
{
    if (ts->budget == 0) return;
    while (ts->stats.resident + need > ts->budget) {
        size_t victim = ts->n;
        for (size_t i = 0; i < ts->n; i++)
            if (ts->ct[i] && !ts->held[i] && (victim == ts->n || ts->used[i] < ts->used[victim]))
                victim = i;
        if (victim == ts->n) return; /* only held items are resident */
        item_drop(ts, victim);
        ts->stats.evictions++;
    }
}

/* Read item o's volumes (all or none). */
static hv_status item_read(hv_model_trainset *ts, size_t o)
{
    const double t0 = hv_time_now();
    hv_status st = file_ready(ts);
    hv_volume **dst[3] = {&ts->labels[o], ts->cam ? &ts->cam[o] : NULL, &ts->ct[o]};
    const int dsi[3] = {1, 2, 0}; /* ct last: its pointer marks the item resident */
    for (int v = 0; v < 3 && st == HV_OK; v++) {
        if (!dst[v]) continue;
        hv_volume *vol = NULL;
        if ((st = hv_vol_create(&vol, ts->dim, HV_DTYPE_U8, NULL)) != HV_OK) break;
        if (vol_row(ts->ds[dsi[v]], ts->row[o], ts->dim, vol->data, 0) < 0) {
            hv_vol_free(vol);
            st = hv_error_set(HV_ERR_HDF5, "training set %s: reading item %zu (%s label %d)",
                              ts->path, ts->row[o], ts->case_id[o], ts->label[o]);
            break;
        }
        *dst[v] = vol;
    }
    if (st != HV_OK) {
        item_drop(ts, o); /* ct is not set: nothing was counted */
        return st;
    }
    ts->stats.resident += ts->item_bytes;
    if (ts->stats.resident > ts->stats.peak) ts->stats.peak = ts->stats.resident;
    ts->stats.loads++;
    ts->stats.read_s += hv_time_now() - t0;
    return HV_OK;
}

/* hold (replace = 1) or load (0): see hv/model.h */
static hv_status make_resident(hv_model_trainset *ts, const size_t *idx, size_t n, int replace,
                               const char *what)
{
    if (!ts || (n && !idx)) return hv_error_set(HV_ERR_ARG, "training set %s: bad arguments", what);
    for (size_t k = 0; k < n; k++)
        if (idx[k] >= ts->n)
            return hv_error_set(HV_ERR_ARG, "training set %s: item %zu outside [0, %zu)", what,
                                idx[k], ts->n);
    if (replace) memset(ts->held, 0, ts->n);
    for (size_t k = 0; k < n; k++) {
        ts->held[idx[k]] = 1;
        ts->used[idx[k]] = ++ts->tick;
    }
    hv_status st = HV_OK;
    h5_quiet q;
    quiet_on(&q);
    for (size_t k = 0; k < n && st == HV_OK; k++) {
        if (ts->ct[idx[k]]) continue;
        make_room(ts, ts->item_bytes);
        st = item_read(ts, idx[k]);
    }
    make_room(ts, 0); /* a lowered budget */
    quiet_off(&q);
    return st;
}

hv_status hv_model_trainset_hold(hv_model_trainset *ts, const size_t *idx, size_t n)
{
    return make_resident(ts, idx, n, 1, "hold");
}

hv_status hv_model_trainset_hold_order(hv_model_trainset *ts, const size_t *sel,
                                       const size_t *order, size_t n)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return hv_error_set(HV_ERR_NOMEM, "training set: out of memory");
    for (size_t k = 0; k < n; k++) idx[k] = sel[order[k]];
    hv_status st = make_resident(ts, idx, n, 1, "hold");
    free(idx);
    return st;
}

hv_status hv_model_trainset_load(hv_model_trainset *ts, const size_t *idx, size_t n)
{
    return make_resident(ts, idx, n, 0, "load");
}

void hv_model_trainset_release(hv_model_trainset *ts, size_t i)
{
    if (!ts || i >= ts->n) return;
    item_drop(ts, i);
    ts->held[i] = 0;
}

void hv_model_trainset_set_budget(hv_model_trainset *ts, size_t bytes)
{
    if (ts) ts->budget = bytes;
}

size_t hv_model_trainset_item_bytes(const hv_model_trainset *ts) { return ts ? ts->item_bytes : 0; }

void hv_model_trainset_cache_get(const hv_model_trainset *ts, hv_model_trainset_cache_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (ts) *out = ts->stats;
}

hv_status hv_model_trainset_open(const char *path, unsigned split_mask, hv_model_trainset **out)
{
    hv_model_trainset *ts = NULL;
    hv_status st = hv_model_trainset_open_meta(path, split_mask, &ts);
    if (st != HV_OK) return st;
    size_t *all = malloc(ts->n * sizeof *all);
    if (!all) {
        hv_model_trainset_free(ts);
        return hv_error_set(HV_ERR_NOMEM, "training set %s: out of memory", path);
    }
    for (size_t i = 0; i < ts->n; i++) all[i] = i;
    st = hv_model_trainset_load(ts, all, ts->n);
    free(all);
    if (st != HV_OK) {
        hv_model_trainset_free(ts);
        return st;
    }
    *out = ts;
    return HV_OK;
}

size_t hv_model_trainset_size(const hv_model_trainset *ts) { return ts ? ts->n : 0; }

hv_status hv_model_trainset_item(const hv_model_trainset *ts, size_t i, hv_model_train_item *out)
{
    if (!ts || !out || i >= ts->n)
        return hv_error_set(HV_ERR_ARG, "training set: item %zu outside [0, %zu)", i,
                            ts ? ts->n : 0);
    out->case_id = ts->case_id[i];
    out->label = ts->label[i];
    out->grade = ts->grade[i];
    out->split = ts->split[i];
    out->case_grades = ts->grades + i * TS_GRADES;
    out->ct = ts->ct[i];
    out->labels = ts->labels[i];
    out->cam = ts->cam ? ts->cam[i] : NULL;
    return HV_OK;
}

size_t hv_model_trainset_n_skipped(const hv_model_trainset *ts) { return ts ? ts->n_skip : 0; }

hv_status hv_model_trainset_skipped(const hv_model_trainset *ts, size_t i,
                                    hv_model_train_skip *out)
{
    if (!ts || !out || i >= ts->n_skip)
        return hv_error_set(HV_ERR_ARG, "training set: skipped record %zu outside [0, %zu)", i,
                            ts ? ts->n_skip : 0);
    out->case_id = ts->sk_case[i];
    out->label = ts->sk_label[i];
    out->reason = ts->sk_reason[i];
    return HV_OK;
}
