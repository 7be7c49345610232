#!/usr/bin/env bash
# The web page (/ui/) in a real browser: Debian's headless Chromium driven
# by playwright-core (installed by .ci/deps.sh), against real dynkeyd
# processes the tests start on free loopback ports. UPDATE_SCREENSHOT=1
# also refreshes docs/ui.png, the README's picture of the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p dynkey-server --bin dynkeyd
if [ ! -d tests/ui/node_modules/playwright-core ] || [ ! -x /usr/bin/chromium ]; then
    echo "ui: playwright-core or chromium missing; run .ci/deps.sh first" >&2
    exit 1
fi
cd tests/ui
npm test --silent
