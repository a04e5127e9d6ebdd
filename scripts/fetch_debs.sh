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
# The machine's package lists may predate the pinned version (a fresh
# machine's lists are as old as its image): then read current lists into a
# private directory (no root needed, the system's lists untouched) and use those.
lists="$(cd "$(dirname "$0")/.." && pwd)/data/cache/apt"
private=(-o "Dir::State::Lists=$lists/lists" -o "Dir::Cache=$lists/cache" -o "Debug::NoLocking=1")
download() {
    (cd "$dest.tmp/debs" && apt-get download -q "$@" >/dev/null 2>&1)
}
refreshed=0
for d in "$@"; do
    pkg="${d%% *}" sum="${d##* }"
    if ! download "$pkg" && ! { [[ -d "$lists/lists" ]] && download "${private[@]}" "$pkg"; }; then
        if [[ $refreshed == 0 ]]; then
            echo "fetch_debs: $pkg is not in the machine's package lists; reading current lists into $lists" >&2
            mkdir -p "$lists/lists/partial" "$lists/cache/archives/partial"
            apt-get update -q "${private[@]}" -o Acquire::Languages=none >/dev/null 2>&1 || true
            refreshed=1
        fi
        download "${private[@]}" "$pkg" \
            || { echo "fetch_debs: cannot download $pkg (is the Debian archive reachable? is the version still in it?)" >&2; exit 1; }
    fi
    f=$(ls "$dest.tmp/debs/${pkg%%=*}"_*.deb)
    echo "$sum  $f" | sha256sum -c --quiet - \
        || { echo "fetch_debs: checksum mismatch: $f" >&2; exit 1; }
    dpkg -x "$f" "$dest.tmp"
done
echo "$want" > "$dest.tmp/.stamp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
