/*
 * file.c: checks and whole-file reads for input files named on the command
 * line or in configs and JSON files.
 *
 * Every input file must be a regular file. A directory, FIFO, socket or
 * device given where a file is expected either hangs (a FIFO blocks open()
 * and read() forever) or fails later with a misleading message ("JSON file
 * larger than 64 MiB" for a directory), so readers check first and say what
 * the path actually is. hv_file_read_all opens with O_NONBLOCK and checks
 * the open descriptor (fstat), so a path swapped for a FIFO between a check
 * and the open still cannot block. One copy of the whole-file read for the
 * whole project (JSON, NIfTI fast path, configs). hv_file_name_check keeps
 * ids that output file names are built from to one plain path component.
 *
 * Outputs are written under a temporary name in the same folder and renamed
 * into place (rename is atomic within a file system), so a crash, a kill or
 * a full disk leaves the old file or none, never half a file that a resumed
 * run or a user would trust. One copy of that dance for the whole project:
 * hv_atomic_open/commit for stdio writers, hv_file_write_atomic for buffers,
 * and the CSV field writers of the tables those files hold.
 */
#include "hv/core.h"

#include <errno.h>
#include <math.h>
#include <libgen.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a non-regular st_mode is, in words. */
static const char *mode_words(mode_t m)
{
    if (S_ISDIR(m)) return "is a directory";
    if (S_ISFIFO(m)) return "is a FIFO (named pipe)";
    if (S_ISSOCK(m)) return "is a socket";
    if (S_ISCHR(m)) return "is a character device";
    if (S_ISBLK(m)) return "is a block device";
    return "is not a regular file";
}

/* "what: path" or "path" as the message prefix. */
#define HV_FILE_WHO(what) (what) && *(what) ? (what) : "", (what) && *(what) ? ": " : ""

hv_status hv_file_check_regular(const char *path, const char *what)
{
    if (!path || !*path) return hv_error_set(HV_ERR_ARG, "%s%sthe file path is empty", HV_FILE_WHO(what));
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        if (e == ENOENT)
            return hv_error_set(HV_ERR_IO, "%s%s%s: does not exist", HV_FILE_WHO(what), path);
        if (e == ENOTDIR)
            return hv_error_set(HV_ERR_IO,
                                "%s%s%s: does not exist (a component of the path is not a "
                                "directory)",
                                HV_FILE_WHO(what), path);
        return hv_error_set(HV_ERR_IO, "%s%s%s: cannot access: %s", HV_FILE_WHO(what), path,
                            strerror(e));
    }
    if (!S_ISREG(sb.st_mode))
        return hv_error_set(HV_ERR_IO, "%s%s%s: %s, not a regular file", HV_FILE_WHO(what), path,
                            mode_words(sb.st_mode));
    return HV_OK;
}

hv_status hv_file_read_all(const char *path, const char *what, size_t max_bytes, char **out,
                           size_t *len)
{
    if (!out) return hv_error_set(HV_ERR_ARG, "hv_file_read_all: out is NULL");
    *out = NULL;
    if (len) *len = 0;
    hv_status st = hv_file_check_regular(path, what);
    if (st != HV_OK) return st;

    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return hv_error_set(HV_ERR_IO, "%s%s%s: cannot open: %s", HV_FILE_WHO(what), path,
                            strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = hv_error_set(HV_ERR_IO, "%s%s%s: cannot stat: %s", HV_FILE_WHO(what), path,
                          strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) { /* replaced since the check */
        st = hv_error_set(HV_ERR_IO, "%s%s%s: %s, not a regular file", HV_FILE_WHO(what), path,
                          mode_words(sb.st_mode));
        goto done;
    }
    /* A regular file never blocks; back to plain blocking reads. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (sb.st_size < 0 || (uint64_t)sb.st_size > (uint64_t)max_bytes ||
        (uint64_t)sb.st_size >= (uint64_t)SIZE_MAX) {
        st = hv_error_set(HV_ERR_LIMIT, "%s%s%s: the file is %lld bytes, more than the limit of %zu",
                          HV_FILE_WHO(what), path, (long long)sb.st_size, max_bytes);
        goto done;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    buf = malloc(n + 1);
    if (!buf) {
        st = hv_error_set(HV_ERR_NOMEM, "%s%s%s: out of memory for %zu bytes", HV_FILE_WHO(what),
                          path, n);
        goto done;
    }
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        ssize_t r = read(fd, buf + got, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = hv_error_set(HV_ERR_IO, "%s%s%s: read failed: %s", HV_FILE_WHO(what), path,
                              strerror(errno));
            goto done;
        }
        if (r == 0) {
            st = hv_error_set(HV_ERR_IO,
                              "%s%s%s: short read (%zu of %zu bytes; the file shrank while "
                              "being read)",
                              HV_FILE_WHO(what), path, got, n);
            goto done;
        }
        got += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len) *len = n;
done:
    free(buf);
    close(fd);
    return st;
}

/* `s` with non-printable bytes as \xNN, cut to fit `cap` (for messages). */
static void escape_name(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    if (*s && o + 4 < cap) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o < cap ? o : cap - 1] = '\0';
}

hv_status hv_file_name_check(const char *name, const char *what)
{
    if (!what || !*what) what = "name";
    if (!name || !*name) return hv_error_set(HV_ERR_ARG, "%s is empty: it must be a file name", what);
    char esc[160];
    escape_name(name, esc, sizeof esc);
    size_t n = strlen(name);
    const char *why = NULL;
    char buf[96];
    if (!strcmp(name, ".") || !strcmp(name, "..")) {
        why = "'.' and '..' name folders";
    } else if (n > HV_FILE_NAME_MAX) {
        snprintf(buf, sizeof buf, "it is %zu bytes long (at most %d)", n, HV_FILE_NAME_MAX);
        why = buf;
    } else {
        for (size_t i = 0; i < n && !why; i++) {
            unsigned char c = (unsigned char)name[i];
            if (c == '/') {
                why = "it contains '/'";
            } else if (c < 0x20 || c == 0x7f) {
                snprintf(buf, sizeof buf, "it contains a control character (0x%02x) at byte %zu",
                         c, i);
                why = buf;
            }
        }
    }
    if (!why) return HV_OK;
    return hv_error_set(HV_ERR_ARG,
                        "%s '%s' is not a plain file name (%s): output files are named after "
                        "it and must stay inside the output folder",
                        what, esc, why);
}

/* ------------------------------------------------------- atomic writes */

/* Temporary names tried before hv_atomic_open gives up (EEXIST each time). */
#define HV_ATOMIC_TMP_TRIES 100

struct hv_atomic_file {
    FILE *f;
    char *path, *tmp;
};

hv_status hv_atomic_open(const char *path, hv_atomic_file **out, FILE **f)
{
    static atomic_uint counter;
    *out = NULL;
    *f = NULL;
    if (!path || !*path) return hv_error_set(HV_ERR_ARG, "output path is empty");
    hv_atomic_file *a = calloc(1, sizeof *a);
    if (!a) return hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
    a->path = hv_strdup(path);
    if (!a->path) {
        hv_atomic_abort(a);
        return hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
    }
    /* The temporary name is per process and per call, and created with
     * O_EXCL, so two writers never share one (the shards of a job array
     * write the same files at once). A name that exists anyway (left by a
     * killed process whose pid came back, or a writer on another host of a
     * shared file system with the same pid) is skipped for the next one. */
    int fd = -1;
    for (int tries = 0; tries < HV_ATOMIC_TMP_TRIES && fd < 0; tries++) {
        free(a->tmp);
        a->tmp = hv_strfmt("%s.tmp%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
        if (!a->tmp) {
            hv_atomic_abort(a);
            return hv_error_set(HV_ERR_NOMEM, "%s: out of memory", path);
        }
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
        hv_status st = hv_error_set(HV_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        if (fd >= 0) unlink(a->tmp);
        free(a->path);
        free(a->tmp);
        free(a);
        return st;
    }
    *out = a;
    *f = a->f;
    return HV_OK;
}

void hv_atomic_abort(hv_atomic_file *a)
{
    if (!a) return;
    if (a->f) {
        fclose(a->f);
        unlink(a->tmp);
    }
    free(a->path);
    free(a->tmp);
    free(a);
}

static hv_status fsync_parent(const char *path)
{
    char *copy = hv_strdup(path);
    if (!copy) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    hv_status st = HV_OK;
    if (fd < 0 || fsync(fd) != 0)
        st = hv_error_set(HV_ERR_IO, "%s: cannot sync its folder: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return st;
}

hv_status hv_atomic_commit(hv_atomic_file *a, int durable)
{
    if (!a) return hv_error_set(HV_ERR_ARG, "atomic commit: no file");
    hv_status st = HV_OK;
    int e = 0;
    if (fflush(a->f) != 0 || ferror(a->f)) e = errno ? errno : EIO;
    if (!e && durable && fsync(fileno(a->f)) != 0) e = errno;
    if (fclose(a->f) != 0 && !e) e = errno ? errno : EIO;
    a->f = NULL;
    if (e) st = hv_error_set(HV_ERR_IO, "cannot write %s: %s", a->path, strerror(e));
    else if (rename(a->tmp, a->path) != 0)
        st = hv_error_set(HV_ERR_IO, "cannot rename %s into place: %s", a->path, strerror(errno));
    else if (durable)
        st = fsync_parent(a->path);
    if (st != HV_OK) unlink(a->tmp);
    free(a->path);
    free(a->tmp);
    free(a);
    return st;
}

hv_status hv_file_write_atomic(const char *path, const void *data, size_t n, int durable)
{
    hv_atomic_file *a;
    FILE *f;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    if (n && fwrite(data, 1, n, f) != n) {
        st = hv_error_set(HV_ERR_IO, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
        hv_atomic_abort(a);
        return st;
    }
    return hv_atomic_commit(a, durable);
}

void hv_csv_put_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void hv_csv_put_num(FILE *f, double x)
{
    if (isnan(x)) fputs("nan", f);
    else fprintf(f, "%.17g", x);
}
