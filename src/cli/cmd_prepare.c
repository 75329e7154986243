/*
 * cmd_prepare.c: `healthivert prepare CONFIG.ini [--set section.key=value]...`
 *
 * The GAN's training set (issue 11; docs/model.md): `healthivert run` with
 * prepare.enabled = 1, i.e. the same config file, MPI ranks, work queue,
 * journal and resume, plus one pipeline stage that writes every cropped
 * vertebra of a case into <output.dir>/prepare/<case>.h5, and a merge of
 * those parts by rank 0 into prepare.output at the end. The body is
 * cmd_run.c's; only the help differs.
 */
#include <stdio.h>

#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: healthivert prepare CONFIG.ini [--set section.key=value]... [--fresh]\n"
            "       mpirun -n R healthivert prepare CONFIG.ini ...\n"
            "\n"
            "Writes the training set of the HealthiVert GAN: every vertebra of every case\n"
            "is straightened and cropped (64 LR x 256 AP x 256 rows, as `run` crops it),\n"
            "and its windowed CT (u8), de-pedicled labels, known grade, the case's split\n"
            "(train/val/test, or none) and the grades of all the case's vertebrae go into\n"
            "one HDF5 file, one compressed chunk per vertebra (docs/model.md, 'Training set\n"
            "file'). `healthivert train` reads it.\n"
            "\n"
            "It is `healthivert run` with prepare.enabled = 1: the same CONFIG.ini (every\n"
            "run key applies; see `--keys`), the same cases, the same store.h5 and output\n"
            "folder, plus one stage 'prepare' per case and, at the end, the training file:\n"
            "  <output.dir>/prepare/<case>.h5  one part per case (written atomically)\n"
            "  prepare.output                  all parts merged, items sorted by case and\n"
            "                                  label (default <output.dir>/train.h5); the\n"
            "                                  same file for any number of ranks\n"
            "[prepare] keys:\n"
            "  prepare.output    the training file (empty: <output.dir>/train.h5)\n"
            "  prepare.skip_fov  1 (default): a vertebra touching the volume border is not\n"
            "                    a training target\n"
            "Grades and split: input.split, a manifest's grades, or for a phantom cohort its\n"
            "true grades (its split.json). Which grades count as healthy is the trainer's\n"
            "choice (the file keeps every grade). A vertebra without a crop or cut by the\n"
            "field of view is skipped and recorded with its reason in the file\n"
            "(/skipped_case, /skipped_label, /skipped_reason) and the log.\n"
            "\n"
            "  --set section.key=value   override one config key (repeatable)\n"
            "  --fresh                   discard an earlier attempt's journal\n"
            "  --keys                    list every config key with its default and meaning\n"
            "\n"
            "Resuming: running the same command again skips finished cases (their parts\n"
            "are kept); SIGTERM/SIGUSR1 stop after the cases in hand (exit 75); after\n"
            "SIGKILL a re-run redoes at most the cases in flight and the merge.\n"
            "A folder that a plain `run` wrote cannot be resumed by `prepare` (the stage\n"
            "set differs): use another output.dir or --fresh.\n"
            "\n"
            "Exit status: 0 all cases done; 3 done but some cases failed; 75 stopped early,\n"
            "resumable; 1 error; 2 usage.\n"
            "\n"
            "Examples:\n"
            "  healthivert prepare configs/prepare-phantom.ini\n"
            "  mpirun -n 2 healthivert prepare configs/verse19.ini --set output.dir=runs/v19-train\n");
}

int hv_cmd_prepare(int argc, char **argv)
{
    return hv_cli_run_like(argc, argv, "prepare", usage, 1);
}
