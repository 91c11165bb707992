#!/bin/bash
# bench_nfqueue.sh - the inline path's benchmark (make bench runs it; needs root):
#
#   verdicts   NFQUEUE verdicts per second on one core: torsieve run against a
#              bare accept loop (test/bench/nfq_bare.c, the same library and
#              queue settings; one verdict message per packet, and batched as
#              torsieve batches), the same UDP flood (test/bench/udp_flood.c)
#              from a client namespace for each, interleaved. Two phases: at
#              full rate (verdicts/s, best of ROUNDS), and paced at a rate every
#              consumer keeps up with, consumer and generator SCHED_FIFO
#              (verdicts per CPU-second of the consumer, best of PACED_ROUNDS):
#              one generator core cannot outrun a batch consumer here, so the
#              paced phase is the one that compares the consumers' cost. The
#              ratio, and the goal (torsieve >= 90% of the batch loop)
#   fast path  a bulk TCP upload from a client to a diverted destination, with
#              `set fast-path on` and `off`: MB/s, and how many packets went to
#              userspace per MB (torsieve's own counters)
#
# Everything runs in namespaces of test/netns/topology.sh (removed at the end,
# also on failure or ^C); the root namespace's firewall and routes are never
# touched. The consumer (bare loop or torsieve, and the diverted connection's
# listener) runs on CPU 0 of the gateway namespace, the generator (and the
# counter sampler) on CPU 1 of a client's.
#
# A packet's count as "given a verdict" comes from the kernel
# (/proc/net/netfilter/nfnetlink_queue: ids handed out, less those that never
# reached the socket, less those still waiting), over the same window for
# every consumer; each consumer's own count over its whole run is checked
# against the kernel's (the bare loop's "accepted", torsieve's JSON
# "nfqueue" counters), and the NFQUEUE rules' packet counters (IPv4 and IPv6)
# against the packets the queue was offered. CPU time: the consumer's threads'
# schedstat over the same window.
#
# Environment: NFQ_BENCH_SECONDS (window, default 3), NFQ_BENCH_ROUNDS (default
# 3), NFQ_BENCH_BULK_SECONDS (default 2), NFQ_BENCH_BUILD (default build/bench),
# NFQ_BENCH_PACED_SECONDS (default 2), NFQ_BENCH_PACED_ROUNDS (default 5),
# NFQ_BENCH_RATE (the paced rate, default 100000/s), NFQ_BENCH_KEEP=1 (keep the
# topology's logs), NFQ_BENCH_PERF=DIR (after the measured runs, one more paced
# run of torsieve and of the batch loop under `perf record -g -p`, written to
# DIR/perf-NAME.data; needs perf).
# shellcheck disable=SC2317  # functions called through topology.sh's hooks and waits
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${NFQ_BENCH_BUILD:-$ROOT/build/bench}
[[ $B == /* ]] || B=$ROOT/$B
TS=$B/torsieve
BARE=$B/nfq_bare
FLOOD=$B/udp_flood
PY=/usr/bin/python3
HELPER=$HERE/nfq_helper.py
SECS=${NFQ_BENCH_SECONDS:-3}
ROUNDS=${NFQ_BENCH_ROUNDS:-3}
PACED_SECS=${NFQ_BENCH_PACED_SECONDS:-2}
PACED_ROUNDS=${NFQ_BENCH_PACED_ROUNDS:-5}
BULK_SECS=${NFQ_BENCH_BULK_SECONDS:-2}
PERF_DIR=${NFQ_BENCH_PERF:-}
WARM=0.5
QUEUE=7
CPU_CONS=0
CPU_GEN=1
HOLE_ADDR=192.0.2.1 # the gateway's br0 address
HOLE_PORT=9999
BULK_ADDR=203.0.113.80 # "the internet": diverted to the gateway's listener
BULK_PORT=80
DIVERT_PORT=9040
PASS_MARK=0x100 # `set mark-mask 0xff00` and `set mark pass 1`
PIN_CONS=(taskset -c "$CPU_CONS")
PIN_GEN=(taskset -c "$CPU_GEN")
PACED_RATE=${NFQ_BENCH_RATE:-100000}
RT=(chrt -f 10) # the paced runs: the kernel's RT throttling leaves others 5%
RT_NOTE=SCHED_FIFO
if ! chrt -f 10 true 2>/dev/null; then
    RT=()
    RT_NOTE="normal priority (chrt -f 10 failed)"
fi

echo "NFQUEUE (test/bench/bench_nfqueue.sh)"
skip() {
    echo "bench_nfqueue: skipped: $*"
    exit 0
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, iptables-legacy inside them, NFQUEUE)"
for t in ip ss tcpdump iptables-legacy iptables-legacy-restore taskset; do
    command -v "$t" >/dev/null 2>&1 || skip "'$t' is missing (make deps installs it)"
done
[[ -x $PY ]] || skip "$PY is missing"
cpus=$(taskset -pc $$ 2>/dev/null | sed 's/.*: //')
if ! taskset -c "$CPU_CONS,$CPU_GEN" true 2>/dev/null; then
    skip "needs CPUs $CPU_CONS and $CPU_GEN (this process may use: ${cpus:-?})"
fi
for f in "$TS" "$BARE" "$FLOOD"; do
    [[ -x $f ]] || {
        echo "bench_nfqueue: $f is missing: run make bench" >&2
        exit 1
    }
done
[[ -n $PERF_DIR ]] && ! command -v perf >/dev/null 2>&1 && {
    echo "bench_nfqueue: NFQ_BENCH_PERF is set but perf is missing" >&2
    exit 1
}

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/ts-bench-nfq.XXXXXX) || exit 1
write_conf() { # FILE FAST_PATH
    cat >"$1" <<EOF
set interface br0
set queue $QUEUE
set fast-path $2
set relay off
set mark-mask 0xff00
set mark pass 1
set divert-port $DIVERT_PORT
pass icmp6 icmp-type { 133, 135, 136 }
pass udp to $HOLE_ADDR port $HOLE_PORT
divert tcp to port $BULK_PORT
drop all
EOF
}
write_conf "$WORK/flood.conf" off
write_conf "$WORK/fast-off.conf" off
write_conf "$WORK/fast-on.conf" on

# shellcheck source-path=SCRIPTDIR source=../netns/topology.sh
source "$ROOT/test/netns/topology.sh"
# TPROXY needs the bridge's IP traffic to meet iptables at the IP layer (see
# test/netns/test_inline.sh): no br_netfilter in the gateway.
export TOPO_BRIDGE_NF=0
export TOPO_CLIENTS=1
[[ ${NFQ_BENCH_KEEP:-0} == 1 ]] && export TOPO_KEEP=1

CONS_PID=
CONS_LOG=
GEN_PID=
not_alive() { ! kill -0 "$1" 2>/dev/null; }
stop_consumer() {
    [[ -n $CONS_PID ]] || return 0
    kill -TERM "$CONS_PID" 2>/dev/null
    if ! topo_wait_until 10 "the consumer to stop" not_alive "$CONS_PID"; then
        kill -KILL "$CONS_PID" 2>/dev/null
    fi
    wait "$CONS_PID" 2>/dev/null
    CONS_PID=
}
stop_generator() {
    [[ -n $GEN_PID ]] || return 0
    kill -TERM "$GEN_PID" 2>/dev/null
    wait "$GEN_PID" 2>/dev/null
    GEN_PID=
}
bench_down() {
    stop_generator
    stop_consumer
    rm -rf "$WORK"
}
topo_on_down bench_down

gw_setup() {
    topo_exec gw "$TS" rules -c "$WORK/flood.conf" --apply >/dev/null || return 1
    topo_bg gw hole "${PIN_CONS[@]}" "$PY" "$HELPER" hole "$HOLE_ADDR" "$HOLE_PORT" || return 1
    topo_bg gw sink "${PIN_CONS[@]}" "$PY" "$HELPER" sink "$DIVERT_PORT" || return 1
    topo_wait_listen gw udp "$HOLE_PORT" "$HOLE_ADDR" && topo_wait_listen gw tcp "$DIVERT_PORT"
}
export TOPO_GW_SETUP=gw_setup
if ! topo_up; then
    echo "bench_nfqueue: the topology did not come up" >&2
    bench_down
    exit 1
fi

fail() {
    echo "bench_nfqueue: $*" >&2
    [[ -n $CONS_LOG && -f $CONS_LOG ]] && tail -n 5 "$CONS_LOG" >&2
    exit 1
}
queue_state() { topo_exec gw "$PY" "$HELPER" queue "$QUEUE"; }
queue_bound() { [[ $(queue_state) != none ]]; }
queue_drained() { [[ $(queue_state) == *waiting=0\ * ]]; }
rule_packets() { # the NFQUEUE rules' packet counters, IPv4 and IPv6
    {
        topo_exec gw iptables-legacy -w -t raw -vnxL torsieve-queue
        topo_exec gw ip6tables-legacy -w -t raw -vnxL torsieve-queue
    } | awk '/NFQUEUE/ { n += $1 } END { print n + 0 }'
}
rcvbuf_of() { # PID: the receive buffer of its netlink sockets, as the kernel has it
    topo_exec gw ss -f netlink -a -m -p 2>/dev/null | grep -A1 -- "/$1 " | grep -o 'rb[0-9]*' |
        head -n 1 | cut -c3-
}

# start_consumer NAME CMD...: in the gateway, on the consumer's CPU; returns once
# the queue is bound
start_consumer() {
    local name=$1
    shift
    CONS_LOG=$TOPO_DIR/$name.log
    topo_bg gw "$name" "${PRIO[@]}" "${PIN_CONS[@]}" "$@" || fail "cannot start $name"
    CONS_PID=$TOPO_LAST_PID
    topo_wait_until 10 "$name to bind queue $QUEUE" queue_bound || fail "$name did not bind the queue"
}

# torsieve's JSON counters at exit, as "received accepted dropped messages
# batches enobufs bytes"
torsieve_counts() {
    grep -h '"when":"at exit"' "$1" | tail -n 1 | sed 's/^torsieve: //' | "$PY" -c '
import json, sys
c = json.load(sys.stdin)
q = c["nfqueue"]
print(q["received"], q["accepted"], q["dropped"], q["verdict_messages"], q["batches"],
      q["enobufs"], c["summary"]["bytes"])'
}


FLOOD_TSV=$WORK/flood.tsv
BULK_TSV=$WORK/bulk.tsv
: >"$FLOOD_TSV"
: >"$BULK_TSV"

# flood_run full|paced NAME ROUND CMD...: one measured run of a consumer under
# the flood: full, as fast as the generator goes, at the normal priority; paced,
# at PACED_RATE, consumer and generator real-time (SCHED_FIFO), so that the
# consumer runs as soon as a packet waits whatever else the machine does
flood_run() {
    local phase=$1 name=$2 round=$3 tag line secs verdicts offered qdrop udrop cpu st ids
    local udropped qdropped own msgs rule sent rcvbuf rcv acc drp
    local -a rate=()
    local window=$SECS
    shift 3
    tag=$phase-$name-$round
    PRIO=()
    if [[ $phase == paced ]]; then
        PRIO=("${RT[@]}")
        rate=(--rate "$PACED_RATE")
        window=$PACED_SECS
    fi
    if ! topo_exec gw iptables-legacy -w -t raw -Z torsieve-queue ||
        ! topo_exec gw ip6tables-legacy -w -t raw -Z torsieve-queue; then
        fail "cannot zero the rule counters"
    fi
    start_consumer "$tag" "$@"
    rcvbuf=$(rcvbuf_of "$CONS_PID")
    topo_bg c1 "flood-$tag" "${PRIO[@]}" "${PIN_GEN[@]}" "$FLOOD" "$HOLE_ADDR" "$HOLE_PORT" \
        "$((${window%.*} + 30))" "${rate[@]}"
    GEN_PID=$TOPO_LAST_PID
    line=$(topo_exec gw "${PIN_GEN[@]}" "$PY" "$HELPER" sample "$QUEUE" "$WARM" "$window" "$CONS_PID")
    stop_generator
    read -r secs verdicts offered qdrop udrop cpu <<<"$line"
    [[ ${cpu:-} =~ ^[0-9.]+$ ]] || fail "$tag: no counters from the kernel ($line)"
    topo_wait_until 10 "queue $QUEUE to drain" queue_drained || fail "$tag: the queue did not drain"
    st=$(queue_state)
    rule=$(rule_packets)
    stop_consumer
    ids=$(sed -n 's/.*ids=\([0-9]*\).*/\1/p' <<<"$st")
    udropped=$(sed -n 's/.*user_dropped=\([0-9]*\).*/\1/p' <<<"$st")
    qdropped=$(sed -n 's/.*queue_dropped=\([0-9]*\).*/\1/p' <<<"$st")
    sent=$(sed -n 's/^udp_flood: sent \([0-9]*\) .*/\1/p' "$TOPO_DIR/flood-$tag.log")
    # the consumer's own count of verdicts over its whole run, and the messages
    if [[ $name == torsieve ]]; then
        read -r rcv acc drp msgs _ _ _ <<<"$(torsieve_counts "$CONS_LOG")"
        [[ -n ${rcv:-} ]] || fail "$tag: no counters at exit in $CONS_LOG"
        own=$((acc + drp))
        ((drp == 0)) || fail "$tag: torsieve dropped $drp packets (the policy passes all it is sent)"
    else
        line=$(grep -h '^nfq_bare.*accepted' "$CONS_LOG" | tail -n 1)
        own=$(sed -n 's/.* accepted \([0-9]*\) .*/\1/p' <<<"$line")
        msgs=$(sed -n 's/.* messages \([0-9]*\) .*/\1/p' <<<"$line")
        [[ -n $own ]] || fail "$tag: no count in $CONS_LOG"
    fi
    printf '%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\n' "$phase" "$name" "$round" \
        "$secs" "$verdicts" "$offered" "$qdrop" "$udrop" "$cpu" "$own" "$((ids - udropped))" \
        "$rule" "$((ids + qdropped))" "${msgs:-0}" "${rcvbuf:-?}" "${sent:-0}" >>"$FLOOD_TSV"
    awk -v n="$phase $name" -v r="$round" -v s="$secs" -v v="$verdicts" -v o="$offered" -v c="$cpu" \
        'BEGIN { pc = 0; if (c > 0) pc = v / c
                 printf "  %-20s round %d: %7.0f verdicts/s, the consumer on a CPU %3.0f%% of the time: %7.0f per CPU-second (offered %.0f/s)\n", n, r, v / s, 100 * c / s, pc, o / s }'
}

CONSUMERS=(bare-single bare-batch torsieve bare-batch-8M)
PACED_CONSUMERS=(bare-single bare-batch torsieve)
consumer_cmd() { # NAME: its command line in CMD
    case $1 in
    bare-single) CMD=("$BARE" "$QUEUE" --mark "$PASS_MARK") ;;
    bare-batch) CMD=("$BARE" "$QUEUE" --batch --mark "$PASS_MARK") ;;
    bare-batch-8M) CMD=("$BARE" "$QUEUE" --batch --mark "$PASS_MARK" --buffer 8388608) ;;
    torsieve) CMD=("$TS" run -c "$WORK/flood.conf" --json) ;;
    esac
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE; each run: ${WARM} s warm-up, then ${SECS} s measured at full rate"
echo "($ROUNDS rounds), ${PACED_SECS} s paced at $PACED_RATE/s ($PACED_ROUNDS rounds); interleaved"
PRIO=()
for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${CONSUMERS[@]}"; do
        consumer_cmd "$c"
        flood_run full "$c" "$r" "${CMD[@]}"
    done
done
for ((r = 1; r <= PACED_ROUNDS; r++)); do
    for c in "${PACED_CONSUMERS[@]}"; do
        consumer_cmd "$c"
        flood_run paced "$c" "$r" "${CMD[@]}"
    done
done
PRIO=()

if [[ -n $PERF_DIR ]]; then
    # as the paced runs, under perf record (4999 samples a second of the consumer)
    mkdir -p "$PERF_DIR"
    for c in torsieve bare-batch; do
        consumer_cmd "$c"
        PRIO=("${RT[@]}")
        start_consumer "perf-$c" "${CMD[@]}"
        topo_bg c1 "flood-perf-$c" "${PRIO[@]}" "${PIN_GEN[@]}" "$FLOOD" "$HOLE_ADDR" "$HOLE_PORT" \
            "$((${SECS%.*} + 30))" --rate "$PACED_RATE"
        GEN_PID=$TOPO_LAST_PID
        sleep "$WARM"
        perf record -q -F 4999 -g -p "$CONS_PID" -o "$PERF_DIR/perf-$c.data" -- sleep "$SECS" \
            >/dev/null 2>&1 || echo "bench_nfqueue: perf record failed for $c" >&2
        stop_generator
        topo_wait_until 10 "queue $QUEUE to drain" queue_drained
        stop_consumer
        echo "  perf: $PERF_DIR/perf-$c.data (perf report -i $PERF_DIR/perf-$c.data --no-children --sort dso)"
    done
    PRIO=()
fi
T_FLOOD=$EPOCHREALTIME

# ---------------------------------------------------------------- fast path
bulk_run() { # on|off ROUND
    local mode=$1 round=$2 tag=bulk-$1-$2 line bytes secs rcv acc drp qbytes cpu0 cpu1
    topo_exec gw "$TS" rules -c "$WORK/fast-$mode.conf" --apply >/dev/null ||
        fail "torsieve rules --apply (fast-path $mode) failed"
    PRIO=()
    start_consumer "$tag" "$TS" run -c "$WORK/fast-$mode.conf" --json
    cpu0=$("$PY" "$HELPER" cpu "$CONS_PID")
    line=$(topo_exec c1 "${PIN_GEN[@]}" "$PY" "$HELPER" send "$BULK_ADDR" "$BULK_PORT" "$BULK_SECS")
    cpu1=$("$PY" "$HELPER" cpu "$CONS_PID")
    read -r _ bytes _ secs <<<"$line"
    [[ ${bytes:-} =~ ^[0-9]+$ ]] || fail "$tag: the bulk transfer failed ($line)"
    topo_wait_until 10 "queue $QUEUE to drain" queue_drained || fail "$tag: the queue did not drain"
    stop_consumer
    read -r rcv acc drp _ _ _ qbytes <<<"$(torsieve_counts "$CONS_LOG")"
    [[ -n ${rcv:-} ]] || fail "$tag: no counters at exit in $CONS_LOG"
    printf '%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\n' "$mode" "$round" "$bytes" "$secs" "$rcv" "$qbytes" \
        "$drp" "$((cpu1 - cpu0))" >>"$BULK_TSV"
    awk -v m="$mode" -v r="$round" -v b="$bytes" -v s="$secs" -v p="$rcv" \
        'BEGIN { printf "  fast-path %-3s round %d: %7.1f MB/s, %d packets to userspace\n", m, r, b / 1e6 / s, p }'
}
for ((r = 1; r <= ROUNDS; r++)); do
    bulk_run off "$r"
    bulk_run on "$r"
done
T_END=$EPOCHREALTIME

echo
"$PY" "$HELPER" report "$FLOOD_TSV" "$BULK_TSV" "rounds=$ROUNDS" "secs=$SECS" "warm=$WARM" \
    "bulk_secs=$BULK_SECS" "cpu_cons=$CPU_CONS" "cpu_gen=$CPU_GEN" "mark=$PASS_MARK" \
    "load=$LOAD_BEFORE" "rate=$PACED_RATE" "rt=$RT_NOTE" "paced_secs=$PACED_SECS" \
    "paced_rounds=$PACED_ROUNDS" "bulk_dst=$BULK_ADDR:$BULK_PORT" \
    "time_flood=$("$PY" -c "print('%.0f' % ($T_FLOOD - $T_START))")" \
    "time_bulk=$("$PY" -c "print('%.0f' % ($T_END - $T_FLOOD))")" || fail "the report failed"
topo_down
exit 0
