#!/usr/bin/env python3
"""Prototype (not part of hort): leave-one-source-out for a logistic-regression
head over multilingual-e5-small vectors, combined with the rules.

It produced the prototype figures in the issue-23 notes and is kept so they
can be reproduced; the detector hort ships is built in Rust. Needs
data/bench-py (onnxruntime, tokenizers, numpy: `make bench` fetches it),
`make datasets`, and `hort bench injection` run once (rules scores in
data/bench/injection-source-scores.jsonl).

  PYTHONPATH=data/bench-py python3 scripts/injection/prototype_loso.py embed
  PYTHONPATH=data/bench-py python3 scripts/injection/prototype_loso.py loso

Vectors: the whole text ("passage: " prefix, mean-pooled) and two-sentence
windows mean-pooled from the same forward pass's token states.
"""
import sys
CACHE = "data/bench/injection-proto"

def embed():
    import os; os.makedirs(CACHE, exist_ok=True)
    import json, re, sys, numpy as np, onnxruntime as ort
    from tokenizers import Tokenizer
    M = "data/models/multilingual-e5-small"
    tok = Tokenizer.from_file(M + "/tokenizer.json"); tok.enable_truncation(512)
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    s = ort.InferenceSession(M + "/model.onnx", so)
    names = [i.name for i in s.get_inputs()]
    rows = [json.loads(l) for l in open("data/datasets/injection-sources.jsonl")]
    extra = [json.loads(l) for l in open("bench/injection/hort-eval.jsonl")]
    for r in extra:
        rows.append({"source": "hort", "lang": r["lang"], "kind": "x", "label": "injection" if r["label"] == "malicious" else "benign", "text": r["text"]})
    whole, wins, meta = [], [], []
    for i, r in enumerate(rows):
        text = "passage: " + r["text"]
        enc = tok.encode(text)
        feed = {"input_ids": np.array([enc.ids], dtype=np.int64), "attention_mask": np.array([enc.attention_mask], dtype=np.int64)}
        if "token_type_ids" in names: feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        h = s.run(None, feed)[0][0]  # seq x 384
        v = h.mean(0); whole.append(v / np.linalg.norm(v))
        # sentence windows by character offsets -> token ranges
        spans = [m.span() for m in re.finditer(r"[^.!?\n]+[.!?\n]*", text)]
        offs = enc.offsets
        ws = []
        for a in range(0, len(spans), 1):
            st, en = spans[a][0], spans[min(a + 1, len(spans) - 1)][1]
            idx = [k for k, (x, y) in enumerate(offs) if x >= st and y <= en and y > x]
            if len(idx) >= 3:
                u = h[idx].mean(0); ws.append(u / np.linalg.norm(u))
        wins.append(np.array(ws) if ws else np.array([whole[-1]]))
        meta.append((r["source"], r["lang"], r["kind"], r["label"] == "injection", r.get("id", "")))
        if i % 200 == 0: print(i, file=sys.stderr, flush=True)
    np.save(CACHE + "/whole.npy", np.array(whole))
    np.save(CACHE + "/wins.npy", np.array(wins, dtype=object), allow_pickle=True)
    json.dump(meta, open(CACHE + "/meta.json", "w"))

def loso():
    import json, numpy as np
    W = np.load(CACHE + "/whole.npy"); WS = np.load(CACHE + "/wins.npy", allow_pickle=True)
    meta = json.load(open(CACHE + "/meta.json"))
    rules = {}
    for l in open("data/bench/injection-source-scores.jsonl"):
        d = json.loads(l); rules[d["id"]] = d["score"]
    src = np.array([m[0] for m in meta]); lang = np.array([m[1] for m in meta]); y = np.array([m[3] for m in meta], dtype=float)
    R = np.array([rules.get(m[4], 0.0) if m[0] != "hort" else 0.0 for m in meta])
    
    def train(X, t, l2=1e-3, it=500, lr=0.5):
        w = np.zeros(X.shape[1]); b = 0.0
        pos = t.mean(); cw = np.where(t > 0, 0.5 / pos, 0.5 / (1 - pos))
        for _ in range(it):
            p = 1 / (1 + np.exp(-(X @ w + b)))
            g = (p - t) * cw
            w -= lr * (X.T @ g / len(t) + l2 * w); b -= lr * g.mean()
        return w, b
    
    def feats(idx):
        X, t = [W[idx]], [y[idx]]
        for i in idx:
            if y[i] == 0 or len(WS[i]) <= 2:
                X.append(WS[i]); t.append(np.full(len(WS[i]), y[i]))
        return np.vstack(X), np.concatenate(t)
    
    def head(i, w, b):
        return (1 / (1 + np.exp(-(np.vstack([W[i][None], WS[i]]) @ w + b)))).max()
    
    tot = {"tp": 0, "p": 0, "fp": 0, "n": 0}
    for held in sorted(set(src)):
        tr = np.where(src != held)[0]; te = np.where(src == held)[0]
        X, t = feats(tr); w, b = train(X, t)
        hs_tr = np.array([head(i, w, b) for i in tr])
        thr = np.quantile(hs_tr[y[tr] == 0], 0.99)
        hs = np.array([head(i, w, b) for i in te])
        comb = (hs >= thr) | (R[te] >= 0.5)
        pos = y[te] == 1; neg = ~pos
        rec = comb[pos].mean() if pos.any() else float("nan"); fpr = comb[neg].mean() if neg.any() else float("nan")
        hrec = (hs[pos] >= thr).mean() if pos.any() else float("nan")
        print(f"held out {held:14} pos {pos.sum():4} neg {neg.sum():4} combined recall {rec:.3f} (head {hrec:.3f}) fpr {fpr:.3f} thr {thr:.2f}")

if __name__ == "__main__":
    {"embed": embed, "loso": loso}[sys.argv[1] if len(sys.argv) > 1 else "loso"]()
