/*
 * queue.c: the shared work counter, without a manager rank.
 *
 * Three 64-bit integers live in an MPI window on rank 0: the next position
 * in the (largest-first) case order, the number of cases done and the number
 * failed. A rank takes work with one MPI_Fetch_and_op(+1) in a passive-target
 * epoch opened once (MPI_Win_lock_all; each operation completes with
 * MPI_Win_flush), so a case costs two remote atomics (take, count), no rank
 * ever waits on a manager, and
 * rank 0 works like everyone else (on 2 cores a manager rank would waste
 * half the machine). The window comes from MPI_Win_allocate so that Open
 * MPI's shared-memory one-sided component serves it on one node (atomics
 * straight in shared memory, no target progress needed); across nodes the
 * RDMA component does the same with network atomics.
 *
 * Stop: a rank that received SIGTERM/SIGUSR1 adds a huge bias to the next
 * position; every later fetch returns a value past the bias and the rank
 * stops taking cases, so a signal delivered to any one rank stops the whole
 * job within one case per rank, without an extra atomic per case.
 */
#include <stdlib.h>

#include "run_internal.h"

enum { Q_NEXT = 0, Q_DONE, Q_FAILED, Q_N };

#define Q_STOP_BIAS ((int64_t)1 << 60)

struct hv_queue {
    MPI_Win win;
    int64_t *base;
};

hv_status hv_queue_create(MPI_Comm comm, hv_queue **out)
{
    *out = NULL;
    int rank;
    MPI_Comm_rank(comm, &rank);
    hv_queue *q = calloc(1, sizeof *q);
    if (!q) return hv_error_set(HV_ERR_NOMEM, "queue: out of memory");
    MPI_Aint size = rank == 0 ? (MPI_Aint)(Q_N * sizeof(int64_t)) : 0;
    if (MPI_Win_allocate(size, sizeof(int64_t), MPI_INFO_NULL, comm, &q->base, &q->win) !=
        MPI_SUCCESS) {
        free(q);
        return hv_error_set(HV_ERR_MPI, "MPI_Win_allocate failed");
    }
    if (rank == 0) {
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win);
        for (int i = 0; i < Q_N; i++) q->base[i] = 0;
        MPI_Win_unlock(0, q->win);
    }
    MPI_Barrier(comm);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, q->win);
    *out = q;
    return HV_OK;
}

void hv_queue_free(hv_queue *q)
{
    if (!q) return;
    MPI_Win_unlock_all(q->win);
    MPI_Win_free(&q->win);
    free(q);
}

static hv_status fetch_op(hv_queue *q, int slot, int64_t add, MPI_Op op, int64_t *old)
{
    int rc = MPI_Fetch_and_op(&add, old, MPI_INT64_T, 0, (MPI_Aint)slot, op, q->win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(0, q->win);
    return rc == MPI_SUCCESS ? HV_OK : hv_error_set(HV_ERR_MPI, "queue: one-sided operation failed");
}

hv_status hv_queue_next(hv_queue *q, long *pos)
{
    int64_t next = 0;
    hv_status st = fetch_op(q, Q_NEXT, 1, MPI_SUM, &next);
    *pos = next >= Q_STOP_BIAS ? -1 : (long)next;
    return st;
}

hv_status hv_queue_raise_stop(hv_queue *q)
{
    int64_t old;
    return fetch_op(q, Q_NEXT, Q_STOP_BIAS, MPI_SUM, &old);
}

hv_status hv_queue_count(hv_queue *q, int failed)
{
    int64_t old;
    return fetch_op(q, failed ? Q_FAILED : Q_DONE, 1, MPI_SUM, &old);
}

hv_status hv_queue_progress(hv_queue *q, long *done, long *failed)
{
    int64_t d = 0, f = 0;
    hv_status st = fetch_op(q, Q_DONE, 0, MPI_NO_OP, &d);
    if (st == HV_OK) st = fetch_op(q, Q_FAILED, 0, MPI_NO_OP, &f);
    *done = (long)d;
    *failed = (long)f;
    return st;
}
