#!/usr/bin/env bash
# The server benchmarks, in one command: `tools/loadgen/bench/run.sh` (about 8 minutes on 2 cores).
#
# Builds release, then measures `tcpchat --serve` and, in the same run, what users would run
# instead: `ncat --chat` (installed if missing), the Python threaded servers in
# tools/loadgen/peers/, and tools/loadgen/examples/chat_baseline.rs (a re-creation of tokio's chat
# example's design). Every case runs RUNS times (3) against a fresh server; the load generator is
# tools/loadgen/src/ (`tcpchat-load`). Prints a markdown table of medians, ratios (tcpchat ÷ peer)
# and the targets of issue 5, then the machine.
#
# Loopback only: every server listens on 127.0.0.1, and tcpchat-load refuses any other target.
# Every run is bounded (tcpchat-load --timeout, and `timeout` around it).
#
# Knobs (environment): RUNS (3), IDLE_CLIENTS (10000), BURST_LINES (3000 per sender),
# PACED_LINES (300 per sender, at 100/s), ECHO_SECONDS (3), RESULTS (a file to keep the raw
# result lines; default: a temporary file), CARGO_TARGET_DIR (target), NICE (e.g. -10: run the
# servers and the load generator at that niceness, so that other work on a shared machine
# disturbs the latencies less; negative values need root), PACED_RT (1: also run case (c) with
# the server and the load generator under SCHED_FIFO (`chrt -f 10`, root), which takes the other
# work on a shared machine out of the latencies; reported as (c-rt)).
set -euo pipefail
# Run from the repository root, where the workspace's target directory is.
cd "$(dirname "$0")/../../.."

RUNS=${RUNS:-3}
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
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

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

# tcpchat from the root package; tcpchat-load and chat_baseline from tools/loadgen.
log "== cargo build --release --workspace --bins --examples"
cargo build --release --workspace --bins --examples --quiet

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
        SERVER_PORT=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$log_file" 2>/dev/null |
            head -n1 | cut -d: -f2 || true)
        [ -n "$SERVER_PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "server did not start: $(tail -n3 "$log_file")"
    return 1
}

# Starts one server: tcpchat [ARGS...] | tokio-chat | python | ncat | tcpchat-echo | python-echo.
start_server() {
    local kind=$1
    shift
    local log_file=$WORK/server.log
    : >"$log_file"
    case $kind in
    tcpchat)
        "${PRIO[@]}" "$BIN/tcpchat" --serve --listen 127.0.0.1:0 --max-clients 20000 "$@" 2>"$log_file" &
        SERVER_PID=$!
        wait_for_log_port "$log_file"
        ;;
    tcpchat-echo)
        "${PRIO[@]}" "$BIN/tcpchat" --serve --listen 127.0.0.1:0 --mode echo 2>"$log_file" &
        SERVER_PID=$!
        wait_for_log_port "$log_file"
        ;;
    tokio-chat)
        "${PRIO[@]}" "$BIN/examples/chat_baseline" --listen 127.0.0.1:0 2>"$log_file" &
        SERVER_PID=$!
        wait_for_log_port "$log_file"
        ;;
    python)
        "${PRIO[@]}" python3 "$PEERS/chat_server.py" --listen 127.0.0.1:0 2>"$log_file" &
        SERVER_PID=$!
        wait_for_log_port "$log_file"
        ;;
    python-echo)
        "${PRIO[@]}" python3 "$PEERS/echo_server.py" --listen 127.0.0.1:0 2>"$log_file" &
        SERVER_PID=$!
        wait_for_log_port "$log_file"
        ;;
    ncat)
        # ncat takes a port, not port 0; it is polled with ss, not connected to: ncat quits
        # when a connection resets before it has handled it.
        SERVER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "${PRIO[@]}" ncat --chat --listen 127.0.0.1 "$SERVER_PORT" </dev/null >/dev/null 2>"$log_file" &
        SERVER_PID=$!
        for _ in $(seq 100); do
            [ -n "$(ss -Hltn "sport = :$SERVER_PORT")" ] && break
            sleep 0.05
        done
        ;;
    esac
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
}

# --- cases -----------------------------------------------------------------------------------

# load CASE SERVER RUN BOUND ARGS...: runs tcpchat-load once, keeps its result line.
load() {
    local case=$1 server=$2 run=$3 bound=$4
    shift 4
    local line
    line=$(timeout "$bound" "${PRIO[@]}" "$BIN/tcpchat-load" "$@" --target "127.0.0.1:$SERVER_PORT" \
        --server-pid "$SERVER_PID" 2>>"$WORK/load.log" | tail -n1) || true
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        alive=yes
    else
        alive=no
    fi
    [ -n "$line" ] || line="none result=missing"
    printf '%s\t%s\t%s\t%s server_alive=%s\n' "$case" "$server" "$run" "$line" "$alive" >>"$RESULTS"
    log "   $case $server #$run: $(printf '%s' "$line" | cut -c1-150)"
}

proto_of() {
    case $1 in
    tcpchat*) echo chat ;;
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

log "== (a) $IDLE_CLIENTS idle connections held"
for server in tcpchat tokio-chat python ncat; do
    for run in $(seq "$RUNS"); do
        start_server "$server"
        load idle "$server" "$run" 200 idle --clients "$IDLE_CLIENTS" --hold 2 --timeout 150 \
            --proto "$(proto_of "$server")" --connect-concurrency "$(concurrency_of "$server")"
        stop_server
    done
done

log "== (b, d) burst fan-out: 100 clients, 10 senders x $BURST_LINES lines"
for server in tcpchat tokio-chat ncat python tcpchat-flood; do
    lines=$BURST_LINES
    for run in $(seq "$RUNS"); do
        case $server in
        tcpchat) start_server tcpchat --flood-rate 0 ;;
        tcpchat-flood)
            lines=$FLOOD_LINES
            start_server tcpchat
            ;;
        *) start_server "$server" ;;
        esac
        load burst "$server" "$run" 100 fanout --clients 100 --senders 10 --lines "$lines" \
            --timeout 60 --proto "$(proto_of "$server")" \
            --connect-concurrency "$(concurrency_of "$server")"
        stop_server
    done
done

log "== (c) paced: 100 clients, 10 senders x 100 lines/s, $PACED_LINES lines each"
for server in tcpchat tokio-chat ncat python; do
    for run in $(seq "$RUNS"); do
        start_server "$server"
        load paced "$server" "$run" 60 fanout --clients 100 --senders 10 --lines "$PACED_LINES" \
            --rate 100 --timeout 40 --proto "$(proto_of "$server")" \
            --connect-concurrency "$(concurrency_of "$server")"
        stop_server
    done
done

if [ "${PACED_RT:-0}" = 1 ]; then
    log "== (c-rt) paced again, under SCHED_FIFO"
    PRIO=(chrt -f 10)
    for server in tcpchat tokio-chat ncat python; do
        for run in $(seq "$RUNS"); do
            start_server "$server"
            load paced-rt "$server" "$run" 60 fanout --clients 100 --senders 10 \
                --lines "$PACED_LINES" --rate 100 --timeout 40 --proto "$(proto_of "$server")" \
                --connect-concurrency "$(concurrency_of "$server")"
            stop_server
        done
    done
    PRIO=()
fi

log "== (e) echo: 10 connections, ${ECHO_SECONDS}s"
for server in tcpchat-echo python-echo; do
    for run in $(seq "$RUNS"); do
        start_server "$server"
        load echo "$server" "$run" 60 echo --conns 10 --seconds "$ECHO_SECONDS" --timeout 30 \
            --proto "$server"
        stop_server
    done
done

# --- report ----------------------------------------------------------------------------------

python3 - "$RESULTS" "$IDLE_CLIENTS" <<'PY'
import statistics
import sys
from collections import defaultdict

path, idle_clients = sys.argv[1], int(sys.argv[2])
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

def worst(case, server, key):
    v = values(case, server, key)
    return max(v) if v else None

def fmt(x, digits=0):
    if x is None:
        return "—"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"

def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"

peers = ["tokio-chat", "ncat", "python"]
names = {"tcpchat": "tcpchat", "tokio-chat": "tokio-chat design", "ncat": "ncat --chat",
         "python": "Python threaded"}
rows = []

def row(label, case, key, digits=0, servers=("tcpchat", *peers), tcpchat="tcpchat"):
    cells = []
    for s in ("tcpchat", *peers):
        real = tcpchat if s == "tcpchat" else s
        cells.append(fmt(med(case, real, key), digits) if s in servers else "n/a")
    ratios = [ratio(med(case, tcpchat, key), med(case, p, key)) if p in servers else "n/a"
              for p in peers]
    rows.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")

print()
print("| case (median of runs) | " + " | ".join(names[s] for s in ("tcpchat", *peers))
      + " | ÷ tokio-chat | ÷ ncat | ÷ Python |")
print("|---|" + "---:|" * 7)
row(f"(a) idle connections held, of {idle_clients:,}", "idle", "held")
row("(a) server RSS per held connection, KiB (lower is better)", "idle", "rss_per_conn_kib", 1)
row("(a) seconds to open them all", "idle", "connect_s", 1)
row("(b) burst fan-out, deliveries/s", "burst", "deliveries_per_s")
row("(b) burst: lines lost", "burst", "lost")
row("(b) burst: lines mangled", "burst", "mangled")
row("(b) burst, tcpchat's default flood limit: deliveries/s", "burst", "deliveries_per_s",
    servers=("tcpchat",), tcpchat="tcpchat-flood")
row("(b) burst, default flood limit: lines lost", "burst", "lost", servers=("tcpchat",),
    tcpchat="tcpchat-flood")
row("(c) paced, deliveries/s", "paced", "deliveries_per_s")
row("(c) paced latency p50, ms", "paced", "p50_ms", 2)
row("(c) paced latency p99, ms", "paced", "p99_ms", 2)
row("(c) paced: lines lost", "paced", "lost")
if any(case == "paced-rt" for case, _ in runs):
    row("(c-rt) paced under SCHED_FIFO, p50 ms", "paced-rt", "p50_ms", 2)
    row("(c-rt) paced under SCHED_FIFO, p99 ms", "paced-rt", "p99_ms", 2)
row("(d) server CPU per delivery in (b), µs", "burst", "server_cpu_us_per_delivery", 3)
row("(d) server CPU per delivery in (c), µs", "paced", "server_cpu_us_per_delivery", 3)
rows.append("| (e) echo round trips/s, 10 connections | "
            f"{fmt(med('echo', 'tcpchat-echo', 'round_trips_per_s'))} | n/a | n/a | "
            f"{fmt(med('echo', 'python-echo', 'round_trips_per_s'))} | n/a | n/a | "
            f"{ratio(med('echo', 'tcpchat-echo', 'round_trips_per_s'), med('echo', 'python-echo', 'round_trips_per_s'))} |")
rows.append("| (e) echo server CPU per round trip, µs | "
            f"{fmt(med('echo', 'tcpchat-echo', 'server_cpu_us_per_round_trip'), 2)} | n/a | n/a | "
            f"{fmt(med('echo', 'python-echo', 'server_cpu_us_per_round_trip'), 2)} | n/a | n/a | "
            f"{ratio(med('echo', 'tcpchat-echo', 'server_cpu_us_per_round_trip'), med('echo', 'python-echo', 'server_cpu_us_per_round_trip'))} |")
print("\n".join(rows))

# How peers failed, from the raw fields.
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
        if float(f.get("closed", 0) or 0) > 0:
            notes.add(f"{f['closed']} clients disconnected by the server")
        if float(f.get("notices", 0) or 0) > 0:
            notes.add(f"{f['notices']} `!` notices")
    print(f"- {case} / {server}: " + ("; ".join(sorted(notes)) if notes else "ok"))

# The targets of issue 5.
def check(ok, text):
    print(f"- [{'x' if ok else ' '}] {text}")

print()
print("Targets (issue 5):")
held = med("idle", "tcpchat", "held")
rss = med("idle", "tcpchat", "rss_per_conn_kib")
check(held is not None and held >= idle_clients and rss is not None and rss <= 8,
      f"{idle_clients:,} connections held ({fmt(held)}), ≤ 8 KiB each ({fmt(rss, 1)} KiB)")
burst = med("burst", "tcpchat", "deliveries_per_s")
base = med("burst", "tokio-chat", "deliveries_per_s")
ncat = med("burst", "ncat", "deliveries_per_s")
lost = (worst("burst", "tcpchat", "lost") or 0) + (worst("burst", "tcpchat", "mangled") or 0)
ok = None not in (burst, base, ncat) and burst >= 5 * base and burst >= ncat and lost == 0
check(ok, f"burst ≥ 5× tokio-chat ({ratio(burst, base)}) and ≥ ncat ({ratio(burst, ncat)}), "
          f"0 lost or mangled in every run (worst run: {fmt(lost)})")
p99 = med("paced", "tcpchat", "p99_ms")
rate = med("paced", "tcpchat", "deliveries_per_s")
check(p99 is not None and p99 <= 3,
      f"paced p99 ≤ 3 ms at ~99,000 deliveries/s ({fmt(p99, 2)} ms at {fmt(rate)}/s)")
p99_rt = med("paced-rt", "tcpchat", "p99_ms")
if p99_rt is not None:
    check(p99_rt <= 3, f"the same under SCHED_FIFO, without the machine's other work ({fmt(p99_rt, 2)} ms)")
echo = med("echo", "tcpchat-echo", "round_trips_per_s")
py = med("echo", "python-echo", "round_trips_per_s")
check(None not in (echo, py) and echo >= 4 * py, f"echo ≥ 4× Python ({ratio(echo, py)})")
PY

echo
echo "Machine: niceness $(ps -o ni= -p $$ | tr -d ' '), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the start: $LOAD_AT_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
