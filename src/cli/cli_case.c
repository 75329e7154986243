/*
 * cli_case.c: what the one-case commands (`straighten`, `attention`) check
 * before they read or write anything: the case id, from --id or the --ct
 * file name, must be a plain file name (it names files in --out), and
 * every input must be a regular file (a FIFO would block).
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hv/core.h"

/* Case id from a path: the file name without .nii/.nii.gz and a trailing _ct. */
static char *case_id_from(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *id = hv_strdup(b);
    if (!id) return NULL;
    size_t n = strlen(id);
    if (n > 7 && !strcmp(id + n - 7, ".nii.gz")) id[n -= 7] = '\0';
    else if (n > 4 && !strcmp(id + n - 4, ".nii")) id[n -= 4] = '\0';
    if (n > 3 && !strcmp(id + n - 3, "_ct")) id[n - 3] = '\0';
    return id;
}

hv_status hv_cli_case_id(const char *id_opt, const char *ct_path, char **out)
{
    *out = NULL;
    char *id = id_opt ? hv_strdup(id_opt) : case_id_from(ct_path);
    if (!id) return hv_error_set(HV_ERR_NOMEM, "paths");
    hv_status st =
        hv_file_name_check(id, id_opt ? "--id" : "case id (from the --ct file name; use --id)");
    if (st) {
        free(id);
        return st;
    }
    *out = id;
    return HV_OK;
}

hv_status hv_cli_case_inputs(const char *ct_path, const char *mask_path, const char *model_path,
                             const char *ctd_path)
{
    hv_status st;
    if ((st = hv_file_check_regular(ct_path, "--ct")) ||
        (st = hv_file_check_regular(mask_path, "--mask")) ||
        (model_path && (st = hv_file_check_regular(model_path, "--model"))) ||
        (ctd_path && (st = hv_file_check_regular(ctd_path, "--centroids"))))
        return st;
    return HV_OK;
}
