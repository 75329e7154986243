/*
 * lock.c: the output folder lock: one run at a time per output folder (per
 * shard for sharded runs).
 *
 * Rank 0 creates the lock file (<output.dir>/run.lock, run-shard-KKKK.lock)
 * with O_CREAT|O_EXCL holding its host, pid and start time, and removes it
 * at the end. A lock whose holder is gone (same host, no such pid, or a
 * zombie) is stale and taken over with a warning; a holder on its way out
 * (orphaned, or with a SIGKILL pending) is waited for a while; a lock from
 * another host cannot be checked and is treated as live: the message says
 * how to remove it. Why a lock file and not fcntl() locks:
 * docs/hdf5-schema.md, "Output folder lock".
 *
 * It lives in hv_store, beside the journals and the store it guards, and
 * knows nothing of MPI: the runner takes it on rank 0 and broadcasts the
 * outcome. The messages are part of the interface (tests/mpi/test_guard.sh
 * matches them).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv/store.h"

/* What a lock file says (its three lines). */
typedef struct {
    char host[256];
    long pid;
    char started[64];
} lock_holder;

static void my_host(char *buf, size_t cap)
{
    if (gethostname(buf, cap) != 0) snprintf(buf, cap, "?");
    buf[cap - 1] = 0;
}

/* 0: parsed; -1: unreadable or incomplete (being written, or damaged). */
static int lock_read(const char *path, lock_holder *h)
{
    memset(h, 0, sizeof *h);
    char *t = NULL;
    if (hv_file_read_all(path, "lock", 4096, &t, NULL) != HV_OK) return -1;
    int got = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "host=", 5)) snprintf(h->host, sizeof h->host, "%s", line + 5), got |= 1;
        else if (!strncmp(line, "pid=", 4)) {
            char *end;
            h->pid = strtol(line + 4, &end, 10);
            if (!*end && h->pid > 0) got |= 2;
        } else if (!strncmp(line, "started=", 8)) {
            snprintf(h->started, sizeof h->started, "%s", line + 8);
            got |= 4;
        }
    }
    free(t);
    return got == 7 ? 0 : -1;
}

/* The holder's state on this host: 0 gone (no such process, or a zombie),
 * 1 alive, 2 alive but ending: orphaned (its parent, mpiexec, is gone: the
 * job was killed and this rank has not noticed yet) or with a SIGKILL
 * pending (stuck in an fsync, say). */
static int holder_state(long pid)
{
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 0;
    char fn[64], buf[1024];
    snprintf(fn, sizeof fn, "/proc/%ld/stat", pid);
    FILE *f = fopen(fn, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* the command name may hold anything */
    char state = 0;
    long ppid = 0;
    if (!rp || sscanf(rp + 1, " %c %ld", &state, &ppid) != 2) return 1;
    if (state == 'Z' || state == 'X' || state == 'x') return 0;
    if (ppid == 1) return 2;
    snprintf(fn, sizeof fn, "/proc/%ld/status", pid);
    if ((f = fopen(fn, "r"))) {
        int dying = 0;
        while (fgets(buf, sizeof buf, f)) {
            unsigned long long mask;
            if ((!strncmp(buf, "SigPnd:", 7) || !strncmp(buf, "ShdPnd:", 7)) &&
                sscanf(buf + 7, "%llx", &mask) == 1 && (mask >> (SIGKILL - 1) & 1))
                dying = 1;
        }
        fclose(f);
        if (dying) return 2;
    }
    return 1;
}

/* Seconds to wait for an ending holder (holder_state 2) before refusing. */
#define LOCK_ENDING_WAIT_S 30

hv_status hv_store_lock_take(const char *path, int *locked)
{
    *locked = 0;
    char host[256], started[32];
    my_host(host, sizeof host);
    hv_utc_now(started);
    for (int tries = 0; tries < 5; tries++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char *text = hv_strfmt("healthivert run lock\nhost=%s\npid=%ld\nstarted=%s\n", host,
                                   (long)getpid(), started);
            size_t n = text ? strlen(text) : 0;
            int ok = text && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
            int e = errno;
            free(text);
            if (close(fd) != 0 && ok) ok = 0, e = errno;
            if (!ok) {
                unlink(path);
                return hv_error_set(HV_ERR_IO, "cannot write the lock %s: %s", path, strerror(e));
            }
            *locked = 1;
            return HV_OK;
        }
        if (errno != EEXIST)
            return hv_error_set(HV_ERR_IO, "cannot create the lock %s: %s", path, strerror(errno));
        lock_holder h;
        if (lock_read(path, &h) != 0) {
            struct stat sb;
            if (stat(path, &sb) != 0) continue; /* released meanwhile: try again */
            /* incomplete: its holder is between create and write, or died
             * there; give it a minute */
            if (time(NULL) - sb.st_mtime < 60) {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            hv_log_warn("output folder lock %s is incomplete and older than a minute: taking it over",
                        path);
            unlink(path);
            continue;
        }
        if (!strcmp(h.host, host)) {
            int hs = holder_state(h.pid);
            if (hs == 2) {
                /* a rank of a killed job, on its way out: give it time */
                hv_log_warn("output folder lock %s: its holder (pid %ld) is ending (orphaned or "
                            "killed); waiting up to %d s for it to exit",
                            path, h.pid, LOCK_ENDING_WAIT_S);
                for (int w = 0; w < LOCK_ENDING_WAIT_S * 10 && hs == 2; w++) {
                    struct timespec ts = {0, 100 * 1000 * 1000};
                    nanosleep(&ts, NULL);
                    hs = holder_state(h.pid);
                }
            }
            if (hs != 0)
                return hv_error_set(HV_ERR_ARG,
                                    "the output folder is in use by another run (host %s, pid %ld, "
                                    "started %s; lock %s): wait for it to end, or use another "
                                    "output.dir",
                                    h.host, h.pid, h.started, path);
            hv_log_warn("output folder lock %s is stale (host %s, pid %ld, started %s: no such "
                        "process any more): taking it over",
                        path, h.host, h.pid, h.started);
            unlink(path);
            continue;
        }
        return hv_error_set(HV_ERR_ARG,
                            "the output folder is in use by a run on another host (host %s, pid "
                            "%ld, started %s; lock %s): wait for it to end, or use another "
                            "output.dir; if no such run is alive any more, remove %s",
                            h.host, h.pid, h.started, path, path);
    }
    return hv_error_set(HV_ERR_IO, "cannot take the output folder lock %s (it keeps changing)",
                        path);
}

void hv_store_lock_release(const char *path)
{
    lock_holder h;
    char host[256];
    my_host(host, sizeof host);
    if (lock_read(path, &h) == 0 && h.pid == (long)getpid() && !strcmp(h.host, host)) unlink(path);
}

