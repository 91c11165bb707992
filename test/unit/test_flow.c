/*
 * The flow table: both directions find one flow, each class expires on its
 * own timeout, a full table evicts the cheapest flow to lose and counts it,
 * and every flow that leaves is reported once.
 */
#include <stdlib.h>

#include "check.h"
#include "torsieve/flow.h"

static struct ts_decoded tcp_packet(uint8_t a, uint16_t sport, uint8_t b, uint16_t dport,
                                    uint8_t flags)
{
	struct ts_decoded d;
	memset(&d, 0, sizeof(d));
	d.l3 = TS_L3_IPV4;
	d.l4 = TS_L4_TCP;
	d.ip_proto = TS_IPPROTO_TCP;
	d.src_addr[0] = 10;
	d.src_addr[3] = a;
	d.dst_addr[0] = 10;
	d.dst_addr[3] = b;
	d.has_ports = d.has_l4_header = true;
	d.sport = sport;
	d.dport = dport;
	d.tcp_flags = flags;
	return d;
}

static struct ts_decoded udp_packet(uint8_t a, uint8_t b)
{
	struct ts_decoded d = tcp_packet(a, 5000, b, 53, 0);
	d.l4 = TS_L4_UDP;
	d.ip_proto = TS_IPPROTO_UDP;
	return d;
}

struct ended {
	uint64_t ids[64];
	char why[64][16];
	unsigned count;
	unsigned expired, evicted, flushed, reused;
};

static void on_end(void *ctx, struct ts_flow *f, const char *why)
{
	struct ended *e = ctx;
	if (e->count < 64) {
		e->ids[e->count] = f->id;
		snprintf(e->why[e->count], sizeof(e->why[0]), "%s", why);
	}
	e->count++;
	e->expired += strcmp(why, "expired") == 0;
	e->evicted += strcmp(why, "evicted") == 0;
	e->flushed += strcmp(why, "end of capture") == 0;
	e->reused += strcmp(why, "reused") == 0;
}

static struct ts_flow *packet(struct ts_flow_table *t, const struct ts_decoded *d, int64_t sec,
                              bool *created, int *side)
{
	struct ts_flow *f = ts_flow_lookup(t, d, sec * 1000000, created, side);
	ts_flow_update(t, f, d, *side, 60, sec * 1000000);
	return f;
}

static void test_both_directions_one_flow(void)
{
	struct ts_flow_config cfg;
	ts_flow_config_default(&cfg);
	struct ended ended = {0};
	struct ts_flow_table *t = ts_flow_table_new(&cfg, on_end, &ended);
	CHECK(t != NULL);
	if (!t)
		return;
	bool created;
	int side;
	struct ts_decoded syn = tcp_packet(5, 40000, 9, 80, TS_TCP_SYN);
	struct ts_flow *f = packet(t, &syn, 1, &created, &side);
	CHECK(created);
	CHECK_EQ_INT(f->id, 1);
	CHECK_EQ_INT(f->initiator, side);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_OPENING);
	int client = side;

	struct ts_decoded synack = tcp_packet(9, 80, 5, 40000, TS_TCP_SYN | TS_TCP_ACK);
	struct ts_flow *g = packet(t, &synack, 1, &created, &side);
	CHECK(!created);
	CHECK(g == f);
	CHECK(side != client);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_ESTABLISHED);
	CHECK_EQ_INT(f->packets[client], 1);
	CHECK_EQ_INT(f->packets[!client], 1);

	/* Another port, or another VLAN, is another flow. */
	struct ts_decoded other = tcp_packet(5, 40001, 9, 80, TS_TCP_SYN);
	CHECK(packet(t, &other, 2, &created, &side) != f && created);
	struct ts_decoded tagged = syn;
	tagged.vlan_count = 1;
	tagged.vlan_ids[0] = 7;
	CHECK(packet(t, &tagged, 2, &created, &side) != f && created);

	struct ts_decoded fin = tcp_packet(5, 40000, 9, 80, TS_TCP_FIN | TS_TCP_ACK);
	packet(t, &fin, 3, &created, &side);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_CLOSING);
	CHECK(f->seen_fin[client] && !f->seen_fin[!client]);

	struct ts_flow_stats s;
	ts_flow_get_stats(t, &s);
	CHECK_EQ_INT(s.total, 3);
	CHECK_EQ_INT(s.tcp, 3);
	CHECK_EQ_INT(s.active, 3);
	ts_flow_flush(t);
	CHECK_EQ_INT(ended.count, 3);
	CHECK_EQ_STR(ended.why[0], "end of capture");
	ts_flow_get_stats(t, &s);
	CHECK_EQ_INT(s.active, 0);
	ts_flow_table_free(t);
}

static void test_timeouts_per_class(void)
{
	struct ts_flow_config cfg;
	ts_flow_config_default(&cfg);
	cfg.timeout[TS_FLOW_UDP] = 10;
	cfg.timeout[TS_FLOW_TCP_ESTABLISHED] = 100;
	struct ended ended = {0};
	struct ts_flow_table *t = ts_flow_table_new(&cfg, on_end, &ended);
	if (!t)
		return;
	bool created;
	int side;
	struct ts_decoded dns = udp_packet(5, 9);
	struct ts_decoded web = tcp_packet(5, 40000, 9, 80, TS_TCP_ACK); /* mid-stream */
	struct ts_flow *u = packet(t, &dns, 0, &created, &side);
	uint64_t udp_id = u->id;
	packet(t, &web, 0, &created, &side);
	packet(t, &web, 11, &created, &side); /* the UDP flow is 11 s idle: gone */
	CHECK_EQ_INT(ended.count, 1);
	CHECK_EQ_INT(ended.ids[0], udp_id);
	CHECK_EQ_STR(ended.why[0], "expired");
	u = packet(t, &dns, 12, &created, &side);
	CHECK(created); /* a new flow, with a new verdict to come */
	CHECK(u->id != udp_id);
	packet(t, &web, 111, &created, &side); /* established: 100 s */
	CHECK(!created);
	struct ts_flow_stats s;
	ts_flow_get_stats(t, &s);
	CHECK_EQ_INT(s.expired, 2); /* the first UDP flow, and the second at 111 s */
	ts_flow_table_free(t);
}

static void test_full_table_evicts_cheapest(void)
{
	struct ts_flow_config cfg;
	ts_flow_config_default(&cfg);
	cfg.max_flows = 3;
	struct ended ended = {0};
	struct ts_flow_table *t = ts_flow_table_new(&cfg, on_end, &ended);
	if (!t)
		return;
	bool created;
	int side;
	struct ts_decoded est = tcp_packet(1, 1000, 9, 80, TS_TCP_ACK);
	struct ts_decoded opening = tcp_packet(2, 1000, 9, 80, TS_TCP_SYN);
	struct ts_decoded dns = udp_packet(3, 9);
	uint64_t est_id = packet(t, &est, 0, &created, &side)->id;
	uint64_t opening_id = packet(t, &opening, 0, &created, &side)->id;
	uint64_t udp_id = packet(t, &dns, 0, &created, &side)->id;

	struct ts_decoded more = tcp_packet(4, 1000, 9, 80, TS_TCP_ACK);
	packet(t, &more, 1, &created, &side);
	CHECK(created);
	CHECK_EQ_INT(ended.count, 1);
	CHECK_EQ_INT(ended.ids[0], opening_id); /* opening before UDP before established */
	CHECK_EQ_STR(ended.why[0], "evicted");
	struct ts_decoded more2 = tcp_packet(5, 1000, 9, 80, TS_TCP_ACK);
	packet(t, &more2, 1, &created, &side);
	CHECK_EQ_INT(ended.ids[1], udp_id);
	struct ts_decoded more3 = tcp_packet(6, 1000, 9, 80, TS_TCP_ACK);
	packet(t, &more3, 1, &created, &side);
	CHECK_EQ_INT(ended.ids[2], est_id); /* the stalest established one */
	struct ts_flow_stats s;
	ts_flow_get_stats(t, &s);
	CHECK_EQ_INT(s.evicted, 3);
	CHECK_EQ_INT(s.active, 3);
	CHECK_EQ_INT(s.total, 6);
	ts_flow_table_free(t);
}

/* Many flows through a small table: every flow ends exactly once, and the
 * table never holds more than its cap. */
static void test_churn(void)
{
	struct ts_flow_config cfg;
	ts_flow_config_default(&cfg);
	cfg.max_flows = 50;
	for (int c = 0; c < TS_FLOW_CLASSES; c++)
		cfg.timeout[c] = 8; /* about 50 new flows in 8 s: both expiry and eviction */
	struct ended ended = {0};
	struct ts_flow_table *t = ts_flow_table_new(&cfg, on_end, &ended);
	if (!t)
		return;
	uint32_t x = 1;
	for (int i = 0; i < 20000; i++) {
		x = x * 1103515245u + 12345u;
		struct ts_decoded d =
		        tcp_packet((uint8_t)(x >> 24), (uint16_t)(1000 + (x >> 16) % 7), 9, 80,
		                   (x & 0x100) ? TS_TCP_ACK : TS_TCP_SYN);
		if (x & 0x200)
			d = udp_packet((uint8_t)(x >> 24), 9);
		bool created;
		int side;
		packet(t, &d, i / 6, &created, &side);
		struct ts_flow_stats s;
		ts_flow_get_stats(t, &s);
		if (s.active > 50 || s.total - s.active != ended.count) {
			CHECK(false);
			break;
		}
	}
	ts_flow_flush(t);
	struct ts_flow_stats s;
	ts_flow_get_stats(t, &s);
	CHECK_EQ_INT(ended.count, s.total);
	CHECK_EQ_INT(ended.expired, s.expired);
	CHECK_EQ_INT(ended.evicted, s.evicted);
	CHECK(s.evicted > 0 && s.expired > 0);
	CHECK_EQ_INT(ended.expired + ended.evicted + ended.flushed, s.total);
	ts_flow_table_free(t);
}

/* Port reuse: a SYN without ACK on a tuple whose connection saw a FIN or a
 * RST is a new connection, so a new flow (the old one ends, reported once);
 * a SYN anywhere else stays in its flow. */
static void test_port_reuse(void)
{
	struct ts_flow_config cfg;
	ts_flow_config_default(&cfg);
	struct ended ended = {0};
	struct ts_flow_table *t = ts_flow_table_new(&cfg, on_end, &ended);
	if (!t)
		return;
	bool created;
	int side;
	const uint8_t SA = TS_TCP_SYN | TS_TCP_ACK, FA = TS_TCP_FIN | TS_TCP_ACK;
	struct ts_decoded syn = tcp_packet(5, 40000, 9, 80, TS_TCP_SYN);
	struct ts_decoded synack = tcp_packet(9, 80, 5, 40000, SA);
	struct ts_decoded ack = tcp_packet(5, 40000, 9, 80, TS_TCP_ACK);
	struct ts_decoded fin_c = tcp_packet(5, 40000, 9, 80, FA);
	struct ts_decoded fin_s = tcp_packet(9, 80, 5, 40000, FA);
	struct ts_flow *f = packet(t, &syn, 1, &created, &side);
	uint64_t first = f->id;
	/* A SYN again while opening or established: a retransmission, the same
	 * flow. */
	CHECK(packet(t, &syn, 1, &created, &side) == f && !created);
	packet(t, &synack, 1, &created, &side);
	packet(t, &ack, 1, &created, &side);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_ESTABLISHED);
	CHECK(packet(t, &syn, 2, &created, &side) == f && !created);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_ESTABLISHED);
	packet(t, &fin_c, 3, &created, &side);
	packet(t, &fin_s, 3, &created, &side);
	packet(t, &ack, 3, &created, &side);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_CLOSING);
	/* A SYN-ACK or an ACK while closing: still the old connection. */
	CHECK(packet(t, &synack, 3, &created, &side)->id == first && !created);
	CHECK(packet(t, &ack, 3, &created, &side)->id == first && !created);
	CHECK_EQ_INT(ended.count, 0);

	/* The new connection: the old flow ends as reused, a new one starts,
	 * opening, its initiator the SYN's sender. */
	f = packet(t, &syn, 4, &created, &side);
	CHECK(created);
	CHECK(f->id != first);
	CHECK_EQ_INT(f->initiator, side);
	CHECK_EQ_INT(f->flow_class, TS_FLOW_TCP_OPENING);
	CHECK_EQ_INT(f->packets[side], 1);
	CHECK_EQ_INT(ended.count, 1);
	CHECK_EQ_INT(ended.ids[0], first);
	CHECK_EQ_STR(ended.why[0], "reused");
	uint64_t second = f->id;
	CHECK(packet(t, &synack, 4, &created, &side) == f && !created);

	/* After a RST, a SYN from the other end is a new flow too, its
	 * initiator that end. */
	struct ts_decoded rst = tcp_packet(9, 80, 5, 40000, TS_TCP_RST | TS_TCP_ACK);
	packet(t, &rst, 5, &created, &side);
	int responder = side;
	struct ts_decoded syn_back = tcp_packet(9, 80, 5, 40000, TS_TCP_SYN);
	f = packet(t, &syn_back, 5, &created, &side);
	CHECK(created && f->id != second);
	CHECK_EQ_INT(side, responder);
	CHECK_EQ_INT(f->initiator, responder);
	CHECK_EQ_INT(ended.count, 2);
	CHECK_EQ_INT(ended.ids[1], second);

	/* UDP has no connections to reuse. */
	struct ts_decoded dns = udp_packet(5, 9);
	struct ts_flow *u = packet(t, &dns, 6, &created, &side);
	CHECK(packet(t, &dns, 6, &created, &side) == u && !created);

	struct ts_flow_stats s;
	ts_flow_get_stats(t, &s);
	CHECK_EQ_INT(s.reused, 2);
	CHECK_EQ_INT(s.total, 4);
	CHECK_EQ_INT(s.tcp, 3);
	CHECK_EQ_INT(s.active, 2);
	ts_flow_flush(t);
	CHECK_EQ_INT(ended.count, s.total);
	CHECK_EQ_INT(ended.reused, s.reused);
	ts_flow_table_free(t);
}

static void test_flow_is_small(void)
{
	/* The budget is 512 bytes per tracked flow, stream data aside. */
	CHECK(sizeof(struct ts_flow) <= 512);
	printf("  sizeof(struct ts_flow) = %zu bytes, plus %zu per table slot of hash buckets\n",
	       sizeof(struct ts_flow), sizeof(uint32_t));
}

int main(void)
{
	RUN(test_both_directions_one_flow);
	RUN(test_timeouts_per_class);
	RUN(test_full_table_evicts_cheapest);
	RUN(test_churn);
	RUN(test_port_reuse);
	RUN(test_flow_is_small);
	return check_exit_code();
}
