/* Choosing a Tor instance for a client (tor_pool.h says how and why). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "torsieve/tor_pool.h"

void ts_tor_pool_init(struct ts_tor_pool *p, const struct ts_relay_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->count = cfg->tor_count <= TS_TOR_MAX ? cfg->tor_count : TS_TOR_MAX;
	memcpy(p->ep, cfg->tor, p->count * sizeof(p->ep[0]));
	p->retry_usec = cfg->tor_retry * 1000000u;
}

/* FNV-1a over the key and the instance's endpoint, then a finalizer so
 * keys that differ in one byte spread over all instances. */
static uint64_t weight(const void *key, size_t keylen, const struct ts_tor_endpoint *ep)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint8_t *k = key;
	for (size_t i = 0; i < keylen; i++)
		h = (h ^ k[i]) * 0x100000001b3ull;
	const uint8_t *e = ep->addr;
	for (size_t i = 0; i < sizeof(ep->addr); i++)
		h = (h ^ e[i]) * 0x100000001b3ull;
	h = (h ^ (ep->port >> 8)) * 0x100000001b3ull;
	h = (h ^ (ep->port & 0xff)) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

int ts_tor_pool_pick(const struct ts_tor_pool *p, const void *key, size_t keylen, int64_t now_usec,
                     uint32_t tried)
{
	int best = -1, soonest = -1;
	uint64_t best_w = 0;
	for (size_t i = 0; i < p->count; i++) {
		if ((tried >> i) & 1u)
			continue;
		if (p->st[i].down_until && now_usec < p->st[i].down_until) {
			if (soonest < 0 || p->st[i].down_until < p->st[soonest].down_until)
				soonest = (int)i;
			continue;
		}
		uint64_t w = weight(key, keylen, &p->ep[i]);
		if (best < 0 || w > best_w) {
			best = (int)i;
			best_w = w;
		}
	}
	/* Every one left out: the one back soonest is still tried, once
	 * per request. A Tor that stalled a moment (parsing a consensus on a
	 * slow router) must not refuse every client for tor-retry seconds;
	 * one that is really gone refuses the connection at once. */
	return best >= 0 ? best : soonest;
}

void ts_tor_pool_failed(struct ts_tor_pool *p, int i, int64_t now_usec)
{
	if (i < 0 || (size_t)i >= p->count)
		return;
	p->st[i].failures++;
	p->st[i].down_until = now_usec + p->retry_usec;
}

void ts_tor_pool_answered(struct ts_tor_pool *p, int i)
{
	if (i < 0 || (size_t)i >= p->count)
		return;
	p->st[i].streams++;
	p->st[i].down_until = 0;
}

unsigned ts_tor_endpoint_sockaddr(const struct ts_tor_endpoint *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->family == 6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, ep->addr, 16);
		s6->sin6_port = htons(ep->port);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, ep->addr, 4);
	s4->sin_port = htons(ep->port);
	return sizeof(*s4);
}

void ts_tor_endpoint_text(const struct ts_tor_endpoint *ep, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(ep->family == 6 ? AF_INET6 : AF_INET, ep->addr, a, sizeof(a));
	snprintf(buf, len, ep->family == 6 ? "[%s]:%u" : "%s:%u", a, ep->port);
}
