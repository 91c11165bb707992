/*
 * TCP reassembly against a reference model: the first byte seen at each
 * offset wins; offsets never seen are gaps; a segment is inconsistent when
 * any byte of it differs from the first copy. Random streams are cut into
 * segments that overlap, repeat with changed bytes, arrive out of order,
 * go missing, and wrap the sequence space.
 */
#include <stdlib.h>

#include "check.h"
#include "rng.h"
#include "torsieve/decode.h"
#include "torsieve/reassembly.h"

#define MAX_STREAM 40000

/* What the sink received. */
struct output {
	uint8_t bytes[MAX_STREAM];
	uint8_t kind[MAX_STREAM]; /* 0 nothing, 1 data, 2 gap */
	uint64_t end;             /* one past the last offset covered */
	bool overlap;             /* an offset covered twice, or out of order */
};

static void out_data(void *ctx, uint64_t off, const uint8_t *p, uint32_t n)
{
	struct output *o = ctx;
	if (off != o->end || off + n > MAX_STREAM) {
		o->overlap = true;
		return;
	}
	memcpy(o->bytes + off, p, n);
	memset(o->kind + off, 1, n);
	o->end = off + n;
}

static void out_gap(void *ctx, uint64_t off, uint64_t n)
{
	struct output *o = ctx;
	if (off != o->end || off + n > MAX_STREAM) {
		o->overlap = true;
		return;
	}
	memset(o->kind + off, 2, n);
	o->end = off + n;
}

struct segment {
	uint32_t off, len;
	uint8_t flags;
	uint8_t data[1500];
};

/* The model: first copy wins. */
struct model {
	uint8_t bytes[MAX_STREAM];
	bool seen[MAX_STREAM];
	uint64_t end;
	unsigned inconsistent;
};

static void model_apply(struct model *m, const struct segment *s)
{
	bool differs = false;
	for (uint32_t i = 0; i < s->len; i++) {
		uint32_t o = s->off + i;
		if (m->seen[o]) {
			differs |= m->bytes[o] != s->data[i];
		} else {
			m->seen[o] = true;
			m->bytes[o] = s->data[i];
		}
	}
	if (s->off + s->len > m->end)
		m->end = s->off + s->len;
	m->inconsistent += differs;
}

static struct segment segs[4000];
static uint64_t cap_hits, gaps_under_caps;
static struct output out;
static struct model model;

/* Builds a scenario, runs it, compares; returns false on a mismatch. */
static bool scenario(uint32_t seed, uint32_t size, bool with_syn, bool tight_caps)
{
	rng_state = seed;
	static uint8_t stream[MAX_STREAM];
	for (uint32_t i = 0; i < size; i++)
		stream[i] = (uint8_t)rnd();
	uint32_t n = 0;
	/* Cut the stream; repeat some pieces, some with changed bytes. */
	for (uint32_t off = 0; off < size && n < 3000;) {
		uint32_t len = 1 + rnd() % (rnd() % 4 ? 1400 : 3);
		if (off + len > size)
			len = size - off;
		segs[n].off = off;
		segs[n].len = len;
		segs[n].flags = TS_TCP_ACK;
		memcpy(segs[n].data, stream + off, len);
		n++;
		if (rnd() % 5 == 0 && n < 3990) { /* an overlapping resend */
			uint32_t back = rnd() % (off + 1);
			uint32_t l2 = 1 + rnd() % 1400;
			if (back + l2 > size)
				l2 = size - back;
			segs[n].off = back;
			segs[n].len = l2;
			segs[n].flags = TS_TCP_ACK;
			memcpy(segs[n].data, stream + back, l2);
			if (rnd() % 3 == 0)
				segs[n].data[rnd() % l2] ^= 0x5a; /* different bytes */
			n++;
		}
		off += len;
	}
	/* Lose some, reorder some. */
	for (uint32_t i = 0; i < n; i++)
		if (rnd() % 40 == 0)
			segs[i].len = 0; /* lost: never sent to either side */
	for (uint32_t i = 0; i + 1 < n; i++)
		if (rnd() % 3 == 0) {
			uint32_t j = i + 1 + rnd() % (n - i - 1 < 8 ? n - i - 1 : 8);
			struct segment t = segs[i];
			segs[i] = segs[j];
			segs[j] = t;
		}

	/* A mid-stream pickup starts at the first segment it sees: put the
	 * stream's first bytes first, so the model's offsets are its offsets. */
	if (!with_syn && n < 4000) {
		memmove(segs + 1, segs, n * sizeof(segs[0]));
		segs[0].off = 0;
		segs[0].len = 1;
		segs[0].flags = TS_TCP_ACK;
		segs[0].data[0] = stream[0];
		n++;
	}

	struct ts_reasm_config cfg;
	ts_reasm_config_default(&cfg);
	cfg.history = MAX_STREAM; /* every retransmission can be compared */
	if (tight_caps) {
		cfg.dir_buffer = 3000;
		cfg.total_buffer = 5000;
	}
	struct ts_reasm *r = ts_reasm_new(&cfg);
	memset(&out, 0, sizeof(out));
	memset(&model, 0, sizeof(model));
	struct ts_stream_sink sink = {.data = out_data, .gap = out_gap, .ctx = &out};
	struct ts_reasm_dir *d = ts_reasm_dir_new(r, &sink);
	/* Sequence numbers that wrap inside the stream. */
	uint32_t isn = 0xffffffffu - rnd() % (size + 1);
	if (with_syn)
		ts_reasm_segment(r, d, TS_TCP_SYN, isn, NULL, 0, 0, 0);
	uint32_t base = with_syn ? isn + 1 : isn;
	for (uint32_t i = 0; i < n; i++) {
		if (!segs[i].len)
			continue;
		ts_reasm_segment(r, d, segs[i].flags, base + segs[i].off, segs[i].data, segs[i].len,
		                 segs[i].len, 0);
		if (!tight_caps || i == 0)
			model_apply(&model, &segs[i]);
		if (ts_reasm_stats(r)->buffered > cfg.total_buffer) {
			printf("  seed %u: %llu bytes held over the cap\n", seed,
			       (unsigned long long)ts_reasm_stats(r)->buffered);
			return false;
		}
	}
	ts_reasm_dir_end(r, d, NULL);
	const struct ts_reasm_stats *st = ts_reasm_stats(r);
	bool ok = !out.overlap;
	if (!tight_caps) {
		/* Exactly the model: every seen byte, first copy; every hole a gap. */
		ok = ok && out.end == model.end;
		for (uint64_t o = 0; ok && o < model.end; o++) {
			if (model.seen[o])
				ok = out.kind[o] == 1 && out.bytes[o] == model.bytes[o];
			else
				ok = out.kind[o] == 2;
			if (!ok)
				printf("  seed %u: offset %llu: got kind %u byte %02x, model %s "
				       "%02x\n",
				       seed, (unsigned long long)o, out.kind[o], out.bytes[o],
				       model.seen[o] ? "byte" : "gap", model.bytes[o]);
		}
		if (st->inconsistent != model.inconsistent) {
			printf("  seed %u: %llu inconsistent, model %u\n", seed,
			       (unsigned long long)st->inconsistent, model.inconsistent);
			ok = false;
		}
	} else {
		/* Under caps: data and gaps still tile the stream, in order, and
		 * every delivered byte is one some segment carried there. */
		for (uint64_t o = 0; ok && o < out.end; o++)
			if (out.kind[o] == 1) {
				bool carried = false;
				for (uint32_t i = 0; i < n && !carried; i++)
					carried = segs[i].len && o >= segs[i].off &&
					          o < segs[i].off + segs[i].len &&
					          segs[i].data[o - segs[i].off] == out.bytes[o];
				ok = carried;
				if (!ok)
					printf("  seed %u: offset %llu carries a byte no segment "
					       "had\n",
					       seed, (unsigned long long)o);
			} else {
				ok = out.kind[o] == 2;
			}
		if (ok && st->buffered != 0)
			printf("  seed %u: %llu bytes still held after the end\n", seed,
			       (unsigned long long)st->buffered);
		ok = ok && st->buffered == 0;
		cap_hits += st->dir_cap_hits + st->total_cap_hits;
		gaps_under_caps += st->gaps;
	}
	ts_reasm_free(r);
	return ok;
}

static void test_against_model(void)
{
	for (uint32_t seed = 1; seed <= 300; seed++)
		if (!scenario(seed, 1 + (seed * 7919) % MAX_STREAM, seed % 2, false)) {
			CHECK(false);
			break;
		}
}

static void test_caps(void)
{
	for (uint32_t seed = 1000; seed < 1040; seed++)
		if (!scenario(seed, 20000, true, true)) {
			printf("  seed %u fails under caps\n", seed);
			CHECK(false);
			break;
		}
	/* The caps were reached, and giving up holes is what made room. */
	printf("  %llu cap hits, %llu gaps over 40 capped streams\n", (unsigned long long)cap_hits,
	       (unsigned long long)gaps_under_caps);
	CHECK(cap_hits > 0 && gaps_under_caps > 0);
}

/* Hand-made cases: FIN, data after FIN, RST in and out of the window. */
static void test_fin_and_rst(void)
{
	struct ts_reasm_config cfg;
	ts_reasm_config_default(&cfg);
	struct ts_reasm *r = ts_reasm_new(&cfg);
	memset(&out, 0, sizeof(out));
	struct ts_stream_sink sink = {.data = out_data, .gap = out_gap, .ctx = &out};
	struct ts_reasm_dir *d = ts_reasm_dir_new(r, &sink);
	const uint8_t hello[] = "hello, world";
	ts_reasm_segment(r, d, TS_TCP_SYN, 1000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK | TS_TCP_PSH, 1001, hello, 5, 5, 0);
	/* FIN after "world", before the middle has arrived. */
	ts_reasm_segment(r, d, TS_TCP_ACK | TS_TCP_FIN, 1008, hello + 7, 5, 5, 0);
	CHECK(!ts_reasm_dir_closed(d));
	ts_reasm_segment(r, d, TS_TCP_ACK, 1013, (const uint8_t *)"late", 4, 4, 0); /* after FIN */
	ts_reasm_segment(r, d, TS_TCP_ACK, 1006, hello + 5, 2, 2, 0);
	CHECK(ts_reasm_dir_closed(d));
	CHECK_EQ_INT(out.end, 12);
	CHECK(memcmp(out.bytes, hello, 12) == 0);
	CHECK_EQ_INT(ts_reasm_stats(r)->data_after_fin, 4);
	ts_reasm_dir_end(r, d, NULL);

	memset(&out, 0, sizeof(out));
	d = ts_reasm_dir_new(r, &sink);
	ts_reasm_segment(r, d, TS_TCP_SYN, 5000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK, 5001, hello, 3, 3, 0);
	ts_reasm_segment(r, d, TS_TCP_RST, 5001 + 70000, NULL, 0, 0, 65535); /* out of window */
	CHECK(!ts_reasm_dir_closed(d));
	CHECK_EQ_INT(ts_reasm_stats(r)->rst_ignored, 1);
	ts_reasm_segment(r, d, TS_TCP_RST, 5004 + 100, NULL, 0, 0, 65535); /* in window */
	CHECK(ts_reasm_dir_closed(d));
	ts_reasm_segment(r, d, TS_TCP_ACK, 5004, hello + 3, 3, 3, 0);
	CHECK_EQ_INT(out.end, 3);
	ts_reasm_dir_end(r, d, NULL);

	/* Bytes before a FIN that never arrive become a gap at the end. */
	memset(&out, 0, sizeof(out));
	d = ts_reasm_dir_new(r, &sink);
	ts_reasm_segment(r, d, TS_TCP_SYN, 7000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK | TS_TCP_FIN, 7011, hello, 2, 2, 0);
	struct ts_reasm_dir_result res;
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 2);
	CHECK_EQ_INT(res.gaps, 1);
	CHECK_EQ_INT(res.gap_bytes, 10);
	CHECK_EQ_INT(out.end, 12);
	CHECK(out.kind[0] == 2 && out.kind[9] == 2 && out.kind[10] == 1 && out.kind[11] == 1);

	/* A last segment cut by a snap length: its missing tail is a gap. */
	memset(&out, 0, sizeof(out));
	d = ts_reasm_dir_new(r, &sink);
	ts_reasm_segment(r, d, TS_TCP_SYN, 9000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK, 9001, hello, 4, 1400, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 4);
	CHECK_EQ_INT(res.gaps, 1);
	CHECK_EQ_INT(res.gap_bytes, 1396);
	CHECK_EQ_INT(out.end, 1400);

	/* The same with a FIN on the cut segment: the FIN sits after the wire
	 * payload, and the cut bytes before it are a gap, not data after FIN. */
	memset(&out, 0, sizeof(out));
	d = ts_reasm_dir_new(r, &sink);
	ts_reasm_segment(r, d, TS_TCP_SYN, 9000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK | TS_TCP_FIN, 9001, hello, 4, 500, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 4);
	CHECK_EQ_INT(res.gap_bytes, 496);
	CHECK_EQ_INT(out.end, 500);
	ts_reasm_free(r);
}

/* From review: a FIN behind delivered data must not end the stream (it
 * could hide the rest of it), and a snapped stream gives up each cut tail
 * at once instead of holding everything after it until a cap. */
static void test_injected_fin_and_snapped_stream(void)
{
	struct ts_reasm_config cfg;
	ts_reasm_config_default(&cfg);
	cfg.dir_buffer = 4096;
	struct ts_reasm *r = ts_reasm_new(&cfg);
	memset(&out, 0, sizeof(out));
	struct ts_stream_sink sink = {.data = out_data, .gap = out_gap, .ctx = &out};
	struct ts_reasm_dir *d = ts_reasm_dir_new(r, &sink);
	static uint8_t block[1400];
	memset(block, 'x', sizeof(block));
	ts_reasm_segment(r, d, TS_TCP_SYN, 100, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK, 101, block, 100, 100, 0);
	ts_reasm_segment(r, d, TS_TCP_ACK | TS_TCP_FIN, 111, NULL, 0, 0, 0); /* behind next */
	ts_reasm_segment(r, d, TS_TCP_ACK, 201, block, 100, 100, 0);
	CHECK(!ts_reasm_dir_closed(d));
	CHECK_EQ_INT(ts_reasm_stats(r)->fin_ignored, 1);
	struct ts_reasm_dir_result res;
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 200);
	CHECK_EQ_INT(res.data_after_fin, 0);

	memset(&out, 0, sizeof(out));
	d = ts_reasm_dir_new(r, &sink);
	ts_reasm_segment(r, d, TS_TCP_SYN, 5000, NULL, 0, 0, 0);
	for (uint32_t i = 0; i < 20; i++) /* 1400 bytes each on the wire, 42 captured */
		ts_reasm_segment(r, d, TS_TCP_ACK, 5001 + i * 1400, block, 42, 1400, 0);
	/* Delivered as it went, nothing held; the last cut tail is reported
	 * with the next bytes or at the end. */
	CHECK_EQ_INT(out.end, 19 * 1400 + 42);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 20 * 42);
	CHECK_EQ_INT(res.gaps, 20);
	CHECK_EQ_INT(res.gap_bytes, 20 * (1400 - 42));
	CHECK_EQ_INT(ts_reasm_stats(r)->dir_cap_hits, 0);
	CHECK_EQ_INT(ts_reasm_stats(r)->buffered, 0);
	ts_reasm_free(r);
}

/* Feed stream[off, off + n) of a direction whose SYN was at 0 (offset o is
 * sequence number o + 1). */
static void feed(struct ts_reasm *r, struct ts_reasm_dir *d, const uint8_t *stream, uint32_t off,
                 uint32_t n)
{
	ts_reasm_segment(r, d, TS_TCP_ACK, off + 1, stream + off, n, n, 0);
}

/* The history ring: it grows by doubling with the stream (a short stream
 * pays for a short ring), each step charged to the total cap; it compares
 * exactly the last `history` delivered bytes across the wrap of the ring
 * and across each growth; a growth the total cap refuses keeps the smaller
 * ring (counted once); and a direction that ends gives its memory back at
 * once. */
static void test_history_ring(void)
{
	static uint8_t stream[12000], changed[12000];
	for (uint32_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(i * 7 + i / 251);
	memcpy(changed, stream, sizeof(stream));
	struct ts_reasm_config cfg;
	ts_reasm_config_default(&cfg);
	cfg.history = 10000; /* not a power of two: the last size is the cap itself */
	struct ts_reasm *r = ts_reasm_new(&cfg);
	memset(&out, 0, sizeof(out));
	struct ts_stream_sink sink = {.data = out_data, .gap = out_gap, .ctx = &out};
	struct ts_reasm_dir *d = ts_reasm_dir_new(r, &sink);
	const struct ts_reasm_stats *st = ts_reasm_stats(r);
	ts_reasm_segment(r, d, TS_TCP_SYN, 0, NULL, 0, 0, 0);
	CHECK_EQ_INT(st->buffered, 0); /* nothing delivered, no ring */
	feed(r, d, stream, 0, 300);
	CHECK_EQ_INT(st->buffered, 2048);
	feed(r, d, stream, 300, 1748);
	CHECK_EQ_INT(st->buffered, 2048); /* 2048 bytes: still fits */
	feed(r, d, stream, 2048, 1052);
	CHECK_EQ_INT(st->buffered, 4096);
	/* A resend of early bytes, same and changed, after growing: moved. */
	feed(r, d, stream, 0, 1400);
	CHECK_EQ_INT(st->inconsistent, 0);
	changed[5] ^= 1;
	feed(r, d, changed, 0, 10);
	CHECK_EQ_INT(st->inconsistent, 1);
	changed[5] ^= 1;
	for (uint32_t off = 3100; off < 12000; off += 1400)
		feed(r, d, stream, off, off + 1400 > 12000 ? 12000 - off : 1400);
	CHECK_EQ_INT(st->buffered, 10000); /* 8192, then the cap */
	CHECK_EQ_INT(st->unverified, 0);
	/* The last 10000 bytes are compared, across the ring's wrap (12000 %
	 * 10000); older ones are unverified. */
	feed(r, d, stream, 1000, 11000);
	CHECK_EQ_INT(st->inconsistent, 1);
	CHECK_EQ_INT(st->unverified, 1000);
	changed[2000] ^= 1;  /* the oldest byte still held */
	changed[11999] ^= 1; /* the newest */
	feed(r, d, changed, 1990, 20);
	CHECK_EQ_INT(st->inconsistent, 2);
	CHECK_EQ_INT(st->unverified, 1010);
	feed(r, d, changed, 11990, 10);
	CHECK_EQ_INT(st->inconsistent, 3);
	changed[1999] ^= 1; /* just too old: not seen */
	feed(r, d, changed, 1999, 1);
	CHECK_EQ_INT(st->inconsistent, 3);
	CHECK_EQ_INT(st->unverified, 1011);
	CHECK_EQ_INT(st->history_skipped, 0);
	CHECK_EQ_INT(out.end, 12000);
	CHECK(memcmp(out.bytes, stream, 12000) == 0);
	/* The FIN is delivered: the ring goes at once, and what comes after is
	 * data after the FIN, as before. */
	ts_reasm_segment(r, d, TS_TCP_ACK | TS_TCP_FIN, 12001, NULL, 0, 0, 0);
	CHECK(ts_reasm_dir_closed(d));
	CHECK_EQ_INT(st->buffered, 0);
	feed(r, d, stream, 11000, 1000);
	CHECK_EQ_INT(st->data_after_fin, 1000);
	CHECK_EQ_INT(st->inconsistent, 3);
	struct ts_reasm_dir_result res;
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 12000);
	CHECK_EQ_INT(res.inconsistent, 3);
	CHECK_EQ_INT(res.data_after_fin, 1000);
	ts_reasm_free(r);

	/* Total cap 3000: the first ring (2048) fits, its growth does not. */
	cfg.total_buffer = 3000;
	r = ts_reasm_new(&cfg);
	st = ts_reasm_stats(r);
	memset(&out, 0, sizeof(out));
	d = ts_reasm_dir_new(r, &sink);
	ts_reasm_segment(r, d, TS_TCP_SYN, 0, NULL, 0, 0, 0);
	for (uint32_t off = 0; off < 5000; off += 500)
		feed(r, d, stream, off, 500);
	CHECK_EQ_INT(st->buffered, 2048);
	CHECK_EQ_INT(st->history_skipped, 1); /* once, not on every segment */
	changed[4000] ^= 1;
	feed(r, d, changed, 2900, 1200); /* 52 bytes too old for the 2048 kept */
	CHECK_EQ_INT(st->unverified, 52);
	CHECK_EQ_INT(st->inconsistent, 1);
	changed[4000] ^= 1;
	/* A second direction cannot have even a first ring. */
	struct output out2;
	memset(&out2, 0, sizeof(out2));
	struct ts_stream_sink sink2 = {.data = out_data, .gap = out_gap, .ctx = &out2};
	struct ts_reasm_dir *d2 = ts_reasm_dir_new(r, &sink2);
	ts_reasm_segment(r, d2, TS_TCP_SYN, 0, NULL, 0, 0, 0);
	feed(r, d2, stream, 0, 100);
	CHECK_EQ_INT(st->history_skipped, 2);
	feed(r, d2, stream, 0, 100);
	CHECK_EQ_INT(st->unverified, 152);
	CHECK_EQ_INT(st->buffered, 2048);
	/* A RST ends the first direction: its held piece goes out now, after a
	 * gap, and its memory is given back. */
	feed(r, d, stream, 5100, 100);
	CHECK_EQ_INT(st->buffered, 2048 + 100 + TS_REASM_PIECE_COST);
	ts_reasm_segment(r, d, TS_TCP_RST, 5001, NULL, 0, 0, 0);
	CHECK(ts_reasm_dir_closed(d));
	CHECK_EQ_INT(st->buffered, 0);
	CHECK_EQ_INT(out.end, 5200);
	CHECK(out.kind[5000] == 2 && out.kind[5099] == 2 && out.kind[5100] == 1);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 5100);
	CHECK_EQ_INT(res.gaps, 1);
	CHECK_EQ_INT(res.gap_bytes, 100);
	ts_reasm_dir_end(r, d2, NULL);
	CHECK_EQ_INT(st->buffered, 0);
	ts_reasm_free(r);
}

/* A fresh direction writing to `out`, on `r`. */
static struct ts_reasm_dir *fresh_dir(struct ts_reasm *r)
{
	memset(&out, 0, sizeof(out));
	struct ts_stream_sink sink = {.data = out_data, .gap = out_gap, .ctx = &out};
	return ts_reasm_dir_new(r, &sink);
}

/* A pure ACK seen first fixes a direction's start at its sequence number
 * (the sender's next byte), so data that arrives out of order after it is
 * not cut off as "before the start"; a keep-alive (next byte minus one) does
 * not make a one-byte gap; a SYN replaces such a start; once the start is
 * fixed, pure ACKs move nothing. */
static void test_pure_ack_start(void)
{
	static uint8_t data[400];
	for (uint32_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 5);
	struct ts_reasm_config cfg;
	ts_reasm_config_default(&cfg);
	struct ts_reasm *r = ts_reasm_new(&cfg);
	const struct ts_reasm_stats *st = ts_reasm_stats(r);
	struct ts_reasm_dir_result res;
	const uint8_t A = TS_TCP_ACK, PA = TS_TCP_PSH | TS_TCP_ACK;

	/* The case: ACK at S, then [S+100, S+200), then [S, S+100). */
	uint32_t S = 0xfffffff0u; /* and the sequence numbers wrap */
	struct ts_reasm_dir *d = fresh_dir(r);
	ts_reasm_segment(r, d, A, S, NULL, 0, 0, 0);
	CHECK_EQ_INT(st->segments, 0); /* a pure ACK is not a segment of the stream */
	ts_reasm_segment(r, d, PA, S + 100, data + 100, 100, 100, 0);
	CHECK_EQ_INT(out.end, 0); /* held: the hole before it is the stream's */
	ts_reasm_segment(r, d, PA, S, data, 100, 100, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 200);
	CHECK_EQ_INT(res.gaps, 0);
	CHECK_EQ_INT(st->before_start, 0);
	CHECK(memcmp(out.bytes, data, 200) == 0);

	/* The hole never fills: a gap, not silence. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, A, 5000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 5100, data + 100, 100, 100, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 100);
	CHECK_EQ_INT(res.gaps, 1);
	CHECK_EQ_INT(res.gap_bytes, 100);
	CHECK(out.kind[0] == 2 && out.kind[99] == 2 && out.kind[100] == 1);

	/* A keep-alive first (next byte minus one, no data; then a second one):
	 * the data one past it starts the stream, no gap. The same with a FIN
	 * and no data. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, A, 6999, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, A, 6999, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 7000, data, 50, 50, 0);
	ts_reasm_segment(r, d, PA, 7050, data + 50, 50, 50, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 100);
	CHECK_EQ_INT(res.gaps, 0);
	CHECK(memcmp(out.bytes, data, 100) == 0);
	d = fresh_dir(r);
	ts_reasm_segment(r, d, A, 6999, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_FIN | A, 7000, NULL, 0, 0, 0);
	CHECK(ts_reasm_dir_closed(d));
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes + res.gaps, 0);

	/* Once fixed, later pure ACKs (a keep-alive, one far behind, one far
	 * ahead) move nothing; the stream goes on from where it was. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, A, 8000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 8000, data, 100, 100, 0);
	ts_reasm_segment(r, d, A, 8099, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, A, 8000 - 40000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, A, 8000 + 40000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 8100, data + 100, 100, 100, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 200);
	CHECK_EQ_INT(res.gaps, 0);
	CHECK(memcmp(out.bytes, data, 200) == 0);

	/* A data segment fixes the start before any ACK: an ACK after it from
	 * before (a stale one) does not move it back. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, PA, 9100, data + 100, 100, 100, 0);
	ts_reasm_segment(r, d, A, 9000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 9000, data, 100, 100, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 100);
	CHECK_EQ_INT(res.gaps, 0);
	CHECK_EQ_INT(st->before_start, 100);

	/* A stray ACK, then the handshake: the SYN's start wins. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, A, 123456789, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_SYN, 20000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 20001, data, 100, 100, 0);
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 100);
	CHECK_EQ_INT(res.gaps, 0);

	/* A RST after an ACK start is judged from that start. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, A, 30000, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, TS_TCP_RST, 30000 + 70000, NULL, 0, 0, 65535);
	CHECK(!ts_reasm_dir_closed(d));
	ts_reasm_segment(r, d, TS_TCP_RST, 30000 + 700, NULL, 0, 0, 65535);
	CHECK(ts_reasm_dir_closed(d));
	ts_reasm_dir_end(r, d, NULL);
	ts_reasm_free(r);
}

/* A payload a snap length cut whole (captured 0 of wire_len bytes) is no
 * pure ACK: its bytes are a gap, given up at once (what follows is not held
 * behind it), one gap for holes that meet, and a stream ending with one ends
 * with that gap. */
static void test_payload_cut_whole(void)
{
	static uint8_t data[400];
	for (uint32_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 3 + 1);
	struct ts_reasm_config cfg;
	ts_reasm_config_default(&cfg);
	struct ts_reasm *r = ts_reasm_new(&cfg);
	struct ts_reasm_dir_result res;
	const uint8_t PA = TS_TCP_PSH | TS_TCP_ACK;
	struct ts_reasm_dir *d = fresh_dir(r);
	ts_reasm_segment(r, d, TS_TCP_SYN, 100, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 101, data, 100, 100, 0);
	ts_reasm_segment(r, d, PA, 201, data + 100, 0, 100, 0); /* [100, 200) cut whole */
	ts_reasm_segment(r, d, PA, 301, data + 200, 0, 50, 0);  /* [200, 250) too */
	ts_reasm_segment(r, d, PA, 351, data + 250, 100, 100, 0);
	CHECK_EQ_INT(out.end, 350);                            /* not held behind the cut ones */
	ts_reasm_segment(r, d, PA, 451, data + 350, 0, 50, 0); /* the last one cut too */
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 200);
	CHECK_EQ_INT(res.gaps, 2);
	CHECK_EQ_INT(res.gap_bytes, 200);
	CHECK_EQ_INT(out.end, 400);
	CHECK(out.kind[99] == 1 && out.kind[100] == 2 && out.kind[249] == 2 && out.kind[250] == 1 &&
	      out.kind[349] == 1 && out.kind[350] == 2);
	CHECK(memcmp(out.bytes, data, 100) == 0 && memcmp(out.bytes + 250, data + 250, 100) == 0);

	/* Out of order: held bytes after a cut one are not gapped over. */
	d = fresh_dir(r);
	ts_reasm_segment(r, d, TS_TCP_SYN, 100, NULL, 0, 0, 0);
	ts_reasm_segment(r, d, PA, 201, data + 100, 100, 100, 0); /* held at 100 */
	ts_reasm_segment(r, d, PA, 101, data, 0, 150, 0);         /* [0, 150) cut whole */
	CHECK_EQ_INT(out.end, 200); /* a gap up to the held piece, then it */
	ts_reasm_dir_end(r, d, &res);
	CHECK_EQ_INT(res.bytes, 100);
	CHECK_EQ_INT(res.gaps, 1);
	CHECK_EQ_INT(res.gap_bytes, 100);
	CHECK(memcmp(out.bytes + 100, data + 100, 100) == 0);
	ts_reasm_free(r);
}

int main(void)
{
	RUN(test_fin_and_rst);
	RUN(test_against_model);
	RUN(test_caps);
	RUN(test_injected_fin_and_snapped_stream);
	RUN(test_history_ring);
	RUN(test_pure_ack_start);
	RUN(test_payload_cut_whole);
	return check_exit_code();
}
