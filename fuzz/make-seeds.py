#!/usr/bin/python3
"""Seeds the fuzz corpora from the fixtures in test/pcaps/.

  fuzz/corpus/pcap/    every fixture and corrupt file, whole
  fuzz/corpus/decode/  every packet of every pcap fixture, framed as
                       fuzz_decode reads it: link byte, snap byte, frame
  fuzz/corpus/policy/  the shipped policy and the policies in SEED_POLICIES
  fuzz/corpus/classify/ each seed policy, a NUL, then fixture frames as
                       fuzz_classify reads them: link byte, length byte, frame
  fuzz/corpus/reassembly/ segment sequences as fuzz_reassembly reads them:
                       initial sequence number, then [offset:2][length:1][bytes]
  fuzz/corpus/defrag/  fragment sequences as fuzz_defrag reads them: a settings
                       byte, then [flags:1][offset:2][length:1][bytes]
  fuzz/corpus/socks5/  SOCKS5 replies as Tor sends them (and the same bytes read as
                       a request to build)
  fuzz/corpus/dns/     DNS queries as clients send them (plain, EDNS, compressed, a
                       pointer loop) and an upstream answer with a CNAME

Re-run after adding fixtures; crash inputs found by fuzzing are added to the
corpus by hand (named crash-*) and stay there as regression inputs.
"""
import glob
import hashlib
import os
import shutil
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PCAPS = os.path.join(ROOT, "test", "pcaps")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

# DLT/LINKTYPE value -> enum ts_link (include/torsieve/decode.h).
LINK_IDS = {1: 1, 113: 2, 276: 3, 101: 4, 12: 4, 14: 4, 228: 5, 229: 6, 0: 7, 108: 8}


def pcap_records(data):
    if len(data) < 24:
        return None, []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return None, []
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0fffffff
    records, off = [], 24
    while off + 16 <= len(data):
        _, _, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        if len(frame) < caplen:
            break
        records.append((frame, wirelen))
        off += 16 + caplen
    return linktype, records


SEED_POLICIES = {
    "lists-and-negation": """list nets = { 10.0.0.0/8, 2001:db8::/32 }
list web = { 80, 443, 8000-8999 }
pass tcp to $nets port $web
pass inet6 proto { tcp, 47 } from ! { fd00::/8 } port ! 0-1023 to any
dns udp from port 1024-65535 to port 53
reject with host-unreachable udp to 203.0.113.7
reject tcp to port 25 with tcp-reset
drop all
""",
    "every-term": """set max-rules 100
set classifier-memory 4M
drop mac { 02:00:00:00:00:01, 02-00-00-00-00-02 } on ! { br0, wlan0 }
drop tcp flags S/SAFR
pass icmp icmp-type { 0, 8 } code 0
pass icmp6 icmp-type { 128, 129 }
pass inet from 192.0.2.0/24 to 198.51.100.0/24 port 1-1023
pass bpf "ip[8] < 5"
drop all
""",
    "fixture-addresses": """drop to { 192.0.2.2, 2001:db8::2 } port 81
divert tcp from 192.0.2.1 to port { 80, 443 }
dns udp to port 53
pass icmp6
reject udp
""",
}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def policy_seeds():
    with open(os.path.join(ROOT, "etc", "torsieve.conf"), "rb") as f:
        policies = {"shipped": f.read()}
    policies.update({k: v.encode() for k, v in SEED_POLICIES.items()})
    for name, text in policies.items():
        write(os.path.join(CORPUS, "policy", "seed-" + name), text)
    frames = []
    for fixture in ("real-eth.pcap", "malformed.pcap", "linktypes-en10mb.pcap"):
        with open(os.path.join(PCAPS, fixture), "rb") as f:
            linktype, records = pcap_records(f.read())
        frames += [bytes([LINK_IDS[linktype], len(fr)]) + fr
                   for fr, _ in records if len(fr) <= 255]
    for name, text in policies.items():
        for i in range(0, len(frames), 40):
            write(os.path.join(CORPUS, "classify", f"seed-{name}-{i // 40}"),
                  text + b"\0" + b"".join(frames[i:i + 40]))
    return len(policies)


def reassembly_seeds():
    import random
    rnd = random.Random(7)
    stream = bytes(rnd.randrange(256) for _ in range(3000))

    def seg(off, data):
        return struct.pack(">HB", off, len(data)) + data

    cases = {
        "inorder": b"".join(seg(o, stream[o:o + 200]) for o in range(0, 2000, 200)),
        "reverse": b"".join(seg(o, stream[o:o + 200]) for o in reversed(range(0, 2000, 200))),
        "overlap-diff": seg(0, stream[:100]) + seg(50, bytes(100)) + seg(150, stream[150:250]),
        "gap": seg(0, stream[:100]) + seg(300, stream[300:400]),
        "one-byte": b"".join(seg(o, stream[o:o + 1]) for o in range(0, 200)),
    }
    for name, body in cases.items():
        isn = b"\xff\xff\xff\x00" if name == "inorder" else b"\x00\x00\x10\x00"  # wraps
        write(os.path.join(CORPUS, "reassembly", "seed-" + name), isn + body)
    return len(cases)


def defrag_seeds():
    import random
    rnd = random.Random(8)
    data = bytes(rnd.randrange(256) for _ in range(2000))

    def frag(off, length, more, dgram=0, wait=0, body=None):
        n = length * 8 if more else length
        flags = int(more) | dgram << 1 | wait << 3
        return struct.pack(">BHB", flags, off, length) + (data[off * 8:off * 8 + n]
                                                          if body is None else body)

    three = [frag(0, 20, True), frag(20, 20, True), frag(40, 100, False)]
    cases = {
        "v4-inorder": b"\x00" + b"".join(three),
        "v4-reverse": b"\x00" + b"".join(reversed(three)),
        "v4-overlap": b"\x00" + frag(0, 20, True) + frag(10, 20, True, body=bytes(160)) +
                      frag(30, 9, False),
        "v4-overlap-drop": b"\x02" + frag(0, 20, True) + frag(10, 20, True) + frag(30, 9, False),
        "v6-overlap": b"\x01" + frag(0, 20, True) + frag(16, 8, True) + frag(24, 50, False),
        "v6-duplicate": b"\x01" + frag(0, 20, True) + frag(0, 20, True, body=bytes(160)) +
                        frag(20, 50, False),
        "udp-two-datagrams": b"\x04" + frag(0, 2, True) + frag(0, 2, True, dgram=1) +
                             frag(2, 9, False, dgram=1) + frag(2, 9, False),
        "contradiction": b"\x00" + frag(8, 30, False) + frag(8, 40, False),
        "tiny-caps": b"\x08" + frag(0, 20, True) + frag(0, 20, True, dgram=1) +
                     frag(0, 20, True, dgram=2) + frag(20, 5, False, dgram=2, wait=2),
    }
    for name, body in cases.items():
        write(os.path.join(CORPUS, "defrag", "seed-" + name), body)
    return len(cases)


def socks5_seeds():
    cases = {
        "ok-ipv4": bytes([5, 0, 0, 1, 127, 0, 0, 1, 0x23, 0x82]),
        "refused-ipv6": bytes([5, 5, 0, 4] + [0x20, 1, 0xd, 0xb8] + [0] * 11 + [1, 0, 80]),
        "resolved-name": bytes([5, 0, 0, 3, 16]) + b"www.example.test" + bytes([0, 0]),
        "onion-error": bytes([5, 0xf6, 0, 1, 0, 0, 0, 0, 0, 0]),
        "method-userpass": bytes([5, 2]),
        "auth-ok": bytes([1, 0]),
    }
    for name, body in cases.items():
        write(os.path.join(CORPUS, "socks5", "seed-" + name), body)
    return len(cases)


def dns_seeds():
    def name(n):
        return b"".join(bytes([len(l)]) + l for l in n.encode().split(b".")) + b"\0"

    def query(qid, qname, qtype, extra=b"", ar=0):
        return (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, ar) + name(qname) +
                struct.pack(">HH", qtype, 1) + extra)

    opt = b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0)
    answer = (struct.pack(">HHHHHH", 7, 0x8180, 1, 2, 0, 0) + name("www.Example.test") +
              struct.pack(">HH", 1, 1) +
              b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 2) + b"\xc0\x0c" +
              b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([203, 0, 113, 80]))
    cases = {
        "a": query(0x1234, "www.example.test", 1),
        "aaaa-edns": query(0x1235, "WWW.Example.TEST", 28, opt, ar=1),
        "onion": query(9, "a" * 56 + ".onion", 1),
        "ptr": query(10, "80.113.0.203.in-addr.arpa", 12),
        "compressed-loop": struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\xc0\x0c" +
                           struct.pack(">HH", 1, 1),
        "answer-cname": answer,
        "notimp": struct.pack(">HHHHHH", 3, 0x2800, 0, 0, 0, 0),
    }
    for n, body in cases.items():
        write(os.path.join(CORPUS, "dns", "seed-" + n), body)
    return len(cases)


def main():
    for sub in ("pcap", "decode", "policy", "classify", "reassembly", "defrag", "socks5", "dns"):
        os.makedirs(os.path.join(CORPUS, sub), exist_ok=True)
    written = 0
    sources = sorted(glob.glob(os.path.join(PCAPS, "*.pcap*")) +
                     glob.glob(os.path.join(PCAPS, "bad", "*")))
    for path in sources:
        name = os.path.basename(path)
        shutil.copyfile(path, os.path.join(CORPUS, "pcap", "seed-" + name))
        with open(path, "rb") as f:
            linktype, records = pcap_records(f.read())
        if linktype not in LINK_IDS:
            continue
        seen = set()
        for frame, wirelen in records:
            snap = min(max(wirelen - len(frame), 0), 255)
            data = bytes([LINK_IDS[linktype], snap]) + frame
            digest = hashlib.sha1(data).hexdigest()[:12]
            if digest in seen:
                continue
            seen.add(digest)
            out = os.path.join(CORPUS, "decode", f"seed-{name}-{digest}")
            with open(out, "wb") as f:
                f.write(data)
            written += 1
    print(f"{len(sources)} capture seeds, {written} packet seeds, {policy_seeds()} policy seeds, "
          f"{reassembly_seeds()} reassembly seeds, {defrag_seeds()} defrag seeds, "
          f"{socks5_seeds()} socks5 seeds, {dns_seeds()} dns seeds")


if __name__ == "__main__":
    sys.exit(main())
