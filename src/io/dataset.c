/*
 * dataset.c: turning a dataset folder into a sorted case manifest.
 *
 * Four layouts are understood: the reference's (<root>/raw/<id>/<id>.nii.gz +
 * <id>_msk.nii.gz); VerSe's as published (rawdata/ + derivatives/, one case
 * per series: VerSe 2019's subject-based release); VerSe 2020's release, whose
 * root holds one such rawdata/ + derivatives/ tree per part (dataset-01training,
 * dataset-02validation, dataset-03test, or the dataset-verse20training, ...
 * of the complete download: every subfolder with a rawdata/ is scanned); and
 * CTSpine1K's (volumes/<subset>/<stem>.nii.gz + labels/<subset>/<stem>_seg.nii.gz,
 * under rawdata/ as the Hugging Face copy has it, or at the root; subsets
 * COLONOG, HNSCC-3DCT-RT, MSD-T10, COVID-19; no centroid files). Discovery never fails because of one bad case: a missing or
 * unreadable file is recorded on that case, so a 100,000-case run reports
 * its bad inputs instead of stopping at the first. The manifest is sorted by
 * id so every rank and every re-run sees the same case order.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/io.h"

typedef struct {
    hv_case *v;
    size_t n, cap;
} case_list;

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void case_clear(hv_case *c)
{
    free(c->id);
    free(c->ct_path);
    free(c->mask_path);
    free(c->centroid_path);
    free(c->problem);
    memset(c, 0, sizeof *c);
}

void hv_io_manifest_free(hv_manifest *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) case_clear(&m->cases[i]);
    free(m->cases);
    free(m);
}

static hv_case *list_push(case_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        hv_case *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) return NULL;
        l->v = nv;
        l->cap = cap;
    }
    hv_case *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    return c;
}

/* First existing file among dir/<stem><suffix> for the given suffixes. */
static char *find_file(const char *dir, const char *stem, const char *const *suffixes)
{
    for (const char *const *s = suffixes; *s; s++) {
        char *p = hv_strfmt("%s/%s%s", dir, stem, *s);
        if (p && is_file(p)) return p;
        free(p);
    }
    return NULL;
}

/* Mark a case bad, keeping the first problem. */
static void set_problem(hv_case *c, hv_status st, const char *msg)
{
    if (c->status != HV_OK) return;
    c->status = st;
    c->problem = hv_strdup(msg);
}

static void check_file(hv_case *c, const char *what, const char *path,
                       const hv_nifti_opts *check_opts)
{
    char msg[1024];
    if (!path) return;
    if (access(path, R_OK) != 0) {
        snprintf(msg, sizeof msg, "%s '%s' is not readable: %s", what, path, strerror(errno));
        set_problem(c, HV_ERR_IO, msg);
        return;
    }
    if (check_opts) {
        hv_status st = hv_io_nifti_check(path, check_opts, NULL);
        if (st != HV_OK) {
            snprintf(msg, sizeof msg, "%s: %s", what, hv_error_detail());
            set_problem(c, st, msg);
        }
    }
}

static hv_status finish_case(hv_case *c, const char *dir, const hv_nifti_opts *check_opts)
{
    char msg[1024];
    if (!c->id) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    /* Output files are named after the id: one plain file name only (a
     * folder name with a control character is a bad case with its reason). */
    if (hv_file_name_check(c->id, "case id") != HV_OK) {
        snprintf(msg, sizeof msg, "%s", hv_error_detail());
        hv_error_clear();
        set_problem(c, HV_ERR_ARG, msg);
    }
    if (!c->ct_path) {
        snprintf(msg, sizeof msg, "no CT volume found in '%s'", dir);
        set_problem(c, HV_ERR_NOT_FOUND, msg);
    }
    if (!c->mask_path) {
        snprintf(msg, sizeof msg, "no vertebra mask found in '%s'", dir);
        set_problem(c, HV_ERR_NOT_FOUND, msg);
    }
    check_file(c, "CT", c->ct_path, check_opts);
    check_file(c, "mask", c->mask_path, check_opts);
    return HV_OK;
}

static hv_status scan_reference(const char *base, case_list *l, const hv_nifti_opts *check_opts)
{
    static const char *const ct_sfx[] = {".nii.gz", ".nii", NULL};
    static const char *const msk_sfx[] = {"_msk.nii.gz", "_msk.nii", "_seg.nii.gz", "_seg.nii", NULL};
    static const char *const ctd_sfx[] = {".json", NULL};
    DIR *d = opendir(base);
    if (!d) return hv_error_set(HV_ERR_IO, "cannot read dataset folder '%s': %s", base, strerror(errno));
    hv_status st = HV_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *dir = hv_strfmt("%s/%s", base, e->d_name);
        if (!dir) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            break;
        }
        if (!is_dir(dir)) {
            free(dir);
            continue;
        }
        hv_case *c = list_push(l);
        if (!c) {
            free(dir);
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            break;
        }
        c->id = hv_strdup(e->d_name);
        c->ct_path = find_file(dir, e->d_name, ct_sfx);
        c->mask_path = find_file(dir, e->d_name, msk_sfx);
        c->centroid_path = find_file(dir, e->d_name, ctd_sfx);
        st = finish_case(c, dir, check_opts);
        free(dir);
        if (st != HV_OK) break;
    }
    closedir(d);
    return st;
}

/* VerSe: rawdata/<sub>/<stem>_ct.nii.gz, stem = <sub> or <sub>_seriesN. */
static hv_status scan_verse(const char *root, case_list *l, const hv_nifti_opts *check_opts)
{
    char *raw = hv_strfmt("%s/rawdata", root);
    if (!raw) return hv_error_set(HV_ERR_NOMEM, "out of memory");
    DIR *d = opendir(raw);
    hv_status st = HV_OK;
    if (!d) {
        st = hv_error_set(HV_ERR_IO, "cannot read '%s': %s", raw, strerror(errno));
        free(raw);
        return st;
    }
    struct dirent *e;
    while (st == HV_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *sub = hv_strfmt("%s/%s", raw, e->d_name);
        DIR *sd = sub && is_dir(sub) ? opendir(sub) : NULL;
        if (!sd) {
            free(sub);
            continue;
        }
        struct dirent *f;
        while ((f = readdir(sd))) {
            const char *name = f->d_name;
            size_t n = strlen(name);
            size_t sl = 0;
            if (n > 10 && !strcmp(name + n - 10, "_ct.nii.gz"))
                sl = 10;
            else if (n > 7 && !strcmp(name + n - 7, "_ct.nii"))
                sl = 7;
            if (!sl) continue;
            hv_case *c = list_push(l);
            if (!c) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            c->id = strndup(name, n - sl);
            c->ct_path = hv_strfmt("%s/%s", sub, name);
            char *der = hv_strfmt("%s/derivatives/%s", root, e->d_name);
            if (c->id && der) {
                static const char *const msk_sfx[] = {"_seg-vert_msk.nii.gz", "_seg-vert_msk.nii", NULL};
                static const char *const ctd_sfx[] = {"_seg-subreg_ctd.json", NULL};
                c->mask_path = find_file(der, c->id, msk_sfx);
                c->centroid_path = find_file(der, c->id, ctd_sfx);
            }
            st = finish_case(c, der ? der : sub, check_opts);
            free(der);
            if (st != HV_OK) break;
        }
        closedir(sd);
        free(sub);
    }
    closedir(d);
    free(raw);
    return st;
}

/* CTSpine1K: <vol>/<subset>/<stem>.nii.gz with <lab>/<subset>/<stem>_seg.nii.gz
 * (a file name ending in _seg is a label, never a case). */
static hv_status scan_ctspine(const char *vol, const char *lab, case_list *l,
                              const hv_nifti_opts *check_opts)
{
    DIR *d = opendir(vol);
    if (!d) return hv_error_set(HV_ERR_IO, "cannot read '%s': %s", vol, strerror(errno));
    hv_status st = HV_OK;
    struct dirent *e;
    while (st == HV_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *sub = hv_strfmt("%s/%s", vol, e->d_name);
        char *lsub = hv_strfmt("%s/%s", lab, e->d_name);
        DIR *sd = sub && lsub && is_dir(sub) ? opendir(sub) : NULL;
        if (!sd) {
            free(sub);
            free(lsub);
            if (!sub || !lsub) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            continue;
        }
        struct dirent *f;
        while ((f = readdir(sd))) {
            const char *name = f->d_name;
            size_t n = strlen(name), sl = 0;
            if (n > 7 && !strcmp(name + n - 7, ".nii.gz")) sl = 7;
            else if (n > 4 && !strcmp(name + n - 4, ".nii")) sl = 4;
            if (!sl || name[0] == '.') continue;
            if (n - sl >= 4 && !strncmp(name + n - sl - 4, "_seg", 4)) continue;
            hv_case *c = list_push(l);
            if (!c) {
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            c->id = strndup(name, n - sl);
            c->ct_path = hv_strfmt("%s/%s", sub, name);
            if (c->id) {
                static const char *const msk_sfx[] = {"_seg.nii.gz", "_seg.nii", NULL};
                c->mask_path = find_file(lsub, c->id, msk_sfx);
            }
            st = finish_case(c, lsub, check_opts);
            if (st != HV_OK) break;
        }
        closedir(sd);
        free(sub);
        free(lsub);
    }
    closedir(d);
    return st;
}

/* VerSe 2020: every subfolder of root holding a rawdata/ is one part of the
 * release (training, validation, test), scanned as VerSe. *n_parts counts
 * them (0: not this layout). */
static hv_status scan_verse_parts(const char *root, case_list *l, const hv_nifti_opts *check_opts,
                                  int *n_parts)
{
    *n_parts = 0;
    DIR *d = opendir(root);
    if (!d) return hv_error_set(HV_ERR_IO, "cannot read dataset folder '%s': %s", root, strerror(errno));
    hv_status st = HV_OK;
    struct dirent *e;
    /* sorted part names, so the scan order (and a first problem) is stable */
    char *names[64];
    int nn = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *rd = hv_strfmt("%s/%s/rawdata", root, e->d_name);
        if (!rd) {
            st = hv_error_set(HV_ERR_NOMEM, "out of memory");
            break;
        }
        if (is_dir(rd)) {
            if (nn == 64) {
                free(rd);
                st = hv_error_set(HV_ERR_ARG, "'%s': more than 64 parts with a rawdata/ folder", root);
                break;
            }
            if (!(names[nn] = hv_strfmt("%s/%s", root, e->d_name))) {
                free(rd);
                st = hv_error_set(HV_ERR_NOMEM, "out of memory");
                break;
            }
            nn++;
        }
        free(rd);
    }
    closedir(d);
    for (int a = 1; a < nn; a++)
        for (int b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            char *t = names[b];
            names[b] = names[b - 1];
            names[b - 1] = t;
        }
    for (int i = 0; i < nn; i++) {
        if (st == HV_OK) st = scan_verse(names[i], l, check_opts);
        free(names[i]);
    }
    *n_parts = nn;
    return st;
}

static int cmp_case(const void *a, const void *b)
{
    return strcmp(((const hv_case *)a)->id, ((const hv_case *)b)->id);
}

hv_status hv_io_dataset_scan(const char *root, const hv_nifti_opts *check_opts, hv_manifest **out)
{
    *out = NULL;
    case_list l = {0};
    hv_status st = HV_OK;
    hv_manifest *m = NULL;
    char *raw = hv_strfmt("%s/raw", root), *rawdata = hv_strfmt("%s/rawdata", root);
    char *volumes = hv_strfmt("%s/volumes", root), *labels = hv_strfmt("%s/labels", root);
    if (!raw || !rawdata || !volumes || !labels) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!is_dir(root)) {
        st = hv_error_set(HV_ERR_NOT_FOUND, "dataset folder '%s' does not exist or is not a folder", root);
        goto done;
    }
    int parts = 0;
    if (is_dir(raw)) {
        st = scan_reference(raw, &l, check_opts);
    } else if (is_dir(rawdata) || is_dir(volumes)) {
        /* CTSpine1K under rawdata/ (volumes/ + labels/), else VerSe 2019 */
        char *v = hv_strfmt("%s/volumes", rawdata), *lb = hv_strfmt("%s/labels", rawdata);
        if (!v || !lb) st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        else if (is_dir(v)) st = scan_ctspine(v, lb, &l, check_opts);
        else if (is_dir(volumes)) st = scan_ctspine(volumes, labels, &l, check_opts);
        else st = scan_verse(root, &l, check_opts);
        free(v);
        free(lb);
    } else {
        st = scan_verse_parts(root, &l, check_opts, &parts);
        if (st == HV_OK && parts == 0) st = scan_reference(root, &l, check_opts);
    }
    if (st != HV_OK) goto done;
    /* the same id twice (a series in two parts, a stem in two subsets):
     * output files are named after the id, so the later ones are bad cases */
    if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, cmp_case);
    for (size_t i = 1; i < l.n; i++)
        if (!strcmp(l.v[i - 1].id, l.v[i].id)) {
            char msg[1024];
            snprintf(msg, sizeof msg, "case id '%s' is found twice in the dataset (CT '%s' and '%s')",
                     l.v[i].id, l.v[i - 1].ct_path ? l.v[i - 1].ct_path : "?",
                     l.v[i].ct_path ? l.v[i].ct_path : "?");
            set_problem(&l.v[i], HV_ERR_ARG, msg);
        }
    if (l.n == 0) {
        st = hv_error_set(HV_ERR_EMPTY,
                          "no cases in '%s' (expected raw/<id>/<id>.nii.gz + <id>_msk.nii.gz, "
                          "VerSe's rawdata/ and derivatives/ (VerSe 2020: one such pair per part "
                          "folder), or CTSpine1K's volumes/ and labels/)", root);
        goto done;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        st = hv_error_set(HV_ERR_NOMEM, "out of memory");
        goto done;
    }
    m->n = l.n;
    m->cases = l.v;
    for (size_t i = 0; i < l.n; i++) m->n_bad += l.v[i].status != HV_OK;
    l.v = NULL;
    l.n = 0;
    *out = m;
done:
    for (size_t i = 0; i < l.n; i++) case_clear(&l.v[i]);
    free(l.v);
    free(raw);
    free(rawdata);
    free(volumes);
    free(labels);
    return st;
}
