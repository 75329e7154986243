/*
 * images.c: the store's images since schema v3 (docs/hdf5-schema.md): the
 * height-loss planes chunked per case and deflated, the QC pictures as one
 * PNG per vertebra slot; encoding, serial writes and reads (v2/v1 too).
 *
 * Why PNG and not HDF5's deflate filter on the raw slots: measured on the
 * main job's pictures (phantom, 1.5 mm, 20 HU noise) a raw 256 KiB slot
 * deflates to ~33 KB, i.e. ~0.56 MB per 17-vertebra case, over the issue's
 * 0.5 MB; the CT is noisy and deflate alone cannot predict pixels from
 * their neighbours. PNG's Paeth filter does, and brings a slot to ~25 KB
 * (bench/store). PNG is also what any reader decodes without our code (one
 * call of any PNG library on the bytes h5py returns), which a private
 * prediction filter inside HDF5 would not be.
 *
 * Why written serially: a compressed picture's size is known only once it
 * is drawn, so its file space must be allocated as it is written, which
 * changes HDF5 metadata; parallel HDF5 allows that only collectively, and
 * ranks of a dynamic queue finish cases at different times. So the rank
 * that drew a case encodes its PNGs (in parallel, timed as the `store`
 * stage), they travel in its journal record, and rank 0 copies the bytes
 * into the store, serially, without recompressing: at every start's rebuild
 * and at the end of the attempt (src/mpi/resume.c, hv_resume_images).
 *
 * The attention maps (attention.store = full) and the gan's synthesized
 * label and CT crops (synthesis.crops; /vertebrae/synth_label,
 * /vertebrae/synth_ct: u8 crops of the same layout, hv_store_crop_encode;
 * with synthesis.crops = full also the original crops they replace,
 * /vertebrae/orig_ct and orig_label) go the same way: the rank
 * that made a map deflates it into the exact bytes of its HDF5 chunk
 * (hv_store_cam_encode: zlib, which is what HDF5's deflate filter reads),
 * the bytes travel in the journal record, and rank 0 hands them to
 * H5Dwrite_chunk unchanged: no recompression on the serial path, and the
 * compression work stays spread over the ranks. /vertebrae/cam is u8
 * [N*S][256][256][64], one chunk per vertebra slot (4 MiB raw; zero on 34
 * of 64 slices; a bilinear ramp deflates poorly, ~0.6 MiB a chunk measured
 * with the tests' random classifier), fill value 0 = no map.
 *
 * /images/qc is a variable-length uint8 dataset [N*S] (each element one
 * PNG's bytes, empty for no picture), chunked one case (S elements) a chunk
 * so that unwritten cases take no space; /images/planes float32
 * [N*S][n_img][I][I], chunked one case a chunk, shuffle + deflate 6.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hv/io.h"
#include "store_internal.h"

/* ------------------------------------------------------------- layout */

hid_t hv_store_make_planes(hid_t g, const hsize_t *dims)
{
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[4] = {HV_RUN_MAX_VERT, dims[1], dims[2], dims[3]};
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 6);
    hid_t d = H5Dcreate2(g, "planes", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

hid_t hv_store_qc_png_type(void) { return H5Tvlen_create(H5T_STD_U8LE); }

hid_t hv_store_make_qc(hid_t g, hsize_t nv)
{
    hid_t sp = H5Screate_simple(1, &nv, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = HV_RUN_MAX_VERT;
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t t = hv_store_qc_png_type();
    hid_t d = H5Dcreate2(g, "qc", t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Tclose(t);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

static const char *const vol_names[HV_STORE_N_VOL] = {"cam",    "synth_label", "synth_ct",
                                                       "crop3d", "orig_ct",     "orig_label"};
static const char *const vol_meaning[HV_STORE_N_VOL] = {
    "Grad-CAM++ map of the vertebra's crop (spec 7) x 255, truncated; crop layout [k rows "
    "caudal first][j AP][i LR]; zeros outside LR slices 17..46 and in slots without a map",
    "the gan's synthesized label crop (labels of the composite: the target restored, its "
    "neighbours shifted, on the synthesized LR slices; the input crop's labels elsewhere); crop "
    "layout [k rows caudal first][j AP][i LR]; all zero in slots without a synthesis (a "
    "vertebra flagged synth_fallback, or no vertebra)",
    "the gan's synthesized CT crop (the fused pseudo-healthy CT on synthesized voxels, the "
    "input crop's CT elsewhere; 0..255 as the crops, truncated); crop layout [k rows caudal "
    "first][j AP][i LR]; all zero in slots without a synthesis",
    "the 3-D grader's input (grader.method = senet3d): a 64 x 64 x 64 box of the vertebra's "
    "straightened crop (windowed CT 0..255, truncated): every LR column, AP columns 96..159 "
    "and rows 96..159 of the crop, i.e. centred on the target's body row and the "
    "cross-section's centre; [k rows caudal first][j AP][i LR]; all zero in slots without a "
    "crop",
    "the original CT crop of each synthesized vertebra (the gan's input crop: windowed CT "
    "0..255 truncated, as synth_ct); crop layout [k rows caudal first][j AP][i LR]; all zero "
    "in slots without a synthesis",
    "the original crop's target: the vertebra's de-pedicled body (its label value inside, 0 "
    "elsewhere; the other levels of the crop are not kept); crop layout [k rows caudal "
    "first][j AP][i LR]; all zero in slots without a synthesis"};

const char *hv_store_vol_name(int w)
{
    return w >= 0 && w < HV_STORE_N_VOL ? vol_names[w] : NULL;
}

void hv_store_vol_dims(int w, int64_t dims[3])
{
    if (w == HV_STORE_VOL_CROP3D) {
        dims[0] = dims[1] = dims[2] = HV_RUN_BOX;
    } else if (w >= 0 && w < HV_STORE_N_VOL) {
        dims[0] = HV_RUN_CAM_I;
        dims[1] = HV_RUN_CAM_J;
        dims[2] = HV_RUN_CAM_K;
    } else {
        dims[0] = dims[1] = dims[2] = 0;
    }
}

size_t hv_store_vol_bytes(int w)
{
    int64_t d[3];
    hv_store_vol_dims(w, d);
    return (size_t)d[0] * (size_t)d[1] * (size_t)d[2];
}

hid_t hv_store_make_vol(hid_t g, int w, hsize_t nv)
{
    if (w < 0 || w >= HV_STORE_N_VOL) return -1;
    int64_t vd[3];
    hv_store_vol_dims(w, vd);
    hsize_t dims[4] = {nv, (hsize_t)vd[2], (hsize_t)vd[1], (hsize_t)vd[0]};
    hsize_t chunk[4] = {1, (hsize_t)vd[2], (hsize_t)vd[1], (hsize_t)vd[0]};
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_deflate(dcpl, 6);
    uint8_t zero = 0;
    H5Pset_fill_value(dcpl, H5T_NATIVE_UINT8, &zero);
    hid_t d = H5Dcreate2(g, vol_names[w], H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (d >= 0 && hv_h5_attr_str(d, "meaning", vol_meaning[w]) != HV_OK) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

int hv_store_has_vol(const hv_store *s, int w)
{
    return w >= 0 && w < HV_STORE_N_VOL && s->has_vol[w];
}

int hv_store_has_cam(const hv_store *s) { return hv_store_has_vol(s, HV_STORE_VOL_CAM); }

/* ------------------------------------------------------------ encoding */

static int crop_dims(const hv_volume *v)
{
    return v->dim[0] == HV_RUN_CAM_I && v->dim[1] == HV_RUN_CAM_J && v->dim[2] == HV_RUN_CAM_K;
}

/* nb bytes u into one chunk's zlib stream (what HDF5's deflate filter
 * reads); `what` names the volume in messages. */
static hv_status deflate_bytes(const uint8_t *u, size_t nb, const char *what, uint8_t **z,
                               size_t *len)
{
    uLongf zl = compressBound((uLong)nb);
    uint8_t *out = malloc(zl);
    if (!out) return hv_error_set(HV_ERR_NOMEM, "%s: out of memory", what);
    int zr = compress2(out, &zl, u, (uLong)nb, 6);
    if (zr != Z_OK) {
        free(out);
        return hv_error_set(HV_ERR_NOMEM, "%s: deflate failed (%d)", what, zr);
    }
    *z = out;
    *len = (size_t)zl;
    return HV_OK;
}

static hv_status deflate_chunk(const uint8_t *u, const char *what, uint8_t **z, size_t *len)
{
    return deflate_bytes(u, HV_RUN_CAM_BYTES, what, z, len);
}

hv_status hv_store_cam_encode(const hv_volume *cam, uint8_t **z, size_t *len)
{
    *z = NULL;
    *len = 0;
    if (cam->dtype != HV_DTYPE_F32 || !crop_dims(cam))
        return hv_error_set(HV_ERR_ARG, "attention map: F32 %d x %d x %d expected", HV_RUN_CAM_I,
                            HV_RUN_CAM_J, HV_RUN_CAM_K);
    uint8_t *u = malloc(HV_RUN_CAM_BYTES);
    if (!u) return hv_error_set(HV_ERR_NOMEM, "attention map: out of memory");
    const float *f = cam->data;
    for (size_t q = 0; q < HV_RUN_CAM_BYTES; q++) {
        float v = f[q];
        /* x 255 and the reference's uint8 cast (truncation); NaN -> 0 */
        u[q] = !(v > 0) ? 0 : v >= 1 ? 255 : (uint8_t)(v * 255.0f);
    }
    hv_status st = deflate_chunk(u, "attention map", z, len);
    free(u);
    return st;
}

hv_status hv_store_crop_encode(const hv_volume *v, uint8_t **z, size_t *len)
{
    *z = NULL;
    *len = 0;
    if (v->dtype != HV_DTYPE_U8 || !crop_dims(v))
        return hv_error_set(HV_ERR_ARG, "crop volume: U8 %d x %d x %d expected, not %s %lld x "
                            "%lld x %lld", HV_RUN_CAM_I, HV_RUN_CAM_J, HV_RUN_CAM_K,
                            v->dtype == HV_DTYPE_U8 ? "U8" : "another type", (long long)v->dim[0],
                            (long long)v->dim[1], (long long)v->dim[2]);
    return deflate_chunk(v->data, "crop volume", z, len);
}

hv_status hv_store_vol_encode(int w, const hv_volume *v, uint8_t **z, size_t *len)
{
    *z = NULL;
    *len = 0;
    if (w != HV_STORE_VOL_CROP3D) return hv_store_crop_encode(v, z, len);
    if (v->dtype != HV_DTYPE_U8 || v->dim[0] != HV_RUN_BOX || v->dim[1] != HV_RUN_BOX ||
        v->dim[2] != HV_RUN_BOX)
        return hv_error_set(HV_ERR_ARG, "crop3d box: U8 %d x %d x %d expected, not %s %lld x "
                            "%lld x %lld", HV_RUN_BOX, HV_RUN_BOX, HV_RUN_BOX,
                            v->dtype == HV_DTYPE_U8 ? "U8" : "another type", (long long)v->dim[0],
                            (long long)v->dim[1], (long long)v->dim[2]);
    return deflate_bytes(v->data, HV_RUN_BOX_BYTES, "crop3d box", z, len);
}

hv_status hv_store_qc_encode(hv_case_result *r)
{
    if (!r->qc) return HV_OK;
    int nv = r->c.n_vert;
    if (nv < 0 || nv > HV_RUN_MAX_VERT)
        return hv_error_set(HV_ERR_ARG, "qc pictures: %d vertebrae", nv);
    uint8_t *png[HV_RUN_MAX_VERT] = {NULL};
    size_t len[HV_RUN_MAX_VERT] = {0}, total = 0;
    hv_status st = HV_OK;
    for (int k = 0; k < nv && st == HV_OK; k++) {
        const uint8_t *slot = r->qc + (size_t)k * HV_RUN_QC_BYTES;
        int any = 0;
        for (size_t q = 0; q < HV_RUN_QC_BYTES && !any; q++) any = slot[q] != 0;
        if (!any) continue; /* no picture: stored empty */
        st = hv_io_png_encode_grey(HV_STORE_QC_PNG_W, HV_STORE_QC_PNG_H, slot, &png[k], &len[k]);
        total += len[k];
    }
    uint8_t *all = NULL;
    if (st == HV_OK && !(all = malloc(total ? total : 1)))
        st = hv_error_set(HV_ERR_NOMEM, "qc pictures: out of memory");
    if (st == HV_OK) {
        free(r->qc_png);
        r->qc_png = all;
        memset(r->qc_png_len, 0, sizeof r->qc_png_len);
        size_t off = 0;
        for (int k = 0; k < nv; k++) {
            if (len[k]) memcpy(all + off, png[k], len[k]);
            off += len[k];
            r->qc_png_len[k] = (uint32_t)len[k];
        }
    }
    for (int k = 0; k < nv; k++) free(png[k]);
    if (st != HV_OK) hv_error_wrap(st, "case %s: encoding its QC pictures", r->c.id);
    return st;
}

/* Offset of vertebra k's PNG in r->qc_png. */
static size_t png_off(const hv_case_result *r, int k)
{
    size_t off = 0;
    for (int i = 0; i < k; i++) off += r->qc_png_len[i];
    return off;
}

hv_status hv_store_qc_slot(const hv_case_result *r, int k, uint8_t *slot)
{
    memset(slot, 0, HV_RUN_QC_BYTES);
    if (k < 0 || k >= r->c.n_vert || k >= HV_RUN_MAX_VERT)
        return hv_error_set(HV_ERR_ARG, "qc pictures: no vertebra %d", k);
    if (r->qc_png) {
        if (!r->qc_png_len[k]) return HV_OK;
        return hv_io_png_decode_grey(r->qc_png + png_off(r, k), r->qc_png_len[k],
                                     HV_STORE_QC_PNG_W, HV_STORE_QC_PNG_H, slot);
    }
    if (r->qc) memcpy(slot, r->qc + (size_t)k * HV_RUN_QC_BYTES, HV_RUN_QC_BYTES);
    return HV_OK;
}

/* -------------------------------------------------------------- writes */

hv_status hv_store_put_images(hv_store *s, long ci, const hv_case_result *r)
{
    if (ci < 0 || ci >= s->n_cases) return hv_error_set(HV_ERR_ARG, "store: case %ld out of range", ci);
    if (s->version != HV_STORE_SCHEMA_VERSION || s->mpi)
        return hv_error_set(HV_ERR_UNSUPPORTED, "store: images are written into a serially opened "
                            "v%d store only", HV_STORE_SCHEMA_VERSION);
    int nv = r->state == HV_CASE_DONE ? r->c.n_vert : 0;
    int any_vol = 0;
    for (int w = 0; w < HV_STORE_N_VOL; w++) any_vol |= s->vol[w] >= 0;
    if (nv <= 0 || (s->n_img <= 0 && !any_vol)) return HV_OK;
    if (nv > HV_RUN_MAX_VERT) return hv_error_set(HV_ERR_ARG, "store: %d vertebrae", nv);
    hv_status st = HV_OK;
    hid_t mt = -1, fs = -1, ms = -1;
    hv_case_result enc;
    memset(&enc, 0, sizeof enc);
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        if (s->vol[w] < 0 || !r->vol_z[w]) continue;
        /* the chunks as the rank deflated them (a slot without a volume
         * keeps the fill value: the store is created fresh at every start) */
        size_t off = 0;
        for (int k = 0; k < nv; k++) {
            uint32_t len = r->vol_z_len[w][k];
            if (!len) continue;
            hsize_t at[4] = {(hsize_t)ci * HV_RUN_MAX_VERT + (hsize_t)k, 0, 0, 0};
            H5CHK(H5Dwrite_chunk(s->vol[w], H5P_DEFAULT, 0, at, len, r->vol_z[w] + off),
                  "store: cannot write /vertebrae/%s of case %ld", vol_names[w], ci);
            off += len;
        }
    }
    if (s->n_img <= 0) goto done;
    if (s->images >= 0 && r->img && r->n_img == s->n_img) {
        hsize_t inner[3] = {(hsize_t)s->n_img, HV_RUN_IMG, HV_RUN_IMG};
        st = hv_h5_write_rows(s->images, H5T_NATIVE_FLOAT, (hsize_t)ci * HV_RUN_MAX_VERT,
                              (hsize_t)nv, 4, inner, r->img);
        if (st != HV_OK) goto done;
    }
    if (s->qc < 0) goto done;
    const hv_case_result *src = r;
    if (!r->qc_png && r->qc) {
        /* raw pictures (a caller other than the runner): encode them here */
        enc.c = r->c;
        enc.qc = r->qc;
        st = hv_store_qc_encode(&enc);
        enc.qc = NULL;
        if (st != HV_OK) goto done;
        src = &enc;
    }
    /* a done case always overwrites its slots: empty when it has no
     * pictures (a record of a build without them) */
    hvl_t v[HV_RUN_MAX_VERT];
    size_t off = 0;
    for (int k = 0; k < nv; k++) {
        v[k].len = src->qc_png ? src->qc_png_len[k] : 0;
        v[k].p = v[k].len ? src->qc_png + off : NULL;
        off += v[k].len;
    }
    mt = H5Tvlen_create(H5T_NATIVE_UINT8);
    hsize_t start = (hsize_t)ci * HV_RUN_MAX_VERT, cnt = (hsize_t)nv;
    fs = H5Dget_space(s->qc);
    ms = H5Screate_simple(1, &cnt, NULL);
    H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL), "store: selection");
    H5CHK(H5Dwrite(s->qc, mt, ms, fs, H5P_DEFAULT, v), "store: cannot write /images/qc of case %ld",
          ci);
done:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (mt >= 0) H5Tclose(mt);
    free(enc.qc_png);
    if (st != HV_OK) hv_error_wrap(st, "writing the images of case %ld", ci);
    return st;
}

/* --------------------------------------------------------------- reads */

hv_status hv_store_read_qc(hv_store *s, long slot, uint8_t *px, int *present)
{
    hv_status st = HV_OK;
    if (present) *present = 0;
    memset(px, 0, HV_RUN_QC_BYTES);
    if (s->qc < 0) return hv_error_set(HV_ERR_UNSUPPORTED, "store: no QC pictures (/images/qc)");
    if (slot < 0 || slot >= s->n_cases * HV_RUN_MAX_VERT)
        return hv_error_set(HV_ERR_ARG, "store: vertebra slot %ld out of range", slot);
    hid_t fs = H5Dget_space(s->qc), ms = -1, mt = -1;
    if (s->version >= 3) {
        hsize_t start = (hsize_t)slot, one = 1;
        hvl_t v = {0, NULL};
        mt = H5Tvlen_create(H5T_NATIVE_UINT8);
        ms = H5Screate_simple(1, &one, NULL);
        H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL), "store: selection");
        H5CHK(H5Dread(s->qc, mt, ms, fs, H5P_DEFAULT, &v), "store: cannot read /images/qc[%ld]", slot);
        if (v.len) {
            st = hv_io_png_decode_grey(v.p, v.len, HV_STORE_QC_PNG_W, HV_STORE_QC_PNG_H, px);
            if (st != HV_OK) hv_error_wrap(st, "store: /images/qc[%ld]", slot);
            else if (present) *present = 1;
        }
        H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, &v);
    } else {
        hsize_t start[5] = {(hsize_t)slot, 0, 0, 0, 0};
        hsize_t cnt[5] = {1, HV_QC_VIEWS, HV_QC_CHANNELS, HV_RUN_QC, HV_RUN_QC};
        ms = H5Screate_simple(5, cnt, NULL);
        H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL), "store: selection");
        H5CHK(H5Dread(s->qc, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, px),
              "store: cannot read /images/qc[%ld]", slot);
        int any = 0;
        for (size_t q = 0; q < HV_RUN_QC_BYTES && !any; q++) any = px[q] != 0;
        if (present) *present = any;
    }
done:
    if (mt >= 0) H5Tclose(mt);
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return st;
}

hv_status hv_store_read_cam(hv_store *s, long slot, uint8_t *vol, int *present)
{
    if (s->vol[HV_STORE_VOL_CAM] < 0) {
        if (present) *present = 0;
        memset(vol, 0, HV_RUN_CAM_BYTES);
        return hv_error_set(HV_ERR_UNSUPPORTED, "store: no attention maps (/vertebrae/cam)");
    }
    return hv_store_read_vol(s, HV_STORE_VOL_CAM, slot, vol, present);
}

hv_status hv_store_read_vol(hv_store *s, int w, long slot, uint8_t *vol, int *present)
{
    hv_status st = HV_OK;
    if (present) *present = 0;
    if (w < 0 || w >= HV_STORE_N_VOL) {
        memset(vol, 0, HV_RUN_CAM_BYTES);
        return hv_error_set(HV_ERR_ARG, "store: no crop volume %d", w);
    }
    const size_t nb = hv_store_vol_bytes(w);
    int64_t vd[3];
    hv_store_vol_dims(w, vd);
    memset(vol, 0, nb);
    if (s->vol[w] < 0)
        return hv_error_set(HV_ERR_UNSUPPORTED, "store: no /vertebrae/%s%s", vol_names[w],
                            s->has_vol[w] ? " (opened through MPI-IO)" : "");
    if (slot < 0 || slot >= s->n_cases * HV_RUN_MAX_VERT)
        return hv_error_set(HV_ERR_ARG, "store: vertebra slot %ld out of range", slot);
    hsize_t start[4] = {(hsize_t)slot, 0, 0, 0};
    hsize_t cnt[4] = {1, (hsize_t)vd[2], (hsize_t)vd[1], (hsize_t)vd[0]};
    hid_t fs = H5Dget_space(s->vol[w]), ms = H5Screate_simple(4, cnt, NULL);
    H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL), "store: selection");
    H5CHK(H5Dread(s->vol[w], H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, vol),
          "store: cannot read /vertebrae/%s[%ld]", vol_names[w], slot);
    if (present) {
        int any = 0;
        for (size_t q = 0; q < nb && !any; q++) any = vol[q] != 0;
        *present = any;
    }
done:
    H5Sclose(ms);
    H5Sclose(fs);
    return st;
}

/* ------------------------------------------------------------ validate */

hv_status hv_store_vol_written(hv_store *s, int w, long slot, int *written)
{
    hv_status st = HV_OK;
    *written = 0;
    if (w < 0 || w >= HV_STORE_N_VOL || s->vol[w] < 0)
        return hv_error_set(HV_ERR_UNSUPPORTED, "store: no crop volume %d", w);
    if (slot < 0 || slot >= s->n_cases * HV_RUN_MAX_VERT)
        return hv_error_set(HV_ERR_ARG, "store: vertebra slot %ld out of range", slot);
    hsize_t at[4] = {(hsize_t)slot, 0, 0, 0}, size = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    H5CHK(H5Dget_chunk_info_by_coord(s->vol[w], at, &mask, &addr, &size),
          "store: /vertebrae/%s[%ld]: chunk information", vol_names[w], slot);
    *written = addr != HADDR_UNDEF && size > 0;
done:
    return st;
}

/* A PNG's first 26 bytes say what it is: the signature, then the IHDR chunk
 * (length 13, "IHDR", width and height big-endian, bit depth, colour type). */
static int png_head_ok(const uint8_t *p, size_t n)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 33 || memcmp(p, sig, 8) || memcmp(p + 12, "IHDR", 4)) return 0;
    uint32_t w = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
    uint32_t h = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
    return w == HV_STORE_QC_PNG_W && h == HV_STORE_QC_PNG_H && p[24] == 8 && p[25] == 0;
}

hv_status hv_store_qc_check_case(hv_store *s, long ci, int nv, int *bad_k)
{
    *bad_k = -1;
    if (s->qc < 0 || s->version < 3 || nv <= 0 || nv > HV_RUN_MAX_VERT) return HV_OK;
    hv_status st = HV_OK;
    hvl_t v[HV_RUN_MAX_VERT];
    memset(v, 0, sizeof v);
    hsize_t start = (hsize_t)ci * HV_RUN_MAX_VERT, cnt = (hsize_t)nv;
    hid_t mt = H5Tvlen_create(H5T_NATIVE_UINT8), fs = H5Dget_space(s->qc);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL), "store: selection");
    H5CHK(H5Dread(s->qc, mt, ms, fs, H5P_DEFAULT, v), "store: cannot read /images/qc of case %ld", ci);
    for (int k = 0; k < nv && *bad_k < 0; k++)
        if (v[k].len && !png_head_ok(v[k].p, v[k].len)) *bad_k = k;
    H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, v);
done:
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(mt);
    return st;
}
