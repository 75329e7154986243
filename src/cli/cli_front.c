/*
 * cli_front.c: the front end that the MPI commands share (run, prepare,
 * reproduce, train, train-classifier): their command line (CONFIG.ini,
 * --set in order, --fresh, one extra option with a value), the --keys
 * listing, and the MPI start and end with the stop signals.
 *
 * Why one place: these commands promise the same things (every value checked
 * before MPI starts, a bad line exits 2 with nothing written, SIGTERM/SIGUSR1
 * stop cleanly with exit 75, a store that failed to close ends in MPI_Abort
 * rather than a hang in MPI_Finalize). Written once per command, the copies
 * had already drifted: Ctrl-C stopped a training cleanly but killed a run.
 *
 * Arguments are read in two passes so that --set applies over the file:
 * hv_cli_front_parse finds the file (and answers --help/--keys), the caller
 * loads it, then hv_cli_front_sets replays --set and --fresh in order.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "hv/run.h"
#include "hv/store.h"

static void on_signal(int sig)
{
    (void)sig;
    hv_run_request_stop();
}

void hv_cli_print_keys(const hv_run_key *k, size_t n, const char *changes)
{
    char allowed[256];
    for (size_t i = 0; i < n; i++) {
        hv_run_key_allowed(&k[i], allowed, sizeof allowed);
        printf("%s.%s = %s\n    %s\n    allowed: %s%s%s%s\n", k[i].section, k[i].key, k[i].def,
               k[i].help, allowed, changes && k[i].results ? " (" : "",
               changes && k[i].results ? changes : "", changes && k[i].results ? ")" : "");
    }
}

int hv_cli_front_parse(const hv_cli_front *f, int argc, char **argv, const char **cfgpath)
{
    *cfgpath = NULL;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            f->usage(stdout);
            return HV_EXIT_OK;
        }
        if (!strcmp(argv[a], "--keys")) {
            f->keys();
            return HV_EXIT_OK;
        }
    }
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--set")) {
            a++; /* its value; a missing one is reported by hv_cli_front_sets */
            continue;
        }
        if (!strncmp(argv[a], "--set=", 6)) continue;
        if (f->fresh && !strcmp(argv[a], "--fresh")) continue;
        if (f->opt && !strcmp(argv[a], f->opt)) {
            if (a + 1 >= argc) {
                fprintf(stderr, "healthivert %s: %s needs %s\n", f->cmd, f->opt, f->opt_what);
                return HV_EXIT_USAGE;
            }
            *f->opt_value = argv[++a];
            continue;
        }
        if (argv[a][0] == '-' || *cfgpath) {
            fprintf(stderr, "healthivert %s: unexpected argument '%s'\n\n", f->cmd, argv[a]);
            f->usage(stderr);
            return HV_EXIT_USAGE;
        }
        *cfgpath = argv[a];
    }
    if (!*cfgpath) {
        f->usage(stderr);
        return HV_EXIT_USAGE;
    }
    return HV_CLI_GO_ON;
}

int hv_cli_front_sets(const hv_cli_front *f, int argc, char **argv,
                      hv_status (*set)(void *obj, const char *kv), void *obj)
{
    for (int a = 1; a < argc; a++) {
        const char *as = NULL;
        if (!strcmp(argv[a], "--set")) {
            if (a + 1 >= argc) {
                fprintf(stderr, "healthivert %s: --set needs section.key=value\n", f->cmd);
                return HV_EXIT_USAGE;
            }
            as = argv[++a];
        } else if (!strncmp(argv[a], "--set=", 6)) {
            as = argv[a] + 6;
        } else if (f->fresh && !strcmp(argv[a], "--fresh")) {
            as = f->fresh; /* the same as --set <section>.fresh=1: not both */
        } else if (f->opt && !strcmp(argv[a], f->opt)) {
            a++;
        }
        if (as && set(obj, as) != HV_OK) {
            fprintf(stderr, "healthivert %s: %s\n", f->cmd, hv_error_detail());
            return HV_EXIT_USAGE;
        }
    }
    return HV_CLI_GO_ON;
}

int hv_cli_mpi_start(const char *cmd, int *argc, char ***argv, int *rank, int *size)
{
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "healthivert %s: MPI_Init failed\n", cmd);
        return HV_EXIT_FAIL;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* the handler only sets a flag the loops poll: a read or write in hand
     * (a pipe to mpiexec, a socket) goes on rather than failing with EINTR */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    /* Ctrl-C without mpiexec (under mpiexec, mpiexec takes it and ends the
     * job): the first stops cleanly, a second ends the process at once */
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    return HV_CLI_GO_ON;
}

int hv_cli_mpi_end(const char *cmd, int rank, int rc)
{
    fflush(stdout);
    if (hv_store_close_failed()) {
        /* the command's message says why; HDF5 would crash (or wait forever)
         * shutting down in MPI_Finalize (hv_store_close_failed) */
        fprintf(stderr, "healthivert %s: [rank %d] HDF5 could not close a store; ending with "
                        "MPI_Abort instead of shutting HDF5 down (re-run to resume once the "
                        "cause is fixed)\n", cmd, rank);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc == HV_EXIT_OK ? HV_EXIT_FAIL : rc);
    }
    MPI_Finalize();
    return rc;
}
