/*
 * nn_hand.h: what the hand-value tests of the engine's ops share
 * (test_nn_ops3d.c, test_nn_aot.c, test_nn_supcon.c): the backends they run
 * on (ref and cpu), shape literals, an element-wise comparison against
 * values computed by hand that reports the first mismatch, and the check
 * that a builder refuses bad shapes with a message naming them. Header-only (static functions):
 * each test is one translation unit.
 */
#ifndef HV_TESTS_NN_HAND_H
#define HV_TESTS_NN_HAND_H

#include <math.h>
#include <string.h>

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

/* A builder that must refuse: the graph's status is HV_ERR_ARG and the
 * message holds every string of `needles` (the shapes it names). */
typedef hv_nn_tensor *(*bad_fn)(hv_nn_graph *g);
static void expect_refused(const char *what, bad_fn build, const char *const *needles, int n)
{
    hv_nn_graph *g = NULL;
    HV_CHECK_OK(hv_nn_graph_create(&g));
    hv_error_clear();
    hv_nn_tensor *t = build(g);
    const char *msg = hv_error_detail();
    HV_CHECK(t == NULL && hv_nn_graph_status(g) == HV_ERR_ARG, "%s: not refused", what);
    for (int i = 0; i < n; i++)
        HV_CHECK(msg && strstr(msg, needles[i]), "%s: the message \"%s\" does not name \"%s\"", what,
                 msg ? msg : "(none)", needles[i]);
    hv_nn_graph_free(g);
}

/* An input "t" of the given shape, for the refused builders. */
static hv_nn_tensor *in_(hv_nn_graph *g, int nd, const int64_t *sh) { return hv_nn_input(g, "t", nd, sh); }

#endif /* HV_TESTS_NN_HAND_H */
