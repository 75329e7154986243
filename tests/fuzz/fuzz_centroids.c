/*
 * fuzz_centroids.c: libFuzzer target for the VerSe centroid JSON reader
 * (hv_io_centroids_read, src/io/json.c).
 *
 * The input is the file's text (any bytes: NULs, bad UTF-8 and truncated
 * JSON included). Invariants of an accepted file: 1..n centroids with labels
 * in 1..28, sorted and unique, finite coordinates, a direction of three axis
 * codes or none. Then a round trip: hv_io_centroids_write into a private
 * folder and read back gives the same labels and direction, and coordinates
 * within the writer's documented 1e-4 voxel rounding (coordinates beyond
 * 1e12, where that rounding loses meaning, are left out of the comparison).
 */
#include <math.h>

#include "fuzz_util.h"
#include "hv/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_log_set_level(HV_LOG_ERROR);
    return 0;
}

static int near(double a, double b)
{
    if (fabs(a) > 1e12) return 1;
    return fabs(a - b) <= 0.5e-4 * (1 + 1e-9) + fabs(a) * 1e-15;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = hv_fuzz_memfile(0, data, size);
    hv_centroids *c = NULL;
    hv_status st = hv_io_centroids_read(path, &c);
    if (st != HV_OK) {
        if (c) HV_FUZZ_FAIL("failed (%s) but returned centroids", hv_status_name(st));
        return 0;
    }
    if (!c || c->n == 0 || !c->items) HV_FUZZ_FAIL("accepted a file without centroids");
    size_t dl = strlen(c->direction);
    if (dl != 0 && dl != 3) HV_FUZZ_FAIL("direction \"%s\"", c->direction);
    for (size_t i = 0; i < dl; i++)
        if (!strchr("RLAPSI", c->direction[i])) HV_FUZZ_FAIL("direction \"%s\"", c->direction);
    for (size_t i = 0; i < c->n; i++) {
        const hv_centroid *p = &c->items[i];
        if (p->label < 1 || p->label > 28) HV_FUZZ_FAIL("label %d", p->label);
        if (i && p->label <= c->items[i - 1].label) HV_FUZZ_FAIL("labels not sorted/unique");
        if (!isfinite(p->x) || !isfinite(p->y) || !isfinite(p->z))
            HV_FUZZ_FAIL("label %d: coordinate not finite", p->label);
    }

    char out[4200];
    snprintf(out, sizeof out, "%s/centroids.json", hv_fuzz_tmpdir());
    st = hv_io_centroids_write(out, c);
    if (st != HV_OK) HV_FUZZ_FAIL("write: %s", hv_error_detail());
    hv_centroids *b = NULL;
    st = hv_io_centroids_read(out, &b);
    if (st != HV_OK) HV_FUZZ_FAIL("what we wrote does not read back: %s", hv_error_detail());
    if (b->n != c->n || strcmp(b->direction, c->direction))
        HV_FUZZ_FAIL("round trip: %zu centroids (%s) became %zu (%s)", c->n, c->direction, b->n,
                     b->direction);
    for (size_t i = 0; i < c->n; i++) {
        const hv_centroid *p = &c->items[i], *q = &b->items[i];
        if (p->label != q->label || !near(p->x, q->x) || !near(p->y, q->y) || !near(p->z, q->z))
            HV_FUZZ_FAIL("round trip changed label %d: (%.17g %.17g %.17g) -> %d (%.17g %.17g %.17g)",
                         p->label, p->x, p->y, p->z, q->label, q->x, q->y, q->z);
    }
    hv_io_centroids_free(b);
    hv_io_centroids_free(c);
    return 0;
}
