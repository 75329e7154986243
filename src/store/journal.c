/*
 * journal.c: per-rank append-only journals of finished cases.
 *
 * Why: an HDF5 file open for writing is not crash-safe (HDF5 has no journal;
 * a process killed mid-write can leave the file unreadable), and a run of
 * 100,000 cases must survive a SIGKILL at any moment. So the truth about
 * which cases are finished lives in small append-only files, one per rank
 * (no locking, no shared writes): <output.dir>/journal/rank-NNNN.log (or
 * shard-KKKK-rank-NNNN.log for the shards of a job array). Each
 * record is one whole case result in a frame
 *
 *     u32 magic "HVJ1" | u32 payload length | u32 CRC-32 of payload | payload
 *
 * or, when deflating the payload saves space (QC pictures and maps are
 * mostly background: a 17-vertebra case shrinks from ~4.3 MiB to a few
 * hundred KiB, which matters at 100,000 cases),
 *
 *     u32 magic "HVJ2" | u32 stored length | u32 CRC-32 of stored bytes |
 *     u32 payload length | zlib stream of the payload
 *
 * written with one write() and made durable with fdatasync() before the case
 * is written into the store. A kill can therefore tear at most the last
 * record of a file; replay checks every frame and truncates a torn tail, so
 * a resumed run appends after valid data. The store is rebuilt from the
 * journals on every start (run.c).
 *
 * Payload layout (native byte order: journals live beside the run on one
 * file system and are read by the same build; the store is the portable
 * artefact): u32 state | hv_run_crow | u32 n_stages | n_stages x f64 seconds |
 * u32 n_vert | n_vert x hv_run_vrow | u32 n_img | n_vert*n_img*IMG*IMG
 * float32 | u32 n_qc | with n_qc = 1 (the QC pictures of output.images =
 * qc | full): n_vert x u32 PNG length, then the PNGs one after another
 * (hv_store_qc_encode; length 0: no picture) | then, for each crop volume
 * of hv_store_vol in order (the attention map: attention.store = full; the
 * synthesized label crop: synthesis.crops = masks | full; the synthesized
 * CT crop: full), u32 n_vol | with n_vol = 1: n_vert x u32 chunk length,
 * then the deflated chunks (hv_store_cam_encode, hv_store_crop_encode;
 * length 0: no volume). The pictures travel as the
 * PNG bytes the store keeps, encoded once by the rank that drew them, so
 * rank 0 copies them into the store without recompressing (images.c).
 *
 * Because the payload is raw struct bytes and the seconds are labelled only
 * by their position in the stage list, every file starts with a layout
 * record, a frame of its own,
 *
 *     u32 magic "HVJL" | u32 body length | u32 CRC-32 of the body | body:
 *     u32 layout version | u32 sizeof(hv_run_crow) | u32 sizeof(hv_run_vrow) |
 *     u32 n_stages | the stage names, each NUL-terminated, then NULs up to
 *     a multiple of 4 bytes
 *
 * and a run reads only files whose layout and stage list equal its own. A
 * file with another layout (a resume by a build whose row structs changed)
 * or another stage list (a pipeline with a stage added, removed or
 * renamed) is not misread: replay skips it with a warning naming both, so
 * its cases run again, and the writer moves it aside to
 * <name>.layout-<version> before starting a new file. Layout 1 (body of 16
 * bytes: a stage count, no names, the seconds inside hv_run_crow) and files
 * from before layout records existed are never read by layout 2: their
 * records hold the seconds by position in the case row. Bump
 * HV_JOURNAL_LAYOUT when a row struct or the payload changes. Layout 2 (the
 * QC pictures raw, 256 KiB a vertebra) is not read by layout 3: its cases
 * run again. Layout 4 added the attention columns to hv_run_vrow and the
 * maps to the payload; layout 5 the synthesized crops (a layout-4 file is
 * moved aside: its cases run again); layout 6 the crop3d boxes (a fourth
 * crop volume in the payload; a layout-5 file is moved aside); layout 7 the
 * original crops beside the synthesized ones (orig_ct and orig_label, six
 * crop volumes in the payload; a layout-6 file is moved aside: its cases
 * run again, so a resumed run's store has the original crop of every
 * synthesized vertebra).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "hv/store.h"

#define JMAGIC 0x314A5648u   /* "HVJ1" little-endian: raw payload      */
#define JMAGIC_Z 0x324A5648u /* "HVJ2": zlib-deflated payload (level 1) */
#define JMAGIC_L 0x4C4A5648u /* "HVJL": the layout record          */
#define JMAX_PAYLOAD (64u << 20)

#define HV_JOURNAL_LAYOUT 7u
#define JLAYOUT_FIXED 16u /* version, two row sizes, stage count */
#define JLAYOUT_MAX (JLAYOUT_FIXED + HV_STORE_MAX_STAGES * HV_STORE_STAGE_NAME_MAX)

/* A file's layout. version 0: no layout record (the legacy format);
 * `names` is the stage list joined with ',' ("" when the record has none
 * or it is unreadable, names_ok then 0). */
typedef struct jlayout {
    uint32_t version, crow, vrow, stages;
    char names[JLAYOUT_MAX];
    int names_ok;
} jlayout;

static void layout_now(jlayout *l, int n, const char *const *names)
{
    memset(l, 0, sizeof *l);
    *l = (jlayout){HV_JOURNAL_LAYOUT, (uint32_t)sizeof(hv_run_crow), (uint32_t)sizeof(hv_run_vrow),
                   (uint32_t)n, "", 1};
    size_t off = 0;
    for (int k = 0; k < n; k++)
        off += (size_t)snprintf(l->names + off, sizeof l->names - off, "%s%s", k ? "," : "", names[k]);
}

/* The body of this run's layout record into b (JLAYOUT_MAX bytes); returns
 * its length. */
static uint32_t layout_encode(int n, const char *const *names, unsigned char *b)
{
    uint32_t head[4] = {HV_JOURNAL_LAYOUT, (uint32_t)sizeof(hv_run_crow),
                        (uint32_t)sizeof(hv_run_vrow), (uint32_t)n};
    memset(b, 0, JLAYOUT_MAX);
    memcpy(b, head, sizeof head);
    size_t off = sizeof head;
    for (int k = 0; k < n; k++) {
        size_t len = strlen(names[k]) + 1;
        memcpy(b + off, names[k], len);
        off += len;
    }
    return (uint32_t)((off + 3) & ~(size_t)3);
}

/* Both layouts equal: same version, row sizes and stage list. */
static int layout_same(const jlayout *a, const jlayout *b)
{
    return a->version == b->version && a->crow == b->crow && a->vrow == b->vrow &&
           a->stages == b->stages && a->names_ok && b->names_ok && !strcmp(a->names, b->names);
}

static void layout_str(const jlayout *l, char *b, size_t cap)
{
    if (l->version == 0) snprintf(b, cap, "the legacy layout (no layout record)");
    else if (l->version < 2) snprintf(b, cap, "layout %u (case row %u B, vertebra row %u B, %u stages)",
                                      l->version, l->crow, l->vrow, l->stages);
    else snprintf(b, cap, "layout %u (case row %u B, vertebra row %u B, stages %s)", l->version,
                  l->crow, l->vrow, l->names_ok ? l->names : "unreadable");
}

/* Why a file of layout `file` is not read by a run of layout `now`, in words
 * naming both (into b). */
static void layout_why(const jlayout *file, const jlayout *now, char *b, size_t cap)
{
    char a[JLAYOUT_MAX + 100], c[JLAYOUT_MAX + 100];
    if (file->version == now->version && file->crow == now->crow && file->vrow == now->vrow &&
        file->names_ok) {
        snprintf(b, cap, "the stages %s, this run has %s", file->names, now->names);
        return;
    }
    layout_str(file, a, sizeof a);
    layout_str(now, c, sizeof c);
    snprintf(b, cap, "%s, this build uses %s", a, c);
}

/* The layout of the journal file f (positioned at its start): *rec_end is
 * the offset after the layout record (0 for a legacy file, which has none).
 * Returns 0 when the file cannot tell (empty, or a torn or damaged first
 * frame); a record of a length this build never writes is another build's
 * (returned, with its version, as a layout that is not ours). */
static int layout_read(FILE *f, jlayout *l, long *rec_end)
{
    uint32_t hdr[3];
    unsigned char body[JLAYOUT_MAX + 1];
    memset(l, 0, sizeof *l);
    *rec_end = 0;
    if (fread(hdr, 1, 12, f) < 12) return 0;
    if (hdr[0] != JMAGIC_L) return 1; /* legacy: version 0 */
    size_t want = hdr[1] < JLAYOUT_FIXED || hdr[1] > JLAYOUT_MAX ? JLAYOUT_FIXED : hdr[1];
    if (fread(body, 1, want, f) != want) return 0;
    uint32_t head[4];
    memcpy(head, body, sizeof head);
    l->version = head[0];
    l->crow = head[1];
    l->vrow = head[2];
    l->stages = head[3];
    if (want != hdr[1]) return 1; /* not ours: names_ok stays 0 */
    if ((uint32_t)crc32(0L, body, (uInt)want) != hdr[2]) return 0;
    *rec_end = 12 + (long)want;
    if (l->version < 2 || l->stages < 1 || l->stages > HV_STORE_MAX_STAGES) return 1;
    /* the names: n_stages NUL-terminated strings within the body */
    const char *p = (const char *)body + JLAYOUT_FIXED, *end = (const char *)body + want;
    const char *ptr[HV_STORE_MAX_STAGES];
    for (uint32_t k = 0; k < l->stages; k++) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        if (!z) return 1;
        ptr[k] = p;
        p = z + 1;
    }
    if (hv_store_check_stages((int)l->stages, ptr) != HV_OK) {
        hv_error_clear();
        return 1;
    }
    layout_now(l, (int)l->stages, ptr);
    l->version = head[0];
    l->crow = head[1];
    l->vrow = head[2];
    return 1;
}

struct hv_journal {
    int fd;
    int n_stages;       /* seconds per record                   */
    char path[1100];
    unsigned char *buf; /* frame being written                 */
    size_t cap;
    unsigned char *raw; /* payload before deflate              */
    size_t raw_cap;
};

static hv_status fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return hv_error_set(HV_ERR_IO, "%s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return hv_error_set(HV_ERR_IO, "fsync %s: %s", dir, strerror(errno));
    return HV_OK;
}

/* dst = "<path>.layout-<version>", or with ".2", ".3" ... added when that
 * name is taken (an earlier stage list of the same layout). 0 when no free
 * name was found. */
static int aside_name(char *dst, size_t cap, const char *path, uint32_t version)
{
    struct stat sb;
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(dst, cap, "%s.layout-%u", path, version);
        else snprintf(dst, cap, "%s.layout-%u.%d", path, version, k);
        if (lstat(dst, &sb) != 0 && errno == ENOENT) return 1;
    }
    return 0;
}

hv_status hv_journal_open(const char *dir, int shard, int rank, int n_stages,
                          const char *const *stage_names, hv_journal **out)
{
    *out = NULL;
    hv_status st = hv_store_check_stages(n_stages, stage_names);
    if (st != HV_OK) return hv_error_wrap(st, "journal");
    if ((st = hv_mkdir_p(dir)) != HV_OK) return st;
    hv_journal *j = calloc(1, sizeof *j);
    if (!j) return hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
    j->n_stages = n_stages;
    if (shard >= 0) snprintf(j->path, sizeof j->path, "%s/shard-%04d-rank-%04d.log", dir, shard, rank);
    else snprintf(j->path, sizeof j->path, "%s/rank-%04d.log", dir, rank);
    /* A file written with another layout or stage list is moved aside,
     * never appended to. */
    jlayout now;
    layout_now(&now, n_stages, stage_names);
    FILE *old = fopen(j->path, "rb");
    if (old) {
        jlayout l;
        long end;
        int known = layout_read(old, &l, &end);
        fclose(old);
        if (known && !layout_same(&l, &now)) {
            char aside[1200], why[2 * JLAYOUT_MAX + 300];
            layout_why(&l, &now, why, sizeof why);
            if (!aside_name(aside, sizeof aside, j->path, l.version) || rename(j->path, aside) != 0) {
                st = hv_error_set(HV_ERR_IO, "journal %s was written with %s; cannot move it "
                                  "aside: %s", j->path, why, strerror(errno));
                free(j);
                return st;
            }
            hv_log_warn("journal %s was written with %s: moved to %s", j->path, why, aside);
        }
    }
    j->fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        st = hv_error_set(HV_ERR_IO, "cannot open journal %s: %s", j->path, strerror(errno));
        free(j);
        return st;
    }
    struct stat sb;
    if (fstat(j->fd, &sb) == 0 && sb.st_size == 0) {
        unsigned char rec[12 + JLAYOUT_MAX];
        uint32_t len = layout_encode(n_stages, stage_names, rec + 12);
        uint32_t hdr[3] = {JMAGIC_L, len, (uint32_t)crc32(0L, rec + 12, len)};
        memcpy(rec, hdr, 12);
        if (write(j->fd, rec, 12 + len) != (ssize_t)(12 + len) || fdatasync(j->fd) != 0) {
            st = hv_error_set(HV_ERR_IO, "journal %s: writing its layout record: %s", j->path,
                              strerror(errno));
            hv_journal_close(j);
            return st;
        }
    }
    st = fsync_dir(dir);
    if (st != HV_OK) {
        hv_journal_close(j);
        return st;
    }
    *out = j;
    return HV_OK;
}

void hv_journal_close(hv_journal *j)
{
    if (!j) return;
    if (j->fd >= 0) close(j->fd);
    free(j->buf);
    free(j->raw);
    free(j);
}

static void put(unsigned char **p, const void *src, size_t n)
{
    memcpy(*p, src, n);
    *p += n;
}

hv_status hv_journal_append(hv_journal *j, const hv_case_result *r)
{
    uint32_t nv = (uint32_t)(r->state == HV_CASE_DONE ? r->c.n_vert : 0);
    uint32_t ni = (uint32_t)(r->img ? r->n_img : 0);
    size_t nimg = (size_t)nv * ni * HV_RUN_IMG * HV_RUN_IMG;
    /* the QC pictures as PNGs: the caller's, or encoded here */
    hv_case_result enc;
    memset(&enc, 0, sizeof enc);
    const hv_case_result *pr = r;
    if (nv && !r->qc_png && r->qc) {
        enc.c = r->c;
        enc.qc = r->qc;
        hv_status est = hv_store_qc_encode(&enc);
        enc.qc = NULL;
        if (est != HV_OK) return est;
        pr = &enc;
    }
    uint32_t nq = nv && pr->qc_png ? 1u : 0u;
    size_t nqc = 0;
    for (uint32_t k = 0; nq && k < nv; k++) nqc += pr->qc_png_len[k];
    if (nq) nqc += 4 * (size_t)nv;
    uint32_t nc[HV_STORE_N_VOL];
    size_t nvol[HV_STORE_N_VOL], nvol_all = 0;
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        nc[w] = nv && r->vol_z[w] ? 1u : 0u;
        nvol[w] = 0;
        for (uint32_t k = 0; nc[w] && k < nv; k++) nvol[w] += r->vol_z_len[w][k];
        if (nc[w]) nvol[w] += 4 * (size_t)nv;
        nvol_all += 4 + nvol[w];
    }
    hv_status st = HV_OK;
    uint32_t ns = (uint32_t)j->n_stages;
    size_t payload = 4 + sizeof r->c + 4 + ns * sizeof(double) + 4 + nv * sizeof(hv_run_vrow) + 4 +
                     nimg * sizeof(float) + 4 + nqc + nvol_all;
    if (payload > JMAX_PAYLOAD) {
        st = hv_error_set(HV_ERR_LIMIT, "journal: case record of %zu bytes is too large", payload);
        goto done;
    }
    if (payload > j->raw_cap) {
        unsigned char *nb = realloc(j->raw, payload);
        if (!nb) {
            st = hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
            goto done;
        }
        j->raw = nb;
        j->raw_cap = payload;
    }
    unsigned char *p = j->raw;
    uint32_t state = (uint32_t)r->state;
    put(&p, &state, 4);
    put(&p, &r->c, sizeof r->c);
    put(&p, &ns, 4);
    put(&p, r->seconds, ns * sizeof(double));
    put(&p, &nv, 4);
    put(&p, r->v, nv * sizeof(hv_run_vrow));
    put(&p, &ni, 4);
    if (nimg) put(&p, r->img, nimg * sizeof(float));
    put(&p, &nq, 4);
    if (nq) {
        put(&p, pr->qc_png_len, 4 * (size_t)nv);
        put(&p, pr->qc_png, nqc - 4 * (size_t)nv);
    }
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        put(&p, &nc[w], 4);
        if (nc[w]) {
            put(&p, r->vol_z_len[w], 4 * (size_t)nv);
            put(&p, r->vol_z[w], nvol[w] - 4 * (size_t)nv);
        }
    }

    /* Frame: deflated when that is smaller, raw otherwise. */
    uLong bound = compressBound((uLong)payload);
    size_t total = 16 + (size_t)bound;
    if (total < 12 + payload) total = 12 + payload;
    if (total > j->cap) {
        unsigned char *nb = realloc(j->buf, total);
        if (!nb) {
            st = hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
            goto done;
        }
        j->buf = nb;
        j->cap = total;
    }
    uLongf zlen = bound;
    if (compress2(j->buf + 16, &zlen, j->raw, (uLong)payload, 1) == Z_OK && zlen + 4 < payload) {
        uint32_t hdr[4] = {JMAGIC_Z, (uint32_t)zlen, (uint32_t)crc32(0L, j->buf + 16, (uInt)zlen),
                           (uint32_t)payload};
        memcpy(j->buf, hdr, 16);
        total = 16 + (size_t)zlen;
    } else {
        memcpy(j->buf + 12, j->raw, payload);
        uint32_t hdr[3] = {JMAGIC, (uint32_t)payload, (uint32_t)crc32(0L, j->raw, (uInt)payload)};
        memcpy(j->buf, hdr, 12);
        total = 12 + payload;
    }

    size_t off = 0;
    while (off < total) {
        ssize_t w = write(j->fd, j->buf + off, total - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            st = hv_error_set(HV_ERR_IO, "journal %s: %s", j->path, strerror(errno));
            goto done;
        }
        off += (size_t)w;
    }
    if (fdatasync(j->fd) != 0)
        st = hv_error_set(HV_ERR_IO, "journal %s: fdatasync: %s", j->path, strerror(errno));
done:
    free(enc.qc_png);
    return st;
}

/* Parse one payload of a file with n_stages stages into r (r->img and r->qc
 * allocated when present). */
static hv_status parse_payload(const unsigned char *p, size_t n, uint32_t n_stages,
                               hv_case_result *r)
{
    memset(r, 0, sizeof *r);
    size_t off = 4 + sizeof r->c + 4;
    if (n < off) return hv_error_set(HV_ERR_FORMAT, "short record");
    uint32_t state, ns, nv, ni;
    memcpy(&state, p, 4);
    memcpy(&r->c, p + 4, sizeof r->c);
    memcpy(&ns, p + 4 + sizeof r->c, 4);
    if (state != HV_CASE_DONE && state != HV_CASE_FAILED)
        return hv_error_set(HV_ERR_FORMAT, "bad state %u", state);
    if (ns != n_stages) return hv_error_set(HV_ERR_FORMAT, "bad stage count %u", ns);
    if (n < off + ns * sizeof(double) + 4) return hv_error_set(HV_ERR_FORMAT, "short record");
    memcpy(r->seconds, p + off, ns * sizeof(double));
    off += ns * sizeof(double);
    memcpy(&nv, p + off, 4);
    off += 4;
    if (nv > HV_RUN_MAX_VERT || (int32_t)nv != r->c.n_vert)
        return hv_error_set(HV_ERR_FORMAT, "bad vertebra count %u", nv);
    if (n < off + nv * sizeof(hv_run_vrow) + 4) return hv_error_set(HV_ERR_FORMAT, "short record");
    memcpy(r->v, p + off, nv * sizeof(hv_run_vrow));
    off += nv * sizeof(hv_run_vrow);
    memcpy(&ni, p + off, 4);
    off += 4;
    if (ni > HV_IMG_COUNT) return hv_error_set(HV_ERR_FORMAT, "bad image count %u", ni);
    size_t nimg = (size_t)nv * ni * HV_RUN_IMG * HV_RUN_IMG;
    if (n < off + nimg * sizeof(float)) return hv_error_set(HV_ERR_FORMAT, "record size mismatch");
    uint32_t nq = 0;
    size_t qoff = off + nimg * sizeof(float);
    if (n < qoff + 4) return hv_error_set(HV_ERR_FORMAT, "record size mismatch");
    memcpy(&nq, p + qoff, 4);
    if (nq > 1) return hv_error_set(HV_ERR_FORMAT, "bad QC picture count %u", nq);
    size_t nqc = 0, lens = nq ? 4 * (size_t)nv : 0;
    if (n < qoff + 4 + lens) return hv_error_set(HV_ERR_FORMAT, "record size mismatch");
    if (lens) memcpy(r->qc_png_len, p + qoff + 4, lens);
    for (uint32_t k = 0; nq && k < nv; k++) {
        if (r->qc_png_len[k] > HV_RUN_QC_BYTES + 65536u)
            return hv_error_set(HV_ERR_FORMAT, "implausible PNG length %u", r->qc_png_len[k]);
        nqc += r->qc_png_len[k];
    }
    /* the crop volumes' chunks, one section per hv_store_vol */
    size_t coff[HV_STORE_N_VOL], clens[HV_STORE_N_VOL], nvol[HV_STORE_N_VOL];
    uint32_t nc[HV_STORE_N_VOL];
    size_t end = qoff + 4 + lens + nqc;
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        coff[w] = end;
        nvol[w] = 0;
        nc[w] = 0;
        if (n < coff[w] + 4) return hv_error_set(HV_ERR_FORMAT, "record size mismatch");
        memcpy(&nc[w], p + coff[w], 4);
        if (nc[w] > 1)
            return hv_error_set(HV_ERR_FORMAT, "bad %s count %u", hv_store_vol_name(w), nc[w]);
        clens[w] = nc[w] ? 4 * (size_t)nv : 0;
        if (n < coff[w] + 4 + clens[w]) return hv_error_set(HV_ERR_FORMAT, "record size mismatch");
        if (clens[w]) memcpy(r->vol_z_len[w], p + coff[w] + 4, clens[w]);
        for (uint32_t k = 0; nc[w] && k < nv; k++) {
            if (r->vol_z_len[w][k] > HV_RUN_CAM_BYTES + 65536u)
                return hv_error_set(HV_ERR_FORMAT, "implausible %s length %u",
                                    hv_store_vol_name(w), r->vol_z_len[w][k]);
            nvol[w] += r->vol_z_len[w][k];
        }
        end = coff[w] + 4 + clens[w] + nvol[w];
    }
    if (n != end) return hv_error_set(HV_ERR_FORMAT, "record size mismatch");
    if (nimg) {
        r->img = malloc(nimg * sizeof(float));
        if (!r->img) return hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
        memcpy(r->img, p + off, nimg * sizeof(float));
    }
    if (nq) {
        r->qc_png = malloc(nqc ? nqc : 1);
        if (!r->qc_png) {
            free(r->img);
            r->img = NULL;
            return hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
        }
        if (nqc) memcpy(r->qc_png, p + qoff + 4 + lens, nqc);
    }
    for (int w = 0; w < HV_STORE_N_VOL; w++) {
        if (!nc[w]) continue;
        r->vol_z[w] = malloc(nvol[w] ? nvol[w] : 1);
        if (!r->vol_z[w]) {
            hv_case_result_clear(r);
            return hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
        }
        if (nvol[w]) memcpy(r->vol_z[w], p + coff[w] + 4 + clens[w], nvol[w]);
    }
    r->n_img = (int)ni;
    r->state = (int)state;
    r->c.id[sizeof r->c.id - 1] = 0;
    r->c.error[sizeof r->c.error - 1] = 0;
    return HV_OK;
}

static hv_status replay_file(const char *path, const jlayout *now, hv_journal_fn fn, void *user,
                             long *n_rec, long *n_torn)
{
    hv_status st = HV_OK;
    unsigned char *buf = NULL, *raw = NULL;
    size_t cap = 0, raw_cap = 0;
    hv_case_result r;
    memset(&r, 0, sizeof r);
    FILE *f = fopen(path, "rb");
    if (!f) return hv_error_set(HV_ERR_IO, "cannot open journal %s: %s", path, strerror(errno));
    long good_end = 0;
    jlayout l;
    if (layout_read(f, &l, &good_end) && !layout_same(&l, now)) {
        char why[2 * JLAYOUT_MAX + 300];
        layout_why(&l, now, why, sizeof why);
        hv_log_warn("journal %s was written with %s: its cases will run again", path, why);
        goto done;
    }
    if (fseek(f, good_end, SEEK_SET) != 0) {
        st = hv_error_set(HV_ERR_IO, "journal %s: seek: %s", path, strerror(errno));
        goto done;
    }
    for (;;) {
        uint32_t hdr[4] = {0, 0, 0, 0};
        size_t got = fread(hdr, 1, 12, f);
        if (got == 0) break;
        const char *why = NULL;
        int zipped = got == 12 && hdr[0] == JMAGIC_Z;
        if (got < 12) why = "torn frame header";
        else if (hdr[0] != JMAGIC && !zipped) why = "bad magic";
        else if (zipped && fread(&hdr[3], 1, 4, f) != 4) why = "torn frame header";
        else if (hdr[1] > JMAX_PAYLOAD || (zipped && hdr[3] > JMAX_PAYLOAD)) why = "implausible length";
        if (!why) {
            if (hdr[1] > cap) {
                unsigned char *nb = realloc(buf, hdr[1]);
                if (!nb) {
                    st = hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
                    goto done;
                }
                buf = nb;
                cap = hdr[1];
            }
            if (fread(buf, 1, hdr[1], f) != hdr[1]) why = "torn payload";
            else if ((uint32_t)crc32(0L, buf, hdr[1]) != hdr[2]) why = "checksum mismatch";
        }
        const unsigned char *pay = buf;
        size_t pay_len = hdr[1];
        if (!why && zipped) {
            if (hdr[3] > raw_cap) {
                unsigned char *nb = realloc(raw, hdr[3] ? hdr[3] : 1);
                if (!nb) {
                    st = hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
                    goto done;
                }
                raw = nb;
                raw_cap = hdr[3];
            }
            uLongf rl = hdr[3];
            if (uncompress(raw, &rl, buf, hdr[1]) != Z_OK || rl != hdr[3]) why = "corrupt deflate stream";
            pay = raw;
            pay_len = hdr[3];
        }
        if (!why && parse_payload(pay, pay_len, now->stages, &r) != HV_OK) why = "malformed payload";
        if (why) {
            hv_log_warn("journal %s: %s at byte %ld: cutting the file there (the case it held "
                        "will run again)", path, why, good_end);
            (*n_torn)++;
            fclose(f);
            f = NULL;
            if (truncate(path, good_end) != 0) {
                st = hv_error_set(HV_ERR_IO, "truncate %s: %s", path, strerror(errno));
                goto done;
            }
            break;
        }
        good_end = ftell(f);
        (*n_rec)++;
        st = fn(user, &r);
        hv_case_result_clear(&r);
        if (st != HV_OK) goto done;
    }
done:
    hv_case_result_clear(&r);
    if (f) fclose(f);
    free(buf);
    free(raw);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

hv_status hv_journal_replay(const char *dir, int n_stages, const char *const *stage_names,
                            hv_journal_fn fn, void *user, long *n_records, long *n_torn)
{
    *n_records = 0;
    *n_torn = 0;
    hv_status cst = hv_store_check_stages(n_stages, stage_names);
    if (cst != HV_OK) return hv_error_wrap(cst, "journal replay");
    jlayout now;
    layout_now(&now, n_stages, stage_names);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return HV_OK;
        return hv_error_set(HV_ERR_IO, "cannot list %s: %s", dir, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    hv_status st = HV_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if ((strncmp(e->d_name, "rank-", 5) && strncmp(e->d_name, "shard-", 6)) || l < 9 ||
            strcmp(e->d_name + l - 4, ".log"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                st = hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
                goto done;
            }
            names = nn;
        }
        names[n] = hv_strfmt("%s/%s", dir, e->d_name);
        if (!names[n]) {
            st = hv_error_set(HV_ERR_NOMEM, "journal: out of memory");
            goto done;
        }
        n++;
    }
    /* file order is fixed so that ties (same attempt) resolve the same way */
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && st == HV_OK; i++)
        st = replay_file(names[i], &now, fn, user, n_records, n_torn);
done:
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    closedir(d);
    return st;
}
