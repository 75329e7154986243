/*
 * cmd_inspect.c: `healthivert inspect STORE`: what a run's HDF5 store holds
 * (schema version, provenance, case counts, failures with reasons, grader
 * results) and whether it validates against its schema (v2; stores of v1
 * are still read). STORE must be a regular file (a directory or FIFO is
 * refused with what it is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"
#include "hv/store.h"

int hv_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            printf("usage: healthivert inspect STORE.h5\n"
                   "\n"
                   "Prints a run store's schema version, state (running, interrupted,\n"
                   "partial or complete), provenance, case counts, per-stage seconds, vertebrae by level\n"
                   "and grade, every failed case with its reason and the grader's results, then\n"
                   "validates the file against its schema, v2 or v1 (docs/hdf5-schema.md). The run's\n"
                   "configuration is in the store as /provenance/@config\n"
                   "(h5dump -a /provenance/config STORE.h5).\n"
                   "Exit status: 0 valid, 1 invalid or unreadable, 2 usage.\n");
            return HV_EXIT_OK;
        }
        if (!path && argv[a][0] != '-') path = argv[a];
        else {
            fprintf(stderr, "healthivert inspect: unexpected argument '%s'\n", argv[a]);
            return HV_EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: healthivert inspect STORE.h5\n");
        return HV_EXIT_USAGE;
    }
    char *text = NULL;
    if (hv_file_check_regular(path, "store") != HV_OK || hv_store_describe(path, &text) != HV_OK) {
        fprintf(stderr, "healthivert inspect: %s\n", hv_error_detail());
        return HV_EXIT_FAIL;
    }
    fputs(text, stdout);
    free(text);
    char *report = NULL;
    hv_status st = hv_store_validate(path, &report);
    if (st == HV_OK) {
        hv_store *s = NULL;
        int ver = hv_store_open_serial(path, 0, &s) == HV_OK ? hv_store_version(s) : 0;
        hv_store_close(s);
        printf("\nvalidation:     ok (schema v%d)\n", ver);
    } else {
        printf("\nvalidation:     FAILED: %s\n%s", hv_error_detail(), report ? report : "");
    }
    free(report);
    return st == HV_OK ? HV_EXIT_OK : HV_EXIT_FAIL;
}
