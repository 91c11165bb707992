/*
 * Fuzz the DNS message code. The input is parsed as a client's query; a
 * parsed one is answered (records built from the input, at limits from 12
 * bytes up) and the answer parsed back as an upstream answer: the records
 * must come back unchanged, or the answer must be the truncated one. The
 * input is also parsed as an upstream answer to a question taken from it,
 * and every offset is read as a name. The harness aborts when a name is
 * not terminated, an answer is longer than its limit, or a round trip
 * loses a record.
 */
#include <stdlib.h>
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *name, size_t cap)
{
	if (!memchr(name, '\0', cap))
		abort();
}

static void round_trip(const struct ts_dns_query *q, const uint8_t *data, size_t size)
{
	struct ts_dns_rr rr[TS_DNS_MAX_ANSWERS];
	size_t count = size % (TS_DNS_MAX_ANSWERS + 1);
	uint16_t type = q->qtype == TS_DNS_AAAA ? TS_DNS_AAAA : TS_DNS_A;
	for (size_t i = 0; i < count; i++) {
		memset(&rr[i], 0, sizeof(rr[i]));
		rr[i].type = type;
		rr[i].ttl = (uint32_t)(i * 977u) & 0x7fffffffu;
		for (size_t b = 0; b < 16; b++)
			rr[i].addr[b] = size ? data[(i * 16 + b) % size] : 0;
	}
	static const size_t limits[] = {12, 40, 100, 512, 1232, 65535};
	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
		uint8_t out[65536];
		size_t n = ts_dns_write_answer(q, TS_DNS_NOERROR, rr, count, limits[l], out,
		                               sizeof(out));
		if (n > limits[l])
			abort();
		if (!n)
			continue;
		struct ts_dns_query as_sent = *q;
		struct ts_dns_result res;
		/* the answer is to the question as the client wrote it */
		if (q->qtype != type || q->qclass != 1)
			continue;
		if (!ts_dns_parse_answer(out, n, q->id, as_sent.name, type, &res))
			abort();
		bool truncated = (ts_be16(out + 2) & 0x0200) != 0;
		if (truncated ? res.count != 0 : res.count != count)
			abort();
		for (size_t i = 0; i < res.count; i++)
			if (res.rr[i].ttl != rr[i].ttl ||
			    memcmp(res.rr[i].addr, rr[i].addr, type == TS_DNS_A ? 4 : 16))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_dns_query q;
	enum ts_dns_parse p = ts_dns_parse_query(data, size, &q);
	check_name(q.name, sizeof(q.name));
	check_name(q.name_as_sent, sizeof(q.name_as_sent));
	uint8_t out[512];
	if (p == TS_DNS_PARSED) {
		if (strlen(q.name) != strlen(q.name_as_sent))
			abort();
		round_trip(&q, data, size);
	} else if (p != TS_DNS_IGNORE) {
		size_t n = ts_dns_write_error(data, size, TS_DNS_FORMERR, out, sizeof(out));
		if (n != TS_DNS_HEADER || memcmp(out, data, 2))
			abort();
	}
	/* the input as an upstream answer, to the question it carries */
	if (p == TS_DNS_PARSED || size >= TS_DNS_HEADER) {
		struct ts_dns_result res;
		const char *name = p == TS_DNS_PARSED ? q.name : "";
		if (ts_dns_parse_answer(data, size, size >= 2 ? ts_be16(data) : 0, name,
		                        p == TS_DNS_PARSED ? q.qtype : TS_DNS_A, &res)) {
			if (res.count > TS_DNS_MAX_ANSWERS)
				abort();
		}
	}
	for (size_t off = 0; off < size && off < 600; off++) {
		char name[TS_DNS_NAME_MAX + 1];
		size_t o = off;
		if (ts_dns_read_name(data, size, &o, name, sizeof(name))) {
			check_name(name, sizeof(name));
			if (o <= off || o > size)
				abort();
		}
	}
	if (p == TS_DNS_PARSED) {
		size_t n = ts_dns_write_question(q.id, q.name, q.qtype, out, sizeof(out));
		struct ts_dns_query back;
		if (!n || ts_dns_parse_query(out, n, &back) != TS_DNS_PARSED ||
		    strcmp(back.name, q.name) || back.qtype != q.qtype)
			abort();
	}
	return 0;
}
