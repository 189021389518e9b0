// svg.h - minimal line charts as standalone SVG files (loss curves, scaling plots).
#ifndef VV_SVG_H
#define VV_SVG_H

#include "../base/base.h"

typedef struct vv_svg_series {
    const char *name;
    const double *x, *y;
    int n;
    const double *lo, *hi; // optional [n]: an interval drawn as an error bar at each point (NULL: none)
} vv_svg_series;

// Writes an SVG line chart (atomically). log_x: logarithmic x axis.
int vv_svg_line_chart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                      const vv_svg_series *s, int n_series, bool log_x, vv_error *e);

#endif
