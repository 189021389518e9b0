#!/bin/sh
# `visvm chair` on a hand-worked COCO-format example: ground truth from
# instances + reference captions, synonyms, plurals, image ids given as numbers
# or file names, a caption of an unknown image skipped, JSON and JSONL input,
# and clear errors for bad input.
# Usage: chair_coco.sh VISVM
set -eu
v=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
printf 'person, man, woman, people\ndog, puppy\ncat, kitten\nbicycle, bike\n' > "$d/syn.txt"
cat > "$d/inst.json" <<'J'
{"images": [{"id": 1}, {"id": 2}],
 "annotations": [{"image_id": 1, "category_id": 18}, {"image_id": 2, "category_id": 17}],
 "categories": [{"id": 1, "name": "person"}, {"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]}
J
cat > "$d/ref.json" <<'J'
{"annotations": [{"image_id": 1, "caption": "A man with his dog."}]}
J
# image 1 (dog + a man in its reference caption): no hallucination, both objects named;
# image 2 (cat): kitten -> cat, puppy -> dog and bike -> bicycle hallucinated; image 5: unknown
cat > "$d/caps.json" <<'J'
[{"image_id": 1, "caption": "A man walks two dogs."},
 {"image_id": "COCO_val2014_000000000002.jpg", "caption": "A kitten sits next to a puppy and a bike."},
 {"image_id": 5, "caption": "A cat."}]
J
"$v" chair --captions "$d/caps.json" --instances "$d/inst.json" --coco-captions "$d/ref.json" --synonyms "$d/syn.txt" \
    --json "$d/out.json" --per-caption "$d/per.jsonl" > "$d/table.txt" 2> "$d/err.txt"
cat "$d/table.txt" "$d/err.txt" "$d/out.json"
# CHAIRs 1 of 2 captions, CHAIRi 2 of 5 mentions, recall 3 of 3 ground-truth objects
grep -q '"n_captions": 2, "chair_s": 50.000,' "$d/out.json"
grep -q '"chair_i": 40.000, "recall": 100.000,' "$d/out.json"
grep -q '"mentions": 5, "hallucinated_mentions": 2, "skipped_unknown_images": 1}' "$d/out.json"
grep -q 'id 5' "$d/err.txt"
grep -q '"mentions":\["cat","dog","bicycle"\],"hallucinated":\["dog","bicycle"\]' "$d/per.jsonl"
grep -q '"image_id":1,.*"hallucinated":\[\]' "$d/per.jsonl"
# without the reference captions the man of image 1 is a hallucination too
"$v" chair -c "$d/caps.json" --instances "$d/inst.json" --synonyms "$d/syn.txt" --json "$d/out2.json" > /dev/null 2>&1
grep -q '"chair_s": 100.000, .*"hallucinated_mentions": 3,' "$d/out2.json"
# JSONL with other keys gives the same totals
printf '{"id": 1, "text": "A man walks two dogs."}\n\n{"id": 2, "text": "A kitten sits next to a puppy and a bike."}\n' > "$d/caps.jsonl"
"$v" chair -c "$d/caps.jsonl" --instances "$d/inst.json" --coco-captions "$d/ref.json" --synonyms "$d/syn.txt" \
    --image-id-key id --caption-key text --json "$d/out3.json" > /dev/null
grep -q '"n_captions": 2, "chair_s": 50.000,.*"skipped_unknown_images": 0}' "$d/out3.json"
# bad input: a broken line is named, nothing is written; a missing key is named
printf '{"image_id": 1, "caption": "A dog."}\n{broken\n' > "$d/bad.jsonl"
if "$v" chair -c "$d/bad.jsonl" --instances "$d/inst.json" --synonyms "$d/syn.txt" --json "$d/bad.json" 2> "$d/e1.txt"; then exit 1; fi
grep -q 'bad.jsonl:2: invalid JSON' "$d/e1.txt" && test ! -e "$d/bad.json"
if "$v" chair -c "$d/caps.jsonl" --instances "$d/inst.json" --synonyms "$d/syn.txt" 2> "$d/e2.txt"; then exit 1; fi
grep -q 'needs "image_id"' "$d/e2.txt"
if "$v" chair -c "$d/caps.json" --instances "$d/inst.json" 2> /dev/null; then exit 1; fi
echo "chair_coco: all checks passed"
