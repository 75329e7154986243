/*
 * checkpoint.c: parameter sets and Adam state in HDF5.
 *
 * Layout (documented in docs/nn.md):
 *   /            attrs format = "healthivert-nn-checkpoint", version = 1
 *   /params/<name>        float32, the tensor's shape (names are '.'
 *                         separated, never '/')
 *   /adam/m/<name>, /adam/v/<name>   and attrs step, lr, beta1, beta2, eps on /adam
 *   /meta        string attributes (free key/value metadata)
 * The serial HDF5 API of the (MPI-flavoured) library is used: a checkpoint
 * is written by one process, and MPI need not be initialised. A checkpoint
 * is built in memory (HDF5's core driver, no backing store) and its file
 * image written with hv_file_write_atomic (a temporary name, fsync, rename),
 * so a crash never leaves a half-written checkpoint under the real name and
 * a failing disk (full, RLIMIT_FSIZE, I/O error) fails our own write(), not
 * an HDF5 close: a file whose H5Fclose fails stays half-open inside the
 * library, which then crashed in MPI_Finalize trying to flush it again.
 * Several sets (a GAN's four networks) go into one file as groups with
 * hv_nn_checkpoint_save_groups / load_groups (layout below).
 * HDF5's automatic error printing is switched off around our calls; failures
 * become HV_ERR_HDF5 with the object's name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "nn_backend.h"

#define FORMAT_NAME "healthivert-nn-checkpoint"

#define H5_TRY(expr, ...)                                                             \
    do {                                                                              \
        if ((expr) < 0) {                                                             \
            st = hv_error_set(HV_ERR_HDF5, __VA_ARGS__);                              \
            goto done;                                                                \
        }                                                                             \
    } while (0)

static herr_t write_f32(hid_t loc, const char *name, int ndim, const int64_t *shape,
                        const float *data)
{
    hsize_t dims[HV_NN_MAX_DIMS];
    for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    if (sp < 0) return -1;
    hid_t ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = -1;
    if (ds >= 0) r = H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return r;
}

/* Read a dataset into data after checking its shape; 1 = missing,
 * 2 = shape mismatch, -1 = HDF5 failure, 0 = ok. */
static int read_f32(hid_t loc, const char *name, int ndim, const int64_t *shape, float *data)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    int rc = 0;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[HV_NN_MAX_DIMS + 1];
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd != ndim || nd > HV_NN_MAX_DIMS) {
        rc = 2;
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < nd; i++)
            if (dims[i] != (hsize_t)shape[i]) rc = 2;
    }
    if (rc == 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) rc = -1;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

static herr_t write_str_attr(hid_t loc, const char *key, const char *value)
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

static herr_t write_num_attr(hid_t loc, const char *key, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, key, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Awrite(a, H5T_NATIVE_DOUBLE, &v) : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return r;
}

static herr_t read_num_attr(hid_t loc, const char *key, double *v)
{
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t r = H5Aread(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a);
    return r;
}

/* ------------------------------------------------ in-memory file, then disk */

/* A new HDF5 file in memory (core driver, no backing store): its name only
 * labels it inside the library, nothing is created on disk. */
static hid_t mem_create(void)
{
    static unsigned counter;
    char name[64];
    snprintf(name, sizeof name, "hv-nn-checkpoint-in-memory-%u", counter++);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    hid_t f = -1;
    if (H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0)
        f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

/* Close in-memory file f; when st is HV_OK first write its image to path
 * atomically and durably. Returns the status to report. */
static hv_status mem_finish(hid_t f, hv_status st, const char *path, const char *what)
{
    void *img = NULL;
    if (f < 0) return st;
    if (st == HV_OK) {
        ssize_t n = -1;
        if (H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) n = H5Fget_file_image(f, NULL, 0);
        if (n <= 0) st = hv_error_set(HV_ERR_HDF5, "%s: %s: cannot form the file image", what, path);
        else if (!(img = malloc((size_t)n)))
            st = hv_error_set(HV_ERR_NOMEM, "%s: %s: out of memory (%zd bytes)", what, path, n);
        else if (H5Fget_file_image(f, img, (size_t)n) != n)
            st = hv_error_set(HV_ERR_HDF5, "%s: %s: cannot copy the file image", what, path);
        if (H5Fclose(f) < 0 && st == HV_OK)
            st = hv_error_set(HV_ERR_HDF5, "%s: %s: closing the in-memory file", what, path);
        if (st == HV_OK) {
            st = hv_file_write_atomic(path, img, (size_t)n, 1);
            if (st != HV_OK) st = hv_error_wrap(st, "%s", what);
        }
    } else {
        H5Fclose(f);
    }
    free(img);
    return st;
}

/* write_f32/read_f32 of a parameter's storage (p->data or an Adam moment
 * of p) wherever it lives: a device-bound parameter goes through a host copy. */
static hv_status adam_moved(const char *who)
{
    return hv_error_set(HV_ERR_ARG, "%s: the optimiser's parameters moved to another backend after "
                        "it was created (its moments are elsewhere)", who);
}

static herr_t write_dev(hid_t loc, const hv_nn_param *p, const float *buf)
{
    if (!p->be) return write_f32(loc, p->name, p->ndim, p->shape, buf);
    float *h = hv__nn_malloc((size_t)p->numel * sizeof(float));
    herr_t rc = -1;
    if (h && hv__nn_param_copy_out(p, h, buf, p->numel) == HV_OK)
        rc = write_f32(loc, p->name, p->ndim, p->shape, h);
    free(h);
    return rc;
}

static int read_dev(hid_t loc, hv_nn_param *p, float *buf)
{
    if (!p->be) return read_f32(loc, p->name, p->ndim, p->shape, buf);
    float *h = hv__nn_malloc((size_t)p->numel * sizeof(float));
    int rc = h ? read_f32(loc, p->name, p->ndim, p->shape, h) : -1;
    if (rc == 0 && hv__nn_param_copy_in(p, buf, h, p->numel) != HV_OK) rc = -1;
    free(h);
    return rc;
}

hv_status hv_nn_checkpoint_save(const char *path, const hv_nn_params *ps, const hv_nn_adam *adam,
                                const char *const *meta_kv, size_t n_meta)
{
    hv_status st = HV_OK;
    hid_t f = -1, gp = -1, ga = -1, gm = -1, gv = -1, gmeta = -1;
    if (!path || !ps || (n_meta && !meta_kv))
        return hv_error_set(HV_ERR_ARG, "nn checkpoint_save: bad arguments");
    if (adam && !hv__nn_adam_placed(adam)) return adam_moved("nn checkpoint_save");
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f = mem_create();
    H5_TRY(f, "nn checkpoint_save: %s: cannot create the in-memory file", path);
    H5_TRY(write_str_attr(f, "format", FORMAT_NAME), "nn checkpoint_save: attributes");
    H5_TRY(write_num_attr(f, "version", 1), "nn checkpoint_save: attributes");
    gp = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_TRY(gp, "nn checkpoint_save: group params");
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        const hv_nn_param *p = hv_nn_params_at(ps, i);
        H5_TRY(write_dev(gp, p, p->data),
               "nn checkpoint_save: writing %s", p->name);
    }
    if (adam) {
        double hp[4];
        int64_t step;
        hv__nn_adam_hyper((hv_nn_adam *)adam, hp, &step, 0);
        ga = H5Gcreate2(f, "adam", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5_TRY(ga, "nn checkpoint_save: group adam");
        gm = H5Gcreate2(ga, "m", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        gv = H5Gcreate2(ga, "v", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5_TRY(gm < 0 || gv < 0 ? -1 : 0, "nn checkpoint_save: group adam/m, adam/v");
        static const char *const names[4] = {"lr", "beta1", "beta2", "eps"};
        for (int k = 0; k < 4; k++)
            H5_TRY(write_num_attr(ga, names[k], hp[k]), "nn checkpoint_save: adam attributes");
        H5_TRY(write_num_attr(ga, "step", (double)step), "nn checkpoint_save: adam attributes");
        hv_nn_param *p;
        float *m, *v;
        size_t n = hv__nn_adam_state(adam, 0, &p, &m, &v);
        for (size_t i = 0; i < n; i++) {
            hv__nn_adam_state(adam, i, &p, &m, &v);
            H5_TRY(write_dev(gm, p, m), "nn checkpoint_save: adam m %s", p->name);
            H5_TRY(write_dev(gv, p, v), "nn checkpoint_save: adam v %s", p->name);
        }
    }
    gmeta = H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_TRY(gmeta, "nn checkpoint_save: group meta");
    for (size_t i = 0; i < n_meta; i++)
        H5_TRY(write_str_attr(gmeta, meta_kv[2 * i], meta_kv[2 * i + 1] ? meta_kv[2 * i + 1] : ""),
               "nn checkpoint_save: metadata %s", meta_kv[2 * i]);
done:
    if (gmeta >= 0) H5Gclose(gmeta);
    if (gv >= 0) H5Gclose(gv);
    if (gm >= 0) H5Gclose(gm);
    if (ga >= 0) H5Gclose(ga);
    if (gp >= 0) H5Gclose(gp);
    st = mem_finish(f, st, path, "nn checkpoint_save");
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}

hv_status hv_nn_checkpoint_load(const char *path, hv_nn_params *ps, hv_nn_adam *adam, int strict)
{
    hv_status st = HV_OK;
    hid_t f = -1, gp = -1, ga = -1, gm = -1, gv = -1;
    if (!path || !ps) return hv_error_set(HV_ERR_ARG, "nn checkpoint_load: bad arguments");
    if (adam && !hv__nn_adam_placed(adam)) return adam_moved("nn checkpoint_load");
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        st = hv_error_set(HV_ERR_IO, "nn checkpoint_load: cannot open %s", path);
        goto done;
    }
    gp = H5Gopen2(f, "params", H5P_DEFAULT);
    if (gp < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint_load: %s has no /params", path);
        goto done;
    }
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        int rc = read_dev(gp, p, p->data);
        if (rc < 0) {
            st = hv_error_set(HV_ERR_HDF5, "nn checkpoint_load: reading %s", p->name);
            goto done;
        }
        if (rc > 0) {
            if (strict) {
                st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint_load: %s: tensor '%s' %s", path,
                                  p->name, rc == 1 ? "missing" : "has another shape");
                goto done;
            }
            hv_log_warn("nn checkpoint_load: %s: tensor '%s' %s, left as is", path, p->name,
                        rc == 1 ? "missing" : "has another shape");
        }
        p->version++;
    }
    if (adam) {
        ga = H5Gopen2(f, "adam", H5P_DEFAULT);
        if (ga < 0) {
            st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint_load: %s has no optimiser state", path);
            goto done;
        }
        gm = H5Gopen2(ga, "m", H5P_DEFAULT);
        gv = H5Gopen2(ga, "v", H5P_DEFAULT);
        double hp[4], stepd;
        static const char *const names[4] = {"lr", "beta1", "beta2", "eps"};
        for (int k = 0; k < 4; k++)
            H5_TRY(read_num_attr(ga, names[k], &hp[k]), "nn checkpoint_load: adam attribute %s",
                   names[k]);
        H5_TRY(read_num_attr(ga, "step", &stepd), "nn checkpoint_load: adam step");
        H5_TRY(gm < 0 || gv < 0 ? -1 : 0, "nn checkpoint_load: adam/m or adam/v missing");
        int64_t step = (int64_t)stepd;
        hv__nn_adam_hyper(adam, hp, &step, 1);
        hv_nn_param *p;
        float *m, *v;
        size_t n = hv__nn_adam_state(adam, 0, &p, &m, &v);
        for (size_t i = 0; i < n; i++) {
            hv__nn_adam_state(adam, i, &p, &m, &v);
            if (read_dev(gm, p, m) != 0 ||
                read_dev(gv, p, v) != 0) {
                st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint_load: adam state of %s", p->name);
                goto done;
            }
        }
    }
done:
    if (gv >= 0) H5Gclose(gv);
    if (gm >= 0) H5Gclose(gm);
    if (ga >= 0) H5Gclose(ga);
    if (gp >= 0) H5Gclose(gp);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}

hv_status hv_nn_checkpoint_meta(const char *path, const char *key, char *buf, size_t len)
{
    hv_status st = HV_OK;
    hid_t f = -1, g = -1, a = -1, t = -1, mt = -1;
    char *tmp = NULL;
    if (!path || !key || !buf || !len) return hv_error_set(HV_ERR_ARG, "nn checkpoint_meta: bad arguments");
    buf[0] = '\0';
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5_TRY(f, "nn checkpoint_meta: cannot open %s", path);
    g = H5Gopen2(f, "meta", H5P_DEFAULT);
    H5_TRY(g, "nn checkpoint_meta: %s has no /meta", path);
    if (H5Aexists(g, key) <= 0) {
        st = hv_error_set(HV_ERR_NOT_FOUND, "nn checkpoint_meta: no key '%s' in %s", key, path);
        goto done;
    }
    a = H5Aopen(g, key, H5P_DEFAULT);
    H5_TRY(a, "nn checkpoint_meta: key %s", key);
    t = H5Aget_type(a);
    H5_TRY(t, "nn checkpoint_meta: key %s", key);
    /* fixed-size strings (what hv_nn_checkpoint_save writes) and
     * variable-length ones (what h5py writes: scripts/pth_to_hv.py), in the
     * file's character set (HDF5 does not convert ASCII <-> UTF-8) */
    H5_TRY(H5Tget_class(t) == H5T_STRING ? 0 : -1, "nn checkpoint_meta: key %s is not a string",
           key);
    mt = H5Tcopy(H5T_C_S1);
    H5_TRY(mt, "nn checkpoint_meta: key %s", key);
    H5_TRY(H5Tset_cset(mt, H5Tget_cset(t)), "nn checkpoint_meta: key %s", key);
    if (H5Tis_variable_str(t) > 0) {
        char *vs = NULL;
        H5_TRY(H5Tset_size(mt, H5T_VARIABLE), "nn checkpoint_meta: key %s", key);
        H5_TRY(H5Aread(a, mt, &vs), "nn checkpoint_meta: reading %s", key);
        snprintf(buf, len, "%s", vs ? vs : "");
        H5free_memory(vs);
        goto done;
    }
    size_t sz = H5Tget_size(t);
    tmp = calloc(sz + 1, 1);
    if (!tmp) {
        st = hv_error_set(HV_ERR_NOMEM, "nn checkpoint_meta: out of memory");
        goto done;
    }
    H5_TRY(H5Tset_size(mt, sz), "nn checkpoint_meta: key %s", key);
    H5_TRY(H5Aread(a, mt, tmp), "nn checkpoint_meta: reading %s", key);
    snprintf(buf, len, "%s", tmp);
done:
    free(tmp);
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}

/* ------------------------------------------------ several sets in one file
 *
 * Layout: /<group>/params/<name>, /<group>/adam/{m,v}/<name> with the
 * attributes of /adam above on /<group>/adam, and /meta; the root carries
 * the same format and version attributes. Load checks every tensor of every
 * group (presence and shape, Adam state included) before it reads any, so a
 * refused file leaves the sets as they were. */

static hv_status write_group(hid_t f, const char *gname, const hv_nn_params *ps,
                             const hv_nn_adam *adam)
{
    hv_status st = HV_OK;
    hid_t gg = -1, gp = -1, ga = -1, gm = -1, gv = -1;
    gg = H5Gcreate2(f, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_TRY(gg, "nn checkpoint: group /%s", gname);
    gp = H5Gcreate2(gg, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_TRY(gp, "nn checkpoint: group /%s/params", gname);
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        const hv_nn_param *p = hv_nn_params_at(ps, i);
        H5_TRY(write_dev(gp, p, p->data), "nn checkpoint: writing /%s %s",
               gname, p->name);
    }
    if (adam) {
        double hp[4];
        int64_t step;
        hv__nn_adam_hyper((hv_nn_adam *)adam, hp, &step, 0);
        ga = H5Gcreate2(gg, "adam", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5_TRY(ga, "nn checkpoint: group /%s/adam", gname);
        gm = H5Gcreate2(ga, "m", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        gv = H5Gcreate2(ga, "v", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5_TRY(gm < 0 || gv < 0 ? -1 : 0, "nn checkpoint: /%s/adam/m, v", gname);
        static const char *const names[4] = {"lr", "beta1", "beta2", "eps"};
        for (int k = 0; k < 4; k++)
            H5_TRY(write_num_attr(ga, names[k], hp[k]), "nn checkpoint: /%s adam attributes", gname);
        H5_TRY(write_num_attr(ga, "step", (double)step), "nn checkpoint: /%s adam attributes", gname);
        hv_nn_param *p;
        float *m, *v;
        size_t n = hv__nn_adam_state(adam, 0, &p, &m, &v);
        for (size_t i = 0; i < n; i++) {
            hv__nn_adam_state(adam, i, &p, &m, &v);
            H5_TRY(write_dev(gm, p, m), "nn checkpoint: /%s adam m %s", gname, p->name);
            H5_TRY(write_dev(gv, p, v), "nn checkpoint: /%s adam v %s", gname, p->name);
        }
    }
done:
    if (gv >= 0) H5Gclose(gv);
    if (gm >= 0) H5Gclose(gm);
    if (ga >= 0) H5Gclose(ga);
    if (gp >= 0) H5Gclose(gp);
    if (gg >= 0) H5Gclose(gg);
    return st;
}

hv_status hv_nn_checkpoint_save_groups(const char *path, size_t n_groups,
                                       const char *const *group_names,
                                       const hv_nn_params *const *ps,
                                       const hv_nn_adam *const *adams,
                                       const char *const *meta_kv, size_t n_meta)
{
    hv_status st = HV_OK;
    hid_t f = -1, gmeta = -1;
    if (!path || !n_groups || !group_names || !ps || (n_meta && !meta_kv))
        return hv_error_set(HV_ERR_ARG, "nn checkpoint_save_groups: bad arguments");
    for (size_t i = 0; i < n_groups; i++)
        if (!group_names[i] || !ps[i] || !group_names[i][0] || strchr(group_names[i], '/') ||
            !strcmp(group_names[i], "meta"))
            return hv_error_set(HV_ERR_ARG, "nn checkpoint_save_groups: bad group %zu", i);
    for (size_t i = 0; adams && i < n_groups; i++)
        if (adams[i] && !hv__nn_adam_placed(adams[i])) return adam_moved("nn checkpoint_save_groups");
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f = mem_create();
    H5_TRY(f, "nn checkpoint_save_groups: %s: cannot create the in-memory file", path);
    H5_TRY(write_str_attr(f, "format", FORMAT_NAME), "nn checkpoint_save_groups: attributes");
    H5_TRY(write_num_attr(f, "version", 1), "nn checkpoint_save_groups: attributes");
    for (size_t i = 0; i < n_groups; i++)
        if ((st = write_group(f, group_names[i], ps[i], adams ? adams[i] : NULL))) goto done;
    gmeta = H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_TRY(gmeta, "nn checkpoint_save_groups: group meta");
    for (size_t i = 0; i < n_meta; i++)
        H5_TRY(write_str_attr(gmeta, meta_kv[2 * i], meta_kv[2 * i + 1] ? meta_kv[2 * i + 1] : ""),
               "nn checkpoint_save_groups: metadata %s", meta_kv[2 * i]);
done:
    if (gmeta >= 0) H5Gclose(gmeta);
    st = mem_finish(f, st, path, "nn checkpoint_save_groups");
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}

/* Shape check of one dataset: 0 ok, 1 missing, 2 other shape. */
static int probe_f32(hid_t loc, const char *name, int ndim, const int64_t *shape)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return 1;
    int rc = 0;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[HV_NN_MAX_DIMS + 1];
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd != ndim || nd > HV_NN_MAX_DIMS) {
        rc = 2;
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < nd; i++)
            if (dims[i] != (hsize_t)shape[i]) rc = 2;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

/* pass 0: check everything; pass 1: read. */
static hv_status group_pass(hid_t f, const char *path, const char *gname, hv_nn_params *ps,
                            hv_nn_adam *adam, int pass)
{
    hv_status st = HV_OK;
    hid_t gg = -1, gp = -1, ga = -1, gm = -1, gv = -1;
    if (H5Lexists(f, gname, H5P_DEFAULT) <= 0 || (gg = H5Gopen2(f, gname, H5P_DEFAULT)) < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s has no group /%s", path, gname);
        goto done;
    }
    if (H5Lexists(gg, "params", H5P_DEFAULT) <= 0 || (gp = H5Gopen2(gg, "params", H5P_DEFAULT)) < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s has no /%s/params", path, gname);
        goto done;
    }
    for (size_t i = 0; i < hv_nn_params_size(ps); i++) {
        hv_nn_param *p = hv_nn_params_at(ps, i);
        int rc = pass ? read_dev(gp, p, p->data)
                      : probe_f32(gp, p->name, p->ndim, p->shape);
        if (rc < 0) {
            st = hv_error_set(HV_ERR_HDF5, "nn checkpoint: reading /%s %s", gname, p->name);
            goto done;
        }
        if (rc > 0) {
            st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s: /%s tensor '%s' %s", path, gname,
                              p->name, rc == 1 ? "missing" : "has another shape");
            goto done;
        }
        if (pass) p->version++;
    }
    if (!adam) goto done;
    if (H5Lexists(gg, "adam", H5P_DEFAULT) <= 0 || (ga = H5Gopen2(gg, "adam", H5P_DEFAULT)) < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s has no optimiser state in /%s", path, gname);
        goto done;
    }
    gm = H5Lexists(ga, "m", H5P_DEFAULT) > 0 ? H5Gopen2(ga, "m", H5P_DEFAULT) : -1;
    gv = H5Lexists(ga, "v", H5P_DEFAULT) > 0 ? H5Gopen2(ga, "v", H5P_DEFAULT) : -1;
    if (gm < 0 || gv < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s: /%s/adam/m or v missing", path, gname);
        goto done;
    }
    double hp[4], stepd;
    static const char *const names[4] = {"lr", "beta1", "beta2", "eps"};
    for (int k = 0; k < 4; k++)
        if (read_num_attr(ga, names[k], &hp[k]) < 0) {
            st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s: /%s/adam attribute %s missing", path,
                              gname, names[k]);
            goto done;
        }
    if (read_num_attr(ga, "step", &stepd) < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s: /%s/adam step missing", path, gname);
        goto done;
    }
    hv_nn_param *p;
    float *m, *v;
    size_t n = hv__nn_adam_state(adam, 0, &p, &m, &v);
    for (size_t i = 0; i < n; i++) {
        hv__nn_adam_state(adam, i, &p, &m, &v);
        int rm = pass ? read_dev(gm, p, m) : probe_f32(gm, p->name, p->ndim, p->shape);
        int rv = pass ? read_dev(gv, p, v) : probe_f32(gv, p->name, p->ndim, p->shape);
        if (rm != 0 || rv != 0) {
            st = hv_error_set(HV_ERR_FORMAT, "nn checkpoint: %s: /%s adam state of '%s' %s", path,
                              gname, p->name, (rm == 2 || rv == 2) ? "has another shape" : "missing");
            goto done;
        }
    }
    if (pass) {
        int64_t step = (int64_t)stepd;
        hv__nn_adam_hyper(adam, hp, &step, 1);
    }
done:
    if (gv >= 0) H5Gclose(gv);
    if (gm >= 0) H5Gclose(gm);
    if (ga >= 0) H5Gclose(ga);
    if (gp >= 0) H5Gclose(gp);
    if (gg >= 0) H5Gclose(gg);
    return st;
}

hv_status hv_nn_checkpoint_load_groups(const char *path, size_t n_groups,
                                       const char *const *group_names, hv_nn_params *const *ps,
                                       hv_nn_adam *const *adams)
{
    hv_status st = HV_OK;
    hid_t f = -1;
    if (!path || !n_groups || !group_names || !ps)
        return hv_error_set(HV_ERR_ARG, "nn checkpoint_load_groups: bad arguments");
    for (size_t i = 0; adams && i < n_groups; i++)
        if (adams[i] && !hv__nn_adam_placed(adams[i])) return adam_moved("nn checkpoint_load_groups");
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        st = hv_error_set(HV_ERR_IO, "nn checkpoint_load_groups: cannot open %s", path);
        goto done;
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n_groups; i++)
            if ((st = group_pass(f, path, group_names[i], ps[i], adams ? adams[i] : NULL, pass)))
                goto done;
done:
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}
