/*
 * The Tor instances the relay may use (`set tor-socks`), and which one a
 * client goes to: rendezvous hashing on the client's isolation key, so a
 * client stays on one instance (its circuits, its isolation) and an
 * instance going away moves only its own clients. An instance that failed
 * (its SOCKS port refused or did not answer) is left out for `tor-retry`
 * seconds (while another is in use). A request tries each instance at most
 * once; when every one failed it, the relay refuses the flow rather than
 * send it anywhere else.
 */
#ifndef TORSIEVE_TOR_POOL_H
#define TORSIEVE_TOR_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "torsieve/policy.h"

struct ts_tor_instance_stats {
	uint64_t streams;   /* CONNECTs Tor answered (success or not) */
	uint64_t failures;  /* times the SOCKS port refused, closed or did not answer */
	int64_t down_until; /* usec; 0 when in use */
};

struct ts_tor_pool {
	size_t count;
	uint32_t retry_usec;
	struct ts_tor_endpoint ep[TS_TOR_MAX];
	struct ts_tor_instance_stats st[TS_TOR_MAX];
};

void ts_tor_pool_init(struct ts_tor_pool *p, const struct ts_relay_config *cfg);

/* The instance for a client key, skipping those in the bit mask tried
 * and preferring those not left out at now; when every untried one is left
 * out, the one back soonest; -1 when every one was tried. */
int ts_tor_pool_pick(const struct ts_tor_pool *p, const void *key, size_t keylen, int64_t now_usec,
                     uint32_t tried);

/* Instance i failed at now: leave it out for tor-retry seconds. */
void ts_tor_pool_failed(struct ts_tor_pool *p, int i, int64_t now_usec);

/* Instance i answered: it is in use again. */
void ts_tor_pool_answered(struct ts_tor_pool *p, int i);

struct sockaddr_storage;
/* The endpoint as a socket address; returns its length. */
unsigned ts_tor_endpoint_sockaddr(const struct ts_tor_endpoint *ep, struct sockaddr_storage *ss);

/* "127.0.0.1:9050" or "[::1]:9050" */
void ts_tor_endpoint_text(const struct ts_tor_endpoint *ep, char *buf, size_t len);

#endif
