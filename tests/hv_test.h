/*
 * hv_test.h: the tiny test harness every CTest executable uses.
 *
 * A test program runs checks with HV_CHECK*, which print "ok"/"not ok" lines
 * with the file, line and a message, and ends with `return hv_test_done();`,
 * which prints "N passed, N failed" and returns the exit status CTest reads
 * (0 pass, 1 fail, 77 skip via hv_test_skip()).
 *
 * Shared data (../shared/data) is located with hv_test_data(): when it is
 * absent the test skips, except under CI (CI=true) where absence is a failure.
 * Scratch files go under hv_test_tmpdir(), a fresh folder per test program.
 * Tests of the command line run it with hv_test_system() and look at what
 * it left with hv_test_file_has() and hv_test_absent().
 */
#ifndef HV_TEST_H
#define HV_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int hv_test_pass_ = 0;
static int hv_test_fail_ = 0;

/* Record one check; returns whether it passed. */
static inline int hv_test_check_(int ok, const char *file, int line, const char *cond,
                                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static inline int hv_test_check_(int ok, const char *file, int line, const char *cond,
                                 const char *fmt, ...)
{
    if (ok) {
        hv_test_pass_++;
        return 1;
    }
    hv_test_fail_++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "not ok %s:%d: %s: ", file, line, cond);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
    return 0;
}

/* Evaluates `cond` once; on failure prints the condition and the message. */
#define HV_CHECK(cond, ...) hv_test_check_((cond) ? 1 : 0, __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Check a status-returning call; prints the error detail when it fails. */
#define HV_CHECK_OK(expr)                                                      \
    do {                                                                       \
        hv_status st_ = (expr);                                                \
        HV_CHECK(st_ == HV_OK, "%s -> %s: %s", #expr, hv_status_name(st_),     \
                 hv_error_detail());                                           \
    } while (0)

#define HV_CHECK_CLOSE(a, b, tol, what)                                        \
    do {                                                                       \
        double a_ = (double)(a), b_ = (double)(b);                             \
        HV_CHECK(fabs(a_ - b_) <= (tol), "%s: %.6g vs %.6g (tol %.3g)",        \
                 (what), a_, b_, (double)(tol));                               \
    } while (0)

/* Stop main() (as a failure) when a precondition for further checks fails.
 * The condition is evaluated once. */
#define HV_REQUIRE(cond, ...)                                                  \
    do {                                                                       \
        if (!HV_CHECK(cond, __VA_ARGS__)) return hv_test_done();               \
    } while (0)

/* The same inside a void helper: record the failure and return. */
#define HV_REQUIRE_V(cond, ...)                                                \
    do {                                                                       \
        if (!HV_CHECK(cond, __VA_ARGS__)) return;                              \
    } while (0)

static inline int hv_test_done(void)
{
    printf("%d passed, %d failed\n", hv_test_pass_, hv_test_fail_);
    fflush(stdout);
    return hv_test_fail_ ? 1 : 0;
}

static inline int hv_test_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    return 77;
}

static inline int hv_test_under_ci(void)
{
    const char *ci = getenv("CI");
    return ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

/* Full path of a file in the shared data folder, in a static buffer; NULL if
 * the file does not exist (the caller then returns hv_test_missing_data()). */
static inline const char *hv_test_data(const char *rel)
{
    static char buf[4][4096];
    static int slot = 0;
    const char *root = getenv("HV_TEST_DATA_DIR");
    if (!root || !*root) root = HV_TEST_DATA_DIR;
    char *p = buf[slot++ & 3];
    snprintf(p, 4096, "%s/%s", root, rel);
    struct stat sb;
    return stat(p, &sb) == 0 ? p : NULL;
}

static inline int hv_test_missing_data(const char *rel)
{
    if (hv_test_under_ci()) {
        printf("not ok: shared test data '%s' is missing under CI (HV_TEST_DATA_DIR=%s)\n",
               rel, HV_TEST_DATA_DIR);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("SKIP: shared test data '%s' not found (set HV_TEST_DATA_DIR)\n", rel);
    return 77;
}

/* Copy a file byte for byte (tests that damage a copy of a store or a
 * fixture); 0 on success, -1 when either file cannot be opened or the write
 * fails. */
static inline int hv_test_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b) {
        if (a) fclose(a);
        if (b) fclose(b);
        return -1;
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) bad |= fwrite(buf, 1, n, b) != n;
    fclose(a);
    return (fclose(b) != 0 || bad) ? -1 : 0;
}

/* 1 when both files exist and hold the same bytes, else 0. */
static inline int hv_test_same_file(const char *a, const char *b)
{
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g;
    while (same) {
        int x = fgetc(f), y = fgetc(g);
        if (x != y) same = 0;
        if (x == EOF || y == EOF) break;
    }
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

/* The exit status of a shell command line (system()); -1 when the shell
 * could not run or did not exit normally (a signal). */
static inline int hv_test_system(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* 1 when nothing is at path (not even an empty file or folder). */
static inline int hv_test_absent(const char *path)
{
    struct stat sb;
    return stat(path, &sb) != 0;
}

/* 1 when the first 64 KiB of the file at path contain needle; 0 when they
 * do not or the file cannot be read. */
static inline int hv_test_file_has(const char *path, const char *needle)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* A fresh scratch folder for this test program (emptied on every call). */
static inline const char *hv_test_tmpdir(const char *name)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/tmp-%s", HV_TEST_BINARY_DIR, name);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) return NULL;
    return dir;
}

#endif /* HV_TEST_H */
