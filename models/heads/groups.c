/* groups.c: CoRe's groups and their tree loss (groups.h). */
#include "models/heads/groups.h"

#include <math.h>
#include <stdlib.h>

#include "models/mvla/stages.h"
#include "nn/loss.h"
#include "ops/ops.h"

void aqa_groups_even(double *g, int64_t leaves, double range) {
    for (int64_t i = 0; i < leaves; i++) {
        g[2 * i] = -range + 2 * range * (double)i / (double)leaves;
        g[2 * i + 1] = -range + 2 * range * (double)(i + 1) / (double)leaves;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

aqa_status aqa_groups_from_deltas(double *g, int64_t leaves, const double *deltas, int64_t n, double max) {
    if (!g || !deltas || n < 1 || leaves < 2 || leaves % 2)
        return aqa_fail(AQA_EINVAL, "groups: need at least one delta and an even number of leaves (got %lld, %lld)",
                        (long long)n, (long long)leaves);
    double *a = malloc(sizeof *a * (size_t)n);
    if (!a) return aqa_fail(AQA_ENOMEM, "groups: out of memory");
    for (int64_t i = 0; i < n; i++) a[i] = fabs(deltas[i]);
    qsort(a, (size_t)n, sizeof *a, cmp_double);
    int64_t half = leaves / 2;
    for (int64_t i = 0; i < half; i++) {
        double left = i == 0 ? 0.0 : a[(int64_t)((double)i / (double)half * (double)(n - 1))];
        double right = i < half - 1 ? a[(int64_t)((double)(i + 1) / (double)half * (double)(n - 1))]
                                    : (max > 0 ? max : a[n - 1]);
        g[2 * (half + i)] = left;
        g[2 * (half + i) + 1] = right;
        g[2 * (half - 1 - i)] = -right; /* mirrored negative half, [left, right] sorted */
        g[2 * (half - 1 - i) + 1] = -left;
    }
    free(a);
    return AQA_OK;
}

int64_t aqa_groups_leaf(const double *g, int64_t leaves, double d, double *rel) {
    int64_t best = -1;
    for (int64_t i = 0; i < leaves && best < 0; i++) {
        double l = g[2 * i], r = g[2 * i + 1];
        if ((d >= 0 && d >= l && d < r) || (d < 0 && d > l && d <= r)) best = i;
    }
    if (best < 0) best = d >= 0 ? leaves - 1 : 0;
    double l = g[2 * best], r = g[2 * best + 1];
    *rel = r == l ? d - l : (d - l) / (r - l);
    return best;
}

double aqa_groups_value(const double *g, int64_t leaf, double v) {
    double l = g[2 * leaf], r = g[2 * leaf + 1];
    return r == l ? l + v : l + (r - l) * v;
}

aqa_tensor *aqa_groups_loss(aqa_tensor *logp, aqa_tensor *delta, const double *g, int64_t leaves, const double *diff,
                            int64_t B) {
    if (!logp || !delta) return NULL;
    if (logp->ndim != 2 || logp->shape[0] != 2 * B || logp->shape[1] != leaves || !aqa_same_shape(logp, delta))
        return aqa_fail_null("groups loss: logp and delta must be [%lld, %lld]", (long long)(2 * B), (long long)leaves);
    int64_t *lab = malloc(sizeof *lab * (size_t)(2 * B));
    int64_t *count = calloc((size_t)(2 * leaves), sizeof *count);
    double *w = calloc((size_t)(2 * B * leaves), sizeof *w), *r = calloc((size_t)(2 * B * leaves), sizeof *r);
    aqa_tensor *loss = NULL;
    if (!lab || !count || !w || !r) {
        aqa_fail(AQA_ENOMEM, "groups loss: out of memory");
        goto done;
    }
    for (int dir = 0; dir < 2; dir++)
        for (int64_t i = 0; i < B; i++) {
            double rel;
            int64_t k = aqa_groups_leaf(g, leaves, dir == 0 ? diff[i] : -diff[i], &rel);
            lab[dir * B + i] = k;
            r[(dir * B + i) * leaves + k] = rel;
            count[dir * leaves + k]++;
        }
    for (int dir = 0; dir < 2; dir++)
        for (int64_t i = 0; i < B; i++) {
            int64_t k = lab[dir * B + i];
            w[(dir * B + i) * leaves + k] = 1.0 / (double)count[dir * leaves + k];
        }
    aqa_scope_begin();
    aqa_dtype dt = logp->dtype;
    aqa_tensor *labels = aqa_stage_on_device(aqa_from_data(lab, 1, (int64_t[]){2 * B}, AQA_I64), logp);
    aqa_tensor *W = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(w, 2, (int64_t[]){2 * B, leaves}, AQA_F64), dt), logp);
    aqa_tensor *R = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(r, 2, (int64_t[]){2 * B, leaves}, AQA_F64), dt), logp);
    /* NLL averaged within each direction (two nll calls in the original code) */
    aqa_tensor *nll = aqa_add(
        aqa_nll_loss(aqa_narrow(logp, 0, 0, B), aqa_narrow(labels, 0, 0, B), NULL, -100, AQA_REDUCTION_MEAN),
        aqa_nll_loss(aqa_narrow(logp, 0, B, B), aqa_narrow(labels, 0, B, B), NULL, -100, AQA_REDUCTION_MEAN));
    loss = aqa_keep(aqa_add(nll, aqa_sum_all(aqa_mul(W, aqa_square(aqa_sub(delta, R))))));
    aqa_scope_end();
done:
    free(lab);
    free(count);
    free(w);
    free(r);
    return loss;
}

aqa_status aqa_groups_predict(aqa_tensor *logp, aqa_tensor *delta, const double *g, int64_t leaves, double *out) {
    if (!logp || !delta) return aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    int64_t B = logp->shape[0];
    double *dv = malloc(sizeof *dv * (size_t)(B * leaves + 1));
    int64_t *av = malloc(sizeof *av * (size_t)(B + 1));
    aqa_status st = dv && av ? AQA_OK : aqa_fail(AQA_ENOMEM, "groups: out of memory");
    aqa_scope_begin();
    aqa_tensor *arg = st ? NULL : aqa_argmax(logp, 1, false);
    if (!st && (!arg || aqa_copy_to_host(arg, av, AQA_I64) || aqa_copy_to_host(delta, dv, AQA_F64)))
        st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    aqa_scope_end();
    for (int64_t i = 0; !st && i < B; i++) out[i] = aqa_groups_value(g, av[i], dv[i * leaves + av[i]]);
    free(dv);
    free(av);
    return st;
}
