#!/usr/bin/env bash
# HTTP load comparison of the pre-compressed /dashboard (issue 14):
#   * warmcache  GET /dashboard with Accept-Encoding: gzip, br (gets br),
#   * warmcache  GET /dashboard with no Accept-Encoding (identity), and
#   * bare       examples/bare_dashboard_server.rs sending the same br bytes
#                with the same headers (axum, no snapshot, no negotiation).
# Prints, for each: bytes per response on the wire (headers + body, from
# curl), requests/s and the server's CPU time per request (user + system
# from /proc), in rounds that alternate the three cases, then the ratios.
#
# warmcache runs in mock mode with the snapshot TTL raised so that no
# refresh (whose render and compression CPU would count) runs during the
# measurement; the bare server is given the exact body warmcache sent
# (checked byte for byte before measuring). Both servers are pinned to
# SERVER_CPU and wrk to WRK_CPU.
#
# By hand only (CI only builds benches). Needs curl and wrk (installed if
# missing).
# Settings (environment): ROUNDS (3), DURATION (10s), WARMUP (2s),
# CONNECTIONS (64), THREADS (1), SERVER_CPU (0), WRK_CPU (1), PIN (1).
set -euo pipefail
shopt -s inherit_errexit

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
LOAD_NAME=http_dashboard_encoding
# shellcheck source=benches/load_common.sh
source benches/load_common.sh

build_servers bare_dashboard_server

workdir=$(mktemp -d)
pids=()
trap stop_processes EXIT

"${server_pin[@]}" target/release/warmcache --mode mock --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --ttl-ms 86400000 2>"$workdir/warmcache.log" &
warmcache_pid=$!
pids+=("$warmcache_pid")
warmcache=$(wait_line "$workdir/warmcache.log" 'listening on http://127\.0\.0\.1:[0-9]*' "$warmcache_pid")
warmcache=${warmcache#listening on }
for _ in $(seq 60); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$warmcache/readyz" || true) == 200 ]] && break
    sleep 0.25
done

compressed="Accept-Encoding: gzip, br"
curl -sf -H "$compressed" -D "$workdir/br.headers" -o "$workdir/dashboard.br" "$warmcache/dashboard" ||
    die "warmcache: no /dashboard"
header_value() { grep -i "^$1:" "$workdir/br.headers" | head -n 1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
encoding=$(header_value content-encoding)
etag=$(header_value etag)
[[ $encoding == br ]] || die "warmcache answered '$encoding' to '$compressed', expected br"

BARE_BODY="$workdir/dashboard.br" BARE_ENCODING=br BARE_ETAG=$etag BARE_LISTEN=127.0.0.1:0 \
    "${server_pin[@]}" target/release/examples/bare_dashboard_server 2>"$workdir/bare.log" &
bare_pid=$!
pids+=("$bare_pid")
bare=$(wait_line "$workdir/bare.log" 'listening on http://127\.0\.0\.1:[0-9]*' "$bare_pid")
bare=${bare#listening on }
log "warmcache $warmcache (pid $warmcache_pid), bare $bare (pid $bare_pid)"

curl -sf -H "$compressed" -o "$workdir/bare.br" "$bare/dashboard" || die "bare: no /dashboard"
cmp -s "$workdir/dashboard.br" "$workdir/bare.br" || die "the bare server's body differs from warmcache's"

# case name -> "pid base header" (header "" = none sent: identity)
cases=(warm_br warm_identity bare_br)
case_pid() { if [[ $1 == bare_br ]]; then echo "$bare_pid"; else echo "$warmcache_pid"; fi; }
case_base() { if [[ $1 == bare_br ]]; then echo "$bare"; else echo "$warmcache"; fi; }
case_header() { if [[ $1 == warm_identity ]]; then echo ""; else echo "$compressed"; fi; }

declare -A wire=()
for name in "${cases[@]}"; do
    header=$(case_header "$name")
    args=()
    [[ -n $header ]] && args=(-H "$header")
    read -r body head <<<"$(curl -sf "${args[@]}" -o /dev/null -w '%{size_download} %{size_header}' "$(case_base "$name")/dashboard")"
    wire[$name]=$((body + head))
    log "$name: $body body bytes + $head header bytes"
done

log "warm-up: $WARMUP on each case"
for name in "${cases[@]}"; do
    run_wrk "$(case_base "$name")/dashboard" "$WARMUP" "" "$(case_header "$name")" >/dev/null
done

log "measuring: $ROUNDS rounds of ${cases[*]}, $DURATION each, -t$THREADS -c$CONNECTIONS"
printf '%-14s %5s %12s %18s\n' case round requests/s "server CPU/request"
for round in $(seq "$ROUNDS"); do
    for name in "${cases[@]}"; do
        measure "$name" "$round" "$(case_pid "$name")" "$(case_base "$name")/dashboard" "" "$(case_header "$name")"
    done
done

echo
printf '%-14s %12s %12s %18s\n' case wire-bytes requests/s "server CPU/request"
declare -A rps=() cpu=()
for name in "${cases[@]}"; do
    rps[$name]=$(mean_rps "$name")
    cpu[$name]=$(mean_cpu "$name")
    printf '%-14s %12s %12.0f %15s us\n' "$name" "${wire[$name]}" "${rps[$name]}" "${cpu[$name]}"
done
echo "warm_br / bare_br:       requests/s $(ratio "${rps[warm_br]}" "${rps[bare_br]}"), CPU/request $(ratio "${cpu[warm_br]}" "${cpu[bare_br]}")"
echo "warm_br / warm_identity: requests/s $(ratio "${rps[warm_br]}" "${rps[warm_identity]}"), CPU/request $(ratio "${cpu[warm_br]}" "${cpu[warm_identity]}"), bytes $(ratio "${wire[warm_br]}" "${wire[warm_identity]}")"
