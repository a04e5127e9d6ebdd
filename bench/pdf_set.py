#!/usr/bin/env python3
"""The real-and-hostile PDF set of bench/pdf-set.sh.

make SDIST_DIR OUT: unpacks the PDFs and pictures of the source packages in
SDIST_DIR into OUT/real/<package>/, and writes hostile files made from them
into OUT/hostile/ (deterministic: the same files every run).

report OUT REPORT.json SECONDS RESULT.json: classifies every file of the set
by what the ingest made of it, writes RESULT.json and prints a Markdown table.
"""
import json
import os
import random
import sys
import tarfile

EXT = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def make(sdist, out):
    real = os.path.join(out, "real")
    for name in sorted(os.listdir(sdist)):
        if not name.endswith(".tar.gz"):
            continue
        pkg = name[: -len(".tar.gz")]
        dest = os.path.join(real, pkg)
        os.makedirs(dest, exist_ok=True)
        with tarfile.open(os.path.join(sdist, name)) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.lower().endswith(EXT):
                    flat = m.name.split("/", 1)[-1].replace("/", "_")
                    with open(os.path.join(dest, flat), "wb") as f:
                        f.write(t.extractfile(m).read())
    hostile = os.path.join(out, "hostile")
    os.makedirs(hostile, exist_ok=True)
    rnd = random.Random(2026)
    pdfs = sorted(
        os.path.join(d, f)
        for d, _, fs in os.walk(real)
        for f in fs
        if f.lower().endswith(".pdf") and os.path.getsize(os.path.join(d, f)) > 2000
    )
    for i, p in enumerate(rnd.sample(pdfs, min(30, len(pdfs)))):
        data = open(p, "rb").read()
        base = f"{i:02d}-" + os.path.basename(p)[:-4]
        w = lambda tag, b: open(os.path.join(hostile, f"{base}.{tag}.pdf"), "wb").write(b)
        w("cut30", data[: len(data) * 3 // 10])
        w("cut70", data[: len(data) * 7 // 10])
        flipped = bytearray(data)
        for _ in range(20):
            flipped[rnd.randrange(len(flipped))] = rnd.randrange(256)
        w("flip20", bytes(flipped))
        w("junk", data + bytes(rnd.randrange(256) for _ in range(4096)))
    classics = {
        "nested-arrays": b"%PDF-1.4\n1 0 obj\n" + b"[" * 200_000 + b"]" * 200_000 + b"\nendobj\n%%EOF",
        "self-parent": b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[2 0 R]/Count 1>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF",
        "ref-loop": b"%PDF-1.4\n1 0 obj 2 0 R endobj\n2 0 obj 1 0 R endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF",
        "count-billion": b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 1000000000>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF",
        "huge-length": b"%PDF-1.4\n1 0 obj<</Length 99999999999>>stream\nabc\nendstream endobj\n%%EOF",
        "header-only": b"%PDF-1.7\n%%EOF\n",
        "zero-bytes": b"",
        "not-a-pdf": b"PK\x03\x04 this is a zip pretending to be a PDF",
    }
    for name, b in classics.items():
        open(os.path.join(hostile, f"classic-{name}.pdf"), "wb").write(b)


def classify(error):
    e = error.lower()
    if "encrypted" in e:
        return "encrypted"
    if "no extractable text" in e or "has no pages" in e or e.startswith("empty file"):
        return "no text"
    if "did not finish" in e:
        return "HANG"
    if "crashed" in e or "panicked" in e:
        return "CRASH"
    return "damaged"


def report(out, rep_path, seconds, result):
    rep = json.load(open(rep_path))
    files = sorted(
        os.path.relpath(os.path.join(d, f), out)
        for d, _, fs in os.walk(out)
        for f in fs
        if f != "_access.toml"
    )
    outcome = {f: "indexed" for f in files}
    reasons = {}
    for f in rep["failed"]:
        outcome[f["path"]] = classify(f["error"])
        reasons[f["path"]] = f["error"]
    for s in rep["skipped"]:
        outcome[s["path"]] = "no text (picture)"
        reasons[s["path"]] = s["reason"]
    groups = {}
    for f, o in outcome.items():
        part = f.split("/")[0]
        groups.setdefault(part, {}).setdefault(o, 0)
        groups[part][o] += 1
    json.dump(
        {"seconds": int(seconds), "pages": rep["pages"], "chunks": rep["chunks"],
         "by_part": groups, "files": {f: {"outcome": outcome[f], "reason": reasons.get(f)} for f in files}},
        open(result, "w"), indent=1, sort_keys=True,
    )
    kinds = ["indexed", "encrypted", "no text", "no text (picture)", "damaged", "CRASH", "HANG"]
    print("| part | files | " + " | ".join(kinds) + " |")
    print("|---|---:|" + "---:|" * len(kinds))
    for part, g in sorted(groups.items()):
        print(f"| {part} | {sum(g.values())} | " + " | ".join(str(g.get(k, 0)) for k in kinds) + " |")
    total = {k: sum(g.get(k, 0) for g in groups.values()) for k in kinds}
    print(f"| all | {len(files)} | " + " | ".join(str(total[k]) for k in kinds) + " |")
    print(f"\n{rep['pages']} pages, {rep['chunks']} chunks, {seconds} s.")
    for k in ["damaged", "CRASH", "HANG"]:
        for f, o in sorted(outcome.items()):
            if o == k:
                print(f"- {k}: {f}: {reasons[f][:160]}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
