/*
 * nifti_read: how fast hv_io_nifti_read reads a CT-sized .nii.gz through the
 * zlib streaming path and the libdeflate fast path, against two ceilings on
 * the same file in the same run:
 *   - zlib inflate of the whole file (gzread into a 16 MiB buffer);
 *   - libdeflate decompress of the whole file (file already in memory, one
 *     output buffer of the decompressed size; file reading not timed).
 * The volume is a 512 x 512 x 400 int16 phantom-like CT made here (air with
 * noise, an elliptic body of soft tissue and fat, a spine column of bone,
 * Gaussian noise of 12 HU), written with our writer at gzip level 1 and 6
 * (not timed). Each figure is the median of 5 runs; reads are into float32
 * (what the pipeline asks for CT). The streaming path is forced with the
 * test/benchmark-only HV_NIFTI_FAST_MAX_BYTES=0.
 *
 * usage: nifti_read [OUTDIR]   (default: ./bench-nifti-tmp; files removed)
 */
#include "hv/io.h"

#include <libdeflate.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../bench_util.h"

#define REPS 5

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t)
{
    qsort(t, REPS, sizeof *t, cmp_d);
    return t[REPS / 2];
}


static double deflate_whole(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t got = 0;
    double t0 = hv_time_now();
    enum libdeflate_result r = libdeflate_gzip_decompress(d, in, n, out, cap, &got);
    double t = hv_time_now() - t0;
    libdeflate_free_decompressor(d);
    return r == LIBDEFLATE_SUCCESS && got == cap ? t : -1;
}

static double read_once(const char *path, int stream)
{
    if (stream) setenv("HV_NIFTI_FAST_MAX_BYTES", "0", 1);
    else unsetenv("HV_NIFTI_FAST_MAX_BYTES");
    hv_volume *v = NULL;
    double t0 = hv_time_now();
    hv_status st = hv_io_nifti_read(path, HV_DTYPE_F32, NULL, &v, NULL);
    double t = hv_time_now() - t0;
    unsetenv("HV_NIFTI_FAST_MAX_BYTES");
    if (st != HV_OK) {
        fprintf(stderr, "read %s: %s\n", path, hv_error_detail());
        return -1;
    }
    hv_vol_free(v);
    return t;
}

static hv_volume *make_ct(void)
{
    int64_t d[3] = {512, 512, 400};
    double A[4][4] = {{0.75, 0, 0, -192}, {0, 0.75, 0, -192}, {0, 0, 1, -200}, {0, 0, 0, 1}};
    hv_volume *v = NULL;
    if (hv_vol_create(&v, d, HV_DTYPE_I16, (const double(*)[4])A) != HV_OK) return NULL;
    hv_rng rng;
    hv_rng_seed(&rng, 7, 0);
    int16_t *p = v->data;
    for (int64_t k = 0; k < d[2]; k++)
        for (int64_t j = 0; j < d[1]; j++)
            for (int64_t i = 0; i < d[0]; i++) {
                double x = (i - 256) / 200.0, y = (j - 270) / 150.0;
                double r2 = x * x + y * y, hu;
                if (r2 > 1.0) hu = -1000;
                else if (r2 > 0.8) hu = -90;                      /* fat */
                else hu = 40;                                     /* soft tissue */
                double sx = (i - 256) / 30.0, sy = (j - 340) / 30.0;
                double s2 = sx * sx + sy * sy;
                if (s2 < 1.0 && (k % 40) < 32) hu = s2 > 0.7 ? 900 : 250; /* vertebrae */
                hu += 12.0 * hv_rng_normal(&rng);
                p[(k * d[1] + j) * d[0] + i] = (int16_t)lround(hu);
            }
    return v;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench-nifti-tmp";
    mkdir(dir, 0777);
    hv_volume *ct = make_ct();
    if (!ct) {
        fprintf(stderr, "cannot make the phantom CT\n");
        return 1;
    }
    printf("# nifti_read: 512 x 512 x 400 int16 phantom-like CT read into float32, median of %d\n",
           REPS);
    printf("level,gz_MB,raw_MB,zlib_stream_read_s,libdeflate_read_s,zlib_inflate_s,"
           "libdeflate_inflate_s,read_speedup,inflate_speedup,stream_over_zlib_inflate,"
           "fast_over_libdeflate_inflate\n");
    int levels[2] = {1, 6};
    for (int li = 0; li < 2; li++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/ct_l%d.nii.gz", dir, levels[li]);
        hv_nifti_write_opts wo = {.gzip_level = levels[li]};
        if (hv_io_nifti_write(path, ct, &wo) != HV_OK) {
            fprintf(stderr, "write: %s\n", hv_error_detail());
            return 1;
        }
        struct stat sb;
        stat(path, &sb);
        size_t gn = (size_t)sb.st_size, raw = 0;
        unsigned char *gz = malloc(gn);
        FILE *f = fopen(path, "rb");
        if (!gz || !f || fread(gz, 1, gn, f) != gn) return 1;
        fclose(f);
        double ts[REPS], tf[REPS], tz[REPS], td[REPS];
        hv_bench_inflate_file(path, &raw);
        unsigned char *out = malloc(raw);
        if (!out) return 1;
        for (int r = 0; r < REPS; r++) {
            ts[r] = read_once(path, 1);
            tf[r] = read_once(path, 0);
            tz[r] = hv_bench_inflate_file(path, &raw);
            td[r] = deflate_whole(gz, gn, out, raw);
            if (ts[r] < 0 || tf[r] < 0 || tz[r] < 0 || td[r] < 0) return 1;
        }
        double s = median(ts), fa = median(tf), z = median(tz), d = median(td);
        printf("%d,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.2f,%.2f,%.2f,%.2f\n", levels[li], gn / 1e6,
               raw / 1e6, s, fa, z, d, s / fa, z / d, s / z, fa / d);
        fflush(stdout);
        free(out);
        free(gz);
        remove(path);
    }
    hv_vol_free(ct);
    remove(dir);
    return 0;
}
