#!/usr/bin/env bash
# train_speed.sh - training speed of the tiny VLM: visvm's C trainer vs a PyTorch
# reference of the same model and batches (issue 3, point 7). Benchmark only, not a test.
#
#   bench/train_speed.sh [THREADS]          (default: all cores)
#
# Environment (defaults):
#   STEPS=20          timed steps per run (both implementations, the same batches)
#   VISVM_WARMUP=20   visvm steps before the timed window: 0 or a multiple of 20 (the
#                     trainer prints its progress line every 20 steps and at the last one)
#   TORCH_WARMUP=5    PyTorch warm-up steps
#   ROUNDS=2          visvm and PyTorch runs alternate ROUNDS times; medians are reported
#   PYTHON=/usr/bin/python3   an interpreter with Debian's python3-torch
#   SKIP_BUILD=1      use the existing build/ as it is
#
# visvm is timed from its own output: `visvm train vlm` prints "N tok/s" with
# N = target tokens / (elapsed since the start / steps done) at steps 20, 40, ... and at
# the last; with the per-step token counts of OUT/vlm-train.log that gives the elapsed
# time at each printed step, and the timed window is the difference. Its time includes
# the trainer's data work (render + captions + tokenization, reported as data_ms) and
# grad clipping + AdamW; PyTorch gets random images and ids of the same shapes.
# Tokens are counted as visvm counts them: target (caption + EOS) tokens per step.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-$(nproc)}
STEPS=${STEPS:-20}
VISVM_WARMUP=${VISVM_WARMUP:-20}
TORCH_WARMUP=${TORCH_WARMUP:-5}
ROUNDS=${ROUNDS:-2}
PY=${PYTHON:-/usr/bin/python3}
if (( VISVM_WARMUP % 20 )); then echo "train_speed.sh: VISVM_WARMUP must be 0 or a multiple of 20" >&2; exit 2; fi
"$PY" -c 'import torch' 2>/dev/null || { echo "train_speed.sh: $PY has no torch (apt-get install python3-torch)" >&2; exit 2; }

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j2 >/dev/null
fi
TMP=$(mktemp -d /tmp/train_speed.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BLAS_INC=$(sed -n 's/^OPENBLAS_INCLUDE_DIR:PATH=//p' build/CMakeCache.txt)
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc ${BLAS_INC:+-I"$BLAS_INC"} bench/vlm_batch_shapes.c build/libvisvm.a \
    $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o "$TMP/vlm_batch_shapes"
TOTAL=$((VISVM_WARMUP + STEPS))
"$TMP/vlm_batch_shapes" "$TOTAL" 32 32 4 160 1 "$THREADS" > "$TMP/shapes.json"

# visvm re-executes itself with OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs unless the
# variable is set; PyTorch (the same Debian OpenBLAS) gets the same kernels.
if [[ -z "${OPENBLAS_CORETYPE:-}" ]] && grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo &&
    grep -qw avx512vl /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
fi
echo "threads $THREADS, $STEPS timed steps (visvm after $VISVM_WARMUP, PyTorch after $TORCH_WARMUP warm-up steps)," \
     "$ROUNDS rounds, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-default}"

for r in $(seq 1 "$ROUNDS"); do
    build/visvm train vlm --steps "$TOTAL" --threads "$THREADS" --ckpt-every 0 --out "$TMP/vlm$r" > "$TMP/visvm$r.txt"
    OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$PY" bench/torch_vlm.py --shapes "$TMP/shapes.json" \
        --timed-from "$VISVM_WARMUP" --warmup "$TORCH_WARMUP" --steps "$STEPS" --threads "$THREADS" \
        --expect-params "$(sed -n 's/^tiny VLM: \([0-9]*\) parameters.*/\1/p' "$TMP/visvm$r.txt")" --json > "$TMP/torch$r.txt"
    cat "$TMP/visvm$r.txt" "$TMP/torch$r.txt" | grep -v '^{' | sed 's/^/  /'
done

"$PY" - "$TMP" "$ROUNDS" "$VISVM_WARMUP" "$STEPS" "$THREADS" <<'EOF'
import json, re, statistics, sys
tmp, rounds, w, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
shapes = json.load(open(f"{tmp}/shapes.json"))
want = [sum(l - a for l, a in zip(s["len"], s["ans0"])) for s in shapes["steps"]]
vis, tor, blas = [], [], []
for r in range(1, rounds + 1):
    tok = {}
    for line in open(f"{tmp}/vlm{r}/vlm-train.log").read().splitlines()[1:]:
        f = line.split("\t")
        tok[int(f[0])] = int(f[2])
    if [tok[s] for s in sorted(tok)] != want:
        sys.exit("train_speed.sh: visvm's batches differ from bench/vlm_batch_shapes.c's (tokens per step)")
    el, prev = {0: 0.0}, 0
    for m in re.finditer(r"vlm step\s+(\d+)/\d+\s+loss \S+\s+lr \S+\s+(\d+) tok/s", open(f"{tmp}/visvm{r}.txt").read()):
        k, rate = int(m.group(1)), float(m.group(2))
        run = [tok[s] for s in range(prev + 1, k + 1)]
        el[k] = k * (sum(run) / len(run)) / rate  # the trainer's rate = window tokens/step / (elapsed / k)
        prev = k
    if w not in el or w + n not in el:
        sys.exit("train_speed.sh: progress lines at steps %d and %d not found" % (w, w + n))
    vis.append(sum(tok[s] for s in range(w + 1, w + n + 1)) / (el[w + n] - el[w]))
    t = json.loads([l for l in open(f"{tmp}/torch{r}.txt") if l.startswith("{")][-1])
    tor.append(t["tok_s"])
    blas = t["blas"]
v, t = statistics.median(vis), statistics.median(tor)
tps = sum(want[w:w + n]) / n
data_ms = shapes["data_ms"]
v_model = tps / (tps / v - data_ms / 1000)  # estimate: visvm without its data work
print()
print(f"{'':8} {'tok/s (median)':>15} {'ms/step':>9}   rounds")
print(f"{'visvm':8} {v:15.0f} {1000 * tps / v:9.1f}   " + " ".join(f"{x:.0f}" for x in vis))
print(f"{'PyTorch':8} {t:15.0f} {1000 * tps / t:9.1f}   " + " ".join(f"{x:.0f}" for x in tor))
print(f"ratio visvm / PyTorch: {v / t:.2f}x  ({tps:.0f} target tokens/step; visvm's time includes "
      f"{data_ms:.0f} ms/step of data work that PyTorch skips; PyTorch BLAS: {', '.join(blas) or '?'})")
print(f"without the data work (measured apart by bench/vlm_batch_shapes.c) visvm would be {v_model:.0f} tok/s, "
      f"{v_model / t:.2f}x")
print(json.dumps({"bench": "train_speed", "visvm_tok_s": round(v, 1), "torch_tok_s": round(t, 1),
                  "ratio": round(v / t, 3), "ratio_excl_data": round(v_model / t, 3),
                  "threads": threads, "steps": n, "rounds": rounds,
                  "tokens_per_step": round(tps, 1), "visvm_data_ms": data_ms, "torch_blas": blas}))
EOF
