/* cpu_softmax_row.h: the float32 row kernels of softmax / log_softmax (forward and backward) and
 * of the block sums, written once with GCC vector extensions and included by cpu_reduce.c once per
 * vector width: 4 lanes for the baseline x86-64 target (SSE2) and 8 lanes compiled for AVX2+FMA,
 * chosen at run time.  Vector extensions keep the code vectorised at -O2 without -ffast-math
 * (the auto-vectoriser refuses the compare-and-select of a clamped exp under -ftrapping-math).
 *
 * The includer defines: SR_W (lanes), SR_SUFFIX (name suffix) and SR_TARGET (a function
 * attribute, possibly empty).  Not a normal header: no include guard on purpose. */

#define SR_CAT_(a, b) a##b
#define SR_CAT(a, b) SR_CAT_(a, b)
#define SR_FN(name) SR_CAT(name, SR_SUFFIX)
#define SR_VF SR_CAT(sr_vf_, SR_SUFFIX)
#define SR_VI SR_CAT(sr_vi_, SR_SUFFIX)

typedef float SR_VF __attribute__((vector_size(SR_W * 4)));
typedef int32_t SR_VI __attribute__((vector_size(SR_W * 4)));

/* mask ? a : b, lane by lane (mask lanes all ones or all zeros) */
#define SR_SEL(mask, a, b) ((SR_VF)(((mask) & (SR_VI)(a)) | (~(mask) & (SR_VI)(b))))

SR_TARGET static inline SR_VF SR_FN(sr_load)(const float *p) {
    SR_VF v;
    memcpy(&v, p, sizeof v);
    return v;
}

SR_TARGET static inline float SR_FN(sr_hsum)(SR_VF v) {
    float s = 0.0f;
    for (int l = 0; l < SR_W; l++) s += v[l];
    return s;
}

/* e^x: Cody-Waite reduction to r in [-ln2/2, ln2/2], the classic Cephes expf polynomial (about
 * 1 ulp) and the exponent added through the bits.  Gives 0 below -87.33 (where the result would
 * be subnormal: such softmax terms do not matter), +inf above 88.37, NaN for NaN. */
SR_TARGET static inline SR_VF SR_FN(sr_exp)(SR_VF x) {
    const SR_VF zero = {0};
    const float lo = -87.3365447505531f, hi = 88.3762626647949f;
    SR_VI too_low = x < lo, too_high = x > hi;
    SR_VF xc = SR_SEL(too_low, zero + lo, x);
    xc = SR_SEL(too_high, zero + hi, xc);
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    SR_VF t = xc * 1.44269504088896341f + shifter;
    SR_VF n = t - shifter;
    SR_VI ni = (SR_VI)t - 0x4B400000; /* the integer n, read from the bits of t */
    SR_VF r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    SR_VF r2 = r * r;
    SR_VF q = r * 1.9875691500E-4f + 1.3981999507E-3f;
    q = q * r + 8.3334519073E-3f;
    q = q * r + 4.1665795894E-2f;
    q = q * r + 1.6666665459E-1f;
    q = q * r + 5.0000001201E-1f;
    SR_VF e = q * r2 + r + 1.0f;
    SR_VF y = e * (SR_VF)((ni + 127) << 23);
    y = SR_SEL(too_low, zero, y);
    return SR_SEL(too_high, zero + INFINITY, y);
}

/* y[i] = exp(x[i] - shift) for a contiguous row; returns the sum (x and y may be the same). */
SR_TARGET static float SR_FN(sr_exp_row)(float *y, const float *x, int64_t n, float shift) {
    SR_VF acc0 = {0}, acc1 = {0};
    int64_t i = 0;
    for (; i + 2 * SR_W <= n; i += 2 * SR_W) { /* two independent chains for latency */
        SR_VF e0 = SR_FN(sr_exp)(SR_FN(sr_load)(x + i) - shift);
        SR_VF e1 = SR_FN(sr_exp)(SR_FN(sr_load)(x + i + SR_W) - shift);
        memcpy(y + i, &e0, sizeof e0);
        memcpy(y + i + SR_W, &e1, sizeof e1);
        acc0 += e0;
        acc1 += e1;
    }
    for (; i < n; i += SR_W) { /* tail through a padded vector: same formula, same results */
        float buf[SR_W];
        int64_t rest = n - i < SR_W ? n - i : SR_W;
        for (int l = 0; l < SR_W; l++) buf[l] = l < rest ? x[i + l] - shift : -INFINITY;
        SR_VF e = SR_FN(sr_exp)(SR_FN(sr_load)(buf));
        memcpy(buf, &e, sizeof e);
        for (int64_t l = 0; l < rest; l++) y[i + l] = buf[l];
        acc0 += e; /* padded lanes are exp(-inf) = 0 */
    }
    return SR_FN(sr_hsum)(acc0 + acc1);
}

/* Largest element of a contiguous row, NaN if any element is NaN, -inf for an empty row. */
SR_TARGET static float SR_FN(sr_max_row)(const float *x, int64_t n) {
    SR_VF m = {0};
    m = m - INFINITY;
    SR_VI nan_seen = {0};
    int64_t i = 0;
    for (; i + SR_W <= n; i += SR_W) {
        SR_VF v = SR_FN(sr_load)(x + i);
        m = SR_SEL(v > m, v, m);
        nan_seen |= v != v;
    }
    float best = -INFINITY;
    bool any_nan = false;
    for (int l = 0; l < SR_W; l++) {
        best = m[l] > best ? m[l] : best;
        any_nan |= nan_seen[l] != 0;
    }
    for (; i < n; i++) {
        best = x[i] > best ? x[i] : best;
        any_nan |= x[i] != x[i];
    }
    return any_nan ? NAN : best;
}

/* Smallest element of a contiguous row (NaN if any is NaN); n >= 1. */
SR_TARGET static float SR_FN(sr_min_row)(const float *x, int64_t n) {
    SR_VF m = {0};
    m = m + INFINITY;
    SR_VI nan_seen = {0};
    int64_t i = 0;
    for (; i + SR_W <= n; i += SR_W) {
        SR_VF v = SR_FN(sr_load)(x + i);
        m = SR_SEL(v < m, v, m);
        nan_seen |= v != v;
    }
    float best = INFINITY;
    bool any_nan = false;
    for (int l = 0; l < SR_W; l++) {
        best = m[l] < best ? m[l] : best;
        any_nan |= nan_seen[l] != 0;
    }
    for (; i < n; i++) {
        best = x[i] < best ? x[i] : best;
        any_nan |= x[i] != x[i];
    }
    return any_nan ? NAN : best;
}

/* acc[j] += x[j], j < n (column sums). */
SR_TARGET static void SR_FN(sr_add_row)(float *acc, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + SR_W <= n; j += SR_W) {
        SR_VF v = SR_FN(sr_load)(acc + j) + SR_FN(sr_load)(x + j);
        memcpy(acc + j, &v, sizeof v);
    }
    for (; j < n; j++) acc[j] += x[j];
}

/* Softmax along the middle dim of a contiguous [d, inner] block (x and y), vectorised across
 * the inner dim: a column at a time would stride through memory.  m and s are scratch of
 * `inner` floats. */
SR_TARGET static void SR_FN(sr_softmax_cols)(float *y, const float *x, int64_t d, int64_t inner,
                                            bool logmode, float *m, float *s) {
    for (int64_t j = 0; j < inner; j++) {
        m[j] = -INFINITY;
        s[j] = 0.0f;
    }
    /* max (NaN-propagating: a NaN makes the column NaN through x - m below) */
    for (int64_t i = 0; i < d; i++) {
        const float *xr = x + i * inner;
        for (int64_t j = 0; j < inner; j++) m[j] = xr[j] > m[j] || xr[j] != xr[j] ? xr[j] : m[j];
    }
    /* exp and sums; y holds exp(x - m) */
    for (int64_t i = 0; i < d; i++) {
        const float *xr = x + i * inner;
        float *yr = y + i * inner;
        int64_t j = 0;
        for (; j + SR_W <= inner; j += SR_W) {
            SR_VF e = SR_FN(sr_exp)(SR_FN(sr_load)(xr + j) - SR_FN(sr_load)(m + j));
            memcpy(yr + j, &e, sizeof e);
            SR_VF acc = SR_FN(sr_load)(s + j) + e;
            memcpy(s + j, &acc, sizeof acc);
        }
        if (j < inner) {
            float buf[SR_W];
            int64_t rest = inner - j;
            for (int l = 0; l < SR_W; l++) buf[l] = l < rest ? xr[j + l] - m[j + l] : -INFINITY;
            SR_VF e = SR_FN(sr_exp)(SR_FN(sr_load)(buf));
            memcpy(buf, &e, sizeof e);
            for (int64_t l = 0; l < rest; l++) {
                yr[j + l] = buf[l];
                s[j + l] += buf[l];
            }
        }
    }
    if (logmode) {
        for (int64_t j = 0; j < inner; j++) s[j] = logf(s[j]);
        for (int64_t i = 0; i < d; i++) {
            const float *xr = x + i * inner;
            float *yr = y + i * inner;
            for (int64_t j = 0; j < inner; j++) yr[j] = (xr[j] - m[j]) - s[j];
        }
    } else {
        for (int64_t j = 0; j < inner; j++) s[j] = 1.0f / s[j];
        for (int64_t i = 0; i < d; i++) {
            float *yr = y + i * inner;
            int64_t j = 0;
            for (; j + SR_W <= inner; j += SR_W) {
                SR_VF v = SR_FN(sr_load)(yr + j) * SR_FN(sr_load)(s + j);
                memcpy(yr + j, &v, sizeof v);
            }
            for (; j < inner; j++) yr[j] *= s[j];
        }
    }
}

/* Sum of a contiguous row: float lanes over blocks of SR_BLOCK elements (a lane adds at most
 * SR_BLOCK / (2 W) values), block totals accumulated in double.  Error stays near that of a
 * double sum; 2^24 + 1 ones and more are summed exactly. */
#define SR_BLOCK 1024
SR_TARGET static double SR_FN(sr_sum_row)(const float *x, int64_t n) {
    double total = 0.0;
    int64_t i = 0;
    while (i < n) {
        int64_t end = n - i > SR_BLOCK ? i + SR_BLOCK : n;
        SR_VF a0 = {0}, a1 = {0};
        for (; i + 2 * SR_W <= end; i += 2 * SR_W) {
            a0 += SR_FN(sr_load)(x + i);
            a1 += SR_FN(sr_load)(x + i + SR_W);
        }
        double part = 0.0;
        for (; i < end; i++) part += x[i];
        SR_VF a = a0 + a1;
        for (int l = 0; l < SR_W; l++) part += a[l];
        total += part;
    }
    return total;
}

/* One float32 row: y = softmax(x) or log_softmax(x); x and y contiguous, distinct. */
SR_TARGET static void SR_FN(sr_softmax_row)(float *y, const float *x, int64_t n, bool logmode) {
    /* A row of -inf gives max -inf and (-inf) - (-inf) = NaN everywhere, as torch. */
    float m = SR_FN(sr_max_row)(x, n);
    float s = SR_FN(sr_exp_row)(y, x, n, m);
    if (logmode) {
        /* (x - m) - log s, as torch: exact for the largest element whatever m's magnitude. */
        float l = logf(s);
        int64_t i = 0;
        for (; i + SR_W <= n; i += SR_W) {
            SR_VF v = (SR_FN(sr_load)(x + i) - m) - l;
            memcpy(y + i, &v, sizeof v);
        }
        for (; i < n; i++) y[i] = (x[i] - m) - l;
    } else {
        float inv = 1.0f / s;
        int64_t i = 0;
        for (; i + SR_W <= n; i += SR_W) {
            SR_VF v = SR_FN(sr_load)(y + i) * inv;
            memcpy(y + i, &v, sizeof v);
        }
        for (; i < n; i++) y[i] *= inv;
    }
}

/* Backward of one row: gx = y * (g - <g, y>) (softmax) or g - exp(y) * sum(g) (log_softmax). */
SR_TARGET static void SR_FN(sr_softmax_back_row)(float *gx, const float *g, const float *y, int64_t n,
                                                bool logmode) {
    SR_VF acc = {0};
    int64_t i = 0;
    if (logmode) {
        for (; i + SR_W <= n; i += SR_W) acc += SR_FN(sr_load)(g + i);
        float s = SR_FN(sr_hsum)(acc);
        for (; i < n; i++) s += g[i];
        SR_FN(sr_exp_row)(gx, y, n, 0.0f);
        for (i = 0; i + SR_W <= n; i += SR_W) {
            SR_VF v = SR_FN(sr_load)(g + i) - SR_FN(sr_load)(gx + i) * s;
            memcpy(gx + i, &v, sizeof v);
        }
        for (; i < n; i++) gx[i] = g[i] - gx[i] * s;
    } else {
        for (; i + SR_W <= n; i += SR_W) acc += SR_FN(sr_load)(g + i) * SR_FN(sr_load)(y + i);
        float s = SR_FN(sr_hsum)(acc);
        for (; i < n; i++) s += g[i] * y[i];
        for (i = 0; i + SR_W <= n; i += SR_W) {
            SR_VF v = SR_FN(sr_load)(y + i) * (SR_FN(sr_load)(g + i) - s);
            memcpy(gx + i, &v, sizeof v);
        }
        for (; i < n; i++) gx[i] = y[i] * (g[i] - s);
    }
}

#undef SR_BLOCK
#undef SR_SEL
#undef SR_VF
#undef SR_VI
#undef SR_FN
#undef SR_CAT
#undef SR_CAT_
