/*
 * h5util.c: the HDF5 plumbing every file of src/store uses.
 *
 * Why a file of its own: an HDF5 call that fails leaves its reason on the
 * library's error stack, several entries deep, and the useful part is often
 * the operating system's or MPI's own message inside one entry ("No space
 * left on device"), not HDF5's innermost description. hv_h5_fail digs it out
 * once for every caller, so a full disk reads the same on every rank and in
 * every command. HDF5 1.10's MPI-IO driver reports a short write only as
 * "file write failed"; hv_h5_write_rows then asks the file system itself
 * (free space, RLIMIT_FSIZE) why. The scalar attribute helpers and the
 * fixed-length string type are here for the same reason: one definition of
 * how the schema's attributes are written and read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store_internal.h"

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
hv_status hv_h5_fail(int err, const char *fmt, ...)
{
    char why[600], msg[1024];
    h5_reason(why, sizeof why, err); /* first: nothing below touches HDF5 */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hv_error_set(HV_ERR_HDF5, "%s%s", msg, why);
}

void hv_h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

hid_t hv_h5_str_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

/* ------------------------------------------------------------- attributes */

hv_status hv_h5_attr_str(hid_t obj, const char *name, const char *value)
{
    hv_status st = HV_OK;
    hid_t t = hv_h5_str_type(strlen(value) + 1), sp = H5Screate(H5S_SCALAR), a = -1;
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

hv_status hv_h5_attr_int(hid_t obj, const char *name, long value)
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

hv_status hv_h5_attr_double(hid_t obj, const char *name, double value)
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
char *hv_h5_read_attr_str(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        hid_t mt = hv_h5_str_type(n + 1);
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

int hv_h5_read_attr_long(hid_t obj, const char *name, long *out)
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

int hv_h5_read_attr_double(hid_t obj, const char *name, double *out)
{
    if (H5Aexists(obj, name) <= 0) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    int ok = H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0;
    H5Aclose(a);
    return ok;
}

/* ------------------------------------------------------------- raw writes */

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

hv_status hv_h5_write_rows(hid_t d, hid_t type, hsize_t start, hsize_t count, int rank,
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
        st = hv_h5_fail(e, "store: write failed");
        goto done;
    }
done:
    H5Sclose(ms);
    H5Sclose(fs);
    return st;
}
