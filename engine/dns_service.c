/* DNS through Tor for the clients (dns_service.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "torsieve/clock.h"
#include "torsieve/dns.h"
#include "torsieve/dns_service.h"
#include "torsieve/log.h"
#include "torsieve/lru.h"
#include "torsieve/name_map.h"
#include "torsieve/socks_client.h"
#include "torsieve/tor_pool.h"
#include "torsieve/transparent.h"

#define TCP_MSG_MAX   4096 /* a query over TCP longer than this is not a query */
#define TCP_IDLE_USEC 10000000
#define CACHE_ADDRS   8
#define VIRTUAL_TTL   60  /* short: the map entry lives as long as it is used */
#define SOCKS_TTL     300 /* Tor's RESOLVE gives no TTL: this one, held to the bounds */
#define ANSWER_MAX    65535

struct tcp_conn {
	struct tcp_conn *prev, *next;
	struct ts_dns_service *ds;
	int fd;
	struct event *ev, *resume; /* readable; the next query (deferred) */
	bool busy;                 /* a query of it waits for its answer */
	bool dead;                 /* to be closed once nothing of it runs */
	int64_t last;
	size_t have;
	uint8_t buf[2 + TCP_MSG_MAX];
};

struct query {
	struct query *next_free;
	struct ts_dns_service *ds;
	bool used;
	struct ts_dns_query q;
	struct sockaddr_storage client, local; /* UDP: whom to answer, from where */
	struct tcp_conn *tcp;                  /* TCP: the connection (NULL: UDP) */
	bool orphan;                           /* its TCP connection is gone: no answer */
	struct ts_socks_client *socks;
	struct ts_name_client who; /* the client, as the name map and cache know it */
	struct ts_socks5_addr resolved;
	uint16_t upstream_id; /* DNSPort */
	int64_t deadline;     /* DNSPort */
};

/* An answer kept, for the client that asked: a client learns nothing of
 * what others looked up, and each lookup goes to Tor with its own token. */
struct cache_entry {
	struct cache_entry *chain; /* also the free list */
	struct ts_lru_node use;
	bool used;
	uint16_t qtype;
	uint8_t rcode, count;
	int64_t expires;
	struct ts_name_client who;
	uint8_t addr[CACHE_ADDRS][16];
	char name[TS_DNS_NAME_MAX + 1];
};

struct ts_dns_service {
	struct ts_dns_config cfg;
	struct ts_relay_config iso;
	struct event_base *base;
	struct ts_tor_pool *pool;
	struct ts_name_map *names;
	const struct ts_policy *policy;
	int udp[2], tcp[2], upstream;
	struct event *udp_ev[2], *tcp_ev[2], *upstream_ev;
	struct query *queries, *free_queries;
	struct tcp_conn *conns;
	struct cache_entry *cache, **cache_hash, *cache_free;
	struct ts_lru cache_use; /* oldest first */
	uint32_t cache_mask;
	uint32_t seed; /* for the cache's hash: clients choose the names */
	struct ts_dns_stats st;
};

/* ---- the cache ---- */

static uint32_t cache_slot(const struct ts_dns_service *ds, const struct ts_name_client *who,
                           const char *name, uint16_t qtype)
{
	uint32_t h = 2166136261u ^ ds->seed ^ qtype;
	const uint8_t *w = (const uint8_t *)who;
	for (size_t i = 0; i < sizeof(*who); i++)
		h = (h ^ w[i]) * 16777619u;
	for (const char *c = name; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	h ^= h >> 16;
	h *= 0x7feb352du;
	return (h ^ (h >> 15)) & ds->cache_mask;
}

static bool same_client(const struct ts_name_client *a, const struct ts_name_client *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, 16);
}

static void cache_remove(struct ts_dns_service *ds, struct cache_entry *e)
{
	struct cache_entry **pp = &ds->cache_hash[cache_slot(ds, &e->who, e->name, e->qtype)];
	while (*pp && *pp != e)
		pp = &(*pp)->chain;
	if (*pp)
		*pp = e->chain;
	ts_lru_unlink(&ds->cache_use, &e->use);
	e->used = false;
	e->chain = ds->cache_free;
	ds->cache_free = e;
	ds->st.cache_now--;
}

static struct cache_entry *cache_find(struct ts_dns_service *ds, const struct ts_name_client *who,
                                      const char *name, uint16_t qtype, int64_t now)
{
	if (!ds->cfg.cache_size)
		return NULL;
	for (struct cache_entry *e = ds->cache_hash[cache_slot(ds, who, name, qtype)]; e;
	     e = e->chain)
		if (e->qtype == qtype && same_client(&e->who, who) && !strcmp(e->name, name)) {
			if (e->expires <= now) {
				cache_remove(ds, e);
				return NULL;
			}
			return e;
		}
	return NULL;
}

static uint32_t clamp_ttl(const struct ts_dns_config *cfg, uint32_t ttl)
{
	return ttl < cfg->ttl_min ? cfg->ttl_min : ttl > cfg->ttl_max ? cfg->ttl_max : ttl;
}

static void cache_put(struct ts_dns_service *ds, const struct ts_name_client *who, const char *name,
                      uint16_t qtype, uint8_t rcode, const struct ts_dns_rr *rr, size_t count,
                      uint32_t ttl, int64_t now)
{
	if (!ds->cfg.cache_size || !ttl)
		return;
	struct cache_entry *e = cache_find(ds, who, name, qtype, now);
	if (e) {
		cache_remove(ds, e);
	} else if (!ds->cache_free) {
		cache_remove(ds, TS_LRU_ENTRY(ds->cache_use.oldest, struct cache_entry, use));
		ds->st.cache_evicted++;
	}
	e = ds->cache_free;
	ds->cache_free = e->chain;
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->qtype = qtype;
	e->rcode = rcode;
	e->who = *who;
	e->expires = now + (int64_t)ttl * 1000000;
	snprintf(e->name, sizeof(e->name), "%s", name);
	for (size_t i = 0; i < count && e->count < CACHE_ADDRS; i++)
		memcpy(e->addr[e->count++], rr[i].addr, 16);
	struct cache_entry **pp = &ds->cache_hash[cache_slot(ds, who, name, qtype)];
	e->chain = *pp;
	*pp = e;
	ts_lru_push(&ds->cache_use, &e->use); /* full: the oldest goes first */
	ds->st.cache_now++;
}

/* ---- answering ---- */

static void send_udp(struct ts_dns_service *ds, struct query *qr, const uint8_t *msg, size_t len)
{
	/* From the address and port the client asked: a socket of its own,
	 * transparent, bound there (the listening socket's port is dns-port,
	 * and a client checks the port of the answer too). */
	int fam = qr->local.ss_family;
	socklen_t sl = fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	enum ts_transparent_step failed;
	int fd = ts_transparent_socket(&qr->local, sl, SOCK_DGRAM, 0, 0, &failed);
	if (fd < 0 ||
	    sendto(fd, msg, len, MSG_DONTWAIT, (struct sockaddr *)&qr->client, sl) != (ssize_t)len)
		ds->st.send_errors++;
	if (fd >= 0)
		close(fd);
}

static void tcp_close(struct tcp_conn *c);

static void send_tcp(struct ts_dns_service *ds, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	uint8_t prefix[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	struct iovec iov[2] = {{prefix, 2}, {(void *)msg, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	/* An answer is small and the client waits for it: a send that cannot
	 * take it whole means a client that does not read; it is let go. */
	if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(len + 2)) {
		ds->st.send_errors++;
		c->dead = true;
	}
	c->last = ts_monotonic_usec(); /* an answer is activity: not idle */
	/* Never closed or resumed from inside: the caller may be the loop
	 * that reads c's queries. */
	c->busy = false;
	event_active(c->resume, 0, 0);
}

/* Send the answer to qr's question (qr itself is not touched after). */
static void send_answer(struct ts_dns_service *ds, struct query *qr, uint8_t rcode,
                        const struct ts_dns_rr *rr, size_t count)
{
	static uint8_t out[ANSWER_MAX];
	size_t limit =
	        qr->tcp ? ANSWER_MAX
	                : (qr->q.edns_size < TS_DNS_UDP_MAX ? qr->q.edns_size : TS_DNS_UDP_MAX);
	size_t len = ts_dns_write_answer(&qr->q, rcode, rr, count, limit, out, sizeof(out));
	if (rcode == TS_DNS_NXDOMAIN)
		ds->st.nxdomain++;
	else if (rcode == TS_DNS_SERVFAIL)
		ds->st.servfail++;
	else if (count)
		ds->st.answered++;
	else
		ds->st.nodata++;
	if (len > TS_DNS_HEADER + 2 && (out[2] & 0x02))
		ds->st.truncated++;
	if (!len || qr->orphan)
		return;
	if (qr->tcp)
		send_tcp(ds, qr->tcp, out, len);
	else
		send_udp(ds, qr, out, len);
}

/* Answer qr with rcode and records, and let the query go. */
static void answer(struct ts_dns_service *ds, struct query *qr, uint8_t rcode,
                   const struct ts_dns_rr *rr, size_t count)
{
	struct query copy = *qr; /* the slot is free before the answer goes */
	if (qr->socks)
		ts_socks_cancel(qr->socks);
	memset(qr, 0, sizeof(*qr));
	qr->ds = ds;
	qr->next_free = ds->free_queries;
	ds->free_queries = qr;
	ds->st.pending--;
	send_answer(ds, &copy, rcode, rr, count);
}

static struct query *query_take(struct ts_dns_service *ds)
{
	struct query *qr = ds->free_queries;
	if (!qr)
		return NULL;
	ds->free_queries = qr->next_free;
	memset(qr, 0, sizeof(*qr));
	qr->ds = ds;
	qr->used = true;
	ds->st.pending++;
	return qr;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n == s ? !strcmp(name, suffix)
	              : n > s && name[n - s - 1] == '.' && !strcmp(name + n - s, suffix);
}

/* "80.113.0.203.in-addr.arpa" -> 203.0.113.80; the same for ip6.arpa. */
static bool ptr_address(const char *name, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (has_suffix(name, "in-addr.arpa")) {
		unsigned a[4];
		char rest[16];
		if (sscanf(name, "%3u.%3u.%3u.%3u.%15s", &a[3], &a[2], &a[1], &a[0], rest) != 5 ||
		    strcmp(rest, "in-addr.arpa") || a[0] > 255 || a[1] > 255 || a[2] > 255 ||
		    a[3] > 255)
			return false;
		for (int i = 0; i < 4; i++)
			addr[i] = (uint8_t)a[i];
		*family = 4;
		return true;
	}
	if (has_suffix(name, "ip6.arpa") && strlen(name) == 64 + 8) {
		for (int i = 0; i < 32; i++) {
			char c = name[i * 2];
			int v = c >= '0' && c <= '9'   ? c - '0'
			        : c >= 'a' && c <= 'f' ? c - 'a' + 10
			                               : -1;
			if (v < 0 || name[i * 2 + 1] != '.')
				return false;
			addr[15 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
		}
		*family = 6;
		return true;
	}
	return false;
}

static void on_socks_answer(void *ctx, enum ts_socks_outcome o, uint8_t reply, int fd,
                            int instance);

/* The isolation token and instance key of the query's client: the same as
 * the relay gives its connections (its MAC when known), so a client's
 * lookups and connections share its circuits and its Tor instance. */
static void client_token(const struct ts_dns_service *ds, const struct query *qr, char *user,
                         size_t len, uint8_t key[17], size_t *keylen)
{
	const struct ts_name_client *who = &qr->who;
	memset(key, 0, 17);
	int n;
	if (ds->iso.isolation == TS_ISOLATE_NONE) {
		n = snprintf(user, len, "torsieve");
	} else if (who->family == TS_NAME_CLIENT_MAC && ds->iso.isolation == TS_ISOLATE_MAC) {
		const uint8_t *m = who->addr;
		n = snprintf(user, len, "torsieve mac %02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
		             m[2], m[3], m[4], m[5]);
	} else {
		char a[INET6_ADDRSTRLEN] = "";
		const struct sockaddr_storage *ss = &qr->client;
		if (ss->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, a,
			          sizeof(a));
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a,
			          sizeof(a));
		n = snprintf(user, len, "torsieve ip %s", a);
	}
	if (who->family == TS_NAME_CLIENT_MAC && ds->iso.isolation == TS_ISOLATE_MAC) {
		memcpy(key, who->addr, 6);
		*keylen = 6;
	} else {
		const struct sockaddr_storage *ss = &qr->client;
		key[0] = ss->ss_family == AF_INET6 ? 6 : 4;
		if (ss->ss_family == AF_INET6)
			memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		else
			memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		*keylen = 17;
	}
	if (ds->iso.isolation != TS_ISOLATE_NONE && ds->iso.isolate_port && n > 0 &&
	    (size_t)n < len)
		n += snprintf(user + n, len - (size_t)n, " port 53");
	if (ds->iso.isolation != TS_ISOLATE_NONE && ds->iso.isolate_epoch && n > 0 &&
	    (size_t)n < len)
		snprintf(user + n, len - (size_t)n, " epoch %lld",
		         (long long)(ts_wall_usec() / 1000000 / ds->iso.isolate_epoch));
}

static void resolve(struct ts_dns_service *ds, struct query *qr, int64_t now)
{
	if (ds->cfg.use_dnsport) {
		uint8_t msg[600];
		/* a random id: an answer that is not Tor's would have to guess it */
		if (getrandom(&qr->upstream_id, sizeof(qr->upstream_id), GRND_NONBLOCK) !=
		    sizeof(qr->upstream_id))
			qr->upstream_id = (uint16_t)(ts_monotonic_usec() ^ (uintptr_t)qr);
		size_t len = ts_dns_write_question(qr->upstream_id, qr->q.name, qr->q.qtype, msg,
		                                   sizeof(msg));
		qr->deadline = now + (int64_t)ds->cfg.timeout * 1000000;
		if (!len || send(ds->upstream, msg, len, MSG_DONTWAIT) != (ssize_t)len) {
			ds->st.resolve_failed++;
			answer(ds, qr, TS_DNS_SERVFAIL, NULL, 0);
		}
		return;
	}
	char user[TS_SOCKS5_CRED_MAX + 1];
	uint8_t key[17];
	size_t keylen;
	client_token(ds, qr, user, sizeof(user), key, &keylen);
	struct ts_socks_request req = {
	        .key = key,
	        .keylen = keylen,
	        .user = user,
	        .cmd = TS_SOCKS5_RESOLVE,
	        .resolved = &qr->resolved,
	        .timeout_sec = ds->cfg.timeout,
	        .done = on_socks_answer,
	        .ctx = qr,
	};
	snprintf(req.to.name, sizeof(req.to.name), "%s", qr->q.name);
	enum ts_socks_outcome why;
	qr->socks = ts_socks_connect(ds->base, ds->pool, &req, now, &why);
	if (!qr->socks) {
		ds->st.resolve_failed++;
		answer(ds, qr, TS_DNS_SERVFAIL, NULL, 0);
	}
}

/* What Tor resolved: answered, cached, and noted in the name map. */
static void resolved(struct ts_dns_service *ds, struct query *qr, uint8_t rcode,
                     const struct ts_dns_rr *rr, size_t count, uint32_t ttl, bool keep, int64_t now)
{
	ttl = clamp_ttl(&ds->cfg, ttl);
	struct ts_dns_rr out[TS_DNS_MAX_ANSWERS];
	size_t n = 0;
	for (size_t i = 0; i < count && n < TS_DNS_MAX_ANSWERS; i++) {
		out[n] = rr[i];
		out[n].ttl = ttl;
		if (ds->names)
			ts_name_map_note(ds->names, &qr->who, qr->q.name,
			                 rr[i].type == TS_DNS_AAAA ? 6 : 4, rr[i].addr, ttl, now);
		n++;
	}
	if (keep)
		cache_put(ds, &qr->who, qr->q.name, qr->q.qtype, rcode, out, n, ttl, now);
	answer(ds, qr, rcode, out, n);
}

/* Tor's answer to a SOCKS RESOLVE: one address, or a refusal. */
static void on_socks_answer(void *ctx, enum ts_socks_outcome o, uint8_t reply, int fd, int instance)
{
	(void)fd;
	(void)instance;
	struct query *qr = ctx;
	struct ts_dns_service *ds = qr->ds;
	int64_t now = ts_monotonic_usec();
	qr->socks = NULL;
	if (o == TS_SOCKS_OPEN) {
		ds->st.resolved++;
		struct ts_dns_rr rr = {0};
		uint16_t want = qr->q.qtype;
		bool fits = (want == TS_DNS_A && qr->resolved.family == 4) ||
		            (want == TS_DNS_AAAA && qr->resolved.family == 6);
		rr.type = want;
		memcpy(rr.addr, qr->resolved.addr, 16);
		/* an address of the other family: the name exists, no record of
		 * this type (NODATA) */
		resolved(ds, qr, TS_DNS_NOERROR, &rr, fits ? 1 : 0, SOCKS_TTL, true, now);
		return;
	}
	if (o == TS_SOCKS_REFUSED && reply == TS_SOCKS5_HOST_UNREACHABLE) {
		/* Tor's answer for a name that does not resolve, but also for a
		 * resolve that failed for a while (a circuit, the exit's
		 * resolver): NXDOMAIN, not kept, so the next try asks again */
		ds->st.resolved++;
		resolved(ds, qr, TS_DNS_NXDOMAIN, NULL, 0, ds->cfg.ttl_min, false, now);
		return;
	}
	if (o == TS_SOCKS_TIMEOUT)
		ds->st.resolve_timeouts++;
	else
		ds->st.resolve_failed++;
	answer(ds, qr, TS_DNS_SERVFAIL, NULL, 0);
}

/* Tor's DNSPort answered. */
static void on_upstream(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct ts_dns_service *ds = arg;
	uint8_t msg[4096];
	for (int n = 0; n < 64; n++) {
		ssize_t len = recv(fd, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC);
		if (len < 0)
			return;
		if (len < TS_DNS_HEADER || (size_t)len > sizeof(msg))
			continue; /* not whole: the query times out */
		uint16_t id = (uint16_t)(msg[0] << 8 | msg[1]);
		for (uint32_t i = 0; i < ds->cfg.pending; i++) {
			struct query *qr = &ds->queries[i];
			if (!qr->used || !qr->deadline || qr->upstream_id != id)
				continue;
			struct ts_dns_result res;
			if (!ts_dns_parse_answer(msg, (size_t)len, id, qr->q.name, qr->q.qtype,
			                         &res))
				continue; /* not the answer to it: another's with the same id */
			ds->st.resolved++;
			uint32_t ttl = res.count ? res.rr[0].ttl : ds->cfg.ttl_min;
			for (size_t k = 1; k < res.count; k++)
				if (res.rr[k].ttl < ttl)
					ttl = res.rr[k].ttl;
			if (res.rcode == TS_DNS_NOERROR || res.rcode == TS_DNS_NXDOMAIN)
				resolved(ds, qr, res.rcode, res.rr, res.count, ttl, true,
				         ts_monotonic_usec());
			else
				answer(ds, qr, TS_DNS_SERVFAIL, NULL, 0);
			break;
		}
	}
}

/* Names that never belong on the internet (RFC 6761, 6762, 8375, and any
 * single label): answered here, never sent to an exit, which would only
 * learn what the client's network is called. */
static bool local_name(const char *name)
{
	return !strchr(name, '.') || has_suffix(name, "localhost") || has_suffix(name, "local") ||
	       has_suffix(name, "home.arpa") || has_suffix(name, "internal") ||
	       has_suffix(name, "invalid") || has_suffix(name, "test.invalid");
}

/* The client as the name map knows it: its MAC when the map has seen it
 * (the query came through the queue with it), else its address. */
static void client_of(const struct ts_dns_service *ds, const struct sockaddr_storage *ss,
                      struct ts_name_client *who)
{
	uint8_t addr[16] = {0};
	int family = 4;
	if (ss->ss_family == AF_INET6) {
		family = 6;
		memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	} else {
		memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
	if (ds->names) {
		ts_name_map_client(ds->names, family, addr, who);
	} else {
		memset(who, 0, sizeof(*who));
		who->family = (uint8_t)family;
		memcpy(who->addr, addr, 16);
	}
}

/* The query goes to Tor: it takes a slot of dns-pending now, within the
 * client's share of them. */
static void ask_tor_for(struct ts_dns_service *ds, const struct query *local, int64_t now)
{
	uint32_t mine = 0;
	for (uint32_t i = 0; i < ds->cfg.pending && mine < ds->cfg.pending_per_client; i++)
		mine += ds->queries[i].used && same_client(&ds->queries[i].who, &local->who);
	struct query *qr = mine < ds->cfg.pending_per_client ? query_take(ds) : NULL;
	if (!qr) {
		ds->st.over_pending++;
		send_answer(ds, (struct query *)local, TS_DNS_SERVFAIL, NULL, 0);
		return;
	}
	struct ts_dns_service *owner = qr->ds;
	*qr = *local;
	qr->ds = owner;
	qr->used = true;
	resolve(ds, qr, now);
}

/* One query, from UDP or TCP: answered now, or sent on to Tor. Only a
 * query that waits for Tor takes a slot of dns-pending, so a full table
 * never keeps the cache, .onion or a block from being answered. */
static void handle_query(struct ts_dns_service *ds, const uint8_t *msg, size_t len,
                         const struct sockaddr_storage *client,
                         const struct sockaddr_storage *local, struct tcp_conn *tcp)
{
	int64_t now = ts_monotonic_usec();
	struct query here;
	memset(&here, 0, sizeof(here));
	here.ds = ds;
	here.client = *client;
	if (local)
		here.local = *local;
	here.tcp = tcp;
	client_of(ds, client, &here.who);
	enum ts_dns_parse pr = ts_dns_parse_query(msg, len, &here.q);
	if (pr == TS_DNS_IGNORE) {
		ds->st.ignored++;
		if (tcp) {
			tcp->dead = true;
			tcp->busy = false;
		}
		return;
	}
	if (pr != TS_DNS_PARSED) {
		uint8_t out[TS_DNS_HEADER];
		uint8_t rcode = pr == TS_DNS_NOT_QUERY ? TS_DNS_NOTIMP : TS_DNS_FORMERR;
		if (rcode == TS_DNS_NOTIMP)
			ds->st.notimp++;
		else
			ds->st.formerr++;
		size_t n = ts_dns_write_error(msg, len, rcode, out, sizeof(out));
		if (tcp)
			send_tcp(ds, tcp, out, n);
		else if (n)
			send_udp(ds, &here, out, n);
		return;
	}
	const struct ts_dns_query *q = &here.q;
	struct ts_dns_rr rr[CACHE_ADDRS];
	memset(rr, 0, sizeof(rr));
	if (q->qclass != 1) {
		send_answer(ds, &here, TS_DNS_NOERROR, NULL, 0);
		return;
	}
	if (ds->policy && ts_policy_name_blocked(ds->policy, q->name)) {
		ds->st.blocked++;
		const struct ts_dns_config *c = &ds->cfg;
		if (!c->block_sinkhole) {
			send_answer(ds, &here, TS_DNS_NXDOMAIN, NULL, 0);
		} else if (q->qtype == TS_DNS_A && c->has_sinkhole4) {
			rr[0] = (struct ts_dns_rr){.type = TS_DNS_A, .ttl = c->ttl_min};
			memcpy(rr[0].addr, c->sinkhole4, 4);
			send_answer(ds, &here, TS_DNS_NOERROR, rr, 1);
		} else if (q->qtype == TS_DNS_AAAA && c->has_sinkhole6) {
			rr[0] = (struct ts_dns_rr){.type = TS_DNS_AAAA, .ttl = c->ttl_min};
			memcpy(rr[0].addr, c->sinkhole6, 16);
			send_answer(ds, &here, TS_DNS_NOERROR, rr, 1);
		} else {
			send_answer(ds, &here, TS_DNS_NOERROR, NULL, 0);
		}
		return;
	}
	if (q->qtype == TS_DNS_PTR) {
		int family;
		uint8_t addr[16];
		struct ts_dns_rr ptr = {.type = TS_DNS_PTR, .ttl = VIRTUAL_TTL};
		/* only the client's own virtual addresses have names */
		if (ds->names && ptr_address(q->name, &family, addr) &&
		    ts_name_map_is_virtual(ds->names, family, addr) &&
		    ts_name_map_name(ds->names, &here.who, family, addr, now, ptr.name)) {
			ds->st.virtual_answers++;
			send_answer(ds, &here, TS_DNS_NOERROR, &ptr, 1);
		} else {
			send_answer(ds, &here, TS_DNS_NOERROR, NULL, 0);
		}
		return;
	}
	if (local_name(q->name) && !has_suffix(q->name, "onion")) {
		ds->st.local_names++;
		send_answer(ds, &here, q->name[0] ? TS_DNS_NXDOMAIN : TS_DNS_NOERROR, NULL, 0);
		return;
	}
	if (q->qtype != TS_DNS_A && q->qtype != TS_DNS_AAAA) {
		send_answer(ds, &here, TS_DNS_NOERROR, NULL, 0); /* NODATA, never NOTIMP */
		return;
	}
	int family = q->qtype == TS_DNS_AAAA ? 6 : 4;
	if (has_suffix(q->name, "onion") || ds->cfg.automap) {
		rr[0] = (struct ts_dns_rr){.type = q->qtype, .ttl = VIRTUAL_TTL};
		if (ds->names &&
		    ts_name_map_virtual(ds->names, &here.who, q->name, family, now, rr[0].addr)) {
			ds->st.virtual_answers++;
			send_answer(ds, &here, TS_DNS_NOERROR, rr, 1);
		} else {
			send_answer(ds, &here, TS_DNS_SERVFAIL, NULL, 0); /* the map is full */
		}
		return;
	}
	struct cache_entry *e = cache_find(ds, &here.who, q->name, q->qtype, now);
	if (e) {
		ds->st.cache_hits++;
		uint32_t left = (uint32_t)((e->expires - now) / 1000000);
		for (uint8_t i = 0; i < e->count; i++) {
			rr[i] = (struct ts_dns_rr){.type = q->qtype, .ttl = left};
			memcpy(rr[i].addr, e->addr[i], 16);
			/* the name a client just looked up is the one it is about
			 * to connect to, if another name shares the address */
			if (ds->names)
				ts_name_map_note(ds->names, &here.who, q->name, family, e->addr[i],
				                 left, now);
		}
		send_answer(ds, &here, e->rcode, rr, e->count);
		return;
	}
	ask_tor_for(ds, &here, now);
}

/* ---- UDP ---- */

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct ts_dns_service *ds = arg;
	for (int n = 0; n < 64; n++) {
		uint8_t msg[TS_DNS_UDP_MAX + 1];
		struct sockaddr_storage client, local;
		union {
			char buf[CMSG_SPACE(sizeof(struct sockaddr_in6))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {msg, sizeof(msg)};
		struct msghdr mh = {
		        .msg_name = &client,
		        .msg_namelen = sizeof(client),
		        .msg_iov = &iov,
		        .msg_iovlen = 1,
		        .msg_control = ctl.buf,
		        .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t len = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (len < 0)
			return;
		/* The original destination (TPROXY keeps it): the answer comes
		 * from there. Without it there is nobody to answer as. */
		bool have_local = false;
		memset(&local, 0, sizeof(local));
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_ORIGDSTADDR &&
			    cm->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in))) {
				memcpy(&local, CMSG_DATA(cm), sizeof(struct sockaddr_in));
				have_local = true;
			} else if (cm->cmsg_level == IPPROTO_IPV6 &&
			           cm->cmsg_type == IPV6_ORIGDSTADDR &&
			           cm->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in6))) {
				memcpy(&local, CMSG_DATA(cm), sizeof(struct sockaddr_in6));
				have_local = true;
			}
		}
		ds->st.udp_queries++;
		if (!have_local || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			ds->st.ignored++;
			continue;
		}
		handle_query(ds, msg, (size_t)len, &client, &local, NULL);
	}
}

/* ---- TCP ---- */

static void on_tcp_read(evutil_socket_t fd, short what, void *arg);

static void tcp_close(struct tcp_conn *c)
{
	struct ts_dns_service *ds = c->ds;
	for (uint32_t i = 0; i < ds->cfg.pending; i++)
		if (ds->queries[i].used && ds->queries[i].tcp == c) {
			ds->queries[i].tcp = NULL;
			ds->queries[i].orphan = true;
		}
	if (c->ev)
		event_free(c->ev);
	if (c->resume)
		event_free(c->resume);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ds->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ds->st.tcp_now--;
	free(c);
}

/* Take the queries already read, one at a time. */
static void tcp_resume(struct tcp_conn *c)
{
	while (!c->busy && !c->dead && c->have >= 2) {
		size_t len = (size_t)c->buf[0] << 8 | c->buf[1];
		if (len < TS_DNS_HEADER || len > TCP_MSG_MAX) {
			c->dead = true;
			break;
		}
		if (c->have < 2 + len)
			break;
		uint8_t msg[TCP_MSG_MAX];
		memcpy(msg, c->buf + 2, len);
		c->have -= 2 + len;
		memmove(c->buf, c->buf + 2 + len, c->have);
		c->busy = true;
		c->ds->st.tcp_queries++;
		struct sockaddr_storage peer, local;
		socklen_t pl = sizeof(peer), ll = sizeof(local);
		if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) < 0 ||
		    getsockname(c->fd, (struct sockaddr *)&local, &ll) < 0) {
			c->dead = true;
			break;
		}
		handle_query(c->ds, msg, len, &peer, &local, c);
	}
	if (c->dead) {
		tcp_close(c);
		return;
	}
	if (!c->busy)
		event_add(c->ev, NULL);
}

static void on_tcp_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tcp_resume(arg);
}

static void on_tcp_read(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct tcp_conn *c = arg;
	ssize_t n = recv(fd, c->buf + c->have, sizeof(c->buf) - c->have, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		tcp_close(c);
		return;
	}
	if (n < 0)
		return;
	c->have += (size_t)n;
	c->last = ts_monotonic_usec();
	if (c->have == sizeof(c->buf) && c->have >= 2 &&
	    ((size_t)c->buf[0] << 8 | c->buf[1]) + 2 > sizeof(c->buf)) {
		tcp_close(c);
		return;
	}
	event_del(c->ev);
	tcp_resume(c);
}

static void reset_close(int fd)
{
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void on_tcp_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct ts_dns_service *ds = arg;
	for (int n = 0; n < 16; n++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		if (ds->st.tcp_now >= ds->cfg.tcp_connections) {
			ds->st.tcp_over++;
			reset_close(cfd);
			continue;
		}
		struct tcp_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			reset_close(cfd);
			continue;
		}
		c->ds = ds;
		c->fd = cfd;
		c->last = ts_monotonic_usec();
		c->ev = event_new(ds->base, cfd, EV_READ | EV_PERSIST, on_tcp_read, c);
		c->resume = event_new(ds->base, -1, 0, on_tcp_resume, c);
		c->next = ds->conns;
		if (ds->conns)
			ds->conns->prev = c;
		ds->conns = c;
		ds->st.tcp_now++;
		ds->st.tcp_connections++;
		if (!c->ev || !c->resume || event_add(c->ev, NULL) < 0)
			tcp_close(c);
	}
}

/* ---- the whole ---- */

static int transparent_socket(int family, int type, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = ts_sockaddr_any(family, port, &ss);
	enum ts_transparent_step failed;
	const char *v = family == AF_INET6 ? "6" : "4";
	int fd = ts_transparent_socket(&ss, sl, type | SOCK_NONBLOCK,
	                               type == SOCK_DGRAM ? TS_TRANSPARENT_ORIGDST : 0,
	                               type == SOCK_STREAM ? 64 : 0, &failed);
	if (fd >= 0)
		return fd;
	if (failed == TS_TRANSPARENT_SOCKET)
		snprintf(err, errlen, "dns: cannot make an IPv%s socket: %s", v, strerror(errno));
	else if (failed == TS_TRANSPARENT_OPTION)
		snprintf(err, errlen,
		         "dns: cannot make the IPv%s socket transparent: %s (needs CAP_NET_ADMIN: "
		         "run "
		         "as root; --user drops privileges after)",
		         v, strerror(errno));
	else
		snprintf(err, errlen,
		         "dns: cannot listen on %s port %u (IPv%s): %s (dns-port; is another "
		         "resolver "
		         "on it? then `set dns-service off`)",
		         type == SOCK_STREAM ? "TCP" : "UDP", port, v, strerror(errno));
	return -1;
}

struct ts_dns_service *ts_dns_service_open(const struct ts_dns_config *cfg, uint16_t port,
                                           char *err, size_t errlen)
{
	struct ts_dns_service *ds = calloc(1, sizeof(*ds));
	if (!ds) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	ds->cfg = *cfg;
	ds->udp[0] = ds->udp[1] = ds->tcp[0] = ds->tcp[1] = ds->upstream = -1;
	if (getrandom(&ds->seed, sizeof(ds->seed), GRND_NONBLOCK) != sizeof(ds->seed))
		ds->seed = (uint32_t)ts_monotonic_usec();
	uint32_t buckets = 16;
	while (buckets < cfg->cache_size * 2 && buckets < (1u << 30))
		buckets <<= 1;
	ds->cache_mask = buckets - 1;
	ds->queries = calloc(cfg->pending, sizeof(*ds->queries));
	ds->cache = calloc(cfg->cache_size ? cfg->cache_size : 1, sizeof(*ds->cache));
	ds->cache_hash = calloc(buckets, sizeof(*ds->cache_hash));
	if (!ds->queries || !ds->cache || !ds->cache_hash) {
		snprintf(err, errlen, "dns: out of memory for dns-pending %u, dns-cache %u",
		         cfg->pending, cfg->cache_size);
		ts_dns_service_close(ds);
		return NULL;
	}
	for (uint32_t i = cfg->cache_size; i-- > 0;) {
		ds->cache[i].chain = ds->cache_free;
		ds->cache_free = &ds->cache[i];
	}
	for (uint32_t i = cfg->pending; i-- > 0;) {
		ds->queries[i].ds = ds;
		ds->queries[i].next_free = ds->free_queries;
		ds->free_queries = &ds->queries[i];
	}
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		char e6[256];
		ds->udp[f] = transparent_socket(family, SOCK_DGRAM, port, f ? e6 : err,
		                                f ? sizeof(e6) : errlen);
		if (ds->udp[f] >= 0)
			ds->tcp[f] = transparent_socket(family, SOCK_STREAM, port, f ? e6 : err,
			                                f ? sizeof(e6) : errlen);
		if (f && (ds->udp[f] < 0 || ds->tcp[f] < 0) && errno == EAFNOSUPPORT)
			continue; /* no IPv6 on this system */
		if (ds->udp[f] < 0 || ds->tcp[f] < 0) {
			if (f)
				snprintf(err, errlen, "%s", e6);
			ts_dns_service_close(ds);
			return NULL;
		}
	}
	if (cfg->use_dnsport) {
		struct sockaddr_storage ss;
		socklen_t sl = ts_tor_endpoint_sockaddr(&cfg->dnsport, &ss);
		ds->upstream = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (ds->upstream < 0 || connect(ds->upstream, (struct sockaddr *)&ss, sl) < 0) {
			snprintf(err, errlen, "dns: cannot reach tor-dns: %s", strerror(errno));
			ts_dns_service_close(ds);
			return NULL;
		}
	}
	return ds;
}

int ts_dns_service_attach(struct ts_dns_service *ds, struct event_base *base,
                          struct ts_tor_pool *pool, struct ts_name_map *names,
                          const struct ts_relay_config *isolation, const struct ts_policy *p)
{
	ds->base = base;
	ds->pool = pool;
	ds->names = names;
	ds->iso = *isolation;
	ds->policy = p;
	for (int f = 0; f < 2; f++) {
		if (ds->udp[f] < 0)
			continue;
		ds->udp_ev[f] = event_new(base, ds->udp[f], EV_READ | EV_PERSIST, on_udp, ds);
		ds->tcp_ev[f] =
		        event_new(base, ds->tcp[f], EV_READ | EV_PERSIST, on_tcp_accept, ds);
		if (!ds->udp_ev[f] || !ds->tcp_ev[f] || event_add(ds->udp_ev[f], NULL) < 0 ||
		    event_add(ds->tcp_ev[f], NULL) < 0)
			return -1;
	}
	if (ds->upstream >= 0) {
		ds->upstream_ev =
		        event_new(base, ds->upstream, EV_READ | EV_PERSIST, on_upstream, ds);
		if (!ds->upstream_ev || event_add(ds->upstream_ev, NULL) < 0)
			return -1;
	}
	return 0;
}

void ts_dns_service_set_policy(struct ts_dns_service *ds, const struct ts_policy *p)
{
	ds->policy = p;
}

void ts_dns_service_tick(struct ts_dns_service *ds, int64_t now)
{
	for (uint32_t i = 0; i < ds->cfg.pending; i++) {
		struct query *qr = &ds->queries[i];
		if (qr->used && qr->deadline && now >= qr->deadline) {
			ds->st.resolve_timeouts++;
			answer(ds, qr, TS_DNS_SERVFAIL, NULL, 0);
		}
	}
	for (struct tcp_conn *c = ds->conns, *next; c; c = next) {
		next = c->next;
		if (!c->busy && !c->have && now - c->last >= TCP_IDLE_USEC)
			tcp_close(c);
	}
}

void ts_dns_service_get_stats(const struct ts_dns_service *ds, struct ts_dns_stats *out)
{
	*out = ds->st;
}

void ts_dns_service_close(struct ts_dns_service *ds)
{
	if (!ds)
		return;
	while (ds->conns)
		tcp_close(ds->conns);
	for (uint32_t i = 0; ds->queries && i < ds->cfg.pending; i++)
		if (ds->queries[i].socks)
			ts_socks_cancel(ds->queries[i].socks);
	for (int f = 0; f < 2; f++) {
		if (ds->udp_ev[f])
			event_free(ds->udp_ev[f]);
		if (ds->tcp_ev[f])
			event_free(ds->tcp_ev[f]);
		if (ds->udp[f] >= 0)
			close(ds->udp[f]);
		if (ds->tcp[f] >= 0)
			close(ds->tcp[f]);
	}
	if (ds->upstream_ev)
		event_free(ds->upstream_ev);
	if (ds->upstream >= 0)
		close(ds->upstream);
	free(ds->queries);
	free(ds->cache);
	free(ds->cache_hash);
	free(ds);
}
