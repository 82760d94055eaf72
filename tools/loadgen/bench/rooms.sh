#!/usr/bin/env bash
# Rooms benchmark, one command: `tools/loadgen/bench/rooms.sh` (about 2 minutes on 2 cores).
#
# Fan-out within one room (100 clients, 10 senders x LINES lines, as fast as the server takes
# them) on a server that holds only that room, then on one that also holds OTHER_ROOMS rooms of
# MEMBERS idle members each (100 x 100 by default: 10,000 more connections). Both servers run
# the same release build with the same flags, taking turns within each of RUNS rounds, each
# against a fresh server; once without history (--retain 0) and once keeping it (the default,
# in a fresh data directory). Prints deliveries/s (median, min-max), the ratio of the medians
# (many rooms / one room), and the server's memory per room membership (VmRSS grown while
# 10,000 members each joined one room more, divided by 10,000).
#
# Loopback only; every run is bounded by tcpchat-load --timeout and `timeout`.
# Knobs: RUNS (5), LINES (3000), OTHER_ROOMS (100), MEMBERS (100).
set -euo pipefail
cd "$(dirname "$0")/../../.."

RUNS=${RUNS:-5}
LINES=${LINES:-3000}
OTHER_ROOMS=${OTHER_ROOMS:-100}
MEMBERS=${MEMBERS:-100}
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d)
RESULTS=$WORK/results.tsv
: >"$RESULTS"
SERVER_PID=

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet -p tcpchat -p tcpchat-load
ulimit -n "$(ulimit -Hn)"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server HISTORY(on|off): a fresh server; sets SERVER_PID and SERVER_PORT.
start_server() {
    local store=(--retain 0)
    if [ "$1" = on ]; then
        store=(--data-dir "$(mktemp -d -p "$WORK")")
    fi
    SERVER_PORT=$(free_port)
    # Removed first: the new server truncates it only once started, and the wait below must
    # not read the last server's "listening on".
    rm -f "$WORK/server.log"
    "$BIN/tcpchat" --serve --listen "127.0.0.1:$SERVER_PORT" --flood-rate 0 \
        --max-clients 20000 "${store[@]}" 2>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        grep -qs "listening on" "$WORK/server.log" && return 0
        sleep 0.05
    done
    echo "the server did not start" >&2
    cat "$WORK/server.log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# measure HISTORY LAYOUT(one|many) RUN
measure() {
    local extra=()
    if [ "$2" = many ]; then
        extra=(--other-rooms "$OTHER_ROOMS" --members "$MEMBERS")
    fi
    start_server "$1"
    local line
    line=$(timeout 300 "$BIN/tcpchat-load" fanout --target "127.0.0.1:$SERVER_PORT" \
        --server-pid "$SERVER_PID" --clients 100 --senders 10 --lines "$LINES" \
        --room '#bench' "${extra[@]}" --timeout 240 || true)
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$line" >>"$RESULTS"
    echo "history=$1 rooms=$2 run=$3: $line" >&2
}

started=$(date +%s)
for run in $(seq "$RUNS"); do
    for history in off on; do
        for layout in one many; do
            measure "$history" "$layout" "$run"
        done
    done
done

python3 - "$RESULTS" "$OTHER_ROOMS" "$MEMBERS" "$(($(date +%s) - started))" <<'PY'
import statistics, sys
path, rooms, members, wall = sys.argv[1:]
rows = {}
for line in open(path):
    history, layout, run, result = line.rstrip("\n").split("\t", 3)
    fields = dict(f.split("=", 1) for f in result.split()[1:] if "=" in f)
    rows.setdefault((history, layout), []).append(fields)

def stat(history, layout, key):
    values = [float(r[key]) for r in rows.get((history, layout), []) if key in r]
    if not values:
        return None, "n/a"
    return statistics.median(values), f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"

print(f"| history | one room: deliveries/s | + {rooms} rooms x {members}: deliveries/s | ratio | lost | membership bytes |")
print("|---|---|---|---|---|---|")
for history in ("off", "on"):
    one, one_text = stat(history, "one", "deliveries_per_s")
    many, many_text = stat(history, "many", "deliveries_per_s")
    ratio = f"{many / one:.2f}x" if one and many else "n/a"
    lost = sum(int(r.get("lost", "0")) + int(r.get("mangled", "0")) + int(r.get("duplicated", "0"))
               for layout in ("one", "many") for r in rows.get((history, layout), []))
    _, member = stat(history, "many", "membership_bytes")
    print(f"| {history} | {one_text} | {many_text} | {ratio} | {lost} | {member} |")
incomplete = [r for v in rows.values() for r in v if r.get("timed_out") != "false"]
print(f"\nruns: {sum(len(v) for v in rows.values())}, incomplete: {len(incomplete)}; wall {wall} s")
PY
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
