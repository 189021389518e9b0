#!/usr/bin/env bash
# vit_twin.sh - does visvm's ViT training path learn like PyTorch's? Both train
# the shipped CLIP's vision tower (patch 8, width 128, 4 layers) with a linear
# head on one controlled task - the class (28) and colour (8) of a single large,
# clean object - from the same rendered data, schedule and optimiser, and print
# their validation accuracy every 100 steps side by side, then one JSON line.
# A diagnostic benchmark (minutes), not a test.
#
#   bench/vit_twin.sh [STEPS] [BATCH] [THREADS]      (defaults 600 32 all cores)
#   env: N_TRAIN=20000 N_VAL=1000 LR=1e-3 PYTHON=/usr/bin/python3 SKIP_BUILD=1
#        STEM=3 (hybrid tower with a conv stem, both sides) WORLD_SIZES=1 (the world's 10/18-px icons)
#        BN=1 (BatchNorm after each stem conv; needs STEM=3) MAXPOOL=1 (max over the tokens, not the mean)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-600}
BATCH=${2:-32}
THREADS=${3:-$(nproc)}
LR=${LR:-1e-3}
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "vit_twin.sh: $PY lacks torch/numpy (apt-get install python3-torch)" >&2; exit 2; }
if [[ -z "${SKIP_BUILD:-}" ]]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j2 >/dev/null
fi
TMP=$(mktemp -d /tmp/vit_twin.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BLAS_INC=$(sed -n 's/^OPENBLAS_INCLUDE_DIR:PATH=//p' build/CMakeCache.txt)
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc ${BLAS_INC:+-I"$BLAS_INC"} bench/vit_classify.c build/libvisvm.a \
    $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o "$TMP/vit_classify"
"$TMP/vit_classify" dump "$TMP/data.bin" "${N_TRAIN:-20000}" "${N_VAL:-1000}"
"$TMP/vit_classify" train "$TMP/data.bin" "$STEPS" "$BATCH" "$LR" "$THREADS" > "$TMP/c.txt"
OMP_NUM_THREADS=$THREADS "$PY" bench/vit_classify.py "$TMP/data.bin" "$STEPS" "$BATCH" "$LR" "$THREADS" > "$TMP/py.txt"
"$PY" - "$TMP/c.txt" "$TMP/py.txt" <<'PYEOF'
import json, os, sys
def load(p):
    out = {}
    for line in open(p):
        f = line.split()
        d = dict(zip(f[0::2], f[1::2]))
        out[int(d["step"])] = d
    return out
c, t = load(sys.argv[1]), load(sys.argv[2])
print(f"{'step':>6} | {'visvm class':>11} {'colour':>7} {'sec':>5} | {'PyTorch class':>13} {'colour':>7} {'sec':>5}")
for s in sorted(c):
    if s in t:
        print(f"{s:>6} | {c[s]['val_acc_class']:>11} {c[s]['val_acc_colour']:>7} {c[s]['sec']:>5} | "
              f"{t[s]['val_acc_class']:>13} {t[s]['val_acc_colour']:>7} {t[s]['sec']:>5}")
last = max(s for s in c if s in t)
print(json.dumps({"bench": "vit_twin", "steps": last, "stem": int(os.environ.get("STEM", "0")), "bn": int(os.environ.get("BN", "0")), "maxpool": int(os.environ.get("MAXPOOL", "0")), "world_sizes": bool(os.environ.get("WORLD_SIZES")),
                  "visvm": {"val_acc_class": float(c[last]["val_acc_class"]), "val_acc_colour": float(c[last]["val_acc_colour"]), "sec": float(c[last]["sec"])},
                  "torch": {"val_acc_class": float(t[last]["val_acc_class"]), "val_acc_colour": float(t[last]["val_acc_colour"]), "sec": float(t[last]["sec"])}}))
PYEOF
