/* plot.c: the chart helper of plot.h, built on the canvas primitives.
 *
 * Drawing order: white background, plot-area contents (grid, elements) rendered into their own
 * small image so they are clipped to the axes for free, that image copied in, then the frame,
 * ticks, tick labels, axis labels, title and legend around and over it. */
#include "eval/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum el_kind { EL_LINE, EL_SCATTER, EL_VLINE, EL_HLINE, EL_TEXT } el_kind;

typedef struct element {
    el_kind kind;
    double *x, *y; /* n points (lines, scatter); vline uses x[0], hline y[0], text x[0], y[0] */
    int n;         /* number of points */
    aqa_rgb c;     /* colour */
    double width;  /* line width, or scatter radius */
    int dashed;    /* marker lines: dashed */
    char *label;   /* legend label or NULL; the text of EL_TEXT */
} element;

struct aqa_plot {
    char *title, *xlabel, *ylabel; /* NULL when unset */
    int has_xlim, has_ylim;        /* fixed limits given */
    double xlo, xhi, ylo, yhi;     /* the fixed limits */
    int grid;                      /* light grid lines at the ticks */
    aqa_legend_pos legend;         /* legend corner */
    int title_scale, text_scale;   /* font scales */
    element *el;                   /* elements in drawing order */
    int n_el, cap_el;              /* count and capacity of el */
};

static const aqa_rgb ink = {40, 40, 40};
static const aqa_rgb grid_rgb = {228, 228, 228};

aqa_plot *aqa_plot_new(void) {
    aqa_plot *p = calloc(1, sizeof *p);
    if (!p) {
        aqa_fail(AQA_ENOMEM, "aqa_plot_new: out of memory");
        return NULL;
    }
    p->grid = 1;
    p->legend = AQA_LEGEND_UPPER_RIGHT;
    p->title_scale = 2;
    p->text_scale = 1;
    return p;
}

void aqa_plot_free(aqa_plot *p) {
    if (!p) return;
    for (int i = 0; i < p->n_el; i++) {
        free(p->el[i].x);
        free(p->el[i].y);
        free(p->el[i].label);
    }
    free(p->el);
    free(p->title);
    free(p->xlabel);
    free(p->ylabel);
    free(p);
}

static aqa_status set_str(char **dst, const char *s, const char *what) {
    char *copy = NULL;
    if (s && !(copy = strdup(s))) return aqa_fail(AQA_ENOMEM, "aqa_plot: out of memory for %s", what);
    free(*dst);
    *dst = copy;
    return AQA_OK;
}

aqa_status aqa_plot_title(aqa_plot *p, const char *s) {
    return p ? set_str(&p->title, s, "title") : aqa_fail(AQA_EINVAL, "aqa_plot_title: NULL plot");
}
aqa_status aqa_plot_xlabel(aqa_plot *p, const char *s) {
    return p ? set_str(&p->xlabel, s, "x label") : aqa_fail(AQA_EINVAL, "aqa_plot_xlabel: NULL plot");
}
aqa_status aqa_plot_ylabel(aqa_plot *p, const char *s) {
    return p ? set_str(&p->ylabel, s, "y label") : aqa_fail(AQA_EINVAL, "aqa_plot_ylabel: NULL plot");
}

aqa_status aqa_plot_xlim(aqa_plot *p, double lo, double hi) {
    if (!p || !(lo < hi) || !isfinite(lo) || !isfinite(hi))
        return aqa_fail(AQA_EINVAL, "aqa_plot_xlim: need finite lo < hi (got %g, %g)", lo, hi);
    p->has_xlim = 1, p->xlo = lo, p->xhi = hi;
    return AQA_OK;
}

aqa_status aqa_plot_ylim(aqa_plot *p, double lo, double hi) {
    if (!p || !(lo < hi) || !isfinite(lo) || !isfinite(hi))
        return aqa_fail(AQA_EINVAL, "aqa_plot_ylim: need finite lo < hi (got %g, %g)", lo, hi);
    p->has_ylim = 1, p->ylo = lo, p->yhi = hi;
    return AQA_OK;
}

void aqa_plot_grid(aqa_plot *p, int on) {
    if (p) p->grid = on;
}
void aqa_plot_legend(aqa_plot *p, aqa_legend_pos pos) {
    if (p) p->legend = pos;
}
void aqa_plot_font_scale(aqa_plot *p, int title_scale, int text_scale) {
    if (!p) return;
    p->title_scale = title_scale < 1 ? 1 : title_scale;
    p->text_scale = text_scale < 1 ? 1 : text_scale;
}

/* Appends an element with copies of its arrays and label. */
static aqa_status add(aqa_plot *p, el_kind kind, const double *x, const double *y, int n, aqa_rgb c,
                      double width, int dashed, const char *label) {
    if (!p || n < 1 || !y) return aqa_fail(AQA_EINVAL, "aqa_plot: NULL plot or data, or n = %d", n);
    if (p->n_el == p->cap_el) {
        int cap = p->cap_el ? 2 * p->cap_el : 8;
        element *el = realloc(p->el, sizeof(element) * cap);
        if (!el) return aqa_fail(AQA_ENOMEM, "aqa_plot: out of memory");
        p->el = el, p->cap_el = cap;
    }
    element e = {kind, malloc(sizeof(double) * n), malloc(sizeof(double) * n), n, c, width, dashed, NULL};
    if (label) e.label = strdup(label);
    if (!e.x || !e.y || (label && !e.label)) {
        free(e.x), free(e.y), free(e.label);
        return aqa_fail(AQA_ENOMEM, "aqa_plot: out of memory for %d points", n);
    }
    for (int i = 0; i < n; i++) e.x[i] = x ? x[i] : i;
    memcpy(e.y, y, sizeof(double) * n);
    p->el[p->n_el++] = e;
    return AQA_OK;
}

aqa_status aqa_plot_line(aqa_plot *p, const double *x, const double *y, int n, aqa_rgb c,
                         double width, const char *label) {
    return add(p, EL_LINE, x, y, n, c, width > 0 ? width : 1, 0, label);
}

aqa_status aqa_plot_scatter(aqa_plot *p, const double *x, const double *y, int n, aqa_rgb c,
                            double radius, const char *label) {
    return add(p, EL_SCATTER, x, y, n, c, radius > 0 ? radius : 2, 0, label);
}

aqa_status aqa_plot_vline(aqa_plot *p, double x, aqa_rgb c, double width, int dashed,
                          const char *label) {
    double y = NAN;
    return add(p, EL_VLINE, &x, &y, 1, c, width > 0 ? width : 1, dashed, label);
}

aqa_status aqa_plot_hline(aqa_plot *p, double y, aqa_rgb c, double width, int dashed,
                          const char *label) {
    double x = NAN;
    return add(p, EL_HLINE, &x, &y, 1, c, width > 0 ? width : 1, dashed, label);
}

aqa_status aqa_plot_text(aqa_plot *p, double x, double y, const char *text, aqa_rgb c) {
    if (!text) return aqa_fail(AQA_EINVAL, "aqa_plot_text: NULL text");
    return add(p, EL_TEXT, &x, &y, 1, c, 0, 0, text);
}

int aqa_plot_ticks(double lo, double hi, int target, double *ticks, int max, double *step_out) {
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi) || target < 1) return 0;
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
    if (step_out) *step_out = step;
    int n = 0;
    for (double k = ceil(lo / step - 1e-9); n < max; k += 1) {
        double t = k * step;
        if (t > hi + step * 1e-9) break;
        if (fabs(t) < step * 1e-9) t = 0; /* no "-0" labels */
        ticks[n++] = t;
    }
    return n;
}

static void format_tick(char *buf, size_t n, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 8) dec = 8;
    snprintf(buf, n, "%.*f", dec, v);
    if (strcmp(buf, "-0") == 0 || (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)))
        memmove(buf, buf + 1, strlen(buf)); /* "-0.00" from rounding: drop the sign */
}

/* Data range of the elements along one axis (0: x, 1: y); returns 0 when there is none. */
static int data_range(const aqa_plot *p, int axis, double *lo, double *hi) {
    int found = 0;
    for (int i = 0; i < p->n_el; i++) {
        const element *e = &p->el[i];
        if ((e->kind == EL_VLINE && axis == 1) || (e->kind == EL_HLINE && axis == 0)) continue;
        const double *v = axis == 0 ? e->x : e->y;
        for (int k = 0; k < e->n; k++) {
            if (!isfinite(v[k])) continue;
            if (!found || v[k] < *lo) *lo = v[k];
            if (!found || v[k] > *hi) *hi = v[k];
            found = 1;
        }
    }
    return found;
}

static void limits(const aqa_plot *p, int axis, double *lo, double *hi) {
    if (axis == 0 && p->has_xlim) {
        *lo = p->xlo, *hi = p->xhi;
        return;
    }
    if (axis == 1 && p->has_ylim) {
        *lo = p->ylo, *hi = p->yhi;
        return;
    }
    if (!data_range(p, axis, lo, hi)) {
        *lo = 0, *hi = 1;
        return;
    }
    if (*hi == *lo) {
        double d = *lo != 0 ? fabs(*lo) * 0.1 : 0.5;
        *lo -= d, *hi += d;
        return;
    }
    double m = (*hi - *lo) * 0.04;
    *lo -= m, *hi += m;
}

/* Mapping from data to pixel coordinates of the plot area (0..w-1, 0..h-1). */
typedef struct mapping {
    double xlo, xhi, ylo, yhi; /* data limits */
    int w, h;                  /* area size */
} mapping;

static double map_x(const mapping *m, double x) { return (x - m->xlo) / (m->xhi - m->xlo) * (m->w - 1); }
static double map_y(const mapping *m, double y) {
    return (m->h - 1) - (y - m->ylo) / (m->yhi - m->ylo) * (m->h - 1);
}

/* Keeps far-off points finite and bounded before drawing (the canvas clips the rest). */
static double bound(double v) { return v < -1e5 ? -1e5 : v > 1e5 ? 1e5 : v; }

static void draw_elements(const aqa_plot *p, aqa_image *area, const mapping *m) {
    for (int i = 0; i < p->n_el; i++) {
        const element *e = &p->el[i];
        switch (e->kind) {
        case EL_LINE:
            for (int k = 0; k + 1 < e->n; k++) {
                if (!isfinite(e->x[k]) || !isfinite(e->y[k]) || !isfinite(e->x[k + 1]) ||
                    !isfinite(e->y[k + 1]))
                    continue;
                aqa_canvas_line(area, bound(map_x(m, e->x[k])), bound(map_y(m, e->y[k])),
                                bound(map_x(m, e->x[k + 1])), bound(map_y(m, e->y[k + 1])), e->width,
                                e->c, 1);
            }
            if (e->n == 1 && isfinite(e->x[0]) && isfinite(e->y[0]))
                aqa_canvas_circle(area, bound(map_x(m, e->x[0])), bound(map_y(m, e->y[0])), e->width,
                                  e->c, 1);
            break;
        case EL_SCATTER:
            for (int k = 0; k < e->n; k++)
                if (isfinite(e->x[k]) && isfinite(e->y[k]))
                    aqa_canvas_circle(area, bound(map_x(m, e->x[k])), bound(map_y(m, e->y[k])),
                                      e->width, e->c, 1);
            break;
        case EL_VLINE:
        case EL_HLINE: {
            double x0, y0, x1, y1;
            /* marker lines snap so they stay crisp: odd widths to pixel centres, even widths
             * to the edges between pixels */
            double off = ((long)floor(e->width + 0.5)) % 2 == 0 ? 0.5 : 0.0;
            if (e->kind == EL_VLINE) {
                if (!isfinite(e->x[0])) break;
                x0 = x1 = floor(bound(map_x(m, e->x[0])) - off + 0.5) + off, y0 = 0, y1 = m->h - 1;
            } else {
                if (!isfinite(e->y[0])) break;
                y0 = y1 = floor(bound(map_y(m, e->y[0])) - off + 0.5) + off, x0 = 0, x1 = m->w - 1;
            }
            if (e->dashed)
                aqa_canvas_dashed_line(area, x0, y0, x1, y1, e->width, 6, 4, e->c, 1);
            else
                aqa_canvas_line(area, x0, y0, x1, y1, e->width, e->c, 1);
            break;
        }
        case EL_TEXT:
            if (isfinite(e->x[0]) && isfinite(e->y[0]))
                aqa_canvas_text(area, (int)lround(bound(map_x(m, e->x[0]))),
                                (int)lround(bound(map_y(m, e->y[0]))), e->label, p->text_scale, e->c);
            break;
        }
    }
}

/* Legend entries: labelled elements, each (label, colour, kind) once. */
static int legend_entries(const aqa_plot *p, const element **out, int max) {
    int n = 0;
    for (int i = 0; i < p->n_el && n < max; i++) {
        const element *e = &p->el[i];
        if (!e->label || e->kind == EL_TEXT) continue;
        int dup = 0;
        for (int k = 0; k < n && !dup; k++)
            dup = strcmp(out[k]->label, e->label) == 0 && out[k]->kind == e->kind &&
                  memcmp(&out[k]->c, &e->c, sizeof e->c) == 0;
        if (!dup) out[n++] = e;
    }
    return n;
}

/* Size of the legend box (0 x 0 when there is nothing to show). */
static void legend_size(const aqa_plot *p, int *bw, int *bh) {
    const element *ent[32];
    int n = p->legend == AQA_LEGEND_NONE ? 0 : legend_entries(p, ent, 32);
    int s = p->text_scale, tw = 0;
    for (int i = 0; i < n; i++) {
        int w = aqa_canvas_text_width(ent[i]->label, s);
        if (w > tw) tw = w;
    }
    *bw = n ? 5 * s + 22 * s + 5 * s + tw + 5 * s : 0;
    *bh = n ? 5 * s + n * 11 * s - 2 * s + 5 * s : 0;
}

static void draw_legend(const aqa_plot *p, aqa_image *im, int ax, int ay, int aw, int ah) {
    const element *ent[32];
    int n = p->legend == AQA_LEGEND_NONE ? 0 : legend_entries(p, ent, 32);
    if (n == 0) return;
    int s = p->text_scale, row = 11 * s, sw = 22 * s, pad = 5 * s, bw, bh;
    legend_size(p, &bw, &bh);
    int right = p->legend == AQA_LEGEND_UPPER_RIGHT || p->legend == AQA_LEGEND_LOWER_RIGHT;
    int upper = p->legend != AQA_LEGEND_LOWER_RIGHT && p->legend != AQA_LEGEND_LOWER_LEFT;
    int bx = right ? ax + aw - bw - 8 : ax + 8, by = upper ? ay + 8 : ay + ah - bh - 8;
    if (p->legend == AQA_LEGEND_OUTSIDE_RIGHT) bx = ax + aw + 12, by = ay;
    aqa_canvas_rect(im, bx, by, bw, bh, AQA_RGB_WHITE);
    aqa_canvas_rect_outline(im, bx, by, bw, bh, 1, aqa_rgb_make(190, 190, 190));
    for (int i = 0; i < n; i++) {
        const element *e = ent[i];
        int ty = by + pad + i * row, cy = ty + 3 * s, sx = bx + pad;
        if (e->kind == EL_SCATTER) {
            aqa_canvas_circle(im, sx + sw / 2.0, cy, e->width < 4 * s ? e->width : 4 * s, e->c, 1);
        } else if (e->dashed) {
            aqa_canvas_dashed_line(im, sx, cy, sx + sw, cy, e->width, 6, 4, e->c, 1);
        } else {
            aqa_canvas_line(im, sx, cy, sx + sw, cy, e->width, e->c, 1);
        }
        aqa_canvas_text(im, sx + sw + pad, ty, e->label, s, ink);
    }
}

aqa_status aqa_plot_draw(const aqa_plot *p, aqa_image *im, int X, int Y, int W, int H) {
    if (!p || !im || !im->data) return aqa_fail(AQA_EINVAL, "aqa_plot_draw: NULL plot or image");
    int s = p->text_scale, th = AQA_FONT_ROWS * s, cap = AQA_FONT_ASCENT * s;
    double xlo, xhi, ylo, yhi, xstep, ystep, xt[64], yt[64];
    limits(p, 0, &xlo, &xhi);
    limits(p, 1, &ylo, &yhi);
    int nx = aqa_plot_ticks(xlo, xhi, W > 500 ? 8 : 5, xt, 64, &xstep);
    int ny = aqa_plot_ticks(ylo, yhi, H > 400 ? 8 : 5, yt, 64, &ystep);
    char buf[64];
    int ylab_w = 0, last_xlab_w = 0;
    for (int i = 0; i < ny; i++) {
        format_tick(buf, sizeof buf, yt[i], ystep);
        int w = aqa_canvas_text_width(buf, s);
        if (w > ylab_w) ylab_w = w;
    }
    if (nx > 0) {
        format_tick(buf, sizeof buf, xt[nx - 1], xstep);
        last_xlab_w = aqa_canvas_text_width(buf, s);
    }
    int title_h = p->title ? aqa_canvas_text_height(p->title, p->title_scale) : 0;
    int left = 8 + (p->ylabel ? th + 8 : 0) + ylab_w + 8;
    int bottom = 6 + th + 6 + (p->xlabel ? th + 8 : 0);
    int top = p->title ? title_h + 16 : 12;
    int right = last_xlab_w / 2 + 10, lw, lh;
    legend_size(p, &lw, &lh);
    if (p->legend == AQA_LEGEND_OUTSIDE_RIGHT && lw > 0) right = lw + 20;
    int ax = X + left, ay = Y + top, aw = W - left - right, ah = H - top - bottom;
    if (aw < 16 || ah < 16)
        return aqa_fail(AQA_EINVAL, "aqa_plot_draw: %dx%d is too small for the axes and labels", W, H);

    aqa_canvas_rect(im, X, Y, W, H, AQA_RGB_WHITE);
    aqa_image *area = aqa_image_new(aw, ah);
    if (!area) return aqa_last_status();
    aqa_canvas_fill(area, AQA_RGB_WHITE);
    mapping m = {xlo, xhi, ylo, yhi, aw, ah};
    if (p->grid) {
        for (int i = 0; i < nx; i++) {
            double px = floor(map_x(&m, xt[i]) + 0.5);
            aqa_canvas_line(area, px, 0, px, ah - 1, 1, grid_rgb, 0);
        }
        for (int i = 0; i < ny; i++) {
            double py = floor(map_y(&m, yt[i]) + 0.5);
            aqa_canvas_line(area, 0, py, aw - 1, py, 1, grid_rgb, 0);
        }
    }
    draw_elements(p, area, &m);
    for (int y = 0; y < ah; y++) {
        if (ay + y < 0 || ay + y >= im->height) continue;
        for (int x = 0; x < aw; x++) aqa_canvas_pixel(im, ax + x, ay + y, aqa_canvas_get(area, x, y));
    }
    aqa_image_free(area);

    aqa_canvas_rect_outline(im, ax - 1, ay - 1, aw + 2, ah + 2, 1, ink);
    for (int i = 0; i < nx; i++) {
        int px = ax + (int)floor(map_x(&m, xt[i]) + 0.5);
        aqa_canvas_rect(im, px, ay + ah + 1, 1, 4, ink);
        format_tick(buf, sizeof buf, xt[i], xstep);
        aqa_canvas_text(im, px - aqa_canvas_text_width(buf, s) / 2, ay + ah + 8, buf, s, ink);
    }
    for (int i = 0; i < ny; i++) {
        int py = ay + (int)floor(map_y(&m, yt[i]) + 0.5);
        aqa_canvas_rect(im, ax - 5, py, 4, 1, ink);
        format_tick(buf, sizeof buf, yt[i], ystep);
        aqa_canvas_text(im, ax - 8 - aqa_canvas_text_width(buf, s), py - cap / 2, buf, s, ink);
    }
    if (p->title)
        aqa_canvas_text(im, ax + (aw - aqa_canvas_text_width(p->title, p->title_scale)) / 2, Y + 8,
                        p->title, p->title_scale, ink);
    if (p->xlabel)
        aqa_canvas_text(im, ax + (aw - aqa_canvas_text_width(p->xlabel, s)) / 2, ay + ah + 8 + th + 8,
                        p->xlabel, s, ink);
    if (p->ylabel)
        aqa_canvas_text_vertical(im, X + 8, ay + (ah - aqa_canvas_text_width(p->ylabel, s)) / 2,
                                 p->ylabel, s, ink);
    draw_legend(p, im, ax, ay, aw, ah);
    return AQA_OK;
}

aqa_image *aqa_plot_render(const aqa_plot *p, int w, int h) {
    aqa_image *im = aqa_image_new(w, h);
    if (!im) return NULL;
    if (aqa_plot_draw(p, im, 0, 0, w, h) != AQA_OK) {
        aqa_image_free(im);
        return NULL;
    }
    return im;
}

aqa_status aqa_plot_save_png(const aqa_plot *p, int w, int h, const char *path) {
    aqa_image *im = aqa_plot_render(p, w, h);
    if (!im) return aqa_last_status();
    aqa_status st = aqa_image_save_png(im, path);
    aqa_image_free(im);
    return st;
}
