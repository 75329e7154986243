/*
 * bench_util.h: ceilings shared by the benchmarks in bench/.
 *
 * hv_bench_inflate_file: seconds to inflate a whole .gz file with plain zlib
 * (gzread into a 16 MiB buffer, 1 MiB zlib buffer), the decompression floor
 * that the NIfTI reading benchmarks compare against. *bytes receives the
 * inflated size. Returns -1 when the file cannot be opened or memory fails.
 */
#ifndef HV_BENCH_UTIL_H
#define HV_BENCH_UTIL_H

#include <stdlib.h>
#include <zlib.h>

#include "hv/core.h"

static inline double hv_bench_inflate_file(const char *path, size_t *bytes)
{
    gzFile g = gzopen(path, "rb");
    if (!g) return -1;
    gzbuffer(g, 1 << 20);
    size_t cap = 1 << 24, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        gzclose(g);
        return -1;
    }
    double t0 = hv_time_now();
    for (;;) {
        int r = gzread(g, buf, (unsigned)cap);
        if (r <= 0) break;
        n += (size_t)r;
    }
    double t = hv_time_now() - t0;
    gzclose(g);
    free(buf);
    *bytes = n;
    return t;
}

#endif
