/*
 * cmd_info.c: `healthivert info FILE.nii[.gz]`, a description of one NIfTI
 * file: header facts (version, datatype, scaling, transform codes), the
 * geometry we derive (dims, spacing, axis codes, obliquity, which transform
 * was used), the intensity range and, for integer images with few distinct
 * values, the label table with voxel counts and VerSe level names.
 *
 * It goes through hv_io_nifti_read like the pipeline does, so what `info`
 * accepts, the pipeline accepts, and a bad file fails here with the same
 * message. The image is read as float32 (scaling applied); distinct values
 * are counted in one pass with a small sorted table that gives up after 512
 * values, so a CT costs one read and no sort.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"
#include "hv/io.h"

#define INFO_MAX_LABELS 512

static void info_usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert info [--max-gib N] FILE.nii[.gz]\n"
            "\n"
            "Describe a NIfTI-1 or NIfTI-2 image (.nii or .nii.gz) after the same header\n"
            "validation the pipeline applies:\n"
            "  - NIfTI version, byte order, gzip, datatype, scl_slope/scl_inter;\n"
            "  - dims and voxel spacing (mm), qform/sform codes and which one gives the\n"
            "    geometry (sform if sform_code > 0, else qform, else pixdim);\n"
            "  - orientation codes (the direction each voxel axis points, e.g. RAS) and\n"
            "    the obliquity of the grid in degrees;\n"
            "  - the voxel-to-world affine (RAS+ mm) and the intensity range after\n"
            "    scaling, with the number of NaN/Inf voxels;\n"
            "  - for integer images with at most %d distinct values: every value with\n"
            "    its voxel count and its VerSe vertebra name (20 = L1, ...).\n"
            "\n"
            "options:\n"
            "  --max-gib N  refuse files whose voxel data exceed N GiB (default 4)\n"
            "  -h, --help   this text\n"
            "\n"
            "Exit status: 0 when the file is valid, 1 with one message on stderr when\n"
            "it is not (truncated, corrupt gzip, impossible header, ...), 2 on a bad\n"
            "command line.\n",
            INFO_MAX_LABELS);
}

static const char *datatype_name(int code)
{
    switch (code) {
    case 2: return "uint8";
    case 4: return "int16";
    case 8: return "int32";
    case 16: return "float32";
    case 64: return "float64";
    case 256: return "int8";
    case 512: return "uint16";
    case 768: return "uint32";
    case 1024: return "int64";
    case 1280: return "uint64";
    }
    return "?";
}

static const char *xform_name(int code)
{
    switch (code) {
    case 0: return "unknown";
    case 1: return "scanner";
    case 2: return "aligned";
    case 3: return "talairach";
    case 4: return "mni";
    case 5: return "template";
    }
    return "invalid";
}

static int is_int_datatype(int code)
{
    return code != 16 && code != 64;
}

typedef struct label_count {
    double value;
    uint64_t n;
} label_count;

/* Add `x` to the sorted table; returns 0 once the table would exceed its size. */
static int table_add(label_count *t, size_t *n, double x)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t[mid].value < x) lo = mid + 1;
        else hi = mid;
    }
    if (lo < *n && t[lo].value == x) {
        t[lo].n++;
        return 1;
    }
    if (*n == INFO_MAX_LABELS) return 0;
    memmove(t + lo + 1, t + lo, (*n - lo) * sizeof *t);
    t[lo].value = x;
    t[lo].n = 1;
    (*n)++;
    return 1;
}

int hv_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    hv_nifti_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            info_usage(stdout);
            return HV_EXIT_OK;
        } else if (!strcmp(argv[i], "--max-gib") && i + 1 < argc) {
            char *end = NULL;
            double g = strtod(argv[++i], &end);
            if (!end || *end || !(g > 0) || g > 1e6) {
                fprintf(stderr, "healthivert info: --max-gib wants a positive number\n");
                return HV_EXIT_USAGE;
            }
            opts.max_bytes = (uint64_t)(g * 1073741824.0);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "healthivert info: unknown option '%s' (see --help)\n", argv[i]);
            return HV_EXIT_USAGE;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "healthivert info: one file at a time (see --help)\n");
            return HV_EXIT_USAGE;
        }
    }
    if (!path) {
        info_usage(stderr);
        return HV_EXIT_USAGE;
    }

    hv_volume *v = NULL;
    hv_nifti_info ni;
    hv_status st = hv_io_nifti_read(path, HV_DTYPE_F32, &opts, &v, &ni);
    if (st != HV_OK) {
        fprintf(stderr, "healthivert info: %s\n", hv_error_detail());
        return HV_EXIT_FAIL;
    }

    printf("file:        %s\n", path);
    printf("format:      NIfTI-%d%s%s\n", ni.version, ni.gzipped ? ", gzip" : "",
           ni.swapped ? ", opposite byte order" : "");
    if (ni.descrip[0]) printf("descrip:     %s\n", ni.descrip);
    printf("datatype:    %s (code %d, %d bits)\n", datatype_name(ni.datatype), ni.datatype,
           ni.bitpix);
    printf("scaling:     scl_slope %g, scl_inter %g%s\n", ni.scl_slope, ni.scl_inter,
           (isfinite(ni.scl_slope) && ni.scl_slope != 0) ? "" : " (none)");
    printf("dims:        %" PRId64 " x %" PRId64 " x %" PRId64 " (%zu voxels)\n", v->dim[0],
           v->dim[1], v->dim[2], v->nvox);
    printf("spacing:     %.6g x %.6g x %.6g mm\n", v->spacing[0], v->spacing[1], v->spacing[2]);
    printf("transforms:  qform_code %d (%s), sform_code %d (%s)\n", ni.qform_code,
           xform_name(ni.qform_code), ni.sform_code, xform_name(ni.sform_code));
    printf("geometry:    from the %s\n", ni.sform_code > 0   ? "sform"
                                         : ni.qform_code > 0 ? "qform"
                                                             : "pixdim (no transform set)");
    char codes[4];
    hv_affine_axcodes((const double(*)[4])v->affine, codes);
    double obl = hv_affine_obliquity_deg((const double(*)[4])v->affine);
    printf("orientation: %s%s (obliquity %.3g deg)\n", codes, obl > 1e-3 ? ", oblique" : "",
           obl);
    for (int r = 0; r < 3; r++)
        printf("%s [%10.4f %10.4f %10.4f %10.4f ]\n", r == 0 ? "affine:     " : "            ",
               v->affine[r][0], v->affine[r][1], v->affine[r][2], v->affine[r][3]);
    double mn = 0, mx = 0;
    size_t nonfinite = 0;
    hv_vol_range(v, &mn, &mx, &nonfinite);
    printf("range:       %.6g .. %.6g (%zu NaN/Inf voxels)\n", mn, mx, nonfinite);

    if (is_int_datatype(ni.datatype)) {
        label_count *t = malloc(INFO_MAX_LABELS * sizeof *t);
        size_t n = 0;
        int fits = t != NULL;
        const float *d = v->data;
        for (size_t i = 0; fits && i < v->nvox; i++) fits = table_add(t, &n, d[i]);
        if (!t) {
            printf("labels:      (out of memory)\n");
        } else if (!fits) {
            printf("labels:      more than %d distinct values (not a label image)\n",
                   INFO_MAX_LABELS);
        } else {
            printf("labels:      %zu distinct values (names: VerSe convention)\n", n);
            for (size_t i = 0; i < n; i++) {
                double x = t[i].value;
                const char *name =
                    (x == floor(x) && fabs(x) < 1e6) ? hv_label_name((int)x) : NULL;
                printf("  %8g %12" PRIu64 " voxels%s%s\n", x, t[i].n, name ? "  " : "",
                       name ? name : "");
            }
        }
        free(t);
    }
    hv_vol_free(v);
    return HV_EXIT_OK;
}
