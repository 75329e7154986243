/*
 * replay_main.c: runs a fuzz target's LLVMFuzzerTestOneInput on files,
 * without libFuzzer.
 *
 *   fuzz_<target>_replay PATH...    (a PATH is a file or a folder of files)
 *
 * Why: the committed regression inputs (tests/fuzz/regress/<target>/, one
 * per bug the fuzzers found) and the seed corpus must be replayed in every
 * build, including the gcc ASan+UBSan build of scripts/test.sh, which has no
 * libFuzzer. Each file's name is printed before it runs, so a sanitizer
 * report or abort is attributed to its input. Missing folders are skipped
 * (a target may have no regression inputs yet); files in a folder run in
 * name order so failures reproduce.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static long n_run;

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) HV_FUZZ_FAIL("out of memory");
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    fclose(f);
    printf("# %s (%zu bytes)\n", path, n);
    fflush(stdout);
    /* An exact-size copy, so ASan sees reads past the input's end. */
    unsigned char *exact = malloc(n ? n : 1);
    if (!exact) HV_FUZZ_FAIL("out of memory");
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    n_run++;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        printf("# %s: absent, skipped\n", path);
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: cannot list %s: %s\n", path, strerror(errno));
        exit(1);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) HV_FUZZ_FAIL("out of memory");
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (!names[n]) HV_FUZZ_FAIL("out of memory");
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) run_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("# replayed %ld inputs: no crash, no sanitizer report, no broken invariant\n", n_run);
    return 0;
}
