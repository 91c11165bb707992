#!/bin/bash
# test_tornet.sh - self-test of tornet.sh, the private Tor network of the tests.
#
# Prints "PASS name" / "FAIL name: why" lines and "N passed, N failed" (what
# test/run.sh counts); exits non-zero if anything failed.  Needs root, the
# Debian packages tor and curl, and what test/netns/topology.sh needs.
# Takes about 30 s.  Everything it starts goes away on success, on failure
# and on Ctrl-C (topology.sh's trap calls topo_down, which calls tornet_down).
#
#   TORNET_BOOT_SECS   deadline for the client's bootstrap (default 60)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/tor/tornet.sh
source "$HERE/tornet.sh"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
check() { # NAME WANT GOT
    if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
T0=$(topo__now)
secs_since() { # START (microseconds) -> "1.234"
    local us=$(($(topo__now) - $1))
    printf '%d.%03d' $((us / 1000000)) $((us % 1000000 / 1000))
}
finish() {
    topo_down || fail "topo_down" "could not remove the topology"
    echo "runtime $(secs_since "$T0") s"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
    exit
}

for t in curl tor tor-gencert env setsid; do
    command -v "$t" >/dev/null 2>&1 || { fail "tools" "missing $t (Debian packages tor, curl)"; finish; }
done

# tors of this test alive now: pids whose cmdline names a torrc under $1
tors_under() {
    local f pid cmd
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == tor ]] || continue
        cmd=$(tr '\0' ' ' <"$f" 2>/dev/null)
        [[ $cmd == *"$1"* ]] && echo "$pid"
    done
    return 0
}
# tor processes inside namespace NS (gw, up or a full name)
tors_in_ns() {
    local p
    for p in $(ip netns pids "$(topo_ns "$1")" 2>/dev/null); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == tor ]] && echo "$p"
    done
    return 0
}
ns_inode() { topo_exec "$1" stat -L -c %i /proc/self/ns/net; }
relay_addrs_on_lo() { # how many relay addresses the uplink's lo has
    local n=0 a
    for a in "${TORNET_ADDRS[@]}"; do
        ip -n "$TOPO_NS_UP" -4 -o addr show dev lo | grep -qF " $a/32 " && n=$((n + 1))
    done
    echo "$n"
}

SOCKS=$(tornet_socks_addr)
EXIT=$(tornet_exit_addr)
# curl through the client's SOCKS port, from the gateway namespace where it
# listens; --max-time turns a hang into a failure (exit 28)
tcurl() { topo_exec "$TORNET_CLIENT_NS" curl -sS --max-time 20 --socks5-hostname "$SOCKS" "$@"; }

# ---------------------------------------------------------------- topology
TOPO_CLIENTS=1 # read by topo_up
# shellcheck disable=SC2034
if ! topo_up; then
    fail "topology" "topo_up failed"
    finish
fi
pass "topology up ($TOPO_RUN)"

# ---------------------------------------------------------------- a failed tornet_up cleans up
# The first consensus takes several seconds: a 1 s deadline must fail, and
# tornet_up must stop what it started.
TORNET_BOOT_SECS=1 tornet_up 2>"$TOPO_DIR/failed-up.err"
rc=$?
out=$(cat "$TOPO_DIR/failed-up.err")
left=$(tors_under "$TOPO_DIR/tornet.")
if ((rc == 0)); then
    fail "failed up cleans up" "tornet_up with a 1 s deadline succeeded"
elif [[ $out != *"timed out after 1 s waiting for"* ]]; then
    fail "failed up cleans up" "unexpected error: $out"
elif [[ -n $left ]]; then
    fail "failed up cleans up" "tors left: $left"
elif compgen -G "$TOPO_DIR/tornet.*" >/dev/null || compgen -G "$TOPO_DIR/tor-*.log" >/dev/null; then
    fail "failed up cleans up" "files left: $(ls "$TOPO_DIR")"
elif [[ $(relay_addrs_on_lo) != 0 ]]; then
    fail "failed up cleans up" "relay addresses left on the uplink's lo"
else
    pass "failed up cleans up (deadline 1 s: error, no tor, no file left)"
fi

# ---------------------------------------------------------------- bootstrap
if ! tornet_up; then
    fail "bootstrap" "tornet_up failed (deadline ${TORNET_BOOT_SECS} s)"
    finish
fi
BOOT=$(tornet__ms "$TORNET_BOOT_MS")
pass "bootstrap: client at 100% after $BOOT s (consensus with every relay after $(tornet__ms "$TORNET_CONSENSUS_MS") s, then the client $(tornet__ms "$TORNET_CLIENT_MS") s)"
phase=$(tornet_bootstrap_phase)
if [[ $phase == *PROGRESS=100* && $phase == *TAG=done* ]]; then
    pass "control port: status/bootstrap-phase PROGRESS=100 TAG=done"
else
    fail "control port" "status/bootstrap-phase: '$phase'"
fi

# ---------------------------------------------------------------- where the tors run
up_tors=$(tors_in_ns up | sort | tr '\n' ' ')
gw_tors=$(tors_in_ns gw | sort | tr '\n' ' ')
mine=$(printf '%s\n' "${TORNET_PIDS[@]:0:3}" | sort | tr '\n' ' ')
check "three relays in the uplink namespace" "$mine" "$up_tors"
check "client in the gateway namespace" "${TORNET_PIDS[3]} " "$gw_tors"
bad=
for i in "${!TORNET_PIDS[@]}"; do
    p=${TORNET_PIDS[i]}
    want=$TORNET_DIR/${TORNET_NAMES[i]}/torrc
    [[ $(tr '\0' ' ' <"/proc/$p/cmdline") == "$TORNET_TOR -f $want " ]] || bad+=" ${TORNET_NAMES[i]}:cmdline"
    want_ns=$TORNET_RELAY_NS
    [[ ${TORNET_NAMES[i]} == client ]] && want_ns=$TORNET_CLIENT_NS
    [[ $(stat -L -c %i "/proc/$p/ns/net") == "$(ns_inode "$want_ns")" ]] || bad+=" ${TORNET_NAMES[i]}:netns"
done
if [[ -z $bad ]]; then
    pass "every tor runs 'tor -f' with its own torrc, inside its namespace"
else
    fail "own torrc and namespace" "$bad"
fi
if [[ -z $(ip netns exec "$TOPO_NS_UP" ip -4 route show default) ]]; then
    pass "the uplink namespace has no default route (nothing leaves)"
else
    fail "no route out" "$(ip netns exec "$TOPO_NS_UP" ip -4 route show default)"
fi

# ---------------------------------------------------------------- the consensus
nsall=$(tornet_control GETINFO ns/all)
relays=$(sed -n 's/^r \([^ ]*\) .*/\1/p' <<<"$nsall" | sort | tr '\n' ' ')
check "consensus lists the three relays" "auth1 auth2 exit3 " "$relays"
exitflags=$(awk '/^r exit3 /{x=1; next} x && /^s /{print; exit}' <<<"$nsall")
if [[ $exitflags == *Exit* && $exitflags == *Running* && $exitflags == *Valid* ]]; then
    pass "exit3 is a running, valid Exit"
else
    fail "exit flags" "exit3: '$exitflags'"
fi

# ---------------------------------------------------------------- HTTP through Tor
LOG=$TOPO_DIR/servers.log
tag=tornet-$$-$RANDOM
for port in 80 443; do
    t=$(topo__now)
    body=$(tcurl "http://$TOPO_HTTP4:$port/?$tag-ip$port" 2>&1)
    check "GET http://$TOPO_HTTP4:$port/ through Tor ($(secs_since "$t") s)" \
        "torsieve-uplink http $TOPO_HTTP4:$port" "$body"
    line=$(grep -F "GET /?$tag-ip$port" "$LOG")
    check "server saw port $port from the exit $EXIT" \
        "http $TOPO_HTTP4:$port from $EXIT GET /?$tag-ip$port" "$line"
done

dns_before=$(grep -c ' www.example.test A$' "$LOG")
t=$(topo__now)
body=$(tcurl "http://$TOPO_DNS_NAME/?$tag-name" 2>&1)
check "GET http://$TOPO_DNS_NAME/ through Tor, the name resolved by the exit ($(secs_since "$t") s)" \
    "torsieve-uplink http $TOPO_HTTP4:80" "$body"
dns_after=$(grep -c ' www.example.test A$' "$LOG")
if ((dns_after > dns_before)); then
    pass "the exit asked the test's resolver ($TORNET_RESOLVER) for $TOPO_DNS_NAME"
else
    fail "exit's resolver" "no query for $TOPO_DNS_NAME in servers.log"
fi
line=$(grep -F "GET /?$tag-name" "$LOG")
check "server saw the name request from the exit" \
    "http $TOPO_HTTP4:80 from $EXIT GET /?$tag-name" "$line"

# nothing reached the servers from the gateway or a client directly
direct=$(grep -E " from ($TOPO_GW_UP4|192\.0\.2\.[0-9]+|2001:db8:[12]::[0-9a-f]+) " "$LOG")
if [[ -z $direct ]]; then
    pass "no request reached the servers from the gateway or a client"
else
    fail "direct requests" "$direct"
fi

circ=$(tornet_control GETINFO circuit-status)
if grep -qE '^[0-9]+ BUILT \$[0-9A-F]{40}~[a-z0-9]+,\$[0-9A-F]{40}~[a-z0-9]+,\$[0-9A-F]{40}~exit3 ' <<<"$circ"; then
    pass "control port: a built 3-hop circuit ends at exit3"
else
    fail "circuit-status" "$(head -n 5 <<<"$circ")"
fi

# ---------------------------------------------------------------- unreachable destinations fail fast
for what in "no route:http://203.0.113.99/" "refused:http://$TOPO_HTTP4:81/" \
    "NXDOMAIN:http://nosuch.example.test/"; do
    name=${what%%:*}
    url=${what#*:}
    t=$(topo__now)
    out=$(tcurl "$url" 2>&1)
    rc=$?
    el=$(secs_since "$t")
    if ((rc == 97)) && [[ $out == *SOCKS5* ]] && (($(topo__now) - t < 5000000)); then
        pass "unreachable ($name) $url: SOCKS error in $el s (${out##*connection to })"
    else
        fail "unreachable ($name)" "$url: curl exit $rc after $el s: $out"
    fi
done

# ---------------------------------------------------------------- tornet_down
pids=("${TORNET_PIDS[@]}")
starts=("${TORNET_STARTS[@]}")
dir=$TORNET_DIR
t=$(topo__now)
if tornet_down; then
    pass "tornet_down ($(secs_since "$t") s)"
else
    fail "tornet_down" "returned non-zero"
fi
alive=
for i in "${!pids[@]}"; do
    [[ $(topo__starttime "${pids[i]}" 2>/dev/null) == "${starts[i]}" ]] && alive+=" ${pids[i]}"
done
alive+=$(tors_under "$TOPO_DIR/tornet.")$(tors_in_ns up)$(tors_in_ns gw)
check "no tor of the test left after tornet_down" "" "$alive"
if [[ ! -e $dir ]] && ! compgen -G "$TOPO_DIR/tor-*.log" >/dev/null && [[ $(relay_addrs_on_lo) == 0 ]]; then
    pass "tornet_down removed its files and the relay addresses"
else
    fail "tornet_down files" "left: $(cd "$TOPO_DIR" && echo *) / relay addresses $(relay_addrs_on_lo)"
fi
if topo_listening gw tcp "${SOCKS##*:}"; then
    fail "SOCKS port closed" "still listening"
else
    pass "SOCKS port closed"
fi

# ---------------------------------------------------------------- Ctrl-C mid-bootstrap
# A second run in its own process group (setsid), with SIGINT's default
# disposition restored (a background job of a non-interactive shell starts
# with SIGINT ignored), interrupted as a terminal's ^C would: SIGINT to the
# whole group, while its tors are bootstrapping.
CHILD=
stop_child() {
    [[ -n $CHILD ]] || return 0
    kill -INT -- "-$CHILD" 2>/dev/null
    topo_wait_until 15 "the interrupted run to exit" topo__not_alive "$CHILD" ||
        kill -KILL -- "-$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
    CHILD=
}
topo_on_down stop_child
# shellcheck disable=SC2317  # called through topo_wait_until
child_started() { compgen -G "$TOPO_TMP/ts-netns-$CHILD.??????/tor-client.log" >/dev/null; }
# shellcheck disable=SC2016  # expanded by the child
setsid env --default-signal=INT bash -c 'TOPO_CLIENTS=1; source "$1"; tornet_up; sleep 60' \
    child "$HERE/tornet.sh" >/dev/null 2>&1 </dev/null &
CHILD=$!
if ! topo_wait_until 30 "the second run's tors to start" child_started; then
    fail "Ctrl-C mid-bootstrap" "the second run did not start its tors"
    stop_child
else
    cdir=$(compgen -G "$TOPO_TMP/ts-netns-$CHILD.??????")
    ctors=$(tors_under "$cdir/tornet.")
    t=$(topo__now)
    kill -INT -- "-$CHILD"
    if topo_wait_until 15 "the interrupted run to exit" topo__not_alive "$CHILD"; then
        wait "$CHILD"
        crc=$?
        CHILD_PID=$CHILD
        CHILD=
        left=$(tors_under "$cdir/tornet.")$(for p in $ctors; do [[ -d /proc/$p && $(cat "/proc/$p/comm" 2>/dev/null) == tor ]] && echo " $p"; done)
        child_nss=$(topo_run_namespaces "ts-$CHILD_PID")
        if ((crc != 130)); then
            fail "Ctrl-C mid-bootstrap" "exit status $crc, not 130"
        elif [[ $(wc -w <<<"$ctors") != 4 ]]; then
            fail "Ctrl-C mid-bootstrap" "expected 4 tors running before ^C, saw '$ctors'"
        elif [[ -n $left || -n $child_nss || -e $cdir ]]; then
            fail "Ctrl-C mid-bootstrap" "left: tors '$left', namespaces '$child_nss', dir $(ls -d "$cdir" 2>/dev/null)"
        else
            pass "Ctrl-C mid-bootstrap: 4 tors, namespaces and files gone ($(secs_since "$t") s)"
        fi
    else
        fail "Ctrl-C mid-bootstrap" "the interrupted run did not exit within 15 s"
        stop_child
    fi
fi

finish
