// json.c - see json.h.
#include "json.h"

#include <math.h>

bool vv_json_int(const cJSON *x, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(x)) return false;
    const double d = x->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d)) return false; // NaN fails the first test
    *out = (int64_t)d;
    return true;
}
