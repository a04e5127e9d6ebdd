#!/usr/bin/env python3
"""Builds a German/English retrieval set that nobody at hort wrote: Debian's
manual pages that exist in both languages.

  bench/multilingual-man/build.py EN_DIR DE_DIR OUT_DIR

EN_DIR and DE_DIR are unpacked Debian packages (`make datasets` fetches them:
`manpages`, `manpages-dev` and `coreutils` for English, `manpages-de` for
German, all pinned). A page counts when both languages have it under the
same name and section and both have a NAME line ("ls \\- list directory
contents").

The pages are split by a fixed hash of their name into two halves: the
English page of one half and the German page of the other go into the
corpus, so that no topic is in both languages (as the independent
cross-language set of issue 25: English passages asked in German, German
passages asked in English). The questions are the NAME lines' descriptions
without the page's name, in both languages, each judged against the one
page of its topic in the corpus: four directions (de->en, en->de, and the
same-language controls de->de, en->en).

The pages are turned to text by a small roff reader (macros dropped, their
words kept, escapes resolved), which is enough for retrieval; the first
CHARS characters of each page are kept (NAME, SYNOPSIS and the start of the
DESCRIPTION), which keeps embedding the corpus to about a minute.

Nothing here was tuned on: the set is built once, run once per change, and
its figures are reported as held out.
"""
import gzip
import hashlib
import json
import os
import re
import sys

CHARS = 4000

ESCAPES = {
    r"\(em": "—", r"\(en": "–", r"\(aq": "'", r"\(dq": '"',
    r"\(rq": "”", r"\(Fo": "«", r"\(Fc": "»", r"\(bu": "•", r"\(co": "©",
    r"\(:a": "ä", r"\(:o": "ö", r"\(:u": "ü", r"\(:A": "Ä", r"\(:O": "Ö",
    r"\(:U": "Ü", r"\(ss": "ß", r"\(lq": "„", r"\(oq": "‚", r"\(cq": "'",
    r"\(ti": "~", r"\(ha": "^", r"\(rs": "\\", r"\(mi": "-", r"\(hy": "-",
    r"\(or": "|", r"\(>=": "≥", r"\(<=": "≤", r"\(->": "→", r"\(at": "@",
}


def read(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    return raw.decode("utf-8", "replace")


def unescape(s):
    for k, v in ESCAPES.items():
        s = s.replace(k, v)
    s = re.sub(r"\\\[[^\]]*\]", "", s)          # \[...] named glyphs
    s = re.sub(r"\\\([A-Za-z:]{2}", "", s)     # other \(xx glyphs
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = re.sub(r"\\s[-+]?\d", "", s)           # size changes
    s = re.sub(r"\\[*n]\(?..", "", s)           # strings, registers
    s = s.replace(r"\-", "-").replace(r"\ ", " ").replace(r"\&", "")
    s = s.replace(r"\e", "\\").replace(r"\%", "").replace(r"\:", "")
    s = s.replace(r"\|", "").replace(r"\^", "").replace(r"\c", "")
    s = s.replace(r"\,", "").replace(r"\/", "")
    return s


def to_text(roff):
    """The words of a roff page, one paragraph per macro break."""
    out = []
    for line in roff.splitlines():
        if line.startswith(('.\\"', "'\\\"", '.\\}', "\\}")) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].split(None, 1)
            if not parts:
                continue
            macro, rest = parts[0], (parts[1] if len(parts) > 1 else "")
            if macro in ("SH", "SS"):
                out.append("\n" + rest.strip('"') + "\n")
            elif macro in ("B", "I", "BR", "BI", "IB", "IR", "RB", "RI", "SM", "SB", "TP", "IP", "UR", "MT", "Nm", "Op", "Ar", "Fl"):
                words = re.findall(r'"[^"]*"|\S+', rest)
                if macro == "IP" and words:
                    words = words[:1]
                out.append(" ".join(w.strip('"') for w in words))
            elif macro in ("PP", "P", "LP", "sp", "br", "RS", "RE", "TH", "Dd", "Dt", "Os", "nf", "fi", "in", "ad", "na", "hy", "nh", "ne", "ft", "ps", "ds", "de", "if", "ie", "el", "so", "ta", "ti", "ll", "ce", "EX", "EE", "TS", "TE", "UE", "ME", "YS", "SY", "OP", "mso", "ig"):
                if macro in ("PP", "P", "LP", "sp", "br"):
                    out.append("\n")
            else:
                out.append(rest)
        else:
            out.append(line)
    text = unescape("\n".join(out))
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    return text.strip()


def name_line(roff):
    """The NAME section's description: "ls \\- list directory contents"."""
    m = re.search(r'^\.S[Hh] +"?(NAME|BEZEICHNUNG|Name)"?\s*\n(.*?)(?=^\.S[Hh] )', roff, re.M | re.S)
    if not m:
        return None
    body = " ".join(l for l in m.group(2).splitlines() if not l.startswith((".", "'")) or l.startswith((".B ", ".BR ")))
    body = unescape(re.sub(r"^\.BR? ", "", body))
    if " - " not in body:
        return None
    desc = body.split(" - ", 1)[1].strip()
    return desc if len(desc.split()) >= 2 else None


def pages(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        if not re.search(r"/man[1-8]$", dirpath):
            continue
        for f in files:
            if os.path.islink(os.path.join(dirpath, f)):
                continue  # another name of a page (iso_8859-1.7 → latin1.7)
            key = re.sub(r"\.gz$", "", f)
            found[key] = os.path.join(dirpath, f)
    return found


def main():
    en_dir, de_dir, out = sys.argv[1:4]
    en = pages(os.path.join(en_dir, "usr/share/man"))
    en = {k: v for k, v in en.items() if "/man/de/" not in v}
    de = pages(os.path.join(de_dir, "usr/share/man/de"))
    rows = []
    for key in sorted(set(en) & set(de)):
        e, d = read(en[key]), read(de[key])
        if e.lstrip().startswith(".so") or d.lstrip().startswith(".so"):
            continue  # a link to another page
        qe, qd = name_line(e), name_line(d)
        if not qe or not qd:
            continue
        te, td = to_text(e)[:CHARS], to_text(d)[:CHARS]
        if len(te) < 200 or len(td) < 200:
            continue
        rows.append((key, qe, qd, te, td))
    os.makedirs(os.path.join(out, "corpus", "en"), exist_ok=True)
    os.makedirs(os.path.join(out, "corpus", "de"), exist_ok=True)
    with open(os.path.join(out, "corpus", "_access.toml"), "w") as f:
        f.write('teams = ["staff"]\nclassification = "public"\n')
    queries = []
    for key, qe, qd, te, td in rows:
        half = hashlib.sha256(key.encode()).digest()[0] % 2
        lang, text = ("en", te) if half == 0 else ("de", td)
        path = f"{lang}/{key}.txt"
        with open(os.path.join(out, "corpus", path), "w") as f:
            f.write(text + "\n")
        for q, ql in ((qd, "de"), (qe, "en")):
            queries.append({
                "id": f"{key}-{ql}",
                "query": q,
                "lang": f"{ql}->{lang}",
                "relevant": {path: 1},
            })
    with open(os.path.join(out, os.path.basename(os.path.normpath(out)) + ".jsonl"), "w") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    by = {}
    for q in queries:
        by[q["lang"]] = by.get(q["lang"], 0) + 1
    print(f"{out}: {len(rows)} pages, {len(queries)} questions {by}", file=sys.stderr)


if __name__ == "__main__":
    main()
