#!/usr/bin/python3
"""Write torsieve's TCP stream reassembly fixtures and their expectations.

Usage: /usr/bin/python3 test/pcaps/gen/craft_streams.py [OUTDIR]
       /usr/bin/python3 test/pcaps/gen/craft_streams.py --check TORSIEVE [OUTDIR]

OUTDIR defaults to test/pcaps (the directory above this script). Each case
becomes OUTDIR/streams-X.pcap (Ethernet, classic microsecond pcap) and, next
to it, streams-X.expect.json. Every run writes byte-identical files: all
timestamps, addresses, ports, sequence numbers and IP identifiers are fixed.

scapy (Debian's python3-scapy, hence /usr/bin/python3) is used only to build
packet bytes (and their checksums); the capture files are written by the small
writer below so that caplen vs len is exact.

The expectation is computed by the simple model at the end of this file, which
reads the capture back and applies the reassembly contract of
include/torsieve/reassembly.h directly: one byte map per direction where the
first copy of each byte wins; a segment counts once as inconsistent when any
byte it overlaps differs from the copy seen first; bytes known to exist but
never captured (snap length, bytes before a FIN) are gaps; data at or after a
FIN's offset is ignored, and so is everything after an accepted RST. A RST is
accepted when its offset minus the next expected offset lies in [0, window],
the window being the other side's last advertised (non-SYN) window, scaled by
that side's SYN window-scale option only when both SYNs offered one (0 when
unknown: the RST is then accepted). A SYN takes one sequence number; a
direction starts at the first segment seen in it: at its first byte for one
with data, SYN, FIN or RST; at its sequence number for a pure ACK (no data,
no SYN, FIN or RST: the sender's next byte), provisionally: if the next
segment with data, SYN, FIN or RST is a SYN, the start is the SYN's; if it
starts exactly one byte past the ACK's sequence number, the ACK was a
keep-alive (next byte minus one) and the start moves there; otherwise it
stays. Pure ACKs after the start change nothing. Bytes before the start are
not part of the stream.

streams-X.expect.json is a JSON list, one object per direction of every TCP
flow (flow ids 1-based in the order of each flow's first packet; "c2s" is from
the sender of that first packet): flow, dir, bytes, sha256 (of the delivered
bytes, in order, without the gaps), gaps, gap_bytes, inconsistent_overlaps.
A flow is one connection: a SYN without ACK on a 4-tuple whose flow has seen
a FIN or a RST (either way) ends that flow and starts a new one (port reuse).

With --check TORSIEVE the files in OUTDIR are not written; instead each
streams-*.pcap there is replayed with `TORSIEVE replay --streams DIR --json`
and DIR/streams.json (and each stream file's length and hash) compared with
streams-*.expect.json. Prints PASS/FAIL lines; exits 1 on any FAIL.
"""

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

# --------------------------------------------------------------------------
# Fixed identities
# --------------------------------------------------------------------------

MAC_C = "02:00:00:00:01:01"  # client
MAC_S = "02:00:00:00:02:02"  # server / router
C4, S4 = "192.0.2.1", "198.51.100.2"
C6, S6 = "2001:db8::1", "2001:db8::2"
SERVER_PORT = 80

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
PA = PSH | ACK
FA = FIN | ACK
FPA = FIN | PSH | ACK

TS_BASE = 1700000000  # 2023-11-14T22:13:20Z
MOD = 1 << 32
CLIENT, SERVER = 0, 1
SNAP = 60  # caplen of the snapped packets in streams-snapped


# TCP option bytes
def o_mss(v=1460):
    return struct.pack("!BBH", 2, 4, v)


def o_ws(v):
    return struct.pack("!BBB", 3, 3, v)


O_NOP = b"\x01"
O_SACKOK = b"\x04\x02"


def syn_opts(wscale=None, extra=b""):
    """MSS, SACK-permitted and (when given) window scale, padded with NOPs."""
    o = o_mss() + O_NOP + O_NOP + O_SACKOK
    if wscale is not None:
        o += O_NOP + o_ws(wscale)
    o += extra
    return o + O_NOP * (-len(o) % 4)


def o_tfo(cookie):
    """TCP Fast Open option (kind 34) with a cookie."""
    return struct.pack("!BB", 34, 2 + len(cookie)) + cookie


# --------------------------------------------------------------------------
# Payload text
# --------------------------------------------------------------------------

def fill(tag, n):
    """n recognisable bytes: `tag@OFFSET|` repeated, each piece naming the
    stream offset it starts at. Never contains '#', which marks bytes a
    later, conflicting copy carries."""
    out = b""
    while len(out) < n:
        out += f"{tag}@{len(out)}|".encode()
    out = out[:n]
    assert b"#" not in out
    return out


def http_request(path, extra=b""):
    return (f"GET /{path} HTTP/1.1\r\nHost: streams.example.test\r\n"
            f"User-Agent: craft_streams\r\n").encode() + extra + b"\r\n"


def http_response(tag, body_len):
    body = fill(tag, body_len)
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {body_len}\r\n\r\n").encode()
    return head + body


def conflicting(data):
    """The same length, every byte different: what a conflicting later copy
    carries over bytes seen before."""
    return b"#" * len(data)


# --------------------------------------------------------------------------
# A TCP connection: builds the frames of both sides in capture order
# --------------------------------------------------------------------------

class Rec:
    """One capture record: the whole frame as it was on the wire and how
    many of its bytes were captured."""

    def __init__(self, frame, caplen=None):
        self.frame = frame
        self.len = len(frame)
        self.caplen = self.len if caplen is None else min(caplen, self.len)


class Conn:
    """One TCP connection. Stream offsets are relative to ISN + 1 of each
    side (for a connection picked up mid-stream, to the `isn` given plus 1).
    Acknowledgement numbers follow what each side has received in order."""

    def __init__(self, recs, cport, c_isn, s_isn, *, v6=False, c_win=502, s_win=509):
        self.recs = recs
        self.ports = (cport, SERVER_PORT)
        self.addrs = (C6, S6) if v6 else (C4, S4)
        self.macs = (MAC_C, MAC_S)
        self.v6 = v6
        self.isn = (c_isn, s_isn)
        self.win = [c_win, s_win]
        self.ipid = [0x4000 + (cport & 0xff) * 16, 0x6000 + (cport & 0xff) * 16]
        self.got = [set(), set()]  # offsets each side's stream delivered to the peer
        self.fin = [None, None]

    def seq(self, side, off):
        return (self.isn[side] + 1 + off) % MOD

    def ack_of(self, side):
        """What `side` acknowledges: the peer's next in-order byte."""
        peer = 1 - side
        o = 0
        while o in self.got[peer]:
            o += 1
        if self.fin[peer] is not None and o >= self.fin[peer]:
            o += 1
        return self.seq(peer, o)

    def frame(self, side, flags, seq, ack, payload, opts, win):
        src, dst = self.addrs[side], self.addrs[1 - side]
        sport, dport = self.ports[side], self.ports[1 - side]
        tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win,
                  dataofs=5 + len(opts) // 4, options=[])
        if opts or payload:
            tcp = tcp / Raw(opts + payload)
        if self.v6:
            l3 = IPv6(src=src, dst=dst, nh=6, hlim=64, fl=0, tc=0) / tcp
        else:
            self.ipid[side] += 1
            l3 = IP(src=src, dst=dst, id=self.ipid[side], flags=2, ttl=64, proto=6) / tcp
        eth = Ether(src=self.macs[side], dst=self.macs[1 - side],
                    type=0x86DD if self.v6 else 0x0800)
        return bytes(eth / l3)

    def send(self, side, flags, off=0, payload=b"", *, ack=None, opts=b"", win=None,
             caplen=None, delivered=True):
        """A segment from `side` whose payload starts at stream offset `off`
        (a SYN: at its ISN). `delivered=False` leaves it out of what the peer
        acknowledges (a segment the peer never got or ignores)."""
        assert len(opts) % 4 == 0
        seq = self.isn[side] if flags & SYN else self.seq(side, off)
        if ack is None:
            ack = self.ack_of(side) if flags & ACK else 0
        win = self.win[side] if win is None else win
        f = self.frame(side, flags, seq, ack, payload, opts, win)
        self.recs.append(Rec(f, caplen))
        if delivered and not flags & (RST | SYN):
            self.got[side].update(range(off, off + len(payload)))
            if flags & FIN and self.fin[side] is None:
                self.fin[side] = off + len(payload)
        if delivered and flags & SYN and payload:
            self.got[side].update(range(len(payload)))

    def handshake(self, c_opts=None, s_opts=None, c_win=64240, s_win=65160, syn_payload=b""):
        c_opts = syn_opts(7) if c_opts is None else c_opts
        s_opts = syn_opts(7) if s_opts is None else s_opts
        self.send(CLIENT, SYN, payload=syn_payload, opts=c_opts, win=c_win)
        self.send(SERVER, SYN | ACK, opts=s_opts, win=s_win)
        self.ack(CLIENT)

    def ack(self, side):
        self.send(side, ACK, self.next_off(side))

    def next_off(self, side):
        """The offset just past everything `side` has sent so far."""
        return max(self.got[side], default=-1) + 1 if self.fin[side] is None else \
            self.fin[side]

    def close(self, first=CLIENT):
        """FIN from `first`, FIN from the other, last ACK."""
        other = 1 - first
        self.send(first, FA, self.next_off(first))
        self.send(other, FA, self.next_off(other))
        self.send(first, ACK, self.next_off(first) + 1)


def exchange(conn, request, response, *, req_chunks=None, resp_chunks=None):
    """Request and response in order, each cut into chunks of the sizes given."""
    def chunks(data, sizes):
        sizes = sizes or [len(data)]
        assert sum(sizes) == len(data)
        off = 0
        for n in sizes:
            yield off, data[off:off + n]
            off += n
    for off, part in chunks(request, req_chunks):
        conn.send(CLIENT, PA, off, part)
    conn.ack(SERVER)
    for off, part in chunks(response, resp_chunks):
        conn.send(SERVER, PA, off, part)
    conn.ack(CLIENT)


def overlapping(conn, side, stream, arrivals, same):
    """Send `stream` as the segments [a, b) in `arrivals`, in that order.
    Bytes already sent are carried again identically when `same`, otherwise
    as conflicting bytes. Returns how many segments overlapped what was sent
    before them."""
    seen, overlaps = set(), 0
    for a, b in arrivals:
        part = bytearray(stream[a:b])
        hit = False
        for o in range(a, b):
            if o in seen:
                hit = True
                if not same:
                    part[o - a] = ord("#")
        overlaps += hit
        seen.update(range(a, b))
        conn.send(side, PA, a, bytes(part))
    assert seen == set(range(len(stream)))
    return overlaps


# --------------------------------------------------------------------------
# The cases. Each returns (records, intent): the intent is what the case was
# built to show, per (flow, dir): (bytes, [gap lengths], inconsistent). The
# model's result is checked against it, so a mistake in either shows.
# --------------------------------------------------------------------------

def case_inorder():
    R = []
    c = Conn(R, 40001, 0x1a2b3c4d, 0x5e6f7081)
    c.handshake()
    req = http_request("inorder", b"Accept: */*\r\n")
    resp = http_response("inorder-s2c", 1200)
    exchange(c, req, resp, req_chunks=[40, len(req) - 40],
             resp_chunks=[len(resp) - 1200 + 500, 700])
    c.close(CLIENT)
    return R, {(1, "c2s"): (req, [], 0), (1, "s2c"): (resp, [], 0)}


OVERLAP_STREAM = 520
OVERLAP_ARRIVALS = [
    (0, 100),     # delivered
    (20, 60),     # inside a delivered segment
    (120, 140),   # held (hole at 100)
    (100, 160),   # covers the held one, extending it on both sides
    (160, 200),
    (180, 220),   # overlap at its start (delivered bytes)
    (240, 280),   # held (hole at 220)
    (220, 250),   # overlap at its end (held bytes)
    (280, 320),
    (280, 320),   # exact duplicate (delivered)
    (360, 400),   # held (hole at 320)
    (370, 380),   # inside a held segment
    (390, 420),   # overlap at its start (held bytes)
    (360, 400),   # exact duplicate (held)
    (340, 365),   # overlap at its end (held bytes); [320, 340) still missing
    (440, 460),   # held
    (480, 500),   # held
    (430, 490),   # spans two held pieces and the hole between them
    (300, 520),   # delivered, missing, held bytes and new bytes at the end
]


def case_overlap(same):
    tag = "overlap-same" if same else "overlap-diff"
    R = []
    c = Conn(R, 40002 if same else 40003, 0x22334455 if same else 0x33445566, 0x77665544)
    c.handshake()
    stream = fill(f"{tag}-c2s", OVERLAP_STREAM)
    n = overlapping(c, CLIENT, stream, OVERLAP_ARRIVALS, same)
    assert n == 11
    c.ack(SERVER)
    resp = http_response(f"{tag}-s2c", 80)
    c.send(SERVER, PA, 0, resp)
    c.ack(CLIENT)
    c.close(CLIENT)
    return R, {(1, "c2s"): (stream, [], 0 if same else n), (1, "s2c"): (resp, [], 0)}


def case_retransmit_diff():
    R = []
    c = Conn(R, 40004, 0x44556677, 0x0badcafe)
    c.handshake()
    stream = fill("retransmit-c2s", 300)
    for off in (0, 100, 200):
        c.send(CLIENT, PA, off, stream[off:off + 100])
    c.ack(SERVER)
    # In order, after delivery: the same bytes (consistent), then other bytes.
    c.send(CLIENT, PA, 0, stream[0:100])
    c.send(CLIENT, PA, 100, conflicting(stream[100:200]))
    resp = http_response("retransmit-s2c", 160)
    half = len(resp) // 2
    c.send(SERVER, PA, 0, resp[:half])
    c.send(SERVER, PA, half, resp[half:])
    c.ack(CLIENT)
    # The second half again with one byte changed: still inconsistent.
    again = bytearray(resp[half:])
    again[10] = ord("#")
    c.send(SERVER, PA, half, bytes(again))
    c.close(CLIENT)
    return R, {(1, "c2s"): (stream, [], 1), (1, "s2c"): (resp, [], 1)}


def case_out_of_order():
    R = []
    c = Conn(R, 40005, 0x55667788, 0x99aabbcc)
    c.handshake()
    stream = fill("ooo-c2s", 400)
    c.send(CLIENT, PA, 0, stream[0:100])
    c.send(CLIENT, PA, 200, stream[200:300])  # arrives before [100, 250) ...
    c.send(CLIENT, PA, 300, stream[300:400])
    # ... which overlaps it with other bytes: the bytes that arrived first win.
    c.send(CLIENT, PA, 100, stream[100:200] + conflicting(stream[200:250]))
    c.send(CLIENT, FA, 400)
    c.ack(SERVER)
    resp = fill("ooo-s2c", 400)
    # The response in reverse order, its FIN (on the last segment) first.
    c.send(SERVER, FPA, 300, resp[300:400])
    for off in (200, 100, 0):
        c.send(SERVER, PA, off, resp[off:off + 100])
    c.send(CLIENT, ACK, 401)
    return R, {(1, "c2s"): (stream, [], 1), (1, "s2c"): (resp, [], 0)}


def case_one_byte():
    R = []
    c = Conn(R, 40006, 0x66778899, 0x13579bdf)
    c.handshake()
    req = http_request("one-byte")
    for off in range(len(req)):
        c.send(CLIENT, PA, off, req[off:off + 1])
        if off % 8 == 7:
            c.ack(SERVER)
    c.ack(SERVER)
    resp = http_response("one-byte-s2c", 64)
    c.send(SERVER, PA, 0, resp)
    c.ack(CLIENT)
    c.close(SERVER)
    return R, {(1, "c2s"): (req, [], 0), (1, "s2c"): (resp, [], 0)}


GAP_MISSING = 20000
GAP_SERVER_WINDOW = 8192


def case_gap():
    R = []
    c = Conn(R, 40007, 0x778899aa, 0x2468ace0, s_win=GAP_SERVER_WINDOW)
    # No window scaling: the server's window is 8192 bytes, the hole 20000.
    c.handshake(c_opts=syn_opts(), s_opts=syn_opts(), s_win=GAP_SERVER_WINDOW)
    head = fill("gap-c2s-head", 1000)
    tail = fill("gap-c2s-tail", 1000)
    c.send(CLIENT, PA, 0, head)
    c.ack(SERVER)
    # [1000, 21000) is never seen (14 segments the capture lost).
    c.send(CLIENT, PA, 1000 + GAP_MISSING, tail, delivered=False)
    c.ack(SERVER)  # a duplicate ACK
    end = 2000 + GAP_MISSING
    c.send(CLIENT, FA, end, delivered=False)
    # The response's last 50 bytes are lost too; only its FIN says they
    # existed: a gap before the FIN.
    resp = http_response("gap-s2c", 100)
    n = len(resp) - 50
    c.send(SERVER, PA, 0, resp[:n])
    c.send(SERVER, FA, len(resp), delivered=False)
    c.send(CLIENT, ACK, end + 1, ack=c.seq(SERVER, n), delivered=False)
    return R, {(1, "c2s"): (head + tail, [GAP_MISSING], 0), (1, "s2c"): (resp[:n], [50], 0)}


def case_wrap():
    R = []
    # SYN at 2^32 - 51: the data starts at 2^32 - 50 and wraps 50 bytes in.
    c = Conn(R, 40008, MOD - 51, 0x31415926)
    c.handshake()
    stream = http_request("wrap", fill("wrap-c2s", 300 - len(http_request("wrap"))))
    assert len(stream) == 300
    c.send(CLIENT, PA, 0, stream[0:40])      # before the wrap
    c.send(CLIENT, PA, 40, stream[40:100])   # wraps inside
    c.send(CLIENT, PA, 200, stream[200:300])  # after the wrap, early
    c.send(CLIENT, PA, 100, stream[100:200])
    c.send(CLIENT, PA, 30, stream[30:70])    # a consistent retransmission across the wrap
    c.ack(SERVER)
    resp = http_response("wrap-s2c", 90)
    c.send(SERVER, PA, 0, resp)
    c.ack(CLIENT)
    c.close(CLIENT)
    return R, {(1, "c2s"): (stream, [], 0), (1, "s2c"): (resp, [], 0)}


def case_syn_data():
    R = []
    c = Conn(R, 40009, 0x8899aabb, 0x27182818)
    first = b"GET /syn-data HTTP/1.1\r\n"
    rest = b"Host: streams.example.test\r\nUser-Agent: craft_streams (TFO)\r\n\r\n"
    # The SYN carries a Fast Open cookie and the start of the request.
    c.handshake(c_opts=syn_opts(7, o_tfo(bytes.fromhex("0011223344556677"))),
                syn_payload=first)
    c.send(CLIENT, PA, len(first), rest)
    c.ack(SERVER)
    resp = http_response("syn-data-s2c", 70)
    c.send(SERVER, PA, 0, resp)
    c.ack(CLIENT)
    c.close(CLIENT)
    return R, {(1, "c2s"): (first + rest, [], 0), (1, "s2c"): (resp, [], 0)}


RST_IN_REL = 30000   # inside 512 << 7 = 65536, outside 512 unscaled
RST_OUT_REL = 50000  # outside 1000 (unscaled); inside 1000 << 7 had it been scaled


def case_rst_in_window():
    R = []
    # Both sides scale: the server's window is 512 << 7 = 65536 bytes (the
    # client's own, 100 << 7 = 12800, would not hold the RST).
    c = Conn(R, 40010, 0x99aabbcc, 0x16180339, c_win=100, s_win=512)
    c.handshake(c_opts=syn_opts(7), s_opts=syn_opts(7))
    req = http_request("rst-in-window", fill("rst-in-c2s", 100))
    c.send(CLIENT, PA, 0, req)
    c.ack(SERVER)
    resp = http_response("rst-in-s2c", 90)
    c.send(SERVER, PA, 0, resp)
    # A RST 30000 bytes past the next expected byte: inside 65536.
    c.send(CLIENT, RST, len(req) + RST_IN_REL)
    # After it: not delivered.
    c.send(CLIENT, PA, len(req), fill("rst-in-after", 100), delivered=False)
    return R, {(1, "c2s"): (req, [], 0), (1, "s2c"): (resp, [], 0)}


def case_rst_out_of_window():
    R = []
    # Only the server offers window scaling, so windows are not scaled: the
    # server's is 1000 bytes (the client's own, 65535, would hold the first RST).
    c = Conn(R, 40011, 0xaabbccdd, 0x14142135, c_win=65535, s_win=1000)
    c.handshake(c_opts=syn_opts(), s_opts=syn_opts(7))
    req1 = http_request("rst-out-of-window")
    c.send(CLIENT, PA, 0, req1)
    c.ack(SERVER)
    resp = http_response("rst-out-s2c", 120)
    c.send(SERVER, PA, 0, resp)
    n = len(req1)
    c.send(CLIENT, RST, n + RST_OUT_REL)         # past the window
    c.send(CLIENT, RST | ACK, n + 0x40000000)     # far past it
    c.send(CLIENT, RST, n - 60)                  # behind the next expected byte
    req2 = fill("rst-out-c2s-after", 100)
    c.send(CLIENT, PA, n, req2)
    c.ack(SERVER)
    c.close(CLIENT)
    return R, {(1, "c2s"): (req1 + req2, [], 0), (1, "s2c"): (resp, [], 0)}


def case_data_after_fin():
    R = []
    c = Conn(R, 40012, 0xbbccddee, 0x17320508)
    c.handshake()
    req = http_request("data-after-fin", fill("daf-c2s", 40))
    n = len(req)
    c.send(CLIENT, PA, 0, req)
    c.send(CLIENT, FA, n)                                 # FIN at offset n
    c.send(CLIENT, PA, n, fill("daf-c2s-at-fin", 50), delivered=False)
    c.send(CLIENT, PA, n + 1, fill("daf-c2s-past-fin", 60), delivered=False)
    # The last 20 bytes again (same), running 30 bytes past the FIN.
    c.send(CLIENT, PA, n - 20, req[n - 20:] + fill("daf-c2s-straddle", 30), delivered=False)
    c.ack(SERVER)
    resp = fill("daf-s2c", 200)
    c.send(SERVER, PA, 0, resp[0:100])
    # Held past a hole, then cut by a FIN at 200 that arrives later.
    c.send(SERVER, PA, 150, resp[150:200] + fill("daf-s2c-past-fin", 50), delivered=False)
    c.send(SERVER, FA, 200, delivered=False)
    # After the FIN, before the hole fills: the same [180, 200), then 40
    # bytes past the FIN.
    c.send(SERVER, PA, 180, resp[180:200] + fill("daf-s2c-after-fin", 40), delivered=False)
    c.send(SERVER, PA, 100, resp[100:150])
    c.got[SERVER].update(range(200))
    c.fin[SERVER] = 200
    c.ack(CLIENT)
    return R, {(1, "c2s"): (req, [], 0), (1, "s2c"): (resp, [], 0)}


def case_midstream():
    R = []
    # No handshake: the capture starts inside an established connection.
    c = Conn(R, 40013, 0x5a5a0000, 0xa5a50000)
    before = fill("mid-c2s-before-pickup", 50)
    stream = fill("mid-c2s", 180)
    c.send(CLIENT, PA, 0, stream[0:100])
    resp = fill("mid-s2c", 200)
    c.send(SERVER, PA, 0, resp[0:120])
    # A retransmission repacketised with new data, reaching 50 bytes before
    # the pickup: those are not part of the stream; [0, 100) matches what
    # was seen and [100, 150) is new (no other segment carries it).
    c.send(CLIENT, PA, -50, before + stream[0:150])
    c.send(CLIENT, PA, 150, stream[150:180])
    c.send(SERVER, PA, 120, resp[120:200])
    c.close(CLIENT)
    return R, {(1, "c2s"): (stream, [], 0), (1, "s2c"): (resp, [], 0)}


def case_midstream_ack():
    R = []
    # No handshake, and each side's first segment is a pure ACK. The
    # client's is at its next sequence number, and its data then arrives out
    # of order: [100, 200) before [0, 100), so the start the ACK fixed is
    # what lets [0, 100) in. The server's is a keep-alive (its next sequence
    # number minus one, no data): no byte is missing before its data.
    c = Conn(R, 40017, 0x6b6b0000, 0xb6b60000)
    stream = fill("mid-ack-c2s", 260)
    resp = fill("mid-ack-s2c", 200)
    c.send(CLIENT, ACK, 0)
    c.send(SERVER, ACK, -1)
    c.send(CLIENT, PA, 100, stream[100:200])
    c.send(CLIENT, PA, 0, stream[0:100])
    c.send(SERVER, PA, 0, resp[0:120])
    # Pure ACKs once the start is fixed move nothing: keep-alives from both
    # sides, and a client ACK with a sequence number far behind.
    c.send(CLIENT, ACK, 199)
    c.send(SERVER, ACK, 119)
    c.send(CLIENT, ACK, -5000)
    c.send(CLIENT, PA, 200, stream[200:260])
    c.send(SERVER, PA, 120, resp[120:200])
    c.close(CLIENT)
    return R, {(1, "c2s"): (stream, [], 0), (1, "s2c"): (resp, [], 0)}


def case_ipv6():
    R = []
    c = Conn(R, 40014, 0xccddeeff, 0x22360679, v6=True)
    c.handshake()
    req = http_request("ipv6")
    resp = http_response("ipv6-s2c", 100)
    exchange(c, req, resp)
    c.close(CLIENT)
    return R, {(1, "c2s"): (req, [], 0), (1, "s2c"): (resp, [], 0)}


def case_snapped():
    R = []
    c = Conn(R, 40015, 0xddeeff00, 0x26457513)
    c.handshake()
    # Data segments carry no TCP options: 54 bytes of headers, so a 60-byte
    # caplen keeps 6 payload bytes.
    stream = fill("snap-c2s", 500)
    c.send(CLIENT, PA, 0, stream[0:100])
    c.send(CLIENT, PA, 100, stream[100:300], caplen=SNAP)   # 194 bytes cut
    c.send(CLIENT, PA, 300, stream[300:400])
    c.send(CLIENT, PA, 400, stream[400:500], caplen=SNAP)   # 94 cut at the end
    c.ack(SERVER)
    resp = fill("snap-s2c", 1200)
    c.send(SERVER, PA, 0, resp[0:300])
    c.send(SERVER, PA, 300, resp[300:700], caplen=SNAP)     # 394 bytes cut
    c.send(SERVER, FPA, 700, resp[700:1200], caplen=SNAP)   # 494 cut, then the FIN
    # The client only acknowledges: its direction ends with the cut bytes,
    # no FIN after them.
    c.ack(CLIENT)
    c_got = stream[0:106] + stream[300:406]
    s_got = resp[0:306] + resp[700:706]
    return R, {(1, "c2s"): (c_got, [194, 94], 0), (1, "s2c"): (s_got, [394, 494], 0)}


def case_snapped_whole():
    R = []
    c = Conn(R, 40018, 0xeeff0011, 0x30102030)
    c.handshake()
    # 54 bytes of headers and a 54-byte caplen: these payloads are cut
    # whole, captured 0 of their bytes. Two in a row make one gap; the last
    # segment of the direction is one of them.
    stream = fill("snap-whole-c2s", 400)
    c.send(CLIENT, PA, 0, stream[0:100])
    c.send(CLIENT, PA, 100, stream[100:200], caplen=54)
    c.send(CLIENT, PA, 200, stream[200:250], caplen=54)
    c.send(CLIENT, PA, 250, stream[250:350])
    c.send(CLIENT, PA, 350, stream[350:400], caplen=54)
    c.ack(SERVER)
    resp = http_response("snap-whole-s2c", 100)
    c.send(SERVER, PA, 0, resp)
    c.ack(CLIENT)
    return R, {(1, "c2s"): (stream[0:100] + stream[250:350], [150, 50], 0),
               (1, "s2c"): (resp, [], 0)}


def case_port_reuse():
    R = []
    # One 4-tuple, three connections. The first closes with FIN, FIN, ACK;
    # the second opens with a new SYN (another ISN, just past the first's
    # sequence numbers, as a stack reusing a port in TIME_WAIT picks it) and
    # is reset by the client; the third opens after the RST. Each is a flow
    # of its own with its own bytes.
    a = Conn(R, 40016, 0x0f1e2d3c, 0x4b5a6978)
    a.handshake()
    req1 = http_request("port-reuse-1")
    resp1 = http_response("port-reuse-1-s2c", 150)
    exchange(a, req1, resp1)
    a.close(CLIENT)
    b = Conn(R, 40016, a.seq(CLIENT, a.next_off(CLIENT) + 1000), 0x5c6d7e8f)
    b.handshake()
    req2 = http_request("port-reuse-2", fill("port-reuse-2-c2s", 60))
    resp2 = http_response("port-reuse-2-s2c", 220)
    exchange(b, req2, resp2)
    b.send(CLIENT, RST | ACK, b.next_off(CLIENT))
    c = Conn(R, 40016, 0x2468ace0, 0x369cf258)
    c.handshake()
    req3 = http_request("port-reuse-3")
    resp3 = http_response("port-reuse-3-s2c", 90)
    exchange(c, req3, resp3)
    c.close(SERVER)
    return R, {(1, "c2s"): (req1, [], 0), (1, "s2c"): (resp1, [], 0),
               (2, "c2s"): (req2, [], 0), (2, "s2c"): (resp2, [], 0),
               (3, "c2s"): (req3, [], 0), (3, "s2c"): (resp3, [], 0)}


CASES = [
    ("inorder", case_inorder),
    ("overlap-same", lambda: case_overlap(True)),
    ("overlap-diff", lambda: case_overlap(False)),
    ("retransmit-diff", case_retransmit_diff),
    ("out-of-order", case_out_of_order),
    ("one-byte", case_one_byte),
    ("gap", case_gap),
    ("wrap", case_wrap),
    ("syn-data", case_syn_data),
    ("rst-in-window", case_rst_in_window),
    ("rst-out-of-window", case_rst_out_of_window),
    ("data-after-fin", case_data_after_fin),
    ("midstream", case_midstream),
    ("midstream-ack", case_midstream_ack),
    ("ipv6", case_ipv6),
    ("snapped", case_snapped),
    ("snapped-whole", case_snapped_whole),
    ("port-reuse", case_port_reuse),
]


# --------------------------------------------------------------------------
# pcap writer
# --------------------------------------------------------------------------

def ts_of(i):
    """Timestamp of the i-th record: one millisecond apart."""
    total = i * 1000 + 7
    return TS_BASE + total // 1_000_000, total % 1_000_000


def pcap_bytes(recs, linktype=1, snaplen=262144):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, r in enumerate(recs):
        sec, usec = ts_of(i)
        out.append(struct.pack("<IIII", sec, usec, r.caplen, r.len))
        out.append(r.frame[:r.caplen])
    return b"".join(out)


# --------------------------------------------------------------------------
# The model: reads a capture back and reassembles it by the contract
# --------------------------------------------------------------------------

def read_pcap(data):
    magic, = struct.unpack("<I", data[:4])
    assert magic == 0xA1B2C3D4
    linktype, = struct.unpack("<I", data[20:24])
    assert linktype == 1
    off, recs = 24, []
    while off < len(data):
        _, _, caplen, wirelen = struct.unpack("<IIII", data[off:off + 16])
        recs.append((data[off + 16:off + 16 + caplen], wirelen))
        off += 16 + caplen
    return recs


class TcpSeg:
    """What a captured Ethernet frame says about its TCP segment."""

    def __init__(self, frame):
        etype, = struct.unpack("!H", frame[12:14])
        ip = 14
        if etype == 0x0800:
            ihl = (frame[ip] & 0x0F) * 4
            total, = struct.unpack("!H", frame[ip + 2:ip + 4])
            assert frame[ip + 9] == 6
            self.src, self.dst = frame[ip + 12:ip + 16], frame[ip + 16:ip + 20]
            tcp, seg_len = ip + ihl, total - ihl
        elif etype == 0x86DD:
            plen, = struct.unpack("!H", frame[ip + 4:ip + 6])
            assert frame[ip + 6] == 6  # no extension headers here
            self.src, self.dst = frame[ip + 8:ip + 24], frame[ip + 24:ip + 40]
            tcp, seg_len = ip + 40, plen
        else:
            raise ValueError("not IP")
        self.sport, self.dport, self.seq, _, doff, self.flags, self.window = struct.unpack(
            "!HHIIBBH", frame[tcp:tcp + 16])
        hlen = (doff >> 4) * 4
        self.wscale = None
        opts = frame[tcp + 20:tcp + hlen]
        i = 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            olen = opts[i + 1]
            if kind == 3:
                self.wscale = opts[i + 2]
            i += olen
        self.wire_len = seg_len - hlen                       # payload on the wire
        self.payload = frame[tcp + hlen:tcp + hlen + self.wire_len]  # as captured


def signed32(x):
    x %= MOD
    return x - MOD if x >= 1 << 31 else x


class DirModel:
    """One direction: a byte map where the first copy wins."""

    def __init__(self):
        self.base = None
        self.ack_start = False  # the start is a pure ACK's, not yet confirmed
        self.bytes = {}
        self.fin = None
        self.known_end = 0
        self.reset = False
        self.inconsistent = 0

    def next_expected(self):
        o = 0
        while o in self.bytes:
            o += 1
        return o

    def segment(self, s, window):
        syn, fin, rst = s.flags & SYN, s.flags & FIN, s.flags & RST
        if self.reset:
            return
        if not (s.wire_len or syn or fin or rst):
            if self.base is None:
                self.base, self.ack_start = s.seq, True
            return
        data_seq = (s.seq + 1 if syn else s.seq) % MOD
        if self.base is None:
            self.base = data_seq
        elif self.ack_start:
            if syn or data_seq == (self.base + 1) % MOD:
                self.base = data_seq
            self.ack_start = False
        off = signed32(data_seq - self.base)
        if rst:
            rel = off - self.next_expected()
            if window == 0 or 0 <= rel <= window:
                self.reset = True
            return
        if fin and self.fin is None:
            self.fin = off + s.wire_len
        limit = self.fin if self.fin is not None else float("inf")
        self.known_end = max(self.known_end, min(off + s.wire_len, limit))
        differs = False
        for i, b in enumerate(s.payload):
            o = off + i
            if o < 0 or o >= limit:
                continue
            if o in self.bytes:
                differs |= self.bytes[o] != b
            else:
                self.bytes[o] = b
        self.inconsistent += differs

    def result(self):
        end = self.fin if self.fin is not None else self.known_end
        data = bytes(self.bytes[o] for o in sorted(self.bytes) if o < end)
        gaps, run = [], 0
        for o in range(end):
            if o in self.bytes:
                if run:
                    gaps.append(run)
                run = 0
            else:
                run += 1
        if run:
            gaps.append(run)
        return data, gaps, self.inconsistent


class FlowModel:
    def __init__(self, fid, initiator):
        self.id = fid
        self.initiator = initiator  # (address, port) of the first packet's sender
        self.dirs = [DirModel(), DirModel()]
        self.window = [None, None]   # last advertised (non-SYN) window per side
        self.wscale = [None, None]   # SYN's window-scale option per side
        self.closing = False         # a FIN or a RST seen, either way

    def reopened_by(self, s):
        """A SYN without ACK after a FIN or a RST: a new connection."""
        return self.closing and s.flags & (SYN | ACK) == SYN

    def packet(self, s):
        if s.flags & (FIN | RST):
            self.closing = True
        d = 0 if (s.src, s.sport) == self.initiator else 1
        other = 1 - d
        if s.flags & SYN:
            self.wscale[d] = None if s.wscale is None else min(s.wscale, 14)
        # The window of the segment's receiver, as that side last advertised it.
        window = 0
        if self.window[other] is not None:
            scaled = self.wscale[0] is not None and self.wscale[1] is not None
            window = self.window[other] << (self.wscale[other] if scaled else 0)
        if not s.flags & SYN:
            self.window[d] = s.window
        self.dirs[d].segment(s, window)


def model(pcap):
    live, flows = {}, []  # the flow of each tuple now; every flow, in order
    for frame, _ in read_pcap(pcap):
        s = TcpSeg(frame)
        key = frozenset([(s.src, s.sport), (s.dst, s.dport)])
        if key not in live or live[key].reopened_by(s):
            live[key] = FlowModel(len(flows) + 1, (s.src, s.sport))
            flows.append(live[key])
        live[key].packet(s)
    out = []
    for f in flows:
        for d, name in enumerate(("c2s", "s2c")):
            data, gaps, inconsistent = f.dirs[d].result()
            out.append(((f.id, name), data, gaps, inconsistent))
    return out


def expectation(pcap, intent):
    """The expect.json objects, after checking the model against the case's
    intent (a mismatch is a bug in the case or in the model)."""
    objs = []
    results = model(pcap)
    assert {k for k, *_ in results} == set(intent), (sorted(intent), [k for k, *_ in results])
    for key, data, gaps, inconsistent in results:
        assert intent[key] == (data, gaps, inconsistent), (key, intent[key], data, gaps,
                                                           inconsistent)
        objs.append({
            "flow": key[0], "dir": key[1], "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "gaps": len(gaps),
            "gap_bytes": sum(gaps), "inconsistent_overlaps": inconsistent,
        })
    return objs


def expect_json(objs):
    return "[\n" + ",\n".join("  " + json.dumps(o) for o in objs) + "\n]\n"


# --------------------------------------------------------------------------
# Writing and checking
# --------------------------------------------------------------------------

def write_all(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, build in CASES:
        recs, intent = build()
        data = pcap_bytes(recs)
        base = os.path.join(outdir, f"streams-{name}")
        objs = expectation(data, intent)
        with open(base + ".pcap", "wb") as f:
            f.write(data)
        with open(base + ".expect.json", "w") as f:
            f.write(expect_json(objs))


FIELDS = ("bytes", "sha256", "gaps", "gap_bytes", "inconsistent_overlaps")


def check_all(torsieve, outdir):
    failed = 0
    for name, _ in CASES:
        base = os.path.join(outdir, f"streams-{name}")
        with open(base + ".expect.json") as f:
            want = {(o["flow"], o["dir"]): o for o in json.load(f)}
        tmp = tempfile.mkdtemp(prefix="craft-streams.")
        try:
            r = subprocess.run([torsieve, "replay", "--streams", os.path.join(tmp, "s"),
                                "--json", base + ".pcap"], capture_output=True, text=True)
            problems = []
            if r.returncode != 0:
                problems.append(f"exit {r.returncode}: {r.stderr.strip()}")
                got = {}
            else:
                with open(os.path.join(tmp, "s", "streams.json")) as f:
                    got = {(o["flow"], o["dir"]): o for o in map(json.loads, f)}
                for (flow, d), o in got.items():
                    data = open(os.path.join(tmp, "s", f"{flow}-{d}"), "rb").read()
                    if len(data) != o["bytes"] or \
                            hashlib.sha256(data).hexdigest() != o["sha256"]:
                        problems.append(f"flow {flow} {d}: file and line disagree")
            for key in sorted(set(want) | set(got)):
                if key not in got:
                    problems.append(f"flow {key[0]} {key[1]}: missing")
                elif key not in want:
                    problems.append(f"flow {key[0]} {key[1]}: not expected")
                else:
                    diff = [f"{k} {got[key][k]} (expected {want[key][k]})" for k in FIELDS
                            if got[key][k] != want[key][k]]
                    if diff:
                        problems.append(f"flow {key[0]} {key[1]}: " + ", ".join(diff))
        finally:
            shutil.rmtree(tmp)
        if problems:
            failed += 1
            print(f"FAIL streams-{name}: " + "; ".join(problems))
        else:
            print(f"PASS streams-{name}")
    return 1 if failed else 0


def run_cli(argv, doc, check_all, write_all):
    """The command line both generators share: write the files into OUTDIR
    (default test/pcaps), or --check TORSIEVE [OUTDIR]."""
    default = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if argv[:1] == ["--check"]:
        if len(argv) not in (2, 3):
            sys.exit(doc)
        return check_all(argv[1], argv[2] if len(argv) == 3 else default)
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        sys.exit(doc)
    write_all(argv[0] if argv else default)
    return 0


def main(argv):
    return run_cli(argv, __doc__, check_all, write_all)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
