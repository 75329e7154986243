/*
 * compute_local.c: one process's device (hv/compute.h), with no MPI in it.
 *
 * hv_compute_local_device is what every command that picks a device asks:
 * the MPI commands per rank with its node-local rank (compute.c), the
 * single-case commands (`measure --synth gan`, `attention`: --device) with
 * 0 through hv_compute_open. auto takes CUDA when the build has it and the
 * device starts (a CUDA backend is created and freed on it), else the CPU;
 * cuda refuses with the reason; cpu never looks for a device. The log line
 * and the refusal read as compute.c's do, with the option's name for the
 * key.
 */
#include <stdio.h>
#include <string.h>

#include "hv/compute.h"
#ifdef HV_HAVE_CUDA
#include "hv/gpu.h"
#endif

const char *const hv_compute_choices[] = {"auto", "cpu", "cuda", NULL};

int hv_compute_parse(const char *s)
{
    for (int i = 0; s && hv_compute_choices[i]; i++)
        if (!strcmp(s, hv_compute_choices[i])) return i;
    return -1;
}

int hv_compute_local_device(int local, char *name, size_t ncap, char *why, size_t wcap)
{
    name[0] = 0;
    why[0] = 0;
#ifdef HV_HAVE_CUDA
    char probe[256];
    int count = hv_gpu_probe(probe, sizeof probe);
    if (count <= 0) {
        snprintf(why, wcap, "no usable CUDA device (%s)", probe);
        return -1;
    }
    int dev = (local < 0 ? 0 : local) % count;
    hv_nn_backend *be = NULL;
    if (hv_gpu_backend_create(dev, &be) != HV_OK) {
        snprintf(why, wcap, "CUDA device %d of %d cannot be used: %s", dev, count, hv_error_detail());
        return -1;
    }
    hv_nn_backend_free(be);
    snprintf(name, ncap, "gpu %d of %d", dev, count);
    return dev;
#else
    (void)local;
    (void)ncap;
    snprintf(why, wcap, "this build has no CUDA (configured without a CUDA toolkit and cuDNN)");
    return -1;
#endif
}

hv_status hv_compute_open(int setting, const char *key, hv_compute *out)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "hv_compute_open: NULL out");
    memset(out, 0, sizeof *out);
    out->device = -1;
    snprintf(out->desc, sizeof out->desc, "cpu");
    if (!key) key = "compute.device";
    if (setting < HV_COMPUTE_AUTO || setting > HV_COMPUTE_CUDA)
        return hv_error_set(HV_ERR_ARG, "%s: unknown setting %d (auto, cpu or cuda)", key, setting);
    if (setting == HV_COMPUTE_CPU) {
        hv_log_info("compute: cpu (%s cpu)", key);
        return HV_OK;
    }
    char name[64], why[384];
    int dev = hv_compute_local_device(0, name, sizeof name, why, sizeof why);
    if (dev < 0) {
        if (setting == HV_COMPUTE_CUDA)
            return hv_error_set(HV_ERR_ARG, "%s cuda: %s; use %s auto or cpu to run on the CPU", key,
                                why, key);
        hv_log_info("compute: cpu (%s auto: %s)", key, why);
        return HV_OK;
    }
    out->cuda = 1;
    out->device = dev;
    snprintf(out->desc, sizeof out->desc, "cuda (%s)", name);
    hv_log_info("compute: cuda (%s %s): %s", key, hv_compute_choices[setting], name);
    return HV_OK;
}

hv_status hv_compute_backend(const hv_compute *c, hv_nn_backend **out)
{
#ifdef HV_HAVE_CUDA
    if (c && c->cuda) return hv_gpu_backend_create(c->device, out);
#else
    if (c && c->cuda)
        return hv_error_set(HV_ERR_INTERNAL, "compute: a CUDA choice in a build without CUDA");
#endif
    return hv_nn_backend_create_cpu(out);
}
