#!/usr/bin/env python3
"""Turn a BEIR dataset into what `hort bench quality` reads.

  bench/beir_to_folder.py ../shared/data/beir/scifact data/beir/scifact

writes DEST/corpus/<doc id>.txt (title, blank line, text) with a public access
rule, and DEST/<split>.jsonl (one judged query per line: id, query,
relevant = {"<doc id>.txt": grade}) for every qrels/<split>.tsv.
"""
import csv
import gzip
import json
import os
import sys

src, dest = sys.argv[1], sys.argv[2]
corpus = os.path.join(dest, "corpus")
os.makedirs(corpus, exist_ok=True)
opener = gzip.open if os.path.exists(os.path.join(src, "corpus.jsonl.gz")) else open
path = os.path.join(src, "corpus.jsonl.gz" if opener is gzip.open else "corpus.jsonl")
n = 0
with opener(path, "rt", encoding="utf-8") as f:
    for line in f:
        d = json.loads(line)
        name = d["_id"].replace("/", "_") + ".txt"
        text = (d.get("title", "").strip() + "\n\n" + d.get("text", "").strip()).strip() + "\n"
        target = os.path.join(corpus, name)
        if not os.path.exists(target) or open(target, encoding="utf-8").read() != text:
            with open(target, "w", encoding="utf-8") as out:
                out.write(text)
        n += 1
with open(os.path.join(corpus, "_access.toml"), "w") as f:
    f.write('teams = ["all"]\nclassification = "public"\n')
queries = {}
with open(os.path.join(src, "queries.jsonl"), encoding="utf-8") as f:
    for line in f:
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
for split in sorted(os.listdir(os.path.join(src, "qrels"))):
    rel = {}
    with open(os.path.join(src, "qrels", split), encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)  # header
        for row in rows:
            if len(row) < 3:
                continue
            qid, did, grade = row[0].strip(), row[1].strip(), int(row[2])
            rel.setdefault(qid, {})[did.replace("/", "_") + ".txt"] = grade
    out = os.path.join(dest, split.replace(".tsv", ".jsonl"))
    with open(out, "w", encoding="utf-8") as f:
        for qid in sorted(rel, key=lambda x: int(x) if x.isdigit() else x):
            f.write(json.dumps({"id": qid, "query": queries[qid], "relevant": rel[qid]}) + "\n")
    print(f"{out}: {len(rel)} queries", file=sys.stderr)
print(f"{corpus}: {n} documents", file=sys.stderr)
