#!/bin/sh
# What spreading the chunks table over partitions costs a search: the same
# 100,000 chunks (384-d vectors, 16 team sets of 8 teams, 4 levels) in one
# table and hash-partitioned by a distribution column (the team set) into 4
# partitions, each with its own HNSW index — the layout a sharding layer
# (Citus, or postgres_fdw over declaratively partitioned tables) would put
# on 4 servers. Top-10 by cosine with the access rule in the WHERE clause and
# pgvector's iterative scan, timed by pgbench:
#   - every team visible (every partition answers: the full fan-out);
#   - one team visible (every partition still answers: team sets overlap);
#   - one team set, named (the planner prunes to one partition: what a
#     tenant-scoped distribution column buys).
#
#   make pg && bench/pg/partitions.sh [ROWS]
#
# Writes bench/results/pg-partitions.{md,json}. Needs $HORT_PG_BIN (psql,
# pgbench) and $HORT_TEST_PG_URL from `make pg`.
set -eu
cd "$(dirname "$0")/../.."
# `make pg` leaves its settings here.
if [ -z "${HORT_PG_BIN:-}" ] && [ -f data/pg-run.env ]; then . ./data/pg-run.env; fi
: "${HORT_PG_BIN:?run make pg and source data/pg-run.env}"
: "${HORT_TEST_PG_URL:?run make pg and source data/pg-run.env}"
rows=${1:-100000}
secs=${BENCH_SECONDS:-15}
psql="$HORT_PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
base=${HORT_TEST_PG_URL%/*}
db="$base/hort_bench_partitions"
$psql "$HORT_TEST_PG_URL" -c "DROP DATABASE IF EXISTS hort_bench_partitions" \
    -c "CREATE DATABASE hort_bench_partitions"
echo "partitions: loading $rows chunks" >&2
$psql "$db" <<SQL
CREATE EXTENSION vector;
-- Team set s (0..15) holds teams t(s mod 8) and t((s+3) mod 8).
CREATE TABLE flat (id bigint, team_set int, teams text[], classification int,
                   embedding vector(384));
INSERT INTO flat
SELECT i, i % 16,
       ARRAY['t' || ((i % 16) % 8), 't' || (((i % 16) + 3) % 8)],
       i % 4,
       (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) WHERE i > 0)::vector
FROM generate_series(1, $rows) i;
CREATE TABLE part (LIKE flat) PARTITION BY HASH (team_set);
CREATE TABLE part_0 PARTITION OF part FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE part_1 PARTITION OF part FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE part_2 PARTITION OF part FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE part_3 PARTITION OF part FOR VALUES WITH (MODULUS 4, REMAINDER 3);
INSERT INTO part SELECT * FROM flat;
CREATE TABLE queries (qid int PRIMARY KEY, v vector(384));
INSERT INTO queries
SELECT q, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) WHERE q > 0)::vector
FROM generate_series(1, 200) q;
SQL
echo "partitions: building HNSW indexes" >&2
$psql "$db" <<SQL
SET maintenance_work_mem = '1GB';
CREATE INDEX ON flat USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX ON part USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX ON flat USING gin (teams);
CREATE INDEX ON part USING gin (teams);
VACUUM ANALYZE;
SQL

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # name table where
    cat >"$tmp/$1.sql" <<SQL
\set q random(1, 200)
SET hnsw.iterative_scan = relaxed_order;
SELECT id FROM $2 WHERE $3 ORDER BY embedding <=> (SELECT v FROM queries WHERE qid = :q) LIMIT 10;
SQL
    (cd "$tmp" && "$HORT_PG_BIN/pgbench" -n -c 1 -T "$secs" -l --log-prefix="$1" -f "$1.sql" "$db" >/dev/null 2>&1)
    # Per-transaction latencies (µs, 3rd column) -> p50 / p99 in ms.
    cat "$tmp/$1".* | awk '{print $3}' | sort -n | awk -v name="$1" '
        { v[NR] = $1 }
        END { p50 = v[int(NR * 0.50) + 1] / 1000; p99 = v[int(NR * 0.99) + 1] / 1000;
              printf "%s %d %.2f %.2f\n", name, NR, p50, p99 }'
}
all="teams && ARRAY['t0','t1','t2','t3','t4','t5','t6','t7'] AND classification <= 3"
one="teams && ARRAY['t0'] AND classification <= 3"
set_="team_set = 5 AND teams && ARRAY['t5'] AND classification <= 3"
{
    run flat_all flat "$all"
    run part_all part "$all"
    run flat_one flat "$one"
    run part_one part "$one"
    run flat_set flat "$set_"
    run part_set part "$set_"
} >"$tmp/results"
cat "$tmp/results" >&2
scanned=$($psql "$db" -At -c "EXPLAIN SELECT id FROM part WHERE $set_ ORDER BY embedding <=> (SELECT v FROM queries WHERE qid = 1) LIMIT 10" | grep -c "on part_" || true)

machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//; s/(R)//g')),"
machine="$machine $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -sr), $(date -u +%F)"
out=bench/results/pg-partitions
awk -v rows="$rows" -v machine="$machine" -v scanned="$scanned" '
    { n[$1] = $2; p50[$1] = $3; p99[$1] = $4 }
    END {
        printf "Vector search on PostgreSQL, one table vs 4 hash partitions by team set (%d chunks, 384-d, HNSW m=16 per partition, iterative scan, top 10 with the access rule; pgbench, one client).\n\n", rows
        printf "| who searches | one table p50 / p99 ms | 4 partitions p50 / p99 ms |\n|---|---:|---:|\n"
        printf "| every team visible (all partitions answer) | %.2f / %.2f | %.2f / %.2f |\n", p50["flat_all"], p99["flat_all"], p50["part_all"], p99["part_all"]
        printf "| one team visible (all partitions answer) | %.2f / %.2f | %.2f / %.2f |\n", p50["flat_one"], p99["flat_one"], p50["part_one"], p99["part_one"]
        printf "| one team set named (pruned to %d partition) | %.2f / %.2f | %.2f / %.2f |\n", scanned, p50["flat_set"], p99["flat_set"], p50["part_set"], p99["part_set"]
        printf "\nMachine: %s.\n", machine
    }' "$tmp/results" >"$out.md"
awk -v rows="$rows" -v machine="$machine" '
    BEGIN { printf "{\"rows\": %d, \"machine\": \"%s\", \"runs\": [", rows, machine }
    { printf "%s{\"name\": \"%s\", \"queries\": %d, \"p50_ms\": %s, \"p99_ms\": %s}", (NR > 1 ? ", " : ""), $1, $2, $3, $4 }
    END { print "]}" }' "$tmp/results" >"$out.json"
cat "$out.md"
$psql "$HORT_TEST_PG_URL" -c "DROP DATABASE hort_bench_partitions"
