#!/usr/bin/env bash
# The README's main-job command. Today: build visvm, check it against the
# llama.cpp golden set, and caption the golden test image with the tiny random
# models (random weights: the text is noise by construction). The synthetic
# world and its trained models will replace this with `visvm demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
golden="${VISVM_GOLDEN_DIR:-../shared/golden}"
if [ -f "$golden/index.json" ]; then
  ./build/visvm golden "$golden"
  echo
  echo "== visvm caption (tiny random LLaVA-1.6 models from $golden)"
  ./build/visvm caption -m "$golden/models/tiny-llama-q4_0.gguf" --mmproj "$golden/models/mmproj-llava16-f16.gguf" \
    --image "$golden/images/test-image.png" -p "What is shown in this image?" -n 24
else
  echo "golden data not found at $golden; set VISVM_GOLDEN_DIR"
  ./build/visvm --help
fi
