#!/bin/sh
# Trains the learned injection heads hort ships (models/injection-head/), one
# per bundled embedding model, from every labelled source `make datasets`
# fetched plus bench/injection/*.jsonl, SciFact and the sample corpus — with
# the same windows and trainer `hort bench injection` scores leave one source
# out. Prints each file's SHA-256: pin it in src/ingest/screen.rs (SHIPPED),
# and bump DETECTOR_VERSION if the rules changed too (stored chunks are then
# re-scored on the next ingest).
#
#   make models datasets && cargo build --release && scripts/injection/train.sh
set -eu
cd "$(dirname "$0")/../.."
# e5-small (the multilingual model): vectors centred per language, the
# threshold set on benign document chunks of sources the head did not train
# on, at 0.5 % (docs/measurements.md, "Vectors centred per language, for the head too").
./target/release/hort bench injection --models multilingual-e5-small \
  --centre --unseen-calibration --calibration-rate 0.005 \
  --train models/injection-head "$@"
# MiniLM-L6 (English only, no language space): the recipe of 2026-12-04.
# Its shipped head is that day's; retrained on today's pool it measures
# as the README and docs/measurements.md say and is not swapped in.
./target/release/hort bench injection --models minilm-l6 --out /tmp/hort-minilm-head \
  --train /tmp/hort-minilm-head "$@"
