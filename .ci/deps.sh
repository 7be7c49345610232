#!/usr/bin/env bash
# Installs what the extra checks need, from Debian's packages, when missing:
# prometheus (and its promtool) for the metrics checks, strace for the
# syscall counts, nats-server 2.9.10 (the old server the fleet must keep
# working with; the current one comes from .ci/nats.sh). Runs as root, or
# through sudo when available.
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus >/dev/null || need+=(prometheus)
command -v strace >/dev/null || need+=(strace)
[ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "deps: installing ${need[*]}"
$sudo apt-get update -qq
# --no-install-recommends keeps it small; the package does not start a
# server where systemd is absent, and where it is, our checks use other ports.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
