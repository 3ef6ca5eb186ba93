/* synthetic_surgery.c: synthetic surgical training trials in JIGSAWS' files (synthetic.h, "JIGSAWS
 * layout"): the plan (task, surgeon, fold, hidden skill, GRS items), the renderer of a trial's
 * frames and the writer of the frame folders, label.pkl and splits.pkl.
 *
 * The picture, top-down in frame units (x right, y down, 0..1): a tissue pad over the board, the
 * task's fixture (an incision, four rings, two thread ends), the two instrument shafts from the
 * lower corners to their tips, the needle (an arc) held by the right tip and the thread from it.
 * A trial is its throws one after another, each taking an equal share of the frames: the tips
 * approach the target, hold still for a while (hesitation), perform the action once per attempt
 * (a needle pass along a half circle, or a loop of the right tip around the left one; a failed
 * attempt stops half way and backs out), then pull the thread away.  What the throw left behind
 * (a stitch across the incision, a threaded ring, a knot) stays in the later frames, as neat as
 * the trial's tidiness. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synthetic-impl.h"
#include "image/canvas.h"

static const char *const task_names[AQA_SYNTH_TASKS] = {"Suturing", "Needle_Passing", "Knot_Tying"};
/* JIGSAWS' trials per task (39, 28, 36), the proportions of the generated set */
static const int task_share[AQA_SYNTH_TASKS] = {39, 28, 36};
/* The eight surgeons B..I: a level each (JIGSAWS has novices, intermediates and experts) */
#define N_SURGEONS 8
static const double surgeon_level[N_SURGEONS] = {0.25, 0.55, 0.85, 0.8, 0.5, 0.3, 0.2, 0.35};

/* ---- plan ------------------------------------------------------------------------------------ */

/* Trials of each task: the proportions of JIGSAWS, every task at least 4 (one per fold). */
static void task_counts(int n, int counts[AQA_SYNTH_TASKS]) {
    int total = task_share[0] + task_share[1] + task_share[2], sum = 0;
    for (int k = 0; k < AQA_SYNTH_TASKS; k++) {
        counts[k] = (int)floor((double)n * task_share[k] / total + 0.5);
        if (counts[k] < 4) counts[k] = 4;
        sum += counts[k];
    }
    /* settle the rounding on the largest task that can give (n >= 12 makes this end) */
    while (sum != n) {
        int k = 0;
        for (int j = 1; j < AQA_SYNTH_TASKS; j++)
            if (counts[j] > counts[k]) k = j;
        counts[k] += sum < n ? 1 : -1;
        sum += sum < n ? 1 : -1;
    }
}

aqa_status aqa_synthetic_plan_trials(const aqa_synthetic_config *cfg, aqa_synthetic_trial **out, size_t *n_out) {
    aqa_synthetic_config c = *cfg;
    c.layout = AQA_SYNTH_JIGSAWS;
    aqa_status st = aqa__synth_check_config(&c);
    if (st) return st;
    if (!out || !n_out) return aqa_fail(AQA_EINVAL, "aqa_synthetic_plan_trials: NULL output");
    size_t n = (size_t)cfg->n_videos;
    aqa_synthetic_trial *tv = calloc(n, sizeof *tv);
    if (!tv) return aqa_fail(AQA_ENOMEM, "synthetic: out of memory planning %zu trials", n);
    int counts[AQA_SYNTH_TASKS];
    task_counts(cfg->n_videos, counts);
    synth_rng master = synth_rng_make(cfg->seed, 0);
    size_t i = 0;
    for (int task = 0; task < AQA_SYNTH_TASKS; task++) {
        /* folds: a seeded order of the task's trials, dealt round robin (each surgeon's trials land
         * in different folds) */
        int m = counts[task], *order = malloc((size_t)m * sizeof *order);
        if (!order) {
            free(tv);
            return aqa_fail(AQA_ENOMEM, "synthetic: out of memory");
        }
        for (int j = 0; j < m; j++) order[j] = j;
        for (int j = m; j > 1; j--) {
            int k = (int)(synth_uniform(&master) * j), t = order[j - 1];
            order[j - 1] = order[k];
            order[k] = t;
        }
        for (int j = 0; j < m; j++, i++) {
            aqa_synthetic_trial *tr = &tv[i];
            synth_rng r = synth_rng_make(cfg->seed, i + 1);
            tr->task = task;
            tr->surgeon = j % N_SURGEONS;
            snprintf(tr->name, sizeof tr->name, "%s_%c%03d", task_names[task], 'B' + tr->surgeon, j / N_SURGEONS + 1);
            tr->fold = -1;
            for (int k = 0; k < m; k++)
                if (order[k] == j) tr->fold = k % 4;
            double s = synth_clamp(surgeon_level[tr->surgeon] + 0.12 * synth_normal(&r), 0, 1);
            tr->skill = s;
            tr->score = 0;
            for (int g = 0; g < AQA_SYNTH_GRS; g++) {
                tr->grs[g] = synth_clamp(floor(1 + 4 * (s + 0.1 * synth_normal(&r)) + 0.5), 1, 5);
                tr->score += tr->grs[g];
            }
            /* an expert finishes sooner */
            double len = synth_clamp(0.8 * (1 - s) + 0.2 * synth_uniform(&r), 0, 1);
            tr->n_frames = cfg->min_frames + (int)lround(len * (cfg->max_frames - cfg->min_frames));
            tr->n_throws = task == 2 ? 3 : AQA_SYNTH_THROWS;
            double irregular = 0.06 * (1 - s);
            for (int k = 0; k < tr->n_throws; k++) {
                double base_x = task == 1 ? 0.2 + 0.2 * k : 0.5, base_y = task == 1 ? 0.3 : task == 0 ? 0.25 + 0.15 * k : 0.5;
                tr->target_x[k] = base_x + irregular * synth_normal(&r);
                tr->target_y[k] = base_y + irregular * synth_normal(&r);
                tr->retries[k] = (synth_uniform(&r) < 0.55 * (1 - s)) + (synth_uniform(&r) < 0.2 * (1 - s));
            }
            tr->tremor = 0.004 + 0.025 * (1 - s);
            tr->pause = 0.05 + 0.3 * (1 - s);
            tr->tidiness = synth_clamp(0.3 + 0.7 * s + 0.1 * synth_normal(&r), 0, 1);
            tr->cam_dx = 0.03 * (2 * synth_uniform(&r) - 1);
            tr->cam_dy = 0.03 * (2 * synth_uniform(&r) - 1);
            for (int ch = 0; ch < 3; ch++) tr->pad_tint[ch] = (int)lround(12 * (2 * synth_uniform(&r) - 1));
            tr->render_seed = synth_next(&r);
        }
        free(order);
    }
    *out = tv;
    *n_out = n;
    return AQA_OK;
}

/* ---- motion ------------------------------------------------------------------------------------ */

typedef struct tips {
    double lx, ly, rx, ry; /* left and right tips, frame units */
    double needle;         /* needle angle (radians) */
    int throw_done;        /* throws completed before this frame */
} tips;

static double ease(double x) {
    x = synth_clamp(x, 0, 1);
    return x * x * (3 - 2 * x);
}

/* Zero-mean unit noise of (seed, t, channel). */
static double noise(uint64_t seed, int t, int ch) {
    synth_rng r = synth_rng_make(seed, ((uint64_t)(unsigned)t << 4) | (unsigned)ch);
    return synth_normal(&r);
}

/* Where the tips are at frame t. */
static tips motion(const aqa_synthetic_trial *tr, int t) {
    const double R0x = 0.74, R0y = 0.8, L0x = 0.26, L0y = 0.8;
    tips p = {L0x, L0y, R0x, R0y, 0, 0};
    double per = (double)tr->n_frames / tr->n_throws;
    int k = (int)(t / per);
    if (k >= tr->n_throws) k = tr->n_throws - 1;
    p.throw_done = k;
    double u = (t - k * per) / per; /* progress within the throw */
    double tx = tr->target_x[k], ty = tr->target_y[k];
    double hold = tr->pause, a = (1 - hold) * 0.25, act = (1 - hold) * 0.5;
    double lx = tx - 0.13, ly = ty + 0.04; /* the left tip steadies the tissue beside the target */
    if (tr->task == 2) lx = tx - 0.04, ly = ty + 0.02;
    if (u < a) { /* approach */
        double e = ease(u / a);
        p.rx = R0x + (tx + 0.07 - R0x) * e, p.ry = R0y + (ty - R0y) * e;
        p.lx = L0x + (lx - L0x) * e, p.ly = L0y + (ly - L0y) * e;
        return p;
    }
    p.lx = lx, p.ly = ly;
    if (u < a + hold) { /* hesitation */
        p.rx = tx + 0.07, p.ry = ty;
        return p;
    }
    if (u < a + hold + act) { /* the attempts: failed ones back out half way */
        int tries = 1 + tr->retries[k];
        double v = (u - a - hold) / act * tries;
        int attempt = (int)v;
        double phi = v - attempt;
        if (attempt < tries - 1) phi = phi < 0.5 ? phi : 1 - phi; /* up to half, then back */
        if (tr->task == 2) { /* a loop of the right tip around the left one */
            double ang = 2 * M_PI * phi;
            p.rx = lx + 0.07 * cos(ang), p.ry = ly - 0.07 * sin(ang);
        } else { /* a needle pass along a half circle through the target */
            double ang = M_PI * phi;
            p.rx = tx + 0.07 * cos(ang), p.ry = ty - 0.05 * sin(ang);
            p.needle = ang;
        }
        return p;
    }
    /* pull the thread away and let go */
    double e = ease((u - a - hold - act) / (1 - a - hold - act));
    p.rx = tx - 0.07 + (0.2) * e, p.ry = ty - 0.12 * e;
    p.needle = M_PI;
    p.lx = lx + (L0x - lx) * e, p.ly = ly + (L0y - ly) * e;
    if (e > 0.99) p.throw_done = k + 1;
    return p;
}

/* ---- drawing ---------------------------------------------------------------------------------- */

static aqa_rgb shade(int r, int g, int b, const int *t) {
    int v[3] = {r + t[0], g + t[1], b + t[2]};
    for (int k = 0; k < 3; k++) v[k] = v[k] < 0 ? 0 : v[k] > 255 ? 255 : v[k];
    return aqa_rgb_make(v[0], v[1], v[2]);
}

/* Board, pad and the task's fixture (what does not move). */
static void draw_fixture(const aqa_synthetic_config *cfg, const aqa_synthetic_trial *tr, aqa_image *im) {
    double W = cfg->width, H = cfg->height, ox = tr->cam_dx * H, oy = tr->cam_dy * H;
    aqa_canvas_fill(im, aqa_rgb_make(70, 95, 85));
    aqa_canvas_rect(im, (int)lround(0.12 * W + ox), (int)lround(0.12 * H + oy), (int)lround(0.76 * W),
                    (int)lround(0.76 * H), shade(222, 160, 150, tr->pad_tint));
    aqa_rgb dark = aqa_rgb_make(120, 50, 50);
    if (tr->task == 0) /* the incision */
        aqa_canvas_line(im, 0.5 * W + ox, 0.2 * H + oy, 0.5 * W + ox, 0.8 * H + oy, fmax(1.0, 0.02 * H), dark, 1);
    if (tr->task == 1) /* four rings on posts */
        for (int k = 0; k < 4; k++)
            aqa_canvas_ring(im, (0.2 + 0.2 * k) * W + ox, 0.3 * H + oy, 0.05 * H, fmax(1.0, 0.015 * H),
                            aqa_rgb_make(90, 90, 100), 1);
    if (tr->task == 2) { /* the two thread ends */
        aqa_canvas_line(im, 0.3 * W + ox, 0.62 * H + oy, 0.45 * W + ox, 0.52 * H + oy, 1, aqa_rgb_make(40, 40, 140), 1);
        aqa_canvas_line(im, 0.7 * W + ox, 0.62 * H + oy, 0.55 * W + ox, 0.52 * H + oy, 1, aqa_rgb_make(40, 40, 140), 1);
    }
}

/* What completed throws left: stitches, threaded rings, knots (untidy ones longer or looser). */
static void draw_results(const aqa_synthetic_config *cfg, const aqa_synthetic_trial *tr, int done, aqa_image *im) {
    double W = cfg->width, H = cfg->height, ox = tr->cam_dx * H, oy = tr->cam_dy * H;
    double mess = 1 - tr->tidiness;
    aqa_rgb thread = aqa_rgb_make(40, 40, 140);
    for (int k = 0; k < done && k < tr->n_throws; k++) {
        double x = tr->target_x[k] * W + ox, y = tr->target_y[k] * H + oy;
        if (tr->task == 0) {
            double half = (0.05 + 0.06 * mess) * W, tilt = 0.05 * mess * H * (k % 2 ? 1 : -1);
            aqa_canvas_line(im, x - half, y - tilt, x + half, y + tilt, 1, thread, 1);
        } else if (tr->task == 1) {
            aqa_canvas_line(im, x, y - (0.06 + 0.05 * mess) * H, x + 0.04 * W, y + 0.06 * H, 1, thread, 1);
        } else {
            aqa_canvas_circle(im, x, y, fmax(0.8, (0.03 + 0.05 * mess) * H), thread, 1);
        }
    }
}

static void draw_instruments(const aqa_synthetic_config *cfg, const aqa_synthetic_trial *tr, const tips *p, int t,
                             aqa_image *im) {
    double W = cfg->width, H = cfg->height, ox = tr->cam_dx * H, oy = tr->cam_dy * H;
    double j = tr->tremor;
    double lx = (p->lx + j * noise(tr->render_seed, t, 0)) * W + ox, ly = (p->ly + j * noise(tr->render_seed, t, 1)) * H + oy;
    double rx = (p->rx + j * noise(tr->render_seed, t, 2)) * W + ox, ry = (p->ry + j * noise(tr->render_seed, t, 3)) * H + oy;
    aqa_rgb steel = aqa_rgb_make(185, 190, 200), jaw = aqa_rgb_make(60, 60, 70);
    double w = fmax(1.0, 0.045 * H);
    /* the thread from the needle back to where the last throw ended (or the pad's edge) */
    int done = p->throw_done;
    double ax = done > 0 ? tr->target_x[done - 1] * W + ox : 0.15 * W + ox, ay = done > 0 ? tr->target_y[done - 1] * H + oy : 0.85 * H + oy;
    aqa_canvas_line(im, ax, ay, rx, ry, 1, aqa_rgb_make(40, 40, 140), 1);
    aqa_canvas_line(im, -0.05 * W, 1.05 * H, lx, ly, w, steel, 1);
    aqa_canvas_line(im, 1.05 * W, 1.05 * H, rx, ry, w, steel, 1);
    aqa_canvas_circle(im, lx, ly, 0.6 * w, jaw, 1);
    aqa_canvas_circle(im, rx, ry, 0.6 * w, jaw, 1);
    if (tr->task != 2) { /* the curved needle in the right jaw, turning through the pass */
        double r = 0.05 * H, a0 = p->needle;
        for (int k = 0; k < 4; k++) {
            double b0 = a0 + M_PI * k / 4, b1 = a0 + M_PI * (k + 1) / 4;
            aqa_canvas_line(im, rx + r * cos(b0) - r, ry - r * sin(b0), rx + r * cos(b1) - r, ry - r * sin(b1), 1,
                            aqa_rgb_make(230, 230, 235), 1);
        }
    }
}

aqa_status aqa_synthetic_render_trial_frame(const aqa_synthetic_config *cfg, const aqa_synthetic_trial *tr, int t,
                                            aqa_image *im) {
    if (!cfg || !tr || !im || !im->data || im->channels != 3 || im->width != cfg->width || im->height != cfg->height)
        return aqa_fail(AQA_EINVAL, "synthetic: render needs a %dx%d RGB image and a trial", cfg ? cfg->width : 0,
                        cfg ? cfg->height : 0);
    if (t < 0 || t >= tr->n_frames)
        return aqa_fail(AQA_EINVAL, "synthetic: frame %d outside 0..%d of trial %s", t, tr->n_frames - 1, tr->name);
    tips p = motion(tr, t);
    draw_fixture(cfg, tr, im);
    draw_results(cfg, tr, p.throw_done, im);
    draw_instruments(cfg, tr, &p, t, im);
    return AQA_OK;
}

/* ---- files ----------------------------------------------------------------------------------- */

/* <out>/<trial>_capture1/<%05d>.<png|jpg> */
static aqa_status write_trial(const aqa_synthetic_config *cfg, const void *plan, size_t i, aqa_image *bg, aqa_image *im,
                              long long *frames) {
    (void)bg;
    const aqa_synthetic_trial *tr = (const aqa_synthetic_trial *)plan + i;
    char dir[4096], name[32];
    snprintf(dir, sizeof dir, "%s/%s_capture1", cfg->out_dir, tr->name);
    synth_frame_dir fd;
    aqa_status st = aqa__synth_frame_dir_begin(&fd, cfg, dir);
    for (int t = 0; t < tr->n_frames && !st; t++) {
        st = aqa_synthetic_render_trial_frame(cfg, tr, t, im);
        snprintf(name, sizeof name, "%05d", t + 1);
        if (!st) st = aqa__synth_frame_dir_add(&fd, im, name);
    }
    if (st) {
        aqa__synth_frame_dir_end(&fd, false);
        return st;
    }
    *frames += tr->n_frames;
    return aqa__synth_frame_dir_end(&fd, true);
}

/* label.pkl (trial -> GRS items), splits.pkl (task -> four folds), synthetic_trials.csv. */
static aqa_status write_annotations(const aqa_synthetic_config *cfg, const aqa_synthetic_trial *tv, size_t n) {
    aqa_pickle_writer *w = aqa_pkw_new();
    if (!w) return aqa_last_status();
    aqa_pkw_dict_begin(w);
    for (size_t i = 0; i < n; i++) {
        aqa_pkw_str(w, tv[i].name);
        aqa_pkw_list_begin(w);
        for (int g = 0; g < AQA_SYNTH_GRS; g++) aqa_pkw_int(w, (int64_t)tv[i].grs[g]);
        aqa_pkw_list_end(w);
    }
    aqa_pkw_dict_end(w);
    aqa_status st = aqa__synth_save_pickle(w, cfg->out_dir, "label.pkl");
    if (st) return st;
    if (!(w = aqa_pkw_new())) return aqa_last_status();
    aqa_pkw_dict_begin(w);
    for (int task = 0; task < AQA_SYNTH_TASKS; task++) {
        aqa_pkw_str(w, task_names[task]);
        aqa_pkw_list_begin(w);
        for (int fold = 0; fold < 4; fold++) {
            aqa_pkw_list_begin(w);
            for (size_t i = 0; i < n; i++)
                if (tv[i].task == task && tv[i].fold == fold) aqa_pkw_str(w, tv[i].name);
            aqa_pkw_list_end(w);
        }
        aqa_pkw_list_end(w);
    }
    aqa_pkw_dict_end(w);
    if ((st = aqa__synth_save_pickle(w, cfg->out_dir, "splits.pkl"))) return st;
    aqa_atomic_file *af;
    if ((st = aqa__synth_open_text(cfg->out_dir, "synthetic_trials.csv", &af))) return st;
    FILE *f = aqa_atomic_stream(af);
    fprintf(f, "trial,task,fold,skill,score,n_frames,tremor,pause,tidiness,retries\n");
    for (size_t i = 0; i < n; i++) {
        int retries = 0;
        for (int k = 0; k < tv[i].n_throws; k++) retries += tv[i].retries[k];
        fprintf(f, "%s,%s,%d,%.6f,%.0f,%d,%.6f,%.6f,%.6f,%d\n", tv[i].name, task_names[tv[i].task], tv[i].fold, tv[i].skill,
                tv[i].score, tv[i].n_frames, tv[i].tremor, tv[i].pause, tv[i].tidiness, retries);
    }
    return aqa_atomic_commit(af);
}

aqa_status aqa__synth_generate_jigsaws(const aqa_synthetic_config *cfg) {
    aqa_synthetic_trial *tv = NULL;
    size_t n = 0;
    aqa_status st = aqa_synthetic_plan_trials(cfg, &tv, &n);
    if (st) return st;
    st = aqa__synth_run_items(cfg, tv, n, write_trial, "trials");
    if (!st) st = write_annotations(cfg, tv, n);
    if (!st) st = aqa__synth_write_config(cfg);
    free(tv);
    return st;
}
