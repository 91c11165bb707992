#!/bin/bash
# shellcheck disable=SC2034  # many variables are there for the tests that source this
# topology.sh - network-namespace test topology for the inline gateway.
#
#   client K (ts-PID-cK)        gateway (ts-PID-gw)              uplink (ts-PID-up)
#   eth0 192.0.2.(10+K)/24 --- lanK -+- br0 192.0.2.1/24            "the internet"
#        2001:db8:1::(10+K)/64       |      2001:db8:1::1/64
#        default via 192.0.2.1 /     |  up0 198.51.100.1/24 ------- eth0 198.51.100.2/24
#        2001:db8:1::1               |      2001:db8:2::1/64             2001:db8:2::2/64
#                    (one veth per client)                           lo   203.0.113.80, 2001:db8:3::80
#                                                                         http :80 and :443
#                                                                         203.0.113.53, 2001:db8:3::53
#                                                                         dns udp+tcp :53
#   tcpdump -Q in on the uplink's eth0 records everything that arrives from the gateway.
#
# The gateway does NOT forward (ip_forward 0, IPv6 forwarding 0) until a test
# calls topo_forwarding on: fail closed.  test/netns/README.md has the address
# plan and explains how later tests (the NFQUEUE gateway, the leak battery)
# use this file.
#
# As a library:   source test/netns/topology.sh; topo_up; ...; topo_down
#                 (topo_up installs an EXIT/INT/TERM/HUP trap that calls topo_down)
# As a command:   topology.sh up [CLIENTS]   build a topology that stays up
#                 topology.sh down [RUN]     remove it (RUN like ts-1234; default all
#                                            runs made by "up" and all stale ones)
#                 topology.sh status [RUN]   show namespaces, addresses, processes
#                 topology.sh cleanup        remove leftovers of runs whose owner is gone
#
# Helpers (each documented where it is defined):
#   topo_up / topo_down / topo_on_down FUNC / topo_cleanup_stale [--all]
#   topo_ns NAME, topo_exec NS CMD..., topo_bg NS NAME CMD...  (NS: gw up c1 c2 ...)
#   topo_forwarding on|off [4|6|all], topo_forwarding_state
#   topo_capture_start [NAME] / topo_capture_stop  (TOPO_PCAP), topo_marker
#   topo_count PCAP FILTER, topo_count_leaks PCAP, topo_show_leaks PCAP,
#   topo_count_foreign PCAP, topo_leak_filter, topo_foreign_filter
#   topo_wait_until SECS WHAT CMD..., topo_listening / topo_wait_listen NS tcp|udp PORT [ADDR]
#   topo_client_ip4 K, topo_client_ip6 K, topo_client_mac K, topo_status [RUN]
#
# Everything lives inside namespaces this file creates: veth pairs are created
# directly inside them, so the root namespace never sees an interface, a route,
# an address, a firewall rule or a sysctl of ours.  Needs root, iproute2 (ip,
# ss), tcpdump and /usr/bin/python3; the self-test also uses curl, dig
# (bind9-dnsutils) and ping (iputils-ping).

# Sourcing twice is harmless.
if [[ -n ${TOPO__LOADED:-} && ${BASH_SOURCE[0]} != "$0" ]]; then
    return 0
fi
TOPO__LOADED=1

TOPO_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOPO_PY=${TOPO_PY:-/usr/bin/python3}
TOPO_TMP=${TOPO_TMP:-/tmp}              # where each run's directory goes
TOPO_CLIENTS=${TOPO_CLIENTS:-2}         # number of client namespaces (1..50)

# ---------------------------------------------------------------- address plan
# Documentation addresses only (RFC 5737, RFC 3849); they exist only inside
# the namespaces below.
TOPO_CLIENT_NET4=192.0.2.0/24
TOPO_CLIENT_NET6=2001:db8:1::/64
TOPO_GW_LAN4=192.0.2.1                  # br0, the clients' default router
TOPO_GW_LAN6=2001:db8:1::1
TOPO_GW_UP4=198.51.100.1                # gateway's uplink veth (up0)
TOPO_GW_UP6=2001:db8:2::1
TOPO_UP4=198.51.100.2                   # uplink namespace's veth (eth0)
TOPO_UP6=2001:db8:2::2
TOPO_HTTP4=203.0.113.80                 # "internet" HTTP server, ports 80 and 443
TOPO_HTTP6=2001:db8:3::80
TOPO_DNS4=203.0.113.53                  # "internet" DNS server, udp+tcp 53
TOPO_DNS6=2001:db8:3::53
TOPO_DNS_NAME=www.example.test          # resolves to TOPO_HTTP4 / TOPO_HTTP6
# Fixed, locally administered MACs (02:00 + the IPv4 address) so captures
# are readable and the leak detector can match a client's frames by MAC.
TOPO_GW_LAN_MAC=02:00:c0:00:02:01       # br0
TOPO_GW_UP_MAC=02:00:c6:33:64:01        # up0
TOPO_UP_MAC=02:00:c6:33:64:02           # uplink eth0
TOPO_MARKER_ETHERTYPE=0x88b5            # IEEE 802 local experimental: capture markers

topo_client_ip4()  { echo "192.0.2.$((10 + $1))"; }            # client K
topo_client_ip6()  { echo "2001:db8:1::$((10 + $1))"; }
topo_client_mac()  { printf '02:00:c0:00:02:%02x\n' $((10 + $1)); }
topo_gw_port_mac() { printf '02:00:c0:00:03:%02x\n' $((10 + $1)); }  # lanK in the gateway

# ---------------------------------------------------------------- run state
# Set by topo_up, cleared by topo_down.
TOPO_RUN=${TOPO_RUN:-}          # ts-<owner pid>; namespaces are $TOPO_RUN-gw, -up, -c1..
TOPO_NS_GW=
TOPO_NS_UP=
TOPO_NS_CLIENTS=()
TOPO_DIR=                       # run directory: logs, pcaps, owner file
TOPO_PIDS=()                    # background processes started by topo_bg
TOPO_CAPTURE_PID=
TOPO_PCAP=                      # the current / last capture file
TOPO_DOWN_HOOKS=()              # functions topo_down calls first (topo_on_down)
TOPO__TRAP=0

topo_log() { printf 'topology: %s\n' "$*" >&2; }
topo_err() { printf 'topology: error: %s\n' "$*" >&2; return 1; }

# Never let a proxy setting send a test's curl anywhere else.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
    no_proxy NO_PROXY CURL_HOME 2>/dev/null || true

# ---------------------------------------------------------------- waiting

topo__now() { echo "${EPOCHREALTIME//[!0-9]/}"; }   # microseconds (any locale)

# topo_wait_until SECONDS DESCRIPTION CMD...
# Poll CMD (every 20 ms) until it succeeds; fail with a message at the deadline.
topo_wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(($(topo__now) + ${secs%.*} * 1000000))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        if (($(topo__now) > deadline)); then
            topo_err "timed out after ${secs}s waiting for $what"
            return 1
        fi
        sleep 0.02
    done
}

# topo_listening NS tcp|udp PORT [ADDR]: is a socket listening (checked with
# ss inside the namespace: sends no packet)?
topo_listening() {
    local ns out
    ns=$(topo_ns "$1") || return 1
    out=$(ip netns exec "$ns" ss -H -ln "--$2" "sport = :$3" 2>/dev/null) || return 1
    [[ -n $out ]] || return 1
    if [[ -n ${4:-} ]]; then
        if [[ $4 == *:* ]]; then
            grep -qF "[$4]:$3 " <<<"$out"
        else
            grep -qF " $4:$3 " <<<"$out"
        fi
    fi
}

# topo_wait_listen NS tcp|udp PORT [ADDR [SECONDS]]
topo_wait_listen() {
    topo_wait_until "${5:-5}" "$2 ${4:-*}:$3 listening in $1" topo_listening "$1" "$2" "$3" "${4:-}"
}

topo__link_up() {   # NS DEV: operstate UP with carrier
    ip -n "$1" -o link show dev "$2" 2>/dev/null | grep -q 'LOWER_UP.* state UP '
}

topo__no_tentative() {   # NS: no IPv6 address waiting for DAD
    [[ -z $(ip -n "$1" -6 addr show tentative 2>/dev/null) ]]
}

topo__alive() { kill -0 "$1" 2>/dev/null; }
topo__not_alive() { ! kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- names

# topo_ns NAME: full namespace name for gw, up, c1, c2, ... (or a full name)
topo_ns() {
    case $1 in
    gw | up | c[0-9]*)
        [[ -n $TOPO_RUN ]] || { topo_err "no topology is up"; return 1; }
        echo "$TOPO_RUN-$1"
        ;;
    *) echo "$1" ;;
    esac
}

# topo_exec NS CMD...: run CMD inside namespace NS (gw, up, c1, ... or full name)
topo_exec() {
    local ns
    ns=$(topo_ns "$1") || return 1
    shift
    ip netns exec "$ns" "$@"
}

# topo_bg NS NAME CMD...: start CMD in the background inside NS, output to
# $TOPO_DIR/NAME.log; its pid goes to TOPO_LAST_PID and TOPO_PIDS.  Call it
# from the main shell (not in $(...)), so the process is this shell's child.
topo_bg() {
    local ns name=$2
    ns=$(topo_ns "$1") || return 1
    shift 2
    # "ip netns exec" execs CMD, so $! is the program itself.
    ip netns exec "$ns" "$@" </dev/null >"$TOPO_DIR/$name.log" 2>&1 &
    TOPO_LAST_PID=$!
    TOPO_PIDS+=("$TOPO_LAST_PID")
}

# topo_run_namespaces RUN: the namespaces of a run that exist now
topo_run_namespaces() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$1-(gw|up|c[0-9]+)\$" || true
}

# ---------------------------------------------------------------- owner / stale

topo__starttime() {   # PID: start time in clock ticks (field 22 of /proc/PID/stat)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}

# topo__owner_alive PID [ALL]: is the run of PID still owned by a live process?
# A run made by "topology.sh up" (mode persist) counts as alive unless ALL.
topo__owner_alive() {
    local pid=$1 all=${2:-} f owner start mode
    for f in "$TOPO_TMP"/ts-netns-"$pid".*/owner; do
        [[ -r $f ]] || continue
        read -r owner start mode <"$f" || continue
        if [[ $mode == persist ]]; then
            [[ -n $all ]] && return 1
            return 0
        fi
        [[ $(topo__starttime "$pid" 2>/dev/null) == "$start" ]]
        return
    done
    # no owner file: alive as long as the pid exists (never remove a live run)
    [[ -d /proc/$pid ]]
}

# pids in the namespaces named by the caller's array "nss" (bash dynamic scope)
topo__ns_pids() {
    local n p
    for n in "${nss[@]}"; do
        for p in $(ip netns pids "$n" 2>/dev/null); do
            [[ $p == "$$" || $p == "$BASHPID" ]] || echo "$p"
        done
    done
}
topo__ns_empty() { [[ -z $(topo__ns_pids) ]]; }

# topo__remove_run RUN: kill every process in the run's namespaces, delete them.
topo__remove_run() {
    local run=$1 ns nss pids rc=0
    mapfile -t nss < <(topo_run_namespaces "$run")
    ((${#nss[@]})) || return 0
    pids=$(topo__ns_pids)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        if ! topo_wait_until 3 "processes in $run to exit" topo__ns_empty 2>/dev/null; then
            pids=$(topo__ns_pids)
            # shellcheck disable=SC2086
            [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
            topo_wait_until 3 "processes in $run to die" topo__ns_empty || rc=1
        fi
    fi
    for ns in "${nss[@]}"; do
        ip netns del "$ns" 2>/dev/null || { [[ ! -e /run/netns/$ns ]] || rc=1; }
    done
    [[ -z $(topo_run_namespaces "$run") ]] || rc=1
    return $rc
}

# topo_cleanup_stale [--all]: remove namespaces, processes and run directories
# of runs whose owner process is gone (a killed test).  --all also removes
# runs made by "topology.sh up".  Live runs of other tests are never touched.
topo_cleanup_stale() {
    local all=${1:-} ns pid run d seen=" "
    [[ $all == --all ]] || all=
    while read -r ns; do
        [[ $ns =~ ^ts-([0-9]+)-(gw|up|c[0-9]+)$ ]] || continue
        pid=${BASH_REMATCH[1]}
        run=ts-$pid
        [[ $seen == *" $run "* ]] && continue
        seen+="$run "
        [[ $run == "$TOPO_RUN" ]] && continue
        topo__owner_alive "$pid" "$all" && continue
        topo_log "removing leftover run $run"
        topo__remove_run "$run" || topo_log "could not fully remove $run"
    done < <(ip netns list 2>/dev/null | awk '{print $1}')
    for d in "$TOPO_TMP"/ts-netns-*.??????; do
        [[ -d $d ]] || continue
        [[ $d == "$TOPO_DIR" ]] && continue
        pid=${d##*/ts-netns-}
        pid=${pid%%.*}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        topo__owner_alive "$pid" "$all" && continue
        [[ -n $(topo_run_namespaces "ts-$pid") ]] && continue
        rm -rf -- "$d"
    done
    return 0
}

# ---------------------------------------------------------------- checks

topo_check_tools() {
    local missing=0 t
    if [[ $(id -u) -ne 0 ]]; then
        topo_err "must run as root (ip netns, tcpdump)"
        return 2
    fi
    for t in ip:iproute2 ss:iproute2 tcpdump:tcpdump; do
        command -v "${t%%:*}" >/dev/null 2>&1 ||
            { topo_err "missing '${t%%:*}': install Debian package ${t#*:}"; missing=1; }
    done
    [[ -x $TOPO_PY ]] || { topo_err "missing $TOPO_PY: install Debian package python3"; missing=1; }
    ((missing == 0)) || return 2
}

# ---------------------------------------------------------------- building

topo__ns_add() {   # NS: create, loopback up, fail-closed sysctls
    local ns=$1
    ip netns add "$ns" || return 1
    # Before any interface exists, so every interface inherits "default":
    # no DAD (addresses are usable at once), no router advertisements or
    # solicitations, no forwarding.
    ip netns exec "$ns" sysctl -q -w \
        net.ipv4.ip_forward=0 \
        net.ipv6.conf.all.forwarding=0 \
        net.ipv6.conf.default.forwarding=0 \
        net.ipv6.conf.all.disable_ipv6=0 \
        net.ipv6.conf.default.disable_ipv6=0 \
        net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 \
        net.ipv6.conf.default.accept_ra=0 \
        net.ipv6.conf.all.router_solicitations=0 \
        net.ipv6.conf.default.router_solicitations=0 \
        >/dev/null || return 1
    ip -n "$ns" link set lo up
}

topo__build() {
    local k c gw=$TOPO_NS_GW up=$TOPO_NS_UP
    topo__ns_add "$gw" || return 1
    topo__ns_add "$up" || return 1
    for c in "${TOPO_NS_CLIENTS[@]}"; do
        topo__ns_add "$c" || return 1
    done
    # The gateway is a deliberately plain router: strict reverse-path
    # filtering off (the leak tests must see what a leaky gateway forwards;
    # the real gateway's protection is torsieve and its firewall).
    ip netns exec "$gw" sysctl -q -w net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0 >/dev/null || return 1
    # br_netfilter: with bridge-nf-call-ip{,6}tables=1 frames bridged between
    # two clients on br0 go through the gateway's iptables FORWARD chain,
    # forwarding on or off.  Set explicitly (TOPO_BRIDGE_NF, default 1, the
    # kernel's per-namespace default) so every machine behaves alike; where
    # br_netfilter is not loaded the sysctls do not exist and nothing is
    # loaded (that would change the host).
    if ip netns exec "$gw" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
        ip netns exec "$gw" sysctl -q -w \
            "net.bridge.bridge-nf-call-iptables=${TOPO_BRIDGE_NF:-1}" \
            "net.bridge.bridge-nf-call-ip6tables=${TOPO_BRIDGE_NF:-1}" >/dev/null || return 1
    fi

    # --- the hotspot bridge
    ip -n "$gw" link add br0 address "$TOPO_GW_LAN_MAC" type bridge \
        stp_state 0 forward_delay 0 mcast_snooping 0 || return 1
    ip -n "$gw" addr add "$TOPO_GW_LAN4/24" dev br0 || return 1
    ip -n "$gw" -6 addr add "$TOPO_GW_LAN6/64" dev br0 nodad || return 1
    ip -n "$gw" link set br0 up || return 1
    k=0
    for c in "${TOPO_NS_CLIENTS[@]}"; do
        k=$((k + 1))
        # created inside the client namespace, peer created inside the gateway
        ip -n "$c" link add eth0 address "$(topo_client_mac $k)" type veth \
            peer name "lan$k" address "$(topo_gw_port_mac $k)" netns "$gw" || return 1
        ip -n "$gw" link set "lan$k" master br0 up || return 1
        ip -n "$c" addr add "$(topo_client_ip4 $k)/24" dev eth0 || return 1
        ip -n "$c" -6 addr add "$(topo_client_ip6 $k)/64" dev eth0 nodad || return 1
        ip -n "$c" link set eth0 up || return 1
        ip -n "$c" route add default via "$TOPO_GW_LAN4" dev eth0 || return 1
        ip -n "$c" -6 route add default via "$TOPO_GW_LAN6" dev eth0 || return 1
    done

    # --- the uplink
    ip -n "$gw" link add up0 address "$TOPO_GW_UP_MAC" type veth \
        peer name eth0 address "$TOPO_UP_MAC" netns "$up" || return 1
    ip -n "$gw" addr add "$TOPO_GW_UP4/24" dev up0 || return 1
    ip -n "$gw" -6 addr add "$TOPO_GW_UP6/64" dev up0 nodad || return 1
    ip -n "$gw" link set up0 up || return 1
    ip -n "$up" addr add "$TOPO_UP4/24" dev eth0 || return 1
    ip -n "$up" -6 addr add "$TOPO_UP6/64" dev eth0 nodad || return 1
    ip -n "$up" link set eth0 up || return 1
    # the "internet" servers' addresses
    ip -n "$up" addr add "$TOPO_HTTP4/32" dev lo || return 1
    ip -n "$up" addr add "$TOPO_DNS4/32" dev lo || return 1
    ip -n "$up" -6 addr add "$TOPO_HTTP6/128" dev lo nodad || return 1
    ip -n "$up" -6 addr add "$TOPO_DNS6/128" dev lo nodad || return 1
    # gateway: the internet is behind the uplink
    ip -n "$gw" route add default via "$TOPO_UP4" dev up0 || return 1
    ip -n "$gw" -6 route add default via "$TOPO_UP6" dev up0 || return 1
    # uplink: routes the hotspot's prefixes to the gateway (no NAT anywhere),
    # so a leaky gateway's forwarded packets get answers; no default route.
    ip -n "$up" route add "$TOPO_CLIENT_NET4" via "$TOPO_GW_UP4" dev eth0 || return 1
    ip -n "$up" -6 route add "$TOPO_CLIENT_NET6" via "$TOPO_GW_UP6" dev eth0 || return 1

    # --- ready: every link up, no address still tentative
    local pairs=("$gw:br0" "$gw:up0" "$up:eth0") p
    for ((k = 1; k <= ${#TOPO_NS_CLIENTS[@]}; k++)); do
        pairs+=("$gw:lan$k" "${TOPO_NS_CLIENTS[k - 1]}:eth0")
    done
    for p in "${pairs[@]}"; do
        topo_wait_until 5 "link ${p#*:} up in ${p%%:*}" topo__link_up "${p%%:*}" "${p#*:}" || return 1
    done
    for c in "$gw" "$up" "${TOPO_NS_CLIENTS[@]}"; do
        topo_wait_until 5 "IPv6 addresses in $c to leave DAD" topo__no_tentative "$c" || return 1
    done
}

topo__start_servers() {
    topo_bg up servers "$TOPO_PY" -I "$TOPO_HERE/uplink_servers.py" \
        --http "$TOPO_HTTP4:80" --http "$TOPO_HTTP4:443" \
        --http "[$TOPO_HTTP6]:80" --http "[$TOPO_HTTP6]:443" \
        --dns "$TOPO_DNS4:53" --dns "[$TOPO_DNS6]:53" \
        --eof-echo "$TOPO_HTTP4:7" --eof-echo "[$TOPO_HTTP6]:7" || return 1
    TOPO_SERVERS_PID=$TOPO_LAST_PID
    local w
    for w in "tcp 80 $TOPO_HTTP4" "tcp 443 $TOPO_HTTP4" "tcp 80 $TOPO_HTTP6" \
        "tcp 443 $TOPO_HTTP6" "tcp 53 $TOPO_DNS4" "udp 53 $TOPO_DNS4" \
        "tcp 53 $TOPO_DNS6" "udp 53 $TOPO_DNS6" "tcp 7 $TOPO_HTTP4" "tcp 7 $TOPO_HTTP6"; do
        # shellcheck disable=SC2086
        set -- $w
        topo_wait_listen up "$1" "$2" "$3" 5 || {
            sed 's/^/    servers: /' "$TOPO_DIR/servers.log" >&2
            return 1
        }
    done
}

# topo_up: build the whole topology (forwarding off), start the uplink's
# servers and wait until they listen.  Sets TOPO_RUN, TOPO_NS_GW, TOPO_NS_UP,
# TOPO_NS_CLIENTS, TOPO_DIR.  Installs an EXIT/INT/TERM/HUP trap that calls
# topo_down (TOPO_NO_TRAP=1: the caller must call topo_down itself).  If the
# caller defined TOPO_GW_SETUP (a function name), it is called last, with
# forwarding still off: the place for the gateway's firewall and torsieve.
topo_up() {
    local mode=${TOPO__MODE:-run} k
    topo_check_tools || return
    [[ -z $TOPO_RUN ]] || { topo_err "topology $TOPO_RUN is already up"; return 1; }
    if ! [[ $TOPO_CLIENTS =~ ^[0-9]+$ ]] || ((TOPO_CLIENTS < 1 || TOPO_CLIENTS > 50)); then
        topo_err "TOPO_CLIENTS must be 1..50"
        return 1
    fi
    topo_cleanup_stale

    local owner=$BASHPID
    TOPO_RUN=ts-$owner
    # the trap first: from here on any exit removes whatever exists
    if [[ ${TOPO_NO_TRAP:-0} != 1 ]]; then
        trap 'topo__on_exit' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
        TOPO__TRAP=1
    fi
    # our own pid's leftovers (an earlier topo_up of this shell that never got down)
    topo__remove_run "$TOPO_RUN" || { topo_err "cannot remove old $TOPO_RUN"; TOPO_RUN=; return 1; }
    TOPO_DIR=$(mktemp -d "$TOPO_TMP/ts-netns-$owner.XXXXXX") || { TOPO_RUN=; return 1; }
    chmod 755 "$TOPO_DIR"
    echo "$owner $(topo__starttime "$owner") $mode" >"$TOPO_DIR/owner"
    TOPO_NS_GW=$TOPO_RUN-gw
    TOPO_NS_UP=$TOPO_RUN-up
    TOPO_NS_CLIENTS=()
    for ((k = 1; k <= TOPO_CLIENTS; k++)); do
        TOPO_NS_CLIENTS+=("$TOPO_RUN-c$k")
    done
    TOPO_PIDS=()

    if ! topo__build; then
        topo_err "building the topology failed"
        topo_down
        return 1
    fi
    if ! topo__start_servers; then
        topo_err "the uplink servers did not start"
        topo_down
        return 1
    fi
    if [[ -n ${TOPO_GW_SETUP:-} ]]; then
        if ! "$TOPO_GW_SETUP"; then
            topo_err "TOPO_GW_SETUP ($TOPO_GW_SETUP) failed"
            topo_down
            return 1
        fi
    fi
    return 0
}

topo__on_exit() {
    local rc=$?
    topo_down
    exit "$rc"
}

# topo_on_down FUNC: call FUNC at the start of topo_down (stop torsieve, save logs)
topo_on_down() { TOPO_DOWN_HOOKS+=("$1"); }

# topo_down: stop captures and every process inside the run's namespaces,
# delete the namespaces (their veths and bridge go with them) and the run
# directory (kept if TOPO_KEEP=1).  Safe to call twice.  Returns non-zero if
# something could not be removed.
topo_down() {
    local rc=0 h p
    [[ -n $TOPO_RUN ]] || return 0
    trap '' INT TERM HUP        # a second ^C must not interrupt the cleanup
    for h in "${TOPO_DOWN_HOOKS[@]}"; do
        "$h" || topo_log "down hook $h failed"
    done
    TOPO_DOWN_HOOKS=()
    topo__remove_run "$TOPO_RUN" || { topo_log "could not fully remove $TOPO_RUN"; rc=1; }
    # reap our own background children (all were inside the namespaces,
    # so they are dead now; never signal a pid here: it may be reused)
    for p in "${TOPO_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [[ -n $TOPO_DIR && -d $TOPO_DIR ]]; then
        if [[ ${TOPO_KEEP:-0} == 1 ]]; then
            rm -f "$TOPO_DIR/owner"
            topo_log "kept $TOPO_DIR"
        else
            rm -rf -- "$TOPO_DIR"
        fi
    fi
    TOPO_RUN='' TOPO_NS_GW='' TOPO_NS_UP='' TOPO_DIR='' TOPO_CAPTURE_PID=''
    TOPO_NS_CLIENTS=()
    TOPO_PIDS=()
    if ((TOPO__TRAP)); then
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
    else
        trap - INT TERM HUP
    fi
    return $rc
}

# ---------------------------------------------------------------- forwarding

# topo_forwarding on|off [4|6|all]: the gateway's IP forwarding (default all)
topo_forwarding() {
    local v
    case $1 in on) v=1 ;; off) v=0 ;; *) topo_err "topo_forwarding on|off [4|6|all]"; return 1 ;; esac
    case ${2:-all} in
    4) topo_exec gw sysctl -q -w net.ipv4.ip_forward=$v >/dev/null ;;
    6) topo_exec gw sysctl -q -w net.ipv6.conf.all.forwarding=$v >/dev/null ;;
    all) topo_exec gw sysctl -q -w net.ipv4.ip_forward=$v \
        net.ipv6.conf.all.forwarding=$v >/dev/null ;;
    *) topo_err "topo_forwarding on|off [4|6|all]"; return 1 ;;
    esac
}

# topo_forwarding_state: prints "ipv4=0 ipv6=0"
topo_forwarding_state() {
    echo "ipv4=$(topo_exec gw cat /proc/sys/net/ipv4/ip_forward)" \
        "ipv6=$(topo_exec gw cat /proc/sys/net/ipv6/conf/all/forwarding)"
}

# ---------------------------------------------------------------- capture

# topo_marker: put one marker frame (ethertype 0x88b5, from the gateway's
# up0 MAC) on up0 through a packet socket, so it passes no IP layer and no
# firewall of the gateway.  It is never counted as a leak.
topo_marker() {
    topo_exec gw "$TOPO_PY" -I -c '
import socket, sys
dev, dst, src, typ, text = sys.argv[1:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
mac = lambda m: bytes.fromhex(m.replace(":", ""))
s.send((mac(dst) + mac(src) + int(typ, 16).to_bytes(2, "big") + text.encode()).ljust(60, b"\0"))
' up0 "$TOPO_UP_MAC" "$TOPO_GW_UP_MAC" "$TOPO_MARKER_ETHERTYPE" "${1:-torsieve-topology-marker}"
}

topo__markers_seen() {   # PCAP N: at least N markers in PCAP (read while tcpdump writes)
    local out
    out=$(tcpdump --count -n -r "$1" "ether proto $TOPO_MARKER_ETHERTYPE" 2>/dev/null)
    [[ $out =~ ^([0-9]+)\ packets?$ ]] && ((BASH_REMATCH[1] >= $2))
}

# topo_capture_start [NAME]: capture everything that arrives at the uplink
# from the gateway (tcpdump -Q in on the uplink's eth0) into
# $TOPO_DIR/NAME.pcap (default "uplink"); sets TOPO_PCAP.  Returns when the
# capture provably records: a marker frame sent after start is in the file.
topo_capture_start() {
    local name=${1:-uplink} f
    [[ -z $TOPO_CAPTURE_PID ]] || { topo_err "a capture is already running"; return 1; }
    f=$TOPO_DIR/$name.pcap
    rm -f "$f"
    # -Z root: write as root (Debian's tcpdump would drop to user tcpdump);
    # --immediate-mode -U: each packet reaches the file at once, nothing
    # waits in a kernel buffer block when the capture is stopped.
    topo_bg up "capture-$name" tcpdump -Z root -n -i eth0 -Q in --immediate-mode -U \
        -w "$f" || return 1
    TOPO_CAPTURE_PID=$TOPO_LAST_PID
    TOPO_PCAP=$f
    if ! topo_wait_until 5 "tcpdump to listen" grep -q 'listening on' \
        "$TOPO_DIR/capture-$name.log"; then
        cat "$TOPO_DIR/capture-$name.log" >&2
        topo_capture_stop
        return 1
    fi
    topo_marker "start $name" || { topo_capture_stop; return 1; }
    topo_wait_until 5 "the start marker in $f" topo__markers_seen "$f" 1 ||
        { topo_capture_stop; return 1; }
}

# topo_capture_stop: send a stop marker, wait until it is in the file (so
# everything before it is too), stop tcpdump.  Fails if the kernel dropped
# packets (a dropped packet could be a leak nobody saw).  TOPO_PCAP stays.
topo_capture_stop() {
    local pid=$TOPO_CAPTURE_PID log rc=0 dropped
    [[ -n $pid ]] || { topo_err "no capture is running"; return 1; }
    log=$TOPO_DIR/capture-$(basename "$TOPO_PCAP" .pcap).log
    if topo__alive "$pid"; then
        topo_marker "stop" && topo_wait_until 5 "the stop marker in $TOPO_PCAP" \
            topo__markers_seen "$TOPO_PCAP" 2 || rc=1
        kill -INT "$pid" 2>/dev/null || true
        topo_wait_until 5 "tcpdump to exit" topo__not_alive "$pid" || {
            kill -KILL "$pid" 2>/dev/null || true
            rc=1
        }
    fi
    wait "$pid" 2>/dev/null || rc=1
    TOPO_CAPTURE_PID=
    dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$log" 2>/dev/null)
    if [[ $dropped != 0 ]]; then
        topo_err "capture $TOPO_PCAP: '${dropped:-?}' packets dropped by kernel"
        rc=1
    fi
    return $rc
}

# ---------------------------------------------------------------- leak counting

# topo_leak_filter: tcpdump filter for "sent by a client": a client source
# address (IPv4, ARP or IPv6) or a client's source MAC, also inside one VLAN tag.
topo_leak_filter() {
    # client K's MAC is 02:00:c0:00:02:(10+K): source MAC bytes 6..11
    local f="src net $TOPO_CLIENT_NET4 or src net $TOPO_CLIENT_NET6"
    f+=" or (ether[6:4] = 0x0200c000 and ether[10] = 0x02 and ether[11] > 10)"
    # after "vlan" libpcap reads the rest of the expression 4 bytes further on
    echo "($f) or (vlan and ($f))"
}

# topo_count PCAP FILTER: number of packets in PCAP that FILTER matches.
# If tcpdump cannot read the file or compile the filter it prints -1 and
# fails: an unreadable capture must never look like "0 leaks".
topo_count() {
    local out
    # --count: packets, not output lines (some frames print several lines)
    if ! out=$(tcpdump --count -n -r "$1" "$2" 2>/dev/null) ||
        [[ ! $out =~ ^([0-9]+)\ packets?$ ]]; then
        topo_err "tcpdump -r $1 failed: $(tcpdump --count -n -r "$1" "$2" 2>&1 >/dev/null | tail -n 1)"
        echo -1
        return 1
    fi
    echo "${BASH_REMATCH[1]}"
}

# topo_count_leaks PCAP: packets in the uplink capture sent by a client
# (source in 192.0.2.0/24 or 2001:db8:1::/64, or a client's source MAC).
# Must be 0 for a gateway that leaks nothing.  Prints -1 and fails if the
# file cannot be read.  topo_show_leaks PCAP lists them.
topo_count_leaks() { topo_count "$1" "$(topo_leak_filter)"; }
topo_show_leaks() { tcpdump -n -e -r "$1" "$(topo_leak_filter)" 2>/dev/null; }

# topo_count_foreign PCAP: packets that did not come from the gateway's own
# uplink addresses (198.51.100.1, 2001:db8:2::1, its link-local) - catches a
# forwarded client packet with a spoofed source that topo_count_leaks cannot
# see.  Markers are not counted.
topo_foreign_filter() {
    # "src host" covers the sender address of ARP too
    echo "not ether proto $TOPO_MARKER_ETHERTYPE and not (src host $TOPO_GW_UP4" \
        "or src host $TOPO_GW_UP6 or (ip6 and src net fe80::/64 and ether src $TOPO_GW_UP_MAC))"
}
topo_count_foreign() { topo_count "$1" "$(topo_foreign_filter)"; }

# ---------------------------------------------------------------- status

topo_status() {
    local run=${1:-$TOPO_RUN} ns nss r
    if [[ -z $run ]]; then
        local runs
        runs=$(ip netns list 2>/dev/null | awk '{print $1}' |
            sed -n 's/^\(ts-[0-9]*\)-\(gw\|up\|c[0-9]*\)$/\1/p' | sort -u)
        [[ -n $runs ]] || echo "no topology is up"
        for r in $runs; do topo_status "$r"; done
        return 0
    fi
    mapfile -t nss < <(topo_run_namespaces "$run" | sort -V)
    echo "run $run: ${#nss[@]} namespaces"
    for ns in "${nss[@]}"; do
        echo "== $ns  (pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' '))"
        ip -n "$ns" -br addr 2>/dev/null | sed 's/^/   /'
        if [[ $ns == *-gw ]]; then
            echo "   forwarding: ipv4=$(ip netns exec "$ns" cat /proc/sys/net/ipv4/ip_forward)" \
                "ipv6=$(ip netns exec "$ns" cat /proc/sys/net/ipv6/conf/all/forwarding)" \
                "bridge-nf-call-iptables=$(ip netns exec "$ns" cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo n/a)"
        fi
    done
}

# ---------------------------------------------------------------- command line

topo__main() {
    local cmd=${1:-status} run
    case $cmd in
    up)
        [[ -n ${2:-} ]] && TOPO_CLIENTS=$2
        TOPO_NO_TRAP=1 TOPO__MODE=persist topo_up || exit 1
        topo_capture_start uplink || { topo_down; exit 1; }
        topo_status
        echo
        echo "capture: $TOPO_PCAP (tcpdump -Q in on $TOPO_NS_UP eth0)"
        echo "servers: $TOPO_DIR/servers.log"
        echo "try:     ip netns exec $TOPO_NS_GW sysctl net.ipv4.ip_forward=1"
        echo "         ip netns exec ${TOPO_NS_CLIENTS[0]} curl http://$TOPO_HTTP4/"
        echo "remove:  $0 down $TOPO_RUN"
        ;;
    down)
        if [[ -n ${2:-} ]]; then
            [[ $2 =~ ^ts-[0-9]+$ ]] || topo_err "RUN looks like ts-1234" || exit 2
            topo__remove_run "$2" || exit 1
            rm -rf -- "$TOPO_TMP/ts-netns-${2#ts-}".??????
        else
            topo_cleanup_stale --all
        fi
        ;;
    status) topo_status "${2:-}" ;;
    cleanup) topo_cleanup_stale ;;
    *)
        echo "usage: $0 up [CLIENTS] | down [RUN] | status [RUN] | cleanup" >&2
        exit 2
        ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    topo_check_tools || exit 2
    topo__main "$@"
fi
