# Shared by the HTTP load scripts (http_load.sh, http_records_load.sh,
# http_dashboard_encoding.sh, http_callgrind.sh): settings, wrk, CPU
# pinning, the processes a script starts, the server CPU clock, one wrk
# run, and one measured round with its running means.
# Source it after setting LOAD_NAME (the prefix of log lines).
#
# Settings (environment): DURATION (10s), WARMUP (2s), CONNECTIONS (64),
# THREADS (1), SERVER_CPU (0), WRK_CPU (1), PIN (1; 0 = no taskset).

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
PIN=${PIN:-1}

log() { echo "$LOAD_NAME: $*" >&2; }
die() {
    log "$*"
    exit 1
}

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt-get update && apt-get install -y wrk
fi
command -v curl >/dev/null 2>&1 || die "curl is needed"

# On a small machine the servers and wrk share the cores: pin each.
server_pin=()
wrk_pin=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null 2>&1 && [[ $(nproc) -ge 2 ]]; then
    server_pin=(taskset -c "$SERVER_CPU")
    wrk_pin=(taskset -c "$WRK_CPU")
else
    log "not pinning: the servers and wrk share all cores"
fi

# The processes a script starts: it sets `workdir=$(mktemp -d)`, `pids=()`
# and `trap stop_processes EXIT`, and appends each child to `pids`.
# stop_processes: TERM to each, KILL after 10 s, then removes $workdir.
stop_processes() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_line FILE PATTERN PID [SECONDS]: prints the first match of PATTERN
# in FILE, waiting up to SECONDS (30) while PID runs.
wait_line() {
    local file=$1 pattern=$2 pid=$3 seconds=${4:-30} found=""
    for _ in $(seq $((seconds * 10))); do
        kill -0 "$pid" 2>/dev/null || {
            cat "$file" >&2
            die "process $pid exited during start-up"
        }
        found=$(grep -o "$pattern" "$file" 2>/dev/null | head -n 1 || true)
        [[ -n $found ]] && break
        sleep 0.1
    done
    [[ -n $found ]] || {
        cat "$file" >&2
        die "no '$pattern' within $seconds s"
    }
    echo "$found"
}

# ticks PID: the process's user+system CPU time so far, in clock ticks.
# build_servers EXAMPLE: the release warmcache binary as `cargo run
# --release` builds it, then the baseline example. Two invocations: built
# together, the binary would get the dev-dependencies' features (tokio's
# `test-util`, whose clock takes a mutex on every `Instant::now`), which no
# user's build has.
build_servers() {
    cargo build --release --bin warmcache
    cargo build --release --example "$1"
}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# run_wrk URL DURATION [LUA_SCRIPT [HEADER]]: prints "rps requests"; fails
# on errors. HEADER (e.g. "Accept-Encoding: gzip, br") goes on every request.
run_wrk() {
    local url=$1 duration=$2 script=() header=() out rps requests
    [[ -n ${3:-} ]] && script=(-s "$3")
    [[ -n ${4:-} ]] && header=(-H "$4")
    out=$("${wrk_pin[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout 5s "${script[@]}" "${header[@]}" "$url")
    if grep -q -e 'Non-2xx' -e 'Socket errors' <<<"$out"; then
        echo "$out" >&2
        die "$url: errors during the run"
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    [[ -n $rps && -n $requests ]] || {
        echo "$out" >&2
        die "$url: cannot read wrk's output"
    }
    echo "$rps $requests"
}

# cpu_us_per_request TICKS REQUESTS: server CPU time per request, in µs.
cpu_us_per_request() {
    awk -v t="$1" -v hz="$ticks_per_second" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'
}

# measure NAME ROUND PID URL [LUA_SCRIPT [HEADER]]: one wrk run of DURATION
# against URL, served by PID; prints the row "NAME ROUND requests/s CPU/request"
# and adds both to NAME's sums (mean_rps / mean_cpu read them).
declare -A rps_sum=() cpu_sum=() runs=() rps_rounds=() cpu_rounds=()
measure() {
    local name=$1 round=$2 pid=$3 url=$4 before after rps requests cpu_us
    before=$(ticks "$pid")
    read -r rps requests <<<"$(run_wrk "$url" "$DURATION" "${5:-}" "${6:-}")"
    after=$(ticks "$pid")
    cpu_us=$(cpu_us_per_request $((after - before)) "$requests")
    printf '%-14s %5s %12.0f %15s us\n' "$name" "$round" "$rps" "$cpu_us"
    rps_sum[$name]=$(awk -v a="${rps_sum[$name]:-0}" -v b="$rps" 'BEGIN { print a + b }')
    cpu_sum[$name]=$(awk -v a="${cpu_sum[$name]:-0}" -v b="$cpu_us" 'BEGIN { print a + b }')
    runs[$name]=$((${runs[$name]:-0} + 1))
    rps_rounds[$name]+=" $rps"
    cpu_rounds[$name]+=" $cpu_us"
}

# median_ratio rps|cpu A B: the median over rounds of A's value / B's in
# the same round (on a shared machine, load that drifts between rounds
# moves both sides of a round alike; one disturbed round moves a median
# less than a mean).
median_ratio() {
    local -n values=${1}_rounds
    awk -v a="${values[$2]}" -v b="${values[$3]}" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) r[i] = x[i] / y[i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
        printf "%.3f", (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
    }'
}

# mean_rps NAME, mean_cpu NAME: the means of NAME's measured rounds.
mean_rps() { awk -v s="${rps_sum[$1]}" -v n="${runs[$1]}" 'BEGIN { printf "%.2f", s / n }'; }
mean_cpu() { awk -v s="${cpu_sum[$1]}" -v n="${runs[$1]}" 'BEGIN { printf "%.2f", s / n }'; }

# ratio A B: A / B to three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
