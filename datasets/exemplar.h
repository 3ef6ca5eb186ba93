/* exemplar.h: exemplar pairing for contrastive assessment heads (TSA, CoRe).
 *
 * A contrastive head predicts a query's score relative to exemplars of known score.  The pool is
 * the training split (exemplars never come from the test split); the settings of the papers:
 *   AQA_EXEMPLAR_RANDOM      'w/o DN': any pool video
 *   AQA_EXEMPLAR_DIVE        'w/ DN': a pool video with the same dive number (case-insensitive)
 *   AQA_EXEMPLAR_DIFFICULTY  'w/ DD': a pool video with the same degree of difficulty (to 0.001)
 * never the query itself (compared by sample key, so a query from another split object of the same
 * dataset is recognised).  Several exemplars (e.g. 10 at test time, TSA's voter_number) are drawn
 * without replacement from the candidates; when there are fewer candidates than asked, the
 * shuffled candidates repeat in turn (so a batch keeps its shape) and the pick says how many are
 * distinct: TSA and CoRe then average over those few (train_file_list[:voter_number]), which
 * aqa_head_predict_exemplars does with the loader's exemplar_count.  When a query has no candidate
 * in its group (a test dive number absent from training, or a group holding only the query) the
 * pick falls back to the same difficulty (for 'w/ DN') and then to the whole pool, and the
 * fallback is counted (aqa_exemplar_pool.fallbacks).  (TSA would pick the query itself in the
 * first case and fail with a KeyError in the second.)  Picks are a pure function of the seed. */
#ifndef AQA_DATASETS_EXEMPLAR_H
#define AQA_DATASETS_EXEMPLAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/video_dataset.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_exemplar_mode {
    AQA_EXEMPLAR_RANDOM = 0,    /* 'w/o DN' */
    AQA_EXEMPLAR_DIVE = 1,      /* 'w/ DN' */
    AQA_EXEMPLAR_DIFFICULTY = 2 /* 'w/ DD' */
} aqa_exemplar_mode;

/* Parses "random" / "w/o" / "wo", "dn" / "w/DN" / "wdn", "dd" / "w/DD" / "wdd" (case-insensitive). */
aqa_status aqa_exemplar_mode_parse(const char *s, aqa_exemplar_mode *out);
const char *aqa_exemplar_mode_name(aqa_exemplar_mode m); /* "w/o DN", "w/ DN", "w/ DD" */

typedef struct aqa_exemplar_group {
    int64_t key_dd;       /* difficulty x 1000 rounded (DD groups) */
    char key_dn[16];      /* upper-case dive number (DN groups) */
    size_t *items;        /* pool item indices */
    size_t n, cap;
} aqa_exemplar_group;

typedef struct aqa_exemplar_pool {
    const aqa_video_dataset *pool; /* borrowed: the training split */
    aqa_exemplar_mode mode;
    aqa_exemplar_group *dn, *dd;   /* groups by dive number and by difficulty */
    size_t n_dn, n_dd;
    size_t fallbacks;              /* picks that left the asked group (see above) */
} aqa_exemplar_pool;

aqa_exemplar_pool *aqa_exemplar_pool_new(const aqa_video_dataset *pool, aqa_exemplar_mode mode);
void aqa_exemplar_pool_free(aqa_exemplar_pool *p);

/* k pool item indices for `query` into out[k], deterministically from seed; *distinct (may be
 * NULL) = how many of them differ (min(k, candidates)): out[0 .. distinct) are distinct and the
 * rest repeat them.  AQA_EINVAL when the pool holds nothing but the query. */
aqa_status aqa_exemplar_pick(aqa_exemplar_pool *p, const aqa_ann_sample *query, uint64_t seed, int k, size_t *out,
                             int *distinct);

/* CoRe's delta list (MTLPair.delta): |s_i - s_j| of every unordered pair {i, j} of pool videos in
 * the same group of the pool's mode (the whole pool for 'w/o DN'), each score / its own DD when
 * use_dd.  When there are more than max_pairs pairs (max_pairs > 0), every ceil(pairs /
 * max_pairs)-th pair in enumeration order is taken (a uniform sample).  *out is malloc'd (NULL
 * with *n = 0 when no group has two videos). */
aqa_status aqa_exemplar_pool_deltas(const aqa_exemplar_pool *p, bool use_dd, size_t max_pairs, double **out, size_t *n);

/* A 64-bit mix of (a, b) (splitmix64), used to derive per-item seeds. */
uint64_t aqa_seed_mix(uint64_t a, uint64_t b);
/* A permutation of 0..n-1 into order[n], a pure function of (seed, n) (Fisher-Yates driven by
 * aqa_seed_mix): the loaders' epoch shuffles and the held-out validation videos. */
void aqa_seeded_permutation(uint64_t seed, size_t n, size_t *order);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_EXEMPLAR_H */
