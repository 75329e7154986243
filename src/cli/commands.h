/*
 * commands.h: the subcommands of `healthivert`. Each takes the arguments
 * after its own name (argv[0] is the subcommand name) and returns the
 * process exit status. Exit statuses shared by all commands are below.
 */
#ifndef HV_CLI_COMMANDS_H
#define HV_CLI_COMMANDS_H

#include <stdio.h>

#include "hv/run.h"

enum {
    HV_EXIT_OK = 0,
    HV_EXIT_FAIL = 1,       /* the command failed (message on stderr)         */
    HV_EXIT_USAGE = 2,      /* bad command line                               */
    HV_EXIT_PARTIAL = 3,    /* finished, but some cases failed (see summary)  */
    HV_EXIT_RESUMABLE = 75  /* stopped by a signal; re-run the same command   */
};

int hv_cmd_version(int argc, char **argv);
int hv_cmd_info(int argc, char **argv);
int hv_cmd_phantom(int argc, char **argv);
int hv_cmd_straighten(int argc, char **argv);
int hv_cmd_measure(int argc, char **argv);
int hv_cmd_attention(int argc, char **argv);
int hv_cmd_svm(int argc, char **argv);
int hv_cmd_run(int argc, char **argv);
int hv_cmd_prepare(int argc, char **argv);
int hv_cmd_reproduce(int argc, char **argv);
/* The body of `run` and `prepare` (cmd_run.c): config, --set, MPI, the run,
 * the summary; `cmd` names the command in messages, `usage` prints its
 * help, prepare = 1 forces prepare.enabled = 1. */
int hv_cli_run_like(int argc, char **argv, const char *cmd, void (*usage)(FILE *), int prepare);

/* The one-case commands' checks before anything is read or written
 * (cli_case.c). The case id: --id (id_opt) when given, else the --ct file
 * name without .nii/.nii.gz and a trailing _ct; refused unless it is a plain
 * file name (the message names --id, or says it came from --ct). *out is
 * owned by the caller, NULL on failure. */
hv_status hv_cli_case_id(const char *id_opt, const char *ct_path, char **out);
/* Every input a regular file, in this order: --ct, --mask, --model
 * (model_path may be NULL: not checked), --centroids (ctd_path may be
 * NULL). */
hv_status hv_cli_case_inputs(const char *ct_path, const char *mask_path, const char *model_path,
                             const char *ctd_path);

/* ------------------------------------------------------------------------
 * The front end of the MPI commands (cli_front.c): CONFIG.ini, --set, --fresh
 * and one extra option with a value, --help/--keys, MPI and the stop signals.
 * The functions returning int give HV_CLI_GO_ON to carry on, else the exit
 * status to return (the message is printed).
 */
enum { HV_CLI_GO_ON = -1 };

typedef struct hv_cli_front {
    const char *cmd;           /* the command's name in messages            */
    void (*usage)(FILE *);     /* its help                                  */
    void (*keys)(void);        /* its --keys listing                        */
    const char *fresh;         /* --fresh means --set <fresh>; NULL: none   */
    const char *opt;           /* an extra option taking a value, or NULL   */
    const char *opt_what;      /* what its value is, for the message        */
    const char **opt_value;    /* out: its value (borrowed from argv)       */
} hv_cli_front;

/* Answers --help and --keys (exit 0) and finds CONFIG.ini (*cfgpath borrows
 * argv); an unknown option, a second file or none: usage, exit 2. */
int hv_cli_front_parse(const hv_cli_front *f, int argc, char **argv, const char **cfgpath);
/* Applies --set and --fresh in command-line order through set(obj, kv); a
 * refused one is printed with the reason (exit 2). */
int hv_cli_front_sets(const hv_cli_front *f, int argc, char **argv,
                      hv_status (*set)(void *obj, const char *kv), void *obj);
/* Prints the keys of a table; `changes` (or NULL) is said of those that
 * change results. */
void hv_cli_print_keys(const hv_run_key *k, size_t n, const char *changes);
/* MPI_Init (funneled) and SIGTERM, SIGUSR1 and one SIGINT as stop requests
 * (hv_run_request_stop; a second SIGINT ends the process). */
int hv_cli_mpi_start(const char *cmd, int *argc, char ***argv, int *rank, int *size);
/* MPI_Finalize, or MPI_Abort when a store could not be closed (HDF5 would
 * hang in MPI_Finalize); returns rc. */
int hv_cli_mpi_end(const char *cmd, int rank, int rc);

int hv_cmd_train(int argc, char **argv);
int hv_cmd_train_classifier(int argc, char **argv);
int hv_cmd_inspect(int argc, char **argv);
int hv_cmd_export(int argc, char **argv);

#endif
