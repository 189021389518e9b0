// render.c - rasteriser of the synthetic world: class icons as signed
// distance functions (SDFs), s x s supersampled coverage, layered compositing
// (background + clutter, objects in order, occluding patches, pixel noise).
//
// Determinism: only + - * / sqrtf fabsf fminf fmaxf (all exactly rounded) on
// floats, and integer RNG draws; no transcendental libm calls, so pixels do
// not depend on the libm. Visibility is computed from the same coverage
// arrays the compositing uses, so it is exact for the rendered image: the
// weight of object o's colour in a pixel is cov_o * prod(1 - cov_later).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"

// Pixels must not depend on the compiler fusing a*b+c into an FMA (clang
// does by default, GCC does outside ISO C mode): keep every rounding step.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif


// ---------------------------------------------------------------------------
// SDF primitives (negative inside). Coordinates: u right, v down, the icon
// occupies the unit box [-0.5, 0.5]^2.

static inline float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static inline float len2(float x, float y) { return sqrtf(x * x + y * y); }
static inline float U(float a, float b) { return fminf(a, b); }          // union
static inline float I(float a, float b) { return fmaxf(a, b); }          // intersection
static inline float S(float a, float b) { return fmaxf(a, -b); }         // a minus b

static float sd_circle(float u, float v, float cx, float cy, float r) { return len2(u - cx, v - cy) - r; }

// Box with half sizes hx, hy (outer), corner radius r.
static float sd_box(float u, float v, float cx, float cy, float hx, float hy, float r) {
    float qx = fabsf(u - cx) - hx + r, qy = fabsf(v - cy) - hy + r;
    return len2(fmaxf(qx, 0.0f), fmaxf(qy, 0.0f)) + fminf(fmaxf(qx, qy), 0.0f) - r;
}

// Capsule around segment a-b with radius r.
static float sd_seg(float u, float v, float ax, float ay, float bx, float by, float r) {
    float px = u - ax, py = v - ay, ex = bx - ax, ey = by - ay;
    float h = clampf((px * ex + py * ey) / (ex * ex + ey * ey), 0.0f, 1.0f);
    return len2(px - ex * h, py - ey * h) - r;
}

// Exact distance to a simple polygon (pts = x0, y0, x1, y1, ...), any winding.
static float sd_poly(float u, float v, const float *pts, int n) {
    float d = (u - pts[0]) * (u - pts[0]) + (v - pts[1]) * (v - pts[1]);
    float s = 1.0f;
    for (int i = 0, j = n - 1; i < n; j = i, i++) {
        float vix = pts[2 * i], viy = pts[2 * i + 1], vjx = pts[2 * j], vjy = pts[2 * j + 1];
        float ex = vjx - vix, ey = vjy - viy, wx = u - vix, wy = v - viy;
        float h = clampf((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0f, 1.0f);
        float bx = wx - ex * h, by = wy - ey * h;
        d = fminf(d, bx * bx + by * by);
        bool c1 = v >= viy, c2 = v < vjy, c3 = ex * wy > ey * wx;
        if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
    }
    return s * sqrtf(d);
}

// Ellipse, first-order approximation (good near the boundary, which is all
// coverage needs).
static float sd_ellipse(float u, float v, float cx, float cy, float rx, float ry) {
    float x = u - cx, y = v - cy;
    float k0 = len2(x / rx, y / ry), k1 = len2(x / (rx * rx), y / (ry * ry));
    if (k1 <= 0.0f) return -fminf(rx, ry);
    return k0 * (k0 - 1.0f) / k1;
}

#define POLY(u, v, ...) sd_poly((u), (v), (const float[]){__VA_ARGS__}, (int)(sizeof((const float[]){__VA_ARGS__}) / sizeof(float) / 2))

static const float SQ = 0.70710678f; // sqrt(1/2)
// Unit directions of a regular pentagon, pointing up first (cos/sin of 90 + 72k degrees).
static const float PENTA[5][2] = {{0.0f, -1.0f}, {0.95105652f, -0.30901699f}, {0.58778525f, 0.80901699f},
                                  {-0.58778525f, 0.80901699f}, {-0.95105652f, -0.30901699f}};

// Class icons, in the order of vocab_world.c's class table.
static float icon_sdf(int cls, float u, float v) {
    float d;
    switch (cls) {
    case 0: { // cup: body + ring handle on the right
        float body = sd_box(u, v, -0.1f, 0.04f, 0.25f, 0.36f, 0.07f);
        float handle = I(fabsf(sd_circle(u, v, 0.17f, 0.0f, 0.18f)) - 0.06f, 0.1f - u);
        return U(body, handle);
    }
    case 1: { // bowl: lower half disc, rim, foot
        float half = I(sd_circle(u, v, 0.0f, -0.1f, 0.46f), -0.1f - v);
        float rim = sd_box(u, v, 0.0f, -0.1f, 0.49f, 0.05f, 0.03f);
        float foot = sd_box(u, v, 0.0f, 0.4f, 0.16f, 0.06f, 0.02f);
        return U(U(half, rim), foot);
    }
    case 2: { // bottle: body, shoulder, neck, cap
        float body = sd_box(u, v, 0.0f, 0.15f, 0.22f, 0.33f, 0.09f);
        float shoulder = POLY(u, v, -0.2f, -0.08f, 0.2f, -0.08f, 0.09f, -0.2f, -0.09f, -0.2f);
        float neck = sd_box(u, v, 0.0f, -0.24f, 0.09f, 0.16f, 0.02f);
        float cap = sd_box(u, v, 0.0f, -0.43f, 0.12f, 0.06f, 0.02f);
        return U(U(body, shoulder), U(neck, cap));
    }
    case 3: { // pan: disc with an inner rim line + long handle
        d = U(sd_circle(u, v, -0.16f, 0.0f, 0.32f), sd_seg(u, v, 0.12f, 0.0f, 0.48f, 0.0f, 0.06f));
        return S(d, fabsf(sd_circle(u, v, -0.16f, 0.0f, 0.23f)) - 0.025f);
    }
    case 4: { // apple: two lobes, top notch, stem, leaf
        float body = U(sd_circle(u, v, -0.12f, 0.08f, 0.3f), sd_circle(u, v, 0.12f, 0.08f, 0.3f));
        body = S(body, sd_circle(u, v, 0.0f, -0.24f, 0.08f));
        float stem = sd_seg(u, v, 0.0f, -0.16f, 0.04f, -0.42f, 0.035f);
        float leaf = sd_ellipse(u, v, 0.17f, -0.36f, 0.13f, 0.06f);
        return U(U(body, stem), leaf);
    }
    case 5: { // clock: ring + two hands
        float ring = fabsf(sd_circle(u, v, 0.0f, 0.0f, 0.41f)) - 0.07f;
        float hands = U(sd_seg(u, v, 0.0f, 0.0f, 0.0f, -0.25f, 0.05f), sd_seg(u, v, 0.0f, 0.0f, 0.2f, 0.0f, 0.05f));
        return U(ring, hands);
    }
    case 6: { // book: upright cover with a spine line
        float cover = sd_box(u, v, 0.02f, 0.0f, 0.3f, 0.45f, 0.03f);
        return S(cover, sd_seg(u, v, -0.17f, -0.38f, -0.17f, 0.38f, 0.028f));
    }
    case 7: { // lamp: shade, stem, base
        float shade = POLY(u, v, -0.16f, -0.46f, 0.16f, -0.46f, 0.32f, -0.08f, -0.32f, -0.08f);
        float stem = sd_box(u, v, 0.0f, 0.16f, 0.045f, 0.25f, 0.0f);
        float base = sd_box(u, v, 0.0f, 0.42f, 0.25f, 0.06f, 0.03f);
        return U(U(shade, stem), base);
    }
    case 8: { // key: ring head, shaft, two teeth
        float head = fabsf(sd_circle(u, v, -0.27f, 0.0f, 0.16f)) - 0.075f;
        float shaft = sd_box(u, v, 0.17f, 0.0f, 0.3f, 0.06f, 0.01f);
        float teeth = U(sd_box(u, v, 0.31f, 0.13f, 0.045f, 0.09f, 0.01f), sd_box(u, v, 0.43f, 0.11f, 0.04f, 0.07f, 0.01f));
        return U(U(head, shaft), teeth);
    }
    case 9: { // pencil: diagonal body, sharpened tip, eraser band
        float t = (u - v) * SQ, n = (u + v) * SQ; // along / across the (1, -1) diagonal
        float body = sd_box(t, n, -0.18f, 0.0f, 0.4f, 0.12f, 0.02f);
        float tip = POLY(t, n, 0.22f, -0.12f, 0.5f, 0.0f, 0.22f, 0.12f);
        return S(U(body, tip), sd_box(t, n, -0.44f, 0.0f, 0.025f, 0.2f, 0.0f));
    }
    case 10: { // envelope: landscape rectangle with a V flap line
        float rect = sd_box(u, v, 0.0f, 0.04f, 0.47f, 0.31f, 0.03f);
        float flap = U(sd_seg(u, v, -0.42f, -0.22f, 0.0f, 0.1f, 0.03f), sd_seg(u, v, 0.0f, 0.1f, 0.42f, -0.22f, 0.03f));
        return S(rect, flap);
    }
    case 11: { // tree: two stacked triangles + trunk
        float t1 = POLY(u, v, 0.0f, -0.5f, 0.3f, -0.12f, -0.3f, -0.12f);
        float t2 = POLY(u, v, 0.0f, -0.3f, 0.42f, 0.2f, -0.42f, 0.2f);
        return U(U(t1, t2), sd_box(u, v, 0.0f, 0.33f, 0.08f, 0.16f, 0.0f));
    }
    case 12: { // flower: five petals around a centre, stem, leaf
        const float hx = 0.0f, hy = -0.14f;
        float petals = sd_circle(u, v, hx, hy, 0.1f);
        for (int k = 0; k < 5; k++)
            petals = U(petals, sd_circle(u, v, hx + 0.2f * PENTA[k][0], hy + 0.2f * PENTA[k][1], 0.13f));
        petals = S(petals, fabsf(sd_circle(u, v, hx, hy, 0.12f)) - 0.02f);
        float stem = sd_seg(u, v, 0.0f, 0.08f, 0.0f, 0.48f, 0.04f);
        return U(U(petals, stem), sd_ellipse(u, v, 0.13f, 0.32f, 0.12f, 0.05f));
    }
    case 13: { // leaf: diagonal lens (two circles intersected), stem, midrib
        float lens = I(sd_circle(u, v, 0.343f, 0.263f, 0.629f), sd_circle(u, v, -0.263f, -0.343f, 0.629f));
        lens = S(lens, sd_seg(u, v, -0.2f, 0.2f, 0.26f, -0.26f, 0.022f));
        return U(lens, sd_seg(u, v, -0.27f, 0.27f, -0.45f, 0.45f, 0.035f));
    }
    case 14: { // kite: diamond with cross struts + wavy tail
        float diamond = POLY(u, v, 0.02f, -0.48f, 0.3f, -0.14f, 0.02f, 0.22f, -0.26f, -0.14f);
        float struts = U(sd_seg(u, v, 0.02f, -0.42f, 0.02f, 0.16f, 0.018f), sd_seg(u, v, -0.2f, -0.14f, 0.24f, -0.14f, 0.018f));
        float tail = U(U(sd_seg(u, v, 0.02f, 0.22f, 0.12f, 0.32f, 0.03f), sd_seg(u, v, 0.12f, 0.32f, -0.02f, 0.4f, 0.03f)),
                       sd_seg(u, v, -0.02f, 0.4f, 0.1f, 0.47f, 0.03f));
        return U(S(diamond, struts), tail);
    }
    case 15: { // sun: disc + eight rays
        static const float dir[8][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}, {SQ, SQ}, {SQ, -SQ}, {-SQ, SQ}, {-SQ, -SQ}};
        d = sd_circle(u, v, 0.0f, 0.0f, 0.23f);
        for (int k = 0; k < 8; k++)
            d = U(d, sd_seg(u, v, 0.32f * dir[k][0], 0.32f * dir[k][1], 0.46f * dir[k][0], 0.46f * dir[k][1], 0.045f));
        return d;
    }
    case 16: { // duck: body, head, beak, tail, eye, wing line
        float body = sd_ellipse(u, v, 0.05f, 0.18f, 0.42f, 0.25f);
        float head = sd_circle(u, v, -0.18f, -0.2f, 0.17f);
        float beak = POLY(u, v, -0.3f, -0.25f, -0.5f, -0.17f, -0.3f, -0.1f);
        float tail = POLY(u, v, 0.34f, 0.06f, 0.49f, -0.14f, 0.47f, 0.12f);
        d = U(U(body, head), U(beak, tail));
        d = S(d, sd_circle(u, v, -0.2f, -0.25f, 0.04f));
        return S(d, I(fabsf(sd_circle(u, v, 0.1f, 0.08f, 0.16f)) - 0.022f, 0.08f - v));
    }
    case 17: { // car: body, cabin with windows, wheels separated by a gap
        float body = U(sd_box(u, v, 0.0f, 0.1f, 0.49f, 0.14f, 0.06f),
                       POLY(u, v, -0.28f, -0.03f, 0.3f, -0.03f, 0.16f, -0.3f, -0.16f, -0.3f));
        float windows = U(POLY(u, v, -0.21f, -0.08f, -0.02f, -0.08f, -0.02f, -0.24f, -0.13f, -0.24f),
                          POLY(u, v, 0.03f, -0.08f, 0.23f, -0.08f, 0.14f, -0.24f, 0.03f, -0.24f));
        float gaps = U(fabsf(sd_circle(u, v, -0.27f, 0.26f, 0.155f)) - 0.025f,
                       fabsf(sd_circle(u, v, 0.27f, 0.26f, 0.155f)) - 0.025f);
        float wheels = U(sd_circle(u, v, -0.27f, 0.26f, 0.13f), sd_circle(u, v, 0.27f, 0.26f, 0.13f));
        return U(S(S(body, windows), gaps), wheels);
    }
    case 18: { // house: walls, roof, chimney, door and window
        float walls = sd_box(u, v, 0.0f, 0.18f, 0.34f, 0.3f, 0.0f);
        float roof = POLY(u, v, 0.0f, -0.48f, 0.47f, -0.08f, -0.47f, -0.08f);
        float chimney = sd_box(u, v, 0.25f, -0.3f, 0.05f, 0.12f, 0.0f);
        d = U(U(walls, roof), chimney);
        d = S(d, sd_box(u, v, 0.1f, 0.33f, 0.08f, 0.15f, 0.0f));
        return S(d, sd_box(u, v, -0.16f, 0.12f, 0.07f, 0.07f, 0.0f));
    }
    case 19: { // sign: wide board with a carved arrow, on two posts
        float board = sd_box(u, v, 0.0f, -0.2f, 0.47f, 0.23f, 0.03f);
        float arrow = U(sd_seg(u, v, -0.3f, -0.2f, 0.24f, -0.2f, 0.035f),
                        U(sd_seg(u, v, 0.28f, -0.2f, 0.12f, -0.32f, 0.035f), sd_seg(u, v, 0.28f, -0.2f, 0.12f, -0.08f, 0.035f)));
        float posts = U(sd_box(u, v, -0.28f, 0.25f, 0.045f, 0.24f, 0.0f), sd_box(u, v, 0.28f, 0.25f, 0.045f, 0.24f, 0.0f));
        return U(S(board, arrow), posts);
    }
    case 20: { // umbrella: scalloped canopy, shaft, hook
        float canopy = I(sd_circle(u, v, 0.0f, 0.04f, 0.48f), v - 0.04f);
        for (int k = -1; k <= 1; k++) canopy = S(canopy, sd_circle(u, v, 0.32f * (float)k, 0.09f, 0.1f));
        float shaft = sd_seg(u, v, 0.0f, 0.0f, 0.0f, 0.36f, 0.035f);
        float hook = I(fabsf(sd_circle(u, v, 0.09f, 0.36f, 0.09f)) - 0.035f, 0.36f - v);
        return U(U(canopy, shaft), hook);
    }
    case 21: { // toothbrush: long handle, head, bristle tufts
        float handle = sd_seg(u, v, -0.47f, 0.22f, 0.16f, 0.1f, 0.055f);
        float head = sd_box(u, v, 0.3f, 0.08f, 0.18f, 0.05f, 0.02f);
        float bristles = sd_box(u, v, 0.3f, -0.06f, 0.15f, 0.1f, 0.0f);
        for (int k = 0; k < 2; k++) bristles = S(bristles, sd_box(u, v, 0.25f + 0.1f * (float)k, -0.08f, 0.018f, 0.1f, 0.0f));
        return U(U(handle, head), bristles);
    }
    case 22: { // soap: rounded bar + three bubbles
        float bar = sd_box(u, v, 0.0f, 0.2f, 0.44f, 0.22f, 0.13f);
        float bubbles = U(U(sd_circle(u, v, -0.18f, -0.2f, 0.1f), sd_circle(u, v, 0.1f, -0.3f, 0.13f)),
                          sd_circle(u, v, 0.33f, -0.13f, 0.07f));
        return U(bar, bubbles);
    }
    case 23: { // mirror: oval with a frame line and a glint, on a stand
        float oval = sd_ellipse(u, v, 0.0f, -0.07f, 0.3f, 0.41f);
        oval = S(oval, fabsf(sd_ellipse(u, v, 0.0f, -0.07f, 0.22f, 0.33f)) - 0.025f);
        oval = S(oval, sd_seg(u, v, -0.1f, -0.1f, 0.04f, -0.28f, 0.022f));
        float stand = U(sd_box(u, v, 0.0f, 0.44f, 0.2f, 0.05f, 0.02f), sd_box(u, v, 0.0f, 0.37f, 0.04f, 0.05f, 0.0f));
        return U(oval, stand);
    }
    case 24: { // fish: body, tail, top fin, eye
        float body = sd_ellipse(u, v, -0.08f, 0.0f, 0.35f, 0.22f);
        float tail = POLY(u, v, 0.18f, 0.0f, 0.48f, -0.24f, 0.48f, 0.24f);
        float fin = POLY(u, v, -0.12f, -0.18f, 0.06f, -0.34f, 0.1f, -0.14f);
        return S(U(U(body, tail), fin), sd_circle(u, v, -0.27f, -0.05f, 0.045f));
    }
    case 25: { // boat: hull, mast, main sail, jib
        float hull = POLY(u, v, -0.48f, 0.2f, 0.48f, 0.2f, 0.32f, 0.42f, -0.3f, 0.42f);
        float mast = sd_seg(u, v, 0.0f, 0.2f, 0.0f, -0.46f, 0.03f);
        float sail = POLY(u, v, 0.05f, -0.44f, 0.05f, 0.13f, 0.4f, 0.13f);
        float jib = POLY(u, v, -0.05f, -0.32f, -0.05f, 0.13f, -0.3f, 0.13f);
        return U(U(hull, mast), U(sail, jib));
    }
    case 26: { // shell: scallop fan with radial ridges and a hinge
        const float ax = 0.0f, ay = 0.3f;
        float fan = I(sd_circle(u, v, ax, ay, 0.74f), POLY(u, v, ax, ay, -0.5f, -0.5f, 0.5f, -0.5f));
        static const float tips[4][2] = {{-0.3f, -0.36f}, {-0.1f, -0.44f}, {0.1f, -0.44f}, {0.3f, -0.36f}};
        for (int k = 0; k < 4; k++) {
            float sx = ax + 0.3f * (tips[k][0] - ax), sy = ay + 0.3f * (tips[k][1] - ay);
            fan = S(fan, sd_seg(u, v, sx, sy, tips[k][0], tips[k][1], 0.022f));
        }
        return U(fan, sd_box(u, v, 0.0f, 0.36f, 0.14f, 0.08f, 0.03f));
    }
    case 27: { // star: five points
        float pts[20];
        for (int k = 0; k < 5; k++) {
            pts[4 * k + 0] = 0.5f * PENTA[k][0];
            pts[4 * k + 1] = 0.04f + 0.5f * PENTA[k][1];
            // inner vertex halfway (36 degrees) to the next point: -direction of the opposite point
            const float *o = PENTA[(k + 3) % 5];
            pts[4 * k + 2] = -0.2f * o[0];
            pts[4 * k + 3] = 0.04f - 0.2f * o[1];
        }
        return sd_poly(u, v, pts, 10);
    }
    }
    return 1.0f; // unknown class: nothing
}

// ---------------------------------------------------------------------------
// Coverage rasteriser.

typedef float (*sdf_px_fn)(const void *ctx, float x, float y); // distance in pixels at pixel coords

typedef struct {
    int cls;
    float cx, cy, ext;
} icon_ctx;

static float icon_px(const void *ctx, float x, float y) {
    const icon_ctx *c = (const icon_ctx *)ctx;
    return icon_sdf(c->cls, (x - c->cx) / c->ext, (y - c->cy) / c->ext) * c->ext;
}

typedef struct {
    float x0, y0, x1, y1, r;
} rect_ctx;

static float rect_px(const void *ctx, float x, float y) {
    const rect_ctx *c = (const rect_ctx *)ctx;
    float hx = 0.5f * (c->x1 - c->x0), hy = 0.5f * (c->y1 - c->y0);
    return sd_box(x, y, c->x0 + hx, c->y0 + hy, hx, hy, c->r);
}

static float stroke_px(const void *ctx, float x, float y) {
    const vv_world_stroke *s = (const vv_world_stroke *)ctx;
    return U(sd_seg(x, y, s->x[0], s->y[0], s->x[1], s->y[1], s->width),
             sd_seg(x, y, s->x[1], s->y[1], s->x[2], s->y[2], s->width));
}

// Rasterises a shape whose support lies inside [bx0, bx1] x [by0, by1]
// (pixel coords). For in-image pixels writes cov (any sample inside) and,
// if body != NULL, body (samples deeper than ow pixels). Returns the total
// coverage including the pixels outside the image.
static double raster(sdf_px_fn f, const void *ctx, float bx0, float by0, float bx1, float by1, int ss, float ow,
                     float *cov, float *body, int w, int h) {
    int x0 = (int)(bx0 < 0 ? bx0 - 1.0f : bx0) - 1, y0 = (int)(by0 < 0 ? by0 - 1.0f : by0) - 1;
    int x1 = (int)(bx1 < 0 ? bx1 : bx1 + 1.0f) + 1, y1 = (int)(by1 < 0 ? by1 : by1 + 1.0f) + 1;
    const float inv = 1.0f / (float)(ss * ss), margin = 1.0f; // > half the pixel diagonal
    double total = 0.0;
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            float dc = f(ctx, (float)x + 0.5f, (float)y + 0.5f);
            float c, b;
            if (dc > margin) continue;
            if (dc < -ow - margin) {
                c = b = 1.0f;
            } else {
                int nc = 0, nb = 0;
                for (int j = 0; j < ss; j++)
                    for (int i = 0; i < ss; i++) {
                        float d = f(ctx, (float)x + ((float)i + 0.5f) / (float)ss, (float)y + ((float)j + 0.5f) / (float)ss);
                        nc += d < 0.0f;
                        nb += d < -ow;
                    }
                if (!nc) continue;
                c = (float)nc * inv;
                b = (float)nb * inv;
            }
            total += c;
            if (x >= 0 && x < w && y >= 0 && y < h) {
                cov[(size_t)y * w + x] = c;
                if (body) body[(size_t)y * w + x] = b;
            }
        }
    }
    return total;
}

static double raster_object(const vv_world_params *p, const vv_world_object *o, float *cov, float *body, int w, int h) {
    icon_ctx c = {o->cls, o->cx, o->cy, o->extent};
    float half = 0.5f * o->extent;
    return raster(icon_px, &c, o->cx - half, o->cy - half, o->cx + half, o->cy + half, p->supersample,
                  p->outline * o->extent, cov, body, w, h);
}

static void raster_patch(const vv_world_params *p, const vv_world_object *o, float *cov, int w, int h) {
    rect_ctx r = {o->occ_rect[0], o->occ_rect[1], o->occ_rect[2], o->occ_rect[3], 1.0f};
    raster(rect_px, &r, r.x0, r.y0, r.x1, r.y1, p->supersample, 0.0f, cov, NULL, w, h);
}


// ---------------------------------------------------------------------------
// Layers: each object's unoccluded coverage and body coverage, each patch's
// coverage. Masks and pixels are both derived from these.

typedef struct {
    int n;
    size_t np;
    float *cov[VV_WORLD_MAX_OBJECTS], *body[VV_WORLD_MAX_OBJECTS], *patch[VV_WORLD_MAX_OBJECTS];
    double total[VV_WORLD_MAX_OBJECTS];
} layers;

static void layers_free(layers *L) {
    for (int i = 0; i < VV_WORLD_MAX_OBJECTS; i++) {
        free(L->cov[i]);
        free(L->body[i]);
        free(L->patch[i]);
    }
    memset(L, 0, sizeof(*L));
}

static int layers_build(const vv_world_params *p, const vv_world_scene *s, layers *L, vv_error *e) {
    memset(L, 0, sizeof(*L));
    L->n = s->n_objects;
    L->np = (size_t)s->w * s->h;
    for (int i = 0; i < L->n; i++) {
        const vv_world_object *o = &s->obj[i];
        L->cov[i] = calloc(L->np, sizeof(float));
        L->body[i] = calloc(L->np, sizeof(float));
        if (!L->cov[i] || !L->body[i]) goto oom;
        L->total[i] = raster_object(p, o, L->cov[i], L->body[i], s->w, s->h);
        if (o->occ_kind == VV_WORLD_OCC_PATCH) {
            if (!(L->patch[i] = calloc(L->np, sizeof(float)))) goto oom;
            raster_patch(p, o, L->patch[i], s->w, s->h);
        }
    }
    return VISVM_OK;
oom:
    layers_free(L);
    return vv_err(e, VISVM_ERR_NOMEM, "out of memory rasterising scene %llu", (unsigned long long)s->seed);
}

// occl[i][k] = product of (1 - coverage) of everything drawn after object i:
// later objects, then every patch (patches are drawn last). Computed in
// place into vis (visible coverage) and, if interior != NULL, interior.
static void layers_visible(const layers *L, int i, float *vis, float *interior) {
    for (size_t k = 0; k < L->np; k++) {
        float c = L->cov[i][k];
        if (c <= 0.0f) {
            vis[k] = 0.0f;
            if (interior) interior[k] = 0.0f;
            continue;
        }
        float occ = 1.0f;
        for (int j = i + 1; j < L->n; j++) occ *= 1.0f - L->cov[j][k];
        for (int j = 0; j < L->n; j++)
            if (L->patch[j]) occ *= 1.0f - L->patch[j][k];
        vis[k] = c * occ;
        if (interior) interior[k] = L->body[i][k] * occ;
    }
}

void vv_world_masks_free(vv_world_masks *m) {
    if (!m) return;
    for (int i = 0; i < VV_WORLD_MAX_OBJECTS; i++) {
        free(m->full[i]);
        free(m->visible[i]);
        free(m->interior[i]);
    }
    free(m->base);
    memset(m, 0, sizeof(*m));
}

static int check_renderable(const vv_world_params *p, const vv_world_scene *s, vv_error *e) {
    if (!p || !s) return vv_err(e, VISVM_ERR_INVALID, "vv_world_render: NULL argument");
    if (!s->renderable)
        return vv_err(e, VISVM_ERR_INVALID,
                      "scene %llu has no render state (read from JSON?): make it with vv_world_scene_make",
                      (unsigned long long)s->seed);
    if (s->w != p->size || s->h != p->size)
        return vv_err(e, VISVM_ERR_INVALID, "scene %llu is %dx%d but params.size is %d", (unsigned long long)s->seed,
                      s->w, s->h, p->size);
    if (s->n_objects < 0 || s->n_objects > VV_WORLD_MAX_OBJECTS)
        return vv_err(e, VISVM_ERR_INVALID, "scene %llu: bad object count %d", (unsigned long long)s->seed,
                      s->n_objects);
    for (int i = 0; i < s->n_objects; i++) {
        const vv_world_object *o = &s->obj[i];
        if (o->cls < 0 || o->cls >= vv_world_n_classes() || o->color < 0 || o->color >= vv_world_n_colors() ||
            !(o->extent > 0.0f))
            return vv_err(e, VISVM_ERR_INVALID, "scene %llu: object %d has a bad class, colour or extent",
                          (unsigned long long)s->seed, i);
    }
    if (s->n_blobs < 0 || s->n_blobs > VV_WORLD_MAX_BLOBS || s->n_strokes < 0 || s->n_strokes > VV_WORLD_MAX_CLUTTER)
        return vv_err(e, VISVM_ERR_INVALID, "scene %llu: bad background state", (unsigned long long)s->seed);
    return VISVM_OK;
}

int vv_world__visibility(const vv_world_params *p, vv_world_scene *s, vv_error *e) {
    int rc = check_renderable(p, s, e);
    if (rc) return rc;
    layers L;
    rc = layers_build(p, s, &L, e);
    if (rc) return rc;
    float *vis = malloc((L.np ? L.np : 1) * sizeof(float));
    if (!vis) {
        layers_free(&L);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory rasterising scene %llu", (unsigned long long)s->seed);
    }
    for (int i = 0; i < s->n_objects; i++) {
        vv_world_object *o = &s->obj[i];
        layers_visible(&L, i, vis, NULL);
        double sum = 0.0;
        int x0 = s->w, y0 = s->h, x1 = -1, y1 = -1;
        for (int y = 0; y < s->h; y++)
            for (int x = 0; x < s->w; x++) {
                float c = vis[(size_t)y * s->w + x];
                if (c <= 0.0f) continue;
                sum += c;
                x0 = VV_MIN(x0, x);
                y0 = VV_MIN(y0, y);
                x1 = VV_MAX(x1, x);
                y1 = VV_MAX(y1, y);
            }
        double f = L.total[i] > 0.0 ? sum / L.total[i] : 0.0;
        o->visible = (float)((double)(int64_t)(f * 10000.0 + 0.5) / 10000.0);
        if (x1 < 0) {
            memset(o->bbox, 0, sizeof(o->bbox));
        } else {
            o->bbox[0] = x0;
            o->bbox[1] = y0;
            o->bbox[2] = x1 + 1;
            o->bbox[3] = y1 + 1;
        }
    }
    free(vis);
    layers_free(&L);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// Background (tint + smooth blobs + clutter strokes) and compositing.

static int draw_background(const vv_world_params *p, const vv_world_scene *s, float *base) {
    int w = s->w, h = s->h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float px = (float)x + 0.5f, py = (float)y + 0.5f;
            float c[3] = {s->tint[0], s->tint[1], s->tint[2]};
            for (int b = 0; b < s->n_blobs; b++) {
                const vv_world_blob *bl = &s->blobs[b];
                float dx = px - bl->x, dy = py - bl->y;
                float t = 1.0f - (dx * dx + dy * dy) / (bl->r * bl->r);
                if (t <= 0.0f) continue;
                t *= t; // smooth bump with zero slope at its rim
                for (int k = 0; k < 3; k++) c[k] += t * bl->d[k];
            }
            for (int k = 0; k < 3; k++) base[((size_t)y * w + x) * 3 + k] = c[k];
        }
    // Clutter strokes lie on the background, behind every object.
    size_t np = (size_t)w * h;
    float *cov = malloc(np * sizeof(float));
    if (!cov) return VISVM_ERR_NOMEM;
    for (int i = 0; i < s->n_strokes; i++) {
        const vv_world_stroke *st = &s->strokes[i];
        memset(cov, 0, np * sizeof(float));
        float bx0 = fminf(fminf(st->x[0], st->x[1]), st->x[2]) - st->width;
        float by0 = fminf(fminf(st->y[0], st->y[1]), st->y[2]) - st->width;
        float bx1 = fmaxf(fmaxf(st->x[0], st->x[1]), st->x[2]) + st->width;
        float by1 = fmaxf(fmaxf(st->y[0], st->y[1]), st->y[2]) + st->width;
        raster(stroke_px, st, bx0, by0, bx1, by1, p->supersample, 0.0f, cov, NULL, w, h);
        for (size_t k = 0; k < np; k++) {
            float a = 0.7f * cov[k];
            if (a <= 0.0f) continue;
            for (int c = 0; c < 3; c++) base[k * 3 + c] = base[k * 3 + c] * (1.0f - a) + a * (float)st->rgb[c];
        }
    }
    free(cov);
    return VISVM_OK;
}

int vv_world_render(const vv_world_params *p, const vv_world_scene *s, vv_image *out, vv_world_masks *masks,
                    vv_error *e) {
    if (out) memset(out, 0, sizeof(*out));
    if (masks) memset(masks, 0, sizeof(*masks));
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_world_render: NULL output");
    int rc = vv_world_params_check(p, e);
    if (rc) return rc;
    rc = check_renderable(p, s, e);
    if (rc) return rc;
    int w = s->w, h = s->h, n = s->n_objects;
    size_t np = (size_t)w * h;
    layers L;
    rc = layers_build(p, s, &L, e);
    if (rc) return rc;
    float *base = malloc(np * 3 * sizeof(float));
    float *img = malloc(np * 3 * sizeof(float));
    if (!base || !img || draw_background(p, s, base) != VISVM_OK) goto oom;
    memcpy(img, base, np * 3 * sizeof(float));

    // Objects in order. Colour = alpha * own colour + (1 - alpha) * background:
    // a faint (low-contrast) object is washed out toward the background but
    // still hides what lies under it, so visibility is purely geometric.
    for (int i = 0; i < n; i++) {
        const vv_world_object *o = &s->obj[i];
        const uint8_t *rgb = vv_world_color_rgb(o->color);
        float a = o->alpha;
        for (size_t k = 0; k < np; k++) {
            float c = L.cov[i][k];
            if (c <= 0.0f) continue;
            float b = L.body[i][k], ol = c - b;
            for (int ch = 0; ch < 3; ch++) {
                float bg = base[k * 3 + ch], col = (float)rgb[ch];
                float cb = a * col + (1.0f - a) * bg;
                float co = a * (0.55f * col) + (1.0f - a) * bg; // darker outline
                img[k * 3 + ch] = img[k * 3 + ch] * (1.0f - c) + b * cb + ol * co;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (!L.patch[i]) continue;
        const uint8_t *rgb = s->obj[i].patch_rgb;
        for (size_t k = 0; k < np; k++) {
            float c = L.patch[i][k];
            if (c <= 0.0f) continue;
            for (int ch = 0; ch < 3; ch++) img[k * 3 + ch] = img[k * 3 + ch] * (1.0f - c) + c * (float)rgb[ch];
        }
    }

    rc = vv_image_alloc(out, w, h, e);
    if (rc) goto fail;
    // Pixel noise: Irwin-Hall sum of four 16-bit uniforms (variance 4/12),
    // scaled to std p->noise; integer draws keep it libm-free.
    vv_rng rng;
    vv_rng_seed(&rng, vv_world__stream(s->seed, 2));
    const float ns = p->noise * 1.7320508f / 65536.0f;
    for (size_t k = 0; k < np * 3; k++) {
        uint64_t r = vv_rng_u64(&rng);
        int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) + (int32_t)((r >> 32) & 0xffff) +
                      (int32_t)(r >> 48) - 131070;
        float v = clampf(img[k] + (float)sum * ns, 0.0f, 255.0f);
        out->rgb[k] = (uint8_t)(v + 0.5f);
    }

    if (masks) {
        masks->n = n;
        masks->w = w;
        masks->h = h;
        for (int i = 0; i < n; i++) {
            masks->visible[i] = malloc(np * sizeof(float));
            masks->interior[i] = malloc(np * sizeof(float));
            if (!masks->visible[i] || !masks->interior[i]) goto oom;
            layers_visible(&L, i, masks->visible[i], masks->interior[i]);
        }
        for (int i = 0; i < n; i++) { // hand the coverage arrays over
            masks->full[i] = L.cov[i];
            masks->full_total[i] = L.total[i];
            L.cov[i] = NULL;
        }
        masks->base = base;
        base = NULL;
    }
    free(base);
    free(img);
    layers_free(&L);
    return VISVM_OK;
oom:
    rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory rendering scene %llu", (unsigned long long)s->seed);
fail:
    vv_world_masks_free(masks);
    vv_image_free(out);
    free(base);
    free(img);
    layers_free(&L);
    return rc;
}

int vv_world_icon_mask(int cls, int side, float frac, int supersample, float *mask, vv_error *e) {
    if (cls < 0 || cls >= vv_world_n_classes()) return vv_err(e, VISVM_ERR_INVALID, "icon mask: bad class %d", cls);
    if (side <= 0 || side > 4096 || !(frac > 0.0f && frac <= 1.0f) || supersample < 1 || supersample > 16 || !mask)
        return vv_err(e, VISVM_ERR_INVALID, "icon mask: bad side %d, frac %g or supersample %d", side, (double)frac,
                      supersample);
    memset(mask, 0, (size_t)side * side * sizeof(float));
    vv_world_object o = {0};
    o.cls = cls;
    o.cx = o.cy = 0.5f * (float)side;
    o.extent = frac * (float)side;
    icon_ctx c = {cls, o.cx, o.cy, o.extent};
    float half = 0.5f * o.extent;
    raster(icon_px, &c, o.cx - half, o.cy - half, o.cx + half, o.cy + half, supersample, 0.0f, mask, NULL, side, side);
    return VISVM_OK;
}

float vv_world__icon_cut(int cls, int side, float f) {
    // Area profile of the icon along the axis, on a G x G grid of the unit box.
    enum { G = 64 };
    float mass[G] = {0}, total = 0.0f;
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            float a = ((float)i + 0.5f) / (float)G - 0.5f, b = ((float)j + 0.5f) / (float)G - 0.5f;
            bool horiz = side < 2;
            // slice index k runs from the occluded side inwards
            int k = (side == 0 || side == 2) ? i : G - 1 - i;
            if (icon_sdf(cls, horiz ? a : b, horiz ? b : a) < 0.0f) {
                mass[k] += 1.0f;
                total += 1.0f;
            }
        }
    float want = f * total, cum = 0.0f, depth = 1.0f; // depth: fraction of the box from the side
    for (int k = 0; k < G; k++) {
        if (cum + mass[k] >= want && mass[k] > 0.0f) {
            depth = ((float)k + (want - cum) / mass[k]) / (float)G;
            break;
        }
        cum += mass[k];
    }
    return (side == 0 || side == 2) ? depth - 0.5f : 0.5f - depth;
}
