#!/usr/bin/env bash
# The dynkeyd load bench: small dyndbg queries over HTTP against the demo
# (its workers keep running their sites meanwhile), with wrk from Debian.
#   bash benches/load/run.sh [--save] [seconds]
# Prints one line per connection count: queries/s, p50 and p99 latency;
# --save also writes $CARGO_TARGET_DIR/dynkey-bench/load.json for bench-report.
set -euo pipefail
cd "$(dirname "$0")/../.."
save=0
[ "${1:-}" = "--save" ] && { save=1; shift; }
secs=${1:-15}
command -v wrk >/dev/null || { echo "load: needs wrk (apt-get install wrk)" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p dynkey-server --bin dynkeyd
log=$(mktemp)
"$target/release/dynkeyd" --listen 127.0.0.1:0 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log" "$log.wrk"' EXIT
for _ in $(seq 1 100); do
    addr=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$log" | head -n1)
    [ -n "$addr" ] && break
    sleep 0.1
done
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v !~ /us$/ && v ~ /s$/) n *= 1e6; print n }'; }
rows=""
echo "connections  queries/s   p50       p99      (dynkeyd demo, 2 wrk threads, ${secs}s each)"
for c in 4 16 32; do
    wrk -t2 -c"$c" -d"${secs}s" --latency -s benches/load/queries.lua "http://$addr" >"$log.wrk"
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$log.wrk")
    p50=$(awk '$1 == "50%" { print $2 }' "$log.wrk")
    p99=$(awk '$1 == "99%" { print $2 }' "$log.wrk")
    printf '%-12s %-11s %-9s %s\n' "$c" "$rps" "$p50" "$p99"
    rows="$rows${rows:+,}{\"connections\":$c,\"rps\":$rps,\"p50_us\":$(to_us "$p50"),\"p99_us\":$(to_us "$p99")}"
done
metrics=$(curl -fsS "http://$addr/metrics")
commits=$(awk '/^dynkey_commits_total/ { print $2 }' <<<"$metrics")
rendezvous=$(awk '/^dynkey_rendezvous_total\{method="membarrier"\}/ { print $2 }' <<<"$metrics")
echo "commits $commits, membarrier rendezvous $rendezvous"
if [ $save -eq 1 ]; then
    mkdir -p "$target/dynkey-bench"
    echo "{\"seconds\":$secs,\"rows\":[$rows],\"commits\":$commits,\"rendezvous\":$rendezvous}" >"$target/dynkey-bench/load.json"
fi
