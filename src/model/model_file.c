/*
 * model_file.c: the HDF5 functions of model_file.h: shape probing and shape
 * strings for the model-file readers' messages, and the one opener and
 * shape check of a model file. One copy, so the generator's (synth.c) and
 * the classifier's (gradcam.c) refusals read alike; what differs between
 * the two kinds (names, the first convolution's shape, /meta kind) is an
 * hv__model_kind, and the checks only one reader makes (/meta plane,
 * /meta width) stay with that reader.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model_file.h"

void hv__model_shape_str(char *buf, size_t len, int nd, const int64_t *sh)
{
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < nd && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? ", " : "", (long long)sh[i]);
    if (off < len) snprintf(buf + off, len - off, "]");
}

int hv__model_probe_shape(hid_t loc, const char *name, int *nd, int64_t sh[HV_NN_MAX_DIMS])
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 0;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    int n = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1, rc = -1;
    if (n >= 0 && n <= HV_NN_MAX_DIMS) {
        hsize_t d[HV_NN_MAX_DIMS];
        H5Sget_simple_extent_dims(sp, d, NULL);
        for (int i = 0; i < n; i++) sh[i] = (int64_t)d[i];
        *nd = n;
        rc = 1;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

void hv__model_file_close(hv__model_file *m)
{
    if (m->gp >= 0) H5Gclose(m->gp);
    if (m->f >= 0) H5Fclose(m->f);
    m->gp = m->f = -1;
}

hv_status hv__model_file_open(const char *path, const char *pfx, const hv__model_kind *k,
                              int need_ckpt, hv__model_file *m)
{
    memset(m, 0, sizeof *m);
    m->f = m->gp = -1;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return hv_error_set(HV_ERR_NOT_FOUND, "%s '%s' not found", pfx, path);
        return hv_error_set(HV_ERR_IO, "%s '%s': %s", pfx, path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode))
        return hv_error_set(HV_ERR_IO, "%s '%s' is not a regular file", pfx, path);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return hv_error_set(HV_ERR_IO, "%s '%s' cannot be read: %s", pfx, path, strerror(errno));
    fclose(fp);
    hv_status st = HV_OK;
    m->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (m->f < 0) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s' is not an HDF5 model file", pfx, path);
        goto done;
    }
    char alt[64];
    snprintf(alt, sizeof alt, "%s/params", k->ckpt_group);
    if (!need_ckpt && H5Lexists(m->f, "params", H5P_DEFAULT) > 0) {
        m->gp = H5Gopen2(m->f, "params", H5P_DEFAULT);
    } else if (H5Lexists(m->f, k->ckpt_group, H5P_DEFAULT) > 0 &&
               H5Lexists(m->f, alt, H5P_DEFAULT) > 0) {
        m->gp = H5Gopen2(m->f, alt, H5P_DEFAULT);
        m->in_ckpt = 1;
    }
    if (m->gp < 0) {
        if (need_ckpt)
            st = hv_error_set(HV_ERR_FORMAT, "%s '%s' holds no %s (no /%s: not a training "
                              "checkpoint)", pfx, path, k->net, alt);
        else
            st = hv_error_set(HV_ERR_FORMAT, "%s '%s' holds no %s (neither /params nor /%s)", pfx,
                              path, k->net, alt);
        goto done;
    }
    if (k->meta_kind) {
        char kind[64];
        const size_t kl = strlen(k->meta_kind);
        if (hv_nn_checkpoint_meta(path, "kind", kind, sizeof kind) != HV_OK) kind[0] = '\0';
        if (strlen(kind) < kl || memcmp(kind, k->meta_kind, kl) != 0) {
            st = hv_error_set(HV_ERR_FORMAT, "%s '%s' is not a %s model file: /meta kind is "
                              "%s%s%s (want '%s')", pfx, path, k->meta_kind,
                              kind[0] ? "'" : "missing", kind, kind[0] ? "'" : "", k->meta_kind);
            goto done;
        }
    }
    int nd = 0;
    int64_t sh[HV_NN_MAX_DIMS];
    int rc = hv__model_probe_shape(m->gp, k->first_conv, &nd, sh);
    if (rc <= 0) {
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s': parameter '%s' %s", pfx, path, k->first_conv,
                          rc == 0 ? "missing" : "unreadable");
        goto done;
    }
    if (nd != 4 || sh[0] < (k->even ? 2 : 1) || (k->even && sh[0] % 2) || sh[0] > 4096 ||
        sh[1] != k->in_ch || sh[2] != k->ksize || sh[3] != k->ksize) {
        char fs[128];
        hv__model_shape_str(fs, sizeof fs, nd, sh);
        st = hv_error_set(HV_ERR_FORMAT, "%s '%s': parameter '%s' has shape %s, a %s needs %s",
                          pfx, path, k->first_conv, fs, k->net, k->first_needs);
        goto done;
    }
    m->width = (int)sh[0];
done:
    if (st != HV_OK) hv__model_file_close(m);
    return st;
}

hv_status hv__model_file_check_shapes(const hv__model_file *m, const char *path, const char *pfx,
                                      const hv__model_kind *k, const hv_nn_params *ref)
{
    for (size_t i = 0; i < hv_nn_params_size(ref); i++) {
        const hv_nn_param *p = hv_nn_params_at(ref, i);
        int64_t want[HV_NN_MAX_DIMS], have[HV_NN_MAX_DIMS];
        int nw = hv_nn_param_shape(p, want), nh = 0;
        char ws[128], hs[128];
        hv__model_shape_str(ws, sizeof ws, nw, want);
        int rc = hv__model_probe_shape(m->gp, hv_nn_param_name(p), &nh, have);
        if (rc == 0)
            return hv_error_set(HV_ERR_FORMAT, "%s '%s': parameter '%s' missing (a %s of %s %d "
                                "has it with shape %s)", pfx, path, hv_nn_param_name(p), k->net,
                                k->width_name, m->width, ws);
        if (rc < 0)
            return hv_error_set(HV_ERR_FORMAT, "%s '%s': parameter '%s' unreadable", pfx, path,
                                hv_nn_param_name(p));
        int same = nh == nw;
        for (int q = 0; same && q < nw; q++) same = have[q] == want[q];
        if (!same) {
            hv__model_shape_str(hs, sizeof hs, nh, have);
            return hv_error_set(HV_ERR_FORMAT, "%s '%s': parameter '%s' has shape %s in the file, "
                                "a %s of %s %d (read from %s) needs %s", pfx, path,
                                hv_nn_param_name(p), hs, k->net, k->width_name, m->width,
                                k->first_conv, ws);
        }
    }
    return HV_OK;
}
