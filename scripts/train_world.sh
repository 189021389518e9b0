#!/usr/bin/env bash
# Retrains every shipped world model from scratch with visvm's own C trainer
# (2 cores: about 3 h for CLIP + VLM, under 1 h for the value model), then
# evaluates them. Usage: scripts/train_world.sh [OUT_DIR]   (default models/world)
# Each stage logs to OUT_DIR/*.log, writes a loss curve (*.svg) and resumes
# from its checkpoint when re-run with RESUME=1.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-models/world}"
WORK="${WORK:-build/world-data}"
V=./build/visvm
R=""
[ "${RESUME:-0}" = 1 ] && R="--resume"
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
mkdir -p "$OUT" "$WORK"

# 1. reward CLIP (image tower + text tower, contrastive with hard negatives)
$V train clip --out "$OUT" --steps "${CLIP_STEPS:-3000}" $R | tee "$OUT/clip-stdout.log"
# 2. captioner: LLaVA architecture with its own, lower-resolution view
$V train vlm --out "$OUT" --steps "${VLM_STEPS:-4000}" $R | tee "$OUT/vlm-stdout.log"
# 3. VisVM data: five responses per training image, CLIP rewards per sentence
$V world gen --split train --start 500000 --n "${VALUE_IMAGES:-3000}" --out "$WORK/value-train"
$V world gen --split val --start 500000 --n 300 --out "$WORK/value-val"
$V generate --world "$WORK/value-train" --out "$WORK/gen-train.jsonl" -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf"
$V generate --world "$WORK/value-val" --out "$WORK/gen-val.jsonl" -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf"
$V reward --in "$WORK/gen-train.jsonl" --out "$WORK/rw-train.jsonl" --clip "$OUT/clip.gguf"
$V reward --in "$WORK/gen-val.jsonl" --out "$WORK/rw-val.jsonl" --clip "$OUT/clip.gguf"
# 4. value model by TD(0)
$V train value --rewards "$WORK/rw-train.jsonl" --val "$WORK/rw-val.jsonl" --clip "$OUT/clip.gguf" \
   --policy "$OUT/vlm-text.gguf" --out "$OUT" --steps "${VALUE_STEPS:-3000}" | tee "$OUT/value-stdout.log"
echo "models in $OUT; evaluate with scripts/eval_world.sh"
