#!/usr/bin/env python3
"""A tiny random BERT for testing scripts/convert_bert.py, and its reference.

  tiny_bert.py make DIR          writes DIR/model.safetensors and DIR/config.json
                                 (random weights, fixed seed; MiniLM's vocabulary size)
  tiny_bert.py embed DIR IDS...  prints the mean-pooled, L2-normalised embedding of one
                                 sequence of token ids, computed here with numpy alone

The reference is a second, independent implementation of BERT's forward pass
(written from the architecture, not from the converter's graph): the test
compares what hort computes through the converted ONNX graph against it.
"""
import json
import os
import struct
import sys

import numpy as np

CFG = {
    "model_type": "bert",
    "hidden_act": "gelu",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "vocab_size": 30522,
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
}


def shapes(c):
    H, F = c["hidden_size"], c["intermediate_size"]
    out = {
        "embeddings.word_embeddings.weight": [c["vocab_size"], H],
        "embeddings.position_embeddings.weight": [c["max_position_embeddings"], H],
        "embeddings.token_type_embeddings.weight": [c["type_vocab_size"], H],
        "embeddings.LayerNorm.weight": [H],
        "embeddings.LayerNorm.bias": [H],
    }
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            out[p + f"attention.self.{n}.weight"] = [H, H]
            out[p + f"attention.self.{n}.bias"] = [H]
        out[p + "attention.output.dense.weight"] = [H, H]
        out[p + "attention.output.dense.bias"] = [H]
        out[p + "attention.output.LayerNorm.weight"] = [H]
        out[p + "attention.output.LayerNorm.bias"] = [H]
        out[p + "intermediate.dense.weight"] = [F, H]
        out[p + "intermediate.dense.bias"] = [F]
        out[p + "output.dense.weight"] = [H, F]
        out[p + "output.dense.bias"] = [H]
        out[p + "output.LayerNorm.weight"] = [H]
        out[p + "output.LayerNorm.bias"] = [H]
    return out


def make(d):
    rng = np.random.default_rng(7)
    tensors = {}
    for k, shape in shapes(CFG).items():
        if k.endswith("LayerNorm.weight"):
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            a = 0.2 * rng.standard_normal(shape)
        tensors[k] = a.astype("<f4")
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, a in tensors.items():
        b = a.tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CFG, f)


def load(d):
    b = open(os.path.join(d, "model.safetensors"), "rb").read()
    (n,) = struct.unpack_from("<Q", b, 0)
    header = json.loads(b[8 : 8 + n])
    t = {}
    for k, v in header.items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            t[k] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype="<f4").reshape(v["shape"]).astype(np.float64)
    return t


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu(x):
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


def embed(d, ids):
    c, t = CFG, load(d)
    H, NH, eps = c["hidden_size"], c["num_attention_heads"], c["layer_norm_eps"]
    hd = H // NH
    L = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:L] \
        + t["embeddings.token_type_embeddings.weight"][[0] * L]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda v, n: v @ t[p + n + ".weight"].T + t[p + n + ".bias"]  # noqa: E731
        heads = []
        q, k, v = (lin(x, f"attention.self.{n}") for n in ("query", "key", "value"))
        for h in range(NH):
            s = slice(h * hd, (h + 1) * hd)
            a = q[:, s] @ k[:, s].T / np.sqrt(hd)
            a = np.exp(a - a.max(-1, keepdims=True))
            heads.append((a / a.sum(-1, keepdims=True)) @ v[:, s])
        x = layer_norm(x + lin(np.concatenate(heads, -1), "attention.output.dense"),
                       t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(gelu(lin(x, "intermediate.dense")), "output.dense")
        x = layer_norm(x + f, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
    m = x.mean(0)
    return m / np.linalg.norm(m)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "embed":
        print(json.dumps([float(v) for v in embed(sys.argv[2], [int(i) for i in sys.argv[3:]])]))
    else:
        sys.exit(__doc__.strip().splitlines()[2])


if __name__ == "__main__":
    main()
