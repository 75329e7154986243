/*
 * precision.c: a backend's inference precision (hv/nn.h,
 * hv_nn_backend_set_precision).
 *
 * The precision is a property of the backend, not of a graph: the programs
 * that want bf16 (synthesis, the generator bench) give the generator a
 * backend of its own, and the planner refuses a graph with gradients on a
 * bf16 backend (graph.c), so a training graph can never pick it up by
 * sharing a backend. Whether bf16 is available is the backend's question
 * (check_precision hook: the CPU backend asks oneDNN for the CPU's ISA);
 * it is asked here, when the caller sets the precision, so a program learns
 * that bf16 is missing before it plans or runs anything.
 */
#include <string.h>

#include "nn_backend.h"

const char *hv_nn_precision_name(hv_nn_precision p)
{
    switch (p) {
    case HV_NN_FP32: return "fp32";
    case HV_NN_BF16: return "bf16";
    }
    return "?";
}

hv_status hv_nn_precision_parse(const char *s, hv_nn_precision *out)
{
    if (!s || !out) return HV_ERR_ARG;
    if (!strcmp(s, "fp32")) *out = HV_NN_FP32;
    else if (!strcmp(s, "bf16")) *out = HV_NN_BF16;
    else return HV_ERR_ARG;
    return HV_OK;
}

hv_status hv_nn_backend_set_precision(hv_nn_backend *be, hv_nn_precision p)
{
    if (!be) return hv_error_set(HV_ERR_ARG, "nn precision: NULL backend");
    if (p != HV_NN_FP32 && p != HV_NN_BF16)
        return hv_error_set(HV_ERR_ARG, "nn precision: unknown precision %d", (int)p);
    if (p != HV_NN_FP32) {
        if (!be->iface->check_precision)
            return hv_error_set(HV_ERR_UNSUPPORTED, "nn precision: backend %s has no %s path "
                                "(only the cpu backend has one)", be->iface->name,
                                hv_nn_precision_name(p));
        hv_status st = be->iface->check_precision(be, p);
        if (st != HV_OK) return st;
    }
    be->precision = p;
    return HV_OK;
}

hv_nn_precision hv_nn_backend_precision(const hv_nn_backend *be)
{
    return be ? be->precision : HV_NN_FP32;
}
