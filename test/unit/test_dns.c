/*
 * DNS messages: queries parsed (names, compression, EDNS) and refused the
 * way the answer will say (FORMERR, NOTIMP, nothing); answers written byte
 * for byte, truncated with TC past the client's limit; upstream answers
 * read through a CNAME chain; every malformed name refused, loops included.
 */
#include "check.h"
#include "torsieve/dns.h"

/* a query for name (dotted) of type qtype, with an OPT record when edns */
static size_t query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype, bool edns)
{
	size_t n = ts_dns_write_question(id, name, qtype, out, 512);
	CHECK(n > 0);
	if (edns) {
		out[11] = 1; /* ARCOUNT */
		static const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
		memcpy(out + n, opt, sizeof(opt));
		n += sizeof(opt);
	}
	return n;
}

static void test_parse_query(void)
{
	uint8_t m[600];
	struct ts_dns_query q;
	size_t n = query(m, 0xbeef, "WWW.Example.test", 28, true);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	CHECK_EQ_INT(q.id, 0xbeef);
	CHECK_EQ_INT(q.qtype, 28);
	CHECK_EQ_INT(q.qclass, 1);
	CHECK_EQ_STR(q.name, "www.example.test");
	CHECK_EQ_STR(q.name_as_sent, "WWW.Example.test");
	CHECK(q.edns);
	CHECK_EQ_INT(q.edns_size, 4096);

	/* the root, and a name at the 255-byte limit */
	n = query(m, 1, "", 1, false);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	CHECK_EQ_STR(q.name, "");
	CHECK(!q.edns);
	CHECK_EQ_INT(q.edns_size, 512);
	char longest[254];
	for (int i = 0; i < 253; i++)
		longest[i] = (i % 64 == 63) ? '.' : 'a';
	longest[253] = '\0';
	n = query(m, 2, longest, 1, false);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	CHECK_EQ_STR(q.name, longest);

	/* a compressed question: the name points back into the header area
	 * is refused (forwards or to itself), a pointer to an earlier name is
	 * fine */
	uint8_t loop[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	CHECK_EQ_INT(ts_dns_parse_query(loop, sizeof(loop), &q), TS_DNS_MALFORMED);
	CHECK_EQ_INT(q.id, 1);
	uint8_t fwd[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 1, 'a', 0, 0, 1, 0, 1};
	CHECK_EQ_INT(ts_dns_parse_query(fwd, sizeof(fwd), &q), TS_DNS_MALFORMED);
	/* two labels then a pointer back to the second: "b.a.b.a..." would
	 * loop if pointers could go forwards; backwards it ends */
	uint8_t back[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'x', 0xc0, 12, 0, 1, 0, 1};
	CHECK_EQ_INT(ts_dns_parse_query(back, sizeof(back), &q), TS_DNS_MALFORMED);

	/* malformed: no question, two questions, an answer section, a
	 * label past the message, a label type 0x40, a byte no name has, a
	 * truncated question, two OPT records, trailing bytes */
	n = query(m, 3, "a.test", 1, false);
	uint8_t bad[600];
	memcpy(bad, m, n);
	bad[5] = 0;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_MALFORMED);
	bad[5] = 2;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_MALFORMED);
	memcpy(bad, m, n);
	bad[7] = 1;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_MALFORMED);
	memcpy(bad, m, n);
	bad[12] = 60;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_MALFORMED);
	memcpy(bad, m, n);
	bad[12] = 0x41;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_MALFORMED);
	memcpy(bad, m, n);
	bad[13] = '.';
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_MALFORMED);
	CHECK_EQ_INT(ts_dns_parse_query(m, n - 1, &q), TS_DNS_MALFORMED);
	n = query(m, 4, "a.test", 1, true);
	memcpy(bad, m, n);
	memcpy(bad + n, m + n - 11, 11);
	bad[11] = 2;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n + 11, &q), TS_DNS_MALFORMED);
	bad[11] = 1;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n + 1, &q), TS_DNS_MALFORMED);

	/* not answered: too short, a response; NOTIMP: another opcode */
	CHECK_EQ_INT(ts_dns_parse_query(m, 11, &q), TS_DNS_IGNORE);
	memcpy(bad, m, n);
	bad[2] |= 0x80;
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_IGNORE);
	memcpy(bad, m, n);
	bad[2] = (uint8_t)(bad[2] | (2 << 3));
	CHECK_EQ_INT(ts_dns_parse_query(bad, n, &q), TS_DNS_NOT_QUERY);
}

static void test_write_answer(void)
{
	uint8_t m[600], out[2048];
	struct ts_dns_query q;
	size_t n = query(m, 0x1234, "Www.Example.Test", 1, false);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	struct ts_dns_rr rr[2] = {
	        {.type = TS_DNS_A, .ttl = 60, .addr = {203, 0, 113, 80}},
	        {.type = TS_DNS_A, .ttl = 60, .addr = {203, 0, 113, 81}},
	};
	size_t len = ts_dns_write_answer(&q, TS_DNS_NOERROR, rr, 2, 512, out, sizeof(out));
	/* header, the question as sent (case kept), two records by pointer */
	static const uint8_t want[] = {
	        0x12, 0x34, 0x81, 0x80, 0,   1,   0,   2,   0,   0,   0,   0, /* header */
	        3,    'W',  'w',  'w',  7,   'E', 'x', 'a', 'm', 'p', 'l', 'e',
	        4,    'T',  'e',  's',  't', 0,   0,   1,   0,   1, /* A IN */
	        0xc0, 12,   0,    1,    0,   1,   0,   0,   0,   60,  0,   4,
	        203,  0,    113,  80, /* A */
	        0xc0, 12,   0,    1,    0,   1,   0,   0,   0,   60,  0,   4,
	        203,  0,    113,  81,
	};
	CHECK_EQ_INT(len, sizeof(want));
	CHECK(memcmp(out, want, sizeof(want)) == 0);

	/* NXDOMAIN and NODATA: no records */
	len = ts_dns_write_answer(&q, TS_DNS_NXDOMAIN, NULL, 0, 512, out, sizeof(out));
	CHECK_EQ_INT(len, 34);
	CHECK_EQ_INT(out[3] & 0xf, 3);

	/* too many records for 512 bytes: TC, no records; with EDNS 4096
	 * they fit, up to torsieve's own 1232, and the OPT is answered */
	struct ts_dns_rr many[TS_DNS_MAX_ANSWERS];
	for (int i = 0; i < TS_DNS_MAX_ANSWERS; i++)
		many[i] = (struct ts_dns_rr){
		        .type = TS_DNS_AAAA, .ttl = 5, .addr = {0x20, 1, [15] = (uint8_t)i}};
	n = query(m, 7, "a-rather-long-label-to-fill-the-packet.example.test", 28, false);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	len = ts_dns_write_answer(&q, TS_DNS_NOERROR, many, TS_DNS_MAX_ANSWERS, 100, out,
	                          sizeof(out));
	CHECK(len > 0 && len <= 100);
	CHECK(out[2] & 0x02); /* TC */
	CHECK_EQ_INT(out[7], 0);
	/* 12 + 53 + 4 bytes of header and question, 28 per record: 15 fit
	 * in 512 bytes (489), 16 do not (517) */
	len = ts_dns_write_answer(&q, TS_DNS_NOERROR, many, 15, 512, out, sizeof(out));
	CHECK_EQ_INT(len, 489);
	CHECK(!(out[2] & 0x02));
	CHECK_EQ_INT(out[7], 15);
	len = ts_dns_write_answer(&q, TS_DNS_NOERROR, many, 16, 512, out, sizeof(out));
	CHECK(out[2] & 0x02);
	n = query(m, 8, "a.test", 28, true);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	len = ts_dns_write_answer(&q, TS_DNS_NOERROR, many, 2, TS_DNS_UDP_MAX, out, sizeof(out));
	CHECK_EQ_INT(out[11], 1); /* the OPT */
	CHECK_EQ_INT(out[len - 11 + 2], 41);
	struct ts_dns_result res;
	CHECK(ts_dns_parse_answer(out, len, 8, "a.test", 28, &res));
	CHECK_EQ_INT(res.count, 2);

	/* PTR: the name as rdata */
	n = query(m, 9, "1.0.0.10.in-addr.arpa", TS_DNS_PTR, false);
	CHECK_EQ_INT(ts_dns_parse_query(m, n, &q), TS_DNS_PARSED);
	struct ts_dns_rr ptr = {.type = TS_DNS_PTR, .ttl = 1, .name = "abc.onion"};
	len = ts_dns_write_answer(&q, TS_DNS_NOERROR, &ptr, 1, 512, out, sizeof(out));
	CHECK(len > 0);
	CHECK(memcmp(out + len - 11,
	             "\x03"
	             "abc\x05"
	             "onion",
	             10) == 0);

	/* a bare error keeps the id and RD */
	len = ts_dns_write_error(m, n, TS_DNS_FORMERR, out, sizeof(out));
	CHECK_EQ_INT(len, 12);
	CHECK_EQ_INT(out[0], 0);
	CHECK_EQ_INT(out[1], 9);
	CHECK_EQ_INT(out[2], 0x81);
	CHECK_EQ_INT(out[3], 0x81);
}

static void test_parse_answer(void)
{
	/* www.example.test CNAME web.example.test; web A 203.0.113.80; an
	 * unrelated A record that must not be taken */
	static const uint8_t a[] = {
	        0,   7, 0x81, 0x80, 0,    1,    0,   3,   0,   0,   0,   0,    3,   'w', 'w',
	        'w', 7, 'e',  'x',  'a',  'm',  'p', 'l', 'e', 4,   't', 'e',  's', 't', 0,
	        0,   1, 0,    1,    0xc0, 12,   0,   5,   0,   1,   0,   0,    0,   30,  0,
	        6,   3, 'w',  'e',  'b',  0xc0, 16,  3,   'z', 'z', 'z', 0,    0,   1,   0,
	        1,   0, 0,    0,    30,   0,    4,   9,   9,   9,   9,   0xc0, 46,  0,   1,
	        0,   1, 0,    0,    1,    0,    0,   4,   203, 0,   113, 80,
	};
	struct ts_dns_result res;
	CHECK(ts_dns_parse_answer(a, sizeof(a), 7, "www.example.test", 1, &res));
	CHECK_EQ_INT(res.rcode, 0);
	CHECK_EQ_INT(res.count, 1);
	CHECK_EQ_INT(res.rr[0].ttl, 256);
	CHECK_EQ_INT(res.rr[0].addr[3], 80);
	/* another id, another name, another type: not this answer */
	CHECK(!ts_dns_parse_answer(a, sizeof(a), 8, "www.example.test", 1, &res));
	CHECK(!ts_dns_parse_answer(a, sizeof(a), 7, "web.example.test", 1, &res));
	CHECK(!ts_dns_parse_answer(a, sizeof(a), 7, "www.example.test", 28, &res));
	/* cut anywhere: refused, never read past */
	for (size_t cut = 0; cut < sizeof(a); cut++)
		CHECK(!ts_dns_parse_answer(a, cut, 7, "www.example.test", 1, &res));
}

int main(void)
{
	RUN(test_parse_query);
	RUN(test_write_answer);
	RUN(test_parse_answer);
	return check_exit_code();
}
