#!/bin/bash
# test_tornet.sh - self-test of tornet.sh, the private Tor network of the tests.
#
# Prints "PASS name" / "FAIL name: why" lines and "N passed, N failed" (what
# test/run.sh counts); exits non-zero if anything failed.  Needs root, the
# Debian packages tor and curl, and what test/netns/topology.sh needs.
# Takes about 40 s.  Everything it starts goes away on success, on failure
# and on Ctrl-C (topology.sh's trap calls topo_down, which calls tornet_down).
#
#   TORNET_BOOT_SECS   deadline for the bootstrap (default 60)
#
# The network runs with two client instances (TORNET_CLIENT_INSTANCES=2)
# and the onion service (TORNET_ONION=1), whatever the environment says:
# the instances bootstrap side by side, so the second one costs next to
# nothing, and the onion service about 7.5 s of bootstrap, 10 s in all
# (README.md, "The onion service").  Every check of instance 0 is the same
# as with one client and no onion service.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/tor/tornet.sh
source "$HERE/tornet.sh"
TORNET_CLIENT_INSTANCES=2
TORNET_ONION=1

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
relay_addrs_on_lo() { # how many relay (and onion service) addresses the uplink's lo has
    local n=0 a
    for a in "${TORNET_ADDRS[@]}" "$(tornet_onion_service_addr)"; do
        ip -n "$TOPO_NS_UP" -4 -o addr show dev lo | grep -qF " $a/32 " && n=$((n + 1))
    done
    echo "$n"
}
# pids of the tors of TORNET_NAMES matching a pattern, sorted, on one line
pids_of() {
    local i
    for i in "${!TORNET_NAMES[@]}"; do
        # shellcheck disable=SC2053  # a pattern
        [[ ${TORNET_NAMES[i]} == $1 ]] && echo "${TORNET_PIDS[i]}"
    done | sort | tr '\n' ' '
}
# the v3 onion address of a 32-byte ed25519 public key (rend-spec-v3:
# base32(PUBKEY | CHECKSUM | VERSION), CHECKSUM = SHA3-256(".onion checksum"
# | PUBKEY | VERSION)[:2], VERSION = 3).  "onion_neg ADDR": the address of
# the key's negative (sign bit of x flipped): a valid ed25519 point of the
# same order, so a well-formed address nobody has.  "onion_check ADDR":
# is the checksum right?  (Random 32 bytes won't do for the first: tor
# rejects an address whose key is not a point of the prime-order group,
# with 0xF6, as it does a bad checksum.)
ONION_PY='
import base64, hashlib, sys
def addr(pk):
    ck = hashlib.sha3_256(b".onion checksum" + pk + b"\x03").digest()[:2]
    return base64.b32encode(pk + ck + b"\x03").decode().lower() + ".onion"
what, a = sys.argv[1], sys.argv[2]
raw = base64.b32decode(a[:56].upper())
if what == "check":
    sys.exit(0 if len(a) == 62 and raw[34] == 3 and addr(raw[:32]) == a else 1)
pk = bytearray(raw[:32])
pk[31] ^= 0x80
print(addr(bytes(pk)))
'
onion_neg() { "$TOPO_PY" -I -c "$ONION_PY" neg "$1"; }
onion_check() { "$TOPO_PY" -I -c "$ONION_PY" check "$1"; }

SOCKS=$(tornet_socks_addr)
SOCKS1=$(tornet_socks_addr 1)
EXIT=$(tornet_exit_addr)
# curl through the client's SOCKS port, from the gateway namespace where it
# listens; --max-time turns a hang into a failure (exit 28)
tcurl() { topo_exec "$TORNET_CLIENT_NS" curl -sS --max-time 20 --socks5-hostname "$SOCKS" "$@"; }
# icurl I [USER] CURLARGS...: the same through instance I, with SOCKS5
# username/password authentication as USER if USER is not empty
icurl() {
    local a
    a=$(tornet_socks_addr "$1") || return 1
    [[ -z $2 ]] || a="$2:pw@$a"
    shift 2
    topo_exec "$TORNET_CLIENT_NS" curl -sS --max-time 20 --proxy "socks5h://$a" "$@"
}

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
# tornet_up must stop what it started.  The network without the onion
# service (TORNET_ONION=0, three relays): it fails before the onion service
# would start, and its keys are made faster.
TORNET_ONION=0 TORNET_BOOT_SECS=1 tornet_up 2>"$TOPO_DIR/failed-up.err"
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
pass "bootstrap: $TORNET_CLIENTS_UP clients at 100% and the onion service reached after $BOOT s (consensus with every relay after $(tornet__ms "$TORNET_CONSENSUS_MS") s, then the clients $(tornet__ms "$TORNET_CLIENT_MS") s: instance 0 $(tornet__ms "${TORNET_CLIENT_BOOT_MS[0]}") s, instance 1 $(tornet__ms "${TORNET_CLIENT_BOOT_MS[1]}") s; the onion service's descriptor $(tornet__ms "$TORNET_ONION_DESC_MS") s, fetched $(tornet__ms "$TORNET_ONION_MS") s after its start, $TORNET_ONION_TRIES tries)"
phase=$(tornet_bootstrap_phase)
if [[ $phase == *PROGRESS=100* && $phase == *TAG=done* ]]; then
    pass "control port: status/bootstrap-phase PROGRESS=100 TAG=done"
else
    fail "control port" "status/bootstrap-phase: '$phase'"
fi
phase=$(tornet_bootstrap_phase 1)
if [[ $phase == *PROGRESS=100* && $phase == *TAG=done* ]]; then
    pass "instance 1's control port $(tornet_control_addr 1): PROGRESS=100 TAG=done"
else
    fail "instance 1's control port" "status/bootstrap-phase: '$phase'"
fi

# ---------------------------------------------------------------- where the tors run
up_tors=$(tors_in_ns up | sort | tr '\n' ' ')
gw_tors=$(tors_in_ns gw | sort | tr '\n' ' ')
check "five relays and the onion service in the uplink namespace" \
    "$(pids_of '@(auth[12]|exit3|relay[45]|onion)')" "$up_tors"
check "both clients in the gateway namespace" "$(pids_of 'client*')" "$gw_tors"
check "the tors: the relays, the clients, the onion service" \
    "auth1 auth2 exit3 relay4 relay5 client client1 onion" "${TORNET_NAMES[*]}"
check "tornet_client_pid 0, 1" "${TORNET_PIDS[$(tornet__index_of client)]} ${TORNET_PIDS[$(tornet__index_of client1)]}" \
    "$(tornet_client_pid 0) $(tornet_client_pid 1)"
bad=
for i in 0 1; do
    n=$(tornet__client_name "$i")
    grep -qxF "DataDirectory $TORNET_DIR/$n" "$TORNET_DIR/$n/torrc" || bad+=" $n:datadir"
    grep -q 'Bootstrapped 100%' "$TOPO_DIR/tor-$n.log" || bad+=" $n:log"
done
if [[ -z $bad ]]; then
    pass "each client has its own data directory and log (tor-client.log, tor-client1.log)"
else
    fail "clients' data directories and logs" "$bad"
fi
bad=
for i in "${!TORNET_PIDS[@]}"; do
    p=${TORNET_PIDS[i]}
    want=$TORNET_DIR/${TORNET_NAMES[i]}/torrc
    [[ $(tr '\0' ' ' <"/proc/$p/cmdline") == "$TORNET_TOR -f $want " ]] || bad+=" ${TORNET_NAMES[i]}:cmdline"
    want_ns=$TORNET_RELAY_NS
    [[ ${TORNET_NAMES[i]} == client* ]] && want_ns=$TORNET_CLIENT_NS
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
check "consensus lists the five relays" "auth1 auth2 exit3 relay4 relay5 " "$relays"
check "tornet_relays: the five ORPorts" \
    "203.0.113.1:9001 203.0.113.2:9001 203.0.113.3:9001 203.0.113.4:9001 203.0.113.5:9001 " \
    "$(tornet_relays | tr '\n' ' ')"
check "tornet_relays with TORNET_ONION=0 (before tornet_up): the three authorities" \
    "203.0.113.1:9001 203.0.113.2:9001 203.0.113.3:9001 " \
    "$(TORNET_DIR='' TORNET_ONION=0 tornet_relays | tr '\n' ' ')"
exitflags=$(awk '/^r exit3 /{x=1; next} x && /^s /{print; exit}' <<<"$nsall")
if [[ $exitflags == *Exit* && $exitflags == *Running* && $exitflags == *Valid* ]]; then
    pass "exit3 is a running, valid Exit"
else
    fail "exit flags" "exit3: '$exitflags'"
fi
# the onion service needs Stable relays (every hop of its introduction
# circuits) and HSDirs: every relay is Stable from the first consensus on;
# the HSDirs (and directory caches) are the authorities, not relay4/5
bad=
for r in auth1 auth2 exit3 relay4 relay5; do
    f=" $(awk -v r="$r" '$1 == "r" {x = ($2 == r); next} x && /^s /{print; exit}' <<<"$nsall") "
    [[ $f == *" Stable "* && $f == *" Running "* && $f == *" Valid "* ]] || bad+=" $r: '$f'"
    if [[ $r == relay* ]]; then
        [[ $f != *" HSDir "* && $f != *" V2Dir "* ]] || bad+=" $r: '$f'"
    else
        [[ $f == *" HSDir "* && $f == *" V2Dir "* ]] || bad+=" $r: '$f'"
    fi
done
if [[ -z $bad ]]; then
    pass "every relay is Stable and Running; the HSDirs are auth1, auth2, exit3"
else
    fail "Stable and HSDir flags" "$bad"
fi

# ---------------------------------------------------------------- the clients' ports
for i in 0 1; do
    a=$(tornet_socks_addr "$i")
    check "instance $i: SocksPort $a with IsolateSOCKSAuth ExtendedErrors (GETCONF)" \
        "250 SocksPort=$a IsolateSOCKSAuth ExtendedErrors" \
        "$(tornet_control_of "$i" GETCONF SocksPort 2>&1)"
done
check "the SOCKS ports are 9050 and 9060, the control ports 9051 and 9061" \
    "127.0.0.1:9050 127.0.0.1:9060 127.0.0.1:9051 127.0.0.1:9061" \
    "$SOCKS $SOCKS1 $(tornet_control_addr 0) $(tornet_control_addr 1)"

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

# ---------------------------------------------------------------- the second instance
t=$(topo__now)
body=$(icurl 1 "" "http://$TOPO_HTTP4/?$tag-i1" 2>&1)
check "GET http://$TOPO_HTTP4/ through instance 1 ($SOCKS1, $(secs_since "$t") s)" \
    "torsieve-uplink http $TOPO_HTTP4:80" "$body"
line=$(grep -F "GET /?$tag-i1" "$LOG")
check "server saw instance 1's request from the exit $EXIT" \
    "http $TOPO_HTTP4:80 from $EXIT GET /?$tag-i1" "$line"

# IsolateSOCKSAuth: two SOCKS usernames through one instance, two circuits.
# circuit-status shows the username on the circuit its streams were
# attached to ("ID BUILT PATH ... PURPOSE=CONFLUX_LINKED ...
# SOCKS_USERNAME="alice" SOCKS_PASSWORD="pw" CONFLUX_ID=... CONFLUX_RTT=...";
# tor 0.4.9 puts such streams on conflux-linked sets of two circuits, and
# only the leg that carried the stream shows the username).  Different
# circuits, and different conflux sets where there are any.
bad=
for u in alice bob alice; do
    body=$(icurl 1 "$u" "http://$TOPO_HTTP4/?$tag-$u" 2>&1)
    [[ $body == "torsieve-uplink http $TOPO_HTTP4:80" ]] || bad+=" $u: '$body'"
done
circ1=$(tornet_control_of 1 GETINFO circuit-status)
ca=$(grep -E '^[0-9]+ BUILT .* SOCKS_USERNAME="alice"( |$)' <<<"$circ1")
cb=$(grep -E '^[0-9]+ BUILT .* SOCKS_USERNAME="bob"( |$)' <<<"$circ1")
ida=$(awk '{print $1}' <<<"$ca" | sort -u | tr '\n' ' ')
idb=$(awk '{print $1}' <<<"$cb" | sort -u | tr '\n' ' ')
cfa=$(grep -o 'CONFLUX_ID=[0-9A-F]*' <<<"$ca" | sort -u)
cfb=$(grep -o 'CONFLUX_ID=[0-9A-F]*' <<<"$cb" | sort -u)
if [[ -n $bad ]]; then
    fail "SOCKS username isolation" "requests failed:$bad"
elif [[ -z $ca || -z $cb ]]; then
    fail "SOCKS username isolation" "no BUILT circuit with SOCKS_USERNAME=\"alice\" or \"bob\": $(grep -c . <<<"$circ1") lines: $(grep SOCKS_USERNAME <<<"$circ1")"
elif comm -12 <(tr ' ' '\n' <<<"$ida" | sort) <(tr ' ' '\n' <<<"$idb" | sort) | grep -q . ||
    [[ -n $cfa && -n $(comm -12 <(echo "$cfa") <(echo "$cfb")) ]]; then
    fail "SOCKS username isolation" "alice and bob share a circuit: $ca / $cb"
else
    pass "instance 1: SOCKS users alice and bob on different circuits (circuit-status: alice ${ida% }, bob ${idb% }${cfa:+; different conflux sets})"
fi

# ExtendedErrors: an invalid onion address gets the extended reply 0xF6
# (246), not the general failure 1 tor sends without the flag
for i in 0 1; do
    out=$(icurl "$i" "" http://aaaa.onion/ 2>&1)
    rc=$?
    if ((rc == 97)) && [[ $out == *"(246)"* ]]; then
        pass "instance $i: ExtendedErrors: invalid .onion address gets SOCKS5 reply 0xF6"
    else
        fail "instance $i: ExtendedErrors" "curl exit $rc: $out"
    fi
done

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

# ---------------------------------------------------------------- the onion service
ONION=$(tornet_onion_addr)
OSRC=$(tornet_onion_service_addr)
if [[ ${#ONION} == 62 && $ONION =~ ^[a-z2-7]{56}\.onion$ ]] && onion_check "$ONION"; then
    pass "tornet_onion_addr: $ONION (62 characters, v3 checksum and version right)"
else
    fail "tornet_onion_addr" "'$ONION'"
fi
otorrc=$TORNET_DIR/onion/torrc
if grep -qxF "HiddenServicePort 80 $TOPO_HTTP4:80" "$otorrc" &&
    grep -qxF "HiddenServicePort 443 $TOPO_HTTP4:443" "$otorrc" &&
    ! grep -qiE 'SingleHop|NonAnonymous|SocksPort [^0]' "$otorrc"; then
    pass "onion service: ports 80 and 443 to $TOPO_HTTP4, an ordinary (3-hop) service, no SOCKS port"
else
    fail "onion service's torrc" "$(grep -iE 'HiddenService|SingleHop|NonAnonymous|SocksPort' "$otorrc")"
fi

for port in 80 443; do
    url=http://$ONION/
    ((port == 80)) || url=http://$ONION:$port/
    t=$(topo__now)
    body=$(tcurl "$url?$tag-onion$port" 2>&1)
    check "GET $url through instance 0 ($(secs_since "$t") s)" \
        "torsieve-uplink http $TOPO_HTTP4:$port" "$body"
    check "server saw it from the onion service $OSRC, not the exit" \
        "http $TOPO_HTTP4:$port from $OSRC GET /?$tag-onion$port" \
        "$(grep -F "GET /?$tag-onion$port" "$LOG")"
done
# instance 1 has not looked the service up before: HSDir, introduction,
# rendezvous, all in this one request
t=$(topo__now)
body=$(icurl 1 "" "http://$ONION/?$tag-onion-i1" 2>&1)
check "GET http://$ONION/ through instance 1, its first lookup ($(secs_since "$t") s)" \
    "torsieve-uplink http $TOPO_HTTP4:80" "$body"
# the client's side of the rendezvous: a 3-hop circuit of its own to the
# rendezvous point, joined with the service's
hop='\$[0-9A-F]{40}~[a-z0-9]+'
rend=$(tornet_control GETINFO circuit-status |
    grep -E "^[0-9]+ BUILT $hop,$hop,$hop .*PURPOSE=HS_CLIENT_REND HS_STATE=HSCR_JOINED REND_QUERY=${ONION%.onion}( |\$)")
if [[ -n $rend ]]; then
    pass "instance 0: a joined 3-hop rendezvous circuit for ${ONION%.onion} (circuit ${rend%% *})"
else
    fail "rendezvous circuit" "$(tornet_control GETINFO circuit-status | grep -F REND)"
fi
# a port the service does not have
t=$(topo__now)
out=$(tcurl "http://$ONION:81/" 2>&1)
rc=$?
el=$(secs_since "$t")
if ((rc == 97)) && [[ $out == *"(5)" ]]; then
    pass "port 81 of the onion (not a HiddenServicePort): SOCKS5 reply 5, connection refused, in $el s"
else
    fail "port 81 of the onion" "curl exit $rc after $el s: $out"
fi
# a bad checksum: one character of the key changed
c=${ONION:10:1}
n=a
[[ $c == a ]] && n=b
bad_onion=${ONION:0:10}$n${ONION:11}
t=$(topo__now)
out=$(tcurl "http://$bad_onion/" 2>&1)
rc=$?
el=$(secs_since "$t")
if ((rc == 97)) && [[ $out == *"(246)"* ]] && ! onion_check "$bad_onion"; then
    pass "$bad_onion (bad checksum): SOCKS5 reply 0xF6 in $el s"
else
    fail "bad checksum" "curl exit $rc after $el s: $out"
fi
# well-formed, nobody's: every HSDir answers 404, tor replies 0xF0
# (descriptor not found)
nx=$(onion_neg "$ONION")
for i in 0 1; do
    t=$(topo__now)
    out=$(icurl "$i" "" "http://$nx/" 2>&1)
    rc=$?
    el=$(secs_since "$t")
    if ((rc == 97)) && [[ $out == *"(240)"* ]] && onion_check "$nx" &&
        (($(topo__now) - t < 10000000)); then
        pass "instance $i: $nx (well-formed, no descriptor): SOCKS5 reply 0xF0 in $el s"
    else
        fail "instance $i: onion without descriptor" "curl exit $rc after $el s: $out"
    fi
done

# ---------------------------------------------------------------- stop one instance
pid1=$(tornet_client_pid 1)
start1=$(topo__starttime "$pid1")
t=$(topo__now)
if tornet_stop_client 1; then
    pass "tornet_stop_client 1 ($(secs_since "$t") s)"
else
    fail "tornet_stop_client 1" "returned non-zero"
fi
if [[ $(topo__starttime "$pid1" 2>/dev/null) != "$start1" ]] && ! tornet_client_pid 1 >/dev/null; then
    pass "instance 1's tor (pid $pid1) is gone, tornet_client_pid 1 fails"
else
    fail "instance 1 stopped" "pid $pid1 still there or tornet_client_pid 1 answers"
fi
out=$(icurl 1 "" "http://$TOPO_HTTP4/" 2>&1)
rc=$?
if ((rc == 7)) && ! topo_listening gw tcp "${SOCKS1##*:}" &&
    ! topo_listening gw tcp "$(tornet_control_addr 1 | sed 's/.*://')"; then
    pass "instance 1's SOCKS port $SOCKS1 refuses (curl 7), its control port is closed"
else
    fail "instance 1's ports closed" "curl exit $rc: $out"
fi
body=$(tcurl "http://$TOPO_HTTP4/?$tag-after-stop" 2>&1)
check "instance 0 still fetches through $SOCKS after instance 1 stopped" \
    "torsieve-uplink http $TOPO_HTTP4:80" "$body"
check "server saw it from the exit" "http $TOPO_HTTP4:80 from $EXIT GET /?$tag-after-stop" \
    "$(grep -F "GET /?$tag-after-stop" "$LOG")"
check "the relays, the onion service and instance 0 still run" \
    "$(pids_of '!(client1)')" \
    "$( (tors_in_ns up; tors_in_ns gw) | sort | tr '\n' ' ')"
body=$(tcurl "http://$ONION/?$tag-onion-after-stop" 2>&1)
check "instance 0 still reaches the onion service" "torsieve-uplink http $TOPO_HTTP4:80" "$body"

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
if topo_listening gw tcp "${SOCKS##*:}" || topo_listening gw tcp "${SOCKS1##*:}"; then
    fail "SOCKS ports closed" "still listening"
else
    pass "SOCKS ports closed"
fi

# ---------------------------------------------------------------- Ctrl-C mid-bootstrap
# A second run in its own process group (setsid), with SIGINT's default
# disposition restored (a background job of a non-interactive shell starts
# with SIGINT ignored), interrupted as a terminal's ^C would: SIGINT to the
# whole group, while its tors are bootstrapping.  It runs two clients
# too, and no onion service (TORNET_ONION=0, the default network: the onion
# service's tor starts only after the first consensus, 10 s in): 5 tors.
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
child_started() { compgen -G "$TOPO_TMP/ts-netns-$CHILD.??????/tor-client1.log" >/dev/null; }
# shellcheck disable=SC2317
child_tors() { [[ $(tors_under "$cdir/tornet." | wc -l) == 5 ]]; }
# shellcheck disable=SC2016  # expanded by the child
setsid env --default-signal=INT bash -c 'TOPO_CLIENTS=1 TORNET_CLIENT_INSTANCES=2 TORNET_ONION=0; source "$1"; tornet_up; sleep 60' \
    child "$HERE/tornet.sh" >/dev/null 2>&1 </dev/null &
CHILD=$!
if ! topo_wait_until 30 "the second run's tors to start" child_started; then
    fail "Ctrl-C mid-bootstrap" "the second run did not start its tors"
    stop_child
else
    cdir=$(compgen -G "$TOPO_TMP/ts-netns-$CHILD.??????")
    # a tor is a "tor" once "ip netns exec" has exec'd it
    topo_wait_until 2 "the second run's 5 tors" child_tors
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
        elif [[ $(wc -w <<<"$ctors") != 5 ]]; then
            fail "Ctrl-C mid-bootstrap" "expected 5 tors running before ^C, saw '$ctors'"
        elif [[ -n $left || -n $child_nss || -e $cdir ]]; then
            fail "Ctrl-C mid-bootstrap" "left: tors '$left', namespaces '$child_nss', dir $(ls -d "$cdir" 2>/dev/null)"
        else
            pass "Ctrl-C mid-bootstrap: 5 tors, namespaces and files gone ($(secs_since "$t") s)"
        fi
    else
        fail "Ctrl-C mid-bootstrap" "the interrupted run did not exit within 15 s"
        stop_child
    fi
fi

finish
