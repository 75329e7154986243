/*
 * fuzz_config.c: libFuzzer target for the run configuration
 * (src/mpi/config.c: INI files through inih, and --set overrides).
 *
 * Only the public functions are called (hv_run_config_load, _set, _get,
 * _text, _free, declared in hv/run.h and reached through run_internal.h), so
 * the target survives rewrites of the key table behind them.
 *
 * Two uses of one input:
 *  - the input as an INI file: hv_run_config_load; when accepted, the
 *    canonical text (hv_run_config_text, what a run stores as provenance)
 *    must load again and give the same text (a fixed point): a stored
 *    configuration must re-run as itself;
 *  - every line of the input as a `--set section.key=value` argument, applied
 *    to a default configuration (the load of an empty file); an accepted
 *    assignment must be readable back with hv_run_config_get.
 */
#include "fuzz_util.h"
#include "run_internal.h"

#define MAX_LINES 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR);
    return 0;
}

static void check_text_fixed_point(const hv_run_config *c)
{
    char *t = hv_run_config_text(c);
    if (!t) HV_FUZZ_FAIL("hv_run_config_text returned NULL");
    const char *p2 = hv_fuzz_memfile(1, t, strlen(t));
    hv_run_config *c2 = NULL;
    if (hv_run_config_load(p2, &c2) != HV_OK)
        HV_FUZZ_FAIL("the canonical text does not load: %s\n--- text:\n%s", hv_error_detail(), t);
    char *t2 = hv_run_config_text(c2);
    if (!t2 || strcmp(t, t2))
        HV_FUZZ_FAIL("the canonical text is not a fixed point:\n--- first:\n%s\n--- again:\n%s", t,
                     t2 ? t2 : "(null)");
    free(t2);
    hv_run_config_free(c2);
    free(t);
}

static void apply_sets(const uint8_t *data, size_t size)
{
    const char *empty = hv_fuzz_memfile(1, "", 0);
    hv_run_config *c = NULL;
    if (hv_run_config_load(empty, &c) != HV_OK)
        HV_FUZZ_FAIL("an empty config does not load: %s", hv_error_detail());
    size_t pos = 0;
    for (int n = 0; n < MAX_LINES && pos < size; n++) {
        size_t end = pos;
        while (end < size && data[end] != '\n') end++;
        char *line = malloc(end - pos + 1);
        if (!line) HV_FUZZ_FAIL("out of memory");
        memcpy(line, data + pos, end - pos);
        line[end - pos] = '\0';
        pos = end + 1;
        if (hv_run_config_set(c, line) == HV_OK) {
            /* section.key=value: the set accepted it, so both separators exist. */
            char *dot = strchr(line, '.'), *eq = strchr(line, '=');
            if (!dot || !eq || dot > eq) HV_FUZZ_FAIL("set accepted \"%s\"", line);
            *dot = '\0';
            *eq = '\0';
            if (!hv_run_config_get(c, line, dot + 1))
                HV_FUZZ_FAIL("set accepted %s.%s but get does not know it", line, dot + 1);
        }
        free(line);
    }
    char *t = hv_run_config_text(c);
    if (!t) HV_FUZZ_FAIL("hv_run_config_text returned NULL");
    free(t);
    hv_run_config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = hv_fuzz_memfile(0, data, size);
    hv_run_config *c = NULL;
    hv_status st = hv_run_config_load(path, &c);
    if (st == HV_OK) {
        if (!c) HV_FUZZ_FAIL("load OK without a config");
        check_text_fixed_point(c);
        hv_run_config_free(c);
    } else if (c) {
        HV_FUZZ_FAIL("load failed (%s) but returned a config", hv_status_name(st));
    }
    apply_sets(data, size);
    return 0;
}
