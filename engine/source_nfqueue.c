/* The NFQUEUE source: libnetfilter_queue over libmnl, verdicts batched. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include "torsieve/nfqueue.h"

/* Room for the largest packet (a GSO one) and its netlink headers; one
 * recv brings one message. */
#define RECV_BUFFER (4 * (0xffff + 4096))
#define COPY_RANGE  0xffff
#define ETH_HLEN    14
#define IFACE_CACHE 64

struct iface_name {
	uint32_t index;
	char name[IF_NAMESIZE];
};

struct nfq_source {
	struct ts_source base;
	struct ts_nfq_config cfg;
	struct mnl_socket *nl;
	uint32_t portid;
	uint8_t *buf;
	size_t buf_len, buf_pos; /* bytes received, and where the next message starts */
	uint64_t index;
	/* ids received and not yet given a verdict, ascending */
	uint32_t *pending;
	size_t pending_count, pending_cap;
	bool untracked; /* pending overflowed: no more batch verdicts */
	bool failed;    /* a verdict could not be sent */
	/* the run of verdicts not sent yet: ids first..last, one verdict */
	bool run_active;
	uint32_t run_first, run_last, run_mark;
	bool run_accept;
	struct ts_nfq_stats stats;
	struct iface_name ifaces[IFACE_CACHE]; /* never overwritten: packets point at the names */
	char msg[8192];                        /* one verdict or config message */
};

static struct nfq_source *nfq_of(struct ts_source *src)
{
	return (struct nfq_source *)src;
}

/* A stable name for an interface index: packets keep pointing at it. */
static const char *iface_name(struct nfq_source *s, uint32_t index)
{
	if (!index)
		return NULL;
	for (size_t i = 0; i < IFACE_CACHE; i++) {
		struct iface_name *n = &s->ifaces[(index + i) % IFACE_CACHE];
		if (n->index == index)
			return n->name;
		if (n->index == 0) {
			char name[IF_NAMESIZE];
			if (!if_indextoname(index, name))
				return NULL;
			n->index = index;
			memcpy(n->name, name, sizeof(name));
			return n->name;
		}
	}
	return NULL; /* more interfaces than the cache: `on` rules do not match */
}

static void pending_add(struct nfq_source *s, uint32_t id)
{
	if (s->pending_count == s->pending_cap) {
		/* More waiting than the kernel's queue can hold means ids went
		 * missing from this record: from now on a batch could cover a
		 * packet we do not know waits, so there are no more batches. */
		s->untracked = true;
		return;
	}
	s->pending[s->pending_count++] = id;
}

static void pending_remove(struct nfq_source *s, uint32_t id)
{
	/* Verdicts come mostly in order: look from the front. */
	for (size_t i = 0; i < s->pending_count; i++)
		if (s->pending[i] == id) {
			memmove(s->pending + i, s->pending + i + 1,
			        (s->pending_count - i - 1) * sizeof(*s->pending));
			s->pending_count--;
			return;
		}
}

static int send_msg(struct nfq_source *s, struct nlmsghdr *nlh)
{
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0) {
		s->stats.send_errors++;
		return -1;
	}
	s->stats.verdict_messages++;
	return 0;
}

static int send_single(struct nfq_source *s, uint32_t id, bool accept, uint32_t mark)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put(s->msg, NFQNL_MSG_VERDICT, s->cfg.queue);
	nfq_nlmsg_verdict_put(nlh, (int)id, accept ? NF_ACCEPT : NF_DROP);
	if (accept)
		nfq_nlmsg_verdict_put_mark(nlh, mark);
	return send_msg(s, nlh);
}

static int run_send(struct nfq_source *s)
{
	if (!s->run_active)
		return 0;
	s->run_active = false;
	/* The run's ids are still in pending (they leave it once sent). A batch
	 * verdict covers every waiting id up to run_last, so it is only sent
	 * when the lowest waiting id is the run's first: nothing below the run
	 * (a held fragment) still waits for a verdict of its own. */
	size_t n = (size_t)(s->run_last - s->run_first) + 1;
	bool batch = n > 1 && !s->untracked && s->pending_count >= n &&
	             s->pending[0] == s->run_first && s->pending[n - 1] == s->run_last;
	if (batch) {
		struct nlmsghdr *nlh = nfq_nlmsg_put(s->msg, NFQNL_MSG_VERDICT_BATCH, s->cfg.queue);
		nfq_nlmsg_verdict_put(nlh, (int)s->run_last, s->run_accept ? NF_ACCEPT : NF_DROP);
		if (s->run_accept)
			nfq_nlmsg_verdict_put_mark(nlh, s->run_mark);
		if (send_msg(s, nlh) < 0)
			return -1;
		s->stats.batches++;
		memmove(s->pending, s->pending + n, (s->pending_count - n) * sizeof(*s->pending));
		s->pending_count -= n;
		return 0;
	}
	for (uint32_t id = s->run_first;; id++) {
		if (send_single(s, id, s->run_accept, s->run_mark) < 0)
			return -1;
		pending_remove(s, id);
		if (id == s->run_last)
			break;
	}
	return 0;
}

void ts_nfq_verdict(struct ts_source *src, uint32_t id, bool accept, uint32_t mark,
                    uint32_t mark_mask, uint32_t old_mark)
{
	struct nfq_source *s = nfq_of(src);
	uint32_t new_mark = (old_mark & ~mark_mask) | (mark & mark_mask);
	if (accept)
		s->stats.accepted++;
	else
		s->stats.dropped++;
	if (s->run_active && id == s->run_last + 1 && accept == s->run_accept &&
	    (!accept || new_mark == s->run_mark)) {
		s->run_last = id;
		return;
	}
	if (run_send(s) < 0)
		s->failed = true;
	s->run_active = true;
	s->run_first = s->run_last = id;
	s->run_accept = accept;
	s->run_mark = new_mark;
}

int ts_nfq_flush(struct ts_source *src)
{
	struct nfq_source *s = nfq_of(src);
	if (run_send(s) < 0)
		s->failed = true;
	/* A verdict the kernel did not take leaves its packet waiting with no
	 * record of it: the caller stops (and the kernel drops on unbind). */
	return s->failed ? -1 : 0;
}

/* One queued packet into *pkt. Returns false for a message to skip. */
static bool parse_packet(struct nfq_source *s, struct nlmsghdr *nlh, struct ts_packet *pkt)
{
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr))
		return false;
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	if (!attr[NFQA_PAYLOAD]) {
		/* A queued packet that came without its bytes cannot be judged:
		 * dropped now, so no later batch verdict covers it. */
		s->stats.received++;
		s->stats.dropped++;
		if (send_single(s, ntohl(ph->packet_id), false, 0) < 0)
			s->failed = true;
		return false;
	}
	uint8_t *payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	uint32_t plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	uint32_t wirelen = plen;
	if (attr[NFQA_CAP_LEN]) {
		wirelen = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]));
		if (wirelen > plen)
			s->stats.truncated++;
		else
			wirelen = plen;
	}
	uint32_t id = ntohl(ph->packet_id);
	uint16_t hw_protocol = ntohs(ph->hw_protocol);
	uint32_t mark = attr[NFQA_MARK] ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK])) : 0;
	/* The input interface as iptables -i sees it (the bridge, not its
	 * port), so `on` in the policy means what `set interface` means. */
	uint32_t ifindex = 0;
	if (attr[NFQA_IFINDEX_INDEV])
		ifindex = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
	uint8_t mac[6];
	bool have_mac = false;
	if (attr[NFQA_HWADDR] && mnl_attr_get_payload_len(attr[NFQA_HWADDR]) >= 4 + 6) {
		const struct nfqnl_msg_packet_hw *hw = mnl_attr_get_payload(attr[NFQA_HWADDR]);
		if (ntohs(hw->hw_addrlen) == 6) {
			memcpy(mac, hw->hw_addr, 6);
			have_mac = true;
		}
	}
	/* Everything needed from the attributes is copied out: the 14 bytes
	 * before the payload (netlink headers of this message) can now take an
	 * Ethernet header, so the decoder sees the MAC without a copy. */
	const uint8_t *frame = payload;
	uint32_t caplen = plen;
	enum ts_link link = TS_LINK_RAW;
	if (have_mac && (uint8_t *)payload - (uint8_t *)nlh >= ETH_HLEN) {
		uint8_t *eth = payload - ETH_HLEN;
		memset(eth, 0, 6); /* the destination is not given */
		memcpy(eth + 6, mac, 6);
		eth[12] = (uint8_t)(hw_protocol >> 8);
		eth[13] = (uint8_t)hw_protocol;
		frame = eth;
		caplen += ETH_HLEN;
		wirelen += ETH_HLEN;
		link = TS_LINK_ETHERNET;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	*pkt = (struct ts_packet){
	        .data = frame,
	        .caplen = caplen,
	        .len = wirelen,
	        .ts_sec = now.tv_sec,
	        .ts_usec = (uint32_t)(now.tv_nsec / 1000),
	        .index = ++s->index,
	        .link = link,
	        .id = id,
	        .mark = mark,
	        .iface = iface_name(s, ifindex),
	};
	s->stats.received++;
	pending_add(s, id);
	return true;
}

static enum ts_source_status nfqueue_next(struct ts_source *src, struct ts_packet *pkt)
{
	struct nfq_source *s = nfq_of(src);
	for (;;) {
		while (s->buf_pos < s->buf_len) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)(s->buf + s->buf_pos);
			int left = (int)(s->buf_len - s->buf_pos);
			if (!mnl_nlmsg_ok(nlh, left)) {
				s->buf_pos = s->buf_len;
				break;
			}
			s->buf_pos += NLMSG_ALIGN(nlh->nlmsg_len);
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				if (e->error)
					s->stats.send_errors++; /* a verdict for a packet gone */
				continue;
			}
			if (NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_QUEUE &&
			    NFNL_MSG_TYPE(nlh->nlmsg_type) == NFQNL_MSG_PACKET &&
			    parse_packet(s, nlh, pkt))
				return TS_SOURCE_PACKET;
		}
		ssize_t n = recv(mnl_socket_get_fd(s->nl), s->buf, RECV_BUFFER, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return TS_SOURCE_AGAIN;
			if (errno == ENOBUFS) {
				s->stats.enobufs++; /* the kernel dropped what it could not hand
				                       over */
				continue;
			}
			snprintf(src->err, sizeof(src->err), "%s: receive: %s", src->name,
			         strerror(errno));
			return TS_SOURCE_ERROR;
		}
		if (n == 0) {
			snprintf(src->err, sizeof(src->err), "%s: the netlink socket closed",
			         src->name);
			return TS_SOURCE_ERROR;
		}
		s->buf_len = (size_t)n;
		s->buf_pos = 0;
	}
}

static int nfqueue_fd(const struct ts_source *src)
{
	const struct nfq_source *s = (const struct nfq_source *)src;
	return mnl_socket_get_fd(s->nl);
}

static void nfqueue_close(struct ts_source *src)
{
	struct nfq_source *s = nfq_of(src);
	if (s->nl) {
		ts_nfq_flush(src);
		/* Unbinding is implicit in closing: the kernel drops what still
		 * waits for a verdict (no fail-open). */
		mnl_socket_close(s->nl);
	}
	free(s->pending);
	free(s->buf);
	free(s);
}

static const struct ts_source_ops nfq_ops = {
        .next = nfqueue_next,
        .fd = nfqueue_fd,
        .close = nfqueue_close,
};

/* Send a configuration message and wait for the kernel's answer. */
static int config(struct nfq_source *s, struct nlmsghdr *nlh, char *err, size_t errlen,
                  const char *what)
{
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0) {
		snprintf(err, errlen, "%s: %s: %s", s->base.name, what, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(s->nl, s->buf, RECV_BUFFER);
		if (n < 0 && errno == ENOBUFS)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s: %s", s->base.name, what, strerror(errno));
			return -1;
		}
		int rc = mnl_cb_run(s->buf, (size_t)n, nlh->nlmsg_seq, s->portid, NULL, NULL);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc < 0) {
			snprintf(err, errlen, "%s: %s: %s%s", s->base.name, what, strerror(errno),
			         errno == EBUSY   ? " (another program is bound to this queue)"
			         : errno == EPERM ? " (needs CAP_NET_ADMIN: run as root)"
			                          : "");
			return -1;
		}
	}
}

struct ts_source *ts_nfq_open(const struct ts_nfq_config *cfg, char *err, size_t errlen)
{
	struct nfq_source *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "NFQUEUE %u: out of memory", cfg->queue);
		return NULL;
	}
	s->base.ops = &nfq_ops;
	s->base.link = TS_LINK_RAW;
	s->base.linktype = -1;
	s->base.link_label = "NFQUEUE";
	snprintf(s->base.name, sizeof(s->base.name), "NFQUEUE %u", cfg->queue);
	s->cfg = *cfg;
	s->pending_cap = cfg->queue_maxlen ? cfg->queue_maxlen : 1024;
	s->pending = calloc(s->pending_cap, sizeof(*s->pending));
	s->buf = malloc(RECV_BUFFER);
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->pending || !s->buf || !s->nl) {
		snprintf(err, errlen, "%s: %s", s->base.name,
		         !s->nl ? strerror(errno) : "out of memory");
		nfqueue_close(&s->base);
		return NULL;
	}
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "%s: bind: %s", s->base.name, strerror(errno));
		nfqueue_close(&s->base);
		return NULL;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	/* A large receive buffer absorbs bursts; SO_RCVBUFFORCE passes the
	 * rmem_max limit (root), SO_RCVBUF is the fallback. (These are socket
	 * options: mnl_socket_setsockopt would set netlink ones.) */
	int rcvbuf = (int)cfg->rcvbuf, fd = mnl_socket_get_fd(s->nl);
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
		snprintf(err, errlen, "%s: receive buffer of %d bytes: %s", s->base.name, rcvbuf,
		         strerror(errno));
		nfqueue_close(&s->base);
		return NULL;
	}

	struct nlmsghdr *nlh = nfq_nlmsg_put(s->msg, NFQNL_MSG_CONFIG, cfg->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	if (config(s, nlh, err, errlen, "bind the queue") < 0) {
		nfqueue_close(&s->base);
		return NULL;
	}
	nlh = nfq_nlmsg_put(s->msg, NFQNL_MSG_CONFIG, cfg->queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
	if (cfg->queue_maxlen)
		nfq_nlmsg_cfg_put_qmaxlen(nlh, cfg->queue_maxlen);
	/* GSO: the kernel hands over a GSO/GRO packet whole instead of
	 * segmenting it first (which costs CPU and, without this flag, is done
	 * for every queued GSO packet). torsieve never changes packets, so
	 * their not-yet-computed checksums do not matter. No FAIL_OPEN. */
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	if (config(s, nlh, err, errlen, "configure the queue") < 0) {
		nfqueue_close(&s->base);
		return NULL;
	}
	return &s->base;
}

/* The kernel's counters for this queue, from the netns's proc file. */
static void read_kernel_counters(struct nfq_source *s)
{
	FILE *fp = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
	if (!fp)
		return;
	unsigned queue, portid, total, mode, range, dropped, user_dropped;
	char line[256];
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "%u %u %u %u %u %u %u", &queue, &portid, &total, &mode, &range,
		           &dropped, &user_dropped) == 7 &&
		    queue == s->cfg.queue && portid == s->portid) {
			s->stats.queue_dropped = dropped;
			s->stats.user_dropped = user_dropped;
		}
	fclose(fp);
}

void ts_nfq_get_stats(struct ts_source *src, struct ts_nfq_stats *out)
{
	struct nfq_source *s = nfq_of(src);
	read_kernel_counters(s);
	*out = s->stats;
}
