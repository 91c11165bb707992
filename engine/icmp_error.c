/* Building ICMP and ICMPv6 errors about a packet (no sockets here). */
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/reject.h"

#define IPV4_HLEN      20
#define ICMP_HLEN      8
#define IPV4_ERROR_MAX 576  /* RFC 1812 4.3.2.3: as much as fits in 576 bytes */
#define IPV6_MIN_MTU   1280 /* RFC 4443 2.4 (c) */
#define IPV6_HLEN      40

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ICMP messages no error may answer. */
static bool is_icmp_error(uint8_t type, bool v6)
{
	if (v6)
		return type < 128 || type == 137; /* errors, and redirects (RFC 4443 2.4 e.2) */
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/* Not to be answered: RFC 1122 3.2.2 and RFC 4443 2.4 (e). */
static bool answerable(const struct ts_decoded *d)
{
	if (d->l3 != TS_L3_IPV4 && d->l3 != TS_L3_IPV6)
		return false;
	if (d->is_fragment && d->frag_offset)
		return false;
	if ((d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) &&
	    (!d->has_l4_header || is_icmp_error(d->icmp_type, d->l4 == TS_L4_ICMP6)))
		return false;
	if (d->l3 == TS_L3_IPV4) {
		const uint8_t *s = d->src_addr, *t = d->dst_addr;
		if (s[0] >= 224 || t[0] >= 224 || (!s[0] && !s[1] && !s[2] && !s[3]) ||
		    s[0] == 127 || (t[0] == 255 && t[1] == 255 && t[2] == 255 && t[3] == 255))
			return false;
		return true;
	}
	if (d->l3 == TS_L3_IPV6) {
		static const uint8_t unspecified[16];
		if (d->src_addr[0] == 0xff || d->dst_addr[0] == 0xff ||
		    !memcmp(d->src_addr, unspecified, 16))
			return false;
		return true;
	}
	return false;
}

static size_t build_v4(const uint8_t *ip, uint32_t len, const struct ts_decoded *d,
                       enum ts_reject_kind kind, uint8_t *out, size_t cap)
{
	static const uint8_t codes[TS_REJECT_COUNT] = {
	        [TS_REJECT_DEFAULT] = 3,          [TS_REJECT_NET_UNREACHABLE] = 0,
	        [TS_REJECT_HOST_UNREACHABLE] = 1, [TS_REJECT_PROTO_UNREACHABLE] = 2,
	        [TS_REJECT_PORT_UNREACHABLE] = 3, [TS_REJECT_ADMIN_PROHIBITED] = 13,
	};
	size_t quote = len;
	if (quote > IPV4_ERROR_MAX - IPV4_HLEN - ICMP_HLEN)
		quote = IPV4_ERROR_MAX - IPV4_HLEN - ICMP_HLEN;
	size_t total = IPV4_HLEN + ICMP_HLEN + quote;
	if (total > cap)
		return 0;
	uint8_t *h = out, *icmp = out + IPV4_HLEN;
	memset(out, 0, IPV4_HLEN + ICMP_HLEN);
	h[0] = 0x45;
	h[1] = 0xc0; /* internetwork control, as the kernel's own ICMP errors */
	put16(h + 2, (uint16_t)total);
	h[8] = 64;
	h[9] = 1;
	memcpy(h + 12, d->dst_addr, 4); /* from where the client sent it */
	memcpy(h + 16, d->src_addr, 4);
	put16(h + 10, fold(sum16(h, IPV4_HLEN, 0)));
	icmp[0] = 3;
	icmp[1] = codes[kind];
	memcpy(icmp + ICMP_HLEN, ip, quote);
	put16(icmp + 2, fold(sum16(icmp, ICMP_HLEN + quote, 0)));
	return total;
}

static size_t build_v6(const uint8_t *ip, uint32_t len, const struct ts_decoded *d,
                       enum ts_reject_kind kind, uint8_t *out, size_t cap)
{
	static const uint8_t codes[TS_REJECT_COUNT] = {
	        [TS_REJECT_DEFAULT] = 4,          [TS_REJECT_NET_UNREACHABLE] = 0,
	        [TS_REJECT_HOST_UNREACHABLE] = 3, [TS_REJECT_PORT_UNREACHABLE] = 4,
	        [TS_REJECT_ADMIN_PROHIBITED] = 1,
	};
	size_t quote = len;
	if (quote > IPV6_MIN_MTU - IPV6_HLEN - ICMP_HLEN)
		quote = IPV6_MIN_MTU - IPV6_HLEN - ICMP_HLEN;
	size_t total = ICMP_HLEN + quote;
	if (total > cap)
		return 0;
	memset(out, 0, ICMP_HLEN);
	if (kind == TS_REJECT_PROTO_UNREACHABLE) {
		/* IPv6's "protocol unreachable" is a parameter problem pointing at
		 * the next-header field that named it (RFC 4443 3.4, code 1). */
		out[0] = 4;
		out[1] = 1;
		/* the IPv6 header's next-header byte, or the last extension
		 * header's first byte */
		uint32_t pointer = 6, off = IPV6_HLEN;
		for (unsigned i = 0; i < d->ipv6_ext_count && off + 2 <= len; i++) {
			pointer = off;
			uint8_t t = d->ipv6_ext[i];
			off += t == TS_IPPROTO_FRAGMENT ? 8
			       : t == TS_IPPROTO_AH     ? ((uint32_t)ip[off + 1] + 2) * 4
			                                : ((uint32_t)ip[off + 1] + 1) * 8;
		}
		out[4] = (uint8_t)(pointer >> 24);
		out[5] = (uint8_t)(pointer >> 16);
		out[6] = (uint8_t)(pointer >> 8);
		out[7] = (uint8_t)pointer;
	} else {
		out[0] = 1;
		out[1] = codes[kind];
	}
	memcpy(out + ICMP_HLEN, ip, quote);
	/* The pseudo-header: the error goes from the packet's destination back
	 * to its source. */
	uint32_t sum = sum16(d->dst_addr, 16, 0);
	sum = sum16(d->src_addr, 16, sum);
	sum += (uint32_t)total;
	sum += TS_IPPROTO_ICMPV6;
	put16(out + 2, fold(sum16(out, total, sum)));
	return total;
}

size_t ts_icmp_error_build(const uint8_t *ip, uint32_t len, const struct ts_decoded *d,
                           enum ts_reject_kind kind, uint8_t *out, size_t cap)
{
	if (kind == TS_REJECT_TCP_RESET || (unsigned)kind >= TS_REJECT_COUNT || !answerable(d))
		return 0;
	if (d->l3 == TS_L3_IPV4)
		return build_v4(ip, len, d, kind, out, cap);
	return build_v6(ip, len, d, kind, out, cap);
}
