/*
 * Transparent sockets (IP_TRANSPARENT, IPV6_TRANSPARENT): bound to any
 * address, local or not. The relay's and the DNS service's listeners on
 * the TPROXY ports are such sockets, and so is the socket a DNS answer
 * leaves from, bound to the address the client asked. Setting the option
 * needs CAP_NET_ADMIN (kept after --user).
 */
#ifndef TORSIEVE_TRANSPARENT_H
#define TORSIEVE_TRANSPARENT_H

#include <stdint.h>
#include <sys/socket.h>

#define TS_TRANSPARENT_ORIGDST 1u /* datagrams come with their original destination */

enum ts_transparent_step {
	TS_TRANSPARENT_SOCKET, /* socket() failed */
	TS_TRANSPARENT_OPTION, /* an option was refused (without CAP_NET_ADMIN: EPERM) */
	TS_TRANSPARENT_BIND,   /* bind() or listen() failed */
};

/* The wildcard address of family (AF_INET or AF_INET6) with port into ss;
 * returns its length. */
socklen_t ts_sockaddr_any(int family, uint16_t port, struct sockaddr_storage *ss);

/*
 * A socket of type (SOCK_STREAM or SOCK_DGRAM, with SOCK_NONBLOCK and the
 * like as socket() takes them), close-on-exec, SO_REUSEADDR, transparent,
 * IPv6-only for IPv6, with flags, bound to at, and listening with backlog
 * when that is not 0. Returns it, or -1 with errno from the step that failed
 * and the step in *failed.
 */
int ts_transparent_socket(const struct sockaddr_storage *at, socklen_t len, int type,
                          unsigned flags, int backlog, enum ts_transparent_step *failed);

#endif
