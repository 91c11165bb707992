/* Link-layer decode: find the network header inside each supported framing. */
#include <string.h>

#include "decode_internal.h"
#include "torsieve/bytes.h"

#define ETH_HLEN  14
#define VLAN_HLEN 4
#define SLL_HLEN  16
#define SLL2_HLEN 20
#define NULL_HLEN 4

#define ETHERTYPE_IPV4  0x0800
#define ETHERTYPE_IPV6  0x86dd
#define ETHERTYPE_VLAN  0x8100
#define ETHERTYPE_QINQ  0x88a8
#define ETHERTYPE_QINQ1 0x9100 /* pre-standard stacked tag, still seen on switches */

#define ARPHRD_ETHER 1

static bool is_vlan_ethertype(uint16_t type)
{
	return type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ1;
}

/* Decode from an ethertype onwards: VLAN tags, then the network layer. */
static enum ts_anomaly decode_ethertype(const struct ts_frame *f, uint32_t off, uint16_t type,
                                        struct ts_decoded *d)
{
	while (is_vlan_ethertype(type)) {
		if (d->vlan_count == TS_VLAN_MAX)
			return TS_ANOM_VLAN_TOO_DEEP;
		if (f->caplen - off < VLAN_HLEN)
			return TS_ANOM_VLAN_TRUNCATED;
		d->vlan_ids[d->vlan_count++] = ts_be16(f->data + off) & 0x0fff;
		type = ts_be16(f->data + off + 2);
		off += VLAN_HLEN;
	}
	d->ethertype = type;
	switch (type) {
	case ETHERTYPE_IPV4:
		return ts_decode_ipv4(f, off, d);
	case ETHERTYPE_IPV6:
		return ts_decode_ipv6(f, off, d);
	default:
		d->l3 = TS_L3_OTHER;
		return TS_ANOM_NONE;
	}
}

static enum ts_anomaly decode_ethernet(const struct ts_frame *f, struct ts_decoded *d)
{
	if (f->caplen < ETH_HLEN)
		return TS_ANOM_ETH_TRUNCATED;
	memcpy(d->dst_mac, f->data, 6);
	memcpy(d->src_mac, f->data + 6, 6);
	d->has_mac = true;
	return decode_ethertype(f, ETH_HLEN, ts_be16(f->data + 12), d);
}

static void cooked_mac(const uint8_t *hatype, const uint8_t *addr, uint32_t addrlen,
                       struct ts_decoded *d)
{
	if (ts_be16(hatype) == ARPHRD_ETHER && addrlen == 6) {
		memcpy(d->src_mac, addr, 6);
		memset(d->dst_mac, 0, 6); /* a cooked header carries the source only */
		d->has_mac = true;
	}
}

/* Linux cooked v1: pkttype(2) hatype(2) addrlen(2) addr(8) protocol(2). */
static enum ts_anomaly decode_sll(const struct ts_frame *f, struct ts_decoded *d)
{
	if (f->caplen < SLL_HLEN)
		return TS_ANOM_SLL_TRUNCATED;
	cooked_mac(f->data + 2, f->data + 6, ts_be16(f->data + 4), d);
	return decode_ethertype(f, SLL_HLEN, ts_be16(f->data + 14), d);
}

/* Linux cooked v2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1)
 * addrlen(1) addr(8). */
static enum ts_anomaly decode_sll2(const struct ts_frame *f, struct ts_decoded *d)
{
	if (f->caplen < SLL2_HLEN)
		return TS_ANOM_SLL2_TRUNCATED;
	cooked_mac(f->data + 8, f->data + 12, f->data[11], d);
	return decode_ethertype(f, SLL2_HLEN, ts_be16(f->data), d);
}

/* The values that mean IPv6 in DLT_NULL/DLT_LOOP, as the link-type registry
 * lists them: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30. Linux's AF_INET6 (10)
 * is not one of them (tcpdump calls it unknown), so it stays "other". */
static bool is_inet6_family(uint32_t family)
{
	return family == 24 || family == 28 || family == 30;
}

static enum ts_anomaly decode_loopback(const struct ts_frame *f, bool network_order,
                                       struct ts_decoded *d)
{
	if (f->caplen < NULL_HLEN)
		return TS_ANOM_NULL_TRUNCATED;
	uint32_t family = network_order ? ts_be32(f->data) : ts_le32(f->data);
	/* DLT_NULL is in the writer's byte order. Families are small numbers, so
	 * a value with its low half clear was written big-endian. */
	if (!network_order && (family & 0xffff) == 0)
		family = ts_be32(f->data);
	if (family == 2)
		return ts_decode_ipv4(f, NULL_HLEN, d);
	if (is_inet6_family(family))
		return ts_decode_ipv6(f, NULL_HLEN, d);
	d->l3 = TS_L3_OTHER;
	return TS_ANOM_NONE;
}

enum ts_anomaly ts_decode_ip(const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                             struct ts_decoded *out)
{
	return ts_decode(TS_LINK_RAW, data, caplen, wirelen, out);
}

static enum ts_anomaly decode_raw(const struct ts_frame *f, struct ts_decoded *d)
{
	if (f->caplen < 1)
		return TS_ANOM_RAW_BAD_VERSION;
	switch (f->data[0] >> 4) {
	case 4:
		return ts_decode_ipv4(f, 0, d);
	case 6:
		return ts_decode_ipv6(f, 0, d);
	default:
		return TS_ANOM_RAW_BAD_VERSION;
	}
}

static enum ts_anomaly decode_link(const struct ts_frame *f, struct ts_decoded *d)
{
	switch (d->link) {
	case TS_LINK_ETHERNET:
		return decode_ethernet(f, d);
	case TS_LINK_SLL:
		return decode_sll(f, d);
	case TS_LINK_SLL2:
		return decode_sll2(f, d);
	case TS_LINK_RAW:
		return decode_raw(f, d);
	case TS_LINK_IPV4:
		return ts_decode_ipv4(f, 0, d);
	case TS_LINK_IPV6:
		return ts_decode_ipv6(f, 0, d);
	case TS_LINK_NULL:
		return decode_loopback(f, false, d);
	case TS_LINK_LOOP:
		return decode_loopback(f, true, d);
	case TS_LINK_UNSUPPORTED:
		break;
	}
	return TS_ANOM_LINKTYPE_UNSUPPORTED;
}

enum ts_anomaly ts_decode(enum ts_link link, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                          struct ts_decoded *out)
{
	/* A constant-size reset of at most 64 bytes stays a few vector stores. */
	_Static_assert(TS_DECODED_RESET_END <= 64,
	               "the reset part of ts_decoded grew past 64 bytes");
	memset(out, 0, TS_DECODED_RESET_END);
	out->link = link;
	struct ts_frame f = {
	        .data = data,
	        .caplen = data ? caplen : 0,
	        .wirelen = wirelen < caplen ? caplen : wirelen,
	};
	if (!data)
		f.wirelen = 0;
	out->anomaly = decode_link(&f, out);
	return out->anomaly;
}
