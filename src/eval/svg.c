// svg.c - line charts: axes with ~5 ticks, one polyline (and markers) per series, legend.
#include "svg.h"

#include <math.h>
#include <stdio.h>

static const char *k_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

static double nice_step(double range) {
    double raw = range / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

int vv_svg_line_chart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                      const vv_svg_series *s, int n_series, bool log_x, vv_error *e) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = log_x ? log2(s[k].x[i]) : s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x); x1 = fmax(x1, x); y0 = fmin(y0, y); y1 = fmax(y1, y);
            if (s[k].lo && isfinite(s[k].lo[i])) y0 = fmin(y0, s[k].lo[i]);
            if (s[k].hi && isfinite(s[k].hi[i])) y1 = fmax(y1, s[k].hi[i]);
        }
    if (!isfinite(x0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) { y1 += 0.5; y0 -= 0.5; }
    double pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    bool bars = false;
    for (int k = 0; k < n_series; k++) bars |= s[k].lo && s[k].hi;
    if (bars) { // room for the outermost bars and their nudges
        const double xp = (x1 - x0) * 0.04;
        x0 -= xp; x1 += xp;
    }
    const double W = 720, H = 440, L = 70, R = 170, T = 40, B = 55, pw = W - L - R, ph = H - T - B;
    vv_buf b = {0};
    vv_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    vv_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    vv_buf_printf(&b, "<text x=\"%.0f\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, title);
    vv_buf_printf(&b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", L, T, pw, ph);
#define PX(v) (L + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (T + ph - ((v) - y0) / (y1 - y0) * ph)
    double ys = nice_step(y1 - y0);
    for (double v = ceil(y0 / ys) * ys; v <= y1 + 1e-12; v += ys)
        vv_buf_printf(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                      L, L + pw, PY(v), PY(v), L - 5, PY(v) + 4, fabs(v) < ys * 1e-6 ? 0 : v);
    if (log_x) {
        for (double v = ceil(x0); v <= x1 + 1e-9; v += 1)
            vv_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v), T + ph + 16, pow(2, v));
    } else {
        double xs = nice_step(x1 - x0);
        for (double v = ceil(x0 / xs) * xs; v <= x1 + 1e-12; v += xs)
            vv_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v), T + ph + 16, v);
    }
    vv_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 12, xlabel);
    vv_buf_printf(&b, "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.0f)\">%s</text>\n", T + ph / 2, T + ph / 2, ylabel);
    for (int k = 0; k < n_series; k++) {
        const char *col = k_colors[k % 8];
        vv_buf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", col);
        for (int i = 0; i < s[k].n; i++) {
            double x = log_x ? log2(s[k].x[i]) : s[k].x[i], y = s[k].y[i];
            if (isfinite(x) && isfinite(y)) vv_buf_printf(&b, "%.1f,%.1f ", PX(x), PY(y));
        }
        vv_buf_printf(&b, "\"/>\n");
        // error bars, each series nudged sideways so overlapping intervals stay readable
        for (int i = 0; s[k].lo && s[k].hi && i < s[k].n; i++) {
            double x = log_x ? log2(s[k].x[i]) : s[k].x[i];
            if (!isfinite(x) || !isfinite(s[k].lo[i]) || !isfinite(s[k].hi[i])) continue;
            const double px = PX(x) + 4.0 * (k - 0.5 * (n_series - 1));
            vv_buf_printf(&b, "<path d=\"M%.1f,%.1f V%.1f M%.1f,%.1f H%.1f M%.1f,%.1f H%.1f\" stroke=\"%s\" "
                              "stroke-width=\"1\" opacity=\"0.7\" fill=\"none\"/>\n",
                          px, PY(s[k].lo[i]), PY(s[k].hi[i]), px - 3, PY(s[k].lo[i]), px + 3, px - 3, PY(s[k].hi[i]), px + 3,
                          col);
        }
        if (s[k].n <= 40)
            for (int i = 0; i < s[k].n; i++) {
                double x = log_x ? log2(s[k].x[i]) : s[k].x[i], y = s[k].y[i];
                if (isfinite(x) && isfinite(y))
                    vv_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(x), PY(y), col);
            }
        vv_buf_printf(&b, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                      L + pw + 12, L + pw + 32, T + 10 + 18.0 * k, T + 10 + 18.0 * k, col, L + pw + 38, T + 14 + 18.0 * k, s[k].name);
    }
#undef PX
#undef PY
    vv_buf_printf(&b, "</svg>\n");
    int rc = b.v ? vv_write_file_atomic(path, b.v, b.n, e) : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_buf_free(&b);
    return rc;
}
