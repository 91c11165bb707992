/*
 * IP defragmentation against a reference model. Random datagrams are cut
 * into fragments on 8-byte boundaries, with extra fragments that overlap or
 * exactly repeat others (with different bytes), shuffled. For IPv4 the model
 * keeps the first copy of every byte; for IPv6 any overlap that is not an
 * exact duplicate drops the datagram and its later fragments. Then each cap
 * (datagrams, memory, timeout), contradictory lengths, the 64 KiB limit, the
 * headers of the rebuilt datagram and snapped fragments.
 */
#include <stdlib.h>

#include "check.h"
#include "rng.h"
#include "torsieve/decode.h"
#include "torsieve/defrag.h"

#define PROTO_TEST   253 /* experimental: no transport header to validate */
#define MAX_PAYLOAD  4096
#define MAX_FRAGS    64
#define MAX_RESULTS  256
#define MAX_RECORDS  4096
#define IPV6_FRAG_NH 44

/* What the done callback saw. */
struct result {
	enum ts_defrag_fate fate;
	uint32_t caplen, len;
	uint32_t records;
	uint64_t first_index; /* of the first record */
	uint8_t datagram[MAX_PAYLOAD + 128];
};

static struct result results[MAX_RESULTS];
static size_t result_count;
static uint64_t record_indices[MAX_RECORDS]; /* every record reported, in order */
static size_t record_count;
static uint64_t reassembled_records; /* over the whole test, never reset */

static void on_done(void *ctx, const struct ts_defrag_result *r)
{
	(void)ctx;
	if (result_count == MAX_RESULTS)
		return;
	struct result *o = &results[result_count++];
	o->fate = r->fate;
	o->caplen = r->caplen;
	o->len = r->len;
	o->records = r->record_count;
	o->first_index = r->records ? r->records->pkt.index : 0;
	if (r->fate == TS_DEFRAG_REASSEMBLED)
		reassembled_records += r->record_count;
	if (r->fate == TS_DEFRAG_REASSEMBLED && r->caplen <= sizeof(o->datagram))
		memcpy(o->datagram, r->datagram, r->caplen);
	uint32_t n = 0;
	for (const struct ts_defrag_record *rec = r->records; rec; rec = rec->next, n++)
		if (record_count < MAX_RECORDS)
			record_indices[record_count++] = rec->pkt.index;
	CHECK_EQ_INT(n, r->record_count);
}

static void reset_results(void)
{
	result_count = 0;
	record_count = 0;
}

struct frag {
	uint32_t off, len;
	bool more;
	uint8_t data[MAX_PAYLOAD];
};

static uint8_t src_octet = 1;

/* A fragment frame from its IP header (raw IP). */
static uint32_t build_v4(uint8_t *buf, uint16_t id, const struct frag *f)
{
	uint32_t tot = 20 + f->len;
	uint16_t fo = (uint16_t)((f->more ? 0x2000 : 0) | (f->off / 8));
	uint8_t h[20] = {0x45,
	                 0,
	                 (uint8_t)(tot >> 8),
	                 (uint8_t)tot,
	                 (uint8_t)(id >> 8),
	                 (uint8_t)id,
	                 (uint8_t)(fo >> 8),
	                 (uint8_t)fo,
	                 64,
	                 PROTO_TEST,
	                 0,
	                 0,
	                 192,
	                 0,
	                 2,
	                 src_octet,
	                 198,
	                 51,
	                 100,
	                 2};
	memcpy(buf, h, 20);
	memcpy(buf + 20, f->data, f->len);
	return tot;
}

static uint32_t build_v6(uint8_t *buf, uint32_t id, const struct frag *f)
{
	uint32_t plen = 8 + f->len;
	memset(buf, 0, 48);
	buf[0] = 0x60;
	buf[4] = (uint8_t)(plen >> 8);
	buf[5] = (uint8_t)plen;
	buf[6] = IPV6_FRAG_NH;
	buf[7] = 64;
	buf[8] = 0x20, buf[9] = 0x01, buf[10] = 0x0d, buf[11] = 0xb8, buf[23] = src_octet;
	buf[24] = 0x20, buf[25] = 0x01, buf[26] = 0x0d, buf[27] = 0xb8, buf[39] = 2;
	buf[40] = PROTO_TEST;
	uint16_t fo = (uint16_t)(f->off | (f->more ? 1 : 0));
	buf[42] = (uint8_t)(fo >> 8);
	buf[43] = (uint8_t)fo;
	buf[44] = (uint8_t)(id >> 24), buf[45] = (uint8_t)(id >> 16);
	buf[46] = (uint8_t)(id >> 8), buf[47] = (uint8_t)id;
	memcpy(buf + 48, f->data, f->len);
	return 48 + f->len;
}

static uint64_t packet_index;

/* Feed one fragment; caplen 0 means the whole frame. */
static void feed(struct ts_defrag *df, bool v6, uint32_t id, const struct frag *f, int64_t now_usec,
                 uint32_t caplen)
{
	static uint8_t buf[MAX_PAYLOAD + 64];
	uint32_t len = v6 ? build_v6(buf, id, f) : build_v4(buf, (uint16_t)id, f);
	struct ts_packet pkt = {
	        .data = buf,
	        .caplen = caplen ? caplen : len,
	        .len = len,
	        .index = ++packet_index,
	        .link = TS_LINK_RAW,
	};
	struct ts_decoded d;
	ts_decode(TS_LINK_RAW, buf, pkt.caplen, len, &d);
	CHECK_EQ_INT(d.anomaly, TS_ANOM_NONE);
	CHECK(d.is_fragment);
	if (d.anomaly == TS_ANOM_NONE && d.is_fragment)
		ts_defrag_add(df, &pkt, &d, now_usec);
}

static struct ts_defrag *make(uint32_t datagrams, uint64_t memory, uint32_t timeout,
                              enum ts_defrag_overlap overlap)
{
	struct ts_defrag_config c;
	ts_defrag_config_default(&c);
	if (datagrams)
		c.max_datagrams = datagrams;
	if (memory)
		c.memory = memory;
	if (timeout)
		c.timeout = timeout;
	c.ipv4_overlap = overlap;
	reset_results();
	return ts_defrag_new(&c, on_done, NULL);
}

/* Random fragments of a payload of len bytes: a cover on 8-byte boundaries
 * plus extras inside it (some exact repeats), shuffled, every extra with
 * its own bytes. Returns the count. */
static size_t random_fragments(struct frag *fr, const uint8_t *payload, uint32_t len)
{
	size_t n = 0;
	for (uint32_t off = 0; off < len && n < MAX_FRAGS / 2;) {
		uint32_t piece = 8 * (1 + rnd() % 64);
		if (off == 0 && piece >= len)
			piece = (len - 1) / 8 * 8; /* at least two: one piece is no fragment */
		else if (off + piece >= len || n == MAX_FRAGS / 2 - 1)
			piece = len - off;
		fr[n] = (struct frag){.off = off, .len = piece, .more = off + piece < len};
		memcpy(fr[n].data, payload + off, piece);
		off += piece;
		n++;
	}
	size_t cover = n, extras = rnd() % 6;
	for (size_t i = 0; i < extras && len >= 16; i++) {
		struct frag *f = &fr[n++];
		if (rnd() % 3 == 0) {
			*f = fr[rnd() % cover]; /* an exact repeat, with other bytes */
		} else {
			uint32_t units = (len - 1) / 8; /* whole units before the last byte */
			uint32_t a = rnd() % units, b = a + 1 + rnd() % (units - a);
			*f = (struct frag){.off = a * 8, .len = (b - a) * 8, .more = true};
		}
		for (uint32_t k = 0; k < f->len; k++)
			f->data[k] = (uint8_t)rnd();
	}
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd() % i;
		struct frag t = fr[i - 1];
		fr[i - 1] = fr[j];
		fr[j] = t;
	}
	return n;
}

/* The model of one tracker: first copy wins; an overlap is a fragment that
 * covers a held byte and is not an exact repeat of a held fragment. */
struct model {
	uint8_t bytes[MAX_PAYLOAD];
	bool seen[MAX_PAYLOAD];
	uint32_t held_off[MAX_FRAGS], held_len[MAX_FRAGS];
	size_t held;
	uint32_t covered, total;
	bool have_last;
	unsigned overlaps, duplicates;
};

enum model_step {
	STEP_HELD,
	STEP_COMPLETE,
	STEP_OVERLAP
};

static enum model_step model_add(struct model *m, const struct frag *f, bool drop_overlaps)
{
	bool hit = false, dup = false;
	for (uint32_t k = 0; k < f->len; k++)
		hit |= m->seen[f->off + k];
	for (size_t i = 0; hit && i < m->held; i++)
		dup |= m->held_off[i] == f->off && m->held_len[i] == f->len;
	if (hit && !dup) {
		m->overlaps++;
		if (drop_overlaps)
			return STEP_OVERLAP;
	}
	m->duplicates += dup;
	m->held_off[m->held] = f->off;
	m->held_len[m->held++] = f->len;
	for (uint32_t k = 0; k < f->len; k++)
		if (!m->seen[f->off + k]) {
			m->seen[f->off + k] = true;
			m->bytes[f->off + k] = f->data[k];
			m->covered++;
		}
	if (!f->more) {
		m->have_last = true;
		m->total = f->off + f->len;
	}
	return m->have_last && m->covered == m->total ? STEP_COMPLETE : STEP_HELD;
}

static void random_datagrams(bool v6)
{
	rng_state = v6 ? 0x6d656c6f : 0x5eed0004;
	reassembled_records = 0;
	struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_FIRST);
	CHECK(df != NULL);
	if (!df)
		return;
	static struct frag fr[MAX_FRAGS];
	static uint8_t payload[MAX_PAYLOAD];
	static struct model m;
	unsigned overlaps = 0, duplicates = 0;
	for (int round = 0; round < 400; round++) {
		uint32_t len = 9 + rnd() % (MAX_PAYLOAD - 9);
		for (uint32_t k = 0; k < len; k++)
			payload[k] = (uint8_t)rnd();
		size_t n = random_fragments(fr, payload, len);
		memset(&m, 0, sizeof(m));
		reset_results();
		uint32_t id = (uint32_t)round + 1;
		bool dead = false;
		size_t expect_results = 0;
		for (size_t i = 0, first = 0; i < n; i++) {
			feed(df, v6, id, &fr[i], round * 1000, 0);
			if (dead) {
				expect_results++; /* reported alone */
				CHECK_EQ_INT(result_count, expect_results);
				CHECK_EQ_INT(results[result_count - 1].fate, TS_DEFRAG_OVERLAP);
				continue;
			}
			enum model_step s = model_add(&m, &fr[i], v6);
			if (s == STEP_HELD) {
				CHECK_EQ_INT(result_count, expect_results);
				continue;
			}
			expect_results++;
			CHECK_EQ_INT(result_count, expect_results);
			const struct result *r = &results[result_count - 1];
			if (s == STEP_OVERLAP) {
				dead = true;
				CHECK_EQ_INT(r->fate, TS_DEFRAG_OVERLAP);
				CHECK_EQ_INT(r->records, m.held + 1);
			} else {
				uint32_t hlen = v6 ? 40 : 20;
				CHECK_EQ_INT(r->fate, TS_DEFRAG_REASSEMBLED);
				CHECK_EQ_INT(r->len, hlen + m.total);
				CHECK_EQ_INT(r->caplen, hlen + m.total);
				CHECK_EQ_INT(r->records, i + 1 - first);
				CHECK(memcmp(r->datagram + hlen, m.bytes, m.total) == 0);
				/* fragments after this one make a datagram of their own */
				overlaps += m.overlaps;
				duplicates += m.duplicates;
				memset(&m, 0, sizeof(m));
				first = i + 1;
			}
		}
		overlaps += m.overlaps;
		duplicates += m.duplicates;
		ts_defrag_flush(df); /* whatever is left ends incomplete */
		const struct ts_defrag_stats *st = ts_defrag_get_stats(df);
		CHECK_EQ_INT(st->held, 0);
		CHECK_EQ_INT(st->memory, 0);
		CHECK_EQ_INT(st->in_progress, 0);
		if (check_test_failed) {
			printf("  round %d (%s): %zu fragments of %u bytes\n", round,
			       v6 ? "v6" : "v4", n, len);
			break;
		}
	}
	const struct ts_defrag_stats *st = ts_defrag_get_stats(df);
	CHECK_EQ_INT(st->overlaps, overlaps);
	CHECK_EQ_INT(st->duplicates, duplicates);
	/* every fragment is accounted once: in a datagram or dropped */
	CHECK_EQ_INT(st->fragments, reassembled_records + st->dropped);
	CHECK(overlaps > 50 && duplicates > 20); /* the generator reached both cases */
	ts_defrag_free(df);
}

static void test_ipv4_first_copy_wins(void)
{
	random_datagrams(false);
}

static void test_ipv6_overlap_drops_the_datagram(void)
{
	random_datagrams(true);
}

/* A fragment of the whole 64-byte payload at off. */
static struct frag piece(uint32_t off, uint32_t len, bool more, uint8_t fill)
{
	struct frag f = {.off = off, .len = len, .more = more};
	memset(f.data, fill, len);
	return f;
}

static void test_ipv4_overlap_drop_policy(void)
{
	struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_DROP);
	struct frag a = piece(0, 32, true, 'a'), b = piece(24, 16, true, 'b');
	struct frag c = piece(40, 10, false, 'c');
	feed(df, false, 7, &a, 0, 0);
	feed(df, false, 7, &b, 0, 0);
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_OVERLAP);
	CHECK_EQ_INT(results[0].records, 2);
	feed(df, false, 7, &c, 0, 0); /* a later fragment of the dropped datagram */
	CHECK_EQ_INT(result_count, 2);
	CHECK_EQ_INT(results[1].fate, TS_DEFRAG_OVERLAP);
	CHECK_EQ_INT(results[1].records, 1);
	CHECK_EQ_INT(ts_defrag_get_stats(df)->fates[TS_DEFRAG_OVERLAP], 1);
	CHECK_EQ_INT(ts_defrag_get_stats(df)->dropped, 3);
	ts_defrag_free(df);
}

static void test_datagram_cap_evicts_the_oldest(void)
{
	struct ts_defrag *df = make(4, 0, 0, TS_DEFRAG_FIRST);
	struct frag a = piece(0, 16, true, 'a');
	for (uint32_t id = 1; id <= 4; id++)
		feed(df, false, id, &a, id, 0);
	CHECK_EQ_INT(result_count, 0);
	feed(df, false, 5, &a, 5, 0);
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_EVICTED);
	CHECK_EQ_INT(results[0].first_index, packet_index - 4); /* datagram 1's */
	CHECK_EQ_INT(ts_defrag_get_stats(df)->in_progress, 4);
	ts_defrag_flush(df);
	CHECK_EQ_INT(result_count, 5);
	for (size_t i = 1; i < 5; i++)
		CHECK_EQ_INT(results[i].fate, TS_DEFRAG_INCOMPLETE);
	ts_defrag_free(df);
}

static void test_memory_cap(void)
{
	/* Room for three 36-byte frames (16 bytes of data each) and their cost. */
	uint64_t one = TS_DEFRAG_RECORD_COST + 36;
	struct ts_defrag *df = make(0, 3 * one, 0, TS_DEFRAG_FIRST);
	struct frag a = piece(0, 16, true, 'a');
	for (uint32_t id = 1; id <= 3; id++)
		feed(df, false, id, &a, 0, 0);
	CHECK_EQ_INT(result_count, 0);
	CHECK_EQ_INT(ts_defrag_get_stats(df)->memory, 3 * one);
	feed(df, false, 4, &a, 0, 0); /* pushes datagram 1 out */
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_EVICTED);
	/* A datagram that alone passes the cap is dropped whole. */
	struct frag b = piece(16, 16, true, 'b'), c = piece(32, 16, true, 'c');
	struct frag d = piece(48, 16, true, 'd');
	feed(df, false, 9, &a, 0, 0);
	feed(df, false, 9, &b, 0, 0);
	feed(df, false, 9, &c, 0, 0);
	size_t before = result_count;
	feed(df, false, 9, &d, 0, 0);
	CHECK_EQ_INT(results[result_count - 1].fate, TS_DEFRAG_TOO_BIG);
	CHECK_EQ_INT(results[result_count - 1].records, 4);
	CHECK(result_count > before);
	CHECK(ts_defrag_get_stats(df)->memory <= 3 * one);
	ts_defrag_free(df);

	/* The datagram a fragment joins is the oldest: the newer ones make
	 * room, and it is not called too big while it fits alone. */
	df = make(0, 3 * one, 0, TS_DEFRAG_FIRST);
	feed(df, false, 20, &a, 0, 0); /* the oldest */
	feed(df, false, 21, &a, 0, 0);
	feed(df, false, 22, &a, 0, 0);
	feed(df, false, 20, &b, 0, 0); /* datagram 20 needs room */
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_EVICTED);
	CHECK_EQ_INT(results[0].records, 1);
	CHECK_EQ_INT(ts_defrag_get_stats(df)->fates[TS_DEFRAG_TOO_BIG], 0);
	CHECK_EQ_INT(ts_defrag_get_stats(df)->held, 3);
	ts_defrag_free(df);
}

static void test_timeout(void)
{
	struct ts_defrag *df = make(0, 0, 30, TS_DEFRAG_FIRST);
	struct frag a = piece(0, 16, true, 'a'), b = piece(16, 4, false, 'b');
	feed(df, false, 3, &a, 1000000, 0);
	feed(df, false, 3, &b, 31000001, 0); /* 30 s and a bit later: too late */
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_TIMEOUT);
	CHECK_EQ_INT(results[0].records, 1);
	feed(df, false, 3, &a, 31000002, 0); /* a new datagram, completed now */
	CHECK_EQ_INT(result_count, 2);
	CHECK_EQ_INT(results[1].fate, TS_DEFRAG_REASSEMBLED);
	CHECK_EQ_INT(results[1].len, 20 + 20);
	ts_defrag_free(df);
}

static void test_contradictions(void)
{
	struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_FIRST);
	struct frag last = piece(16, 9, false, 'l'), other_last = piece(16, 17, false, 'o');
	feed(df, false, 1, &last, 0, 0);
	feed(df, false, 1, &other_last, 0, 0);
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_INCONSISTENT);
	CHECK_EQ_INT(results[0].records, 2);
	/* data past the end the last fragment gave */
	struct frag beyond = piece(24, 16, true, 'b');
	feed(df, false, 2, &last, 0, 0);
	feed(df, false, 2, &beyond, 0, 0);
	CHECK_EQ_INT(result_count, 2);
	CHECK_EQ_INT(results[1].fate, TS_DEFRAG_INCONSISTENT);
	/* ...and the last fragment arriving after data past its end */
	feed(df, false, 3, &beyond, 0, 0);
	feed(df, false, 3, &last, 0, 0);
	CHECK_EQ_INT(result_count, 3);
	CHECK_EQ_INT(results[2].fate, TS_DEFRAG_INCONSISTENT);
	ts_defrag_free(df);
}

static void test_ping_of_death(void)
{
	/* 65528 bytes of fragments plus a 20-byte header do not fit in IPv4's
	 * 16-bit total length. 65512 bytes do. */
	for (int fits = 0; fits < 2; fits++) {
		struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_FIRST);
		uint32_t total = fits ? 65512 : 65528, step = 1480 * 2;
		static struct frag f;
		for (uint32_t off = 0; off < total; off += step) {
			f = piece(off, off + step < total ? step : total - off, off + step < total,
			          'p');
			feed(df, false, 77, &f, 0, 0);
		}
		CHECK_EQ_INT(result_count, 1);
		CHECK_EQ_INT(results[0].fate,
		             fits ? TS_DEFRAG_REASSEMBLED : TS_DEFRAG_INCONSISTENT);
		ts_defrag_free(df);
	}
}

static void test_ipv4_header_rebuilt(void)
{
	struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_FIRST);
	/* UDP 40000 -> 53 with a 30-byte payload, in two fragments */
	uint8_t udp[38] = {0x9c, 0x40, 0, 53, 0, 38, 0, 0};
	for (int i = 8; i < 38; i++)
		udp[i] = (uint8_t)i;
	struct frag a = {.off = 0, .len = 16, .more = true};
	struct frag b = {.off = 16, .len = 22, .more = false};
	memcpy(a.data, udp, 16);
	memcpy(b.data, udp + 16, 22);
	feed(df, false, 0x1234, &b, 0, 0);
	feed(df, false, 0x1234, &a, 0, 0);
	CHECK_EQ_INT(result_count, 1);
	struct result *r = &results[0];
	CHECK_EQ_INT(r->len, 58);
	CHECK_EQ_INT(r->datagram[2] << 8 | r->datagram[3], 58);
	CHECK_EQ_INT(r->datagram[6] & 0x3f, 0); /* no MF, no offset */
	CHECK_EQ_INT(r->datagram[7], 0);
	r->datagram[9] = 17; /* the fragments said 253; decode it as UDP */
	struct ts_decoded d;
	ts_decode_ip(r->datagram, r->caplen, r->len, &d);
	CHECK_EQ_INT(d.anomaly, TS_ANOM_NONE);
	CHECK(!d.is_fragment);
	CHECK_EQ_INT(d.sport, 40000);
	CHECK_EQ_INT(d.dport, 53);
	CHECK_EQ_INT(d.payload_len, 30);
	CHECK(memcmp(r->datagram + 20, udp, 38) == 0);
	ts_defrag_free(df);
}

/* IPv6 with a destination-options header before the fragment header
 * (unfragmentable part) and one after it (fragmentable): the datagram keeps
 * the first, drops the fragment header, and carries the second as data. */
static void test_ipv6_header_rebuilt(void)
{
	struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_FIRST);
	static uint8_t frame[2][200];
	uint8_t body[8 + 8 + 20] = {17,   0,    1, 4,  0, 0,  0, 0, /* dstopts, then UDP */
	                            0x9c, 0x41, 0, 53, 0, 28, 0, 0};
	for (int i = 16; i < 36; i++)
		body[i] = (uint8_t)i;
	uint32_t cut[3] = {0, 16, 36};
	for (int k = 0; k < 2; k++) {
		uint8_t *p = frame[k];
		uint32_t flen = cut[k + 1] - cut[k];
		memset(p, 0, 56);
		p[0] = 0x60;
		p[4] = 0;
		p[5] = (uint8_t)(8 + 8 + flen);
		p[6] = 60; /* destination options */
		p[7] = 64;
		p[8] = 0x20, p[9] = 0x01, p[10] = 0x0d, p[11] = 0xb8, p[23] = 1;
		p[24] = 0x20, p[25] = 0x01, p[26] = 0x0d, p[27] = 0xb8, p[39] = 2;
		p[40] = IPV6_FRAG_NH; /* dstopts: next is the fragment header, len 0 */
		p[42] = 1, p[43] = 4; /* PadN over the rest of the 8 bytes */
		p[48] = 60;           /* fragment header: next is dstopts */
		uint16_t fo = (uint16_t)(cut[k] | (k == 0 ? 1 : 0));
		p[50] = (uint8_t)(fo >> 8), p[51] = (uint8_t)fo;
		p[55] = 9; /* id */
		memcpy(p + 56, body + cut[k], flen);
		struct ts_packet pkt = {
		        .data = p, .caplen = 56 + flen, .len = 56 + flen, .index = ++packet_index};
		struct ts_decoded d;
		ts_decode(TS_LINK_RAW, p, pkt.caplen, pkt.len, &d);
		CHECK_EQ_INT(d.anomaly, TS_ANOM_NONE);
		CHECK_EQ_INT(d.frag_hdr_offset, 48);
		CHECK_EQ_INT(d.frag_nh_offset, 40);
		CHECK_EQ_INT(d.frag_data_offset, 56);
		ts_defrag_add(df, &pkt, &d, 0);
	}
	CHECK_EQ_INT(result_count, 1);
	const struct result *r = &results[0];
	CHECK_EQ_INT(r->fate, TS_DEFRAG_REASSEMBLED);
	CHECK_EQ_INT(r->len, 40 + 8 + 36);
	struct ts_decoded d;
	ts_decode_ip(r->datagram, r->caplen, r->len, &d);
	CHECK_EQ_INT(d.anomaly, TS_ANOM_NONE);
	CHECK(!d.is_fragment);
	CHECK_EQ_INT(d.ipv6_ext_count, 2);
	CHECK_EQ_INT(d.ipv6_ext[0], 60);
	CHECK_EQ_INT(d.ipv6_ext[1], 60);
	CHECK_EQ_INT(d.l4, TS_L4_UDP);
	CHECK_EQ_INT(d.dport, 53);
	CHECK_EQ_INT(d.payload_len, 20);
	ts_defrag_free(df);
}

static void test_snapped_fragment(void)
{
	struct ts_defrag *df = make(0, 0, 0, TS_DEFRAG_FIRST);
	struct frag a = piece(0, 64, true, 'a'), b = piece(64, 64, true, 'b');
	struct frag c = piece(128, 10, false, 'c');
	feed(df, false, 5, &a, 0, 0);
	feed(df, false, 5, &b, 0, 20 + 24); /* 24 of its 64 bytes captured */
	feed(df, false, 5, &c, 0, 0);
	CHECK_EQ_INT(result_count, 1);
	CHECK_EQ_INT(results[0].fate, TS_DEFRAG_REASSEMBLED);
	CHECK_EQ_INT(results[0].len, 20 + 138);
	CHECK_EQ_INT(results[0].caplen, 20 + 64 + 24);
	CHECK_EQ_INT(results[0].datagram[20 + 64 + 23], 'b');
	ts_defrag_free(df);
}

int main(void)
{
	RUN(test_ipv4_first_copy_wins);
	RUN(test_ipv6_overlap_drops_the_datagram);
	RUN(test_ipv4_overlap_drop_policy);
	RUN(test_datagram_cap_evicts_the_oldest);
	RUN(test_memory_cap);
	RUN(test_timeout);
	RUN(test_contradictions);
	RUN(test_ping_of_death);
	RUN(test_ipv4_header_rebuilt);
	RUN(test_ipv6_header_rebuilt);
	RUN(test_snapped_fragment);
	return check_exit_code();
}
