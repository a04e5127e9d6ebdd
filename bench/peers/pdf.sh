#!/usr/bin/env bash
# pdftotext (poppler, from the Debian archive, pinned) on the PDFs that
# `hort bench ingest` parsed (data/bench/ingest-pdf-input), two processes at a
# time like hort's two parse threads; pages counted with pdfinfo.
#
#   bench/peers/pdf.sh [PDF_DIR] [OUT_JSON]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR="${1:-data/bench/ingest-pdf-input}"
OUT="${2:-bench/results/peers-pdf.json}"
TOOLS=data/tools/poppler
scripts/fetch_debs.sh "$TOOLS" \
  "poppler-utils=22.12.0-2+deb12u3 7e328919d626d9d988832eb1e4adff4ceed275abcdabcb61ec0b3bf2dc64260d" \
  "libpoppler126=22.12.0-2+deb12u3 f2a2737ea92f37f760d8d562d9ddc722ffb6072391987f36a3334c592df51818" \
  "libopenjp2-7=2.5.0-2+deb12u3 a127e2f1741d66bdddb6393a718e3cbec327d53f88c89b859b1f8d73f64cf635"
export LD_LIBRARY_PATH="$PWD/$TOOLS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN="$PWD/$TOOLS/usr/bin"
shopt -s nullglob
files=("$DIR"/*.pdf)
[ ${#files[@]} -gt 0 ] || { echo "pdf.sh: no PDFs in $DIR (run hort bench ingest first)" >&2; exit 1; }
pages=0
for f in "${files[@]}"; do
  n=$("$BIN/pdfinfo" "$f" 2>/dev/null | awk '/^Pages:/ {print $2}')
  pages=$((pages + ${n:-0}))
done
tmp=$(mktemp -d)
start=$(date +%s.%N)
printf '%s\0' "${files[@]}" | xargs -0 -P2 -I{} sh -c '"$0" -q "$1" "$2/$(basename "$1").txt" 2>/dev/null || true' "$BIN/pdftotext" {} "$tmp"
end=$(date +%s.%N)
failed=$(( ${#files[@]} - $(ls "$tmp" | wc -l) ))
rm -rf "$tmp"
python3 - "$OUT" "${#files[@]}" "$pages" "$start" "$end" "$failed" <<'PY'
import json, sys
out, files, pages, start, end, failed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
s = end - start
json.dump({"suite": "pdf-peers", "engine": "pdftotext", "version": "poppler 22.12.0", "processes": 2,
           "files": files, "failed": failed, "pages": pages, "seconds": s, "pages_per_second": pages / s},
          open(out, "w"), indent=2)
print(f"pdftotext: {files} PDFs, {pages} pages in {s:.1f} s = {pages / s:.1f} pages/s", file=sys.stderr)
PY
