/*
 * The relay benchmark's client (test/bench/bench_relay.sh): TCP connections
 * from a client namespace, through the relay under test, to socks_sink.c's
 * ports. One thread, one epoll loop; it must not be the bottleneck.
 *
 * usage: relay_load bulk DST PORT CONNS SECONDS
 *        relay_load rate DST PORT SECONDS PARALLEL [ADDRS]
 *        relay_load hold DST PORT N [ADDRS]
 *
 *   bulk  CONNS connections at once, each asking the sink's source port for
 *         an endless download ("0\n") and reading it (recv with MSG_TRUNC:
 *         the kernel drops the bytes, nothing is copied); after SECONDS each
 *         half-closes, and reads what is still coming until the sink's FIN;
 *         prints "relay_load bulk: conns N ok N bytes N seconds S errors N"
 *         (seconds: from the first connect to the last FIN; ok: connections
 *         that ended with the FIN)
 *   rate  short connections for SECONDS, PARALLEL of them at any time: each
 *         connects, sends 16 bytes, reads the 16 echoed, closes; prints
 *         "relay_load rate: ok N failed N seconds S" (seconds: from the first
 *         connect to the last one's end) and the failures by cause
 *   hold  N connections (64 opening at a time), each exchanging 16 bytes as
 *         above, then held open and idle; prints "relay_load hold: open N
 *         failed N" once all are up, waits for SIGTERM or SIGINT, prints
 *         "relay_load hold: N still open, N closed by the other side" and
 *         closes them
 *
 * Each mode ends with "relay_load cpu: S" (seconds of CPU, user and
 * system, of this process).
 *
 * DST is an IPv4 address; with ADDRS, connections go to ADDRS consecutive
 * addresses from DST in turn (so that no 4-tuple is reused while an earlier
 * one is in TIME_WAIT).
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_clock.h"

#define PING         16
#define CONN_TIMEOUT 10e9 /* ns a short connection may take */
#define HOLD_OPENING 64

enum state {
	CONNECTING,
	WAITING,
	HELD
};

struct conn {
	int fd;
	enum state state;
	uint32_t got;
	uint64_t bytes;
	double started;
	struct conn *next; /* rate: the in-flight list, oldest first */
};

static volatile sig_atomic_t stop_requested;
static int ep;
static struct sockaddr_in base_dst;
static uint32_t n_addrs = 1, next_addr;
static uint64_t fail_connect, fail_reset, fail_eof, fail_timeout, fail_socket;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static const char ping[PING] = "relay-load-ping";

/* A non-blocking connect to the next destination; NULL when no socket. */
static struct conn *conn_start(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail_socket++;
		free(c);
		return NULL;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in to = base_dst;
	to.sin_addr.s_addr = htonl(ntohl(base_dst.sin_addr.s_addr) + next_addr);
	next_addr = (next_addr + 1) % n_addrs;
	c->started = now_ns();
	if (connect(c->fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) {
		fail_socket++;
		close(c->fd);
		free(c);
		return NULL;
	}
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return c;
}

static void conn_end(struct conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	free(c);
}

/* The connect finished: true when it worked. */
static bool connected(struct conn *c)
{
	int err = 0;
	socklen_t el = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		fail_connect++;
		return false;
	}
	return true;
}

static void want_in(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Read the echoed ping: 1 complete, 0 not yet, -1 failed. */
static int read_ping(struct conn *c)
{
	char buf[PING];
	ssize_t n = recv(c->fd, buf, sizeof(buf) - c->got, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		fail_reset++;
		return -1;
	}
	if (n == 0) {
		fail_eof++;
		return -1;
	}
	c->got += (uint32_t)n;
	return c->got == PING ? 1 : 0;
}

static void print_failures(const char *mode)
{
	printf("relay_load %s: failures: connect %" PRIu64 ", reset %" PRIu64 ", early eof %" PRIu64
	       ", timeout %" PRIu64 ", socket %" PRIu64 "\n",
	       mode, fail_connect, fail_reset, fail_eof, fail_timeout, fail_socket);
}

static int run_bulk(uint32_t conns, double seconds)
{
	static const char line[] = "0\n";
	const size_t ll = sizeof(line) - 1;
	uint32_t live = 0, ok = 0, errors = 0;
	uint64_t total = 0;
	double t0 = now_ns(), deadline = t0 + seconds * 1e9;
	bool ending = false;
	struct conn **all = calloc(conns, sizeof(*all));
	if (!all)
		return 1;
	for (uint32_t i = 0; i < conns; i++) {
		all[i] = conn_start();
		if (all[i])
			live++;
		else
			errors++;
	}
	struct epoll_event evs[64];
	while (live && !stop_requested) {
		if (!ending && now_ns() >= deadline) {
			/* the end: each half-closes, the sink answers with its FIN */
			for (uint32_t i = 0; i < conns; i++)
				if (all[i])
					shutdown(all[i]->fd, SHUT_WR);
			ending = true;
		}
		int n = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			bool done = false, failed = false;
			if (c->state == CONNECTING) {
				if (!connected(c) ||
				    send(c->fd, line, ll, MSG_NOSIGNAL) != (ssize_t)ll) {
					failed = true;
				} else {
					c->state = WAITING;
					want_in(c);
				}
			} else {
				for (;;) {
					/* MSG_TRUNC copies nothing, but the kernel
					 * still checks that the whole buffer is
					 * ours (EFAULT otherwise) */
					static char sink[1 << 20];
					ssize_t r = recv(c->fd, sink, sizeof(sink), MSG_TRUNC);
					if (r > 0) {
						c->bytes += (uint64_t)r;
						continue;
					}
					if (r == 0)
						done = true;
					else if (errno != EAGAIN && errno != EINTR)
						failed = true;
					break;
				}
			}
			if (done || failed) {
				total += c->bytes;
				if (done && ending)
					ok++;
				else
					errors++;
				if (done && !ending)
					fail_eof++;
				else if (failed && c->state == WAITING)
					fail_reset++;
				live--;
				for (uint32_t k = 0; k < conns; k++)
					if (all[k] == c)
						all[k] = NULL;
				conn_end(c);
			}
		}
	}
	double secs = (now_ns() - t0) / 1e9;
	printf("relay_load bulk: conns %u ok %u bytes %" PRIu64 " seconds %.3f errors %u\n", conns,
	       ok, total, secs, errors);
	if (errors)
		print_failures("bulk");
	free(all);
	return ok == conns ? 0 : 1;
}

static int run_rate(double seconds, uint32_t parallel)
{
	struct conn *head = NULL, **tail = &head;
	uint32_t live = 0;
	uint64_t ok = 0, failed = 0;
	double t0 = now_ns(), deadline = t0 + seconds * 1e9, last_end = t0;
	struct epoll_event evs[256];
	for (;;) {
		double now = now_ns();
		bool starting = now < deadline && !stop_requested;
		while (starting && live < parallel) {
			struct conn *c = conn_start();
			if (!c) {
				failed++;
				break;
			}
			*tail = c;
			tail = &c->next;
			live++;
		}
		if (!live)
			break;
		/* the oldest connections first: a timed-out one is failed */
		while (head && now - head->started > CONN_TIMEOUT) {
			struct conn *c = head;
			head = c->next;
			if (!head)
				tail = &head;
			fail_timeout++;
			failed++;
			live--;
			conn_end(c);
		}
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = 0;
			if (c->state == CONNECTING) {
				if (!connected(c) ||
				    send(c->fd, ping, PING, MSG_NOSIGNAL) != (ssize_t)PING) {
					r = -1;
				} else {
					c->state = WAITING;
					want_in(c);
				}
			} else {
				r = read_ping(c);
			}
			if (!r)
				continue;
			if (r > 0)
				ok++;
			else
				failed++;
			/* off the in-flight list (a short walk: the oldest end first) */
			struct conn **pp = &head;
			while (*pp != c)
				pp = &(*pp)->next;
			*pp = c->next;
			if (tail == &c->next)
				tail = pp;
			live--;
			conn_end(c);
			last_end = now_ns();
		}
	}
	printf("relay_load rate: ok %" PRIu64 " failed %" PRIu64 " seconds %.3f\n", ok, failed,
	       (last_end - t0) / 1e9);
	print_failures("rate");
	return 0;
}

static int run_hold(uint32_t want)
{
	struct conn **held = calloc(want, sizeof(*held));
	if (!held)
		return 1;
	uint32_t started = 0, opening = 0, open = 0, failed = 0, lost = 0;
	struct epoll_event evs[256];
	while ((started < want || opening) && !stop_requested) {
		while (started < want && opening < HOLD_OPENING) {
			started++;
			if (conn_start())
				opening++;
			else
				failed++;
		}
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = 0;
			if (c->state == CONNECTING) {
				if (!connected(c) ||
				    send(c->fd, ping, PING, MSG_NOSIGNAL) != (ssize_t)PING) {
					r = -1;
				} else {
					c->state = WAITING;
					want_in(c);
				}
			} else if (c->state == WAITING) {
				r = read_ping(c);
			} else {
				continue;
			}
			if (!r)
				continue;
			opening--;
			if (r < 0) {
				failed++;
				conn_end(c);
				continue;
			}
			c->state = HELD;
			held[open++] = c;
		}
	}
	printf("relay_load hold: open %u failed %u\n", open, failed);
	fflush(stdout);
	while (!stop_requested) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->state != HELD)
				continue;
			/* the other side closed or reset a held connection */
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			c->state = WAITING;
			lost++;
		}
	}
	printf("relay_load hold: %u still open, %u closed by the other side\n", open - lost, lost);
	for (uint32_t i = 0; i < open; i++)
		conn_end(held[i]);
	free(held);
	return 0;
}

static int with_cpu(int rc)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("relay_load cpu: %.3f\n",
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return rc;
}

int main(int argc, char **argv)
{
	static const char usage[] = "usage: relay_load bulk DST PORT CONNS SECONDS\n"
	                            "       relay_load rate DST PORT SECONDS PARALLEL [ADDRS]\n"
	                            "       relay_load hold DST PORT N [ADDRS]\n";
	if (argc < 5) {
		fputs(usage, stderr);
		return 2;
	}
	const char *mode = argv[1];
	int port = atoi(argv[3]);
	base_dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[2], &base_dst.sin_addr) != 1 || port < 1 || port > 65535) {
		fputs(usage, stderr);
		return 2;
	}
	base_dst.sin_port = htons((uint16_t)port);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("relay_load: epoll_create1");
		return 1;
	}
	if (!strcmp(mode, "bulk") && argc == 6) {
		long conns = atol(argv[4]);
		double seconds = atof(argv[5]);
		if (conns < 1 || conns > 100000 || seconds <= 0) {
			fputs(usage, stderr);
			return 2;
		}
		return with_cpu(run_bulk((uint32_t)conns, seconds));
	}
	if (!strcmp(mode, "rate") && (argc == 6 || argc == 7)) {
		double seconds = atof(argv[4]);
		long parallel = atol(argv[5]);
		long addrs = argc == 7 ? atol(argv[6]) : 1;
		if (seconds <= 0 || parallel < 1 || parallel > 100000 || addrs < 1 ||
		    addrs > 65536) {
			fputs(usage, stderr);
			return 2;
		}
		n_addrs = (uint32_t)addrs;
		return with_cpu(run_rate(seconds, (uint32_t)parallel));
	}
	if (!strcmp(mode, "hold") && (argc == 5 || argc == 6)) {
		long want = atol(argv[4]);
		long addrs = argc == 6 ? atol(argv[5]) : 1;
		if (want < 1 || want > 1000000 || addrs < 1 || addrs > 65536) {
			fputs(usage, stderr);
			return 2;
		}
		n_addrs = (uint32_t)addrs;
		return run_hold((uint32_t)want);
	}
	fputs(usage, stderr);
	return 2;
}
