/*
 * store_check.h: checks the store tests share (tests/store, tests/mpi).
 *
 * expect_invalid: `healthivert inspect`'s validator must refuse a damaged
 * store and say why; the report must contain `needle`.
 */
#ifndef HV_STORE_CHECK_H
#define HV_STORE_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "hv/store.h"
#include "hv_test.h"

static inline void expect_invalid(const char *path, const char *needle)
{
    char *rep = NULL;
    hv_status st = hv_store_validate(path, &rep);
    HV_CHECK(st != HV_OK, "%s validated although damaged (%s)", path, needle);
    HV_CHECK(rep && strstr(rep, needle), "report for %s lacks '%s':\n%s", path, needle,
             rep ? rep : "(none)");
    free(rep);
}

#endif /* HV_STORE_CHECK_H */
