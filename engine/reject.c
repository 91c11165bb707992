/* Sending reject's ICMP errors through transparent raw sockets. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "torsieve/reject.h"

#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

struct ts_rejecter {
	int fd4, fd6;
	uint32_t rate; /* errors per second, and the burst */
	double tokens;
	int64_t last_usec; /* when tokens were last topped up */
	struct ts_reject_stats stats;
	uint8_t buf[TS_ICMP_ERROR_MAX];
};

struct ts_rejecter *ts_rejecter_open(uint32_t rate_per_second, const char *iface, char *err,
                                     size_t errlen)
{
	struct ts_rejecter *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "reject: out of memory");
		return NULL;
	}
	r->rate = rate_per_second;
	r->tokens = rate_per_second;
	/* IPPROTO_RAW: we write the IPv4 header (our source address). */
	r->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	r->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	int one = 1, hops = 64;
	if (r->fd4 < 0 || r->fd6 < 0 ||
	    setsockopt(r->fd4, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0 ||
	    setsockopt(r->fd6, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0 ||
	    setsockopt(r->fd6, SOL_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) < 0) {
		snprintf(err, errlen, "reject: raw sockets for ICMP errors: %s (needs root)",
		         strerror(errno));
		ts_rejecter_close(r);
		return NULL;
	}
	/* A forged client source must not turn an error into a message to the
	 * internet: the errors leave through the client interface only. */
	if (setsockopt(r->fd4, SOL_SOCKET, SO_BINDTODEVICE, iface, (socklen_t)strlen(iface)) < 0 ||
	    setsockopt(r->fd6, SOL_SOCKET, SO_BINDTODEVICE, iface, (socklen_t)strlen(iface)) < 0) {
		snprintf(err, errlen, "reject: binding the ICMP sockets to %s: %s", iface,
		         strerror(errno));
		ts_rejecter_close(r);
		return NULL;
	}
	/* Only sending: nothing should queue up on these sockets. */
	int zero = 0;
	setsockopt(r->fd4, SOL_SOCKET, SO_RCVBUF, &zero, sizeof(zero));
	setsockopt(r->fd6, SOL_SOCKET, SO_RCVBUF, &zero, sizeof(zero));
	struct icmp6_filter_block {
		uint32_t data[8];
	} block_all;
	memset(&block_all, 0xff, sizeof(block_all));
	setsockopt(r->fd6, IPPROTO_ICMPV6, 1 /* ICMP6_FILTER */, &block_all, sizeof(block_all));
	return r;
}

void ts_rejecter_close(struct ts_rejecter *r)
{
	if (!r)
		return;
	if (r->fd4 >= 0)
		close(r->fd4);
	if (r->fd6 >= 0)
		close(r->fd6);
	free(r);
}

const struct ts_reject_stats *ts_rejecter_stats(const struct ts_rejecter *r)
{
	return &r->stats;
}

static bool take_token(struct ts_rejecter *r, int64_t now_usec)
{
	if (now_usec > r->last_usec) {
		r->tokens += (double)(now_usec - r->last_usec) * r->rate / 1e6;
		if (r->tokens > r->rate)
			r->tokens = r->rate;
		r->last_usec = now_usec;
	}
	if (r->tokens < 1)
		return false;
	r->tokens -= 1;
	return true;
}

void ts_reject_send(struct ts_rejecter *r, const uint8_t *frame, uint32_t caplen,
                    const struct ts_decoded *d, enum ts_reject_kind kind, uint32_t ifindex,
                    int64_t now_usec)
{
	if (d->l3_offset >= caplen) {
		r->stats.unanswered++;
		return;
	}
	const uint8_t *ip = frame + d->l3_offset;
	uint32_t len = caplen - d->l3_offset;
	if (d->l3_len && len > d->l3_len)
		len = d->l3_len; /* not the link layer's padding */
	size_t n = ts_icmp_error_build(ip, len, d, kind, r->buf, sizeof(r->buf));
	if (!n) {
		r->stats.unanswered++;
		return;
	}
	if (!take_token(r, now_usec)) {
		r->stats.limited++;
		return;
	}
	ssize_t sent;
	if (d->l3 == TS_L3_IPV4) {
		struct sockaddr_in to = {.sin_family = AF_INET};
		memcpy(&to.sin_addr, d->src_addr, 4);
		sent = sendto(r->fd4, r->buf, n, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
	} else {
		struct sockaddr_in6 to = {.sin6_family = AF_INET6};
		memcpy(&to.sin6_addr, d->src_addr, 16);
		if (d->src_addr[0] == 0xfe && (d->src_addr[1] & 0xc0) == 0x80)
			to.sin6_scope_id = ifindex; /* link-local: say which link */
		/* The source is the address the client sent to (transparent). */
		union {
			struct cmsghdr h;
			uint8_t space[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		} ctl;
		memset(&ctl, 0, sizeof(ctl));
		struct iovec iov = {.iov_base = r->buf, .iov_len = n};
		struct msghdr msg = {
		        .msg_name = &to,
		        .msg_namelen = sizeof(to),
		        .msg_iov = &iov,
		        .msg_iovlen = 1,
		        .msg_control = ctl.space,
		        .msg_controllen = sizeof(ctl.space),
		};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
		struct in6_pktinfo info = {.ipi6_ifindex = 0};
		memcpy(&info.ipi6_addr, d->dst_addr, 16);
		memcpy(CMSG_DATA(c), &info, sizeof(info));
		sent = sendmsg(r->fd6, &msg, MSG_DONTWAIT);
	}
	if (sent < 0)
		r->stats.failed++;
	else
		r->stats.sent++;
}
