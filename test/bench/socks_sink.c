/*
 * The relay benchmark's SOCKS5 server (test/bench/bench_relay.sh): both
 * relays under test (torsieve's and redsocks) send their CONNECTs here. It
 * must never be the bottleneck, so it is one thread, one epoll loop, no copy
 * it can avoid and no logging per connection.
 *
 * usage: socks_sink ADDR:PORT
 *
 * SOCKS5 as Tor speaks it: the greeting may offer no authentication (0x00)
 * and username/password (0x02); 0x02 is chosen when offered (Tor does so, for
 * IsolateSOCKSAuth) and any username and password is accepted. CONNECT (to an
 * IPv4 or IPv6 address or a name) succeeds at once, without connecting
 * anywhere. What follows depends on the destination port the CONNECT named:
 *
 *   9001  source   the client sends a decimal byte count and a newline; the
 *                  sink sends that many bytes (large writes from a static
 *                  buffer), then its FIN, and closes at the client's EOF;
 *                  a count of 0 sends until the client's EOF, then the FIN
 *   9002  discard  reads and counts everything; closes at the client's EOF
 *   other echo     sends back what it reads; closes at the client's EOF
 *
 * SIGTERM or SIGINT ends it; it then prints "socks_sink: N connections,
 * N errors, N bytes sent, N bytes received, N max open". Errors include
 * resets and failed sends; the first 20 are logged on standard error with
 * what happened and where.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT_SOURCE  9001
#define PORT_DISCARD 9002
#define IN_CAP       1024      /* the SOCKS exchange, then the source's count line */
#define ECHO_CAP     16384     /* echoed bytes waiting to be sent */
#define CHUNK        (1 << 20) /* the source's static buffer, and the discard's reads */

enum step {
	GREETING,
	AUTH,
	REQUEST,
	RELAY
};
enum mode {
	SOURCE,
	DISCARD,
	ECHO
};

struct conn {
	int fd;
	enum step step;
	enum mode mode;
	bool want_out;  /* EPOLLOUT is asked for */
	bool got_count; /* SOURCE: the count line is in */
	bool eof;       /* the client sent its FIN */
	bool fin_sent;  /* SOURCE: ours is sent */
	bool endless;   /* SOURCE: a count of 0, until the client's EOF */
	uint64_t to_send;
	uint32_t in_len;
	uint32_t out_off, out_len; /* echo, or the SOCKS replies */
	uint8_t in[IN_CAP];
	uint8_t out[ECHO_CAP];
};

static volatile sig_atomic_t stop_requested;
static uint8_t chunk[CHUNK];
static int ep;
static uint64_t n_conns, n_errors, bytes_sent, bytes_received, n_open, max_open;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Close a connection; why: NULL when it ended well, or what went wrong (the
 * first few are logged, with errno and where the exchange was). */
static void conn_free(struct conn *c, const char *why)
{
	if (why && ++n_errors <= 20)
		fprintf(stderr, "socks_sink: error: %s (%s) at step %d, mode %d, %u bytes in\n",
		        why, strerror(errno), (int)c->step, (int)c->mode, c->in_len);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	n_open--;
}

static void set_events(struct conn *c)
{
	bool want = c->out_off < c->out_len ||
	            (c->mode == SOURCE && c->step == RELAY && c->got_count && !c->fin_sent);
	/* Reading stops while echoed bytes wait: the client's own sending is
	 * what then slows down. */
	bool rd = !c->eof && !(c->mode == ECHO && c->step == RELAY && c->out_len);
	struct epoll_event ev = {.events = (rd ? EPOLLIN : 0) | (want ? EPOLLOUT : 0),
	                         .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want;
}

static void reply(struct conn *c, const uint8_t *b, uint32_t n)
{
	memcpy(c->out + c->out_len, b, n);
	c->out_len += n;
}

/* Parse what the SOCKS exchange has so far; false on a protocol error. */
static bool socks_step(struct conn *c)
{
	for (;;) {
		uint32_t used = 0;
		if (c->step == GREETING) {
			if (c->in_len < 2)
				return true;
			if (c->in[0] != 5)
				return false;
			uint32_t n = c->in[1];
			if (c->in_len < 2 + n)
				return true;
			uint8_t method = 0xff;
			for (uint32_t i = 0; i < n; i++) {
				if (c->in[2 + i] == 0x02)
					method = 0x02;
				else if (c->in[2 + i] == 0x00 && method == 0xff)
					method = 0x00;
			}
			const uint8_t r[2] = {5, method};
			reply(c, r, 2);
			if (method == 0xff)
				return false;
			used = 2 + n;
			c->step = method == 0x02 ? AUTH : REQUEST;
		} else if (c->step == AUTH) {
			if (c->in_len < 2)
				return true;
			uint32_t ulen = c->in[1];
			if (c->in_len < 3 + ulen)
				return true;
			uint32_t plen = c->in[2 + ulen];
			if (c->in_len < 3 + ulen + plen)
				return true;
			const uint8_t r[2] = {1, 0};
			reply(c, r, 2);
			used = 3 + ulen + plen;
			c->step = REQUEST;
		} else if (c->step == REQUEST) {
			if (c->in_len < 5)
				return true;
			if (c->in[0] != 5 || c->in[1] != 1)
				return false;
			uint32_t alen;
			switch (c->in[3]) {
			case 1:
				alen = 4;
				break;
			case 4:
				alen = 16;
				break;
			case 3:
				alen = 1u + c->in[4];
				break;
			default:
				return false;
			}
			if (c->in_len < 4 + alen + 2)
				return true;
			uint16_t port = (uint16_t)(c->in[4 + alen] << 8 | c->in[4 + alen + 1]);
			const uint8_t r[10] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
			reply(c, r, sizeof(r));
			used = 4 + alen + 2;
			c->step = RELAY;
			c->mode = port == PORT_SOURCE    ? SOURCE
			          : port == PORT_DISCARD ? DISCARD
			                                 : ECHO;
		} else {
			return true;
		}
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
}

/* Bytes of the relayed stream that came with the SOCKS exchange or after. */
static bool take_data(struct conn *c, const uint8_t *b, uint32_t n)
{
	bytes_received += n;
	if (c->mode == DISCARD)
		return true;
	if (c->mode == ECHO) {
		if (n > ECHO_CAP - c->out_len)
			return false; /* never: reading stops while bytes wait */
		reply(c, b, n);
		return true;
	}
	if (c->got_count)
		return true; /* the source ignores what follows its count */
	if (n > IN_CAP - 1 - c->in_len)
		return false;
	memcpy(c->in + c->in_len, b, n);
	c->in_len += n;
	c->in[c->in_len] = 0;
	char *nl = memchr(c->in, '\n', c->in_len);
	if (nl) {
		c->to_send = strtoull((char *)c->in, NULL, 10);
		c->endless = !c->to_send;
		c->got_count = true;
		c->in_len = 0;
	}
	return true;
}

/* Send what waits; false when the connection is gone. */
static bool flush_out(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			conn_free(c, "send");
			return false;
		}
		c->out_off += (uint32_t)n;
	}
	c->out_off = c->out_len = 0;
	if (c->mode != SOURCE || c->step != RELAY || !c->got_count || c->fin_sent)
		return true;
	while (c->endless ? !c->eof : c->to_send > 0) {
		size_t want = c->endless || c->to_send > CHUNK ? CHUNK : (size_t)c->to_send;
		ssize_t n = send(c->fd, chunk, want, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			conn_free(c, "send (source)");
			return false;
		}
		if (!c->endless)
			c->to_send -= (uint64_t)n;
		bytes_sent += (uint64_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	c->fin_sent = true;
	return true;
}

static void on_readable(struct conn *c)
{
	static uint8_t buf[CHUNK];
	for (;;) {
		size_t room = sizeof(buf);
		if (c->step != RELAY)
			room = IN_CAP - c->in_len;
		else if (c->mode == ECHO)
			room = ECHO_CAP - c->out_len;
		if (!room) {
			if (c->step != RELAY) {
				errno = 0;
				conn_free(c, "the SOCKS exchange is too long");
				return;
			}
			break;
		}
		uint8_t *to = c->step != RELAY ? c->in + c->in_len : buf;
		int flags = c->step == RELAY && c->mode == DISCARD ? MSG_TRUNC : 0;
		ssize_t n = recv(c->fd, to, room, flags);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_free(c, "recv");
			return;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		if (c->step != RELAY) {
			c->in_len += (uint32_t)n;
			if (!socks_step(c)) {
				errno = 0;
				if (flush_out(c)) /* the refusal, if any */
					conn_free(c, "not a SOCKS5 exchange we answer");
				return;
			}
			if (c->step == RELAY && c->in_len) {
				uint8_t rest[IN_CAP];
				uint32_t len = c->in_len;
				memcpy(rest, c->in, len);
				c->in_len = 0;
				if (!take_data(c, rest, len)) {
					errno = 0;
					conn_free(c, "the count line is too long");
					return;
				}
			}
		} else if (!take_data(c, to, (uint32_t)n)) {
			errno = 0;
			conn_free(c, "the count line is too long");
			return;
		}
		if ((size_t)n < room)
			break;
	}
	if (!flush_out(c))
		return;
	bool done = c->eof && c->out_off == c->out_len &&
	            (c->mode != SOURCE || !c->got_count || c->fin_sent);
	if (done) {
		errno = 0;
		conn_free(c, c->step != RELAY ? "closed during the SOCKS exchange" : NULL);
		return;
	}
	set_events(c);
}

static void on_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN; EMFILE and the like: the next wake-up tries again */
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		n_conns++;
		if (++n_open > max_open)
			max_open = n_open;
	}
}

static bool parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	int port = atoi(colon + 1);
	if (port < 1 || port > 65535)
		return false;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return true;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return false;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	*len = sizeof(*s4);
	return true;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (argc != 2 || !parse_listen(argv[1], &ss, &sl)) {
		fputs("usage: socks_sink ADDR:PORT (127.0.0.1:9050, [::1]:9050)\n", stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 131 + 7);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 4096) < 0) {
		fprintf(stderr, "socks_sink: cannot listen on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		fprintf(stderr, "socks_sink: epoll: %s\n", strerror(errno));
		return 1;
	}
	printf("socks_sink: listening on %s\n", argv[1]);
	fflush(stdout);

	struct epoll_event evs[256];
	while (!stop_requested) {
		int n = epoll_wait(ep, evs, 256, 1000);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "socks_sink: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				on_accept(lfd);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				on_readable(c); /* also sends, and may free c */
				continue;
			}
			if (!flush_out(c))
				continue;
			if (c->eof && c->out_off == c->out_len &&
			    (c->mode != SOURCE || c->fin_sent))
				conn_free(c, NULL);
			else
				set_events(c);
		}
	}
	printf("socks_sink: %" PRIu64 " connections, %" PRIu64 " errors, %" PRIu64
	       " bytes sent, %" PRIu64 " bytes received, %" PRIu64 " max open\n",
	       n_conns, n_errors, bytes_sent, bytes_received, max_open);
	return 0;
}
