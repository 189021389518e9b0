#!/bin/sh
# visvm eval's paired comparison: the JSON's discordant-caption counts for
# oracle against greedy equal those counted from --captions' hallucination lists,
# and the p-value is the exact sign test's (checked here in awk); and --per-temp.
# Usage: eval_paired.sh VISVM MODELS_DIR
set -eu
v=$1 m=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$v" eval -m "$m/vlm-text.gguf" --mmproj "$m/vlm-mmproj.gguf" --reward "$m/clip.gguf" --split fresh --start 700 -n 40 \
    -s greedy,oracle -q --json "$d/e.json" --captions "$d/c.jsonl" --markdown "$d/e.md" > "$d/out.txt"
cat "$d/out.txt"
counts=$(awk '{ o = ($0 ~ /"strategy":"oracle"/); h = ($0 !~ /"hallucinated":\[\]/);
                if (o) b[nb++] = h; else a[na++] = h }
              END { if (na != 40 || nb != 40) exit 1;
                    for (i = 0; i < na; i++) { x += a[i] && !b[i]; y += b[i] && !a[i] }
                    k = x < y ? x : y; n = x + y; p = 0; c = 1;
                    for (i = 0; i <= k; i++) { p += c; c = c * (n - i) / (i + 1) }
                    p = 2 * p / 2 ^ n; if (p > 1) p = 1;
                    printf "%d %d %.3g %.4g\n", x, y, p, p }' "$d/c.jsonl")
set -- $counts
echo "from the captions: greedy only $1, oracle only $2, p $3"
[ "$1" -gt "$2" ] # the oracle hallucinates less
grep -q "\"strategy\": \"oracle\", \"against\": \"greedy\", \"only_against\": $1, \"only_strategy\": $2, \"p\": $4}" "$d/e.json"
grep -q "^| oracle | greedy | $1 | $2 | .* | $3 |" "$d/e.md"
# the paper's K samples per temperature: -k 3 --per-temp 2 gives (3 - 1) x 2 + 1 = 5 candidates per
# step, each temperature twice beside one greedy candidate
"$v" eval -m "$m/vlm-text.gguf" --mmproj "$m/vlm-mmproj.gguf" --reward "$m/clip.gguf" --split fresh --start 700 -n 3 \
    -s clip-prm -k 3 --per-temp 2 -q --captions "$d/k.jsonl" > "$d/k.txt"
grep -q "candidates per step 5," "$d/k.txt"
g=$(grep -o '"temp":-1.00' "$d/k.jsonl" | wc -l)
t1=$(grep -o '"temp":0.10' "$d/k.jsonl" | wc -l)
t9=$(grep -o '"temp":0.90' "$d/k.jsonl" | wc -l)
echo "greedy candidates $g, at 0.1: $t1, at 0.9: $t9"
[ "$g" -gt 0 ] && [ "$t1" -eq $((2 * g)) ] && [ "$t9" -eq $((2 * g)) ]
