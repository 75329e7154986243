/*
 * val_table.h: the one reader of a training's val.csv, shared by the GAN's
 * (train_report.c) and the classifier's (cls_report.c) tables: what differs
 * (the header, the row's fields) is the caller's; the file handling, the
 * cut at a resume's step and the refusals are here, so both tables are
 * read back and refused alike. Internal to src/model.
 */
#ifndef HV_VAL_TABLE_H
#define HV_VAL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "hv/core.h"

/* One data line into row (zeroed, `size` bytes): 1 and *step set, or 0
 * when the line is malformed. */
typedef int (*hv__val_row_parse)(const char *line, void *row, int64_t *step);

/* The rows of the table at path whose step is <= max_step, in file order,
 * into *rows (*n of them, `size` bytes each; a new array owned by the
 * caller, free(); not NULL on success). A missing file: no rows, HV_OK.
 * The first line must be `header` exactly, else HV_ERR_FORMAT
 * "path:1: not a <what> (header '...')"; a line parse refuses is
 * HV_ERR_FORMAT "path:N: malformed row '...'". */
hv_status hv__val_table_read(const char *path, const char *header, const char *what, size_t size,
                             hv__val_row_parse parse, int64_t max_step, void **rows, size_t *n);

#endif /* HV_VAL_TABLE_H */
