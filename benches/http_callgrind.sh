#!/usr/bin/env bash
# Instructions per request of warmcache against the bare axum + moka server
# (examples/bare_age_server.rs), counted by callgrind: a measure that does
# not depend on the machine's load, unlike benches/http_records_load.sh.
#
# Seeds COUNT records as Node writes them (as http_records_load.sh does),
# then for each server in turn: starts it under
# `valgrind --tool=callgrind`, walks every id once (warmcache's L1 fills),
# sends random ids for WARMUP, zeroes the counters, sends random ids for
# DURATION (wrk, fixed connections), dumps the counters and divides the
# instructions by the requests wrk completed. Prints instructions/request
# of both and their ratio, and leaves the callgrind files (OUT, default
# target/callgrind) for `callgrind_annotate --inclusive=yes`.
#
# By hand only. Needs valgrind, node (tests/node installed), redis-server,
# wrk. Settings (environment): COUNT (2000), RECORDS (ages | jobs),
# DURATION (20s), WARMUP (5s), CONNECTIONS (16), OUT (target/callgrind),
# SERVERS ("bare warmcache"), BIN (the directory holding warmcache and
# bare_age_server; default: build them and use the release target's),
# CACHE_SIM (0; 1 = also simulate the caches and print misses/request),
# LL (with CACHE_SIM: the simulated last level as SIZE,ASSOC,LINE; e.g.
# 1048576,16,64 models a 1 MiB L2, so DLmr counts what goes past it).
set -euo pipefail
shopt -s inherit_errexit

cd "$(dirname "$0")/.."

COUNT=${COUNT:-2000}
RECORDS=${RECORDS:-ages}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=${CONNECTIONS:-16}
OUT=${OUT:-target/callgrind}
CACHE_SIM=${CACHE_SIM:-0}
SERVERS=${SERVERS:-bare warmcache}
case $RECORDS in
ages) seed=seed_ages.js path=age-verification id=c ;;
jobs) seed=seed_jobs.js path=jobs id=j ;;
*) echo "RECORDS must be ages or jobs" >&2 && exit 1 ;;
esac
export COUNT PATH_PREFIX="/$path/$id"
LOAD_NAME=http_callgrind
# shellcheck source=benches/load_common.sh
source benches/load_common.sh
for tool in valgrind callgrind_control node redis-server python3 wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done
[[ -d tests/node/node_modules/ioredis ]] || die "run: npm ci --prefix tests/node"

if [[ -z ${BIN:-} ]]; then
    build_servers bare_age_server
    BIN=${CARGO_TARGET_DIR:-target}/release
    cp "$BIN/examples/bare_age_server" "$BIN/bare_age_server"
fi
mkdir -p "$OUT"

workdir=$(mktemp -d)
pids=()
trap stop_processes EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$workdir" --logfile "$workdir/redis.log" --daemonize no &
pids+=($!)
wait_line "$workdir/redis.log" 'Ready to accept connections' "${pids[-1]}" >/dev/null
REDIS_PORT=$redis_port node "tests/node/scripts/$seed" >&2

cat >"$workdir/walk.lua" <<'LUA'
local count, i = tonumber(os.getenv("COUNT")), 0
request = function()
  i = i % count + 1
  return wrk.format("GET", os.getenv("PATH_PREFIX") .. i)
end
LUA
cat >"$workdir/random.lua" <<'LUA'
local count = tonumber(os.getenv("COUNT"))
math.randomseed(42)
request = function()
  return wrk.format("GET", os.getenv("PATH_PREFIX") .. math.random(1, count))
end
LUA

# requests URL DURATION SCRIPT: the requests wrk completed; fails on errors.
requests() {
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$2" --timeout 30s -s "$3" "$1")
    if grep -q -e 'Non-2xx' -e 'Socket errors' <<<"$out"; then
        echo "$out" >&2
        die "$1: errors during the run"
    fi
    awk '/requests in/ { print $1 }' <<<"$out"
}

declare -A per_request=()
for name in $SERVERS; do
    file="$OUT/$RECORDS-$name.callgrind"
    rm -f "$file"
    grind=(valgrind --tool=callgrind --callgrind-out-file="$file" --dump-instr=no)
    [[ $CACHE_SIM == 0 ]] || grind+=(--cache-sim=yes)
    [[ $CACHE_SIM == 0 || -z ${LL:-} ]] || grind+=(--LL="$LL")
    if [[ $name == bare ]]; then
        BARE_RECORDS=$RECORDS REDIS_PORT=$redis_port BARE_LISTEN=127.0.0.1:0 \
            "${grind[@]}" "$BIN/bare_age_server" 2>"$workdir/$name.log" &
    else
        "${grind[@]}" "$BIN/warmcache" --mode mock --listen 127.0.0.1:0 \
            --metrics-listen 127.0.0.1:0 --redis-port "$redis_port" --l1-ttl-ms 86400000 \
            --ttl-ms 86400000 2>"$workdir/$name.log" &
    fi
    pid=$!
    pids+=("$pid")
    base=$(wait_line "$workdir/$name.log" 'listening on http://127\.0\.0\.1:[0-9]*' "$pid" 120)
    base=${base#listening on }
    # Under valgrind the first answers are slow (Redis connections, lease).
    for try in $(seq 60); do
        curl -sf -m 10 "$base${PATH_PREFIX}1" >/dev/null && break
        ((try < 60)) || die "$name: no ${id}1"
        sleep 1
    done
    log "$name (pid $pid) on $base: warming up"
    # Filling L1 under valgrind may meet Redis timeouts (503): walk until a
    # walk sees no error.
    for try in $(seq 5); do
        out=$(wrk -t1 -c"$CONNECTIONS" -d"$((COUNT / 100 + 5))s" --timeout 30s -s "$workdir/walk.lua" "$base")
        grep -q -e 'Non-2xx' -e 'Socket errors' <<<"$out" || break
        ((try < 5)) || die "$name: errors in every warm-up walk"
    done
    requests "$base" "$WARMUP" "$workdir/random.lua" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    n=$(requests "$base" "$DURATION" "$workdir/random.lua")
    callgrind_control -d "$pid" >/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    # The dump of -d is FILE.1 (the final dump at exit is FILE).
    dump=$(ls "$file".* | head -n 1)
    total=$(awk '/^summary:|^totals:/ { print $2; exit }' "$dump")
    per_request[$name]=$((total / n))
    log "$name: $n requests, $total instructions, ${per_request[$name]} per request ($dump)"
    if [[ $CACHE_SIM != 0 ]]; then
        # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw (simulated caches)
        awk -v n="$n" -v name="$name" '/^events:/ { for (i = 2; i <= NF; i++) ev[i] = $i }
            /^summary:|^totals:/ { for (i = 2; i <= NF; i++) if (ev[i] ~ /mr|mw/) printf "%s %s/request: %.1f\n", name, ev[i], $i / n; exit }' "$dump"
    fi
done
if [[ -n ${per_request[bare]:-} && -n ${per_request[warmcache]:-} ]]; then
    echo "instructions/request: bare ${per_request[bare]}, warmcache ${per_request[warmcache]}," \
        "ratio $(awk -v w="${per_request[warmcache]}" -v b="${per_request[bare]}" 'BEGIN { printf "%.3f", w / b }')"
fi
