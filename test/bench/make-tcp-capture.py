#!/usr/bin/python3
"""Write the TCP reassembly benchmark's capture (test/bench/bench_reassembly.c).

Usage: /usr/bin/python3 test/bench/make-tcp-capture.py OUT.pcap

Many concurrent HTTP-like TCP connections over IPv4 on Ethernet: each opens
with a full handshake (window scaling offered by both sides), carries one to
three requests (a few with an upload body) and responses of 300 B to 200 KB
in MSS-sized segments, and closes with FIN from the server, FIN from the
client and a last ACK. The receiver ACKs every second segment. A few
segments arrive out of order (swapped with the next one), and a few are
retransmitted with the same bytes, either whole or repacketised across two
segments. Sequence numbers start at random values, so some streams wrap.

Every IPv4 and TCP checksum is right: libnids verifies them and would drop
the packet otherwise. The packets are built with struct rather than scapy,
which would take minutes for a capture this size; a fixed seed makes every
run write the same bytes.
"""

import random
import struct
import sys

SEED = 20261125
CONNECTIONS = 4000
ACTIVE = 2000  # connections open at once: a new one starts when one ends
MSS = 1460
WINDOW, WSCALE = 65535, 7
EXCHANGES = (1, 3)  # request/response pairs per connection
BODY = (300, 200_000)  # response body sizes, log-uniform
UPLOAD_SHARE, UPLOAD = 0.05, (2_000, 40_000)  # requests that carry a body
SWAP_SHARE = 0.02  # segments sent after the one that follows them
RESEND_SHARE = 0.01  # segments sent again, whole
REPACK_SHARE = 0.005  # resends covering half of a segment and half of the next
START_SEC, STEP_USEC = 1_700_000_000, 5

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
CLIENT_MAC, SERVER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SYN_OPTIONS = struct.pack("!BBHBBBB", 2, 4, MSS, 1, 3, 3, WSCALE)  # MSS, NOP, window scale
counts = {"swapped": 0, "resent": 0, "repacketised": 0}


def ones_sum(value):
    """The ones' complement sum of 16-bit words, given their big-endian
    concatenation modulo 0xffff (0x10000 is 1 modulo 0xffff, so the residue
    of the whole number equals that of the sum of its words)."""
    return value % 0xFFFF or 0xFFFF


def residue(data):
    if len(data) & 1:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF


class Writer:
    """Frames to a classic pcap file, buffered, with a fixed clock."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.buf = []
        self.packets = 0
        self.ip_id = 0

    def frame(self, src, dst, sport, dport, flags, seq, ack, payload, payload_res, options=b""):
        tcp_len = 20 + len(options) + len(payload)
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, self.ip_id, 0x4000, 64, 6, 0,
                         src, dst)
        ip_sum = 0xFFFF - ones_sum(int.from_bytes(ip, "big"))
        ip = ip[:10] + struct.pack("!H", ip_sum) + ip[12:]
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          (5 + len(options) // 4) << 4, flags, WINDOW, 0, 0) + options
        pseudo = src + dst + struct.pack("!BBH", 0, 6, tcp_len)
        tcp_sum = 0xFFFF - ones_sum(int.from_bytes(pseudo + tcp, "big") + payload_res)
        tcp = tcp[:16] + struct.pack("!H", tcp_sum) + tcp[18:]
        macs = CLIENT_MAC + SERVER_MAC if src[0] == 192 else SERVER_MAC + CLIENT_MAC
        frame = macs + b"\x08\x00" + ip + tcp + payload
        usec = self.packets * STEP_USEC
        self.buf.append(struct.pack("<IIII", START_SEC + usec // 1_000_000, usec % 1_000_000,
                                    len(frame), len(frame)))
        self.buf.append(frame)
        self.packets += 1
        if len(self.buf) >= 8192:
            self.flush()

    def flush(self):
        self.f.write(b"".join(self.buf))
        self.buf = []

    def close(self):
        self.flush()
        self.f.close()


class Side:
    def __init__(self, addr, port, isn):
        self.addr, self.port, self.seq = addr, port, isn


def send(rng, snd, rcv, data):
    """One message from snd to rcv in MSS-sized segments, with the
    receiver's ACK after every second segment, some segments swapped and
    some sent again. Yields packets; leaves snd's sequence number after it."""
    base = snd.seq
    cuts = [(off, min(MSS, len(data) - off)) for off in range(0, len(data), MSS)]
    order = list(range(len(cuts)))
    for i in range(len(order) - 1):
        if rng.random() < SWAP_SHARE:
            order[i], order[i + 1] = order[i + 1], order[i]
            counts["swapped"] += 1
    sent, acked, since_ack = set(), 0, 0
    resends = []  # [segments still to go before it, offset, length]
    for i in order:
        off, n = cuts[i]
        yield snd, rcv, PSH | ACK, base + off, rcv.seq, data[off:off + n]
        sent.add(i)
        if rng.random() < RESEND_SHARE:
            resends.append([rng.randint(1, 3), off, n])
            counts["resent"] += 1
        elif i + 1 < len(cuts) and rng.random() < REPACK_SHARE:
            start = off + n // 2
            resends.append([rng.randint(2, 3), start, min(MSS, len(data) - start)])
            counts["repacketised"] += 1
        for r in resends:
            r[0] -= 1
        for r in [r for r in resends if r[0] <= 0]:
            resends.remove(r)
            yield snd, rcv, PSH | ACK, base + r[1], rcv.seq, data[r[1]:r[1] + r[2]]
        since_ack += 1
        while acked in sent:
            acked += 1
        if since_ack == 2:
            since_ack = 0
            end = cuts[acked][0] if acked < len(cuts) else len(data)
            yield rcv, snd, ACK, rcv.seq, base + end, b""
    for _, off, n in resends:
        yield snd, rcv, PSH | ACK, base + off, rcv.seq, data[off:off + n]
    snd.seq = base + len(data)
    yield rcv, snd, ACK, rcv.seq, snd.seq, b""


def connection(rng, index, pool):
    client = Side(bytes([10, 1, index >> 8 & 0xFF, index & 0xFF]), 20000 + index % 40000,
                  rng.getrandbits(32))
    server = Side(bytes([192, 0, 2, 1 + index % 200]), 80, rng.getrandbits(32))
    yield client, server, SYN, client.seq, 0, b""
    yield server, client, SYN | ACK, server.seq, client.seq + 1, b""
    client.seq += 1
    server.seq += 1
    yield client, server, ACK, client.seq, server.seq, b""
    for n in range(rng.randint(*EXCHANGES)):
        upload = b""
        if rng.random() < UPLOAD_SHARE:
            size = rng.randint(*UPLOAD)
            at = rng.randrange(len(pool) - size)
            upload = pool[at:at + size]
        method = b"POST" if upload else b"GET"
        request = b"%s /obj/%d/%d HTTP/1.1\r\nHost: s%d.example\r\nUser-Agent: bench\r\n" % (
            method, index, n, index % 200)
        if upload:
            request += b"Content-Length: %d\r\n" % len(upload)
        request += b"Accept: */*\r\n\r\n" + upload
        yield from send(rng, client, server, request)
        size = int(BODY[0] * (BODY[1] / BODY[0]) ** rng.random())
        at = rng.randrange(len(pool) - size)
        response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + pool[at:at + size]
        yield from send(rng, server, client, response)
    yield server, client, FIN | ACK, server.seq, client.seq, b""
    server.seq += 1
    yield client, server, FIN | ACK, client.seq, server.seq, b""
    client.seq += 1
    yield server, client, ACK, server.seq, client.seq, b""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-tcp-capture.py OUT.pcap")
    rng = random.Random(SEED)
    pool = rng.randbytes(1 << 22)
    out = Writer(sys.argv[1])
    started, active, stream_bytes = 0, [], 0
    while started < CONNECTIONS or active:
        while started < CONNECTIONS and len(active) < ACTIVE:
            active.append(connection(rng, started, pool))
            started += 1
        k = rng.randrange(len(active))
        try:
            snd, rcv, flags, seq, ack, payload = next(active[k])
        except StopIteration:
            active[k] = active[-1]
            active.pop()
            continue
        stream_bytes += len(payload)
        options = SYN_OPTIONS if flags & SYN else b""
        out.frame(snd.addr, rcv.addr, snd.port, rcv.port, flags, seq, ack, payload,
                  residue(payload), options)
    out.close()
    print("%s: %d packets, %d connections, %d payload bytes (resends included); segments "
          "swapped %d, resent %d, repacketised %d"
          % (sys.argv[1], out.packets, CONNECTIONS, stream_bytes, counts["swapped"],
             counts["resent"], counts["repacketised"]))


if __name__ == "__main__":
    main()
