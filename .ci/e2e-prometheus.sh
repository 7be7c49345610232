#!/usr/bin/env bash
# End to end: a real Prometheus scrapes a running dynkeyd; one query that
# changes sites must raise dynkey_rendezvous_total by exactly one, as seen
# through Prometheus's own query API.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
work=$(mktemp -d)
start_dynkeyd "$work/dynkeyd.log" --sites fixtures/kernel-like.json
port=$(free_port)
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: dynkeyd
    static_configs:
      - targets: ["$DYNKEYD_ADDR"]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
prom=$!
trap 'kill $DYNKEYD_PID $prom 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# The value Prometheus has for sum(dynkey_rendezvous_total) (empty if none yet).
scraped() {
    curl -fsS "http://127.0.0.1:$port/api/v1/query" --data-urlencode 'query=sum(dynkey_rendezvous_total{job="dynkeyd"})' 2>/dev/null |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null
}
# Polls until Prometheus reports `want` (at most 60 s).
wait_for() {
    local want=$1 got=""
    for _ in $(seq 1 600); do
        got=$(scraped || true)
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    echo "e2e: Prometheus reports '$got', expected $want" >&2
    tail -n 20 "$work/prometheus.log" >&2
    return 1
}
served() { curl -fsS "http://$DYNKEYD_ADDR/metrics" | awk '/^dynkey_rendezvous_total\{/ { s += $2 } END { print s + 0 }'; }

before=$(served)
wait_for "$before"
echo "e2e: Prometheus scrapes dynkeyd (dynkey_rendezvous_total = $before)"
reply=$(curl -fsS -d 'module virtio* +p' "http://$DYNKEYD_ADDR/control")
echo "e2e: POST /control -> $reply"
want=$((before + 1))
wait_for "$want"
# Let a few more scrapes pass: it must stay at exactly one more.
sleep 3
wait_for "$want"
echo "e2e: dynkey_rendezvous_total rose by exactly 1 ($before -> $want) in Prometheus"
