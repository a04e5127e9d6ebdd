#!/usr/bin/env python3
"""Fits what a question's own keywords and their translation count in RRF
when it is asked across languages (`retrieve::RRF_ACROSS`; candidate lists
of `hort bench quality --lists`, training splits only).

  bench/fusion/fit_rrf.py LISTS.jsonl [LISTS2.jsonl ...]

Replays reciprocal rank fusion as `retrieve::rrf` does it (Σ w / (60 + rank)
over the lists a chunk is in, a document scored by its best chunk) with the
vectors (weight 1), the question's own keywords and their translation
(`translated_always`). A question counts as asked across languages as
`retrieve::asked_across_languages` reads it: a chunk in the other of German
and English among its 20 nearest by meaning (near: among the 5; far: below;
both get the same factors here). Prints the mean nDCG@10 over the files given
(one per training split and model) for each setting, best first, with
nDCG@10 per language pair.
"""
import itertools
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fit import load, ndcg10  # noqa: E402  (the same replay helpers)

GATE, WINDOW, K = 5, 20, 60.0
SHIPPED = (0.25, 0.25)


def across(row):
    ql = row["query_lang"]
    if not ql:
        return False
    other = {"de": "en", "en": "de"}[ql]
    return other in [l for _, _, l, _ in row["vector"][:WINDOW]]


def fuse(row, own, tr):
    o, t = (own, tr) if across(row) and row["translated_always"] else (1.0, 0.0)
    score = defaultdict(float)
    meta = {}
    for side, w in ((row["vector"], 1.0), (row["keyword"], o), (row["translated_always"], t)):
        for i, (cid, p, _, _) in enumerate(side):
            meta[cid] = p
            score[cid] += w / (K + i + 1)
    ranked = []
    for cid, _ in sorted(score.items(), key=lambda x: (-x[1], x[0])):
        if meta[cid] not in ranked:
            ranked.append(meta[cid])
    return ranked


def evaluate(rows, own, tr):
    nd = defaultdict(list)
    for r in rows:
        n = ndcg10(fuse(r, own, tr), r["relevant"])
        nd["all"].append(n)
        nd[r["lang"]].append(n)
    return {k: sum(v) / len(v) for k, v in nd.items()}


def main():
    sets = [(p, load([p])) for p in sys.argv[1:]]
    grid = []
    steps = [0.0, 0.25, 0.5, 0.75, 1.0]
    for own, tr in itertools.product(steps, steps):
        res = [evaluate(rows, own, tr) for _, rows in sets]
        grid.append((sum(r["all"] for r in res) / len(res), (own, tr), res))
    grid.sort(key=lambda g: -g[0])
    shipped = next(g for g in grid if g[1] == SHIPPED)
    print("mean nDCG | own tr | per set: all (pairs)")
    for g in grid[:10] + [shipped]:
        line = f"{g[0]:.3f}     | {g[1][0]:.2f} {g[1][1]:.2f} |"
        for r in g[2]:
            pairs = sorted(k for k in r if k != "all")
            line += f" {r['all']:.3f} (" + " ".join(f"{p} {r[p]:.3f}" for p in pairs) + ")"
        print(line)


main()
