"""hnswlib and FAISS (HNSW) on the vectors `hort bench ann` uses.

Same file (GloVe 6B 50d or the 384-d WordNet set, .npy), same split (rows
i % (n // 1000) == 7 are the 1000 queries, every other row is indexed), same normalisation (unit length,
inner product = cosine), same graph parameters (M=16, efConstruction=200),
same ef values, one search thread, recall@10 against exact search. Queries
go to each library as one batch on one thread, so Python adds nothing per
query.

    python3 bench/peers/ann.py data/datasets/glove-6b-50d.npy bench/results/peers-ann-glove-50.json
    python3 bench/peers/ann.py data/datasets/wordnet-minilm-384.npy bench/results/peers-ann-wordnet-384.json
"""
import json
import platform
import sys
import time

import numpy as np

EFS = [10, 16, 24, 32, 48, 64, 96, 128, 256]
M, EF_CONSTRUCTION, K, QUERIES = 16, 200, 10, 1000


def load(path):
    x = np.load(path).astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1
    x = x / norms
    idx = np.arange(len(x))
    is_q = idx % max(2, len(x) // QUERIES) == 7
    queries = x[is_q][:QUERIES]
    base = x[~is_q]
    return np.ascontiguousarray(base), np.ascontiguousarray(queries)


def truth(base, queries):
    out = np.empty((len(queries), K), dtype=np.int64)
    for s in range(0, len(queries), 100):
        sims = queries[s:s + 100] @ base.T
        part = np.argpartition(-sims, K, axis=1)[:, :K]
        out[s:s + 100] = part
    return [set(r) for r in out]


def recall(found, gt):
    return float(np.mean([len(gt[i] & set(found[i][:K])) / K for i in range(len(gt))]))


def run_hnswlib(base, queries, gt):
    import hnswlib
    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=EF_CONSTRUCTION, M=M, random_seed=1)
    index.add_items(base, np.arange(len(base)), num_threads=2)
    build = time.perf_counter() - t
    index.set_num_threads(1)
    rows = []
    for ef in EFS:
        index.set_ef(max(ef, K))
        index.knn_query(queries[:100], k=K, num_threads=1)  # warm-up
        t = time.perf_counter()
        labels, _ = index.knn_query(queries, k=K, num_threads=1)
        dt = time.perf_counter() - t
        rows.append({"ef": ef, "recall_at_10": recall(labels, gt), "qps": len(queries) / dt})
    return {"engine": "hnswlib", "version": getattr(hnswlib, "__version__", "0.8.0"),
            "build_seconds": build, "build_threads": 2, "rows": rows}


def run_faiss(base, queries, gt):
    import faiss
    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(base)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    rows = []
    for ef in EFS:
        index.hnsw.efSearch = max(ef, K)
        index.search(queries[:100], K)
        t = time.perf_counter()
        _, labels = index.search(queries, K)
        dt = time.perf_counter() - t
        rows.append({"ef": ef, "recall_at_10": recall(labels, gt), "qps": len(queries) / dt})
    return {"engine": "faiss", "version": faiss.__version__, "build_seconds": build,
            "build_threads": 2, "rows": rows}


def main():
    npy, out = sys.argv[1], sys.argv[2]
    base, queries = load(npy)
    gt = truth(base, queries)
    engines = [run_hnswlib(base, queries, gt), run_faiss(base, queries, gt)]
    for e in engines:
        for r in e["rows"]:
            print(f"{e['engine']:8} ef={r['ef']:4} recall@10={r['recall_at_10']:.3f} qps={r['qps']:.0f}",
                  file=sys.stderr)
    json.dump({"suite": "ann-peers", "dataset": npy, "vectors": len(base), "queries": len(queries),
               "m": M, "ef_construction": EF_CONSTRUCTION, "query_threads": 1,
               "python": platform.python_version(), "engines": engines}, open(out, "w"), indent=2)


if __name__ == "__main__":
    main()
