/* canvas.h: a small raster drawing library on RGB aqa_images, for figures (see plot.h) and for
 * rendering the synthetic diving videos.
 *
 * Coordinates: pixel (x, y) is the unit square centred on the integer point (x, y); x grows to
 * the right, y downwards.  Shapes take double coordinates and cover the pixels whose centres lie
 * inside them (plain), or blend by the covered fraction estimated from the distance of the
 * centre to the edge (antialiased).  Everything is clipped to the image; nothing here fails on
 * out-of-range coordinates. */
#ifndef AQA_DATASETS_CANVAS_H
#define AQA_DATASETS_CANVAS_H

#include <stdint.h>

#include "image/image.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_rgb {
    uint8_t r, g, b; /* 0..255 per channel */
} aqa_rgb;

static inline aqa_rgb aqa_rgb_make(int r, int g, int b) {
    aqa_rgb c = {(uint8_t)r, (uint8_t)g, (uint8_t)b};
    return c;
}

#define AQA_RGB_BLACK aqa_rgb_make(0, 0, 0)
#define AQA_RGB_WHITE aqa_rgb_make(255, 255, 255)

/* Sets every pixel. */
void aqa_canvas_fill(aqa_image *im, aqa_rgb c);
/* Sets one pixel (ignored outside the image). */
void aqa_canvas_pixel(aqa_image *im, int x, int y, aqa_rgb c);
/* Mixes c into one pixel with weight alpha in [0, 1] (rounded to nearest). */
void aqa_canvas_blend(aqa_image *im, int x, int y, aqa_rgb c, double alpha);
/* Reads one pixel (black outside the image). */
aqa_rgb aqa_canvas_get(const aqa_image *im, int x, int y);

/* Filled axis-aligned rectangle of w x h pixels with top-left pixel (x, y). */
void aqa_canvas_rect(aqa_image *im, int x, int y, int w, int h, aqa_rgb c);
/* Filled rectangle shading linearly from `top` (first row) to `bottom` (last row): skies, water. */
void aqa_canvas_vgradient(aqa_image *im, int x, int y, int w, int h, aqa_rgb top, aqa_rgb bottom);
/* Rectangle outline `thickness` pixels wide, drawn inside the w x h box. */
void aqa_canvas_rect_outline(aqa_image *im, int x, int y, int w, int h, int thickness, aqa_rgb c);

/* Line segment of the given width with round ends.  Plain lines of width <= 1 are Bresenham
 * lines between the rounded end points; wider plain lines cover the pixels within width / 2 of
 * the segment; antialiased lines blend by coverage. */
void aqa_canvas_line(aqa_image *im, double x0, double y0, double x1, double y1, double width,
                     aqa_rgb c, int antialias);
/* The same segment drawn as dashes of length `dash` separated by `gap` (pixels). */
void aqa_canvas_dashed_line(aqa_image *im, double x0, double y0, double x1, double y1, double width,
                            double dash, double gap, aqa_rgb c, int antialias);

/* Filled disc: plain covers pixels with (x-cx)^2 + (y-cy)^2 <= r^2. */
void aqa_canvas_circle(aqa_image *im, double cx, double cy, double r, aqa_rgb c, int antialias);
/* Antialiased disc mixed in with the given opacity in [0, 1] (splashes, shadows, highlights). */
void aqa_canvas_circle_alpha(aqa_image *im, double cx, double cy, double r, aqa_rgb c, double opacity);
/* Circle outline of the given line width. */
void aqa_canvas_ring(aqa_image *im, double cx, double cy, double r, double width, aqa_rgb c,
                     int antialias);
/* Filled ellipse with semi-axes rx, ry, rotated by `angle` radians (x axis towards y axis). */
void aqa_canvas_ellipse(aqa_image *im, double cx, double cy, double rx, double ry, double angle,
                        aqa_rgb c, int antialias);

/* Filled polygon of n points (xy = x0, y0, x1, y1, ...), convex or concave, even-odd rule;
 * covers the pixels whose centres are inside.  EINVAL for n < 3 or NULL points, ENOMEM. */
aqa_status aqa_canvas_polygon(aqa_image *im, const double *xy, int n, aqa_rgb c);

/* Built-in bitmap font (printable ASCII; other bytes draw as '?'): glyphs 5 pixels wide, 7 rows
 * above the baseline plus 2 descender rows, in 6 x 10 cells.  Text is drawn with its top-left
 * cell corner at (x, y), each font pixel a scale x scale block; '\n' starts a new line. */
#define AQA_FONT_ROWS 9    /* rows per glyph (7 + 2 descender rows) */
#define AQA_FONT_ASCENT 7  /* rows above the baseline (capital height) */
#define AQA_FONT_CELL_W 6  /* horizontal advance */
#define AQA_FONT_CELL_H 10 /* line advance */
void aqa_canvas_text(aqa_image *im, int x, int y, const char *s, int scale, aqa_rgb c);
/* Text rotated 90 degrees counter-clockwise (reads bottom to top); (x, y) is the top-left of
 * its bounding box, which is text_height wide and text_width tall. */
void aqa_canvas_text_vertical(aqa_image *im, int x, int y, const char *s, int scale, aqa_rgb c);
/* Width in pixels of the longest line of s at this scale (no trailing spacing). */
int aqa_canvas_text_width(const char *s, int scale);
/* Height in pixels of s including descenders: ((lines - 1) * 10 + 9) * scale. */
int aqa_canvas_text_height(const char *s, int scale);

/* The font's glyph for character ch: AQA_FONT_ROWS rows, bit 4 (0x10) the leftmost column. */
const uint8_t *aqa_font_glyph(int ch);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_CANVAS_H */
