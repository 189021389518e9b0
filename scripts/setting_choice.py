#!/usr/bin/env python3
"""Which setting (theme) each search strategy commits its captions to.

Usage: scripts/setting_choice.py WORLD_DIR CAPTIONS.jsonl
  WORLD_DIR: made by `visvm world gen` (scenes.jsonl, in the order eval read it)
  CAPTIONS.jsonl: `visvm eval --world WORLD_DIR --captions FILE` (search trees)

For every step-search strategy: in how many captions the first chosen sentence
that names a setting names the scene's own, in how many steps a wrong setting
was among the candidates, how often a wrong one was chosen although a right
one was offered (what a scorer that judges settings could fix), and CHAIRs of
the captions after a right and after a wrong setting. Strategies without
search trees (greedy, sample) are skipped.
"""
import json
import re
import sys
from collections import defaultdict

THEMES = ["kitchen", "beach", "park", "office", "street", "bathroom"]


def theme_of(text):
    found = [t for t in THEMES if re.search(r"\b" + t + r"\b", text.lower())]
    return found[0] if found else None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    scenes = [json.loads(line) for line in open(f"{sys.argv[1]}/scenes.jsonl")]
    by = defaultdict(list)
    for line in open(sys.argv[2]):
        d = json.loads(line)
        by[d["strategy"]].append(d)
    print("| strategy | setting right | wrong | steps offering a wrong one | wrong chosen, right offered | "
          "CHAIRs after right | after wrong |\n|---|---|---|---|---|---|---|")
    for name, caps in by.items():
        if len(caps) != len(scenes):
            sys.exit(f"{name}: {len(caps)} captions for {len(scenes)} scenes")
        right = wrong = offered_wrong = fixable = h_right = h_wrong = 0
        for sc, d in zip(scenes, caps):
            step = next((s for s in d["steps"] if any(c["chosen"] and theme_of(c["text"]) for c in s)), None)
            if step is None:
                continue
            chosen = theme_of(next(c["text"] for c in step if c["chosen"]))
            named = {theme_of(c["text"]) for c in step} - {None}
            offered_wrong += any(t != sc["theme"] for t in named)
            halluc = len(d["hallucinated"]) > 0
            if chosen == sc["theme"]:
                right += 1
                h_right += halluc
            else:
                wrong += 1
                h_wrong += halluc
                fixable += sc["theme"] in named
        if right + wrong == 0:
            continue
        print(f"| {name} | {right} | {wrong} | {offered_wrong} | {fixable} | {100 * h_right / max(right, 1):.1f} | "
              f"{100 * h_wrong / max(wrong, 1):.1f} |")


if __name__ == "__main__":
    main()
