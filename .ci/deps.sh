#!/usr/bin/env bash
# Installs what the extra checks need, when missing: from Debian's
# packages prometheus (and its promtool) for the metrics checks, strace for
# the syscall counts, chromium (and node with npm where absent) for the web
# page's browser tests, nats-server 2.9.10 (the old server the fleet must
# keep working with; the current one comes from .ci/nats.sh); from npm the
# tests' one package, playwright-core, exactly as tests/ui/package-lock.json
# pins it. Runs as root, or through sudo when available. Idempotent: a
# second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus >/dev/null || need+=(prometheus)
command -v strace >/dev/null || need+=(strace)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
[ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "deps: installing ${need[*]}"
    $sudo apt-get update -qq
    # --no-install-recommends keeps it small; the package does not start a
    # server where systemd is absent, and where it is, our checks use other ports.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The browser tests' node_modules, reinstalled only when the lock changed.
ui=tests/ui
if ! cmp -s "$ui/package-lock.json" "$ui/node_modules/.dynkey-lock" 2>/dev/null; then
    echo "deps: npm ci in $ui"
    (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$ui/package-lock.json" "$ui/node_modules/.dynkey-lock"
fi
