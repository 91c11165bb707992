#!/usr/bin/python3
"""Write torsieve's decoder test fixtures (pcap/pcapng files and their labels).

Usage: /usr/bin/python3 test/pcaps/gen/craft.py [OUTDIR]

OUTDIR defaults to test/pcaps (the directory above this script). Corrupt
capture files go to OUTDIR/bad/. Every run writes byte-identical files: all
timestamps, addresses, sequence numbers and identifiers are fixed here.

scapy (Debian's python3-scapy, hence /usr/bin/python3) is used only to build
packet bytes; the capture files are written by the small writers below so that
link type, caplen vs len, byte order and timestamp precision are exact.

Each fixture X.pcap / X.pcapng gets X.labels.jsonl: one JSON object per packet,
in order, holding what the decoder must report for it (see docs/decoder.md for
the anomaly rules and the brief in test/pcaps/README.md for the field names).
A field set to null means "must be absent"; a field left out is not asserted.
For a malformed packet only the anomaly and fields settled before the problem
are asserted.
"""

import json
import logging
import os
import socket
import struct
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.layers.inet import IP, TCP, UDP, ICMP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrRouting,
    ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, RouterAlert,
    Jumbo, PadN,
)
from scapy.layers.inet import IPOption_RR, IPOption_Router_Alert  # noqa: E402
from scapy.layers.ipsec import AH  # noqa: E402
from scapy.layers.l2 import Ether, Dot1Q, ARP, LLC  # noqa: E402
from scapy.layers.dns import DNS, DNSQR, DNSRR  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import checksum  # noqa: E402

# --------------------------------------------------------------------------
# Fixed identities
# --------------------------------------------------------------------------

MAC_C = "02:00:00:00:00:0c"  # client
MAC_S = "02:00:00:00:00:05"  # server / router
C4, S4 = "192.0.2.10", "198.51.100.20"
C6, S6 = "2001:db8::10", "2001:db8:0:1::20"  # S6 checks the one-zero-group rule
LL6 = "fe80::c"

ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
TPID_8021Q, TPID_8021AD, TPID_9100 = 0x8100, 0x88A8, 0x9100

PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}

# TCP flag bits
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

TS_BASE = 1700000000  # 2023-11-14T22:13:20Z


def flag_str(flags):
    """TCP flags as letters in the order F S R P A U E C."""
    return "".join(ch for bit, ch in zip(range(8), "FSRPAUEC") if flags & (1 << bit))


def ntop(addr):
    """Address as inet_ntop prints it (RFC 5952 for IPv6)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return socket.inet_ntop(fam, socket.inet_pton(fam, addr))


# --------------------------------------------------------------------------
# Packet records and labels
# --------------------------------------------------------------------------

class L3:
    """A network-layer packet: its bytes, the ethertype that carries it and
    the label a clean decode of it must produce (without link fields)."""

    def __init__(self, data, ethertype, label):
        self.data = data
        self.ethertype = ethertype
        self.label = label


class Rec:
    """One capture record: the whole frame as it was on the wire, how many of
    its bytes were captured, and its label."""

    def __init__(self, frame, label, caplen=None):
        self.frame = frame
        self.len = len(frame)
        self.caplen = len(frame) if caplen is None else caplen
        assert 0 <= self.caplen <= self.len
        self.label = label


def clean_label(l3, src, dst, proto, sport=None, dport=None, tcp_flags=None, frag=None):
    return {
        "l3": l3, "src": ntop(src), "dst": ntop(dst),
        "proto": PROTO_NAMES.get(proto, proto),
        "sport": sport, "dport": dport, "frag": frag, "tcp_flags": tcp_flags,
        "anomaly": "none",
    }


def frag_label(offset, more):
    return {"offset": offset, "more": more}


# Which already-decoded fields a malformed packet's label keeps, by how far the
# decoder got. Any problem past the link layer keeps the VLAN list (the link
# layer was decoded whole); an IP problem after the version check keeps l3; a
# transport problem also keeps the addresses.
KEEP_NONE = ()
KEEP_L3 = ("l3",)
KEEP_ADDR = ("l3", "src", "dst")


def alab(anomaly, l3=None):
    """Label of a packet whose problem is in the network layer or above:
    the anomaly, l3 when given, and a VLAN placeholder the link framer fills."""
    lab = {"l3": l3} if l3 else {}
    lab.update({"vlan": None, "anomaly": anomaly})
    return lab


def bad(pkt, anomaly, keep):
    """Turn a packet built by a clean-shape helper into a malformed one:
    its label asserts `anomaly`, the link's VLAN list and the fields in `keep`."""
    lab = {k: pkt.label[k] for k in keep if k in pkt.label}
    lab.update({"vlan": None, "anomaly": anomaly})
    return L3(pkt.data, pkt.ethertype, lab)


# --------------------------------------------------------------------------
# Transport builders (bytes with correct checksums for the given addresses)
# --------------------------------------------------------------------------

def _with_pseudo(src, dst, proto, l4pkt):
    """Serialise a scapy transport layer under a throwaway IP header so scapy
    fills in the pseudo-header checksum, then strip the IP header again."""
    if ":" in src:
        return bytes(IPv6(src=src, dst=dst, nh=proto) / l4pkt)[40:]
    return bytes(IP(src=src, dst=dst, proto=proto) / l4pkt)[20:]


def tcp_seg(src, dst, sport, dport, flags, *, seq=1000, ack=0, win=64240, opts=b"",
            payload=b"", doff=None, urg=0):
    """A TCP segment. `opts` are raw option bytes (so malformed options are
    possible); `doff` overrides the data offset computed from them."""
    if doff is None:
        assert len(opts) % 4 == 0, "TCP options must fill whole words"
        doff = 5 + len(opts) // 4
    seg = TCP(sport=sport, dport=dport, seq=seq, ack=ack, dataofs=doff, flags=flags,
              window=win, urgptr=urg)
    if opts or payload:
        seg = seg / Raw(opts + payload)
    return _with_pseudo(src, dst, 6, seg)


def udp_dgram(src, dst, sport, dport, payload=b"", *, length=None):
    """A UDP datagram; `length` overrides the length field."""
    d = UDP(sport=sport, dport=dport, len=length)
    if payload:
        d = d / Raw(payload)
    return _with_pseudo(src, dst, 17, d)


def icmp_echo(ident=0x4242, seq=1, payload=b"abcdefghijklmnop", reply=False):
    return bytes(ICMP(type=0 if reply else 8, code=0, id=ident, seq=seq) / Raw(payload))


def icmp6_echo(src, dst, ident=0x4242, seq=1, payload=b"abcdefghijklmnop", reply=False):
    cls = ICMPv6EchoReply if reply else ICMPv6EchoRequest
    return _with_pseudo(src, dst, 58, cls(id=ident, seq=seq, data=payload))


def dns_query(name="example.com", qid=0x1234):
    return bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype="A")))


def dns_answer(name="example.com", qid=0x1234):
    return bytes(DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype="A"),
                     an=DNSRR(rrname=name, type="A", ttl=300, rdata="93.184.216.34")))


# TCP option bytes
def o_mss(v=1460):
    return struct.pack("!BBH", 2, 4, v)


def o_ws(v=7):
    return struct.pack("!BBB", 3, 3, v)


O_SACKOK = b"\x04\x02"
O_NOP = b"\x01"
O_EOL = b"\x00"


def o_ts(val=0x01020304, ecr=0):
    return struct.pack("!BBII", 8, 10, val, ecr)


def o_sack(*blocks):
    return struct.pack("!BB", 5, 2 + 8 * len(blocks)) + b"".join(
        struct.pack("!II", left, right) for left, right in blocks)


SYN_OPTS = o_mss() + O_SACKOK + o_ts() + O_NOP + o_ws()  # Linux's SYN, 20 bytes


# --------------------------------------------------------------------------
# Network-layer builders
# --------------------------------------------------------------------------

def ip4(src, dst, proto, payload, *, opts=b"", ihl=None, totlen=None, version=4, mf=False,
        df=False, offset=0, ident=0x1c46, ttl=64, tos=0):
    """IPv4 header + payload. scapy builds the fixed header with every field
    explicit; raw option bytes are spliced in and the checksum recomputed, so
    IHL, total length and options can all lie."""
    assert offset % 8 == 0
    if ihl is None:
        assert len(opts) % 4 == 0, "IPv4 options must fill whole words"
        ihl = 5 + len(opts) // 4
    if totlen is None:
        totlen = 20 + len(opts) + len(payload)
    flags = (2 if df else 0) | (1 if mf else 0)
    hdr = bytes(IP(version=version, ihl=ihl, tos=tos, len=totlen, id=ident, flags=flags,
                   frag=offset // 8, ttl=ttl, proto=proto, src=src, dst=dst, chksum=0))
    hdr = hdr[:20] + opts
    ck = checksum(hdr)
    return hdr[:10] + struct.pack("!H", ck) + hdr[12:] + payload


def ip6(src, dst, nh, payload, *, plen=None, version=6, hlim=64, fl=0x12345):
    return bytes(IPv6(version=version, tc=0, fl=fl, plen=plen, nh=nh, hlim=hlim, src=src,
                      dst=dst) / Raw(payload))


# IPv6 extension headers (each takes the next-header value it points to)
def x_hbh(nh, options=None):
    return bytes(IPv6ExtHdrHopByHop(nh=nh, options=options or [PadN(optdata=b"\x00" * 4)]))


def x_dst(nh, options=None):
    return bytes(IPv6ExtHdrDestOpt(nh=nh, options=options or [PadN(optdata=b"\x00" * 4)]))


def x_frag(nh, offset=0, m=0, ident=0xabcd0001):
    assert offset % 8 == 0
    return bytes(IPv6ExtHdrFragment(nh=nh, offset=offset // 8, m=m, id=ident))


def x_rt(nh, rtype, addrs, segleft):
    return bytes(IPv6ExtHdrRouting(nh=nh, type=rtype, addresses=addrs, segleft=segleft))


def x_ah(nh, spi=0x1000, seq=1):
    # 12-byte fixed part + 12-byte ICV (HMAC-SHA1-96) = 24 bytes: payloadlen 4
    return bytes(AH(nh=nh, payloadlen=4, reserved=0, spi=spi, seq=seq, icv=b"\xa5" * 12,
                    padding=b""))


def chain6(headers, upper):
    """Join extension headers: `headers` is a list of (type, builder(nh)),
    `upper` is (protocol, bytes). Returns (first next-header value, bytes)."""
    nh, data = upper
    for htype, build in reversed(headers):
        data = build(nh) + data
        nh = htype
    return nh, data


# --------------------------------------------------------------------------
# Clean packet shapes (network layer + transport), with labels
# --------------------------------------------------------------------------

def v4_tcp(sport, dport, flags, src=C4, dst=S4, *, opts=b"", payload=b"", seq=1000, ack=0,
           ipopts=b"", **ipkw):
    seg = tcp_seg(src, dst, sport, dport, flags, seq=seq, ack=ack, opts=opts, payload=payload)
    return L3(ip4(src, dst, 6, seg, opts=ipopts, **ipkw), ETH_IPV4,
              clean_label("ipv4", src, dst, 6, sport, dport, flag_str(flags)))


def v4_udp(sport, dport, payload=b"", src=C4, dst=S4, *, ipopts=b"", **ipkw):
    d = udp_dgram(src, dst, sport, dport, payload)
    return L3(ip4(src, dst, 17, d, opts=ipopts, **ipkw), ETH_IPV4,
              clean_label("ipv4", src, dst, 17, sport, dport))


def v4_icmp(src=C4, dst=S4, *, reply=False, ipopts=b"", **ipkw):
    return L3(ip4(src, dst, 1, icmp_echo(reply=reply), opts=ipopts, **ipkw), ETH_IPV4,
              clean_label("ipv4", src, dst, 1))


def v4_other(proto, payload, src=C4, dst=S4, *, ipopts=b"", **ipkw):
    return L3(ip4(src, dst, proto, payload, opts=ipopts, **ipkw), ETH_IPV4,
              clean_label("ipv4", src, dst, proto))


def v4_frag(proto, chunk, offset, more, src=C4, dst=S4, *, ports=None, tcp_flags=None,
            ident=0x2001):
    """One IPv4 fragment holding `chunk` (bytes of the original payload)."""
    sport, dport = ports if ports else (None, None)
    return L3(ip4(src, dst, proto, chunk, mf=more, offset=offset, ident=ident), ETH_IPV4,
              clean_label("ipv4", src, dst, proto, sport, dport, tcp_flags,
                          frag_label(offset, more)))


def v6_tcp(sport, dport, flags, src=C6, dst=S6, *, opts=b"", payload=b"", seq=5000, ack=0,
           ext=(), final_dst=None, **ipkw):
    """`final_dst`: the address a routing header leads to, which the TCP
    checksum's pseudo-header uses instead of the IPv6 destination."""
    seg = tcp_seg(src, final_dst or dst, sport, dport, flags, seq=seq, ack=ack, opts=opts,
                  payload=payload)
    nh, data = chain6(list(ext), (6, seg))
    return L3(ip6(src, dst, nh, data, **ipkw), ETH_IPV6,
              clean_label("ipv6", src, dst, 6, sport, dport, flag_str(flags)))


def v6_udp(sport, dport, payload=b"", src=C6, dst=S6, *, ext=(), length=None, **ipkw):
    d = udp_dgram(src, dst, sport, dport, payload, length=length)
    nh, data = chain6(list(ext), (17, d))
    return L3(ip6(src, dst, nh, data, **ipkw), ETH_IPV6,
              clean_label("ipv6", src, dst, 17, sport, dport))


def v6_icmp(src=C6, dst=S6, *, reply=False, **ipkw):
    return L3(ip6(src, dst, 58, icmp6_echo(src, dst, reply=reply), **ipkw), ETH_IPV6,
              clean_label("ipv6", src, dst, 58))


def v6_raw(nh, data, src=C6, dst=S6, *, proto=None, **ipkw):
    """IPv6 with a hand-made payload (extension headers and all); the label's
    proto is `proto` (the upper-layer protocol after the chain)."""
    return L3(ip6(src, dst, nh, data, **ipkw), ETH_IPV6,
              clean_label("ipv6", src, dst, nh if proto is None else proto))


# --------------------------------------------------------------------------
# Link-layer framing
# --------------------------------------------------------------------------

def eth_frame(payload, ethertype, vlans=(), src=MAC_C, dst=MAC_S, pad_to=0):
    """Ethernet frame; `vlans` is a list of (tpid, vid[, pcp]) outermost first."""
    types = [v[0] for v in vlans] + [ethertype]
    p = Ether(dst=dst, src=src, type=types[0])
    for i, v in enumerate(vlans):
        p = p / Dot1Q(prio=v[2] if len(v) > 2 else 0, vlan=v[1], type=types[i + 1])
    frame = bytes(p) + payload
    if len(frame) < pad_to:
        frame += b"\x00" * (pad_to - len(frame))
    return frame


def on_eth(pkt, vlans=(), caplen=None, pad_to=0, src=MAC_C, dst=MAC_S):
    lab = dict(pkt.label)
    if pkt.label.get("anomaly") == "none" or "vlan" in pkt.label:
        lab["vlan"] = [v[1] for v in vlans]
    return Rec(eth_frame(pkt.data, pkt.ethertype, vlans, src=src, dst=dst, pad_to=pad_to),
               order(lab), caplen)


def clean_link_label(pkt, vlan=()):
    lab = dict(pkt.label)
    if lab.get("anomaly") == "none":
        lab["vlan"] = list(vlan)
    return order(lab)


def sll_hdr(protocol, pkttype=0, mac=MAC_S):
    """Linux cooked v1: pkttype, ARPHRD_ETHER, address length 6, address
    (padded to 8), protocol."""
    addr = bytes.fromhex(mac.replace(":", "")) + b"\x00\x00"
    return struct.pack("!HHH8sH", pkttype, 1, 6, addr, protocol)


def sll2_hdr(protocol, pkttype=0, ifindex=2, mac=MAC_S):
    """Linux cooked v2: protocol, reserved, ifindex, ARPHRD_ETHER, pkttype,
    address length 6, address (padded to 8)."""
    addr = bytes.fromhex(mac.replace(":", "")) + b"\x00\x00"
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, 1, pkttype, 6, addr)


def vlan_tag(vid, inner_type, pcp=0):
    return struct.pack("!HH", (pcp << 13) | vid, inner_type)


def ts_of(i, nsec):
    """Timestamp of the i-th record: one millisecond apart, with sub-second
    digits that show the precision."""
    if nsec:
        total = i * 1_000_000 + 123
        return TS_BASE + total // 1_000_000_000, total % 1_000_000_000
    total = i * 1000 + 7
    return TS_BASE + total // 1_000_000, total % 1_000_000


# --------------------------------------------------------------------------
# File writers
# --------------------------------------------------------------------------

LABEL_ORDER = ("n", "len", "caplen", "l3", "src", "dst", "proto", "sport", "dport", "frag",
               "vlan", "tcp_flags", "anomaly")


def order(lab):
    out = {k: lab[k] for k in LABEL_ORDER if k in lab}
    assert set(out) == set(lab), lab
    return out


def pcap_bytes(linktype, recs, *, endian="<", nsec=False, snaplen=262144):
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, r in enumerate(recs):
        sec, frac = ts_of(i, nsec)
        out.append(struct.pack(endian + "IIII", sec, frac, r.caplen, r.len))
        out.append(r.frame[:r.caplen])
    return b"".join(out)


def pcapng_block(btype, body):
    body += b"\x00" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def pcapng_bytes(linktype, recs, snaplen=262144):
    """Little-endian pcapng: one SHB, one IDB (microsecond timestamps, the
    default if_tsresol), one EPB per record."""
    out = [pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           pcapng_block(0x00000001, struct.pack("<HHI", linktype, 0, snaplen))]
    for i, r in enumerate(recs):
        sec, usec = ts_of(i, False)
        t = sec * 1_000_000 + usec
        out.append(pcapng_block(0x00000006, struct.pack(
            "<IIIII", 0, t >> 32, t & 0xFFFFFFFF, r.caplen, r.len) + r.frame[:r.caplen]))
    return b"".join(out)


def write_labels(path, recs):
    base = path.rsplit(".", 1)[0]
    with open(base + ".labels.jsonl", "w") as f:
        for i, r in enumerate(recs, 1):
            lab = {"n": i, "len": r.len, "caplen": r.caplen}
            lab.update(r.label)
            f.write(json.dumps(order(lab)) + "\n")


def write_fixture(outdir, name, linktype, recs, **kw):
    path = os.path.join(outdir, name)
    data = pcapng_bytes(linktype, recs) if name.endswith(".pcapng") else \
        pcap_bytes(linktype, recs, **kw)
    with open(path, "wb") as f:
        f.write(data)
    write_labels(path, recs)
    return path


def write_raw(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


# --------------------------------------------------------------------------
# Packet mixes shared by the link-type fixtures
# --------------------------------------------------------------------------

def mix_v4():
    """Well-formed IPv4 TCP/UDP/ICMP, usable under any link type."""
    return [
        v4_tcp(40000, 80, SYN, opts=SYN_OPTS, seq=100),
        v4_tcp(80, 40000, SYN | ACK, S4, C4, opts=SYN_OPTS, seq=9000, ack=101),
        v4_tcp(40000, 80, PSH | ACK, seq=101, ack=9001, payload=b"GET / HTTP/1.0\r\n\r\n"),
        v4_udp(53001, 53, dns_query()),
        v4_udp(53, 53001, dns_answer(), S4, C4),
        v4_icmp(),
        v4_icmp(S4, C4, reply=True),
    ]


def mix_v6():
    """Well-formed IPv6 TCP/UDP/ICMPv6, usable under any link type."""
    return [
        v6_tcp(40001, 443, SYN, opts=SYN_OPTS),
        v6_tcp(443, 40001, SYN | ACK, S6, C6, opts=SYN_OPTS, seq=7000, ack=5001),
        v6_tcp(40001, 443, FIN | ACK, seq=5001, ack=7001),
        v6_udp(53002, 53, dns_query("example.org")),
        v6_icmp(),
        v6_icmp(S6, C6, reply=True),
    ]


def mix_all():
    v4, v6 = mix_v4(), mix_v6()
    out = []
    for i in range(max(len(v4), len(v6))):  # interleave the families
        out += v4[i:i + 1] + v6[i:i + 1]
    return out


# --------------------------------------------------------------------------
# Fixture: linktypes-en10mb.pcap
# --------------------------------------------------------------------------

def fx_en10mb(outdir):
    R = []
    # An HTTP exchange on port 80.
    R.append(on_eth(v4_tcp(40000, 80, SYN, opts=SYN_OPTS, seq=100)))
    R.append(on_eth(v4_tcp(80, 40000, SYN | ACK, S4, C4, opts=SYN_OPTS, seq=9000, ack=101),
                    src=MAC_S, dst=MAC_C))
    R.append(on_eth(v4_tcp(40000, 80, ACK, seq=101, ack=9001)))
    R.append(on_eth(v4_tcp(40000, 80, PSH | ACK, seq=101, ack=9001,
                           payload=b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")))
    R.append(on_eth(v4_tcp(80, 40000, PSH | ACK, S4, C4, seq=9001, ack=139,
                           payload=b"HTTP/1.1 204 No Content\r\n\r\n"), src=MAC_S, dst=MAC_C))
    R.append(on_eth(v4_tcp(40000, 80, FIN | ACK, seq=139, ack=9029)))
    R.append(on_eth(v4_tcp(80, 40000, FIN | ACK, S4, C4, seq=9029, ack=140),
                    src=MAC_S, dst=MAC_C))
    # Port 443: a handshake the client aborts with a bare RST, and a refused
    # connection answered with RST+ACK.
    R.append(on_eth(v4_tcp(40002, 443, SYN, opts=SYN_OPTS, seq=300)))
    R.append(on_eth(v4_tcp(443, 40002, SYN | ACK, S4, C4, opts=SYN_OPTS, seq=700, ack=301),
                    src=MAC_S, dst=MAC_C))
    R.append(on_eth(v4_tcp(40002, 443, RST, seq=301)))
    R.append(on_eth(v4_tcp(40003, 443, SYN, seq=500, src="192.0.2.11")))
    R.append(on_eth(v4_tcp(443, 40003, RST | ACK, S4, "192.0.2.11", seq=0, ack=501),
                    src=MAC_S, dst=MAC_C))
    # DNS over UDP.
    R.append(on_eth(v4_udp(53001, 53, dns_query())))
    R.append(on_eth(v4_udp(53, 53001, dns_answer(), S4, C4), src=MAC_S, dst=MAC_C))
    # ICMP echo.
    R.append(on_eth(v4_icmp()))
    R.append(on_eth(v4_icmp(S4, C4, reply=True), src=MAC_S, dst=MAC_C))
    # IPv4 options: ping -R (Record Route, 9 slots, IHL 15) and an IGMPv2
    # report with Router Alert (protocol 2 is not parsed: L4 "other").
    rr = bytes(IPOption_RR(routers=["0.0.0.0"] * 9)) + O_EOL
    R.append(on_eth(v4_icmp(ipopts=rr)))
    ra = bytes(IPOption_Router_Alert())
    igmp = b"\x16\x00\x00\x00" + socket.inet_aton("239.1.2.3")  # v2 membership report
    igmp = igmp[:2] + struct.pack("!H", checksum(igmp)) + igmp[4:]
    R.append(on_eth(v4_other(2, igmp, dst="239.1.2.3", ipopts=ra, ttl=1),
                    dst="01:00:5e:01:02:03"))
    # A 48-byte UDP datagram in three IPv4 fragments of 16 bytes. The first
    # fragment holds the UDP header (length field 48 > 16 is fine: it is a fragment).
    dgram = udp_dgram(C4, S4, 40004, 5004, bytes(range(40)))
    assert len(dgram) == 48
    R.append(on_eth(v4_frag(17, dgram[0:16], 0, True, ports=(40004, 5004))))
    R.append(on_eth(v4_frag(17, dgram[16:32], 16, True)))
    R.append(on_eth(v4_frag(17, dgram[32:48], 32, False)))
    # A TCP segment in two IPv4 fragments: the second carries no TCP header,
    # so neither ports nor flags.
    seg = tcp_seg(C4, S4, 40005, 80, PSH | ACK, seq=1, ack=1, payload=bytes(range(36)))
    assert len(seg) == 56
    R.append(on_eth(v4_frag(6, seg[0:24], 0, True, ports=(40005, 80), tcp_flags="PA",
                            ident=0x2002)))
    R.append(on_eth(v4_frag(6, seg[24:], 24, False, ident=0x2002)))
    # IPv6 TCP and UDP.
    R.append(on_eth(v6_tcp(40001, 443, SYN, opts=SYN_OPTS)))
    R.append(on_eth(v6_tcp(443, 40001, SYN | ACK, S6, C6, opts=SYN_OPTS, seq=7000, ack=5001),
                    src=MAC_S, dst=MAC_C))
    R.append(on_eth(v6_udp(53002, 53, dns_query("example.org"))))
    # ICMPv6 echo and a neighbour solicitation.
    R.append(on_eth(v6_icmp()))
    R.append(on_eth(v6_icmp(S6, C6, reply=True), src=MAC_S, dst=MAC_C))
    ns_dst = "ff02::1:ff00:20"
    ns = _with_pseudo(LL6, ns_dst, 58, ICMPv6ND_NS(tgt=S6) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_C))
    R.append(on_eth(L3(ip6(LL6, ns_dst, 58, ns, hlim=255), ETH_IPV6,
                       clean_label("ipv6", LL6, ns_dst, 58)), dst="33:33:ff:00:00:20"))
    # IPv6 hop-by-hop (router alert) + destination options, then TCP.
    R.append(on_eth(v6_tcp(40006, 80, SYN, seq=1, opts=SYN_OPTS, ext=[
        (0, lambda nh: x_hbh(nh, [RouterAlert(value=0), PadN(optdata=b"")])),
        (60, lambda nh: x_dst(nh))])))
    # A 40-byte UDP datagram in two IPv6 fragments (fragmentable part of the
    # first: 24 bytes, a multiple of 8).
    d6 = udp_dgram(C6, S6, 40007, 5007, bytes(range(32)))
    R.append(on_eth(L3(ip6(C6, S6, 44, x_frag(17, 0, 1, 0x6001) + d6[:24]), ETH_IPV6,
                       clean_label("ipv6", C6, S6, 17, 40007, 5007, None,
                                   frag_label(0, True)))))
    R.append(on_eth(L3(ip6(C6, S6, 44, x_frag(17, 24, 0, 0x6001) + d6[24:]), ETH_IPV6,
                       clean_label("ipv6", C6, S6, 17, None, None, None,
                                   frag_label(24, False)))))
    # IPv6 with AH before TCP.
    R.append(on_eth(v6_tcp(40008, 22, ACK, seq=77, ack=88, payload=b"ssh", ext=[
        (51, lambda nh: x_ah(nh))])))
    # An atomic fragment (offset 0, M clear, RFC 6946): not a fragment.
    R.append(on_eth(v6_udp(40009, 123, b"\x23" + b"\x00" * 47, ext=[
        (44, lambda nh: x_frag(nh, 0, 0, 0x6002))])))
    # 802.1Q (PCP 3, so the VID must be masked), QinQ, stacked tags with IPv6.
    R.append(on_eth(v4_tcp(40010, 80, SYN, seq=1), vlans=[(TPID_8021Q, 100, 3)]))
    R.append(on_eth(v4_udp(40011, 53, dns_query()),
                    vlans=[(TPID_8021AD, 200), (TPID_8021Q, 300)]))
    R.append(on_eth(v6_tcp(40012, 443, SYN, opts=SYN_OPTS),
                    vlans=[(TPID_8021Q, 10), (TPID_8021Q, 20)]))
    # ARP request and reply, padded to the 60-byte minimum: L3 "other".
    for arp, s, d in ((ARP(op=1, hwsrc=MAC_C, psrc=C4, hwdst="00:00:00:00:00:00", pdst="192.0.2.1"),
                       MAC_C, "ff:ff:ff:ff:ff:ff"),
                      (ARP(op=2, hwsrc=MAC_S, psrc="192.0.2.1", hwdst=MAC_C, pdst=C4),
                       MAC_S, MAC_C)):
        R.append(Rec(eth_frame(bytes(arp), ETH_ARP, src=s, dst=d, pad_to=60),
                     order({"sport": None, "dport": None, "frag": None, "vlan": [],
                            "tcp_flags": None, "anomaly": "none"})))
    # Every TCP option kind: the SYNs above carry MSS, SACK-permitted,
    # timestamps, NOP and window scale; here SACK with 1, 3 and 4 blocks and EOL.
    R.append(on_eth(v4_tcp(40000, 80, ACK, seq=139, ack=9100,
                           opts=O_NOP * 2 + o_ts(5, 6) + O_NOP * 2 + o_sack((9200, 9300)))))
    R.append(on_eth(v4_tcp(40000, 80, ACK, seq=139, ack=9100,
                           opts=O_NOP * 2 + o_sack((9200, 9300), (9400, 9500), (9600, 9700))
                           + O_NOP * 2 + o_ts(7, 8))))
    R.append(on_eth(v6_tcp(40001, 443, ACK, seq=5001, ack=7001, opts=O_NOP * 2 + o_sack(
        (7100, 7200), (7300, 7400), (7500, 7600), (7700, 7800)))))
    R.append(on_eth(v4_tcp(40013, 80, SYN, seq=1, opts=o_mss(536) + O_EOL * 4)))
    # Snap-length cuts: 1514-byte frames captured at 96 bytes, every header
    # intact: not an anomaly.
    R.append(on_eth(v4_tcp(80, 40000, ACK, S4, C4, seq=20000, ack=140,
                           payload=bytes(1460)), src=MAC_S, dst=MAC_C, caplen=96))
    R.append(on_eth(v6_tcp(443, 40001, ACK, S6, C6, seq=7001, ack=5001,
                           payload=bytes(1440)), src=MAC_S, dst=MAC_C, caplen=96))
    # Ethernet padding: a 40-byte IPv4 TCP ACK padded to a 60-byte frame
    # (trailing bytes after the total length are ignored).
    R.append(on_eth(v4_tcp(40000, 80, ACK, seq=140, ack=9030), pad_to=60))
    R.append(on_eth(v4_udp(40014, 9, b"x"), pad_to=60))
    return write_fixture(outdir, "linktypes-en10mb.pcap", 1, R)


# --------------------------------------------------------------------------
# Fixtures: the other link types (well-formed)
# --------------------------------------------------------------------------

def fx_sll(outdir):
    R = []
    for i, p in enumerate(mix_all()):
        R.append(Rec(sll_hdr(p.ethertype, pkttype=4 if i % 2 else 0) + p.data,
                     clean_link_label(p)))
    # A VLAN-tagged frame inside SLL: protocol 0x8100, then TCI and ethertype.
    p = v4_udp(40020, 53, dns_query())
    R.append(Rec(sll_hdr(TPID_8021Q) + vlan_tag(42, ETH_IPV4) + p.data,
                 clean_link_label(p, [42])))
    return write_fixture(outdir, "linktypes-sll.pcap", 113, R)


def fx_sll2(outdir):
    R = [Rec(sll2_hdr(p.ethertype, pkttype=4 if i % 2 else 0) + p.data, clean_link_label(p))
         for i, p in enumerate(mix_all())]
    return write_fixture(outdir, "linktypes-sll2.pcap", 276, R)


def fx_raw(outdir):
    R = [Rec(p.data, clean_link_label(p)) for p in mix_all()]
    return write_fixture(outdir, "linktypes-raw.pcap", 101, R)


def fx_ipv4(outdir):
    R = [Rec(p.data, clean_link_label(p)) for p in mix_v4()]
    return write_fixture(outdir, "linktypes-ipv4.pcap", 228, R)


def fx_ipv6(outdir):
    R = [Rec(p.data, clean_link_label(p)) for p in mix_v6()]
    return write_fixture(outdir, "linktypes-ipv6.pcap", 229, R)


OTHER_FAMILY = 7  # AF_ISO on the BSDs: neither IPv4 nor IPv6, so L3 "other"


def other_family_label():
    return order({"l3": None, "sport": None, "dport": None, "frag": None, "vlan": [],
                  "tcp_flags": None, "anomaly": "none"})


# Linux's AF_INET6. Not an IPv6 value for DLT_NULL (the link-type registry
# lists 24, 28 and 30 only, and tcpdump calls 10 unknown), so a frame carrying
# it is well-formed L3 "other", IPv6 bytes or not.
LINUX_AF_INET6 = 10


def null_recs(endian, v6_families):
    """BSD loopback records: 4-byte family in `endian` byte order, IPv6
    packets cycling through `v6_families`."""
    R, k = [], 0
    for p in mix_all():
        if p.ethertype == ETH_IPV4:
            fam = 2
        else:
            fam = v6_families[k % len(v6_families)]
            k += 1
        label = other_family_label() if fam == LINUX_AF_INET6 else clean_link_label(p)
        R.append(Rec(struct.pack(endian + "I", fam) + p.data, label))
    R.append(Rec(struct.pack(endian + "I", OTHER_FAMILY) + b"\x81\x00" + bytes(30),
                 other_family_label()))
    return R


def fx_null_le(outdir):
    # Written by a little-endian host: file and family little-endian.
    # Darwin's AF_INET6 (30) first, then the other BSDs' values, and Linux's
    # AF_INET6, which DLT_NULL does not define (so: not IPv6).
    R = null_recs("<", [30, 30, 28, 24, 10, 30])
    return write_fixture(outdir, "linktypes-null-le.pcap", 0, R, endian="<")


def fx_null_be(outdir):
    # Written by a big-endian BSD host: file header, records and family all
    # big-endian; AF_INET6 is 24 (NetBSD/OpenBSD).
    R = null_recs(">", [24])
    return write_fixture(outdir, "linktypes-null-be.pcap", 0, R, endian=">")


def fx_loop(outdir):
    # OpenBSD loopback: family always in network byte order, even though this
    # file itself is little-endian.
    R = null_recs(">", [24])
    return write_fixture(outdir, "linktypes-loop.pcap", 108, R, endian="<")


def fx_pcapng(outdir):
    ps = [v4_tcp(40000, 80, SYN, opts=SYN_OPTS, seq=100),
          v4_tcp(80, 40000, SYN | ACK, S4, C4, opts=SYN_OPTS, seq=9000, ack=101),
          v4_tcp(40000, 80, ACK, seq=101, ack=9001),
          v4_udp(53001, 53, dns_query()),
          v6_udp(53002, 53, dns_query("example.org")),
          v6_tcp(40001, 443, SYN, opts=SYN_OPTS)]
    R = [on_eth(p) for p in ps]
    # One snap-length cut record (EPB captured length < original length).
    R.append(on_eth(v4_tcp(80, 40000, ACK, S4, C4, seq=9001, ack=101, payload=bytes(1460)),
                    caplen=128))
    return write_fixture(outdir, "linktypes-pcapng.pcapng", 1, R)


def fx_be_nsec(outdir):
    ps = [v4_tcp(40000, 80, SYN, opts=SYN_OPTS, seq=100),
          v4_udp(53001, 53, dns_query()),
          v4_icmp(),
          v6_tcp(40001, 443, SYN, opts=SYN_OPTS),
          v6_icmp()]
    R = [on_eth(p) for p in ps]
    return write_fixture(outdir, "linktypes-be-nsec.pcap", 1, R, endian=">", nsec=True)


def fx_empty(outdir):
    return write_fixture(outdir, "empty.pcap", 1, [])


# --------------------------------------------------------------------------
# Fixture: malformed.pcap (Ethernet)
# --------------------------------------------------------------------------

def tcp_opts_pkt(flags, opts, dport=80):
    """IPv4 TCP with the given raw options and otherwise valid fields
    (nonzero ports, legal flags), so only the options can be wrong."""
    return v4_tcp(41000, dport, flags, opts=opts, seq=1, ack=1 if flags & ACK else 0)


def malformed_link():
    """Ethernet and VLAN problems (the label says there is no network layer)."""
    R = []
    good = v4_tcp(41000, 80, SYN, seq=1)
    link_lab = order({"l3": None, "anomaly": "eth_truncated"})
    # eth_truncated: a 10-byte runt, and a full frame captured at 13 bytes.
    R.append(Rec(eth_frame(b"", ETH_IPV4)[:10], link_lab))
    R.append(Rec(eth_frame(good.data, ETH_IPV4), link_lab, caplen=13))
    # vlan_truncated: an 802.1Q TPID followed by only 2 of the tag's 4 bytes.
    vt = order({"l3": None, "anomaly": "vlan_truncated"})
    R.append(Rec(eth_frame(b"", TPID_8021Q) + b"\x00\x64", vt))
    # vlan_truncated: QinQ whose inner tag is cut by the capture (3 of 4 bytes).
    qq = v4_udp(41001, 53, dns_query())
    R.append(Rec(eth_frame(qq.data, ETH_IPV4, [(TPID_8021AD, 200), (TPID_8021Q, 300)]), vt,
                 caplen=14 + 4 + 3))
    # vlan_truncated: ethertype 0x9100 with nothing after it.
    R.append(Rec(eth_frame(b"", TPID_9100), vt))
    # vlan_too_deep: five tags.
    five = [(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3), (TPID_8021Q, 4),
            (TPID_8021Q, 5)]
    R.append(Rec(eth_frame(qq.data, ETH_IPV4, five),
                 order({"l3": None, "anomaly": "vlan_too_deep"})))
    # Clean: exactly four tags (the limit), mixing all three TPIDs.
    R.append(on_eth(qq, vlans=[(TPID_9100, 11), (TPID_8021AD, 12), (TPID_8021Q, 13),
                               (TPID_8021Q, 14)]))
    # Clean: an 802.3 length field (LLC + STP BPDU) is L3 "other".
    bpdu = bytes(LLC(dsap=0x42, ssap=0x42, ctrl=3)) + bytes(35)
    R.append(Rec(bytes(Ether(dst="01:80:c2:00:00:00", src=MAC_C, type=len(bpdu))) + bpdu
                 + bytes(60 - 14 - len(bpdu)), other_family_label()))
    return R


def malformed_ipv4():
    R = []
    syn = v4_tcp(41000, 80, SYN, seq=1)
    # ipv4_truncated: only 10 bytes of IPv4 header in the frame.
    R.append(on_eth(bad(L3(syn.data[:10], ETH_IPV4, {}), "ipv4_truncated", KEEP_NONE)))
    # ipv4_truncated: a whole packet captured only 16 bytes into the header.
    R.append(on_eth(bad(syn, "ipv4_truncated", KEEP_NONE), caplen=14 + 16))
    # ipv4_bad_version: an IPv6 packet behind ethertype 0x0800; a version-5 header.
    R.append(on_eth(L3(v6_udp(41001, 53, dns_query()).data, ETH_IPV4,
                       alab("ipv4_bad_version"))))
    R.append(on_eth(bad(L3(ip4(C4, S4, 6, tcp_seg(C4, S4, 41000, 80, SYN), version=5),
                           ETH_IPV4, {}), "ipv4_bad_version", KEEP_NONE)))
    seg = tcp_seg(C4, S4, 41000, 80, SYN, seq=1)
    # ipv4_bad_hlen: IHL 4 and IHL 0 (total length still 40).
    for ihl in (4, 0):
        R.append(on_eth(L3(ip4(C4, S4, 6, seg, ihl=ihl, totlen=40), ETH_IPV4,
                           alab("ipv4_bad_hlen", "ipv4"))))
    tl = alab("ipv4_bad_totlen", "ipv4")
    # ipv4_bad_totlen: total length 16 < header 20.
    R.append(on_eth(L3(ip4(C4, S4, 6, seg, totlen=16), ETH_IPV4, tl)))
    # ipv4_bad_totlen: IHL 6 (24-byte header, valid NOPs), total length 22.
    R.append(on_eth(L3(ip4(C4, S4, 6, seg, opts=O_NOP * 3 + O_EOL, totlen=22), ETH_IPV4, tl)))
    # ipv4_bad_totlen: total length 1500 in a 54-byte frame.
    R.append(on_eth(L3(ip4(C4, S4, 6, seg, totlen=1500), ETH_IPV4, tl)))
    # ipv4_bad_totlen: a 40-byte packet padded to 60, claiming 48 (> the 46
    # wire bytes after the Ethernet header, padding included).
    R.append(on_eth(L3(ip4(C4, S4, 6, seg, totlen=48), ETH_IPV4, tl), pad_to=60))
    # ipv4_bad_totlen: 1514 bytes on the wire captured at 96; total length 1501
    # is one more than the wire holds (the check is against wire, not captured).
    big = tcp_seg(C4, S4, 41000, 80, ACK, seq=1, ack=1, payload=bytes(1460))
    R.append(on_eth(L3(ip4(C4, S4, 6, big, totlen=1501), ETH_IPV4, tl), caplen=96))
    # ipv4_truncated: IHL 15 (Record Route fills the 40 option bytes), total
    # length and wire fine, but only 40 of the 60 header bytes captured.
    rr = bytes(IPOption_RR(routers=["0.0.0.0"] * 9)) + O_EOL
    R.append(on_eth(bad(v4_tcp(41000, 80, SYN, ipopts=rr), "ipv4_truncated", KEEP_L3),
                    caplen=14 + 40))
    # ipv4_bad_option: Record Route with length 0; Router Alert with length 1;
    # Record Route claiming 39 bytes in a 4-byte option area; an option type
    # (timestamp, 0x44) in the header's last byte with no room for its length.
    for opts in (b"\x07\x00\x00\x00", b"\x94\x01\x00\x00", b"\x07\x27\x04\x00",
                 O_NOP * 3 + b"\x44"):
        R.append(on_eth(bad(v4_tcp(41000, 80, SYN, ipopts=opts), "ipv4_bad_option", KEEP_L3)))
    # Clean: bytes after an EOL are not options; an unknown option (0x88,
    # stream ID) with a sound length is skipped.
    R.append(on_eth(v4_icmp(ipopts=O_EOL + b"\x07\x00\xff")))
    R.append(on_eth(v4_udp(41002, 514, b"<13>hello", ipopts=b"\x88\x04\x12\x34")))
    # ipv4_frag_bad_length: a first fragment (MF) with 12 payload bytes; a
    # middle fragment with 10; a fragment at offset 65528 with MF and 16 bytes
    # (65528 + 16 > 65535).
    ud = udp_dgram(C4, S4, 41003, 5003, bytes(40))
    fb = alab("ipv4_frag_bad_length", "ipv4")
    R.append(on_eth(L3(ip4(C4, S4, 17, ud[:12], mf=True, ident=0x3001), ETH_IPV4, fb)))
    R.append(on_eth(L3(ip4(C4, S4, 17, ud[8:18], mf=True, offset=8, ident=0x3001),
                       ETH_IPV4, fb)))
    R.append(on_eth(L3(ip4(C4, S4, 17, bytes(16), mf=True, offset=65528, ident=0x3002),
                       ETH_IPV4, fb)))
    # Clean: last fragment at offset 65528 with 7 bytes ends exactly at 65535.
    R.append(on_eth(v4_frag(17, bytes(7), 65528, False, ident=0x3003)))
    # ipv4_frag_tiny: first fragments holding 8 and 16 bytes of a TCP header,
    # and a first fragment of UDP with no payload at all (0 is a multiple of 8).
    ft = alab("ipv4_frag_tiny", "ipv4")
    for n in (8, 16):
        R.append(on_eth(L3(ip4(C4, S4, 6, seg[:n], mf=True, ident=0x3004 + n), ETH_IPV4, ft)))
    R.append(on_eth(L3(ip4(C4, S4, 17, b"", mf=True, ident=0x3020), ETH_IPV4, ft)))
    # Clean: a first fragment with 24 bytes, the TCP header fits.
    seg2 = tcp_seg(C4, S4, 41004, 80, PSH | ACK, seq=1, ack=1, payload=bytes(36))
    R.append(on_eth(v4_frag(6, seg2[:24], 0, True, ports=(41004, 80), tcp_flags="PA",
                            ident=0x3021)))
    # Clean: protocols the decoder does not parse (GRE, ESP) are L4 "other".
    R.append(on_eth(v4_other(47, bytes.fromhex("00000800") + bytes(20))))
    R.append(on_eth(v4_other(50, struct.pack("!II", 0x1000, 1) + bytes(24))))
    return R


def malformed_tcp():
    R = []
    ka = KEEP_ADDR
    syn = tcp_seg(C4, S4, 41000, 80, SYN, seq=1)
    # tcp_truncated: the IP total length leaves 12 bytes for the segment.
    R.append(on_eth(bad(v4_other(6, syn[:12]), "tcp_truncated", ka)))
    # tcp_truncated: a whole segment captured only 10 bytes into its header.
    R.append(on_eth(bad(v4_tcp(41000, 80, PSH | ACK, seq=1, ack=1, payload=b"0123456789"),
                        "tcp_truncated", ka), caplen=14 + 20 + 10))
    # tcp_bad_doff: data offset 4 and 0; data offset 8 (32 bytes) in a 24-byte
    # segment; data offset 15 in a 20-byte segment.
    for doff, payload in ((4, b""), (0, b""), (8, b"\x01\x01\x01\x01"), (15, b"")):
        s = tcp_seg(C4, S4, 41000, 80, ACK, seq=1, ack=1, payload=payload, doff=doff)
        R.append(on_eth(bad(v4_other(6, s), "tcp_bad_doff", ka)))
    # tcp_truncated: data offset 10 (SYN options) fits the segment but the
    # capture stops 10 bytes into the options.
    R.append(on_eth(bad(v4_tcp(41000, 80, SYN, opts=SYN_OPTS, payload=bytes(100)),
                        "tcp_truncated", ka), caplen=14 + 20 + 30))
    # tcp_bad_option: timestamps with length 0; MSS with length 1; timestamps
    # (length 10) starting 2 bytes before the end of the options; window scale
    # kind in the last option byte (no length byte); unknown kind 99 with length 1.
    for opts in (b"\x08\x00\x01\x01", b"\x02\x01\x01\x01", O_NOP * 2 + b"\x08\x0a",
                 O_NOP * 3 + b"\x03", b"\x63\x01\x01\x01"):
        R.append(on_eth(bad(tcp_opts_pkt(SYN, opts), "tcp_bad_option", ka)))
    # Clean: an unknown option with a sound length (kind 253, RFC 4727).
    R.append(on_eth(tcp_opts_pkt(SYN, b"\xfd\x04\xbe\xef")))
    # Clean: anything after EOL is ignored.
    R.append(on_eth(tcp_opts_pkt(SYN, o_mss() + O_EOL + b"\x08\x01\x02")))
    # tcp_bad_option_len: each known option with a wrong (but in-bounds) size.
    wrong = [
        (SYN, b"\x02\x03\x05" + O_NOP),                      # MSS length 3
        (SYN, b"\x02\x06\x05\xb4\x00\x00" + O_NOP * 2),      # MSS length 6
        (SYN, o_mss() + b"\x03\x04\x07\x00"),                 # window scale 4, after a good MSS
        (SYN, b"\x03\x02" + O_NOP * 2),                      # window scale 2
        (SYN, b"\x04\x03\x00" + O_NOP),                      # SACK-permitted 3
        (SYN, b"\x04\x04\x00\x00"),                          # SACK-permitted 4
        (ACK, b"\x08\x08" + bytes(6)),                       # timestamps 8
        (ACK, b"\x08\x0c" + bytes(10)),                      # timestamps 12
        (ACK, O_NOP * 2 + b"\x05\x02"),                      # SACK 2 (no blocks)
        (ACK, O_NOP * 2 + b"\x05\x06" + bytes(4)),           # SACK 6 (half a block)
        (ACK, O_NOP * 2 + b"\x05\x0c" + bytes(10) + O_NOP * 2),  # SACK 12
        (ACK, O_NOP * 2 + b"\x05\x14" + bytes(18) + O_NOP * 2),  # SACK 20
    ]
    for flags, opts in wrong:
        R.append(on_eth(bad(tcp_opts_pkt(flags, opts), "tcp_bad_option_len", ka)))
    # tcp_bad_flags (ports nonzero, no options).
    for flags in (SYN | FIN, SYN | RST, 0, FIN | PSH | URG, FIN, PSH, SYN | FIN | ACK,
                  SYN | RST | ACK, ECE | CWR, URG, RST | PSH, SYN | PSH):
        R.append(on_eth(bad(v4_tcp(41000, 80, flags, seq=1), "tcp_bad_flags", ka)))
    # Clean flag combinations: ECN-setup SYN, bare RST, RST+ECE, RST+ACK,
    # SYN+ACK+ECE, ACK+URG.
    for flags in (SYN | ECE | CWR, RST, RST | ECE, RST | ACK, SYN | ACK | ECE, ACK | URG):
        R.append(on_eth(v4_tcp(41000, 80, flags, seq=1, ack=1 if flags & ACK else 0)))
    # port_zero: source port 0, destination port 0 (valid SYNs otherwise).
    R.append(on_eth(bad(v4_tcp(0, 80, SYN, seq=1), "port_zero", ka)))
    R.append(on_eth(bad(v4_tcp(41000, 0, SYN, seq=1), "port_zero", ka)))
    return R


def malformed_udp_icmp():
    R = []
    ka = KEEP_ADDR
    dns = udp_dgram(C4, S4, 41010, 53, dns_query())
    # udp_truncated: the IP total length leaves 4 bytes; a capture cut 5 bytes
    # into the UDP header.
    R.append(on_eth(bad(v4_other(17, dns[:4]), "udp_truncated", ka)))
    R.append(on_eth(bad(v4_udp(41010, 53, dns_query()), "udp_truncated", ka),
                    caplen=14 + 20 + 5))
    # udp_bad_len: length field 4 and 0 (below 8); 100 in a 20-byte datagram;
    # 4 in a first fragment (below 8 applies to fragments too).
    for length, payload in ((4, bytes(12)), (0, bytes(12)), (100, bytes(12))):
        R.append(on_eth(bad(v4_other(17, udp_dgram(C4, S4, 41011, 5011, payload,
                                                   length=length)), "udp_bad_len", ka)))
    R.append(on_eth(bad(v4_other(17, udp_dgram(C4, S4, 41011, 5011, bytes(8), length=4),
                                 mf=True), "udp_bad_len", ka)))
    # Clean: a length field shorter than the datagram (10 of 20) is not "above".
    R.append(on_eth(L3(ip4(C4, S4, 17, udp_dgram(C4, S4, 41012, 5012, bytes(12), length=10)),
                       ETH_IPV4, clean_label("ipv4", C4, S4, 17, 41012, 5012))))
    # port_zero: destination port 0 with a correct length.
    R.append(on_eth(bad(v4_udp(41013, 0, b"zero"), "port_zero", ka)))
    # Clean: source port 0 is legal in UDP.
    R.append(on_eth(v4_udp(0, 53, dns_query())))
    # icmp_truncated: 4 bytes per the total length; a capture cut 6 bytes in.
    R.append(on_eth(bad(v4_other(1, icmp_echo()[:4]), "icmp_truncated", ka)))
    R.append(on_eth(bad(v4_icmp(), "icmp_truncated", ka), caplen=14 + 20 + 6))
    # icmp_wrong_family: an ICMPv6 echo (8 bytes+) inside IPv4, an ICMP echo inside IPv6.
    R.append(on_eth(bad(v4_other(58, icmp6_echo(C6, S6)), "icmp_wrong_family", ka)))
    R.append(on_eth(bad(v6_raw(1, icmp_echo()), "icmp_wrong_family", ka)))
    # icmp6_truncated: 4 bytes per the payload length; a capture cut 6 bytes in.
    R.append(on_eth(bad(v6_raw(58, icmp6_echo(C6, S6)[:4]), "icmp6_truncated", ka)))
    R.append(on_eth(bad(v6_icmp(), "icmp6_truncated", ka), caplen=14 + 40 + 6))
    return R


def malformed_ipv6():
    R = []
    k3, ka = KEEP_L3, KEEP_ADDR
    syn6 = v6_tcp(41020, 443, SYN, seq=1)
    # ipv6_truncated: 30 bytes of header in the frame; a full packet captured
    # 39 bytes into the header.
    R.append(on_eth(L3(syn6.data[:30], ETH_IPV6, alab("ipv6_truncated"))))
    R.append(on_eth(bad(syn6, "ipv6_truncated", KEEP_NONE), caplen=14 + 39))
    # ipv6_bad_version: a 40-byte IPv4 packet behind 0x86dd; version 7.
    R.append(on_eth(L3(v4_tcp(41000, 80, SYN, seq=1).data, ETH_IPV6,
                       alab("ipv6_bad_version"))))
    R.append(on_eth(L3(ip6(C6, S6, 6, tcp_seg(C6, S6, 41020, 443, SYN), version=7), ETH_IPV6,
                       alab("ipv6_bad_version"))))
    # ipv6_jumbogram: payload length 0 and a hop-by-hop header with a Jumbo
    # Payload option (RFC 2675 shape).
    jumbo = x_hbh(6, [Jumbo(jumboplen=65536 + 20)]) + tcp_seg(C6, S6, 41020, 443, SYN)
    R.append(on_eth(L3(ip6(C6, S6, 0, jumbo, plen=0), ETH_IPV6,
                       alab("ipv6_jumbogram", "ipv6"))))
    # ipv6_bad_plen: 100 claimed, 20 present; and 1461 claimed in a 1514-byte
    # frame captured at 96 (1460 on the wire).
    bp = alab("ipv6_bad_plen", "ipv6")
    R.append(on_eth(L3(ip6(C6, S6, 6, tcp_seg(C6, S6, 41020, 443, SYN), plen=100), ETH_IPV6,
                       bp)))
    big = tcp_seg(C6, S6, 41020, 443, ACK, seq=1, ack=1, payload=bytes(1440))
    R.append(on_eth(L3(ip6(C6, S6, 6, big, plen=1461), ETH_IPV6, bp), caplen=96))
    # Clean: "no next header" (59) with an empty payload, padded to 60; ESP (50).
    R.append(on_eth(v6_raw(59, b""), pad_to=60))
    R.append(on_eth(v6_raw(50, struct.pack("!II", 0x2000, 1) + bytes(24))))

    et = "ipv6_ext_truncated"
    # ipv6_ext_truncated: next header is destination options but the payload
    # length is 0 (not even the 2-byte fixed part is inside).
    R.append(on_eth(bad(v6_raw(60, b""), et, k3)))
    # ...destination options claiming 16 bytes (hdr ext len 1) with 8 present.
    R.append(on_eth(bad(v6_raw(60, b"\x06\x01" + bytes(6)), et, k3)))
    # ...an 8-byte destination options header, but payload length 4 (8 bytes
    # are on the wire: the wire is fine, the header is not inside the payload).
    R.append(on_eth(bad(v6_raw(60, b"\x06\x00" + bytes(6), plen=4), et, k3)))
    # ...hop-by-hop, then a routing header (type 2) cut off by the capture.
    hr = v6_tcp(41020, 443, SYN, seq=1, ext=[(0, lambda nh: x_hbh(nh)),
                                            (43, lambda nh: x_rt(nh, 2, [S6], 1))])
    R.append(on_eth(bad(hr, et, k3), caplen=14 + 40 + 8 + 10))
    # ...a fragment header with only 6 of its 8 bytes in the payload.
    R.append(on_eth(bad(v6_raw(44, x_frag(17)[:6]), et, k3)))
    # ...AH claiming 24 bytes with 16 in the payload.
    R.append(on_eth(bad(v6_raw(51, x_ah(6)[:16]), et, k3)))
    # ...a routing header with just 1 byte.
    R.append(on_eth(bad(v6_raw(43, b"\x06"), et, k3)))
    # ipv6_ext_chain_too_long: hop-by-hop + 8 destination options = 9 headers.
    nine = [(0, lambda nh: x_hbh(nh))] + [(60, lambda nh: x_dst(nh))] * 8
    R.append(on_eth(bad(v6_udp(41021, 53, dns_query(), ext=nine), "ipv6_ext_chain_too_long",
                        k3)))
    # Clean: exactly 8 extension headers (hop-by-hop, AH, 6 destination options).
    eight = [(0, lambda nh: x_hbh(nh)), (51, lambda nh: x_ah(nh))] + \
        [(60, lambda nh: x_dst(nh))] * 6
    R.append(on_eth(v6_udp(41021, 53, dns_query(), ext=eight)))
    # ipv6_hbh_not_first: destination options then hop-by-hop; two hop-by-hops.
    for ext in ([(60, lambda nh: x_dst(nh)), (0, lambda nh: x_hbh(nh))],
                [(0, lambda nh: x_hbh(nh)), (0, lambda nh: x_hbh(nh))]):
        R.append(on_eth(bad(v6_tcp(41020, 443, SYN, seq=1, ext=ext), "ipv6_hbh_not_first",
                            k3)))
    # ipv6_routing_type0: RH0 with one address and segments left 1.
    R.append(on_eth(bad(v6_tcp(41020, 443, SYN, seq=1, ext=[
        (43, lambda nh: x_rt(nh, 0, ["2001:db8::99"], 1))], final_dst="2001:db8::99"),
        "ipv6_routing_type0", k3)))
    # Clean: a type-2 routing header (Mobile IPv6).
    R.append(on_eth(v6_tcp(41020, 443, SYN, seq=1, ext=[
        (43, lambda nh: x_rt(nh, 2, ["2001:db8::99"], 1))], final_dst="2001:db8::99")))
    # ipv6_frag_duplicate: two first-fragment headers, every length sound
    # (24 and 16 fragmentable bytes, UDP header inside).
    d = udp_dgram(C6, S6, 41022, 5022, bytes(8))
    R.append(on_eth(bad(v6_raw(44, x_frag(44, 0, 1, 0x7001) + x_frag(17, 0, 1, 0x7002) + d),
                        "ipv6_frag_duplicate", k3)))
    # ipv6_frag_bad_length: M set with 13 fragmentable bytes; M set at offset
    # 65528 with 16 bytes (65528 + 16 > 65535).
    fb = "ipv6_frag_bad_length"
    d13 = udp_dgram(C6, S6, 41022, 5022, bytes(5))
    R.append(on_eth(bad(v6_raw(44, x_frag(17, 0, 1, 0x7003) + d13), fb, k3)))
    R.append(on_eth(bad(v6_raw(44, x_frag(17, 65528, 1, 0x7004) + bytes(16)), fb, k3)))
    # Clean: last fragment at offset 65528 with 7 bytes (ends at 65535).
    R.append(on_eth(L3(ip6(C6, S6, 44, x_frag(17, 65528, 0, 0x7005) + bytes(7)), ETH_IPV6,
                       clean_label("ipv6", C6, S6, 17, None, None, None,
                                   frag_label(65528, False)))))
    # ipv6_frag_tiny: a first fragment with 8 bytes of a TCP header; a first
    # fragment whose 8 bytes start a 16-byte destination options header; a
    # first fragment of UDP with no bytes at all.
    ft = "ipv6_frag_tiny"
    seg = tcp_seg(C6, S6, 41020, 443, SYN, seq=1)
    R.append(on_eth(bad(v6_raw(44, x_frag(6, 0, 1, 0x7006) + seg[:8]), ft, k3)))
    R.append(on_eth(bad(v6_raw(44, x_frag(60, 0, 1, 0x7007) + b"\x06\x01" + bytes(6)), ft,
                        k3)))
    R.append(on_eth(bad(v6_raw(44, x_frag(17, 0, 1, 0x7008)), ft, k3)))
    # Transport problems over IPv6.
    R.append(on_eth(bad(v6_raw(6, seg[:12]), "tcp_truncated", ka)))
    R.append(on_eth(bad(v6_tcp(41020, 443, SYN, seq=1, opts=b"\x08\x09" + bytes(7) + O_NOP * 3),
                        "tcp_bad_option_len", ka)))
    R.append(on_eth(bad(v6_tcp(41020, 443, SYN | FIN, seq=1), "tcp_bad_flags", ka)))
    R.append(on_eth(bad(v6_tcp(41020, 0, SYN, seq=1), "port_zero", ka)))
    R.append(on_eth(bad(v6_raw(17, udp_dgram(C6, S6, 41023, 53, dns_query())[:6]),
                        "udp_truncated", ka)))
    R.append(on_eth(bad(v6_raw(17, udp_dgram(C6, S6, 41023, 5023, bytes(8), length=0)),
                        "udp_bad_len", ka)))
    R.append(on_eth(bad(v6_udp(41023, 0, b"zero"), "port_zero", ka)))
    return R


def fx_malformed(outdir):
    R = []
    # Interleave a few clean packets so a decoder that "sticks" after an
    # anomaly shows up.
    R += [on_eth(v4_tcp(41000, 80, SYN, opts=SYN_OPTS, seq=1))]
    R += malformed_link()
    R += [on_eth(v6_udp(41030, 53, dns_query()))]
    R += malformed_ipv4()
    R += [on_eth(v4_icmp())]
    R += malformed_tcp()
    R += [on_eth(v6_tcp(41031, 443, PSH | ACK, seq=1, ack=1, payload=b"hello"))]
    R += malformed_udp_icmp()
    R += [on_eth(v4_udp(41032, 123, bytes(48)), vlans=[(TPID_8021Q, 7)])]
    R += malformed_ipv6()
    R += [on_eth(v4_tcp(80, 41000, FIN | ACK, S4, C4, seq=5, ack=6))]
    return write_fixture(outdir, "malformed.pcap", 1, R)


# --------------------------------------------------------------------------
# Fixtures: link-layer-only anomalies
# --------------------------------------------------------------------------

def fx_malformed_sll(outdir):
    p = v4_udp(41040, 53, dns_query())
    st = order({"l3": None, "anomaly": "sll_truncated"})
    R = [Rec(sll_hdr(ETH_IPV4)[:10], st),                           # a 10-byte frame
         Rec(sll_hdr(ETH_IPV4) + p.data, st, caplen=15),            # cut 1 byte short
         Rec(sll_hdr(ETH_IPV4) + p.data, clean_link_label(p))]      # clean
    return write_fixture(outdir, "malformed-sll.pcap", 113, R)


def fx_malformed_sll2(outdir):
    p = v6_udp(41041, 53, dns_query())
    st = order({"l3": None, "anomaly": "sll2_truncated"})
    R = [Rec(sll_hdr(ETH_IPV6), st),                  # 16 bytes: a whole SLL v1 header, not v2
         Rec(sll2_hdr(ETH_IPV6)[:10], st),            # a 10-byte frame
         Rec(sll2_hdr(ETH_IPV6) + p.data, st, caplen=19),
         Rec(sll2_hdr(ETH_IPV6) + p.data, clean_link_label(p))]
    return write_fixture(outdir, "malformed-sll2.pcap", 276, R)


def fx_malformed_null(outdir):
    p = v4_icmp()
    nt = order({"l3": None, "anomaly": "null_truncated"})
    R = [Rec(struct.pack("<I", 2)[:2], nt),                        # a 2-byte frame
         Rec(b"", nt),                                            # an empty frame
         Rec(struct.pack("<I", 2) + p.data, nt, caplen=3),         # cut 1 byte short
         Rec(struct.pack("<I", 2) + p.data, clean_link_label(p))]
    return write_fixture(outdir, "malformed-null.pcap", 0, R)


def fx_malformed_raw(outdir):
    p4, p6 = v4_tcp(41042, 80, SYN, seq=1), v6_tcp(41042, 80, SYN, seq=1)
    rb = order({"l3": None, "anomaly": "raw_bad_version"})
    R = [Rec(b"\x50" + p4.data[1:], rb),    # version nibble 5 (IHL 0 left in place)
         Rec(b"\x55" + p4.data[1:], rb),    # version 5, IHL 5
         Rec(b"\x00" + p4.data[1:], rb),    # version 0
         Rec(b"", rb),                      # an empty frame
         Rec(p4.data, rb, caplen=0),        # nothing captured of a 40-byte packet
         Rec(p4.data, clean_link_label(p4)),
         Rec(p6.data, clean_link_label(p6))]
    return write_fixture(outdir, "malformed-raw.pcap", 101, R)


def fx_unsupported(outdir):
    # DLT_USER0 (147): whatever the bytes, every packet is linktype_unsupported.
    lu = order({"l3": None, "anomaly": "linktype_unsupported"})
    R = [Rec(on_eth(v4_tcp(41043, 80, SYN, seq=1)).frame, lu),
         Rec(v6_udp(41043, 53, dns_query()).data, lu)]
    return write_fixture(outdir, "unsupported-linktype.pcap", 147, R)


# --------------------------------------------------------------------------
# Corrupt capture files (test/pcaps/bad/): libpcap must refuse to open or read
# --------------------------------------------------------------------------

def fx_bad(outdir):
    bad_dir = os.path.join(outdir, "bad")
    os.makedirs(bad_dir, exist_ok=True)
    good = on_eth(v4_tcp(41050, 80, SYN, seq=1))
    hdr = pcap_bytes(1, [])
    paths = []
    # Garbage where the magic number should be (rest of the header plausible).
    paths.append(write_raw(os.path.join(bad_dir, "bad-magic.pcap"),
                           b"\xde\xad\xbe\xef" + hdr[4:] + pcap_bytes(1, [good])[24:]))
    # 10 bytes: a valid magic, then the global header stops.
    paths.append(write_raw(os.path.join(bad_dir, "short-header.pcap"), hdr[:10]))
    # One good record, then a record header claiming 100 bytes with 20 present.
    sec, usec = ts_of(1, False)
    paths.append(write_raw(os.path.join(bad_dir, "truncated-record.pcap"),
                           pcap_bytes(1, [good]) + struct.pack("<IIII", sec, usec, 100, 100)
                           + good.frame[:20]))
    # A record whose caplen is 0x7fffffff (far above any snap length).
    paths.append(write_raw(os.path.join(bad_dir, "huge-caplen.pcap"),
                           hdr + struct.pack("<IIII", TS_BASE, 7, 0x7FFFFFFF, 0x7FFFFFFF)
                           + good.frame))
    # An empty file.
    paths.append(write_raw(os.path.join(bad_dir, "zero-length.pcap"), b""))
    # pcapng whose Section Header Block total length (13) is neither a
    # multiple of 4 nor as large as the minimal 28-byte SHB.
    ng = bytearray(pcapng_bytes(1, [good]))
    ng[4:8] = struct.pack("<I", 13)
    paths.append(write_raw(os.path.join(bad_dir, "bad-pcapng.pcapng"), bytes(ng)))
    return paths


# --------------------------------------------------------------------------

FIXTURES = [fx_en10mb, fx_sll, fx_sll2, fx_raw, fx_ipv4, fx_ipv6, fx_null_le, fx_null_be,
            fx_loop, fx_pcapng, fx_be_nsec, fx_empty, fx_malformed, fx_malformed_sll,
            fx_malformed_sll2, fx_malformed_null, fx_malformed_raw, fx_unsupported, fx_bad]


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = argv[1] if len(argv) > 1 else os.path.dirname(here)
    os.makedirs(outdir, exist_ok=True)
    for fx in FIXTURES:
        res = fx(outdir)
        for p in res if isinstance(res, list) else [res]:
            print(os.path.relpath(p, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
