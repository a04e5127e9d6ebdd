#!/usr/bin/env python3
"""Writes a model directory whose output is the token states after other
layers of the same encoder (concatenated), for `hort bench injection
--models DIR`: what the learned head would reach reading a middle layer
beside the last one (bench/results/injection-layers.md).

  PYTHONPATH=data/py-convert python3 scripts/injection/layer_variant.py \\
      data/models/multilingual-e5-small /tmp/e5-l6-l12 6,12

Layers count from 1; the last one is the model's own output. The graph is
hort's converted BERT (scripts/bert_onnx.py): one LayerNormalization after
the embeddings, then two per layer, the second closing it. The vectors such
a directory gives are not the model's and must never build an index; the
directory's id says so.
"""
import os
import shutil
import sys

import onnx
from onnx import TensorProto, helper

COPY = ["config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: layer_variant.py MODEL_DIR OUT_DIR LAYERS (e.g. 6,12)")
    src, dst, spec = sys.argv[1], sys.argv[2], sys.argv[3]
    layers = [int(x) for x in spec.split(",")]
    m = onnx.load(os.path.join(src, "model.onnx"))
    g = m.graph
    norms = [n for n in g.node if n.op_type == "LayerNormalization"]
    count = (len(norms) - 1) // 2
    if any(not 1 <= k <= count for k in layers):
        sys.exit(f"layer_variant: layers 1..{count}, not {spec}")
    states = [norms[2 * k].output[0] for k in layers]
    out = [n for n in g.node if n.output and n.output[0] == "last_hidden_state"]
    if len(out) != 1 or out[0].input[0] != norms[-1].output[0]:
        sys.exit("layer_variant: not a graph scripts/bert_onnx.py wrote")
    g.node.remove(out[0])
    dim = g.output[0].type.tensor_type.shape.dim[2].dim_value
    g.node.append(helper.make_node("Concat", states, ["last_hidden_state"], axis=-1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim * len(layers)]))
    os.makedirs(dst, exist_ok=True)
    onnx.save(m, os.path.join(dst, "model.onnx"))
    for f in COPY:
        shutil.copy(os.path.join(src, f), dst)
    name = os.path.basename(os.path.normpath(src))
    # E5 reads 512 tokens behind its prefixes; BERT-style sentence models 256.
    e5 = "e5" in name
    with open(os.path.join(dst, "hort-model.toml"), "w") as f:
        f.write(f'id = "{name}-layers-{spec.replace(",", "-")}-not-for-indexes/1"\n'
                f"dim = {dim * len(layers)}\nmax_tokens = {512 if e5 else 256}\n"
                'pooling = "mean"\n')
        if e5:
            f.write('query_prefix = "query: "\npassage_prefix = "passage: "\n')
    print(f"layer_variant: wrote {dst} (layers {spec}, {dim * len(layers)} dims)", file=sys.stderr)


if __name__ == "__main__":
    main()
