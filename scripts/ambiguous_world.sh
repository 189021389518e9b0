#!/usr/bin/env bash
# A diagnostic variant of the world in which the setting sentence is uncertain:
# the theme's background tint jitters by 60 (default 20), so a scene's setting
# must be read from its objects, and a captioner sometimes names the wrong one
# and then lists that setting's objects (the long horizon world-notes describe).
# Trains a captioner on it (the shipped captioner's frozen tower, 2000 steps,
# ~7 min), makes its TD data (~2 min), fits the value model on the reward
# CLIP's features (~1 min) and, with VALUE_STEPS > 0, the paper's VLM value
# model (~6 s per 100 steps), then evaluates on 500 test and 500 fresh scenes
# of that world. The reward CLIP is the shipped one (trained on the default
# world). Results: README "Results" ("An ambiguous setting").
# Usage: scripts/ambiguous_world.sh [OUT_DIR]   (default build/ambiguous)
set -euo pipefail
cd "$(dirname "$0")/.."
A="${1:-build/ambiguous}"
V=./build/visvm
W=models/world
J="${TINT_JITTER:-60}"
mkdir -p "$A"
[ -x "$V" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j "$(nproc)" >/dev/null; }
M=(-m "$A/vlm-text.gguf" --mmproj "$A/vlm-mmproj.gguf")
$V train vlm --out "$A" --steps 2000 --init-vision "$W/vlm-mmproj.gguf" --freeze-vision --world-tint-jitter "$J" |
    tee "$A/vlm-stdout.log"
$V world gen --split train --start 500000 --n 6000 --out "$A/vtrain" -q --tint-jitter "$J"
$V world gen --split val --start 500000 --n 300 --out "$A/vval" -q --tint-jitter "$J"
$V world gen --split test --start 0 --n 500 --out "$A/test" -q --tint-jitter "$J"
$V world gen --split fresh --start 0 --n 500 --out "$A/fresh" -q --tint-jitter "$J"
$V generate --world "$A/vtrain" --out "$A/gen-train.jsonl" "${M[@]}"
$V generate --world "$A/vval" --out "$A/gen-val.jsonl" "${M[@]}"
$V reward --in "$A/gen-train.jsonl" --out "$A/rw-train.jsonl" --clip "$W/clip.gguf"
$V reward --in "$A/gen-val.jsonl" --out "$A/rw-val.jsonl" --clip "$W/clip.gguf" --world "$A/vval" | tee "$A/reward-val.log"
scripts/halluc_kinds.py "$A/vval" "$A/rw-val.jsonl" | tee "$A/halluc-kinds.txt"
$V train head --clip "$W/clip.gguf" --rewards "$A/rw-train.jsonl" --val "$A/rw-val.jsonl" --val-world "$A/vval" \
   -o "$A/value-clip.gguf" | tee "$A/value-clip.log"
S=greedy,clip-prm,visvm,clip-mc,random,oracle,oracle-mc
for split in test fresh; do
    $V eval --world "$A/$split" "${M[@]}" --value "$A/value-clip.gguf" --value-mmproj "$W/clip.gguf" -s "$S" -q \
       --markdown "$A/eval-$split.md"
done
if [ "${VALUE_STEPS:-0}" -gt 0 ]; then
    $V train value --rewards "$A/rw-train.jsonl" --val "$A/rw-val.jsonl" --val-world "$A/vval" --clip "$W/clip.gguf" \
       --policy "$A/vlm-text.gguf" --out "$A/value" --steps "$VALUE_STEPS" | tee "$A/value-stdout.log"
    for split in test fresh; do
        $V eval --world "$A/$split" "${M[@]}" --value "$A/value/value-text.gguf" --value-mmproj "$A/value/value-mmproj.gguf" \
           -s visvm -q --markdown "$A/eval-$split-vlm-value.md"
    done
fi
echo "results in $A/eval-*.md"
