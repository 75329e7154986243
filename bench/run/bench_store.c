/*
 * bench_store.c: the per-case costs of the runner's machinery, measured, as
 * the inputs of docs/scaling.md's model (1,000 ranks, 100,000 cases).
 *
 *   mpirun -n R build/bench/bench_store DIR [N_CASES]
 *
 * Measures: the RMA work counter (hv_queue_next + hv_queue_count per case)
 * with all R ranks hammering it at once; serial store creation for N_CASES
 * slots (time, apparent and allocated size); hv_store_put_case through MPI-IO
 * from all ranks at once (independent writes, no metadata); journal append
 * (write + fdatasync) and replay per record. Baseline for the ratio: a plain
 * pwrite + fdatasync of the same bytes as one journal record.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/mpi/run_internal.h"

/* stage names as the runner gives them: the default table's rows + "store" */
static const char *const stage_names_[] = {"load",  "straighten", "crop",     "measure",
                                           "synthesize", "grade", "pictures", "store"};
#define N_STAGES 8

static hv_status count_rec(void *u, const hv_case_result *r)
{
    (void)r;
    (*(long *)u)++;
    return HV_OK;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        if (!rank) fprintf(stderr, "usage: bench_store DIR [N_CASES]\n");
        MPI_Finalize();
        return 2;
    }
    const char *dir = argv[1];
    long ncases = argc > 2 ? atol(argv[2]) : 100000;
    hv_mkdir_p(dir);
    MPI_Barrier(MPI_COMM_WORLD);

    /* 1. RMA counter under contention */
    hv_queue *q = NULL;
    if (hv_queue_create(MPI_COMM_WORLD, &q) != HV_OK) return 1;
    const long nops = 20000;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = hv_time_now();
    for (long i = 0; i < nops; i++) {
        long pos;
        hv_queue_next(q, &pos);
        hv_queue_count(q, 0);
    }
    double dt = hv_time_now() - t0, worst = 0;
    MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    hv_queue_free(q);
    if (!rank)
        printf("queue: %d ranks x %ld cases: %.2f us per case per rank (2 remote atomics: take, "
               "count), %.0f cases/s through the counter\n",
               size, nops, 1e6 * worst / nops, (double)size * nops / worst);

    /* 2. serial store creation */
    char store[1024];
    snprintf(store, sizeof store, "%s/bench-store.h5", dir);
    if (!rank) {
        hv_run_crow *rows = calloc((size_t)ncases, sizeof *rows);
        for (long i = 0; i < ncases; i++) snprintf(rows[i].id, sizeof rows[i].id, "case%07ld", i);
        hv_store_create_info ci = {ncases, 0, "bench", size, 1, "now", dir,
                                   N_STAGES, stage_names_, 0, 0, 0};
        hv_store *s = NULL;
        t0 = hv_time_now();
        if (hv_store_create(store, &ci, rows, &s) != HV_OK || hv_store_close(s) != HV_OK) {
            fprintf(stderr, "create: %s\n", hv_error_detail());
            return 1;
        }
        dt = hv_time_now() - t0;
        struct stat sb;
        stat(store, &sb);
        printf("store create (serial, %ld cases, %d vertebra slots each): %.3f s, %.1f MB "
               "apparent, %.1f MB allocated; row sizes: case %zu B, vertebra %zu B\n",
               ncases, HV_RUN_MAX_VERT, dt, sb.st_size / 1e6, sb.st_blocks * 512 / 1e6,
               sizeof(hv_run_crow), sizeof(hv_run_vrow));
        free(rows);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* 3. per-case writes through MPI-IO, all ranks at once */
    hv_store *s = NULL;
    if (hv_store_open_mpi(store, MPI_COMM_WORLD, &s) != HV_OK) {
        fprintf(stderr, "open: %s\n", hv_error_detail());
        return 1;
    }
    hv_case_result r;
    memset(&r, 0, sizeof r);
    r.state = HV_CASE_DONE;
    r.c.n_vert = 17;
    r.c.rank = rank;
    r.c.attempt = 1;
    for (int k = 0; k < 17; k++) {
        r.v[k].label = 8 + k;
        snprintf(r.v[k].level, sizeof r.v[k].level, "%s", hv_label_name(8 + k));
    }
    long nput = ncases / size < 2000 ? ncases / size : 2000;
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = hv_time_now();
    for (long i = 0; i < nput; i++) {
        snprintf(r.c.id, sizeof r.c.id, "case%07ld", i * size + rank);
        hv_store_put_case(s, i * size + rank, &r);
    }
    dt = hv_time_now() - t0;
    MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    hv_store_close(s);
    if (!rank)
        printf("store put_case (MPI-IO, independent, %d ranks x %ld cases of 17 vertebrae, "
               "%zu B each): %.1f us per case per rank\n",
               size, nput,
               sizeof(hv_run_crow) + N_STAGES * sizeof(double) + 17 * sizeof(hv_run_vrow) + 1,
               1e6 * worst / nput);

    /* 4. journal append (fdatasync) vs a plain pwrite+fdatasync of the same size */
    char jdir[1100];
    snprintf(jdir, sizeof jdir, "%s/bench-journal", dir);
    hv_journal *j = NULL;
    if (hv_journal_open(jdir, -1, rank, N_STAGES, stage_names_, &j) != HV_OK) return 1;
    const long nj = 300;
    t0 = hv_time_now();
    for (long i = 0; i < nj; i++) {
        snprintf(r.c.id, sizeof r.c.id, "j%d-%ld", rank, i);
        hv_journal_append(j, &r);
    }
    double tj = (hv_time_now() - t0) / nj;
    hv_journal_close(j);
    size_t recb = 12 + 4 + sizeof r.c + 4 + N_STAGES * sizeof(double) + 4 +
                  17 * sizeof(hv_run_vrow) + 4 + 4;
    char raw[1200];
    snprintf(raw, sizeof raw, "%s/raw-%d.bin", jdir, rank);
    int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *buf = calloc(1, recb);
    t0 = hv_time_now();
    for (long i = 0; i < nj; i++) {
        if (write(fd, buf, recb) < 0) break;
        fdatasync(fd);
    }
    double tb = (hv_time_now() - t0) / nj;
    close(fd);
    free(buf);
    double tjw, tbw;
    MPI_Reduce(&tj, &tjw, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&tb, &tbw, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    if (!rank) {
        long n = 0, nrec = 0, ntorn = 0;
        t0 = hv_time_now();
        hv_journal_replay(jdir, N_STAGES, stage_names_, count_rec, &n, &nrec, &ntorn);
        double tr = hv_time_now() - t0;
        printf("journal append (%zu B record, write + fdatasync, %d ranks at once): %.0f us; "
               "baseline pwrite+fdatasync of the same bytes: %.0f us (ratio %.2f)\n",
               recb, size, 1e6 * tjw, 1e6 * tbw, tjw / tbw);
        printf("journal replay: %ld records in %.4f s (%.1f us per record, CRC checked)\n", nrec,
               tr, 1e6 * tr / (double)(nrec ? nrec : 1));
    }
    MPI_Finalize();
    return 0;
}
