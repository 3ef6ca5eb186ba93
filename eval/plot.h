/* plot.h: simple 2-D charts drawn with the canvas: axes with ticks and numeric labels, line
 * series, scatter points, vertical/horizontal marker lines, text notes, a legend and a title,
 * rendered into a rectangle of an image (several panels per figure) or saved as a PNG.
 *
 *     ```c run
 *     double prob[96];
 *     for (int t = 0; t < 96; t++) prob[t] = exp(-(t - 41) * (t - 41) / 18.0);
 *     aqa_plot *p = aqa_plot_new();
 *     aqa_plot_title(p, "video 3: true 78.4, predicted 76.9");
 *     aqa_plot_line(p, NULL, prob, 96, aqa_rgb_make(31, 119, 180), 2, "boundary probability");
 *     aqa_plot_vline(p, 41, aqa_rgb_make(44, 160, 44), 2, 1, "true boundary");
 *     aqa_status st = aqa_plot_save_png(p, 800, 300, "fig4.png");
 *     aqa_plot_free(p);
 *     if (st != AQA_OK) return 1;
 *     ```
 *
 * Elements keep copies of their data and strings; the plot owns them. */
#ifndef AQA_DATASETS_PLOT_H
#define AQA_DATASETS_PLOT_H

#include "image/canvas.h"
#include "image/image.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_plot aqa_plot;

/* Where the legend box goes (AQA_LEGEND_NONE hides it). */
typedef enum aqa_legend_pos {
    AQA_LEGEND_UPPER_RIGHT = 0,
    AQA_LEGEND_UPPER_LEFT,
    AQA_LEGEND_LOWER_RIGHT,
    AQA_LEGEND_LOWER_LEFT,
    AQA_LEGEND_OUTSIDE_RIGHT, /* beside the axes, right of the plot area: never hides data */
    AQA_LEGEND_NONE
} aqa_legend_pos;

/* An empty plot (auto limits, grid on, legend upper right); NULL on no memory. */
aqa_plot *aqa_plot_new(void);
void aqa_plot_free(aqa_plot *p);

/* Labels (copied; NULL clears). */
aqa_status aqa_plot_title(aqa_plot *p, const char *title);
aqa_status aqa_plot_xlabel(aqa_plot *p, const char *label);
aqa_status aqa_plot_ylabel(aqa_plot *p, const char *label);
/* Fixed axis limits (lo < hi); without them the limits fit the data with a 4% margin. */
aqa_status aqa_plot_xlim(aqa_plot *p, double lo, double hi);
aqa_status aqa_plot_ylim(aqa_plot *p, double lo, double hi);
void aqa_plot_grid(aqa_plot *p, int on);
void aqa_plot_legend(aqa_plot *p, aqa_legend_pos pos);
/* Font scale of title (default 2) and of labels/ticks/legend (default 1). */
void aqa_plot_font_scale(aqa_plot *p, int title_scale, int text_scale);

/* Line series through n points (x NULL: 0, 1, ..., n-1); NaN y values break the line.
 * label NULL: not in the legend. */
aqa_status aqa_plot_line(aqa_plot *p, const double *x, const double *y, int n, aqa_rgb c,
                         double width, const char *label);
/* Filled circles of the given radius at the points. */
aqa_status aqa_plot_scatter(aqa_plot *p, const double *x, const double *y, int n, aqa_rgb c,
                            double radius, const char *label);
/* Full-height vertical line at x (dashed or solid); equal labels appear once in the legend. */
aqa_status aqa_plot_vline(aqa_plot *p, double x, aqa_rgb c, double width, int dashed,
                          const char *label);
/* Full-width horizontal line at y. */
aqa_status aqa_plot_hline(aqa_plot *p, double y, aqa_rgb c, double width, int dashed,
                          const char *label);
/* Text with its top-left corner at data point (x, y). */
aqa_status aqa_plot_text(aqa_plot *p, double x, double y, const char *text, aqa_rgb c);

/* Draws the plot into the w x h rectangle of `im` whose top-left pixel is (x, y), with a white
 * background.  EINVAL when the rectangle is too small for the axes. */
aqa_status aqa_plot_draw(const aqa_plot *p, aqa_image *im, int x, int y, int w, int h);
/* Renders a new w x h image of the plot. */
aqa_image *aqa_plot_render(const aqa_plot *p, int w, int h);
/* Renders and writes a PNG atomically. */
aqa_status aqa_plot_save_png(const aqa_plot *p, int w, int h, const char *path);

/* Tick positions a plot uses for [lo, hi]: steps of 1, 2 or 5 times a power of ten, about
 * `target` of them; writes at most max values to ticks, returns the count and the step. */
int aqa_plot_ticks(double lo, double hi, int target, double *ticks, int max, double *step);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_PLOT_H */
