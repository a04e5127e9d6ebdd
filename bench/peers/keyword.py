"""bm25s on the chunks and queries `hort bench keyword` exported.

BM25 (Lucene variant, k1 = 1.2, b = 0.75 as in tantivy), English stop words
(no stemmer: PyStemmer is not among the pinned packages), top 50, one
thread, each query tokenised and retrieved on its own as a service would.

    python3 bench/peers/keyword.py data/bench/keyword-export bench/results/peers-keyword-scifact.json
"""
import json
import sys
import time

import bm25s
import numpy as np

K, ROUNDS = 50, 5


def main():
    src, out = sys.argv[1], sys.argv[2]
    chunks = [json.loads(l) for l in open(f"{src}/chunks.jsonl") if l.strip()]
    queries = [json.loads(l)["query"] for l in open(f"{src}/queries.jsonl") if l.strip()]
    t = time.perf_counter()
    retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    retriever.index(bm25s.tokenize([c["text"] for c in chunks], stopwords="en", show_progress=False),
                    show_progress=False)
    index_s = time.perf_counter() - t
    k = min(K, len(chunks))

    def one(q):
        tokens = bm25s.tokenize([q], stopwords="en", show_progress=False)
        return retriever.retrieve(tokens, k=k, n_threads=1, show_progress=False)

    for q in queries:  # warm-up
        one(q)
    ms = []
    for _ in range(ROUNDS):
        for q in queries:
            t = time.perf_counter()
            one(q)
            ms.append((time.perf_counter() - t) * 1000)
    ms = np.sort(np.array(ms))
    res = {"suite": "keyword-peers", "engine": "bm25s", "version": bm25s.__version__,
           "chunks": len(chunks), "queries": len(queries), "rounds": ROUNDS, "top_k": k,
           "index_seconds": index_s, "p50_ms": float(np.percentile(ms, 50)),
           "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)),
           "mean_ms": float(ms.mean())}
    print(f"bm25s p50 {res['p50_ms']:.3f} ms p95 {res['p95_ms']:.3f} ms", file=sys.stderr)
    json.dump(res, open(out, "w"), indent=2)


if __name__ == "__main__":
    main()
