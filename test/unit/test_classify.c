/*
 * The compiled classifier against the linear reference, on random policies
 * built directly as rule structs (no parser, no libpcap: this test runs on
 * big-endian MIPS too) and random decoded packets drawn from the same value
 * pools, so that rules match often and in every combination. Deterministic.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "rng.h"
#include "torsieve/classify.h"
#include "torsieve/policy.h"

static uint32_t pick(uint32_t n)
{
	return rnd() % n;
}

static const uint8_t v4_pool[4][4] = {
        {10, 0, 0, 0}, {192, 0, 2, 0}, {198, 51, 100, 7}, {255, 255, 255, 255}};
static const uint8_t v6_pool[3][16] = {
        {0x20, 0x01, 0x0d, 0xb8},
        {0xfd, 0x77, [15] = 1},
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff},
};
static const uint16_t port_pool[] = {0, 53, 80, 443, 1000, 1500, 2000, 65535};
static const uint8_t proto_pool[] = {6, 17, 1, 58, 47};
static const char *const iface_pool[] = {"br0", "eth0", "wlan0"};

static void random_addr(uint8_t family, uint8_t *out)
{
	memset(out, 0, 16);
	if (family == 4)
		memcpy(out, v4_pool[pick(4)], 4);
	else
		memcpy(out, v6_pool[pick(3)], 16);
	/* Perturb a low byte sometimes, so prefixes of every length split. */
	if (pick(2))
		out[(family == 4 ? 3 : 15) - pick(2)] ^= (uint8_t)rnd();
}

static void random_prefix(struct ts_prefix *p)
{
	p->family = pick(2) ? 4 : 6;
	random_addr(p->family, p->addr);
	uint32_t bits = p->family == 4 ? 32 : 128;
	p->len = (uint8_t)(pick(4) == 0 ? bits : pick(bits + 1));
	for (uint32_t b = p->len; b < bits; b++)
		p->addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
}

static void random_addr_spec(struct ts_addr_spec *s)
{
	s->negated = pick(4) == 0;
	s->count = 1 + pick(3);
	s->prefixes = calloc(s->count, sizeof(*s->prefixes));
	for (uint32_t i = 0; i < s->count; i++)
		random_prefix(&s->prefixes[i]);
}

static void random_port_spec(struct ts_port_spec *s)
{
	s->negated = pick(4) == 0;
	s->count = 1 + pick(3);
	s->ranges = calloc(s->count, sizeof(*s->ranges));
	for (uint32_t i = 0; i < s->count; i++) {
		uint16_t a = port_pool[pick(8)], b = port_pool[pick(8)];
		s->ranges[i].lo = a < b ? a : b;
		s->ranges[i].hi = pick(2) ? s->ranges[i].lo : (a < b ? b : a);
	}
}

static void random_rule(struct ts_rule *r, uint32_t index)
{
	memset(r, 0, sizeof(*r));
	r->line = index + 1;
	r->action = (enum ts_verdict)pick(TS_VERDICT_COUNT);
	for (int f = 0; f < TS_FIELD_BPF; f++) {
		if (pick(4) != 0)
			continue;
		r->match_mask |= 1u << f;
		switch ((enum ts_field)f) {
		case TS_FIELD_FAMILY:
			r->family = pick(2) ? 4 : 6;
			break;
		case TS_FIELD_PROTO:
			for (int n = 1 + (int)pick(2); n > 0; n--) {
				uint8_t p = proto_pool[pick(5)];
				r->protos[p >> 3] |= (uint8_t)(1u << (p & 7));
			}
			break;
		case TS_FIELD_SRC:
			random_addr_spec(&r->src);
			break;
		case TS_FIELD_DST:
			random_addr_spec(&r->dst);
			break;
		case TS_FIELD_SPORT:
			random_port_spec(&r->sport);
			break;
		case TS_FIELD_DPORT:
			random_port_spec(&r->dport);
			break;
		case TS_FIELD_MAC:
			r->mac.negated = pick(4) == 0;
			r->mac.count = 1;
			r->mac.macs = calloc(1, sizeof(*r->mac.macs));
			r->mac.macs[0][0] = 2;
			r->mac.macs[0][5] = (uint8_t)pick(3);
			break;
		case TS_FIELD_IFACE:
			r->iface.negated = pick(4) == 0;
			r->iface.count = 1;
			r->iface.names = calloc(1, sizeof(*r->iface.names));
			strcpy(r->iface.names[0], iface_pool[pick(3)]);
			break;
		case TS_FIELD_TCP_FLAGS:
			r->tcp_flags_mask = (uint8_t)(rnd() | 0x02);
			r->tcp_flags = r->tcp_flags_mask & (uint8_t)rnd();
			break;
		case TS_FIELD_ICMP_TYPE:
			r->icmp_types[pick(2)] |= (uint8_t)(1u << pick(8));
			break;
		case TS_FIELD_ICMP_CODE:
			r->icmp_codes[0] |= (uint8_t)(1u << pick(4));
			break;
		default:
			break;
		}
	}
}

static void free_rules(struct ts_policy *p)
{
	for (uint32_t i = 0; i < p->rule_count; i++) {
		struct ts_rule *r = &p->rules[i];
		free(r->src.prefixes);
		free(r->dst.prefixes);
		free(r->sport.ranges);
		free(r->dport.ranges);
		free(r->mac.macs);
		free(r->iface.names);
	}
	free(p->rules);
}

static void random_packet(struct ts_decoded *d, const char **iface)
{
	memset(d, 0, sizeof(*d));
	uint32_t kind = pick(8);
	d->l3 = kind == 0   ? TS_L3_NONE
	        : kind == 1 ? TS_L3_OTHER
	        : kind < 5  ? TS_L3_IPV4
	                    : TS_L3_IPV6;
	if (d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6) {
		uint8_t fam = d->l3 == TS_L3_IPV4 ? 4 : 6;
		random_addr(fam, d->src_addr);
		random_addr(fam, d->dst_addr);
		d->ip_proto = proto_pool[pick(5)];
		d->l4 = d->ip_proto == 6    ? TS_L4_TCP
		        : d->ip_proto == 17 ? TS_L4_UDP
		        : d->ip_proto == 1  ? TS_L4_ICMP
		        : d->ip_proto == 58 ? TS_L4_ICMP6
		                            : TS_L4_OTHER;
		d->has_l4_header = d->l4 != TS_L4_OTHER && pick(8) != 0;
		d->has_ports = d->has_l4_header && (d->l4 == TS_L4_TCP || d->l4 == TS_L4_UDP);
		d->sport = port_pool[pick(8)] + (uint16_t)(pick(3) == 0);
		d->dport = port_pool[pick(8)] + (uint16_t)(pick(3) == 0);
		d->tcp_flags = (uint8_t)rnd();
		d->icmp_type = (uint8_t)pick(16);
		d->icmp_code = (uint8_t)pick(4);
	}
	d->has_mac = pick(4) != 0;
	d->src_mac[0] = 2;
	d->src_mac[5] = (uint8_t)pick(4);
	*iface = pick(4) ? iface_pool[pick(3)] : NULL;
}

/* One policy of n rules against many packets; returns false on a mismatch. */
static bool compare(uint32_t n, uint32_t packets, uint32_t seed)
{
	rng_state = seed;
	struct ts_policy p = {.source = "random", .rule_count = n};
	p.limits.max_rules = n;
	p.limits.classifier_memory = 1ull << 30;
	p.rules = calloc(n ? n : 1, sizeof(*p.rules));
	for (uint32_t i = 0; i < n; i++)
		random_rule(&p.rules[i], i);
	char err[256];
	struct ts_classifier *c = ts_classifier_build(&p, err, sizeof(err));
	CHECK(c != NULL);
	bool ok = c != NULL;
	for (uint32_t k = 0; ok && k < packets; k++) {
		struct ts_decoded d;
		struct ts_match_input in = {.dec = &d};
		random_packet(&d, &in.iface);
		int32_t want = ts_policy_match_linear(&p, &in);
		int32_t got = ts_classify(c, &in);
		if (want != got) {
			printf("  seed %u, %u rules, packet %u: linear %d, compiled %d\n", seed, n,
			       k, want, got);
			ok = false;
		}
	}
	ts_classifier_free(c);
	free_rules(&p);
	return ok;
}

static void test_small_policies(void)
{
	for (uint32_t seed = 1; seed <= 400; seed++)
		CHECK(compare(1 + seed % 40, 500, seed));
}

static void test_empty_policy(void)
{
	CHECK(compare(0, 100, 7));
}

/* Past 64 rules a vector has several words; past 4096, several aggregate
 * words. */
static void test_large_policies(void)
{
	CHECK(compare(200, 3000, 11));
	CHECK(compare(4100, 2000, 12));
	CHECK(compare(9000, 1000, 13));
}

/* Hundreds of distinct port ranges and IPv4 prefixes: long interval sets,
 * which get a first-level index; probe at and around every edge. */
static void test_many_intervals(void)
{
	rng_state = 4242;
	uint32_t n = 600;
	struct ts_policy p = {.source = "intervals", .rule_count = n};
	p.limits.max_rules = n;
	p.limits.classifier_memory = 1ull << 30;
	p.rules = calloc(n, sizeof(*p.rules));
	for (uint32_t i = 0; i < n; i++) {
		struct ts_rule *r = &p.rules[i];
		r->line = i + 1;
		r->action = TS_VERDICT_DROP;
		if (i % 2) {
			r->match_mask = 1u << TS_FIELD_DPORT;
			r->dport.negated = i % 10 == 1;
			r->dport.count = 1;
			r->dport.ranges = calloc(1, sizeof(*r->dport.ranges));
			r->dport.ranges[0].lo = (uint16_t)(i * 97);
			r->dport.ranges[0].hi = (uint16_t)(i * 97 + pick(80));
		} else {
			r->match_mask = 1u << TS_FIELD_DST;
			r->dst.count = 1;
			r->dst.prefixes = calloc(1, sizeof(*r->dst.prefixes));
			struct ts_prefix *pr = &r->dst.prefixes[0];
			pr->family = 4;
			pr->len = (uint8_t)(16 + pick(17));
			uint32_t a = 0x0a000000u | (rnd() & 0x00ffffffu);
			if (pr->len < 32)
				a &= ~((1u << (32 - pr->len)) - 1);
			pr->addr[0] = (uint8_t)(a >> 24);
			pr->addr[1] = (uint8_t)(a >> 16);
			pr->addr[2] = (uint8_t)(a >> 8);
			pr->addr[3] = (uint8_t)a;
		}
	}
	char err[256];
	struct ts_classifier *c = ts_classifier_build(&p, err, sizeof(err));
	CHECK(c != NULL);
	for (uint32_t k = 0; c && k < 200000; k++) {
		struct ts_decoded d;
		memset(&d, 0, sizeof(d));
		d.l3 = TS_L3_IPV4;
		d.l4 = TS_L4_TCP;
		d.ip_proto = 6;
		d.has_ports = d.has_l4_header = true;
		/* Half the probes land on a rule's edge, give or take one. */
		const struct ts_rule *r = &p.rules[pick(n)];
		uint32_t a = 0x0a000000u | (rnd() & 0x00ffffffu);
		uint16_t port = (uint16_t)rnd();
		if (k % 2 && (r->match_mask & (1u << TS_FIELD_DPORT)))
			port = (uint16_t)((k % 4 == 1 ? r->dport.ranges[0].hi
			                              : r->dport.ranges[0].lo) +
			                  pick(3) - 1);
		if (k % 2 && (r->match_mask & (1u << TS_FIELD_DST)))
			a = ((uint32_t)r->dst.prefixes[0].addr[0] << 24 |
			     (uint32_t)r->dst.prefixes[0].addr[1] << 16 |
			     (uint32_t)r->dst.prefixes[0].addr[2] << 8 |
			     r->dst.prefixes[0].addr[3]) +
			    pick(3) - 1;
		d.dst_addr[0] = (uint8_t)(a >> 24);
		d.dst_addr[1] = (uint8_t)(a >> 16);
		d.dst_addr[2] = (uint8_t)(a >> 8);
		d.dst_addr[3] = (uint8_t)a;
		d.dport = port;
		struct ts_match_input in = {.dec = &d};
		int32_t want = ts_policy_match_linear(&p, &in), got = ts_classify(c, &in);
		if (want != got) {
			printf("  probe %u (port %u, addr %08x): linear %d, compiled %d\n", k, port,
			       a, want, got);
			CHECK(false);
			break;
		}
	}
	struct ts_classifier_stats st;
	if (c) {
		ts_classifier_get_stats(c, &st);
		CHECK(st.intervals > 600); /* long enough to be indexed */
	}
	ts_classifier_free(c);
	free_rules(&p);
}

static void test_memory_cap(void)
{
	rng_state = 99;
	struct ts_policy p = {.source = "capped", .rule_count = 300};
	p.limits.max_rules = 300;
	p.limits.classifier_memory = 4096;
	p.rules = calloc(300, sizeof(*p.rules));
	for (uint32_t i = 0; i < 300; i++)
		random_rule(&p.rules[i], i);
	char err[256] = "";
	struct ts_classifier *c = ts_classifier_build(&p, err, sizeof(err));
	CHECK(c == NULL);
	CHECK(strstr(err, "capped: ") == err);
	CHECK(strstr(err, "classifier-memory") != NULL);
	ts_classifier_free(c);
	free_rules(&p);
}

static void test_stats(void)
{
	struct ts_rule r = {.line = 1, .action = TS_VERDICT_DIVERT};
	struct ts_port_range ports[] = {{80, 80}, {443, 443}};
	r.match_mask = 1u << TS_FIELD_DPORT;
	r.dport.count = 2;
	r.dport.ranges = ports;
	struct ts_policy p = {.source = "one", .rule_count = 1, .rules = &r};
	p.limits.max_rules = 1;
	p.limits.classifier_memory = 1 << 20;
	char err[256];
	struct ts_classifier *c = ts_classifier_build(&p, err, sizeof(err));
	CHECK(c != NULL);
	if (!c)
		return;
	struct ts_classifier_stats s;
	ts_classifier_get_stats(c, &s);
	CHECK_EQ_INT(s.rules, 1);
	CHECK_EQ_INT(s.fields, 1);
	/* [0,80) [80,81) [81,443) [443,444) [444,65535]: 5 intervals, and the
	 * vectors "none" and "rule 0" shared between them. */
	CHECK_EQ_INT(s.intervals, 5);
	CHECK(s.memory > 0);
	struct ts_decoded d = {.l3 = TS_L3_IPV4, .l4 = TS_L4_TCP, .has_ports = true, .dport = 443};
	struct ts_match_input in = {.dec = &d};
	CHECK_EQ_INT(ts_classify(c, &in), 0);
	d.dport = 444;
	CHECK_EQ_INT(ts_classify(c, &in), -1);
	d.has_ports = false; /* a non-first fragment */
	d.dport = 443;
	CHECK_EQ_INT(ts_classify(c, &in), -1);
	ts_classifier_free(c);
}

int main(void)
{
	RUN(test_stats);
	RUN(test_empty_policy);
	RUN(test_small_policies);
	RUN(test_large_policies);
	RUN(test_many_intervals);
	RUN(test_memory_cap);
	return check_exit_code();
}
