"""onnxruntime (Python) on the model and inputs of `hort bench embed`.

Same ONNX file, same tokenizer.json (truncated at 256 tokens, padded to the
longest text of each batch), same batch size, mean pooling over the
attention mask and unit length — what hort's embedder computes — with 1 and
2 intra-op threads.

    python3 bench/peers/embed.py data/models/minilm-l6 data/bench/embed-inputs.jsonl bench/results/peers-embed.json
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

BATCH, MAX_TOKENS = 32, 256


def session(model, threads):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])


def embed(sess, tok, names, texts):
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in names:
        feeds["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
    hidden = sess.run(None, feeds)[0]
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def main():
    model_dir, inputs, out = sys.argv[1], sys.argv[2], sys.argv[3]
    texts = [json.loads(l)["text"] for l in open(inputs) if l.strip()]
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.enable_truncation(MAX_TOKENS)
    tok.enable_padding()
    result = {"suite": "embed-peers", "engine": "onnxruntime", "version": ort.__version__,
              "texts": len(texts), "batch_size": BATCH}
    for threads in (1, 2):
        sess = session(f"{model_dir}/model.onnx", threads)
        names = {i.name for i in sess.get_inputs()}
        embed(sess, tok, names, texts[:BATCH])  # warm-up
        t = time.perf_counter()
        for s in range(0, len(texts), BATCH):
            embed(sess, tok, names, texts[s:s + BATCH])
        dt = time.perf_counter() - t
        result[f"threads_{threads}"] = {"threads": threads, "seconds": dt, "per_second": len(texts) / dt}
        print(f"onnxruntime {threads} thread(s): {len(texts) / dt:.1f} chunks/s", file=sys.stderr)
    json.dump(result, open(out, "w"), indent=2)


if __name__ == "__main__":
    main()
