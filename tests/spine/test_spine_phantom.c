/*
 * test_spine_phantom: straightening checked against the phantom's exact
 * ground truth (include/hv/phantom.h), on a short scoliotic T11-L3 range with
 * fractures, at 1 mm RAS, 0.7 x 0.7 x 1.25 mm LPS, 0.7 x 0.7 x 2 mm LPS and an
 * oblique grid.
 *
 * Three height measurements per vertebra at the anterior, middle and
 * posterior points (1/6, 1/2, 5/6 of the depth, through the true centre):
 *  - oracle: the SOURCE mask sampled along the phantom's true axis (7 x 3
 *    lines, 0.05 mm steps, nearest voxel). This is the best any method can
 *    read from a voxel-centre mask; its error against the truth is the
 *    mask's own quantisation (measured up to 0.86 mm at 1 mm over a 24-case
 *    sweep, 1.08 mm at 1.25 mm slices), so the 0.5 mm cannot be asked
 *    of any straightening against the truth itself;
 *  - soft: the label's indicator straightened with trilinear interpolation
 *    and integrated along the straightened axis (same 7 x 3 columns): the
 *    geometry of our straightening, without the label grid's own rounding.
 *    Issue bound 0.5 mm against the oracle (measured <= 0.31 mm at 1 mm,
 *    <= 0.41 mm at 1.25 mm over the sweep);
 *  - nearest: the straightened label volume itself (plane fit over 7 x 3
 *    columns): what the crops carry, double-rounded (source grid, then the
 *    straightened grid). Bounds against the truth from the sweep: 1 mm grid
 *    and oblique measured <= 0.92 mm -> 1.0 mm; 1.25 mm slices <= 1.22 mm ->
 *    1.5 mm; 2 mm slices -> 2.0 mm (one slice).
 * Also: every body centroid on the central axis within 1 voxel (sweep worst
 * 0.76), craniocaudal order, no flags, and carry back onto 1 mm grids:
 * >= 99 % of each body's voxels (issue bound; sweep worst 99.27 %), >= 98.5 %
 * of each whole label (arch beyond the 128 mm cross-section and the
 * disc-level bend; measured >= 98.7 %). Not onto the 0.7 mm grid: a 1 mm
 * straightened grid cannot hold its boundary detail (97.8-98.8 % there).
 */
#include "hv/phantom.h"
#include "hv/spine.h"
#include "hv_test.h"
#include "spine_check.h"

typedef struct stats {
    double axis, oracle, soft, nearest, carry, carry_whole;
} stats;

static double oracle_height(const hv_phantom_case *pc, const hv_phantom_vert *pv, double a_mm)
{
    double inv[4][4], lat[3];
    if (hv_affine_invert(pc->mask->affine, inv) != HV_OK) return NAN;
    lat[0] = pv->axis[1] * pv->anterior[2] - pv->axis[2] * pv->anterior[1];
    lat[1] = pv->axis[2] * pv->anterior[0] - pv->axis[0] * pv->anterior[2];
    lat[2] = pv->axis[0] * pv->anterior[1] - pv->axis[1] * pv->anterior[0];
    const hv_volume *mk = pc->mask;
    double sum = 0;
    int n = 0;
    for (int li = -3; li <= 3; li++)
        for (int aj = -1; aj <= 1; aj++) {
            double len = 0;
            for (double u = -35; u <= 35; u += 0.05) {
                double w[3], x[3];
                for (int d = 0; d < 3; d++)
                    w[d] = pv->center[d] + li * lat[d] + (a_mm + aj) * pv->anterior[d] + u * pv->axis[d];
                hv_affine_apply(inv, w, x);
                long xi = lround(x[0]), yi = lround(x[1]), zi = lround(x[2]);
                if (xi < 0 || yi < 0 || zi < 0 || xi >= mk->dim[0] || yi >= mk->dim[1] || zi >= mk->dim[2])
                    continue;
                len += ((const uint8_t *)mk->data)[hv_vol_idx(mk, xi, yi, zi)] == pv->label ? 0.05 : 0;
            }
            sum += len;
            n++;
        }
    return sum / n;
}

static double soft_height(const hv_volume *sv, double fi, double fj, double step)
{
    double sum = 0;
    int n = 0;
    for (int li = -3; li <= 3; li++)
        for (int aj = -1; aj <= 1; aj++) {
            int64_t i = lround(fi) + li, j = lround(fj) + aj;
            if (i < 0 || j < 0 || i >= sv->dim[0] || j >= sv->dim[1]) continue;
            double len = 0;
            for (int64_t k = 0; k < sv->dim[2]; k++) len += ((const float *)sv->data)[hv_vol_idx(sv, i, j, k)];
            sum += len;
            n++;
        }
    return n ? sum / n * step : NAN;
}

static void check(const char *what, const hv_phantom_case *pc, const hv_spine_case *c, double tol_nn,
                  int carry, stats *s)
{
    const hv_spine_map *m = c->map;
    memset(s, 0, sizeof *s);
    s->carry = s->carry_whole = 1;
    double prev = INFINITY;
    for (int q = 0; q < pc->n_vert; q++) {
        const hv_phantom_vert *pv = &pc->vert[q];
        if (pv->truncated) continue;
        long idx = hv_spine_verts_find(c->verts, pv->label);
        HV_CHECK(idx >= 0, "%s: label %d missing", what, pv->label);
        if (idx < 0) continue;
        const hv_spine_vert *v = &c->verts->v[idx];
        HV_CHECK(v->flags == 0, "%s: label %d flagged %s", what, pv->label, hv_spine_flags_str(v->flags));
        HV_CHECK(v->has_body && v->row < prev, "%s: label %d row %.1f not below %.1f", what,
                 pv->label, v->row, prev);
        prev = v->row;
        double ijk[3];
        hv_spine_map_from_world(m, v->body_centroid, v->row, ijk);
        double off = fmax(fabs(ijk[0] - m->ci), fabs(ijk[1] - m->cj));
        s->axis = fmax(s->axis, off);
        HV_CHECK(off <= 1.0, "%s: label %d body centroid (%.2f, %.2f) off the axis", what,
                 pv->label, ijk[0], ijk[1]);
        /* the label's indicator straightened with trilinear interpolation */
        hv_volume *ind = NULL, *sv = NULL;
        HV_CHECK_OK(hv_vol_create(&ind, pc->mask->dim, HV_DTYPE_F32, pc->mask->affine));
        if (!ind) continue;
        for (size_t n = 0; n < ind->nvox; n++)
            ((float *)ind->data)[n] = ((const uint8_t *)pc->mask->data)[n] == pv->label ? 1.0f : 0.0f;
        HV_CHECK_OK(hv_spine_straighten(m, ind, HV_INTERP_LINEAR, 0.0, &sv));
        hv_vol_free(ind);
        if (!sv) continue;
        double cj[3];
        hv_spine_map_from_world(m, pv->center, v->row, cj);
        const double pos[3] = {pv->depth_mm / 3, 0, -pv->depth_mm / 3};
        const char *nm[3] = {"anterior", "middle", "posterior"};
        for (int h = 0; h < 3; h++) {
            double truth = pv->observed_mm[h];
            double orc = oracle_height(pc, pv, pos[h]);
            double soft = soft_height(sv, cj[0], cj[1] + pos[h] / m->step, m->step);
            double nn = chk_height2(c->labels, pv->label, cj[0], cj[1] + pos[h] / m->step, 3, 1) * m->step;
            s->oracle = fmax(s->oracle, fabs(orc - truth));
            s->soft = fmax(s->soft, fabs(soft - orc));
            s->nearest = fmax(s->nearest, fabs(nn - truth));
            HV_CHECK(fabs(soft - orc) <= 0.5, "%s: label %d (grade %d) %s: straightened %.2f mm, source "
                     "mask along the true axis %.2f mm (truth %.2f)", what, pv->label, pv->grade, nm[h],
                     soft, orc, truth);
            HV_CHECK(fabs(nn - truth) <= tol_nn, "%s: label %d (grade %d) %s height in the straightened "
                     "labels %.2f mm, truth %.2f mm", what, pv->label, pv->grade, nm[h], nn, truth);
        }
        hv_vol_free(sv);
    }
    if (!carry) return;
    int wl;
    s->carry = chk_carry_back(m, c->labels, pc->mask, 1, &wl);
    HV_CHECK(s->carry >= 0.99, "%s: carry back: body of label %d keeps %.4f of its voxels", what, wl, s->carry);
    s->carry_whole = chk_carry_back(m, c->labels_whole, pc->mask, 0, &wl);
    HV_CHECK(s->carry_whole >= 0.985, "%s: carry back: label %d keeps %.4f of its voxels", what, wl,
             s->carry_whole);
}

static void run(const char *what, hv_phantom_opts *o, int index, double tol_h, int carry)
{
    hv_phantom_case *pc = NULL;
    hv_spine_case *c = NULL;
    stats s;
    double t0 = hv_time_now();
    HV_CHECK_OK(hv_phantom_case_make(o, index, &pc));
    if (pc) HV_CHECK_OK(hv_phantom_case_render(o, pc));
    if (pc && pc->mask) {
        double t1 = hv_time_now();
        HV_CHECK_OK(hv_spine_case_run(pc->ct, pc->mask, NULL, NULL, &c));
        double t2 = hv_time_now();
        if (c) {
            check(what, pc, c, tol_h, carry, &s);
            printf("# %s case %d: grid %lldx%lldx%lld, render %.2f s, spine stage %.2f s; worst: axis "
                   "offset %.3f voxel, oracle-truth %.3f mm, straightened-oracle %.3f mm, labels-truth "
                   "%.3f mm; carry back: bodies >= %.4f, whole >= %.4f\n", what, index,
                   (long long)pc->mask->dim[0], (long long)pc->mask->dim[1], (long long)pc->mask->dim[2],
                   t1 - t0, t2 - t1, s.axis, s.oracle, s.soft, s.nearest, s.carry, s.carry_whole);
        }
    }
    hv_spine_case_free(c);
    hv_phantom_case_free(pc);
}

/* --sweep (ctest test_spine_phantom_sweep, labels spine slow): the sweep the
 * bounds above come from: seed 99, T9-L4, cases 0-7 on each of 1 mm RAS,
 * oblique 1 mm and 0.7 x 0.7 x 1.25 mm LPS, same checks. */
static void sweep(void)
{
    hv_phantom_opts o;
    for (int g = 0; g < 3; g++)
        for (int idx = 0; idx < 8; idx++) {
            hv_phantom_opts_default(&o);
            o.seed = 99;
            o.first_label = 16;
            o.last_label = 23;
            o.scoliosis_rate = 1.0;
            o.fracture_rate = 0.4;
            if (g == 1) o.orientation = HV_PHANTOM_OBLIQUE;
            if (g == 2) {
                o.orientation = HV_PHANTOM_LPS;
                o.spacing[0] = o.spacing[1] = 0.7;
                o.spacing[2] = 1.25;
            }
            /* carry back onto the 0.7 mm grid is not checked: a 1 mm
             * straightened grid cannot hold the finer grid's boundary detail
             * (measured 97.8-98.8 % of body voxels return there, >= 99.3 %
             * on the 1 mm grids) */
            run(g == 0 ? "sweep-1mm" : g == 1 ? "sweep-oblique" : "sweep-1.25", &o, idx,
                g == 2 ? 1.5 : 1.0, g != 2);
        }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--sweep") == 0) {
        sweep();
        return hv_test_done();
    }
    hv_phantom_opts o;
    hv_phantom_opts_default(&o);
    o.seed = 20251125;
    o.first_label = 18;       /* T11 */
    o.last_label = 22;        /* L3 */
    o.scoliosis_rate = 1.0;   /* every case scoliotic */
    o.fracture_rate = 0.4;    /* some wedge/biconcave/crush bodies */
    /* label-volume bounds (tol_nn) from the sweep described at the top */
    run("1mm-ras", &o, 0, 1.0, 1);
    run("1mm-ras", &o, 1, 1.0, 0);
    o.spacing[0] = 0.7;
    o.spacing[1] = 0.7;
    o.spacing[2] = 1.25;
    o.orientation = HV_PHANTOM_LPS;
    run("aniso-lps-1.25", &o, 2, 1.5, 0);
    o.spacing[2] = 2.0;
    run("aniso-lps-2.0", &o, 4, 2.0, 0);
    o.spacing[0] = o.spacing[1] = o.spacing[2] = 1.0;
    o.orientation = HV_PHANTOM_OBLIQUE;
    run("oblique", &o, 3, 1.0, 1);
    return hv_test_done();
}
