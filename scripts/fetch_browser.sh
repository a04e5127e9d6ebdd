#!/usr/bin/env bash
# Fetches what the browser tests need, pinned and checked, into data/:
#  - data/browser: a headless Chromium (the npm package @sparticuz/chromium,
#    which carries the browser brotli-compressed with the few libraries it
#    needs besides glibc: NSS, expat, fonts), checked against its pinned
#    SHA-512 and unpacked with the machine's Node.js;
#  - data/browser-py: Playwright for Python (tests/browser/requirements.txt).
# Nothing is installed system-wide and no root is needed. Idempotent: a stamp
# holds the pin the directory was built from.
#
# Why not Debian's chromium package: installing it needs root, and unpacking
# it privately needs its ~120 libraries at versions that leave the archive
# with every security update; the npm tarball stays fetchable at its version.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG="@sparticuz/chromium@153.0.0"
SHA512="jiGWqSvPMdu4+P9TilYqAR7yEGPEHINx+lCvE/NqNO/EHYzF/x1hUiI5T6ioVIt7dEy7n88byyT0vk+dnsgQwA=="
dest=data/browser

scripts/fetch_pydeps.sh tests/browser/requirements.txt data/browser-py

stamp="$PKG $SHA512 $PWD"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
    exit 0
fi
for tool in npm node; do
    command -v "$tool" >/dev/null \
        || { echo "fetch_browser: $tool is needed to fetch the test browser (Debian: apt-get install nodejs npm)" >&2; exit 1; }
done
echo "fetch_browser: fetching $PKG into $dest" >&2
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp" data/cache/npm
tgz="data/cache/npm/sparticuz-chromium-${PKG##*@}.tgz"
if [[ ! -f "$tgz" ]]; then
    npm pack --silent --pack-destination data/cache/npm "$PKG" >/dev/null
fi
got="$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [[ "$got" != "$SHA512" ]]; then
    rm -f "$tgz"
    echo "fetch_browser: checksum mismatch for $tgz" >&2
    exit 1
fi
tar xzf "$tgz" -C "$dest.tmp" package/bin
node -e '
const zlib = require("zlib"), fs = require("fs"), dir = process.argv[1];
for (const f of ["chromium", "al2023.tar", "fonts.tar", "swiftshader.tar"]) {
  fs.writeFileSync(dir + "/" + f, zlib.brotliDecompressSync(fs.readFileSync(dir + "/package/bin/" + f + ".br")));
}' "$dest.tmp"
for t in al2023 fonts swiftshader; do
    tar xf "$dest.tmp/$t.tar" -C "$dest.tmp" && rm "$dest.tmp/$t.tar"
done
rm -rf "$dest.tmp/package"
chmod +x "$dest.tmp/chromium"
# The package's fontconfig file points at Lambda's paths: use the bundled fonts
# (and the machine's, where it has any) from here.
abs="$PWD/$dest"
cat > "$dest.tmp/fonts.conf" <<CONF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>$abs/fonts</dir>
  <dir>/usr/share/fonts</dir>
  <cachedir>$abs/fonts-cache</cachedir>
</fontconfig>
CONF
echo "$stamp" > "$dest.tmp/.stamp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
