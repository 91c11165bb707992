#!/usr/bin/env bash
# Every torsieve test, in one run. Called by `make test` (after `make deps`).
#
# Each step prints "PASS name" or "FAIL name: why" lines; the run ends with
# "N passed, N failed" and exits non-zero if anything failed. Logs of the
# builds and of each step are kept in build/test-logs/.
#
#   FUZZ_BRIEF_SECONDS  how long each harness is fuzzed (default 20; 0 skips)
set -u
cd "$(dirname "$0")/.."

FUZZ_BRIEF_SECONDS=${FUZZ_BRIEF_SECONDS:-20}
LOGS=build/test-logs
mkdir -p "$LOGS"
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# Run a command; PASS if it exits 0. Its output goes to a log shown on failure.
step() {
	local name=$1 log
	shift
	log="$LOGS/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').log"
	if "$@" >"$log" 2>&1; then
		pass "$name"
	else
		fail "$name (log: $log)"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
}

# Run a program that prints PASS/FAIL lines itself; count them. A crash or a
# non-zero exit without a FAIL line is a failure too.
counted() {
	local name=$1 log rc
	shift
	log="$LOGS/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').log"
	"$@" >"$log" 2>&1
	rc=$?
	local p f
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	passed=$((passed + p))
	failed=$((failed + f))
	sed -n "s/^\(PASS\|FAIL\) /\1 $name: /p" "$log"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		fail "$name exited $rc (log: $log)"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		fail "$name ran no test (log: $log)"
	fi
}

echo "== builds"
step "build gcc -Werror" make -j2 CC=gcc build/gcc/torsieve
step "build clang -Werror" make -j2 CC=clang build/clang/torsieve
step "build ASan+UBSan" make -j2 CC=clang SANITIZE=1 build/clang-san/torsieve units fuzz-replays
step "build gcc unit tests" make -j2 CC=gcc units
step "build libFuzzer harnesses" make -j2 fuzzers
step "build MIPS big-endian core" make -j2 O=build/mips CC=mips-linux-gnu-gcc LDFLAGS=-static \
	unit-core

TS=build/clang-san/torsieve
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== unit tests (ASan+UBSan)"
for t in build/clang-san/test_*; do
	[ -x "$t" ] && counted "$(basename "$t") [asan]" "$t"
done
echo "== unit tests (gcc)"
for t in build/gcc/test_*; do
	[ -x "$t" ] && counted "$(basename "$t") [gcc]" "$t"
done
echo "== unit tests on big-endian MIPS (qemu-mips-static)"
for t in build/mips/test_*; do
	[ -x "$t" ] && counted "$(basename "$t") [mips]" qemu-mips-static "$t"
done

echo "== fixtures"
counted "fixtures" /usr/bin/python3 test/check_fixtures.py --torsieve "$TS" --pcaps test/pcaps
counted "fragment fixtures" /usr/bin/python3 test/pcaps/gen/craft_frags.py --check "$TS"

echo "== network namespaces"
counted "netns topology" test/netns/test_topology.sh
counted "inline gateway" env TORSIEVE="$TS" test/netns/test_inline.sh
counted "leak battery" env TORSIEVE="$TS" test/netns/leak_battery.sh
counted "relay (SOCKS stubs)" env TORSIEVE="$TS" test/netns/test_relay.sh
counted "DNS (SOCKS stub)" env TORSIEVE="$TS" test/netns/test_dns.sh
counted "private Tor network" test/tor/test_tornet.sh
counted "relay through Tor" env TORSIEVE="$TS" test/tor/test_relay_tor.sh
counted "DNS through Tor" env TORSIEVE="$TS" test/tor/test_dns_tor.sh

echo "== fuzz corpora (plain replay, ASan+UBSan)"
for h in fuzz/fuzz_*.c; do
	h=$(basename "$h" .c)
	h=${h#fuzz_}
	step "corpus $h replays clean" build/clang-san/replay_"$h" fuzz/corpus/"$h"
done

if [ "$FUZZ_BRIEF_SECONDS" -gt 0 ]; then
	echo "== brief fuzzing (${FUZZ_BRIEF_SECONDS}s each)"
	for h in fuzz/fuzz_*.c; do
		h=$(basename "$h" .c)
		h=${h#fuzz_}
		work=build/fuzz/brief-$h
		rm -rf "$work"
		mkdir -p "$work" build/fuzz/crashes
		step "fuzz $h ${FUZZ_BRIEF_SECONDS}s" build/fuzz/fuzz_"$h" \
			-max_total_time="$FUZZ_BRIEF_SECONDS" -rss_limit_mb=2048 \
			-artifact_prefix=build/fuzz/crashes/"$h"- "$work" fuzz/corpus/"$h"
	done
fi

echo "== style"
step "clang-format clean" sh -c 'clang-format --dry-run -Werror \
	$(git ls-files "*.c" "*.h" 2>/dev/null || find engine plugins include test fuzz -name "*.[ch]")'

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
