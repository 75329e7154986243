/*
 * main.c: `healthivert`, the command-line entry point.
 *
 * A table of subcommands; each lives in its own cmd_<name>.c and is compiled
 * in when that file exists (see CMakeLists.txt), so the table below only
 * lists what this build has. Global flags (-v, -q) set the log level before
 * the subcommand runs. This folder is the only place allowed to exit().
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} hv_command;

static const hv_command commands[] = {
    {"version", hv_cmd_version, "version, git revision and the backends built in"},
#ifdef HV_HAVE_CMD_INFO
    {"info", hv_cmd_info, "describe a NIfTI file: geometry, datatype, intensities, labels"},
#endif
#ifdef HV_HAVE_CMD_PHANTOM
    {"phantom", hv_cmd_phantom, "write a synthetic spine cohort with known ground truth"},
#endif
#ifdef HV_HAVE_CMD_STRAIGHTEN
    {"straighten", hv_cmd_straighten, "straighten one spine CT + mask and cut per-vertebra crops"},
#endif
#ifdef HV_HAVE_CMD_MEASURE
    {"measure", hv_cmd_measure, "vertebral heights, RHLV and Genant grade from a mask"},
#endif
#ifdef HV_HAVE_CMD_ATTENTION
    {"attention", hv_cmd_attention,
     "the fracture classifier's Grad-CAM++ maps of one case (NIfTI, overlay PNG, CSV)"},
#endif
#ifdef HV_HAVE_CMD_SVM
    {"svm", hv_cmd_svm, "train and evaluate the SVM grader (reference protocol)"},
#endif
#ifdef HV_HAVE_CMD_RUN
    {"run", hv_cmd_run, "run the whole pipeline on a cohort (MPI-parallel)"},
#endif
#ifdef HV_HAVE_CMD_REPRODUCE
    {"reproduce", hv_cmd_reproduce,
     "the seed paper's comparison table: one run per method, SVM-graded (MPI-parallel)"},
#endif
#ifdef HV_HAVE_CMD_PREPARE
    {"prepare", hv_cmd_prepare, "write the GAN's training set of a cohort (MPI-parallel)"},
#endif
#ifdef HV_HAVE_CMD_TRAIN
    {"train", hv_cmd_train, "train the HealthiVert GAN on a training file (MPI data parallel)"},
    {"train-classifier", hv_cmd_train_classifier,
     "train the fracture classifier of the Grad-CAM++ attention (MPI data parallel)"},
#endif
#ifdef HV_HAVE_CMD_INSPECT
    {"inspect", hv_cmd_inspect, "summarise a run's HDF5 store"},
#endif
#ifdef HV_HAVE_CMD_EXPORT
    {"export", hv_cmd_export, "export a run's HDF5 store to CSV"},
#endif
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert [-v|-q] <command> [options]\n"
            "\n"
            "Grades vertebral compression fractures in CT (HealthiVert-GAN, in C).\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "global options:\n"
            "  -v, --verbose   more log output (debug)\n"
            "  -q, --quiet     only warnings and errors\n"
            "  -h, --help      this text\n"
            "\n"
            "`healthivert <command> --help` explains each command.\n"
            "Logs go to stderr, results to stdout and files.\n");
}

int main(int argc, char **argv)
{
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (!strcmp(argv[a], "-v") || !strcmp(argv[a], "--verbose")) {
            hv_log_set_level(HV_LOG_DEBUG);
        } else if (!strcmp(argv[a], "-q") || !strcmp(argv[a], "--quiet")) {
            hv_log_set_level(HV_LOG_WARN);
        } else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            usage(stdout);
            return HV_EXIT_OK;
        } else if (!strcmp(argv[a], "--version")) {
            return hv_cmd_version(1, (char *[]){"version", NULL});
        } else {
            fprintf(stderr, "healthivert: unknown option '%s'\n\n", argv[a]);
            usage(stderr);
            return HV_EXIT_USAGE;
        }
    }
    if (a >= argc) {
        usage(stderr);
        return HV_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[a], commands[i].name)) return commands[i].fn(argc - a, argv + a);
    fprintf(stderr, "healthivert: unknown command '%s'; `healthivert --help` lists them\n", argv[a]);
    return HV_EXIT_USAGE;
}
