# Helpers for the .ci scripts (sourced).

# Starts `target/debug/dynkeyd ARGS...` on a free loopback port; sets
# DYNKEYD_PID and DYNKEYD_ADDR; its stderr goes to $1.
start_dynkeyd() {
    local log=$1; shift
    target/debug/dynkeyd --listen 127.0.0.1:0 "$@" 2>"$log" &
    DYNKEYD_PID=$!
    for _ in $(seq 1 200); do
        # Only a complete line (the address followed by a space), never a
        # half-written one whose port is cut short.
        DYNKEYD_ADDR=$(sed -n 's|.*listening on http://\([0-9.:]*\) .*|\1|p' "$log" | head -n1)
        [ -n "$DYNKEYD_ADDR" ] && return 0
        kill -0 "$DYNKEYD_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.05
    done
    echo "dynkeyd did not start" >&2; cat "$log" >&2; return 1
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
