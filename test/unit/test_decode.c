/*
 * Decoder unit tests with hand-built packets. Every anomaly reason is reached
 * by at least one packet (test_every_reason_reached fails otherwise), and every
 * decode runs on an exactly-sized heap copy placed at an odd address, so
 * ASan catches a read past the captured bytes and UBSan (or a MIPS CPU)
 * catches an unaligned load.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "torsieve/decode.h"

struct pkt {
	uint8_t b[4096];
	uint32_t len;
};

static void put8(struct pkt *p, uint32_t v)
{
	p->b[p->len++] = (uint8_t)v;
}

static void put16(struct pkt *p, uint32_t v)
{
	put8(p, v >> 8);
	put8(p, v);
}

static void put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v);
}

static void put(struct pkt *p, const void *src, uint32_t n)
{
	memcpy(p->b + p->len, src, n);
	p->len += n;
}

static void zeros(struct pkt *p, uint32_t n)
{
	memset(p->b + p->len, 0, n);
	p->len += n;
}

static void set16(struct pkt *p, uint32_t off, uint32_t v)
{
	p->b[off] = (uint8_t)(v >> 8);
	p->b[off + 1] = (uint8_t)v;
}

static const uint8_t mac_client[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t mac_gateway[6] = {0x02, 0, 0, 0, 0, 0x02};

static void eth(struct pkt *p, uint16_t type)
{
	put(p, mac_gateway, 6);
	put(p, mac_client, 6);
	put16(p, type);
}

/* An IPv4 header (192.0.2.1 -> 198.51.100.2); ip4_done() fills in the length. */
static uint32_t ip4(struct pkt *p, uint8_t proto, const uint8_t *opts, uint32_t optlen,
                    uint16_t frag)
{
	uint32_t off = p->len;
	put8(p, 0x40 | (5 + optlen / 4));
	put8(p, 0);
	put16(p, 0);
	put16(p, 0x1234);
	put16(p, frag);
	put8(p, 64);
	put8(p, proto);
	put16(p, 0);
	put32(p, 0xc0000201);
	put32(p, 0xc6336402);
	if (optlen)
		put(p, opts, optlen);
	return off;
}

static void ip4_done(struct pkt *p, uint32_t off)
{
	set16(p, off + 2, p->len - off);
}

/* An IPv6 header (2001:db8::1 -> 2001:db8::2); ip6_done() fills in the length. */
static uint32_t ip6(struct pkt *p, uint8_t nh)
{
	static const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
	uint32_t off = p->len;
	put32(p, 0x60000000);
	put16(p, 0);
	put8(p, nh);
	put8(p, 64);
	put(p, src, 16);
	put(p, dst, 16);
	return off;
}

static void ip6_done(struct pkt *p, uint32_t off)
{
	set16(p, off + 4, p->len - off - 40);
}

/* Hop-by-hop or destination options of (units + 1) * 8 bytes, Pad1-filled. */
static void ext_opts(struct pkt *p, uint8_t nh, uint8_t units)
{
	put8(p, nh);
	put8(p, units);
	zeros(p, ((uint32_t)units + 1) * 8 - 2);
}

static void ext_routing(struct pkt *p, uint8_t nh, uint8_t type)
{
	put8(p, nh);
	put8(p, 0);
	put8(p, type);
	put8(p, 0);
	zeros(p, 4);
}

static void ext_frag(struct pkt *p, uint8_t nh, uint16_t offset, bool more)
{
	put8(p, nh);
	put8(p, 0);
	put16(p, (uint32_t)offset | (more ? 1u : 0u));
	put32(p, 0xabcdef01);
}

static void ext_ah(struct pkt *p, uint8_t nh)
{
	put8(p, nh);
	put8(p, 1); /* (1 + 2) * 4 = 12 bytes */
	zeros(p, 10);
}

static void tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t flags, const uint8_t *opts,
                uint32_t optlen)
{
	put16(p, sport);
	put16(p, dport);
	put32(p, 1000);
	put32(p, (flags & TS_TCP_ACK) ? 2000 : 0);
	put8(p, (5 + optlen / 4) << 4);
	put8(p, flags);
	put16(p, 65535);
	put16(p, 0);
	put16(p, 0);
	if (optlen)
		put(p, opts, optlen);
}

static void udp(struct pkt *p, uint16_t sport, uint16_t dport, uint32_t payload)
{
	put16(p, sport);
	put16(p, dport);
	put16(p, 8 + payload);
	put16(p, 0);
	zeros(p, payload);
}

static void icmp(struct pkt *p, uint8_t type, uint8_t code)
{
	put8(p, type);
	put8(p, code);
	put16(p, 0);
	put32(p, 0x00010001);
}

/* Builders for the common whole packets. */
static struct pkt eth_ip4_tcp(uint8_t flags, const uint8_t *opts, uint32_t optlen)
{
	struct pkt p = {.len = 0};
	eth(&p, 0x0800);
	uint32_t ip = ip4(&p, TS_IPPROTO_TCP, NULL, 0, 0);
	tcp(&p, 40000, 80, flags, opts, optlen);
	ip4_done(&p, ip);
	return p;
}

static struct pkt eth_ip4_udp(uint16_t sport, uint16_t dport, uint32_t payload)
{
	struct pkt p = {.len = 0};
	eth(&p, 0x0800);
	uint32_t ip = ip4(&p, TS_IPPROTO_UDP, NULL, 0, 0);
	udp(&p, sport, dport, payload);
	ip4_done(&p, ip);
	return p;
}

static struct pkt eth_ip6_tcp(uint8_t flags)
{
	struct pkt p = {.len = 0};
	eth(&p, 0x86dd);
	uint32_t ip = ip6(&p, TS_IPPROTO_TCP);
	tcp(&p, 40000, 443, flags, NULL, 0);
	ip6_done(&p, ip);
	return p;
}

static bool reason_hit[TS_ANOM_COUNT];
static struct ts_decoded D;

/* Decode caplen bytes of p (wire length wirelen) from an exactly-sized heap
 * copy at an odd address. */
static enum ts_anomaly decode_at(enum ts_link link, const uint8_t *bytes, uint32_t caplen,
                                 uint32_t wirelen)
{
	uint8_t *mem = malloc((size_t)caplen + 1);
	if (!mem)
		abort();
	memcpy(mem + 1, bytes, caplen);
	enum ts_anomaly a = ts_decode(link, mem + 1, caplen, wirelen, &D);
	free(mem);
	return a;
}

static enum ts_anomaly decode_pkt(enum ts_link link, const struct pkt *p)
{
	return decode_at(link, p->b, p->len, p->len);
}

#define EXPECT_REASON(link, bytes, caplen, wirelen, want)                               \
	do {                                                                            \
		enum ts_anomaly got_ = decode_at((link), (bytes), (caplen), (wirelen)); \
		CHECK_EQ_STR(ts_anomaly_name(got_), ts_anomaly_name(want));             \
		CHECK(D.anomaly == got_);                                               \
		if (got_ == (want))                                                     \
			reason_hit[want] = true;                                        \
	} while (0)

#define EXPECT_PKT(p, want) EXPECT_REASON(TS_LINK_ETHERNET, (p).b, (p).len, (p).len, want)

/* ---- link layer ---- */

static void test_link_reasons(void)
{
	struct pkt p = eth_ip4_tcp(TS_TCP_SYN, NULL, 0);
	EXPECT_REASON(TS_LINK_UNSUPPORTED, p.b, p.len, p.len, TS_ANOM_LINKTYPE_UNSUPPORTED);
	EXPECT_REASON(TS_LINK_ETHERNET, p.b, 13, 13, TS_ANOM_ETH_TRUNCATED);
	EXPECT_REASON(TS_LINK_ETHERNET, p.b, 0, 0, TS_ANOM_ETH_TRUNCATED);
	EXPECT_REASON(TS_LINK_SLL, p.b, 15, 15, TS_ANOM_SLL_TRUNCATED);
	EXPECT_REASON(TS_LINK_SLL2, p.b, 19, 19, TS_ANOM_SLL2_TRUNCATED);
	EXPECT_REASON(TS_LINK_NULL, p.b, 3, 3, TS_ANOM_NULL_TRUNCATED);
	EXPECT_REASON(TS_LINK_LOOP, p.b, 0, 0, TS_ANOM_NULL_TRUNCATED);

	static const uint8_t v5[] = {0x50, 0, 0, 20};
	EXPECT_REASON(TS_LINK_RAW, v5, sizeof(v5), sizeof(v5), TS_ANOM_RAW_BAD_VERSION);
	EXPECT_REASON(TS_LINK_RAW, v5, 0, 0, TS_ANOM_RAW_BAD_VERSION);
	/* DLT_IPV4 says IPv4 whatever the nibble claims. */
	struct pkt v6 = eth_ip6_tcp(TS_TCP_SYN);
	EXPECT_REASON(TS_LINK_IPV4, v6.b + 14, v6.len - 14, v6.len - 14, TS_ANOM_IPV4_BAD_VERSION);
	EXPECT_REASON(TS_LINK_IPV6, p.b + 14, p.len - 14, p.len - 14, TS_ANOM_IPV6_BAD_VERSION);
}

static void test_vlan(void)
{
	struct pkt p = {.len = 0};
	eth(&p, 0x88a8);
	put16(&p, 0x2064); /* PCP 1, VID 100 */
	put16(&p, 0x8100);
	put16(&p, 0x00c8); /* VID 200 */
	put16(&p, 0x0800);
	uint32_t ip = ip4(&p, TS_IPPROTO_UDP, NULL, 0, 0);
	udp(&p, 5353, 53, 12);
	ip4_done(&p, ip);
	EXPECT_PKT(p, TS_ANOM_NONE);
	CHECK_EQ_INT(D.vlan_count, 2);
	CHECK_EQ_INT(D.vlan_ids[0], 100);
	CHECK_EQ_INT(D.vlan_ids[1], 200);
	CHECK_EQ_INT(D.l4, TS_L4_UDP);
	CHECK_EQ_INT(D.dport, 53);

	/* Tag header cut: 14 + 2 bytes. */
	EXPECT_REASON(TS_LINK_ETHERNET, p.b, 16, 16, TS_ANOM_VLAN_TRUNCATED);

	struct pkt deep = {.len = 0};
	eth(&deep, 0x8100);
	for (int i = 0; i < TS_VLAN_MAX; i++) {
		put16(&deep, (uint32_t)i + 1);
		put16(&deep, 0x8100);
	}
	put16(&deep, 9);
	put16(&deep, 0x0800);
	EXPECT_PKT(deep, TS_ANOM_VLAN_TOO_DEEP);
}

static void test_cooked_and_loopback(void)
{
	struct pkt base = eth_ip4_tcp(TS_TCP_SYN, NULL, 0);
	const uint8_t *ip = base.b + 14;
	uint32_t iplen = base.len - 14;

	struct pkt sll = {.len = 0};
	put16(&sll, 0); /* packet type: to us */
	put16(&sll, 1); /* ARPHRD_ETHER */
	put16(&sll, 6); /* address length */
	put(&sll, mac_client, 6);
	zeros(&sll, 2);
	put16(&sll, 0x0800);
	put(&sll, ip, iplen);
	EXPECT_REASON(TS_LINK_SLL, sll.b, sll.len, sll.len, TS_ANOM_NONE);
	CHECK(D.has_mac && memcmp(D.src_mac, mac_client, 6) == 0);
	CHECK_EQ_INT(D.dport, 80);

	struct pkt sll2 = {.len = 0};
	put16(&sll2, 0x0800);
	put16(&sll2, 0);
	put32(&sll2, 3); /* ifindex */
	put16(&sll2, 1);
	put8(&sll2, 0);
	put8(&sll2, 6);
	put(&sll2, mac_client, 6);
	zeros(&sll2, 2);
	put(&sll2, ip, iplen);
	EXPECT_REASON(TS_LINK_SLL2, sll2.b, sll2.len, sll2.len, TS_ANOM_NONE);
	CHECK(D.has_mac && memcmp(D.src_mac, mac_client, 6) == 0);
	CHECK_EQ_INT(D.l4, TS_L4_TCP);

	struct pkt v6 = eth_ip6_tcp(TS_TCP_SYN);
	static const uint8_t fam_le_inet[4] = {2, 0, 0, 0};
	static const uint8_t fam_be_inet[4] = {0, 0, 0, 2};
	static const uint8_t fam_le_inet6_fbsd[4] = {28, 0, 0, 0};
	static const uint8_t fam_be_inet6_obsd[4] = {0, 0, 0, 24};
	static const uint8_t fam_le_appletalk[4] = {5, 0, 0, 0};
	struct {
		enum ts_link link;
		const uint8_t *family;
		const struct pkt *inner;
		enum ts_l3 l3;
	} cases[] = {
	        {TS_LINK_NULL, fam_le_inet, &base, TS_L3_IPV4},
	        {TS_LINK_NULL, fam_be_inet, &base, TS_L3_IPV4},
	        {TS_LINK_NULL, fam_le_inet6_fbsd, &v6, TS_L3_IPV6},
	        {TS_LINK_NULL, fam_be_inet6_obsd, &v6, TS_L3_IPV6},
	        {TS_LINK_LOOP, fam_be_inet, &base, TS_L3_IPV4},
	        {TS_LINK_LOOP, fam_be_inet6_obsd, &v6, TS_L3_IPV6},
	        {TS_LINK_NULL, fam_le_appletalk, &base, TS_L3_OTHER},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pkt lo = {.len = 0};
		put(&lo, cases[i].family, 4);
		put(&lo, cases[i].inner->b + 14, cases[i].inner->len - 14);
		EXPECT_REASON(cases[i].link, lo.b, lo.len, lo.len, TS_ANOM_NONE);
		CHECK_EQ_INT(D.l3, cases[i].l3);
	}

	EXPECT_REASON(TS_LINK_RAW, ip, iplen, iplen, TS_ANOM_NONE);
	CHECK_EQ_INT(D.l3, TS_L3_IPV4);
	EXPECT_REASON(TS_LINK_RAW, v6.b + 14, v6.len - 14, v6.len - 14, TS_ANOM_NONE);
	CHECK_EQ_INT(D.l3, TS_L3_IPV6);
	EXPECT_REASON(TS_LINK_IPV6, v6.b + 14, v6.len - 14, v6.len - 14, TS_ANOM_NONE);
	CHECK_EQ_INT(ts_decode_ip(ip, iplen, iplen, &D), TS_ANOM_NONE);
	CHECK_EQ_INT(D.dport, 80);
}

static void test_non_ip_is_other(void)
{
	struct pkt arp = {.len = 0};
	eth(&arp, 0x0806);
	zeros(&arp, 28);
	EXPECT_PKT(arp, TS_ANOM_NONE);
	CHECK_EQ_INT(D.l3, TS_L3_OTHER);
	CHECK_EQ_INT(D.ethertype, 0x0806);
	CHECK_EQ_INT(D.l4, TS_L4_NONE);
}

/* ---- IPv4 ---- */

static void test_ipv4_reasons(void)
{
	struct pkt p = eth_ip4_tcp(TS_TCP_SYN, NULL, 0);
	EXPECT_REASON(TS_LINK_ETHERNET, p.b, 14 + 19, 14 + 19, TS_ANOM_IPV4_TRUNCATED);

	struct pkt bad = p;
	bad.b[14] = 0x65; /* version 6 behind an IPv4 ethertype */
	EXPECT_PKT(bad, TS_ANOM_IPV4_BAD_VERSION);

	bad = p;
	bad.b[14] = 0x44;
	EXPECT_PKT(bad, TS_ANOM_IPV4_BAD_HLEN);
	CHECK_EQ_INT(D.l3, TS_L3_IPV4); /* known to be IPv4, just broken */

	bad = p;
	set16(&bad, 16, 19);
	EXPECT_PKT(bad, TS_ANOM_IPV4_BAD_TOTLEN);
	bad = p;
	set16(&bad, 16, p.len - 14 + 1); /* one byte more than the frame had */
	EXPECT_PKT(bad, TS_ANOM_IPV4_BAD_TOTLEN);

	/* IHL 6 with only 20 header bytes captured (the frame had them). */
	struct pkt opt = {.len = 0};
	static const uint8_t router_alert[4] = {0x94, 4, 0, 0};
	eth(&opt, 0x0800);
	uint32_t ip = ip4(&opt, TS_IPPROTO_TCP, router_alert, 4, 0);
	tcp(&opt, 1234, 80, TS_TCP_SYN, NULL, 0);
	ip4_done(&opt, ip);
	EXPECT_PKT(opt, TS_ANOM_NONE);
	EXPECT_REASON(TS_LINK_ETHERNET, opt.b, 14 + 22, opt.len, TS_ANOM_IPV4_TRUNCATED);

	static const uint8_t bad_opts[][8] = {
	        {0x94, 1, 0, 0, 0, 0, 0, 0}, /* length below 2 */
	        {1, 1, 0x07, 9, 0, 0, 0, 0}, /* runs past the header */
	        {1, 1, 1, 1, 1, 1, 1, 0x83}, /* no room for a length byte */
	};
	for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		struct pkt o = {.len = 0};
		eth(&o, 0x0800);
		ip = ip4(&o, TS_IPPROTO_TCP, bad_opts[i], 8, 0);
		tcp(&o, 1234, 80, TS_TCP_SYN, NULL, 0);
		ip4_done(&o, ip);
		EXPECT_PKT(o, TS_ANOM_IPV4_BAD_OPTION);
	}
	/* EOL ends the list: what follows is not parsed. */
	static const uint8_t eol_then_junk[4] = {0, 0x99, 0xff, 0xff};
	struct pkt eol = {.len = 0};
	eth(&eol, 0x0800);
	ip = ip4(&eol, TS_IPPROTO_TCP, eol_then_junk, 4, 0);
	tcp(&eol, 1234, 80, TS_TCP_SYN, NULL, 0);
	ip4_done(&eol, ip);
	EXPECT_PKT(eol, TS_ANOM_NONE);
}

static void test_ipv4_fragments(void)
{
	/* First fragment: 16 bytes of a UDP datagram, MF. */
	struct pkt first = {.len = 0};
	eth(&first, 0x0800);
	uint32_t ip = ip4(&first, TS_IPPROTO_UDP, NULL, 0, 0x2000);
	put16(&first, 5000);
	put16(&first, 53);
	put16(&first, 8 + 40); /* the whole datagram's length */
	put16(&first, 0);
	zeros(&first, 8);
	ip4_done(&first, ip);
	EXPECT_PKT(first, TS_ANOM_NONE);
	CHECK(D.is_fragment && D.frag_more && D.frag_offset == 0);
	CHECK(D.has_ports && D.dport == 53);
	CHECK_EQ_INT(D.frag_id, 0x1234);

	/* A later fragment at byte 16: no ports, protocol still UDP. */
	struct pkt later = {.len = 0};
	eth(&later, 0x0800);
	ip = ip4(&later, TS_IPPROTO_UDP, NULL, 0, 0x2000 | 2);
	zeros(&later, 16);
	ip4_done(&later, ip);
	EXPECT_PKT(later, TS_ANOM_NONE);
	CHECK(D.is_fragment && D.frag_more && D.frag_offset == 16);
	CHECK(!D.has_ports && !D.has_l4_header);
	CHECK_EQ_INT(D.l4, TS_L4_UDP);

	struct pkt last = {.len = 0};
	eth(&last, 0x0800);
	ip = ip4(&last, TS_IPPROTO_UDP, NULL, 0, 4);
	zeros(&last, 13);
	ip4_done(&last, ip);
	EXPECT_PKT(last, TS_ANOM_NONE);
	CHECK(D.is_fragment && !D.frag_more && D.frag_offset == 32);

	struct pkt odd = {.len = 0};
	eth(&odd, 0x0800);
	ip = ip4(&odd, TS_IPPROTO_UDP, NULL, 0, 0x2000 | 2);
	zeros(&odd, 12); /* MF with a length that is not a multiple of 8 */
	ip4_done(&odd, ip);
	EXPECT_PKT(odd, TS_ANOM_IPV4_FRAG_BAD_LENGTH);

	struct pkt beyond = {.len = 0};
	eth(&beyond, 0x0800);
	ip = ip4(&beyond, TS_IPPROTO_UDP, NULL, 0, 8190); /* offset 65520 */
	zeros(&beyond, 24);
	ip4_done(&beyond, ip);
	EXPECT_PKT(beyond, TS_ANOM_IPV4_FRAG_BAD_LENGTH);

	/* RFC 1858: a first fragment too small for the TCP header. */
	struct pkt tiny = {.len = 0};
	eth(&tiny, 0x0800);
	ip = ip4(&tiny, TS_IPPROTO_TCP, NULL, 0, 0x2000);
	put16(&tiny, 1234);
	put16(&tiny, 80);
	put32(&tiny, 1);
	ip4_done(&tiny, ip);
	EXPECT_PKT(tiny, TS_ANOM_IPV4_FRAG_TINY);

	/* A fragment of a protocol torsieve does not parse has no minimum. */
	struct pkt gre = {.len = 0};
	eth(&gre, 0x0800);
	ip = ip4(&gre, 47, NULL, 0, 0x2000);
	zeros(&gre, 8);
	ip4_done(&gre, ip);
	EXPECT_PKT(gre, TS_ANOM_NONE);
	CHECK_EQ_INT(D.l4, TS_L4_OTHER);
}

static void test_ipv4_padding_and_snaplen(void)
{
	/* A 1-byte UDP payload padded to Ethernet's 60-byte minimum. */
	struct pkt p = eth_ip4_udp(5000, 53, 1);
	uint32_t real = p.len;
	zeros(&p, 60 - p.len);
	p.b[p.len - 1] = 0xee;
	EXPECT_PKT(p, TS_ANOM_NONE);
	CHECK_EQ_INT(D.l3_len, real - 14);
	CHECK_EQ_INT(D.payload_len, 1);

	/* A TCP segment whose padding must not count as payload. */
	struct pkt t = eth_ip4_tcp(TS_TCP_ACK, NULL, 0);
	zeros(&t, 6);
	EXPECT_PKT(t, TS_ANOM_NONE);
	CHECK_EQ_INT(D.payload_len, 0);

	/* Snap length: 1500 bytes on the wire, 96 captured, headers whole. */
	struct pkt big = {.len = 0};
	eth(&big, 0x0800);
	uint32_t ip = ip4(&big, TS_IPPROTO_TCP, NULL, 0, 0);
	tcp(&big, 40000, 443, TS_TCP_ACK | TS_TCP_PSH, NULL, 0);
	zeros(&big, 1460);
	ip4_done(&big, ip);
	EXPECT_REASON(TS_LINK_ETHERNET, big.b, 96, big.len, TS_ANOM_NONE);
	CHECK_EQ_INT(D.payload_len, 1460);
	CHECK_EQ_INT(D.dport, 443);
	/* Cut inside the TCP header: truncated, not malformed. */
	EXPECT_REASON(TS_LINK_ETHERNET, big.b, 14 + 20 + 10, big.len, TS_ANOM_TCP_TRUNCATED);
}

/* ---- IPv6 ---- */

static void test_ipv6_reasons(void)
{
	struct pkt p = eth_ip6_tcp(TS_TCP_SYN);
	EXPECT_PKT(p, TS_ANOM_NONE);
	EXPECT_REASON(TS_LINK_ETHERNET, p.b, 14 + 39, 14 + 39, TS_ANOM_IPV6_TRUNCATED);

	struct pkt bad = p;
	bad.b[14] = 0x40;
	EXPECT_PKT(bad, TS_ANOM_IPV6_BAD_VERSION);

	bad = p;
	set16(&bad, 18, p.len - 14 - 40 + 1);
	EXPECT_PKT(bad, TS_ANOM_IPV6_BAD_PLEN);

	struct pkt jumbo = {.len = 0};
	eth(&jumbo, 0x86dd);
	ip6(&jumbo, TS_IPPROTO_HOPOPTS);
	ext_opts(&jumbo, TS_IPPROTO_TCP, 0);
	EXPECT_PKT(jumbo, TS_ANOM_IPV6_JUMBOGRAM);

	/* Hop-by-hop claiming 16 bytes inside an 8-byte payload. */
	struct pkt ext = {.len = 0};
	eth(&ext, 0x86dd);
	uint32_t ip = ip6(&ext, TS_IPPROTO_HOPOPTS);
	put8(&ext, TS_IPPROTO_TCP);
	put8(&ext, 1);
	zeros(&ext, 6);
	ip6_done(&ext, ip);
	EXPECT_PKT(ext, TS_ANOM_IPV6_EXT_TRUNCATED);
	/* Payload of one byte: not even the next-header and length. */
	struct pkt one = {.len = 0};
	eth(&one, 0x86dd);
	ip = ip6(&one, TS_IPPROTO_DSTOPTS);
	put8(&one, TS_IPPROTO_TCP);
	ip6_done(&one, ip);
	EXPECT_PKT(one, TS_ANOM_IPV6_EXT_TRUNCATED);
	/* Whole on the wire, cut by the capture. */
	struct pkt cut = {.len = 0};
	eth(&cut, 0x86dd);
	ip = ip6(&cut, TS_IPPROTO_DSTOPTS);
	ext_opts(&cut, TS_IPPROTO_TCP, 1);
	tcp(&cut, 1, 2, TS_TCP_SYN, NULL, 0);
	ip6_done(&cut, ip);
	EXPECT_REASON(TS_LINK_ETHERNET, cut.b, 14 + 40 + 10, cut.len, TS_ANOM_IPV6_EXT_TRUNCATED);

	struct pkt chain = {.len = 0};
	eth(&chain, 0x86dd);
	ip = ip6(&chain, TS_IPPROTO_DSTOPTS);
	for (int i = 0; i < TS_IPV6_EXT_MAX; i++)
		ext_opts(&chain, TS_IPPROTO_DSTOPTS, 0);
	ext_opts(&chain, TS_IPPROTO_TCP, 0);
	tcp(&chain, 1, 2, TS_TCP_SYN, NULL, 0);
	ip6_done(&chain, ip);
	EXPECT_PKT(chain, TS_ANOM_IPV6_EXT_CHAIN_TOO_LONG);

	struct pkt hbh = {.len = 0};
	eth(&hbh, 0x86dd);
	ip = ip6(&hbh, TS_IPPROTO_DSTOPTS);
	ext_opts(&hbh, TS_IPPROTO_HOPOPTS, 0);
	ext_opts(&hbh, TS_IPPROTO_TCP, 0);
	tcp(&hbh, 1, 2, TS_TCP_SYN, NULL, 0);
	ip6_done(&hbh, ip);
	EXPECT_PKT(hbh, TS_ANOM_IPV6_HBH_NOT_FIRST);

	struct pkt rh0 = {.len = 0};
	eth(&rh0, 0x86dd);
	ip = ip6(&rh0, TS_IPPROTO_ROUTING);
	ext_routing(&rh0, TS_IPPROTO_TCP, 0);
	tcp(&rh0, 1, 2, TS_TCP_SYN, NULL, 0);
	ip6_done(&rh0, ip);
	EXPECT_PKT(rh0, TS_ANOM_IPV6_ROUTING_TYPE0);
	rh0.b[14 + 40 + 2] = 4; /* segment routing: fine */
	EXPECT_PKT(rh0, TS_ANOM_NONE);
}

static void test_ipv6_extension_chain(void)
{
	struct pkt p = {.len = 0};
	eth(&p, 0x86dd);
	uint32_t ip = ip6(&p, TS_IPPROTO_HOPOPTS);
	ext_opts(&p, TS_IPPROTO_DSTOPTS, 0);
	ext_opts(&p, TS_IPPROTO_AH, 1);
	ext_ah(&p, TS_IPPROTO_TCP);
	tcp(&p, 40000, 443, TS_TCP_SYN, NULL, 0);
	ip6_done(&p, ip);
	EXPECT_PKT(p, TS_ANOM_NONE);
	CHECK_EQ_INT(D.ipv6_ext_count, 3);
	CHECK_EQ_INT(D.ipv6_ext[0], TS_IPPROTO_HOPOPTS);
	CHECK_EQ_INT(D.ipv6_ext[1], TS_IPPROTO_DSTOPTS);
	CHECK_EQ_INT(D.ipv6_ext[2], TS_IPPROTO_AH);
	CHECK_EQ_INT(D.l4, TS_L4_TCP);
	CHECK_EQ_INT(D.l4_offset, 14 + 40 + 8 + 16 + 12);
	CHECK_EQ_INT(D.dport, 443);

	/* ESP ends the chain; what follows is encrypted. */
	struct pkt esp = {.len = 0};
	eth(&esp, 0x86dd);
	ip = ip6(&esp, TS_IPPROTO_ESP);
	zeros(&esp, 24);
	ip6_done(&esp, ip);
	EXPECT_PKT(esp, TS_ANOM_NONE);
	CHECK_EQ_INT(D.l4, TS_L4_OTHER);
	CHECK_EQ_INT(D.ip_proto, TS_IPPROTO_ESP);
}

static void test_ipv6_fragments(void)
{
	struct pkt first = {.len = 0};
	eth(&first, 0x86dd);
	uint32_t ip = ip6(&first, TS_IPPROTO_FRAGMENT);
	ext_frag(&first, TS_IPPROTO_UDP, 0, true);
	udp(&first, 5000, 53, 8); /* 16 bytes of a longer datagram */
	set16(&first, first.len - 16 + 4, 8 + 100);
	ip6_done(&first, ip);
	EXPECT_PKT(first, TS_ANOM_NONE);
	CHECK(D.is_fragment && D.frag_more && D.frag_offset == 0);
	CHECK_EQ_INT(D.frag_id, 0xabcdef01);
	CHECK(D.has_ports && D.dport == 53);

	struct pkt later = {.len = 0};
	eth(&later, 0x86dd);
	ip = ip6(&later, TS_IPPROTO_FRAGMENT);
	ext_frag(&later, TS_IPPROTO_UDP, 16, false);
	zeros(&later, 20);
	ip6_done(&later, ip);
	EXPECT_PKT(later, TS_ANOM_NONE);
	CHECK(D.is_fragment && !D.frag_more && D.frag_offset == 16);
	CHECK(!D.has_ports);
	CHECK_EQ_INT(D.l4, TS_L4_UDP);

	struct pkt atomic = {.len = 0};
	eth(&atomic, 0x86dd);
	ip = ip6(&atomic, TS_IPPROTO_FRAGMENT);
	ext_frag(&atomic, TS_IPPROTO_TCP, 0, false);
	tcp(&atomic, 1234, 80, TS_TCP_SYN, NULL, 0);
	ip6_done(&atomic, ip);
	EXPECT_PKT(atomic, TS_ANOM_NONE);
	CHECK(!D.is_fragment);
	CHECK_EQ_INT(D.dport, 80);

	struct pkt dup = {.len = 0};
	eth(&dup, 0x86dd);
	ip = ip6(&dup, TS_IPPROTO_FRAGMENT);
	ext_frag(&dup, TS_IPPROTO_FRAGMENT, 0, false);
	ext_frag(&dup, TS_IPPROTO_TCP, 0, true);
	tcp(&dup, 1234, 80, TS_TCP_SYN, NULL, 0);
	zeros(&dup, 4);
	ip6_done(&dup, ip);
	EXPECT_PKT(dup, TS_ANOM_IPV6_FRAG_DUPLICATE);

	struct pkt odd = {.len = 0};
	eth(&odd, 0x86dd);
	ip = ip6(&odd, TS_IPPROTO_FRAGMENT);
	ext_frag(&odd, TS_IPPROTO_UDP, 8, true);
	zeros(&odd, 12);
	ip6_done(&odd, ip);
	EXPECT_PKT(odd, TS_ANOM_IPV6_FRAG_BAD_LENGTH);

	struct pkt beyond = {.len = 0};
	eth(&beyond, 0x86dd);
	ip = ip6(&beyond, TS_IPPROTO_FRAGMENT);
	ext_frag(&beyond, TS_IPPROTO_UDP, 65528, false);
	zeros(&beyond, 16);
	ip6_done(&beyond, ip);
	EXPECT_PKT(beyond, TS_ANOM_IPV6_FRAG_BAD_LENGTH);

	/* RFC 7112: the TCP header split off the first fragment. */
	struct pkt tiny = {.len = 0};
	eth(&tiny, 0x86dd);
	ip = ip6(&tiny, TS_IPPROTO_FRAGMENT);
	ext_frag(&tiny, TS_IPPROTO_TCP, 0, true);
	put16(&tiny, 1234);
	put16(&tiny, 80);
	put32(&tiny, 1);
	ip6_done(&tiny, ip);
	EXPECT_PKT(tiny, TS_ANOM_IPV6_FRAG_TINY);

	/* ... or an extension header split off it. */
	struct pkt tiny_ext = {.len = 0};
	eth(&tiny_ext, 0x86dd);
	ip = ip6(&tiny_ext, TS_IPPROTO_FRAGMENT);
	ext_frag(&tiny_ext, TS_IPPROTO_DSTOPTS, 0, true);
	put8(&tiny_ext, TS_IPPROTO_TCP);
	put8(&tiny_ext, 1); /* 16 bytes, only 8 in this fragment */
	zeros(&tiny_ext, 6);
	ip6_done(&tiny_ext, ip);
	EXPECT_PKT(tiny_ext, TS_ANOM_IPV6_FRAG_TINY);
}

/* ---- transport ---- */

static void test_tcp_options(void)
{
	static const uint8_t opts[] = {
	        2, 4,  0x05, 0xb4,                         /* MSS 1460 */
	        1, 3,  3,    7,                            /* NOP, window scale 7 */
	        4, 2,                                      /* SACK permitted */
	        8, 10, 0,    0,    0, 1, 0, 0, 0, 2,       /* timestamps 1, 2 */
	        1, 1,  5,    18,   0, 0, 0, 1, 0, 0, 0, 2, /* NOP NOP SACK x2 */
	        0, 0,  0,    0,    0, 0, 0, 0,             /* EOL and padding */
	};
	struct pkt p = eth_ip4_tcp(TS_TCP_SYN | TS_TCP_ACK, opts, sizeof(opts));
	CHECK_EQ_INT(sizeof(opts) % 4, 0);
	EXPECT_PKT(p, TS_ANOM_NONE);
	CHECK(D.tcp_opts.has_mss && D.tcp_opts.mss == 1460);
	CHECK(D.tcp_opts.has_wscale && D.tcp_opts.wscale == 7);
	CHECK(D.tcp_opts.sack_permitted);
	CHECK(D.tcp_opts.has_timestamp && D.tcp_opts.ts_val == 1 && D.tcp_opts.ts_ecr == 2);
	CHECK_EQ_INT(D.tcp_opts.sack_blocks, 2);
	CHECK_EQ_INT(D.tcp_seq, 1000);
	CHECK_EQ_INT(D.tcp_ack, 2000);
	CHECK_EQ_INT(D.tcp_window, 65535);
	CHECK_EQ_INT(D.payload_len, 0);

	static const uint8_t bad_option[][4] = {
	        {1, 1, 0x1e, 1}, /* length below 2 */
	        {1, 0x1e, 6, 0}, /* runs past the options */
	        {1, 1, 1, 0x1e}, /* no room for a length byte */
	};
	for (size_t i = 0; i < sizeof(bad_option) / sizeof(bad_option[0]); i++) {
		struct pkt b = eth_ip4_tcp(TS_TCP_SYN, bad_option[i], 4);
		EXPECT_PKT(b, TS_ANOM_TCP_BAD_OPTION);
	}
	static const uint8_t bad_size[][12] = {
	        {2, 3, 5, 1},                          /* MSS of 3 */
	        {3, 4, 7, 0},                          /* window scale of 4 */
	        {4, 3, 0, 0},                          /* SACK-permitted of 3 */
	        {8, 8, 0, 0, 0, 1, 0, 0},              /* timestamps of 8 */
	        {5, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}, /* SACK of 12 */
	        {5, 2, 0, 0},                          /* SACK with no block */
	};
	for (size_t i = 0; i < sizeof(bad_size) / sizeof(bad_size[0]); i++) {
		struct pkt b = eth_ip4_tcp(TS_TCP_SYN, bad_size[i], 12);
		EXPECT_PKT(b, TS_ANOM_TCP_BAD_OPTION_LEN);
	}
	/* Unknown options are skipped by their length. */
	static const uint8_t unknown[] = {30, 4, 0xff, 0xff};
	struct pkt u = eth_ip4_tcp(TS_TCP_SYN, unknown, 4);
	EXPECT_PKT(u, TS_ANOM_NONE);
}

static void test_tcp_reasons(void)
{
	struct pkt p = eth_ip4_tcp(TS_TCP_SYN, NULL, 0);
	/* 19 TCP bytes in the datagram. */
	struct pkt short_seg = p;
	short_seg.len -= 1;
	set16(&short_seg, 16, short_seg.len - 14);
	EXPECT_PKT(short_seg, TS_ANOM_TCP_TRUNCATED);

	struct pkt bad = p;
	bad.b[14 + 20 + 12] = 0x40;
	EXPECT_PKT(bad, TS_ANOM_TCP_BAD_DOFF);
	bad.b[14 + 20 + 12] = 0xf0; /* 60 bytes in a 20-byte segment */
	EXPECT_PKT(bad, TS_ANOM_TCP_BAD_DOFF);

	static const uint8_t nops[8] = {1, 1, 1, 1, 1, 1, 1, 1};
	struct pkt with_opts = eth_ip4_tcp(TS_TCP_SYN, nops, 8);
	EXPECT_REASON(TS_LINK_ETHERNET, with_opts.b, with_opts.len - 2, with_opts.len,
	              TS_ANOM_TCP_TRUNCATED);

	static const uint8_t bad_flags[] = {
	        TS_TCP_SYN | TS_TCP_FIN,
	        TS_TCP_SYN | TS_TCP_RST,
	        TS_TCP_SYN | TS_TCP_FIN | TS_TCP_ACK,
	        0,
	        TS_TCP_FIN | TS_TCP_PSH | TS_TCP_URG,
	        TS_TCP_FIN,
	        TS_TCP_PSH,
	        TS_TCP_ECE | TS_TCP_CWR,
	};
	for (size_t i = 0; i < sizeof(bad_flags); i++) {
		struct pkt b = eth_ip4_tcp(bad_flags[i], NULL, 0);
		EXPECT_PKT(b, TS_ANOM_TCP_BAD_FLAGS);
	}
	static const uint8_t good_flags[] = {
	        TS_TCP_SYN,
	        TS_TCP_SYN | TS_TCP_ECE | TS_TCP_CWR,
	        TS_TCP_RST,
	        TS_TCP_SYN | TS_TCP_ACK,
	        TS_TCP_ACK,
	        TS_TCP_PSH | TS_TCP_ACK,
	        TS_TCP_FIN | TS_TCP_ACK,
	        TS_TCP_RST | TS_TCP_ACK,
	        TS_TCP_URG | TS_TCP_ACK | TS_TCP_PSH,
	};
	for (size_t i = 0; i < sizeof(good_flags); i++) {
		struct pkt g = eth_ip4_tcp(good_flags[i], NULL, 0);
		EXPECT_PKT(g, TS_ANOM_NONE);
		CHECK_EQ_INT(D.tcp_flags, good_flags[i]);
	}

	struct pkt zero = eth_ip4_tcp(TS_TCP_SYN, NULL, 0);
	set16(&zero, 14 + 20, 0);
	EXPECT_PKT(zero, TS_ANOM_PORT_ZERO);
	zero = eth_ip4_tcp(TS_TCP_SYN, NULL, 0);
	set16(&zero, 14 + 20 + 2, 0);
	EXPECT_PKT(zero, TS_ANOM_PORT_ZERO);
}

static void test_udp_reasons(void)
{
	struct pkt p = eth_ip4_udp(5000, 53, 4);
	EXPECT_PKT(p, TS_ANOM_NONE);
	CHECK_EQ_INT(D.payload_len, 4);
	CHECK_EQ_INT(D.payload_offset, 14 + 20 + 8);

	struct pkt short_dgram = {.len = 0};
	eth(&short_dgram, 0x0800);
	uint32_t ip = ip4(&short_dgram, TS_IPPROTO_UDP, NULL, 0, 0);
	zeros(&short_dgram, 7);
	ip4_done(&short_dgram, ip);
	EXPECT_PKT(short_dgram, TS_ANOM_UDP_TRUNCATED);

	struct pkt bad = p;
	set16(&bad, 14 + 20 + 4, 7);
	EXPECT_PKT(bad, TS_ANOM_UDP_BAD_LEN);
	set16(&bad, 14 + 20 + 4, 8 + 5);
	EXPECT_PKT(bad, TS_ANOM_UDP_BAD_LEN);

	struct pkt dport0 = eth_ip4_udp(5000, 0, 4);
	EXPECT_PKT(dport0, TS_ANOM_PORT_ZERO);
	struct pkt sport0 = eth_ip4_udp(0, 53, 4); /* legal in UDP */
	EXPECT_PKT(sport0, TS_ANOM_NONE);
}

static void test_icmp_reasons(void)
{
	struct pkt echo = {.len = 0};
	eth(&echo, 0x0800);
	uint32_t ip = ip4(&echo, TS_IPPROTO_ICMP, NULL, 0, 0);
	icmp(&echo, 8, 0);
	ip4_done(&echo, ip);
	EXPECT_PKT(echo, TS_ANOM_NONE);
	CHECK_EQ_INT(D.icmp_type, 8);
	CHECK_EQ_INT(D.l4, TS_L4_ICMP);

	struct pkt short_icmp = echo;
	short_icmp.len -= 1;
	set16(&short_icmp, 16, short_icmp.len - 14);
	EXPECT_PKT(short_icmp, TS_ANOM_ICMP_TRUNCATED);

	struct pkt ns = {.len = 0};
	eth(&ns, 0x86dd);
	ip = ip6(&ns, TS_IPPROTO_ICMPV6);
	icmp(&ns, 135, 0);
	zeros(&ns, 16);
	ip6_done(&ns, ip);
	EXPECT_PKT(ns, TS_ANOM_NONE);
	CHECK_EQ_INT(D.icmp_type, 135);
	CHECK_EQ_INT(D.l4, TS_L4_ICMP6);

	struct pkt short6 = {.len = 0};
	eth(&short6, 0x86dd);
	ip = ip6(&short6, TS_IPPROTO_ICMPV6);
	put32(&short6, 0x80000000);
	ip6_done(&short6, ip);
	EXPECT_PKT(short6, TS_ANOM_ICMP6_TRUNCATED);

	struct pkt v4_in_v6 = {.len = 0};
	eth(&v4_in_v6, 0x86dd);
	ip = ip6(&v4_in_v6, TS_IPPROTO_ICMP);
	icmp(&v4_in_v6, 8, 0);
	ip6_done(&v4_in_v6, ip);
	EXPECT_PKT(v4_in_v6, TS_ANOM_ICMP_WRONG_FAMILY);

	struct pkt v6_in_v4 = {.len = 0};
	eth(&v6_in_v4, 0x0800);
	ip = ip4(&v6_in_v4, TS_IPPROTO_ICMPV6, NULL, 0, 0);
	icmp(&v6_in_v4, 128, 0);
	ip4_done(&v6_in_v4, ip);
	EXPECT_PKT(v6_in_v4, TS_ANOM_ICMP_WRONG_FAMILY);
}

/* ---- properties ---- */

/* Every prefix of a valid packet, as a cut frame and as a snapped capture,
 * decodes without reading past the captured bytes; a snapped capture whose
 * headers are whole decodes like the full packet. */
static void test_every_prefix(void)
{
	struct pkt samples[6];
	static const uint8_t mss[4] = {2, 4, 5, 0xb4};
	samples[0] = eth_ip4_tcp(TS_TCP_SYN, mss, 4);
	samples[1] = eth_ip4_udp(5000, 53, 30);
	samples[2] = eth_ip6_tcp(TS_TCP_SYN | TS_TCP_ACK);
	struct pkt *ext = &samples[3];
	ext->len = 0;
	eth(ext, 0x8100);
	put16(ext, 7);
	put16(ext, 0x86dd);
	uint32_t ip = ip6(ext, TS_IPPROTO_HOPOPTS);
	ext_opts(ext, TS_IPPROTO_FRAGMENT, 0);
	ext_frag(ext, TS_IPPROTO_TCP, 0, false);
	tcp(ext, 1, 2, TS_TCP_ACK, mss, 4);
	zeros(ext, 10);
	ip6_done(ext, ip);
	samples[4] = eth_ip4_udp(1, 2, 0);
	samples[5] = eth_ip4_tcp(TS_TCP_ACK, NULL, 0);
	zeros(&samples[5], 100);
	set16(&samples[5], 16, samples[5].len - 14);

	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		const struct pkt *p = &samples[s];
		CHECK_EQ_INT(decode_pkt(TS_LINK_ETHERNET, p), TS_ANOM_NONE);
		struct ts_decoded full = D;
		for (uint32_t cut = 0; cut < p->len; cut++) {
			enum ts_anomaly a = decode_at(TS_LINK_ETHERNET, p->b, cut, cut);
			CHECK(a != TS_ANOM_NONE || full.l4_offset > cut || full.l4 == TS_L4_NONE);
			a = decode_at(TS_LINK_ETHERNET, p->b, cut, p->len);
			if (a == TS_ANOM_NONE && full.has_l4_header) {
				CHECK_EQ_INT(D.sport, full.sport);
				CHECK_EQ_INT(D.payload_len, full.payload_len);
			}
		}
	}
}

/* Random bytes under every link type: no crash, no out-of-bounds read, and
 * a result that is internally consistent. Deterministic. */
static void test_random_frames(void)
{
	uint32_t state = 0x12345678;
	uint8_t buf[256];
	static const enum ts_link links[] = {TS_LINK_ETHERNET, TS_LINK_SLL,  TS_LINK_SLL2,
	                                     TS_LINK_RAW,      TS_LINK_IPV4, TS_LINK_IPV6,
	                                     TS_LINK_NULL,     TS_LINK_LOOP};
	for (int i = 0; i < 20000; i++) {
		uint32_t len = 0;
		for (uint32_t j = 0; j < sizeof(buf); j++) {
			state ^= state << 13;
			state ^= state >> 17;
			state ^= state << 5;
			buf[j] = (uint8_t)state;
			if (j == 0)
				len = state % sizeof(buf);
		}
		/* Steer half the frames into IP so the deep layers are reached. */
		if (i & 1) {
			buf[14] = (buf[14] & 1) ? 0x45 : 0x60;
			buf[12] = (buf[14] == 0x45) ? 0x08 : 0x86;
			buf[13] = (buf[14] == 0x45) ? 0x00 : 0xdd;
		}
		enum ts_link link = links[(uint32_t)i % (sizeof(links) / sizeof(links[0]))];
		enum ts_anomaly a = decode_at(link, buf, len, len + (state & 0xff));
		CHECK(a < TS_ANOM_COUNT);
		if (D.has_l4_header)
			CHECK(D.l4_offset <= len);
		if (a == TS_ANOM_NONE && D.has_l4_header)
			CHECK(D.payload_offset >= D.l4_offset);
	}
}

static void test_names(void)
{
	for (int a = 0; a < TS_ANOM_COUNT; a++) {
		const char *name = ts_anomaly_name((enum ts_anomaly)a);
		CHECK(name && *name);
		for (const char *c = name; *c; c++)
			CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
		for (int b = 0; b < a; b++)
			CHECK(strcmp(name, ts_anomaly_name((enum ts_anomaly)b)) != 0);
	}
	CHECK_EQ_STR(ts_anomaly_name(TS_ANOM_COUNT), "unknown");

	char flags[9];
	ts_tcp_flags_str(TS_TCP_SYN, flags);
	CHECK_EQ_STR(flags, "S");
	ts_tcp_flags_str(TS_TCP_SYN | TS_TCP_ACK, flags);
	CHECK_EQ_STR(flags, "SA");
	ts_tcp_flags_str(TS_TCP_FIN | TS_TCP_ACK, flags);
	CHECK_EQ_STR(flags, "FA");
	ts_tcp_flags_str(TS_TCP_PSH | TS_TCP_ACK, flags);
	CHECK_EQ_STR(flags, "PA");
	ts_tcp_flags_str(0xff, flags);
	CHECK_EQ_STR(flags, "FSRPAUEC");
	ts_tcp_flags_str(0, flags);
	CHECK_EQ_STR(flags, "");
}

/* Runs last: a reason no test reaches is a reason nobody has seen work. */
static void test_every_reason_reached(void)
{
	for (int a = 0; a < TS_ANOM_COUNT; a++)
		if (!reason_hit[a])
			printf("  reason never reached: %s\n", ts_anomaly_name((enum ts_anomaly)a));
	for (int a = 0; a < TS_ANOM_COUNT; a++)
		CHECK(reason_hit[a]);
}

int main(void)
{
	RUN(test_link_reasons);
	RUN(test_vlan);
	RUN(test_cooked_and_loopback);
	RUN(test_non_ip_is_other);
	RUN(test_ipv4_reasons);
	RUN(test_ipv4_fragments);
	RUN(test_ipv4_padding_and_snaplen);
	RUN(test_ipv6_reasons);
	RUN(test_ipv6_extension_chain);
	RUN(test_ipv6_fragments);
	RUN(test_tcp_options);
	RUN(test_tcp_reasons);
	RUN(test_udp_reasons);
	RUN(test_icmp_reasons);
	RUN(test_every_prefix);
	RUN(test_random_frames);
	RUN(test_names);
	RUN(test_every_reason_reached);
	return check_exit_code();
}
