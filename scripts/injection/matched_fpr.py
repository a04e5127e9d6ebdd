#!/usr/bin/env python3
"""Recall of held-out injections at matched false-positive rates, from the
row scores `hort bench injection` writes beside its feature cache
(data/bench/injection-scores-<model>.jsonl, each row scored by the head
trained without its source).

  python3 scripts/injection/matched_fpr.py data/bench/injection-scores-*.jsonl

Why: each run calibrates its own threshold, so two heads compared at 0.5
differ in where the threshold landed as much as in what they tell apart.
Here one threshold per file is set so that the given share of held-out
benign rows scores above it, and recall is read there (overall and German),
with AgentDojo left out too (its benign side is 21 mails, whose flags move
with how much mail the training held). Sources hort wrote are left out.
"""
import json
import sys

OWN = {"hort-mail-train", "hort-de", "hort-de2", "hort-eval", "hort-gen", "hort-ai-talk",
       "questions-hort", "policy-pages", "policy-pages-train", "sample-corpus"}
RATES = (0.002, 0.005, 0.01, 0.02, 0.05)


def main():
    print("| scores | without | " + " | ".join(f"FPR {r}" for r in RATES) + " |")
    print("|---|---|" + "---:|" * len(RATES))
    for path in sys.argv[1:]:
        rows = [json.loads(line) for line in open(path, encoding="utf-8")]
        rows = [r for r in rows if r["source"] not in OWN]
        for without in ((), ("agentdojo",)):
            rs = [r for r in rows if r["source"] not in without]
            benign = sorted((r["score"] for r in rs if r["label"] == "benign"), reverse=True)
            inj = [r for r in rs if r["label"] != "benign"]
            de = [r for r in inj if r["lang"] == "de"]
            cells = []
            for rate in RATES:
                t = benign[int(rate * len(benign))]
                found = sum(r["score"] > t for r in inj) / len(inj)
                found_de = sum(r["score"] > t for r in de) / max(1, len(de))
                cells.append(f"{found:.3f} (de {found_de:.2f})")
            name = path.rsplit("/", 1)[-1]
            print(f"| {name} | {', '.join(without) or '–'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
