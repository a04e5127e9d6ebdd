#!/usr/bin/env bash
# Installs pinned Python packages (hashes required) into a directory, for the
# integration tests (default: tests/python/requirements.txt into data/py) or
# for the benchmark peers (bench/peers/requirements.txt into data/bench-py).
# Idempotent: a stamp holds the hash of the requirements the directory was
# built from.
#
#   scripts/fetch_pydeps.sh [REQUIREMENTS DEST [SDIST_REQUIREMENTS]]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
req="${1:-tests/python/requirements.txt}"
dest="${2:-data/py}"
sdist="${3:-}"
want="$(cat "$req" ${sdist:+"$sdist"} | sha256sum | cut -d' ' -f1)"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" ]]; then
    exit 0
fi
echo "fetch_pydeps: installing $req into $dest" >&2
rm -rf "$dest.tmp"
pip=("$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore
     --no-deps --require-hashes --no-compile --target "$dest.tmp")
"${pip[@]}" --only-binary=:all: -r "$req"
if [[ -n "$sdist" ]]; then
    # Source packages build against what was just installed (pybind11, numpy).
    PYTHONPATH="$PWD/$dest.tmp" "${pip[@]}" --no-build-isolation --no-binary=:all: -r "$sdist"
fi
echo "$want" > "$dest.tmp/.stamp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
