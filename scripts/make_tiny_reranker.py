#!/usr/bin/env python3
"""Writes a tiny cross-encoder for tests: its relevance score is the number
of times one marker word's token occurs in the (question, passage) pair.

No cross-encoder with real weights is available here; this model has the
real interface (inputs input_ids and attention_mask, output logits
[batch, 1]) and a score a test can predict.

Usage: make_tiny_reranker.py TOKENIZER_JSON MARKER_WORD OUT_ONNX
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    tok = json.load(open(sys.argv[1]))
    vocab = tok["model"]["vocab"]
    if isinstance(vocab, list):  # unigram: [[piece, score], ...]
        ids = {p[0]: i for i, p in enumerate(vocab)}
    else:
        ids = vocab
    marker = sys.argv[2]
    if marker not in ids:
        sys.exit(f"{marker!r} is not one token of this tokenizer")
    table = np.zeros((len(ids), 1), dtype=np.float32)
    table[ids[marker], 0] = 1.0
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["e"], axis=0),  # [B, L, 1]
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["em"]),
        helper.make_node("ReduceSum", ["em", "axis1"], ["logits"], keepdims=0),  # [B, 1]
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-reranker",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[3])


if __name__ == "__main__":
    main()
