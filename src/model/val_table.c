/*
 * val_table.c: hv__val_table_read (val_table.h), the reader of both
 * trainings' val.csv. The table is small (one row per validation), so it is
 * read whole (at most 64 MiB) and split into lines; the rows past a resume's
 * checkpoint step are dropped, so the rows a resumed run computes again are
 * not there twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "val_table.h"

hv_status hv__val_table_read(const char *path, const char *header, const char *what, size_t size,
                             hv__val_row_parse parse, int64_t max_step, void **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return HV_OK;
        return hv_error_set(HV_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char *text = NULL;
    hv_status st = hv_file_read_all(path, "validation table", 64u << 20, &text, NULL);
    if (st != HV_OK) return st;
    size_t cap = 16, cnt = 0;
    char *r = malloc(cap * size), *x = malloc(size);
    if (!r || !x) {
        st = hv_error_set(HV_ERR_NOMEM, "validation table: out of memory");
        goto done;
    }
    int line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (++line == 1) {
            /* a table written before columns were appended to the header
             * is read too: its header a prefix ending at a comma */
            const size_t hl = strlen(l);
            if (strcmp(l, header) && !(hl > 0 && !strncmp(l, header, hl) && header[hl] == ',')) {
                st = hv_error_set(HV_ERR_FORMAT, "%s:1: not a %s (header '%.80s')", path, what, l);
                break;
            }
            continue;
        }
        memset(x, 0, size);
        int64_t step = 0;
        if (!parse(l, x, &step)) {
            st = hv_error_set(HV_ERR_FORMAT, "%s:%d: malformed row '%.80s'", path, line, l);
            break;
        }
        if (step > max_step) continue;
        if (cnt == cap) {
            char *nr = realloc(r, 2 * cap * size);
            if (!nr) {
                st = hv_error_set(HV_ERR_NOMEM, "validation table: out of memory");
                break;
            }
            r = nr;
            cap *= 2;
        }
        memcpy(r + cnt++ * size, x, size);
    }
done:
    free(text);
    free(x);
    if (st != HV_OK) {
        free(r);
        return st;
    }
    *rows = r;
    *n = cnt;
    return HV_OK;
}
