/*
 * schema.c: the run's HDF5 store, schema v4 (docs/hdf5-schema.md): the row
 * types, creating, opening and closing the file, per-case writes and reads.
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
 * serially reopened file. The images are the exception (images.c): they
 * are chunked and compressed, which needs file space allocated as they are
 * written, i.e. metadata changes; parallel HDF5 allows that only in
 * collective writes, which a dynamic queue cannot provide. So ranks leave
 * them out, and rank 0 writes them serially from the journals: when it
 * rebuilds the store at the start, and at the end of every attempt.
 *
 * The other jobs live beside this file: stages.c (per-stage seconds by
 * name, and v1's fixed array), grader.c (/grader), describe.c (`inspect`:
 * describe and validate), export.c (CSV tables, QC PNGs), h5util.c (HDF5
 * error diagnosis, attributes, raw writes), journal.c.
 *
 * A store of schema v1 opens too, for reading (describe, validate, export,
 * gather): its case rows carry the seconds of six fixed stages, which
 * stages.c reads by name; v2 is v3 with the images uncompressed
 * (contiguous float32 planes and uint8 QC slots); v3 is v4 where the
 * vertebra table may lack the attention columns (added to v3 stores
 * without a version change; v4 always has them, so a reader can tell from
 * the version alone). Writing a case into any of them is refused: the
 * runner always lays out a new store.
 *
 * Layout (N cases, S = 26 vertebra slots per case):
 *   /                      attrs schema, schema_version, state, max_vert, img_size, n_img
 *   /provenance            attrs config, version, git_revision, hdf5_version,
 *                          mpi_library, ranks, attempt, started_utc, ended_utc, input_root
 *   /cases/table           compound[N]       (hv_run_crow)
 *   /cases/seconds         float64[N][T]     per-stage seconds, T = number of stages
 *   /cases/stage_names     string[T]         their names, in column order
 *   /cases/status          enum u8[N]        pending | done | failed (written last)
 *   /vertebrae/table       compound[N*S]     (hv_run_vrow), slot case*S + k
 *   /vertebrae/cam         uint8[N*S][256][256][64] attention maps x 255
 *                          (attention.store = full; chunked per slot,
 *                          deflate; images.c)
 *   /vertebrae/synth_label uint8[N*S][256][256][64] the gan's synthesized
 *                          label crops (synthesis.crops = masks | full)
 *   /vertebrae/synth_ct    the same, its synthesized CT crops (full)
 *   /vertebrae/crop3d      uint8[N*S][64][64][64] (grader.method = senet3d)
 *   /vertebrae/orig_ct     uint8 crops as synth_ct: the original CT crop of
 *                          each synthesized vertebra (full)
 *   /vertebrae/orig_label  the same, its target's de-pedicled body (full)
 *   /images/planes         float32[N*S][n_img][32][32]   (output.images != none;
 *                          chunked per case, shuffle + deflate)
 *   /images/qc             vlen uint8[N*S]: one grey PNG per vertebra slot
 *                          (output.images != none; v2: uint8[N*S][2][2][256][256],
 *                          optional in v1: stores written before it lack it)
 *   /grader                (after gather) attrs + confusion, classes, folds
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

/* -------------------------------------------------------------- row helpers */

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
    free(r->qc_png);
    for (int w = 0; w < HV_STORE_N_VOL; w++) free(r->vol_z[w]);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------- compound types */

/* v1's case row had the same members at the same offsets before its
 * seconds: the v1 type below reuses these offsets. */
_Static_assert(offsetof(hv_run_crow, cost) == 848 && sizeof(hv_run_crow) == 856 &&
                   HV_STORE_V1_SECONDS_OFFSET == sizeof(hv_run_crow),
               "hv_run_crow changed: the v1 file type no longer follows from it");

static hid_t crow_type_of_size(size_t size)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, size);
    hid_t s64 = hv_h5_str_type(64), s256 = hv_h5_str_type(256);
    H5Tinsert(t, "id", offsetof(hv_run_crow, id), s64);
    H5Tinsert(t, "ct_path", offsetof(hv_run_crow, ct_path), s256);
    H5Tinsert(t, "mask_path", offsetof(hv_run_crow, mask_path), s256);
    H5Tinsert(t, "error", offsetof(hv_run_crow, error), s256);
    H5Tinsert(t, "error_code", offsetof(hv_run_crow, error_code), H5T_NATIVE_INT32);
    H5Tinsert(t, "rank", offsetof(hv_run_crow, rank), H5T_NATIVE_INT32);
    H5Tinsert(t, "attempt", offsetof(hv_run_crow, attempt), H5T_NATIVE_INT32);
    H5Tinsert(t, "n_vert", offsetof(hv_run_crow, n_vert), H5T_NATIVE_INT32);
    H5Tinsert(t, "cost", offsetof(hv_run_crow, cost), H5T_NATIVE_DOUBLE);
    H5Tclose(s64);
    H5Tclose(s256);
    return t;
}

hid_t hv_store_crow_type(void)
{
    return crow_type_of_size(sizeof(hv_run_crow));
}

hid_t hv_store_crow_v1_type(void)
{
    hid_t t = crow_type_of_size(HV_STORE_V1_CROW_SIZE);
    hsize_t ns = HV_STORE_V1_STAGES;
    hid_t sec = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &ns);
    H5Tinsert(t, "seconds", HV_STORE_V1_SECONDS_OFFSET, sec);
    H5Tclose(sec);
    return t;
}

/* The vertebra row; with_attn 0: as stores written before the attention
 * columns have it (the members up to rhlv, the size up to p_fracture). */
static hid_t vrow_type(int with_attn)
{
    hid_t t = H5Tcreate(H5T_COMPOUND,
                        with_attn ? sizeof(hv_run_vrow) : offsetof(hv_run_vrow, p_fracture));
    hid_t s8 = hv_h5_str_type(8);
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
    if (with_attn) {
        H5Tinsert(t, "p_fracture", offsetof(hv_run_vrow, p_fracture), H5T_NATIVE_DOUBLE);
        H5Tinsert(t, "cam_mass_body", offsetof(hv_run_vrow, cam_mass_body), H5T_NATIVE_DOUBLE);
        H5Tinsert(t, "cam_max_slice", offsetof(hv_run_vrow, cam_max_slice), H5T_NATIVE_INT32);
        H5Tinsert(t, "pad2_", offsetof(hv_run_vrow, pad2_), H5T_NATIVE_INT32);
    }
    H5Tclose(s8);
    H5Tclose(a3);
    H5Tclose(a4);
    return t;
}

hid_t hv_store_vrow_type(void) { return vrow_type(1); }
hid_t hv_store_vrow_type_noattn(void) { return vrow_type(0); }

hid_t hv_store_status_type(void)
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

hv_status hv_store_set_attr_str(hv_store *s, const char *obj, const char *name,
                                const char *value)
{
    hid_t o = H5Oopen(s->file, obj, H5P_DEFAULT);
    if (o < 0) return hv_error_set(HV_ERR_HDF5, "store: no object %s", obj);
    hv_status st = hv_h5_attr_str(o, name, value);
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

/* Set when an H5Fclose of a store failed (hv_store_close_failed). */
static int close_failed;

int hv_store_close_failed(void) { return close_failed; }

static void store_free(hv_store *s)
{
    if (!s) return;
    if (s->qc >= 0) H5Dclose(s->qc);
    for (int w = 0; w < HV_STORE_N_VOL; w++)
        if (s->vol[w] >= 0) H5Dclose(s->vol[w]);
    if (s->images >= 0) H5Dclose(s->images);
    if (s->verts >= 0) H5Dclose(s->verts);
    if (s->status >= 0) H5Dclose(s->status);
    if (s->seconds >= 0) H5Dclose(s->seconds);
    if (s->cases >= 0) H5Dclose(s->cases);
    if (s->file >= 0 && H5Fclose(s->file) < 0) close_failed = 1;
    free(s);
}

static hv_store *store_alloc(void)
{
    hv_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->file = s->cases = s->seconds = s->status = s->verts = s->images = s->qc = -1;
    for (int w = 0; w < HV_STORE_N_VOL; w++) s->vol[w] = -1;
    return s;
}

hv_status hv_store_create(const char *path, const hv_store_create_info *info,
                          const hv_run_crow *cases, hv_store **out)
{
    *out = NULL;
    hv_h5_quiet();
    hv_status st = hv_store_check_stages(info->n_stages, info->stage_names);
    if (st != HV_OK) return hv_error_wrap(st, "store %s", path);
    hid_t g = -1, ct = -1, vt = -1, et = -1, fapl = -1, nt = -1, d = -1;
    uint8_t *stat0 = NULL;
    double *sec0 = NULL;
    hv_store *s = store_alloc();
    if (!s) return hv_error_set(HV_ERR_NOMEM, "store: out of memory");
    s->n_cases = info->n_cases;
    s->n_img = info->n_img;
    s->version = HV_STORE_SCHEMA_VERSION;
    hv_store_set_stages(s, info->n_stages, info->stage_names);

    /* 1 MiB alignment for big objects keeps ranks' slots off shared FS blocks
     * only where it matters (large datasets); small metadata stays packed. */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_alignment(fapl, 1 << 20, 1 << 20);
    s->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5CHK(s->file, "cannot create store %s", path);

    ATTRCHK(hv_h5_attr_str(s->file, "schema", "healthivert-store"));
    ATTRCHK(hv_h5_attr_int(s->file, "schema_version", HV_STORE_SCHEMA_VERSION));
    ATTRCHK(hv_h5_attr_str(s->file, "state", "running"));
    ATTRCHK(hv_h5_attr_int(s->file, "max_vert", HV_RUN_MAX_VERT));
    ATTRCHK(hv_h5_attr_int(s->file, "img_size", HV_RUN_IMG));
    ATTRCHK(hv_h5_attr_int(s->file, "n_img", info->n_img));

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
        st = hv_h5_attr_str(g, "config", info->config_text ? info->config_text : "");
        if (st == HV_OK) st = hv_h5_attr_str(g, "version", hv_version());
        if (st == HV_OK) st = hv_h5_attr_str(g, "git_revision", hv_git_revision());
        if (st == HV_OK) st = hv_h5_attr_str(g, "hdf5_version", h5ver);
        if (st == HV_OK) st = hv_h5_attr_str(g, "mpi_library", mpiver);
        if (st == HV_OK) st = hv_h5_attr_int(g, "ranks", info->ranks);
        if (st == HV_OK) st = hv_h5_attr_int(g, "attempt", info->attempt);
        if (st == HV_OK) st = hv_h5_attr_str(g, "started_utc", info->started_utc);
        if (st == HV_OK) st = hv_h5_attr_str(g, "ended_utc", "");
        if (st == HV_OK) st = hv_h5_attr_str(g, "input_root", info->input_root ? info->input_root : "");
        if (st != HV_OK) goto done;
    }
    H5Gclose(g);
    g = -1;

    hsize_t n = (hsize_t)info->n_cases;
    hsize_t nv = n * HV_RUN_MAX_VERT;
    ct = hv_store_crow_type();
    vt = hv_store_vrow_type();
    et = hv_store_status_type();
    g = H5Gcreate2(s->file, "cases", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(g, "cannot create /cases");
    s->cases = make_dataset(g, "table", ct, 1, &n);
    H5CHK(s->cases, "cannot create /cases/table");
    s->status = make_dataset(g, "status", et, 1, &n);
    H5CHK(s->status, "cannot create /cases/status");
    hsize_t nsec[2] = {n, (hsize_t)s->n_stages};
    s->seconds = make_dataset(g, "seconds", H5T_IEEE_F64LE, 2, nsec);
    H5CHK(s->seconds, "cannot create /cases/seconds");
    if ((st = hv_h5_attr_str(s->seconds, "units", "s")) != HV_OK) goto done;
    {
        /* the column names, written once here: the layout is serial */
        hsize_t nn = (hsize_t)s->n_stages;
        hid_t sp = H5Screate_simple(1, &nn, NULL);
        nt = hv_store_stage_name_type();
        d = H5Dcreate2(g, "stage_names", nt, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Sclose(sp);
        H5CHK(d, "cannot create /cases/stage_names");
        H5CHK(H5Dwrite(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->stage_buf),
              "cannot write /cases/stage_names");
    }
    H5Gclose(g);
    g = H5Gcreate2(s->file, "vertebrae", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(g, "cannot create /vertebrae");
    s->verts = make_dataset(g, "table", vt, 1, &nv);
    H5CHK(s->verts, "cannot create /vertebrae/table");
    {
        /* the optional crop volumes (hv_store_vol) */
        const int want[HV_STORE_N_VOL] = {info->cam != 0, info->synth_crops >= 1,
                                          info->synth_crops >= 2, info->crop3d != 0,
                                          info->synth_crops >= 2, info->synth_crops >= 2};
        for (int w = 0; w < HV_STORE_N_VOL; w++) {
            if (!want[w]) continue;
            s->vol[w] = hv_store_make_vol(g, w, nv);
            H5CHK(s->vol[w], "cannot create /vertebrae/%s", hv_store_vol_name(w));
            s->has_vol[w] = 1;
        }
    }
    H5Gclose(g);
    g = -1;
    if (info->n_img > 0) {
        g = H5Gcreate2(s->file, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(g, "cannot create /images");
        hsize_t d4[4] = {nv, (hsize_t)info->n_img, HV_RUN_IMG, HV_RUN_IMG};
        s->images = hv_store_make_planes(g, d4);
        H5CHK(s->images, "cannot create /images/planes");
        ATTRCHK(hv_h5_attr_str(s->images, "planes",
                               info->n_img == 1 ? "loss" : "loss,h_ori,h_syn"));
        ATTRCHK(hv_h5_attr_str(s->images, "units", "loss: fraction; h_ori, h_syn: mm"));
        s->qc = hv_store_make_qc(g, nv);
        H5CHK(s->qc, "cannot create /images/qc");
        ATTRCHK(hv_h5_attr_str(s->qc, "views", "sagittal,coronal"));
        ATTRCHK(hv_h5_attr_str(s->qc, "channels", "ct,label"));
        ATTRCHK(hv_h5_attr_str(s->qc, "encoding",
                               "png: one 8-bit grey PNG of 256 x 1024 per vertebra slot, "
                               "its rows the slot's [view][channel][row] in order; "
                               "empty = no picture"));
        ATTRCHK(hv_h5_attr_str(s->qc, "meaning",
                               "straightened crop of the vertebra: mid-sagittal and "
                               "mid-coronal slice, row 0 cranial; ct = HU window [-300, 800] "
                               "as 0..255; label = 255 inside the target's de-pedicled body "
                               "label; empty (or all zero) = no picture"));
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
        /* pending cases read 0 seconds, as their v1 rows did */
        sec0 = calloc((size_t)n * (size_t)s->n_stages, sizeof *sec0);
        if (!sec0) {
            st = hv_error_set(HV_ERR_NOMEM, "store: out of memory");
            goto done;
        }
        H5CHK(H5Dwrite(s->seconds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sec0),
              "cannot write /cases/seconds");
    }
    *out = s;
    s = NULL;
done:
    free(stat0);
    free(sec0);
    if (d >= 0) H5Dclose(d);
    if (nt >= 0) H5Tclose(nt);
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
    if (!hv_h5_read_attr_long(s->file, "schema_version", &ver))
        return hv_error_set(HV_ERR_FORMAT, "not a healthivert store (no schema_version)");
    if (ver < 1 || ver > HV_STORE_SCHEMA_VERSION)
        return hv_error_set(HV_ERR_FORMAT, "store schema version %ld; this build reads 1 to %d",
                            ver, HV_STORE_SCHEMA_VERSION);
    s->version = (int)ver;
    s->cases = H5Dopen2(s->file, "cases/table", H5P_DEFAULT);
    H5CHK(s->cases, "store: no /cases/table");
    if (s->version == 1) {
        hv_store_set_stages(s, HV_STORE_V1_STAGES, hv_store_v1_stage_names);
    } else {
        s->seconds = H5Dopen2(s->file, "cases/seconds", H5P_DEFAULT);
        H5CHK(s->seconds, "store: no /cases/seconds");
        if ((st = hv_store_load_stages(s)) != HV_OK) goto done;
    }
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
    hv_h5_read_attr_long(s->file, "n_img", &ni);
    s->n_img = (int)ni;
    /* Not through MPI-IO: ranks never write the images (images.c), and
     * HDF5's MPI-IO driver allocates every chunk of a chunked dataset when
     * it is opened for writing (early allocation is required there). That
     * allocation is metadata (chunk index, fill chunks) the collective
     * close must then flush; on a full disk one rank's share of that flush
     * failed, it left the flush early and the other rank waited in a
     * barrier inside H5Fclose forever. With only the contiguous, allocated
     * datasets open, the collective close has nothing to write. */
    if (s->n_img > 0 && !s->mpi) {
        s->images = H5Dopen2(s->file, "images/planes", H5P_DEFAULT);
        H5CHK(s->images, "store: no /images/planes although n_img = %d", s->n_img);
        /* optional within v1 (stores written before the QC pictures lack it) */
        if (s->version > 1 || H5Lexists(s->file, "images/qc", H5P_DEFAULT) > 0) {
            s->qc = H5Dopen2(s->file, "images/qc", H5P_DEFAULT);
            H5CHK(s->qc, "store: cannot open /images/qc");
        }
    }
    /* the crop volumes (attention maps, synthesized crops): chunked and
     * compressed like the images, so for the same reason not opened
     * through MPI-IO (rank 0 writes them) */
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        char name[64];
        snprintf(name, sizeof name, "vertebrae/%s", hv_store_vol_name(w));
        s->has_vol[w] = H5Lexists(s->file, "vertebrae", H5P_DEFAULT) > 0 &&
                        H5Lexists(s->file, name, H5P_DEFAULT) > 0;
        if (s->has_vol[w] && !s->mpi) {
            s->vol[w] = H5Dopen2(s->file, name, H5P_DEFAULT);
            H5CHK(s->vol[w], "store: cannot open /%s", name);
        }
    }
done:
    return st;
}

hv_status hv_store_open_mpi(const char *path, MPI_Comm comm, hv_store **out)
{
    *out = NULL;
    hv_h5_quiet();
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
    hv_h5_quiet();
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
    for (int w = 0; w < HV_STORE_N_VOL; w++)
        if (s->vol[w] >= 0) H5Dclose(s->vol[w]);
    if (s->images >= 0) H5Dclose(s->images);
    if (s->verts >= 0) H5Dclose(s->verts);
    if (s->status >= 0) H5Dclose(s->status);
    if (s->seconds >= 0) H5Dclose(s->seconds);
    if (s->cases >= 0) H5Dclose(s->cases);
    errno = 0;
    if (s->file >= 0 && H5Fclose(s->file) < 0) {
        close_failed = 1;
        st = hv_h5_fail(errno, "store: close failed");
    }
    free(s);
    return st;
}

long hv_store_n_cases(const hv_store *s) { return s->n_cases; }
int hv_store_n_img(const hv_store *s) { return s->n_img; }

hv_status hv_store_put_case(hv_store *s, long ci, const hv_case_result *r)
{
    if (ci < 0 || ci >= s->n_cases) return hv_error_set(HV_ERR_ARG, "store: case %ld out of range", ci);
    if (s->version != HV_STORE_SCHEMA_VERSION)
        return hv_error_set(HV_ERR_UNSUPPORTED, "store: schema v%d is read-only (this build writes "
                            "v%d; a run lays out a new store)", s->version, HV_STORE_SCHEMA_VERSION);
    hv_status st = HV_OK;
    hid_t ct = hv_store_crow_type(), vt = hv_store_vrow_type(), et = hv_store_status_type();
    int nv = r->state == HV_CASE_DONE ? r->c.n_vert : 0;
    if (nv > 0) {
        hv_run_vrow rows[HV_RUN_MAX_VERT];
        memcpy(rows, r->v, (size_t)nv * sizeof rows[0]);
        for (int k = 0; k < nv; k++) rows[k].case_index = (int32_t)ci;
        st = hv_h5_write_rows(s->verts, vt, (hsize_t)ci * HV_RUN_MAX_VERT, (hsize_t)nv, 1, NULL, rows);
        if (st != HV_OK) goto done;
        /* compressed images need file space as they are written: serial
         * only (images.c); through MPI-IO rank 0 writes them later */
        if (!s->mpi && (st = hv_store_put_images(s, ci, r)) != HV_OK) goto done;
    }
    hsize_t ns = (hsize_t)s->n_stages;
    st = hv_h5_write_rows(s->seconds, H5T_NATIVE_DOUBLE, (hsize_t)ci, 1, 2, &ns, r->seconds);
    if (st != HV_OK) goto done;
    st = hv_h5_write_rows(s->cases, ct, (hsize_t)ci, 1, 1, NULL, &r->c);
    if (st != HV_OK) goto done;
    uint8_t sv = (uint8_t)r->state;
    st = hv_h5_write_rows(s->status, et, (hsize_t)ci, 1, 1, NULL, &sv);
done:
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
    hid_t ct = hv_store_crow_type(), et = hv_store_status_type();
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

void hv_run_vrow_attn_none(hv_run_vrow *r)
{
    r->p_fracture = NAN;
    r->cam_mass_body = NAN;
    r->cam_max_slice = -1;
    r->pad2_ = 0;
}

hv_status hv_store_read_vertebrae(hv_store *s, hv_run_vrow **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    hv_status st = HV_OK;
    hv_run_crow *cr = NULL;
    uint8_t *stt = NULL;
    hv_run_vrow *out = NULL;
    hid_t vt = hv_store_vrow_type();
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
    /* a store written before the attention columns has no such members:
     * HDF5 leaves them as they are, so they read as "no value" */
    for (size_t q = 0; q < total; q++) hv_run_vrow_attn_none(&out[q]);
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
        st = hv_h5_write_rows(s->verts, mt, (hsize_t)rows[i].case_index * HV_RUN_MAX_VERT,
                        (hsize_t)(j - i), 1, NULL, buf);
        if (st != HV_OK) break;
        i = j;
    }
    H5Tclose(mt);
    return st;
}

hv_status hv_store_read_tables(hv_store *s, hv_run_crow **cr, uint8_t **stt, double **secs,
                               hv_run_vrow **vr, size_t *nv)
{
    const size_t nc = (size_t)s->n_cases, ns = (size_t)s->n_stages;
    hv_status st = HV_OK;
    *cr = malloc((nc ? nc : 1) * sizeof **cr);
    *stt = malloc(nc ? nc : 1);
    *secs = malloc((nc ? nc : 1) * ns * sizeof **secs);
    *vr = NULL;
    *nv = 0;
    if (!*cr || !*stt || !*secs) st = hv_error_set(HV_ERR_NOMEM, "out of memory for %zu cases", nc);
    if (st == HV_OK) st = hv_store_read_cases(s, *cr, *stt);
    if (st == HV_OK) st = hv_store_read_seconds(s, *secs);
    if (st == HV_OK) st = hv_store_read_vertebrae(s, vr, nv);
    return st; /* on failure the caller frees what was allocated */
}
