#!/usr/bin/env bash
# Retrains every shipped world model from scratch with visvm's own C trainer,
# the exact recipe of models/world (2 cores; CLIP 2000 steps ~69 min while
# sharing the cores + 1500 continued ~39 min alone, VLM 2000 steps on CLIP's frozen tower ~14 min while
# sharing, value data: responses ~5 min while sharing + rewards ~40 s alone,
# value model 4000 steps ~24 min alone, CLIP-backbone value head ~1 min), then
# evaluates them. Usage: scripts/train_world.sh [OUT_DIR]   (default models/world)
# Each stage logs to OUT_DIR/*.log, writes a loss curve (*.svg) and resumes
# from its checkpoint when re-run with RESUME=1.
# STAGES="3 4 5" runs only those stages (the others' files must be in OUT_DIR);
# CLIP_ARGS replaces stage 1's model options, VLM_ARGS adds to stage 2. Only a
# new value model, say:  mkdir -p X && cp models/world/{clip,vlm-*}.gguf X/ && STAGES="3 4 5" scripts/train_world.sh X
# (A new CLIP needs a new VLM too: the VLM's tower is the CLIP's.)
# Run one stage at a time: two visvm processes on 2 cores slow each other far
# more than 2x (each thread pool spins waiting for its workers).
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
STAGES=" ${STAGES:-1 2 3 4 5} "
stage() { [[ "$STAGES" == *" $1 "* ]]; }

# 1. reward CLIP (image tower + text tower, contrastive with hard negatives): hybrid tower
#    (conv stem with BatchNorm), max pooling, object and per-patch heads, 2000 steps (~69 min sharing
#    the cores): the captioner's tower, kept as $WORK/clip-tower.gguf; then the same run continued
#    from its step-2000 checkpoint under a 3500-step cosine schedule (~39 min alone): the reward
#    (same-theme probe 78% -> 87%; README "Results")
if stage 1; then
$V train clip --out "$OUT" --steps "${CLIP_STEPS:-2000}" --until "${CLIP_UNTIL:-0}" \
   ${CLIP_ARGS:---stem 3 --stem-bn --max-pool --aux-weight 20 --dense-weight 3} $R |
    tee "$OUT/clip-stdout.log"
cp "$OUT/clip.gguf" "$WORK/clip-tower.gguf"
$V train clip --out "$OUT" --steps "${CLIP_CONT_STEPS:-3500}" --resume \
   ${CLIP_ARGS:---stem 3 --stem-bn --max-pool --aux-weight 20 --dense-weight 3} |
    tee -a "$OUT/clip-stdout.log"
fi
# 2. captioner, LLaVA's way: the step-2000 CLIP's vision tower, frozen; projector and decoder trained on captions
if stage 2; then
$V train vlm --out "$OUT" --steps "${VLM_STEPS:-2000}" --init-vision "$WORK/clip-tower.gguf" --freeze-vision ${VLM_ARGS:-} $R |
    tee "$OUT/vlm-stdout.log"
fi
# 3. VisVM data: five responses per training image (6000 images), CLIP rewards per sentence
if stage 3; then
$V world gen --split train --start 500000 --n "${VALUE_IMAGES:-6000}" --out "$WORK/value-train"
$V world gen --split val --start 500000 --n 300 --out "$WORK/value-val"
$V generate --world "$WORK/value-train" --out "$WORK/gen-train.jsonl" -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf"
$V generate --world "$WORK/value-val" --out "$WORK/gen-val.jsonl" -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf"
$V reward --in "$WORK/gen-train.jsonl" --out "$WORK/rw-train.jsonl" --clip "$OUT/clip.gguf"
$V reward --in "$WORK/gen-val.jsonl" --out "$WORK/rw-val.jsonl" --clip "$OUT/clip.gguf" --world "$WORK/value-val" |
    tee "$OUT/reward-val.log"
fi
# 4. value model by TD(0): CLIP's tower (frozen), a new projector, the policy's decoder
#    (starting from the policy's projector too, --vlm-mmproj, it learned no within-image ranking: README)
if stage 4; then
$V train value --rewards "$WORK/rw-train.jsonl" --val "$WORK/rw-val.jsonl" --val-world "$WORK/value-val" --clip "$OUT/clip.gguf" \
   --policy "$OUT/vlm-text.gguf" --out "$OUT" --steps "${VALUE_STEPS:-4000}" |
    tee "$OUT/value-stdout.log"
# 4b. a value model on the reward CLIP's own frozen features (phi = [i*t, t, i]), LSTD on the same TD pairs (~1 min)
$V train head --clip "$OUT/clip.gguf" --rewards "$WORK/rw-train.jsonl" --val "$WORK/rw-val.jsonl" \
   --val-world "$WORK/value-val" -o "$OUT/value-clip.gguf" | tee "$OUT/value-clip.log"
fi
# 5. the results table and the compute-scaling sweep (README "Results")
if stage 5; then
$V eval -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf" --reward "$OUT/clip.gguf" \
   --value "$OUT/value-text.gguf" --value-mmproj "$OUT/value-mmproj.gguf" \
   -s greedy,sample,bon-clip,bon-visvm,clip-prm,visvm,random,oracle -n 500 --split test -q \
   --json "$OUT/eval-test.json" --markdown "$OUT/eval-test.md"
$V eval -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf" --reward "$OUT/clip.gguf" \
   --value "$OUT/value-text.gguf" --value-mmproj "$OUT/value-mmproj.gguf" \
   -s greedy -n 500 --split test -q --sweep 2,4,8,16 --svg "$OUT/scaling.svg" \
   --json "$OUT/eval-sweep.json" --markdown "$OUT/eval-sweep.md"
# the same with the CLIP-backbone value model (stage 4b)
$V eval -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf" --reward "$OUT/clip.gguf" \
   --value "$OUT/value-clip.gguf" --value-mmproj "$OUT/clip.gguf" \
   -s greedy,clip-prm,visvm,bon-visvm -n 500 --split test -q \
   --json "$OUT/eval-value-clip.json" --markdown "$OUT/eval-value-clip.md"
$V eval -m "$OUT/vlm-text.gguf" --mmproj "$OUT/vlm-mmproj.gguf" --reward "$OUT/clip.gguf" \
   --value "$OUT/value-clip.gguf" --value-mmproj "$OUT/clip.gguf" \
   -s greedy -n 500 --split test -q --sweep 2,4,8,16 --svg "$OUT/scaling-value-clip.svg" \
   --json "$OUT/eval-sweep-value-clip.json" --markdown "$OUT/eval-sweep-value-clip.md"
fi
echo "models and results in $OUT"
