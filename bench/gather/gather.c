/*
 * bench/gather/gather.c: how the gather's SVM grading grows with the cohort.
 *
 * For each size (default 10k, 100k, 1M vertebra rows) and each solver
 * (libsvm, liblinear) it times what rank 0 of a one-rank gather computes:
 * the protocol's plan (folds, scaler), the 5 folds (train + predict the val
 * rows), the final model on train+test and its prediction of every row.
 * The rows are synthetic, drawn like the phantom's vertebrae
 * (src/phantom/phantom.c, draw_fracture): 15 % fractured, grades 1/2/3 in
 * 45/35/20 % of those, the loss uniform inside the grade's Genant band and
 * shared between anterior, middle and posterior by the fracture type (wedge
 * 50 %, biconcave 25 %, crush 25 %), plus N(0, 0.04) measurement noise per
 * region (results/measure-phantom-big.md); sets train/test/val in 50/25/25 %.
 *
 * Each measurement runs in a child process with a limit of CPU seconds
 * (--limit S, default 600; RLIMIT_CPU, plus a generous wall-clock guard):
 * libsvm's SMO grows much faster than linearly, so a size it cannot finish
 * in time is reported as "> limit" rather than waited for, and larger sizes
 * of that solver are skipped. The growth
 * exponent is the least-squares slope of log(CPU time) against log(rows)
 * over the sizes that finished; the ratio column is the solver's CPU time
 * over liblinear's at the same size (the baseline measured in the same run).
 * CPU time (the child's, CLOCK_PROCESS_CPUTIME_ID) is what the exponent and
 * ratio use because the development machine is shared: wall time is printed
 * too but moves with the load.
 *
 *   bench_gather [--sizes 10000,100000,1000000] [--limit S] [--solvers libsvm,liblinear]
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/core.h"
#include "hv/measure.h"

static void make_rows(hv_svm_row *rows, size_t n, uint64_t seed)
{
    hv_rng r;
    hv_rng_seed(&r, seed, 16);
    static const double lo[4] = {0, 0.205, 0.255, 0.405}, hi[4] = {0, 0.245, 0.395, 0.55};
    for (size_t i = 0; i < n; i++) {
        hv_svm_row *w = &rows[i];
        memset(w, 0, sizeof *w);
        snprintf(w->case_id, sizeof w->case_id, "bench%07zu", i / 17);
        w->label = 8 + (int)(i % 17);
        double u = hv_rng_uniform(&r);
        w->set = u < 0.5 ? HV_SPLIT_TRAIN : u < 0.75 ? HV_SPLIT_TEST : HV_SPLIT_VAL;
        double fr[3] = {0, 0, 0};
        int g = 0;
        if (hv_rng_uniform(&r) < 0.15) {
            double ug = hv_rng_uniform(&r);
            g = ug < 0.45 ? 1 : ug < 0.80 ? 2 : 3;
            double L = hv_rng_range(&r, lo[g], hi[g]);
            double ut = hv_rng_uniform(&r), f1 = hv_rng_uniform(&r), f2 = hv_rng_uniform(&r),
                   f3 = hv_rng_uniform(&r);
            if (ut < 0.5) {
                fr[0] = 1.0, fr[1] = 0.40 + 0.25 * f1, fr[2] = 0.15 * f2;
            } else if (ut < 0.75) {
                fr[0] = 0.15 + 0.30 * f1, fr[1] = 1.0, fr[2] = 0.10 + 0.25 * f2;
            } else {
                fr[0] = 0.85 + 0.12 * f1, fr[1] = 0.85 + 0.12 * f2, fr[2] = 0.85 + 0.12 * f3;
                fr[hv_rng_below(&r, 3)] = 1.0;
            }
            for (int k = 0; k < 3; k++) fr[k] *= L;
        }
        w->grade = g;
        for (int k = 0; k < 3; k++) w->x[k] = fr[k] + 0.04 * hv_rng_normal(&r);
    }
}

/* The gather's SVM work on one rank; seconds, or -1 on failure. */
static double protocol(const hv_svm_row *rows, size_t n, hv_svm_solver solver, double *f1)
{
    double t0 = hv_time_now();
    hv_svm_cv *cv = NULL;
    hv_svm_grader *g = NULL;
    if (hv_svm_cross_validate_solver(rows, n, 5, 0u, solver, &cv) != HV_OK) return -1;
    if (hv_svm_train_solver(rows, n, (1u << HV_SPLIT_TRAIN) | (1u << HV_SPLIT_TEST), 0u, solver,
                            &g) != HV_OK) {
        hv_svm_cv_free(cv);
        return -1;
    }
    long sum = 0;
    for (size_t i = 0; i < n; i++) sum += hv_svm_predict(g, rows[i].x);
    double t = hv_time_now() - t0;
    *f1 = cv->mean[0] + 0 * (double)sum;
    hv_svm_cv_free(cv);
    hv_svm_grader_free(g);
    return t;
}

/* Run protocol() in a child with a CPU-time limit. 0: done (t wall, cpu
 * the child's CPU seconds, f1 set),
 * 1: over the limit, -1: failed. */
static int timed(const hv_svm_row *rows, size_t n, hv_svm_solver solver, double limit, double *t,
                 double *f1, double *cpu)
{
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fd[0]);
        /* the limit is on CPU seconds: SIGXCPU ends the child */
        struct rlimit rl = {(rlim_t)limit, (rlim_t)limit + 1};
        setrlimit(RLIMIT_CPU, &rl);
        double res[3];
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        res[0] = protocol(rows, n, solver, &res[1]);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        res[2] = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
        ssize_t wr = write(fd[1], res, sizeof res);
        _exit(wr == (ssize_t)sizeof res && res[0] >= 0 ? 0 : 1);
    }
    close(fd[1]);
    double t0 = hv_time_now();
    int status = 0, over = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (hv_time_now() - t0 > 30 * limit + 60) { /* wall guard on a very busy machine */
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            over = 1;
            break;
        }
        usleep(20000);
    }
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU || WTERMSIG(status) == SIGKILL))
        over = 1;
    double res[3] = {-1, 0, 0};
    ssize_t rd = over ? 0 : read(fd[0], res, sizeof res);
    close(fd[0]);
    if (over) return 1;
    if (rd != (ssize_t)sizeof res || res[0] < 0) return -1;
    *t = res[0];
    *f1 = res[1];
    *cpu = res[2];
    return 0;
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {10000, 100000, 1000000};
    int ns = 3;
    double limit = 600;
    int use[2] = {1, 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            ns = 0;
            char *p = argv[++i];
            while (*p && ns < 8) {
                sizes[ns++] = (size_t)strtoull(p, &p, 10);
                if (*p == ',') p++;
            }
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            limit = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--solvers") && i + 1 < argc) {
            const char *s = argv[++i];
            use[0] = strstr(s, "libsvm") != NULL;
            use[1] = strstr(s, "liblinear") != NULL;
        } else {
            fprintf(stderr, "usage: bench_gather [--sizes N,N,..] [--limit S] [--solvers libsvm,liblinear]\n");
            return 2;
        }
    }
    printf("# bench_gather: SVM protocol of the gather on one rank (5 folds + final model + "
           "predict all), synthetic phantom-like rows; limit %.0f CPU s per run\n", limit);
    printf("solver,rows,train_test_rows,wall_s,cpu_s,cpu_us_per_row,macro_f1_folds,cpu_ratio_to_liblinear\n");
    double tt[2][8];
    int ok[2][8] = {{0}};
    for (int k = 0; k < ns; k++) {
        size_t n = sizes[k];
        hv_svm_row *rows = malloc(n * sizeof *rows);
        if (!rows) {
            fprintf(stderr, "out of memory for %zu rows\n", n);
            return 1;
        }
        make_rows(rows, n, 20260316);
        size_t np = 0;
        for (size_t i = 0; i < n; i++) np += rows[i].set != HV_SPLIT_VAL;
        for (int s = 1; s >= 0; s--) { /* liblinear first: the baseline */
            if (!use[s]) continue;
            if (k > 0 && !ok[s][k - 1] && tt[s][k - 1] < 0) {
                printf("%s,%zu,%zu,skipped,,,,(smaller size over the limit)\n",
                       s ? "liblinear" : "libsvm", n, np);
                tt[s][k] = -1;
                continue;
            }
            double t = 0, f1 = 0, cpu = 0;
            int r = timed(rows, n, s ? HV_SVM_LIBLINEAR : HV_SVM_LIBSVM, limit, &t, &f1, &cpu);
            if (r == 0) {
                ok[s][k] = 1;
                tt[s][k] = cpu;
                char ratio[32] = "";
                if (ok[1][k]) snprintf(ratio, sizeof ratio, "%.2f", cpu / tt[1][k]);
                printf("%s,%zu,%zu,%.3f,%.3f,%.3f,%.4f,%s\n", s ? "liblinear" : "libsvm", n, np, t,
                       cpu, 1e6 * cpu / (double)n, f1, ratio);
            } else {
                tt[s][k] = -1;
                printf("%s,%zu,%zu,,%s%.0f,,,\n", s ? "liblinear" : "libsvm", n, np,
                       r > 0 ? ">" : "failed, limit ", limit);
            }
            fflush(stdout);
        }
        free(rows);
    }
    for (int s = 1; s >= 0; s--) {
        if (!use[s]) continue;
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        int m = 0;
        for (int k = 0; k < ns; k++)
            if (ok[s][k]) {
                double x = log((double)sizes[k]), y = log(tt[s][k]);
                sx += x, sy += y, sxx += x * x, sxy += x * y, m++;
            }
        if (m >= 2)
            printf("# growth exponent %s: CPU time ~ rows^%.2f (least squares over %d sizes)\n",
                   s ? "liblinear" : "libsvm", (m * sxy - sx * sy) / (m * sxx - sx * sx), m);
        else
            printf("# growth exponent %s: fewer than two sizes finished\n", s ? "liblinear" : "libsvm");
    }
    return 0;
}
