/*
 * Rule semantics, field by field, evaluated directly: the reference the
 * compiled classifier is tested against, and the definition of what each
 * match term means.
 */
#include <stdlib.h>
#include <string.h>

#include "torsieve/classify.h"
#include "torsieve/policy.h"

static bool bit_is_set(const uint8_t *bitmap, uint8_t value)
{
	return bitmap[value >> 3] & (1u << (value & 7));
}

static bool is_ip(const struct ts_decoded *d)
{
	return d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6;
}

static bool prefix_covers(const struct ts_prefix *p, const uint8_t *addr)
{
	uint32_t full = p->len / 8, rest = p->len % 8;
	if (memcmp(p->addr, addr, full) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (p->addr[full] & mask) == (addr[full] & mask);
}

static bool addr_matches(const struct ts_addr_spec *s, const struct ts_decoded *d,
                         const uint8_t *addr)
{
	bool covered = false;
	uint8_t family = d->l3 == TS_L3_IPV4 ? 4 : 6;
	for (uint32_t i = 0; is_ip(d) && i < s->count && !covered; i++)
		covered = s->prefixes[i].family == family && prefix_covers(&s->prefixes[i], addr);
	return covered != s->negated;
}

static bool port_matches(const struct ts_port_spec *s, const struct ts_decoded *d, uint16_t port)
{
	if (!d->has_ports)
		return false;
	bool in = false;
	for (uint32_t i = 0; i < s->count && !in; i++)
		in = port >= s->ranges[i].lo && port <= s->ranges[i].hi;
	return in != s->negated;
}

static bool mac_matches(const struct ts_mac_spec *s, const struct ts_decoded *d)
{
	if (!d->has_mac)
		return false;
	bool in = false;
	for (uint32_t i = 0; i < s->count && !in; i++)
		in = memcmp(s->macs[i], d->src_mac, 6) == 0;
	return in != s->negated;
}

static bool iface_matches(const struct ts_iface_spec *s, const char *iface)
{
	if (!iface)
		return false;
	bool in = false;
	for (uint32_t i = 0; i < s->count && !in; i++)
		in = strcmp(s->names[i], iface) == 0;
	return in != s->negated;
}

static bool has_icmp_header(const struct ts_decoded *d)
{
	return (d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) && d->has_l4_header;
}

#define HAS(field) (r->match_mask & (1u << (field)))

bool ts_rule_matches_fields(const struct ts_rule *r, const struct ts_match_input *in)
{
	const struct ts_decoded *d = in->dec;
	if (HAS(TS_FIELD_FAMILY) && d->l3 != (r->family == 4 ? TS_L3_IPV4 : TS_L3_IPV6))
		return false;
	if (HAS(TS_FIELD_PROTO) && (!is_ip(d) || !bit_is_set(r->protos, d->ip_proto)))
		return false;
	if (HAS(TS_FIELD_SRC) && !addr_matches(&r->src, d, d->src_addr))
		return false;
	if (HAS(TS_FIELD_DST) && !addr_matches(&r->dst, d, d->dst_addr))
		return false;
	if (HAS(TS_FIELD_SPORT) && !port_matches(&r->sport, d, d->sport))
		return false;
	if (HAS(TS_FIELD_DPORT) && !port_matches(&r->dport, d, d->dport))
		return false;
	if (HAS(TS_FIELD_MAC) && !mac_matches(&r->mac, d))
		return false;
	if (HAS(TS_FIELD_IFACE) && !iface_matches(&r->iface, in->iface))
		return false;
	if (HAS(TS_FIELD_TCP_FLAGS) && (d->l4 != TS_L4_TCP || !d->has_l4_header ||
	                                (d->tcp_flags & r->tcp_flags_mask) != r->tcp_flags))
		return false;
	if (HAS(TS_FIELD_ICMP_TYPE) &&
	    (!has_icmp_header(d) || !bit_is_set(r->icmp_types, d->icmp_type)))
		return false;
	if (HAS(TS_FIELD_ICMP_CODE) &&
	    (!has_icmp_header(d) || !bit_is_set(r->icmp_codes, d->icmp_code)))
		return false;
	return true;
}

int32_t ts_policy_match_linear(const struct ts_policy *p, const struct ts_match_input *in)
{
	if (in->dec->anomaly != TS_ANOM_NONE)
		return -1;
	for (uint32_t i = 0; i < p->rule_count; i++) {
		const struct ts_rule *r = &p->rules[i];
		if (!ts_rule_matches_fields(r, in))
			continue;
		if ((r->match_mask & (1u << TS_FIELD_BPF)) &&
		    !(p->bpf_match && p->bpf_match(r, in)))
			continue;
		return (int32_t)i;
	}
	return -1;
}

const char *ts_verdict_name(enum ts_verdict v)
{
	static const char *const names[TS_VERDICT_COUNT] = {"drop", "reject", "pass", "divert",
	                                                    "dns"};
	return (unsigned)v < TS_VERDICT_COUNT ? names[v] : "unknown";
}

const char *ts_reject_name(enum ts_reject_kind k)
{
	static const char *const names[TS_REJECT_COUNT] = {
	        "default",          "tcp-reset",         "net-unreachable", "host-unreachable",
	        "port-unreachable", "proto-unreachable", "admin-prohibited"};
	return (unsigned)k < TS_REJECT_COUNT ? names[k] : "unknown";
}

void ts_policy_judge(const struct ts_policy *p, const struct ts_match_input *in,
                     struct ts_judgement *out)
{
	int32_t r = in->dec->anomaly == TS_ANOM_NONE ? ts_classify(p->classifier, in) : -1;
	if (r < 0) {
		*out = (struct ts_judgement){.verdict = TS_VERDICT_DROP, .rule = -1};
		return;
	}
	const struct ts_rule *rule = &p->rules[r];
	*out = (struct ts_judgement){
	        .verdict = rule->action,
	        .reject = rule->reject,
	        .rule = r,
	        .line = rule->line,
	};
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool ts_policy_name_blocked(const struct ts_policy *p, const char *name)
{
	if (!p->dns_block_count)
		return false;
	/* the name, then each name it is under: a.b.c, b.c, c */
	for (const char *s = name; *s;) {
		if (bsearch(&s, p->dns_block, p->dns_block_count, sizeof(*p->dns_block),
		            compare_names))
			return true;
		const char *dot = strchr(s, '.');
		if (!dot)
			break;
		s = dot + 1;
	}
	return false;
}
