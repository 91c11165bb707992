#!/usr/bin/python3
"""Client probes for the inline tests: each sends a known number of packets
and prints one line saying what came back.

  probe.py connect ADDR PORT        open | refused | timeout | unreachable
  probe.py banner ADDR PORT         the first line the server sends, or the failure
  probe.py udp ADDR PORT            one datagram on a connected socket, then wait:
                                    refused | unreachable | answer | timeout
  probe.py burst ADDR PORT N        N datagrams; prints "sent N"
  probe.py hold ADDR PORT GO        connect, print the banner, wait until the file
                                    GO exists, send a line: "echo ok" | "echo lost"

Timeouts are one second (two for hold's echo): a dropped packet is not
answered, so waiting longer proves nothing more.
"""
import errno
import os
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def failure(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH,
                                              errno.EACCES, errno.EPERM):
        return "unreachable"
    return f"error {e}"


def connect(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect((addr, port))
    return s


def readline(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def main(argv):
    cmd, addr, port = argv[0], argv[1], int(argv[2])
    try:
        if cmd == "connect":
            connect(addr, port).close()
            print("open")
        elif cmd == "banner":
            s = connect(addr, port)
            print(readline(s) or "closed")
        elif cmd == "udp":
            s = socket.socket(family(addr), socket.SOCK_DGRAM)
            s.settimeout(1)
            s.connect((addr, port))
            s.send(b"probe")
            s.recv(100)
            print("answer")
        elif cmd == "burst":
            s = socket.socket(family(addr), socket.SOCK_DGRAM)
            for i in range(int(argv[3])):
                s.sendto(b"burst %d" % i, (addr, port))
            print(f"sent {argv[3]}")
        elif cmd == "hold":
            s = connect(addr, port)
            print(readline(s) or "closed", flush=True)
            while not os.path.exists(argv[3]):
                time.sleep(0.02)
            s.settimeout(2)
            s.sendall(b"still here\n")
            print("echo ok" if readline(s) == "still here" else "echo lost")
        else:
            sys.exit(__doc__)
    except OSError as e:
        print(failure(e))


if __name__ == "__main__":
    main(sys.argv[1:])
