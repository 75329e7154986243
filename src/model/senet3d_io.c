/*
 * senet3d_io.c: the 3-D SupCon-SENet's model file (include/hv/model.h
 * "Model files"; docs/model.md "3-D SupCon-SENet"): written by the gather
 * of a run with grader.method = senet3d (src/mpi/grade_senet3d.c), read by
 * `healthivert measure --grader senet3d:MODEL`, and the box shrinking both
 * feed the network through, so the two cannot drift apart.
 *
 * The file is an hv_nn_checkpoint (/params, /meta strings) rather than a
 * format of its own: h5dump reads it, and the GAN's and the classifier's
 * model files are the same kind of file, told apart by /meta kind (the
 * GAN's by gan_arch). Everything a reader needs to rebuild the network and
 * feed it is on /meta, so no run configuration is needed to grade.
 *
 * Grading runs on the CPU backend with the gather's inference batch: the
 * gather's networks run there too, so a run's grade_pred and measure's
 * grade of the same box agree.
 *
 * Format 2 adds the fold results a re-grade needs without training
 * (docs/model.md "Re-grading a finished run"): /cv/fold_pred, the fold
 * networks' val predictions (int8, folds x val rows), from which the
 * gather recomputes every fold metric as after training, and further /meta
 * strings from the gather (the settings and the rows' digest the results
 * depend on; this file only stores them), and /meta content_digest over
 * the parameters and the predictions, checked when they are loaded back
 * for a re-grade (HDF5 checks no raw data: a damaged file would otherwise
 * be used silently). The predictions rather than the fold networks: a
 * byte a val row instead of a network a fold, and the fold networks are
 * never used for anything else. HDF5 writes the dataset
 * into an in-memory copy of the checkpoint, whose image is then written
 * atomically like the checkpoint's own.
 */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hv/model.h"

struct hv_model_senet3d_grader {
    hv_model_senet3d_info info;
    hv_nn_params *ps;
    hv_nn_backend *be;
    hv_model_senet3d_trainer *t;
    float *x;  /* batch x side^3 */
    float *lg; /* batch x grades */
};

void hv_model_senet3d_shrink_box(const uint8_t *u, int box, int f, float *out)
{
    const int side = box / f;
    const double norm = 1.0 / (255.0 * f * f * f);
    for (int c = 0; c < side; c++)
        for (int b = 0; b < side; b++)
            for (int a = 0; a < side; a++) {
                double sum = 0;
                for (int dc = 0; dc < f; dc++)
                    for (int db = 0; db < f; db++)
                        for (int da = 0; da < f; da++)
                            sum += u[((size_t)(c * f + dc) * (size_t)box + (size_t)(b * f + db)) *
                                         (size_t)box +
                                     (size_t)(a * f + da)];
                out[((size_t)c * side + b) * side + a] = (float)(sum * norm);
            }
}

/* The settings' checks, shared by save and open; pfx/path name the file. */
static hv_status check_info(const hv_model_senet3d_info *in, const char *pfx, const char *path)
{
    if (in->shrink != 1 && in->shrink != 2 && in->shrink != 4)
        return hv_error_set(HV_ERR_FORMAT, "%s '%s': shrink %d (1, 2 or 4)", pfx, path,
                            in->shrink);
    if (in->box < 16 || in->box > 1024 || in->box % in->shrink || (in->box / in->shrink) % 16)
        return hv_error_set(HV_ERR_FORMAT, "%s '%s': box %d with shrink %d (need a box of "
                            "16..1024 whose side / shrink is a multiple of 16)", pfx, path,
                            in->box, in->shrink);
    if (in->batch < 2 || in->batch > 4096)
        return hv_error_set(HV_ERR_FORMAT, "%s '%s': batch %d (2..4096)", pfx, path, in->batch);
    return HV_OK;
}

#define PFX "senet3d model"

uint64_t hv_model_senet3d_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* /meta content_digest: FNV-1a over every parameter (its name, its size
 * and its floats, in the set's order) and the fold predictions (one byte
 * each), as 16 hex digits into out (17 bytes). */
static hv_status content_digest(const hv_nn_params *ps, const int *pred, size_t np, char *out)
{
    uint64_t h = HV_MODEL_SENET3D_FNV_OFFSET;
    float *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        const hv_nn_param *p = hv_nn_params_at(ps, i);
        const char *name = hv_nn_param_name(p);
        const size_t n = (size_t)hv_nn_param_numel(p);
        char t[32];
        int k = snprintf(t, sizeof t, "%zu", n);
        h = hv_model_senet3d_fnv1a(h, name, strlen(name) + 1);
        h = hv_model_senet3d_fnv1a(h, t, (size_t)k + 1);
        if (n > cap) {
            float *nb = realloc(buf, n * sizeof *buf);
            if (!nb) {
                free(buf);
                return hv_error_set(HV_ERR_NOMEM, PFX ": out of memory");
            }
            buf = nb;
            cap = n;
        }
        hv_status st = hv_nn_param_get(p, buf, n);
        if (st != HV_OK) {
            free(buf);
            return st;
        }
        h = hv_model_senet3d_fnv1a(h, buf, n * sizeof *buf);
    }
    free(buf);
    for (size_t i = 0; i < np; i++) {
        unsigned char g = (unsigned char)pred[i];
        h = hv_model_senet3d_fnv1a(h, &g, 1);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return HV_OK;
}

/* The fold results into the checkpoint file at tmp (written by
 * hv_nn_checkpoint_save), the whole then written to path atomically: tmp
 * is read into memory (HDF5's core driver, no backing store), /cv/fold_pred
 * added there and the file image written with hv_file_write_atomic, as the
 * checkpoint itself is (no HDF5 close can fail half-way on a full disk). */
static hv_status add_cv(const char *tmp, const char *path, const hv_model_senet3d_cv *cv)
{
    hv_status st = HV_OK;
    hid_t fapl = -1, f = -1, g = -1, sp = -1, ds = -1;
    const size_t np = (size_t)cv->n_folds * cv->n_val;
    int8_t *p8 = malloc(np ? np : 1);
    void *img = NULL;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!p8) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d save: out of memory");
        goto done;
    }
    for (size_t i = 0; i < np; i++) {
        if (cv->pred[i] < 0 || cv->pred[i] >= HV_MODEL_SENET3D_GRADES) {
            st = hv_error_set(HV_ERR_ARG, "senet3d save: fold prediction %zu is %d (0..%d)", i,
                              cv->pred[i], HV_MODEL_SENET3D_GRADES - 1);
            goto done;
        }
        p8[i] = (int8_t)cv->pred[i];
    }
    hsize_t dims[2] = {(hsize_t)cv->n_folds, (hsize_t)cv->n_val};
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ||
        (f = H5Fopen(tmp, H5F_ACC_RDWR, fapl)) < 0 ||
        (g = H5Gcreate2(f, "cv", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (sp = H5Screate_simple(2, dims, NULL)) < 0 ||
        (ds = H5Dcreate2(g, "fold_pred", H5T_STD_I8LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT)) < 0 ||
        (cv->n_val && H5Dwrite(ds, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, p8) < 0) ||
        H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) {
        st = hv_error_set(HV_ERR_HDF5, "senet3d save: %s: writing /cv/fold_pred", path);
        goto done;
    }
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    if (n <= 0 || !(img = malloc((size_t)n)) || H5Fget_file_image(f, img, (size_t)n) != n) {
        st = hv_error_set(n > 0 && !img ? HV_ERR_NOMEM : HV_ERR_HDF5,
                          "senet3d save: %s: the file image", path);
        goto done;
    }
    st = hv_file_write_atomic(path, img, (size_t)n, 1);
done:
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    if (fapl >= 0) H5Pclose(fapl);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    free(p8);
    free(img);
    return st;
}

hv_status hv_model_senet3d_save(const char *path, const hv_nn_params *ps,
                                const hv_model_senet3d_info *info)
{
    return hv_model_senet3d_save_cv(path, ps, info, NULL);
}

hv_status hv_model_senet3d_save_cv(const char *path, const hv_nn_params *ps,
                                   const hv_model_senet3d_info *info,
                                   const hv_model_senet3d_cv *cv)
{
    if (!path || !ps || !info) return hv_error_set(HV_ERR_ARG, "senet3d save: NULL argument");
    if (cv && (cv->n_folds < 1 || (cv->n_val && !cv->pred) || (cv->n_kv && !cv->kv)))
        return hv_error_set(HV_ERR_ARG, "senet3d save: bad fold results (%d folds)",
                            cv->n_folds);
    hv_status st = check_info(info, "senet3d save", path);
    if (st != HV_OK) return st;
    char v[9][48];
    const hv_model_senet3d_config *c = &info->cfg;
    snprintf(v[0], sizeof v[0], "%d", HV_MODEL_SENET3D_FORMAT);
    snprintf(v[1], sizeof v[1], "%d", c->width);
    snprintf(v[2], sizeof v[2], "%d,%d,%d,%d", c->blocks[0], c->blocks[1], c->blocks[2],
             c->blocks[3]);
    snprintf(v[3], sizeof v[3], "%d", c->proj_dim);
    snprintf(v[4], sizeof v[4], "%d", info->box);
    snprintf(v[5], sizeof v[5], "%d", info->shrink);
    snprintf(v[6], sizeof v[6], "%d", info->batch);
    snprintf(v[7], sizeof v[7], "%ld", info->rows);
    snprintf(v[8], sizeof v[8], "%u", info->seed);
    const char *base[] = {"kind",  "senet3d", "senet3d_format", v[0], "width", v[1],
                          "blocks", v[2],     "proj_dim",       v[3], "box",   v[4],
                          "shrink", v[5],     "batch",          v[6], "rows",  v[7],
                          "seed",   v[8]};
    const size_t nb = sizeof base / sizeof base[0], nx = cv ? 2 * cv->n_kv + 2 : 0;
    char digest[17] = "";
    if (cv && (st = content_digest(ps, cv->pred, (size_t)cv->n_folds * cv->n_val, digest)) !=
                  HV_OK)
        return st;
    const char **kv = malloc((nb + nx) * sizeof *kv);
    char *tmp = cv ? hv_strfmt("%s.part", path) : NULL;
    if (!kv || (cv && !tmp)) {
        st = hv_error_set(HV_ERR_NOMEM, "senet3d save: out of memory");
        goto done;
    }
    memcpy(kv, base, sizeof base);
    if (nx) {
        if (cv->n_kv) memcpy(kv + nb, cv->kv, 2 * cv->n_kv * sizeof *kv);
        kv[nb + nx - 2] = "content_digest";
        kv[nb + nx - 1] = digest;
    }
    /* without fold results the checkpoint is the file; with them it is
     * written beside it first, then rewritten with them under path */
    st = hv_nn_checkpoint_save(cv ? tmp : path, ps, NULL, kv, (nb + nx) / 2);
    if (st == HV_OK && cv) st = add_cv(tmp, path, cv);
    if (tmp) remove(tmp);
done:
    free(kv);
    free(tmp);
    return st == HV_OK ? HV_OK : hv_error_wrap(st, "senet3d save: %s", path);
}

hv_status hv_model_senet3d_load_cv(const char *path, hv_nn_params *ps, int n_folds,
                                   size_t n_val, int *pred)
{
    if (!path || !ps || n_folds < 1 || (n_val && !pred))
        return hv_error_set(HV_ERR_ARG, PFX " fold results: bad arguments");
    hv_status st = HV_OK;
    hid_t f = -1, ds = -1, sp = -1;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hsize_t dims[2] = {0, 0};
    if ((f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s' does not open as HDF5", path);
        goto done;
    }
    if (H5Lexists(f, "cv", H5P_DEFAULT) <= 0 || H5Lexists(f, "cv/fold_pred", H5P_DEFAULT) <= 0) {
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s' has no /cv/fold_pred (no fold results)",
                          path);
        goto done;
    }
    if ((ds = H5Dopen2(f, "cv/fold_pred", H5P_DEFAULT)) < 0 || (sp = H5Dget_space(ds)) < 0 ||
        H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) != 2) {
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s': /cv/fold_pred is not a 2-D dataset", path);
        goto done;
    }
    if (dims[0] != (hsize_t)n_folds || dims[1] != (hsize_t)n_val) {
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s': /cv/fold_pred is %llu x %llu, want %d "
                          "folds x %zu val rows", path, (unsigned long long)dims[0],
                          (unsigned long long)dims[1], n_folds, n_val);
        goto done;
    }
    if (n_val && H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pred) < 0) {
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s': /cv/fold_pred cannot be read", path);
        goto done;
    }
    for (size_t i = 0; i < (size_t)n_folds * n_val; i++)
        if (pred[i] < 0 || pred[i] >= HV_MODEL_SENET3D_GRADES) {
            st = hv_error_set(HV_ERR_FORMAT, PFX " '%s': /cv/fold_pred value %zu is %d (0..%d)",
                              path, i, pred[i], HV_MODEL_SENET3D_GRADES - 1);
            goto done;
        }
    if ((st = hv_nn_checkpoint_load(path, ps, NULL, 1)) != HV_OK) {
        hv_error_wrap(st, PFX " '%s'", path);
        goto done;
    }
    char want[64] = "", got[17];
    if (hv_nn_checkpoint_meta(path, "content_digest", want, sizeof want) != HV_OK) {
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s': /meta content_digest missing", path);
        goto done;
    }
    if ((st = content_digest(ps, pred, (size_t)n_folds * n_val, got)) != HV_OK) goto done;
    if (strcmp(want, got) != 0)
        st = hv_error_set(HV_ERR_FORMAT, PFX " '%s' is damaged: its parameters and fold results "
                          "have digest %s, /meta content_digest says %s", path, got, want);
done:
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}

void hv_model_senet3d_grader_free(hv_model_senet3d_grader *g)
{
    if (!g) return;
    hv_model_senet3d_trainer_free(g->t);
    hv_nn_params_free(g->ps);
    hv_nn_backend_free(g->be);
    free(g->x);
    free(g->lg);
    free(g);
}

const hv_model_senet3d_info *hv_model_senet3d_grader_info(const hv_model_senet3d_grader *g)
{
    return g ? &g->info : NULL;
}

/* What a file that is not a senet3d model file is, for the refusal: 1 when
 * it is a known other kind (what set), 0 when it is not HDF5, -1 when it is
 * an HDF5 file that opens. */
static int file_kind(const char *path, char *what, size_t len)
{
    char head[16] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(head, 1, sizeof head - 1, fp) : 0;
    if (fp) fclose(fp);
    if (got >= 8 && !memcmp(head, "svm_type", 8)) {
        snprintf(what, len, "an SVM model (svm_model.txt, libsvm)");
        return 1;
    }
    if (got >= 11 && !memcmp(head, "solver_type", 11)) {
        snprintf(what, len, "an SVM model (svm_model.txt, liblinear)");
        return 1;
    }
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return f >= 0 ? -1 : 0;
}

/* /meta key as an integer in lo..hi into *v; refused naming the key. */
static hv_status meta_long(const char *path, const char *key, long lo, long hi, long *v)
{
    char buf[64], *end = NULL;
    if (hv_nn_checkpoint_meta(path, key, buf, sizeof buf) != HV_OK)
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s': /meta %s missing", path, key);
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (errno || end == buf || *end || x < lo || x > hi)
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s': /meta %s is '%s' (want an integer in "
                            "%ld..%ld)", path, key, buf, lo, hi);
    *v = x;
    return HV_OK;
}

hv_status hv_model_senet3d_grader_open(const char *path, hv_model_senet3d_grader **out)
{
    hv_status st = HV_OK;
    hv_model_senet3d_grader *g = NULL;
    if (!path || !out) return hv_error_set(HV_ERR_ARG, PFX ": NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return hv_error_set(HV_ERR_NOT_FOUND, PFX " '%s' not found", path);
        return hv_error_set(HV_ERR_IO, PFX " '%s': %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode))
        return hv_error_set(HV_ERR_IO, PFX " '%s' is not a regular file", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return hv_error_set(HV_ERR_IO, PFX " '%s' cannot be read: %s", path, strerror(errno));
    fclose(fp);
    char what[160];
    int fk = file_kind(path, what, sizeof what);
    if (fk == 1)
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s' is %s, not a senet3d model file", path,
                            what);
    if (fk == 0)
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s' is not an HDF5 file (truncated, or not a "
                            "model file)", path);
    char kind[64] = "", arch[64] = "";
    hv_nn_checkpoint_meta(path, "kind", kind, sizeof kind);
    if (strcmp(kind, "senet3d") != 0) {
        if (kind[0])
            return hv_error_set(HV_ERR_FORMAT, PFX " '%s' is a '%s' model file, not a senet3d "
                                "one (/meta kind is '%s', want 'senet3d')", path, kind, kind);
        hv_nn_checkpoint_meta(path, "gan_arch", arch, sizeof arch);
        if (arch[0])
            return hv_error_set(HV_ERR_FORMAT, PFX " '%s' is a GAN model file (/meta gan_arch "
                                "'%s'), not a senet3d one (/meta kind 'senet3d')", path, arch);
        hv_error_clear();
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s' has no /meta kind: not a senet3d model "
                            "file (/meta kind 'senet3d')", path);
    }
    long ver = 0, width = 0, proj = 0, box = 0, shrink = 0, batch = 0, rows = 0, seed = 0;
    if ((st = meta_long(path, "senet3d_format", 1, 1000000, &ver)) != HV_OK) return st;
    if (ver > HV_MODEL_SENET3D_FORMAT)
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s' has format %ld, newer than this build "
                            "reads (%d): written by a newer healthivert", path, ver,
                            HV_MODEL_SENET3D_FORMAT);
    if ((st = meta_long(path, "width", 1, 1024, &width)) != HV_OK ||
        (st = meta_long(path, "proj_dim", 1, 4096, &proj)) != HV_OK ||
        (st = meta_long(path, "box", 16, 1024, &box)) != HV_OK ||
        (st = meta_long(path, "shrink", 1, 4, &shrink)) != HV_OK ||
        (st = meta_long(path, "batch", 2, 4096, &batch)) != HV_OK ||
        (st = meta_long(path, "rows", 0, 2147483647L, &rows)) != HV_OK ||
        (st = meta_long(path, "seed", 0, 4294967295L, &seed)) != HV_OK)
        return st;
    char bl[64] = "";
    int b[4] = {0}, used = 0;
    hv_nn_checkpoint_meta(path, "blocks", bl, sizeof bl);
    if (sscanf(bl, "%d,%d,%d,%d%n", &b[0], &b[1], &b[2], &b[3], &used) != 4 || bl[used])
        return hv_error_set(HV_ERR_FORMAT, PFX " '%s': /meta blocks is '%s' (want four "
                            "integers, b1,b2,b3,b4)", path, bl);
    g = calloc(1, sizeof *g);
    if (!g) return hv_error_set(HV_ERR_NOMEM, PFX ": out of memory");
    hv_model_senet3d_info *in = &g->info;
    in->cfg = (hv_model_senet3d_config){(int)width, {b[0], b[1], b[2], b[3]}, (int)proj};
    in->box = (int)box;
    in->shrink = (int)shrink;
    in->batch = (int)batch;
    in->rows = rows;
    in->seed = (unsigned)seed;
    if ((st = check_info(in, PFX, path)) != HV_OK) goto done;
    hv_rng rng;
    hv_rng_seed(&rng, in->seed, 0);
    if ((st = hv_nn_params_create(&g->ps)) != HV_OK) goto done;
    if ((st = hv_model_senet3d_params(g->ps, &in->cfg, &rng)) != HV_OK) {
        hv_error_wrap(st, PFX " '%s'", path);
        st = HV_ERR_FORMAT;
        goto done;
    }
    if ((st = hv_nn_checkpoint_load(path, g->ps, NULL, 1)) != HV_OK) {
        hv_error_wrap(st, PFX " '%s' (width %ld, blocks %s, proj_dim %ld)", path, width, bl, proj);
        goto done;
    }
    const int side = in->box / in->shrink;
    const size_t vox = (size_t)side * side * side;
    hv_model_senet3d_train_opts to = {1e-3, 1e-3, 0.07, {1, 1, 1, 1}}; /* unused: no steps */
    if ((st = hv_nn_backend_create_cpu(&g->be)) != HV_OK ||
        (st = hv_model_senet3d_trainer_create(g->ps, &in->cfg, g->be, in->batch, side, side, side,
                                              &to, &g->t)) != HV_OK)
        goto done;
    g->x = malloc((size_t)in->batch * vox * sizeof *g->x);
    g->lg = malloc((size_t)in->batch * HV_MODEL_SENET3D_GRADES * sizeof *g->lg);
    if (!g->x || !g->lg) {
        st = hv_error_set(HV_ERR_NOMEM, PFX ": out of memory for a batch of %d", in->batch);
        goto done;
    }
    *out = g;
    g = NULL;
done:
    hv_model_senet3d_grader_free(g);
    return st;
}

hv_status hv_model_senet3d_grade(hv_model_senet3d_grader *g, const uint8_t *const *boxes,
                                 size_t n, int *grades)
{
    if (!g || (n && (!boxes || !grades)))
        return hv_error_set(HV_ERR_ARG, PFX " grade: NULL argument");
    const hv_model_senet3d_info *in = &g->info;
    const int side = in->box / in->shrink;
    const size_t vox = (size_t)side * side * side, nb = (size_t)in->batch;
    for (size_t i = 0; i < n; i++)
        if (!boxes[i]) return hv_error_set(HV_ERR_ARG, PFX " grade: box %zu is NULL", i);
    for (size_t at = 0; at < n; at += nb) {
        for (size_t b = 0; b < nb; b++)
            hv_model_senet3d_shrink_box(boxes[at + b < n ? at + b : at], in->box, in->shrink,
                                        g->x + b * vox);
        hv_status st = hv_model_senet3d_predict(g->t, g->x, g->lg, NULL);
        if (st != HV_OK) return st;
        for (size_t b = 0; b < nb && at + b < n; b++) {
            const float *l = g->lg + b * HV_MODEL_SENET3D_GRADES;
            int best = 0;
            for (int c = 1; c < HV_MODEL_SENET3D_GRADES; c++)
                if (l[c] > l[best]) best = c;
            grades[at + b] = best;
        }
    }
    return HV_OK;
}
