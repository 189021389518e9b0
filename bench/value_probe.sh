#!/usr/bin/env bash
# value_probe.sh - does the value model's backbone know which sentences
# hallucinate, and does its head read it? A diagnostic benchmark (~5 min), not
# a test. On the TD data of scripts/train_world.sh's stage 3 (its WORK folder):
#  1. records of every distinct sentence of N_TRAIN training images and the 300
#     held-out images, through the policy VLM and through the value model
#     (bench/value_probe.c: last-token, mean and max final hidden states);
#  2. within-image and sibling AUC of the reward and of linear heads on those
#     states, fitted to the ground-truth label, the reward, the realised return
#     and by LSTD(0) (bench/value_probe.py probe);
#  3. the shipped value model with its head replaced by the LSTD head and by the
#     label-fitted head (ground truth: a diagnostic, not a recipe), each as the
#     VisVM scorer of `visvm eval` on 500 test, val and fresh scenes;
#  4. on the test scenes, how often CLIP-PRM and the label-fitted VisVM pick a
#     hallucinating candidate in steps that offer both kinds.
#
#   bench/value_probe.sh [WORK]        (default build/world-data)
#   env: N_TRAIN=3000 PYTHON=/usr/bin/python3 SKIP_BUILD=1 KEEP=DIR (keep the files there)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-build/world-data}
PY=${PYTHON:-/usr/bin/python3}
M=models/world
"$PY" -c 'import numpy' 2>/dev/null || { echo "value_probe.sh: $PY lacks numpy (apt-get install python3-numpy)" >&2; exit 2; }
for f in rw-train.jsonl rw-val.jsonl value-train/scenes.jsonl value-val/scenes.jsonl; do
    [[ -f "$WORK/$f" ]] || { echo "value_probe.sh: $WORK/$f missing (scripts/train_world.sh stage 3 makes it)" >&2; exit 2; }
done
if [[ -z "${SKIP_BUILD:-}" ]]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j2 >/dev/null
fi
if [[ -n "${KEEP:-}" ]]; then T=$KEEP; mkdir -p "$T"; else T=$(mktemp -d /tmp/value_probe.XXXXXX); trap 'rm -rf "$T"' EXIT; fi
BLAS_INC=$(sed -n 's/^OPENBLAS_INCLUDE_DIR:PATH=//p' build/CMakeCache.txt)
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc ${BLAS_INC:+-I"$BLAS_INC"} bench/value_probe.c build/libvisvm.a \
    $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o "$T/value_probe"
P="$T/value_probe"
V=build/visvm

"$PY" bench/value_probe.py tsv "$WORK/rw-train.jsonl" "${N_TRAIN:-3000}" "$T/train.tsv"
"$PY" bench/value_probe.py tsv "$WORK/rw-val.jsonl" 300 "$T/val.tsv"
for who in policy value; do
    if [[ $who == policy ]]; then TXT=$M/vlm-text.gguf MMP=$M/vlm-mmproj.gguf; else TXT=$M/value-text.gguf MMP=$M/value-mmproj.gguf; fi
    "$P" feat "$TXT" "$MMP" "$WORK/value-train/scenes.jsonl" "$T/train.tsv" "$T/$who-train.bin"
    "$P" feat "$TXT" "$MMP" "$WORK/value-val/scenes.jsonl" "$T/val.tsv" "$T/$who-val.bin"
    echo
    echo "## backbone: $who ($TXT)"
    head=()
    if [[ $who == value ]]; then "$P" gethead "$TXT" "$T/head-shipped.txt"; head=("$T/head-shipped.txt"); fi
    "$PY" bench/value_probe.py probe "$T/$who-train.bin" "$T/$who-val.bin" "$T/train.tsv" "$WORK/rw-train.jsonl" \
        "$T/val.tsv" "$WORK/rw-val.jsonl" "${head[@]}"
done

echo
echo "## VisVM search with refitted heads on the shipped value model (CHAIRs / CHAIRi, 500 scenes each)"
for mode in lstd label; do
    "$PY" bench/value_probe.py fit "$T/value-train.bin" "$T/train.tsv" "$WORK/rw-train.jsonl" $mode "$T/head-$mode.txt"
    "$P" sethead $M/value-text.gguf "$T/head-$mode.txt" "$T/value-$mode.gguf"
done
echo "| value head | test | val | fresh |"
echo "|---|---|---|---|"
for h in shipped lstd label; do
    if [[ $h == shipped ]]; then VT=$M/value-text.gguf; else VT=$T/value-$h.gguf; fi
    row="| $h |"
    for split in test val fresh; do
        r=$("$V" eval -s visvm --value "$VT" -n 500 --split $split -q | awk -F'|' '$2 ~ /visvm/ {gsub(/ /,"",$3); gsub(/ /,"",$4); print $3 " / " $4}')
        row="$row $r |"
    done
    echo "$row"
done

echo
echo "## picks in steps whose candidates mix clean and hallucinating sentences (500 test scenes)"
"$V" world gen --split test --n 500 --out "$T/test" >/dev/null 2>&1
"$V" eval --world "$T/test" -s clip-prm,visvm --value "$T/value-label.gguf" -q --captions "$T/caps.jsonl" >/dev/null
"$PY" bench/value_probe.py steps "$T/caps.jsonl" "$T/test" "$T/cand.tsv"
"$P" feat $M/value-text.gguf $M/value-mmproj.gguf "$T/test/scenes.jsonl" "$T/cand.tsv" "$T/cand.bin"
echo "(visvm = the label-fitted head)"
"$PY" bench/value_probe.py steps "$T/caps.jsonl" "$T/test" "$T/cand.tsv" "$T/cand.bin"
