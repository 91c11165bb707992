#!/usr/bin/python3
"""Stand-ins for torsieve's transparent listeners, for the inline tests.

Usage: tproxy_sink.py TCP_PORT UDP_PORT

Listens with IP_TRANSPARENT on TCP_PORT (IPv4 and IPv6 wildcards), where
TPROXY delivers diverted connections, and on UDP_PORT (and TCP_PORT for DNS
over TCP is not needed here), where TPROXY delivers DNS queries. Every
connection and datagram is logged to standard output as

    tcp CLIENT_ADDR CLIENT_PORT ORIG_ADDR ORIG_PORT
    udp CLIENT_ADDR CLIENT_PORT ORIG_ADDR ORIG_PORT

with the original destination the client asked for (getsockname on a TPROXY
socket, IP_ORIGDSTADDR for UDP). A TCP client gets the line
"torsieve-tproxy ORIG_ADDR ORIG_PORT\\n" and then every line it sends echoed,
so a test can keep a diverted connection open across a policy reload.
"""
import select
import socket
import struct
import sys

IP_TRANSPARENT = 19
IP_RECVORIGDSTADDR = 20
IP_ORIGDSTADDR = 20
IPV6_RECVORIGDSTADDR = 74
IPV6_ORIGDSTADDR = 74
IPV6_TRANSPARENT = 75
SOL_IPV6 = 41


def log(*words):
    print(*words, flush=True)


def tcp_listener(family, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
    else:
        s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.listen(64)
    s.setblocking(False)
    return s


def udp_listener(family, port):
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
        s.setsockopt(SOL_IPV6, IPV6_RECVORIGDSTADDR, 1)
        s.bind(("::", port))
    else:
        s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        s.setsockopt(socket.SOL_IP, IP_RECVORIGDSTADDR, 1)
        s.bind(("0.0.0.0", port))
    s.setblocking(False)
    return s


def orig_dst(cmsgs):
    for level, kind, data in cmsgs:
        if level == socket.SOL_IP and kind == IP_ORIGDSTADDR:
            port, = struct.unpack("!H", data[2:4])
            return socket.inet_ntop(socket.AF_INET, data[4:8]), port
        if level == SOL_IPV6 and kind == IPV6_ORIGDSTADDR:
            port, = struct.unpack("!H", data[2:4])
            return socket.inet_ntop(socket.AF_INET6, data[8:24]), port
    return "?", 0


def main():
    tcp_port, udp_port = int(sys.argv[1]), int(sys.argv[2])
    listeners = [tcp_listener(socket.AF_INET, tcp_port), tcp_listener(socket.AF_INET6, tcp_port)]
    udps = [udp_listener(socket.AF_INET, udp_port), udp_listener(socket.AF_INET6, udp_port)]
    conns = {}
    while True:
        ready, _, _ = select.select(listeners + udps + list(conns), [], [])
        for s in ready:
            if s in listeners:
                c, peer = s.accept()
                here = c.getsockname()
                log("tcp", peer[0], peer[1], here[0], here[1])
                c.sendall(f"torsieve-tproxy {here[0]} {here[1]}\n".encode())
                conns[c] = b""
            elif s in udps:
                data, cmsgs, _, peer = s.recvmsg(4096, 256)
                addr, port = orig_dst(cmsgs)
                log("udp", peer[0], peer[1], addr, port)
            else:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    del conns[s]
                    s.close()
                    continue
                s.sendall(data)


if __name__ == "__main__":
    main()
