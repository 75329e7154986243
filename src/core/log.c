/*
 * log.c: levelled logging to stderr, and the clocks (monotonic seconds for
 * timings, UTC time stamps for provenance and locks).
 *
 * One line per call, written with a single fputs so lines from OpenMP threads
 * and (through the rank prefix) MPI ranks do not interleave mid-line. The
 * level and the rank are process globals set once by the CLI; stdout is left
 * to the commands' own results.
 */
#include "hv/core.h"

#include <stdio.h>
#include <time.h>

static hv_log_level hv_log_level_cur = HV_LOG_INFO;
static int hv_log_rank = -1;

void hv_log_set_level(hv_log_level level) { hv_log_level_cur = level; }
hv_log_level hv_log_get_level(void) { return hv_log_level_cur; }
void hv_log_set_rank(int rank) { hv_log_rank = rank; }

void hv_logv(hv_log_level level, const char *fmt, va_list ap)
{
    static const char *const tags[] = {"error", "warning", "info", "debug"};
    if (level > hv_log_level_cur) return;
    char line[4096];
    int n;
    if (hv_log_rank >= 0)
        n = snprintf(line, sizeof line, "[rank %d] %s: ", hv_log_rank, tags[level]);
    else
        n = snprintf(line, sizeof line, "healthivert: %s: ", tags[level]);
    if (n < 0 || (size_t)n >= sizeof line) n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (m < 0) ? (size_t)n : (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void hv_log(hv_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hv_logv(level, fmt, ap);
    va_end(ap);
}

double hv_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hv_utc_now(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
