#!/usr/bin/python3
"""Write torsieve's IP fragment fixtures and their expectations.

Usage: /usr/bin/python3 test/pcaps/gen/craft_frags.py [OUTDIR]
       /usr/bin/python3 test/pcaps/gen/craft_frags.py --check TORSIEVE [OUTDIR]

OUTDIR defaults to test/pcaps. Each case becomes OUTDIR/frags-X.pcap
(Ethernet, microsecond pcap) and frags-X.expect.json. Every run writes
byte-identical files.

The cases are the fragment evasions a gateway must not be fooled by:
overlapping IPv4 fragments (first copy wins, also over the TCP header),
overlapping IPv6 fragments (the datagram and its later fragments are dropped,
RFC 5722), exact duplicates, tiny first fragments that split the TCP header,
reordering, datagrams that do not fit in 64 KiB (the ping of death), lengths
that contradict each other, and a datagram that times out.

The expectation is the case's own intent, computed here without torsieve:
which bytes each TCP stream direction must deliver (IPv4 overlaps resolved by
a byte map where the first copy wins), what became of each fragment (fate,
verdict, anomaly), and the defragmentation counters. expect.json holds
{"streams": [...as craft_streams.py...], "packets": [{"n", "verdict", "fate"
or "anomaly"}], "defrag": {...}}.

With --check TORSIEVE nothing is written: the files are generated again in
memory and compared with OUTDIR's byte for byte, then each capture is
replayed (`--streams DIR --json` and `--packets --json`) and compared with
its expectation. Prints PASS/FAIL lines; exits 1 on any FAIL.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from craft_streams import (CLIENT, PA, SERVER, TS_BASE, Conn, Rec,  # noqa: E402
                           conflicting, fill, http_request, http_response, run_cli)
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

V4_HDR, V6_HDR, ETH = 20, 40, 14


class Case:
    """Records of one capture and what each is expected to become."""

    def __init__(self):
        self.recs = []
        self.expect = {}  # record index (0-based) -> expected packet fields
        self.clock = 0    # microseconds since TS_BASE of the next record

    def add(self, rec, **want):
        rec.t = self.clock
        self.clock += 1000
        if want:
            self.expect[len(self.recs)] = want
        self.recs.append(rec)


class FragConn(Conn):
    """A TCP connection whose segments can be sent as IP fragments."""

    def __init__(self, case, *a, **kw):
        super().__init__([], *a, **kw)
        self.case = case
        self.frag_id = 0x7100 + self.ports[0] % 256

    def send(self, side, flags, off=0, payload=b"", **kw):
        before = len(self.recs)
        super().send(side, flags, off, payload, **kw)
        for r in self.recs[before:]:
            self.case.add(r)

    def segment(self, side, flags, off, payload):
        """The IP payload (TCP header and data, checksummed) of a segment."""
        seq = self.seq(side, off)
        ack = self.ack_of(side)
        frame = self.frame(side, flags, seq, ack, payload, b"", self.win[side])
        return frame[ETH + (V6_HDR if self.v6 else V4_HDR):]

    def fragments(self, side, seg, arrivals, fates, *, verdict):
        """Send the IP payload seg as the fragments in arrivals: (a, b) carries
        seg[a:b], except that bytes sent before are carried again as
        conflicting bytes, so whatever wins shows; (a, b, data) carries data.
        fates: one expected fate per arrival, or ("anomaly", name). Returns
        what first-copy-wins reassembly of them gives."""
        fid = self.frag_id
        self.frag_id += 1
        got = {}
        for arrival, fate in zip(arrivals, fates):
            a, b = arrival[:2]
            if len(arrival) == 3:
                data = arrival[2]
            else:
                data = bytes(conflicting(b"x")[0] if o in got else seg[o] for o in range(a, b))
            assert len(data) == b - a
            if not isinstance(fate, tuple):
                for o in range(a, b):
                    got.setdefault(o, data[o - a])
            self.case.add(Rec(self.frag_frame(side, fid, a, b < len(seg), data)),
                          **want_of(fate, verdict))
        return bytes(got.get(o, 0) for o in range(len(seg)))

    def frag_frame(self, side, fid, offset, more, data):
        src, dst = self.addrs[side], self.addrs[1 - side]
        if self.v6:
            l3 = IPv6(src=src, dst=dst, nh=44, hlim=64, fl=0, tc=0) / \
                IPv6ExtHdrFragment(nh=6, offset=offset // 8, m=int(more), id=fid) / Raw(data)
        else:
            l3 = IP(src=src, dst=dst, id=fid, flags=int(more), frag=offset // 8, ttl=64,
                    proto=6) / Raw(data)
        eth = Ether(src=self.macs[side], dst=self.macs[1 - side],
                    type=0x86DD if self.v6 else 0x0800)
        return bytes(eth / l3)

    def delivered(self, side, off, payload):
        """Count a segment sent as fragments as received, for later acks."""
        self.got[side].update(range(off, off + len(payload)))


def want_of(fate, verdict):
    if isinstance(fate, tuple):
        return {"verdict": "drop", "anomaly": fate[1]}
    return {"verdict": verdict if fate == "reassembled" else "drop", "fate": fate}


def streams(c, req, resp):
    return {(1, "c2s"): req, (1, "s2c"): resp}


# --------------------------------------------------------------------------
# The cases: each returns (Case, streams intent, defrag counters intent)
# --------------------------------------------------------------------------

def case_v4_overlap():
    k = Case()
    c = FragConn(k, 41001, 0x10203040, 0x50607080)
    c.handshake()
    req = http_request("frag-v4-overlap", fill("v4-overlap", 160))
    seg = c.segment(CLIENT, PA, 0, req)
    n = len(seg)  # TCP header (20) + request
    tail = n - n % 8 - 8
    # A valid TCP header to port 22 (what a filter that let the last copy
    # win would judge), then 4 bytes of the request.
    rewrite = bytearray(seg[:24])
    rewrite[2:4] = struct.pack("!H", 22)
    arrivals = [
        (0, 64),           # the TCP header and the request's start
        (0, 24, bytes(rewrite)),  # a rewrite of the TCP header: overlaps, loses
        (48, 112),         # overlaps the end of the first
        (tail, n),         # the last fragment: held
        (tail - 16, tail + 8),  # overlaps the held last fragment's start
        (48, 112),         # exact duplicate, conflicting bytes: first still wins
        (112, tail - 16),  # fills the rest: the datagram is whole
    ]
    got = c.fragments(CLIENT, seg, arrivals, ["reassembled"] * len(arrivals), verdict="divert")
    assert got == seg
    c.delivered(CLIENT, 0, req)
    c.ack(SERVER)
    resp = http_response("frag-v4-overlap-s2c", 300)
    c.send(SERVER, PA, 0, resp)
    c.ack(CLIENT)
    c.close(CLIENT)
    return k, streams(c, req, resp), {"datagrams": 1, "overlaps": 3, "duplicates": 1}


def case_v6_overlap():
    k = Case()
    c = FragConn(k, 41002, 0x11213141, 0x51617181, v6=True)
    c.handshake()
    req = http_request("frag-v6-overlap", fill("v6-overlap", 200))
    seg = c.segment(CLIENT, PA, 0, req)
    n = len(seg)
    # Overlap: the datagram is dropped, and so is its fragment that comes
    # after the overlap, although it would have completed it.
    c.fragments(CLIENT, seg, [(0, 64), (56, 120), (120, n)],
                ["overlap", "overlap", "overlap"], verdict="divert")
    # The client retransmits the segment as one packet; the stream is whole.
    c.send(CLIENT, PA, 0, req)
    c.ack(SERVER)
    resp = http_response("frag-v6-overlap-s2c", 1000)
    rseg = c.segment(SERVER, PA, 0, resp)
    m = len(rseg)
    # An exact duplicate is not an overlap (RFC 8200 4.5): the datagram stands.
    # The duplicate keeps the TCP header (a conflicting one would be an
    # anomaly on its own) and changes every byte of data: the first wins.
    dup = rseg[:20] + conflicting(rseg[20:512])
    got = c.fragments(SERVER, rseg, [(0, 512), (0, 512, dup), (512, m)], ["reassembled"] * 3,
                      verdict="divert")
    assert got == rseg
    c.delivered(SERVER, 0, resp)
    c.ack(CLIENT)
    c.close(CLIENT)
    return k, streams(c, req, resp), {"datagrams": 1, "overlaps": 1, "duplicates": 1,
                                      "given_up": {"overlap": 1}}


def case_tiny():
    k = Case()
    out = {}
    for flow, v6 in ((1, False), (2, True)):
        c = FragConn(k, 41003 + flow, 0x12223242 + flow, 0x52627282, v6=v6)
        c.handshake()
        req = http_request(f"frag-tiny-{flow}", fill("tiny", 100))
        seg = c.segment(CLIENT, PA, 0, req)
        # The first fragment holds 16 bytes of the 20-byte TCP header: the
        # ports are there, the flags are not. It is dropped as an anomaly and
        # the rest waits for a first fragment that never comes.
        tiny = "ipv6_frag_tiny" if v6 else "ipv4_frag_tiny"
        c.fragments(CLIENT, seg, [(0, 16), (16, len(seg))], [("anomaly", tiny), "incomplete"],
                    verdict="divert")
        c.send(CLIENT, PA, 0, req)
        c.ack(SERVER)
        resp = http_response(f"frag-tiny-{flow}-s2c", 200)
        c.send(SERVER, PA, 0, resp)
        c.ack(CLIENT)
        c.close(CLIENT)
        out[(flow, "c2s")], out[(flow, "s2c")] = req, resp
    return k, out, {"datagrams": 0, "given_up": {"incomplete": 2}}


def case_order():
    k = Case()
    out = {}
    for flow, v6 in ((1, False), (2, True)):
        c = FragConn(k, 41010 + flow, 0x13233343 + flow, 0x53637383, v6=v6)
        c.handshake()
        req = http_request(f"frag-order-{flow}", fill("order", 700))
        seg = c.segment(CLIENT, PA, 0, req)
        n = len(seg)
        # Reversed, then the response's fragments in a scrambled order.
        cuts = [(0, 240), (240, 480), (480, n)]
        assert c.fragments(CLIENT, seg, cuts[::-1], ["reassembled"] * 3, verdict="divert") == seg
        c.delivered(CLIENT, 0, req)
        c.ack(SERVER)
        resp = http_response(f"frag-order-{flow}-s2c", 2600)
        rseg = c.segment(SERVER, PA, 0, resp)
        m = len(rseg)
        rcuts = [(1200, 2400), (0, 600), (2400, m), (600, 1200)]
        assert c.fragments(SERVER, rseg, rcuts, ["reassembled"] * 4, verdict="divert") == rseg
        c.delivered(SERVER, 0, resp)
        c.ack(CLIENT)
        c.close(CLIENT)
        out[(flow, "c2s")], out[(flow, "s2c")] = req, resp
    return k, out, {"datagrams": 4}


def udp_fragments(k, fid, payload, cuts, fates, *, ts_gap=0):
    """A UDP datagram to port 5353 (which the default policy drops) sent as
    the IPv4 fragments (a, b, more) in cuts, each ts_gap microseconds after
    the one before."""
    udp = bytes(UDP(sport=40500, dport=5353) / Raw(payload))
    for (a, b, more), fate in zip(cuts, fates):
        frame = bytes(Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:02") /
                      IP(src="192.0.2.1", dst="198.51.100.2", id=fid, flags=int(more),
                         frag=a // 8, ttl=64, proto=17) / Raw(udp[a:b]))
        k.clock += ts_gap
        k.add(Rec(frame), **want_of(fate, "drop"))


def case_bad():
    k = Case()
    # The ping of death: fragments that together pass 65535 bytes.
    step, total = 1480, 65528
    cuts = [(a, min(a + step, total), a + step < total) for a in range(0, total, step)]
    payload = bytes(range(256)) * 256
    udp_fragments(k, 0x7201, payload[:total - 8], cuts, ["inconsistent"] * len(cuts))
    # Two last fragments that end in different places.
    udp_fragments(k, 0x7202, fill("contradict", 200), [(96, 208, False), (96, 200, False)],
                  ["inconsistent"] * 2)
    # Fragments more than 30 s apart: the first times out, the second then
    # waits alone until the end of the capture.
    udp_fragments(k, 0x7203, fill("timeout", 100), [(0, 64, True), (64, 108, False)],
                  ["timeout", "incomplete"], ts_gap=31_000_000)
    return k, {}, {"datagrams": 0, "given_up": {"inconsistent": 2, "timeout": 1,
                                                 "incomplete": 1}}


CASES = [
    ("v4-overlap", case_v4_overlap),
    ("v6-overlap", case_v6_overlap),
    ("tiny", case_tiny),
    ("order", case_order),
    ("bad", case_bad),
]


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

def pcap_bytes(recs):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for r in recs:
        total = r.t + 7
        out.append(struct.pack("<IIII", TS_BASE + total // 1_000_000, total % 1_000_000,
                               r.caplen, r.len))
        out.append(r.frame[:r.caplen])
    return b"".join(out)


DEFRAG_ZERO = {"datagrams": 0, "overlaps": 0, "duplicates": 0, "given_up": {}}


def expect_of(k, intent, counters):
    flows = []
    for (flow, d), data in sorted(intent.items()):
        flows.append({"flow": flow, "dir": d, "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "gaps": 0, "gap_bytes": 0,
                      "inconsistent_overlaps": 0})
    packets = [dict(n=i + 1, **w) for i, w in sorted(k.expect.items())]
    defrag = dict(DEFRAG_ZERO, **counters)
    return {"streams": flows, "packets": packets, "defrag": defrag}


def generate():
    for name, build in CASES:
        k, intent, counters = build()
        yield name, pcap_bytes(k.recs), expect_of(k, intent, counters)


def expect_text(e):
    lines = ["{", f'  "defrag": {json.dumps(e["defrag"], sort_keys=True)},', '  "streams": [']
    lines.append(",\n".join("    " + json.dumps(o) for o in e["streams"]))
    lines.append("  ],")
    lines.append('  "packets": [')
    lines.append(",\n".join("    " + json.dumps(o) for o in e["packets"]))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_all(outdir):
    for name, data, e in generate():
        base = os.path.join(outdir, f"frags-{name}")
        with open(base + ".pcap", "wb") as f:
            f.write(data)
        with open(base + ".expect.json", "w") as f:
            f.write(expect_text(e))


STREAM_FIELDS = ("bytes", "sha256", "gaps", "gap_bytes", "inconsistent_overlaps")


def check_one(torsieve, base, e):
    problems = []
    tmp = tempfile.mkdtemp(prefix="craft-frags.")
    try:
        sdir = os.path.join(tmp, "s")
        r = subprocess.run([torsieve, "replay", "--streams", sdir, "--json", base + ".pcap"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return [f"replay exit {r.returncode}: {r.stderr.strip()}"]
        summary = json.loads(r.stdout)
        with open(os.path.join(sdir, "streams.json")) as f:
            got = {(o["flow"], o["dir"]): o for o in map(json.loads, f)}
    finally:
        shutil.rmtree(tmp)
    want = {(o["flow"], o["dir"]): o for o in e["streams"]}
    for key in sorted(set(want) | set(got)):
        if key not in got or key not in want:
            problems.append(f"flow {key[0]} {key[1]}: {'missing' if key in want else 'extra'}")
            continue
        diff = [f"{f} {got[key][f]} (expected {want[key][f]})" for f in STREAM_FIELDS
                if got[key][f] != want[key][f]]
        if diff:
            problems.append(f"flow {key[0]} {key[1]}: " + ", ".join(diff))

    d = summary.get("defrag", {})
    for f in ("datagrams", "overlaps", "duplicates"):
        if d.get(f) != e["defrag"][f]:
            problems.append(f"defrag.{f} {d.get(f)} (expected {e['defrag'][f]})")
    given_up = {k: v for k, v in d.get("given_up", {}).items() if v}
    if given_up != e["defrag"]["given_up"]:
        problems.append(f"defrag.given_up {given_up} (expected {e['defrag']['given_up']})")

    r = subprocess.run([torsieve, "replay", "--packets", "--json", base + ".pcap"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return problems + [f"replay --packets exit {r.returncode}"]
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    by_n = {x["n"]: x for x in lines}
    if sorted(by_n) != list(range(1, len(lines) + 1)):
        problems.append("packet lines are not one per record")
    for w in e["packets"]:
        x = by_n.get(w["n"], {})
        have = {"verdict": x.get("verdict")}
        if "anomaly" in w:
            have["anomaly"] = x.get("anomaly")
        else:
            have["fate"] = x.get("defrag", {}).get("fate")
        want_p = {k: v for k, v in w.items() if k != "n"}
        if have != want_p:
            problems.append(f"packet {w['n']}: {have} (expected {want_p})")
    return problems


def check_all(torsieve, outdir):
    failed = 0
    for name, data, e in generate():
        base = os.path.join(outdir, f"frags-{name}")
        problems = []
        try:
            if open(base + ".pcap", "rb").read() != data or \
                    open(base + ".expect.json").read() != expect_text(e):
                problems.append("the generator no longer writes the committed files")
        except OSError as err:
            problems.append(str(err))
        if not problems:
            problems = check_one(torsieve, base, e)
        if problems:
            failed += 1
            print(f"FAIL frags-{name}: " + "; ".join(problems[:8]) +
                  (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""))
        else:
            print(f"PASS frags-{name} ({len(e['packets'])} fragments as expected, "
                  f"{len(e['streams'])} stream directions)")
    return 1 if failed else 0


def main(argv):
    return run_cli(argv, __doc__, check_all, write_all)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
