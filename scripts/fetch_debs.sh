#!/usr/bin/env bash
# Fetches Debian packages (pinned by version and SHA-256) and unpacks them into
# a directory, without installing anything system-wide. Idempotent: a stamp
# holds the hash of the list the directory was built from.
#
#   scripts/fetch_debs.sh DEST "package=version sha256" ...
set -euo pipefail
dest="$1"
shift
want="$(printf '%s\n' "$@" | sha256sum | cut -d' ' -f1)"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" ]]; then
    exit 0
fi
echo "fetch_debs: fetching ${*%% *} into $dest" >&2
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/debs"
for d in "$@"; do
    pkg="${d%% *}" sum="${d##* }"
    (cd "$dest.tmp/debs" && apt-get download -q "$pkg" >/dev/null 2>&1) \
        || { echo "fetch_debs: cannot download $pkg (is the Debian archive reachable?)" >&2; exit 1; }
    f=$(ls "$dest.tmp/debs/${pkg%%=*}"_*.deb)
    echo "$sum  $f" | sha256sum -c --quiet - \
        || { echo "fetch_debs: checksum mismatch: $f" >&2; exit 1; }
    dpkg -x "$f" "$dest.tmp"
done
echo "$want" > "$dest.tmp/.stamp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
