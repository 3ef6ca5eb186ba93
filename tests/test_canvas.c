/* test_canvas.c: drawing primitives, font and plots (datasets/canvas.*, font.c, plot.*), checked
 * at pixels worked out by hand from each primitive's definition in canvas.h. */
#include "image/canvas.h"
#include "image/image.h"
#include "eval/plot.h"
#include "tests/testlib.h"

#include <unistd.h>

static const aqa_rgb RED = {255, 0, 0};

/* A black w x h image. */
static aqa_image *blank(int w, int h) { return aqa_image_new(w, h); }

static int is(const aqa_image *im, int x, int y, aqa_rgb c) {
    aqa_rgb p = aqa_canvas_get(im, x, y);
    return p.r == c.r && p.g == c.g && p.b == c.b;
}

static int count(const aqa_image *im, aqa_rgb c) {
    int n = 0;
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) n += is(im, x, y, c);
    return n;
}

static void test_fill_pixel_rect(void) {
    aqa_image *im = blank(10, 8);
    aqa_canvas_fill(im, aqa_rgb_make(1, 2, 3));
    CHECK_EQ_INT(count(im, aqa_rgb_make(1, 2, 3)), 80);
    aqa_canvas_pixel(im, 9, 7, RED);
    aqa_canvas_pixel(im, 10, 7, RED); /* outside: ignored */
    aqa_canvas_pixel(im, -1, 0, RED);
    CHECK(is(im, 9, 7, RED));
    CHECK_EQ_INT(count(im, RED), 1);
    CHECK_EQ_INT(im->data[(7 * 10 + 9) * 3 + 0], 255);
    CHECK_EQ_INT(im->data[(7 * 10 + 9) * 3 + 1], 0);

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_rect(im, 2, 3, 4, 2, RED); /* x 2..5, y 3..4 */
    CHECK_EQ_INT(count(im, RED), 8);
    CHECK(is(im, 2, 3, RED) && is(im, 5, 4, RED));
    CHECK(!is(im, 6, 4, RED) && !is(im, 5, 5, RED) && !is(im, 1, 3, RED) && !is(im, 2, 2, RED));
    aqa_canvas_rect(im, 8, 6, 10, 10, RED); /* clipped to x 8..9, y 6..7 */
    CHECK_EQ_INT(count(im, RED), 12);

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_rect_outline(im, 1, 1, 5, 4, 1, RED); /* 5x4 box: 2*5 + 2*2 border pixels */
    CHECK_EQ_INT(count(im, RED), 14);
    CHECK(is(im, 1, 1, RED) && is(im, 5, 4, RED) && is(im, 1, 3, RED));
    CHECK(!is(im, 2, 2, RED) && !is(im, 4, 3, RED));

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_blend(im, 0, 0, AQA_RGB_WHITE, 0.5); /* 0 + 255 * 0.5 = 127.5 -> 128 */
    CHECK_EQ_INT(im->data[0], 128);

    /* gradient over 6 rows from 0 to 250: row r = 50 r */
    aqa_canvas_vgradient(im, 0, 1, 10, 6, aqa_rgb_make(0, 0, 0), aqa_rgb_make(250, 0, 100));
    CHECK_EQ_INT(aqa_canvas_get(im, 3, 1).r, 0);
    CHECK_EQ_INT(aqa_canvas_get(im, 3, 3).r, 100);
    CHECK_EQ_INT(aqa_canvas_get(im, 9, 6).r, 250);
    CHECK_EQ_INT(aqa_canvas_get(im, 9, 6).b, 100);
    CHECK_EQ_INT(aqa_canvas_get(im, 9, 7).r, 0);
    aqa_image_free(im);
}

static void test_lines(void) {
    aqa_image *im = blank(20, 12);
    /* plain width 1: Bresenham, one pixel per column for a shallow line: y = round(x / 3) */
    aqa_canvas_line(im, 0, 0, 6, 2, 1, RED, 0);
    CHECK_EQ_INT(count(im, RED), 7);
    int want_y[7] = {0, 0, 1, 1, 1, 2, 2};
    for (int x = 0; x <= 6; x++) CHECK_MSG(is(im, x, want_y[x], RED), "pixel (%d,%d) not set", x, want_y[x]);

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_line(im, 0, 5, 9, 5, 1, RED, 0);
    CHECK_EQ_INT(count(im, RED), 10);
    CHECK(is(im, 0, 5, RED) && is(im, 9, 5, RED) && !is(im, 10, 5, RED) && !is(im, 5, 4, RED));

    /* plain width 3: centres within 1.5 of the segment (round caps) */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_line(im, 3, 5, 10, 5, 3, RED, 0);
    for (int x = 3; x <= 10; x++)
        CHECK(is(im, x, 4, RED) && is(im, x, 5, RED) && is(im, x, 6, RED) && !is(im, x, 3, RED) &&
              !is(im, x, 7, RED));
    CHECK(is(im, 2, 5, RED) && is(im, 2, 4, RED)); /* d = 1 and sqrt(2) */
    CHECK(!is(im, 1, 5, RED) && !is(im, 2, 3, RED)); /* d = 2 and sqrt(5) */
    CHECK_EQ_INT(count(im, RED), 8 * 3 + 2 * 3);

    /* antialiased width 1 on the pixel row: full colour on it, nothing one row away */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_line(im, 2, 5, 8, 5, 1, AQA_RGB_WHITE, 1);
    CHECK_EQ_INT(aqa_canvas_get(im, 5, 5).g, 255);
    CHECK_EQ_INT(aqa_canvas_get(im, 5, 6).g, 0);
    /* halfway between two rows: each pixel centre is 0.5 away -> coverage 0.5 -> 128 */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_line(im, 2, 5.5, 8, 5.5, 1, AQA_RGB_WHITE, 1);
    CHECK_EQ_INT(aqa_canvas_get(im, 5, 5).g, 128);
    CHECK_EQ_INT(aqa_canvas_get(im, 5, 6).g, 128);
    CHECK_EQ_INT(aqa_canvas_get(im, 5, 4).g, 0);

    /* dashed: dash 3, gap 2 from x = 0: pixels 0..3 drawn (0..3 inclusive of the end point), 4 off */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_dashed_line(im, 0, 2, 19, 2, 1, 3, 2, RED, 0);
    CHECK(is(im, 0, 2, RED) && is(im, 3, 2, RED) && !is(im, 4, 2, RED) && is(im, 5, 2, RED));
    /* far off-image segments are harmless */
    aqa_canvas_line(im, -1e9, -1e9, 1e9, 1e9, 1, RED, 0);
    aqa_canvas_line(im, -1e9, 3, 1e9, 3, 2, RED, 1);
    aqa_image_free(im);
}

static void test_circles_ellipses(void) {
    aqa_image *im = blank(20, 20);
    aqa_canvas_circle(im, 5, 5, 2, RED, 0);
    /* lattice points with dx^2 + dy^2 <= 4: 1 + 4 (axis, d=1) + 4 (axis, d=2) + 4 (diagonal) = 13 */
    CHECK_EQ_INT(count(im, RED), 13);
    CHECK(is(im, 5, 3, RED) && is(im, 7, 5, RED) && is(im, 6, 6, RED));
    CHECK(!is(im, 7, 6, RED) && !is(im, 7, 7, RED));

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_circle(im, 10, 10, 3, AQA_RGB_WHITE, 1);
    CHECK_EQ_INT(aqa_canvas_get(im, 10, 10).r, 255);
    CHECK_EQ_INT(aqa_canvas_get(im, 13, 10).r, 128); /* d = r: half covered */
    CHECK_EQ_INT(aqa_canvas_get(im, 14, 10).r, 0);

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_circle_alpha(im, 10, 10, 3, AQA_RGB_WHITE, 0.5);
    CHECK_EQ_INT(aqa_canvas_get(im, 10, 10).r, 128); /* full coverage x opacity 0.5 */
    CHECK_EQ_INT(aqa_canvas_get(im, 13, 10).r, 64);  /* half coverage x 0.5: 63.75 -> 64 */
    CHECK_EQ_INT(aqa_canvas_get(im, 14, 10).r, 0);

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_ring(im, 10, 10, 4, 1, RED, 0);
    CHECK(is(im, 14, 10, RED) && is(im, 10, 6, RED) && !is(im, 10, 10, RED) && !is(im, 12, 10, RED));

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_ellipse(im, 10, 10, 4, 2, 0, RED, 0);
    CHECK(is(im, 14, 10, RED) && is(im, 10, 12, RED) && is(im, 6, 10, RED));
    CHECK(!is(im, 10, 13, RED) && !is(im, 15, 10, RED) && !is(im, 13, 12, RED));
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_ellipse(im, 10, 10, 4, 2, M_PI / 2, RED, 0); /* long axis now vertical */
    CHECK(is(im, 10, 14, RED) && is(im, 12, 10, RED) && !is(im, 14, 10, RED) && !is(im, 13, 10, RED));
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_ellipse(im, 10, 10, 4, 2, 0, AQA_RGB_WHITE, 1);
    CHECK_EQ_INT(aqa_canvas_get(im, 10, 10).r, 255);
    CHECK_EQ_INT(aqa_canvas_get(im, 14, 10).r, 128); /* on the edge */
    CHECK_EQ_INT(aqa_canvas_get(im, 10, 13).r, 0);   /* 1 pixel outside */
    aqa_image_free(im);
}

static void test_polygons(void) {
    aqa_image *im = blank(12, 12);
    double square[] = {1, 1, 5, 1, 5, 4, 1, 4}; /* centres with 1 <= x < 5, 1 <= y < 4 */
    CHECK(aqa_canvas_polygon(im, square, 4, RED) == AQA_OK);
    CHECK_EQ_INT(count(im, RED), 12);
    CHECK(is(im, 1, 1, RED) && is(im, 4, 3, RED) && !is(im, 5, 3, RED) && !is(im, 4, 4, RED));

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    double tri[] = {0, 0, 8, 0, 0, 8}; /* row y: x in [0, 8 - y): 8 + 7 + ... + 1 */
    CHECK(aqa_canvas_polygon(im, tri, 3, RED) == AQA_OK);
    CHECK_EQ_INT(count(im, RED), 36);
    CHECK(is(im, 7, 0, RED) && !is(im, 8, 0, RED) && is(im, 0, 7, RED) && !is(im, 1, 7, RED));

    /* concave U: a bar over two legs, the gap between the legs stays empty */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    double u[] = {0, 0, 6, 0, 6, 6, 4, 6, 4, 2, 2, 2, 2, 6, 0, 6};
    CHECK(aqa_canvas_polygon(im, u, 8, RED) == AQA_OK);
    CHECK_EQ_INT(count(im, RED), 12 + 16);
    CHECK(is(im, 3, 1, RED) && !is(im, 3, 4, RED) && is(im, 1, 4, RED) && is(im, 5, 4, RED));

    CHECK(aqa_canvas_polygon(im, u, 2, RED) == AQA_EINVAL);
    CHECK(aqa_canvas_polygon(im, NULL, 4, RED) == AQA_EINVAL);
    aqa_image_free(im);
}

static void test_text(void) {
    aqa_image *im = blank(40, 30);
    aqa_canvas_text(im, 0, 0, "A", 1, RED);
    /* 'A' row 0 is .###. and row 4 is ##### */
    CHECK(!is(im, 0, 0, RED) && is(im, 1, 0, RED) && is(im, 3, 0, RED) && !is(im, 4, 0, RED));
    for (int x = 0; x < 5; x++) CHECK(is(im, x, 4, RED));
    CHECK(!is(im, 5, 4, RED)); /* spacing column */
    int n1 = count(im, RED);
    CHECK_EQ_INT(n1, 3 + 2 + 2 + 2 + 5 + 2 + 2);

    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_text(im, 10, 10, "A", 2, RED); /* every font pixel a 2x2 block */
    CHECK_EQ_INT(count(im, RED), 4 * n1);
    CHECK(is(im, 12, 10, RED) && is(im, 13, 11, RED) && !is(im, 10, 10, RED));

    /* vertical: (tx, ty) -> (x + ty, y + 4 - tx) for a 5-pixel-wide single glyph */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_text_vertical(im, 0, 0, "A", 1, RED);
    CHECK(is(im, 0, 3, RED) && is(im, 0, 2, RED) && is(im, 0, 1, RED) && !is(im, 0, 0, RED) &&
          !is(im, 0, 4, RED));
    for (int y = 0; y < 5; y++) CHECK(is(im, 4, y, RED));
    CHECK_EQ_INT(count(im, RED), n1);

    /* descender of 'g' reaches row 8; '\n' advances 10 rows */
    aqa_canvas_fill(im, AQA_RGB_BLACK);
    aqa_canvas_text(im, 0, 0, "g\ng", 1, RED);
    CHECK(is(im, 1, 8, RED) && is(im, 1, 18, RED));

    CHECK_EQ_INT(aqa_canvas_text_width("AB", 1), 11);
    CHECK_EQ_INT(aqa_canvas_text_width("AB\nCDE", 2), 34);
    CHECK_EQ_INT(aqa_canvas_text_height("AB", 1), 9);
    CHECK_EQ_INT(aqa_canvas_text_height("AB\nC", 1), 19);
    CHECK_EQ_INT(aqa_canvas_text_width("", 1), 0);
    /* every printable glyph has ink except space; unknown bytes draw '?' */
    int empty = 0;
    for (int ch = 33; ch < 127; ch++) {
        const uint8_t *g = aqa_font_glyph(ch);
        int ink = 0;
        for (int r = 0; r < AQA_FONT_ROWS; r++) ink |= g[r];
        empty += ink == 0;
    }
    CHECK_EQ_INT(empty, 0);
    CHECK(aqa_font_glyph(200) == aqa_font_glyph('?'));
    aqa_image_free(im);
}

static void test_png_roundtrip(void) {
    aqa_image *im = blank(64, 40);
    aqa_canvas_fill(im, aqa_rgb_make(250, 250, 240));
    aqa_canvas_line(im, 2, 3, 60, 35, 2.5, aqa_rgb_make(20, 90, 200), 1);
    aqa_canvas_circle(im, 30, 20, 9, aqa_rgb_make(200, 30, 30), 1);
    aqa_canvas_text(im, 3, 28, "aqa 0.9", 1, AQA_RGB_BLACK);
    char path[] = "/tmp/aqa_test_canvas_XXXXXX.png";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK(aqa_image_save_png(im, path) == AQA_OK);
    aqa_image *back = aqa_image_load(path);
    CHECK_MSG(back != NULL, "%s", aqa_last_error());
    if (back) {
        CHECK(back->width == 64 && back->height == 40);
        CHECK(memcmp(back->data, im->data, (size_t)64 * 40 * 3) == 0);
    }
    unlink(path);
    aqa_image_free(back);
    aqa_image_free(im);
}

static void test_plot_ticks(void) {
    double t[64], step;
    int n = aqa_plot_ticks(0, 1, 5, t, 64, &step);
    CHECK_EQ_INT(n, 6);
    CHECK_NEAR(step, 0.2, 1e-12);
    CHECK_NEAR(t[5], 1.0, 1e-12);
    n = aqa_plot_ticks(0, 95, 8, t, 64, &step);
    CHECK_EQ_INT(n, 10); /* 0, 10, ..., 90 */
    CHECK_NEAR(step, 10, 1e-12);
    n = aqa_plot_ticks(-0.3, 0.7, 5, t, 64, &step);
    CHECK_EQ_INT(n, 5); /* -0.2, 0, 0.2, 0.4, 0.6 */
    CHECK(t[1] == 0.0);
    CHECK_NEAR(t[0], -0.2, 1e-12);
    CHECK_EQ_INT(aqa_plot_ticks(1, 1, 5, t, 64, &step), 0);
}

static void test_plot_render(void) {
    aqa_plot *p = aqa_plot_new();
    const aqa_rgb blue = {31, 119, 180}, green = {44, 160, 44};
    double y[5] = {0.1, 0.5, NAN, 0.7, 0.2};
    CHECK(aqa_plot_title(p, "test plot") == AQA_OK);
    CHECK(aqa_plot_xlabel(p, "frame") == AQA_OK);
    CHECK(aqa_plot_ylabel(p, "p") == AQA_OK);
    CHECK(aqa_plot_ylim(p, 0, 1) == AQA_OK);
    CHECK(aqa_plot_ylim(p, 1, 0) == AQA_EINVAL);
    CHECK(aqa_plot_line(p, NULL, y, 5, blue, 2, "prob") == AQA_OK);
    CHECK(aqa_plot_hline(p, 0.5, RED, 1, 0, "half") == AQA_OK);
    CHECK(aqa_plot_vline(p, 2, green, 3, 1, "boundary") == AQA_OK);
    CHECK(aqa_plot_vline(p, 3, green, 3, 1, "boundary") == AQA_OK);
    aqa_image *im = aqa_plot_render(p, 400, 240);
    CHECK_MSG(im != NULL, "%s", aqa_last_error());
    if (im) {
        /* the horizontal marker is snapped to a pixel row: one row holds most of the width in
         * exact red (the series and the boundaries cross it in a few places) */
        int best = 0;
        for (int r = 0; r < im->height; r++) {
            int n = 0;
            for (int x = 0; x < im->width; x++) n += is(im, x, r, RED);
            if (n > best) best = n;
        }
        CHECK_MSG(best > 250, "best red row has %d pixels", best);
        CHECK(count(im, blue) > 50);
        CHECK(count(im, green) > 50);
        CHECK(is(im, 0, 0, AQA_RGB_WHITE) && is(im, 399, 239, AQA_RGB_WHITE));
    }
    CHECK(aqa_plot_render(p, 30, 20) == NULL && aqa_last_status() == AQA_EINVAL);
    /* a panel drawn into part of a larger image leaves the rest alone */
    aqa_image *big = blank(500, 300);
    CHECK(aqa_plot_draw(p, big, 50, 30, 400, 240) == AQA_OK);
    CHECK(is(big, 49, 100, AQA_RGB_BLACK) && is(big, 50, 30, AQA_RGB_WHITE) &&
          is(big, 449, 269, AQA_RGB_WHITE) && is(big, 450, 100, AQA_RGB_BLACK));
    if (im) CHECK(memcmp(big->data + ((size_t)100 * 500 + 50) * 3, im->data + (size_t)70 * 400 * 3, 400 * 3) == 0);
    aqa_image_free(big);
    aqa_image_free(im);
    aqa_plot_free(p);

    /* scatter with auto limits; an empty plot still renders */
    aqa_plot *q = aqa_plot_new();
    double xs[3] = {40, 60, 80}, ys[3] = {45, 58, 85};
    CHECK(aqa_plot_scatter(q, xs, ys, 3, blue, 4, "videos") == AQA_OK);
    aqa_image *sc = aqa_plot_render(q, 300, 300);
    CHECK(sc != NULL && count(sc, blue) >= 3 * 30);
    aqa_image_free(sc);
    aqa_plot_free(q);
    aqa_plot *e = aqa_plot_new();
    aqa_image *ei = aqa_plot_render(e, 200, 150);
    CHECK(ei != NULL);
    aqa_image_free(ei);
    aqa_plot_free(e);
}

int main(void) {
    RUN(test_fill_pixel_rect);
    RUN(test_lines);
    RUN(test_circles_ellipses);
    RUN(test_polygons);
    RUN(test_text);
    RUN(test_png_roundtrip);
    RUN(test_plot_ticks);
    RUN(test_plot_render);
    return test_finish();
}
