#!/usr/bin/env bash
# `make bench` and `make bench-quick`: hort's suites and the peers', on the
# same machine and data in one run, then the side-by-side report.
#
#   bench/run.sh full    all suites (~25 min once the indexes exist; the first
#                        run also builds them, see the README); results in
#                        bench/results/ and the README's performance section
#   bench/run.sh quick   a ~4-minute subset into bench/results/quick/ (the
#                        README is left alone)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-full}"
PYTHON="${PYTHON:-python3}"
HORT=target/release/hort
PEERS=data/bench-py
START=$(date +%s)

step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - START ))" >&2; }
peer() { PYTHONPATH="$PWD/$PEERS" "$PYTHON" "$@"; }

step "fetching what is missing (models, datasets, peers), building"
make -s models
scripts/fetch_pydeps.sh bench/peers/requirements.txt "$PEERS" bench/peers/requirements-sdist.txt
cargo build --release --locked --quiet
if [ ! -d data/beir/scifact/corpus ]; then
  "$PYTHON" bench/beir_to_folder.py ../shared/data/beir/scifact data/beir/scifact
fi

if [ "$MODE" = quick ]; then
  OUT=bench/results/quick
  WORK=data/bench/quick
  mkdir -p "$OUT" "$WORK/scifact"
  # A 600-abstract slice of SciFact, so that even the first run stays short.
  if [ ! -f "$WORK/scifact/corpus/.ready" ]; then
    rm -rf "$WORK/scifact/corpus" && mkdir -p "$WORK/scifact/corpus"
    printf '%s\n' data/beir/scifact/corpus/*.txt | sed -n 1,600p | xargs cp -t "$WORK/scifact/corpus"
    cp data/beir/scifact/corpus/_access.toml "$WORK/scifact/corpus/"
    touch "$WORK/scifact/corpus/.ready"
  fi
  CORPUS="$WORK/scifact/corpus"
  step "keyword: hort vs bare tantivy, then bm25s"
  $HORT bench keyword --corpus "$CORPUS" --rounds 2 --work "$WORK" --out "$OUT"
  peer bench/peers/keyword.py "$WORK/keyword-export" "$OUT/peers-keyword-scifact.json"
  step "embed: hort vs onnxruntime"
  $HORT bench embed --corpus "$CORPUS" --texts 300 --work "$WORK" --out "$OUT"
  peer bench/peers/embed.py data/models/minilm-l6 "$WORK/embed-inputs.jsonl" "$OUT/peers-embed.json"
  step "ingest: end to end vs embedding alone"
  PDFS=fixtures/corpus/internal
  [ -d data/pdf-corpus/corpus ] && PDFS=data/pdf-corpus/corpus
  $HORT bench ingest --corpus "$CORPUS" --limit 200 --pdfs "$PDFS" --pdf-limit 40 --work "$WORK" --out "$OUT"
  bench/peers/pdf.sh "$WORK/ingest-pdf-input" "$OUT/peers-pdf.json"
  step "query: /v1/search and /v1/query at 10k chunks"
  $HORT bench query --sizes 10000 --requests 200 --work "$WORK" --out "$OUT"
  step "cache: /v1/query cached vs uncached through an 800 ms provider; semantic pairs"
  $HORT bench cache --uncached 15 --cached 100 --seconds 3 --models minilm-l6 --work "$WORK" --out "$OUT"
  step "report"
  $HORT bench report --out "$OUT" --no-readme
  step "done: $OUT/summary.md"
  exit 0
fi

OUT=bench/results
make -s datasets
if [ ! -d data/pdf-corpus/corpus ]; then
  step "fetching the PDF corpus (Debian TeX Live documentation)"
  bench/pdf-corpus.sh hash 0 >/dev/null
fi
step "ann: hort (GloVe 399k)"
$HORT bench ann
step "ann: hnswlib and FAISS on the same vectors"
peer bench/peers/ann.py data/datasets/glove-6b-50d.npy "$OUT/peers-ann-glove-50.json"
step "ann at 384 dimensions: WordNet glosses embedded by MiniLM (made once, ~8 min)"
bench/ann-data.sh
$HORT bench ann --set wordnet-384
peer bench/peers/ann.py data/datasets/wordnet-minilm-384.npy "$OUT/peers-ann-wordnet-384.json"
step "filter: 50 / 10 / 1 / 0.1 % selectivity"
$HORT bench filter
step "keyword: hort vs bare tantivy, then bm25s (SciFact)"
$HORT bench keyword
peer bench/peers/keyword.py data/bench/keyword-export "$OUT/peers-keyword-scifact.json"
step "embed: hort vs onnxruntime"
$HORT bench embed --texts 1000
peer bench/peers/embed.py data/models/minilm-l6 data/bench/embed-inputs.jsonl "$OUT/peers-embed.json"
step "ingest: end to end vs embedding alone, on 1 core and on every core; PDFs vs pdftotext"
$HORT bench ingest --limit 1000
bench/peers/pdf.sh data/bench/ingest-pdf-input "$OUT/peers-pdf.json"
step "query: /v1/search and /v1/query at 10k, 100k, 1M chunks"
$HORT bench query
step "serving under load: wrk at 1, 2 and 4 connections"
bench/serve-scaling.sh 30
step "gateway: the answer cache (latency, throughput with the audit log, semantic pairs EN/DE)"
$HORT bench cache
step "injection detection"
$HORT bench injection
step "report"
$HORT bench report
step "done: bench/results/summary.md and the README's performance section"
