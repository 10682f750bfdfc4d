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
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
PIN=${PIN:-1}

log() { echo "http_load: $*" >&2; }
die() {
    log "$*"
    exit 1
}

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt-get update && apt-get install -y wrk
fi
command -v curl >/dev/null 2>&1 || die "curl is needed"

server_pin=()
wrk_pin=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null 2>&1 && [[ $(nproc) -ge 2 ]]; then
    server_pin=(taskset -c "$SERVER_CPU")
    wrk_pin=(taskset -c "$WRK_CPU")
else
    log "not pinning: server and wrk share all cores"
fi

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

# The server's user+system CPU time so far, in clock ticks.
server_ticks() {
    awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}
ticks_per_second=$(getconf CLK_TCK)

declare -A rps_sum=() cpu_sum=() runs=()

# run_wrk NAME PATH DURATION: prints "rps requests"; fails on errors.
run_wrk() {
    local name=$1 path=$2 duration=$3 out
    out=$("${wrk_pin[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout 5s "$base$path")
    if grep -q -e 'Non-2xx' -e 'Socket errors' <<<"$out"; then
        echo "$out" >&2
        die "$name: errors during the run"
    fi
    local rps requests
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    [[ -n $rps && -n $requests ]] || {
        echo "$out" >&2
        die "$name: cannot read wrk's output"
    }
    echo "$rps $requests"
}

log "warm-up: $WARMUP on each route"
run_wrk constant /_bench/constant "$WARMUP" >/dev/null
run_wrk dashboard /dashboard "$WARMUP" >/dev/null

log "measuring: $ROUNDS rounds of constant then dashboard, $DURATION each, -t$THREADS -c$CONNECTIONS"
printf '%-10s %5s %12s %18s\n' route round requests/s "server CPU/request"
for round in $(seq "$ROUNDS"); do
    for name in constant dashboard; do
        path=/dashboard
        [[ $name == constant ]] && path=/_bench/constant
        before=$(server_ticks)
        result=$(run_wrk "$name" "$path" "$DURATION")
        read -r rps requests <<<"$result"
        after=$(server_ticks)
        cpu_us=$(awk -v t=$((after - before)) -v hz="$ticks_per_second" -v n="$requests" \
            'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
        printf '%-10s %5s %12.0f %15s us\n' "$name" "$round" "$rps" "$cpu_us"
        rps_sum[$name]=$(awk -v a="${rps_sum[$name]:-0}" -v b="$rps" 'BEGIN { print a + b }')
        cpu_sum[$name]=$(awk -v a="${cpu_sum[$name]:-0}" -v b="$cpu_us" 'BEGIN { print a + b }')
        runs[$name]=$((${runs[$name]:-0} + 1))
    done
done

mean() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.2f", s / n }'; }
constant_rps=$(mean "${rps_sum[constant]}" "${runs[constant]}")
dashboard_rps=$(mean "${rps_sum[dashboard]}" "${runs[dashboard]}")
constant_cpu=$(mean "${cpu_sum[constant]}" "${runs[constant]}")
dashboard_cpu=$(mean "${cpu_sum[dashboard]}" "${runs[dashboard]}")
ratio=$(awk -v d="$dashboard_rps" -v c="$constant_rps" 'BEGIN { printf "%.3f", d / c }')
cpu_ratio=$(awk -v d="$dashboard_cpu" -v c="$constant_cpu" 'BEGIN { printf "%.3f", d / c }')

echo
printf 'constant   mean requests/s: %10.0f   server CPU/request: %s us\n' "$constant_rps" "$constant_cpu"
printf 'dashboard  mean requests/s: %10.0f   server CPU/request: %s us\n' "$dashboard_rps" "$dashboard_cpu"
echo "ratio dashboard/constant: requests/s $ratio (goal >= 0.9), server CPU/request $cpu_ratio"
