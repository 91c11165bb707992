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
