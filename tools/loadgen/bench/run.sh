#!/usr/bin/env bash
# The server benchmarks, in one command: `tools/loadgen/bench/run.sh` (about 10 minutes on 2 cores).
#
# Builds release, then measures `tcpchat --serve` and, in the same run, its ceilings and what
# users would run instead, every server in every case it speaks:
#
#   chat servers  tcpchat --serve (keeping history, as it does by default, in a fresh data
#                 directory under a temporary one), and again with --retain 0 (no history, no
#                 store); the bare relay (tools/loadgen/examples/bare_relay.rs: accept,
#                 read, write to every other connection, TCP_NODELAY, nothing else); the
#                 re-creation of tokio's chat example (examples/chat_baseline.rs); `ncat --chat`
#                 (installed if missing); the Python threaded room (peers/chat_server.py); and,
#                 if TOKIO_CHAT_EXAMPLE names a build of it, tokio's real examples/chat.rs.
#   echo servers  tcpchat --serve --mode echo; the bare echo (examples/bare_echo.rs); the
#                 article's server in Python (peers/echo_server.py).
#
#   (a) idle      IDLE_CLIENTS connections held: how many, server memory (VmRSS) per connection
#   (b) burst     100 clients, 10 senders x BURST_LINES lines as fast as possible: deliveries/s,
#                 lines lost or mangled, server CPU per delivery (tcpchat with --flood-rate 0;
#                 once more with its default flood limit and history, FLOOD_LINES lines each)
#   (c) paced     100 clients, 10 senders x 100 lines/s (about 99,000 deliveries/s) for
#                 PACED_LINES lines: latency p50/p99 from the send time inside each line,
#                 server CPU per delivery
#   (e) echo      10 connections, one request each in flight, ECHO_SECONDS: round trips/s,
#                 server CPU per round trip
#
# Every case runs RUNS times (5), each against a fresh server, the servers taking turns within
# each round so that a change in the machine's other work falls on all of them alike. Prints
# markdown: medians with min–max, ratios (tcpchat ÷ peer) of the medians, how each server ended
# each case, the targets, the machine and the wall time. Server CPU is read from /proc (each
# thread's schedstat); the load generator is tools/loadgen/src/ (`tcpchat-load`).
#
# Loopback only: every server listens on 127.0.0.1, and tcpchat-load refuses any other target.
# Every run is bounded (tcpchat-load --timeout, and `timeout` around it).
#
# Knobs (environment): RUNS (5), IDLE_CLIENTS (10000), BURST_LINES (3000 per sender),
# FLOOD_LINES (1000), PACED_LINES (300 per sender, at 100/s), ECHO_SECONDS (3), RESULTS (a file
# to keep the raw result lines; default: a temporary file), CARGO_TARGET_DIR (target),
# TOKIO_CHAT_EXAMPLE (a binary of tokio's examples/chat.rs, built from a tokio checkout with
# `cargo build --release --example chat` in its examples/; this repository holds none of its
# code), NICE (e.g. -10: run the servers and the load generator at that niceness; negative
# values need root), PACED_RT (1: also run case (c) under SCHED_FIFO, `chrt -f 10`, root).
set -euo pipefail
# Run from the repository root, where the workspace's target directory is.
cd "$(dirname "$0")/../../.."

RUNS=${RUNS:-5}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
BURST_LINES=${BURST_LINES:-3000}
FLOOD_LINES=${FLOOD_LINES:-1000}
PACED_LINES=${PACED_LINES:-300}
ECHO_SECONDS=${ECHO_SECONDS:-3}
BIN=${CARGO_TARGET_DIR:-target}/release
PEERS=tools/loadgen/peers
WORK=$(mktemp -d)
RESULTS=${RESULTS:-$WORK/results.tsv}
: >"$RESULTS"

SERVER_PID=
SERVER_PORT=
PRIO=() # a prefix for the servers and the load generator, e.g. (chrt -f 10)
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --- setup -----------------------------------------------------------------------------------

if ! command -v ncat >/dev/null; then
    log "== installing ncat"
    sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq ncat >/dev/null
fi

# tcpchat from the root package; tcpchat-load and the Rust peers from tools/loadgen.
log "== cargo build --release --workspace --bins --examples"
cargo build --release --workspace --bins --examples --quiet
STARTED=$(date +%s)
MACHINE="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2); $(date -u '+%Y-%m-%d %H:%M UTC')"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

CHAT_SERVERS=(tcpchat tcpchat-nohist relay tokio-chat)
if [ -n "${TOKIO_CHAT_EXAMPLE:-}" ]; then
    [ -x "$TOKIO_CHAT_EXAMPLE" ] || { log "TOKIO_CHAT_EXAMPLE=$TOKIO_CHAT_EXAMPLE is not executable"; exit 2; }
    CHAT_SERVERS+=(tokio-example)
fi
CHAT_SERVERS+=(ncat python)
ECHO_SERVERS=(tcpchat-echo bare-echo python-echo)

if [ -n "${NICE:-}" ]; then
    renice -n "$NICE" -p $$ >/dev/null
    log "== running at niceness $NICE"
fi

# 10,000 connections need 10,000 descriptors in the server and in the load generator.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CLIENTS + 100)) ]; then
    log "warning: open-file limit $(ulimit -n) is below $IDLE_CLIENTS connections"
fi

# --- servers ---------------------------------------------------------------------------------

# Waits for "listening on 127.0.0.1:PORT" in LOG and sets SERVER_PORT.
wait_for_log_port() {
    local log_file=$1
    for _ in $(seq 100); do
        SERVER_PORT=$(grep -ao 'listening on 127\.0\.0\.1:[0-9]*' "$log_file" 2>/dev/null |
            head -n1 | cut -d: -f2 || true)
        [ -n "$SERVER_PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "server did not start: $(tail -n3 "$log_file")"
    return 1
}

# A free port, for the servers that cannot be told to pick one and say which.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on SERVER_PORT (polled with ss, not connected to: ncat quits
# when a connection resets before it has handled it).
wait_for_listen() {
    for _ in $(seq 100); do
        [ -n "$(ss -Hltn "sport = :$SERVER_PORT")" ] && return 0
        sleep 0.05
    done
    log "nothing listens on $SERVER_PORT"
    return 1
}

# Starts one server (a name from CHAT_SERVERS or ECHO_SERVERS, or tcpchat-flood), with ARGS
# for tcpchat.
start_server() {
    local kind=$1
    shift
    local log_file=$WORK/server.log
    : >"$log_file"
    # tcpchat keeps its history in a directory of its own for each run, never the user's.
    local data
    data=$(mktemp -d -p "$WORK" data.XXXXXX)
    case $kind in
    tcpchat | tcpchat-flood)
        "${PRIO[@]}" "$BIN/tcpchat" --serve --listen 127.0.0.1:0 --data-dir "$data" \
            --max-clients 20000 "$@" 2>"$log_file" &
        ;;
    tcpchat-nohist)
        "${PRIO[@]}" "$BIN/tcpchat" --serve --listen 127.0.0.1:0 --data-dir "$data" --retain 0 \
            --max-clients 20000 "$@" 2>"$log_file" &
        ;;
    tcpchat-echo)
        "${PRIO[@]}" "$BIN/tcpchat" --serve --listen 127.0.0.1:0 --data-dir "$data" \
            --mode echo 2>"$log_file" &
        ;;
    relay) "${PRIO[@]}" "$BIN/examples/bare_relay" --listen 127.0.0.1:0 2>"$log_file" & ;;
    bare-echo) "${PRIO[@]}" "$BIN/examples/bare_echo" --listen 127.0.0.1:0 2>"$log_file" & ;;
    tokio-chat) "${PRIO[@]}" "$BIN/examples/chat_baseline" --listen 127.0.0.1:0 2>"$log_file" & ;;
    python) "${PRIO[@]}" python3 "$PEERS/chat_server.py" --listen 127.0.0.1:0 2>"$log_file" & ;;
    python-echo) "${PRIO[@]}" python3 "$PEERS/echo_server.py" --listen 127.0.0.1:0 2>"$log_file" & ;;
    tokio-example)
        SERVER_PORT=$(free_port)
        "${PRIO[@]}" "$TOKIO_CHAT_EXAMPLE" "127.0.0.1:$SERVER_PORT" >/dev/null 2>"$log_file" &
        SERVER_PID=$!
        wait_for_listen
        return
        ;;
    ncat)
        SERVER_PORT=$(free_port)
        "${PRIO[@]}" ncat --chat --listen 127.0.0.1 "$SERVER_PORT" </dev/null >/dev/null 2>"$log_file" &
        SERVER_PID=$!
        wait_for_listen
        return
        ;;
    esac
    SERVER_PID=$!
    wait_for_log_port "$log_file"
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 60); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    rm -rf "$WORK"/data.*
}

# --- cases -----------------------------------------------------------------------------------

# load CASE SERVER RUN BOUND ARGS...: runs tcpchat-load once, keeps its result line.
load() {
    local case=$1 server=$2 run=$3 bound=$4 line alive
    shift 4
    line=$(timeout "$bound" "${PRIO[@]}" "$BIN/tcpchat-load" "$@" --target "127.0.0.1:$SERVER_PORT" \
        --server-pid "$SERVER_PID" 2>>"$WORK/load.log" | tail -n1) || true
    if kill -0 "$SERVER_PID" 2>/dev/null; then alive=yes; else alive=no; fi
    [ -n "$line" ] || line="none result=missing"
    printf '%s\t%s\t%s\t%s server_alive=%s\n' "$case" "$server" "$run" "$line" "$alive" >>"$RESULTS"
    log "   $case $server #$run: $(printf '%s' "$line" | cut -c1-150)"
}

proto_of() {
    case $1 in
    tcpchat*) echo chat ;;
    tokio-*) echo tokio-chat ;;
    *) echo "$1" ;;
    esac
}

# ncat queues at most 10 connections (listen backlog 10) and quits when one gives up, so it is
# connected to 8 at a time; the others take 128 at a time. Connecting is not measured.
concurrency_of() {
    case $1 in
    ncat) echo 8 ;;
    *) echo 128 ;;
    esac
}

fanout_args() {
    echo --clients 100 --senders 10 --proto "$(proto_of "$1")" --connect-concurrency "$(concurrency_of "$1")"
}

for run in $(seq "$RUNS"); do
    log "== round $run of $RUNS"
    log "== (a) $IDLE_CLIENTS idle connections held"
    for server in "${CHAT_SERVERS[@]}"; do
        start_server "$server"
        load idle "$server" "$run" 200 idle --clients "$IDLE_CLIENTS" --hold 2 --timeout 150 \
            --proto "$(proto_of "$server")" --connect-concurrency "$(concurrency_of "$server")"
        stop_server
    done

    log "== (b) burst fan-out: 100 clients, 10 senders x $BURST_LINES lines"
    for server in "${CHAT_SERVERS[@]}" tcpchat-flood; do
        lines=$BURST_LINES
        case $server in
        tcpchat | tcpchat-nohist) start_server "$server" --flood-rate 0 ;;
        tcpchat-flood) start_server tcpchat && lines=$FLOOD_LINES ;;
        *) start_server "$server" ;;
        esac
        # shellcheck disable=SC2046 # fanout_args is words on purpose
        load burst "$server" "$run" 100 fanout $(fanout_args "$server") --lines "$lines" --timeout 60
        stop_server
    done

    log "== (c) paced: 100 clients, 10 senders x 100 lines/s, $PACED_LINES lines each"
    for server in "${CHAT_SERVERS[@]}"; do
        start_server "$server"
        # shellcheck disable=SC2046
        load paced "$server" "$run" 60 fanout $(fanout_args "$server") --lines "$PACED_LINES" \
            --rate 100 --timeout 40
        stop_server
    done

    if [ "${PACED_RT:-0}" = 1 ]; then
        log "== (c-rt) paced again, under SCHED_FIFO"
        PRIO=(chrt -f 10)
        for server in "${CHAT_SERVERS[@]}"; do
            start_server "$server"
            # shellcheck disable=SC2046
            load paced-rt "$server" "$run" 60 fanout $(fanout_args "$server") \
                --lines "$PACED_LINES" --rate 100 --timeout 40
            stop_server
        done
        PRIO=()
    fi

    log "== (e) echo: 10 connections, ${ECHO_SECONDS}s"
    for server in "${ECHO_SERVERS[@]}"; do
        start_server "$server"
        load echo "$server" "$run" 60 echo --conns 10 --seconds "$ECHO_SECONDS" --timeout 30 \
            --proto "$server"
        stop_server
    done
done

# --- report ----------------------------------------------------------------------------------

LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)
WALL=$(($(date +%s) - STARTED))
python3 - "$RESULTS" "$IDLE_CLIENTS" "$RUNS" "${CHAT_SERVERS[*]}" <<'PY'
import statistics
import sys
from collections import defaultdict

path, idle_clients, n_runs, chat_servers = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
runs = defaultdict(list)  # (case, server) -> [dict]
for row in open(path, encoding="utf-8"):
    case, server, _run, line = row.rstrip("\n").split("\t", 3)
    fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    runs[case, server].append(fields)

def values(case, server, key):
    out = []
    for fields in runs.get((case, server), []):
        try:
            out.append(float(fields[key]))
        except (KeyError, ValueError):
            pass
    return out

def med(case, server, key):
    v = values(case, server, key)
    return statistics.median(v) if v else None

def num(x, digits):
    return f"{x:,.{digits}f}"

def cell(case, server, key, digits):
    v = values(case, server, key)
    if not v:
        return "—"
    m = statistics.median(v)
    if len(v) == 1 or min(v) == max(v):
        return num(m, digits)
    return f"{num(m, digits)} ({num(min(v), digits)}–{num(max(v), digits)})"

def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b

def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"

# Columns: tcpchat, then the peers; the echo case puts the echo servers in the same columns.
names = {"tcpchat": "tcpchat", "tcpchat-nohist": "tcpchat --retain 0", "relay": "bare relay / echo", "tokio-chat": "tokio-chat re-creation",
         "tokio-example": "tokio's example", "ncat": "ncat --chat", "python": "Python threaded"}
echo_of = {"tcpchat": "tcpchat-echo", "relay": "bare-echo", "python": "python-echo"}
peers = [s for s in chat_servers if s != "tcpchat"]

# (label, case, key, digits, better: "more"/"less", or None for no ratio; the servers it has,
# None for all; the server measured in a column, where it is not the column's own)
rows = [
    (f"(a) connections held, of {idle_clients:,}", "idle", "held", 0, None, None, {}),
    ("(a) server memory per held connection, KiB", "idle", "rss_per_conn_kib", 2, "less", None, {}),
    ("(a) seconds to open them all", "idle", "connect_s", 2, "less", None, {}),
    ("(b) burst, deliveries/s", "burst", "deliveries_per_s", 0, "more", None, {}),
    ("(b) burst, lines lost", "burst", "lost", 0, None, None, {}),
    ("(b) burst, lines mangled", "burst", "mangled", 0, None, None, {}),
    ("(b) burst, server CPU per delivery, µs", "burst", "server_cpu_us_per_delivery", 3, "less", None, {}),
    ("(b) burst at tcpchat's default flood limit, deliveries/s", "burst", "deliveries_per_s", 0,
     None, {"tcpchat"}, {"tcpchat": "tcpchat-flood"}),
    ("(c) paced, deliveries/s", "paced", "deliveries_per_s", 0, None, None, {}),
    ("(c) paced, latency p50, ms", "paced", "p50_ms", 2, "less", None, {}),
    ("(c) paced, latency p99, ms", "paced", "p99_ms", 2, "less", None, {}),
    ("(c) paced, lines lost", "paced", "lost", 0, None, None, {}),
    ("(c) paced, server CPU per delivery, µs", "paced", "server_cpu_us_per_delivery", 3, "less", None, {}),
]
if any(case == "paced-rt" for case, _ in runs):
    rows += [("(c-rt) paced under SCHED_FIFO, p50, ms", "paced-rt", "p50_ms", 2, "less", None, {}),
             ("(c-rt) paced under SCHED_FIFO, p99, ms", "paced-rt", "p99_ms", 2, "less", None, {})]
rows += [
    ("(e) echo, round trips/s", "echo", "round_trips_per_s", 0, "more", set(echo_of), echo_of),
    ("(e) echo, server CPU per round trip, µs", "echo", "server_cpu_us_per_round_trip", 2, "less",
     set(echo_of), echo_of),
]

columns = ["tcpchat", *peers]
print()
print(f"Medians of {n_runs} runs (min–max):")
print()
print("| case | " + " | ".join(names[s] for s in columns) + " |")
print("|---|" + "---:|" * len(columns))
for label, case, key, digits, _better, only, mapping in rows:
    cells = [cell(case, mapping.get(s, s), key, digits) if only is None or s in only else "n/a"
             for s in columns]
    print(f"| {label} | " + " | ".join(cells) + " |")

print()
print("tcpchat ÷ peer, from the medians above (for each row, whether more or less is better):")
print()
print("| case | better | " + " | ".join(names[s] for s in peers) + " |")
print("|---|---|" + "---:|" * len(peers))
for label, case, key, _digits, better, only, mapping in rows:
    if better is None:
        continue
    mine = med(case, mapping.get("tcpchat", "tcpchat"), key)
    cells = [fmt_ratio(ratio(mine, med(case, mapping.get(p, p), key)))
             if only is None or p in only else "n/a" for p in peers]
    print(f"| {label} | {better} | " + " | ".join(cells) + " |")

print()
print("How each server ended each case (all runs):")
for (case, server), results in sorted(runs.items()):
    notes = set()
    for f in results:
        if f.get("failed", "none") != "none":
            notes.add(f"failed to connect: {f['failed']}")
        if f.get("server_alive") == "no":
            notes.add("server died")
        if f.get("result") == "missing":
            notes.add("no result (load generator killed or failed)")
        if f.get("timed_out") == "true":
            notes.add("timed out")
        for key, what in (("lost", "lines lost"), ("mangled", "lines mangled"),
                          ("closed", "clients disconnected by the server"),
                          ("notices", "`!` notices"), ("errors", "connection errors")):
            if float(f.get(key, 0) or 0) > 0:
                notes.add(f"{what} in some runs (up to {max(values(case, server, key)):,.0f})")
    print(f"- {case} / {server}: " + ("; ".join(sorted(notes)) if notes else "ok"))

def check(ok, text):
    print(f"- [{'x' if ok else ' '}] {text}")

print()
print("Targets of issue 10 (headroom; from the medians):")
rss = med("idle", "tcpchat", "rss_per_conn_kib")
check(rss is not None and rss <= 3, f"≤ 3 KiB per idle connection at {idle_clients:,}: "
      f"{'—' if rss is None else num(rss, 2)} KiB (bare relay {cell('idle', 'relay', 'rss_per_conn_kib', 2)})")
cpu = ratio(med("paced", "tcpchat", "server_cpu_us_per_delivery"),
            med("paced", "relay", "server_cpu_us_per_delivery"))
check(cpu is not None and cpu <= 1.2, f"paced server CPU per delivery ≤ 1.2× the bare relay's: {fmt_ratio(cpu)}")
p99 = ratio(med("paced", "tcpchat", "p99_ms"), med("paced", "relay", "p99_ms"))
check(p99 is not None and p99 <= 1.2, f"paced p99 ≤ 1.2× the bare relay's: {fmt_ratio(p99)}")

print()
print("Targets of issue 5 (from the medians):")
held = med("idle", "tcpchat", "held")
check(held is not None and held >= idle_clients and rss is not None and rss <= 8,
      f"{idle_clients:,} connections held, ≤ 8 KiB each")
burst = med("burst", "tcpchat", "deliveries_per_s")
lost = max(values("burst", "tcpchat", "lost") + values("burst", "tcpchat", "mangled") or [0])
vs_tokio = ratio(burst, med("burst", "tokio-chat", "deliveries_per_s"))
vs_ncat = ratio(burst, med("burst", "ncat", "deliveries_per_s"))
check(vs_tokio is not None and vs_tokio >= 5 and lost == 0,
      f"burst ≥ 5× the tokio-chat re-creation ({fmt_ratio(vs_tokio)}), nothing lost or mangled in any run")
check(vs_ncat is not None and vs_ncat >= 1, f"burst ≥ ncat ({fmt_ratio(vs_ncat)})")
p99_ms = med("paced", "tcpchat", "p99_ms")
check(p99_ms is not None and p99_ms <= 3, f"paced p99 ≤ 3 ms ({'—' if p99_ms is None else num(p99_ms, 2)} ms)")
echo = ratio(med("echo", "tcpchat-echo", "round_trips_per_s"), med("echo", "python-echo", "round_trips_per_s"))
bare = ratio(med("echo", "tcpchat-echo", "round_trips_per_s"), med("echo", "bare-echo", "round_trips_per_s"))
check(echo is not None and echo >= 4, f"echo ≥ 4× Python ({fmt_ratio(echo)}; the bare echo: {fmt_ratio(bare)})")
PY

echo
echo "Machine: $MACHINE; niceness $(ps -o ni= -p $$ | tr -d ' '); load average at the start: $LOAD_AT_START, at the end: $LOAD_AT_END."
echo "Command: tools/loadgen/bench/run.sh (RUNS=$RUNS IDLE_CLIENTS=$IDLE_CLIENTS BURST_LINES=$BURST_LINES PACED_LINES=$PACED_LINES ECHO_SECONDS=$ECHO_SECONDS${TOKIO_CHAT_EXAMPLE:+ TOKIO_CHAT_EXAMPLE=...}); $((WALL / 60)) min $((WALL % 60)) s after the build."
