/*
 * fuzz_manifest.c: libFuzzer target for the CSV case manifest reader
 * (hv_io_manifest_read, src/io/manifest.c; input.source = manifest).
 *
 * The input is the manifest's text, written as m.csv into a private folder
 * that also holds three small regular files (a.nii.gz, b.nii.gz, c.json) and
 * a sub-folder (d), so relative paths can name files that exist, files that
 * do not, and a folder. Invariants of an accepted manifest: at least one
 * case; ids non-empty, plain file names, strictly increasing in byte order
 * (sorted, no duplicates); every case HV_OK with CT and mask paths naming
 * regular files (centroids too when given); and a returned split only names
 * cases of the manifest, with labels 1..28, grades 0..3 and a known set,
 * no (case, label) twice. A refused one returns nothing.
 */
#include <sys/stat.h>

#include "fuzz_util.h"
#include "hv/io.h"

static char csv_path[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR);
    const char *dir = hv_fuzz_tmpdir();
    char p[4200];
    static const char *const files[] = {"a.nii.gz", "b.nii.gz", "c.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        hv_fuzz_write_file(p, "x", 1);
    }
    snprintf(p, sizeof p, "%s/d", dir);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) HV_FUZZ_FAIL("mkdir %s: %s", p, strerror(errno));
    snprintf(csv_path, sizeof csv_path, "%s/m.csv", dir);
    return 0;
}

static int regular(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hv_fuzz_write_file(csv_path, data, size);
    hv_manifest *m = NULL;
    hv_split *sp = NULL;
    hv_status st = hv_io_manifest_read(csv_path, NULL, &m, &sp);
    if (st != HV_OK) {
        if (m || sp) HV_FUZZ_FAIL("failed (%s) but returned something", hv_status_name(st));
        return 0;
    }
    if (!m || m->n == 0) HV_FUZZ_FAIL("accepted a manifest without cases");
    for (size_t i = 0; i < m->n; i++) {
        const hv_case *c = &m->cases[i];
        if (!c->id || !c->id[0]) HV_FUZZ_FAIL("case %zu: empty id", i);
        if (hv_file_name_check(c->id, "id") != HV_OK)
            HV_FUZZ_FAIL("case %zu: id '%s' is not a plain file name", i, c->id);
        if (i > 0 && strcmp(m->cases[i - 1].id, c->id) >= 0)
            HV_FUZZ_FAIL("ids not strictly increasing at %zu ('%s', '%s')", i,
                         m->cases[i - 1].id, c->id);
        if (c->status != HV_OK) HV_FUZZ_FAIL("case %s: status %d", c->id, (int)c->status);
        if (!regular(c->ct_path) || !regular(c->mask_path))
            HV_FUZZ_FAIL("case %s: CT '%s' / mask '%s' not regular files", c->id,
                         c->ct_path ? c->ct_path : "(null)",
                         c->mask_path ? c->mask_path : "(null)");
        if (c->centroid_path && !regular(c->centroid_path))
            HV_FUZZ_FAIL("case %s: centroids '%s' not a regular file", c->id, c->centroid_path);
    }
    if (sp) {
        for (size_t i = 0; i < sp->n; i++) {
            const hv_split_entry *e = &sp->items[i];
            int found = 0;
            for (size_t k = 0; k < m->n && !found; k++) found = !strcmp(m->cases[k].id, e->case_id);
            if (!found) HV_FUZZ_FAIL("split names case '%s', not in the manifest", e->case_id);
            if (e->label < 1 || e->label > 28) HV_FUZZ_FAIL("label %d", e->label);
            if (e->grade < 0 || e->grade > 3) HV_FUZZ_FAIL("grade %d", e->grade);
            if ((int)e->set < 0 || e->set >= HV_SPLIT_COUNT) HV_FUZZ_FAIL("set %d", (int)e->set);
            if (hv_io_split_find(sp, e->case_id, e->label) != (long)i)
                HV_FUZZ_FAIL("split entry %zu (%s_%d) twice", i, e->case_id, e->label);
        }
    }
    hv_io_split_free(sp);
    hv_io_manifest_free(m);
    return 0;
}
