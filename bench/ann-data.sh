#!/usr/bin/env bash
# The 384-d vector set of `hort bench ann` (pinned source, made once):
# WordNet 3.0 from Debian's `wordnet-base` (version and SHA-256 pinned), its
# first 101,000 synset glosses embedded with the project's MiniLM-L6 int8
# model into data/datasets/wordnet-minilm-384.npy (100,000 indexed + 1,000
# queries). bench/peers/ann.py reads the same file. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data/datasets/wordnet-minilm-384.npy
[ -f "$OUT" ] && exit 0
TOOLS=data/tools/wordnet
scripts/fetch_debs.sh "$TOOLS" \
  "wordnet-base=1:3.0-37 61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"
make -s models
cargo build --release --locked --quiet
mkdir -p data/datasets
# The model as the README measures it (MiniLM), whatever hort.toml says.
cat > data/datasets/ann-data.toml <<TOML
[embed]
model = "minilm-l6"
TOML
target/release/hort --config data/datasets/ann-data.toml bench ann-data \
  --wordnet "$TOOLS/usr/share/wordnet" --limit 101000 --out "$OUT"
sha256sum "$OUT" > "$OUT.sha256"
