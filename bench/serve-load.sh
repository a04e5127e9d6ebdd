#!/usr/bin/env bash
# Load test of `hort serve`: POST /v1/search with wrk on loopback against an
# index of 100k chunks, then a memory soak.
#
#   bench/serve-load.sh [SECONDS=60] [CONNECTIONS=4] [SOAK_SECONDS=600] [NAME=serve-load]
#
# The index is the synthetic 100k-chunk index of `hort bench query`
# (Zipf-distributed text, random vectors recorded under the real model, so
# the server embeds every question with the real model and searches both
# sides for real); embedding 100k chunks of real text would take over an
# hour on 2 cores and measure the same serving path. Results:
# bench/results/serve-load.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-60}"
CONN="${2:-4}"
SOAK="${3:-600}"
NAME="${4:-serve-load}"
WORK=data/bench/serve-load
TOOLS=data/tools/wrk
mkdir -p "$WORK" bench/results

# --- wrk from the Debian archive, pinned by version and SHA-256 ------------
scripts/fetch_debs.sh "$TOOLS" \
  "wrk=4.1.0-3+b2 b0206dc74df85365a248ddac2433c0ee3f210579fc5ed83758e73354bb1bbefb" \
  "libluajit-5.1-2=2.1.0~beta3+git20220320+dfsg-4.1+deb12u1 1f0ea919d09d47420993aca0102ec0aed46338b2bf7e072a4b4566c5616f09d2"
WRK=("$TOOLS/usr/bin/wrk")
export LD_LIBRARY_PATH="$PWD/$TOOLS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# --- the binary and the index ------------------------------------------------
cargo build --release --locked --quiet
HORT=target/release/hort
make -s models
# Builds data/bench/query-synthetic-100000 once (and writes the questions).
"$HORT" bench query --sizes 100000 --requests 20 --work data/bench --out "$WORK/query-check" >/dev/null
INDEX="$PWD/data/bench/query-synthetic-100000"

KEY="load-test-key"
HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
cat > "$WORK/hort.toml" <<TOML
[index]
path = "$INDEX"

[embed]
model = "minilm-l6"
models_dir = "../../models"
# Every question embedded: the 500 questions repeat, and the question
# cache would otherwise measure itself instead of the model.
query_cache = 0

[audit]
path = "audit.jsonl"

[gateway]
usage_path = "usage.jsonl"

[[principals]]
name = "loadtester"
api_key_sha256 = "$HASH"
teams = ["finance", "hr", "staff"]
clearance = "confidential"
TOML
CHUNKS=$("$HORT" --config "$WORK/hort.toml" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
cp data/bench/query-bodies.jsonl "$WORK/bodies.jsonl"

rm -f "$WORK/audit.jsonl" "$WORK/audit.jsonl.head"
PORT=18089
"$HORT" --config "$WORK/hort.toml" serve --addr "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
run() { HORT_BODIES="$WORK/bodies.jsonl" HORT_KEY="$KEY" "${WRK[@]}" -t1 -c"$CONN" -d"$1"s --timeout 5s -s bench/load/search.lua "http://127.0.0.1:$PORT" | tail -1; }

echo "serve-load: warm-up 10 s" >&2
run 10 >/dev/null
RSS_WARM=$(rss)
echo "serve-load: measuring ${SECONDS_RUN} s with $CONN connections" >&2
MAIN=$(run "$SECONDS_RUN")
echo "$MAIN" >&2

SOAK_JSON="null"
if [ "$SOAK" -gt 0 ]; then
  echo "serve-load: soak ${SOAK} s (RSS every 10 s)" >&2
  SAMPLES="$WORK/soak-rss.txt"
  : > "$SAMPLES"
  ( while kill -0 $PID 2>/dev/null; do echo "$(date +%s) $(rss)" >> "$SAMPLES"; sleep 10; done ) &
  SAMPLER=$!
  SOAKRES=$(run "$SOAK")
  kill $SAMPLER 2>/dev/null || true
  SOAK_JSON=$(python3 - "$SAMPLES" "$SOAKRES" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
kib = [int(r[1]) for r in rows]
res = json.loads(sys.argv[2])
n = len(kib)
half = kib[n // 2:] if n > 1 else kib
print(json.dumps({"wrk": res, "rss_mib": {"first": kib[0] / 1024, "last": kib[-1] / 1024,
      "max": max(kib) / 1024, "min": min(kib) / 1024,
      "second_half_growth": (half[-1] - half[0]) / 1024}, "samples": n}))
PY
)
  echo "$SOAK_JSON" >&2
fi
RSS_END=$(rss)
kill -TERM $PID; wait $PID || true
trap - EXIT

python3 - "$MAIN" "$SOAK_JSON" "$CHUNKS" "$CONN" "$RSS_WARM" "$RSS_END" "$NAME" <<'PY'
import json, os, platform, subprocess, sys, datetime
main = json.loads(sys.argv[1]); soak = json.loads(sys.argv[2])
chunks, conn, warm, end = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
machine = f"{os.cpu_count()} cores ({cpu}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB"
out = {"date": datetime.date.today().isoformat(), "machine": machine, "endpoint": "/v1/search",
       "chunks": chunks, "connections": conn, "k": 10, "main": main, "soak": soak,
       "rss_mib": {"after_warmup": warm / 1024, "end": end / 1024}}
name = sys.argv[7]
json.dump(out, open(f"bench/results/{name}.json", "w"), indent=2)
m = main
errs = sum(m["errors"].values())
lines = [f"`/v1/search` over HTTP with wrk, k = 10, {chunks} chunks (synthetic text and vectors, every question embedded by the real model), "
         f"audit log on, {conn} connections, {m['duration_s']:.0f} s, {machine}, {out['date']}:", "",
         "| p50 | p90 | p99 | max | throughput | errors |", "|---|---|---|---|---|---|",
         f"| {m['latency_ms']['p50']:.1f} ms | {m['latency_ms']['p90']:.1f} ms | {m['latency_ms']['p99']:.1f} ms | {m['latency_ms']['max']:.0f} ms | {m['rps']:.0f} req/s | {errs} of {m['requests']} |"]
if soak:
    s = soak["wrk"]; r = soak["rss_mib"]
    lines += ["", f"Soak: {s['duration_s']:.0f} s, {s['requests']} requests, {sum(s['errors'].values())} errors, p99 {s['latency_ms']['p99']:.1f} ms; "
              f"server RSS {r['first']:.0f} MiB at the start, {r['max']:.0f} MiB max, {r['last']:.0f} MiB at the end "
              f"({r['second_half_growth']:+.1f} MiB over the second half)."]
open(f"bench/results/{name}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
