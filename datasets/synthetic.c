/* synthetic.c: the synthetic diving dataset generator (see synthetic.h for what a dive looks like
 * and the files written).
 *
 * Geometry: lengths of the body are in frame heights (H), so the figure keeps its proportions in
 * non-square frames; the scene's horizontal anchors (platform edge, drift) are in frame widths.
 * The body is a side-view stick figure: torso hip -> shoulder, head above the shoulder, one leg
 * (thigh, shin) and one arm, angles measured in the body frame: theta is the angle of the body
 * axis (hip -> head) from "up", clockwise on screen (y grows downwards); a limb angle phi is 0
 * along the legs' rest direction (towards the feet) and pi/2 towards the figure's front. */
#include "datasets/synthetic.h"
#include "datasets/synthetic-impl.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/canvas.h"
#include "image/video.h"
#include "datasets/fina.h"
#include "datasets/video_dataset.h"
#include "io/pickle_write.h"
#include "io/atomic_file.h"

/* ---------------------------------------------------------------------------------------- */
/* Catalogue */

/* FineDiving dive numbers spanning every take-off group used, the three positions, twisting and
 * armstand dives, and difficulties from 1.3 to 3.7 (FINA 10 m platform table, rounded). */
static const aqa_synthetic_dive_type catalogue[] = {
    {"101b", 1.3},  /* forward dive pike */
    {"201a", 1.6},  /* back dive straight */
    {"105b", 2.3},  /* forward 2.5 somersaults pike */
    {"205b", 2.9},  /* back 2.5 somersaults pike */
    {"405b", 3.0},  /* inward 2.5 somersaults pike */
    {"107b", 3.0},  /* forward 3.5 somersaults pike */
    {"407c", 3.2},  /* inward 3.5 somersaults tuck */
    {"5152b", 3.2}, /* forward 2.5 somersaults 1 twist pike */
    {"5253b", 3.2}, /* back 2.5 somersaults 1.5 twists pike */
    {"307c", 3.3},  /* reverse 3.5 somersaults tuck */
    {"626c", 3.3},  /* armstand back 3 somersaults tuck */
    {"109c", 3.7},  /* forward 4.5 somersaults tuck */
};
#define N_CATALOGUE (sizeof catalogue / sizeof catalogue[0])

const aqa_synthetic_dive_type *aqa_synthetic_catalogue(size_t *n) {
    if (n) *n = N_CATALOGUE;
    return catalogue;
}

/* FineDiving sub-action id of the somersaults of a dive (0 when the table has none). */
static int somersault_id(aqa_dive_position pos, int hs) {
    switch (pos) {
    case AQA_POS_STRAIGHT:
        if (hs == 1) return 39;
        return hs >= 2 && hs <= 5 ? 8 + hs - 2 : 0;
    case AQA_POS_PIKE:
        if (hs == 1) return 37;
        return hs >= 2 && hs <= 9 ? 12 + hs - 2 : 0;
    case AQA_POS_TUCK:
        if (hs == 1) return 40;
        if (hs == 11) return 28;
        return hs >= 2 && hs <= 9 ? 20 + hs - 2 : 0;
    default:
        return 0;
    }
}

static int twist_id(int ht) {
    if (ht >= 1 && ht <= 7) return 29 + ht - 1;
    if (ht == 8) return 41;
    if (ht == 9) return 42;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Configuration and plan */

void aqa_synthetic_config_init(aqa_synthetic_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->n_videos = 200;
    cfg->width = 64;
    cfg->height = 64;
    cfg->format = AQA_SYNTH_PNG;
    cfg->jpeg_quality = 90;
    cfg->feature_dim = 64;
    aqa_synthetic_config_layout(cfg, AQA_SYNTH_FINEDIVING);
}

void aqa_synthetic_config_layout(aqa_synthetic_config *cfg, aqa_synthetic_layout layout) {
    cfg->layout = layout;
    cfg->min_frames = 40;
    cfg->max_frames = 120;
    cfg->train_fraction = 0.75;
    cfg->dives_per_video = 10;
    if (layout == AQA_SYNTH_MTL_AQA) cfg->min_frames = 70, cfg->max_frames = 103; /* the release's 84..106 */
    if (layout == AQA_SYNTH_JIGSAWS) cfg->min_frames = 160, cfg->max_frames = 320;
    if (layout == AQA_SYNTH_FISV) cfg->min_frames = 1280, cfg->max_frames = 2048, cfg->train_fraction = 0.8;
}

aqa_status aqa_synthetic_layout_parse(const char *name, aqa_synthetic_layout *layout) {
    static const struct {
        const char *name;
        aqa_synthetic_layout layout;
    } names[] = {{"finediving", AQA_SYNTH_FINEDIVING}, {"synthetic", AQA_SYNTH_FINEDIVING}, {"mtl-aqa", AQA_SYNTH_MTL_AQA},
                 {"mtl_aqa", AQA_SYNTH_MTL_AQA},      {"jigsaws", AQA_SYNTH_JIGSAWS},      {"fisv", AQA_SYNTH_FISV},
                 {"fis-v", AQA_SYNTH_FISV}};
    for (size_t k = 0; name && k < sizeof names / sizeof *names; k++)
        if (!strcasecmp(name, names[k].name)) {
            *layout = names[k].layout;
            return AQA_OK;
        }
    return aqa_fail(AQA_EINVAL, "synthetic: unknown layout \"%s\" (finediving, mtl-aqa, jigsaws or fisv)", name ? name : "(null)");
}

static aqa_status check_config(const aqa_synthetic_config *cfg) {
    if (!cfg) return aqa_fail(AQA_EINVAL, "synthetic: NULL config");
    if ((unsigned)cfg->layout > AQA_SYNTH_FISV) return aqa_fail(AQA_EINVAL, "synthetic: unknown layout %d", (int)cfg->layout);
    if (cfg->n_videos < 1 || cfg->n_videos > 1000000)
        return aqa_fail(AQA_EINVAL, "synthetic: n_videos %d outside 1..1000000", cfg->n_videos);
    if (cfg->width < 16 || cfg->width > 1024 || cfg->height < 16 || cfg->height > 1024)
        return aqa_fail(AQA_EINVAL, "synthetic: frame size %dx%d outside 16..1024", cfg->width, cfg->height);
    /* Fis-V programmes are long (real ones ~4000..6750 frames) but cost one feature row per 32 */
    int most = cfg->layout == AQA_SYNTH_FISV ? 100000 : 2000;
    if (cfg->min_frames < 16 || cfg->max_frames < cfg->min_frames || cfg->max_frames > most)
        return aqa_fail(AQA_EINVAL, "synthetic: frames per video %d..%d (need 16 <= min <= max <= %d)",
                        cfg->min_frames, cfg->max_frames, most);
    if (cfg->format != AQA_SYNTH_PNG && cfg->format != AQA_SYNTH_JPEG)
        return aqa_fail(AQA_EINVAL, "synthetic: unknown frame format %d", (int)cfg->format);
    if (cfg->format == AQA_SYNTH_JPEG && (cfg->jpeg_quality < 1 || cfg->jpeg_quality > 100))
        return aqa_fail(AQA_EINVAL, "synthetic: JPEG quality %d outside 1..100", cfg->jpeg_quality);
    if (!(cfg->train_fraction >= 0 && cfg->train_fraction <= 1))
        return aqa_fail(AQA_EINVAL, "synthetic: train fraction %g outside [0, 1]", cfg->train_fraction);
    if (cfg->dives_per_video < 1 || cfg->dives_per_video > 1000)
        return aqa_fail(AQA_EINVAL, "synthetic: dives per video %d outside 1..1000", cfg->dives_per_video);
    if (cfg->layout == AQA_SYNTH_FISV && (cfg->feature_dim < 8 || cfg->feature_dim > 4096))
        return aqa_fail(AQA_EINVAL, "synthetic: feature width %d outside 8..4096", cfg->feature_dim);
    if (cfg->layout == AQA_SYNTH_JIGSAWS && cfg->n_videos < 4 * AQA_SYNTH_TASKS)
        return aqa_fail(AQA_EINVAL, "synthetic: %d trials; JIGSAWS' layout needs at least %d (four folds of three tasks)",
                        cfg->n_videos, 4 * AQA_SYNTH_TASKS);
    if (cfg->threads < 0) return aqa_fail(AQA_EINVAL, "synthetic: threads %d < 0", cfg->threads);
    return AQA_OK;
}

aqa_status aqa__synth_check_config(const aqa_synthetic_config *cfg) { return check_config(cfg); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Steps, labels and the split are fixed here; everything visual is drawn from the dive's own
 * random stream, so dive i looks the same whatever n_videos is (its type and split aside). */
aqa_status aqa_synthetic_plan(const aqa_synthetic_config *cfg, aqa_synthetic_dive **out, size_t *n_out) {
    aqa_status st = check_config(cfg);
    if (st) return st;
    if (!out || !n_out) return aqa_fail(AQA_EINVAL, "aqa_synthetic_plan: NULL output");
    size_t n = (size_t)cfg->n_videos;
    aqa_synthetic_dive *dv = calloc(n, sizeof *dv);
    int *types = malloc(n * sizeof *types);
    size_t *order = malloc(n * sizeof *order);
    if (!dv || !types || !order) {
        free(dv);
        free(types);
        free(order);
        return aqa_fail(AQA_ENOMEM, "synthetic: out of memory planning %zu dives", n);
    }
    synth_rng master = synth_rng_make(cfg->seed, 0);
    /* balanced dive numbers: every type appears n / K or n / K + 1 times, in random order */
    for (size_t i = 0; i < n; i++) types[i] = (int)(i % N_CATALOGUE);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(synth_uniform(&master) * (double)i);
        int t = types[i - 1];
        types[i - 1] = types[j];
        types[j] = t;
    }
    int64_t prev_end = 0;
    for (size_t i = 0; i < n; i++) {
        aqa_synthetic_dive *d = &dv[i];
        synth_rng r = synth_rng_make(cfg->seed, i + 1);
        aqa_dive fd;
        d->type = types[i];
        snprintf(d->number, sizeof d->number, "%s", catalogue[d->type].number);
        d->difficulty = catalogue[d->type].difficulty;
        if (aqa_dive_parse(d->number, &fd) != AQA_OK) {
            st = aqa_last_status();
            goto fail;
        }
        snprintf(d->video, sizeof d->video, "SyntheticDiving_Event%03zu", i / (size_t)cfg->dives_per_video + 1);
        d->instance = (int64_t)(i % (size_t)cfg->dives_per_video) + 1;

        /* frames and stages */
        int nf = cfg->min_frames + (int)(synth_uniform(&r) * (cfg->max_frames - cfg->min_frames + 1));
        if (nf > cfg->max_frames) nf = cfg->max_frames;
        /* stage shares vary (a diver waits a variable time on the platform), so boundaries are
         * something to find, not a constant */
        d->stage_frac[0] = 0.15 + 0.25 * synth_uniform(&r);
        d->stage_frac[1] = 0.14 + 0.16 * synth_uniform(&r);
        int n_take = (int)lround(d->stage_frac[0] * nf), n_entry = (int)lround(d->stage_frac[1] * nf);
        if (n_take < 3) n_take = 3;
        if (n_entry < 3) n_entry = 3;
        int n_flight = nf - n_take - n_entry;
        int start = d->instance == 1 ? 100 + (int)(400 * synth_uniform(&r)) : 0;
        int gap = 150 + (int)(450 * synth_uniform(&r));
        d->start_frame = d->instance == 1 ? start : prev_end + gap;
        d->end_frame = d->start_frame + nf - 1;
        prev_end = d->end_frame;
        d->n_frames = nf;
        d->step_ids[0] = fd.armstand ? 4 + (int)fd.direction : (int)fd.direction;
        d->step_ids[1] = somersault_id(fd.position, fd.half_somersaults);
        d->transit[0] = n_take - 1;
        if (fd.half_twists) {
            int n_soms = (int)lround(0.55 * n_flight);
            d->n_steps = 4;
            d->step_ids[2] = twist_id(fd.half_twists);
            d->step_ids[3] = 36;
            d->transit[1] = n_take + n_soms - 1;
            d->transit[2] = n_take + n_flight - 1;
        } else {
            d->n_steps = 3;
            d->step_ids[2] = 36;
            d->transit[1] = n_take + n_flight - 1;
        }

        /* execution and judges */
        double e = 0.05 + 0.95 * synth_uniform(&r);
        d->execution = e;
        double sorted[AQA_SYNTH_JUDGES];
        for (int j = 0; j < AQA_SYNTH_JUDGES; j++) {
            double v = floor(2.0 * (10.0 * (0.25 + 0.7 * e) + 0.45 * synth_normal(&r)) + 0.5) / 2.0;
            d->judges[j] = sorted[j] = v < 0 ? 0 : v > 10 ? 10 : v;
        }
        qsort(sorted, AQA_SYNTH_JUDGES, sizeof sorted[0], cmp_double);
        /* exact: DD in tenths x judge sum in halves = score in twentieths = hundredths / 5 */
        long long halves = (long long)lround(2 * (sorted[2] + sorted[3] + sorted[4]));
        long long hundredths = lround(d->difficulty * 10) * halves * 5;
        d->score = (double)hundredths / 100.0;

        /* what the judges see */
        d->jump_height = 0.03 + 0.06 * e;
        d->angle_jitter = 0.32 * (1 - e);
        d->entry_tilt = (synth_uniform(&r) < 0.5 ? -1 : 1) * 0.65 * (1 - e) + 0.03 * synth_normal(&r);
        d->splash = 0.15 + 1.35 * pow(1 - e, 1.2);
        d->tightness = 0.85 + 0.15 * e; /* a poor tuck is still a tuck: the position stays recognisable */
        d->knee_bend = 0.7 * (1 - e) * (1 - e);
        /* nuisance */
        d->drift = 0.14 + 0.08 * synth_uniform(&r);
        d->palette = (int)(5 * synth_uniform(&r));
        if (d->palette > 4) d->palette = 4;
        d->cam_dx = 0.03 * (2 * synth_uniform(&r) - 1);
        d->cam_dy = 0.03 * (2 * synth_uniform(&r) - 1);
        for (int c = 0; c < 3; c++) {
            d->sky_tint[c] = (int)lround(12 * (2 * synth_uniform(&r) - 1));
            d->water_tint[c] = (int)lround(10 * (2 * synth_uniform(&r) - 1));
        }
        d->render_seed = synth_next(&r);
    }
    /* stratified split: dives grouped by type (each group in random order) and every
     * 1 / (1 - train_fraction)-th of the sequence goes to test */
    {
        size_t k = 0;
        for (int t = 0; t < (int)N_CATALOGUE; t++) {
            size_t first = k;
            for (size_t i = 0; i < n; i++)
                if (dv[i].type == t) order[k++] = i;
            for (size_t i = k - first; i > 1; i--) {
                size_t j = (size_t)(synth_uniform(&master) * (double)i);
                size_t tmp = order[first + i - 1];
                order[first + i - 1] = order[first + j];
                order[first + j] = tmp;
            }
        }
        double q = 1.0 - cfg->train_fraction, phase = synth_uniform(&master);
        for (size_t g = 0; g < n; g++)
            dv[order[g]].split = floor((double)(g + 1) * q + phase) > floor((double)g * q + phase) ? 1 : 0;
    }
    free(types);
    free(order);
    *out = dv;
    *n_out = n;
    return AQA_OK;
fail:
    free(dv);
    free(types);
    free(order);
    return st;
}

int aqa_synthetic_frame_label(const aqa_synthetic_dive *d, int t) {
    if (!d || t < 0 || t >= d->n_frames) return 0;
    for (int i = 0; i < d->n_steps - 1; i++)
        if (t <= d->transit[i]) return d->step_ids[i];
    return d->step_ids[d->n_steps - 1];
}

int aqa_synthetic_frame_stage(const aqa_synthetic_dive *d, int t) {
    if (!d || t < 0 || t >= d->n_frames) return -1;
    if (t <= d->transit[0]) return 0;
    if (t <= d->transit[d->n_steps - 2]) return 1;
    return 2;
}

/* ---------------------------------------------------------------------------------------- */
/* Body model */

/* Body dimensions in frame heights. */
#define L_TORSO 0.085
#define L_NECK 0.008
#define R_HEAD 0.034
#define L_THIGH 0.062
#define L_SHIN 0.062
#define L_ARM 0.085
#define W_TORSO 0.060
#define W_LEG 0.038
#define W_ARM 0.026

typedef struct pose {
    double hx, hy;      /* hip, pixels */
    double theta;       /* body axis from "up", clockwise */
    int facing;         /* +1: the front points to +x when upright; -1: to -x */
    double alpha, beta; /* hip flexion (thigh towards the front) and knee flexion, radians */
    double arm;         /* arm angle in the body frame (0 along the legs, pi overhead) */
    double grab;        /* 0..1: hands pulled to the shins (tuck) / legs (pike) */
    double twist;       /* twist phase, radians (0: front side towards the camera's side view) */
} pose;

typedef struct joints {
    double hip[2], sho[2], head[2], knee[2], ankle[2], hand[2];
} joints;

/* Direction of limb angle phi in the body frame of p. */
static void body_dir(const pose *p, double phi, double *dx, double *dy) {
    double ux = sin(p->theta), uy = -cos(p->theta);
    double fx = p->facing * cos(p->theta), fy = p->facing * sin(p->theta);
    *dx = -ux * cos(phi) + fx * sin(phi);
    *dy = -uy * cos(phi) + fy * sin(phi);
}

static void joints_of(const pose *p, double S, joints *j) {
    double ux = sin(p->theta), uy = -cos(p->theta), dx, dy;
    j->hip[0] = p->hx;
    j->hip[1] = p->hy;
    j->sho[0] = p->hx + S * L_TORSO * ux;
    j->sho[1] = p->hy + S * L_TORSO * uy;
    j->head[0] = j->sho[0] + S * (L_NECK + R_HEAD) * ux;
    j->head[1] = j->sho[1] + S * (L_NECK + R_HEAD) * uy;
    body_dir(p, p->alpha, &dx, &dy);
    j->knee[0] = p->hx + S * L_THIGH * dx;
    j->knee[1] = p->hy + S * L_THIGH * dy;
    body_dir(p, p->alpha - p->beta, &dx, &dy);
    j->ankle[0] = j->knee[0] + S * L_SHIN * dx;
    j->ankle[1] = j->knee[1] + S * L_SHIN * dy;
    body_dir(p, p->arm, &dx, &dy);
    double hx = j->sho[0] + S * L_ARM * dx, hy = j->sho[1] + S * L_ARM * dy;
    if (p->grab > 0) { /* hands to the shins; clamp the reach to the arm's length */
        double gx = j->knee[0] + 0.45 * (j->ankle[0] - j->knee[0]);
        double gy = j->knee[1] + 0.45 * (j->ankle[1] - j->knee[1]);
        double vx = gx - j->sho[0], vy = gy - j->sho[1], l = hypot(vx, vy), m = S * L_ARM;
        if (l > m) {
            gx = j->sho[0] + vx * m / l;
            gy = j->sho[1] + vy * m / l;
        }
        hx += p->grab * (gx - hx);
        hy += p->grab * (gy - hy);
    }
    j->hand[0] = hx;
    j->hand[1] = hy;
}

/* Centre of the figure (weights roughly follow the masses of the segments). */
static void centroid(const joints *j, double *cx, double *cy) {
    *cx = (2 * j->hip[0] + 2 * j->sho[0] + j->head[0] + j->knee[0] + j->ankle[0]) / 7;
    *cy = (2 * j->hip[1] + 2 * j->sho[1] + j->head[1] + j->knee[1] + j->ankle[1]) / 7;
}

/* Moves the figure by (dx, dy). */
static void pose_shift(pose *p, double dx, double dy) {
    p->hx += dx;
    p->hy += dy;
}

/* The lowest point of the figure (largest y) and its x. */
static void lowest_point(const joints *j, double S, double *x, double *y) {
    const double *pts[] = {j->hip, j->sho, j->knee, j->ankle, j->hand};
    *x = j->head[0];
    *y = j->head[1] + S * R_HEAD;
    for (int i = 0; i < 5; i++)
        if (pts[i][1] > *y) {
            *x = pts[i][0];
            *y = pts[i][1];
        }
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
static double ease(double x) { /* smoothstep */
    x = clamp01(x);
    return x * x * (3 - 2 * x);
}
static double lerp(double a, double b, double t) { return a + (b - a) * t; }

/* Zero-mean unit normal noise that depends only on (seed, t, channel). */
static double frame_noise(uint64_t seed, int t, int channel) {
    synth_rng r = synth_rng_make(seed, ((uint64_t)(unsigned)t << 8) | (unsigned)channel);
    return synth_normal(&r);
}

/* Scene geometry of one dive, in pixels. */
typedef struct scene {
    int W, H;
    double S;            /* pixels per body-length unit (= H) */
    double edge_x;       /* platform edge */
    double plat_y;       /* platform top */
    double water_y;      /* water surface */
    aqa_dive fd;         /* parsed dive number */
    int sense;           /* rotation sense: +1 clockwise (forward, back), -1 (reverse, inward) */
    int facing;          /* +1 facing the water (+x), -1 back to the water */
    int n_take, n_soms, n_flight, n_entry; /* frames per stage (n_soms = somersault part) */
} scene;

static void scene_of(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, scene *s) {
    memset(s, 0, sizeof *s);
    s->W = cfg->width;
    s->H = cfg->height;
    s->S = cfg->height;
    s->edge_x = 0.30 * cfg->width + d->cam_dx * cfg->height;
    s->plat_y = 0.40 * cfg->height + d->cam_dy * cfg->height;
    s->water_y = 0.78 * cfg->height + d->cam_dy * cfg->height;
    aqa_dive_parse(d->number, &s->fd); /* valid: checked when planning */
    int dir = (int)s->fd.direction;
    s->sense = (dir == AQA_DIVE_FORWARD || dir == AQA_DIVE_BACK) ? 1 : -1;
    s->facing = (dir == AQA_DIVE_FORWARD || dir == AQA_DIVE_REVERSE) ? 1 : -1;
    if (s->fd.armstand) s->facing = 1; /* in the handstand the back faces the water (626) */
    s->n_take = (int)d->transit[0] + 1;
    s->n_flight = (int)(d->transit[d->n_steps - 2] - d->transit[0]);
    s->n_soms = d->n_steps == 4 ? (int)(d->transit[1] - d->transit[0]) : s->n_flight;
    s->n_entry = d->n_frames - s->n_take - s->n_flight;
}

/* Take-off pose at progress sig in (0, 1] (1: the feet leave the platform). */
static pose takeoff_pose(const scene *s, const aqa_synthetic_dive *d, double sig) {
    pose p;
    joints j;
    memset(&p, 0, sizeof p);
    p.facing = s->facing;
    if (s->fd.armstand) {
        /* handstand at the edge, a slight sway, then a push in the rotation sense */
        double push = ease((sig - 0.7) / 0.3);
        p.theta = M_PI + 0.04 * sin(sig * 9) * (1 - push) + s->sense * 0.4 * push;
        p.arm = M_PI;
        p.alpha = 0;
        p.beta = d->knee_bend * 0.5;
        joints_of(&p, s->S, &j);
        double ax = s->edge_x - 0.035 * s->S, ay = s->plat_y - 0.03 * s->S * push * push;
        pose_shift(&p, ax - j.hand[0], ay - j.hand[1]);
        return p;
    }
    double foot_x, arm = 0.1;
    if (s->facing > 0) { /* walk up to the edge: 1.5 strides */
        double w = clamp01(sig / 0.4), ph = w * 3 * M_PI;
        foot_x = s->edge_x - 0.16 * s->S + 0.14 * s->S * (1 - (1 - w) * (1 - w));
        if (sig < 0.4) {
            p.alpha = 0.45 * sin(ph);
            p.beta = 0.35 * fmax(0, sin(ph + 1));
        }
        /* forward: arms swing with the stride; reverse: arms held forward-up */
        arm = s->sense > 0 ? -0.5 * sin(ph) : 1.2 + 0.15 * sin(ph);
    } else { /* standing at the edge with the back to the water: back dives with the arms at the
              * sides, inward dives with the arms stretched forward */
        foot_x = s->edge_x - 0.015 * s->S;
        arm = s->sense > 0 ? 0.1 + 0.05 * sin(sig * 8) : 1.5 + 0.05 * sin(sig * 8);
    }
    double up = ease((sig - 0.4) / 0.15), crouch = ease((sig - 0.55) / 0.25), jump = ease((sig - 0.8) / 0.2);
    p.arm = lerp(arm, M_PI, up);
    if (sig > 0.55) p.arm = lerp(M_PI, -0.4, crouch);
    if (sig > 0.8) p.arm = lerp(-0.4, M_PI, jump);
    if (sig >= 0.4) {
        p.alpha = 0.9 * crouch * (1 - jump);
        p.beta = 1.5 * crouch * (1 - jump) + d->knee_bend * jump;
    }
    p.theta = s->sense * 0.35 * jump;
    joints_of(&p, s->S, &j);
    double ay = s->plat_y - 0.04 * s->S * jump * jump;
    pose_shift(&p, foot_x - j.ankle[0], ay - j.ankle[1]);
    return p;
}

/* Position fold of the flight at progress tau (0 straight, 1 fully in position). */
static double position_weight(const scene *s, double tau) {
    if (s->fd.position == AQA_POS_STRAIGHT) return 0;
    double in = ease(tau / 0.15);
    if (s->n_soms < s->n_flight) { /* twisting: open out before the twist segment */
        double ts = (double)s->n_soms / s->n_flight;
        return in * (1 - ease((tau - (ts - 0.1)) / 0.1));
    }
    return in * (1 - ease((tau - 0.75) / 0.15));
}

/* Rotation easing over the flight: some speed at take-off, fastest mid-flight. */
static double rotation_progress(double tau) {
    return 0.2 * tau + 0.8 * (tau - sin(2 * M_PI * tau) / (2 * M_PI));
}

/* Pose at the end of the flight (hands at the water) before placing it: straight, arms overhead. */
static pose entry_shape(const scene *s, const aqa_synthetic_dive *d) {
    pose p;
    memset(&p, 0, sizeof p);
    p.facing = s->facing;
    p.theta = (s->fd.armstand ? M_PI : 0) + s->sense * M_PI * s->fd.half_somersaults + d->entry_tilt;
    p.arm = M_PI;
    p.beta = d->knee_bend;
    return p;
}

/* Flight pose at progress tau in (0, 1] (1: hands touch the water); frame t for the jitter. */
static pose flight_pose(const scene *s, const aqa_synthetic_dive *d, double tau, int t) {
    pose p0 = takeoff_pose(s, d, 1.0), pe = entry_shape(s, d), p;
    joints j;
    double c0x, c0y, cex, cey, lx, ly;
    joints_of(&p0, s->S, &j);
    centroid(&j, &c0x, &c0y);
    joints_of(&pe, s->S, &j);
    centroid(&j, &cex, &cey);
    lowest_point(&j, s->S, &lx, &ly);
    /* parabola from the take-off centre to the centre that puts the lowest point at the surface,
     * apex jump_height above the start: y = y0 - v t + g t^2 / 2 with y(1) = y1 */
    double y0 = c0y, y1 = s->water_y - (ly - cey), D = y1 - y0, h = d->jump_height * s->S;
    if (D < 1) D = 1;
    double sg = sqrt(2 * h) + sqrt(2 * h + 2 * D), g = sg * sg, v = sqrt(2 * g * h);
    double cy = y0 - v * tau + 0.5 * g * tau * tau, cx = c0x + d->drift * s->W * tau;

    memset(&p, 0, sizeof p);
    p.facing = s->facing;
    double w = position_weight(s, tau);
    double fold_a = s->fd.position == AQA_POS_TUCK ? 2.5 : 2.7, fold_b = s->fd.position == AQA_POS_TUCK ? 2.6 : 0;
    p.alpha = w * fold_a * d->tightness;
    p.beta = w * fold_b * d->tightness + (1 - w) * d->knee_bend;
    p.grab = w;
    p.alpha += 0.5 * d->angle_jitter * frame_noise(d->render_seed, t, 1) * w;
    /* arms: overhead at take-off and entry; sideways in straight flight; at the body in twists */
    double arm = M_PI;
    if (s->fd.position == AQA_POS_STRAIGHT) arm = M_PI - (M_PI / 2) * ease(tau / 0.2) * (1 - ease((tau - 0.7) / 0.2));
    if (s->n_soms < s->n_flight) {
        double ts = (double)s->n_soms / s->n_flight;
        double tw = ease((tau - ts) / (0.88 - ts));
        arm = tau < ts ? M_PI : lerp(0.15, M_PI, ease((tau - 0.88) / 0.09));
        p.twist = M_PI * s->fd.half_twists * tw;
    }
    p.arm = arm;
    double th_s = p0.theta, th_e = pe.theta;
    p.theta = th_s + (th_e - th_s) * rotation_progress(tau) +
              d->angle_jitter * frame_noise(d->render_seed, t, 0) * sin(M_PI * tau);
    joints_of(&p, s->S, &j);
    double px, py;
    centroid(&j, &px, &py);
    /* at tau = 1 the shape equals the entry shape, so the centre lands exactly on (cex, cey)'s
     * placement; elsewhere follow the parabola */
    pose_shift(&p, cx - px, cy - py);
    return p;
}

/* Entry pose at progress kap in (0, 1]: the entry shape sinking head first. */
static pose entry_pose(const scene *s, const aqa_synthetic_dive *d, double kap, int n_flight_frame) {
    pose p = flight_pose(s, d, 1.0, n_flight_frame);
    pose pe = entry_shape(s, d);
    pe.hx = p.hx;
    pe.hy = p.hy;
    pe.twist = p.twist;
    /* head first along the body axis, decelerating */
    double dist = s->S * 0.32 * (1 - (1 - clamp01(kap / 0.6)) * (1 - clamp01(kap / 0.6)));
    pose_shift(&pe, sin(pe.theta) * dist, -cos(pe.theta) * dist);
    return pe;
}

/* ---------------------------------------------------------------------------------------- */
/* Drawing */

static const aqa_rgb suit_front[5] = {{210, 35, 45}, {245, 150, 20}, {200, 40, 160}, {250, 230, 40}, {235, 90, 60}};
static const aqa_rgb suit_back[5] = {{30, 30, 90}, {25, 80, 50}, {30, 60, 40}, {70, 25, 90}, {20, 20, 20}};
static const aqa_rgb skin = {232, 182, 142};
static const aqa_rgb hair = {60, 40, 25};

static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

static aqa_rgb tint(int r, int g, int b, const int *t) {
    return aqa_rgb_make(clamp255(r + t[0]), clamp255(g + t[1]), clamp255(b + t[2]));
}

static aqa_rgb mix_rgb(aqa_rgb a, aqa_rgb b, double t) {
    return aqa_rgb_make((int)lround(a.r + (b.r - a.r) * t), (int)lround(a.g + (b.g - a.g) * t),
                        (int)lround(a.b + (b.b - a.b) * t));
}

/* Sky, pool, platform tower: the static part of every frame of a dive. */
static void draw_background(const scene *s, const aqa_synthetic_dive *d, aqa_image *im) {
    int wy = (int)lround(s->water_y), py = (int)lround(s->plat_y), ex = (int)lround(s->edge_x);
    int slab = (int)lround(0.035 * s->S);
    if (slab < 1) slab = 1;
    aqa_canvas_vgradient(im, 0, 0, s->W, wy, tint(120, 170, 230, d->sky_tint), tint(205, 225, 245, d->sky_tint));
    aqa_canvas_vgradient(im, 0, wy, s->W, s->H - wy, tint(55, 135, 200, d->water_tint), tint(15, 60, 125, d->water_tint));
    aqa_canvas_rect(im, 0, wy, s->W, 1, tint(170, 205, 235, d->water_tint)); /* surface glint */
    aqa_canvas_rect(im, 0, py, ex, slab, aqa_rgb_make(150, 140, 125));        /* platform */
    aqa_canvas_rect(im, 0, py + slab, ex / 3 > 0 ? ex / 3 : 1, wy - py - slab, aqa_rgb_make(110, 105, 100));
}

static void draw_figure(const scene *s, const aqa_synthetic_dive *d, const pose *p, aqa_image *im) {
    joints j;
    double S = s->S;
    joints_of(p, S, &j);
    double prof = 0.6 + 0.4 * fabs(cos(p->twist)); /* the profile narrows mid-twist */
    aqa_rgb suit = mix_rgb(suit_front[d->palette], suit_back[d->palette], 0.5 * (1 - cos(p->twist)));
    double wl = fmax(1.0, W_LEG * S * prof), wa = fmax(1.0, W_ARM * S * prof), wt = fmax(1.2, W_TORSO * S * prof);
    aqa_canvas_line(im, j.hip[0], j.hip[1], j.knee[0], j.knee[1], wl, skin, 1);
    aqa_canvas_line(im, j.knee[0], j.knee[1], j.ankle[0], j.ankle[1], wl * 0.85, skin, 1);
    aqa_canvas_line(im, j.hip[0], j.hip[1], j.sho[0], j.sho[1], wt, suit, 1);
    aqa_canvas_line(im, j.sho[0], j.sho[1], j.hand[0], j.hand[1], wa, skin, 1);
    double r = fmax(1.0, R_HEAD * S);
    aqa_canvas_circle(im, j.head[0], j.head[1], r, skin, 1);
    /* hair on the back of the head shows which way the figure faces */
    double ux = sin(p->theta), uy = -cos(p->theta);
    double fx = p->facing * cos(p->theta), fy = p->facing * sin(p->theta);
    double side = cos(p->twist);
    aqa_canvas_circle(im, j.head[0] - 0.5 * r * fx * side + 0.35 * r * ux, j.head[1] - 0.5 * r * fy * side + 0.35 * r * uy,
                      0.6 * r, hair, 1);
}

/* Everything below the surface is seen through the water: mix towards the background. */
static void water_tint(const scene *s, const aqa_image *bg, aqa_image *im) {
    int y0 = (int)lround(s->water_y) + 1;
    for (int y = y0 < 0 ? 0 : y0; y < s->H; y++) {
        uint8_t *p = im->data + aqa_image_offset(im, 0, y);
        const uint8_t *b = bg->data + aqa_image_offset(bg, 0, y);
        for (int x = 0; x < 3 * s->W; x++) p[x] = (uint8_t)((3 * p[x] + 7 * b[x] + 5) / 10);
    }
}

/* Splash of the entry at progress kap: droplets, a crown and surface foam, scaled by the dive's
 * splash factor; ripples spread as it dies down. */
static void draw_splash(const scene *s, const aqa_synthetic_dive *d, double x0, double kap, aqa_image *im) {
    double S = s->S, sp = d->splash, wy = s->water_y;
    double env = kap < 0.25 ? kap / 0.25 : 1 - 0.75 * (kap - 0.25) / 0.75;
    aqa_rgb white = aqa_rgb_make(245, 250, 255);
    /* foam ellipse on the surface */
    aqa_canvas_ellipse(im, x0, wy + 0.5, S * 0.05 * (0.5 + sp) * (0.5 + 0.8 * kap), fmax(0.8, S * 0.012 * (1 + sp)), 0,
                       aqa_rgb_make(220, 238, 250), 1);
    /* crown: a white spike whose height follows the envelope */
    double cw = S * 0.03 * (0.5 + sp), ch = S * 0.13 * sp * env;
    if (ch > 0.5) {
        double xy[] = {x0 - cw, wy + 0.5, x0 - 0.3 * cw, wy - 0.7 * ch, x0, wy - ch, x0 + 0.3 * cw, wy - 0.8 * ch, x0 + cw, wy + 0.5};
        aqa_canvas_polygon(im, xy, 5, white);
    }
    /* droplets: fixed per dive, lifted and grown by the envelope */
    synth_rng r = synth_rng_make(d->render_seed, 777);
    int m = 6 + (int)(22 * sp);
    for (int i = 0; i < m; i++) {
        double dx = synth_normal(&r), hgt = synth_uniform(&r), rad = 0.5 + 0.5 * synth_uniform(&r);
        double x = x0 + dx * S * 0.04 * (0.5 + 0.6 * sp) * (0.6 + 0.6 * kap);
        double y = wy - hgt * S * 0.2 * sp * env;
        aqa_canvas_circle_alpha(im, x, y, fmax(0.5, rad * S * 0.02 * (0.5 + 0.5 * sp) * (0.4 + 0.6 * env)), white, 0.9);
    }
    /* ripples: two rings of soft dots on the surface */
    for (int k = 0; k < 2; k++) {
        double rr = S * (0.05 + 0.18 * kap) * (1 - 0.35 * k), ry = fmax(1.0, rr * 0.18);
        int dots = 24;
        for (int i = 0; i < dots; i++) {
            double a = 2 * M_PI * i / dots;
            aqa_canvas_circle_alpha(im, x0 + rr * cos(a), wy + 1 + ry * (1 + sin(a)), fmax(0.5, S * 0.008),
                                    aqa_rgb_make(210, 232, 250), 0.55 * kap);
        }
    }
}

/* Renders frame t on top of a prepared background (bg is the scene's draw_background). */
static void render_on(const scene *s, const aqa_synthetic_dive *d, int t, const aqa_image *bg, aqa_image *im) {
    memcpy(im->data, bg->data, (size_t)s->W * s->H * 3);
    int stage = aqa_synthetic_frame_stage(d, t);
    pose p;
    int last_flight = s->n_take + s->n_flight - 1;
    if (stage == 0) {
        /* the approach / wait takes whatever the take-off has beyond the arm swing, crouch and
         * jump, which last a fixed share (14%) of the dive: progress 0..0.4 is the wait, 0.4..1 the
         * jump */
        double sig = (double)(t + 1) / s->n_take, m = fmin(0.9, 0.14 * d->n_frames / s->n_take);
        sig = sig < 1 - m ? 0.4 * sig / (1 - m) : 0.4 + 0.6 * (sig - (1 - m)) / m;
        p = takeoff_pose(s, d, sig);
    } else if (stage == 1) {
        p = flight_pose(s, d, (double)(t - s->n_take + 1) / s->n_flight, t);
    } else {
        p = entry_pose(s, d, (double)(t - last_flight) / s->n_entry, last_flight);
    }
    draw_figure(s, d, &p, im);
    water_tint(s, bg, im);
    if (stage == 2) {
        pose pe = flight_pose(s, d, 1.0, last_flight);
        joints j;
        double lx, ly;
        joints_of(&pe, s->S, &j);
        lowest_point(&j, s->S, &lx, &ly);
        draw_splash(s, d, lx, (double)(t - last_flight) / s->n_entry, im);
    }
}

aqa_status aqa_synthetic_render_frame(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, int t, aqa_image *im) {
    aqa_status st = check_config(cfg);
    if (st) return st;
    if (!d || !im || !im->data || im->channels != 3 || im->width != cfg->width || im->height != cfg->height)
        return aqa_fail(AQA_EINVAL, "synthetic: render needs a %dx%d RGB image and a dive", cfg->width, cfg->height);
    if (t < 0 || t >= d->n_frames)
        return aqa_fail(AQA_EINVAL, "synthetic: frame %d outside 0..%d of dive %s/%lld", t, d->n_frames - 1, d->video,
                        (long long)d->instance);
    scene s;
    scene_of(cfg, d, &s);
    aqa_image *bg = aqa_image_new(cfg->width, cfg->height);
    if (!bg) return aqa_last_status();
    draw_background(&s, d, bg);
    render_on(&s, d, t, bg, im);
    aqa_image_free(bg);
    return AQA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Frame files (no fsync: a frame folder is renamed into place once complete) */

aqa_status aqa__synth_write_frame(const aqa_synthetic_config *cfg, const aqa_image *im, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return aqa_fail(AQA_EIO, "%s: cannot create: %s", path, strerror(errno));
    aqa_status st = cfg->format == AQA_SYNTH_PNG ? aqa_image_write_png(im, f, path)
                                                 : aqa_image_write_jpeg(im, f, path, cfg->jpeg_quality);
    if (ferror(f) && st == AQA_OK) st = aqa_fail(AQA_EIO, "%s: write error", path);
    if (fclose(f) != 0 && st == AQA_OK) st = aqa_fail(AQA_EIO, "%s: close error: %s", path, strerror(errno));
    if (st != AQA_OK) unlink(path);
    return st;
}

aqa_status aqa__synth_make_dirs(const char *path) {
    char *p = strdup(path);
    if (!p) return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char keep = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                aqa_status st = aqa_fail(AQA_EIO, "%s: cannot create folder: %s", p, strerror(errno));
                free(p);
                return st;
            }
            *c = keep;
            if (!keep) break;
        }
    }
    struct stat sb;
    int ok = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(p);
    return ok ? AQA_OK : aqa_fail(AQA_EIO, "%s: not a folder", path);
}

static int is_frame_name(const char *n) {
    size_t k = 0;
    while (n[k] >= '0' && n[k] <= '9') k++;
    return k >= 5 && (strcmp(n + k, ".png") == 0 || strcmp(n + k, ".jpg") == 0);
}

/* Removes a frame folder made by this generator: only frame files, then the folder itself. */
static aqa_status remove_frame_dir(const char *dir) {
    DIR *dh = opendir(dir);
    if (!dh) {
        if (errno == ENOENT) return AQA_OK;
        return aqa_fail(AQA_EIO, "%s: cannot open: %s", dir, strerror(errno));
    }
    struct dirent *e;
    char path[4096];
    aqa_status st = AQA_OK;
    while ((e = readdir(dh)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!is_frame_name(e->d_name)) {
            st = aqa_fail(AQA_EIO, "%s: holds '%s', which is not a frame; not replacing it", dir, e->d_name);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) {
            st = aqa_fail(AQA_EIO, "%s: cannot remove: %s", path, strerror(errno));
            break;
        }
    }
    closedir(dh);
    if (st == AQA_OK && rmdir(dir) != 0) st = aqa_fail(AQA_EIO, "%s: cannot remove folder: %s", dir, strerror(errno));
    return st;
}

aqa_status aqa__synth_frame_dir_begin(synth_frame_dir *fd, const aqa_synthetic_config *cfg, const char *dir) {
    fd->cfg = cfg;
    snprintf(fd->dir, sizeof fd->dir, "%s", dir);
    const char *slash = strrchr(dir, '/');
    int parent = slash ? (int)(slash - dir) : 0;
    snprintf(fd->tmp, sizeof fd->tmp, "%.*s%s.%s.tmp.%ld", parent, dir, slash ? "/" : "", slash ? slash + 1 : dir,
             (long)getpid());
    aqa_status st;
    if (parent) {
        char up[4096];
        snprintf(up, sizeof up, "%.*s", parent, dir);
        if ((st = aqa__synth_make_dirs(up))) return st;
    }
    if ((st = remove_frame_dir(fd->tmp))) return st;
    if (mkdir(fd->tmp, 0755) != 0) return aqa_fail(AQA_EIO, "%s: cannot create folder: %s", fd->tmp, strerror(errno));
    return AQA_OK;
}

aqa_status aqa__synth_frame_dir_add(synth_frame_dir *fd, const aqa_image *im, const char *name) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.%s", fd->tmp, name, fd->cfg->format == AQA_SYNTH_PNG ? "png" : "jpg");
    return aqa__synth_write_frame(fd->cfg, im, path);
}

aqa_status aqa__synth_frame_dir_end(synth_frame_dir *fd, bool ok) {
    aqa_status st;
    if (!ok) return remove_frame_dir(fd->tmp);
    if ((st = remove_frame_dir(fd->dir)) != AQA_OK) return st;
    if (rename(fd->tmp, fd->dir) != 0)
        return aqa_fail(AQA_EIO, "%s: cannot rename %s into place: %s", fd->dir, fd->tmp, strerror(errno));
    return AQA_OK;
}

/* Renders and writes every frame of dive d into <out>/<video>/<instance> (FineDiving's layout). */
static aqa_status write_dive(const aqa_synthetic_config *cfg, const void *plan, size_t i, aqa_image *bg, aqa_image *im,
                             long long *frames) {
    const aqa_synthetic_dive *d = (const aqa_synthetic_dive *)plan + i;
    char dir[4096], name[32];
    snprintf(dir, sizeof dir, "%s/%s/%lld", cfg->out_dir, d->video, (long long)d->instance);
    synth_frame_dir fd;
    aqa_status st = aqa__synth_frame_dir_begin(&fd, cfg, dir);
    if (st) return st;
    scene s;
    scene_of(cfg, d, &s);
    draw_background(&s, d, bg);
    for (int t = 0; t < d->n_frames && !st; t++) {
        render_on(&s, d, t, bg, im);
        snprintf(name, sizeof name, "%05lld", (long long)(d->start_frame + t));
        st = aqa__synth_frame_dir_add(&fd, im, name);
    }
    if (st) {
        aqa__synth_frame_dir_end(&fd, false);
        return st;
    }
    *frames += d->n_frames;
    return aqa__synth_frame_dir_end(&fd, true);
}

void aqa__synth_dive_background(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, aqa_image *bg) {
    scene s;
    scene_of(cfg, d, &s);
    draw_background(&s, d, bg);
}

void aqa__synth_dive_frame(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, int t, const aqa_image *bg,
                           aqa_image *im) {
    scene s;
    scene_of(cfg, d, &s);
    render_on(&s, d, t < 0 ? 0 : t >= d->n_frames ? d->n_frames - 1 : t, bg, im);
}

/* ---------------------------------------------------------------------------------------- */
/* Threads */

typedef struct job {
    const aqa_synthetic_config *cfg;
    const void *plan;     /* the items */
    size_t n;
    synth_item_fn write;  /* writes one item */
    const char *what;     /* "dives", for the progress line */
    pthread_mutex_t lock;
    size_t next;          /* next item to write */
    size_t done;          /* items written */
    long long frames;     /* frames written */
    int failed;           /* a worker failed: the others stop */
    aqa_status status;    /* its status */
    char msg[1024];       /* its message (errors are thread-local) */
    struct timespec t0;   /* start, for the progress line */
    double last_print;    /* seconds at the last progress line */
} job;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void *worker(void *arg) {
    job *jb = arg;
    aqa_image *bg = aqa_image_new(jb->cfg->width, jb->cfg->height);
    aqa_image *im = aqa_image_new(jb->cfg->width, jb->cfg->height);
    for (;;) {
        size_t i;
        pthread_mutex_lock(&jb->lock);
        i = jb->next++;
        int stop = jb->failed || i >= jb->n;
        pthread_mutex_unlock(&jb->lock);
        if (stop) break;
        long long frames = 0;
        aqa_status st = bg && im ? jb->write(jb->cfg, jb->plan, i, bg, im, &frames) : aqa_fail(AQA_ENOMEM, "synthetic: out of memory");
        pthread_mutex_lock(&jb->lock);
        if (st != AQA_OK) {
            if (!jb->failed) {
                jb->failed = 1;
                jb->status = st;
                snprintf(jb->msg, sizeof jb->msg, "%s", aqa_last_error());
            }
        } else {
            jb->done++;
            jb->frames += frames;
            double el = since(&jb->t0);
            if (jb->cfg->progress && (el - jb->last_print > 0.25 || jb->done == jb->n)) {
                jb->last_print = el;
                fprintf(stderr, "\rsynthetic: %zu/%zu %s, %lld frames, %.1f s", jb->done, jb->n, jb->what, jb->frames, el);
                if (jb->done == jb->n) fputc('\n', stderr);
                fflush(stderr);
            }
        }
        pthread_mutex_unlock(&jb->lock);
    }
    aqa_image_free(bg);
    aqa_image_free(im);
    return NULL;
}

aqa_status aqa__synth_run_items(const aqa_synthetic_config *cfg, const void *plan, size_t n, synth_item_fn write,
                                const char *what) {
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.cfg = cfg;
    jb.plan = plan;
    jb.n = n;
    jb.write = write;
    jb.what = what;
    pthread_mutex_init(&jb.lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &jb.t0);
    int nt = cfg->threads;
    if (nt == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nt = c < 1 ? 1 : c > 8 ? 8 : (int)c;
    }
    if ((size_t)nt > n) nt = (int)n;
    pthread_t th[64];
    if (nt > 64) nt = 64;
    int started = 0;
    for (int i = 1; i < nt; i++) {
        if (pthread_create(&th[started], NULL, worker, &jb) != 0) break;
        started++;
    }
    worker(&jb); /* the calling thread works too */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&jb.lock);
    return jb.failed ? aqa_fail(jb.status, "%s", jb.msg) : AQA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Annotation files */

static void put_key(aqa_pickle_writer *w, const aqa_synthetic_dive *d) {
    aqa_pkw_tuple_begin(w);
    aqa_pkw_str(w, d->video);
    aqa_pkw_int(w, d->instance);
    aqa_pkw_tuple_end(w);
}

/* frames_labels and steps_transit_frames as int64 arrays. */
static aqa_status put_arrays(aqa_pickle_writer *w, const aqa_synthetic_dive *d, int labels_first) {
    int64_t *lab = malloc((size_t)d->n_frames * sizeof *lab);
    if (!lab) return aqa_fail(AQA_ENOMEM, "synthetic: out of memory");
    for (int t = 0; t < d->n_frames; t++) lab[t] = aqa_synthetic_frame_label(d, t);
    if (labels_first) {
        aqa_pkw_str(w, "steps_transit_frames");
        aqa_pkw_i64_array(w, d->transit, (size_t)d->n_steps - 1);
        aqa_pkw_str(w, "frames_labels");
        aqa_pkw_i64_array(w, lab, (size_t)d->n_frames);
    } else {
        aqa_pkw_i64_array(w, d->transit, (size_t)d->n_steps - 1);
        aqa_pkw_i64_array(w, lab, (size_t)d->n_frames);
    }
    free(lab);
    return AQA_OK;
}

aqa_status aqa__synth_save_pickle(aqa_pickle_writer *w, const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    aqa_status st = aqa_pkw_save(w, path);
    aqa_pkw_free(w);
    return st;
}

aqa_status aqa__synth_open_text(const char *dir, const char *name, aqa_atomic_file **af) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return aqa_atomic_open(path, af);
}

/* The "dive_score" and "difficulty" items of dive d's dict. */
static void put_score_difficulty(aqa_pickle_writer *w, const aqa_synthetic_dive *d) {
    aqa_pkw_str(w, "dive_score");
    aqa_pkw_float(w, d->score);
    aqa_pkw_str(w, "difficulty");
    aqa_pkw_float(w, d->difficulty);
}

/* The coarse annotation of d: {action_type, start_frame, end_frame, dive_score, difficulty, judge_scores}. */
static aqa_status put_coarse(aqa_pickle_writer *w, const aqa_synthetic_dive *d) {
    aqa_pkw_dict_begin(w);
    aqa_pkw_str(w, "action_type");
    aqa_pkw_str(w, d->number);
    aqa_pkw_str(w, "start_frame");
    aqa_pkw_int(w, d->start_frame);
    aqa_pkw_str(w, "end_frame");
    aqa_pkw_int(w, d->end_frame);
    put_score_difficulty(w, d);
    aqa_pkw_str(w, "judge_scores");
    aqa_pkw_list_begin(w);
    for (int j = 0; j < AQA_SYNTH_JUDGES; j++) aqa_pkw_float(w, d->judges[j]);
    aqa_pkw_list_end(w);
    aqa_pkw_dict_end(w);
    return AQA_OK;
}

/* The fine-grained annotation of d: {action_type, dive_score, difficulty, the arrays, sub-action_types}. */
static aqa_status put_fine(aqa_pickle_writer *w, const aqa_synthetic_dive *d) {
    aqa_pkw_dict_begin(w);
    aqa_pkw_str(w, "action_type");
    aqa_pkw_str(w, d->number);
    put_score_difficulty(w, d);
    aqa_status st = put_arrays(w, d, 1);
    if (st != AQA_OK) return st;
    aqa_pkw_str(w, "sub-action_types");
    aqa_pkw_dict_begin(w);
    for (int k = 0; k < d->n_steps; k++) {
        aqa_pkw_int(w, d->step_ids[k]);
        aqa_pkw_str(w, aqa_finediving_subaction_name(d->step_ids[k]));
    }
    aqa_pkw_dict_end(w);
    aqa_pkw_dict_end(w);
    return AQA_OK;
}

/* The fine-grained_annotation_aqa entry of d: [action_type, dive_score, difficulty, transits, labels]. */
static aqa_status put_aqa(aqa_pickle_writer *w, const aqa_synthetic_dive *d) {
    aqa_pkw_list_begin(w);
    aqa_pkw_str(w, d->number);
    aqa_pkw_float(w, d->score);
    aqa_pkw_float(w, d->difficulty);
    aqa_status st = put_arrays(w, d, 0);
    if (st != AQA_OK) return st;
    aqa_pkw_list_end(w);
    return AQA_OK;
}

/* Writes dive d's value into a pickle.  The writer's errors are sticky and the save reports them
 * with a message, so only other failures (no memory for a temporary) are returned. */
typedef aqa_status (*put_dive_fn)(aqa_pickle_writer *w, const aqa_synthetic_dive *d);

/* Writes <dir>/<name>: a dict from each dive's key (video, instance) to the value put_value gives. */
static aqa_status write_dive_dict(const char *dir, const char *name, put_dive_fn put_value,
                                  const aqa_synthetic_dive *dv, size_t n) {
    aqa_pickle_writer *w = aqa_pkw_new();
    if (!w) return aqa_last_status();
    aqa_pkw_dict_begin(w);
    for (size_t i = 0; i < n; i++) {
        put_key(w, &dv[i]);
        aqa_status st = put_value(w, &dv[i]);
        if (st != AQA_OK) {
            aqa_pkw_free(w);
            return st;
        }
    }
    aqa_pkw_dict_end(w);
    return aqa__synth_save_pickle(w, dir, name);
}

static aqa_status write_annotations(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *dv, size_t n) {
    aqa_pickle_writer *w;
    aqa_status st;
    const char *dir = cfg->out_dir;
    if ((st = write_dive_dict(dir, "FineDiving_coarse_annotation.pkl", put_coarse, dv, n)) != AQA_OK ||
        (st = write_dive_dict(dir, "FineDiving_fine-grained_annotation.pkl", put_fine, dv, n)) != AQA_OK ||
        (st = write_dive_dict(dir, "fine-grained_annotation_aqa.pkl", put_aqa, dv, n)) != AQA_OK)
        return st;

    /* sub-action table */
    if (!(w = aqa_pkw_new())) return aqa_last_status();
    aqa_pkw_dict_begin(w);
    for (int id = 1; id <= AQA_FINEDIVING_SUBACTIONS; id++) {
        aqa_pkw_int(w, id);
        aqa_pkw_str(w, aqa_finediving_subaction_name(id));
    }
    aqa_pkw_dict_end(w);
    if ((st = aqa__synth_save_pickle(w, dir, "Sub_action_Types_Table.pkl")) != AQA_OK) return st;

    /* splits */
    for (int sp = 0; sp < 2; sp++) {
        if (!(w = aqa_pkw_new())) return aqa_last_status();
        aqa_pkw_list_begin(w);
        for (size_t i = 0; i < n; i++)
            if (dv[i].split == sp) put_key(w, &dv[i]);
        aqa_pkw_list_end(w);
        if ((st = aqa__synth_save_pickle(w, dir, sp ? "test_split.pkl" : "train_split.pkl")) != AQA_OK) return st;
    }
    return AQA_OK;
}

/* The hidden factors (CSV) and the settings (text), for analysis and reproduction. */
static aqa_status write_side_files(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *dv, size_t n) {
    char path[4200];
    aqa_atomic_file *af;
    aqa_status st;
    snprintf(path, sizeof path, "%s/synthetic_dives.csv", cfg->out_dir);
    if ((st = aqa_atomic_open(path, &af)) != AQA_OK) return st;
    FILE *f = aqa_atomic_stream(af);
    fprintf(f, "video,instance,dive_number,difficulty,score,execution,split,n_frames,start_frame,end_frame,"
               "boundary1,boundary2,jump_height,angle_jitter,entry_tilt,splash,tightness,knee_bend\n");
    for (size_t i = 0; i < n; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        fprintf(f, "%s,%lld,%s,%.1f,%.2f,%.6f,%s,%d,%lld,%lld,%lld,%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", d->video,
                (long long)d->instance, d->number, d->difficulty, d->score, d->execution, d->split ? "test" : "train",
                d->n_frames, (long long)d->start_frame, (long long)d->end_frame, (long long)d->transit[0],
                (long long)d->transit[d->n_steps - 2], d->jump_height, d->angle_jitter, d->entry_tilt, d->splash,
                d->tightness, d->knee_bend);
    }
    if ((st = aqa_atomic_commit(af)) != AQA_OK) return st;
    return aqa__synth_write_config(cfg);
}

aqa_status aqa__synth_write_config(const aqa_synthetic_config *cfg) {
    static const char *const names[4] = {"finediving", "mtl-aqa", "jigsaws", "fisv"};
    aqa_atomic_file *af;
    aqa_status st = aqa__synth_open_text(cfg->out_dir, "synthetic_config.txt", &af);
    if (st) return st;
    FILE *f = aqa_atomic_stream(af);
    fprintf(f,
            "# aqa synthetic dataset (datasets/synthetic.h), written by aqa_synthetic_generate\n"
            "layout = %s\nvideos = %d\nseed = %llu\nwidth = %d\nheight = %d\nmin_frames = %d\nmax_frames = %d\n"
            "format = %s\njpeg_quality = %d\ntrain_fraction = %.4f\ndives_per_video = %d\n",
            names[cfg->layout], cfg->n_videos, (unsigned long long)cfg->seed, cfg->width, cfg->height, cfg->min_frames,
            cfg->max_frames, cfg->format == AQA_SYNTH_PNG ? "png" : "jpg", cfg->jpeg_quality, cfg->train_fraction,
            cfg->dives_per_video);
    if (cfg->layout == AQA_SYNTH_FISV) fprintf(f, "feature_dim = %d\n", cfg->feature_dim);
    return aqa_atomic_commit(af);
}

aqa_status aqa_synthetic_generate(const aqa_synthetic_config *cfg) {
    aqa_status st = check_config(cfg);
    if (st) return st;
    if (!cfg->out_dir || !*cfg->out_dir) return aqa_fail(AQA_EINVAL, "synthetic: no output folder");
    if ((st = aqa__synth_make_dirs(cfg->out_dir)) != AQA_OK) return st;
    switch (cfg->layout) {
    case AQA_SYNTH_MTL_AQA: return aqa__synth_generate_mtl_aqa(cfg);
    case AQA_SYNTH_JIGSAWS: return aqa__synth_generate_jigsaws(cfg);
    case AQA_SYNTH_FISV: return aqa__synth_generate_fisv(cfg);
    case AQA_SYNTH_FINEDIVING: break;
    }
    aqa_synthetic_dive *dv = NULL;
    size_t n = 0;
    if ((st = aqa_synthetic_plan(cfg, &dv, &n)) != AQA_OK) return st;
    st = aqa__synth_run_items(cfg, dv, n, write_dive, "dives");
    if (st == AQA_OK) st = write_annotations(cfg, dv, n);
    if (st == AQA_OK) st = write_side_files(cfg, dv, n);
    free(dv);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Videos */

/* Renders every frame of dive d into w. */
static aqa_status add_dive_frames(aqa_video_writer *w, const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d,
                                  aqa_image *bg, aqa_image *im) {
    scene s;
    scene_of(cfg, d, &s);
    draw_background(&s, d, bg);
    for (int t = 0; t < d->n_frames; t++) {
        render_on(&s, d, t, bg, im);
        aqa_status st = aqa_video_writer_add(w, im);
        if (st) return st;
    }
    return AQA_OK;
}

aqa_status aqa_synthetic_write_videos(const aqa_synthetic_config *cfg, const char *dir, const char *ext,
                                      const char *codec, bool per_dive) {
    if (!dir || !ext) return aqa_fail(AQA_EINVAL, "synthetic videos: no folder or extension");
    aqa_synthetic_dive *dv = NULL;
    size_t n = 0;
    aqa_status st = aqa_synthetic_plan(cfg, &dv, &n);
    if (st) return st;
    if ((st = aqa__synth_make_dirs(dir))) {
        free(dv);
        return st;
    }
    aqa_image *bg = aqa_image_new(cfg->width, cfg->height), *im = aqa_image_new(cfg->width, cfg->height);
    aqa_video_writer_options o = aqa_video_writer_defaults();
    o.codec = codec;
    char path[1200];
    aqa_video_writer *w = NULL;
    int64_t next = AQA_VD_VIDEO_FIRST_NUMBER; /* frame number of the next frame written */
    for (size_t i = 0; i < n && bg && im && !st; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        bool first = i == 0 || strcmp(dv[i - 1].video, d->video) != 0;
        if (per_dive || first) {
            if (w) {
                st = aqa_video_writer_close(w);
                w = NULL;
                if (st) break;
            }
            if (per_dive) snprintf(path, sizeof path, "%s/%s_%lld.%s", dir, d->video, (long long)d->instance, ext);
            else snprintf(path, sizeof path, "%s/%s.%s", dir, d->video, ext);
            if (!(w = aqa_video_writer_open(path, cfg->width, cfg->height, &o))) {
                st = aqa_last_status();
                break;
            }
            next = AQA_VD_VIDEO_FIRST_NUMBER;
        }
        if (!per_dive && next < d->start_frame) { /* the wait before the dive: its first frame */
            scene s;
            scene_of(cfg, d, &s);
            draw_background(&s, d, bg);
            render_on(&s, d, 0, bg, im);
            for (; next < d->start_frame && !st; next++) st = aqa_video_writer_add(w, im);
        }
        if (!st) st = add_dive_frames(w, cfg, d, bg, im);
        next = d->end_frame + 1;
    }
    if (!bg || !im) st = aqa_last_status();
    if (w && !st) st = aqa_video_writer_close(w);
    else aqa_video_writer_abort(w);
    aqa_image_free(bg);
    aqa_image_free(im);
    free(dv);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Contact sheet */

static const char *stage_name(int stage) {
    return stage == 0 ? "take-off" : stage == 1 ? "flight" : "entry";
}

aqa_status aqa_synthetic_contact_sheet(const aqa_synthetic_config *cfg, size_t which, int tiles, int cols,
                                       const char *path) {
    aqa_synthetic_dive *dv = NULL;
    size_t n = 0;
    aqa_status st;
    if (!path) return aqa_fail(AQA_EINVAL, "synthetic: contact sheet needs a path");
    if (tiles < 1 || tiles > 400 || cols < 1)
        return aqa_fail(AQA_EINVAL, "synthetic: contact sheet of %d tiles in %d columns", tiles, cols);
    if ((st = aqa_synthetic_plan(cfg, &dv, &n)) != AQA_OK) return st;
    if (which >= n) {
        free(dv);
        return aqa_fail(AQA_EINVAL, "synthetic: contact sheet of dive %zu, the plan has %zu", which, n);
    }
    const aqa_synthetic_dive *d = &dv[which];
    if (tiles > d->n_frames) tiles = d->n_frames;
    if (cols > tiles) cols = tiles;
    int scale = cfg->width <= 48 ? 4 : cfg->width <= 96 ? 2 : 1;
    int tw = cfg->width * scale, th = cfg->height * scale, cap = 24, gap = 6, top = 44;
    int rows = (tiles + cols - 1) / cols;
    int W = cols * (tw + gap) + gap, H = top + rows * (th + cap + gap) + gap;
    aqa_dive_texts texts;
    char title[512], line2[512];
    aqa_image *sheet = aqa_image_new(W, H), *bg = aqa_image_new(cfg->width, cfg->height),
              *im = aqa_image_new(cfg->width, cfg->height);
    if (!sheet || !bg || !im) {
        st = aqa_last_status();
        goto done;
    }
    if ((st = aqa_dive_texts_from_number(d->number, &texts)) != AQA_OK) goto done;
    aqa_canvas_fill(sheet, AQA_RGB_WHITE);
    snprintf(title, sizeof title, "%s/%lld  dive %s: %s", d->video, (long long)d->instance, d->number, texts.category);
    snprintf(line2, sizeof line2, "DD %.1f  execution %.2f  score %.2f  frames %d  boundaries %lld | %lld", d->difficulty,
             d->execution, d->score, d->n_frames, (long long)d->transit[0], (long long)d->transit[d->n_steps - 2]);
    aqa_canvas_text(sheet, gap, 6, title, 1, AQA_RGB_BLACK);
    aqa_canvas_text(sheet, gap, 22, line2, 1, aqa_rgb_make(60, 60, 60));
    scene s;
    scene_of(cfg, d, &s);
    draw_background(&s, d, bg);
    for (int k = 0; k < tiles; k++) {
        int t = tiles == 1 ? 0 : (int)lround((double)k * (d->n_frames - 1) / (tiles - 1));
        render_on(&s, d, t, bg, im);
        int x0 = gap + (k % cols) * (tw + gap), y0 = top + (k / cols) * (th + cap + gap);
        for (int y = 0; y < th; y++)
            for (int x = 0; x < tw; x++) {
                const uint8_t *p = im->data + aqa_image_offset(im, x / scale, y / scale);
                aqa_canvas_pixel(sheet, x0 + x, y0 + y, aqa_rgb_make(p[0], p[1], p[2]));
            }
        int stage = aqa_synthetic_frame_stage(d, t);
        aqa_rgb sc = stage == 0 ? aqa_rgb_make(44, 160, 44) : stage == 1 ? aqa_rgb_make(31, 119, 180) : aqa_rgb_make(214, 39, 40);
        aqa_canvas_rect(sheet, x0, y0 + th, tw, 3, sc);
        char c1[64], c2[64];
        snprintf(c1, sizeof c1, "t=%d %s", t, stage_name(stage));
        snprintf(c2, sizeof c2, "%s", aqa_finediving_subaction_name(aqa_synthetic_frame_label(d, t)));
        aqa_canvas_text(sheet, x0, y0 + th + 4, c1, 1, sc);
        aqa_canvas_text(sheet, x0, y0 + th + 14, c2, 1, aqa_rgb_make(40, 40, 40));
    }
    st = aqa_image_save_png(sheet, path);
done:
    aqa_image_free(sheet);
    aqa_image_free(bg);
    aqa_image_free(im);
    free(dv);
    return st;
}
