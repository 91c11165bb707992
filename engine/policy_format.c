/* Rules back to policy text: what `torsieve check` prints, and what the
 * tests parse again to see the round trip hold. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "torsieve/policy.h"

struct out {
	char *buf;
	size_t len, used;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	if (o->used >= o->len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

static void emit_prefixes(struct out *o, const struct ts_addr_spec *s)
{
	emit(o, " %s{", s->negated ? "!" : "");
	for (uint32_t i = 0; i < s->count; i++) {
		const struct ts_prefix *p = &s->prefixes[i];
		char addr[INET6_ADDRSTRLEN];
		inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, addr, sizeof(addr));
		emit(o, "%s%s/%u", i ? ", " : " ", addr, p->len);
	}
	emit(o, " }");
}

static void emit_ports(struct out *o, const struct ts_port_spec *s)
{
	emit(o, " port %s{", s->negated ? "!" : "");
	for (uint32_t i = 0; i < s->count; i++) {
		const struct ts_port_range *r = &s->ranges[i];
		if (r->lo == r->hi)
			emit(o, "%s%u", i ? ", " : " ", r->lo);
		else
			emit(o, "%s%u-%u", i ? ", " : " ", r->lo, r->hi);
	}
	emit(o, " }");
}

static void emit_bitmap(struct out *o, const char *word, const uint8_t *bitmap, bool protos)
{
	emit(o, " %s {", word);
	const char *sep = " ";
	for (unsigned v = 0; v < 256; v++)
		if (bitmap[v >> 3] & (1u << (v & 7))) {
			const char *name = protos ? ts_ip_proto_name(v) : NULL;
			if (name)
				emit(o, "%s%s", sep, name);
			else
				emit(o, "%s%u", sep, v);
			sep = ", ";
		}
	emit(o, " }");
}

static void emit_endpoint(struct out *o, const struct ts_rule *r, bool src)
{
	enum ts_field af = src ? TS_FIELD_SRC : TS_FIELD_DST;
	enum ts_field pf = src ? TS_FIELD_SPORT : TS_FIELD_DPORT;
	bool has_addr = r->match_mask & (1u << af), has_port = r->match_mask & (1u << pf);
	if (!has_addr && !has_port)
		return;
	emit(o, " %s", src ? "from" : "to");
	if (has_addr)
		emit_prefixes(o, src ? &r->src : &r->dst);
	if (has_port)
		emit_ports(o, src ? &r->sport : &r->dport);
}

void ts_rule_format(const struct ts_rule *r, char *buf, size_t len)
{
	struct out o = {.buf = buf, .len = len};
	if (len)
		buf[0] = '\0';
	uint32_t m = r->match_mask;
	emit(&o, "%s", ts_verdict_name(r->action));
	if (r->reject != TS_REJECT_DEFAULT)
		emit(&o, " with %s", ts_reject_name(r->reject));
	if (!m) {
		emit(&o, " all");
		return;
	}
	if (m & (1u << TS_FIELD_FAMILY))
		emit(&o, " %s", r->family == 4 ? "inet" : "inet6");
	if (m & (1u << TS_FIELD_PROTO))
		emit_bitmap(&o, "proto", r->protos, true);
	emit_endpoint(&o, r, true);
	emit_endpoint(&o, r, false);
	if (m & (1u << TS_FIELD_MAC)) {
		emit(&o, " mac %s{", r->mac.negated ? "!" : "");
		for (uint32_t i = 0; i < r->mac.count; i++) {
			const uint8_t *a = r->mac.macs[i];
			emit(&o, "%s%02x:%02x:%02x:%02x:%02x:%02x", i ? ", " : " ", a[0], a[1],
			     a[2], a[3], a[4], a[5]);
		}
		emit(&o, " }");
	}
	if (m & (1u << TS_FIELD_IFACE)) {
		emit(&o, " on %s{", r->iface.negated ? "!" : "");
		for (uint32_t i = 0; i < r->iface.count; i++)
			emit(&o, "%s%s", i ? ", " : " ", r->iface.names[i]);
		emit(&o, " }");
	}
	if (m & (1u << TS_FIELD_TCP_FLAGS)) {
		char set[9], mask[9];
		ts_tcp_flags_str(r->tcp_flags, set);
		ts_tcp_flags_str(r->tcp_flags_mask, mask);
		emit(&o, " flags %s/%s", set, mask);
	}
	if (m & (1u << TS_FIELD_ICMP_TYPE))
		emit_bitmap(&o, "icmp-type", r->icmp_types, false);
	if (m & (1u << TS_FIELD_ICMP_CODE))
		emit_bitmap(&o, "code", r->icmp_codes, false);
	if (m & (1u << TS_FIELD_BPF))
		emit(&o, " bpf \"%s\"", r->bpf_expr);
}
