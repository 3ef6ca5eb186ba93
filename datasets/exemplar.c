/* exemplar.c: exemplar pools grouped by dive number and difficulty; see exemplar.h. */
#include "datasets/exemplar.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t aqa_seed_mix(uint64_t a, uint64_t b) {
    uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void aqa_seeded_permutation(uint64_t seed, size_t n, size_t *order) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    uint64_t s = seed;
    for (size_t i = n; i > 1; i--) {
        s = aqa_seed_mix(s, i);
        size_t j = (size_t)(s % (uint64_t)i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

aqa_status aqa_exemplar_mode_parse(const char *s, aqa_exemplar_mode *out) {
    if (!s) return aqa_fail(AQA_EINVAL, "exemplar setting: NULL");
    char b[16];
    size_t n = 0;
    for (const char *p = s; *p && n < sizeof b - 1; p++)
        if (*p != '/' && *p != ' ' && *p != '_' && *p != '-') b[n++] = (char)tolower((unsigned char)*p);
    b[n] = 0;
    if (!strcmp(b, "random") || !strcmp(b, "wo") || !strcmp(b, "wodn") || !strcmp(b, "none")) *out = AQA_EXEMPLAR_RANDOM;
    else if (!strcmp(b, "dn") || !strcmp(b, "wdn")) *out = AQA_EXEMPLAR_DIVE;
    else if (!strcmp(b, "dd") || !strcmp(b, "wdd")) *out = AQA_EXEMPLAR_DIFFICULTY;
    else return aqa_fail(AQA_EINVAL, "exemplar setting \"%s\": expected w/DN, w/DD or w/o", s);
    return AQA_OK;
}

const char *aqa_exemplar_mode_name(aqa_exemplar_mode m) {
    switch (m) {
    case AQA_EXEMPLAR_RANDOM: return "w/o DN";
    case AQA_EXEMPLAR_DIVE: return "w/ DN";
    case AQA_EXEMPLAR_DIFFICULTY: return "w/ DD";
    }
    return "?";
}

static void dn_key(const char *num, char *out) {
    size_t k = 0;
    for (; num[k] && k < 15; k++) out[k] = (char)toupper((unsigned char)num[k]);
    out[k] = 0;
}
static int64_t dd_key(double dd) { return (int64_t)llround(dd * 1000.0); }

static aqa_status group_add(aqa_exemplar_group *g, size_t item) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        size_t *p = realloc(g->items, cap * sizeof *p);
        if (!p) return aqa_fail(AQA_ENOMEM, "exemplar pool: out of memory");
        g->items = p;
        g->cap = cap;
    }
    g->items[g->n++] = item;
    return AQA_OK;
}

static aqa_exemplar_group *find_dn(aqa_exemplar_pool *p, const char *key) {
    for (size_t i = 0; i < p->n_dn; i++)
        if (!strcmp(p->dn[i].key_dn, key)) return &p->dn[i];
    return NULL;
}
static aqa_exemplar_group *find_dd(aqa_exemplar_pool *p, int64_t key) {
    for (size_t i = 0; i < p->n_dd; i++)
        if (p->dd[i].key_dd == key) return &p->dd[i];
    return NULL;
}

void aqa_exemplar_pool_free(aqa_exemplar_pool *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_dn; i++) free(p->dn[i].items);
    for (size_t i = 0; i < p->n_dd; i++) free(p->dd[i].items);
    free(p->dn);
    free(p->dd);
    free(p);
}

aqa_exemplar_pool *aqa_exemplar_pool_new(const aqa_video_dataset *pool, aqa_exemplar_mode mode) {
    if (!pool || pool->n_items == 0) return aqa_fail_null("exemplar pool: empty pool");
    aqa_exemplar_pool *p = calloc(1, sizeof *p);
    if (!p) return aqa_fail_null("exemplar pool: out of memory");
    p->pool = pool;
    p->mode = mode;
    p->dn = calloc(pool->n_items, sizeof *p->dn);
    p->dd = calloc(pool->n_items, sizeof *p->dd);
    if (!p->dn || !p->dd) {
        aqa_exemplar_pool_free(p);
        return aqa_fail_null("exemplar pool: out of memory");
    }
    for (size_t i = 0; i < pool->n_items; i++) {
        const aqa_ann_sample *s = aqa_vd_sample(pool, i);
        char k[16];
        dn_key(s->dive_number, k);
        aqa_exemplar_group *g = find_dn(p, k);
        if (!g) {
            g = &p->dn[p->n_dn++];
            memcpy(g->key_dn, k, sizeof k);
        }
        if (group_add(g, i)) goto fail;
        g = find_dd(p, dd_key(s->difficulty));
        if (!g) {
            g = &p->dd[p->n_dd++];
            g->key_dd = dd_key(s->difficulty);
        }
        if (group_add(g, i)) goto fail;
    }
    return p;
fail:
    aqa_exemplar_pool_free(p);
    return NULL;
}

/* Fills cand with the group's items except the query; returns the count. */
static size_t candidates(const aqa_exemplar_pool *p, const size_t *items, size_t n, const char *qkey, size_t *cand) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(aqa_vd_sample(p->pool, items[i])->key, qkey) != 0) cand[m++] = items[i];
    return m;
}

aqa_status aqa_exemplar_pick(aqa_exemplar_pool *p, const aqa_ann_sample *query, uint64_t seed, int k, size_t *out,
                             int *distinct) {
    if (!p || !query || k <= 0 || !out) return aqa_fail(AQA_EINVAL, "aqa_exemplar_pick: bad argument");
    size_t n_pool = p->pool->n_items;
    size_t *cand = malloc(n_pool * sizeof *cand);
    size_t *all = malloc(n_pool * sizeof *all);
    if (!cand || !all) {
        free(cand);
        free(all);
        return aqa_fail(AQA_ENOMEM, "aqa_exemplar_pick: out of memory");
    }
    size_t m = 0;
    bool fell_back = false;
    if (p->mode == AQA_EXEMPLAR_DIVE) {
        char key[16];
        dn_key(query->dive_number, key);
        aqa_exemplar_group *g = find_dn(p, key);
        if (g) m = candidates(p, g->items, g->n, query->key, cand);
        if (!m) fell_back = true;
    }
    if (!m && (p->mode == AQA_EXEMPLAR_DIFFICULTY || p->mode == AQA_EXEMPLAR_DIVE)) {
        aqa_exemplar_group *g = find_dd(p, dd_key(query->difficulty));
        if (g) m = candidates(p, g->items, g->n, query->key, cand);
        if (!m) fell_back = true;
    }
    if (!m) {
        for (size_t i = 0; i < n_pool; i++) all[i] = i;
        m = candidates(p, all, n_pool, query->key, cand);
    }
    free(all);
    if (!m) {
        free(cand);
        return aqa_fail(AQA_EINVAL, "exemplar pool holds no video other than the query %s", query->key);
    }
    if (fell_back) __atomic_fetch_add(&p->fallbacks, 1, __ATOMIC_RELAXED);
    /* partial Fisher-Yates with a splitmix64 stream */
    uint64_t state = seed;
    size_t take = (size_t)k < m ? (size_t)k : m;
    for (size_t i = 0; i < take; i++) {
        state = aqa_seed_mix(state, i);
        size_t j = i + (size_t)(state % (uint64_t)(m - i));
        size_t tmp = cand[i];
        cand[i] = cand[j];
        cand[j] = tmp;
    }
    for (int i = 0; i < k; i++) out[i] = cand[(size_t)i % take];
    if (distinct) *distinct = (int)take;
    free(cand);
    return AQA_OK;
}

/* The groups pairs are formed in: the mode's groups, or one group of the whole pool. */
static size_t pair_groups(const aqa_exemplar_pool *p, const aqa_exemplar_group **g, aqa_exemplar_group *all) {
    if (p->mode == AQA_EXEMPLAR_DIVE) {
        *g = p->dn;
        return p->n_dn;
    }
    if (p->mode == AQA_EXEMPLAR_DIFFICULTY) {
        *g = p->dd;
        return p->n_dd;
    }
    *g = all;
    return 1;
}

static double pair_score(const aqa_exemplar_pool *p, size_t item, bool use_dd) {
    const aqa_ann_sample *s = aqa_vd_sample(p->pool, item);
    return use_dd && s->difficulty > 0 ? s->score / s->difficulty : s->score;
}

aqa_status aqa_exemplar_pool_deltas(const aqa_exemplar_pool *p, bool use_dd, size_t max_pairs, double **out, size_t *n) {
    if (!p || !out || !n) return aqa_fail(AQA_EINVAL, "aqa_exemplar_pool_deltas: NULL argument");
    *out = NULL;
    *n = 0;
    aqa_exemplar_group all = {0};
    size_t n_pool = p->pool->n_items;
    all.items = malloc((n_pool + 1) * sizeof *all.items);
    if (!all.items) return aqa_fail(AQA_ENOMEM, "aqa_exemplar_pool_deltas: out of memory");
    for (size_t i = 0; i < n_pool; i++) all.items[i] = i;
    all.n = n_pool;
    const aqa_exemplar_group *g;
    size_t ng = pair_groups(p, &g, &all), pairs = 0;
    for (size_t k = 0; k < ng; k++) pairs += g[k].n * (g[k].n - (g[k].n > 0)) / 2;
    size_t step = max_pairs && pairs > max_pairs ? (pairs + max_pairs - 1) / max_pairs : 1;
    double *d = pairs ? malloc((pairs / step + 1) * sizeof *d) : NULL;
    if (pairs && !d) {
        free(all.items);
        return aqa_fail(AQA_ENOMEM, "aqa_exemplar_pool_deltas: out of memory for %zu pairs", pairs);
    }
    size_t idx = 0, m = 0;
    for (size_t k = 0; k < ng; k++)
        for (size_t i = 0; i < g[k].n; i++) {
            double si = pair_score(p, g[k].items[i], use_dd);
            for (size_t j = i + 1; j < g[k].n; j++, idx++)
                if (idx % step == 0) d[m++] = fabs(si - pair_score(p, g[k].items[j], use_dd));
        }
    free(all.items);
    *out = d;
    *n = m;
    return AQA_OK;
}
