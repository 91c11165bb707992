/* A SOCKS5 CONNECT through Tor on the event loop (socks_client.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "torsieve/clock.h"
#include "torsieve/socks_client.h"

/* A live Tor greets back at once; one that does not within this long is
 * treated like one that refused, and the next instance is tried. */
#define GREETING_USEC 3000000

enum step {
	CONNECTING,
	METHOD,
	AUTH,
	REPLY
};

struct ts_socks_client {
	struct event_base *base;
	struct ts_tor_pool *pool;
	struct event *ev;
	int fd;
	int instance;
	uint32_t tried; /* instances that failed this request */
	enum step step;
	int64_t deadline; /* usec: the CONNECT's answer */
	int64_t greeted_by;
	uint8_t out[TS_SOCKS5_AUTH_MAX];
	size_t out_len, out_off;
	uint8_t in[TS_SOCKS5_REQUEST_MAX];
	size_t in_len;
	char user[TS_SOCKS5_CRED_MAX + 1];
	enum ts_socks5_cmd cmd;
	struct ts_socks5_addr to;
	struct ts_socks5_addr *resolved;
	ts_socks_done_fn done;
	void *ctx;
	size_t keylen;
	uint8_t key[];
};

const char *ts_socks_outcome_name(enum ts_socks_outcome o)
{
	static const char *const names[] = {"open", "refused", "no_tor", "timeout", "broken"};
	return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

static void free_client(struct ts_socks_client *c)
{
	if (c->ev)
		event_free(c->ev);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void finish(struct ts_socks_client *c, enum ts_socks_outcome o, uint8_t reply)
{
	int fd = -1;
	/* a RESOLVE's socket carried an answer, not a stream: closed here */
	if (o == TS_SOCKS_OPEN && c->cmd == TS_SOCKS5_CONNECT) {
		fd = c->fd;
		c->fd = -1;
	}
	ts_socks_done_fn done = c->done;
	void *ctx = c->ctx;
	int instance = c->instance;
	free_client(c);
	done(ctx, o, reply, fd, instance);
}

static void on_event(evutil_socket_t fd, short what, void *arg);

/* Wait for what (EV_READ or EV_WRITE), or the step's deadline. */
static bool wait_for(struct ts_socks_client *c, short what, int64_t now)
{
	if (c->ev)
		event_free(c->ev);
	c->ev = event_new(c->base, c->fd, what, on_event, c);
	int64_t until = c->step == REPLY ? c->deadline : c->greeted_by;
	if (until > c->deadline)
		until = c->deadline;
	int64_t left = until > now ? until - now : 0;
	struct timeval tv = {(time_t)(left / 1000000), (suseconds_t)(left % 1000000)};
	return c->ev && event_add(c->ev, &tv) == 0;
}

/* Open a socket to the next instance for this client. */
static bool try_instance(struct ts_socks_client *c, int64_t now)
{
	for (;;) {
		if (c->fd >= 0) {
			close(c->fd);
			c->fd = -1;
		}
		c->instance = ts_tor_pool_pick(c->pool, c->key, c->keylen, now, c->tried);
		if (c->instance < 0)
			return false;
		struct sockaddr_storage ss;
		socklen_t sl = ts_tor_endpoint_sockaddr(&c->pool->ep[c->instance], &ss);
		c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			return false;
		c->step = CONNECTING;
		c->in_len = 0;
		c->greeted_by = now + GREETING_USEC;
		if (connect(c->fd, (struct sockaddr *)&ss, sl) == 0 || errno == EINPROGRESS)
			return wait_for(c, EV_WRITE, now);
		/* refused at once (a loopback port with nothing on it) */
		ts_tor_pool_failed(c->pool, c->instance, now);
		c->tried |= 1u << c->instance;
	}
}

/* The instance did not behave like a live Tor: the next one, or none. */
static void instance_failed(struct ts_socks_client *c, int64_t now)
{
	ts_tor_pool_failed(c->pool, c->instance, now);
	c->tried |= 1u << c->instance;
	if (!try_instance(c, now))
		finish(c, c->instance < 0 ? TS_SOCKS_NO_TOR : TS_SOCKS_BROKEN, 0);
}

static void send_next(struct ts_socks_client *c, size_t len, enum step step, int64_t now)
{
	c->out_len = len;
	c->out_off = 0;
	c->step = step;
	c->in_len = 0;
	if (!len) {
		finish(c, TS_SOCKS_BROKEN, 0);
		return;
	}
	if (!wait_for(c, EV_WRITE, now))
		finish(c, TS_SOCKS_BROKEN, 0);
}

/* What came so far, parsed by step. */
static void on_input(struct ts_socks_client *c, int64_t now)
{
	size_t used = 0;
	enum ts_socks5_parse r;
	if (c->step == METHOD) {
		uint8_t method;
		r = ts_socks5_parse_method(c->in, c->in_len, &method, &used);
		if (r == TS_SOCKS5_DONE && method == 0x02) {
			send_next(c, ts_socks5_auth(c->user, "torsieve", c->out, sizeof(c->out)),
			          AUTH, now);
			return;
		}
		if (r == TS_SOCKS5_DONE && method == 0x00) {
			send_next(c, ts_socks5_request(c->cmd, &c->to, c->out, sizeof(c->out)),
			          REPLY, now);
			return;
		}
		if (r == TS_SOCKS5_DONE || r == TS_SOCKS5_BAD) {
			instance_failed(c, now); /* no method we offered, or not SOCKS5 */
			return;
		}
	} else if (c->step == AUTH) {
		bool ok;
		r = ts_socks5_parse_auth(c->in, c->in_len, &ok, &used);
		if (r == TS_SOCKS5_DONE && ok) {
			send_next(c, ts_socks5_request(c->cmd, &c->to, c->out, sizeof(c->out)),
			          REPLY, now);
			return;
		}
		if (r != TS_SOCKS5_NEED_MORE) {
			finish(c, TS_SOCKS_BROKEN, 0); /* the token refused, or not SOCKS5 */
			return;
		}
	} else {
		uint8_t code;
		struct ts_socks5_addr bound;
		r = ts_socks5_parse_reply(c->in, c->in_len, &code, &bound, &used);
		if (r == TS_SOCKS5_DONE) {
			ts_tor_pool_answered(c->pool, c->instance);
			if (c->cmd != TS_SOCKS5_CONNECT && code == TS_SOCKS5_SUCCEEDED &&
			    c->resolved)
				*c->resolved = bound;
			/* Nothing past the reply was read (see on_event), so what
			 * the destination sends at once stays in the socket for
			 * the relay. */
			finish(c, code == TS_SOCKS5_SUCCEEDED ? TS_SOCKS_OPEN : TS_SOCKS_REFUSED,
			       code);
			return;
		}
		if (r == TS_SOCKS5_BAD) {
			finish(c, TS_SOCKS_BROKEN, 0);
			return;
		}
	}
	if (!wait_for(c, EV_READ, now))
		finish(c, TS_SOCKS_BROKEN, 0);
}

/*
 * Read what the step's message can still be, and no more, so nothing that
 * follows it is taken from the socket. Returns true when nothing came and
 * c is as it was; false when c moved on (a step, an end: c may be gone).
 */
static bool read_nothing(struct ts_socks_client *c, int64_t now)
{
	size_t want = 2; /* the method choice, the RFC 1929 status */
	if (c->step == REPLY && c->in_len >= 5) {
		/* the reply's length is known from its fifth byte on */
		size_t full = c->in[3] == 1 || c->in[3] == 0 ? 10
		              : c->in[3] == 4                ? 22
		                                             : 7 + (size_t)c->in[4];
		want = full < sizeof(c->in) ? full : sizeof(c->in);
	} else if (c->step == REPLY) {
		want = 5;
	}
	if (c->in_len >= want) {
		finish(c, TS_SOCKS_BROKEN, 0);
		return false;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, want - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return true;
	if (n <= 0) {
		if (c->step == METHOD)
			instance_failed(c, now); /* closed on our greeting */
		else
			finish(c, TS_SOCKS_BROKEN, 0);
		return false;
	}
	c->in_len += (size_t)n;
	on_input(c, now);
	return false;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct ts_socks_client *c = arg;
	int64_t now = ts_monotonic_usec();
	if ((what & EV_TIMEOUT) && c->step != CONNECTING && c->out_off == c->out_len) {
		/* A busy loop can see the deadline and the answer at once, and
		 * libevent then reports only the timeout: look before deciding. */
		if (!read_nothing(c, now))
			return;
	}
	if (what & EV_TIMEOUT) {
		if (c->step == REPLY || now >= c->deadline)
			finish(c, TS_SOCKS_TIMEOUT, 0);
		else
			instance_failed(c, now); /* no greeting back in time */
		return;
	}
	if (c->step == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			instance_failed(c, now);
			return;
		}
		send_next(c, ts_socks5_greeting(c->out, sizeof(c->out)), METHOD, now);
		return;
	}
	if (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_for(c, EV_WRITE, now))
				finish(c, TS_SOCKS_BROKEN, 0);
			return;
		}
		if (n <= 0) {
			if (c->step == METHOD)
				instance_failed(c, now);
			else
				finish(c, TS_SOCKS_BROKEN, 0);
			return;
		}
		c->out_off += (size_t)n;
		if (!wait_for(c, c->out_off < c->out_len ? EV_WRITE : EV_READ, now))
			finish(c, TS_SOCKS_BROKEN, 0);
		return;
	}
	if (read_nothing(c, now) && !wait_for(c, EV_READ, now))
		finish(c, TS_SOCKS_BROKEN, 0);
}

struct ts_socks_client *ts_socks_connect(struct event_base *base, struct ts_tor_pool *pool,
                                         const struct ts_socks_request *req, int64_t now_usec,
                                         enum ts_socks_outcome *why)
{
	*why = TS_SOCKS_BROKEN;
	if (strlen(req->user) > TS_SOCKS5_CRED_MAX)
		return NULL;
	struct ts_socks_client *c = calloc(1, sizeof(*c) + req->keylen);
	if (!c)
		return NULL;
	c->base = base;
	c->pool = pool;
	c->fd = -1;
	c->deadline = now_usec + (int64_t)req->timeout_sec * 1000000;
	memcpy(c->user, req->user, strlen(req->user) + 1);
	c->to = req->to;
	c->cmd = req->cmd ? req->cmd : TS_SOCKS5_CONNECT;
	c->resolved = req->resolved;
	c->done = req->done;
	c->ctx = req->ctx;
	c->keylen = req->keylen;
	memcpy(c->key, req->key, req->keylen);
	if (!try_instance(c, now_usec)) {
		*why = c->instance < 0 ? TS_SOCKS_NO_TOR : TS_SOCKS_BROKEN;
		free_client(c);
		return NULL;
	}
	return c;
}

void ts_socks_cancel(struct ts_socks_client *c)
{
	if (c)
		free_client(c);
}
