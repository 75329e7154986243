/*
 * fuzz_split.c: libFuzzer target for the split file reader
 * (hv_io_split_read, src/io/json.c).
 *
 * The input is the file's text. Invariants of an accepted file: at least one
 * entry, every label 1..28, grade 0..3, a known set, a non-empty case id,
 * no (case, label) twice. Then a round trip through hv_io_split_write (sets
 * reordered test, train, val) and back: the same entries, each in its set
 * with its grade, and hv_io_split_find finds every one.
 */
#include "fuzz_util.h"
#include "hv/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = hv_fuzz_memfile(0, data, size);
    hv_split *s = NULL;
    hv_status st = hv_io_split_read(path, &s);
    if (st != HV_OK) {
        if (s) HV_FUZZ_FAIL("failed (%s) but returned a split", hv_status_name(st));
        return 0;
    }
    if (!s || s->n == 0) HV_FUZZ_FAIL("accepted an empty split");
    for (size_t i = 0; i < s->n; i++) {
        const hv_split_entry *e = &s->items[i];
        if (!e->case_id || !e->case_id[0]) HV_FUZZ_FAIL("entry %zu: empty case id", i);
        if (e->label < 1 || e->label > 28) HV_FUZZ_FAIL("label %d", e->label);
        if (e->grade < 0 || e->grade > 3) HV_FUZZ_FAIL("grade %d", e->grade);
        if ((int)e->set < 0 || e->set >= HV_SPLIT_COUNT) HV_FUZZ_FAIL("set %d", (int)e->set);
        if (hv_io_split_find(s, e->case_id, e->label) != (long)i)
            HV_FUZZ_FAIL("entry %zu (%s_%d) is not found at its own index", i, e->case_id, e->label);
    }

    char out[4200];
    snprintf(out, sizeof out, "%s/split.json", hv_fuzz_tmpdir());
    st = hv_io_split_write(out, s);
    if (st != HV_OK) HV_FUZZ_FAIL("write: %s", hv_error_detail());
    hv_split *b = NULL;
    st = hv_io_split_read(out, &b);
    if (st != HV_OK) HV_FUZZ_FAIL("what we wrote does not read back: %s", hv_error_detail());
    if (b->n != s->n) HV_FUZZ_FAIL("round trip: %zu entries became %zu", s->n, b->n);
    for (size_t i = 0; i < s->n; i++) {
        const hv_split_entry *e = &s->items[i];
        long k = hv_io_split_find(b, e->case_id, e->label);
        if (k < 0) HV_FUZZ_FAIL("round trip lost %s_%d", e->case_id, e->label);
        if (b->items[k].grade != e->grade || b->items[k].set != e->set)
            HV_FUZZ_FAIL("round trip changed %s_%d", e->case_id, e->label);
    }
    hv_io_split_free(b);
    hv_io_split_free(s);
    return 0;
}
