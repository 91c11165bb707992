#!/usr/bin/python3
"""tiny_dns.py - minimal authoritative DNS responder for torsieve test captures.

Standard library only.  Answers A / AAAA queries for a few fixed test names
(documentation addresses, RFC 5737 / RFC 3849) and NXDOMAIN for anything
else.  Serves UDP and TCP (RFC 1035 2-byte length framing) on one port,
IPv4 and IPv6 via a dual-stack socket bound to "::".

Only meant to run inside the throw-away network namespace created by
capture-real.sh; never point it at a real network.

usage: tiny_dns.py [--bind ADDR] [--port N]
"""

import argparse
import socket
import struct
import sys
import threading

TTL = 300

# name (lower case, no trailing dot) -> {qtype: [rdata bytes, ...]}
QTYPE_A = 1
QTYPE_AAAA = 28
QCLASS_IN = 1

ZONE = {
    "www.example.test": {
        QTYPE_A: [socket.inet_pton(socket.AF_INET, "192.0.2.80")],
        QTYPE_AAAA: [socket.inet_pton(socket.AF_INET6, "2001:db8::80")],
    },
    "mail.example.test": {
        QTYPE_A: [socket.inet_pton(socket.AF_INET, "192.0.2.25"),
                  socket.inet_pton(socket.AF_INET, "192.0.2.26")],
        QTYPE_AAAA: [socket.inet_pton(socket.AF_INET6, "2001:db8::25")],
    },
    "example.test": {
        QTYPE_A: [socket.inet_pton(socket.AF_INET, "192.0.2.10")],
        QTYPE_AAAA: [socket.inet_pton(socket.AF_INET6, "2001:db8::10")],
    },
}

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4


class FormErr(Exception):
    pass


def parse_question(msg):
    """Return (qname_lower, qtype, qclass, end_offset) of the first question.

    Compression pointers are not allowed in a query's question (there is
    nothing before it to point at), so they are rejected."""
    off = 12
    labels = []
    while True:
        if off >= len(msg):
            raise FormErr("truncated name")
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0:
            raise FormErr("compression/extended label in question")
        if off + n > len(msg):
            raise FormErr("truncated label")
        labels.append(msg[off:off + n])
        off += n
    if off + 4 > len(msg):
        raise FormErr("truncated question")
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    off += 4
    name = b".".join(labels).decode("ascii", "replace").lower()
    return name, qtype, qclass, off


def build_response(query):
    """Build the response for one DNS query message, or None to drop it."""
    if len(query) < 12:
        return None
    qid, flags, qdcount, _an, _ns, _ar = struct.unpack("!HHHHHH", query[:12])
    if flags & 0x8000:          # a response, not a query: ignore
        return None
    opcode = (flags >> 11) & 0xF
    rd = flags & 0x0100
    # QR=1, AA=1, copy opcode and RD, RA=0
    rflags = 0x8000 | (opcode << 11) | 0x0400 | rd

    if opcode != 0:
        return struct.pack("!HHHHHH", qid, rflags | RCODE_NOTIMP, 0, 0, 0, 0)
    if qdcount != 1:
        return struct.pack("!HHHHHH", qid, rflags | RCODE_FORMERR, 0, 0, 0, 0)
    try:
        name, qtype, qclass, qend = parse_question(query)
    except FormErr:
        return struct.pack("!HHHHHH", qid, rflags | RCODE_FORMERR, 0, 0, 0, 0)

    question = query[12:qend]
    answers = []
    rcode = RCODE_NOERROR
    entry = ZONE.get(name.rstrip("."))
    if entry is None:
        rcode = RCODE_NXDOMAIN
    elif qclass == QCLASS_IN:
        for rdata in entry.get(qtype, []):
            # name = pointer to the question name at offset 12
            answers.append(struct.pack("!HHHIH", 0xC00C, qtype, QCLASS_IN,
                                       TTL, len(rdata)) + rdata)

    header = struct.pack("!HHHHHH", qid, rflags | rcode, 1, len(answers), 0, 0)
    return header + question + b"".join(answers)


def log(*args):
    print("tiny_dns:", *args, file=sys.stderr, flush=True)


def serve_udp(sock):
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            resp = build_response(data)
        except Exception as e:          # never die on a bad packet
            log("udp error from", peer, e)
            continue
        # every answer in ZONE is far below 512 bytes, so no TC handling
        if resp is not None:
            sock.sendto(resp, peer)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def handle_tcp(conn, peer):
    conn.settimeout(10)
    try:
        while True:
            hdr = recv_exact(conn, 2)
            if hdr is None:
                break
            (length,) = struct.unpack("!H", hdr)
            data = recv_exact(conn, length)
            if data is None:
                break
            resp = build_response(data)
            if resp is None:
                break
            conn.sendall(struct.pack("!H", len(resp)) + resp)
    except (OSError, socket.timeout) as e:
        log("tcp error from", peer, e)
    finally:
        conn.close()


def serve_tcp(sock):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=handle_tcp, args=(conn, peer),
                         daemon=True).start()


def make_socket(kind, bind, port):
    fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
    s = socket.socket(fam, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="::",
                    help='address to bind (default "::", dual stack)')
    ap.add_argument("--port", type=int, default=53)
    args = ap.parse_args()

    udp = make_socket(socket.SOCK_DGRAM, args.bind, args.port)
    tcp = make_socket(socket.SOCK_STREAM, args.bind, args.port)
    log("listening on [%s]:%d udp+tcp" % (args.bind, args.port))
    threading.Thread(target=serve_tcp, args=(tcp,), daemon=True).start()
    try:
        serve_udp(udp)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
