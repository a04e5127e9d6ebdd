#!/usr/bin/env bash
# Does serving scale with cores? `/v1/search` under wrk at 1, 2 and 4
# connections (SECONDS each, default 30) on the 100k-chunk index of
# bench/serve-load.sh, then bench/results/serve-load-scaling.{md,json}.
# wrk runs on the same machine (one thread), so it takes a share of the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
for c in 1 2 4; do
  bench/serve-load.sh "$SECS" "$c" 0 "serve-load-c$c" >/dev/null
done
python3 - <<'PY'
import json, os
rows = [json.load(open(f"bench/results/serve-load-c{c}.json")) for c in (1, 2, 4)]
cores = os.cpu_count()
base = rows[0]["main"]["rps"]
lines = [f"`/v1/search` with wrk (one load thread on the same machine), {rows[0]['chunks']} chunks, k = 10, "
         f"every question embedded (question cache off), audit log on, {rows[0]['machine']}, {rows[0]['date']}:", "",
         "| connections | p50 | p99 | throughput | ÷ 1 connection | errors |", "|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    m = r["main"]
    lines.append(f"| {r['connections']} | {m['latency_ms']['p50']:.1f} ms | {m['latency_ms']['p99']:.1f} ms | "
                 f"{m['rps']:.0f} req/s | {m['rps'] / base:.2f}× | {sum(m['errors'].values())} of {m['requests']} |")
lines += ["", f"Throughput should grow up to the core count ({cores}) and hold beyond it."]
json.dump({"rows": rows}, open("bench/results/serve-load-scaling.json", "w"), indent=2)
open("bench/results/serve-load-scaling.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
