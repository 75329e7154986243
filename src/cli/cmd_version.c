/*
 * cmd_version.c: `healthivert version`: what this binary is and what it can
 * use here. Asks each library for its own version at run time (not the
 * headers), so a mismatched installation shows up.
 */
#include <hdf5.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"
#ifdef HV_HAVE_CUDA
#include "hv/gpu.h"
#endif

int hv_cmd_version(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: healthivert version\n\n"
                   "Prints the version, the git revision it was built from, and for each\n"
                   "backend whether it is built in and what it finds on this machine:\n"
                   "oneDNN (CPU deep-learning kernels), CUDA (GPU), MPI, parallel HDF5.\n");
            return HV_EXIT_OK;
        }
        fprintf(stderr, "healthivert version: unexpected argument '%s'\n", argv[i]);
        return HV_EXIT_USAGE;
    }
    printf("healthivert %s (git %s)\n", hv_version(), hv_git_revision());

    const dnnl_version_t *dv = dnnl_version();
    printf("  oneDNN        built in: %d.%d.%d (cpu runtime %s)\n", dv->major, dv->minor, dv->patch,
           dv->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");

#ifdef HV_HAVE_CUDA
    char buf[512];
    int n = hv_gpu_probe(buf, sizeof buf);
    printf("  CUDA          built in: %s%s\n", buf, n == 0 ? " -> running on CPU" : "");
#else
    printf("  CUDA          not built in (no nvcc/cuDNN at build time, or HV_ENABLE_CUDA=OFF)\n");
#endif

    char mpiv[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpiv, &len);
    char *nl = strchr(mpiv, '\n');
    if (nl) *nl = '\0';
    char *comma = strchr(mpiv, ',');
    if (comma) *comma = '\0';
    printf("  MPI           built in: %s (MPI %d.%d)\n", mpiv, MPI_VERSION, MPI_SUBVERSION);

    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
#ifdef H5_HAVE_PARALLEL
    printf("  parallel HDF5 built in: %u.%u.%u (MPI-IO)\n", maj, min, rel);
#else
    printf("  HDF5          built in: %u.%u.%u (serial: parallel store unavailable)\n", maj, min, rel);
#endif
    return HV_EXIT_OK;
}
