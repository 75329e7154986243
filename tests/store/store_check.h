/*
 * store_check.h: checks the store tests share (tests/store, tests/mpi).
 *
 * expect_invalid: `healthivert inspect`'s validator must refuse a damaged
 * store and say why; the report must contain `needle`.
 * store_test_case, store_test_journal: the one-case result the tests put
 * into a store and its journal.
 * store_test_create: the one-case store they put it into.
 * store_test_nonzero: how much of a read-back slot is not zero (an empty
 * slot reads as all zero).
 */
#ifndef HV_STORE_CHECK_H
#define HV_STORE_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/core.h"
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

/* Case "c0", attempt 1, done, with n_vert vertebrae labelled first_label,
 * first_label + 1, ... (their level names): no grade, every height 20 mm,
 * RHLV 0, no attention values; everything else 0. */
static inline void store_test_case(hv_case_result *r, int n_vert, int first_label)
{
    memset(r, 0, sizeof *r);
    snprintf(r->c.id, sizeof r->c.id, "c0");
    r->c.attempt = 1;
    r->state = HV_CASE_DONE;
    r->c.n_vert = n_vert;
    for (int i = 0; i < n_vert; i++) {
        hv_run_vrow *v = &r->v[i];
        v->label = first_label + i;
        snprintf(v->level, sizeof v->level, "%s", hv_label_name(first_label + i));
        v->known_grade = v->split_set = v->grade_pred = -1;
        for (int g = 0; g < HV_REG_COUNT; g++) v->h_ori[g] = v->h_syn[g] = 20, v->rhlv[g] = 0;
        hv_run_vrow_attn_none(v);
    }
}

/* r appended to a new journal in jdir (shard -1, rank 0, the n_stages
 * stages); 1 when done, else 0 after a failed check saying why. */
static inline int store_test_journal(const char *jdir, int n_stages,
                                     const char *const *stages, const hv_case_result *r)
{
    hv_journal *j = NULL;
    if (!HV_CHECK(hv_journal_open(jdir, -1, 0, n_stages, stages, &j) == HV_OK, "journal: %s",
                  hv_error_detail()))
        return 0;
    hv_status st = hv_journal_append(j, r);
    hv_journal_close(j);
    return HV_CHECK(st == HV_OK, "journal append: %s", hv_error_detail());
}

/* A new store at path for case "c0" (pending, nothing written yet), the
 * n_stages stages (borrowed), no image planes, and the optional crop volumes
 * of hv_store_create_info: cam, synth_crops, crop3d. NULL when the create
 * failed (hv_error_detail says why); the caller closes the store. */
static inline hv_store *store_test_create(const char *path, int n_stages,
                                          const char *const *stages, int cam, int synth_crops,
                                          int crop3d)
{
    hv_run_crow row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "c0");
    row.rank = -1;
    hv_store_create_info ci = {1, 0, "[test]\n", 1, 1, "2025-01-01T00:00:00Z", "in", n_stages,
                               stages, cam, synth_crops, crop3d};
    hv_store *s = NULL;
    if (hv_store_create(path, &ci, &row, &s) != HV_OK) return NULL;
    return s;
}

/* Bytes of vol[0..n) that are not zero. */
static inline size_t store_test_nonzero(const uint8_t *vol, size_t n)
{
    size_t nz = 0;
    for (size_t q = 0; q < n; q++) nz += vol[q] != 0;
    return nz;
}

#endif /* HV_STORE_CHECK_H */
