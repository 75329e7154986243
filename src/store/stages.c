/*
 * stages.c: per-stage seconds by name.
 *
 * Schema v1 kept a fixed array seconds[6] in every case row, labelled by
 * position: a stage added to the pipeline would have shifted every label
 * after it, in the store, the CSV export and the log alike, with nothing in
 * the file to tell. Schema v2 keeps the seconds in a table of their own,
 * /cases/seconds (float64[N][n_stages]), and the names of its columns beside
 * it, /cases/stage_names, so that the file says what each column is and
 * every reader labels it from there. The names are a dataset, not an
 * attribute, so that the list reads like any other table (h5dump -d, h5py)
 * and is written once, at creation, with the rest of the layout.
 *
 * A v1 store is still read: its seconds come out of the case rows' array
 * (HDF5 converts the compound member by name) under the six names that
 * schema had. Names are restricted to letters, digits and '_' because they
 * become CSV column names (s_<name>) and the journal's layout record lists
 * them separated by commas.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

const char *const hv_store_v1_stage_names[HV_STORE_V1_STAGES] = {
    "load", "measure", "synthesis", "grade", "images", "journal"};

static int name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

hv_status hv_store_check_stages(int n, const char *const *names)
{
    if (n < 1 || n > HV_STORE_MAX_STAGES)
        return hv_error_set(HV_ERR_ARG, "stage list: %d stages (1 to %d)", n, HV_STORE_MAX_STAGES);
    if (!names) return hv_error_set(HV_ERR_ARG, "stage list: no names");
    for (int k = 0; k < n; k++) {
        const char *s = names[k];
        if (!s || !*s) return hv_error_set(HV_ERR_ARG, "stage list: stage %d has no name", k);
        size_t len = strnlen(s, HV_STORE_STAGE_NAME_MAX);
        if (len >= HV_STORE_STAGE_NAME_MAX)
            return hv_error_set(HV_ERR_ARG, "stage list: the name of stage %d is longer than %d "
                                "characters", k, HV_STORE_STAGE_NAME_MAX - 1);
        for (size_t i = 0; i < len; i++)
            if (!name_char_ok(s[i]))
                return hv_error_set(HV_ERR_ARG, "stage list: stage name '%s' (letters, digits "
                                    "and '_' only)", s);
        for (int j = 0; j < k; j++)
            if (!strcmp(names[j], s))
                return hv_error_set(HV_ERR_ARG, "stage list: stage '%s' named twice", s);
    }
    return HV_OK;
}

void hv_store_set_stages(hv_store *s, int n, const char *const *names)
{
    memset(s->stage_buf, 0, sizeof s->stage_buf);
    s->n_stages = n;
    for (int k = 0; k < n; k++) {
        snprintf(s->stage_buf[k], sizeof s->stage_buf[k], "%s", names[k]);
        s->stage_ptr[k] = s->stage_buf[k];
    }
}

hid_t hv_store_stage_name_type(void)
{
    return hv_h5_str_type(HV_STORE_STAGE_NAME_MAX);
}

hv_status hv_store_load_stages(hv_store *s)
{
    hv_status st = HV_OK;
    hid_t d = -1, sp = -1, ft = -1, mt = -1;
    char buf[HV_STORE_MAX_STAGES][HV_STORE_STAGE_NAME_MAX];
    const char *ptr[HV_STORE_MAX_STAGES];
    memset(buf, 0, sizeof buf);
    d = H5Dopen2(s->file, "cases/stage_names", H5P_DEFAULT);
    H5CHK(d, "store: no /cases/stage_names");
    sp = H5Dget_space(d);
    ft = H5Dget_type(d);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &n, NULL) < 0 ||
        n < 1 || n > HV_STORE_MAX_STAGES) {
        st = hv_error_set(HV_ERR_FORMAT, "store: /cases/stage_names is not a list of 1 to %d names",
                          HV_STORE_MAX_STAGES);
        goto done;
    }
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0) {
        st = hv_error_set(HV_ERR_FORMAT, "store: /cases/stage_names is not fixed-length strings");
        goto done;
    }
    mt = hv_store_stage_name_type();
    H5CHK(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "store: cannot read /cases/stage_names");
    for (hsize_t k = 0; k < n; k++) {
        buf[k][HV_STORE_STAGE_NAME_MAX - 1] = 0;
        ptr[k] = buf[k];
    }
    st = hv_store_check_stages((int)n, ptr);
    if (st != HV_OK) {
        st = hv_error_wrap(HV_ERR_FORMAT, "store: /cases/stage_names");
        goto done;
    }
    hv_store_set_stages(s, (int)n, ptr);
done:
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return st;
}

int hv_store_version(const hv_store *s) { return s->version; }

void hv_store_stage_names(const hv_store *s, int *n, const char *const **names)
{
    *n = s->n_stages;
    *names = s->stage_ptr;
}

hv_status hv_store_read_seconds(hv_store *s, double *sec)
{
    hv_status st = HV_OK;
    hid_t mt = -1, arr = -1, sp = -1;
    if (s->n_cases <= 0) return HV_OK;
    if (s->version == 1) {
        /* the `seconds` member of the case rows, converted by name */
        hsize_t ns = HV_STORE_V1_STAGES;
        arr = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &ns);
        mt = H5Tcreate(H5T_COMPOUND, HV_STORE_V1_STAGES * sizeof(double));
        H5CHK(H5Tinsert(mt, "seconds", 0, arr), "store: seconds type");
        H5CHK(H5Dread(s->cases, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, sec),
              "store: cannot read the seconds of /cases/table (schema v1)");
        goto done;
    }
    sp = H5Dget_space(s->seconds);
    hsize_t dims[2] = {0, 0};
    if (H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
        dims[0] != (hsize_t)s->n_cases || dims[1] != (hsize_t)s->n_stages) {
        st = hv_error_set(HV_ERR_FORMAT, "store: /cases/seconds is not %ld x %d (cases x stages)",
                          s->n_cases, s->n_stages);
        goto done;
    }
    H5CHK(H5Dread(s->seconds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sec),
          "store: cannot read /cases/seconds");
done:
    if (sp >= 0) H5Sclose(sp);
    if (mt >= 0) H5Tclose(mt);
    if (arr >= 0) H5Tclose(arr);
    return st;
}
