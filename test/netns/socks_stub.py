#!/usr/bin/python3
"""socks_stub.py - a scriptable SOCKS5 server standing in for Tor's SOCKS port.

Only for the throw-away namespaces of the tests (torsieve's SOCKS5 client and
relay connect to it from the gateway namespace); never expose it on a real
network: it connects anywhere it is asked to.  Standard library only.

  socks_stub.py --listen 127.0.0.1:9050 [--listen [::1]:9050 ...] --log FILE
                [--name NAME] [--answer DEST=ACTION ...] [--no-auth-ok]

Protocol (RFC 1928, RFC 1929, Tor's extensions):
  greeting  offers 0x02 (username/password) -> 0x02, then RFC 1929 with any
            username and password accepted (and logged); else 0x00 offered
            -> 0x00; else 0xFF and close.  (--no-auth-ok is accepted and has
            no effect: both methods are always accepted.)
  CONNECT (0x01), ATYP 1 (IPv4), 3 (name), 4 (IPv6): see ACTION below.
  RESOLVE (0xF0)     -> 0x00, ATYP 1 198.18.0.1 port 0, close; with --resolve
                        NAME=ADDR (repeatable), NAME's ADDR (IPv4 or IPv6)
                        and 0x04 (host unreachable, Tor's answer) for others;
                        NAME=hang: no answer at all
  RESOLVE_PTR (0xF1) -> 0x00, ATYP 3 "stub.example" port 0, close.
  any other command  -> 0x07; an unknown ATYP -> 0x08; then close.

ACTION of a CONNECT: the first --answer whose DEST matches the request, else
"connect".  DEST is HOST:PORT, HOST:* or *:PORT (*:* matches everything; an
IPv6 HOST in brackets, [2001:db8::1]:80; names compare case-insensitively).
  connect    connect (5 s timeout) to HOST:PORT from here (a name is resolved
             here); success -> 0x00 with the outgoing socket's local address,
             then relay both ways, half-close correct: an EOF from one side
             becomes shutdown(SHUT_WR) towards the other and the opposite
             direction keeps going until it ends too; a reset or error on
             either side closes both.  Failure -> ECONNREFUSED 0x05,
             ENETUNREACH 0x03, EHOSTUNREACH 0x04, timeout 0x06, other 0x01
             (a name that does not resolve is "other": 0x01).
  N          (decimal 4, or hex 0xf0) reply code N with BND 0.0.0.0:0, close.
  hang       never reply; keep the connection until the client closes it.
  delay:SECS wait SECS (a float), then as connect.
  close      close without a reply.
"close" after a reply or without one is an orderly FIN (shutdown, then
whatever the client still sends is read for up to 1 s), never a reset.

Log: one JSON line per request appended to FILE (one write(2) each, so
several stubs may share a file and tell themselves apart by NAME):
  {"name": NAME, "t": time the request was read, "user": ..., "pass": ...,
   "cmd": 1, "host": "203.0.113.80" or the name, "port": 80,
   "action": "connect", "code": 0}
"user"/"pass" are null without RFC 1929; "code" is the reply code sent, null
when none was (hang, close).  The line is written once the code is known:
for connect and delay after the outgoing connect, for the others at once.

stderr gets "listening ADDR:PORT" once each socket is bound (the real port
when PORT is 0).  SIGTERM or SIGINT ends it with status 0.
"""

import argparse
import errno
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

CMD_CONNECT = 0x01
CMD_RESOLVE = 0xF0
CMD_RESOLVE_PTR = 0xF1
ATYP_IPV4 = 1
ATYP_NAME = 3
ATYP_IPV6 = 4
RESOLVE_ADDR = "198.18.0.1"
RESOLVE_TABLE = {}  # --resolve NAME=ADDR: then unknown names get 0x04
RESOLVE_PTR_NAME = "stub.example"
CONNECT_TIMEOUT = 5.0
LINGER_SECS = 1.0

LOG_LOCK = threading.Lock()
LOG_FD = None
NAME = "stub"
ANSWERS = []        # [(host or None, port or None, action text), ...]


def err(*args):
    print(*args, file=sys.stderr, flush=True)


def log_request(rec):
    line = (json.dumps(rec) + "\n").encode()
    with LOG_LOCK:
        os.write(LOG_FD, line)


# ------------------------------------------------------------ arguments

def split_hostport(text):
    """'1.2.3.4:80', '[::1]:80', 'name:80', '*:*' -> (host, port) strings."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError("bad address %r" % text)
        return host, port
    host, sep, port = text.rpartition(":")
    if not sep or not host or ":" in host:
        raise ValueError("bad address %r" % text)
    return host, port


def norm_host(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, host))
        except (OSError, ValueError):
            pass
    return host.lower().rstrip(".")


def parse_listen(text):
    try:
        host, port = split_hostport(text)
        port = int(port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.inet_pton(family, host)
    except (ValueError, OSError):
        raise argparse.ArgumentTypeError("bad listen address %r" % text)
    return family, host, port


def parse_code(text):
    t = text.lower()
    n = int(t, 16) if t.startswith("0x") else int(t, 10)
    if not 0 <= n <= 255:
        raise ValueError(text)
    return n


def check_action(action):
    if action in ("connect", "hang", "close"):
        return
    if action.startswith("delay:"):
        if float(action[6:]) < 0:
            raise ValueError(action)
        return
    parse_code(action)


def parse_answer(text):
    dest, sep, action = text.partition("=")
    try:
        if not sep:
            raise ValueError(text)
        host, port = split_hostport(dest)
        host = None if host == "*" else norm_host(host)
        port = None if port == "*" else int(port)
        check_action(action)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "bad --answer %r (want HOST:PORT=ACTION, ACTION connect, N, "
            "hang, delay:SECS or close)" % text)
    return host, port, action


def choose_action(host, port):
    nhost = norm_host(host)
    for ahost, aport, action in ANSWERS:
        if (ahost is None or ahost == nhost) and (aport is None or aport == port):
            return action
    return "connect"


# ------------------------------------------------------------ helpers

class Closed(Exception):
    pass


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise Closed()
        buf += chunk
    return buf


def reply(conn, code, family=socket.AF_INET, host="0.0.0.0", port=0):
    if family == socket.AF_INET6:
        addr = bytes([ATYP_IPV6]) + socket.inet_pton(socket.AF_INET6, host)
    else:
        addr = bytes([ATYP_IPV4]) + socket.inet_pton(socket.AF_INET, host)
    conn.sendall(bytes([5, code, 0]) + addr + struct.pack("!H", port))


def finish(conn):
    """Orderly close: FIN, read what the client still sends (briefly), close.
    Closing with unread data would send a reset, which could destroy our
    reply in the client's receive queue."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(LINGER_SECS)
        deadline = time.monotonic() + LINGER_SECS
        while time.monotonic() < deadline and conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


def connect_code(e):
    if isinstance(e, socket.timeout):
        return 0x06
    return {errno.ECONNREFUSED: 0x05, errno.ENETUNREACH: 0x03,
            errno.EHOSTUNREACH: 0x04, errno.ETIMEDOUT: 0x06}.get(e.errno, 0x01)


def relay(a, b):
    """Relay a <-> b until both directions ended; half-close correct."""
    broken = threading.Event()

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            # a reset or error on either side: end both directions (shutdown
            # also wakes the other pump, blocked in recv or send)
            broken.set()
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return
        if not broken.is_set():
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join()
    a.close()
    b.close()


# ------------------------------------------------------------ one client

def read_address(conn, atyp):
    if atyp == ATYP_IPV4:
        host = socket.inet_ntop(socket.AF_INET, recv_exact(conn, 4))
    elif atyp == ATYP_IPV6:
        host = socket.inet_ntop(socket.AF_INET6, recv_exact(conn, 16))
    elif atyp == ATYP_NAME:
        n = recv_exact(conn, 1)[0]
        host = recv_exact(conn, n).decode("utf-8", "backslashreplace")
    else:
        return None, None
    port = struct.unpack("!H", recv_exact(conn, 2))[0]
    return host, port


def do_connect(conn, rec, host, port):
    try:
        # a name the --resolve table knows goes there (as Tor's exit would
        # resolve it); the test namespaces have no other resolver
        target = RESOLVE_TABLE.get(str(host).lower().rstrip("."), host)
        out = socket.create_connection((target, port), timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError) as e:   # ValueError: a name IDNA refuses
        rec["code"] = connect_code(e) if isinstance(e, OSError) else 0x01
        log_request(rec)
        reply(conn, rec["code"])
        finish(conn)
        return
    out.settimeout(None)
    bhost, bport = out.getsockname()[:2]
    rec["code"] = 0
    log_request(rec)
    try:
        reply(conn, 0, out.family, bhost, bport)
    except OSError:
        out.close()
        conn.close()
        return
    relay(conn, out)


def handle(conn, peer):
    try:
        ver, nmethods = recv_exact(conn, 2)
        if ver != 5:
            err("%s: not SOCKS5 (version %d), closed" % (peer, ver))
            conn.close()
            return
        methods = recv_exact(conn, nmethods)
        user = password = None
        if 0x02 in methods:
            conn.sendall(b"\x05\x02")
            aver, ulen = recv_exact(conn, 2)
            user = recv_exact(conn, ulen).decode("utf-8", "backslashreplace")
            plen = recv_exact(conn, 1)[0]
            password = recv_exact(conn, plen).decode("utf-8", "backslashreplace")
            if aver != 1:
                err("%s: username/password version %d, refused" % (peer, aver))
                conn.sendall(b"\x01\x01")
                finish(conn)
                return
            conn.sendall(b"\x01\x00")
        elif 0x00 in methods:
            conn.sendall(b"\x05\x00")
        else:
            err("%s: no acceptable method in %s" % (peer, methods.hex()))
            conn.sendall(b"\x05\xff")
            finish(conn)
            return

        ver, cmd, _rsv, atyp = recv_exact(conn, 4)
        t = time.time()
        if ver != 5:
            err("%s: request version %d, closed" % (peer, ver))
            conn.close()
            return
        host, port = read_address(conn, atyp)
        rec = {"name": NAME, "t": t, "user": user, "pass": password,
               "cmd": cmd, "host": host, "port": port, "action": None,
               "code": None}
        if host is None:
            rec["action"] = "bad-atyp %d" % atyp
            rec["code"] = 0x08
        elif cmd == CMD_RESOLVE:
            rec["action"] = "resolve"
            addr = RESOLVE_TABLE.get(str(host).lower().rstrip("."), None) \
                if RESOLVE_TABLE else RESOLVE_ADDR
            if addr == "hang":
                rec["action"] = "resolve-hang"
                log_request(rec)
                while conn.recv(65536):  # never answer; until the client closes
                    pass
                conn.close()
                return
            rec["code"] = 0 if addr else 0x04
            log_request(rec)
            if addr:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                reply(conn, 0, fam, addr, 0)
            else:
                reply(conn, 0x04)
            finish(conn)
            return
        elif cmd == CMD_RESOLVE_PTR:
            rec["action"] = "resolve_ptr"
            rec["code"] = 0
            log_request(rec)
            name = RESOLVE_PTR_NAME.encode()
            conn.sendall(bytes([5, 0, 0, ATYP_NAME, len(name)]) + name + b"\0\0")
            finish(conn)
            return
        elif cmd != CMD_CONNECT:
            rec["action"] = "unsupported"
            rec["code"] = 0x07
        if rec["code"] is not None:         # bad ATYP or command
            log_request(rec)
            reply(conn, rec["code"])
            finish(conn)
            return

        action = rec["action"] = choose_action(host, port)
        if action == "connect":
            do_connect(conn, rec, host, port)
        elif action.startswith("delay:"):
            time.sleep(float(action[6:]))
            do_connect(conn, rec, host, port)
        elif action == "hang":
            log_request(rec)
            while conn.recv(65536):
                pass
            conn.close()
        elif action == "close":
            log_request(rec)
            finish(conn)
        else:
            rec["code"] = parse_code(action)
            log_request(rec)
            reply(conn, rec["code"])
            finish(conn)
    except Closed:
        conn.close()
    except OSError as e:
        err("%s: %s" % (peer, e))
        conn.close()


def fmt_peer(family, addr):
    return ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % addr[:2]


def serve(sock):
    while True:
        try:
            conn, peer = sock.accept()
        except OSError as e:
            err("accept: %s" % e)
            time.sleep(0.1)
            continue
        threading.Thread(target=handle, args=(conn, fmt_peer(sock.family, peer)),
                         daemon=True).start()


def main():
    global LOG_FD, NAME
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", action="append", required=True,
                    type=parse_listen, metavar="ADDR:PORT")
    ap.add_argument("--log", required=True, metavar="FILE")
    ap.add_argument("--name", default="stub")
    ap.add_argument("--answer", action="append", default=[], type=parse_answer,
                    metavar="DEST=ACTION")
    ap.add_argument("--resolve", action="append", default=[], metavar="NAME=ADDR",
                    help="RESOLVE NAME answers ADDR; with any, other names get 0x04")
    ap.add_argument("--no-auth-ok", action="store_true",
                    help="accepted for compatibility; no effect")
    args = ap.parse_args()
    NAME = args.name
    ANSWERS.extend(args.answer)
    for item in args.resolve:
        name, _, addr = item.partition("=")
        RESOLVE_TABLE[name.lower().rstrip(".")] = addr
    LOG_FD = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    socks = []
    for family, host, port in args.listen:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(128)
        socks.append(s)
        err("listening %s" % fmt_peer(family, s.getsockname()))
    for s in socks:
        threading.Thread(target=serve, args=(s,), daemon=True).start()
    stop.wait()
    # no half-written log line, and no waiting for connection threads
    with LOG_LOCK:
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
