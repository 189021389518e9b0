#!/usr/bin/env python3
"""What kind of hallucination a captioner makes on the synthetic world.

Usage: scripts/halluc_kinds.py WORLD_DIR RESPONSES.jsonl
  WORLD_DIR: made by `visvm world gen` (scenes.jsonl, synonyms.txt)
  RESPONSES.jsonl: `visvm generate` output, or `visvm reward` output (then the
  mean CLIP reward of each kind is printed too)

Each distinct (image, sentence) that names a class absent from the scene is
sorted by what the scene has: an object of the same colour at the same place
(a real object given the wrong class: a visual confusion), one of the same
colour elsewhere, one at the same place in another colour, or none of these
(an invented object, e.g. from the theme's language prior). Also: how often a
response names the scene's setting (theme) wrongly, and the mean number of
absent-class mentions per response after a right and after a wrong setting
(a wrong global sentence that the rest of the caption follows is the long
horizon a value model could foresee).
"""
import json
import re
import sys
from collections import defaultdict

COLOURS = ["red", "orange", "yellow", "green", "blue", "purple", "black", "white", "pink", "brown", "gray"]
PLACES = ["top left", "top right", "bottom left", "bottom right", "top", "bottom", "left", "right", "center"]
KEYS = ["temp_02", "temp_04", "temp_06", "temp_08", "greedy"]
THEMES = ["kitchen", "beach", "park", "office", "street", "bathroom"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    world, resp = sys.argv[1], sys.argv[2]
    syn = {}
    for line in open(f"{world}/synonyms.txt"):
        words = [w.strip() for w in line.split(",") if w.strip()]
        for w in words:
            syn[w] = words[0]
    scenes = {}
    for line in open(f"{world}/scenes.jsonl"):
        s = json.loads(line)
        scenes[s["image"]] = s
    counts, rewards = defaultdict(int), defaultdict(list)
    setting = defaultdict(lambda: [0, 0])  # responses, absent-class mentions
    for n, line in enumerate(open(resp), 1):
        d = json.loads(line)
        sc = scenes.get(d.get("image"))
        if sc is None:
            sys.exit(f"{resp}:{n}: image {d.get('image')} is not in {world}/scenes.jsonl")
        if "rewards" in d:
            sents = {s: r for k in d["rewards"].values() for s, r in k.items() if s}
        else:
            sents = {}
            for k in KEYS:
                for s in re.findall(r"[^.!?]+[.!?]", d.get(k, "")):
                    sents.setdefault(s.strip(), None)
        objs = sc["objects"]
        present = {o["class"] for o in objs}
        for k in KEYS:  # whole responses (generate's layout; reward files keep it too)
            text = d.get(k, "")
            if not isinstance(text, str) or not text:
                continue
            low = text.lower()
            named_th = [t for t in THEMES if re.search(rf"\b{t}\b", low)]
            key = "names no setting" if not named_th else "right setting" if named_th == [sc["theme"]] else "wrong setting"
            absent = sum(syn[w] not in present for w in re.findall(r"[a-z]+", low) if w in syn)
            setting[key][0] += 1
            setting[key][1] += absent
        for s, r in sents.items():
            low = s.lower()
            named = [syn[w] for w in re.findall(r"[a-z]+", low) if w in syn]
            if not named:
                continue
            if all(c in present for c in named):
                kind = "names only present classes"
            else:
                col = [c for c in COLOURS if re.search(rf"\b{c}\b", low)]
                place = next((p for p in PLACES if p in low), None)
                if any(o["color"] in col and o["position"] == place for o in objs):
                    kind = "absent class, a present object's colour and place"
                elif any(o["color"] in col for o in objs):
                    kind = "absent class, a present object's colour"
                elif any(o["position"] == place for o in objs):
                    kind = "absent class, a present object's place"
                else:
                    kind = "absent class, no present object's colour or place"
            counts[kind] += 1
            if r is not None:
                rewards[kind].append(r)
    print(f"distinct (image, sentence) pairs naming an object, {len(scenes)} scenes:")
    for k in sorted(counts, key=lambda k: -counts[k]):
        extra = f", mean reward {sum(rewards[k]) / len(rewards[k]):.4f}" if rewards[k] else ""
        print(f"  {counts[k]:6d}  {k}{extra}")
    print("responses by the setting they name:")
    for k, (n, a) in sorted(setting.items()):
        print(f"  {n:6d}  {k}, {a / n:.2f} absent-class mentions per response")


if __name__ == "__main__":
    main()
