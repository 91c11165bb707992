/* Transport-layer decode: TCP (with options), UDP, ICMP and ICMPv6. */
#include "decode_internal.h"
#include "torsieve/bytes.h"

#define TCP_MIN_HLEN  20
#define UDP_HLEN      8
#define ICMP_MIN_HLEN 8

enum {
	TCPOPT_EOL = 0,
	TCPOPT_NOP = 1,
	TCPOPT_MSS = 2,
	TCPOPT_WSCALE = 3,
	TCPOPT_SACK_PERMITTED = 4,
	TCPOPT_SACK = 5,
	TCPOPT_TIMESTAMP = 8,
};

enum ts_l4 ts_l4_from_proto(uint8_t ip_proto)
{
	switch (ip_proto) {
	case TS_IPPROTO_TCP:
		return TS_L4_TCP;
	case TS_IPPROTO_UDP:
		return TS_L4_UDP;
	case TS_IPPROTO_ICMP:
		return TS_L4_ICMP;
	case TS_IPPROTO_ICMPV6:
		return TS_L4_ICMP6;
	default:
		return TS_L4_OTHER;
	}
}

uint32_t ts_transport_min_header(uint8_t ip_proto)
{
	switch (ip_proto) {
	case TS_IPPROTO_TCP:
		return TCP_MIN_HLEN;
	case TS_IPPROTO_UDP:
		return UDP_HLEN;
	case TS_IPPROTO_ICMP:
	case TS_IPPROTO_ICMPV6:
		return ICMP_MIN_HLEN;
	default:
		return 0;
	}
}

/* The exact size each known option must have; 0 for options torsieve skips. */
static bool tcp_option_size_ok(uint8_t kind, uint8_t len)
{
	switch (kind) {
	case TCPOPT_MSS:
		return len == 4;
	case TCPOPT_WSCALE:
		return len == 3;
	case TCPOPT_SACK_PERMITTED:
		return len == 2;
	case TCPOPT_TIMESTAMP:
		return len == 10;
	case TCPOPT_SACK:
		return len >= 10 && (len - 2) % 8 == 0;
	default:
		return true;
	}
}

static void tcp_option_store(uint8_t kind, const uint8_t *o, uint8_t len, struct ts_tcp_opts *t)
{
	switch (kind) {
	case TCPOPT_MSS:
		t->has_mss = true;
		t->mss = ts_be16(o + 2);
		break;
	case TCPOPT_WSCALE:
		t->has_wscale = true;
		t->wscale = o[2];
		break;
	case TCPOPT_SACK_PERMITTED:
		t->sack_permitted = true;
		break;
	case TCPOPT_TIMESTAMP:
		t->has_timestamp = true;
		t->ts_val = ts_be32(o + 2);
		t->ts_ecr = ts_be32(o + 6);
		break;
	case TCPOPT_SACK:
		t->sack_blocks = (uint8_t)((len - 2) / 8);
		break;
	default:
		break;
	}
}

static enum ts_anomaly tcp_parse_options(const uint8_t *o, uint32_t len, struct ts_tcp_opts *t)
{
	uint32_t i = 0;
	while (i < len) {
		uint8_t kind = o[i];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2)
			return TS_ANOM_TCP_BAD_OPTION;
		uint8_t olen = o[i + 1];
		if (olen < 2 || olen > len - i)
			return TS_ANOM_TCP_BAD_OPTION;
		if (!tcp_option_size_ok(kind, olen))
			return TS_ANOM_TCP_BAD_OPTION_LEN;
		tcp_option_store(kind, o + i, olen, t);
		i += olen;
	}
	return TS_ANOM_NONE;
}

/* Flag combinations no TCP stack sends: scans and stack fingerprinting. */
static bool tcp_flags_valid(uint8_t flags)
{
	uint8_t core = flags & (TS_TCP_FIN | TS_TCP_SYN | TS_TCP_RST | TS_TCP_PSH | TS_TCP_ACK |
	                        TS_TCP_URG);
	if ((core & TS_TCP_SYN) && (core & (TS_TCP_FIN | TS_TCP_RST)))
		return false;
	if (!(core & TS_TCP_ACK))
		return core == TS_TCP_SYN || core == TS_TCP_RST;
	return true;
}

static enum ts_anomaly decode_tcp(const uint8_t *p, uint32_t off, uint32_t seg, uint32_t captured,
                                  struct ts_decoded *d)
{
	if (seg < TCP_MIN_HLEN || captured < TCP_MIN_HLEN)
		return TS_ANOM_TCP_TRUNCATED;
	d->sport = ts_be16(p);
	d->dport = ts_be16(p + 2);
	d->tcp_seq = ts_be32(p + 4);
	d->tcp_ack = ts_be32(p + 8);
	d->tcp_flags = p[13];
	d->tcp_window = ts_be16(p + 14);
	d->tcp_opts = (struct ts_tcp_opts){0};
	d->has_ports = true;
	d->has_l4_header = true;

	uint32_t hlen = (uint32_t)(p[12] >> 4) * 4;
	if (hlen < TCP_MIN_HLEN || hlen > seg)
		return TS_ANOM_TCP_BAD_DOFF;
	if (hlen > captured)
		return TS_ANOM_TCP_TRUNCATED;
	enum ts_anomaly a = tcp_parse_options(p + TCP_MIN_HLEN, hlen - TCP_MIN_HLEN, &d->tcp_opts);
	if (a != TS_ANOM_NONE)
		return a;
	if (!tcp_flags_valid(d->tcp_flags))
		return TS_ANOM_TCP_BAD_FLAGS;
	if (d->sport == 0 || d->dport == 0)
		return TS_ANOM_PORT_ZERO;
	d->payload_offset = off + hlen;
	d->payload_len = seg - hlen;
	return TS_ANOM_NONE;
}

static enum ts_anomaly decode_udp(const uint8_t *p, uint32_t off, uint32_t seg, uint32_t captured,
                                  bool first_frag_only, struct ts_decoded *d)
{
	if (seg < UDP_HLEN || captured < UDP_HLEN)
		return TS_ANOM_UDP_TRUNCATED;
	d->sport = ts_be16(p);
	d->dport = ts_be16(p + 2);
	d->has_ports = true;
	d->has_l4_header = true;
	uint32_t ulen = ts_be16(p + 4);
	/* In a first fragment the length covers the whole datagram. */
	if (ulen < UDP_HLEN || (!first_frag_only && ulen > seg))
		return TS_ANOM_UDP_BAD_LEN;
	if (d->dport == 0)
		return TS_ANOM_PORT_ZERO;
	d->payload_offset = off + UDP_HLEN;
	d->payload_len = (first_frag_only ? seg : ulen) - UDP_HLEN;
	return TS_ANOM_NONE;
}

static enum ts_anomaly decode_icmp(const uint8_t *p, uint32_t off, uint32_t seg, uint32_t captured,
                                   enum ts_l3 family, struct ts_decoded *d)
{
	bool v6 = d->l4 == TS_L4_ICMP6;
	if (family != (v6 ? TS_L3_IPV6 : TS_L3_IPV4))
		return TS_ANOM_ICMP_WRONG_FAMILY;
	if (seg < ICMP_MIN_HLEN || captured < ICMP_MIN_HLEN)
		return v6 ? TS_ANOM_ICMP6_TRUNCATED : TS_ANOM_ICMP_TRUNCATED;
	d->icmp_type = p[0];
	d->icmp_code = p[1];
	d->has_l4_header = true;
	d->payload_offset = off + ICMP_MIN_HLEN;
	d->payload_len = seg - ICMP_MIN_HLEN;
	return TS_ANOM_NONE;
}

enum ts_anomaly ts_decode_transport(const struct ts_frame *f, struct ts_decoded *d, uint32_t off,
                                    uint32_t seg, bool first_frag_only)
{
	/* Bytes past the datagram (Ethernet padding) are not the segment's. */
	uint32_t cap_end = f->caplen - off < seg ? f->caplen : off + seg;
	uint32_t captured = cap_end - off;
	const uint8_t *p = f->data + off;

	switch (d->l4) {
	case TS_L4_TCP:
		return decode_tcp(p, off, seg, captured, d);
	case TS_L4_UDP:
		return decode_udp(p, off, seg, captured, first_frag_only, d);
	case TS_L4_ICMP:
	case TS_L4_ICMP6:
		return decode_icmp(p, off, seg, captured, d->l3, d);
	case TS_L4_NONE:
	case TS_L4_OTHER:
		break;
	}
	return TS_ANOM_NONE;
}
