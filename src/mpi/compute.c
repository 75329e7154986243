/*
 * compute.c: where an MPI command's networks run (compute.device = auto |
 * cpu | cuda) for `run`, `train` and `train-classifier`, on every rank. One
 * rank's device is hv_compute_local_device's (compute_local.c, hv/compute.h),
 * which the single-case commands' --device uses too.
 *
 * hv_mpi_compute_open is collective over the command's communicator and is
 * called before anything is written (no folder, lock or store yet), so a
 * refused `cuda` leaves nothing behind, with the same answer on every rank.
 * Each rank takes GPU (node-local rank mod device count): the node-local
 * rank comes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), the device
 * count from hv_gpu_probe, and the chosen device is tried by creating (and
 * freeing) a CUDA backend on it. auto takes CUDA only when every rank has a
 * usable device (the ranks of one data-parallel training then compute
 * alike), else the CPU everywhere; cuda refuses the command when any rank
 * has none, or when the program was built without CUDA. The choice is said
 * once (rank 0, with the per-rank device list) and kept in `desc` for the
 * store's provenance and the training logs.
 *
 * The choice, not a backend, is what this returns: each model that needs a
 * backend creates its own with hv_mpi_compute_backend (a CUDA backend
 * belongs to one thread; models own their backends as before).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

/* This rank's device: -1 none (why in `why`), else its index; `name` one
 * line about it. The device itself is hv_compute_local_device's
 * (compute_local.c, shared with the single-case commands' --device). */
static int local_device(MPI_Comm comm, char *name, size_t ncap, char *why, size_t wcap)
{
    MPI_Comm node;
    int local = 0;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    return hv_compute_local_device(local, name, ncap, why, wcap);
}

hv_status hv_mpi_compute_open(int setting, MPI_Comm comm, hv_mpi_compute *out)
{
    memset(out, 0, sizeof *out);
    out->device = -1;
    if (setting < HV_COMPUTE_AUTO || setting > HV_COMPUTE_CUDA)
        return hv_error_set(HV_ERR_ARG, "compute.device: unknown setting %d", setting);
    int rank = 0, nranks = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int hl = 0;
    MPI_Get_processor_name(host, &hl);

    char name[64] = "", why[384] = "";
    int dev = setting == HV_COMPUTE_CPU ? -1 : local_device(comm, name, sizeof name, why, sizeof why);
    int have = dev >= 0, all = 0;
    MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, comm);
    /* rank 0 learns every rank's device, for the log and the provenance */
    char mine[HV_COMPUTE_ENTRY];
    /* host and device names cut so the entry always fits ("rank " + 11 + 1 +
     * 40 + 1 + 63 + NUL = 122 <= HV_COMPUTE_ENTRY): the list stays one line */
    if (have) snprintf(mine, sizeof mine, "rank %d %.40s %.63s", rank, host, name);
    else snprintf(mine, sizeof mine, "rank %d %.40s none", rank, host);
    char list[sizeof out->desc - 16];
    list[0] = 0;
    char *gathered = NULL;
    int ok = 1, allok = 0;
    if (rank == 0 && !(gathered = calloc((size_t)nranks, HV_COMPUTE_ENTRY))) ok = 0;
    MPI_Allreduce(&ok, &allok, 1, MPI_INT, MPI_MIN, comm);
    if (!allok)
        return hv_error_set(HV_ERR_NOMEM, "compute.device: out of memory for the device list");
    MPI_Gather(mine, HV_COMPUTE_ENTRY, MPI_CHAR, gathered, HV_COMPUTE_ENTRY, MPI_CHAR, 0, comm);
    if (rank == 0) {
        size_t used = 0;
        for (int r = 0; r < nranks; r++) {
            const char *e = gathered + (size_t)r * HV_COMPUTE_ENTRY;
            int w = snprintf(list + used, sizeof list - used, "%s%.*s", r ? "; " : "",
                             HV_COMPUTE_ENTRY - 1, e);
            if (w < 0 || (size_t)w >= sizeof list - used) {
                /* longer than the list holds: say how many ranks there were */
                size_t keep = sizeof list > 40 ? sizeof list - 40 : 0;
                snprintf(list + keep, sizeof list - keep, "; ... (%d ranks)", nranks);
                break;
            }
            used += (size_t)w;
        }
    }
    free(gathered);

    if (setting == HV_COMPUTE_CUDA && !all) {
        /* every rank refuses alike; each names its own reason when it has one */
        if (!have)
            return hv_error_set(HV_ERR_ARG, "compute.device = cuda: %s; use compute.device = auto "
                                "or cpu to run on the CPU", why);
        return hv_error_set(HV_ERR_ARG, "compute.device = cuda: another rank has no usable CUDA "
                            "device (its log says why); use compute.device = auto or cpu to run "
                            "on the CPU");
    }
    if (all) {
        out->cuda = 1;
        out->device = dev;
        snprintf(out->desc, sizeof out->desc, "cuda (%s)", rank == 0 ? list : mine);
    } else {
        snprintf(out->desc, sizeof out->desc, "cpu");
    }
    if (rank == 0) {
        if (setting == HV_COMPUTE_CPU)
            hv_log_info("compute: cpu (compute.device = cpu)");
        else if (all)
            hv_log_info("compute: cuda (compute.device = %s): %s", hv_compute_choices[setting],
                        list);
        else
            hv_log_info("compute: cpu (compute.device = auto: %s; ranks: %s)",
                        have ? "another rank has no usable CUDA device" : why, list);
    }
    return HV_OK;
}

hv_status hv_mpi_compute_backend(const hv_mpi_compute *c, hv_nn_backend **out)
{
    hv_compute one = {c && c->cuda, c ? c->device : -1, ""};
    return hv_compute_backend(&one, out);
}
