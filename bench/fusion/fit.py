#!/usr/bin/env python3
"""Fits language-aware fusion on candidate lists (`hort bench quality --lists`).

  bench/fusion/fit.py LISTS.jsonl [LISTS2.jsonl ...]

Replays weighted fusion exactly as `retrieve::weighted` does it (each side's
scores min-max normalised over its candidates, weights applied, a document
scored by its best chunk) over a grid of: the keyword weight; `cross`, the
factor on the keyword score of a chunk whose language differs from the
question's; `share_n`, the keyword weight scaled by the share of the n
nearest chunks (vector side) in the question's language; and `gate_n`, the
language gate of `[retrieve] language_gate` (keywords dropped when one of
the n nearest chunks is in the other language). Prints nDCG@10 per
language pair. Fit on a training split
only; report the chosen setting on the test split once.
"""
import json
import math
import sys
from collections import defaultdict


def load(paths):
    rows = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            rows.extend(json.loads(l) for l in f if l.strip())
    return rows


def ndcg10(ranked, rel):
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def norm(side):
    if not side:
        return {}
    lo = min(s for *_, s in side)
    hi = max(s for *_, s in side)
    return {c: ((s - lo) / (hi - lo) if hi > lo else 1.0) for c, _, _, s in side}


def fuse(row, wv, wk, cross, scale_before_norm=True, share_n=0, gate_n=0):
    ql = row["query_lang"]
    if gate_n and ql:
        other = {"de": "en", "en": "de"}[ql]
        if any(l == other for _, _, l, _ in row["vector"][:gate_n]):
            wk = 0.0
    if share_n and ql:
        top = row["vector"][:share_n]
        if top:
            wk = wk * sum(1 for _, _, l, _ in top if l == ql) / len(top)
    meta = {}
    for c, p, l, _ in row["vector"] + row["keyword"]:
        meta[c] = (p, l)
    kw = row["keyword"]
    if scale_before_norm:
        kw = [[c, p, l, s * (1.0 if l == ql else cross)] for c, p, l, s in kw]
    v = norm(row["vector"])
    k = norm(kw)
    score = defaultdict(float)
    for c, x in v.items():
        score[c] += wv * x
    for c, x in k.items():
        f = 1.0
        if not scale_before_norm and meta[c][1] != ql:
            f = cross
        score[c] += wk * x * f
    ranked = []
    for c, _ in sorted(score.items(), key=lambda t: -t[1]):
        p = meta[c][0]
        if p not in ranked:
            ranked.append(p)
    return ranked


def evaluate(rows, **kw):
    by = defaultdict(list)
    first = defaultdict(list)
    for r in rows:
        ranked = fuse(r, **kw)
        n = ndcg10(ranked, r["relevant"])
        by[r["lang"]].append(n)
        by["all"].append(n)
        hit1 = 1.0 if ranked and r["relevant"].get(ranked[0], 0) > 0 else 0.0
        first[r["lang"]].append(hit1)
        first["all"].append(hit1)
    mean = lambda v: sum(v) / len(v)
    return {k: mean(v) for k, v in by.items()}, {k: mean(v) for k, v in first.items()}


def main():
    rows = load(sys.argv[1:])
    wrong = [r for r in rows if r["lang"] and r["query_lang"]
             and r["query_lang"] != r["lang"].split("->")[0]]
    unknown = [r for r in rows if not r["query_lang"]]
    print(f"{len(rows)} questions; language misread for {len(wrong)}, not told for {len(unknown)}")
    results = []
    for wk in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]:
        for cross in [0.0, 0.25, 0.5, 1.0]:
            for share_n in [0, 3, 5]:
                for gate_n in [0, 1, 3, 5, 10]:
                    nd, h1 = evaluate(rows, wv=1.0, wk=wk, cross=cross, share_n=share_n,
                                      gate_n=gate_n)
                    results.append((nd["all"], wk, cross, (share_n, gate_n), nd, h1))
    results.sort(key=lambda t: -t[0])
    pairs = sorted(k for k in results[0][4] if k != "all")
    print("ndcg all | wk cross (share_n, gate_n) | " + " ".join(pairs) + " | hit@1 all")
    for r in results[:15]:
        print(f"{r[0]:.3f} | {r[1]:.2f} {r[2]:.2f} {r[3]!s:8} | "
              + " ".join(f"{r[4][p]:.3f}" for p in pairs) + f" | {r[5]['all']:.3f}")
    for wk, cross, gate in [(1.0, 1.0, 0), (0.0, 1.0, 0), (1.0, 1.0, 5)]:
        nd, h1 = evaluate(rows, wv=1.0, wk=wk, cross=cross, gate_n=gate)
        print(f"reference wk={wk} cross={cross} gate={gate}: {nd['all']:.3f}",
              {p: round(nd[p], 3) for p in pairs}, f"hit@1 {h1['all']:.3f}")


if __name__ == "__main__":
    main()
