/* Network-layer decode: IPv4 and IPv6 with its extension-header chain. */
#include <string.h>

#include "decode_internal.h"
#include "torsieve/bytes.h"

#define IPV4_MIN_HLEN  20
#define IPV6_HLEN      40
#define IPV6_FRAG_HLEN 8
#define IP_MAX_DGRAM   65535u

#define IPV4_OPT_EOL 0
#define IPV4_OPT_NOP 1

#define IPV4_FLAG_MF     0x2000
#define IPV4_OFFSET_MASK 0x1fff

static enum ts_anomaly ipv4_check_options(const uint8_t *opt, uint32_t len)
{
	uint32_t i = 0;
	while (i < len) {
		if (opt[i] == IPV4_OPT_EOL)
			break;
		if (opt[i] == IPV4_OPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2)
			return TS_ANOM_IPV4_BAD_OPTION;
		uint8_t olen = opt[i + 1];
		if (olen < 2 || olen > len - i)
			return TS_ANOM_IPV4_BAD_OPTION;
		i += olen;
	}
	return TS_ANOM_NONE;
}

enum ts_anomaly ts_decode_ipv4(const struct ts_frame *f, uint32_t off, struct ts_decoded *d)
{
	const uint8_t *p = f->data + off;
	uint32_t captured = f->caplen - off;
	uint32_t wire = f->wirelen - off;

	d->l3_offset = off;
	if (captured < IPV4_MIN_HLEN)
		return TS_ANOM_IPV4_TRUNCATED;
	if (p[0] >> 4 != 4)
		return TS_ANOM_IPV4_BAD_VERSION;
	d->l3 = TS_L3_IPV4;
	d->ttl = p[8];
	d->ip_proto = p[9];
	d->l4 = ts_l4_from_proto(d->ip_proto);
	memcpy(d->src_addr, p + 12, 4);
	memcpy(d->dst_addr, p + 16, 4);
	memset(d->src_addr + 4, 0, 12);
	memset(d->dst_addr + 4, 0, 12);

	uint32_t hlen = (uint32_t)(p[0] & 0x0f) * 4;
	if (hlen < IPV4_MIN_HLEN)
		return TS_ANOM_IPV4_BAD_HLEN;
	uint32_t totlen = ts_be16(p + 2);
	if (totlen < hlen || totlen > wire)
		return TS_ANOM_IPV4_BAD_TOTLEN;
	if (hlen > captured)
		return TS_ANOM_IPV4_TRUNCATED;

	d->l3_len = totlen;

	enum ts_anomaly a = ipv4_check_options(p + IPV4_MIN_HLEN, hlen - IPV4_MIN_HLEN);
	if (a != TS_ANOM_NONE)
		return a;

	uint16_t frag = ts_be16(p + 6);
	bool more = frag & IPV4_FLAG_MF;
	uint32_t frag_offset = (uint32_t)(frag & IPV4_OFFSET_MASK) * 8;
	uint32_t payload = totlen - hlen;
	d->l4_offset = off + hlen;
	d->l4_len = payload;

	if (more || frag_offset) {
		d->is_fragment = true;
		d->frag_more = more;
		d->frag_offset = frag_offset;
		d->frag_id = ts_be16(p + 4);
		d->frag_data_offset = off + hlen;
		if ((more && payload % 8) || frag_offset + payload > IP_MAX_DGRAM)
			return TS_ANOM_IPV4_FRAG_BAD_LENGTH;
		if (frag_offset)
			return TS_ANOM_NONE; /* the transport header is in the first fragment */
		if (payload < ts_transport_min_header(d->ip_proto))
			return TS_ANOM_IPV4_FRAG_TINY;
	}
	return ts_decode_transport(f, d, off + hlen, payload, more);
}

static bool ipv6_is_extension(uint8_t nh)
{
	return nh == TS_IPPROTO_HOPOPTS || nh == TS_IPPROTO_ROUTING || nh == TS_IPPROTO_FRAGMENT ||
	       nh == TS_IPPROTO_DSTOPTS || nh == TS_IPPROTO_AH;
}

/* Length of the extension header whose first two bytes are at p. */
static uint32_t ipv6_extension_len(uint8_t nh, const uint8_t *p)
{
	if (nh == TS_IPPROTO_FRAGMENT)
		return IPV6_FRAG_HLEN;
	if (nh == TS_IPPROTO_AH)
		return ((uint32_t)p[1] + 2) * 4;
	return ((uint32_t)p[1] + 1) * 8;
}

struct ipv6_walk {
	uint32_t cur;    /* offset of the header being read */
	uint32_t end;    /* wire end of the datagram */
	uint32_t nh_off; /* the byte that holds nh */
	uint8_t nh;
	bool saw_fragment;   /* a fragment header was read (atomic ones too) */
	bool first_fragment; /* inside the first of several fragments */
};

/*
 * Where a header does not fit: inside the wire datagram but not captured is
 * truncation; past the datagram is truncation too, except that in a first
 * fragment it means the header chain was split across fragments.
 */
static enum ts_anomaly ipv6_need(const struct ts_frame *f, const struct ipv6_walk *w, uint32_t len)
{
	if (w->end - w->cur < len)
		return w->first_fragment ? TS_ANOM_IPV6_FRAG_TINY : TS_ANOM_IPV6_EXT_TRUNCATED;
	if (f->caplen - w->cur < len)
		return TS_ANOM_IPV6_EXT_TRUNCATED;
	return TS_ANOM_NONE;
}

/* Reads the fragment header at p (w->cur). Sets *stop when the walk ends here:
 * a non-first fragment's upper-layer header lives in another fragment. */
static enum ts_anomaly ipv6_fragment(const uint8_t *p, struct ipv6_walk *w, struct ts_decoded *d,
                                     bool *stop)
{
	if (w->saw_fragment)
		return TS_ANOM_IPV6_FRAG_DUPLICATE;
	w->saw_fragment = true;
	uint32_t frag_offset = ts_be16(p + 2) & 0xfff8;
	bool more = p[3] & 1;
	uint32_t fragmentable = w->end - (w->cur + IPV6_FRAG_HLEN);
	d->frag_id = ts_be32(p + 4);
	if (!frag_offset && !more)
		return TS_ANOM_NONE; /* an atomic fragment (RFC 6946) is a whole datagram */
	d->is_fragment = true;
	d->frag_more = more;
	d->frag_offset = frag_offset;
	d->frag_hdr_offset = w->cur;
	d->frag_nh_offset = w->nh_off;
	d->frag_data_offset = w->cur + IPV6_FRAG_HLEN;
	if ((more && fragmentable % 8) || frag_offset + fragmentable > IP_MAX_DGRAM)
		return TS_ANOM_IPV6_FRAG_BAD_LENGTH;
	if (frag_offset) {
		*stop = true;
		return TS_ANOM_NONE;
	}
	w->first_fragment = true;
	return TS_ANOM_NONE;
}

enum ts_anomaly ts_decode_ipv6(const struct ts_frame *f, uint32_t off, struct ts_decoded *d)
{
	const uint8_t *p = f->data + off;
	uint32_t captured = f->caplen - off;
	uint32_t wire = f->wirelen - off;

	d->l3_offset = off;
	if (captured < IPV6_HLEN)
		return TS_ANOM_IPV6_TRUNCATED;
	if (p[0] >> 4 != 6)
		return TS_ANOM_IPV6_BAD_VERSION;
	uint32_t plen = ts_be16(p + 4);
	d->l3 = TS_L3_IPV6;
	d->ttl = p[7];
	memcpy(d->src_addr, p + 8, 16);
	memcpy(d->dst_addr, p + 24, 16);
	if (plen == 0 && p[6] == TS_IPPROTO_HOPOPTS)
		return TS_ANOM_IPV6_JUMBOGRAM;
	if (IPV6_HLEN + plen > wire)
		return TS_ANOM_IPV6_BAD_PLEN;
	d->l3_len = IPV6_HLEN + plen;

	struct ipv6_walk w = {.cur = off + IPV6_HLEN,
	                      .end = off + IPV6_HLEN + plen,
	                      .nh_off = off + 6,
	                      .nh = p[6]};
	bool stop = false;
	while (ipv6_is_extension(w.nh)) {
		if (d->ipv6_ext_count == TS_IPV6_EXT_MAX)
			return TS_ANOM_IPV6_EXT_CHAIN_TOO_LONG;
		if (w.nh == TS_IPPROTO_HOPOPTS && d->ipv6_ext_count > 0)
			return TS_ANOM_IPV6_HBH_NOT_FIRST;
		enum ts_anomaly a = ipv6_need(f, &w, 2);
		if (a != TS_ANOM_NONE)
			return a;
		const uint8_t *h = f->data + w.cur;
		uint32_t len = ipv6_extension_len(w.nh, h);
		a = ipv6_need(f, &w, len);
		if (a != TS_ANOM_NONE)
			return a;
		d->ipv6_ext[d->ipv6_ext_count++] = w.nh;
		if (w.nh == TS_IPPROTO_ROUTING && h[2] == 0)
			return TS_ANOM_IPV6_ROUTING_TYPE0;
		if (w.nh == TS_IPPROTO_FRAGMENT) {
			a = ipv6_fragment(h, &w, d, &stop);
			if (a != TS_ANOM_NONE)
				return a;
		}
		w.nh = h[0];
		w.nh_off = w.cur;
		w.cur += len;
		if (stop)
			break;
	}

	d->ip_proto = w.nh;
	d->l4 = ts_l4_from_proto(w.nh);
	d->l4_offset = w.cur;
	d->l4_len = w.end - w.cur;
	if (stop)
		return TS_ANOM_NONE;
	if (w.first_fragment && d->l4_len < ts_transport_min_header(w.nh))
		return TS_ANOM_IPV6_FRAG_TINY;
	return ts_decode_transport(f, d, w.cur, w.end - w.cur, w.first_fragment);
}
