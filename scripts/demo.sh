#!/usr/bin/env bash
# The README's main-job command: builds visvm and runs `visvm demo` on the
# shipped tiny world models (models/world): new scenes from the fresh split,
# each captioned by greedy decoding, CLIP-PRM search and VisVM search, printed
# side by side with hallucinated objects marked, the CHAIR table, and an HTML
# report (visvm-demo.html) with every search tree. Extra arguments go to
# `visvm demo` (e.g. -n 20).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
exec ./build/visvm demo "$@"
