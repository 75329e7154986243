/*
 * test_spine_inputs: `healthivert straighten` with hostile inputs (issue 9),
 * on a synthetic spine written to NIfTI here. Argument 1 is the healthivert
 * binary. Checks:
 *  - --id ../../escape, --id with a control character, --id "..": refused
 *    with a message naming the id, before anything is written (--out is not
 *    even created, and nothing lands outside it);
 *  - a directory or FIFO given as --ct, --mask or --centroids is named as
 *    such; a FIFO does not hang (every command runs under timeout(1));
 *  - impossible centroids (X = -5000, 1e308, 30 mm off) are flagged in
 *    ID_vertebrae.csv (outside / ctd_far) with a warning naming the label,
 *    and those vertebrae sit at their label's own centre, exactly where a
 *    run without the centroid file puts them.
 */
#define _POSIX_C_SOURCE 200809L /* WIFEXITED, WEXITSTATUS, mkfifo */

#include <errno.h>
#include <sys/wait.h>

#include "hv/io.h"
#include "hv/spine.h"
#include "bad_centroids.h"
#include "hv_test.h"
#include "synth.h"

static const char *exe, *tmp;
static char cmd[16384], err[16384];

static int straighten(const char *args)
{
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' straighten %s > /dev/null 2> '%s/stderr.txt'",
             exe, args, tmp);
    int rc = system(cmd);
    char p[4200];
    snprintf(p, sizeof p, "%s/stderr.txt", tmp);
    err[0] = '\0';
    FILE *f = fopen(p, "r");
    if (f) {
        size_t n = fread(err, 1, sizeof err - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

static const char *tp(const char *name)
{
    static char buf[8][4200];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 4200, "%s/%s", tmp, name);
    return p;
}

static int exists(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* flags and centroid (cx, cy, cz) of `label` in an ID_vertebrae.csv */
static int table_row(const char *csv, int label, char flags[64], double c[3])
{
    FILE *f = fopen(csv, "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        int l = 0;
        char lev[16];
        size_t nvox;
        double vol;
        flags[0] = '\0';
        /* label,level,flags,nvox,volume_mm3,cx,cy,cz,... (flags may be empty) */
        if (sscanf(line, "%d,%15[^,],%63[^,],%zu,%lf,%lf,%lf,%lf", &l, lev, flags, &nvox, &vol,
                   &c[0], &c[1], &c[2]) == 8 && l == label)
            found = 1;
        else if (sscanf(line, "%d,%15[^,],,%zu,%lf,%lf,%lf,%lf", &l, lev, &nvox, &vol, &c[0],
                        &c[1], &c[2]) == 7 && l == label)
            flags[0] = '\0', found = 1;
    }
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    HV_REQUIRE(argc > 1, "usage: test_spine_inputs HEALTHIVERT");
    exe = argv[1];
    tmp = hv_test_tmpdir("spine_inputs");
    HV_REQUIRE(tmp != NULL, "tmpdir");

    syn_spine s;
    double A[4][4];
    int64_t dim[3];
    const double sp[3] = {2, 2, 2};
    hv_volume *mask = NULL, *ct = NULL;
    syn_make(&s, 5, 18, 20, 25, 1);
    syn_grid(sp, 0, 0, -90, 120, A, dim);
    HV_REQUIRE(syn_render(&s, A, dim, &mask, &ct, NULL) == HV_OK, "render");
    hv_nifti_write_opts lab = {0};
    lab.intent_label = 1;
    HV_REQUIRE(hv_io_nifti_write(tp("c_ct.nii.gz"), ct, NULL) == HV_OK, "write ct");
    HV_REQUIRE(hv_io_nifti_write(tp("c_msk.nii.gz"), mask, &lab) == HV_OK, "write mask");
    char args[8192];

    /* ---- item 8: ids are plain file names, refused before writing */
    static const struct { const char *id, *shown, *why; } bad[] = {
        {"../../escape", "'../../escape'", "contains '/'"},
        {"a\x01", "'a\\x01'", "control character (0x01)"},
        {"..", "'..'", "'.' and '..' name folders"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "--ct '%s' --mask '%s' --out '%s' --id '%s' --png",
                 tp("c_ct.nii.gz"), tp("c_msk.nii.gz"), tp("idout/case"), bad[i].id);
        char want[256];
        snprintf(want, sizeof want, "--id %s is not a plain file name", bad[i].shown);
        int rc = straighten(args);
        HV_CHECK(rc == 1 && strstr(err, want) && strstr(err, bad[i].why), "--id %zu: exit %d: %s",
                 i, rc, err);
        /* idout/case/../../escape_ct_straight.nii.gz would be tmp/escape_... */
        HV_CHECK(!exists(tp("idout")) && !exists(tp("escape_ct_straight.nii.gz")) &&
                     !exists(tp("escape_map.csv")),
                 "--id %zu: nothing written", i);
    }

    /* ---- item 4: directories and FIFOs are named, a FIFO does not hang */
    HV_REQUIRE(mkdir(tp("adir"), 0700) == 0 || errno == EEXIST, "mkdir");
    HV_REQUIRE(mkfifo(tp("fifo"), 0600) == 0 || errno == EEXIST, "mkfifo");
    static const struct { const char *opt, *name, *what; } nf[] = {
        {"--centroids", "adir", "is a directory"}, {"--centroids", "fifo", "is a FIFO (named pipe)"},
        {"--ct", "adir", "is a directory"},        {"--ct", "fifo", "is a FIFO (named pipe)"},
        {"--mask", "adir", "is a directory"},      {"--mask", "fifo", "is a FIFO (named pipe)"},
    };
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++) {
        const char *c = !strcmp(nf[i].opt, "--ct") ? tp(nf[i].name) : tp("c_ct.nii.gz");
        const char *m = !strcmp(nf[i].opt, "--mask") ? tp(nf[i].name) : tp("c_msk.nii.gz");
        char extra[4300] = "";
        if (!strcmp(nf[i].opt, "--centroids"))
            snprintf(extra, sizeof extra, "--centroids '%s'", tp(nf[i].name));
        snprintf(args, sizeof args, "--ct '%s' --mask '%s' %s --out '%s' --id x", c, m, extra,
                 tp("nfout"));
        char want[4400];
        snprintf(want, sizeof want, "%s: %s: %s, not a regular file", nf[i].opt, tp(nf[i].name),
                 nf[i].what);
        int rc = straighten(args);
        HV_CHECK(rc == 1 && strstr(err, want), "%s %s: exit %d (124 = hung): %s", nf[i].opt,
                 nf[i].name, rc, err);
        HV_CHECK(!exists(tp("nfout")), "%s %s: nothing written", nf[i].opt, nf[i].name);
    }

    /* ---- item 3: impossible centroids are flagged and not used */
    snprintf(args, sizeof args, "--ct '%s' --mask '%s' --out '%s' --id own --no-crops",
             tp("c_ct.nii.gz"), tp("c_msk.nii.gz"), tp("own"));
    HV_CHECK(straighten(args) == 0, "no centroid file: %s", err);
    /* T11, L3 good; T12 at 1e308, L1 at X = -5000, L2 30 mm off along S */
    HV_REQUIRE(syn_write_bad_centroids(tp("bad_ctd.json"), &s, (const double(*)[4])A, 30.0) ==
                   HV_OK,
               "bad centroid file: %s", hv_error_detail());
    snprintf(args, sizeof args,
             "--ct '%s' --mask '%s' --centroids '%s' --out '%s' --id bad --no-crops",
             tp("c_ct.nii.gz"), tp("c_msk.nii.gz"), tp("bad_ctd.json"), tp("bad"));
    HV_CHECK(straighten(args) == 0, "impossible centroids: exit 0: %s", err);
    HV_CHECK(strstr(err, "label 19 (T12)") && strstr(err, "label 20 (L1): the given centroid (-5000,") &&
                 strstr(err, "label 21 (L2)") && strstr(err, "(more than 20 mm)") &&
                 !strstr(err, "label 18 (") && !strstr(err, "label 22 ("),
             "warnings name T12, L1, L2 (and only those): %s", err);
    static const struct { int label; const char *flags; } want[] = {
        {19, "outside"}, {20, "outside"}, {21, "ctd_far"}};
    for (int q = 0; q < 3; q++) {
        char fl[64], fo[64];
        double c[3], co[3];
        int ok = table_row(tp("bad/bad_vertebrae.csv"), want[q].label, fl, c) &&
                 table_row(tp("own/own_vertebrae.csv"), want[q].label, fo, co);
        HV_CHECK(ok, "label %d in both tables", want[q].label);
        if (!ok) continue;
        HV_CHECK(!strcmp(fl, want[q].flags), "label %d flags '%s', want '%s'", want[q].label, fl,
                 want[q].flags);
        for (int d = 0; d < 3; d++)
            HV_CHECK_CLOSE(c[d], co[d], 1e-3, "ignored centroid: the label's own centre");
    }

    hv_vol_free(mask);
    hv_vol_free(ct);
    return hv_test_done();
}
