/*
 * fuzz_util.h: what every libFuzzer target in tests/fuzz shares.
 *
 * The readers under test take a path, not a buffer (hv_io_nifti_read,
 * hv_io_centroids_read, hv_run_config_load ... open, stat and gzopen their
 * file themselves), so each input is put into a file first. A memfd reached
 * through /proc/self/fd/N is a regular file that never touches the disk and
 * is rewritten in place for every input, so a target does no file-system
 * work beyond what the reader itself does. Targets that need a real folder
 * (journal replay lists one; the JSON writers rename into one) get a private
 * temporary folder, removed at exit.
 *
 * HV_FUZZ_FAIL reports a broken invariant (not a crash, but a wrong answer:
 * the reader accepted what it must refuse, a round trip changed the data)
 * and aborts, which libFuzzer treats like a crash: the input is saved under
 * -artifact_prefix and the run fails.
 *
 * Every target defines LLVMFuzzerInitialize, which libFuzzer calls once and
 * replay_main.c calls too (the same target code runs without libFuzzer in
 * the ordinary gcc sanitizer build, over the committed corpus and regression
 * inputs).
 */
#ifndef HV_FUZZ_UTIL_H
#define HV_FUZZ_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hv/core.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HV_FUZZ_FAIL(...)                                                                       \
    do {                                                                                        \
        fprintf(stderr, "hv_fuzz: invariant broken at %s:%d: ", __FILE__, __LINE__);            \
        fprintf(stderr, __VA_ARGS__);                                                           \
        fputc('\n', stderr);                                                                    \
        abort();                                                                                \
    } while (0)

/* A memfd holding `data`; returns its /proc path (static storage). The same
 * memfd is reused (truncated and rewritten) on every call with the same slot
 * (0..3), so a target can hold up to four input files at once. */
static inline const char *hv_fuzz_memfile(int slot, const void *data, size_t size)
{
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][64];
    if (fd[slot] < 0) {
        fd[slot] = (int)syscall(SYS_memfd_create, "hv_fuzz", 0u);
        if (fd[slot] < 0) HV_FUZZ_FAIL("memfd_create: %s", strerror(errno));
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0) HV_FUZZ_FAIL("ftruncate: %s", strerror(errno));
    size_t off = 0;
    while (off < size) {
        ssize_t w = pwrite(fd[slot], (const char *)data + off, size - off, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) HV_FUZZ_FAIL("pwrite: %s", strerror(errno));
        off += (size_t)w;
    }
    return path[slot];
}

/* Write `data` to the regular file `path` (created or truncated). */
static inline void hv_fuzz_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) HV_FUZZ_FAIL("%s: %s", path, strerror(errno));
    if (size && fwrite(data, 1, size, f) != size) HV_FUZZ_FAIL("%s: short write", path);
    if (fclose(f) != 0) HV_FUZZ_FAIL("%s: %s", path, strerror(errno));
}

static char hv_fuzz_dir_[4096];

static inline void hv_fuzz_rmdir_(void)
{
    if (!hv_fuzz_dir_[0]) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", hv_fuzz_dir_);
    if (system(cmd) != 0) fprintf(stderr, "hv_fuzz: could not remove %s\n", hv_fuzz_dir_);
}

/* A private temporary folder for this process (created once, removed at exit). */
static inline const char *hv_fuzz_tmpdir(void)
{
    if (hv_fuzz_dir_[0]) return hv_fuzz_dir_;
    const char *t = getenv("TMPDIR");
    if (!t || !*t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"; /* RAM if we can */
    snprintf(hv_fuzz_dir_, sizeof hv_fuzz_dir_, "%s/hv_fuzz.XXXXXX", t);
    if (!mkdtemp(hv_fuzz_dir_)) HV_FUZZ_FAIL("mkdtemp %s: %s", hv_fuzz_dir_, strerror(errno));
    atexit(hv_fuzz_rmdir_);
    return hv_fuzz_dir_;
}

#endif /* HV_FUZZ_UTIL_H */
