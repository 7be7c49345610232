#!/usr/bin/env bash
# promtool over the deploy/ configuration and over the metrics a running
# dynkeyd really serves; the Grafana dashboard must be valid JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
python3 -m json.tool deploy/grafana/dynkey.json >/dev/null && echo "deploy/grafana/dynkey.json: valid JSON"

log=$(mktemp)
start_dynkeyd "$log" --sites fixtures/kernel-like.json
trap 'kill $DYNKEYD_PID 2>/dev/null; rm -f "$log"' EXIT
curl -fsS -d 'module virtio* +p' "http://$DYNKEYD_ADDR/control" >/dev/null
curl -fsS "http://$DYNKEYD_ADDR/metrics" | promtool check metrics
echo "promtool: /metrics of a live dynkeyd passes"
