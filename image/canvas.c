/* canvas.c: raster primitives on RGB images (see canvas.h for the coordinate convention).
 *
 * Shapes are drawn by visiting the pixels of their bounding box (clipped to the image) and
 * testing each pixel centre, which keeps every primitive short and exact at the edges; figures
 * and synthetic frames are small enough that this costs nothing noticeable. */
#include "image/canvas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int in_image(const aqa_image *im, int x, int y) {
    return im && im->data && x >= 0 && y >= 0 && x < im->width && y < im->height;
}

void aqa_canvas_fill(aqa_image *im, aqa_rgb c) {
    if (!im || !im->data) return;
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++) {
        im->data[3 * i + 0] = c.r;
        im->data[3 * i + 1] = c.g;
        im->data[3 * i + 2] = c.b;
    }
}

void aqa_canvas_pixel(aqa_image *im, int x, int y, aqa_rgb c) {
    if (!in_image(im, x, y)) return;
    uint8_t *p = im->data + aqa_image_offset(im, x, y);
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

static uint8_t mix(uint8_t a, uint8_t b, double t) {
    return (uint8_t)floor(a + (b - a) * t + 0.5);
}

void aqa_canvas_blend(aqa_image *im, int x, int y, aqa_rgb c, double alpha) {
    if (!in_image(im, x, y) || !(alpha > 0)) return;
    if (alpha >= 1) {
        aqa_canvas_pixel(im, x, y, c);
        return;
    }
    uint8_t *p = im->data + aqa_image_offset(im, x, y);
    p[0] = mix(p[0], c.r, alpha);
    p[1] = mix(p[1], c.g, alpha);
    p[2] = mix(p[2], c.b, alpha);
}

aqa_rgb aqa_canvas_get(const aqa_image *im, int x, int y) {
    if (!in_image(im, x, y)) return AQA_RGB_BLACK;
    const uint8_t *p = im->data + aqa_image_offset(im, x, y);
    return aqa_rgb_make(p[0], p[1], p[2]);
}

void aqa_canvas_rect(aqa_image *im, int x, int y, int w, int h, aqa_rgb c) {
    if (!im || !im->data || w <= 0 || h <= 0) return;
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > im->width ? im->width : x + w, y1 = y + h > im->height ? im->height : y + h;
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) aqa_canvas_pixel(im, xx, yy, c);
}

void aqa_canvas_vgradient(aqa_image *im, int x, int y, int w, int h, aqa_rgb top, aqa_rgb bottom) {
    if (!im || !im->data || w <= 0 || h <= 0) return;
    for (int r = 0; r < h; r++) {
        double t = h > 1 ? (double)r / (h - 1) : 0;
        aqa_rgb c = aqa_rgb_make(mix(top.r, bottom.r, t), mix(top.g, bottom.g, t), mix(top.b, bottom.b, t));
        aqa_canvas_rect(im, x, y + r, w, 1, c);
    }
}

void aqa_canvas_rect_outline(aqa_image *im, int x, int y, int w, int h, int thickness, aqa_rgb c) {
    if (w <= 0 || h <= 0 || thickness <= 0) return;
    if (2 * thickness >= w || 2 * thickness >= h) {
        aqa_canvas_rect(im, x, y, w, h, c);
        return;
    }
    aqa_canvas_rect(im, x, y, w, thickness, c);
    aqa_canvas_rect(im, x, y + h - thickness, w, thickness, c);
    aqa_canvas_rect(im, x, y + thickness, thickness, h - 2 * thickness, c);
    aqa_canvas_rect(im, x + w - thickness, y + thickness, thickness, h - 2 * thickness, c);
}

/* Integer pixel box [*x0, *x1] x [*y0, *y1] covering [lo, hi] grown by pad, clipped; 0 if empty. */
static int clip_box(const aqa_image *im, double lox, double loy, double hix, double hiy, double pad,
                    int *x0, int *y0, int *x1, int *y1) {
    if (!im || !im->data) return 0;
    double a = floor(lox - pad), b = floor(loy - pad), c = ceil(hix + pad), d = ceil(hiy + pad);
    if (!(a <= c && b <= d)) return 0; /* also rejects NaN */
    if (c < 0 || d < 0 || a > im->width - 1 || b > im->height - 1) return 0;
    *x0 = a < 0 ? 0 : (int)a;
    *y0 = b < 0 ? 0 : (int)b;
    *x1 = c > im->width - 1 ? im->width - 1 : (int)c;
    *y1 = d > im->height - 1 ? im->height - 1 : (int)d;
    return 1;
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* Distance from (px, py) to the segment (x0, y0)-(x1, y1). */
static double seg_dist(double px, double py, double x0, double y0, double x1, double y1) {
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = x0 + t * dx - px, ey = y0 + t * dy - py;
    return sqrt(ex * ex + ey * ey);
}

static void bresenham(aqa_image *im, int x0, int y0, int x1, int y1, aqa_rgb c) {
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    /* bound the walk to the image so a huge off-screen segment does not loop for long */
    long steps = (long)dx - dy + 1;
    for (long i = 0; i < steps; i++) {
        aqa_canvas_pixel(im, x0, y0, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

void aqa_canvas_line(aqa_image *im, double x0, double y0, double x1, double y1, double width,
                     aqa_rgb c, int antialias) {
    if (!im || !im->data || !(width > 0)) return;
    if (!antialias && width <= 1) {
        /* clip far-away end points coarsely first: Bresenham walks every step */
        double lim = 4.0 * (im->width + im->height);
        if (fabs(x0) > lim || fabs(y0) > lim || fabs(x1) > lim || fabs(y1) > lim) {
            aqa_canvas_line(im, x0, y0, x1, y1, 1.0001, c, 0);
            return;
        }
        bresenham(im, (int)floor(x0 + 0.5), (int)floor(y0 + 0.5), (int)floor(x1 + 0.5),
                  (int)floor(y1 + 0.5), c);
        return;
    }
    double hw = width / 2, pad = hw + 1;
    int bx0, by0, bx1, by1;
    if (!clip_box(im, fmin(x0, x1), fmin(y0, y1), fmax(x0, x1), fmax(y0, y1), pad, &bx0, &by0, &bx1,
                  &by1))
        return;
    /* thin antialiased lines keep a one-pixel footprint and fade with their width */
    double eff = hw < 0.5 ? 0.5 : hw, fade = hw < 0.5 ? width : 1.0;
    for (int y = by0; y <= by1; y++)
        for (int x = bx0; x <= bx1; x++) {
            double d = seg_dist(x, y, x0, y0, x1, y1);
            if (antialias)
                aqa_canvas_blend(im, x, y, c, clamp01(eff + 0.5 - d) * fade);
            else if (d <= hw)
                aqa_canvas_pixel(im, x, y, c);
        }
}

void aqa_canvas_dashed_line(aqa_image *im, double x0, double y0, double x1, double y1, double width,
                            double dash, double gap, aqa_rgb c, int antialias) {
    double dx = x1 - x0, dy = y1 - y0, len = sqrt(dx * dx + dy * dy);
    if (!(dash > 0) || !(gap >= 0) || !(len > 0)) {
        aqa_canvas_line(im, x0, y0, x1, y1, width, c, antialias);
        return;
    }
    if (len / (dash + gap) > 1e6) return; /* absurd request: nothing sensible to draw */
    for (double s = 0; s < len; s += dash + gap) {
        double e = s + dash < len ? s + dash : len;
        aqa_canvas_line(im, x0 + dx * s / len, y0 + dy * s / len, x0 + dx * e / len, y0 + dy * e / len,
                        width, c, antialias);
    }
}

void aqa_canvas_circle(aqa_image *im, double cx, double cy, double r, aqa_rgb c, int antialias) {
    int x0, y0, x1, y1;
    if (!(r >= 0) || !clip_box(im, cx - r, cy - r, cx + r, cy + r, 1, &x0, &y0, &x1, &y1)) return;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double dx = x - cx, dy = y - cy;
            if (antialias)
                aqa_canvas_blend(im, x, y, c, clamp01(r + 0.5 - sqrt(dx * dx + dy * dy)));
            else if (dx * dx + dy * dy <= r * r)
                aqa_canvas_pixel(im, x, y, c);
        }
}

void aqa_canvas_circle_alpha(aqa_image *im, double cx, double cy, double r, aqa_rgb c, double opacity) {
    int x0, y0, x1, y1;
    if (!(r >= 0) || !(opacity > 0) || !clip_box(im, cx - r, cy - r, cx + r, cy + r, 1, &x0, &y0, &x1, &y1))
        return;
    if (opacity > 1) opacity = 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double dx = x - cx, dy = y - cy;
            aqa_canvas_blend(im, x, y, c, opacity * clamp01(r + 0.5 - sqrt(dx * dx + dy * dy)));
        }
}

void aqa_canvas_ring(aqa_image *im, double cx, double cy, double r, double width, aqa_rgb c,
                     int antialias) {
    int x0, y0, x1, y1;
    double hw = width / 2;
    if (!(r >= 0) || !(width > 0) ||
        !clip_box(im, cx - r, cy - r, cx + r, cy + r, hw + 1, &x0, &y0, &x1, &y1))
        return;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double d = fabs(sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - r);
            if (antialias)
                aqa_canvas_blend(im, x, y, c, clamp01(hw + 0.5 - d));
            else if (d <= hw)
                aqa_canvas_pixel(im, x, y, c);
        }
}

void aqa_canvas_ellipse(aqa_image *im, double cx, double cy, double rx, double ry, double angle,
                        aqa_rgb c, int antialias) {
    int x0, y0, x1, y1;
    if (!(rx > 0) || !(ry > 0)) return;
    double m = rx > ry ? rx : ry;
    if (!clip_box(im, cx - m, cy - m, cx + m, cy + m, 1, &x0, &y0, &x1, &y1)) return;
    double ca = cos(angle), sa = sin(angle);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double dx = x - cx, dy = y - cy;
            double u = ca * dx + sa * dy, v = -sa * dx + ca * dy; /* ellipse's own axes */
            double q = (u / rx) * (u / rx) + (v / ry) * (v / ry);
            if (!antialias) {
                if (q <= 1) aqa_canvas_pixel(im, x, y, c);
                continue;
            }
            double s = sqrt(q);
            if (s == 0) {
                aqa_canvas_pixel(im, x, y, c);
                continue;
            }
            /* signed distance to the edge, first order: (s - 1) / |grad s| */
            double gx = u / (rx * rx * s), gy = v / (ry * ry * s);
            double d = (s - 1) / sqrt(gx * gx + gy * gy);
            aqa_canvas_blend(im, x, y, c, clamp01(0.5 - d));
        }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

aqa_status aqa_canvas_polygon(aqa_image *im, const double *xy, int n, aqa_rgb c) {
    if (!im || !im->data || !xy || n < 3)
        return aqa_fail(AQA_EINVAL, "aqa_canvas_polygon: need an image and at least 3 points (got %d)", n);
    double miny = xy[1], maxy = xy[1];
    for (int i = 1; i < n; i++) {
        if (xy[2 * i + 1] < miny) miny = xy[2 * i + 1];
        if (xy[2 * i + 1] > maxy) maxy = xy[2 * i + 1];
    }
    double *xs = malloc(sizeof(double) * n);
    if (!xs) return aqa_fail(AQA_ENOMEM, "aqa_canvas_polygon: out of memory for %d points", n);
    int ylo = (int)fmax(0, ceil(miny)), yhi = (int)fmin(im->height - 1, floor(maxy));
    for (int y = ylo; y <= yhi; y++) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            int j = (i + 1) % n;
            double xa = xy[2 * i], ya = xy[2 * i + 1], xb = xy[2 * j], yb = xy[2 * j + 1];
            /* half-open in y so a vertex shared by two edges counts once */
            if ((ya <= y && y < yb) || (yb <= y && y < ya)) xs[k++] = xa + (y - ya) * (xb - xa) / (yb - ya);
        }
        qsort(xs, k, sizeof(double), cmp_double);
        for (int i = 0; i + 1 < k; i += 2) {
            /* pixels with centre x in [xs[i], xs[i+1]) */
            double a = ceil(xs[i]), b = ceil(xs[i + 1]) - 1;
            if (a < 0) a = 0;
            if (b > im->width - 1) b = im->width - 1;
            for (int x = (int)a; x <= (int)b; x++) aqa_canvas_pixel(im, x, y, c);
        }
    }
    free(xs);
    return AQA_OK;
}

/* ---- text ---- */

/* Calls fn for every set font pixel of s: (column, row) in unscaled text coordinates. */
static void text_pixels(const char *s, void (*fn)(void *ctx, int tx, int ty), void *ctx) {
    int col = 0, line = 0;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '\n') {
            line++;
            col = 0;
            continue;
        }
        const uint8_t *g = aqa_font_glyph(*p);
        for (int r = 0; r < AQA_FONT_ROWS; r++)
            for (int k = 0; k < 5; k++)
                if (g[r] & (0x10 >> k)) fn(ctx, col * AQA_FONT_CELL_W + k, line * AQA_FONT_CELL_H + r);
        col++;
    }
}

typedef struct text_ctx {
    aqa_image *im; /* target */
    int x, y;      /* origin */
    int scale;     /* font pixel size */
    int w;         /* text width in font pixels (vertical text) */
    aqa_rgb c;     /* colour */
} text_ctx;

static void put_h(void *ctx, int tx, int ty) {
    text_ctx *t = ctx;
    aqa_canvas_rect(t->im, t->x + tx * t->scale, t->y + ty * t->scale, t->scale, t->scale, t->c);
}

static void put_v(void *ctx, int tx, int ty) {
    text_ctx *t = ctx; /* rotate (tx, ty) by 90 degrees counter-clockwise */
    aqa_canvas_rect(t->im, t->x + ty * t->scale, t->y + (t->w - 1 - tx) * t->scale, t->scale, t->scale,
                    t->c);
}

void aqa_canvas_text(aqa_image *im, int x, int y, const char *s, int scale, aqa_rgb c) {
    if (scale < 1) scale = 1;
    text_ctx t = {im, x, y, scale, 0, c};
    text_pixels(s, put_h, &t);
}

void aqa_canvas_text_vertical(aqa_image *im, int x, int y, const char *s, int scale, aqa_rgb c) {
    if (scale < 1) scale = 1;
    text_ctx t = {im, x, y, scale, aqa_canvas_text_width(s, 1), c};
    text_pixels(s, put_v, &t);
}

int aqa_canvas_text_width(const char *s, int scale) {
    int best = 0, cur = 0;
    for (const char *p = s; p && *p; p++) {
        if (*p == '\n') {
            cur = 0;
            continue;
        }
        cur++;
        if (cur > best) best = cur;
    }
    if (scale < 1) scale = 1;
    return best ? (best * AQA_FONT_CELL_W - 1) * scale : 0;
}

int aqa_canvas_text_height(const char *s, int scale) {
    if (!s || !*s) return 0;
    int lines = 1;
    for (const char *p = s; *p; p++) lines += *p == '\n';
    if (scale < 1) scale = 1;
    return ((lines - 1) * AQA_FONT_CELL_H + AQA_FONT_ROWS) * scale;
}
