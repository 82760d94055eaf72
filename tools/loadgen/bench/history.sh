#!/usr/bin/env bash
# History benchmark, one command: `tools/loadgen/bench/history.sh` (under a minute).
#
# A release server keeping history in a fresh data directory, with --history 1000: LINES lines
# of SIZE bytes are said (tcpchat-load fanout: 10 clients, 2 senders), then
#   - store growth: the data directory's bytes (database, WAL, search index) per line kept,
#     after the server has stopped and checkpointed;
#   - replay: a new client's time from connect to the end of its 1,000-line replay, the median
#     of JOINS joins (python3 socket client, timed with time.perf_counter).
# Loopback only; every step bounded by `timeout`. Knobs: LINES (100000), SIZE (64), JOINS (20).
set -euo pipefail
cd "$(dirname "$0")/../../.."

LINES=${LINES:-100000}
SIZE=${SIZE:-64}
JOINS=${JOINS:-20}
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet -p tcpchat -p tcpchat-load
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/tcpchat" --serve --listen "127.0.0.1:$PORT" --flood-rate 0 --history 1000 \
    --data-dir "$WORK/data" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/server.log" && break
    sleep 0.05
done

timeout 300 "$BIN/tcpchat-load" fanout --target "127.0.0.1:$PORT" --clients 10 --senders 2 \
    --lines $((LINES / 2)) --size "$SIZE" --timeout 240 >"$WORK/fanout.txt"
echo "said: $(cat "$WORK/fanout.txt")" >&2

timeout 120 python3 - "$PORT" "$JOINS" <<'PY'
import socket, statistics, sys, time
port, joins = int(sys.argv[1]), int(sys.argv[2])
times, counts = [], []
for _ in range(joins):
    started = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    buf, count = b"", None
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            raise SystemExit("closed before the end of the replay")
        buf += chunk
        if b"*** end of history of #lobby\n" in buf:
            break
    times.append(time.perf_counter() - started)
    counts.append(buf.count(b"\n[") + buf.startswith(b"["))
    s.sendall(b"exit\n")
    s.close()
print(f"replay of {counts[0]} lines on joining: median {statistics.median(times) * 1000:.1f} ms "
      f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) over {joins} joins")
PY

kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
bytes=$(du -sb "$WORK/data" | cut -f1)
python3 -c "import sys; b, n, s = map(int, sys.argv[1:]); print(f'store: {b:,} bytes for {n:,} lines of {s} bytes: {b / n:.0f} bytes per line on disk (database, WAL and search index)')" "$bytes" "$LINES" "$SIZE"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
