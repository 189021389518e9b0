#!/usr/bin/env bash
# The README's test command: installs dependencies, builds visvm twice
# (Release, and Debug with AddressSanitizer + UndefinedBehaviorSanitizer),
# the threaded tests once more with ThreadSanitizer,
# a third time with clang where clang is installed, and runs the whole CTest
# suite on each. Golden tests read ../shared/golden (or $VISVM_GOLDEN_DIR)
# and skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
jobs=$(nproc)
golden_arg=()
[ -n "${VISVM_GOLDEN_DIR:-}" ] && golden_arg=(-DVISVM_GOLDEN_DIR="$VISVM_GOLDEN_DIR")

echo "== Release build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVISVM_WERROR=ON "${golden_arg[@]}" >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== ASan/UBSan build + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVISVM_SANITIZE=ON -DVISVM_WERROR=ON "${golden_arg[@]}" >/dev/null
cmake --build build-asan -j "$jobs"
ctest --test-dir build-asan --output-on-failure -j "$jobs"
# ThreadSanitizer over the tests that run the thread pool, shared read-only
# models and several contexts at once (library + four tests: a few minutes).
echo "== TSan build + the threaded tests"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVISVM_SANITIZE_THREAD=ON -DVISVM_WERROR=ON "${golden_arg[@]}" >/dev/null
cmake --build build-tsan -j "$jobs" --target test_api test_matmul test_llama test_search
ctest --test-dir build-tsan --output-on-failure -j "$jobs" -R '^(test_api|test_matmul|test_llama|test_search)$'
# A third compiler where one is installed (not installed by deps.sh): the
# intrinsics code must stay portable (clang requires constant lane indices).
if command -v clang >/dev/null 2>&1; then
  echo "== clang Release build + tests"
  CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release -DVISVM_WERROR=ON "${golden_arg[@]}" >/dev/null
  cmake --build build-clang -j "$jobs"
  ctest --test-dir build-clang --output-on-failure -j "$jobs"
else
  echo "== clang not installed: clang build skipped"
fi
echo "all tests passed"
