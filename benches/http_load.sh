#!/usr/bin/env bash
# HTTP load measurement: GET /dashboard against GET /_bench/constant.
#
# Builds the release binary, starts it on a loopback port with the hidden
# --bench-baseline flag (which mounts /_bench/constant: a constant body as
# large as the dashboard body), then runs wrk against the two routes in
# alternation in one run and prints requests/s of each and the ratio
# dashboard/constant. The goal: /dashboard at >= 0.9x the constant handler.
#
# On a small machine the server and wrk share the cores, so each is pinned
# (server on SERVER_CPU, wrk on WRK_CPU) to keep them from stealing each
# other's time. The server's CPU time per request is printed too: unlike
# requests/s it does not depend on which side is the bottleneck.
#
# Settings (environment): ROUNDS (2), DURATION (10s), WARMUP (2s),
# CONNECTIONS (64), THREADS (1), SERVER_CPU (0), WRK_CPU (1),
# PIN (1; 0 = no taskset).
#
# Usage: benches/http_load.sh
set -euo pipefail
shopt -s inherit_errexit

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
LOAD_NAME=http_load
# shellcheck source=benches/load_common.sh
source benches/load_common.sh

cargo build --release

workdir=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

# --mode mock: the measurement must not depend on BQ_PROJECT_ID in the environment.
"${server_pin[@]}" target/release/warmcache --mode mock --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --bench-baseline \
    2>"$workdir/server.log" &
server_pid=$!

port=""
for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || {
        cat "$workdir/server.log" >&2
        die "the server exited during start-up"
    }
    port=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$workdir/server.log" | head -n 1 | sed 's/.*://' || true)
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || {
    cat "$workdir/server.log" >&2
    die "no 'listening on' line within 10 s"
}
base="http://127.0.0.1:$port"
log "server pid $server_pid on $base"

ready=""
for _ in $(seq 60); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$base/readyz" || true)
    if [[ $code == 200 ]]; then
        ready=1
        break
    fi
    sleep 0.25
done
[[ -n $ready ]] || die "/readyz did not answer 200 within about 30 s"

for path in /dashboard /_bench/constant; do
    bytes=$(curl -s --max-time 5 -o /dev/null -w '%{size_download}' "$base$path")
    log "$path: $bytes body bytes"
done

log "warm-up: $WARMUP on each route"
run_wrk "$base/_bench/constant" "$WARMUP" >/dev/null
run_wrk "$base/dashboard" "$WARMUP" >/dev/null

log "measuring: $ROUNDS rounds of constant then dashboard, $DURATION each, -t$THREADS -c$CONNECTIONS"
printf '%-14s %5s %12s %18s\n' route round requests/s "server CPU/request"
for round in $(seq "$ROUNDS"); do
    measure constant "$round" "$server_pid" "$base/_bench/constant"
    measure dashboard "$round" "$server_pid" "$base/dashboard"
done

constant_rps=$(mean_rps constant)
dashboard_rps=$(mean_rps dashboard)
constant_cpu=$(mean_cpu constant)
dashboard_cpu=$(mean_cpu dashboard)
ratio=$(ratio "$dashboard_rps" "$constant_rps")
cpu_ratio=$(ratio "$dashboard_cpu" "$constant_cpu")

echo
printf 'constant   mean requests/s: %10.0f   server CPU/request: %s us\n' "$constant_rps" "$constant_cpu"
printf 'dashboard  mean requests/s: %10.0f   server CPU/request: %s us\n' "$dashboard_rps" "$dashboard_cpu"
echo "ratio dashboard/constant: requests/s $ratio (goal >= 0.9), server CPU/request $cpu_ratio"
