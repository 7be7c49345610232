#!/usr/bin/env bash
# Counts the real system calls behind the rendezvous claims (strace):
# - the stress example: one membarrier per commit (plus 4 at start: a
#   seccomp probe's query, a query and two registrations), or one round of
#   tgkill per commit;
# - dynkey: the requests of the counts test cost exactly the membarriers the
#   counters report.
set -euo pipefail
cd "$(dirname "$0")/.."
commits=200
cargo build -q -p dynkey-text --example stress
count() { awk -v n="$1" '$NF == n { print $4 }' "$2"; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for kind in inline trampoline atomic; do
    strace -f -qq -c -o "$out" -e trace=membarrier,tgkill \
        target/debug/examples/stress --threads 8 --sites 4096 --commits $commits --kind $kind --rendezvous membarrier >/dev/null
    mb=$(count membarrier "$out")
    echo "syscalls: $kind/membarrier: $mb membarrier calls for $commits commits"
    # +4 at start: the example runs under a seccomp filter (its W^X check),
    # so a probe child first asks whether membarrier is allowed (one QUERY,
    # counted by strace -f), then the runtime queries and registers twice.
    [ "$mb" -eq $((commits + 4)) ] || { echo "expected $((commits + 4))" >&2; exit 1; }

    # Signals forced: membarrier is never called, not even probed.
    DYNKEY_RENDEZVOUS=signal strace -f -qq -c -o "$out" -e trace=membarrier,tgkill \
        target/debug/examples/stress --threads 8 --sites 4096 --commits 50 --kind $kind --rendezvous signal >/dev/null
    tg=$(count tgkill "$out")
    mb=$(count membarrier "$out")
    echo "syscalls: $kind/signal: $tg tgkill calls (8 threads) for 50 commits, ${mb:-0} membarrier"
    [ "$tg" -eq $((50 * 8)) ] && [ -z "$mb" ] || { echo "expected 400 tgkill and no membarrier" >&2; exit 1; }
done

# The counts test's child, under strace: membarriers = 3 + the counters' total.
bin=$(cargo test -q -p dynkey --test api --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "api": print(m["executable"])')
DYNKEY_CHILD=counts strace -f -qq -c -o "$out" -e trace=membarrier \
    "$bin" --exact counts::child_counts --ignored --nocapture --test-threads=1 >"$out.json"
mb=$(count membarrier "$out")
total=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if "{" in l: print(json.loads(l[l.index("{"):])["rendezvous_total"])' "$out.json" | tail -n1)
rm -f "$out.json"
echo "syscalls: dynkey requests (exec, batch, params): $mb membarrier calls, counters say $total rendezvous (+3 at start)"
[ "$mb" -eq $((total + 3)) ] || { echo "expected $((total + 3))" >&2; exit 1; }
