#!/usr/bin/env bash
# The cluster benchmark (issue 16), in one command: `tools/loadgen/bench/cluster.sh` (about 5
# minutes on 2 cores).
#
# Three `tcpchat --serve --cluster` nodes and their one engine (redis-server) on this machine,
# beside one plain `tcpchat --serve`, in the same run, taking turns within each round:
#
#   (a) idle   IDLE_PER_NODE connections per node, spread round robin over the three nodes
#              (tcpchat-load --target A --target B --target C): each node's memory per idle
#              client (VmRSS grown while they connected, over the clients it holds), beside one
#              single node holding IDLE_PER_NODE.
#   (c) paced  100 clients in #lobby, 10 senders x 100 lines/s, PACED_LINES lines each: the
#              parameters of run.sh's paced case; in the cluster the room spans the three nodes
#              (client i on node i mod 3, senders too). Lost, duplicated, latency p50/p99, and
#              the same split into same-node and cross-node deliveries (sender on the
#              receiver's node or not); the same run against one single node for the ratio.
#
# The engine's own CPU time (utime+stime from /proc/PID/stat) during each cluster case and its
# resident memory (VmRSS) before and after are reported beside the nodes' figures. Until the
# rooms' lines go through the engine, a node delivers only its own members' lines: the run then
# reports the cross-node lines as lost once it settles (tcpchat-load --settle, bounded by
# --timeout and `timeout`), it does not hang.
#
# Every case runs RUNS times (5), each against fresh nodes (fresh data directories, node names
# new in each round) on the one engine started at the beginning (appendonly yes, in a temporary
# directory), emptied (FLUSHALL) before each cluster case; medians with min–max. Loopback only: the engine binds 127.0.0.1 on a free port,
# the nodes 127.0.0.1:0 (their port read from the log line that says where they listen). All
# that the script started is stopped when it ends (trap), however it ends.
#
# Knobs (environment): RUNS (5), IDLE_PER_NODE (5000), PACED_LINES (300 per sender, at 100/s),
# RESULTS (a file to keep the raw result lines; default: a temporary file), CARGO_TARGET_DIR
# (target).
set -euo pipefail
# Run from the repository root, where the workspace's target directory is.
cd "$(dirname "$0")/../../.."

RUNS=${RUNS:-5}
NODES=3
IDLE_PER_NODE=${IDLE_PER_NODE:-5000}
PACED_LINES=${PACED_LINES:-300}
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d)
RESULTS=${RESULTS:-$WORK/results.tsv}
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

ENGINE_PID=
ENGINE_PORT=
SERVER_PIDS=()  # the nodes (or the single server) running now
SERVER_PORTS=()

cleanup() {
    stop_servers
    stop_engine
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --- setup -----------------------------------------------------------------------------------

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "this benchmark needs redis-server and redis-cli (apt install redis-server)"
    exit 2
fi

log "== cargo build --release (tcpchat, tcpchat-load)"
cargo build --release -p tcpchat -p tcpchat-load --bins --quiet
STARTED=$(date +%s)
MACHINE="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2), $(redis-server --version | cut -d' ' -f1-3); $(date -u '+%Y-%m-%d %H:%M UTC')"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

# 15,000 connections need 15,000 descriptors in the load generator.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((NODES * IDLE_PER_NODE + 200)) ]; then
    log "warning: open-file limit $(ulimit -n) is below $((NODES * IDLE_PER_NODE)) connections"
fi

# --- processes -------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A process's user + system CPU time so far, in seconds (fields 14 and 15 of stat(5), counted
# after the command name's closing parenthesis).
cpu_s() {
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split on purpose
    set -- $stat
    awk -v u="${12}" -v s="${13}" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (u + s) / hz }'
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Starts the engine on a free loopback port (another if that one was taken meanwhile), with
# the append-only file on, in a directory of its own; waits until it answers PING.
start_engine() {
    mkdir -p "$WORK/engine"
    for _ in 1 2 3 4 5; do
        ENGINE_PORT=$(free_port)
        redis-server --port "$ENGINE_PORT" --bind 127.0.0.1 --appendonly yes --save "" \
            --dir "$WORK/engine" --logfile "$WORK/engine.log" --daemonize no &
        ENGINE_PID=$!
        for _ in $(seq 100); do
            if [ "$(redis-cli -h 127.0.0.1 -p "$ENGINE_PORT" ping 2>/dev/null)" = PONG ]; then
                return 0
            fi
            kill -0 "$ENGINE_PID" 2>/dev/null || break
            sleep 0.05
        done
        stop_engine
    done
    log "the engine did not start: $(tail -n3 "$WORK/engine.log" 2>/dev/null)"
    return 1
}

stop_engine() {
    [ -n "$ENGINE_PID" ] || return 0
    kill -TERM "$ENGINE_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$ENGINE_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$ENGINE_PID" 2>/dev/null || true
    wait "$ENGINE_PID" 2>/dev/null || true
    ENGINE_PID=
}

# Waits for "listening on 127.0.0.1:PORT" in LOG from PID; prints PORT.
wait_for_log_port() {
    local log_file=$1 pid=$2 port
    for _ in $(seq 200); do
        port=$(grep -ao 'listening on 127\.0\.0\.1:[0-9]*' "$log_file" 2>/dev/null |
            head -n1 | cut -d: -f2 || true)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    log "server did not start: $(tail -n3 "$log_file")"
    return 1
}

# start_server NAME [ARGS...]: one tcpchat --serve, history kept in a fresh data directory;
# appended to SERVER_PIDS and SERVER_PORTS.
start_server() {
    local name=$1 data pid port
    shift
    data=$(mktemp -d -p "$WORK" data.XXXXXX)
    "$BIN/tcpchat" --serve --listen 127.0.0.1:0 --data-dir "$data" --max-clients 20000 "$@" \
        2>"$WORK/$name.log" &
    pid=$!
    SERVER_PIDS+=("$pid")
    port=$(wait_for_log_port "$WORK/$name.log" "$pid")
    SERVER_PORTS+=("$port")
}

# The case's three nodes, named anew for each case and round (r1an1: round 1, case a, node 1)
# so a name is never one a stopping node may still hold in the engine.
# The engine is emptied first: it holds the cluster's history, so without this each case's
# nodes would replay the lines of the cases before it to every client that joins (megabytes
# to 15,000 idle clients, and the memory to hold them), where the single node starts from a
# fresh data directory.
start_cluster() {
    local name=$1 i
    redis-cli -h 127.0.0.1 -p "$ENGINE_PORT" flushall >/dev/null
    for i in $(seq "$NODES"); do
        start_server "${name}n$i" --cluster "redis://127.0.0.1:$ENGINE_PORT" --node "${name}n$i"
    done
}

# Whether PID still runs (a child that exited and is not yet reaped is a zombie, which kill -0
# still finds).
running() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    SERVER_PORTS=()
    rm -rf "$WORK"/data.*
}

# --- cases -----------------------------------------------------------------------------------

# load CASE SERVER RUN BOUND ARGS...: runs tcpchat-load once against the servers running now,
# keeps its result line, with the engine's CPU time during it and its memory after.
load() {
    local case=$1 server=$2 run=$3 bound=$4 line alive=yes pid engine="" cpu0 cpu1
    shift 4
    local targets=() port
    for port in "${SERVER_PORTS[@]}"; do targets+=(--target "127.0.0.1:$port"); done
    for pid in "${SERVER_PIDS[@]}"; do targets+=(--server-pid "$pid"); done
    cpu0=$(cpu_s "$ENGINE_PID")
    line=$(timeout "$bound" "$BIN/tcpchat-load" "$@" "${targets[@]}" \
        2>>"$WORK/load.log" | tail -n1) || true
    cpu1=$(cpu_s "$ENGINE_PID")
    for pid in "${SERVER_PIDS[@]}"; do running "$pid" || alive=no; done
    [ -n "$line" ] || line="none result=missing"
    engine="engine_cpu_s=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }') engine_rss_kib=$(rss_kib "$ENGINE_PID")"
    printf '%s\t%s\t%s\t%s server_alive=%s %s\n' "$case" "$server" "$run" "$line" "$alive" \
        "$engine" >>"$RESULTS"
    log "   $case $server #$run: $(printf '%s' "$line" | cut -c1-200)"
    # A run that did not complete: what the servers said last, to tell why.
    case "$line $alive" in
    *failed=[!n]* | *result=missing* | *timed_out=true* | *" no")
        for file in "$WORK"/*.log; do
            [ "$file" = "$WORK/load.log" ] || log "     $(basename "$file"): $(tail -n3 "$file" | tr '\n' ' ')"
        done
        ;;
    esac
}

PACED=(fanout --clients 100 --senders 10 --lines "$PACED_LINES" --rate 100 --timeout 40)

start_engine
ENGINE_RSS_START=$(rss_kib "$ENGINE_PID")
ENGINE_CPU_START=$(cpu_s "$ENGINE_PID")
log "== engine on 127.0.0.1:$ENGINE_PORT (pid $ENGINE_PID)"

for run in $(seq "$RUNS"); do
    log "== round $run of $RUNS"
    log "== (a) idle: $IDLE_PER_NODE per node"
    start_server single
    load idle single "$run" 200 idle --clients "$IDLE_PER_NODE" --hold 2 --timeout 150
    stop_servers
    start_cluster "r${run}a"
    load idle cluster "$run" 300 idle --clients $((NODES * IDLE_PER_NODE)) --hold 2 --timeout 250
    stop_servers

    log "== (c) paced: 100 clients, 10 senders x 100 lines/s, $PACED_LINES lines each"
    start_server single
    load paced single "$run" 60 "${PACED[@]}"
    stop_servers
    start_cluster "r${run}c"
    load paced cluster "$run" 60 "${PACED[@]}"
    stop_servers
done

ENGINE_RSS_END=$(rss_kib "$ENGINE_PID")
ENGINE_CPU_END=$(cpu_s "$ENGINE_PID")
ENGINE_KEYS=$(redis-cli -h 127.0.0.1 -p "$ENGINE_PORT" dbsize 2>/dev/null || echo "?")

# --- report ----------------------------------------------------------------------------------

LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)
WALL=$(($(date +%s) - STARTED))
python3 - "$RESULTS" "$RUNS" "$NODES" "$IDLE_PER_NODE" <<'PY'
import statistics
import sys
from collections import defaultdict

path, n_runs, nodes, idle_per_node = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
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
    return None if a is None or b is None or b == 0 else a / b

def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"

# Each run's largest per-node figure: the node that holds the most per client is the one that
# decides whether the cluster fits.
for fields in runs.get(("idle", "cluster"), []):
    per_node = [float(fields[k]) for k in fields if k.startswith("rss_per_conn_kib_n")]
    if per_node:
        fields["rss_per_conn_kib_worst"] = str(max(per_node))

rows = [
    ("(a) clients held, in all", "idle", "held", 0),
    ("(a) seconds to open them all", "idle", "connect_s", 2),
    ("(a) memory per idle client, KiB (cluster: all nodes together)", "idle", "rss_per_conn_kib", 2),
    *[(f"(a) memory per idle client on node {i + 1}, KiB", "idle", f"rss_per_conn_kib_n{i}", 2)
      for i in range(nodes)],
    ("(a) the worst node's memory per idle client, KiB", "idle", "rss_per_conn_kib_worst", 2),
    ("(a) engine CPU while they connected, s", "idle", "engine_cpu_s", 3),
    ("(c) paced, lines expected", "paced", "expected", 0),
    ("(c) paced, lines lost", "paced", "lost", 0),
    ("(c) paced, lines duplicated", "paced", "duplicated", 0),
    ("(c) paced, deliveries/s", "paced", "deliveries_per_s", 0),
    ("(c) paced, latency p50, ms", "paced", "p50_ms", 2),
    ("(c) paced, latency p99, ms", "paced", "p99_ms", 2),
    ("(c) paced, same-node lines lost", "paced", "lost_same", 0),
    ("(c) paced, same-node p50, ms", "paced", "same_p50_ms", 2),
    ("(c) paced, same-node p99, ms", "paced", "same_p99_ms", 2),
    ("(c) paced, cross-node lines expected", "paced", "expected_cross", 0),
    ("(c) paced, cross-node lines lost", "paced", "lost_cross", 0),
    ("(c) paced, cross-node p50, ms", "paced", "cross_p50_ms", 2),
    ("(c) paced, cross-node p99, ms", "paced", "cross_p99_ms", 2),
    ("(c) paced, servers' CPU per delivery, µs (cluster: the nodes together)", "paced",
     "server_cpu_us_per_delivery", 3),
    ("(c) paced, engine CPU during the run, s", "paced", "engine_cpu_s", 3),
]
print()
print(f"Medians of {n_runs} runs (min–max); the cluster is {nodes} nodes and one engine, "
      f"{idle_per_node:,} idle clients per node in (a):")
print()
print(f"| case | single node | cluster ({nodes} nodes) |")
print("|---|---:|---:|")
for label, case, key, digits in rows:
    single = cell(case, "single", key, digits) if case != "idle" or "_n" not in key and "worst" not in key else "n/a"
    cluster = cell(case, "cluster", key, digits)
    if single == "—" and cluster == "—":
        continue
    print(f"| {label} | {single} | {cluster} |")

paced_lines = med("paced", "cluster", "expected")
engine_cpu = med("paced", "cluster", "engine_cpu_s")
sent = None
for fields in runs.get(("paced", "cluster"), []):
    try:
        sent = int(fields["senders"]) * int(fields["lines"])
    except (KeyError, ValueError):
        pass
if engine_cpu is not None and sent:
    print()
    print(f"Engine CPU per line sent in the paced cluster run: {engine_cpu * 1e6 / sent:,.1f} µs "
          f"({sent:,} lines; median run).")

print()
print("How each case ended (all runs):")
for (case, server), results in sorted(runs.items()):
    notes = set()
    for f in results:
        if f.get("failed", "none") != "none":
            notes.add(f"failed to connect: {f['failed']}")
        if f.get("server_alive") == "no":
            notes.add("a server died")
        if f.get("result") == "missing":
            notes.add("no result (load generator killed or failed)")
        if f.get("timed_out") == "true":
            notes.add("timed out")
        for key, what in (("lost", "lines lost"), ("lost_cross", "cross-node lines lost"),
                          ("duplicated", "lines duplicated"), ("mangled", "lines mangled"),
                          ("closed", "clients disconnected by the server"),
                          ("notices", "`!` notices"), ("send_errors", "send errors")):
            if float(f.get(key, 0) or 0) > 0:
                notes.add(f"{what} in some runs (up to {max(values(case, server, key)):,.0f})")
    print(f"- {case} / {server}: " + ("; ".join(sorted(notes)) if notes else "ok"))

def check(ok, text):
    print(f"- [{'x' if ok else ' '}] {text}")

print()
print("Targets of issue 16's benchmark (from the medians; lost: every run):")
held = values("idle", "cluster", "held")
check(bool(held) and min(held) >= nodes * idle_per_node,
      f"{idle_per_node:,} clients per node held on each of {nodes} nodes: "
      f"{'—' if not held else num(min(held), 0)} of {nodes * idle_per_node:,} in the worst run")
lost = values("paced", "cluster", "lost") + values("paced", "cluster", "duplicated")
measured = len(values("paced", "cluster", "lost"))
attempted = len(runs.get(("paced", "cluster"), []))
check(bool(lost) and max(lost) == 0 and measured == attempted,
      f"fan-out in one room spanning all nodes, 0 lost and 0 duplicated in every run: "
      f"up to {'—' if not lost else num(max(lost), 0)} lost or duplicated "
      f"(cross-node lost up to {num(max(values('paced', 'cluster', 'lost_cross') or [0]), 0)}); "
      f"{measured} of {attempted} runs measured (the others: see how each case ended)")
single_p99 = med("paced", "single", "p99_ms")
cross_p99 = med("paced", "cluster", "cross_p99_ms")
all_p99 = med("paced", "cluster", "p99_ms")
check(cross_p99 is not None,
      f"cross-node paced p99 beside the single node's: "
      f"{'— (no cross-node line arrived)' if cross_p99 is None else num(cross_p99, 2) + ' ms'} vs "
      f"{'—' if single_p99 is None else num(single_p99, 2)} ms "
      f"({fmt_ratio(ratio(cross_p99, single_p99))}; the cluster's p99 over all deliveries "
      f"{'—' if all_p99 is None else num(all_p99, 2)} ms, {fmt_ratio(ratio(all_p99, single_p99))})")
worst = med("idle", "cluster", "rss_per_conn_kib_worst")
single_rss = med("idle", "single", "rss_per_conn_kib")
r = ratio(worst, single_rss)
check(r is not None and r <= 1.5,
      f"per-node memory per idle client within 1.5× the single node's: the worst node "
      f"{'—' if worst is None else num(worst, 2)} KiB vs {'—' if single_rss is None else num(single_rss, 2)} KiB "
      f"({fmt_ratio(r)})")
PY

echo "- [x] the engine's own CPU and memory: CPU $(awk -v a="$ENGINE_CPU_START" -v b="$ENGINE_CPU_END" 'BEGIN { printf "%.2f", b - a }') s over the whole run (per case above); VmRSS $ENGINE_RSS_START KiB at the start, $ENGINE_RSS_END KiB at the end ($ENGINE_KEYS keys, after the last case)."
echo
echo "Machine: $MACHINE; load average at the start: $LOAD_AT_START, at the end: $LOAD_AT_END."
echo "Command: tools/loadgen/bench/cluster.sh (RUNS=$RUNS IDLE_PER_NODE=$IDLE_PER_NODE PACED_LINES=$PACED_LINES); $((WALL / 60)) min $((WALL % 60)) s after the build."
