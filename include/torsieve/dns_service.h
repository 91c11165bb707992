/*
 * DNS through Tor for the clients: queries the `dns` verdict diverted
 * (TPROXY to dns-port, UDP and TCP) are answered by torsieve, from the
 * address the client asked, and nothing of them leaves except through Tor.
 *
 * - A and AAAA: names under .onion (every name with dns-automap) get a
 *   virtual address from the name map; the rest are resolved through Tor,
 *   by Tor's SOCKS RESOLVE (on the client's Tor instance, with the client's
 *   isolation token) or Tor's DNSPort (`set tor-dns`), cached within
 *   dns-ttl-min/max, and the address Tor gave is noted in the name map so
 *   a connection to it goes to Tor by name.
 * - PTR for a virtual address: its name. Every other type, and PTR for
 *   anything else: NODATA (NOTIMP breaks clients). Malformed: FORMERR.
 *   An answer too big for UDP: TC, so the client asks over TCP.
 * - dns-block names (and names under them): NXDOMAIN, or the sinkhole
 *   addresses of `set dns-block-answer`.
 *
 * - Single labels and names of local networks (.local, .localhost,
 *   .home.arpa, .internal, .invalid): NXDOMAIN, never sent to an exit.
 *
 * Names, virtual addresses and kept answers belong to the client that
 * looked them up: no client's lookups steer or reveal another's.
 *
 * Caps: dns-pending queries waiting for Tor, dns-pending-per-client of them
 * for one client (past either: SERVFAIL),
 * dns-tcp-connections (past it: the connection is reset), dns-cache
 * answers (the oldest goes), dns-timeout (SERVFAIL).
 */
#ifndef TORSIEVE_DNS_SERVICE_H
#define TORSIEVE_DNS_SERVICE_H

#include <stdint.h>

#include "torsieve/policy.h"

struct event_base;
struct ts_tor_pool;
struct ts_name_map;

struct ts_dns_stats {
	uint64_t udp_queries, tcp_queries;
	uint64_t answered; /* with records */
	uint64_t nodata, nxdomain, servfail, formerr, notimp;
	uint64_t ignored;         /* not a query (a response, too short): no answer */
	uint64_t blocked;         /* dns-block */
	uint64_t local_names;     /* single labels, .local, .localhost, ...: never sent to Tor */
	uint64_t virtual_answers; /* .onion, dns-automap, and PTR of virtual addresses */
	uint64_t cache_hits;
	uint64_t cache_evicted; /* dns-cache full: the oldest answer went */
	uint64_t resolved, resolve_failed, resolve_timeouts; /* asked of Tor */
	uint64_t truncated;                                  /* TC set */
	uint64_t over_pending;                               /* dns-pending full: SERVFAIL */
	uint64_t tcp_connections, tcp_over; /* accepted; over dns-tcp-connections: reset */
	uint64_t send_errors;
	uint32_t pending, tcp_now, cache_now;
};

struct ts_dns_service;

/* Open the transparent UDP and TCP sockets on port (IPv4 and IPv6); needs
 * CAP_NET_ADMIN, so before privileges are dropped. NULL with the reason in
 * err. */
struct ts_dns_service *ts_dns_service_open(const struct ts_dns_config *cfg, uint16_t port,
                                           char *err, size_t errlen);

/* Start answering on base. pool, names and p (for dns-block; replaced by
 * ts_dns_service_set_policy on a reload) are the caller's; isolation says
 * what the SOCKS username of a RESOLVE tells Tor. Returns -1 when the
 * events cannot be had. */
int ts_dns_service_attach(struct ts_dns_service *ds, struct event_base *base,
                          struct ts_tor_pool *pool, struct ts_name_map *names,
                          const struct ts_relay_config *isolation, const struct ts_policy *p);

void ts_dns_service_set_policy(struct ts_dns_service *ds, const struct ts_policy *p);

/* Once a second: DNSPort queries past dns-timeout, idle TCP clients. */
void ts_dns_service_tick(struct ts_dns_service *ds, int64_t now_usec);

void ts_dns_service_get_stats(const struct ts_dns_service *ds, struct ts_dns_stats *out);

void ts_dns_service_close(struct ts_dns_service *ds);

#endif
