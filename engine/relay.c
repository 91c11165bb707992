/* The relay: held SYNs, Tor streams, and the bytes between (relay.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "torsieve/clock.h"
#include "torsieve/log.h"
#include "torsieve/lru.h"
#include "torsieve/name_map.h"
#include "torsieve/relay.h"
#include "torsieve/socks5.h"
#include "torsieve/socks_client.h"
#include "torsieve/transparent.h"

#define HELD_IDS         4        /* the SYN and copies of it: more are dropped */
#define HELD_FRAME       192      /* bytes of the SYN kept for an ICMP error */
#define CLAIM_USEC       10000000 /* a stream Tor opened waits this long for its client */
#define ANSWER_KEEP_USEC 3000000  /* a refusal is repeated to copies this long */

/* A connection's 4-tuple as the client sent it. */
struct tuple {
	uint8_t family;
	uint8_t caddr[16], daddr[16];
	uint8_t zero; /* hashed and compared whole: no padding left to chance */
	uint16_t cport, dport;
};

/* Whom the caps count: one entry per client address with anything live. */
struct client {
	struct client *next;
	uint8_t family;
	uint8_t addr[16];
	bool has_mac;
	uint8_t mac[6];
	uint32_t held;  /* pending entries asking or open */
	uint32_t conns; /* relayed connections */
};

enum pending_state {
	P_FREE = 0,
	P_ASKING,
	P_OPEN,
	P_ANSWERED
};

struct pending {
	struct pending *next;        /* hash chain, or the free list */
	struct ts_lru_node answered; /* P_ANSWERED: in the answers kept, oldest first */
	struct ts_relay *relay;
	struct tuple t;
	struct client *client; /* P_ASKING and P_OPEN only: an answer holds no client */
	enum pending_state state;
	struct ts_socks_client *socks;
	int tor_fd;
	uint32_t seq;             /* the SYN's: copies have the same */
	int64_t until;            /* P_OPEN: claimed by; P_ANSWERED: forgotten at */
	enum ts_reject_kind kind; /* P_ANSWERED */
	uint8_t nids;
	uint32_t ids[HELD_IDS], marks[HELD_IDS];
	uint32_t caplen, wirelen;
	enum ts_link link;
	uint8_t frame[HELD_FRAME];
};

struct conn {
	struct conn *prev, *next;
	struct ts_relay *relay;
	struct client *client;
	struct ts_socks_client *socks; /* accepted first: Tor is being asked */
	int fd[2];                     /* 0: the client, 1: Tor */
	int pipe[2][2];                /* pipe[d]: bytes read from fd[d] for fd[1 - d] */
	uint32_t inpipe[2];
	bool pipe_full[2]; /* the pipe took no more though fewer than its size are in */
	bool eof[2];       /* fd[s] will send no more */
	bool shut[2];      /* fd[s] was told there is no more (SHUT_WR) */
	struct event *rd[2], *wr[2];
	struct tuple t;
	int64_t last;
};

struct ts_relay {
	struct ts_relay_config cfg;
	struct event_base *base;
	struct ts_relay_hooks hooks;
	struct ts_tor_pool *pool;  /* the worker's, shared with DNS */
	struct ts_name_map *names; /* names for destinations (NULL: none) */
	struct ts_relay_stats st;
	int listen_fd[2];
	struct event *listen_ev[2];
	struct event *listen_pause; /* out of descriptors with no reserve left */
	int reserve_fd;             /* given up to accept (and reset) a connection at EMFILE */
	uint32_t pipe_size;
	struct pending *pending, *pending_free, **pending_hash;
	struct ts_lru answered; /* answers kept for copies, oldest first */
	uint32_t pending_mask;
	struct client *clients, *clients_free, **client_hash;
	uint32_t client_mask;
	struct conn *conns;
	uint32_t held; /* pending entries asking or open, of all clients */
	int64_t no_tor_logged;
	bool self_check; /* TORSIEVE_RELAY_CHECK: relay_consistent every tick */
};

static const char *const close_names[] = {
#define TS_RELAY_CLOSE_NAME(id, name, text) name,
        TS_RELAY_CLOSE_LIST(TS_RELAY_CLOSE_NAME)
#undef TS_RELAY_CLOSE_NAME
};

const char *ts_relay_close_name(enum ts_relay_close c)
{
	return (unsigned)c < TS_RELAY_CLOSE_COUNT ? close_names[c] : "?";
}

static uint32_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h ^ (h >> 15);
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;
	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

/* ---- clients ---- */

static struct client **client_slot(struct ts_relay *r, uint8_t family, const uint8_t *addr)
{
	uint8_t k[17];
	k[0] = family;
	memcpy(k + 1, addr, 16);
	struct client **pp = &r->client_hash[hash_bytes(k, sizeof(k)) & r->client_mask];
	while (*pp && ((*pp)->family != family || memcmp((*pp)->addr, addr, 16)))
		pp = &(*pp)->next;
	return pp;
}

/* The client's entry, made when missing; NULL only when the table is full
 * (it is sized for every pending SYN and connection, so never in use). */
static struct client *client_get(struct ts_relay *r, uint8_t family, const uint8_t *addr)
{
	struct client **pp = client_slot(r, family, addr);
	if (*pp)
		return *pp;
	struct client *c = r->clients_free;
	if (!c)
		return NULL;
	r->clients_free = c->next;
	memset(c, 0, sizeof(*c));
	c->family = family;
	memcpy(c->addr, addr, 16);
	*pp = c;
	r->st.clients++;
	return c;
}

static void client_put(struct ts_relay *r, struct client *c)
{
	if (!c || c->held || c->conns)
		return;
	struct client **pp = client_slot(r, c->family, c->addr);
	if (*pp == c)
		*pp = c->next;
	c->next = r->clients_free;
	r->clients_free = c;
	r->st.clients--;
}

/* The SOCKS username that keeps this client on circuits of its own, and
 * the key that keeps it on one Tor instance. mac is the client's when
 * known (NULL: its address stands in). */
static void client_token(const struct ts_relay *r, const struct client *c, const uint8_t *mac,
                         uint16_t dport, char *user, size_t len, uint8_t key[17], size_t *keylen)
{
	const struct ts_relay_config *cfg = &r->cfg;
	bool by_mac = cfg->isolation == TS_ISOLATE_MAC && mac;
	int n;
	if (cfg->isolation == TS_ISOLATE_NONE) {
		n = snprintf(user, len, "torsieve");
	} else if (by_mac) {
		n = snprintf(user, len, "torsieve mac %02x:%02x:%02x:%02x:%02x:%02x", mac[0],
		             mac[1], mac[2], mac[3], mac[4], mac[5]);
	} else {
		char a[INET6_ADDRSTRLEN];
		inet_ntop(c->family == 6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a));
		n = snprintf(user, len, "torsieve ip %s", a);
	}
	if (cfg->isolation != TS_ISOLATE_NONE && cfg->isolate_port && n > 0 && (size_t)n < len)
		n += snprintf(user + n, len - (size_t)n, " port %u", dport);
	if (cfg->isolation != TS_ISOLATE_NONE && cfg->isolate_epoch && n > 0 && (size_t)n < len)
		snprintf(user + n, len - (size_t)n, " epoch %lld",
		         (long long)(ts_wall_usec() / 1000000 / cfg->isolate_epoch));
	if (by_mac) {
		memcpy(key, mac, 6);
		*keylen = 6;
	} else {
		key[0] = c->family;
		memcpy(key + 1, c->addr, 16);
		*keylen = 17;
	}
}

/* ---- pending SYNs ---- */

static struct pending **pending_slot(struct ts_relay *r, const struct tuple *t)
{
	struct pending **pp = &r->pending_hash[hash_bytes(t, sizeof(*t)) & r->pending_mask];
	while (*pp && memcmp(&(*pp)->t, t, sizeof(*t)))
		pp = &(*pp)->next;
	return pp;
}

static void give_verdicts(struct ts_relay *r, struct pending *p, enum ts_relay_verdict v,
                          enum ts_reject_kind kind)
{
	if (!p->nids)
		return;
	for (uint8_t i = 0; i < p->nids; i++) {
		struct ts_relay_held h = {
		        .id = p->ids[i],
		        .mark = p->marks[i],
		        .link = p->link,
		        .caplen = p->caplen,
		        .wirelen = p->wirelen,
		        .frame = p->frame,
		};
		r->hooks.verdict(r->hooks.ctx, &h, v, kind);
	}
	p->nids = 0;
	r->hooks.flush(r->hooks.ctx);
}

/* The entry stops holding its client: answered, or released. */
static void pending_unhold(struct ts_relay *r, struct pending *p)
{
	struct client *c = p->client;
	if (!c)
		return;
	p->client = NULL;
	c->held--;
	r->held--;
	client_put(r, c);
}

static struct pending *oldest_answer(const struct ts_relay *r)
{
	return r->answered.oldest ? TS_LRU_ENTRY(r->answered.oldest, struct pending, answered)
	                          : NULL;
}

static void pending_release(struct ts_relay *r, struct pending *p)
{
	/* Never strand a packet in the kernel's queue: whatever is still
	 * held is dropped (only shutdown gets here with packets held). */
	give_verdicts(r, p, TS_RELAY_DROP, TS_REJECT_DEFAULT);
	struct pending **pp = pending_slot(r, &p->t);
	if (*pp == p)
		*pp = p->next;
	if (p->socks)
		ts_socks_cancel(p->socks);
	if (p->tor_fd >= 0)
		close(p->tor_fd);
	if (p->state == P_ANSWERED)
		ts_lru_unlink(&r->answered, &p->answered);
	pending_unhold(r, p);
	memset(p, 0, sizeof(*p));
	p->tor_fd = -1;
	p->next = r->pending_free;
	r->pending_free = p;
	r->st.pending--;
}

/* A free entry; at the cap, the oldest answer kept is forgotten early. */
static struct pending *pending_take(struct ts_relay *r)
{
	if (!r->pending_free && oldest_answer(r))
		pending_release(r, oldest_answer(r));
	struct pending *p = r->pending_free;
	if (p) {
		r->pending_free = p->next;
		p->next = NULL;
		r->st.pending++;
	}
	return p;
}

/* Tor has answered with a refusal (or none came): the answer is kept a
 * while for copies of the SYN still on their way; the client is free. */
static void pending_answered(struct ts_relay *r, struct pending *p, enum ts_reject_kind kind,
                             int64_t now)
{
	p->state = P_ANSWERED;
	p->kind = kind;
	p->until = now + ANSWER_KEEP_USEC;
	pending_unhold(r, p);
	ts_lru_push(&r->answered, &p->answered);
}

static void log_no_tor(struct ts_relay *r, int64_t now)
{
	if (now - r->no_tor_logged < 10000000)
		return;
	r->no_tor_logged = now;
	ts_log(LOG_WARNING, "relay: no Tor instance answers (tor-socks); diverted connections "
	                    "are refused until one does");
}

static void on_pending_answer(void *ctx, enum ts_socks_outcome o, uint8_t reply, int fd,
                              int instance)
{
	(void)instance;
	struct pending *p = ctx;
	struct ts_relay *r = p->relay;
	int64_t now = ts_monotonic_usec();
	p->socks = NULL;
	if (o == TS_SOCKS_OPEN) {
		r->st.syn_opened++;
		r->st.tor_replies[0]++;
		p->tor_fd = fd;
		p->state = P_OPEN;
		p->until = now + CLAIM_USEC;
		give_verdicts(r, p, TS_RELAY_DIVERT, TS_REJECT_DEFAULT);
		return;
	}
	enum ts_reject_kind kind = TS_REJECT_TCP_RESET;
	switch (o) {
	case TS_SOCKS_REFUSED:
		r->st.syn_refused++;
		r->st.tor_replies[reply]++;
		kind = ts_socks5_reject_kind(reply);
		break;
	case TS_SOCKS_TIMEOUT:
		r->st.syn_timeout++;
		kind = TS_REJECT_HOST_UNREACHABLE;
		break;
	case TS_SOCKS_NO_TOR:
		r->st.syn_no_tor++;
		log_no_tor(r, now);
		break;
	default:
		r->st.syn_broken++;
		break;
	}
	give_verdicts(r, p, TS_RELAY_REJECT, kind);
	pending_answered(r, p, kind, now);
}

static void tuple_of(const struct ts_decoded *d, struct tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->family = d->l3 == TS_L3_IPV6 ? 6 : 4;
	memcpy(t->caddr, d->src_addr, 16);
	memcpy(t->daddr, d->dst_addr, 16);
	t->cport = d->sport;
	t->dport = d->dport;
}

/* What Tor is asked to connect to: the name the address stands for when
 * the name map knows one (so the exit resolves it, and .onion works), else
 * the address. False for a virtual address whose name is gone: there is
 * nothing to connect to. */
static bool dest_of(struct ts_relay *r, const struct tuple *t, int64_t now,
                    struct ts_socks5_addr *to)
{
	memset(to, 0, sizeof(*to));
	to->port = t->dport;
	struct ts_name_client who;
	/* the client's own lookups only: another's cannot steer it */
	if (r->names)
		ts_name_map_client(r->names, t->family, t->caddr, &who);
	if (r->names && ts_name_map_name(r->names, &who, t->family, t->daddr, now, to->name)) {
		to->family = 0;
		r->st.by_name++;
		return true;
	}
	if (r->names && ts_name_map_is_virtual(r->names, t->family, t->daddr))
		return false;
	to->family = t->family;
	memcpy(to->addr, t->daddr, 16);
	return true;
}

/* A SOCKS CONNECT to to for client c (mac: its MAC, when known), on its
 * Tor instance with its isolation token; done(ctx, ...) gets the answer. */
static struct ts_socks_client *ask_tor(struct ts_relay *r, const struct client *c,
                                       const uint8_t *mac, const struct ts_socks5_addr *to,
                                       ts_socks_done_fn done, void *ctx, int64_t now,
                                       enum ts_socks_outcome *why)
{
	char user[TS_SOCKS5_CRED_MAX + 1];
	uint8_t key[17];
	size_t keylen;
	client_token(r, c, mac, to->port, user, sizeof(user), key, &keylen);
	struct ts_socks_request req = {
	        .key = key,
	        .keylen = keylen,
	        .user = user,
	        .timeout_sec = r->cfg.syn_timeout,
	        .done = done,
	        .ctx = ctx,
	        .to = *to,
	};
	return ts_socks_connect(r->base, r->pool, &req, now, why);
}

static bool over_connections(const struct ts_relay *r, const struct client *c)
{
	return c->held + c->conns >= r->cfg.connections_per_client ||
	       r->st.connections + r->held >= r->cfg.connections;
}

/* The SYN's bytes, for an ICMP error built later. */
static void keep_frame(struct pending *p, const struct ts_packet *pkt, const struct ts_decoded *d)
{
	p->seq = d->tcp_seq;
	p->link = pkt->link;
	p->wirelen = pkt->len;
	p->caplen = pkt->caplen < HELD_FRAME ? pkt->caplen : HELD_FRAME;
	memcpy(p->frame, pkt->data, p->caplen);
}

static bool keep_copy(struct pending *p, const struct ts_packet *pkt)
{
	if (p->nids == HELD_IDS)
		return false;
	p->ids[p->nids] = pkt->id;
	p->marks[p->nids] = pkt->mark;
	p->nids++;
	return true;
}

enum ts_relay_syn ts_relay_syn(struct ts_relay *r, const struct ts_packet *pkt,
                               const struct ts_decoded *d, int64_t now, enum ts_reject_kind *kind)
{
	struct tuple t;
	tuple_of(d, &t);
	*kind = TS_REJECT_TCP_RESET;
	struct pending *p = *pending_slot(r, &t);
	if (p && p->seq == d->tcp_seq) {
		/* a copy of a SYN already known: the same answer */
		switch (p->state) {
		case P_ASKING:
			if (keep_copy(p, pkt)) {
				r->st.syn_copies++;
				return TS_RELAY_SYN_HELD;
			}
			r->st.syn_copies_lost++;
			return TS_RELAY_SYN_DROP;
		case P_OPEN:
			return TS_RELAY_SYN_DIVERT;
		default:
			*kind = p->kind;
			return TS_RELAY_SYN_REJECT;
		}
	}
	if (p && p->state == P_ASKING) {
		/* A new SYN (a new initial sequence number) on a tuple Tor is
		 * still being asked about: the client gave up on the old one.
		 * The same destination is being asked for, so the answer will do
		 * for the new SYN; the old copies are dropped (the client no
		 * longer wants them) and never left in the kernel's queue. */
		give_verdicts(r, p, TS_RELAY_DROP, TS_REJECT_DEFAULT);
		r->st.syn_replaced++;
		keep_frame(p, pkt, d);
		keep_copy(p, pkt);
		return TS_RELAY_SYN_HELD;
	}
	if (p)
		pending_release(r, p); /* the port reused for a new connection */

	struct ts_socks5_addr to;
	if (!dest_of(r, &t, now, &to)) {
		r->st.syn_unknown_name++;
		*kind = TS_REJECT_HOST_UNREACHABLE;
		return TS_RELAY_SYN_REJECT;
	}
	struct client *c = client_get(r, t.family, t.caddr);
	if (!c)
		return TS_RELAY_SYN_DIVERT;
	/* The first MAC seen for an address stays while the entry lives: a
	 * SYN with a forged source address cannot move the client's token. */
	if (d->has_mac && !c->has_mac) {
		memcpy(c->mac, d->src_mac, 6);
		c->has_mac = true;
	}
	if (over_connections(r, c)) {
		r->st.syn_over_connections++;
		client_put(r, c);
		return TS_RELAY_SYN_REJECT;
	}
	if (c->held >= r->cfg.pending_per_client || !(p = pending_take(r))) {
		r->st.syn_accept_first++;
		client_put(r, c);
		return TS_RELAY_SYN_DIVERT;
	}
	p->relay = r;
	p->t = t;
	p->client = c;
	p->state = P_ASKING;
	p->tor_fd = -1;
	keep_frame(p, pkt, d);
	c->held++;
	r->held++;
	struct pending **slot = pending_slot(r, &t);
	p->next = *slot;
	*slot = p;
	keep_copy(p, pkt);

	enum ts_socks_outcome why;
	/* the SYN's own MAC: whoever sent it owns this connection */
	p->socks =
	        ask_tor(r, c, d->has_mac ? d->src_mac : NULL, &to, on_pending_answer, p, now, &why);
	if (!p->socks) {
		if (why == TS_SOCKS_NO_TOR) {
			r->st.syn_no_tor++;
			log_no_tor(r, now);
		} else {
			r->st.syn_broken++;
		}
		p->nids = 0; /* answered here, not through the hooks */
		pending_answered(r, p, TS_REJECT_TCP_RESET, now);
		return TS_RELAY_SYN_REJECT;
	}
	r->st.syn_held++;
	return TS_RELAY_SYN_HELD;
}

/* ---- relayed connections ---- */

static void conn_update(struct conn *c);

static void set_linger_reset(int fd)
{
	/* closing with a zero linger sends a reset: the peer learns the
	 * connection failed rather than ended */
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void conn_close(struct conn *c, enum ts_relay_close why, bool reset_client, bool reset_tor)
{
	struct ts_relay *r = c->relay;
	r->st.closed[why]++;
	if (c->socks)
		ts_socks_cancel(c->socks);
	for (int s = 0; s < 2; s++) {
		if (c->rd[s])
			event_free(c->rd[s]);
		if (c->wr[s])
			event_free(c->wr[s]);
		if (c->fd[s] >= 0) {
			if (s == 0 ? reset_client : reset_tor)
				set_linger_reset(c->fd[s]);
			close(c->fd[s]);
		}
		for (int e = 0; e < 2; e++)
			if (c->pipe[s][e] >= 0)
				close(c->pipe[s][e]);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->st.connections--;
	c->client->conns--;
	client_put(r, c->client);
	free(c);
}

static bool would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/*
 * Move what can be moved in direction d (fd[d] -> pipe[d] -> fd[1 - d])
 * without blocking. Returns false when the connection was closed.
 */
static bool pump(struct conn *c, int d)
{
	struct ts_relay *r = c->relay;
	int src = c->fd[d], dst = c->fd[1 - d];
	for (;;) {
		bool moved = false;
		if (!c->eof[d] && !c->pipe_full[d] && c->inpipe[d] < r->pipe_size) {
			ssize_t n =
			        splice(src, NULL, c->pipe[d][1], NULL, r->pipe_size - c->inpipe[d],
			               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				c->inpipe[d] += (uint32_t)n;
				moved = true;
				if (c->inpipe[d] >= r->pipe_size)
					r->st.held_back++; /* relay-buffer reached */
			} else if (n == 0) {
				c->eof[d] = true;
			} else if (would_block()) {
				int at_mark = 0;
				if (c->inpipe[d]) {
					/* EAGAIN may be the pipe's (its slots are
					 * pages, not bytes): wait for it to drain
					 * instead of for the socket */
					c->pipe_full[d] = true;
					r->st.held_back++;
				} else if (ioctl(src, SIOCATMARK, &at_mark) == 0 && at_mark) {
					/* splice stops at TCP's urgent mark for
					 * good; the byte (inline: SO_OOBINLINE) is
					 * read by hand into the empty pipe */
					uint8_t b;
					if (recv(src, &b, 1, 0) == 1 &&
					    write(c->pipe[d][1], &b, 1) == 1) {
						c->inpipe[d]++;
						moved = true;
					}
				}
			} else {
				conn_close(c,
				           d == 0 ? TS_RELAY_CLOSE_CLIENT_RESET
				                  : TS_RELAY_CLOSE_TOR_RESET,
				           d == 1, d == 0);
				return false;
			}
		}
		if (c->inpipe[d]) {
			ssize_t n = splice(c->pipe[d][0], NULL, dst, NULL, c->inpipe[d],
			                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				c->inpipe[d] -= (uint32_t)n;
				c->pipe_full[d] = false;
				if (d == 0)
					r->st.bytes_to_tor += (uint64_t)n;
				else
					r->st.bytes_to_client += (uint64_t)n;
				moved = true;
			} else if (n < 0 && !would_block()) {
				conn_close(c,
				           d == 0 ? TS_RELAY_CLOSE_TOR_RESET
				                  : TS_RELAY_CLOSE_CLIENT_RESET,
				           d == 0, d == 1);
				return false;
			}
		}
		if (c->eof[d] && !c->inpipe[d] && !c->shut[1 - d]) {
			shutdown(dst, SHUT_WR); /* the half-close, passed on */
			c->shut[1 - d] = true;
		}
		if (!moved)
			return true;
		c->last = ts_monotonic_usec();
	}
}

static void want(struct event *ev, bool on)
{
	if (on && !event_pending(ev, EV_READ | EV_WRITE, NULL))
		event_add(ev, NULL);
	else if (!on && event_pending(ev, EV_READ | EV_WRITE, NULL))
		event_del(ev);
}

static void conn_update(struct conn *c)
{
	struct ts_relay *r = c->relay;
	if (c->eof[0] && c->eof[1] && !c->inpipe[0] && !c->inpipe[1]) {
		conn_close(c, TS_RELAY_CLOSE_DONE, false, false);
		return;
	}
	for (int s = 0; s < 2; s++) {
		want(c->rd[s], !c->eof[s] && !c->pipe_full[s] && c->inpipe[s] < r->pipe_size);
		want(c->wr[s], c->inpipe[1 - s] > 0);
	}
}

static void on_conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int s = fd == c->fd[0] ? 0 : 1;
	/* readable: bytes from side s; writable: room for bytes to side s */
	int d = (what & EV_READ) ? s : 1 - s;
	if (!pump(c, d))
		return;
	if (!pump(c, 1 - d))
		return;
	conn_update(c);
}

/* Both sockets are there: start moving bytes. */
static void conn_start(struct conn *c)
{
	struct ts_relay *r = c->relay;
	int one = 1;
	for (int s = 0; s < 2; s++) {
		/* the relay must not add Nagle's delay to what the ends send */
		setsockopt(c->fd[s], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* urgent data stays in the stream (it goes on as a plain byte) */
		setsockopt(c->fd[s], SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
		c->rd[s] = event_new(r->base, c->fd[s], EV_READ | EV_PERSIST, on_conn_io, c);
		c->wr[s] = event_new(r->base, c->fd[s], EV_WRITE | EV_PERSIST, on_conn_io, c);
		if (!c->rd[s] || !c->wr[s]) {
			conn_close(c, TS_RELAY_CLOSE_LOCAL_ERROR, true, true);
			return;
		}
	}
	c->last = ts_monotonic_usec();
	conn_update(c);
}

static struct conn *conn_new(struct ts_relay *r, struct client *cl, int cfd, const struct tuple *t)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->relay = r;
	c->client = cl;
	c->t = *t;
	c->fd[0] = cfd;
	c->fd[1] = -1;
	for (int d = 0; d < 2; d++) {
		c->pipe[d][0] = c->pipe[d][1] = -1;
		if (pipe2(c->pipe[d], O_NONBLOCK | O_CLOEXEC) < 0) {
			for (int e = 0; e < d; e++) {
				close(c->pipe[e][0]);
				close(c->pipe[e][1]);
			}
			free(c);
			return NULL;
		}
		fcntl(c->pipe[d][1], F_SETPIPE_SZ, (int)r->pipe_size);
	}
	cl->conns++;
	r->st.connections++;
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	return c;
}

static enum ts_relay_close close_reason(enum ts_socks_outcome o)
{
	switch (o) {
	case TS_SOCKS_REFUSED:
		return TS_RELAY_CLOSE_TOR_REFUSED;
	case TS_SOCKS_TIMEOUT:
		return TS_RELAY_CLOSE_TOR_TIMEOUT;
	case TS_SOCKS_NO_TOR:
		return TS_RELAY_CLOSE_NO_TOR;
	default:
		return TS_RELAY_CLOSE_SOCKS_FAILED;
	}
}

static void on_conn_answer(void *ctx, enum ts_socks_outcome o, uint8_t reply, int fd, int instance)
{
	(void)reply;
	(void)instance;
	struct conn *c = ctx;
	c->socks = NULL;
	if (o != TS_SOCKS_OPEN) {
		if (o == TS_SOCKS_NO_TOR)
			log_no_tor(c->relay, ts_monotonic_usec());
		conn_close(c, close_reason(o), true, false);
		return;
	}
	c->relay->st.opened_after++;
	c->fd[1] = fd;
	conn_start(c);
}

static bool sockaddr_to(const struct sockaddr_storage *ss, uint8_t *family, uint8_t addr[16],
                        uint16_t *port)
{
	memset(addr, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		*family = 4;
		memcpy(addr, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		*family = 6;
		memcpy(addr, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
		return true;
	}
	return false;
}

static void reset_and_close(int fd)
{
	set_linger_reset(fd);
	close(fd);
}

static void accepted(struct ts_relay *r, int cfd, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	struct tuple t;
	memset(&t, 0, sizeof(t));
	uint8_t lfam;
	if (getsockname(cfd, (struct sockaddr *)&local, &ll) < 0 ||
	    !sockaddr_to(peer, &t.family, t.caddr, &t.cport) ||
	    !sockaddr_to(&local, &lfam, t.daddr, &t.dport) || lfam != t.family) {
		r->st.accept_errors++;
		reset_and_close(cfd);
		return;
	}
	r->st.accepted++;
	struct pending *p = *pending_slot(r, &t);
	if (p && p->state == P_OPEN) {
		struct conn *c = conn_new(r, p->client, cfd, &t);
		if (!c) {
			r->st.accept_errors++;
			reset_and_close(cfd);
			pending_release(r, p);
			return;
		}
		c->fd[1] = p->tor_fd;
		p->tor_fd = -1;
		r->st.paired++;
		pending_release(r, p);
		conn_start(c);
		return;
	}
	/* Accepted first: the SYN was not held (a cap, a fragment), or its
	 * stream was given up. Tor is asked now. */
	struct client *cl = client_get(r, t.family, t.caddr);
	if (!cl || over_connections(r, cl)) {
		r->st.over_connections++;
		reset_and_close(cfd);
		client_put(r, cl);
		return;
	}
	struct conn *c = conn_new(r, cl, cfd, &t);
	if (!c) {
		r->st.accept_errors++;
		reset_and_close(cfd);
		client_put(r, cl);
		return;
	}
	int64_t now = ts_monotonic_usec();
	struct ts_socks5_addr to;
	if (!dest_of(r, &t, now, &to)) {
		r->st.syn_unknown_name++;
		conn_close(c, TS_RELAY_CLOSE_TOR_REFUSED, true, false);
		return;
	}
	enum ts_socks_outcome why;
	c->socks = ask_tor(r, cl, cl->has_mac ? cl->mac : NULL, &to, on_conn_answer, c, now, &why);
	if (!c->socks) {
		if (why == TS_SOCKS_NO_TOR)
			log_no_tor(r, now);
		conn_close(c, close_reason(why), true, false);
	}
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct ts_relay *r = arg;
	for (int n = 0; n < 64; n++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			accepted(r, cfd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if ((errno == EMFILE || errno == ENFILE) && r->reserve_fd < 0) {
			/* no reserve to take the connection with: stop listening a
			 * second rather than spin on a backlog that cannot move */
			struct timeval second = {1, 0};
			for (int i = 0; i < 2; i++)
				if (r->listen_ev[i])
					event_del(r->listen_ev[i]);
			if (r->listen_pause)
				event_add(r->listen_pause, &second);
			r->st.accept_errors++;
			return;
		}
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: the reserved one takes the
			 * connection off the backlog so it can be reset, rather
			 * than left to spin the loop and time out. */
			close(r->reserve_fd);
			pl = sizeof(peer);
			cfd = accept(fd, (struct sockaddr *)&peer, &pl);
			if (cfd >= 0) {
				/* the Tor stream opened for it goes too, at once,
				 * not at the claim timeout: descriptors are short */
				struct sockaddr_storage local;
				socklen_t ll = sizeof(local);
				struct tuple t;
				uint8_t lfam;
				memset(&t, 0, sizeof(t));
				if (getsockname(cfd, (struct sockaddr *)&local, &ll) == 0 &&
				    sockaddr_to(&peer, &t.family, t.caddr, &t.cport) &&
				    sockaddr_to(&local, &lfam, t.daddr, &t.dport) &&
				    lfam == t.family) {
					struct pending *p = *pending_slot(r, &t);
					if (p && p->state == P_OPEN)
						pending_release(r, p);
				}
				reset_and_close(cfd);
			}
			r->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			/* accept takes a descriptor before it looks at the
			 * backlog: EMFILE comes with an empty backlog too */
			if (cfd < 0)
				return;
			r->st.emfile++;
			continue;
		}
		if (!would_block())
			r->st.accept_errors++;
		return;
	}
}

/* ---- the whole ---- */

static int listener(int family, uint16_t port, int backlog, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = ts_sockaddr_any(family, port, &ss);
	enum ts_transparent_step failed;
	int v = family == AF_INET6 ? 6 : 4;
	int fd = ts_transparent_socket(&ss, sl, SOCK_STREAM | SOCK_NONBLOCK, 0, backlog, &failed);
	if (fd >= 0)
		return fd;
	if (failed == TS_TRANSPARENT_SOCKET)
		snprintf(err, errlen, "relay: cannot make an IPv%d socket: %s", v, strerror(errno));
	else if (failed == TS_TRANSPARENT_OPTION)
		snprintf(err, errlen,
		         "relay: cannot make the IPv%d listener transparent: %s (needs "
		         "CAP_NET_ADMIN: run as root; --user drops privileges after)",
		         v, strerror(errno));
	else
		snprintf(err, errlen,
		         "relay: cannot listen on port %u (IPv%d): %s (divert-port; is another "
		         "transparent proxy on it? then `set relay off`)",
		         port, v, strerror(errno));
	return -1;
}

/* Room for every connection's six descriptors (two sockets, two pipes). */
static void raise_fd_limit(const struct ts_relay_config *cfg)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)cfg->connections * 6 + cfg->pending_syns + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	struct rlimit want = {need, rl.rlim_max > need ? rl.rlim_max : need};
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	want.rlim_max = rl.rlim_max;
	want.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &want);
	ts_log(LOG_WARNING,
	       "relay: the descriptor limit is %llu, relay-connections %u needs %llu; past it "
	       "connections are reset (emfile)",
	       (unsigned long long)want.rlim_cur, cfg->connections, (unsigned long long)need);
}

struct ts_relay *ts_relay_open(const struct ts_relay_config *cfg, uint16_t port,
                               struct ts_tor_pool *pool, struct ts_name_map *names, char *err,
                               size_t errlen)
{
	struct ts_relay *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "relay: out of memory");
		return NULL;
	}
	r->cfg = *cfg;
	r->self_check = getenv("TORSIEVE_RELAY_CHECK") != NULL;
	r->listen_fd[0] = r->listen_fd[1] = -1;
	r->reserve_fd = -1;
	r->pool = pool;
	r->names = names;
	uint32_t nclients = cfg->pending_syns + cfg->connections;
	r->pending_mask = pow2_at_least(cfg->pending_syns * 2) - 1;
	r->client_mask = pow2_at_least(nclients) - 1;
	r->pending = calloc(cfg->pending_syns, sizeof(*r->pending));
	r->pending_hash = calloc((size_t)r->pending_mask + 1, sizeof(*r->pending_hash));
	r->clients = calloc(nclients, sizeof(*r->clients));
	r->client_hash = calloc((size_t)r->client_mask + 1, sizeof(*r->client_hash));
	if (!r->pending || !r->pending_hash || !r->clients || !r->client_hash) {
		snprintf(err, errlen,
		         "relay: out of memory for pending-syns %u, relay-connections %u",
		         cfg->pending_syns, cfg->connections);
		ts_relay_close(r);
		return NULL;
	}
	for (uint32_t i = cfg->pending_syns; i-- > 0;) {
		r->pending[i].tor_fd = -1;
		r->pending[i].next = r->pending_free;
		r->pending_free = &r->pending[i];
	}
	for (uint32_t i = nclients; i-- > 0;) {
		r->clients[i].next = r->clients_free;
		r->clients_free = &r->clients[i];
	}
	int pfd[2];
	r->pipe_size = cfg->buffer;
	if (pipe2(pfd, O_CLOEXEC) == 0) {
		/* what the kernel really gives (a power of two of pages) */
		int got = fcntl(pfd[1], F_SETPIPE_SZ, (int)cfg->buffer);
		if (got <= 0)
			got = fcntl(pfd[1], F_GETPIPE_SZ);
		if (got > 0)
			r->pipe_size = (uint32_t)got;
		close(pfd[0]);
		close(pfd[1]);
	}
	raise_fd_limit(cfg);
	int backlog = (int)(cfg->pending_syns * 2 > 128 ? cfg->pending_syns * 2 : 128);
	r->listen_fd[0] = listener(AF_INET, port, backlog, err, errlen);
	if (r->listen_fd[0] < 0) {
		ts_relay_close(r);
		return NULL;
	}
	char err6[256];
	r->listen_fd[1] = listener(AF_INET6, port, backlog, err6, sizeof(err6));
	if (r->listen_fd[1] < 0 && errno != EAFNOSUPPORT) {
		snprintf(err, errlen, "%s", err6);
		ts_relay_close(r);
		return NULL;
	}
	if (r->listen_fd[1] < 0)
		ts_log(LOG_WARNING, "relay: no IPv6 on this system; IPv4 only");
	r->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return r;
}

static void on_listen_pause(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ts_relay *r = arg;
	if (r->reserve_fd < 0)
		r->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 2; i++)
		if (r->listen_ev[i])
			event_add(r->listen_ev[i], NULL);
}

int ts_relay_attach(struct ts_relay *r, struct event_base *base, const struct ts_relay_hooks *h)
{
	r->base = base;
	r->hooks = *h;
	r->listen_pause = event_new(base, -1, 0, on_listen_pause, r);
	if (!r->listen_pause)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (r->listen_fd[i] < 0)
			continue;
		r->listen_ev[i] =
		        event_new(base, r->listen_fd[i], EV_READ | EV_PERSIST, on_accept, r);
		if (!r->listen_ev[i] || event_add(r->listen_ev[i], NULL) < 0)
			return -1;
	}
	return 0;
}

/*
 * The tables' bookkeeping, checked whole: every client slot on the free
 * list or in the hash exactly once, the held and connection counts equal to
 * what the entries say, answers holding no client. Run every tick when
 * TORSIEVE_RELAY_CHECK is set (the tests set it); a violation is logged
 * and aborts, since a corrupt free list can hang the worker.
 */
static bool relay_consistent(const struct ts_relay *r, char *why, size_t len)
{
	uint32_t cap = r->cfg.pending_syns + r->cfg.connections, free_clients = 0, hashed = 0;
	for (const struct client *c = r->clients_free; c; c = c->next)
		if (++free_clients > cap) {
			snprintf(why, len, "the clients' free list loops");
			return false;
		}
	uint64_t held = 0, conns = 0;
	for (uint32_t b = 0; b <= r->client_mask; b++)
		for (const struct client *c = r->client_hash[b]; c; c = c->next) {
			if (++hashed > cap) {
				snprintf(why, len, "a client hash chain loops");
				return false;
			}
			held += c->held;
			conns += c->conns;
		}
	if (free_clients + hashed != cap || hashed != r->st.clients) {
		snprintf(why, len, "%u clients free and %u in use, of %u (%u counted)",
		         free_clients, hashed, cap, r->st.clients);
		return false;
	}
	uint64_t held_entries = 0, conn_entries = 0;
	for (uint32_t i = 0; i < r->cfg.pending_syns; i++) {
		const struct pending *p = &r->pending[i];
		bool holds = p->state == P_ASKING || p->state == P_OPEN;
		if (holds != (p->client != NULL)) {
			snprintf(why, len, "a pending entry in state %d %s a client", (int)p->state,
			         p->client ? "holds" : "lacks");
			return false;
		}
		held_entries += holds;
	}
	for (const struct conn *c = r->conns; c; c = c->next)
		if (++conn_entries > r->st.connections)
			break;
	if (held != held_entries || held != r->held || conns != conn_entries ||
	    conns != r->st.connections) {
		snprintf(why, len,
		         "held %llu by clients, %llu by entries, %u counted; connections %llu by "
		         "clients, %llu listed, %u counted",
		         (unsigned long long)held, (unsigned long long)held_entries, r->held,
		         (unsigned long long)conns, (unsigned long long)conn_entries,
		         r->st.connections);
		return false;
	}
	return true;
}

void ts_relay_tick(struct ts_relay *r, int64_t now)
{
	if (r->self_check) {
		char why[256];
		if (!relay_consistent(r, why, sizeof(why))) {
			ts_log(LOG_ERR, "relay: inconsistent tables: %s", why);
			abort();
		}
	}
	for (uint32_t i = 0; i < r->cfg.pending_syns; i++) {
		struct pending *p = &r->pending[i];
		if (p->state == P_OPEN && now >= p->until) {
			r->st.closed[TS_RELAY_CLOSE_UNCLAIMED]++;
			pending_release(r, p);
		}
	}
	while (oldest_answer(r) && now >= oldest_answer(r)->until)
		pending_release(r, oldest_answer(r));
	int64_t idle = (int64_t)r->cfg.idle_timeout * 1000000;
	for (struct conn *c = r->conns, *next; c; c = next) {
		next = c->next;
		if (!c->socks && now - c->last >= idle)
			conn_close(c, TS_RELAY_CLOSE_IDLE, true, true);
	}
}

void ts_relay_get_stats(const struct ts_relay *r, struct ts_relay_stats *out)
{
	*out = r->st;
	/* pending: SYNs still waiting (asking, or open and not yet claimed);
	 * answers kept for copies are not */
	out->pending = 0;
	for (uint32_t i = 0; i < r->cfg.pending_syns; i++)
		out->pending += r->pending[i].state == P_ASKING || r->pending[i].state == P_OPEN;
}

const struct ts_tor_pool *ts_relay_tor_pool(const struct ts_relay *r)
{
	return r->pool;
}

void ts_relay_shutdown(struct ts_relay *r)
{
	if (!r)
		return;
	while (r->conns)
		conn_close(r->conns, TS_RELAY_CLOSE_SHUTDOWN, true, true);
	for (uint32_t i = 0; r->pending && i < r->cfg.pending_syns; i++)
		if (r->pending[i].state != P_FREE)
			pending_release(r, &r->pending[i]);
	for (int i = 0; i < 2; i++)
		if (r->listen_ev[i])
			event_del(r->listen_ev[i]);
}

void ts_relay_close(struct ts_relay *r)
{
	if (!r)
		return;
	ts_relay_shutdown(r);
	for (int i = 0; i < 2; i++) {
		if (r->listen_ev[i])
			event_free(r->listen_ev[i]);
		if (r->listen_fd[i] >= 0)
			close(r->listen_fd[i]);
	}
	if (r->listen_pause)
		event_free(r->listen_pause);
	if (r->reserve_fd >= 0)
		close(r->reserve_fd);
	free(r->pending);
	free(r->pending_hash);
	free(r->clients);
	free(r->client_hash);
	free(r);
}
