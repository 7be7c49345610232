#!/usr/bin/env bash
# The dynkeyd load bench: small dyndbg queries over HTTP against the demo
# (its workers keep running their sites meanwhile), with wrk from Debian.
#   bash benches/load/run.sh [seconds]
# Prints one line per connection count: requests/s, p50 and p99 latency.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
command -v wrk >/dev/null || { echo "load: needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build -q --release -p dynkey-server --bin dynkeyd
log=$(mktemp)
target/release/dynkeyd --listen 127.0.0.1:0 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    addr=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$log" | head -n1)
    [ -n "$addr" ] && break
    sleep 0.1
done
echo "connections  requests/s  p50      p99      (dynkeyd demo, 2 wrk threads, ${secs}s each)"
for c in 4 16 32; do
    wrk -t2 -c"$c" -d"${secs}s" --latency -s benches/load/queries.lua "http://$addr" >"$log.wrk"
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$log.wrk")
    p50=$(awk '$1 == "50%" { print $2 }' "$log.wrk")
    p99=$(awk '$1 == "99%" { print $2 }' "$log.wrk")
    printf '%-12s %-11s %-8s %s\n' "$c" "$rps" "$p50" "$p99"
done
rm -f "$log.wrk"
curl -fsS "http://$addr/metrics" | grep -E '^dynkey_(commits_total|rendezvous_total\{method="membarrier"\}|queries_total)'
