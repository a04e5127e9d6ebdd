#!/usr/bin/env bash
# Installs the Python packages the integration tests use (pinned with hashes in
# tests/python/requirements.txt) into data/py. Idempotent: a stamp holds the
# hash of the requirements the directory was built from.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
req=tests/python/requirements.txt
dest=data/py
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" ]]; then
    exit 0
fi
echo "fetch_pydeps: installing the test clients into $dest" >&2
rm -rf "$dest.tmp"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --require-hashes --only-binary=:all: --no-compile --target "$dest.tmp" -r "$req"
echo "$want" > "$dest.tmp/.stamp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
