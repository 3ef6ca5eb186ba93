/* safetensors.c: validate-up-front reader and atomic writer of safetensors files (see the header
 * for the format and the rules enforced). */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

/* ---------------------------------------------------------------------------------------------
 * Dtypes */

static const struct {
    const char *name;
    size_t size;
} dtype_table[AQA_ST_DTYPE_COUNT] = {
    [AQA_ST_BOOL] = {"BOOL", 1},         [AQA_ST_U8] = {"U8", 1},
    [AQA_ST_I8] = {"I8", 1},             [AQA_ST_F8_E5M2] = {"F8_E5M2", 1},
    [AQA_ST_F8_E4M3] = {"F8_E4M3", 1},   [AQA_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 1},
    [AQA_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 1}, [AQA_ST_F8_E8M0] = {"F8_E8M0", 1},
    [AQA_ST_I16] = {"I16", 2},           [AQA_ST_U16] = {"U16", 2},
    [AQA_ST_F16] = {"F16", 2},           [AQA_ST_BF16] = {"BF16", 2},
    [AQA_ST_I32] = {"I32", 4},           [AQA_ST_U32] = {"U32", 4},
    [AQA_ST_F32] = {"F32", 4},           [AQA_ST_C64] = {"C64", 8},
    [AQA_ST_F64] = {"F64", 8},           [AQA_ST_I64] = {"I64", 8},
    [AQA_ST_U64] = {"U64", 8},
};

/* Names the format defines whose elements are smaller than a byte: known, but not supported. */
static const char *const subbyte_dtypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

const char *aqa_st_dtype_name(aqa_st_dtype dtype) {
    return (unsigned)dtype < AQA_ST_DTYPE_COUNT ? dtype_table[dtype].name : NULL;
}

size_t aqa_st_dtype_size(aqa_st_dtype dtype) {
    return (unsigned)dtype < AQA_ST_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

int aqa_st_dtype_from_name(const char *name, aqa_st_dtype *out) {
    for (int d = 0; d < AQA_ST_DTYPE_COUNT; d++)
        if (strcmp(name, dtype_table[d].name) == 0) {
            *out = (aqa_st_dtype)d;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Scalar conversions */

float aqa_st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        /* Zero or subnormal: mant * 2^-24 is exact in f32 (at most 10 significant bits). */
        float v = (float)mant * 0x1p-24f;
        memcpy(&bits, &v, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or NaN keeping its payload */
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13); /* rebias 15 -> 127 */
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float aqa_st_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16; /* bf16 is the top half of an f32 */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers */

/* Strict UTF-8 check (no overlongs, no surrogates, <= U+10FFFF), as the reference requires a
 * valid UTF-8 header. Returns the offset of the first bad byte, or n when all is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += len;
    }
    return n;
}

/* A JSON number that is a non-negative integer exactly representable (cJSON keeps numbers as
 * doubles, so values above 2^53 cannot be trusted and are refused). */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Reader */

struct aqa_st_file {
    char *path;                  /* as given to aqa_st_open, for messages */
    unsigned char *base;         /* whole file: mapping, or malloc'd copy when mmap failed */
    size_t size;                 /* file size in bytes */
    int mapped;                  /* base is an mmap (munmap) rather than malloc (free) */
    cJSON *root;                 /* parsed header; tensor names and metadata point into it */
    int count;                   /* number of tensors */
    aqa_st_tensor *tensors;      /* count entries, header order */
    int64_t *dims;               /* all shapes, back to back (tensors[i].shape points here) */
    int *by_name;                /* tensor indices sorted by name, for aqa_st_find */
    int meta_count;              /* number of __metadata__ entries */
    const char **meta_keys;      /* meta_count keys (into root) */
    const char **meta_values;    /* meta_count values (into root) */
};

const char *aqa_st_path(const aqa_st_file *f) { return f->path; }
int aqa_st_count(const aqa_st_file *f) { return f->count; }

void aqa_st_close(aqa_st_file *f) {
    if (!f) return;
    if (f->base) {
        if (f->mapped)
            munmap(f->base, f->size);
        else
            free(f->base);
    }
    cJSON_Delete(f->root);
    free(f->tensors);
    free(f->dims);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

/* Maps the whole file, or reads it into memory where mmap is not possible (e.g. some FUSE
 * or special files). */
static aqa_status load_bytes(aqa_st_file *f) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return aqa_fail(AQA_EIO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return aqa_fail(AQA_EIO, "%s: cannot stat: %s", f->path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return aqa_fail(AQA_EIO, "%s: not a regular file", f->path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        close(fd);
        return aqa_fail(AQA_EFORMAT,
                        "%s: truncated safetensors file: %zu bytes, shorter than the 8-byte "
                        "header length",
                        f->path, f->size);
    }
    /* AQA_ST_NO_MMAP=1 forces the read() path, so tests can exercise it. */
    const char *no_mmap = getenv("AQA_ST_NO_MMAP");
    void *p = no_mmap && *no_mmap == '1' ? MAP_FAILED
                                         : mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
        f->base = p;
        f->mapped = 1;
        close(fd);
        return AQA_OK;
    }
    f->base = malloc(f->size);
    if (!f->base) {
        close(fd);
        return aqa_fail(AQA_ENOMEM, "%s: cannot allocate %zu bytes to read it", f->path, f->size);
    }
    size_t got = 0;
    while (got < f->size) {
        ssize_t r = read(fd, f->base + got, f->size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            return aqa_fail(AQA_EIO, "%s: read failed after %zu of %zu bytes: %s", f->path, got,
                            f->size, e ? strerror(e) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    return AQA_OK;
}

/* Sort records: each carries its key and tensor index, so no shared state is needed and
 * several threads may open files at once. */
typedef struct {
    uint64_t begin, end; /* byte range */
    int index;           /* tensor index */
} range_rec;

static int cmp_range(const void *a, const void *b) {
    const range_rec *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

typedef struct {
    const char *name; /* tensor name */
    int index;        /* tensor index */
} name_rec;

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const name_rec *)a)->name, ((const name_rec *)b)->name);
}

/* Parses one tensor entry of the header into t (shape into dims). */
static aqa_status parse_entry(aqa_st_file *f, const cJSON *item, aqa_st_tensor *t, int64_t *dims,
                              uint64_t *begin, uint64_t *end) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': header entry is not a JSON object",
                        f->path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd))
        return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", f->path,
                        name);
    if (aqa_st_dtype_from_name(jd->valuestring, &t->dtype) != 0) {
        for (size_t k = 0; k < sizeof subbyte_dtypes / sizeof *subbyte_dtypes; k++)
            if (strcmp(jd->valuestring, subbyte_dtypes[k]) == 0)
                return aqa_fail(AQA_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported",
                                f->path, name, jd->valuestring);
        return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': unknown dtype \"%s\"", f->path, name,
                        jd->valuestring);
    }
    if (!cJSON_IsArray(js))
        return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': missing or non-array \"shape\"", f->path,
                        name);
    int ndim = cJSON_GetArraySize(js);
    uint64_t numel = 1;
    int k = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (!json_uint(d, &v) || v > (uint64_t)INT64_MAX)
            return aqa_fail(AQA_EFORMAT,
                            "%s: tensor '%s': shape[%d] is not a non-negative integer", f->path,
                            name, k);
        dims[k] = (int64_t)v;
        /* Overflow checked per factor; a zero size makes the product 0 whatever follows. */
        if (numel != 0 && v != 0 && numel > UINT64_MAX / v)
            return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': number of elements overflows",
                            f->path, name);
        numel *= v;
    }
    size_t isz = aqa_st_dtype_size(t->dtype);
    if (numel > (uint64_t)INT64_MAX / isz || numel * isz > (uint64_t)SIZE_MAX)
        return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': byte size overflows", f->path, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, begin) ||
        !json_uint(jo->child->next, end))
        return aqa_fail(AQA_EFORMAT,
                        "%s: tensor '%s': \"data_offsets\" must be two non-negative integers",
                        f->path, name);
    if (*end < *begin)
        return aqa_fail(AQA_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                        f->path, name, (unsigned long long)*begin, (unsigned long long)*end);
    if (*end - *begin != numel * isz)
        return aqa_fail(AQA_EFORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but dtype %s "
                        "and shape need %llu",
                        f->path, name, (unsigned long long)*begin, (unsigned long long)*end,
                        (unsigned long long)(*end - *begin), jd->valuestring,
                        (unsigned long long)(numel * isz));
    t->name = name;
    t->ndim = ndim;
    t->shape = ndim ? dims : NULL;
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(numel * isz);
    t->offset = *begin;
    return AQA_OK;
}

static aqa_status parse_metadata(aqa_st_file *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return aqa_fail(AQA_EFORMAT, "%s: \"__metadata__\" is not a JSON object", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return aqa_fail(AQA_ENOMEM, "%s: out of memory reading metadata", f->path);
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return aqa_fail(AQA_EFORMAT, "%s: metadata \"%s\": value is not a string", f->path,
                            m->string);
        /* Quadratic, but metadata are small; a repeated key would make lookups ambiguous. */
        for (int k = 0; k < f->meta_count; k++)
            if (strcmp(f->meta_keys[k], m->string) == 0)
                return aqa_fail(AQA_EFORMAT, "%s: metadata key \"%s\" appears twice", f->path,
                                m->string);
        f->meta_keys[f->meta_count] = m->string;
        f->meta_values[f->meta_count] = m->valuestring;
        f->meta_count++;
    }
    return AQA_OK;
}

/* Everything after the bytes are in memory: header checks, JSON, entries, layout. */
static aqa_status parse(aqa_st_file *f) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i]; /* explicit LE decode */
    if (n > AQA_ST_MAX_HEADER)
        return aqa_fail(AQA_EFORMAT, "%s: header length %llu exceeds the %llu-byte limit", f->path,
                        (unsigned long long)n, (unsigned long long)AQA_ST_MAX_HEADER);
    if (n > f->size - 8)
        return aqa_fail(AQA_EFORMAT,
                        "%s: truncated: header length %llu but only %zu bytes follow it", f->path,
                        (unsigned long long)n, f->size - 8);
    const unsigned char *hdr = f->base + 8;
    size_t bad = utf8_invalid_at(hdr, (size_t)n);
    if (bad != n)
        return aqa_fail(AQA_EFORMAT, "%s: header is not valid UTF-8 (byte %zu)", f->path, bad);
    const char *end = NULL;
    f->root = cJSON_ParseWithLengthOpts((const char *)hdr, (size_t)n, &end, 0);
    if (!f->root) {
        long at = end ? (long)(end - (const char *)hdr) : -1;
        return aqa_fail(AQA_EFORMAT, "%s: header is not valid JSON (near byte %ld of %llu)",
                        f->path, at, (unsigned long long)n);
    }
    /* Only whitespace (the writers' padding) may follow the JSON value. */
    for (const char *p = end; p < (const char *)hdr + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return aqa_fail(AQA_EFORMAT, "%s: header has trailing garbage after the JSON (byte %ld)",
                            f->path, (long)(p - (const char *)hdr));
    if (!cJSON_IsObject(f->root))
        return aqa_fail(AQA_EFORMAT, "%s: header is not a JSON object", f->path);

    /* Count tensors and dimensions. */
    int count = 0, total_dims = 0, have_meta = 0;
    for (const cJSON *it = f->root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (have_meta++)
                return aqa_fail(AQA_EFORMAT, "%s: \"__metadata__\" appears twice", f->path);
            aqa_status st = parse_metadata(f, it);
            if (st != AQA_OK) return st;
            continue;
        }
        count++;
        const cJSON *js = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "shape") : NULL;
        if (cJSON_IsArray(js)) total_dims += cJSON_GetArraySize(js);
    }
    f->count = count;
    f->tensors = calloc((size_t)count + 1, sizeof *f->tensors);
    f->dims = calloc((size_t)total_dims + 1, sizeof *f->dims);
    f->by_name = calloc((size_t)count + 1, sizeof *f->by_name);
    range_rec *ranges = calloc((size_t)count + 1, sizeof *ranges);
    name_rec *names = calloc((size_t)count + 1, sizeof *names);
    aqa_status st = AQA_OK;
    if (!f->tensors || !f->dims || !f->by_name || !ranges || !names) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of memory for %d tensors", f->path, count);
        goto done;
    }

    uint64_t buffer_size = f->size - 8 - n;
    int i = 0, d = 0;
    for (const cJSON *it = f->root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) continue;
        aqa_st_tensor *t = &f->tensors[i];
        st = parse_entry(f, it, t, f->dims + d, &ranges[i].begin, &ranges[i].end);
        if (st != AQA_OK) goto done;
        if (ranges[i].end > buffer_size) {
            st = aqa_fail(AQA_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] out of bounds of the "
                          "%llu-byte data buffer (file truncated?)",
                          f->path, t->name, (unsigned long long)ranges[i].begin,
                          (unsigned long long)ranges[i].end, (unsigned long long)buffer_size);
            goto done;
        }
        t->data = f->base + 8 + n + ranges[i].begin;
        ranges[i].index = i;
        names[i].name = t->name;
        names[i].index = i;
        d += t->ndim;
        i++;
    }

    /* Duplicated names (JSON allows them; the format does not). */
    qsort(names, (size_t)count, sizeof *names, cmp_name);
    for (i = 0; i < count; i++) {
        if (i > 0 && strcmp(names[i].name, names[i - 1].name) == 0) {
            st = aqa_fail(AQA_EFORMAT, "%s: tensor '%s' appears twice in the header", f->path,
                          names[i].name);
            goto done;
        }
        f->by_name[i] = names[i].index;
    }

    /* Layout: sorted by offset the ranges must tile [0, buffer_size) exactly. */
    qsort(ranges, (size_t)count, sizeof *ranges, cmp_range);
    uint64_t expect = 0;
    for (i = 0; i < count; i++) {
        const char *name = f->tensors[ranges[i].index].name;
        if (ranges[i].begin < expect) {
            st = aqa_fail(AQA_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                          f->path, name, (unsigned long long)ranges[i].begin,
                          (unsigned long long)ranges[i].end,
                          f->tensors[ranges[i - 1].index].name);
            goto done;
        }
        if (ranges[i].begin > expect) {
            st = aqa_fail(AQA_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap after byte %llu",
                          f->path, name, (unsigned long long)ranges[i].begin,
                          (unsigned long long)ranges[i].end, (unsigned long long)expect);
            goto done;
        }
        expect = ranges[i].end;
    }
    if (expect != buffer_size)
        st = aqa_fail(AQA_EFORMAT,
                      "%s: tensors cover %llu bytes but the data buffer has %llu (trailing bytes)",
                      f->path, (unsigned long long)expect, (unsigned long long)buffer_size);
done:
    free(ranges);
    free(names);
    return st;
}

aqa_status aqa_st_open(const char *path, aqa_st_file **out) {
    *out = NULL;
    if (!path) return aqa_fail(AQA_EINVAL, "aqa_st_open: NULL path");
    aqa_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    }
    aqa_status st = load_bytes(f);
    if (st == AQA_OK) st = parse(f);
    if (st != AQA_OK) {
        aqa_st_close(f);
        return st;
    }
    *out = f;
    return AQA_OK;
}

const char *aqa_st_name(const aqa_st_file *f, int i) {
    return i >= 0 && i < f->count ? f->tensors[i].name : NULL;
}

int aqa_st_find(const aqa_st_file *f, const char *name) {
    int lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[f->by_name[mid]].name);
        if (c == 0) return f->by_name[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

const aqa_st_tensor *aqa_st_get(const aqa_st_file *f, int i) {
    if (i < 0 || i >= f->count)
        return aqa_fail_null("%s: tensor index %d out of range [0, %d)", f->path, i, f->count);
    return &f->tensors[i];
}

const char *aqa_st_metadata(const aqa_st_file *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

int aqa_st_metadata_count(const aqa_st_file *f) { return f->meta_count; }

aqa_status aqa_st_metadata_at(const aqa_st_file *f, int i, const char **key, const char **value) {
    if (i < 0 || i >= f->meta_count)
        return aqa_fail(AQA_EINVAL, "%s: metadata index %d out of range [0, %d)", f->path, i,
                        f->meta_count);
    if (key) *key = f->meta_keys[i];
    if (value) *value = f->meta_values[i];
    return AQA_OK;
}

static aqa_status check_index(const aqa_st_file *f, int i, const void *dst, const char *fn) {
    if (i < 0 || i >= f->count)
        return aqa_fail(AQA_EINVAL, "%s: %s: tensor index %d out of range [0, %d)", f->path, fn,
                        i, f->count);
    if (!dst && f->tensors[i].numel > 0)
        return aqa_fail(AQA_EINVAL, "%s: %s: tensor '%s': NULL destination", f->path, fn,
                        f->tensors[i].name);
    return AQA_OK;
}

static aqa_status wrong_dtype(const aqa_st_file *f, int i, const char *fn) {
    return aqa_fail(AQA_EINVAL, "%s: %s: tensor '%s' has dtype %s, which it cannot convert",
                    f->path, fn, f->tensors[i].name, aqa_st_dtype_name(f->tensors[i].dtype));
}

/* Element loads go through memcpy because data need not be aligned (headers not padded). */
#define LOAD(type, p, k) ({ type v_; memcpy(&v_, (const unsigned char *)(p) + (size_t)(k) * sizeof(type), sizeof(type)); v_; })

/* Reads tensor i's floating elements into dst as float (f64 false) or double: a copy when the
 * stored type is the destination's, else an elementwise conversion (exact from F16/BF16/F32). */
static aqa_status read_floating(const aqa_st_file *f, int i, void *dst, bool f64, const char *fn) {
    aqa_status st = check_index(f, i, dst, fn);
    if (st != AQA_OK) return st;
    const aqa_st_tensor *t = &f->tensors[i];
    size_t n = (size_t)t->numel;
    float *d32 = dst;
    double *d64 = dst;
#define CONVERT(expr)                                           \
    do {                                                        \
        if (f64)                                                \
            for (size_t k = 0; k < n; k++) d64[k] = (expr);     \
        else                                                    \
            for (size_t k = 0; k < n; k++) d32[k] = (float)(expr); \
    } while (0)
    if (t->dtype == (f64 ? AQA_ST_F64 : AQA_ST_F32)) {
        if (n) memcpy(dst, t->data, n * (f64 ? 8 : 4));
        return AQA_OK;
    }
    switch (t->dtype) {
    case AQA_ST_F32: CONVERT(LOAD(float, t->data, k)); return AQA_OK;
    case AQA_ST_F64: CONVERT(LOAD(double, t->data, k)); return AQA_OK;
    case AQA_ST_F16: CONVERT(aqa_st_f16_to_f32(LOAD(uint16_t, t->data, k))); return AQA_OK;
    case AQA_ST_BF16: CONVERT(aqa_st_bf16_to_f32(LOAD(uint16_t, t->data, k))); return AQA_OK;
    default: return wrong_dtype(f, i, fn);
    }
#undef CONVERT
}

aqa_status aqa_st_read_f32(const aqa_st_file *f, int i, float *dst) {
    return read_floating(f, i, dst, false, "aqa_st_read_f32");
}

aqa_status aqa_st_read_f64(const aqa_st_file *f, int i, double *dst) {
    return read_floating(f, i, dst, true, "aqa_st_read_f64");
}

aqa_status aqa_st_read_i64(const aqa_st_file *f, int i, int64_t *dst) {
    aqa_status st = check_index(f, i, dst, "aqa_st_read_i64");
    if (st != AQA_OK) return st;
    const aqa_st_tensor *t = &f->tensors[i];
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case AQA_ST_I64:
        if (n) memcpy(dst, t->data, n * 8);
        return AQA_OK;
    case AQA_ST_I32:
        for (size_t k = 0; k < n; k++) dst[k] = LOAD(int32_t, t->data, k);
        return AQA_OK;
    case AQA_ST_I16:
        for (size_t k = 0; k < n; k++) dst[k] = LOAD(int16_t, t->data, k);
        return AQA_OK;
    case AQA_ST_I8:
        for (size_t k = 0; k < n; k++) dst[k] = LOAD(int8_t, t->data, k);
        return AQA_OK;
    case AQA_ST_U8:
    case AQA_ST_BOOL:
        for (size_t k = 0; k < n; k++) dst[k] = LOAD(uint8_t, t->data, k);
        return AQA_OK;
    case AQA_ST_U16:
        for (size_t k = 0; k < n; k++) dst[k] = LOAD(uint16_t, t->data, k);
        return AQA_OK;
    case AQA_ST_U32:
        for (size_t k = 0; k < n; k++) dst[k] = LOAD(uint32_t, t->data, k);
        return AQA_OK;
    case AQA_ST_U64:
        for (size_t k = 0; k < n; k++) {
            uint64_t v = LOAD(uint64_t, t->data, k);
            if (v > (uint64_t)INT64_MAX)
                return aqa_fail(AQA_EINVAL,
                                "%s: aqa_st_read_i64: tensor '%s': element %zu (%llu) exceeds "
                                "INT64_MAX",
                                f->path, t->name, k, (unsigned long long)v);
            dst[k] = (int64_t)v;
        }
        return AQA_OK;
    default:
        return wrong_dtype(f, i, "aqa_st_read_i64");
    }
}

aqa_status aqa_st_read_raw(const aqa_st_file *f, int i, void *dst, size_t dst_bytes) {
    aqa_status st = check_index(f, i, dst, "aqa_st_read_raw");
    if (st != AQA_OK) return st;
    const aqa_st_tensor *t = &f->tensors[i];
    if (dst_bytes != t->nbytes)
        return aqa_fail(AQA_EINVAL, "%s: aqa_st_read_raw: tensor '%s' has %zu bytes, not %zu",
                        f->path, t->name, t->nbytes, dst_bytes);
    if (t->nbytes) memcpy(dst, t->data, t->nbytes);
    return AQA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Writer */

typedef struct {
    char *name;         /* owned copy */
    aqa_st_dtype dtype; /* element type */
    int ndim;           /* number of dimensions */
    int64_t *shape;     /* owned copy of ndim sizes (NULL for a scalar) */
    const void *data;   /* caller's bytes, or `owned` */
    size_t nbytes;      /* numel * itemsize */
    void *owned;        /* writer's copy for aqa_st_writer_add_copy, else NULL */
    aqa_st_fill_fn fill; /* producer for aqa_st_writer_add_deferred, else NULL */
    void *fill_ctx;      /* its context */
} wentry;

struct aqa_st_writer {
    wentry *entries; /* tensors in the order added */
    int count, cap;  /* used / allocated entries */
    int *slots;      /* open-addressing hash of names: entry index + 1, 0 = empty */
    size_t nslots;   /* power of two, > 2 * count (so duplicate checks stay O(1)) */
    char **mkeys;    /* metadata keys, in the order first set */
    char **mvalues;  /* metadata values */
    int mcount, mcap;
};

/* FNV-1a: a simple, good-enough string hash for the duplicate-name table. */
static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Slot holding `name`, or the empty slot where it would go. */
static size_t slot_of(const aqa_st_writer *w, const char *name) {
    size_t mask = w->nslots - 1, k = (size_t)hash_name(name) & mask;
    while (w->slots[k] && strcmp(w->entries[w->slots[k] - 1].name, name) != 0) k = (k + 1) & mask;
    return k;
}

/* Makes room for one more name in the hash table; 0 on allocation failure. */
static int grow_slots(aqa_st_writer *w) {
    if (w->nslots > 2 * (size_t)(w->count + 1)) return 1;
    size_t n = w->nslots ? 2 * w->nslots : 64;
    int *old = w->slots;
    size_t old_n = w->nslots;
    w->slots = calloc(n, sizeof *w->slots);
    if (!w->slots) {
        w->slots = old;
        return 0;
    }
    w->nslots = n;
    for (size_t k = 0; k < old_n; k++)
        if (old[k]) w->slots[slot_of(w, w->entries[old[k] - 1].name)] = old[k];
    free(old);
    return 1;
}

aqa_st_writer *aqa_st_writer_new(void) {
    aqa_st_writer *w = calloc(1, sizeof *w);
    if (!w) return aqa_fail_null("aqa_st_writer_new: out of memory");
    return w;
}

void aqa_st_writer_free(aqa_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) {
        free(w->entries[i].name);
        free(w->entries[i].shape);
        free(w->entries[i].owned);
    }
    for (int i = 0; i < w->mcount; i++) {
        free(w->mkeys[i]);
        free(w->mvalues[i]);
    }
    free(w->entries);
    free(w->slots);
    free(w->mkeys);
    free(w->mvalues);
    free(w);
}

static aqa_status writer_add(aqa_st_writer *w, const char *name, aqa_st_dtype dtype, int ndim,
                             const int64_t *shape, const void *data, int copy,
                             aqa_st_fill_fn fill, void *fill_ctx) {
    if (!w) return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: NULL writer");
    if (!name || !*name) return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: empty tensor name");
    if (strcmp(name, "__metadata__") == 0)
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: \"__metadata__\" is reserved");
    if (utf8_invalid_at((const unsigned char *)name, strlen(name)) != strlen(name))
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor name is not valid UTF-8");
    size_t isz = aqa_st_dtype_size(dtype);
    if (!isz) return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s': bad dtype %d", name, (int)dtype);
    if (ndim < 0 || (ndim > 0 && !shape))
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s': bad ndim %d / shape", name, ndim);
    uint64_t numel = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0)
            return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s': shape[%d] = %lld < 0",
                            name, k, (long long)shape[k]);
        uint64_t v = (uint64_t)shape[k];
        if (numel != 0 && v != 0 && numel > UINT64_MAX / v)
            return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s': size overflows", name);
        numel *= v;
    }
    if (numel > (uint64_t)INT64_MAX / isz || numel * isz > SIZE_MAX)
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s': byte size overflows", name);
    size_t nbytes = (size_t)(numel * isz);
    if (nbytes && !data && !fill)
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s': NULL data", name);
    if (!grow_slots(w))
        return aqa_fail(AQA_ENOMEM, "aqa_st_writer_add: tensor '%s': out of memory", name);
    size_t slot = slot_of(w, name);
    if (w->slots[slot])
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add: tensor '%s' added twice", name);
    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        wentry *e = realloc(w->entries, (size_t)cap * sizeof *e);
        if (!e) return aqa_fail(AQA_ENOMEM, "aqa_st_writer_add: tensor '%s': out of memory", name);
        w->entries = e;
        w->cap = cap;
    }
    wentry e = {0};
    e.name = strdup(name);
    e.dtype = dtype;
    e.ndim = ndim;
    e.nbytes = nbytes;
    e.shape = ndim ? malloc((size_t)ndim * sizeof *e.shape) : NULL;
    e.data = data;
    e.fill = fill;
    e.fill_ctx = fill_ctx;
    if (copy && nbytes) {
        e.owned = malloc(nbytes);
        if (e.owned) memcpy(e.owned, data, nbytes);
        e.data = e.owned;
    }
    if (!e.name || (ndim && !e.shape) || (copy && nbytes && !e.owned)) {
        free(e.name);
        free(e.shape);
        free(e.owned);
        return aqa_fail(AQA_ENOMEM, "aqa_st_writer_add: tensor '%s': out of memory", name);
    }
    if (ndim) memcpy(e.shape, shape, (size_t)ndim * sizeof *e.shape);
    w->entries[w->count++] = e;
    w->slots[slot] = w->count;
    return AQA_OK;
}

aqa_status aqa_st_writer_add(aqa_st_writer *w, const char *name, aqa_st_dtype dtype, int ndim,
                             const int64_t *shape, const void *data) {
    return writer_add(w, name, dtype, ndim, shape, data, 0, NULL, NULL);
}

aqa_status aqa_st_writer_add_copy(aqa_st_writer *w, const char *name, aqa_st_dtype dtype,
                                  int ndim, const int64_t *shape, const void *data) {
    return writer_add(w, name, dtype, ndim, shape, data, 1, NULL, NULL);
}

aqa_status aqa_st_writer_add_deferred(aqa_st_writer *w, const char *name, aqa_st_dtype dtype,
                                      int ndim, const int64_t *shape, aqa_st_fill_fn fill,
                                      void *ctx) {
    if (!fill)
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_add_deferred: tensor '%s': NULL fill function",
                        name ? name : "(null)");
    return writer_add(w, name, dtype, ndim, shape, NULL, 0, fill, ctx);
}

aqa_status aqa_st_writer_set_metadata(aqa_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value)
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_set_metadata: NULL argument");
    if (utf8_invalid_at((const unsigned char *)key, strlen(key)) != strlen(key) ||
        utf8_invalid_at((const unsigned char *)value, strlen(value)) != strlen(value))
        return aqa_fail(AQA_EINVAL, "aqa_st_writer_set_metadata: key or value of \"%s\" is not "
                        "valid UTF-8", key);
    char *v = strdup(value);
    if (!v) return aqa_fail(AQA_ENOMEM, "aqa_st_writer_set_metadata: out of memory");
    for (int i = 0; i < w->mcount; i++)
        if (strcmp(w->mkeys[i], key) == 0) {
            free(w->mvalues[i]);
            w->mvalues[i] = v;
            return AQA_OK;
        }
    if (w->mcount == w->mcap) {
        int cap = w->mcap ? 2 * w->mcap : 8;
        char **k2 = realloc(w->mkeys, (size_t)cap * sizeof *k2);
        if (k2) w->mkeys = k2;
        char **v2 = k2 ? realloc(w->mvalues, (size_t)cap * sizeof *v2) : NULL;
        if (v2) w->mvalues = v2;
        if (!k2 || !v2) {
            free(v);
            return aqa_fail(AQA_ENOMEM, "aqa_st_writer_set_metadata: out of memory");
        }
        w->mcap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return aqa_fail(AQA_ENOMEM, "aqa_st_writer_set_metadata: out of memory");
    }
    w->mkeys[w->mcount] = k;
    w->mvalues[w->mcount] = v;
    w->mcount++;
    return AQA_OK;
}

/* Growable byte string for building the header. */
typedef struct {
    char *p;       /* bytes (not NUL-terminated until sb_finish) */
    size_t n, cap; /* used / allocated */
    int oom;       /* an allocation failed: the content is incomplete */
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal, escaped as serde_json does (", \, and control characters; UTF-8
 * passes through), so aqa and the official writer produce identical headers. */
static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

/* Official writer's order: decreasing dtype (alignment), then name byte-wise. */
static int cmp_wentry(const void *a, const void *b) {
    const wentry *x = *(const wentry *const *)a, *y = *(const wentry *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

aqa_status aqa_st_writer_save(const aqa_st_writer *w, const char *path) {
    if (!w || !path) return aqa_fail(AQA_EINVAL, "aqa_st_writer_save: NULL argument");
    const wentry **order = malloc(((size_t)w->count + 1) * sizeof *order);
    if (!order) return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < w->count; i++) order[i] = &w->entries[i];
    qsort(order, (size_t)w->count, sizeof *order, cmp_wentry);

    sbuf b = {0};
    sb_put(&b, "{", 1);
    int first = 1;
    if (w->mcount) {
        sb_str(&b, "\"__metadata__\":{");
        for (int i = 0; i < w->mcount; i++) {
            if (i) sb_put(&b, ",", 1);
            sb_json_string(&b, w->mkeys[i]);
            sb_put(&b, ":", 1);
            sb_json_string(&b, w->mvalues[i]);
        }
        sb_put(&b, "}", 1);
        first = 0;
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->count; i++) {
        const wentry *e = order[i];
        if (!first) sb_put(&b, ",", 1);
        first = 0;
        sb_json_string(&b, e->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, aqa_st_dtype_name(e->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int k = 0; k < e->ndim; k++) {
            if (k) sb_put(&b, ",", 1);
            sb_u64(&b, (uint64_t)e->shape[k]);
        }
        sb_str(&b, "],\"data_offsets\":[");
        sb_u64(&b, offset);
        sb_put(&b, ",", 1);
        offset += e->nbytes;
        sb_u64(&b, offset);
        sb_str(&b, "]}");
    }
    sb_put(&b, "}", 1);
    /* Pad with spaces so that 8 + N is a multiple of 8: the data then start 8-aligned and each
     * tensor (sorted by decreasing itemsize) is aligned to its itemsize. */
    while (!b.oom && b.n % 8) sb_put(&b, " ", 1);
    aqa_status st = AQA_OK;
    if (b.oom) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of memory building the header", path);
        goto out;
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)b.n >> (8 * k));

    aqa_atomic_file *af;
    st = aqa_atomic_open(path, &af);
    if (st != AQA_OK) goto out;
    st = aqa_atomic_write(af, len8, 8);
    if (st == AQA_OK) st = aqa_atomic_write(af, b.p, b.n);
    for (int i = 0; i < w->count && st == AQA_OK; i++) {
        const wentry *e = order[i];
        if (!e->fill) {
            st = aqa_atomic_write(af, e->data, e->nbytes);
            continue;
        }
        void *tmp = malloc(e->nbytes ? e->nbytes : 1);
        if (!tmp) {
            st = aqa_fail(AQA_ENOMEM, "%s: tensor '%s': cannot allocate %zu bytes", path, e->name,
                          e->nbytes);
            break;
        }
        st = e->fill(e->fill_ctx, tmp, e->nbytes);
        if (st == AQA_OK)
            st = aqa_atomic_write(af, tmp, e->nbytes);
        else if (!strstr(aqa_last_error(), path)) {
            /* Keep the producer's message and add where it happened (copied first: the
             * message buffer is also the destination). */
            char why[512];
            snprintf(why, sizeof why, "%s", aqa_last_error());
            aqa_fail(st, "%s: tensor '%s': %s", path, e->name, why);
        }
        free(tmp);
    }
    if (st != AQA_OK)
        aqa_atomic_abort(af);
    else
        st = aqa_atomic_commit(af);
out:
    free(b.p);
    free(order);
    return st;
}
