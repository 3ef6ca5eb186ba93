/* test_image.c: PNG/JPEG decoding and writing, PIL-compatible resizing and the CLIP / I3D frame
 * transforms, checked against PIL's results (tests/data/image/, made by
 * scripts/gen_image_golden.py) and against hand-computed values. */
#include "image/image.h"
#include "image/resize.h"
#include "tests/testlib.h"

#include <dirent.h>
#include <zlib.h>
#include <unistd.h>

/* Reads a whole file; NULL when missing. */
static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!b || got != (size_t)n) {
        free(b);
        return NULL;
    }
    *len = (size_t)n;
    return b;
}

static int write_all(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(b, 1, n, f);
    return fclose(f) == 0 && put == n;
}

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/aqa_test_image_XXXXXX");
        if (!mkdtemp(tmpdir)) snprintf(tmpdir, sizeof tmpdir, "/tmp");
    }
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* Loads a golden uint8 image: *.png through our decoder, *.rgb raw with the given size. */
static aqa_image *load_gold(const char *name, int w, int h) {
    char path[4096];
    snprintf(path, sizeof path, "%s", test_data_path(name));
    if (strstr(name, ".png")) return aqa_image_load(path);
    size_t len = 0;
    uint8_t *b = read_all(path, &len);
    if (!b) return NULL;
    aqa_image *im = NULL;
    if (len == (size_t)w * h * 3) {
        im = aqa_image_new(w, h);
        if (im) memcpy(im->data, b, len);
    }
    free(b);
    return im;
}

/* Largest absolute byte difference (-1 on a size mismatch). */
static int max_diff(const aqa_image *a, const aqa_image *b) {
    if (!a || !b || a->width != b->width || a->height != b->height) return -1;
    int m = 0;
    for (size_t i = 0; i < (size_t)a->width * a->height * 3; i++) {
        int d = abs((int)a->data[i] - (int)b->data[i]);
        if (d > m) m = d;
    }
    return m;
}

static size_t count_diff(const aqa_image *a, const aqa_image *b) {
    size_t n = 0;
    for (size_t i = 0; i < (size_t)a->width * a->height * 3; i++) n += a->data[i] != b->data[i];
    return n;
}

/* The manifest lines of one kind, as arrays of whitespace-separated words. */
typedef struct entry {
    char w[6][128];
    int n;
} entry;

static int read_manifest(const char *kind, entry *out, int max) {
    FILE *f = fopen(test_data_path("image/manifest.txt"), "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        if (line[0] == '#') continue;
        entry e = {0};
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\n", &save); t && e.n < 6; t = strtok_r(NULL, " \t\n", &save))
            snprintf(e.w[e.n++], sizeof e.w[0], "%s", t);
        if (e.n > 0 && strcmp(e.w[0], kind) == 0) out[n++] = e;
    }
    fclose(f);
    return n;
}

/* "image/<name>": a fixture's name under tests/data (static buffer: use before the next call). */
static const char *image_path(const char *name) {
    static char path[300];
    snprintf(path, sizeof path, "image/%s", name);
    return path;
}

static aqa_image *load_src(const char *name) { return aqa_image_load(test_data_path(image_path(name))); }

/* photo_300x200.jpg, the transforms' and encoder's source; absent, the test is marked skipped. */
static aqa_image *load_photo(void) {
    aqa_image *src = load_src("photo_300x200.jpg");
    if (!src) SKIP("photo_300x200.jpg missing");
    return src;
}

/* The manifest's cases of one kind; none (the fixtures are absent) marks the test skipped. */
static int manifest_cases(const char *kind, entry *out, int max) {
    int n = read_manifest(kind, out, max);
    if (n <= 0) SKIP("tests/data/image/manifest.txt missing");
    return n;
}

/* A case's source image (word 1 of its manifest line); NULL after a failed check naming it. */
static aqa_image *load_case_src(const entry *e) {
    aqa_image *src = load_src(e->w[1]);
    CHECK_MSG(src != NULL, "%s: %s", e->w[1], aqa_last_error());
    return src;
}

/* src resized as a resize case says: filter (word 2, "bicubic" or bilinear) to words 3 x 4. */
static aqa_image *resize_case(const aqa_image *src, const entry *e, int *w, int *h) {
    aqa_resample f = strcmp(e->w[2], "bicubic") == 0 ? AQA_RESAMPLE_BICUBIC : AQA_RESAMPLE_BILINEAR;
    *w = atoi(e->w[3]);
    *h = atoi(e->w[4]);
    return aqa_image_resize(src, *w, *h, f);
}

static void test_decode_matches_pil(void) {
    entry e[32];
    int n = manifest_cases("decode", e, 32);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
        aqa_image *im = load_case_src(&e[i]);
        if (!im) continue;
        const char *gold = image_path(e[i].w[2]);
        aqa_image *g = load_gold(gold, im->width, im->height);
        CHECK_MSG(g != NULL, "%s: cannot read golden %s", e[i].w[1], gold);
        int d = max_diff(im, g);
        int is_jpeg = strstr(e[i].w[1], ".jpg") != NULL;
        /* PNG must be exact; JPEG too in practice (PIL links the same libjpeg-turbo), allow 2 */
        CHECK_MSG(d >= 0 && d <= (is_jpeg ? 2 : 0), "%s: max diff vs PIL %d", e[i].w[1], d);
        printf("    decode %-20s %dx%d max diff vs PIL %d (%zu bytes differ)\n", e[i].w[1],
               im->width, im->height, d, d >= 0 ? count_diff(im, g) : 0);
        CHECK_EQ_INT(im->channels, 3);
        aqa_image_free(g);
        aqa_image_free(im);
    }
}

static void test_resize_matches_pil(void) {
    entry e[32];
    int n = manifest_cases("resize", e, 32);
    if (n <= 0) return;
    int worst = 0;
    for (int i = 0; i < n; i++) {
        aqa_image *src = load_case_src(&e[i]);
        if (!src) continue;
        int w, h;
        aqa_image *out = resize_case(src, &e[i], &w, &h);
        aqa_image *g = load_gold(image_path(e[i].w[5]), w, h);
        CHECK_MSG(out && g, "%s: resize or golden failed: %s", e[i].w[5], aqa_last_error());
        int d = max_diff(out, g);
        if (d > worst || d < 0) worst = d;
        /* the goal is exact equality with PIL; the tolerance is 1/255 */
        CHECK_MSG(d >= 0 && d <= 1, "%s -> %s %dx%d: max diff %d", e[i].w[1], e[i].w[2], w, h, d);
        printf("    resize %-18s %-8s %3dx%-3d max diff vs PIL %d (%zu bytes differ)\n", e[i].w[1],
               e[i].w[2], w, h, d, d >= 0 ? count_diff(out, g) : 0);
        aqa_image_free(g);
        aqa_image_free(out);
        aqa_image_free(src);
    }
    printf("    resize: worst max diff %d\n", worst);
}

static void test_clip_preprocess_matches_pil(void) {
    entry e[32];
    int n = manifest_cases("clip", e, 32);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
        aqa_image *src = load_case_src(&e[i]);
        if (!src) continue;
        int res = atoi(e[i].w[2]);
        size_t cnt = (size_t)3 * res * res;
        float *out = malloc(cnt * sizeof(float));
        CHECK(aqa_clip_preprocess(src, res, out) == AQA_OK);
        char gold[300];
        snprintf(gold, sizeof gold, "%s", image_path(e[i].w[3]));
        size_t len = 0;
        float *g = (float *)read_all(test_data_path(gold), &len);
        CHECK_MSG(g && len == cnt * sizeof(float), "%s: golden size %zu", gold, len);
        if (g && len == cnt * sizeof(float)) {
            double md = 0;
            for (size_t k = 0; k < cnt; k++) {
                /* one 8-bit level after normalisation is 1 / (255 * std) */
                double d = fabs((double)out[k] - g[k]) * aqa_clip_std[k / ((size_t)res * res)];
                if (d > md) md = d;
            }
            CHECK_MSG(md <= 1.0 / 255 + 1e-6, "%s: max diff %.3g (in [0,1] units)", gold, md);
            printf("    clip %-20s n=%-3d max diff vs PIL+numpy %.3g (x255 = %.3g levels)\n",
                   e[i].w[1], res, md, md * 255);
        }
        free(g);
        free(out);
        aqa_image_free(src);
    }
}

/* Many more sizes (extreme shrinking, 4x enlarging, 1x1), compared by CRC-32 of PIL's bytes. */
static void test_resize_sweep_crc(void) {
    entry e[128];
    int n = manifest_cases("resize_crc", e, 128), bad = 0;
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
        aqa_image *src = load_case_src(&e[i]);
        if (!src) continue;
        int w, h;
        aqa_image *out = resize_case(src, &e[i], &w, &h);
        CHECK_MSG(out != NULL, "%s: %s", e[i].w[1], aqa_last_error());
        if (out) {
            unsigned long crc = crc32(0L, out->data, (uInt)((size_t)w * h * 3));
            if (crc != strtoul(e[i].w[5], NULL, 16)) {
                bad++;
                CHECK_MSG(0, "%s %s %dx%d: bytes differ from PIL's", e[i].w[1], e[i].w[2], w, h);
            }
        }
        aqa_image_free(out);
        aqa_image_free(src);
    }
    printf("    resize sweep: %d of %d cases byte-identical to PIL\n", n - bad, n);
    n = read_manifest("clip_crc", e, 128);
    for (int i = 0; i < n; i++) {
        aqa_image *src = load_src(e[i].w[1]);
        int res = atoi(e[i].w[2]);
        float *out = malloc(sizeof(float) * 3 * res * res);
        CHECK(src && out && aqa_clip_preprocess(src, res, out) == AQA_OK);
        if (src && out) {
            unsigned long crc = crc32(0L, (const Bytef *)out, (uInt)(sizeof(float) * 3 * res * res));
            CHECK_MSG(crc == strtoul(e[i].w[3], NULL, 16), "%s n=%d: floats differ from PIL+numpy's",
                      e[i].w[1], res);
            printf("    clip %s n=%d: %s\n", e[i].w[1], res,
                   crc == strtoul(e[i].w[3], NULL, 16) ? "bit-identical" : "DIFFERENT");
        }
        free(out);
        aqa_image_free(src);
    }
}

/* Random damage to real files never crashes the decoders: each variant either decodes to a
 * sane image or fails with a message (run under ASan/valgrind to catch memory errors). */
static void test_fuzz_decoders(void) {
    const char *files[] = {"image/rgb_37x23.png", "image/palette_40x30.png", "image/prog_64x48.jpg",
                           "image/gray_64x48.jpg"};
    uint64_t s = test_seed("decoder fuzz");
    int ok = 0, failed = 0;
    for (int f = 0; f < 4; f++) {
        size_t len = 0;
        uint8_t *orig = read_all(test_data_path(files[f]), &len);
        if (!orig) {
            SKIP("%s missing", files[f]);
            return;
        }
        uint8_t *b = malloc(len);
        for (int it = 0; it < 150; it++) {
            memcpy(b, orig, len);
            size_t n = len;
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            int mode = (int)(s >> 60) % 3, flips = 1 + (int)((s >> 40) % 8);
            if (mode == 0) {
                n = 8 + (size_t)((s >> 20) % (len - 8)); /* truncate */
            } else {
                for (int k = 0; k < flips; k++) {   /* flip bytes, the header included */
                    s = s * 6364136223846793005ull + 1442695040888963407ull;
                    b[(s >> 33) % len] ^= (uint8_t)(1 + (s >> 25) % 255);
                }
            }
            aqa_image *im = aqa_image_decode(b, n, files[f]);
            if (im) {
                ok++;
                CHECK(im->width > 0 && im->height > 0 && im->channels == 3);
            } else {
                failed++;
                CHECK(aqa_last_error()[0] != 0);
            }
            aqa_image_free(im);
        }
        free(b);
        free(orig);
    }
    printf("    %d damaged variants decoded, %d refused\n", ok, failed);
    CHECK(failed > 0);
}

/* torchvision's size and crop rules at hand-computed points. */
static void test_resize_and_crop_rules(void) {
    int w, h;
    CHECK(aqa_resize_shorter_size(37, 23, 32, &w, &h) == AQA_OK);
    CHECK_EQ_INT(w, 51); /* int(32 * 37 / 23) = int(51.47) */
    CHECK_EQ_INT(h, 32);
    CHECK(aqa_resize_shorter_size(200, 300, 224, &w, &h) == AQA_OK);
    CHECK_EQ_INT(w, 224);
    CHECK_EQ_INT(h, 336);
    CHECK(aqa_resize_shorter_size(640, 360, 224, &w, &h) == AQA_OK);
    CHECK_EQ_INT(w, 398); /* 224 * 640 / 360 = 398.2 */
    CHECK_EQ_INT(h, 224);
    CHECK(aqa_resize_shorter_size(50, 50, 7, &w, &h) == AQA_OK);
    CHECK_EQ_INT(w, 7);
    CHECK_EQ_INT(h, 7);
    CHECK(aqa_resize_shorter_size(0, 5, 7, &w, &h) == AQA_EINVAL);
    /* int(round((len - crop) / 2.0)) with round-half-to-even */
    CHECK_EQ_INT(aqa_center_crop_offset(51, 32), 10); /* round(9.5) = 10 */
    CHECK_EQ_INT(aqa_center_crop_offset(49, 32), 8);  /* round(8.5) = 8 */
    CHECK_EQ_INT(aqa_center_crop_offset(50, 32), 9);
    CHECK_EQ_INT(aqa_center_crop_offset(33, 32), 0);  /* round(0.5) = 0 */
    CHECK_EQ_INT(aqa_center_crop_offset(35, 32), 2);  /* round(1.5) = 2 */
    CHECK_EQ_INT(aqa_center_crop_offset(32, 32), 0);
    CHECK_EQ_INT(aqa_center_crop_offset(29, 32), -1); /* padded: left pad (32 - 29) // 2 */
}

static void test_crop_flip(void) {
    aqa_image *im = aqa_image_new(4, 3);
    for (int i = 0; i < 4 * 3 * 3; i++) im->data[i] = (uint8_t)i;
    aqa_image *c = aqa_image_crop(im, 1, 1, 2, 2);
    CHECK(c && c->width == 2 && c->height == 2);
    if (c) {
        CHECK_EQ_INT(c->data[0], (1 * 4 + 1) * 3); /* pixel (1,1) red */
        CHECK_EQ_INT(c->data[3 * 3 + 2], (2 * 4 + 2) * 3 + 2);
    }
    aqa_image *p = aqa_image_crop(im, -1, 2, 3, 2); /* partly outside: zero fill */
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->data[0], 0);
        CHECK_EQ_INT(p->data[3], (2 * 4 + 0) * 3);
        CHECK_EQ_INT(p->data[3 * 3 + 0], 0); /* row 3 of src does not exist */
    }
    aqa_image_hflip(im);
    CHECK_EQ_INT(im->data[0], 3 * 3);          /* old (3,0) */
    CHECK_EQ_INT(im->data[3 * 3 + 1], 0 + 1);  /* old (0,0) green now at (3,0) */
    aqa_image_free(p);
    aqa_image_free(c);
    aqa_image_free(im);
}

/* Each normalisation at hand-computed values. */
static void test_normalisations(void) {
    aqa_image *im = aqa_image_new(2, 1);
    uint8_t px[6] = {0, 128, 255, 255, 51, 0};
    memcpy(im->data, px, 6);
    float out[6];
    CHECK(aqa_image_to_float(im, AQA_NORM_UNIT, out, 0) == AQA_OK);
    CHECK_NEAR(out[0], 0.0, 0);            /* R of pixel 0 */
    CHECK_NEAR(out[1], 1.0, 1e-7);         /* R of pixel 1 */
    CHECK_NEAR(out[2], 128 / 255.0, 1e-7); /* G of pixel 0 */
    CHECK_NEAR(out[3], 0.2, 1e-7);         /* G of pixel 1: 51 / 255 */
    CHECK(aqa_image_to_float(im, AQA_NORM_I3D, out, 0) == AQA_OK);
    CHECK_NEAR(out[0], -1.0, 1e-7);
    CHECK_NEAR(out[1], 1.0, 1e-7);
    CHECK_NEAR(out[3], -0.6, 1e-6);
    CHECK(aqa_image_to_float(im, AQA_NORM_CLIP, out, 0) == AQA_OK);
    CHECK_NEAR(out[1], (1 - 0.48145466) / 0.26862954, 1e-5);
    CHECK_NEAR(out[5], (0 - 0.40821073) / 0.27577711, 1e-5);
    CHECK(aqa_image_to_float(im, AQA_NORM_IMAGENET, out, 0) == AQA_OK);
    CHECK_NEAR(out[1], (1 - 0.485) / 0.229, 1e-5);
    CHECK_NEAR(out[3], (0.2 - 0.456) / 0.224, 1e-5);
    CHECK_NEAR(out[4], (1 - 0.406) / 0.225, 1e-5);
    CHECK(aqa_image_to_float(im, (aqa_norm)9, out, 0) == AQA_EINVAL);
    CHECK(aqa_image_to_float(im, AQA_NORM_UNIT, out, 1) == AQA_EINVAL); /* stride < plane */
    aqa_image_free(im);
}

/* The I3D transform equals its pieces composed by hand, writes a [3,T,H,W] frame with a
 * channel stride, and randomisation is deterministic and in bounds. */
static void test_i3d_transform(void) {
    aqa_image *src = load_photo();
    if (!src) return;
    const int crop = 64, T = 3, t_idx = 1;
    float *clip = calloc((size_t)3 * T * crop * crop, sizeof(float));
    CHECK(aqa_frame_transform_i3d(100, crop).norm == AQA_NORM_I3D);
    aqa_frame_transform t = aqa_frame_transform_i3d(100, crop);
    int ow, oh;
    CHECK(aqa_frame_transform_output_size(&t, 300, 200, &ow, &oh) == AQA_OK);
    CHECK_EQ_INT(ow, crop);
    CHECK_EQ_INT(oh, crop);
    CHECK(aqa_frame_transform_apply(&t, src, clip + (size_t)t_idx * crop * crop,
                                    (size_t)T * crop * crop) == AQA_OK);
    aqa_image *r = aqa_image_resize(src, 150, 100, AQA_RESAMPLE_BILINEAR);
    int bad = 0;
    double lo = 1e9, hi = -1e9;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < crop; y++)
            for (int x = 0; x < crop; x++) {
                /* centre crop of 150x100 to 64: left round(43) = 43, top round(18) = 18 */
                uint8_t v = r->data[aqa_image_offset(r, x + 43, y + 18) + c];
                float want = (float)(v / 255.0 * 2 - 1);
                float got = clip[((size_t)c * T + t_idx) * crop * crop + (size_t)y * crop + x];
                if (got != want) bad++;
                if (got < lo) lo = got;
                if (got > hi) hi = got;
            }
    CHECK_EQ_INT(bad, 0);
    CHECK(lo >= -1.0 && hi <= 1.0);
    /* other frames of the clip untouched */
    CHECK(clip[0] == 0.0f && clip[(size_t)3 * T * crop * crop - 1] == 0.0f);

    aqa_frame_transform a = t, b = t;
    CHECK(aqa_frame_transform_randomize(&a, 300, 200, 42, 0.5) == AQA_OK);
    CHECK(aqa_frame_transform_randomize(&b, 300, 200, 42, 0.5) == AQA_OK);
    CHECK(a.crop_x == b.crop_x && a.crop_y == b.crop_y && a.hflip == b.hflip);
    int flips = 0, xs_differ = 0;
    for (uint64_t s = 0; s < 200; s++) {
        aqa_frame_transform q = t;
        aqa_frame_transform_randomize(&q, 300, 200, s, 0.5);
        CHECK(q.crop_x >= 0 && q.crop_x <= 150 - crop && q.crop_y >= 0 && q.crop_y <= 100 - crop);
        flips += q.hflip;
        xs_differ += q.crop_x != a.crop_x;
    }
    CHECK(flips > 60 && flips < 140);
    CHECK(xs_differ > 150);
    /* a flipped random crop equals the crop of the resized image, mirrored */
    a.hflip = 1;
    float *one = malloc(sizeof(float) * 3 * crop * crop);
    CHECK(aqa_frame_transform_apply(&a, src, one, 0) == AQA_OK);
    bad = 0;
    for (int y = 0; y < crop; y++)
        for (int x = 0; x < crop; x++) {
            uint8_t v = r->data[aqa_image_offset(r, a.crop_x + crop - 1 - x, a.crop_y + y) + 2];
            if (one[2 * crop * crop + y * crop + x] != (float)(v / 255.0 * 2 - 1)) bad++;
        }
    CHECK_EQ_INT(bad, 0);
    free(one);
    aqa_image_free(r);
    free(clip);
    aqa_image_free(src);
}

static void test_png_roundtrip_and_atomic(void) {
    aqa_image *im = aqa_image_new(29, 17);
    for (size_t i = 0; i < 29 * 17 * 3; i++) im->data[i] = (uint8_t)(i * 7 + (i >> 5));
    const char *path = tmp_path("round.png");
    CHECK(aqa_image_save_png(im, path) == AQA_OK);
    aqa_image *back = aqa_image_load(path);
    CHECK_MSG(back != NULL, "%s", aqa_last_error());
    CHECK_EQ_INT(max_diff(im, back), 0);
    /* saving over an existing file replaces it and leaves no temporary behind */
    im->data[0] ^= 0xFF;
    CHECK(aqa_image_save_png(im, path) == AQA_OK);
    aqa_image *again = aqa_image_load(path);
    CHECK_EQ_INT(max_diff(im, again), 0);
    int stray = 0;
    DIR *d = opendir(tmpdir);
    for (struct dirent *de; d && (de = readdir(d));) stray += strstr(de->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK_EQ_INT(stray, 0);
    /* an unwritable destination is an error naming the file, not a crash */
    CHECK(aqa_image_save_png(im, "/nonexistent_dir_aqa/x.png") == AQA_EIO);
    CHECK(strstr(aqa_last_error(), "/nonexistent_dir_aqa/x.png") != NULL);
    aqa_image_free(again);
    aqa_image_free(back);
    aqa_image_free(im);
}

static void test_jpeg_roundtrip(void) {
    aqa_image *src = load_photo();
    if (!src) return;
    const char *path = tmp_path("round.jpg");
    CHECK(aqa_image_save_jpeg(src, path, 95) == AQA_OK);
    aqa_image *back = aqa_image_load(path);
    CHECK_MSG(back != NULL, "%s", aqa_last_error());
    if (back) {
        double sum = 0;
        for (size_t i = 0; i < (size_t)300 * 200 * 3; i++) sum += abs((int)back->data[i] - src->data[i]);
        double mae = sum / (300.0 * 200 * 3);
        printf("    JPEG q95 round trip mean abs error %.3f\n", mae);
        CHECK(mae < 2.0);
    }
    CHECK(aqa_image_save_jpeg(src, path, 0) == AQA_EINVAL);
    aqa_image_free(back);
    aqa_image_free(src);
}

/* Writes a damaged copy of a fixture and expects a clean error naming the file. */
static void expect_bad(const char *what, const uint8_t *b, size_t n, aqa_status want) {
    const char *path = tmp_path(what);
    char keep[512];
    snprintf(keep, sizeof keep, "%s", path);
    CHECK(write_all(keep, b, n));
    aqa_clear_error();
    aqa_image *im = aqa_image_load(keep);
    CHECK_MSG(im == NULL, "%s: damaged file decoded without error", what);
    CHECK_MSG(aqa_last_status() == want, "%s: status %s, expected %s (%s)", what,
              aqa_status_name(aqa_last_status()), aqa_status_name(want), aqa_last_error());
    CHECK_MSG(strstr(aqa_last_error(), keep) != NULL, "%s: message does not name the file: %s", what,
              aqa_last_error());
    printf("    %-16s -> %s\n", what, aqa_last_error());
    aqa_image_free(im);
}

static void test_corrupt_files(void) {
    size_t plen = 0, jlen = 0;
    uint8_t *png = read_all(test_data_path("image/rgb_37x23.png"), &plen);
    uint8_t *jpg = read_all(test_data_path("image/photo_300x200.jpg"), &jlen);
    if (!png || !jpg) {
        free(png);
        free(jpg);
        SKIP("fixtures missing");
        return;
    }
    expect_bad("trunc_half.png", png, plen / 2, AQA_EFORMAT);
    expect_bad("trunc_hdr.png", png, 20, AQA_EFORMAT);
    expect_bad("trunc_half.jpg", jpg, jlen / 2, AQA_EFORMAT);
    expect_bad("trunc_hdr.jpg", jpg, 40, AQA_EFORMAT);
    expect_bad("empty.png", png, 0, AQA_EFORMAT);
    uint8_t text[] = "this is not an image at all\n";
    expect_bad("text.jpg", text, sizeof text - 1, AQA_EFORMAT);
    /* PNG with a damaged byte inside IDAT: CRC error */
    uint8_t *bad = malloc(plen);
    memcpy(bad, png, plen);
    bad[plen / 2] ^= 0x55;
    expect_bad("crc.png", bad, plen, AQA_EFORMAT);
    /* PNG whose header claims an absurd size (CRC recomputed so only the size is wrong) */
    memcpy(bad, png, plen);
    bad[16] = 0x7F; /* width high byte */
    uint32_t crc = (uint32_t)crc32(0L, bad + 12, 17);
    bad[29] = (uint8_t)(crc >> 24), bad[30] = (uint8_t)(crc >> 16), bad[31] = (uint8_t)(crc >> 8), bad[32] = (uint8_t)crc;
    expect_bad("huge.png", bad, plen, AQA_EFORMAT);
    /* JPEG whose entropy data is cut and followed by garbage */
    uint8_t *badj = malloc(jlen);
    memcpy(badj, jpg, jlen);
    for (size_t i = jlen / 3; i < jlen / 3 + 64; i++) badj[i] = 0xFF;
    expect_bad("garbage.jpg", badj, jlen, AQA_EFORMAT);
    free(badj);
    free(bad);
    /* missing file: EIO naming it */
    aqa_image *im = aqa_image_load(tmp_path("does_not_exist.png"));
    CHECK(im == NULL && aqa_last_status() == AQA_EIO);
    CHECK(strstr(aqa_last_error(), "does_not_exist.png") != NULL);
    /* CMYK JPEG: a valid file we do not convert */
    im = load_src("cmyk_8x8.jpg");
    CHECK(im == NULL && aqa_last_status() == AQA_EUNSUPPORTED);
    CHECK(strstr(aqa_last_error(), "cmyk_8x8.jpg") != NULL);
    /* decode from memory names what it was given */
    CHECK(aqa_image_decode(png, 30, "frame 17") == NULL);
    CHECK(strstr(aqa_last_error(), "frame 17") != NULL);
    free(png);
    free(jpg);
}

static void cleanup_tmp(void) {
    if (!tmpdir[0] || strcmp(tmpdir, "/tmp") == 0) return;
    DIR *d = opendir(tmpdir);
    char p[600];
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
}

int main(void) {
    RUN(test_decode_matches_pil);
    RUN(test_resize_matches_pil);
    RUN(test_clip_preprocess_matches_pil);
    RUN(test_resize_sweep_crc);
    RUN(test_fuzz_decoders);
    RUN(test_resize_and_crop_rules);
    RUN(test_crop_flip);
    RUN(test_normalisations);
    RUN(test_i3d_transform);
    RUN(test_png_roundtrip_and_atomic);
    RUN(test_jpeg_roundtrip);
    RUN(test_corrupt_files);
    cleanup_tmp();
    return test_finish();
}
