#!/usr/bin/env python3
"""Fits when and how much a question's translated keywords count
(`hort bench quality --lists`, training splits only).

  bench/fusion/fit_translation.py LISTS.jsonl [LISTS2.jsonl ...]

Replays weighted fusion as `retrieve::weighted` does it (each list's scores
min-max normalised over its candidates, weights applied, a document scored
by its best chunk) with three lists: the vectors (weight 1), the question's
own keywords (1 × own) and its translated keywords (1 × translation). A
question falls into one of three cases by where its nearest chunks by
meaning turn to the other language (as `retrieve::asked_across_languages`
reads them): *near* (among the 5 nearest), *far* (among the 20), *beyond*
(only further down the vector candidates), or none (no chunk in the other
language among them, or the question's language cannot be told: its own
words only). The grid varies what near and far count (own words and
translation alike for both) and what beyond counts, with the translation
searched whatever the vectors show (`translated_always`); it prints the
best settings by the mean nDCG@10 over the files given (one per training
split and model) and the one hort ships, with nDCG@10 and hit@1 per
language pair.
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fit import load, ndcg10, norm  # noqa: E402  (the same replay helpers)

GATE = 5
WINDOW = 20
OWN_ACROSS = 0.25
TRANSLATION = 0.5


def case(row):
    ql = row["query_lang"]
    if not ql:
        return "untold"
    other = {"de": "en", "en": "de"}[ql]
    langs = [l for _, _, l, _ in row["vector"][:WINDOW]]
    if other in langs[:GATE]:
        return "near"
    if other in langs:
        return "far"
    if other in [l for _, _, l, _ in row["vector"]]:
        return "beyond"
    return "none"


def fuse(row, none_own, none_tr, own_across=OWN_ACROSS, translation=TRANSLATION):
    c = case(row)
    translated = row["translated_always"]
    if c in ("near", "far") and translated:
        own, tr = own_across, translation
    elif c == "near":
        own, tr = 0.0, 0.0
    elif c == "beyond" and translated and none_tr > 0:
        own, tr = none_own, none_tr
    else:
        own, tr = 1.0, 0.0
    lists = [(row["vector"], 1.0), (row["keyword"], own), (translated, tr)]
    meta = {}
    score = defaultdict(float)
    for side, w in lists:
        for cid, p, l, _ in side:
            meta[cid] = p
        if w <= 0:
            continue
        for cid, x in norm(side).items():
            score[cid] += w * x
    ranked = []
    for cid, _ in sorted(score.items(), key=lambda t: (-t[1], t[0])):
        p = meta[cid]
        if p not in ranked:
            ranked.append(p)
    return ranked


def evaluate(rows, none_own, none_tr, own_across=OWN_ACROSS, translation=TRANSLATION):
    nd = defaultdict(list)
    h1 = defaultdict(list)
    for r in rows:
        ranked = fuse(r, none_own, none_tr, own_across, translation)
        n = ndcg10(ranked, r["relevant"])
        first = 1.0 if ranked and r["relevant"].get(ranked[0], 0) > 0 else 0.0
        for k in ("all", r["lang"]):
            nd[k].append(n)
            h1[k].append(first)
    mean = lambda v: sum(v) / len(v)
    return {k: mean(v) for k, v in nd.items()}, {k: mean(v) for k, v in h1.items()}


def main():
    sets = [(p, load([p])) for p in sys.argv[1:]]
    for path, rows in sets:
        cases = defaultdict(lambda: defaultdict(int))
        for r in rows:
            cases[r["lang"]][case(r)] += 1
        print(f"{path}: {len(rows)} questions; cases per pair:",
              {k: dict(v) for k, v in sorted(cases.items())})
    grid = []
    for own_a in [0.0, 0.25, 0.5]:
        for tr_a in [0.5, 0.75, 1.0, 1.5]:
            for own_n in [1.0, 0.5]:
                for tr_n in [0.0, 0.25, 0.5, 1.0]:
                    if tr_n == 0.0 and own_n != 1.0:
                        continue
                    res = [evaluate(rows, own_n, tr_n, own_a, tr_a) for _, rows in sets]
                    mean = sum(nd["all"] for nd, _ in res) / len(res)
                    grid.append((mean, (own_a, tr_a, own_n, tr_n), res))
    grid.sort(key=lambda t: -t[0])
    shipped = next(g for g in grid if g[1] == (OWN_ACROSS, TRANSLATION, 1.0, TRANSLATION))
    print("mean nDCG | near/far own tr | beyond own tr | per set: all (pairs)")
    for g in grid[:12] + [shipped]:
        line = f"{g[0]:.3f}     | {g[1][0]:.2f} {g[1][1]:.2f}       | {g[1][2]:.2f} {g[1][3]:.2f}     |"
        for nd, h1 in g[2]:
            pairs = sorted(k for k in nd if k != "all")
            line += f" {nd['all']:.3f} (" + " ".join(f"{nd[p]:.3f}/{h1[p]:.2f}" for p in pairs) + ")"
        print(line)


main()
