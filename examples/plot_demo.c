/* plot_demo.c: draws the two kinds of figure examples/evaluate writes, from made-up data:
 *   fig4_demo.png     per-video frame-level boundary probabilities with true and predicted stage
 *                     boundaries and true/predicted scores (the paper's Fig. 4), one panel a video;
 *   scatter_demo.png  predicted against true scores with the y = x diagonal;
 *   canvas_demo.png   the drawing primitives the synthetic video generator can use (gradients,
 *                     thick antialiased lines, rotated ellipses, polygons, translucent discs).
 *
 * Usage: examples/plot_demo [--out DIR]   (default: the current folder) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "image/canvas.h"
#include "image/image.h"
#include "eval/plot.h"
#include "examples/cli.h"

/* Small deterministic generator for the made-up data. */
static double uniform(unsigned long long *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static double gaussian(unsigned long long *s) {
    double u = uniform(s) + 1e-12, v = uniform(s);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

#define FRAMES 96

static int fig4(const char *path) {
    const int panels = 3, pw = 1000, ph = 250;
    aqa_image *fig = aqa_image_new(pw, panels * ph);
    if (!fig) return 1;
    unsigned long long seed = 7;
    const char *names[3] = {"01_12", "03_40", "17_05"};
    const aqa_rgb blue = aqa_rgb_make(31, 119, 180), green = aqa_rgb_make(44, 160, 44),
                  red = aqa_rgb_make(214, 39, 40);
    for (int v = 0; v < panels; v++) {
        /* two true boundaries (take-off -> flight, flight -> entry), a predicted pair near them */
        double tb[2] = {20 + 10 * uniform(&seed), 62 + 12 * uniform(&seed)};
        double pb[2] = {tb[0] + 3 * gaussian(&seed), tb[1] + 3 * gaussian(&seed)};
        double prob[FRAMES];
        for (int t = 0; t < FRAMES; t++) {
            double a = exp(-0.5 * pow((t - pb[0]) / 2.5, 2)), b = exp(-0.5 * pow((t - pb[1]) / 2.5, 2));
            double x = 0.95 * fmax(a, b) + 0.04 * fabs(gaussian(&seed));
            prob[t] = x > 1 ? 1 : x;
        }
        double truth = 60 + 35 * uniform(&seed), pred = truth + 4 * gaussian(&seed);
        char title[160];
        snprintf(title, sizeof title, "Video %s   true score %.2f   predicted %.2f", names[v], truth, pred);
        aqa_plot *p = aqa_plot_new();
        aqa_plot_title(p, title);
        aqa_plot_xlabel(p, "frame");
        aqa_plot_ylabel(p, "boundary prob.");
        aqa_plot_xlim(p, 0, FRAMES - 1);
        aqa_plot_ylim(p, 0, 1.05);
        aqa_plot_legend(p, AQA_LEGEND_OUTSIDE_RIGHT);
        aqa_plot_line(p, NULL, prob, FRAMES, blue, 2, "boundary probability");
        for (int k = 0; k < 2; k++) {
            aqa_plot_vline(p, tb[k], green, 2, 1, "true boundary");
            aqa_plot_vline(p, pb[k], red, 2, 0, "predicted boundary");
        }
        aqa_plot_text(p, 2, 1.0, "take-off", aqa_rgb_make(90, 90, 90));
        aqa_plot_text(p, (tb[0] + tb[1]) / 2 - 8, 1.0, "flight", aqa_rgb_make(90, 90, 90));
        aqa_plot_text(p, tb[1] + 6, 1.0, "entry", aqa_rgb_make(90, 90, 90));
        aqa_status st = aqa_plot_draw(p, fig, 0, v * ph, pw, ph);
        aqa_plot_free(p);
        if (st != AQA_OK) {
            fprintf(stderr, "plot_demo: %s\n", aqa_last_error());
            aqa_image_free(fig);
            return 1;
        }
    }
    aqa_status st = aqa_image_save_png(fig, path);
    aqa_image_free(fig);
    if (st != AQA_OK) {
        fprintf(stderr, "plot_demo: %s\n", aqa_last_error());
        return 1;
    }
    printf("wrote %s\n", path);
    return 0;
}

static int scatter(const char *path) {
    enum { N = 120 };
    double t[N], pr[N];
    unsigned long long seed = 11;
    for (int i = 0; i < N; i++) {
        t[i] = 40 + 60 * uniform(&seed);
        pr[i] = t[i] + 5 * gaussian(&seed);
    }
    aqa_plot *p = aqa_plot_new();
    aqa_plot_title(p, "Predicted vs true score (rho = 0.93)");
    aqa_plot_xlabel(p, "true score");
    aqa_plot_ylabel(p, "predicted score");
    aqa_plot_xlim(p, 35, 105);
    aqa_plot_ylim(p, 35, 105);
    double d[2] = {35, 105};
    aqa_plot_line(p, d, d, 2, aqa_rgb_make(150, 150, 150), 1.5, "y = x");
    aqa_plot_scatter(p, t, pr, N, aqa_rgb_make(31, 119, 180), 3, "test videos");
    aqa_plot_legend(p, AQA_LEGEND_UPPER_LEFT);
    aqa_status st = aqa_plot_save_png(p, 560, 520, path);
    aqa_plot_free(p);
    if (st != AQA_OK) {
        fprintf(stderr, "plot_demo: %s\n", aqa_last_error());
        return 1;
    }
    printf("wrote %s\n", path);
    return 0;
}

/* A diving scene: platform, water, a stick diver in a tuck rotated in flight, a splash. */
static int scene(const char *path) {
    aqa_image *im = aqa_image_new(320, 240);
    if (!im) return 1;
    aqa_canvas_vgradient(im, 0, 0, 320, 170, aqa_rgb_make(150, 190, 235), aqa_rgb_make(225, 235, 245));
    aqa_canvas_vgradient(im, 0, 170, 320, 70, aqa_rgb_make(40, 120, 190), aqa_rgb_make(10, 50, 110));
    aqa_canvas_rect(im, 0, 60, 70, 8, aqa_rgb_make(120, 110, 100)); /* platform */
    aqa_canvas_rect(im, 0, 68, 12, 102, aqa_rgb_make(100, 95, 90));
    const aqa_rgb skin = aqa_rgb_make(230, 180, 140), suit = aqa_rgb_make(200, 30, 60);
    /* diver: body as a rotated ellipse, limbs as thick round-capped lines, head a disc */
    double cx = 150, cy = 90, a = 0.9;
    aqa_canvas_ellipse(im, cx, cy, 14, 7, a, suit, 1);
    double hx = cx + 20 * cos(a), hy = cy + 20 * sin(a);
    aqa_canvas_circle(im, hx, hy, 6, skin, 1);
    double kx = cx - 4 * cos(a) + 12 * sin(a), ky = cy - 4 * sin(a) - 12 * cos(a);
    aqa_canvas_line(im, cx - 12 * cos(a), cy - 12 * sin(a), kx, ky, 5, skin, 1); /* thigh */
    aqa_canvas_line(im, kx, ky, kx + 12 * cos(a), ky + 12 * sin(a), 4, skin, 1); /* shin */
    aqa_canvas_line(im, cx + 8 * cos(a), cy + 8 * sin(a), kx + 6 * cos(a), ky + 6 * sin(a), 3, skin, 1);
    /* rotation arrow: dashed arc made of short segments */
    for (int k = 0; k < 10; k++) {
        double t0 = -1.2 + 0.25 * k, t1 = t0 + 0.12;
        aqa_canvas_line(im, cx + 34 * cos(t0), cy + 34 * sin(t0), cx + 34 * cos(t1), cy + 34 * sin(t1), 1.5,
                        aqa_rgb_make(60, 60, 60), 1);
    }
    /* splash: translucent discs over the surface, a white concave crown polygon */
    unsigned long long seed = 3;
    for (int k = 0; k < 40; k++)
        aqa_canvas_circle_alpha(im, 240 + 30 * gaussian(&seed) / 2, 168 - 12 * uniform(&seed),
                                2 + 5 * uniform(&seed), AQA_RGB_WHITE, 0.5);
    double crown[] = {222, 172, 228, 150, 234, 165, 240, 140, 246, 165, 252, 150, 258, 172};
    aqa_canvas_polygon(im, crown, 7, aqa_rgb_make(245, 250, 255));
    aqa_canvas_text(im, 8, 8, "frame 42  flight: 2.5 som. tuck", 1, aqa_rgb_make(20, 20, 20));
    aqa_status st = aqa_image_save_png(im, path);
    aqa_image_free(im);
    if (st != AQA_OK) {
        fprintf(stderr, "plot_demo: %s\n", aqa_last_error());
        return 1;
    }
    printf("wrote %s\n", path);
    return 0;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "plot_demo", .about = "Draws three demo figures with aqa's plotting and canvas code."};
    kv_def(&c, "out", ".", "folder for fig4_demo.png, scatter_demo.png and canvas_demo.png");
    int pr = kv_parse_args(&c, argc, argv, "[--out DIR]");
    if (pr) return kv_exit_code(pr);
    const char *dir = kv_str(&c, "out");
    char a[4096], b[4096], d[4096];
    snprintf(a, sizeof a, "%.4000s/fig4_demo.png", dir);
    snprintf(b, sizeof b, "%.4000s/scatter_demo.png", dir);
    snprintf(d, sizeof d, "%.4000s/canvas_demo.png", dir);
    return fig4(a) || scatter(b) || scene(d);
}
