#!/usr/bin/env bash
# TLS benchmark, one command: `tools/loadgen/bench/tls.sh` (about 3 minutes on 2 cores).
#
# The same release build of `tcpchat --serve` (no history: --retain 0, so the store is not what
# is measured), with and without --tls, taking turns within each of RUNS rounds, each
# measurement against a fresh server:
#
#   burst      100 clients, 10 senders x BURST_LINES lines as fast as possible: deliveries/s
#              (target: TLS >= 0.7x plaintext)
#   paced      100 clients, 10 senders x 100 lines/s for PACED_LINES lines: latency p99
#              (target: TLS <= 1.5x plaintext)
#   idle       IDLE_CLIENTS connections held: server memory (VmRSS) per connection
#   handshakes HANDSHAKES connections opened (TCP + TLS handshake + greeting), the server
#              pinned to one core (taskset -c 0) and the load generator to the other: opened per
#              second of wall time, and per second of the server's own CPU time (/proc)
#
# Prints medians (min-max) and the TLS/plaintext ratios of the medians. The TLS server uses a
# self-signed certificate (ECDSA P-256) made once in a temporary data directory; tcpchat-load
# --tls speaks TLS with the same crypto provider (ring) and checks the handshake signature.
#
# Loopback only; every run is bounded by tcpchat-load --timeout and `timeout`.
# Knobs: RUNS (5), BURST_LINES (3000), PACED_LINES (300), IDLE_CLIENTS (5000), HANDSHAKES (3000).
set -euo pipefail
cd "$(dirname "$0")/../../.."

RUNS=${RUNS:-5}
BURST_LINES=${BURST_LINES:-3000}
PACED_LINES=${PACED_LINES:-300}
IDLE_CLIENTS=${IDLE_CLIENTS:-5000}
HANDSHAKES=${HANDSHAKES:-3000}
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
TICKS=$(getconf CLK_TCK)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server MODE(plain|tls) [PREFIX...]: a fresh server; sets SERVER_PID and SERVER_PORT.
start_server() {
    local mode=$1
    shift
    local tls=()
    [ "$mode" = tls ] && tls=(--tls --data-dir "$WORK/data")
    SERVER_PORT=$(free_port)
    rm -f "$WORK/server.log"
    "$@" "$BIN/tcpchat" --serve --listen "127.0.0.1:$SERVER_PORT" --retain 0 --flood-rate 0 \
        --max-clients 20000 "${tls[@]}" 2>"$WORK/server.log" &
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

# The server's CPU time so far, in seconds (user + system, all threads).
server_cpu() {
    awk -v t="$TICKS" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$SERVER_PID/stat"
}

# record CASE MODE RUN LINE
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
    echo "$1 $2 run $3: $4" >&2
}

load_args() {
    [ "$1" = tls ] && echo --tls
    return 0
}

started=$(date +%s)
for run in $(seq "$RUNS"); do
    for mode in plain tls; do
        # shellcheck disable=SC2046 # load_args is words on purpose
        {
            start_server "$mode"
            record burst "$mode" "$run" "$(timeout 120 "$BIN/tcpchat-load" fanout $(load_args "$mode") \
                --target "127.0.0.1:$SERVER_PORT" --server-pid "$SERVER_PID" --clients 100 \
                --senders 10 --lines "$BURST_LINES" --timeout 100 || true)"
            stop_server

            start_server "$mode"
            record paced "$mode" "$run" "$(timeout 120 "$BIN/tcpchat-load" fanout $(load_args "$mode") \
                --target "127.0.0.1:$SERVER_PORT" --server-pid "$SERVER_PID" --clients 100 \
                --senders 10 --lines "$PACED_LINES" --rate 100 --timeout 100 || true)"
            stop_server

            start_server "$mode"
            record idle "$mode" "$run" "$(timeout 200 "$BIN/tcpchat-load" idle $(load_args "$mode") \
                --target "127.0.0.1:$SERVER_PORT" --server-pid "$SERVER_PID" \
                --clients "$IDLE_CLIENTS" --hold 2 --timeout 150 || true)"
            stop_server

            start_server "$mode" taskset -c 0
            before=$(server_cpu)
            line=$(timeout 200 taskset -c 1 "$BIN/tcpchat-load" idle $(load_args "$mode") \
                --target "127.0.0.1:$SERVER_PORT" --clients "$HANDSHAKES" --hold 0.1 \
                --connect-concurrency 64 --timeout 150 || true)
            after=$(server_cpu)
            record handshakes "$mode" "$run" "$line server_cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.3f", a - b }')"
            stop_server
        }
    done
done

python3 - "$RESULTS" "$HANDSHAKES" "$(($(date +%s) - started))" <<'PY'
import statistics, sys
path, handshakes, wall = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for line in open(path):
    case, mode, run, result = line.rstrip("\n").split("\t", 3)
    fields = dict(f.split("=", 1) for f in result.split() if "=" in f)
    rows.setdefault((case, mode), []).append(fields)

def values(case, mode, key, derive=None):
    out = []
    for r in rows.get((case, mode), []):
        try:
            out.append(derive(r) if derive else float(r[key]))
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    return out

def cell(vs, digits):
    if not vs:
        return None, "n/a"
    m = statistics.median(vs)
    return m, f"{m:,.{digits}f} ({min(vs):,.{digits}f}–{max(vs):,.{digits}f})"

per_wall = lambda r: float(r["held"]) / float(r["connect_s"])
per_cpu = lambda r: float(r["held"]) / float(r["server_cpu_s"])
table = [
    ("burst fan-out, deliveries/s", "burst", "deliveries_per_s", None, 0, "≥ 0.7×"),
    ("burst, server CPU µs per delivery", "burst", "server_cpu_us_per_delivery", None, 3, ""),
    ("paced, latency p50, ms", "paced", "p50_ms", None, 2, ""),
    ("paced, latency p99, ms", "paced", "p99_ms", None, 2, "≤ 1.5×"),
    ("idle, server memory per connection, KiB", "idle", "rss_per_conn_kib", None, 2, ""),
    (f"connections opened per s (of {handshakes:,}, server on 1 core)", "handshakes", "", per_wall, 0, ""),
    ("connections opened per s of server CPU", "handshakes", "", per_cpu, 0, ""),
]
print("| measure | plaintext | TLS | TLS ÷ plaintext | target |")
print("|---|---|---|---|---|")
for name, case, key, derive, digits, target in table:
    plain, plain_text = cell(values(case, "plain", key, derive), digits)
    tls, tls_text = cell(values(case, "tls", key, derive), digits)
    ratio = f"{tls / plain:.2f}×" if plain and tls else "n/a"
    print(f"| {name} | {plain_text} | {tls_text} | {ratio} | {target} |")
bad = [(c, m, r) for (c, m), rs in rows.items() for r in rs
       if r.get("timed_out", "false") != "false" or r.get("lost", "0") != "0"
       or r.get("failed", "none") != "none"]
print(f"\nruns: {sum(len(v) for v in rows.values())}, incomplete: {len(bad)}; wall {wall} s")
PY
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
