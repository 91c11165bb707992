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
	g->reject_rate = 100;
	g->fast_path = true;
	ts_relay_config_default(&g->relay);
	ts_dns_config_default(&g->dns);
}

void ts_dns_config_default(struct ts_dns_config *d)
{
	memset(d, 0, sizeof(*d));
	d->enabled = true;
	/* Tor's own default for TransPort setups; clients route it to the
	 * gateway like any address that is not on their link */
	d->virtual4 = (struct ts_prefix){.family = 4, .len = 10, .addr = {10, 192}};
	d->virtual6 = (struct ts_prefix){.family = 6, .len = 32, .addr = {0xfd, 0x74, 0x6f, 0x72}};
	d->map_size = 4096;
	d->map_idle = 3600;
	d->cache_size = 1024;
	d->ttl_min = 60;
	d->ttl_max = 3600;
	d->pending = 256;
	d->pending_per_client = 32;
	d->timeout = 10;
	d->tcp_connections = 64;
}

void ts_relay_config_default(struct ts_relay_config *r)
{
	memset(r, 0, sizeof(*r));
	r->enabled = true;
	r->tor_count = 1;
	r->tor[0] = (struct ts_tor_endpoint){.family = 4, .addr = {127, 0, 0, 1}, .port = 9050};
	r->isolation = TS_ISOLATE_MAC;
	r->pending_syns = 256;
	r->pending_per_client = 32;
	/* Tor gives up on a stream after 120 s (SocksTimeout) but a client's
	 * SYN retries end sooner; an answer after 30 s helps nobody. */
	r->syn_timeout = 30;
	r->connections = 1024;
	r->connections_per_client = 256;
	r->idle_timeout = 900;
	r->buffer = 64u << 10;
	r->tor_retry = 5;
}

const char *ts_mark_name(enum ts_mark_kind k)
{
	static const char *const names[TS_MARK_COUNT] = {"pass", "divert", "dns", "reset"};
	return (unsigned)k < TS_MARK_COUNT ? names[k] : "?";
}

uint32_t ts_gateway_mark(const struct ts_gateway_config *g, enum ts_mark_kind k)
{
	uint32_t shift = g->mark_mask ? (uint32_t)__builtin_ctz(g->mark_mask) : 0;
	return (g->marks[k] << shift) & g->mark_mask;
}

enum ts_gateway_action ts_gateway_action(const struct ts_judgement *j, enum ts_l4 l4,
                                         enum ts_mark_kind *mark)
{
	switch (j->verdict) {
	case TS_VERDICT_PASS:
		*mark = TS_MARK_PASS;
		return TS_GATEWAY_MARK;
	case TS_VERDICT_DIVERT:
		*mark = TS_MARK_DIVERT;
		return TS_GATEWAY_MARK;
	case TS_VERDICT_DNS:
		*mark = TS_MARK_DNS;
		return TS_GATEWAY_MARK;
	case TS_VERDICT_REJECT:
		if (j->reject == TS_REJECT_TCP_RESET ||
		    (j->reject == TS_REJECT_DEFAULT && l4 == TS_L4_TCP)) {
			*mark = TS_MARK_RESET;
			return TS_GATEWAY_MARK;
		}
		return TS_GATEWAY_ICMP;
	default:
		return TS_GATEWAY_DROP;
	}
}
