/*
 * cmd_phantom.c: `healthivert phantom`: write a synthetic spine cohort with
 * known ground truth (src/phantom) and print what was written.
 *
 * The cohort writer does the work; this file only turns the command line
 * into hv_phantom_opts (rejecting anything malformed with a message that
 * names the option), and afterwards prints one line per case built from the
 * case's model (cheap to redraw: it is deterministic) and the written mask's
 * header (grid dims and spacing), then totals per Genant grade.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/phantom.h"

static void phantom_usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert phantom --out DIR [--cases N] [--seed S] [options]\n"
            "\n"
            "Writes a synthetic spine CT cohort whose anatomy and fractures are known\n"
            "exactly, in the layout the pipeline reads:\n"
            "  DIR/raw/<id>/<id>.nii.gz      CT, int16 Hounsfield units\n"
            "  DIR/raw/<id>/<id>_msk.nii.gz  vertebra labels (VerSe: 8..19 = T1..T12, 20..24 = L1..L5)\n"
            "  DIR/raw/<id>/<id>.json        label centroids in the mask's voxel coordinates\n"
            "  DIR/split.json                train/val/test by case with each vertebra's Genant grade\n"
            "  DIR/ground_truth.csv          per vertebra: grade, fracture type, height loss,\n"
            "                                healthy and observed anterior/middle/posterior\n"
            "                                heights (mm), centre, axis, depth, width\n"
            "Case ids are ph0000, ph0001, ... The same options always give the same\n"
            "bytes, whatever the number of threads (OMP_NUM_THREADS). Existing files of\n"
            "the same names are replaced; each file is written whole or not at all.\n"
            "\n"
            "options:\n"
            "  --out DIR              output folder (created if missing; required)\n"
            "  --cases N              number of cases (default 20)\n"
            "  --seed S               random seed, a non-negative integer (default 1)\n"
            "  --spacing X[,Y,Z]      voxel size in mm along the file's i, j, k axes\n"
            "                         (default 1; one value = isotropic)\n"
            "  --orientation O        voxel axis order: RAS (default), LPS, PIR, or\n"
            "                         oblique (RAS tilted 7 deg about x and 4 deg about z)\n"
            "  --range A-B            levels to include, top to bottom, T1..L5 (default T1-L5)\n"
            "  --fracture-rate P      chance that a vertebra is fractured, 0..1 (default 0.15;\n"
            "                         T1-T3 get a quarter of it)\n"
            "  --scoliosis-rate P     chance that a case has a scoliotic curve, 0..1 (default 0.3)\n"
            "  --noise HU             CT noise standard deviation in HU (default 20)\n"
            "  -h, --help             this text\n"
            "\n"
            "Fractures are wedge (anterior loss), biconcave (middle loss) or crush (all),\n"
            "with the loss at the worst of the three points drawn strictly inside a\n"
            "Genant band: grade 1 20-25 %%, grade 2 25-40 %%, grade 3 40-55 %%.\n"
            "Heights are measured along each vertebra's own axis at 1/6, 1/2 and 5/6 of\n"
            "its depth. The model and its numbers are described in docs/phantom.md.\n"
            "\n"
            "Prints one line per case (id, grid, spacing, orientation, levels, fractures\n"
            "as level:grade:type) and the number of vertebrae per grade.\n"
            "Exit status: 0 written, 1 failed (message on stderr), 2 bad command line.\n");
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || end == s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "healthivert phantom: %s expects a number, got '%s'\n", opt, s);
        return 0;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "healthivert phantom: %s %s is outside [%g, %g]\n", opt, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_spacing(const char *s, double sp[3])
{
    char buf[128];
    if (strlen(s) >= sizeof buf) {
        fprintf(stderr, "healthivert phantom: --spacing '%s' is too long\n", s);
        return 0;
    }
    strcpy(buf, s);
    char *parts[4];
    int n = 0;
    for (char *p = buf, *tok; n < 4 && (tok = strsep(&p, ",")) != NULL;) parts[n++] = tok;
    if (n != 1 && n != 3) {
        fprintf(stderr, "healthivert phantom: --spacing expects X or X,Y,Z (mm), got '%s'\n", s);
        return 0;
    }
    for (int a = 0; a < n; a++)
        if (!parse_double("--spacing", parts[a], 0.1, 20.0, &sp[a])) return 0;
    if (n == 1) sp[1] = sp[2] = sp[0];
    return 1;
}

static int parse_range(const char *s, int *first, int *last)
{
    char buf[32];
    if (strlen(s) >= sizeof buf) goto bad;
    strcpy(buf, s);
    char *dash = strchr(buf, '-');
    const char *b = buf;
    if (dash) {
        *dash = '\0';
        b = dash + 1;
    }
    int a = hv_label_from_name(buf), z = hv_label_from_name(b);
    if (a < HV_LABEL_T1 || a > HV_LABEL_L5 || z < HV_LABEL_T1 || z > HV_LABEL_L5) goto bad;
    if (a > z) {
        fprintf(stderr, "healthivert phantom: --range '%s' runs upwards; give the top level first (e.g. T11-L3)\n",
                s);
        return 0;
    }
    *first = a;
    *last = z;
    return 1;
bad:
    fprintf(stderr, "healthivert phantom: --range expects levels within T1..L5 such as T1-L5 or T11-L3, got '%s'\n",
            s);
    return 0;
}

static void progress_cb(void *user, long done, long total)
{
    (void)user;
    hv_log_info("phantom: %ld/%ld cases written", done, total);
}

static const char *orient_label(hv_phantom_orient o)
{
    switch (o) {
    case HV_PHANTOM_RAS: return "RAS";
    case HV_PHANTOM_LPS: return "LPS";
    case HV_PHANTOM_PIR: return "PIR";
    case HV_PHANTOM_OBLIQUE: return "oblique";
    }
    return "?";
}

int hv_cmd_phantom(int argc, char **argv)
{
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    const char *out = NULL;
    long n_cases = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            phantom_usage(stdout);
            return HV_EXIT_OK;
        }
        /* --opt=value or --opt value */
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
        } else if (strlen(a) < sizeof name) {
            strcpy(name, a);
        } else {
            fprintf(stderr, "healthivert phantom: unknown option '%s' (see --help)\n", a);
            return HV_EXIT_USAGE;
        }
        static const char *known[] = {"--out", "--cases", "--seed", "--spacing", "--orientation",
                                      "--range", "--fracture-rate", "--scoliosis-rate", "--noise"};
        int k = -1;
        for (int j = 0; j < (int)(sizeof known / sizeof known[0]); j++)
            if (!strcmp(name, known[j])) k = j;
        if (k < 0) {
            fprintf(stderr, "healthivert phantom: unknown option '%s' (see --help)\n", a);
            return HV_EXIT_USAGE;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "healthivert phantom: %s needs a value\n", name);
                return HV_EXIT_USAGE;
            }
            val = argv[++i];
        }
        double d;
        switch (k) {
        case 0:
            if (!*val) {
                fprintf(stderr, "healthivert phantom: --out needs a folder\n");
                return HV_EXIT_USAGE;
            }
            out = val;
            break;
        case 1:
            if (!parse_double("--cases", val, 1, 100000, &d)) return HV_EXIT_USAGE;
            if (d != floor(d)) {
                fprintf(stderr, "healthivert phantom: --cases expects a whole number, got '%s'\n", val);
                return HV_EXIT_USAGE;
            }
            n_cases = (long)d;
            break;
        case 2: {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (!isdigit((unsigned char)val[0]) || *end || errno) {
                fprintf(stderr, "healthivert phantom: --seed expects a non-negative integer, got '%s'\n", val);
                return HV_EXIT_USAGE;
            }
            o.seed = s;
            break;
        }
        case 3:
            if (!parse_spacing(val, o.spacing)) return HV_EXIT_USAGE;
            break;
        case 4:
            if (!strcasecmp(val, "RAS")) o.orientation = HV_PHANTOM_RAS;
            else if (!strcasecmp(val, "LPS")) o.orientation = HV_PHANTOM_LPS;
            else if (!strcasecmp(val, "PIR")) o.orientation = HV_PHANTOM_PIR;
            else if (!strcasecmp(val, "oblique")) o.orientation = HV_PHANTOM_OBLIQUE;
            else {
                fprintf(stderr, "healthivert phantom: --orientation expects RAS, LPS, PIR or oblique, got '%s'\n",
                        val);
                return HV_EXIT_USAGE;
            }
            break;
        case 5:
            if (!parse_range(val, &o.first_label, &o.last_label)) return HV_EXIT_USAGE;
            break;
        case 6:
            if (!parse_double("--fracture-rate", val, 0.0, 1.0, &o.fracture_rate)) return HV_EXIT_USAGE;
            break;
        case 7:
            if (!parse_double("--scoliosis-rate", val, 0.0, 1.0, &o.scoliosis_rate)) return HV_EXIT_USAGE;
            break;
        case 8:
            if (!parse_double("--noise", val, 0.0, 1000.0, &o.noise_hu)) return HV_EXIT_USAGE;
            break;
        }
    }
    if (!out) {
        fprintf(stderr, "healthivert phantom: --out DIR is required (see --help)\n");
        return HV_EXIT_USAGE;
    }

    double t0 = hv_time_now();
    hv_status st = hv_phantom_cohort_write(&o, out, (int)n_cases, progress_cb, NULL);
    if (st != HV_OK) {
        fprintf(stderr, "healthivert phantom: %s\n", hv_error_detail());
        return HV_EXIT_FAIL;
    }
    double secs = hv_time_now() - t0;

    long per_grade[4] = {0, 0, 0, 0}, n_vert = 0;
    for (long i = 0; i < n_cases; i++) {
        hv_phantom_case *c = NULL;
        char *mpath = NULL;
        hv_nifti_info info;
        st = hv_phantom_case_make(&o, (int)i, &c);
        if (st == HV_OK) {
            mpath = hv_strfmt("%s/raw/%s/%s_msk.nii.gz", out, c->id, c->id);
            st = mpath ? hv_io_nifti_check(mpath, NULL, &info) : hv_error_set(HV_ERR_NOMEM, "out of memory");
        }
        if (st != HV_OK) {
            fprintf(stderr, "healthivert phantom: summary of case %ld: %s\n", i, hv_error_detail());
            free(mpath);
            hv_phantom_case_free(c);
            return HV_EXIT_FAIL;
        }
        printf("%s  %lldx%lldx%lld  %.2fx%.2fx%.2f mm  %-7s  %s-%s (%d)  fractures:", c->id,
               (long long)info.dim[1], (long long)info.dim[2], (long long)info.dim[3], info.pixdim[1],
               info.pixdim[2], info.pixdim[3], orient_label(o.orientation), hv_label_name(c->vert[0].label),
               hv_label_name(c->vert[c->n_vert - 1].label), c->n_vert);
        int nf = 0;
        for (int v = 0; v < c->n_vert; v++) {
            const hv_phantom_vert *p = &c->vert[v];
            per_grade[p->grade]++;
            n_vert++;
            if (p->grade > 0) {
                printf(" %s:%d:%s", hv_label_name(p->label), p->grade, hv_fracture_type_name(p->type));
                nf++;
            }
        }
        printf("%s\n", nf ? "" : " none");
        free(mpath);
        hv_phantom_case_free(c);
    }
    printf("total: %ld cases, %ld vertebrae: grade 0: %ld, grade 1: %ld, grade 2: %ld, grade 3: %ld "
           "(written to %s in %.1f s)\n",
           n_cases, n_vert, per_grade[0], per_grade[1], per_grade[2], per_grade[3], out, secs);
    return HV_EXIT_OK;
}
