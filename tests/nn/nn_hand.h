/*
 * nn_hand.h: what the hand-value tests of the engine's ops share
 * (test_nn_ops3d.c, test_nn_aot.c): the backends they run on (ref and cpu),
 * shape literals, and an element-wise comparison against values computed
 * by hand that reports the first mismatch. Header-only (static functions):
 * each test is one translation unit.
 */
#ifndef HV_TESTS_NN_HAND_H
#define HV_TESTS_NN_HAND_H

#include <math.h>

#include "hv/nn.h"
#include "hv_test.h"

#define S(...) ((const int64_t[]){__VA_ARGS__})

typedef hv_status (*create_fn)(hv_nn_backend **out);
static const struct {
    const char *name;
    create_fn create;
} backends[] = {{"ref", hv_nn_backend_create_ref}, {"cpu", hv_nn_backend_create_cpu}};
#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

static int close_to(double got, double want) { return fabs(got - want) <= 1e-5 * fmax(1.0, fabs(want)); }

/* got[i] vs want[i]; reports the first mismatch only */
static void check_all(const char *what, const char *be, const float *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        if (!HV_CHECK(close_to(got[i], want[i]), "%s on %s: element %d is %.7g, expected %.7g", what,
                      be, i, got[i], want[i]))
            return;
}

#endif /* HV_TESTS_NN_HAND_H */
