/*
 * The ICMP and ICMPv6 errors reject sends: addressed from where the client
 * sent to, the codes for each kind, the quoted packet, valid checksums, and
 * no error about what must not be answered.
 */
#include "check.h"
#include "torsieve/bytes.h"
#include "torsieve/reject.h"

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* IPv4 UDP 192.0.2.11:40000 -> 203.0.113.80:443, 600 bytes of payload */
static uint32_t udp4(uint8_t *p)
{
	uint32_t len = 20 + 8 + 600;
	memset(p, 0, len);
	uint8_t h[28] = {0x45,
	                 0,
	                 (uint8_t)(len >> 8),
	                 (uint8_t)len,
	                 0,
	                 1,
	                 0x40,
	                 0,
	                 64,
	                 17,
	                 0,
	                 0,
	                 192,
	                 0,
	                 2,
	                 11,
	                 203,
	                 0,
	                 113,
	                 80,
	                 0x9c,
	                 0x40,
	                 0x01,
	                 0xbb,
	                 (uint8_t)((len - 20) >> 8),
	                 (uint8_t)(len - 20),
	                 0,
	                 0};
	memcpy(p, h, 28);
	return len;
}

static void test_ipv4_port_unreachable(void)
{
	uint8_t pkt[700], out[TS_ICMP_ERROR_MAX];
	uint32_t len = udp4(pkt);
	struct ts_decoded d;
	CHECK_EQ_INT(ts_decode_ip(pkt, len, len, &d), TS_ANOM_NONE);
	static const struct {
		enum ts_reject_kind kind;
		uint8_t code;
	} cases[] = {{TS_REJECT_DEFAULT, 3},           {TS_REJECT_PORT_UNREACHABLE, 3},
	             {TS_REJECT_NET_UNREACHABLE, 0},   {TS_REJECT_HOST_UNREACHABLE, 1},
	             {TS_REJECT_PROTO_UNREACHABLE, 2}, {TS_REJECT_ADMIN_PROHIBITED, 13}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = ts_icmp_error_build(pkt, len, &d, cases[i].kind, out, sizeof(out));
		CHECK_EQ_INT(n, 576); /* as much as fits in 576 bytes */
		CHECK_EQ_INT(ts_be16(out + 2), n);
		CHECK_EQ_INT(out[9], 1);
		CHECK(memcmp(out + 12, pkt + 16, 4) == 0); /* from the address asked */
		CHECK(memcmp(out + 16, pkt + 12, 4) == 0); /* to the client */
		CHECK_EQ_INT(csum(out, 20, 0), 0xffff);
		CHECK_EQ_INT(out[20], 3);
		CHECK_EQ_INT(out[21], cases[i].code);
		CHECK_EQ_INT(csum(out + 20, n - 20, 0), 0xffff);
		CHECK(memcmp(out + 28, pkt, n - 28) == 0); /* the packet quoted */
	}
	/* the result decodes as a clean ICMP error */
	size_t n = ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out));
	struct ts_decoded e;
	CHECK_EQ_INT(ts_decode_ip(out, (uint32_t)n, (uint32_t)n, &e), TS_ANOM_NONE);
	CHECK_EQ_INT(e.l4, TS_L4_ICMP);
	CHECK_EQ_INT(e.icmp_type, 3);
}

static void test_ipv4_not_answered(void)
{
	uint8_t pkt[700], out[TS_ICMP_ERROR_MAX];
	struct ts_decoded d;
	uint32_t len = udp4(pkt);
	pkt[16] = 224; /* to a multicast group */
	ts_decode_ip(pkt, len, len, &d);
	CHECK_EQ_INT(ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out)), 0);
	len = udp4(pkt);
	memset(pkt + 16, 255, 4); /* broadcast */
	ts_decode_ip(pkt, len, len, &d);
	CHECK_EQ_INT(ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out)), 0);
	len = udp4(pkt);
	memset(pkt + 12, 0, 4); /* from 0.0.0.0 (DHCP discover) */
	ts_decode_ip(pkt, len, len, &d);
	CHECK_EQ_INT(ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out)), 0);
	len = udp4(pkt);
	pkt[6] = 0x00, pkt[7] = 0x10; /* a non-first fragment */
	ts_decode_ip(pkt, len, len, &d);
	CHECK(d.is_fragment);
	CHECK_EQ_INT(ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out)), 0);
	/* an ICMP error is never answered with one */
	len = udp4(pkt);
	size_t n = ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out));
	ts_decode_ip(pkt, len, len, &d);
	n = ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out));
	uint8_t again[TS_ICMP_ERROR_MAX];
	ts_decode_ip(out, (uint32_t)n, (uint32_t)n, &d);
	CHECK_EQ_INT(
	        ts_icmp_error_build(out, (uint32_t)n, &d, TS_REJECT_DEFAULT, again, sizeof(again)),
	        0);
	/* a TCP reset is the kernel's to send */
	len = udp4(pkt);
	ts_decode_ip(pkt, len, len, &d);
	CHECK_EQ_INT(ts_icmp_error_build(pkt, len, &d, TS_REJECT_TCP_RESET, out, sizeof(out)), 0);
}

/* IPv6 UDP 2001:db8:1::11 -> 2001:db8:3::80 port 443, with a destination
 * options header when ext */
static uint32_t udp6(uint8_t *p, bool ext, uint32_t payload)
{
	uint32_t hl = ext ? 8 : 0, len = 40 + hl + 8 + payload;
	memset(p, 0, len);
	p[0] = 0x60;
	p[4] = (uint8_t)((len - 40) >> 8);
	p[5] = (uint8_t)(len - 40);
	p[6] = ext ? 60 : 17;
	p[7] = 64;
	uint8_t s[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 0x11};
	uint8_t t[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 3, [15] = 0x80};
	memcpy(p + 8, s, 16);
	memcpy(p + 24, t, 16);
	if (ext) {
		p[40] = 17;
		p[42] = 1, p[43] = 4;
	}
	uint8_t *u = p + 40 + hl;
	u[0] = 0x9c, u[1] = 0x40, u[2] = 0x01, u[3] = 0xbb;
	u[4] = (uint8_t)((8 + payload) >> 8), u[5] = (uint8_t)(8 + payload);
	return len;
}

static void test_ipv6_errors(void)
{
	uint8_t pkt[2000], out[TS_ICMP_ERROR_MAX];
	uint32_t len = udp6(pkt, false, 1500);
	struct ts_decoded d;
	CHECK_EQ_INT(ts_decode_ip(pkt, len, len, &d), TS_ANOM_NONE);
	static const struct {
		enum ts_reject_kind kind;
		uint8_t type, code;
	} cases[] = {{TS_REJECT_DEFAULT, 1, 4},          {TS_REJECT_PORT_UNREACHABLE, 1, 4},
	             {TS_REJECT_NET_UNREACHABLE, 1, 0},  {TS_REJECT_HOST_UNREACHABLE, 1, 3},
	             {TS_REJECT_ADMIN_PROHIBITED, 1, 1}, {TS_REJECT_PROTO_UNREACHABLE, 4, 1}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = ts_icmp_error_build(pkt, len, &d, cases[i].kind, out, sizeof(out));
		CHECK_EQ_INT(n, 1280 - 40); /* within the minimum MTU */
		CHECK_EQ_INT(out[0], cases[i].type);
		CHECK_EQ_INT(out[1], cases[i].code);
		/* checksum over the pseudo-header: from the destination, to the source */
		uint32_t sum = csum(pkt + 24, 16, 0) + csum(pkt + 8, 16, 0) + (uint32_t)n + 58;
		CHECK_EQ_INT(csum(out, n, sum), 0xffff);
		CHECK(memcmp(out + 8, pkt, n - 8) == 0);
	}
	size_t n = ts_icmp_error_build(pkt, len, &d, TS_REJECT_PROTO_UNREACHABLE, out, sizeof(out));
	CHECK_EQ_INT(ts_be32(out + 4), 6); /* the IPv6 header's next-header byte */
	len = udp6(pkt, true, 10);
	CHECK_EQ_INT(ts_decode_ip(pkt, len, len, &d), TS_ANOM_NONE);
	n = ts_icmp_error_build(pkt, len, &d, TS_REJECT_PROTO_UNREACHABLE, out, sizeof(out));
	CHECK_EQ_INT(n, 8 + len);
	CHECK_EQ_INT(ts_be32(out + 4), 40); /* the destination options header's */
	/* to a multicast group: never answered */
	len = udp6(pkt, false, 10);
	pkt[24] = 0xff;
	ts_decode_ip(pkt, len, len, &d);
	CHECK_EQ_INT(ts_icmp_error_build(pkt, len, &d, TS_REJECT_DEFAULT, out, sizeof(out)), 0);
}

int main(void)
{
	RUN(test_ipv4_port_unreachable);
	RUN(test_ipv4_not_answered);
	RUN(test_ipv6_errors);
	return check_exit_code();
}
