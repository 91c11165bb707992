#!/usr/bin/python3
"""Client side of the relay tests (test_relay.sh, test/tor/test_relay_tor.sh):
each command prints one line saying what happened, with the seconds it took.

  relay_client.py connect ADDR PORT
        "open SECS" once connected, or the failure and when:
        "ECONNREFUSED SECS", "EHOSTUNREACH SECS", "ENETUNREACH SECS",
        "timeout SECS" (10 s)
  relay_client.py http ADDR PORT PATH [STALL]
        GET PATH (HTTP/1.0); "http STATUS BODY_BYTES SHA256 SECS", or the
        failure. STALL: read one byte, then nothing for STALL seconds, then
        the rest (a slow reader)
  relay_client.py eofecho ADDR PORT NBYTES [IDLE]
        wait IDLE seconds, send NBYTES, shut down writing, read the answer of
        uplink_servers.py's eof-echo: "ok NBYTES SECS" when it counted and
        hashed what was sent, else what came ("closed ...", "reset ...")
  relay_client.py many ADDR PORT N HOLD
        open N connections one after the other, keep them HOLD seconds, then
        close them; prints the outcome of each: "open open ECONNREFUSED"
  relay_client.py parallel ADDR PORT N
        N connects at once: the outcomes, sorted, and the slowest time
  relay_client.py urgent ADDR PORT
        to eof-echo: "abc", one urgent byte "X" (MSG_OOB), "def", then EOF;
        "ok SECS" when the server got the 7 bytes in order, else what came
  relay_client.py newisn ADDR PORT SPORT N
        N SYNs from SPORT with a new initial sequence number each, 0.3 s
        apart (scapy): "sent N"

Only for the test namespaces.
"""
import errno
import hashlib
import socket
import sys
import threading
import time

TIMEOUT = 10.0


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def outcome(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "error"


def open_conn(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((addr, port))
    return s


def cmd_connect(addr, port):
    t0 = time.monotonic()
    try:
        s = open_conn(addr, int(port))
        s.close()
        return "open %.3f" % (time.monotonic() - t0)
    except OSError as e:
        return "%s %.3f" % (outcome(e), time.monotonic() - t0)


def recv_all(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def cmd_http(addr, port, path, stall="0"):
    t0 = time.monotonic()
    try:
        s = open_conn(addr, int(port))
        host = "[%s]" % addr if ":" in addr else addr
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        s.settimeout(60)
        first = b""
        if float(stall) > 0:
            first = s.recv(1)
            time.sleep(float(stall))
        data = first + recv_all(s)
        s.close()
    except OSError as e:
        return "%s %.3f" % (outcome(e), time.monotonic() - t0)
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "?"
    return "http %s %d %s %.3f" % (status, len(body), hashlib.sha256(body).hexdigest(),
                                   time.monotonic() - t0)


def cmd_eofecho(addr, port, nbytes, idle="0"):
    t0 = time.monotonic()
    n = int(nbytes)
    payload = bytes((i * 7 + 3) & 0xff for i in range(n))
    got = b""
    try:
        s = open_conn(addr, int(port))
        time.sleep(float(idle))
        s.settimeout(30)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
        s.close()
    except OSError as e:
        return "%s %.3f" % (outcome(e), time.monotonic() - t0)
    want = "eof-echo %d %s\n" % (n, hashlib.sha256(payload).hexdigest())
    if got.decode(errors="replace") == want:
        return "ok %d %.3f" % (n, time.monotonic() - t0)
    return "closed %r %.3f" % (got[:80], time.monotonic() - t0)


def cmd_many(addr, port, count, hold):
    conns, results = [], []
    for _ in range(int(count)):
        try:
            conns.append(open_conn(addr, int(port)))
            results.append("open")
        except OSError as e:
            results.append(outcome(e))
    time.sleep(float(hold))
    for s in conns:
        s.close()
    return " ".join(results)


def cmd_parallel(addr, port, count):
    results = []
    lock = threading.Lock()

    def one():
        r = cmd_connect(addr, port).split()
        with lock:
            results.append((r[0], float(r[1])))

    threads = [threading.Thread(target=one) for _ in range(int(count))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return "%s %.3f" % (" ".join(sorted(r[0] for r in results)), max(r[1] for r in results))


def cmd_urgent(addr, port):
    t0 = time.monotonic()
    try:
        s = open_conn(addr, int(port))
        s.settimeout(5)
        s.sendall(b"abc")
        time.sleep(0.2)
        s.send(b"X", socket.MSG_OOB)
        time.sleep(0.2)
        s.sendall(b"def")
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
        s.close()
    except OSError as e:
        return "%s %.3f" % (outcome(e), time.monotonic() - t0)
    want = "eof-echo 7 %s\n" % hashlib.sha256(b"abcXdef").hexdigest()
    if got.decode(errors="replace") == want:
        return "ok %.3f" % (time.monotonic() - t0)
    return "closed %r %.3f" % (got[:80], time.monotonic() - t0)


def cmd_newisn(addr, port, sport, count):
    import logging
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.all import IP, IPv6, TCP, send
    l3 = IPv6 if ":" in addr else IP
    for i in range(int(count)):
        send(l3(dst=addr) / TCP(sport=int(sport), dport=int(port), flags="S",
                                seq=1000000 * (i + 1)), verbose=False)
        time.sleep(0.3)
    return "sent %s" % count


def main():
    cmds = {"connect": cmd_connect, "http": cmd_http, "eofecho": cmd_eofecho,
            "many": cmd_many, "parallel": cmd_parallel, "urgent": cmd_urgent,
            "newisn": cmd_newisn}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    print(cmds[sys.argv[1]](*sys.argv[2:]), flush=True)


if __name__ == "__main__":
    main()
