#!/usr/bin/python3
"""Checks torsieve replay against the fixtures in test/pcaps/.

Prints one "PASS name" or "FAIL name: why" line per check (test/run.sh counts
them). Checks:
  labels      per-packet output against the generator's own labels
  expected    summary and per-packet output against the reviewed expected files
  counters    the summary agrees with the per-packet lines
  oracle      per-packet matches agree with tcpdump for a fixed set of filters
  streams     reassembled streams: deterministic, as expected, equal to tcpflow's
              and tshark's where those agree, the disagreements noted
  badinput    corrupt, missing and empty files, and usage errors
  generator   craft.py reproduces the committed crafted fixtures byte for byte
"""
import argparse
import collections
import concurrent.futures
import filecmp
import functools
import glob
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile

RESULTS = {"pass": 0, "fail": 0}


def report(name, ok, why=""):
    if ok:
        RESULTS["pass"] += 1
        print(f"PASS {name}")
    else:
        RESULTS["fail"] += 1
        print(f"FAIL {name}: {why}")
    sys.stdout.flush()


def run(cmd, stdin=None):
    return subprocess.run(cmd, capture_output=True, text=True, stdin=stdin)


def fixtures(pcaps):
    files = sorted(glob.glob(os.path.join(pcaps, "*.pcap")) +
                   glob.glob(os.path.join(pcaps, "*.pcapng")))
    return files


def stem(path):
    return re.sub(r"\.pcap(ng)?$", "", path)


# Each capture's output is read by several checks; none of them changes it.
@functools.lru_cache(maxsize=None)
def replay_lines(ts, path):
    """The packet lines in the order torsieve wrote them: a fragment's line
    comes when its datagram is reassembled or given up."""
    r = run([ts, "replay", "--packets", "--json", path])
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {r.stderr.strip()}")
    return tuple(json.loads(line) for line in r.stdout.splitlines())


def replay_packets(ts, path):
    """The packet lines in file order."""
    return sorted(replay_lines(ts, path), key=lambda p: p["n"])


@functools.lru_cache(maxsize=None)
def replay_summary(ts, path):
    r = run([ts, "replay", "--json", path])
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


# ---- labels ----

def check_labels(ts, path):
    label_file = stem(path) + ".labels.jsonl"
    if not os.path.exists(label_file):
        return
    name = f"labels {os.path.basename(path)}"
    with open(label_file) as f:
        labels = [json.loads(line) for line in f if line.strip()]
    try:
        packets = replay_packets(ts, path)
    except RuntimeError as e:
        report(name, False, str(e))
        return
    problems = []
    if len(packets) != len(labels):
        problems.append(f"{len(packets)} packets, {len(labels)} labels")
    for label, pkt in zip(labels, packets):
        for key, want in label.items():
            got = pkt.get(key)
            if key == "anomaly":
                got = pkt.get("anomaly", "none")
            if got != want:
                problems.append(f"packet {label['n']}: {key} is {got!r}, label says {want!r}")
    report(name, not problems, "; ".join(problems[:8]) +
           (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""))


# ---- expected outputs ----

def check_expected(ts, path):
    base = stem(path)
    for suffix, kind in ((".summary.json", "summary"), (".packets.jsonl", "packets")):
        expected = base + suffix
        if not os.path.exists(expected):
            continue
        name = f"expected {kind} {os.path.basename(path)}"
        args = ["replay", "--json", path] if kind == "summary" else \
               ["replay", "--packets", "--json", path]
        r = run([ts] + args)
        with open(expected) as f:
            want = f.read()
        if r.returncode != 0:
            report(name, False, f"exit {r.returncode}: {r.stderr.strip()}")
        elif r.stdout != want:
            got_lines, want_lines = r.stdout.splitlines(), want.splitlines()
            diff = next((i for i, (a, b) in enumerate(zip(got_lines, want_lines)) if a != b),
                        min(len(got_lines), len(want_lines)))
            report(name, False, f"differs at line {diff + 1}: "
                   f"got {got_lines[diff] if diff < len(got_lines) else '<eof>'!r}")
        else:
            report(name, True)


# ---- counters: summary against per-packet lines ----

def check_counters(ts, path):
    name = f"counters {os.path.basename(path)}"
    try:
        packets = replay_packets(ts, path)
        summary = replay_summary(ts, path)
    except RuntimeError as e:
        report(name, False, str(e))
        return
    problems = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: summary {got}, packets {want}")

    expect("packets", summary["packets"], len(packets))
    expect("bytes", summary["bytes"], sum(p["len"] for p in packets))
    expect("l3.ipv4", summary["l3"]["ipv4"], sum(p["l3"] == "ipv4" for p in packets))
    expect("l3.ipv6", summary["l3"]["ipv6"], sum(p["l3"] == "ipv6" for p in packets))
    expect("l3 total", sum(summary["l3"].values()), len(packets))
    for proto in ("tcp", "udp", "icmp", "icmp6"):
        expect(f"l4.{proto}", summary["l4"][proto], sum(p["proto"] == proto for p in packets))
    expect("l4 total", sum(summary["l4"].values()), len(packets))
    expect("fragments", summary["fragments"], sum("frag" in p for p in packets))
    expect("vlan_tagged", summary["vlan_tagged"], sum(bool(p["vlan"]) for p in packets))
    reasons = collections.Counter(p["anomaly"] for p in packets if "anomaly" in p)
    expect("anomalies", summary["anomalies"], dict(reasons))
    expect("anomalous", summary["anomalous"], sum(reasons.values()))
    for key in ("file", "linktype", "packets", "bytes", "l3", "l4", "fragments", "anomalies",
                "verdicts", "rules", "policy", "default_drops"):
        if key not in summary:
            problems.append(f"summary lacks {key}")
    # Every packet under exactly one verdict, and exactly one reason: a rule,
    # the implicit drop, or malformed.
    verdicts = collections.Counter(p["verdict"] for p in packets)
    for v in ("drop", "reject", "pass", "divert", "dns"):
        expect(f"verdicts.{v}", summary["verdicts"][v], verdicts.get(v, 0))
    expect("verdicts total", sum(summary["verdicts"].values()), len(packets))
    hits = collections.Counter(p["rule"] for p in packets)
    for rule in summary["rules"]:
        expect(f"rule line {rule['line']} hits", rule["hits"], hits.get(rule["line"], 0))
    expect("rule hits + default drops + malformed + defrag drops",
           sum(r["hits"] for r in summary["rules"]) + summary["default_drops"] +
           summary["anomalous"] + summary.get("defrag_drops", 0), len(packets))
    # One line per record; only a fragment's line may come late (when its
    # datagram is done), and every fragment a clean decode let in has one.
    lines = replay_lines(ts, path)
    expect("one line per record", sorted(p["n"] for p in lines), list(range(1, len(lines) + 1)))
    last = 0
    for p in lines:
        if p["n"] < last and "defrag" not in p:
            problems.append(f"packet {p['n']} out of order without being a fragment")
        if "defrag" not in p:
            last = max(last, p["n"])
    dropped = [p for p in packets if "defrag" in p and
               (p["defrag"]["fate"] != "reassembled" or "anomaly" in p["defrag"])]
    expect("defrag drops", summary.get("defrag_drops", 0), len(dropped))
    expect("defrag fragments", summary.get("defrag", {}).get("fragments", 0),
           sum("defrag" in p for p in packets))
    expect("defrag drops are drops by no rule",
           sum((p["verdict"], p["rule"]) != ("drop", 0) or "flow" in p for p in dropped), 0)
    expect("malformed are dropped by no rule", sum(1 for p in packets if "anomaly" in p and
                                                   (p["verdict"], p["rule"]) != ("drop", 0)), 0)
    # Flows: the verdict is decided on a flow's first packet and kept.
    by_flow = {}
    for p in packets:
        if "anomaly" in p:
            if "flow" in p:
                problems.append(f"malformed packet {p['n']} has a flow")
            continue
        if "flow" not in p:
            if not any(p is d for d in dropped):
                problems.append(f"packet {p['n']} has no flow")
            continue
        first = by_flow.setdefault(p["flow"], (p["verdict"], p["rule"]))
        if first != (p["verdict"], p["rule"]):
            problems.append(f"packet {p['n']}: flow {p['flow']} was {first}, now "
                            f"{(p['verdict'], p['rule'])}")
    flows = summary.get("flows", {})
    expect("flows.total", flows.get("total"), len(by_flow))
    expect("flows by protocol", flows.get("tcp", 0) + flows.get("udp", 0) + flows.get("other", 0),
           flows.get("total"))
    report(name, not problems, "; ".join(problems[:6]))


# ---- oracle: tcpdump ----

# Each filter with the predicate that says which decoded packets tcpdump's BPF
# should match. Where BPF and torsieve differ on purpose the predicate says so:
#  - BPF without the 'vlan' keyword does not look inside VLAN tags;
#  - 'tcp'/'udp' on IPv6 test only the fixed header's next-header field, so a
#    packet with extension headers is not TCP/UDP to BPF;
#  - BPF validates nothing, so anomalous packets are left out of the
#    comparison on both sides (the decoder unit tests and the labels cover them).
#  - but 'tcp'/'udp'/'icmp6' without ports do look through one fragment header
#    right after the fixed header (libpcap's gen_proto), so those match an
#    IPv6 packet whose only extension header is a fragment header.
def plain(p):
    return not p["vlan"] and not p.get("ipv6_ext")


def plain_or_fragment(p):
    return not p["vlan"] and p.get("ipv6_ext", []) in ([], [44])


ORACLE_FILTERS = [
    ("tcp dst port 80", lambda p: plain(p) and p["proto"] == "tcp" and p.get("dport") == 80),
    ("udp dst port 53", lambda p: plain(p) and p["proto"] == "udp" and p.get("dport") == 53),
    ("ip6", lambda p: not p["vlan"] and p["l3"] == "ipv6"),
    ("vlan", lambda p: bool(p["vlan"])),
    ("icmp", lambda p: not p["vlan"] and p["l3"] == "ipv4" and p["proto"] == "icmp"),
    ("ip", lambda p: not p["vlan"] and p["l3"] == "ipv4"),
    ("tcp", lambda p: plain_or_fragment(p) and p["proto"] == "tcp"),
    ("udp", lambda p: plain_or_fragment(p) and p["proto"] == "udp"),
    ("icmp6", lambda p: plain_or_fragment(p) and p["proto"] == "icmp6"),
    ("ip[6:2] & 0x3fff != 0", lambda p: not p["vlan"] and p["l3"] == "ipv4" and "frag" in p),
]

def read_pcap_records(data):
    """(ts_sec, ts_frac, caplen, len, bytes) of each record of a pcap file as
    tcpdump -w writes it (either byte order)."""
    import struct
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    records, off = [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        records.append((sec, frac, caplen, wirelen, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return records


def tcpdump_records(path, expr=None):
    cmd = ["tcpdump", "-r", path, "-w", "-"] + ([expr] if expr else [])
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        return None, err[-1] if err else "failed"
    return read_pcap_records(r.stdout), None


def tcpdump_matches(path, expr, everything):
    """The 1-based file positions of the packets tcpdump's filter keeps: the
    records it writes are lined up, in order, against every record."""
    kept, err = tcpdump_records(path, expr)
    if kept is None:
        if "rejects all packets" in err:
            return set(), None
        return None, err
    numbers, i = set(), 0
    for rec in kept:
        while i < len(everything) and everything[i] != rec:
            i += 1
        if i == len(everything):
            return None, "tcpdump wrote a packet that is not in the file"
        numbers.add(i + 1)
        i += 1
    return numbers, None


def check_oracle(ts, path):
    name = f"oracle {os.path.basename(path)}"
    try:
        packets = replay_packets(ts, path)
    except RuntimeError as e:
        report(name, False, str(e))
        return
    anomalous = {p["n"] for p in packets if "anomaly" in p}
    everything, err = tcpdump_records(path)
    if everything is None or len(everything) != len(packets):
        report(name, False, f"tcpdump reads {err or len(everything)} packets, "
                            f"torsieve {len(packets)}")
        return
    problems, compared = [], 0
    for expr, predicate in ORACLE_FILTERS:
        theirs, err = tcpdump_matches(path, expr, everything)
        if theirs is None:
            # libpcap cannot filter some link types at all (DLT_USER0), nor
            # VLANs inside Linux cooked framing; nothing to compare there.
            if "filtering not implemented" in err and len(anomalous) == len(packets):
                continue
            if expr == "vlan" and "no VLAN support" in err:
                continue
            problems.append(f"tcpdump '{expr}': {err}")
            continue
        ours = {p["n"] for p in packets if predicate(p)}
        theirs -= anomalous
        ours -= anomalous
        compared += 1
        if ours != theirs:
            problems.append(f"'{expr}': torsieve {len(ours)}, tcpdump {len(theirs)}; "
                            f"only torsieve {sorted(ours - theirs)[:5]}, "
                            f"only tcpdump {sorted(theirs - ours)[:5]}")
    if compared == 0 and len(anomalous) == len(packets):
        report(name + " (nothing comparable: every packet anomalous)", not problems)
        return
    report(name, not problems and compared > 0,
           "; ".join(problems) if problems else "no filter compared")


# ---- streams: tcpflow and tshark as oracles, determinism, snap length ----

def tcpflow_name(addr, port):
    if ":" in addr:
        return f"{addr}.{port:05d}"
    return ".".join(f"{int(x):03d}" for x in addr.split(".")) + f".{port:05d}"


def replay_streams(ts, path, out):
    r = run([ts, "replay", "--streams", out, "--json", path])
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {r.stderr.strip()}")
    with open(os.path.join(out, "streams.json")) as f:
        return json.loads(r.stdout), [json.loads(line) for line in f]


# tshark's "follow tcp raw" is the second oracle. What it writes does not
# depend on tshark's TCP reassembly: its tap gets each segment's captured
# payload from the TCP dissector before any desegmentation, and it orders the
# bytes itself. A segment at a direction's next expected sequence number is
# appended whole (so bytes it re-sends over out-of-order data held for later
# replace those), bytes behind that number are dropped (the first copy wins
# there), out-of-order segments wait until the hole before them fills, and a
# hole the other side acknowledges becomes "[N bytes missing in capture
# file]" (such directions have gaps here, and are not compared). FIN and RST
# end nothing. So tcp.desegment_tcp_streams, tcp.reassemble_out_of_order,
# relative or absolute sequence numbers, sequence analysis and checksum
# checks all give the same bytes (checked on every fixture; a bad checksum
# does not keep a segment out of follow, and torsieve checks none either).
# They are pinned, and the personal configuration directory is an empty one,
# so that no preferences file, disabled protocol or decode-as entry on the
# machine changes the run. What does matter is that IPv4 and IPv6 fragments
# are reassembled, so TCP carried in fragments is followed as torsieve's
# defragmenter delivers it. -n: no name resolution; the node lines give
# addresses.
TSHARK_PREFS = ["-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tcp.reassemble_out_of_order:TRUE",
                "-o", "tcp.relative_sequence_numbers:FALSE",
                "-o", "tcp.analyze_sequence_numbers:TRUE", "-o", "tcp.check_checksum:FALSE",
                "-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE"]


# A tshark run takes longer than the rest of a capture's checks, so main()
# starts them all in the background first; check_oracles waits for its own.
TSHARK_RUNS = {}


def start_tshark_runs(ts, files):
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1))
    for path in files:
        try:
            packets = replay_packets(ts, path)
        except RuntimeError:
            continue
        if any(p.get("proto") == "tcp" for p in packets):
            TSHARK_RUNS[path] = pool.submit(tshark_follow, path, len(packets))
    return pool


def endpoint(addr, port):
    # Addresses compared as addresses: tshark and torsieve may write an IPv6
    # address differently.
    return ipaddress.ip_address(addr), port


def parse_follow(text):
    """tshark -q -z follow,tcp,raw,N output, any number of them: {N: (node 0,
    node 1, [node 0's bytes, node 1's bytes])}, a node being endpoint()'s
    (address, port). An index with no stream (its nodes print as ":0") is
    left out."""
    streams, cur = {}, None
    for line in text.splitlines():
        if not line or line.startswith("=") or line.startswith("Follow: "):
            continue
        if line.startswith("Filter: "):
            m = re.fullmatch(r"Filter: tcp\.stream eq (\d+)", line)
            if not m:
                raise ValueError(f"tshark follow: {line!r}")
            cur = streams[int(m.group(1))] = ([], [bytearray(), bytearray()])
        elif line.startswith("Node ") and cur is not None:
            # "Node 0: 192.0.2.1:40001", "Node 1: [2001:db8::2]:80", "Node 0: :0"
            addr, _, port = line.split(": ", 1)[1].rpartition(":")
            cur[0].append(endpoint(addr.strip("[]"), int(port)) if addr else None)
        elif re.fullmatch(r"\t?[0-9a-f]+", line) and cur is not None:
            # Node 1's data is indented with a tab.
            cur[1][line.startswith("\t")].extend(bytes.fromhex(line.strip()))
        else:
            raise ValueError(f"tshark follow: {line!r}")
    return {n: (nodes[0], nodes[1], data) for n, (nodes, data) in streams.items()
            if len(nodes) == 2 and None not in nodes}


def tshark_follow(path, frames):
    """Every TCP stream tshark sees in the capture, as parse_follow gives
    them, from one tshark run. A frame starts at most one stream, so indices
    below the number of frames are all there can be; should the last one
    asked for exist after all, twice as many are asked for."""
    want = max(frames, 1)
    with tempfile.TemporaryDirectory() as config:
        while True:
            cmd = ["tshark", "-n", "-q", "-r", path] + TSHARK_PREFS
            for n in range(want):
                cmd += ["-z", f"follow,tcp,raw,{n}"]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True,
                                   env=dict(os.environ, WIRESHARK_CONFIG_DIR=config))
            except OSError as e:
                return None, str(e)
            if r.returncode != 0:
                err = r.stderr.strip().splitlines()
                return None, f"tshark exit {r.returncode}: {err[-1] if err else ''}"
            try:
                streams = parse_follow(r.stdout)
            except ValueError as e:
                return None, str(e)
            if want - 1 not in streams:
                return streams, None
            want *= 2


def tshark_directions(follow, streams):
    """tshark's bytes for each of torsieve's directions, by (flow, dir): the
    stream with the same two endpoints, the side that sent from src:sport.
    tshark starts a new stream when a SYN reuses a 4-tuple; where torsieve
    has as many flows on those endpoints as tshark has streams, they are
    paired in order, otherwise that 4-tuple is not compared (None)."""
    theirs, ours = collections.defaultdict(list), collections.defaultdict(list)
    for n in sorted(follow):
        a, b, data = follow[n]
        theirs[frozenset((a, b))].append((a, data))
    for x in sorted(streams, key=lambda x: x["flow"]):
        key = frozenset((endpoint(x["src"], x["sport"]), endpoint(x["dst"], x["dport"])))
        if x["flow"] not in ours[key]:
            ours[key].append(x["flow"])
    got = {}
    for x in streams:
        src = endpoint(x["src"], x["sport"])
        key = frozenset((src, endpoint(x["dst"], x["dport"])))
        if len(key) != 2 or len(ours[key]) != len(theirs[key]):
            got[(x["flow"], x["dir"])] = None
            continue
        node0, data = theirs[key][ours[key].index(x["flow"])]
        got[(x["flow"], x["dir"])] = bytes(data[0 if src == node0 else 1])
    return got


def tcpflow_directions(path, streams, out, unreadable):
    """tcpflow's bytes for each direction, by (flow, dir), or a reason it
    has none for the whole capture. tcpflow writes no file for a direction
    without bytes, and starts a new file (NAMEc1, ...) for what comes on a
    4-tuple after it saw a FIN or RST: its stream is the first file."""
    os.makedirs(out)
    r = run(["tcpflow", "-r", path, "-o", out])
    if r.returncode != 0:
        # tcpflow reads Ethernet, cooked v1, raw IP, DLT_NULL and pcapng
        # of those; not DLT_IPV4/IPV6, DLT_LOOP or cooked v2.
        return None, "tcpflow cannot read this link type"
    if not [f for f in os.listdir(out) if f != "report.xml"] and any(x["bytes"] for x in streams):
        # tcpflow takes DLT_NULL's family in its own byte order, so it
        # finds no TCP in a capture written on a big-endian host.
        return None, "tcpflow found no TCP in it"
    got = {}
    for x in streams:
        if (x["src"], x["sport"], x["dst"], x["dport"]) in unreadable:
            got[(x["flow"], x["dir"])] = None
            continue
        tf = os.path.join(out, f"{tcpflow_name(x['src'], x['sport'])}-"
                               f"{tcpflow_name(x['dst'], x['dport'])}")
        got[(x["flow"], x["dir"])] = open(tf, "rb").read() if os.path.exists(tf) else b""
    return got, None


ORACLE_NOTE_MATCHES = ("tcpflow", "tshark", "neither", "expectation")


def load_oracle_notes(path):
    """NAME.oracle-notes.json, a list of {"flow", "dir", "matches", "why"}:
    why tcpflow and tshark disagree on a direction, and which of them
    torsieve matches ("neither" when it matches neither). "expectation" is
    for a crafted capture where the two agree with each other and torsieve,
    on purpose, matches the capture's expectation instead.
    Returns ({(flow, dir): note}, problems)."""
    notes_file = stem(path) + ".oracle-notes.json"
    if not os.path.exists(notes_file):
        return {}, []
    try:
        with open(notes_file) as f:
            entries = json.load(f)
    except ValueError as e:
        return {}, [f"{os.path.basename(notes_file)}: {e}"]
    if not isinstance(entries, list):
        return {}, [f"{os.path.basename(notes_file)}: not a list"]
    notes, problems = {}, []
    for note in entries:
        if not isinstance(note, dict) or not isinstance(note.get("flow"), int) or \
                note.get("dir") not in ("c2s", "s2c") or \
                note.get("matches") not in ORACLE_NOTE_MATCHES or not note.get("why"):
            problems.append(f"oracle note {note!r}: needs flow, dir (c2s or s2c), why and "
                            f"matches (one of {', '.join(ORACLE_NOTE_MATCHES)})")
        elif (note["flow"], note["dir"]) in notes:
            problems.append(f"two oracle notes for flow {note['flow']} {note['dir']}")
        else:
            notes[(note["flow"], note["dir"])] = note
    return notes, problems


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


ORACLE_COUNTS = ("equal to tcpflow and tshark", "equal to tshark alone", "equal to tcpflow alone",
                 "with a noted disagreement", "with gaps", "not comparable")


def check_oracles(ts, path, streams, ours, tmp, expect):
    """Every stream direction without gaps against tcpflow and tshark: where
    the two agree, torsieve's bytes must be theirs; where they disagree, a
    note must say why and which one torsieve matches; where only one of them
    can see the direction, torsieve must match that one. A false note fails,
    and so does a stale one (its direction is no longer a disagreement).
    Returns (problems, what was compared, for the report line)."""
    problems = []
    notes, bad = load_oracle_notes(path)
    problems += bad
    # Directions neither oracle can be compared on: tuples that some
    # malformed packet also used (torsieve never reassembles a malformed
    # packet; tcpflow and tshark validate nothing). tcpflow alone does not
    # walk past an IPv6 AH header to the TCP header.
    packets = replay_packets(ts, path)
    skip, no_tcpflow = set(), set()
    for p in packets:
        if p.get("sport") is None or p["l3"] is None:
            continue
        for tuple4 in ((p["src"], p["sport"], p["dst"], p["dport"]),
                       (p["dst"], p["dport"], p["src"], p["sport"])):
            if "anomaly" in p:
                skip.add(tuple4)
            if 51 in p.get("ipv6_ext", []):
                no_tcpflow.add(tuple4)
    later = TSHARK_RUNS.get(path)
    follow, tshark_err = later.result() if later else tshark_follow(path, len(packets))
    if follow is None:
        problems.append(tshark_err)
        follow = {}
    by_tshark = tshark_directions(follow, streams)
    by_tcpflow, tcpflow_err = tcpflow_directions(path, streams, os.path.join(tmp, "tcpflow"),
                                                 no_tcpflow)
    by_tcpflow = by_tcpflow or {}
    expected = {(w["flow"], w["dir"]): w["sha256"] for w in expect or []}
    counts = collections.Counter()
    for x in streams:
        d = (x["flow"], x["dir"])
        where = f"flow {x['flow']} {x['dir']}"
        note = notes.pop(d, None)
        tf, sh = by_tcpflow.get(d), by_tshark.get(d)
        if (x["src"], x["sport"], x["dst"], x["dport"]) in skip or (tf is None and sh is None):
            counts["not comparable"] += 1
            tf = sh = None
        elif x["gaps"]:
            # The three fill gaps differently (the snap-length check below
            # covers those directions).
            counts["with gaps"] += 1
            tf = sh = None
        if note and (tf is None or sh is None):
            problems.append(f"{where}: stale oracle note (not two oracles to disagree)")
            note = None
        if tf is None and sh is None:
            continue
        with open(os.path.join(ours, f"{x['flow']}-{x['dir']}"), "rb") as f:
            mine = f.read()
        if tf is None or sh is None:
            oracle, theirs = ("tcpflow", tf) if sh is None else ("tshark", sh)
            if mine == theirs:
                counts[f"equal to {oracle} alone"] += 1
            else:
                problems.append(f"{where}: {len(mine)} bytes differ from {oracle}'s "
                                f"{len(theirs)} at offset {first_difference(mine, theirs)}")
        elif tf == sh:
            if mine == tf:
                counts["equal to tcpflow and tshark"] += 1
                if note:
                    problems.append(f"{where}: stale oracle note (tcpflow and tshark agree, "
                                    f"and torsieve with them)")
            elif note and note["matches"] == "expectation" and expected.get(d) == x["sha256"]:
                counts["with a noted disagreement"] += 1
            else:
                # Expected to be a torsieve bug: no note can excuse it, except
                # where a crafted capture's expectation says otherwise.
                why = ""
                if note and note["matches"] == "expectation":
                    why = " and from the capture's expectation" if expect is not None else \
                        " (an expectation note, on a capture without one)"
                problems.append(f"{where}: tcpflow and tshark agree on {len(tf)} bytes; torsieve's "
                                f"{len(mine)} differ at offset {first_difference(mine, tf)}{why}")
        elif not note:
            problems.append(f"{where}: tcpflow ({len(tf)} bytes) and tshark ({len(sh)}) disagree "
                            f"from offset {first_difference(tf, sh)}, and no oracle note says why")
        else:
            matches = "tcpflow" if mine == tf else "tshark" if mine == sh else "neither"
            if note["matches"] == matches:
                counts["with a noted disagreement"] += 1
            elif note["matches"] == "expectation":
                problems.append(f"{where}: oracle note says tcpflow and tshark agree; they differ "
                                f"from offset {first_difference(tf, sh)}")
            else:
                problems.append(f"{where}: oracle note says torsieve matches "
                                f"{note['matches']}; it matches {matches}")
    for flow, direction in notes:
        problems.append(f"flow {flow} {direction}: stale oracle note (no such direction)")
    described = [f"{counts[k]} {k}" for k in ORACLE_COUNTS if counts[k]]
    return problems, (described + [tcpflow_err] if tcpflow_err else described)


def check_streams(ts, path):
    name = f"streams {os.path.basename(path)}"
    with tempfile.TemporaryDirectory() as tmp:
        ours, again = (os.path.join(tmp, d) for d in ("ours", "again"))
        try:
            summary, streams = replay_streams(ts, path, ours)
            _, streams_again = replay_streams(ts, path, again)
        except (RuntimeError, OSError, ValueError) as e:
            report(name, False, str(e))
            return
        problems = []
        # Determinism: the same capture twice, byte for byte.
        if streams != streams_again:
            problems.append("streams.json differs between two runs")
        for fn in sorted(os.listdir(ours)):
            if not filecmp.cmp(os.path.join(ours, fn), os.path.join(again, fn), shallow=False):
                problems.append(f"{fn} differs between two runs")
        if summary["streams"]["count"] != len(streams):
            problems.append(f"summary counts {summary['streams']['count']} streams, "
                            f"streams.json has {len(streams)}")
        if summary["streams"]["bytes"] != sum(x["bytes"] for x in streams):
            problems.append("summary bytes differ from the streams' sum")
        for x in streams:
            data = open(os.path.join(ours, f"{x['flow']}-{x['dir']}"), "rb").read()
            if len(data) != x["bytes"] or hashlib.sha256(data).hexdigest() != x["sha256"]:
                problems.append(f"flow {x['flow']} {x['dir']}: file and line disagree")
        # Crafted evasion captures carry their own expectation (written by
        # gen/craft_streams.py and gen/craft_frags.py from the reassembly
        # contract): those are exactly the cases where the oracles' policies
        # differ from it and from each other (tcpflow keeps the last copy,
        # bytes after a FIN and stops at any RST; tshark ignores FIN and RST),
        # so their notes carry most of the disagreements.
        expect, described = None, [f"{len(streams)} directions"]
        expect_file = stem(path) + ".expect.json"
        if os.path.exists(expect_file):
            with open(expect_file) as f:
                expect = json.load(f)
            if isinstance(expect, dict):
                expect = expect.get("streams", [])
            fields = ("flow", "dir", "bytes", "sha256", "gaps", "gap_bytes",
                      "inconsistent_overlaps")
            got = [{k: x[k] for k in fields} for x in streams]
            want = [{k: x[k] for k in fields} for x in expect]
            if got != want:
                diff = [f"{w['flow']}-{w['dir']}: want {w}, got {g}"
                        for w, g in zip(want, got) if w != g] or [f"{len(got)} vs {len(want)}"]
                problems.append("expectation: " + "; ".join(diff[:2]))
            described[0] += " against its expectation"
        if streams:
            more, counts = check_oracles(ts, path, streams, ours, tmp, expect)
            problems += more
            described += counts
        report(f"{name} ({', '.join(described)})", not problems, "; ".join(problems[:5]))


def check_snapped_streams(ts, pcaps):
    """real-snap96 holds the same packets as real-eth, cut at 96 bytes: each
    direction's bytes plus its gap bytes must be real-eth's bytes."""
    full, snapped = (os.path.join(pcaps, f) for f in ("real-eth.pcap", "real-snap96.pcap"))
    if not (os.path.exists(full) and os.path.exists(snapped)):
        return
    with tempfile.TemporaryDirectory() as tmp:
        _, a = replay_streams(ts, full, os.path.join(tmp, "a"))
        _, b = replay_streams(ts, snapped, os.path.join(tmp, "b"))
    key = lambda x: (x["src"], x["sport"], x["dst"], x["dport"])
    whole = {key(x): x for x in a}
    bad = [key(x) for x in b if key(x) not in whole or
           x["bytes"] + x["gap_bytes"] != whole[key(x)]["bytes"]]
    gaps = sum(x["gaps"] for x in b)
    report("streams of a snapped capture: bytes + gap bytes = the full capture's bytes",
           len(a) == len(b) and not bad and gaps > 0, f"{bad[:3]}, {gaps} gaps")


# ---- bad input ----

def check_bad_input(ts, pcaps):
    for path in sorted(glob.glob(os.path.join(pcaps, "bad", "*"))):
        if path.endswith(".md"):
            continue
        for mode in (["--json"], ["--packets", "--json"], []):
            name = f"badinput {os.path.basename(path)} {' '.join(mode) or 'human'}"
            r = run([ts, "replay"] + mode + [path])
            lines = r.stderr.splitlines()
            ok = r.returncode == 2 and len(lines) == 1 and path in lines[0]
            # A file that breaks mid-way may have printed packets before; a
            # summary of a partial read must never appear.
            if mode != ["--packets", "--json"] and r.stdout:
                ok = False
            report(name, ok, f"exit {r.returncode}, stderr {r.stderr!r}, "
                             f"stdout {r.stdout[:80]!r}")

    missing = os.path.join(pcaps, "no-such-file.pcap")
    r = run([ts, "replay", "--json", missing])
    report("badinput missing file", r.returncode == 2 and missing in r.stderr
           and len(r.stderr.splitlines()) == 1 and not r.stdout, repr(r.stderr))

    r = run([ts, "replay", "--json", pcaps])
    report("badinput directory", r.returncode == 2 and pcaps in r.stderr and not r.stdout,
           repr(r.stderr))

    empty = os.path.join(pcaps, "empty.pcap")
    if os.path.exists(empty):
        r = run([ts, "replay", "--json", empty])
        ok = r.returncode == 0
        try:
            s = json.loads(r.stdout)
            ok = ok and s["packets"] == 0 and s["anomalies"] == {} and s["bytes"] == 0
        except (ValueError, KeyError):
            ok = False
        report("badinput empty capture gives an empty summary", ok, repr(r.stdout))
        r = run([ts, "replay", "--packets", "--json", empty])
        report("badinput empty capture gives no packet lines",
               r.returncode == 0 and r.stdout == "", repr(r.stdout))

    for args, want in ((["replay"], 2), (["replay", "--bogus", empty], 2),
                       (["replay", empty, empty], 2), (["replay", "--help"], 0),
                       (["frobnicate"], 2), ([], 2), (["help"], 0), (["version"], 0)):
        r = run([ts] + args)
        report(f"usage torsieve {' '.join(args) or '(none)'} exits {want}",
               r.returncode == want, f"exit {r.returncode}")

    some = os.path.join(pcaps, "linktypes-en10mb.pcap")
    if os.path.exists(some):
        with open(some, "rb") as f:
            r = subprocess.run([ts, "replay", "--json", "-"], stdin=f, capture_output=True,
                               text=True)
        direct = replay_summary(ts, some)
        try:
            via_stdin = json.loads(r.stdout)
            ok = r.returncode == 0 and via_stdin["packets"] == direct["packets"] and \
                via_stdin["file"] == "-"
        except (ValueError, KeyError):
            ok = False
        report("replay reads standard input as -", ok, r.stderr)
        r = run([ts, "replay", some])
        report("replay human summary", r.returncode == 0 and
               f"packets     {direct['packets']} " in r.stdout, r.stdout[:200])
        r = run([ts, "replay", "--packets", some])
        lines = r.stdout.splitlines()
        report("replay --packets human: one line per packet, then the summary",
               r.returncode == 0 and len(lines) > direct["packets"] and
               all(lines[i].startswith(f"{i + 1} ") for i in range(direct["packets"])),
               r.stdout[:200])


# ---- policies on the command line ----

def check_policy_cli(ts, pcaps):
    some = os.path.join(pcaps, "real-eth.pcap")
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("# a policy with a typo\ndivert tcp to port { 80, 443 }\ndorp all\n")
        good = os.path.join(tmp, "good.conf")
        with open(good, "w") as f:
            f.write("list web = { 80, 443 }\ndivert tcp to port $web\ndns udp to port 53\n")

        r = run([ts, "check", "-c", bad])
        want = f"{bad}:3:1: expected 'set', 'list', 'dns-block' or an action (drop, reject, pass, " \
               f"divert, dns), found 'dorp'"
        report("check: a bad policy exits 2 with FILE:LINE:COL", r.returncode == 2 and
               r.stderr.strip() == want and not r.stdout, f"exit {r.returncode} {r.stderr!r}")
        r = run([ts, "replay", "-c", bad, "--json", some])
        report("replay: a bad policy exits 2 with FILE:LINE:COL and no output",
               r.returncode == 2 and r.stderr.strip() == f"torsieve replay: {want}" and
               not r.stdout, f"exit {r.returncode} {r.stderr!r}")
        r = run([ts, "check", "-c", good])
        report("check: a good policy exits 0 and prints each rule",
               r.returncode == 0 and "line 2     divert proto { tcp } to port { 80, 443 }"
               in r.stdout and "2 rules, 1 lists" in r.stdout, r.stdout + r.stderr)
        r = run([ts, "check", "-c", os.path.join(tmp, "missing.conf")])
        report("check: a missing policy exits 2 naming it", r.returncode == 2 and
               "missing.conf: No such file or directory" in r.stderr, r.stderr)
        r = run([ts, "check", "--default"])
        report("check --default: the shipped policy compiles",
               r.returncode == 0 and "7 rules" in r.stdout, r.stdout + r.stderr)
        with open(os.path.join(os.path.dirname(pcaps), "..", "etc", "torsieve.conf")) as f:
            shipped = f.read()
        r = subprocess.run([ts, "check", "-c", "-"], input=shipped, capture_output=True,
                           text=True)
        report("check: etc/torsieve.conf is what is built in",
               r.returncode == 0 and r.stdout.split("\n", 1)[1] ==
               run([ts, "check", "--default"]).stdout.split("\n", 1)[1], r.stderr)

        s_default = replay_summary(ts, some)
        s_good = json.loads(run([ts, "replay", "-c", good, "--json", some]).stdout)
        report("replay without -c judges by the shipped policy",
               s_default["policy"] == "built-in:etc/torsieve.conf" and
               [r["line"] for r in s_default["rules"]] == [15, 16, 20, 23, 26, 30, 34],
               s_default["policy"])
        report("replay -c judges by that policy; no match is the implicit drop",
               s_good["policy"] == good and [r["line"] for r in s_good["rules"]] == [2, 3] and
               s_good["default_drops"] == s_good["verdicts"]["drop"] - s_good["anomalous"] and
               s_good["verdicts"]["divert"] == s_default["verdicts"]["divert"],
               json.dumps(s_good["verdicts"]))
        capped = os.path.join(tmp, "capped.conf")
        with open(capped, "w") as f:
            f.write("set stream-buffer 200\ndivert tcp to port { 80, 443 }\ndrop all\n")
        ooo = os.path.join(pcaps, "streams-out-of-order.pcap")
        if os.path.exists(ooo):
            st = json.loads(run([ts, "replay", "-c", capped, "--json", ooo]).stdout)["streams"]
            free = replay_summary(ts, ooo)["streams"]
            report("replay: a stream-buffer cap is counted and its holes become gaps",
                   st["cap_hits"] > 0 and st["gaps"] > 0 and free["cap_hits"] == 0 and
                   st["bytes"] + st["gap_bytes"] == free["bytes"] + free["gap_bytes"], str(st))
        on = os.path.join(tmp, "on.conf")
        with open(on, "w") as f:
            f.write("pass on wlan0 tcp\ndrop all\n")
        a = json.loads(run([ts, "replay", "-c", on, "--in", "wlan0", "--json", some]).stdout)
        b = json.loads(run([ts, "replay", "-c", on, "--json", some]).stdout)
        report("replay --in gives every packet that input interface",
               a["rules"][0]["hits"] == a["l4"]["tcp"] and b["rules"][0]["hits"] == 0,
               f"{a['rules']} {b['rules']}")


# ---- generator determinism ----

def check_generators(pcaps):
    for script in ("craft.py", "craft_streams.py"):
        check_generator(pcaps, script)


def check_generator(pcaps, script):
    gen = os.path.join(pcaps, "gen", script)
    if not os.path.exists(gen):
        report(f"generator {script} exists", False, gen)
        return
    with tempfile.TemporaryDirectory() as tmp:
        r = run(["/usr/bin/python3", gen, tmp])
        if r.returncode != 0:
            report(f"generator {script} runs", False, r.stderr.strip()[-300:])
            return
        made = sorted(os.path.relpath(p, tmp) for p in glob.glob(os.path.join(tmp, "**", "*"),
                                                                  recursive=True)
                      if os.path.isfile(p))
        differ = [m for m in made if not os.path.exists(os.path.join(pcaps, m)) or
                  not filecmp.cmp(os.path.join(tmp, m), os.path.join(pcaps, m), shallow=False)]
        report(f"generator {script} reproduces its {len(made)} committed files",
               made and not differ, f"differ or missing in the tree: {differ[:10]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torsieve", required=True)
    ap.add_argument("--pcaps", required=True)
    args = ap.parse_args()
    ts, pcaps = args.torsieve, args.pcaps.rstrip("/")
    files = fixtures(pcaps)
    if not files:
        report("fixtures present", False, f"no captures in {pcaps}")
    with start_tshark_runs(ts, files):
        for path in files:
            check_labels(ts, path)
            check_expected(ts, path)
            check_counters(ts, path)
            check_oracle(ts, path)
            check_streams(ts, path)
    check_snapped_streams(ts, pcaps)
    check_bad_input(ts, pcaps)
    check_policy_cli(ts, pcaps)
    check_generators(pcaps)
    return 1 if RESULTS["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
