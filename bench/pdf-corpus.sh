#!/usr/bin/env bash
# Ingest ~900 real-world PDFs (the documentation of four Debian TeX Live packages)
# and report files, pages, chunks, time and failures by reason.
#
#   bench/pdf-corpus.sh [hash|minilm-l6] [MAX_FILES]
#
# `hash` (default) measures parsing and robustness; `minilm-l6` runs the real
# model end to end (much slower: embedding dominates). Results go to
# bench/results/pdf-corpus-<model>.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-hash}"
MAX="${2:-0}"
WORK=data/pdf-corpus
PKGS=(
  texlive-latex-recommended-doc=2022.20230122-3
  texlive-latex-base-doc=2022.20230122-3
  texlive-science-doc=2022.20230122-4
  texlive-humanities-doc=2022.20230122-4
)
mkdir -p "$WORK/debs" "$WORK/x" bench/results
if [ ! -f "$WORK/.extracted" ]; then
  command -v apt-get >/dev/null || { echo "needs apt-get (Debian)" >&2; exit 1; }
  apt-get update -qq
  # apt verifies each package against the signed archive index.
  (cd "$WORK/debs" && apt-get download "${PKGS[@]}")
  for d in "$WORK"/debs/*.deb; do dpkg -x "$d" "$WORK/x"; done
  touch "$WORK/.extracted"
fi
rm -rf "$WORK/corpus" "$WORK/index-$MODEL"
mkdir -p "$WORK/corpus"
n=0
while IFS= read -r f; do
  name=$(echo "${f#"$WORK"/x/usr/share/doc/}" | tr '/' '_')
  cp "$f" "$WORK/corpus/$name"
  n=$((n + 1))
  if [ "$MAX" -gt 0 ] && [ "$n" -ge "$MAX" ]; then break; fi
done < <(find "$WORK/x" -name '*.pdf' -type f | sort)
printf 'teams = ["staff"]\nclassification = "public"\n' > "$WORK/corpus/_access.toml"
cat > "$WORK/hort.toml" <<TOML
[index]
path = "index-$MODEL"
[embed]
model = "$MODEL"
models_dir = "../models"
TOML
[ "$MODEL" = hash ] || make -s models
cargo build --release --locked -q
echo "ingesting $n PDFs with model $MODEL ..." >&2
TIME=(); [ -x /usr/bin/time ] && TIME=(/usr/bin/time -v)
"${TIME[@]}" ./target/release/hort --config "$WORK/hort.toml" ingest --json "$WORK/corpus" \
  > "bench/results/pdf-corpus-$MODEL.json" 2> "$WORK/time-$MODEL.log"
python3 bench/summarize_ingest.py "bench/results/pdf-corpus-$MODEL.json" "$WORK/time-$MODEL.log" "$n" "$MODEL" \
  > "bench/results/pdf-corpus-$MODEL.md"
cat "bench/results/pdf-corpus-$MODEL.md"
