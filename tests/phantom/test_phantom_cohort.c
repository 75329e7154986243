/*
 * test_phantom_cohort.c: the files of a phantom cohort.
 *
 *  - same options -> byte-identical files, with 1 and with 2 threads;
 *    another seed -> different files;
 *  - the files read back through hv/io.h hold what the model renders: CT and
 *    mask arrays, centroids (mask's axis codes, centre of mass per label),
 *    the split (every vertebra with its grade, all cases assigned), and the
 *    ground-truth CSV (header and values);
 *  - hv_io_dataset_scan finds the cases with their centroid files;
 *  - no temporary files are left; an unusable output folder is a clear error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "hv_test.h"
#include "hv/core.h"
#include "hv/io.h"
#include "hv/phantom.h"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *files[] = {"raw/ph0000/ph0000.nii.gz", "raw/ph0000/ph0000_msk.nii.gz", "raw/ph0000/ph0000.json",
                              "raw/ph0001/ph0001.nii.gz", "raw/ph0001/ph0001_msk.nii.gz", "raw/ph0001/ph0001.json",
                              "split.json",               "ground_truth.csv"};
#define NFILES (sizeof files / sizeof files[0])

/* 1 if all files are identical, 0 if any differs; -1 if one is missing. */
static int compare_dirs(const char *a, const char *b, int *n_same)
{
    int all = 1;
    *n_same = 0;
    for (size_t i = 0; i < NFILES; i++) {
        char pa[4096], pb[4096];
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        size_t la = 0, lb = 0;
        unsigned char *da = slurp(pa, &la), *db = slurp(pb, &lb);
        if (!da || !db) {
            free(da);
            free(db);
            return -1;
        }
        int same = la == lb && memcmp(da, db, la) == 0;
        *n_same += same;
        all &= same;
        free(da);
        free(db);
    }
    return all;
}

static int count_tmp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) n += count_tmp_files(p);
        else if (strstr(e->d_name, ".tmp")) n++;
    }
    closedir(d);
    return n;
}

static void check_contents(const hv_phantom_opts *o, const char *dir)
{
    /* the split */
    char path[4096];
    snprintf(path, sizeof path, "%s/split.json", dir);
    hv_split *s = NULL;
    HV_CHECK_OK(hv_io_split_read(path, &s));
    /* the CSV */
    snprintf(path, sizeof path, "%s/ground_truth.csv", dir);
    size_t len = 0;
    char *csv = (char *)slurp(path, &len);
    HV_CHECK(csv != NULL, "ground_truth.csv exists");
    const char *hdr = "case,label,level,grade,type,loss,healthy_ant_mm,healthy_mid_mm,healthy_post_mm,"
                      "observed_ant_mm,observed_mid_mm,observed_post_mm,center_x,center_y,center_z,"
                      "axis_x,axis_y,axis_z,depth_mm,width_mm,truncated\n";
    HV_CHECK(csv && strncmp(csv, hdr, strlen(hdr)) == 0, "CSV header");
    char *line = csv ? strchr(csv, '\n') : NULL;
    int rows = 0, bad_rows = 0;
    for (int ci = 0; ci < 2; ci++) {
        hv_phantom_case *c = NULL;
        HV_CHECK_OK(hv_phantom_case_make(o, ci, &c));
        if (!c) break;
        HV_CHECK_OK(hv_phantom_case_render(o, c));
        /* images */
        char cp[4096], mp[4096], jp[4096];
        snprintf(cp, sizeof cp, "%s/raw/%s/%s.nii.gz", dir, c->id, c->id);
        snprintf(mp, sizeof mp, "%s/raw/%s/%s_msk.nii.gz", dir, c->id, c->id);
        snprintf(jp, sizeof jp, "%s/raw/%s/%s.json", dir, c->id, c->id);
        hv_volume *ct = NULL, *mk = NULL;
        hv_nifti_info ci_info, mi_info;
        HV_CHECK_OK(hv_io_nifti_read(cp, HV_DTYPE_I16, NULL, &ct, &ci_info));
        HV_CHECK_OK(hv_io_nifti_read(mp, HV_DTYPE_U8, NULL, &mk, &mi_info));
        if (ct && mk && c->ct) {
            HV_CHECK(ci_info.datatype == 4 && mi_info.datatype == 2, "int16 CT (%d), uint8 mask (%d)",
                     ci_info.datatype, mi_info.datatype);
            HV_CHECK(strstr(ci_info.descrip, "healthivert phantom") != NULL, "descrip '%s'", ci_info.descrip);
            HV_CHECK(ct->nvox == c->ct->nvox && memcmp(ct->data, c->ct->data, ct->nvox * 2) == 0, "CT round trip");
            HV_CHECK(mk->nvox == c->mask->nvox && memcmp(mk->data, c->mask->data, mk->nvox) == 0, "mask round trip");
            double worst = 0;
            for (int r = 0; r < 4; r++)
                for (int k = 0; k < 4; k++) worst = fmax(worst, fabs(mk->affine[r][k] - c->mask->affine[r][k]));
            /* NIfTI-1 stores the sform in float32 */
            HV_CHECK(worst < 1e-4, "affine round trip (%g)", worst);
        }
        /* centroids */
        hv_centroids *ctd = NULL;
        HV_CHECK_OK(hv_io_centroids_read(jp, &ctd));
        if (ctd && c->mask) {
            char codes[4];
            hv_affine_axcodes((const double(*)[4])c->mask->affine, codes);
            HV_CHECK(strcmp(ctd->direction, codes) == 0, "centroid direction %s = mask codes %s", ctd->direction, codes);
            HV_CHECK((int)ctd->n == c->n_vert, "one centroid per vertebra (%zu)", ctd->n);
            for (size_t i = 0; i < ctd->n && (int)i < c->n_vert; i++) {
                const hv_centroid *e = &ctd->items[i];
                double s3[3] = {0, 0, 0};
                long n = 0;
                const uint8_t *d = c->mask->data;
                for (int64_t k = 0; k < c->mask->dim[2]; k++)
                    for (int64_t j = 0; j < c->mask->dim[1]; j++)
                        for (int64_t x = 0; x < c->mask->dim[0]; x++)
                            if (d[hv_vol_idx(c->mask, x, j, k)] == e->label) {
                                s3[0] += (double)x;
                                s3[1] += (double)j;
                                s3[2] += (double)k;
                                n++;
                            }
                HV_CHECK(e->label == c->vert[i].label, "centroid label %d", e->label);
                HV_CHECK(n > 0 && fabs(e->x - s3[0] / n) < 1e-4 && fabs(e->y - s3[1] / n) < 1e-4 &&
                             fabs(e->z - s3[2] / n) < 1e-4,
                         "centroid of %d is the mask's centre of mass", e->label);
            }
        }
        /* split and CSV rows */
        for (int v = 0; v < c->n_vert; v++) {
            const hv_phantom_vert *p = &c->vert[v];
            long at = s ? hv_io_split_find(s, c->id, p->label) : -1;
            HV_CHECK(at >= 0 && s->items[at].grade == p->grade, "%s_%d in the split with grade %d", c->id, p->label,
                     p->grade);
            if (!line || !line[1]) {
                bad_rows++;
                continue;
            }
            char *row = line + 1;
            line = strchr(row, '\n');
            if (line) *line = 0;
            char id[32], lvl[8], type[16];
            int label, grade, trunc;
            double loss, h[3], ob[3], cc[3], ax[3], dd, ww;
            int got = sscanf(row,
                             "%31[^,],%d,%7[^,],%d,%15[^,],%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%d",
                             id, &label, lvl, &grade, type, &loss, &h[0], &h[1], &h[2], &ob[0], &ob[1], &ob[2], &cc[0],
                             &cc[1], &cc[2], &ax[0], &ax[1], &ax[2], &dd, &ww, &trunc);
            rows++;
            int ok = got == 21 && !strcmp(id, c->id) && label == p->label && !strcmp(lvl, hv_label_name(label)) &&
                     grade == p->grade && !strcmp(type, hv_fracture_type_name(p->type)) &&
                     fabs(loss - p->loss) < 1e-6 && trunc == p->truncated && fabs(dd - p->depth_mm) < 1e-4 &&
                     fabs(ww - p->width_mm) < 1e-4;
            for (int k = 0; k < 3; k++)
                ok &= fabs(h[k] - p->healthy_mm[k]) < 1e-4 && fabs(ob[k] - p->observed_mm[k]) < 1e-4 &&
                      fabs(cc[k] - p->center[k]) < 1e-4 && fabs(ax[k] - p->axis[k]) < 1e-6;
            bad_rows += !ok;
        }
        hv_vol_free(ct);
        hv_vol_free(mk);
        hv_io_centroids_free(ctd);
        hv_phantom_case_free(c);
    }
    HV_CHECK(rows == 6 && bad_rows == 0, "CSV: %d rows, %d wrong", rows, bad_rows);
    HV_CHECK(line == NULL || line[1] == 0, "no extra CSV rows");
    HV_CHECK(s && s->n == 6, "split holds every vertebra (%zu)", s ? s->n : 0);
    free(csv);
    hv_io_split_free(s);
}

int main(void)
{
    hv_log_set_level(HV_LOG_WARN);
    const char *tmp = hv_test_tmpdir("phantom_cohort");
    HV_REQUIRE(tmp != NULL, "scratch folder");
    char *a = hv_strfmt("%s/a", tmp), *b = hv_strfmt("%s/b", tmp), *c = hv_strfmt("%s/c", tmp),
         *d = hv_strfmt("%s/d", tmp);
    HV_REQUIRE(a && b && c && d, "paths");

    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 2024;
    o.first_label = 19; /* T12-L2 */
    o.last_label = 21;
    o.fracture_rate = 0.5;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    HV_CHECK_OK(hv_phantom_cohort_write(&o, a, 2, NULL, NULL));
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    HV_CHECK_OK(hv_phantom_cohort_write(&o, b, 2, NULL, NULL));
    int n_same = 0;
    int r = compare_dirs(a, b, &n_same);
    HV_CHECK(r == 1, "same seed, 1 vs 2 threads: byte-identical files (%d of %d identical)", n_same, (int)NFILES);
    /* a second run into the same folder replaces the files with the same bytes */
    HV_CHECK_OK(hv_phantom_cohort_write(&o, b, 2, NULL, NULL));
    r = compare_dirs(a, b, &n_same);
    HV_CHECK(r == 1, "rewriting in place gives the same bytes");
    HV_CHECK(count_tmp_files(a) == 0 && count_tmp_files(b) == 0, "no temporary files left");

    hv_phantom_opts o2 = o;
    o2.seed = 2025;
    HV_CHECK_OK(hv_phantom_cohort_write(&o2, c, 2, NULL, NULL));
    r = compare_dirs(a, c, &n_same);
    HV_CHECK(r == 0 && n_same == 0, "another seed: every file differs (%d identical)", n_same);

    check_contents(&o, a);

    /* the cohort is a dataset in the reference layout */
    hv_manifest *man = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(a, NULL, &man));
    if (man) {
        HV_CHECK(man->n == 2 && man->n_bad == 0, "dataset scan: %zu cases, %zu bad", man->n, man->n_bad);
        for (size_t i = 0; i < man->n && i < 2; i++)
            HV_CHECK(man->cases[i].status == HV_OK && man->cases[i].centroid_path &&
                         !strcmp(man->cases[i].id, i == 0 ? "ph0000" : "ph0001"),
                     "case %zu: %s", i, man->cases[i].id);
    }
    hv_io_manifest_free(man);

    /* another orientation: the centroid file names the mask's axes */
    hv_phantom_opts o3 = o;
    o3.orientation = HV_PHANTOM_PIR;
    HV_CHECK_OK(hv_phantom_cohort_write(&o3, d, 2, NULL, NULL));
    char jp[1200];
    snprintf(jp, sizeof jp, "%.1000s/raw/ph0001/ph0001.json", d);
    hv_centroids *ctd = NULL;
    HV_CHECK_OK(hv_io_centroids_read(jp, &ctd));
    if (ctd) HV_CHECK(strcmp(ctd->direction, "PIR") == 0, "PIR cohort centroid direction %s", ctd->direction);
    hv_io_centroids_free(ctd);

    /* errors */
    char file[1200];
    snprintf(file, sizeof file, "%.1000s/split.json/x", a);
    hv_status st = hv_phantom_cohort_write(&o, file, 1, NULL, NULL);
    HV_CHECK(st == HV_ERR_IO && strstr(hv_error_detail(), "split.json"), "output under a file: %s: %s",
             hv_status_name(st), hv_error_detail());
    HV_CHECK(hv_phantom_cohort_write(&o, a, 0, NULL, NULL) == HV_ERR_ARG, "0 cases rejected");
    hv_phantom_opts bad = o;
    bad.fracture_rate = -0.1;
    HV_CHECK(hv_phantom_cohort_write(&bad, a, 1, NULL, NULL) == HV_ERR_ARG, "bad rate rejected");
    free(a);
    free(b);
    free(c);
    free(d);
    return hv_test_done();
}
