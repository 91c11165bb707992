/*
 * Dropping root once the sockets are open: torsieve keeps running as an
 * unprivileged user with CAP_NET_ADMIN alone, which nfnetlink checks on
 * every verdict message (the queue socket, the transparent listeners and
 * the raw sockets are already open and keep working).
 */
#ifndef TORSIEVE_PRIVILEGE_H
#define TORSIEVE_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>

/* Become user (name or number), keeping only CAP_NET_ADMIN (and, with
 * low_ports, CAP_NET_BIND_SERVICE: the DNS service answers UDP from a
 * socket bound to the port the client asked, 53), and forbid gaining
 * privileges again. Returns -1 with the reason in err. */
int ts_drop_privileges(const char *user, bool low_ports, char *err, size_t errlen);

#endif
