#!/usr/bin/env bash
# clip_identity.sh - does a reward CLIP see which objects a scene holds? A
# linear probe of class presence on its image embeddings (4,000 training scenes,
# scored on 1,000 validation scenes: a present class ranked above an absent
# class of the same theme), and the CLIP's own cosine on minimal sentences
# ("There is a cup." against an absent same-theme class). Prints both and a
# JSON line. A diagnostic benchmark (a minute or two), not a test.
#
#   bench/clip_identity.sh [CLIP.gguf]          (default models/world/clip.gguf)
#   env: N_TRAIN=4000 N_VAL=1000 PYTHON=/usr/bin/python3 SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP=${1:-models/world/clip.gguf}
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "clip_identity.sh: $PY lacks torch/numpy (apt-get install python3-torch)" >&2; exit 2; }
if [[ -z "${SKIP_BUILD:-}" ]]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j2 >/dev/null
fi
TMP=$(mktemp -d /tmp/clip_identity.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BLAS_INC=$(sed -n 's/^OPENBLAS_INCLUDE_DIR:PATH=//p' build/CMakeCache.txt)
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc ${BLAS_INC:+-I"$BLAS_INC"} bench/clip_identity.c build/libvisvm.a \
    $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o "$TMP/clip_identity"
"$TMP/clip_identity" "$CLIP" "${N_TRAIN:-4000}" 0 "$TMP/train.bin" > /dev/null
VAL_SEED=1000000 # first seed of the validation split
COS=$("$TMP/clip_identity" "$CLIP" "${N_VAL:-1000}" "$VAL_SEED" "$TMP/val.bin")
PROBE=$("$PY" bench/clip_identity.py "$TMP/train.bin" "$TMP/val.bin")
echo "$CLIP: $COS; $PROBE"
"$PY" - "$CLIP" "$COS $PROBE" <<'PYEOF'
import json, sys
f = sys.argv[2].split()
d = dict(zip(f[0::2], f[1::2]))
print(json.dumps({"bench": "clip_identity", "clip": sys.argv[1],
                  "cosine_minimal_same_theme": float(d["cosine_minimal_same_theme"]),
                  "probe_same_theme": float(d["probe_same_theme"]), "probe_any_absent": float(d["probe_any_absent"])}))
PYEOF
