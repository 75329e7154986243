/*
 * json.c: VerSe centroid files and HealthiVert split files, with cJSON.
 *
 * Both formats come from outside (VerSe downloads, the reference repo,
 * hand-edited splits), so every field is type-checked and every problem is
 * reported with the file name and the offending entry. Files are read whole
 * (they are small) with a size cap through hv_file_read_all (so a directory or
 * FIFO is refused by name, never read or waited on), and written through a temporary file that
 * is renamed into place.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/io.h"

#define HV_JSON_MAX_BYTES (64u << 20)

/* The whole file, through the core helper: a directory, FIFO or missing
 * path is named as such (a FIFO never blocks), a file over the cap is
 * HV_ERR_LIMIT. */
static hv_status read_text(const char *path, char **out)
{
    return hv_file_read_all(path, "JSON file", HV_JSON_MAX_BYTES, out, NULL);
}

static hv_status parse(const char *path, const char *text, cJSON **out)
{
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(text, &end, 1);
    if (*out) return HV_OK;
    /* Report the line and column where parsing stopped. */
    const char *at = end ? end : cJSON_GetErrorPtr();
    int line = 1, col = 1;
    if (at)
        for (const char *p = text; p < at && *p; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    return hv_error_set(HV_ERR_FORMAT, "%s: malformed JSON near line %d, column %d", path, line, col);
}

/* Write `text` to path via a temporary file + rename, so readers never see
 * half a file. */
static hv_status write_text(const char *path, const char *text)
{
    hv_atomic_file *a;
    FILE *f;
    hv_status st = hv_atomic_open(path, &a, &f);
    if (st != HV_OK) return st;
    fputs(text, f);
    fputc('\n', f);
    return hv_atomic_commit(a, 0);
}

/* ------------------------------------------------------------- centroids */

static int cmp_centroid(const void *a, const void *b)
{
    const hv_centroid *x = a, *y = b;
    return (x->label > y->label) - (x->label < y->label);
}

static hv_status get_coord(const char *path, const cJSON *item, const char *key, int label,
                           double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return hv_error_set(HV_ERR_FORMAT, "%s: centroid of label %d: \"%s\" is %s", path, label,
                            key, v ? "not a finite number" : "missing");
    *out = v->valuedouble;
    return HV_OK;
}

hv_status hv_io_centroids_read(const char *path, hv_centroids **out)
{
    *out = NULL;
    char *text = NULL;
    cJSON *root = NULL;
    hv_centroids *c = NULL;
    hv_status st = read_text(path, &text);
    if (st != HV_OK) goto done;
    if ((st = parse(path, text, &root)) != HV_OK) goto done;
    if (!cJSON_IsArray(root)) {
        st = hv_error_set(HV_ERR_FORMAT, "%s: expected a JSON list of centroids", path);
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    c = calloc(1, sizeof *c);
    if (!c || !(c->items = calloc((size_t)(n > 0 ? n : 1), sizeof *c->items))) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    const cJSON *item;
    int idx = 0;
    cJSON_ArrayForEach(item, root)
    {
        idx++;
        if (!cJSON_IsObject(item)) continue; /* the reference skips non-objects */
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(item, "direction");
        if (dir) {
            if (!cJSON_IsArray(dir) || cJSON_GetArraySize(dir) != 3) {
                st = hv_error_set(HV_ERR_FORMAT, "%s: \"direction\" must be a list of 3 axis codes", path);
                goto done;
            }
            for (int a = 0; a < 3; a++) {
                const cJSON *d = cJSON_GetArrayItem(dir, a);
                const char *valid = "RLAPSI";
                if (!cJSON_IsString(d) || strlen(d->valuestring) != 1 ||
                    !strchr(valid, d->valuestring[0])) {
                    st = hv_error_set(HV_ERR_FORMAT,
                                      "%s: \"direction\" entry %d is not one of R,L,A,P,S,I", path, a);
                    goto done;
                }
                c->direction[a] = d->valuestring[0];
            }
            c->direction[3] = '\0';
            continue;
        }
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(item, "label");
        int has_xyz = cJSON_GetObjectItemCaseSensitive(item, "X") ||
                      cJSON_GetObjectItemCaseSensitive(item, "Y") ||
                      cJSON_GetObjectItemCaseSensitive(item, "Z");
        /* Objects with none of label/X/Y/Z (notes) and the reference's
         * "label": null (a dropped entry) are skipped; a centroid entry that
         * lacks any of the four keys is an error, never silently dropped. */
        if ((!lab && !has_xyz) || cJSON_IsNull(lab)) continue;
        if (!lab) {
            st = hv_error_set(HV_ERR_FORMAT, "%s: entry %d: a centroid without \"label\"", path,
                              idx);
            goto done;
        }
        /* Range before the cast: (int) of 1e10 or 1e999 is undefined (fuzz_centroids). */
        if (!cJSON_IsNumber(lab) || !isfinite(lab->valuedouble) ||
            lab->valuedouble != floor(lab->valuedouble)) {
            st = hv_error_set(HV_ERR_FORMAT, "%s: entry %d: \"label\" is not an integer", path, idx);
            goto done;
        }
        if (lab->valuedouble < 1 || lab->valuedouble > 28) {
            st = hv_error_set(HV_ERR_FORMAT,
                              "%s: entry %d: label %g is not a VerSe vertebra label (1..28)", path,
                              idx, lab->valuedouble);
            goto done;
        }
        int label = (int)lab->valuedouble;
        for (size_t k = 0; k < c->n; k++)
            if (c->items[k].label == label) {
                st = hv_error_set(HV_ERR_FORMAT, "%s: label %d appears twice", path, label);
                goto done;
            }
        hv_centroid *ct = &c->items[c->n];
        ct->label = label;
        if ((st = get_coord(path, item, "X", label, &ct->x)) != HV_OK ||
            (st = get_coord(path, item, "Y", label, &ct->y)) != HV_OK ||
            (st = get_coord(path, item, "Z", label, &ct->z)) != HV_OK)
            goto done;
        c->n++;
    }
    if (c->n == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "%s: no vertebra centroids in the file", path);
        goto done;
    }
    qsort(c->items, c->n, sizeof *c->items, cmp_centroid);
    *out = c;
    c = NULL;
done:
    hv_io_centroids_free(c);
    cJSON_Delete(root);
    free(text);
    return st;
}

/* A coordinate rounded to 0.1 um for the file; one so large that scaling it
 * would overflow (|v| > 1.8e304) is written as it is, not as null (found by
 * fuzz_centroids; tests/fuzz/regress/centroids). */
static double round4(double v)
{
    double s = v * 1e4;
    return isfinite(s) ? round(s) / 1e4 : v;
}

hv_status hv_io_centroids_write(const char *path, const hv_centroids *c)
{
    hv_status st = HV_OK;
    char *text = NULL;
    cJSON *root = cJSON_CreateArray();
    if (!root) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    if (c->direction[0]) {
        cJSON *d = cJSON_CreateObject();
        const char *codes[3] = {(char[2]){c->direction[0], 0}, (char[2]){c->direction[1], 0},
                                (char[2]){c->direction[2], 0}};
        cJSON *arr = cJSON_CreateStringArray(codes, 3);
        if (!d || !arr) {
            cJSON_Delete(d);
            cJSON_Delete(arr);
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
        cJSON_AddItemToObject(d, "direction", arr);
        cJSON_AddItemToArray(root, d);
    }
    for (size_t i = 0; i < c->n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
        cJSON_AddItemToArray(root, o);
        /* Round to 1e-4 voxel, like VerSe files, so output is stable text. */
        if (!cJSON_AddNumberToObject(o, "label", c->items[i].label) ||
            !cJSON_AddNumberToObject(o, "X", round4(c->items[i].x)) ||
            !cJSON_AddNumberToObject(o, "Y", round4(c->items[i].y)) ||
            !cJSON_AddNumberToObject(o, "Z", round4(c->items[i].z))) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    text = cJSON_Print(root);
    if (!text) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = write_text(path, text);
done:
    free(text);
    cJSON_Delete(root);
    return st;
}

void hv_io_centroids_free(hv_centroids *c)
{
    if (!c) return;
    free(c->items);
    free(c);
}

/* ------------------------------------------------------------ split file */

static const char *const set_names[HV_SPLIT_COUNT] = {"train", "val", "test"};

const char *hv_split_set_name(hv_split_set s)
{
    return (s >= 0 && s < HV_SPLIT_COUNT) ? set_names[s] : "?";
}

void hv_io_split_free(hv_split *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->items[i].case_id);
    free(s->items);
    free(s);
}

long hv_io_split_find(const hv_split *s, const char *case_id, int label)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].label == label && !strcmp(s->items[i].case_id, case_id)) return (long)i;
    return -1;
}

hv_status hv_io_split_read(const char *path, hv_split **out)
{
    *out = NULL;
    char *text = NULL;
    cJSON *root = NULL;
    hv_split *s = NULL;
    hv_status st = read_text(path, &text);
    if (st != HV_OK) goto done;
    if ((st = parse(path, text, &root)) != HV_OK) goto done;
    if (!cJSON_IsObject(root)) {
        st = hv_error_set(HV_ERR_FORMAT,
                          "%s: expected an object {\"train\": {...}, \"val\": {...}, \"test\": {...}}", path);
        goto done;
    }
    size_t total = 0;
    const cJSON *set;
    cJSON_ArrayForEach(set, root) total += (size_t)cJSON_GetArraySize(set);
    s = calloc(1, sizeof *s);
    if (!s || !(s->items = calloc(total ? total : 1, sizeof *s->items))) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    cJSON_ArrayForEach(set, root)
    {
        int which = -1;
        for (int k = 0; k < HV_SPLIT_COUNT; k++)
            if (set->string && !strcmp(set->string, set_names[k])) which = k;
        if (which < 0) {
            st = hv_error_set(HV_ERR_FORMAT, "%s: unknown split \"%s\" (expected train, val or test)",
                              path, set->string ? set->string : "?");
            goto done;
        }
        if (!cJSON_IsObject(set)) {
            st = hv_error_set(HV_ERR_FORMAT, "%s: \"%s\" must map \"<case>_<label>\" to a grade", path,
                              set->string);
            goto done;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, set)
        {
            const char *key = e->string;
            const char *us = key ? strrchr(key, '_') : NULL;
            if (!us || us == key || !us[1]) {
                st = hv_error_set(HV_ERR_FORMAT, "%s: key \"%s\" in \"%s\" is not <case>_<label>", path,
                                  key ? key : "", set->string);
                goto done;
            }
            char *endp = NULL;
            long label = strtol(us + 1, &endp, 10);
            if (*endp || label < 1 || label > 28) {
                st = hv_error_set(HV_ERR_FORMAT, "%s: key \"%s\": \"%s\" is not a VerSe label (1..28)",
                                  path, key, us + 1);
                goto done;
            }
            /* Range before the cast: (int) of 1e10 is undefined (fuzz_split). */
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 3) ||
                e->valuedouble != floor(e->valuedouble)) {
                st = hv_error_set(HV_ERR_FORMAT, "%s: \"%s\": grade must be an integer 0..3", path, key);
                goto done;
            }
            size_t idlen = (size_t)(us - key);
            char *id = malloc(idlen + 1);
            if (!id) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                goto done;
            }
            memcpy(id, key, idlen);
            id[idlen] = '\0';
            if (hv_io_split_find(s, id, (int)label) >= 0) {
                st = hv_error_set(HV_ERR_FORMAT, "%s: \"%s\" appears twice", path, key);
                free(id);
                goto done;
            }
            hv_split_entry *it = &s->items[s->n++];
            it->case_id = id;
            it->label = (int)label;
            it->grade = (int)e->valuedouble;
            it->set = (hv_split_set)which;
        }
    }
    if (s->n == 0) {
        st = hv_error_set(HV_ERR_EMPTY, "%s: the split holds no vertebrae", path);
        goto done;
    }
    *out = s;
    s = NULL;
done:
    hv_io_split_free(s);
    cJSON_Delete(root);
    free(text);
    return st;
}

hv_status hv_io_split_write(const char *path, const hv_split *s)
{
    static const hv_split_set order[3] = {HV_SPLIT_TEST, HV_SPLIT_TRAIN, HV_SPLIT_VAL};
    hv_status st = HV_OK;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    for (int o = 0; o < 3; o++) {
        cJSON *set = cJSON_AddObjectToObject(root, set_names[order[o]]);
        if (!set) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < s->n; i++) {
            const hv_split_entry *e = &s->items[i];
            if (e->set != order[o]) continue;
            /* Allocated: a fixed buffer cut long case ids (found by fuzz_split). */
            char *key = hv_strfmt("%s_%d", e->case_id, e->label);
            if (!key || !cJSON_AddNumberToObject(set, key, e->grade)) {
                free(key);
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                goto done;
            }
            free(key);
        }
    }
    text = cJSON_Print(root);
    if (!text) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = write_text(path, text);
done:
    free(text);
    cJSON_Delete(root);
    return st;
}
