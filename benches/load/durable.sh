#!/usr/bin/env bash
# The state bench (issue 13's targets), in one run, 16 connections each:
#   1. GET /healthz                      (the server's ceiling)
#   2. POST /control, no --state-dir     (batched: one commit per batch)
#   3. POST /control with --state-dir    (every reply durable: one fsync per batch)
# against the demo (its workers keep running their sites), with wrk.
#   bash benches/load/durable.sh [--save] [seconds]
# Prints requests/s, p50 and p99 per row, POST/healthz, and rendezvous
# and commits per request (from /metrics), and the mean batch size;
# --save also writes $CARGO_TARGET_DIR/dynkey-bench/durable.json for bench-report.
set -euo pipefail
cd "$(dirname "$0")/../.."
save=0
[ "${1:-}" = "--save" ] && { save=1; shift; }
secs=${1:-10}
conns=16
command -v wrk >/dev/null || { echo "durable: needs wrk (apt-get install wrk)" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p dynkey-server --bin dynkeyd
state=$(mktemp -d)
pids=()
logs=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$state" "${logs[@]}"' EXIT
start() {
    local log; log=$(mktemp); logs+=("$log")
    "$target/release/dynkeyd" --listen 127.0.0.1:0 "$@" 2>"$log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        addr=$(sed -n 's|.*listening on http://\([0-9.:]*\) .*|\1|p' "$log" | head -n1)
        [ -n "$addr" ] && return 0
        sleep 0.1
    done
    echo "dynkeyd did not start" >&2; cat "$log" >&2; exit 1
}
metric() { curl -fsS "http://$1/metrics" | awk -v m="$2" '$1 == m { s += $2 } END { print s + 0 }'; }
rendezvous() { curl -fsS "http://$1/metrics" | awk '/^dynkey_rendezvous_total\{/ { s += $2 } END { print s + 0 }'; }
run() { # name addr script-or-empty
    local name=$1 addr=$2 script=$3 out
    out=$(mktemp); logs+=("$out")
    local r0 c0 b0 n0
    r0=$(rendezvous "$addr"); c0=$(metric "$addr" dynkey_commits_total)
    b0=$(metric "$addr" dynkey_batch_size_count); n0=$(metric "$addr" dynkey_batch_size_sum)
    if [ -n "$script" ]; then
        wrk -t2 -c$conns -d"${secs}s" --latency -s "$script" "http://$addr" >"$out"
    else
        wrk -t2 -c$conns -d"${secs}s" --latency "http://$addr/healthz" >"$out"
    fi
    local rps p50 p99 reqs non2xx
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    reqs=$(awk '/requests in/ { print $1 }' "$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' "$out"); non2xx=${non2xx:-0}
    local r1 c1 b1 n1
    r1=$(rendezvous "$addr"); c1=$(metric "$addr" dynkey_commits_total)
    b1=$(metric "$addr" dynkey_batch_size_count); n1=$(metric "$addr" dynkey_batch_size_sum)
    printf '%-34s %9s %9s %9s  %s\n' "$name" "$rps" "$p50" "$p99" \
        "$(awk -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v q="$reqs" -v b=$((b1 - b0)) -v n=$((n1 - n0)) -v e="$non2xx" \
            'BEGIN { printf "rendezvous/req %.3f, commits/req %.3f, mean batch %.1f, non-2xx %d", r/q, c/q, (b ? n/b : 0), e }')"
    eval "rps_$4=$rps"
    rows+=("$(awk -v n="$name" -v rps="$rps" -v p50="$(to_us "$p50")" -v p99="$(to_us "$p99")" \
        -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v q="$reqs" -v b=$((b1 - b0)) -v m=$((n1 - n0)) -v e="$non2xx" \
        'BEGIN { printf "{\"row\":\"%s\",\"rps\":%s,\"p50_us\":%s,\"p99_us\":%s,\"requests\":%d,\"rendezvous_per_request\":%.4f,\"commits_per_request\":%.4f,\"mean_batch\":%.2f,\"non_2xx\":%d}", n, rps, p50, p99, q, r/q, c/q, (b ? m/b : 0), e }')")
}
# wrk's latency ("120.00us", "1.07ms", "2.00s") in microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    print (u == "ms" ? n * 1e3 : u == "s" ? n * 1e6 : n) }'; }
rows=()
start; plain=$addr
start --state-dir "$state"; durable=$addr
echo "row                                 req/s       p50       p99  (demo, $conns connections, ${secs}s each, wrk -t2)"
run "GET /healthz" "$plain" "" healthz
run "POST /control" "$plain" benches/load/queries.lua plain
run "POST /control --state-dir" "$durable" benches/load/queries.lua durable
awk -v h="$rps_healthz" -v p="$rps_plain" -v d="$rps_durable" \
    'BEGIN { printf "POST /control: %.0f%% of /healthz; with --state-dir: %.0f%% of /healthz\n", 100*p/h, 100*d/h }'
if [ $save -eq 1 ]; then
    mkdir -p "$target/dynkey-bench"
    joined=$(IFS=,; echo "${rows[*]}")
    echo "{\"seconds\":$secs,\"connections\":$conns,\"rows\":[$joined]}" >"$target/dynkey-bench/durable.json"
    echo "durable: saved $target/dynkey-bench/durable.json"
fi
