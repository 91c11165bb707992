/*
 * The NFQUEUE benchmark's peer: a bare accept loop. It binds a queue with
 * the same library (libnetfilter_queue's libmnl API) and the same settings
 * as torsieve's NFQUEUE source (engine/source_nfqueue.c): copy-packet
 * 0xffff, the GSO flag and no fail-open, queue length 4096, the same receive
 * size, and the same receive-buffer calls. It accepts every packet and does
 * nothing else: it parses each message's attributes (as any consumer must,
 * to find the packet id) and counts.
 *
 * usage: nfq_bare QUEUE [--batch] [--mark MARK] [--queue-length N] [--buffer BYTES]
 *
 *   default   one verdict message per packet (the library's example loop)
 *   --batch   torsieve's pattern: read until the socket is empty (a blocking
 *             recv, then MSG_DONTWAIT until EAGAIN), then one batch verdict
 *             covering every packet read; the fair peer for torsieve, which
 *             batches consecutive equal verdicts and sends them when the
 *             socket runs dry
 *   --mark    set this mark with each accept (torsieve marks what it accepts;
 *             the same mark sends the packet the same way after the verdict,
 *             and that later path runs in the verdict's sendmsg, on this
 *             process's core)
 *   --buffer  set the socket's receive buffer to BYTES (SO_RCVBUFFORCE). By
 *             default the buffer is asked for as torsieve asks for it, with
 *             mnl_socket_setsockopt(SO_RCVBUFFORCE, then SO_RCVBUF, 8 MiB):
 *             that call sets SOL_NETLINK options, not SOL_SOCKET ones, so the
 *             buffer stays at the kernel's default (and the second call turns
 *             on NETLINK_LISTEN_ALL_NSID, whose number SO_RCVBUF shares).
 *
 * SIGTERM or SIGINT: send what is still owed, print the counts and exit.
 * SIGUSR1: print the counts and go on. The line is
 *   nfq_bare queue Q: accepted N messages M batches B enobufs E send_errors S
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

/* As engine/source_nfqueue.c. */
#define RECV_BUFFER (4 * (0xffff + 4096))
#define COPY_RANGE  0xffff

static volatile sig_atomic_t stop_requested, report_requested;

struct bare {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t queue;
	bool batch, set_mark;
	uint32_t mark;
	uint8_t *buf;
	char msg[8192];
	/* verdicts owed (batch mode): the highest id read, and how many */
	uint32_t owed_last;
	uint64_t owed;
	uint64_t accepted, messages, batches, enobufs, send_errors;
	int rcvbuf; /* as the kernel has it */
};

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		report_requested = 1;
	else
		stop_requested = 1;
}

static void report(const struct bare *b)
{
	printf("nfq_bare queue %u: accepted %" PRIu64 " messages %" PRIu64 " batches %" PRIu64
	       " enobufs %" PRIu64 " send_errors %" PRIu64 "\n",
	       b->queue, b->accepted, b->messages, b->batches, b->enobufs, b->send_errors);
	fflush(stdout);
}

static void verdict(struct bare *b, int type, uint32_t id, uint64_t packets)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put(b->msg, type, b->queue);
	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	if (b->set_mark)
		nfq_nlmsg_verdict_put_mark(nlh, b->mark);
	if (mnl_socket_sendto(b->nl, nlh, nlh->nlmsg_len) < 0) {
		b->send_errors++;
		return;
	}
	b->messages++;
	b->accepted += packets;
	if (type == NFQNL_MSG_VERDICT_BATCH)
		b->batches++;
}

static void flush_owed(struct bare *b)
{
	if (!b->owed)
		return;
	if (b->owed == 1)
		verdict(b, NFQNL_MSG_VERDICT, b->owed_last, 1);
	else
		verdict(b, NFQNL_MSG_VERDICT_BATCH, b->owed_last, b->owed);
	b->owed = 0;
}

/* Every packet message in one receive. */
static void handle(struct bare *b, size_t len)
{
	int left = (int)len;
	for (struct nlmsghdr *nlh = (struct nlmsghdr *)b->buf; mnl_nlmsg_ok(nlh, left);
	     nlh = mnl_nlmsg_next(nlh, &left)) {
		if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_QUEUE ||
		    NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET)
			continue;
		struct nlattr *attr[NFQA_MAX + 1] = {0};
		if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
			continue;
		const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
		uint32_t id = ntohl(ph->packet_id);
		if (b->batch) {
			b->owed_last = id;
			b->owed++;
		} else {
			verdict(b, NFQNL_MSG_VERDICT, id, 1);
		}
	}
}

/* A configuration message, and the kernel's answer to it. */
static int config(struct bare *b, struct nlmsghdr *nlh, const char *what)
{
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	if (mnl_socket_sendto(b->nl, nlh, nlh->nlmsg_len) < 0) {
		fprintf(stderr, "nfq_bare: %s: %s\n", what, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(b->nl, b->buf, RECV_BUFFER);
		if (n < 0 && errno == ENOBUFS)
			continue;
		if (n < 0) {
			fprintf(stderr, "nfq_bare: %s: %s\n", what, strerror(errno));
			return -1;
		}
		int rc = mnl_cb_run(b->buf, (size_t)n, nlh->nlmsg_seq, b->portid, NULL, NULL);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc < 0) {
			fprintf(stderr, "nfq_bare: %s: %s\n", what, strerror(errno));
			return -1;
		}
	}
}

static int open_queue(struct bare *b, uint32_t queue_length, int rcvbuf)
{
	b->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!b->nl || mnl_socket_bind(b->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "nfq_bare: netlink socket: %s\n", strerror(errno));
		return -1;
	}
	b->portid = mnl_socket_get_portid(b->nl);
	int fd = mnl_socket_get_fd(b->nl);
	if (rcvbuf > 0) {
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	} else {
		/* Exactly torsieve's calls (engine/source_nfqueue.c). */
		int asked = 8 << 20;
		if (mnl_socket_setsockopt(b->nl, SO_RCVBUFFORCE, &asked, sizeof(asked)) < 0)
			mnl_socket_setsockopt(b->nl, SO_RCVBUF, &asked, sizeof(asked));
	}
	int got = 0;
	socklen_t len = sizeof(got);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
	b->rcvbuf = got;

	struct nlmsghdr *nlh = nfq_nlmsg_put(b->msg, NFQNL_MSG_CONFIG, b->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	if (config(b, nlh, "bind the queue") < 0)
		return -1;
	nlh = nfq_nlmsg_put(b->msg, NFQNL_MSG_CONFIG, b->queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, queue_length);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	return config(b, nlh, "configure the queue");
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

int main(int argc, char **argv)
{
	static const char usage[] = "usage: nfq_bare QUEUE [--batch] [--mark MARK] "
	                            "[--queue-length N] [--buffer BYTES]\n";
	struct bare b = {0};
	uint32_t queue = 0, queue_length = 4096, rcvbuf = 0;
	if (argc < 2 || !parse_u32(argv[1], &queue) || queue > 65535) {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		bool ok = true;
		if (strcmp(argv[i], "--batch") == 0)
			b.batch = true;
		else if (strcmp(argv[i], "--mark") == 0 && i + 1 < argc) {
			ok = parse_u32(argv[++i], &b.mark);
			b.set_mark = true;
		} else if (strcmp(argv[i], "--queue-length") == 0 && i + 1 < argc)
			ok = parse_u32(argv[++i], &queue_length) && queue_length > 0;
		else if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc)
			ok = parse_u32(argv[++i], &rcvbuf) && rcvbuf > 0 && rcvbuf <= INT32_MAX;
		else
			ok = false;
		if (!ok) {
			fputs(usage, stderr);
			return 2;
		}
	}
	b.queue = (uint16_t)queue;
	b.buf = malloc(RECV_BUFFER);
	if (!b.buf) {
		fputs("nfq_bare: out of memory\n", stderr);
		return 1;
	}

	/* No SA_RESTART: a signal ends a blocking recv with EINTR. */
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	if (open_queue(&b, queue_length, (int)rcvbuf) < 0) {
		if (b.nl)
			mnl_socket_close(b.nl);
		free(b.buf);
		return 1;
	}
	printf("nfq_bare queue %u: bound (%s verdicts%s, receive buffer %d bytes)\n", b.queue,
	       b.batch ? "batch" : "one message per packet", b.set_mark ? ", marked" : "",
	       b.rcvbuf);
	fflush(stdout);

	int fd = mnl_socket_get_fd(b.nl);
	/* A blocking recv wakes at least every 200 ms, so a stop signal that
	 * comes just before it is not missed. */
	struct timeval tick = {0, 200 * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	while (!stop_requested) {
		if (report_requested) {
			report_requested = 0;
			report(&b);
		}
		/* Batch mode: block only when nothing is owed. */
		int flags = b.batch && b.owed ? MSG_DONTWAIT : 0;
		ssize_t n = recv(fd, b.buf, RECV_BUFFER, flags);
		if (n > 0) {
			handle(&b, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			flush_owed(&b);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			b.enobufs++;
			continue;
		}
		fprintf(stderr, "nfq_bare: receive: %s\n", n < 0 ? strerror(errno) : "closed");
		break;
	}
	flush_owed(&b);
	report(&b);
	mnl_socket_close(b.nl);
	free(b.buf);
	return 0;
}
