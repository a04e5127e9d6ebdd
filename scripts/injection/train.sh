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
exec ./target/release/hort bench injection --train models/injection-head "$@"
