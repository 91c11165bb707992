#!/bin/bash
# shellcheck disable=SC2034  # many variables are there for the tests that source this
# tornet.sh - a private Tor network inside the netns test topology.
#
#   gateway (ts-PID-gw)                      uplink (ts-PID-up), "the internet"
#   tor client (instance 0)                  lo 203.0.113.1  auth1  ORPort 9001 DirPort 9030
#     SocksPort   127.0.0.1:9050             lo 203.0.113.2  auth2  ORPort 9001 DirPort 9030
#     ControlPort 127.0.0.1:9051 (cookie)    lo 203.0.113.3  exit3  ORPort 9001 DirPort 9030,
#   [instances 1..3: SOCKS 9050+10*I,                               the exit (accept *:*)
#    control 9051+10*I; TORNET_CLIENT_INSTANCES]
#   up0 198.51.100.1 ---------------------- eth0 198.51.100.2
#                                            lo 203.0.113.80 http :80 :443 (topology.sh)
#                                            lo 203.0.113.53 dns :53, the exit's resolver
#                                          [TORNET_ONION=1:
#                                            lo 203.0.113.4  relay4 ORPort 9001 (middle)
#                                            lo 203.0.113.5  relay5 ORPort 9001 (middle)
#                                            lo 203.0.113.6  onion service (a v3 .onion:
#                                               port 80 -> 203.0.113.80:80,
#                                               port 443 -> 203.0.113.80:443)]
#
# Three directory authorities that are also relays (exit3 is the exit) run in
# the uplink namespace, next to the "internet" servers; the client runs in the
# gateway namespace, where a Tor-only gateway runs its Tor, and reaches the
# relays through the gateway's default route (up0 -> the uplink).  The uplink
# has no route out, so nothing can leave the namespaces.  Every tor runs with a
# torrc written here (never a system torrc, never the system service).
# test/tor/README.md has the details.
#
# As a library:   source test/tor/tornet.sh
#                 topo_up; tornet_up; ...; topo_down   (topo_down calls tornet_down)
#                 (tornet_up calls topo_up itself if no topology is up)
# As a command:   tornet.sh up                a topology and a Tor network that stay up
#                 tornet.sh down [RUN]        remove them (default: every "tornet.sh up" run)
#                 tornet.sh status [RUN]      processes, bootstrap, circuits
#                 tornet.sh control [RUN] [I] CMD...   one control-port command to
#                                             client instance I (default 0)
#
# Helpers (I: a client instance, 0..TORNET_CLIENT_INSTANCES-1, default 0):
#   tornet_up / tornet_down
#   tornet_socks_addr [I]       127.0.0.1:9050, :9060, ... (in the gateway namespace:
#                               TORNET_CLIENT_NS)
#   tornet_control_addr [I]     127.0.0.1:9051, :9061, ...
#   tornet_control CMD...       one command to instance 0's control port, prints the answer
#   tornet_control_of I CMD...  the same for instance I
#   tornet_client_pid [I]       the pid of instance I's tor (fails if it is not running)
#   tornet_stop_client I        stop instance I only (its SOCKS port is closed on return)
#   tornet_exit_addr            203.0.113.3     (where the exit's connections come from)
#   tornet_relays               ADDR:ORPORT of each relay, one a line (for firewall rules
#                               and capture filters)
#   tornet_bootstrap_phase [I]  the client's status/bootstrap-phase
#   tornet_onion_addr           the onion service's address, 56 characters + ".onion"
#                               (TORNET_ONION=1)
#   tornet_onion_service_addr   203.0.113.6     (where the onion service's connections to
#                               the web server come from)
#
# Settings (before tornet_up):
#   TORNET_BOOT_SECS           deadline for the clients' 100% bootstrap and, with
#                              TORNET_ONION=1, the first fetch of the .onion (default 60)
#   TORNET_CLIENT_INSTANCES    client tors in the gateway namespace, 1..4 (default 1)
#   TORNET_ONION               1: two more relays and an onion service in the uplink
#                              namespace; tornet_up returns once client instance 0 has
#                              fetched http://ADDR.onion/ (default 0)
#   TORNET_CLIENT_TORRC_EXTRA  lines appended to instance 0's torrc (TransPort, DNSPort, ...)
#   TORNET_CLIENT_TORRC_EXTRA_I  the same for instance I (1..3)
#   TORNET_TOR, TORNET_GENCERT the programs (default tor, tor-gencert from PATH)
#
# Needs root, the Debian package tor (tor, tor-gencert) and what topology.sh needs.

if [[ -n ${TORNET__LOADED:-} && ${BASH_SOURCE[0]} != "$0" ]]; then
    return 0
fi
TORNET__LOADED=1

TORNET_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/netns/topology.sh
source "$TORNET_HERE/../netns/topology.sh"

TORNET_TOR=${TORNET_TOR:-tor}
TORNET_GENCERT=${TORNET_GENCERT:-tor-gencert}
TORNET_BOOT_SECS=${TORNET_BOOT_SECS:-60}
TORNET_CLIENT_TORRC_EXTRA=${TORNET_CLIENT_TORRC_EXTRA:-}
TORNET_CLIENT_INSTANCES=${TORNET_CLIENT_INSTANCES:-1}
TORNET_ONION=${TORNET_ONION:-0}

# ---------------------------------------------------------------- layout
# Relays: documentation addresses (RFC 5737) added to the uplink's loopback,
# so they exist only inside the uplink namespace.  The first
# TORNET_AUTH_COUNT are the directory authorities; TORNET_ONION=1 adds two
# relays that are not (tornet__layout).
TORNET_AUTH_NICKS=(auth1 auth2 exit3)
TORNET_AUTH_ADDRS=(203.0.113.1 203.0.113.2 203.0.113.3)
TORNET_AUTH_COUNT=${#TORNET_AUTH_NICKS[@]}
TORNET_ONION_RELAY_NICKS=(relay4 relay5)
TORNET_ONION_RELAY_ADDRS=(203.0.113.4 203.0.113.5)
TORNET_NICKS=()         # the relays of this network, authorities first (tornet__layout)
TORNET_ADDRS=()
TORNET_EXIT_INDEX=2
TORNET_ORPORT=9001
TORNET_DIRPORT=9030
TORNET_RELAY_NS=up
TORNET_CLIENT_NS=gw
TORNET_SOCKS=127.0.0.1:9050        # client instance 0; instance I: these ports + 10*I
TORNET_CONTROL=127.0.0.1:9051
TORNET_CLIENT_MAX=4                 # TORNET_CLIENT_INSTANCES: 1..4
TORNET_CLIENT_PORT_STEP=10
# on every client's SocksPort: stream isolation by SOCKS username/password
# (tor's default, said explicitly) and the onion-service SOCKS5 error codes
# 0xF0-0xF7 (tor(1), SocksPort)
TORNET_SOCKS_FLAGS="IsolateSOCKSAuth ExtendedErrors"
TORNET_RESOLVER=$TOPO_DNS4          # the uplink's DNS server: the exit's only resolver
# The onion service (TORNET_ONION=1): a tor of its own in the relay
# namespace, with its own address on the uplink's loopback, so its
# connections to the web server are told apart from the exit's in
# servers.log.  Its ports: virtual port -> target.
TORNET_ONION_NAME=onion
TORNET_ONION_BIND=203.0.113.6
TORNET_ONION_PORTS=("80 $TOPO_HTTP4:80" "443 $TOPO_HTTP4:443")

# tornet__layout: TORNET_NICKS and TORNET_ADDRS for TORNET_ONION.  An onion
# service in a network this small needs more than three relays: tor 0.4.9
# (vanguards-lite) builds the client's HSDir and introduction circuits and
# the service's rendezvous circuits with four hops (guard, layer-2 guard,
# middle, then the relay asked for), and no circuit uses a relay twice.
tornet__layout() {
    TORNET_NICKS=("${TORNET_AUTH_NICKS[@]}")
    TORNET_ADDRS=("${TORNET_AUTH_ADDRS[@]}")
    if [[ $TORNET_ONION == 1 ]]; then
        TORNET_NICKS+=("${TORNET_ONION_RELAY_NICKS[@]}")
        TORNET_ADDRS+=("${TORNET_ONION_RELAY_ADDRS[@]}")
    fi
}
tornet__layout

# ---------------------------------------------------------------- state
TORNET_DIR=             # keys, torrcs, data directories: $TOPO_DIR/tornet.XXXXXX
TORNET_PIDS=()          # the tors started, in the order of TORNET_NAMES
TORNET_STARTS=()        # their start times (clock ticks), so a reused pid is never signalled
TORNET_NAMES=()         # auth1 auth2 exit3 client [client1 client2 client3]
TORNET_CLIENTS_UP=      # client instances of the network that is up (tornet_up)
TORNET_BOOT_MS=         # measured: start of the tors to every client's "Bootstrapped 100%"
TORNET_CONSENSUS_MS=    #   of which: start of the authorities to a consensus with every relay
TORNET_CLIENT_MS=       #   and: start of the clients to the last one's "Bootstrapped 100%"
TORNET_CLIENT_BOOT_MS=()  # per instance: start of the clients to its "Bootstrapped 100%"
TORNET__T_CLIENTS=      # when the clients were started (topo__now)
TORNET__KEYGEN=()       # key generators running in the background (tornet_up)
TORNET_ONION_UP=        # 1 if the network that is up has the onion service
TORNET_ONION_DESC_MS=   # measured: start of the onion service's tor to every upload of
                        #   its descriptors accepted by the HSDirs
TORNET_ONION_MS=        #   and to client instance 0's first fetch of http://ADDR.onion/
TORNET_ONION_TRIES=     # the fetches that took (tried once the descriptors were uploaded)

tornet_log() { printf 'tornet: %s\n' "$*" >&2; }
tornet_err() { printf 'tornet: error: %s\n' "$*" >&2; return 1; }

# tornet__instance I [COUNT]: is I a client instance number, 0..COUNT-1
# (default: the most there can be)?
tornet__instance() {
    local n=${2:-$TORNET_CLIENT_MAX}
    if [[ ! $1 =~ ^[0-9]$ ]] || (($1 >= n)); then
        tornet_err "client instance '$1': must be 0..$((n - 1))"
        return 1
    fi
}
tornet__client_name() { if (($1 == 0)); then echo client; else echo "client$1"; fi; }
tornet__index_of() {   # NAME: its index in TORNET_NAMES
    local k
    for k in "${!TORNET_NAMES[@]}"; do
        [[ ${TORNET_NAMES[k]} == "$1" ]] && { echo "$k"; return 0; }
    done
    return 1
}
tornet__join() { local IFS=$1; shift; echo "$*"; }   # SEP WORD...
tornet__port_plus() { echo "${1%:*}:$((${1##*:} + $2))"; }   # ADDR:PORT N

# tornet_socks_addr [I], tornet_control_addr [I]: client instance I's ports
# (in the gateway namespace); instance 0's are TORNET_SOCKS, TORNET_CONTROL
tornet_socks_addr() {
    tornet__instance "${1:-0}" || return
    tornet__port_plus "$TORNET_SOCKS" $((TORNET_CLIENT_PORT_STEP * ${1:-0}))
}
tornet_control_addr() {
    tornet__instance "${1:-0}" || return
    tornet__port_plus "$TORNET_CONTROL" $((TORNET_CLIENT_PORT_STEP * ${1:-0}))
}
tornet_exit_addr() { echo "${TORNET_ADDRS[TORNET_EXIT_INDEX]}"; }
# tornet_relays: ADDR:ORPORT of every relay of the network that is up, or
# (before tornet_up) of the network TORNET_ONION asks for
tornet_relays() {
    local a addrs=("${TORNET_ADDRS[@]}")
    if [[ -z $TORNET_DIR ]]; then
        addrs=("${TORNET_AUTH_ADDRS[@]}")
        [[ $TORNET_ONION != 1 ]] || addrs+=("${TORNET_ONION_RELAY_ADDRS[@]}")
    fi
    for a in "${addrs[@]}"; do echo "$a:$TORNET_ORPORT"; done
}
tornet_onion_service_addr() { echo "$TORNET_ONION_BIND"; }
# the addresses tornet_up puts on the uplink's loopback
tornet__lo_addrs() {
    echo "${TORNET_ADDRS[@]}"
    [[ $TORNET_ONION_UP != 1 ]] || echo "$TORNET_ONION_BIND"
}
# tornet_onion_addr: the onion service's address ("<56 base32>.onion"), as
# tor wrote it to its hostname file.  Fails if there is no onion service.
tornet_onion_addr() {
    local h
    [[ -n $TORNET_DIR ]] || { tornet_err "no tor network is up"; return 1; }
    h=$(cat "$TORNET_DIR/$TORNET_ONION_NAME/hs/hostname" 2>/dev/null) ||
        { tornet_err "no onion service in this network (TORNET_ONION=1)"; return 1; }
    [[ $h =~ ^[a-z2-7]{56}\.onion$ ]] || { tornet_err "onion address '$h'"; return 1; }
    echo "$h"
}

tornet_check_tools() {
    local t missing=0
    for t in "$TORNET_TOR" "$TORNET_GENCERT"; do
        command -v "$t" >/dev/null 2>&1 ||
            { tornet_err "missing '$t': install Debian package tor" \
                "(apt-get install --no-install-recommends tor)"; missing=1; }
    done
    ((missing == 0)) || return 2
}

# ---------------------------------------------------------------- processes

tornet__alive() {   # INDEX: is TORNET_PIDS[INDEX] still the tor we started?
    local pid=${TORNET_PIDS[$1]} st
    [[ -n $pid ]] || return 1
    st=$(topo__starttime "$pid" 2>/dev/null) || return 1
    [[ $st == "${TORNET_STARTS[$1]}" ]]
}

tornet__none_alive() {
    local i
    for i in "${!TORNET_PIDS[@]}"; do
        tornet__alive "$i" && return 1
    done
    return 0
}

tornet__start() {   # NS NAME: start tor with $TORNET_DIR/NAME/torrc in NS
    local ns=$1 name=$2
    topo_bg "$ns" "tor-$name" "$TORNET_TOR" -f "$TORNET_DIR/$name/torrc" || return 1
    TORNET_NAMES+=("$name")
    TORNET_PIDS+=("$TOPO_LAST_PID")
    TORNET_STARTS+=("$(topo__starttime "$TOPO_LAST_PID" 2>/dev/null || echo gone)")
}

tornet__log_of() { echo "$TOPO_DIR/tor-$1.log"; }

# ---------------------------------------------------------------- keys and torrcs

# tornet__keys I: authority keys (tor-gencert) and the relay's identity keys
# (tor --list-fingerprint with a keygen torrc of ours, network disabled) for
# authority I.  Runs in the background from tornet_up, in the relay namespace.
tornet__keys() {
    local i=$1 nick=${TORNET_NICKS[$1]} addr=${TORNET_ADDRS[$1]} d
    d=$TORNET_DIR/$nick
    topo_exec "$TORNET_RELAY_NS" "$TORNET_GENCERT" --create-identity-key -m 12 -a "$addr:$TORNET_DIRPORT" \
        -i "$d/keys/authority_identity_key" -s "$d/keys/authority_signing_key" \
        -c "$d/keys/authority_certificate" --passphrase-fd 0 </dev/null \
        >"$d/gencert.log" 2>&1 || return 1
    cat >"$d/torrc-keygen" <<EOF
# written by test/tor/tornet.sh: only generates $nick's relay keys, no network
DataDirectory $d
ORPort $addr:$TORNET_ORPORT
Nickname $nick
DisableNetwork 1
SocksPort 0
Log warn stderr
EOF
    topo_exec "$TORNET_RELAY_NS" "$TORNET_TOR" -f "$d/torrc-keygen" --list-fingerprint \
        >"$d/keygen.log" 2>&1 || return 1
}

tornet__write_torrcs() {
    local i nick addr d v3 fp p auths=""
    for ((i = 0; i < TORNET_AUTH_COUNT; i++)); do
        nick=${TORNET_NICKS[i]}
        addr=${TORNET_ADDRS[i]}
        d=$TORNET_DIR/$nick
        fp=
        read -r _ fp <"$d/fingerprint"
        v3=$(sed -n 's/^fingerprint \([0-9A-F]\{40\}\)$/\1/p' "$d/keys/authority_certificate")
        [[ $v3 =~ ^[0-9A-F]{40}$ && $fp =~ ^[0-9A-F]{40}$ ]] ||
            { tornet_err "no keys for $nick: $(cat "$d/gencert.log" "$d/keygen.log")"; return 1; }
        auths+="DirAuthority $nick orport=$TORNET_ORPORT no-v2 v3ident=$v3 $addr:$TORNET_DIRPORT $fp"$'\n'
    done

    # The first valid-after time is the next multiple of the initial voting
    # interval (5 s; 2+2 s of delays are more than half of it, so tor makes
    # them 1+1 s) plus TestingV3AuthVotingStartOffset, and the authorities
    # vote 2 s before it.  Started less than 2 s before such a boundary, they
    # would vote at once, before any descriptor has reached them, on a
    # consensus without relays.  An offset of (now mod 5) puts the first
    # valid-after 5 s after the start and the vote 3 s after it.  Written
    # just before the tors start; the midnight rules of the schedule can
    # only cost one more round (tornet_up waits for a full consensus anyway).
    #
    # With TORNET_ONION=1 the first consensus must list relay4 and relay5
    # too, and a relay is in a vote only once the authorities have found its
    # ORPort reachable, which they test as soon as it has uploaded its
    # descriptor: 2-3.5 s after the start (more on a loaded machine).  A
    # vote 3 s after the start missed one of them in about half the runs,
    # and the next consensus came 10 s later (V3AuthVotingInterval).  So
    # here the initial interval is 10 s (2+2 s of delays stay 2+2) and the
    # offset (now mod 10): the first vote 6 s after the start, the
    # consensus 10 s after it.
    local ivl=5 lead=5 offset
    [[ $TORNET_ONION_UP != 1 ]] || ivl=10 lead=10
    offset=$(((EPOCHSECONDS + lead) % ivl))

    # shared by every tor: a test network of our own, nothing of the public one
    local common
    common="TestingTorNetwork 1
UseDefaultFallbackDirs 0
${auths}PathsNeededToBuildCircuits 0.67
RunAsDaemon 0
Log notice stdout
SafeLogging 0
ShutdownWaitLength 0"

    for i in "${!TORNET_NICKS[@]}"; do
        nick=${TORNET_NICKS[i]}
        addr=${TORNET_ADDRS[i]}
        d=$TORNET_DIR/$nick
        if ((i >= TORNET_AUTH_COUNT)); then
            # a relay that is only a relay (TORNET_ONION=1): guard, middle,
            # introduction and rendezvous point.  Not a directory cache: a
            # client would fetch directory information from it too, and
            # until it has the microdescriptors itself (seconds after the
            # consensus) such a fetch fails and is retried only 10 s later.
            # So not an HSDir either (the authorities are)
            cat >"$d/torrc" <<EOF
# written by test/tor/tornet.sh for $TOPO_RUN: relay $nick (not an exit)
DataDirectory $d
PidFile $d/pid
$common
Nickname $nick
ContactInfo tornet@example.test
Address $addr
ORPort $addr:$TORNET_ORPORT
OutboundBindAddress $addr
SocksPort 0
AssumeReachable 1
DirCache 0
ExitRelay 0
ExitPolicy reject *:*
EOF
            continue
        fi
        {
            echo "# written by test/tor/tornet.sh for $TOPO_RUN: authority and relay $nick"
            echo "DataDirectory $d"
            echo "PidFile $d/pid"
            echo "$common"
            cat <<EOF
Nickname $nick
ContactInfo tornet@example.test
Address $addr
ORPort $addr:$TORNET_ORPORT
DirPort $addr:$TORNET_DIRPORT
OutboundBindAddress $addr
SocksPort 0
AssumeReachable 1
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
TestingV3AuthInitialVotingInterval $ivl
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
TestingV3AuthVotingStartOffset $offset
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
TestingDirAuthVoteExit *
TestingDirAuthVoteGuard *
TestingDirAuthVoteHSDir $(tornet__join , "${TORNET_AUTH_ADDRS[@]}")
AuthDirVoteStableGuaranteeMinUptime 0
AuthDirVoteStableGuaranteeMTBF 0
TestingMinExitFlagThreshold 0
EOF
            if ((i == TORNET_EXIT_INDEX)); then
                cat <<EOF
ExitRelay 1
ExitPolicy accept *:*
IPv6Exit 0
ServerDNSResolvConfFile $d/resolv.conf
ServerDNSDetectHijacking 0
ServerDNSAllowBrokenConfig 0
EOF
            else
                echo "ExitRelay 0"
                echo "ExitPolicy reject *:*"
            fi
        } >"$d/torrc"
        if ((i == TORNET_EXIT_INDEX)); then
            echo "nameserver $TORNET_RESOLVER" >"$d/resolv.conf"
        fi
    done

    # the clients: instance 0 gets TORNET_CLIENT_TORRC_EXTRA, instance I
    # TORNET_CLIENT_TORRC_EXTRA_I (the same lines in two torrcs would open
    # the same ports twice)
    local extra
    for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do
        d=$TORNET_DIR/$(tornet__client_name "$i")
        extra=TORNET_CLIENT_TORRC_EXTRA
        ((i == 0)) || extra+=_$i
        {
            echo "# written by test/tor/tornet.sh for $TOPO_RUN: the gateway's tor client, instance $i"
            echo "DataDirectory $d"
            echo "PidFile $d/pid"
            echo "$common"
            cat <<EOF
SocksPort $(tornet_socks_addr "$i") $TORNET_SOCKS_FLAGS
ControlPort $(tornet_control_addr "$i")
CookieAuthentication 1
CookieAuthFile $d/control_auth_cookie
ClientUseIPv6 0
EOF
            [[ -z ${!extra:-} ]] || echo "${!extra}"
        } >"$d/torrc"
    done

    # the onion service: a client-only tor (no SOCKS port) in the relay
    # namespace whose streams to the web server leave from
    # TORNET_ONION_BIND.  An ordinary service: three hops to its
    # introduction and rendezvous points, no single-hop mode.
    if [[ $TORNET_ONION_UP == 1 ]]; then
        d=$TORNET_DIR/$TORNET_ONION_NAME
        {
            echo "# written by test/tor/tornet.sh for $TOPO_RUN: the onion service"
            echo "DataDirectory $d"
            echo "PidFile $d/pid"
            echo "$common"
            cat <<EOF
Log [rend]info file $d/rend.log
SocksPort 0
ClientUseIPv6 0
OutboundBindAddress $TORNET_ONION_BIND
HiddenServiceDir $d/hs
EOF
            for p in "${TORNET_ONION_PORTS[@]}"; do echo "HiddenServicePort $p"; done
        } >"$d/torrc"
    fi
}

# ---------------------------------------------------------------- up / down

tornet__booted() {   # [I]: client instance I's log says 100%
    grep -q 'Bootstrapped 100%' "$(tornet__log_of "$(tornet__client_name "${1:-0}")")" 2>/dev/null
}

# tornet__clients_booted: every client instance is at 100%; notes in
# TORNET_CLIENT_BOOT_MS when each got there (as first seen by the 50 ms poll)
tornet__clients_booted() {
    local i rc=0
    for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do
        [[ -z ${TORNET_CLIENT_BOOT_MS[i]:-} ]] || continue
        if tornet__booted "$i"; then
            TORNET_CLIENT_BOOT_MS[i]=$((($(topo__now) - TORNET__T_CLIENTS) / 1000))
        else
            rc=1
        fi
    done
    return $rc
}

# tornet__consensus_ready: every authority has published a consensus that
# lists all the relays (read from their data directories: no packet sent;
# relay4 and relay5 have such a file too, but only once they fetched it)
tornet__consensus_ready() {
    local nick n
    for nick in "${TORNET_NICKS[@]:0:TORNET_AUTH_COUNT}"; do
        n=$(grep -c '^r ' "$TORNET_DIR/$nick/cached-microdesc-consensus" 2>/dev/null) || return 1
        ((n == ${#TORNET_NICKS[@]})) || return 1
    done
}

# tornet__wait DEADLINE WHAT CMD...: poll CMD every 50 ms until it succeeds;
# fail at once if any tor exited, or at DEADLINE (topo__now microseconds).
tornet__wait() {
    local deadline=$1 what=$2 i
    shift 2
    while :; do
        "$@" && return 0
        for i in "${!TORNET_PIDS[@]}"; do
            if ! tornet__alive "$i"; then
                tornet_err "tor ${TORNET_NAMES[i]} exited while waiting for $what:"
                tail -n 15 "$(tornet__log_of "${TORNET_NAMES[i]}")" | sed 's/^/    /' >&2
                return 1
            fi
        done
        if (($(topo__now) > deadline)); then
            # the log of the first client not at 100%, else of the last tor
            # started (or the one TORNET__SHOW names)
            local show=${TORNET__SHOW:-${TORNET_NAMES[-1]}} n
            for n in "${TORNET_NAMES[@]}"; do
                [[ -z ${TORNET__SHOW:-} && $n == client* ]] || continue
                grep -q 'Bootstrapped 100%' "$(tornet__log_of "$n")" 2>/dev/null || { show=$n; break; }
            done
            tornet_err "timed out after $TORNET_BOOT_SECS s waiting for $what; last lines of" \
                "$show's log:"
            tail -n 8 "$(tornet__log_of "$show")" | sed 's/^/    /' >&2
            return 1
        fi
        sleep 0.05
    done
}

tornet__ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# ---------------------------------------------------------------- the onion service

# A SOCKS5 client for tornet_up's own check of the onion service: CONNECT
# to HOST:PORT by name (tor resolves it; an .onion is looked up), then GET
# PATH.  Prints the body, or "socks5 reply 0xNN" (exit 3) if the CONNECT
# was refused; exit 2 on any other failure.
TORNET__SOCKS_PY='
import socket, sys
proxy, host, port, path, timeout = sys.argv[1:6]
ph, pp = proxy.rsplit(":", 1)
try:
    s = socket.create_connection((ph, int(pp)), timeout=float(timeout))
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        sys.exit("tornet: SOCKS5 greeting refused")
    h = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + int(port).to_bytes(2, "big"))
    r = s.recv(4)
    if len(r) < 2:
        sys.exit("tornet: no SOCKS5 reply")
    if r[1] != 0:
        print("socks5 reply 0x%02X" % r[1])
        sys.exit(3)
    need = {1: 4, 4: 16}.get(r[3])
    if need is None:
        need = s.recv(1)[0]
    s.recv(need + 2)
    s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    print(data.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace").rstrip("\n"))
except (OSError, IndexError, ValueError) as e:
    sys.exit("tornet: %s" % (e or "short SOCKS5 reply"))
'

# tornet__onion_uploaded: the onion service has uploaded its descriptors
# (current and next time period, to each of the three HSDirs), and every
# upload it started has been accepted (its [rend]info log).  A client asks
# one of the HSDirs at random: after the first "200" only, it could ask one
# still waiting for its copy and get "not found".
tornet__onion_uploaded() {
    local log=$TORNET_DIR/$TORNET_ONION_NAME/rend.log n
    n=$(grep -c 'descriptor of revision [0-9]* initiated upload request to' "$log" 2>/dev/null)
    TORNET__UPLOADS=$(grep -c 'Uploading hidden service descriptor: finished with status 200' \
        "$log" 2>/dev/null)
    ((n > 0 && TORNET__UPLOADS >= n))
}

# tornet__onion_fetched: client instance 0 fetches http://ADDR.onion/ and
# gets the web server's page.  A failed try (the client may have asked an
# HSDir that had no descriptor yet: reply 0xF0) costs one NEWNYM, which
# also drops the client's memory of the HSDirs it asked in vain (tor would
# not ask them again for 15 minutes), and at least a second.
tornet__onion_fetched() {
    local out
    TORNET_ONION_TRIES=$((TORNET_ONION_TRIES + 1))
    out=$(topo_exec "$TORNET_CLIENT_NS" "$TOPO_PY" -I -c "$TORNET__SOCKS_PY" "$(tornet_socks_addr 0)" \
        "$TORNET__ONION" 80 /?tornet-onion-check 10 2>&1)
    [[ $out == "torsieve-uplink http $TOPO_HTTP4:80" ]] && return 0
    tornet_log "fetch $TORNET_ONION_TRIES of http://$TORNET__ONION/ failed ($out); trying again"
    tornet__control 0 "SIGNAL NEWNYM" >/dev/null 2>&1
    sleep 1
    return 1
}

# tornet_up: generate keys, write the torrcs, start the three authorities
# (in the uplink namespace; with TORNET_ONION=1 the two other relays too),
# wait for their first full consensus, start the TORNET_CLIENT_INSTANCES
# clients (in the gateway namespace, all at once) and the onion service
# (TORNET_ONION=1, in the uplink namespace) and wait until every client has
# bootstrapped to 100% and, with TORNET_ONION=1, the service's descriptor is
# uploaded and client instance 0 has fetched http://ADDR.onion/;
# TORNET_BOOT_SECS is the deadline for all the waits together.  Brings up a
# topology first if none is up.  Call it from the main shell (not in
# $(...)): the tors are its children.  On failure everything it started is
# stopped again (tornet_down).  Sets TORNET_BOOT_MS, TORNET_CONSENSUS_MS,
# TORNET_CLIENT_MS, TORNET_CLIENT_BOOT_MS, TORNET_CLIENTS_UP and, with the
# onion service, TORNET_ONION_UP, TORNET_ONION_DESC_MS, TORNET_ONION_MS and
# TORNET_ONION_TRIES.
tornet_up() {
    local i nick t0 deadline rc=0 socks what TORNET__SHOW='' TORNET__UPLOADS=0 TORNET__ONION=''
    [[ -z $TORNET_DIR ]] || { tornet_err "a tor network is already up ($TORNET_DIR)"; return 1; }
    tornet_check_tools || return
    [[ $TORNET_BOOT_SECS =~ ^[0-9]+$ ]] || { tornet_err "TORNET_BOOT_SECS must be whole seconds"; return 1; }
    if [[ ! $TORNET_CLIENT_INSTANCES =~ ^[1-9]$ ]] ||
        ((TORNET_CLIENT_INSTANCES > TORNET_CLIENT_MAX)); then
        tornet_err "TORNET_CLIENT_INSTANCES must be 1..$TORNET_CLIENT_MAX"
        return 1
    fi
    [[ $TORNET_ONION == [01] ]] || { tornet_err "TORNET_ONION must be 0 or 1"; return 1; }
    if [[ -z $TOPO_RUN ]]; then
        topo_up || return
    fi
    [[ " ${TOPO_DOWN_HOOKS[*]} " == *" tornet_down "* ]] || topo_on_down tornet_down
    TORNET_DIR=$(mktemp -d "$TOPO_DIR/tornet.XXXXXX") || { TORNET_DIR=; return 1; }
    chmod 755 "$TORNET_DIR"
    TORNET_PIDS=() TORNET_STARTS=() TORNET_NAMES=()
    TORNET_BOOT_MS='' TORNET_CONSENSUS_MS='' TORNET_CLIENT_MS='' TORNET_CLIENT_BOOT_MS=()
    TORNET_ONION_MS='' TORNET_ONION_DESC_MS='' TORNET_ONION_TRIES=0
    TORNET_CLIENTS_UP=$TORNET_CLIENT_INSTANCES
    TORNET_ONION_UP=$TORNET_ONION
    tornet__layout

    # the relays' addresses (and the onion service's), on the uplink's loopback
    for i in $(tornet__lo_addrs); do
        ip -n "$(topo_ns "$TORNET_RELAY_NS")" addr replace "$i/32" dev lo ||
            { tornet_down; return 1; }
    done

    # keys: RSA keygen takes about a second each, so the three authorities'
    # in parallel.  relay4 and relay5 make their own when they start: no
    # torrc names them
    for i in "${!TORNET_NICKS[@]}"; do
        nick=${TORNET_NICKS[i]}
        if ! mkdir -p "$TORNET_DIR/$nick/keys" ||
            ! chmod 700 "$TORNET_DIR/$nick" "$TORNET_DIR/$nick/keys"; then
            tornet_down
            return 1
        fi
        ((i < TORNET_AUTH_COUNT)) || continue
        tornet__keys "$i" &
        TORNET__KEYGEN+=($!)
    done
    for i in "${TORNET__KEYGEN[@]}"; do
        wait "$i" || rc=1
    done
    TORNET__KEYGEN=()
    for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do
        mkdir -p "$TORNET_DIR/$(tornet__client_name "$i")" || rc=1
        chmod 700 "$TORNET_DIR/$(tornet__client_name "$i")" || rc=1
    done
    if [[ $TORNET_ONION_UP == 1 ]]; then
        # tor refuses a HiddenServiceDir that others can read
        mkdir -p "$TORNET_DIR/$TORNET_ONION_NAME/hs" || rc=1
        chmod 700 "$TORNET_DIR/$TORNET_ONION_NAME" "$TORNET_DIR/$TORNET_ONION_NAME/hs" || rc=1
    fi
    if ((rc)) || ! tornet__write_torrcs; then
        tornet_err "generating keys or torrcs failed (in $TORNET_DIR)"
        tornet_down
        return 1
    fi

    # The authorities first.  Their first vote can come a second after they
    # start, before any relay has uploaded its descriptor: that consensus
    # lists no relay, and a client that fetched it would wait for it to go
    # stale (25 s and more) before it fetched the next one.  So the client
    # starts only once every authority has published a consensus with all
    # the relays; it then bootstraps in a second or two.  Several clients
    # start together and bootstrap side by side.
    # The onion service's tor is a client too (it must not fetch a
    # consensus without relays either): it starts with the clients.
    t0=$(topo__now)
    deadline=$((t0 + TORNET_BOOT_SECS * 1000000))
    for i in "${!TORNET_NICKS[@]}"; do
        tornet__start "$TORNET_RELAY_NS" "${TORNET_NICKS[i]}" || { tornet_down; return 1; }
    done
    if ! tornet__wait "$deadline" "a consensus with all ${#TORNET_NICKS[@]} relays" \
        tornet__consensus_ready; then
        tornet_down
        return 1
    fi
    TORNET_CONSENSUS_MS=$((($(topo__now) - t0) / 1000))
    TORNET__T_CLIENTS=$(topo__now)
    for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do
        tornet__start "$TORNET_CLIENT_NS" "$(tornet__client_name "$i")" || { tornet_down; return 1; }
    done
    if [[ $TORNET_ONION_UP == 1 ]]; then
        tornet__start "$TORNET_RELAY_NS" "$TORNET_ONION_NAME" || { tornet_down; return 1; }
    fi
    what="the client's bootstrap to 100%"
    ((TORNET_CLIENTS_UP == 1)) || what="the bootstrap to 100% of all $TORNET_CLIENTS_UP clients"
    if ! tornet__wait "$deadline" "$what" tornet__clients_booted; then
        tornet_down
        return 1
    fi
    TORNET_CLIENT_MS=$((($(topo__now) - TORNET__T_CLIENTS) / 1000))

    # The onion service: its descriptors on the HSDirs, then a real fetch
    # of http://ADDR.onion/ through client instance 0.  Fetching before the
    # upload would only earn "descriptor not found" (and a NEWNYM).
    if [[ $TORNET_ONION_UP == 1 ]]; then
        TORNET__SHOW=$TORNET_ONION_NAME
        if ! tornet__wait "$deadline" "the onion service's descriptors to be uploaded" \
            tornet__onion_uploaded; then
            tornet_down
            return 1
        fi
        TORNET_ONION_DESC_MS=$((($(topo__now) - TORNET__T_CLIENTS) / 1000))
        TORNET__ONION=$(tornet_onion_addr) || { tornet_down; return 1; }
        if ! tornet__wait "$deadline" "client 0 to fetch http://$TORNET__ONION/" \
            tornet__onion_fetched; then
            tornet_down
            return 1
        fi
        TORNET_ONION_MS=$((($(topo__now) - TORNET__T_CLIENTS) / 1000))
    fi
    TORNET_BOOT_MS=$((($(topo__now) - t0) / 1000))
    socks=$(for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do tornet_socks_addr "$i"; done | paste -sd,)
    what=client
    ((TORNET_CLIENTS_UP == 1)) || what="$TORNET_CLIENTS_UP clients"
    tornet_log "bootstrapped in $(tornet__ms "$TORNET_BOOT_MS") s: consensus after" \
        "$(tornet__ms "$TORNET_CONSENSUS_MS") s, $what after $(tornet__ms "$TORNET_CLIENT_MS") s more" \
        "(SOCKS $socks in $(topo_ns "$TORNET_CLIENT_NS"), exit $(tornet_exit_addr))"
    [[ $TORNET_ONION_UP == 0 ]] ||
        tornet_log "onion service $TORNET__ONION: descriptors uploaded ($TORNET__UPLOADS accepted)" \
            "$(tornet__ms "$TORNET_ONION_DESC_MS") s after its start, fetched by client 0 after" \
            "$(tornet__ms "$TORNET_ONION_MS") s ($TORNET_ONION_TRIES tries)"
    # state for "tornet.sh control/status" from another shell
    {
        echo "TORNET_CLIENT_INSTANCES=$TORNET_CLIENTS_UP"
        echo "TORNET_ONION=$TORNET_ONION_UP"
        echo "TORNET_BOOT_MS=$TORNET_BOOT_MS"
        echo "TORNET_CONSENSUS_MS=$TORNET_CONSENSUS_MS"
        echo "TORNET_CLIENT_MS=$TORNET_CLIENT_MS"
        echo "TORNET_ONION_DESC_MS=$TORNET_ONION_DESC_MS"
        echo "TORNET_ONION_MS=$TORNET_ONION_MS"
        for i in "${!TORNET_PIDS[@]}"; do
            echo "TORNET_TOR_${TORNET_NAMES[i]}=${TORNET_PIDS[i]}:${TORNET_STARTS[i]}"
        done
    } >"$TORNET_DIR/state"
}

# tornet_down: TERM every tor tornet_up started (ShutdownWaitLength 0: they
# exit at once; KILL after 5 s), remove the relay addresses and TORNET_DIR
# (kept with TOPO_KEEP=1).  Safe to call twice; topo_down calls it.
tornet_down() {
    local i rc=0 p
    [[ -n $TORNET_DIR || ${#TORNET_PIDS[@]} -gt 0 ]] || return 0
    # interrupted while generating keys: the generators are subshells of
    # this shell (their tor-gencert and tor run in the relay namespace,
    # where topo_down kills whatever is left)
    for p in "${TORNET__KEYGEN[@]}"; do
        [[ $(awk '{print $4}' "/proc/$p/stat" 2>/dev/null) == "$BASHPID" ]] &&
            kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    TORNET__KEYGEN=()
    for i in "${!TORNET_PIDS[@]}"; do
        tornet__alive "$i" && kill -TERM "${TORNET_PIDS[i]}" 2>/dev/null
    done
    if ! topo_wait_until 5 "the tors to exit" tornet__none_alive 2>/dev/null; then
        for i in "${!TORNET_PIDS[@]}"; do
            tornet__alive "$i" && kill -KILL "${TORNET_PIDS[i]}" 2>/dev/null
        done
        topo_wait_until 3 "the tors to die" tornet__none_alive || rc=1
    fi
    for p in "${TORNET_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [[ -n $TOPO_RUN && -e /run/netns/$(topo_ns "$TORNET_RELAY_NS") ]]; then
        for i in $(tornet__lo_addrs); do
            ip -n "$(topo_ns "$TORNET_RELAY_NS")" addr del "$i/32" dev lo 2>/dev/null
        done
    fi
    if [[ -n $TORNET_DIR && -d $TORNET_DIR ]]; then
        if [[ ${TOPO_KEEP:-0} == 1 ]]; then
            tornet_log "kept $TORNET_DIR"
        else
            rm -rf -- "$TORNET_DIR"
            for i in "${TORNET_NAMES[@]}"; do
                rm -f -- "$(tornet__log_of "$i")"
            done
        fi
    fi
    TORNET_DIR='' TORNET_PIDS=() TORNET_STARTS=() TORNET_NAMES=() TORNET_CLIENTS_UP=''
    TORNET_ONION_UP=''
    return $rc
}

tornet__gone() { ! tornet__alive "$1"; }   # INDEX
tornet__socks_closed() {   # I: instance I's SOCKS port does not listen
    local a
    a=$(tornet_socks_addr "$1") || return 1
    ! topo_listening "$TORNET_CLIENT_NS" tcp "${a##*:}" "${a%:*}"
}

# tornet_client_pid [I]: the pid of client instance I's tor (default 0).
# Fails, printing nothing, if that tor is not running (never started,
# stopped, or exited).
tornet_client_pid() {
    local i=${1:-0} k
    tornet__instance "$i" || return 2
    k=$(tornet__index_of "$(tornet__client_name "$i")") || return 1
    tornet__alive "$k" || return 1
    echo "${TORNET_PIDS[k]}"
}

# tornet_stop_client I: stop client instance I only (TERM; KILL after 5 s)
# and return once its SOCKS port no longer listens.  The relays and the
# other clients keep running, and tornet_down cleans up as usual (the
# stopped instance's log and data directory stay until then).  Call it from
# the main shell, like tornet_up (it reaps the tor).  Stopping a stopped
# instance succeeds.
tornet_stop_client() {
    local i=${1:-} k pid
    (($# == 1)) || { tornet_err "usage: tornet_stop_client I"; return 2; }
    [[ -n $TORNET_DIR ]] || { tornet_err "no tor network is up"; return 1; }
    tornet__instance "$i" "$TORNET_CLIENTS_UP" || return 2
    k=$(tornet__index_of "$(tornet__client_name "$i")") ||
        { tornet_err "client instance $i was never started"; return 1; }
    pid=${TORNET_PIDS[k]}
    if tornet__alive "$k"; then
        kill -TERM "$pid" 2>/dev/null
        if ! topo_wait_until 5 "client $i to exit" tornet__gone "$k" 2>/dev/null; then
            tornet__alive "$k" && kill -KILL "$pid" 2>/dev/null
            topo_wait_until 3 "client $i (pid $pid) to die" tornet__gone "$k" || return 1
        fi
    fi
    wait "$pid" 2>/dev/null
    topo_wait_until 5 "client $i's SOCKS port $(tornet_socks_addr "$i") to close" \
        tornet__socks_closed "$i"
}

# ---------------------------------------------------------------- control port

# The control-port client: authenticate with the cookie, send one command,
# print the whole answer (multi-line "250+" data blocks included), QUIT.
# Exits 0 for a 2xx answer.
TORNET__CONTROL_PY='
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
cookie = open(sys.argv[2], "rb").read().hex()
s = socket.create_connection((host, int(port)), timeout=10)
f = s.makefile("rwb")
def cmd(line):
    f.write(line.encode() + b"\r\n")
    f.flush()
    out, data = [], False
    while True:
        raw = f.readline()
        if not raw:
            sys.exit("tornet: control connection closed")
        l = raw.decode("utf-8", "replace").rstrip("\r\n")
        out.append(l)
        if data:
            data = l != "."
        elif len(l) >= 4 and l[3] == "+":
            data = True
        elif len(l) >= 4 and l[3] == " ":
            return l[:3], out
code, out = cmd("AUTHENTICATE " + cookie)
if code != "250":
    sys.exit("tornet: control authentication failed: " + " ".join(out))
code, out = cmd(sys.argv[3])
print("\n".join(out))
try:
    cmd("QUIT")
except Exception:
    pass
sys.exit(0 if code.startswith("2") else 1)
'

# tornet_control_of I CMD...: send one command to client instance I's
# control port (in the gateway namespace) and print the answer, e.g.
#   tornet_control_of 1 GETINFO circuit-status
tornet_control_of() {
    local i=${1:-}
    (($# >= 2)) || { tornet_err "usage: tornet_control_of I COMMAND..."; return 2; }
    shift
    [[ -n $TORNET_DIR ]] || { tornet_err "no tor network is up"; return 1; }
    tornet__instance "$i" "${TORNET_CLIENTS_UP:-1}" || return 2
    tornet__control "$i" "$*"
}

# tornet_control CMD...: the same for instance 0, e.g.
#   tornet_control GETINFO circuit-status
tornet_control() {
    [[ -n $TORNET_DIR ]] || { tornet_err "no tor network is up"; return 1; }
    tornet__control 0 "$*"
}

tornet__control() {   # I COMMAND
    local cookie
    cookie=$TORNET_DIR/$(tornet__client_name "$1")/control_auth_cookie
    # tor removes the cookie when it exits
    [[ -r $cookie ]] || { tornet_err "client instance $1 is not running (no $cookie)"; return 1; }
    topo_exec "$TORNET_CLIENT_NS" "$TOPO_PY" -I -c "$TORNET__CONTROL_PY" \
        "$(tornet_control_addr "$1")" "$cookie" "$2"
}

# tornet_bootstrap_phase [I]: client instance I's bootstrap status line
tornet_bootstrap_phase() {
    tornet_control_of "${1:-0}" GETINFO status/bootstrap-phase |
        sed -n 's/^250-status\/bootstrap-phase=//p'
}

# ---------------------------------------------------------------- command line

# tornet__load RUN: pick up a run made by "tornet.sh up" from another shell
tornet__load() {
    local run=$1 d t
    if [[ -z $run ]]; then
        local runs=()
        for t in "$TOPO_TMP"/ts-netns-*.??????/tornet.??????; do
            [[ -d $t ]] || continue
            d=${t%/*}
            d=${d##*/ts-netns-}
            runs+=("ts-${d%%.*}")
        done
        ((${#runs[@]} == 1)) || { tornet_err "${#runs[@]} tor networks are up; name one (RUN like ts-1234)"; return 1; }
        run=${runs[0]}
    fi
    [[ $run =~ ^ts-[0-9]+$ ]] || { tornet_err "RUN looks like ts-1234"; return 1; }
    for t in "$TOPO_TMP/ts-netns-${run#ts-}".??????/tornet.??????; do
        [[ -f $t/state ]] || continue
        TOPO_RUN=$run TOPO_DIR=${t%/*} TORNET_DIR=$t
        TOPO_NS_GW=$run-gw TOPO_NS_UP=$run-up
        TORNET_CLIENTS_UP=$(sed -n 's/^TORNET_CLIENT_INSTANCES=\([1-9]\)$/\1/p' "$t/state")
        TORNET_CLIENTS_UP=${TORNET_CLIENTS_UP:-1}
        TORNET_ONION_UP=0
        grep -qx 'TORNET_ONION=1' "$t/state" && TORNET_ONION_UP=1
        TORNET_ONION=$TORNET_ONION_UP tornet__layout
        return 0
    done
    tornet_err "no tor network in run $run"
}

tornet__main() {
    local cmd=${1:-} t d owner start mode i
    case $cmd in
    up)
        TOPO_CLIENTS=${2:-$TOPO_CLIENTS}
        TOPO_NO_TRAP=1 TOPO__MODE=persist topo_up || exit 1
        tornet_up || { topo_down; exit 1; }
        topo_status
        echo
        echo "tor network: $TORNET_DIR (torrcs, keys, data); logs $TOPO_DIR/tor-*.log"
        echo "bootstrap:   $TORNET_BOOT_MS ms (consensus $TORNET_CONSENSUS_MS ms, then the clients $TORNET_CLIENT_MS ms)"
        echo "relays:      $(tornet_relays | tr '\n' ' ')in $TOPO_NS_UP; exit $(tornet_exit_addr)"
        for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do
            echo "client $i:    SOCKS $(tornet_socks_addr "$i"), control $(tornet_control_addr "$i"), pid $(tornet_client_pid "$i")"
        done
        if [[ $TORNET_ONION_UP == 1 ]]; then
            echo "onion:       $(tornet_onion_addr) (80, 443 -> $TOPO_HTTP4, from $TORNET_ONION_BIND;" \
                "descriptor after $TORNET_ONION_DESC_MS ms, fetched after $TORNET_ONION_MS ms)"
        fi
        echo "try:         ip netns exec $TOPO_NS_GW curl --socks5-hostname $TORNET_SOCKS http://www.example.test/"
        [[ $TORNET_ONION_UP != 1 ]] ||
            echo "             ip netns exec $TOPO_NS_GW curl --socks5-hostname $TORNET_SOCKS http://$(tornet_onion_addr)/"
        echo "             $0 control $TOPO_RUN GETINFO circuit-status"
        ((TORNET_CLIENTS_UP == 1)) ||
            echo "             $0 control $TOPO_RUN 1 GETINFO circuit-status    (instance 1)"
        echo "remove:      $0 down $TOPO_RUN"
        ;;
    down)
        if [[ -n ${2:-} ]]; then
            [[ $2 =~ ^ts-[0-9]+$ ]] || { tornet_err "RUN looks like ts-1234"; exit 2; }
            topo__remove_run "$2" || exit 1
            rm -rf -- "$TOPO_TMP/ts-netns-${2#ts-}".??????
        else
            # every run of "tornet.sh up" (persist runs holding a tor network),
            # and stale runs; other tests' live runs stay
            for t in "$TOPO_TMP"/ts-netns-*.??????/tornet.??????; do
                [[ -d $t ]] || continue
                d=${t%/*}
                read -r owner start mode <"$d/owner" 2>/dev/null || continue
                [[ $mode == persist ]] || continue
                topo__remove_run "ts-$owner" || exit 1
                rm -rf -- "$d"
            done
            topo_cleanup_stale
        fi
        ;;
    status)
        tornet__load "${2:-}" || exit 1
        topo_status "$TOPO_RUN"
        echo "tor processes:"
        for t in "$TOPO_NS_UP" "$TOPO_NS_GW"; do
            for d in $(ip netns pids "$t"); do
                [[ $(cat "/proc/$d/comm" 2>/dev/null) == tor ]] &&
                    echo "   $t pid $d: $(tr '\0' ' ' <"/proc/$d/cmdline")"
            done
        done
        [[ $TORNET_ONION_UP != 1 ]] || echo "onion service: $(tornet_onion_addr)"
        for ((i = 0; i < TORNET_CLIENTS_UP; i++)); do
            echo "client $i (SOCKS $(tornet_socks_addr "$i")):"
            echo "  bootstrap: $(tornet_bootstrap_phase "$i" 2>&1)"
            tornet_control_of "$i" GETINFO circuit-status 2>&1 | sed 's/^/  /'
        done
        ;;
    control)
        shift
        if [[ ${1:-} =~ ^ts-[0-9]+$ ]]; then
            tornet__load "$1" || exit 1
            shift
        else
            tornet__load "" || exit 1
        fi
        i=0
        if [[ ${1:-} =~ ^[0-9]$ ]]; then
            i=$1
            shift
        fi
        (($#)) || { tornet_err "usage: $0 control [RUN] [I] COMMAND..."; exit 2; }
        tornet_control_of "$i" "$@"
        ;;
    *)
        echo "usage: [TORNET_CLIENT_INSTANCES=N] [TORNET_ONION=1] $0 up [CLIENTS] | down [RUN] | status [RUN] |" \
            "control [RUN] [I] COMMAND..." >&2
        exit 2
        ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    topo_check_tools || exit 2
    tornet_check_tools || exit 2
    tornet__main "$@"
fi
