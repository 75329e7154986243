/*
 * status.c: status names and the per-thread error detail.
 *
 * A failing call records what went wrong in a thread-local buffer and
 * returns a status code; callers up the stack prepend their context with
 * hv_error_wrap. Thread-local storage keeps OpenMP workers and MPI progress
 * threads from overwriting each other's messages without any locking.
 */
#include "hv/core.h"

#include <stdio.h>
#include <string.h>

/* 8 KiB: a manifest refused as a whole lists up to 50 bad rows in one
 * message (src/io/manifest.c) */
#define HV_ERROR_CAP 8192

static _Thread_local char hv_error_buf[HV_ERROR_CAP];

static const char *const hv_status_names[HV_STATUS_COUNT] = {
    [HV_OK] = "ok",
    [HV_ERR_ARG] = "bad argument",
    [HV_ERR_NOMEM] = "out of memory",
    [HV_ERR_IO] = "i/o error",
    [HV_ERR_FORMAT] = "malformed input",
    [HV_ERR_LIMIT] = "size limit exceeded",
    [HV_ERR_NOT_FOUND] = "not found",
    [HV_ERR_UNSUPPORTED] = "unsupported",
    [HV_ERR_EMPTY] = "empty input",
    [HV_ERR_NUMERIC] = "numeric error",
    [HV_ERR_INTERRUPTED] = "interrupted",
    [HV_ERR_MPI] = "MPI error",
    [HV_ERR_HDF5] = "HDF5 error",
    [HV_ERR_GPU] = "GPU error",
    [HV_ERR_INTERNAL] = "internal error",
};

const char *hv_status_name(hv_status st)
{
    if ((int)st < 0 || st >= HV_STATUS_COUNT || !hv_status_names[st]) return "unknown status";
    return hv_status_names[st];
}

hv_status hv_error_set(hv_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hv_error_buf, sizeof hv_error_buf, fmt, ap);
    va_end(ap);
    return st;
}

hv_status hv_error_wrap(hv_status st, const char *fmt, ...)
{
    char prefix[512];
    char old[HV_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, hv_error_buf, sizeof old);
    if (old[0])
        snprintf(hv_error_buf, sizeof hv_error_buf, "%.500s: %.7600s", prefix, old);
    else
        snprintf(hv_error_buf, sizeof hv_error_buf, "%s: %s", prefix, hv_status_name(st));
    return st;
}

const char *hv_error_detail(void) { return hv_error_buf; }

void hv_error_clear(void) { hv_error_buf[0] = '\0'; }
