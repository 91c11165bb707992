/* The gateway's settings and the verdict-to-mark mapping. */
#include <string.h>

#include "torsieve/policy.h"

void ts_gateway_config_default(struct ts_gateway_config *g)
{
	memset(g, 0, sizeof(*g));
	strcpy(g->iface, "br-lan"); /* OpenWrt's hotspot bridge */
	g->queue_first = g->queue_last = 0;
	g->queue_length = 4096;
	g->queue_buffer = 8u << 20;
	g->mark_mask = 0xff00;
	for (int k = 0; k < TS_MARK_COUNT; k++)
		g->marks[k] = (uint32_t)k + 1;
	g->divert_port = 9040;
	g->dns_port = 9053;
	g->route_table = 100;
}

const char *ts_mark_name(enum ts_mark_kind k)
{
	static const char *const names[TS_MARK_COUNT] = {
	        "pass",
	        "divert",
	        "dns",
	        "reject-tcp-reset",
	        "reject-net-unreachable",
	        "reject-host-unreachable",
	        "reject-port-unreachable",
	        "reject-proto-unreachable",
	        "reject-admin-prohibited",
	};
	return (unsigned)k < TS_MARK_COUNT ? names[k] : "?";
}

uint32_t ts_gateway_mark(const struct ts_gateway_config *g, enum ts_mark_kind k)
{
	uint32_t shift = g->mark_mask ? (uint32_t)__builtin_ctz(g->mark_mask) : 0;
	return (g->marks[k] << shift) & g->mark_mask;
}

bool ts_gateway_mark_kind(const struct ts_judgement *j, enum ts_l4 l4, enum ts_mark_kind *out)
{
	static const enum ts_mark_kind reject[TS_REJECT_COUNT] = {
	        [TS_REJECT_TCP_RESET] = TS_MARK_REJECT_TCP_RESET,
	        [TS_REJECT_NET_UNREACHABLE] = TS_MARK_REJECT_NET_UNREACHABLE,
	        [TS_REJECT_HOST_UNREACHABLE] = TS_MARK_REJECT_HOST_UNREACHABLE,
	        [TS_REJECT_PORT_UNREACHABLE] = TS_MARK_REJECT_PORT_UNREACHABLE,
	        [TS_REJECT_PROTO_UNREACHABLE] = TS_MARK_REJECT_PROTO_UNREACHABLE,
	        [TS_REJECT_ADMIN_PROHIBITED] = TS_MARK_REJECT_ADMIN_PROHIBITED,
	};
	switch (j->verdict) {
	case TS_VERDICT_PASS:
		*out = TS_MARK_PASS;
		return true;
	case TS_VERDICT_DIVERT:
		*out = TS_MARK_DIVERT;
		return true;
	case TS_VERDICT_DNS:
		*out = TS_MARK_DNS;
		return true;
	case TS_VERDICT_REJECT:
		if (j->reject == TS_REJECT_DEFAULT)
			*out = l4 == TS_L4_TCP ? TS_MARK_REJECT_TCP_RESET
			                       : TS_MARK_REJECT_PORT_UNREACHABLE;
		else
			*out = reject[j->reject];
		return true;
	default:
		return false;
	}
}
