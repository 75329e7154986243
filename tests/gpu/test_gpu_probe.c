/*
 * test_gpu_probe.c: the CUDA toolchain proof. On a machine with a device the
 * probe must find it and its test kernel must compute y = 2x + 1 exactly;
 * without a device (or driver) the test is skipped, never failed.
 */
#include "hv/gpu.h"
#include "hv_test.h"

int main(void)
{
    char buf[512];
    int n = hv_gpu_probe(buf, sizeof buf);
    printf("# %s\n", buf);
    if (n == 0) return hv_test_skip("no CUDA device or driver on this machine");
    HV_CHECK(n > 0, "test kernel on device 0: %s", buf);
    HV_CHECK(strstr(buf, "test kernel ok") != NULL, "probe reports the kernel result: %s", buf);
    return hv_test_done();
}
