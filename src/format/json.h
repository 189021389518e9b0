// json.h - checked reads of cJSON numbers shared by the JSON readers (HF
// configs, safetensors headers, COCO annotations, caption / training files).
#ifndef VV_JSON_H
#define VV_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

// 2^53: integers beyond it are not exact as JSON (double) numbers.
#define VV_JSON_MAX_EXACT 9007199254740992.0

// True when x is a number with an integer value in [lo, hi] (|lo|, |hi| <=
// 2^53), stored in *out. The range is checked before the cast: converting an
// out-of-range double is undefined, and cJSON's valueint saturates.
bool vv_json_int(const cJSON *x, double lo, double hi, int64_t *out);

#endif
