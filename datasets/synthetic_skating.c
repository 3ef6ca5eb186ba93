/* synthetic_skating.c: synthetic figure-skating programmes in Fis-V's files (synthetic.h, "Fis-V
 * layout"): the plan (skill, elements, TES / PCS / deductions) and the per-clip feature files.
 *
 * Features.  A fixed "backbone" (random directions drawn from the seed, the same for every
 * programme, entries N(0, 1 / C) so each has norm about 1): one direction per element kind and one
 * for connecting skating, and directions for a jump's rotations (its base value), for the
 * execution of each kind and for skating quality.  Clip c of element e is
 *     dir[kind] + 0.8 (base_e / base_ref[kind] - 1) rot + 1.2 (q_e - 0.5) exec[kind]
 *     + 0.6 (skill - 0.5) skating + nuisance + 0.6 noise,
 * a connecting clip dir[skating] + 0.8 (skill - 0.5) skating + nuisance + 0.6 noise, where the
 * nuisance (camera, costume) is one direction per programme and the noise is new per clip.  TES
 * then needs the elements found and added up along the programme, PCS the skating quality
 * averaged over it.  The CLIP-like features use their own directions: 1.5 dir'[kind] plus the
 * execution and skating quality each as one of four coarse grades, plus noise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synthetic-impl.h"
#include "io/npy.h"

#define KINDS 4      /* jump, combination, spin, step sequence */
#define SKATING KINDS /* the direction of connecting skating */
#define CLIP_FRAMES 32

/* Clips each element kind lasts at full length, and the base value its features are relative to. */
static const int kind_clips[KINDS] = {2, 3, 3, 5};
static const double base_ref[KINDS] = {4.0, 7.0, 2.5, 2.8};

/* ---- plan ------------------------------------------------------------------------------------ */

static double round_to(double x, double step) { return floor(x / step + 0.5) * step; }

aqa_status aqa_synthetic_plan_programmes(const aqa_synthetic_config *cfg, aqa_synthetic_programme **out, size_t *n_out) {
    aqa_synthetic_config c = *cfg;
    c.layout = AQA_SYNTH_FISV;
    aqa_status st = aqa__synth_check_config(&c);
    if (st) return st;
    if (!out || !n_out) return aqa_fail(AQA_EINVAL, "aqa_synthetic_plan_programmes: NULL output");
    size_t n = (size_t)cfg->n_videos;
    aqa_synthetic_programme *pv = calloc(n, sizeof *pv);
    size_t *order = malloc(n * sizeof *order);
    if (!pv || !order) {
        free(pv);
        free(order);
        return aqa_fail(AQA_ENOMEM, "synthetic: out of memory planning %zu programmes", n);
    }
    synth_rng master = synth_rng_make(cfg->seed, 0);
    for (size_t i = 0; i < n; i++) {
        aqa_synthetic_programme *p = &pv[i];
        synth_rng r = synth_rng_make(cfg->seed, i + 1);
        p->id = (int)i + 1;
        double k = synth_clamp(0.5 + 0.22 * synth_normal(&r), 0, 1);
        p->skill = k;
        int frames = cfg->min_frames + (int)(synth_uniform(&r) * (cfg->max_frames - cfg->min_frames + 1));
        if (frames > cfg->max_frames) frames = cfg->max_frames;
        p->n_clips = (frames + CLIP_FRAMES - 1) / CLIP_FRAMES;
        /* a short programme: two jumps, a combination, three spins and a step sequence, in a
         * random order */
        int kinds[AQA_SYNTH_ELEMENTS] = {0, 0, 1, 2, 2, 2, 3};
        for (int j = AQA_SYNTH_ELEMENTS; j > 1; j--) {
            int m = (int)(synth_uniform(&r) * j), t = kinds[j - 1];
            kinds[j - 1] = kinds[m];
            kinds[m] = t;
        }
        /* element lengths (shrunk for very short programmes), the rest connecting skating spread
         * over the eight gaps */
        int need = 0;
        for (int j = 0; j < AQA_SYNTH_ELEMENTS; j++) need += kind_clips[kinds[j]];
        double squeeze = need > 0.8 * p->n_clips ? 0.8 * p->n_clips / need : 1;
        int used = 0;
        for (int j = 0; j < AQA_SYNTH_ELEMENTS; j++) {
            p->kind[j] = kinds[j];
            p->n_elem_clips[j] = (int)fmax(1, floor(kind_clips[kinds[j]] * squeeze));
            used += p->n_elem_clips[j];
        }
        double gaps[AQA_SYNTH_ELEMENTS + 1], gsum = 0;
        for (int j = 0; j <= AQA_SYNTH_ELEMENTS; j++) gsum += gaps[j] = 0.3 + synth_uniform(&r);
        int free_clips = p->n_clips - used, at = 0;
        for (int j = 0; j < AQA_SYNTH_ELEMENTS; j++) {
            int g = (int)floor(free_clips * gaps[j] / gsum);
            at += g;
            p->first_clip[j] = at;
            at += p->n_elem_clips[j];
        }
        /* scores: harder elements and cleaner execution with skill; a jump executed badly falls */
        double tes = 0;
        p->falls = 0;
        for (int j = 0; j < AQA_SYNTH_ELEMENTS; j++) {
            double a = synth_clamp(k + 0.15 * synth_normal(&r), 0, 1);
            double q = synth_clamp(0.15 + 0.75 * k + 0.18 * synth_normal(&r), 0, 1);
            static const double lo[KINDS] = {2.1, 4.0, 1.5, 1.8}, span[KINDS] = {4.0, 6.0, 2.0, 2.1};
            double base = round_to(lo[p->kind[j]] + span[p->kind[j]] * a, 0.1);
            double goe = (q - 0.45) * 0.5 * base;
            if (p->kind[j] <= 1 && q < 0.12) { /* a fall */
                goe = -0.5 * base;
                p->falls++;
            }
            p->base[j] = base;
            p->goe[j] = round_to(goe, 0.01);
            p->quality[j] = q;
            tes += base + p->goe[j];
        }
        double comp = 0;
        for (int m = 0; m < 5; m++) comp += round_to(synth_clamp(2.5 + 6.5 * k + 0.35 * synth_normal(&r), 0, 10), 0.25);
        p->tes = round_to(tes, 0.01);
        p->pcs = round_to(0.8 * comp, 0.01);
        p->ded = p->falls + (synth_uniform(&r) < 0.03); /* now and then a time or costume deduction */
        p->feature_seed = synth_next(&r);
    }
    /* the split: a seeded order, every 1 / (1 - train_fraction)-th programme to test */
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(synth_uniform(&master) * (double)i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    double q = 1.0 - cfg->train_fraction, phase = synth_uniform(&master);
    for (size_t g = 0; g < n; g++) pv[order[g]].split = floor((double)(g + 1) * q + phase) > floor((double)g * q + phase);
    free(order);
    *out = pv;
    *n_out = n;
    return AQA_OK;
}

/* ---- features ---------------------------------------------------------------------------------- */

/* The backbone's directions: row r of a [rows, C] table, entries N(0, 1 / C), from the seed. */
static void direction(const aqa_synthetic_config *cfg, uint64_t table, int row, float *out) {
    int C = cfg->feature_dim;
    synth_rng r = synth_rng_make(cfg->seed ^ 0x5EA7ULL, (table << 16) | (uint64_t)row);
    for (int k = 0; k < C; k++) out[k] = (float)(synth_normal(&r) / sqrt((double)C));
}

/* One of four coarse grades of x in [0, 1], centred: -0.5, -1/6, 1/6, 0.5. */
static double grade(double x) { return (fmin(3, floor(4 * x)) / 3.0) - 0.5; }

/* Adds w * v[C] to out[C]. */
static void axpy(float *out, const float *v, double w, int C) {
    for (int k = 0; k < C; k++) out[k] += (float)(w * v[k]);
}

aqa_status aqa_synthetic_programme_features(const aqa_synthetic_config *cfg, const aqa_synthetic_programme *p, float *cbp,
                                            float *vlp) {
    if (!cfg || !p) return aqa_fail(AQA_EINVAL, "aqa_synthetic_programme_features: NULL argument");
    int C = cfg->feature_dim;
    if (C < 8 || C > 4096) return aqa_fail(AQA_EINVAL, "synthetic: feature width %d outside 8..4096", C);
    /* tables: 0 kinds + skating, 1 execution per kind, 2 {rotations, skating quality}, 3 nuisance
     * (per programme), 4.. the CLIP-like ones */
    float *dir = malloc(sizeof *dir * (size_t)C * 16);
    if (!dir) return aqa_fail(AQA_ENOMEM, "synthetic: out of memory");
    float *kind = dir, *exec = dir + 5 * C, *rot = dir + 9 * C, *skate = dir + 10 * C, *nuis = dir + 11 * C,
          *vkind = dir + 12 * C, *vq = dir + 14 * C, *vskate = dir + 15 * C;
    for (int j = 0; j <= KINDS; j++) direction(cfg, 0, j, kind + j * C);
    for (int j = 0; j < KINDS; j++) direction(cfg, 1, j, exec + j * C);
    direction(cfg, 2, 0, rot);
    direction(cfg, 2, 1, skate);
    direction(cfg, 3, p->id, nuis);
    direction(cfg, 4, 0, vkind);     /* CLIP-like: elements (any kind) */
    direction(cfg, 4, 1, vkind + C); /* and connecting skating */
    direction(cfg, 4, 2, vq);
    direction(cfg, 4, 3, vskate);
    synth_rng r = synth_rng_make(p->feature_seed, 1);
    for (int c = 0; c < p->n_clips; c++) {
        int e = -1;
        for (int j = 0; j < AQA_SYNTH_ELEMENTS; j++)
            if (c >= p->first_clip[j] && c < p->first_clip[j] + p->n_elem_clips[j]) e = j;
        if (cbp) {
            float *f = cbp + (size_t)c * C;
            memset(f, 0, sizeof *f * (size_t)C);
            if (e >= 0) {
                int kd = p->kind[e];
                axpy(f, kind + kd * C, 1.0, C);
                axpy(f, rot, 0.8 * (p->base[e] / base_ref[kd] - 1), C);
                axpy(f, exec + kd * C, 1.2 * (p->quality[e] - 0.5), C);
                axpy(f, skate, 0.6 * (p->skill - 0.5), C);
            } else {
                axpy(f, kind + SKATING * C, 1.0, C);
                axpy(f, skate, 0.8 * (p->skill - 0.5), C);
            }
            axpy(f, nuis, 1.0, C);
            for (int k = 0; k < C; k++) f[k] += (float)(0.6 * synth_normal(&r) / sqrt((double)C));
        }
        if (vlp) {
            float *g = vlp + (size_t)c * C;
            memset(g, 0, sizeof *g * (size_t)C);
            axpy(g, vkind + (e >= 0 ? 0 : C), 1.5, C);
            if (e >= 0) axpy(g, vq, grade(p->quality[e]), C);
            axpy(g, vskate, grade(p->skill), C);
            for (int k = 0; k < C; k++) g[k] += (float)(0.5 * synth_normal(&r) / sqrt((double)C));
        }
    }
    free(dir);
    return AQA_OK;
}

/* ---- files ----------------------------------------------------------------------------------- */

static aqa_status write_lists(const aqa_synthetic_config *cfg, const aqa_synthetic_programme *pv, size_t n) {
    aqa_atomic_file *af;
    aqa_status st;
    for (int sp = 0; sp < 2; sp++) {
        if ((st = aqa__synth_open_text(cfg->out_dir, sp ? "test_dataset.txt" : "train_dataset.txt", &af))) return st;
        FILE *f = aqa_atomic_stream(af);
        for (size_t i = 0; i < n; i++)
            if (pv[i].split == sp) fprintf(f, "%d %.2f %.2f %g\n", pv[i].id, pv[i].tes, pv[i].pcs, pv[i].ded);
        if ((st = aqa_atomic_commit(af))) return st;
    }
    if ((st = aqa__synth_open_text(cfg->out_dir, "fs_dataset.csv", &af))) return st;
    FILE *f = aqa_atomic_stream(af);
    fprintf(f, "number,total,tes,pcs,ded,,,\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%d,%.2f,%.2f,%.2f,%g,Synthetic Skater %03d,2024,SYN\n", pv[i].id, pv[i].tes + pv[i].pcs - pv[i].ded,
                pv[i].tes, pv[i].pcs, pv[i].ded, pv[i].id);
    if ((st = aqa_atomic_commit(af))) return st;
    if ((st = aqa__synth_open_text(cfg->out_dir, "synthetic_programmes.csv", &af))) return st;
    f = aqa_atomic_stream(af);
    fprintf(f, "id,split,skill,n_clips,falls,tes,pcs,ded\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%d,%s,%.6f,%d,%d,%.2f,%.2f,%g\n", pv[i].id, pv[i].split ? "test" : "train", pv[i].skill, pv[i].n_clips,
                pv[i].falls, pv[i].tes, pv[i].pcs, pv[i].ded);
    return aqa_atomic_commit(af);
}

aqa_status aqa__synth_generate_fisv(const aqa_synthetic_config *cfg) {
    aqa_synthetic_programme *pv = NULL;
    size_t n = 0;
    aqa_status st = aqa_synthetic_plan_programmes(cfg, &pv, &n);
    if (st) return st;
    char dirs[2][4200], path[8500];
    snprintf(dirs[0], sizeof dirs[0], "%s/features", cfg->out_dir);
    snprintf(dirs[1], sizeof dirs[1], "%s/clip_features", cfg->out_dir);
    for (int k = 0; k < 2 && !st; k++) st = aqa__synth_make_dirs(dirs[k]);
    size_t C = (size_t)cfg->feature_dim;
    for (size_t i = 0; i < n && !st; i++) {
        size_t rows = (size_t)pv[i].n_clips;
        float *a = malloc(sizeof *a * rows * C), *b = malloc(sizeof *b * rows * C);
        if (!a || !b) st = aqa_fail(AQA_ENOMEM, "synthetic: out of memory");
        if (!st) st = aqa_synthetic_programme_features(cfg, &pv[i], a, b);
        for (int k = 0; k < 2 && !st; k++) {
            snprintf(path, sizeof path, "%s/%d.npy", dirs[k], pv[i].id);
            st = aqa_npy_write_f32_2d(path, k ? b : a, rows, C);
        }
        free(a);
        free(b);
        if (cfg->progress && (i + 1 == n || i % 50 == 0))
            fprintf(stderr, "\rsynthetic: %zu/%zu programmes%s", i + 1, n, i + 1 == n ? "\n" : "");
    }
    if (!st) st = write_lists(cfg, pv, n);
    if (!st) st = aqa__synth_write_config(cfg);
    free(pv);
    return st;
}
