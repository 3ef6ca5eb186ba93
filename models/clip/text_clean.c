/* text_clean.c: CLIP's text cleaning (ftfy subset, html.unescape, whitespace, lower) and word
 * splitting, on arrays of code points.  See text_clean.h for the steps and tokenizer.h for what
 * of ftfy is not reproduced.  Character data comes from the generated unicode_tables_generated.c. */
#include "models/clip/text_clean.h"

#include <stdlib.h>
#include <string.h>

#include "models/clip/unicode_tables.h"

/* ---- growable code-point arrays ---- */

void aqa_u32vec_push(aqa_u32vec *s, uint32_t c) {
    if (s->oom) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->oom = 1;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = c;
}

void aqa_u32vec_free(aqa_u32vec *s) {
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Moves `src` into `dst` (freeing dst's old content) and reports an earlier allocation failure. */
static aqa_status vec_take(aqa_u32vec *dst, aqa_u32vec *src) {
    int oom = src->oom || dst->oom;
    free(dst->v);
    *dst = *src;
    memset(src, 0, sizeof *src);
    if (oom) return aqa_fail(AQA_ENOMEM, "CLIP text cleaning: out of memory");
    return AQA_OK;
}

static void push_n(aqa_u32vec *s, const uint32_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) aqa_u32vec_push(s, v[i]);
}

static void push_utf8(aqa_u32vec *s, const char *utf8) {
    aqa_clip_utf8_decode(utf8, strlen(utf8), s);
}

/* ---- UTF-8 ---- */

void aqa_clip_utf8_decode(const char *text, size_t len, aqa_u32vec *out) {
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            aqa_u32vec_push(out, c);
            i++;
            continue;
        }
        /* well-formed sequences (Unicode Table 3-7); an ill-formed one is replaced by one U+FFFD
         * per maximal subpart, as Python's errors="replace" does */
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07;
        else need = 0, cp = 0;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        else if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        int k = 1;
        for (; k <= need; k++) {
            if (i + k >= len) break;
            unsigned b = p[i + k];
            if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
            cp = (cp << 6) | (b & 0x3F);
        }
        if (need == 0 || k <= need) {
            aqa_u32vec_push(out, 0xFFFD);
            i += (size_t)k; /* the lead byte and the continuation bytes that were valid */
            continue;
        }
        aqa_u32vec_push(out, cp);
        i += (size_t)need + 1;
    }
}

int aqa_clip_utf8_put(uint32_t c, unsigned char *b) {
    if (c < 0x80) {
        b[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        b[0] = (unsigned char)(0xC0 | (c >> 6));
        b[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (c >> 12));
        b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (c >> 18));
    b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---- table look-ups ---- */

uint32_t aqa_clip_uc_flags(uint32_t c) {
    size_t lo = 0, hi = aqa_uc_props_count;
    if (c > 0x10FFFF) return AQA_UC_O;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (aqa_uc_props[mid].hi < c) lo = mid + 1;
        else if (aqa_uc_props[mid].lo > c) hi = mid;
        else return aqa_uc_props[mid].flags;
    }
    return 0;
}

static const aqa_uc_map *find_map(const aqa_uc_map *t, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t[mid].cp < c) lo = mid + 1;
        else if (t[mid].cp > c) hi = mid;
        else return &t[mid];
    }
    return NULL;
}

static int ccc_of(uint32_t c) {
    size_t lo = 0, hi = aqa_uc_cccs_count;
    if (c < 0x300) return 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (aqa_uc_cccs[mid].hi < c) lo = mid + 1;
        else if (aqa_uc_cccs[mid].lo > c) hi = mid;
        else return aqa_uc_cccs[mid].ccc;
    }
    return 0;
}

/* The primary composite of a + b, or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    /* Hangul syllables compose algorithmically (Unicode ch. 3.12) */
    if (a >= 0x1100 && a < 0x1100 + 19 && b >= 0x1161 && b < 0x1161 + 21)
        return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28;
    if (a >= 0xAC00 && a < 0xAC00 + 11172 && (a - 0xAC00) % 28 == 0 && b > 0x11A7 && b < 0x11A7 + 28)
        return a + (b - 0x11A7);
    size_t lo = 0, hi = aqa_uc_comps_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const aqa_uc_comp *e = &aqa_uc_comps[mid];
        if (e->a < a || (e->a == a && e->b < b)) lo = mid + 1;
        else if (e->a == a && e->b == b) return e->c;
        else hi = mid;
    }
    return 0;
}

/* ---- NFC ---- */

aqa_status aqa_clip_nfc(aqa_u32vec *s) {
    size_t i;
    for (i = 0; i < s->n && s->v[i] < 0x300; i++) {
    }
    if (i == s->n) return AQA_OK; /* nothing below U+0300 decomposes differently or combines */

    /* canonical decomposition */
    aqa_u32vec d = {0};
    for (i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (c >= 0xAC00 && c < 0xAC00 + 11172) {
            uint32_t k = c - 0xAC00;
            aqa_u32vec_push(&d, 0x1100 + k / (21 * 28));
            aqa_u32vec_push(&d, 0x1161 + (k % (21 * 28)) / 28);
            if (k % 28) aqa_u32vec_push(&d, 0x11A7 + k % 28);
            continue;
        }
        const aqa_uc_map *m = c >= 0xC0 ? find_map(aqa_uc_decomp, aqa_uc_decomp_count, c) : NULL;
        if (m) push_n(&d, m->to, m->n);
        else aqa_u32vec_push(&d, c);
    }
    if (d.oom) return vec_take(s, &d);

    /* canonical ordering: stable sort of each run of non-starters by combining class */
    for (i = 1; i < d.n; i++) {
        int cc = ccc_of(d.v[i]);
        if (!cc) continue;
        size_t j = i;
        uint32_t c = d.v[i];
        while (j > 0) {
            int pc = ccc_of(d.v[j - 1]);
            if (pc <= cc) break;
            d.v[j] = d.v[j - 1];
            j--;
        }
        d.v[j] = c;
    }

    /* canonical composition */
    aqa_u32vec out = {0};
    long starter = -1; /* index in out of the last starter */
    int last_cc = 0;   /* combining class of the last character appended */
    for (i = 0; i < d.n; i++) {
        uint32_t c = d.v[i];
        int cc = ccc_of(c);
        if (starter >= 0 && !out.oom) {
            int adjacent = (size_t)starter == out.n - 1;
            if (adjacent || (last_cc != 0 && last_cc < cc)) {
                uint32_t comp = compose_pair(out.v[starter], c);
                if (comp) {
                    out.v[starter] = comp;
                    continue;
                }
            }
        }
        aqa_u32vec_push(&out, c);
        if (cc == 0) starter = (long)out.n - 1;
        last_cc = cc;
    }
    aqa_u32vec_free(&d);
    return vec_take(s, &out);
}

/* ---- HTML entities ---- */

/* The entity called name[0..len) (ASCII), or NULL. */
static const aqa_html_entity *find_entity(const char *name, size_t len) {
    size_t lo = 0, hi = aqa_html_entities_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *e = aqa_html_entities[mid].name;
        int r = strncmp(e, name, len);
        if (r == 0 && e[len] != '\0') r = 1;
        if (r < 0) lo = mid + 1;
        else if (r > 0) hi = mid;
        else return &aqa_html_entities[mid];
    }
    return NULL;
}

static int is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex_digit(uint32_t c) {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int is_alnum_ascii(uint32_t c) {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Python html.unescape's replacement of a numeric reference with value num (saturated). */
static void numeric_ref(aqa_u32vec *out, uint64_t num) {
    for (size_t k = 0; k < aqa_html_invalid_charrefs_count; k++)
        if (aqa_html_invalid_charrefs[k].from == num) {
            aqa_u32vec_push(out, aqa_html_invalid_charrefs[k].to);
            return;
        }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        aqa_u32vec_push(out, 0xFFFD);
        return;
    }
    for (size_t k = 0; k < aqa_html_invalid_codepoints_count; k++)
        if (aqa_html_invalid_codepoints[k] == num) return; /* dropped */
    aqa_u32vec_push(out, (uint32_t)num);
}

/* Tries Python's _charref pattern at s[i] == '&'; on a match appends the replacement and returns
 * the length matched, else returns 0. */
static size_t unescape_at(const uint32_t *s, size_t n, size_t i, aqa_u32vec *out) {
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        uint64_t num = 0;
        size_t k;
        if (j + 2 < n && (s[j + 1] == 'x' || s[j + 1] == 'X') && is_hex_digit(s[j + 2])) {
            for (k = j + 2; k < n && is_hex_digit(s[k]); k++) {
                uint32_t c = s[k];
                uint32_t v = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
                num = num > 0x10FFFFu ? num : num * 16 + v;
            }
        } else if (j + 1 < n && is_ascii_digit(s[j + 1])) {
            for (k = j + 1; k < n && is_ascii_digit(s[k]); k++)
                num = num > 0x10FFFFu ? num : num * 10 + (s[k] - '0');
        } else {
            return 0;
        }
        if (k < n && s[k] == ';') k++;
        numeric_ref(out, num);
        return k - i;
    }
    /* named: [^\t\n\f <&#;]{1,32};? */
    size_t k = j;
    while (k < n && k - j < 32) {
        uint32_t c = s[k];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
            c == ';')
            break;
        k++;
    }
    if (k == j) return 0;
    if (k < n && s[k] == ';') k++;
    /* name = s[j..k); look it up whole, then its longest prefix of >= 2 characters */
    char name[40];
    size_t len = k - j, ascii = 0;
    while (ascii < len && s[j + ascii] < 0x80) {
        name[ascii] = (char)s[j + ascii];
        ascii++;
    }
    const aqa_html_entity *e;
    if (ascii == len && (e = find_entity(name, len)) && e->html5) {
        push_utf8(out, e->html5);
        return k - i;
    }
    for (size_t x = len - 1; x >= 2; x--) {
        if (x > ascii) continue;
        e = find_entity(name, x);
        if (e && e->html5) {
            push_utf8(out, e->html5);
            push_n(out, s + j + x, len - x);
            return k - i;
        }
    }
    return 0;
}

aqa_status aqa_clip_html_unescape(aqa_u32vec *s) {
    size_t i;
    for (i = 0; i < s->n && s->v[i] != '&'; i++) {
    }
    if (i == s->n) return AQA_OK;
    aqa_u32vec out = {0};
    for (i = 0; i < s->n;) {
        if (s->v[i] == '&') {
            size_t m = unescape_at(s->v, s->n, i, &out);
            if (m) {
                i += m;
                continue;
            }
        }
        aqa_u32vec_push(&out, s->v[i++]);
    }
    return vec_take(s, &out);
}

/* ftfy.fixes.unescape_html: &#?[0-9A-Za-z]{1,24}; replaced by ftfy's entity table, numeric
 * references through html.unescape when it consumes the whole match. */
static aqa_status ftfy_unescape(aqa_u32vec *s) {
    size_t i;
    for (i = 0; i < s->n && s->v[i] != '&'; i++) {
    }
    if (i == s->n) return AQA_OK;
    aqa_u32vec out = {0};
    for (i = 0; i < s->n;) {
        uint32_t *v = s->v;
        if (v[i] == '&') {
            size_t j = i + 1, r = 0;
            int hash = j < s->n && v[j] == '#';
            if (hash) j++;
            while (j + r < s->n && r <= 24 && is_alnum_ascii(v[j + r])) r++;
            if (r >= 1 && r <= 24 && j + r < s->n && v[j + r] == ';') {
                size_t end = j + r + 1; /* the match is v[i..end) */
                char name[32];
                size_t len = end - i - 1;
                for (size_t k = 0; k < len; k++) name[k] = (char)v[i + 1 + k];
                const aqa_html_entity *e = find_entity(name, len);
                if (e && e->ftfy) {
                    push_utf8(&out, e->ftfy);
                } else if (hash) {
                    aqa_u32vec tmp = {0};
                    push_n(&tmp, v + i, end - i);
                    aqa_status st = aqa_clip_html_unescape(&tmp);
                    int has_semi = 0;
                    for (size_t k = 0; k < tmp.n; k++) has_semi |= tmp.v[k] == ';';
                    if (st != AQA_OK || tmp.oom) out.oom = 1;
                    if (has_semi) push_n(&out, v + i, end - i);
                    else push_n(&out, tmp.v, tmp.n);
                    aqa_u32vec_free(&tmp);
                } else {
                    push_n(&out, v + i, end - i);
                }
                i = end;
                continue;
            }
        }
        aqa_u32vec_push(&out, v[i++]);
    }
    return vec_take(s, &out);
}

/* ---- ftfy ---- */

/* The per-character fixers of ftfy 6 in its order: fix_c1_controls, fix_latin_ligatures,
 * fix_character_width, uncurl_quotes, fix_line_breaks, fix_surrogates. */
static aqa_status ftfy_char_fixes(aqa_u32vec *s) {
    aqa_u32vec out = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        uint32_t buf[8];
        size_t nb = 0;
        if (c >= 0x80 && c <= 0x9F) c = aqa_ftfy_c1[c - 0x80];
        const aqa_uc_map *m = c >= 0x100 ? find_map(aqa_ftfy_ligatures, aqa_ftfy_ligatures_count, c)
                                         : NULL;
        if (m) {
            memcpy(buf, m->to, m->n * sizeof *buf);
            nb = m->n;
        } else {
            buf[nb++] = c;
        }
        for (size_t k = 0; k < nb; k++) {
            uint32_t d = buf[k];
            if (d == 0x3000 || (d >= 0xFF01 && d < 0xFFF0)) {
                const aqa_uc_map *w = find_map(aqa_ftfy_width, aqa_ftfy_width_count, d);
                if (w) {
                    push_n(&out, w->to, w->n);
                    continue;
                }
            }
            aqa_u32vec_push(&out, d);
        }
    }
    /* uncurl_quotes, fix_line_breaks, fix_surrogates in place */
    size_t o = 0;
    for (size_t i = 0; i < out.n; i++) {
        uint32_t c = out.v[i];
        if (c >= 0x2BC) {
            uint32_t f = aqa_clip_uc_flags(c);
            if (f & AQA_UC_QUOTE1) c = '\'';
            else if (f & AQA_UC_QUOTE2) c = '"';
        }
        if (c == '\r' && i + 1 < out.n && out.v[i + 1] == '\n') continue; /* \r\n -> \n */
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD; /* never paired: input comes from UTF-8 */
        out.v[o++] = c;
    }
    out.n = o;
    return vec_take(s, &out);
}

/* remove_terminal_escapes (\033\[(\d|;)*[a-zA-Z]) then remove_control_chars. */
static void ftfy_remove_escapes_controls(aqa_u32vec *s) {
    size_t o = 0;
    for (size_t i = 0; i < s->n;) {
        uint32_t c = s->v[i];
        if (c == 0x1B && i + 1 < s->n && s->v[i + 1] == '[') {
            size_t k = i + 2;
            while (k < s->n && (s->v[k] == ';' || (aqa_clip_uc_flags(s->v[k]) & AQA_UC_DECIMAL))) k++;
            if (k < s->n && ((s->v[k] | 0x20) >= 'a' && (s->v[k] | 0x20) <= 'z')) {
                i = k + 1;
                continue;
            }
        }
        s->v[o++] = c;
        i++;
    }
    s->n = o;
    o = 0;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') continue;
        if ((c == 0x7F || c >= 0x206A) && (aqa_clip_uc_flags(c) & AQA_UC_CONTROL)) continue;
        s->v[o++] = c;
    }
    s->n = o;
}

/* ftfy.fix_and_explain on one segment: the fixers, then NFC, repeated until nothing changes. */
static aqa_status ftfy_segment(aqa_u32vec *s, int unescape) {
    aqa_status st = AQA_OK;
    aqa_u32vec orig = {0};
    for (int iter = 0; iter < 100; iter++) {
        orig.n = 0;
        push_n(&orig, s->v, s->n);
        if (orig.oom) break;
        if (unescape && (st = ftfy_unescape(s)) != AQA_OK) break;
        if ((st = ftfy_char_fixes(s)) != AQA_OK) break;
        ftfy_remove_escapes_controls(s);
        if ((st = aqa_clip_nfc(s)) != AQA_OK) break;
        if (s->n == orig.n && (s->n == 0 || memcmp(s->v, orig.v, s->n * sizeof *s->v) == 0)) break;
    }
    if (orig.oom && st == AQA_OK) st = aqa_fail(AQA_ENOMEM, "CLIP text cleaning: out of memory");
    aqa_u32vec_free(&orig);
    return st;
}

aqa_status aqa_clip_ftfy(aqa_u32vec *s) {
    /* fix_text: segments end after each '\n' (or every 1,000,000 code points); HTML unescaping
     * stays off for the rest of the text from the first segment holding a '<' */
    const size_t max_seg = 1000000;
    int unescape = 1;
    aqa_u32vec out = {0}, seg = {0};
    aqa_status st = AQA_OK;
    for (size_t pos = 0; pos < s->n && st == AQA_OK;) {
        size_t end = pos;
        while (end < s->n && s->v[end] != '\n') end++;
        end = end < s->n ? end + 1 : s->n;
        if (end - pos > max_seg) end = pos + max_seg;
        seg.n = 0;
        push_n(&seg, s->v + pos, end - pos);
        for (size_t k = pos; k < end && unescape; k++)
            if (s->v[k] == '<') unescape = 0;
        st = ftfy_segment(&seg, unescape);
        push_n(&out, seg.v, seg.n);
        pos = end;
    }
    aqa_u32vec_free(&seg);
    if (st != AQA_OK) {
        aqa_u32vec_free(&out);
        return st;
    }
    return vec_take(s, &out);
}

/* ---- whitespace_clean and lower ---- */

static int is_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return (aqa_clip_uc_flags(c) & AQA_UC_SPACE) != 0;
}

/* Python's final-sigma rule for U+03A3 at s[i]. */
static int final_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    uint32_t f = 0;
    while (j > 0) {
        f = aqa_clip_uc_flags(s[--j]);
        if (!(f & AQA_UC_CASE_IGN)) break;
        f = 0;
    }
    if (!(f & AQA_UC_CASED)) return 0;
    for (j = i + 1; j < n; j++) {
        f = aqa_clip_uc_flags(s[j]);
        if (!(f & AQA_UC_CASE_IGN)) return !(f & AQA_UC_CASED);
    }
    return 1;
}

aqa_status aqa_clip_clean(aqa_u32vec *s) {
    aqa_status st;
    if ((st = aqa_clip_ftfy(s)) != AQA_OK) return st;
    if ((st = aqa_clip_html_unescape(s)) != AQA_OK) return st;
    if ((st = aqa_clip_html_unescape(s)) != AQA_OK) return st;
    /* strip + whitespace_clean: runs of whitespace become one space, none at either end */
    size_t o = 0;
    int pending = 0;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (is_space(c)) {
            pending = o > 0;
            continue;
        }
        if (pending) s->v[o++] = ' ';
        pending = 0;
        s->v[o++] = c;
    }
    s->n = o;
    /* str.lower() */
    aqa_u32vec out = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (c < 0x80) {
            aqa_u32vec_push(&out, c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else if (c == 0x3A3) {
            aqa_u32vec_push(&out, final_sigma(s->v, s->n, i) ? 0x3C2 : 0x3C3);
        } else {
            const aqa_uc_map *m = find_map(aqa_uc_lower, aqa_uc_lower_count, c);
            if (m) push_n(&out, m->to, m->n);
            else aqa_u32vec_push(&out, c);
        }
    }
    return vec_take(s, &out);
}

/* ---- word splitting ---- */

/* Does s[i] equal the ASCII character a under the regex module's IGNORECASE? */
static int fold_eq(uint32_t c, char a) {
    if (c == (uint32_t)a) return 1;
    if (a >= 'a' && a <= 'z') {
        if (c == (uint32_t)(a - 32)) return 1;
        if (c >= 0x80)
            for (size_t k = 0; k < aqa_uc_fold_ascii_count; k++)
                if (aqa_uc_fold_ascii[k].from == c) return aqa_uc_fold_ascii[k].to == (uint32_t)a;
    }
    return 0;
}

/* Length of lit matched case-insensitively at s[i], or 0; *exact says no folding was needed. */
static size_t match_lit(const uint32_t *s, size_t n, size_t i, const char *lit, int *exact) {
    size_t len = strlen(lit);
    if (i + len > n) return 0;
    *exact = 1;
    for (size_t k = 0; k < len; k++) {
        if (s[i + k] == (uint32_t)(unsigned char)lit[k]) continue;
        if (!fold_eq(s[i + k], lit[k])) return 0;
        *exact = 0;
    }
    return len;
}

aqa_status aqa_clip_split_words(const aqa_u32vec *s, aqa_clip_word **words, size_t *nwords) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t cap = 16, n = 0;
    aqa_clip_word *w = malloc(cap * sizeof *w);
    if (!w) return aqa_fail(AQA_ENOMEM, "CLIP word split: out of memory");
    const uint32_t *v = s->v;
    for (size_t i = 0; i < s->n;) {
        size_t len = 0;
        int special = 0, exact = 0;
        uint32_t c = v[i];
        if (c == '<') {
            if ((len = match_lit(v, s->n, i, "<|startoftext|>", &exact))) special = exact ? 1 : 0;
            else if ((len = match_lit(v, s->n, i, "<|endoftext|>", &exact))) special = exact ? 2 : 0;
        } else if (c == '\'') {
            for (size_t k = 0; k < 7 && !len; k++) len = match_lit(v, s->n, i, contractions[k], &exact);
        }
        if (!len) {
            uint32_t f = aqa_clip_uc_flags(c);
            uint32_t cls = f & AQA_UC_L ? AQA_UC_L : f & AQA_UC_N ? AQA_UC_N : f & AQA_UC_O ? AQA_UC_O : 0;
            if (!cls) {
                i++; /* whitespace and the odd character no alternative matches */
                continue;
            }
            len = 1;
            if (cls != AQA_UC_N)
                while (i + len < s->n && (aqa_clip_uc_flags(v[i + len]) & cls)) len++;
        }
        if (n == cap) {
            aqa_clip_word *nw = realloc(w, 2 * cap * sizeof *w);
            if (!nw) {
                free(w);
                return aqa_fail(AQA_ENOMEM, "CLIP word split: out of memory");
            }
            w = nw;
            cap *= 2;
        }
        w[n].start = i;
        w[n].len = len;
        w[n].special = special;
        n++;
        i += len;
    }
    *words = w;
    *nwords = n;
    return AQA_OK;
}
