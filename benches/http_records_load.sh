#!/usr/bin/env bash
# HTTP load comparison: GET /age-verification/{id} L1 hits of warmcache
# against a bare axum + moka server holding the same bytes; with
# RECORDS=jobs, GET /jobs/{id} (reasoning_job records, ETag included) the
# same way.
#
# Starts its own redis-server on a free loopback port, seeds it with COUNT
# age verifications as a Node service writes them (tests/node/scripts/
# seed_ages.js: JSON.stringify with an ISO date, setex), then starts
#   * warmcache (release binary, mock mode, L1 bound raised so that nothing
#     expires during the run, snapshot TTL raised so that no mock refresh,
#     whose CPU time would count, runs during it), and
#   * examples/bare_age_server.rs (axum + moka, loaded with the same bytes),
# both pinned to SERVER_CPU, wrk pinned to WRK_CPU. warmcache's L1 is
# filled by walking every id once; the measurement then requests ids at
# random (wrk Lua script), alternating the two servers round by round, and
# prints requests/s and each server's CPU time per request (user + system
# from /proc). warmcache's Redis hit counter is checked before and after:
# every measured request must have been an L1 hit. It prints the means of
# the rounds and the median of the per-round ratios (warmcache / the bare
# round just before it).
#
# Goals (issue 9, and issue 10 for jobs): warmcache CPU/request <= 1.15x
# bare, requests/s >= 0.9x.
# By hand only (CI only builds benches). Needs node and tests/node installed
# (npm ci --prefix tests/node), redis-server, wrk (installed if missing).
#
# Settings (environment): ROUNDS (3), DURATION (10s), WARMUP (2s),
# CONNECTIONS (64), THREADS (1), SERVER_CPU (0), WRK_CPU (1), PIN (1),
# COUNT (10000), RECORDS (ages | jobs), BARE_FILL (preload: the bare server
# loads every record at start, one after another into a fresh heap; miss:
# it fills on misses from Redis during the same warm-up walk as warmcache,
# so both caches' entries are allocated while serving), WALK_CONNECTIONS
# (CONNECTIONS: the connections of the walk that fills the caches; 1 fills
# them one id after another, so fills do not interleave their allocations).
set -euo pipefail
shopt -s inherit_errexit

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-10000}
RECORDS=${RECORDS:-ages}
BARE_FILL=${BARE_FILL:-preload}
WALK_CONNECTIONS=${WALK_CONNECTIONS:-${CONNECTIONS:-64}}
case $RECORDS in
ages) seed=seed_ages.js path=age-verification id=c cache=age_verification ;;
jobs) seed=seed_jobs.js path=jobs id=j cache=reasoning_job ;;
*) echo "RECORDS must be ages or jobs" >&2 && exit 1 ;;
esac
export COUNT PATH_PREFIX="/$path/$id"
LOAD_NAME=http_records_load
# shellcheck source=benches/load_common.sh
source benches/load_common.sh

for tool in node redis-server python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done
[[ -d tests/node/node_modules/ioredis ]] || die "run: npm ci --prefix tests/node"

build_servers bare_age_server

workdir=$(mktemp -d)
pids=()
trap stop_processes EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$workdir" --logfile "$workdir/redis.log" --daemonize no &
pids+=($!)
wait_line "$workdir/redis.log" 'Ready to accept connections' "${pids[-1]}" >/dev/null
log "redis-server on port $redis_port"

REDIS_PORT=$redis_port node "tests/node/scripts/$seed" >&2

"${server_pin[@]}" target/release/warmcache --mode mock --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --redis-port "$redis_port" --l1-ttl-ms 86400000 --ttl-ms 86400000 \
    2>"$workdir/warmcache.log" &
warmcache_pid=$!
pids+=("$warmcache_pid")
warmcache=$(wait_line "$workdir/warmcache.log" 'listening on http://127\.0\.0\.1:[0-9]*' "$warmcache_pid")
warmcache=${warmcache#listening on }
metrics=$(wait_line "$workdir/warmcache.log" 'metrics on http://127\.0\.0\.1:[0-9]*' "$warmcache_pid")
metrics="${metrics#metrics on }/metrics"

BARE_FILL=$BARE_FILL BARE_RECORDS=$RECORDS REDIS_PORT=$redis_port BARE_LISTEN=127.0.0.1:0 "${server_pin[@]}" \
    target/release/examples/bare_age_server 2>"$workdir/bare.log" &
bare_pid=$!
pids+=("$bare_pid")
bare=$(wait_line "$workdir/bare.log" 'listening on http://127\.0\.0\.1:[0-9]*' "$bare_pid")
bare=${bare#listening on }
log "warmcache $warmcache (pid $warmcache_pid), bare $bare (pid $bare_pid)"

for n in 1 2 "$COUNT"; do
    a=$(curl -sf "$warmcache$PATH_PREFIX$n") || die "warmcache: no $id$n"
    b=$(curl -sf "$bare$PATH_PREFIX$n") || die "bare: no $id$n"
    [[ $a == "$b" ]] || die "$id$n differs: warmcache $a, bare $b"
done
log "same bytes on both, e.g. $(curl -sf "$bare${PATH_PREFIX}1")"

cat >"$workdir/walk.lua" <<'LUA'
local count, i = tonumber(os.getenv("COUNT")), 0
request = function()
  i = i % count + 1
  return wrk.format("GET", os.getenv("PATH_PREFIX") .. i)
end
LUA
cat >"$workdir/random.lua" <<'LUA'
local count = tonumber(os.getenv("COUNT"))
math.randomseed(os.time())
request = function()
  return wrk.format("GET", os.getenv("PATH_PREFIX") .. math.random(1, count))
end
LUA

l2_hits() {
    curl -sf "$metrics" |
        grep -E "^warmcache_requests_total\{.*cache=\"$cache\".*tier=\"l2\".*result=\"hit\"" |
        awk '{ print $2 }'
}

log "warm-up: walking all $COUNT ids, then $WARMUP of random ids, on each server"
for base in "$warmcache" "$bare"; do
    CONNECTIONS=$WALK_CONNECTIONS run_wrk "$base" 4s "$workdir/walk.lua" >/dev/null
    run_wrk "$base" "$WARMUP" "$workdir/random.lua" >/dev/null
done
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
log "resident memory after the warm-up: bare $(rss_kib "$bare_pid") KiB, warmcache $(rss_kib "$warmcache_pid") KiB"
hits_before=$(l2_hits)
[[ $hits_before == "$COUNT" ]] || die "expected $COUNT Redis reads to fill L1, saw $hits_before"

log "measuring: $ROUNDS rounds of bare then warmcache, $DURATION each, -t$THREADS -c$CONNECTIONS, random ids"
printf '%-14s %5s %12s %18s\n' server round requests/s "server CPU/request"
for round in $(seq "$ROUNDS"); do
    measure bare "$round" "$bare_pid" "$bare" "$workdir/random.lua"
    measure warmcache "$round" "$warmcache_pid" "$warmcache" "$workdir/random.lua"
done
hits_after=$(l2_hits)
[[ $hits_after == "$hits_before" ]] || die "warmcache read Redis during the run ($hits_before -> $hits_after): not all L1 hits"

bare_rps=$(mean_rps bare)
warm_rps=$(mean_rps warmcache)
bare_cpu=$(mean_cpu bare)
warm_cpu=$(mean_cpu warmcache)
echo
printf 'bare       mean requests/s: %10.0f   server CPU/request: %s us\n' "$bare_rps" "$bare_cpu"
printf 'warmcache  mean requests/s: %10.0f   server CPU/request: %s us\n' "$warm_rps" "$warm_cpu"
echo "ratio warmcache/bare: requests/s $(ratio "$warm_rps" "$bare_rps") (goal >= 0.9)," \
    "server CPU/request $(ratio "$warm_cpu" "$bare_cpu") (goal <= 1.15)"
echo "median of the rounds' ratios: requests/s $(median_ratio rps warmcache bare)," \
    "server CPU/request $(median_ratio cpu warmcache bare)"
echo "all $((hits_after)) Redis reads were the warm-up's: every measured request was an L1 hit"
