/*
 * test_dataset.c: dataset discovery in the reference and VerSe layouts, with
 * missing files reported per case and an empty folder as an error.
 */
#include "hv/io.h"
#include "hv_test.h"

static const char *tmp;

static void touch(const char *rel)
{
    char path[4096], cmd[8300];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && echo x > '%s'", path, path);
    if (system(cmd) != 0) HV_CHECK(0, "cannot create %s", path);
}

int main(void)
{
    tmp = hv_test_tmpdir("dataset");
    HV_REQUIRE(tmp != NULL, "tmpdir");
    char root[4096];

    /* Reference layout: 0002 complete, 0001 with _seg, 0003 missing its mask. */
    touch("ref/raw/0002/0002.nii.gz");
    touch("ref/raw/0002/0002_msk.nii.gz");
    touch("ref/raw/0002/0002.json");
    touch("ref/raw/0001/0001.nii");
    touch("ref/raw/0001/0001_seg.nii.gz");
    touch("ref/raw/0003/0003.nii.gz");
    touch("ref/raw/stray.txt");
    snprintf(root, sizeof root, "%s/ref", tmp);
    hv_manifest *m = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(root, NULL, &m));
    HV_REQUIRE(m != NULL, "manifest");
    HV_CHECK(m->n == 3 && m->n_bad == 1, "3 cases, 1 bad (got %zu, %zu)", m->n, m->n_bad);
    HV_CHECK(!strcmp(m->cases[0].id, "0001") && !strcmp(m->cases[2].id, "0003"), "sorted by id");
    HV_CHECK(m->cases[0].status == HV_OK && strstr(m->cases[0].mask_path, "0001_seg.nii.gz") &&
                 strstr(m->cases[0].ct_path, "0001.nii") && !m->cases[0].centroid_path,
             "_seg mask and .nii CT found");
    HV_CHECK(m->cases[1].centroid_path && strstr(m->cases[1].centroid_path, "0002.json"), "centroid file found");
    HV_CHECK(m->cases[2].status == HV_ERR_NOT_FOUND && m->cases[2].problem &&
                 strstr(m->cases[2].problem, "mask"),
             "missing mask reported: %s", m->cases[2].problem ? m->cases[2].problem : "(none)");
    hv_io_manifest_free(m);

    /* With header checks on, the placeholder files are not NIfTI: recorded per case. */
    hv_nifti_opts o = {0};
    m = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(root, &o, &m));
    HV_CHECK(m && m->n_bad == 3 && m->cases[1].status == HV_ERR_FORMAT, "header check recorded per case");
    hv_io_manifest_free(m);

    /* VerSe layout with a series. */
    touch("verse/rawdata/sub-verse004/sub-verse004_ct.nii.gz");
    touch("verse/derivatives/sub-verse004/sub-verse004_seg-vert_msk.nii.gz");
    touch("verse/derivatives/sub-verse004/sub-verse004_seg-subreg_ctd.json");
    touch("verse/rawdata/sub-verse401/sub-verse401_series0_ct.nii.gz");
    touch("verse/derivatives/sub-verse401/sub-verse401_series0_seg-vert_msk.nii.gz");
    touch("verse/rawdata/sub-verse401/sub-verse401_series1_ct.nii.gz");
    snprintf(root, sizeof root, "%s/verse", tmp);
    m = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(root, NULL, &m));
    HV_REQUIRE(m != NULL, "verse manifest");
    HV_CHECK(m->n == 3 && m->n_bad == 1, "3 series, 1 without mask (%zu, %zu)", m->n, m->n_bad);
    HV_CHECK(!strcmp(m->cases[0].id, "sub-verse004") && m->cases[0].centroid_path, "subject id and ctd");
    HV_CHECK(!strcmp(m->cases[1].id, "sub-verse401_series0") && m->cases[1].status == HV_OK, "series id");
    hv_io_manifest_free(m);

    /* issue 9: a case folder whose name is not a plain file name (a control
     * character) is a bad case naming the id; a FIFO is never taken for the
     * CT (the runner would block reading it). */
    touch("bad/raw/ok1/ok1.nii.gz");
    touch("bad/raw/ok1/ok1_msk.nii.gz");
    touch("bad/raw/tab\tid/tab\tid.nii.gz");
    touch("bad/raw/tab\tid/tab\tid_msk.nii.gz");
    touch("bad/raw/pipe/pipe_msk.nii.gz");
    {
        char fp[4096];
        snprintf(fp, sizeof fp, "%s/bad/raw/pipe/pipe.nii.gz", tmp);
        HV_CHECK(mkfifo(fp, 0600) == 0, "mkfifo %s", fp);
    }
    snprintf(root, sizeof root, "%s/bad", tmp);
    m = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(root, NULL, &m));
    HV_REQUIRE(m != NULL, "bad-id manifest");
    HV_CHECK(m->n == 3 && m->n_bad == 2, "3 cases, 2 bad (%zu, %zu)", m->n, m->n_bad);
    for (size_t i = 0; i < m->n; i++) {
        const hv_case *c = &m->cases[i];
        if (!strcmp(c->id, "ok1"))
            HV_CHECK(c->status == HV_OK, "ok1: %s", c->problem ? c->problem : "");
        else if (!strcmp(c->id, "pipe"))
            HV_CHECK(c->status == HV_ERR_NOT_FOUND && c->problem &&
                         strstr(c->problem, "no CT volume found"),
                     "a FIFO is not taken for the CT: %s", c->problem ? c->problem : "(none)");
        else
            HV_CHECK(c->status == HV_ERR_ARG && c->problem &&
                         strstr(c->problem, "case id 'tab\\x09id' is not a plain file name"),
                     "control character in the id: %s", c->problem ? c->problem : "(none)");
    }
    hv_io_manifest_free(m);

    /* VerSe 2020: one rawdata/ + derivatives/ tree per part folder; the same
     * series in two parts is a bad case naming both CTs. */
    touch("v20/dataset-01training/rawdata/sub-gl003/sub-gl003_dir-ax_ct.nii.gz");
    touch("v20/dataset-01training/derivatives/sub-gl003/sub-gl003_dir-ax_seg-vert_msk.nii.gz");
    touch("v20/dataset-01training/derivatives/sub-gl003/sub-gl003_dir-ax_seg-subreg_ctd.json");
    touch("v20/dataset-02validation/rawdata/sub-gl016/sub-gl016_dir-ax_ct.nii.gz");
    touch("v20/dataset-02validation/derivatives/sub-gl016/sub-gl016_dir-ax_seg-vert_msk.nii.gz");
    touch("v20/dataset-03test/rawdata/sub-verse500/sub-verse500_dir-ax_ct.nii.gz");
    touch("v20/dataset-03test/derivatives/sub-verse500/sub-verse500_dir-ax_seg-vert_msk.nii.gz");
    touch("v20/dataset-03test/rawdata/sub-gl003/sub-gl003_dir-ax_ct.nii.gz");
    touch("v20/dataset-03test/derivatives/sub-gl003/sub-gl003_dir-ax_seg-vert_msk.nii.gz");
    touch("v20/README.txt");
    snprintf(root, sizeof root, "%s/v20", tmp);
    m = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(root, NULL, &m));
    HV_REQUIRE(m != NULL, "verse20 manifest");
    HV_CHECK(m->n == 4 && m->n_bad == 1, "4 series in 3 parts, 1 twice (%zu, %zu)", m->n, m->n_bad);
    HV_CHECK(!strcmp(m->cases[0].id, "sub-gl003_dir-ax") && m->cases[0].status == HV_OK &&
                 m->cases[0].centroid_path && strstr(m->cases[0].mask_path, "dataset-01training/"),
             "training part: id, mask and centroids");
    HV_CHECK(m->cases[1].status == HV_ERR_ARG && m->cases[1].problem &&
                 strstr(m->cases[1].problem, "found twice") &&
                 strstr(m->cases[1].problem, "dataset-03test"),
             "a series in two parts: %s", m->cases[1].problem ? m->cases[1].problem : "(none)");
    HV_CHECK(!strcmp(m->cases[2].id, "sub-gl016_dir-ax") && m->cases[2].status == HV_OK &&
                 !m->cases[2].centroid_path, "validation part, no centroids");
    HV_CHECK(!strcmp(m->cases[3].id, "sub-verse500_dir-ax") && m->cases[3].status == HV_OK, "test part");
    hv_io_manifest_free(m);

    /* CTSpine1K: rawdata/volumes/<subset>/ + rawdata/labels/<subset>/<stem>_seg;
     * a volume without its label (in labels/) is a bad case; no centroid files */
    touch("cts/rawdata/volumes/COLONOG/1.3.6.1.4.1.9328.50.4.0001.nii.gz");
    touch("cts/rawdata/labels/COLONOG/1.3.6.1.4.1.9328.50.4.0001_seg.nii.gz");
    touch("cts/rawdata/volumes/COVID-19/volume-covid19-A-0003_ct.nii.gz");
    touch("cts/rawdata/labels/COVID-19/volume-covid19-A-0003_ct_seg.nii.gz");
    touch("cts/rawdata/volumes/MSD-T10/liver_0.nii.gz");
    /* a label left beside the volumes is not a case of its own */
    touch("cts/rawdata/volumes/MSD-T10/liver_0_seg.nii.gz");
    touch("cts/metadata/data_split.txt");
    snprintf(root, sizeof root, "%s/cts", tmp);
    m = NULL;
    HV_CHECK_OK(hv_io_dataset_scan(root, NULL, &m));
    HV_REQUIRE(m != NULL, "ctspine1k manifest");
    HV_CHECK(m->n == 3 && m->n_bad == 1, "3 volumes, 1 without label (%zu, %zu)", m->n, m->n_bad);
    HV_CHECK(!strcmp(m->cases[0].id, "1.3.6.1.4.1.9328.50.4.0001") && m->cases[0].status == HV_OK &&
                 strstr(m->cases[0].mask_path, "labels/COLONOG/1.3.6.1.4.1.9328.50.4.0001_seg.nii.gz") &&
                 !m->cases[0].centroid_path, "COLONOG volume and its label");
    HV_CHECK(!strcmp(m->cases[1].id, "liver_0") && m->cases[1].status == HV_ERR_NOT_FOUND,
             "MSD-T10 volume without a label: %s", m->cases[1].problem ? m->cases[1].problem : "(none)");
    HV_CHECK(!strcmp(m->cases[2].id, "volume-covid19-A-0003_ct") && m->cases[2].status == HV_OK,
             "COVID-19 volume");
    hv_io_manifest_free(m);

    /* Empty and missing folders. */
    snprintf(root, sizeof root, "%s/empty", tmp);
    touch("empty/.keep");
    m = NULL;
    HV_CHECK(hv_io_dataset_scan(root, NULL, &m) == HV_ERR_EMPTY && !m, "empty dataset is an error: %s",
             hv_error_detail());
    HV_CHECK(hv_io_dataset_scan("/nonexistent/ds", NULL, &m) == HV_ERR_NOT_FOUND, "missing root");
    return hv_test_done();
}
