/*
 * spine_internal.h: helpers shared by the files of src/spine (not installed).
 * Small inline vector maths and a dtype-dispatching label reader, so the hot
 * loops read any integer mask without converting it first.
 */
#ifndef HV_SPINE_INTERNAL_H
#define HV_SPINE_INTERNAL_H

#include "hv/spine.h"

#include <math.h>

/* Labels above this are not vertebrae in any convention we read. */
#define HV_SPINE_MAX_LABEL HV_LABEL_MAX

static inline int hv_spine_is_label_dtype(hv_dtype dt)
{
    return dt == HV_DTYPE_U8 || dt == HV_DTYPE_I16 || dt == HV_DTYPE_U16 || dt == HV_DTYPE_I32;
}

static inline long hv_spine_label_at(const hv_volume *v, size_t idx)
{
    switch (v->dtype) {
    case HV_DTYPE_U8:  return ((const uint8_t *)v->data)[idx];
    case HV_DTYPE_I16: return ((const int16_t *)v->data)[idx];
    case HV_DTYPE_U16: return ((const uint16_t *)v->data)[idx];
    case HV_DTYPE_I32: return ((const int32_t *)v->data)[idx];
    case HV_DTYPE_F32: return (long)lrintf(((const float *)v->data)[idx]);
    }
    return 0;
}

static inline double hv_v3_dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static inline void hv_v3_cross(const double a[3], const double b[3], double out[3])
{
    double x = a[1] * b[2] - a[2] * b[1];
    double y = a[2] * b[0] - a[0] * b[2];
    double z = a[0] * b[1] - a[1] * b[0];
    out[0] = x; out[1] = y; out[2] = z;
}

static inline double hv_v3_norm(const double a[3])
{
    return sqrt(hv_v3_dot(a, a));
}

/* Normalise in place; returns the old length (0 leaves a unchanged). */
static inline double hv_v3_normalize(double a[3])
{
    double n = hv_v3_norm(a);
    if (n > 0) { a[0] /= n; a[1] /= n; a[2] /= n; }
    return n;
}


#endif /* HV_SPINE_INTERNAL_H */
