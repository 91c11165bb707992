# checks.sh - sourced by the inline tests: where the torsieve binary is,
# and the PASS/FAIL lines test/run.sh counts.
#
#   TORSIEVE   the binary to test (default build/gcc/torsieve)

HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TS=${TORSIEVE:-$ROOT/build/gcc/torsieve}
[[ $TS == /* ]] || TS=$ROOT/$TS
PY=/usr/bin/python3
NETNS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=topology.sh
source "$NETNS_DIR/topology.sh"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
check() { # NAME WANT GOT
    if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
    exit
}

# The torsieve a test started in the gateway (topo_bg gw torsieve ... --json):
# TORSIEVE_PID, logging to $TOPO_DIR/torsieve.log.

# torsieve_counter PATH...: one counter from a fresh SIGUSR1 report, e.g.
# `torsieve_counter relay syn_opened` or `torsieve_counter dns blocked`
torsieve_counter() {
    local before
    before=$(grep -c '"queue"' "$TOPO_DIR/torsieve.log")
    kill -USR1 "$TORSIEVE_PID"
    topo_wait_until 5 "counters" \
        bash -c "(( \$(grep -c '\"queue\"' '$TOPO_DIR/torsieve.log') > $before ))" || return
    grep '"queue"' "$TOPO_DIR/torsieve.log" | tail -1 | sed 's/^[^{]*//' |
        "$PY" -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$@"
}

# stop_torsieve: SIGTERM and wait; TORSIEVE_RC is its exit status, and its
# log is kept as $WORK/torsieve.log
stop_torsieve() {
    [[ -n ${TORSIEVE_PID:-} ]] || return 0
    kill -TERM "$TORSIEVE_PID" 2>/dev/null
    wait "$TORSIEVE_PID" 2>/dev/null
    TORSIEVE_RC=$?
    TORSIEVE_PID=
    cp "$TOPO_DIR/torsieve.log" "$WORK/torsieve.log" 2>/dev/null
}

# dig_answer NS SERVER NAME TYPE [dig options]: "STATUS ANSWERS FROM", the
# records' data joined by commas ("-": none) and the server dig says
# answered (dig takes no answer from another address); STATUS is TIMEOUT
# when none came
dig_answer() {
    local ns=$1 server=$2 name=$3 type=$4
    shift 4
    topo_exec "$ns" dig +time=2 +tries=1 "$@" "@$server" "$name" "$type" 2>&1 | awk '
        /status:/ { s = $6; sub(",", "", s) }
        /^;; ANSWER SECTION:/ { a = 1; next }
        a && /^$/ { a = 0 }
        a && !/^;/ { ans = ans (ans ? "," : "") $NF }
        /^;; SERVER:/ { split($3, f, "#"); from = f[1] }
        /timed out|no servers could be reached/ { s = "TIMEOUT" }
        END { print (s ? s : "NONE"), (ans ? ans : "-"), (from ? from : "-") }'
}
