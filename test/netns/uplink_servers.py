#!/usr/bin/python3
"""uplink_servers.py - the "internet" servers of the netns test topology.

Runs inside the uplink namespace that test/netns/topology.sh builds and
serves, from one process (standard library only, one thread per socket):

  HTTP  on every --http ADDR:PORT  (plain TCP, HTTP/1.0; 443 is plain too)
          GET /         -> "torsieve-uplink http ADDR:PORT\n"
          GET /bytes/N  -> N bytes of text (N <= 16 MiB), for bulk traffic
  DNS   on every --dns ADDR:PORT   (UDP and TCP with RFC 1035 length framing)
          A / AAAA for the names in ZONE (documentation addresses of the
          uplink "internet"), NXDOMAIN for any other name
  EOF-echo on every --eof-echo ADDR:PORT  (TCP)
          reads until the client's EOF (a half-close is enough), then sends
          "eof-echo BYTES SHA256HEX\n" (count and SHA-256 of what it
          received) and closes: tests that EOF crosses a relay in each
          direction, with the data intact

Every request is logged to stderr as one line
  "http LOCAL from PEER METHOD PATH", "dns LOCAL/udp from PEER NAME TYPE"
  or "eof-echo LOCAL from PEER BYTES" (a connection that ends in an error
  instead of an EOF: "eof-echo LOCAL from PEER BYTES error ERROR", no answer)
so a test can also tell, from the server's side, who reached it.

Bind addresses are given as 203.0.113.80:80 or [2001:db8:3::80]:80.
Only meant for the throw-away namespaces of the tests; never point it at a
real network.  SIGTERM or SIGINT ends it with status 0.
"""

import argparse
import hashlib
import http.server
import signal
import socket
import socketserver
import struct
import sys
import threading

TTL = 60
QTYPE_A = 1
QTYPE_AAAA = 28
QCLASS_IN = 1
QTYPE_NAMES = {QTYPE_A: "A", QTYPE_AAAA: "AAAA"}


def a(addr):
    return socket.inet_pton(socket.AF_INET, addr)


def aaaa(addr):
    return socket.inet_pton(socket.AF_INET6, addr)


# name (lower case, no trailing dot) -> {qtype: [rdata, ...]}
ZONE = {
    "www.example.test": {QTYPE_A: [a("203.0.113.80")],
                         QTYPE_AAAA: [aaaa("2001:db8:3::80")]},
    "example.test": {QTYPE_A: [a("203.0.113.80")],
                     QTYPE_AAAA: [aaaa("2001:db8:3::80")]},
    "dns.example.test": {QTYPE_A: [a("203.0.113.53")],
                         QTYPE_AAAA: [aaaa("2001:db8:3::53")]},
}

RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def parse_bind(text):
    """'1.2.3.4:80' or '[2001:db8::1]:80' -> (family, host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    if not host or ":" in host:
        raise argparse.ArgumentTypeError("bad bind address %r" % text)
    return socket.AF_INET, host, int(port)


def fmt(family, host, port):
    return ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (host, port)


# ------------------------------------------------------------------ DNS

def parse_question(msg):
    off = 12
    labels = []
    while True:
        if off >= len(msg):
            raise ValueError("truncated name")
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0 or off + n > len(msg):
            raise ValueError("bad label")
        labels.append(msg[off:off + n])
        off += n
    if off + 4 > len(msg):
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    name = b".".join(labels).decode("ascii", "replace").lower()
    return name, qtype, qclass, off + 4


def dns_answer(query):
    """(response bytes or None, description for the log)."""
    if len(query) < 12:
        return None, "short"
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:
        return None, "not a query"
    opcode = (flags >> 11) & 0xF
    rflags = 0x8000 | (opcode << 11) | 0x0400 | (flags & 0x0100)

    def bare(rcode):
        return struct.pack("!HHHHHH", qid, rflags | rcode, 0, 0, 0, 0)

    if opcode != 0:
        return bare(RCODE_NOTIMP), "opcode %d" % opcode
    if qdcount != 1:
        return bare(RCODE_FORMERR), "qdcount %d" % qdcount
    try:
        name, qtype, qclass, qend = parse_question(query)
    except ValueError as e:
        return bare(RCODE_FORMERR), str(e)
    entry = ZONE.get(name.rstrip("."))
    rcode = RCODE_NXDOMAIN if entry is None else 0
    answers = []
    if entry is not None and qclass == QCLASS_IN:
        for rdata in entry.get(qtype, []):
            answers.append(struct.pack("!HHHIH", 0xC00C, qtype, QCLASS_IN,
                                       TTL, len(rdata)) + rdata)
    head = struct.pack("!HHHHHH", qid, rflags | rcode, 1, len(answers), 0, 0)
    desc = "%s %s" % (name, QTYPE_NAMES.get(qtype, str(qtype)))
    return head + query[12:qend] + b"".join(answers), desc


def serve_dns_udp(sock, where):
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            resp, desc = dns_answer(data)
        except Exception as e:  # never die on a bad packet
            resp, desc = None, "error %s" % e
        log("dns %s/udp from %s %s" % (where, peer[0], desc))
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


def handle_dns_tcp(conn, peer, where):
    conn.settimeout(10)
    try:
        while True:
            hdr = recv_exact(conn, 2)
            if hdr is None:
                break
            data = recv_exact(conn, struct.unpack("!H", hdr)[0])
            if data is None:
                break
            resp, desc = dns_answer(data)
            log("dns %s/tcp from %s %s" % (where, peer[0], desc))
            if resp is None:
                break
            conn.sendall(struct.pack("!H", len(resp)) + resp)
    except OSError:
        pass
    finally:
        conn.close()


def serve_dns_tcp(sock, where):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=handle_dns_tcp, args=(conn, peer, where),
                         daemon=True).start()


def dns_sockets(family, host, port):
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    for s in (udp, tcp):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
    tcp.listen(64)
    return udp, tcp


# ------------------------------------------------------------------ EOF-echo

def handle_eof_echo(conn, peer, where):
    n = 0
    digest = hashlib.sha256()
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            n += len(data)
            digest.update(data)
        log("eof-echo %s from %s %d" % (where, peer[0], n))
        conn.sendall(("eof-echo %d %s\n" % (n, digest.hexdigest())).encode())
    except OSError as e:
        log("eof-echo %s from %s %d error %s" % (where, peer[0], n, e))
    finally:
        conn.close()


def serve_eof_echo(sock, where):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=handle_eof_echo, args=(conn, peer, where),
                         daemon=True).start()


def tcp_socket(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.listen(64)
    return s


# ------------------------------------------------------------------ HTTP

class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "torsieve-uplink/1"
    sys_version = ""

    def do_GET(self):
        where = fmt(self.server.address_family, *self.server.server_address[:2])
        log("http %s from %s GET %s" % (where, self.client_address[0], self.path))
        if self.path.startswith("/bytes/"):
            try:
                n = int(self.path[len("/bytes/"):])
            except ValueError:
                n = -1
            if not 0 <= n <= 16 << 20:
                self.send_error(400, "bad size")
                return
            line = b"torsieve uplink bulk data 0123456789abcdefghijklmnopqrstuvwxyz\n"
            body = (line * (n // len(line) + 1))[:n]
        else:
            body = ("torsieve-uplink http %s\n" % where).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # the GET line above is enough
        pass


class Server4(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server4):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", action="append", default=[], type=parse_bind,
                    metavar="ADDR:PORT")
    ap.add_argument("--dns", action="append", default=[], type=parse_bind,
                    metavar="ADDR:PORT")
    ap.add_argument("--eof-echo", action="append", default=[], type=parse_bind,
                    metavar="ADDR:PORT")
    args = ap.parse_args()
    if not args.http and not args.dns and not args.eof_echo:
        ap.error("nothing to serve")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    threads = []
    for family, host, port in args.http:
        cls = Server6 if family == socket.AF_INET6 else Server4
        srv = cls((host, port), Handler)
        threads.append(threading.Thread(target=srv.serve_forever, daemon=True))
        log("listening http %s" % fmt(family, host, port))
    for family, host, port in args.dns:
        udp, tcp = dns_sockets(family, host, port)
        where = fmt(family, host, port)
        threads.append(threading.Thread(target=serve_dns_udp, args=(udp, where),
                                        daemon=True))
        threads.append(threading.Thread(target=serve_dns_tcp, args=(tcp, where),
                                        daemon=True))
        log("listening dns %s udp+tcp" % where)
    for family, host, port in args.eof_echo:
        sock = tcp_socket(family, host, port)
        where = fmt(family, host, port)
        threads.append(threading.Thread(target=serve_eof_echo,
                                        args=(sock, where), daemon=True))
        log("listening eof-echo %s" % where)
    for t in threads:
        t.start()
    stop.wait()
    log("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
