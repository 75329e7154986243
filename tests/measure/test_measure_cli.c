/*
 * test_measure_cli.c: `healthivert measure` and `healthivert svm` end to end
 * on the real example scan and the committed SVM fixtures: exit statuses,
 * the CSV header the issue fixes, the figures, the model round trip through
 * `measure --grader svm:MODEL`, reference mode, and clear failures (missing
 * --mask, an empty split).
 * argv[1] is the healthivert binary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hv_test.h"

static int run(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static int count_lines(const char *path, char *first, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (n == 0 && first) snprintf(first, cap, "%s", line);
        n++;
    }
    fclose(f);
    return n;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

int main(int argc, char **argv)
{
    HV_REQUIRE(argc > 1, "usage: test_measure_cli HEALTHIVERT");
    const char *bin = argv[1];
    const char *rel = "totalseg-example/totalseg_vertebrae_pp_refined.nii.gz";
    const char *mask = hv_test_data(rel);
    if (!mask) return hv_test_missing_data(rel);
    const char *tmp = hv_test_tmpdir("measure_cli");
    HV_REQUIRE(tmp, "tmpdir");
    static char cmd[32768], p[4200], first[4096];

    snprintf(cmd, sizeof cmd, "'%s' measure --mask '%s' --case ex --csv '%s/m.csv' --png '%s/png' > '%s/out.txt'",
             bin, mask, tmp, tmp, tmp);
    HV_CHECK(run(cmd) == 0, "measure exits 0");
    snprintf(p, sizeof p, "%s/m.csv", tmp);
    int n = count_lines(p, first, sizeof first);
    HV_CHECK(n == 7, "CSV: header + 6 vertebrae, got %d lines", n);
    const char *want = "case,label,level,h_ori_ant_mm,h_ori_mid_mm,h_ori_post_mm,h_syn_ant_mm,"
                       "h_syn_mid_mm,h_syn_post_mm,rhlv_all,rhlv_ant,rhlv_mid,rhlv_post,grade,";
    HV_CHECK(strncmp(first, want, strlen(want)) == 0, "CSV header: %s", first);
    snprintf(p, sizeof p, "%s/png/ex_L3_loss_map.png", tmp);
    HV_CHECK(exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/png/ex_L3_loss_curve.png", tmp);
    HV_CHECK(exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    HV_CHECK(count_lines(p, NULL, 0) == 8, "printed table: title, header, 6 rows");

    snprintf(cmd, sizeof cmd, "'%s' measure --mask '%s' --case ex --synth-mask '%s/syn' > /dev/null",
             bin, mask, tmp);
    HV_CHECK(run(cmd) == 0, "measure --synth-mask");
    snprintf(p, sizeof p, "%s/syn/ex_L2_synth.nii.gz", tmp);
    HV_CHECK(exists(p), "%s", p);
    /* Reference mode: column counts on straightened crops. On this normal
     * spine every measurable level gets finite heights and |RHLV| < 15 %
     * (measured: at most 10.2 %, L1 anterior). */
    snprintf(cmd, sizeof cmd, "'%s' measure --mask '%s' --case ex --rhlv reference --csv '%s/ref.csv' > '%s/ref.txt' 2> /dev/null",
             bin, mask, tmp, tmp);
    HV_CHECK(run(cmd) == 0, "reference mode runs");
    snprintf(p, sizeof p, "%s/ref.csv", tmp);
    HV_CHECK(count_lines(p, NULL, 0) == 7, "reference CSV: header + 6 vertebrae");
    snprintf(cmd, sizeof cmd,
             "awk -F, 'NR>1 && $3 ~ /^L/ { for (c = 4; c <= 13; c++) if ($c == \"nan\" || $c == \"\") bad++;"
             " for (c = 10; c <= 13; c++) if ($c > 0.15 || $c < -0.15) bad++ } END { exit bad > 0 }' '%s/ref.csv'",
             tmp);
    HV_CHECK(run(cmd) == 0, "reference mode: L1-L5 finite, |RHLV| < 0.15");
    snprintf(cmd, sizeof cmd, "grep -q 'reference (column-count)' '%s/ref.txt'", tmp);
    HV_CHECK(run(cmd) == 0, "reference mode says so in the table title");
    snprintf(cmd, sizeof cmd, "'%s' measure 2> /dev/null", bin);
    HV_CHECK(run(cmd) == 2, "missing --mask is a usage error");
    snprintf(cmd, sizeof cmd, "'%s' measure --mask /nonexistent.nii.gz 2> /dev/null", bin);
    HV_CHECK(run(cmd) == 1, "missing file fails");
    snprintf(cmd, sizeof cmd, "'%s' measure --help > /dev/null", bin);
    HV_CHECK(run(cmd) == 0, "measure --help");

    /* svm on the committed fixtures, then the model applied by measure */
    snprintf(cmd, sizeof cmd,
             "'%s' svm --table '%s/measure/fixtures/svm_table.csv' --split "
             "'%s/measure/fixtures/svm_split.json' --out '%s/svm' > '%s/svm.txt' 2> /dev/null",
             bin, HV_TEST_SOURCE_DIR, HV_TEST_SOURCE_DIR, tmp, tmp);
    HV_CHECK(run(cmd) == 0, "svm exits 0");
    snprintf(p, sizeof p, "%s/svm/svm.model", tmp);
    HV_CHECK(exists(p), "model saved");
    snprintf(cmd, sizeof cmd, "grep -q '^F1 Score  *0.8671' '%s/svm.txt'", tmp);
    HV_CHECK(run(cmd) == 0, "mean F1 0.8671 as scikit-learn");
    snprintf(cmd, sizeof cmd, "'%s' measure --mask '%s' --grader 'svm:%s/svm/svm.model' --csv '%s/s.csv' > /dev/null",
             bin, mask, tmp, tmp);
    HV_CHECK(run(cmd) == 0, "measure with the SVM grader");
    snprintf(cmd, sizeof cmd, "'%s' measure --mask '%s' --grader svm:/nonexistent 2> /dev/null", bin, mask);
    HV_CHECK(run(cmd) == 1, "missing SVM model fails");
    snprintf(p, sizeof p, "%s/empty.json", tmp);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("{\"test\": {}, \"train\": {}, \"val\": {}}\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' svm --table '%s/measure/fixtures/svm_table.csv' --split '%s' "
             "--out '%s/svm2' 2> '%s/err2.txt'", bin, HV_TEST_SOURCE_DIR, p, tmp, tmp);
    HV_CHECK(run(cmd) == 1, "empty split fails");
    f = fopen(p, "w");
    if (f) {
        fputs("{\"test\": {\"sub-fx000_8\": 5}, \"train\": {}, \"val\": {}}\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' svm --table '%s/measure/fixtures/svm_table.csv' --split '%s' "
             "--out '%s/svm3' 2> /dev/null", bin, HV_TEST_SOURCE_DIR, p, tmp);
    HV_CHECK(run(cmd) == 1, "grade 5 in the split fails");
    snprintf(cmd, sizeof cmd, "grep -q 'empty' '%s/err2.txt'", tmp);
    HV_CHECK(run(cmd) == 0, "empty split says so");
    return hv_test_done();
}
