/*
 * test_measure_inputs.c: `healthivert measure` refuses or survives hostile
 * inputs (issue 9), on a synthetic spine written to NIfTI here:
 *  - impossible centroids (X = -5000, +-1e308, 30 mm off) are ignored with a
 *    warning naming the label and the distance, and the healthy vertebrae
 *    stay grade 0 (the spine's analytic truth) instead of grade 3;
 *  - a centroid entry without "X" is an error naming it, nothing written;
 *  - a CT with the mask's dimensions but another affine (shifted 50 mm,
 *    half the spacing) is refused before any HU is read, nothing written;
 *  - a mask holding -1 voxels is read as `run` reads it (int16), not refused;
 *  - --case ../../escape (and a case id with a newline) is refused before
 *    anything is written;
 *  - a directory or FIFO given as --centroids, --mask, --ct, the --grader
 *    svm: model, or svm's --table/--split is named as such (and a FIFO does
 *    not hang: each command runs under timeout(1)).
 * argv[1] is the healthivert binary.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hv/io.h"
#include "hv_test.h"
#include "spine/bad_centroids.h"
#include "spine/synth.h"

static const char *bin, *tmp;
static char cmd[16384], err[8192];

/* Run `healthivert SUB ARGS` with stderr captured in err; exit status. */
static int hv(const char *sub, const char *args)
{
    char ep[4200];
    snprintf(ep, sizeof ep, "%s/stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s %s > '%s/stdout.txt' 2> '%s'", bin, sub, args,
             tmp, ep);
    int st = system(cmd);
    err[0] = '\0';
    FILE *f = fopen(ep, "r");
    if (f) {
        size_t n = fread(err, 1, sizeof err - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static int measure(const char *args) { return hv("measure", args); }

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static const char *tp(const char *name)
{
    static char buf[8][4200];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 4200, "%s/%s", tmp, name);
    return p;
}

/* grade per label from a measure CSV (grade is column 14); -9 when absent */
static void read_grades(const char *csv, int grade[32], double rhlv_max[32])
{
    for (int l = 0; l < 32; l++) grade[l] = -9, rhlv_max[l] = NAN;
    FILE *f = fopen(csv, "r");
    if (!f) return;
    char line[4096];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            continue;
        }
        char *fld[20];
        int nf = 0;
        for (char *p = line; nf < 20;) {
            fld[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = '\0';
            p = c + 1;
        }
        if (nf < 14) continue;
        int label = atoi(fld[1]);
        if (label < 0 || label >= 32) continue;
        grade[label] = atoi(fld[13]);
        double m = 0;
        for (int c = 10; c <= 12; c++) {
            double x = strtod(fld[c], NULL);
            if (fabs(x) > fabs(m) || x != x) m = x;
        }
        rhlv_max[label] = m;
    }
    fclose(f);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    HV_CHECK(f != NULL, "write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    HV_REQUIRE(argc > 1, "usage: test_measure_inputs HEALTHIVERT");
    bin = argv[1];
    tmp = hv_test_tmpdir("measure_inputs");
    HV_REQUIRE(tmp, "tmpdir");

    /* Five vertebrae T11..L3 (labels 18..22) on a 1.5 mm RAS grid; T12 (19)
     * is a wedge, the other four are healthy: grade 0 by construction. */
    syn_spine s;
    double A[4][4];
    int64_t dim[3];
    const double sp[3] = {1.5, 1.5, 1.5};
    hv_volume *mask8 = NULL, *ct16 = NULL, *mask = NULL;
    syn_make(&s, 5, 18, 0, 0, 1);
    syn_grid(sp, 0, 0, -90, 120, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask8, &ct16, NULL) == HV_OK, "render");
    HV_REQUIRE(hv_vol_convert(mask8, HV_DTYPE_I16, &mask) == HV_OK, "convert");
    hv_nifti_write_opts lab = {0};
    lab.intent_label = 1;
    HV_REQUIRE(hv_io_nifti_write(tp("m.nii.gz"), mask, &lab) == HV_OK, "write mask");
    HV_REQUIRE(hv_io_nifti_write(tp("ct.nii.gz"), ct16, NULL) == HV_OK, "write ct");
    static const int healthy[4] = {18, 20, 21, 22};
    int grade[32];
    double rl[32];
    char args[8192];

    /* the clean run: healthy vertebrae are grade 0 (sanity of the set-up) */
    snprintf(args, sizeof args, "--mask '%s' --ct '%s' --csv '%s'", tp("m.nii.gz"),
             tp("ct.nii.gz"), tp("clean.csv"));
    HV_CHECK(measure(args) == 0, "clean run exits 0: %s", err);
    read_grades(tp("clean.csv"), grade, rl);
    for (int q = 0; q < 4; q++)
        HV_CHECK(grade[healthy[q]] == 0, "clean: label %d grade %d (rhlv %g)", healthy[q],
                 grade[healthy[q]], rl[healthy[q]]);

    /* ---- item 3: impossible centroids are ignored, with a warning */
    {
        /* T11, L3 good; T12 at 1e308, L1 at X = -5000, L2 30 mm off along S */
        HV_REQUIRE(syn_write_bad_centroids(tp("bad_ctd.json"), &s, (const double(*)[4])A, 30.0) ==
                       HV_OK,
                   "bad centroid file: %s", hv_error_detail());
        snprintf(args, sizeof args, "--mask '%s' --centroids '%s' --csv '%s'", tp("m.nii.gz"),
                 tp("bad_ctd.json"), tp("ctd.csv"));
        HV_CHECK(measure(args) == 0, "impossible centroids: exit 0: %s", err);
        HV_CHECK(strstr(err, "label 19 (T12)") && strstr(err, "lies outside the volume"),
                 "warning names T12 (1e308): %s", err);
        HV_CHECK(strstr(err, "label 20 (L1): the given centroid (-5000,") != NULL,
                 "warning names L1 (X = -5000): %s", err);
        HV_CHECK(strstr(err, "label 21 (L2)") && strstr(err, "mm from the centre of the label") &&
                     strstr(err, "(more than 20 mm)"),
                 "warning names L2 (30 mm off) and its distance: %s", err);
        HV_CHECK(!strstr(err, "label 18 (") && !strstr(err, "label 22 ("),
                 "good centroids are not warned about: %s", err);
        read_grades(tp("ctd.csv"), grade, rl);
        for (int q = 0; q < 4; q++)
            HV_CHECK(grade[healthy[q]] == 0 && rl[healthy[q]] > -0.2,
                     "impossible centroids: healthy label %d graded %d, RHLV %g", healthy[q],
                     grade[healthy[q]], rl[healthy[q]]);
    }
    /* a centroid entry without "X" is an error that names it; nothing written */
    write_text(tp("nox.json"), "[{\"label\": 20, \"Y\": 1, \"Z\": 2}]");
    snprintf(args, sizeof args, "--mask '%s' --centroids '%s' --csv '%s'", tp("m.nii.gz"),
             tp("nox.json"), tp("nox.csv"));
    HV_CHECK(measure(args) == 1 && strstr(err, "nox.json") &&
                 strstr(err, "label 20: \"X\" is missing"),
             "entry without X: %s", err);
    HV_CHECK(!exists(tp("nox.csv")), "entry without X: no CSV written");

    /* ---- item 5: a CT on another grid (same dims) is refused */
    {
        hv_volume *moved = NULL;
        HV_REQUIRE(hv_vol_clone(ct16, &moved) == HV_OK, "clone");
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++) moved->affine[r][c] *= 0.5;
            moved->affine[r][3] += r == 0 ? 50.0 : 0.0;
        }
        hv_vol_update_spacing(moved);
        HV_REQUIRE(hv_io_nifti_write(tp("ct_moved.nii.gz"), moved, NULL) == HV_OK, "write");
        hv_vol_free(moved);
        snprintf(args, sizeof args, "--mask '%s' --ct '%s' --csv '%s'", tp("m.nii.gz"),
                 tp("ct_moved.nii.gz"), tp("moved.csv"));
        HV_CHECK(measure(args) == 1 && strstr(err, "ct_moved.nii.gz") &&
                     strstr(err, "CT and mask affines differ"),
                 "CT on another grid: %s", err);
        HV_CHECK(!exists(tp("moved.csv")), "CT on another grid: no CSV written");
    }

    /* ---- item 5: masks are read as the runner reads them (int16) */
    {
        hv_volume *neg = NULL;
        HV_REQUIRE(hv_vol_clone(mask, &neg) == HV_OK, "clone");
        ((int16_t *)neg->data)[0] = -1; /* a corner voxel, far from the spine */
        HV_REQUIRE(hv_io_nifti_write(tp("m_neg.nii.gz"), neg, &lab) == HV_OK, "write");
        hv_vol_free(neg);
        snprintf(args, sizeof args, "--mask '%s' --csv '%s'", tp("m_neg.nii.gz"), tp("neg.csv"));
        HV_CHECK(measure(args) == 0, "mask with a -1 voxel is read as run reads it: %s", err);
        read_grades(tp("neg.csv"), grade, rl);
        for (int q = 0; q < 4; q++)
            HV_CHECK(grade[healthy[q]] == 0, "mask with -1: label %d grade %d", healthy[q],
                     grade[healthy[q]]);
    }

    /* ---- item 8: case ids are plain file names, checked before writing */
    snprintf(args, sizeof args, "--mask '%s' --case ../../escape --png '%s' --synth-mask-out '%s'",
             tp("m.nii.gz"), tp("out/png"), tp("out/syn"));
    HV_CHECK(measure(args) == 1 && strstr(err, "--case '../../escape' is not a plain file name"),
             "--case ../../escape: %s", err);
    /* out/png/../../escape_L1_... would land in tmp itself */
    HV_CHECK(!exists(tp("out")) && !exists(tp("escape_L1_loss_map.png")) &&
                 !exists(tp("escape_L1_synth.nii.gz")),
             "--case ../../escape: nothing written");
    snprintf(args, sizeof args, "--mask '%s' --case 'a\nb' --csv '%s'", tp("m.nii.gz"),
             tp("nl.csv"));
    HV_CHECK(measure(args) == 1 && strstr(err, "'a\\x0ab' is not a plain file name"),
             "--case with a newline: %s", err);
    HV_CHECK(!exists(tp("nl.csv")), "--case with a newline: no CSV");

    /* ---- item 4: directories and FIFOs are named, a FIFO does not hang */
    HV_REQUIRE(mkdir(tp("adir"), 0700) == 0 || errno == EEXIST, "mkdir");
    HV_REQUIRE(mkfifo(tp("fifo"), 0600) == 0 || errno == EEXIST, "mkfifo");
    struct { const char *opt, *path, *what; } cases[] = {
        {"--centroids", "adir", "is a directory"}, {"--centroids", "fifo", "is a FIFO (named pipe)"},
        {"--ct", "adir", "is a directory"},        {"--ct", "fifo", "is a FIFO (named pipe)"},
        {"--mask", "adir", "is a directory"},      {"--mask", "fifo", "is a FIFO (named pipe)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = !strcmp(cases[i].opt, "--mask") ? tp(cases[i].path) : tp("m.nii.gz");
        char extra[4300] = "";
        if (strcmp(cases[i].opt, "--mask"))
            snprintf(extra, sizeof extra, "%s '%s'", cases[i].opt, tp(cases[i].path));
        snprintf(args, sizeof args, "--mask '%s' %s --csv '%s'", m, extra, tp("dir.csv"));
        char want[4400];
        snprintf(want, sizeof want, "%s: %s: %s, not a regular file", cases[i].opt,
                 tp(cases[i].path), cases[i].what);
        int rc = measure(args);
        HV_CHECK(rc == 1 && strstr(err, want), "%s %s: exit %d (124 = hung): %s", cases[i].opt,
                 cases[i].path, rc, err);
        HV_CHECK(!exists(tp("dir.csv")), "%s %s: no CSV", cases[i].opt, cases[i].path);
    }

    /* `svm` file arguments, and the model `measure --grader svm:` loads */
    write_text(tp("split.json"), "{\"train\": {\"x_20\": 0}}");
    snprintf(args, sizeof args, "--table '%s' --split '%s' --out '%s'", tp("fifo"),
             tp("split.json"), tp("svmout"));
    char want[4400];
    snprintf(want, sizeof want, "--table: %s: is a FIFO (named pipe), not a regular file",
             tp("fifo"));
    int rc = hv("svm", args);
    HV_CHECK(rc == 1 && strstr(err, want), "svm --table FIFO: exit %d (124 = hung): %s", rc, err);
    snprintf(args, sizeof args, "--table '%s' --split '%s' --out '%s'", tp("clean.csv"),
             tp("adir"), tp("svmout"));
    snprintf(want, sizeof want, "--split: %s: is a directory, not a regular file", tp("adir"));
    rc = hv("svm", args);
    HV_CHECK(rc == 1 && strstr(err, want), "svm --split DIR: exit %d: %s", rc, err);
    HV_CHECK(!exists(tp("svmout")), "svm: nothing written");
    snprintf(args, sizeof args, "--mask '%s' --grader 'svm:%s' --csv '%s'", tp("m.nii.gz"),
             tp("fifo"), tp("svm.csv"));
    snprintf(want, sizeof want, "model: %s: is a FIFO (named pipe), not a regular file", tp("fifo"));
    rc = measure(args);
    HV_CHECK(rc == 1 && strstr(err, want), "--grader svm:FIFO: exit %d (124 = hung): %s", rc, err);
    HV_CHECK(!exists(tp("svm.csv")), "--grader svm:FIFO: no CSV");

    hv_vol_free(mask8);
    hv_vol_free(ct16);
    hv_vol_free(mask);
    return hv_test_done();
}
