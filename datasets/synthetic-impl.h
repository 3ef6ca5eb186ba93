/* synthetic-impl.h: what the synthetic dataset writers share (private to datasets/synthetic*.c):
 * seeded random streams, folders, frame and pickle files, a folder of frames written on threads,
 * and the diving renderer the MTL-AQA layout reuses. */
#ifndef AQA_DATASETS_SYNTHETIC_IMPL_H
#define AQA_DATASETS_SYNTHETIC_IMPL_H

#include <math.h>
#include <stdint.h>

#include "datasets/synthetic.h"
#include "io/atomic_file.h"
#include "io/pickle_write.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- random numbers: splitmix64 streams, Box-Muller normals ---------------------------------- */

typedef struct synth_rng {
    uint64_t s; /* splitmix64 state */
} synth_rng;

static inline uint64_t synth_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t synth_next(synth_rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    return synth_mix64(r->s);
}

/* Uniform in [0, 1). */
static inline double synth_uniform(synth_rng *r) { return (double)(synth_next(r) >> 11) * (1.0 / 9007199254740992.0); }

static inline double synth_normal(synth_rng *r) {
    double u1 = synth_uniform(r), u2 = synth_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Stream `stream` of seed `seed`: independent streams per item keep item i the same whatever the
 * number of items. */
static inline synth_rng synth_rng_make(uint64_t seed, uint64_t stream) {
    synth_rng r = {synth_mix64(seed ^ synth_mix64(stream + 0x6a09e667f3bcc909ULL))};
    return r;
}

static inline double synth_clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* ---- files -------------------------------------------------------------------------------------- */

/* mkdir -p. */
aqa_status aqa__synth_make_dirs(const char *path);
/* One frame file in cfg's format (PNG or JPEG). */
aqa_status aqa__synth_write_frame(const aqa_synthetic_config *cfg, const aqa_image *im, const char *path);
/* Saves and frees pickle w as <dir>/<name> (atomically). */
aqa_status aqa__synth_save_pickle(aqa_pickle_writer *w, const char *dir, const char *name);
/* check_config of synthetic.c: every setting in range for cfg->layout. */
aqa_status aqa__synth_check_config(const aqa_synthetic_config *cfg);
/* <out>/synthetic_config.txt: the settings that produced the set. */
aqa_status aqa__synth_write_config(const aqa_synthetic_config *cfg);
/* Opens <dir>/<name> for an atomic text write (commit with aqa_atomic_commit). */
aqa_status aqa__synth_open_text(const char *dir, const char *name, aqa_atomic_file **af);

/* A folder of frames written whole: frames go into a hidden temporary folder beside `dir`, which
 * replaces `dir` (a folder holding only frame files, or none) when complete. */
typedef struct synth_frame_dir {
    const aqa_synthetic_config *cfg; /* frame format */
    char dir[4096];                  /* the final folder */
    char tmp[4200];                  /* where the frames are written meanwhile */
} synth_frame_dir;

aqa_status aqa__synth_frame_dir_begin(synth_frame_dir *fd, const aqa_synthetic_config *cfg, const char *dir);
/* Writes frame image im as <tmp>/<name>.<png|jpg>. */
aqa_status aqa__synth_frame_dir_add(synth_frame_dir *fd, const aqa_image *im, const char *name);
/* Renames the temporary folder into place (or, with `ok` false, removes it). */
aqa_status aqa__synth_frame_dir_end(synth_frame_dir *fd, bool ok);

/* ---- items on threads --------------------------------------------------------------------------- */

/* Writes item i of a plan (a dive, a competition video, a trial) using the thread's two scratch
 * images of cfg's size; adds the frames written to *frames. */
typedef aqa_status (*synth_item_fn)(const aqa_synthetic_config *cfg, const void *plan, size_t i, aqa_image *bg,
                                    aqa_image *im, long long *frames);

/* Runs write(0..n-1) on cfg->threads threads (0 = the online CPUs, at most 8), with a progress line
 * naming `what` ("dives") when cfg->progress; stops at the first failure and returns it. */
aqa_status aqa__synth_run_items(const aqa_synthetic_config *cfg, const void *plan, size_t n, synth_item_fn write,
                                const char *what);

/* ---- the diving renderer (synthetic.c), for the other dive layouts ------------------------------ */

/* The background of dive d (its scene without the diver) into bg. */
void aqa__synth_dive_background(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, aqa_image *bg);
/* Frame t of dive d on background bg into im; t is clamped to the dive (before it the diver waits in
 * its first frame's pose, after it the last frame stays). */
void aqa__synth_dive_frame(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, int t, const aqa_image *bg,
                           aqa_image *im);

/* ---- the other layouts ------------------------------------------------------------------------- */

aqa_status aqa__synth_generate_mtl_aqa(const aqa_synthetic_config *cfg);  /* synthetic_mtl.c */
aqa_status aqa__synth_generate_jigsaws(const aqa_synthetic_config *cfg);  /* synthetic_surgery.c */
aqa_status aqa__synth_generate_fisv(const aqa_synthetic_config *cfg);     /* synthetic_skating.c */

#endif /* AQA_DATASETS_SYNTHETIC_IMPL_H */
