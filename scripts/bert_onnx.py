"""The BERT encoder as an ONNX graph, shared by hort's model converters
(scripts/convert_e5.py: 4-bit weights; scripts/convert_bert.py: fp32).

The converters differ in how a weight matrix is stored and multiplied and
how the word embeddings are looked up; the rest of BERT (embedding sum and
norm, attention with a padding bias, GELU feed-forward, post-norm residuals,
the graph's inputs and output) is written once here. Node names come from
one counter in call order, so a converter's output stays byte-identical as
long as it makes the same calls.
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Graph:
    """Initializers and nodes of one graph under construction."""

    def __init__(self):
        self.inits, self.nodes, self.counter = [], [], 0

    def name(self, prefix):
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def const(self, arr, prefix="c"):
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(self, op, inputs, domain="", **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def f32(self, value):
        return self.const(np.array(value, dtype=np.float32))

    def i64(self, value):
        return self.const(np.array(value, dtype=np.int64))

    def layernorm(self, x, weight, bias, eps):
        return self.node(
            "LayerNormalization", [x, self.const(weight, "g"), self.const(bias, "b")],
            axis=-1, epsilon=float(eps),
        )


def embeddings(g, word, positions_table, types_table, shape=None):
    """word + positions 0..L-1 + token types, before the norm (`shape`: a
    node holding the ids' shape, if the word lookup made one)."""
    ids, types = INPUTS[0], INPUTS[2]
    shape = shape or g.node("Shape", [ids])
    seq = g.node("Gather", [shape, g.i64(1)], axis=0)
    positions = g.node("Range", [g.i64(0), seq, g.i64(1)])
    pos = g.node("Gather", [g.const(positions_table, "pos"), positions], axis=0)
    typ = g.node("Gather", [g.const(types_table, "type"), types], axis=0)
    return g.node("Add", [g.node("Add", [word, pos]), typ])


def encoder(g, x, layers, H, NH, FF, linear, layernorm):
    """`layers` BERT layers over `x`. `linear(x, layer, name, nout, nin)`
    multiplies by one of the layer's matrices (q, k, v, ao, fi, fo) and adds
    its bias; `layernorm(x, layer, name)` applies one of its norms (aln,
    oln)."""
    hd = H // NH
    # Attention bias: 0 where attended, -10000 at padding; [B, 1, 1, L].
    m = g.node("Cast", [INPUTS[1]], to=TensorProto.FLOAT)
    bias = g.node("Mul", [g.node("Sub", [g.f32(1.0), m]), g.f32(-10000.0)])
    bias = g.node("Unsqueeze", [bias, g.i64([1, 2])])
    heads = g.i64([0, 0, NH, hd])
    merged = g.i64([0, 0, H])
    scale = g.f32(1.0 / np.sqrt(hd))

    def split(y):
        return g.node("Transpose", [g.node("Reshape", [y, heads])], perm=[0, 2, 1, 3])

    for layer in range(layers):
        q = split(linear(x, layer, "q", H, H))
        k = split(linear(x, layer, "k", H, H))
        v = split(linear(x, layer, "v", H, H))
        kt = g.node("Transpose", [k], perm=[0, 1, 3, 2])
        s = g.node("Add", [g.node("Mul", [g.node("MatMul", [q, kt]), scale]), bias])
        ctx = g.node("MatMul", [g.node("Softmax", [s], axis=-1), v])
        ctx = g.node("Reshape", [g.node("Transpose", [ctx], perm=[0, 2, 1, 3]), merged])
        ao = linear(ctx, layer, "ao", H, H)
        x = layernorm(g.node("Add", [x, ao]), layer, "aln")
        h = linear(x, layer, "fi", FF, H)
        # GELU with erf, as BERT defines it.
        erf = g.node("Erf", [g.node("Mul", [h, g.f32(1 / np.sqrt(2))])])
        h = g.node("Mul", [g.node("Mul", [h, g.f32(0.5)]), g.node("Add", [erf, g.f32(1.0)])])
        fo = linear(h, layer, "fo", H, FF)
        x = layernorm(g.node("Add", [x, fo]), layer, "oln")
    return x


def model(g, x, H, graph_name, producer, opsets):
    """The graph's inputs, `x` as `last_hidden_state`, and the model."""
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes,
        graph_name,
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in INPUTS],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])],
        initializer=g.inits,
    )
    m = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
        producer_name=producer,
    )
    m.ir_version = 9
    return m
