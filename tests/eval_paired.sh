#!/bin/sh
# visvm eval's paired comparison: the JSON's discordant-caption counts for
# oracle against greedy equal those counted from --captions' hallucination lists,
# and the p-value is the exact sign test's (checked here in awk).
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
