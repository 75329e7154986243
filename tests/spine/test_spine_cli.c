/*
 * test_spine_cli: `healthivert straighten` as a user runs it. Argument 1 is
 * the healthivert binary. Checks: --help answers (exit 0, names the outputs),
 * a bad command line exits 2 and a missing file exits 1, each with a message
 * naming the bad input and nothing written, and the real TotalSegmentator example (VerSe whole-vertebra mask) writes
 * the straightened volumes, a map that reads back, the vertebra table with
 * T12 flagged, one crop pair per vertebra with a body, and QC pictures.
 */
#define _POSIX_C_SOURCE 200809L   /* WIFEXITED, WEXITSTATUS (hv_test_system) */

#include "hv/io.h"
#include "hv/spine.h"
#include "hv_test.h"

static int file_exists(const char *dir, const char *name)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

int main(int argc, char **argv)
{
    HV_REQUIRE(argc > 1, "usage: test_spine_cli HEALTHIVERT");
    const char *exe = argv[1];
    const char *ctp = hv_test_data("totalseg-example/example_ct.nii.gz");
    const char *msk = hv_test_data("totalseg-example/example_ct_vert_msk_verse.nii.gz");
    if (!ctp) return hv_test_missing_data("totalseg-example/example_ct.nii.gz");
    if (!msk) return hv_test_missing_data("totalseg-example/example_ct_vert_msk_verse.nii.gz");
    const char *tmp = hv_test_tmpdir("spine_cli");
    HV_REQUIRE(tmp != NULL, "tmpdir");
    char cmd[32768], out[4200], path[4400];

    snprintf(cmd, sizeof cmd, "'%s' straighten --help > '%s/help.txt' 2>&1", exe, tmp);
    HV_CHECK(hv_test_system(cmd) == 0, "--help exit status");
    snprintf(path, sizeof path, "%s/help.txt", tmp);
    HV_CHECK(hv_test_file_has(path, "usage: healthivert straighten") && hv_test_file_has(path, "ID_map.csv") &&
             hv_test_file_has(path, "--centroids"), "--help text");

    /* error paths: the status, the message naming the bad input, and no
     * output folder left behind */
    snprintf(path, sizeof path, "%s/err.txt", tmp);
    snprintf(cmd, sizeof cmd, "'%s' straighten --ct x.nii.gz > /dev/null 2> '%s'", exe, path);
    HV_CHECK(hv_test_system(cmd) == 2, "missing --mask/--out: exit 2");
    HV_CHECK(hv_test_file_has(path, "--ct, --mask and --out are required"), "missing --mask/--out: the message says so");
    snprintf(cmd, sizeof cmd, "'%s' straighten --bogus > /dev/null 2> '%s'", exe, path);
    HV_CHECK(hv_test_system(cmd) == 2, "unknown option: exit 2");
    HV_CHECK(hv_test_file_has(path, "'--bogus'"), "unknown option: the message names it");
    snprintf(cmd, sizeof cmd, "'%s' straighten --ct '%s/none.nii.gz' --mask '%s' --out '%s/o' 2> '%s/err.txt'",
             exe, tmp, msk, tmp, tmp);
    HV_CHECK(hv_test_system(cmd) == 1, "missing CT: exit 1");
    HV_CHECK(hv_test_file_has(path, "--ct: ") && hv_test_file_has(path, "/none.nii.gz: does not exist"),
             "missing CT: message names the option and the file");
    {
        struct stat sb;
        snprintf(path, sizeof path, "%s/o", tmp);
        HV_CHECK(stat(path, &sb) != 0, "missing CT: no output folder written");
    }

    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(cmd, sizeof cmd, "'%s' straighten --ct '%s' --mask '%s' --out '%s' --png > '%s/stdout.txt' 2>&1",
             exe, ctp, msk, out, tmp);
    HV_CHECK(hv_test_system(cmd) == 0, "straighten on the real example");
    HV_CHECK(file_exists(out, "example_ct_straight.nii.gz") && file_exists(out, "example_mask_straight.nii.gz") &&
             file_exists(out, "example_body_straight.nii.gz"), "straightened volumes");
    for (int l = 19; l <= 24; l++) {
        char n1[64], n2[64], n3[64];
        snprintf(n1, sizeof n1, "crops/example_%d_ct.nii.gz", l);
        snprintf(n2, sizeof n2, "crops/example_%d_label.nii.gz", l);
        snprintf(n3, sizeof n3, "qc/example_%d.png", l);
        HV_CHECK(file_exists(out, n1) && file_exists(out, n2) && file_exists(out, n3), "crop/QC of %d", l);
    }
    HV_CHECK(!file_exists(out, "crops/example_18_ct.nii.gz"), "no crop for the T11 sliver");
    snprintf(path, sizeof path, "%s/example_vertebrae.csv", out);
    HV_CHECK(hv_test_file_has(path, "19,T12,fov,") && hv_test_file_has(path, "18,T11,fov|off_curve,") &&
             hv_test_file_has(path, "22,L3,,"), "vertebra table");
    hv_spine_map *m = NULL;
    snprintf(path, sizeof path, "%s/example_map.csv", out);
    HV_CHECK_OK(hv_spine_map_read(path, &m));
    hv_volume *v = NULL;
    snprintf(path, sizeof path, "%s/crops/example_22_label.nii.gz", out);
    HV_CHECK_OK(hv_io_nifti_read(path, HV_DTYPE_U8, NULL, &v, NULL));
    if (v) HV_CHECK(v->dim[0] == 64 && v->dim[1] == 256 && v->dim[2] == 256, "crop dims");
    hv_vol_free(v);
    hv_spine_map_free(m);
    return hv_test_done();
}
