/*
 * commands.h: the subcommands of `healthivert`. Each takes the arguments
 * after its own name (argv[0] is the subcommand name) and returns the
 * process exit status. Exit statuses shared by all commands are below.
 */
#ifndef HV_CLI_COMMANDS_H
#define HV_CLI_COMMANDS_H

#include <stdio.h>

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
int hv_cmd_train(int argc, char **argv);
int hv_cmd_train_classifier(int argc, char **argv);
int hv_cmd_inspect(int argc, char **argv);
int hv_cmd_export(int argc, char **argv);

#endif
