/*
 * Fuzz the TCP reassembler against a first-copy-wins model. Input: 4 bytes
 * of initial sequence number, then segments as [offset:2][length:1][bytes].
 * With the buffer caps out of reach, the delivered bytes, gaps, inconsistency
 * count and unverified bytes must equal the model's exactly; the harness
 * aborts when they do not. Bit 12 of the sequence number picks the history:
 * as long as the stream (every resend compared), or 1 to 4096 bytes (its low
 * 12 bits plus one), so the ring wraps, grows and forgets old bytes. Bit 13
 * starts the direction with a pure ACK at offset 0 instead of a SYN: the
 * same start, except that a first segment at offset 1 means the ACK was a
 * keep-alive, and offset 1 becomes the stream's first byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/decode.h"
#include "torsieve/reassembly.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPAN (65536 + 256)

struct model {
	uint8_t bytes[SPAN];
	uint8_t seen[SPAN];
	uint64_t end;
	uint64_t next; /* the first offset not seen: what is delivered */
	uint64_t inconsistent, unverified;
};

struct output {
	uint8_t bytes[SPAN];
	uint8_t kind[SPAN]; /* 1 data, 2 gap */
	uint64_t end;
};

static struct model model;
static struct output out;

static void on_data(void *ctx, uint64_t off, const uint8_t *p, uint32_t n)
{
	(void)ctx;
	if (off != out.end || off + n > SPAN)
		abort(); /* out of order, overlapping, or past the stream */
	memcpy(out.bytes + off, p, n);
	memset(out.kind + off, 1, n);
	out.end = off + n;
}

static void on_gap(void *ctx, uint64_t off, uint64_t n)
{
	(void)ctx;
	if (off != out.end || off + n > SPAN || n == 0)
		abort();
	memset(out.kind + off, 2, n);
	out.end = off + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint32_t isn = ts_be32(data);
	const uint8_t *p = data + 4, *end = data + size;
	memset(&model, 0, sizeof(model));
	memset(&out, 0, sizeof(out));

	uint32_t history = (isn & 0x1000) ? SPAN : (isn & 0xfff) + 1;
	struct ts_reasm_config cfg = {
	        .dir_buffer = 1u << 30, .total_buffer = 1ull << 31, .history = history};
	struct ts_reasm *r = ts_reasm_new(&cfg);
	struct ts_stream_sink sink = {.data = on_data, .gap = on_gap};
	struct ts_reasm_dir *d = r ? ts_reasm_dir_new(r, &sink) : NULL;
	if (!d) {
		ts_reasm_free(r);
		return 0;
	}
	/* A SYN (or a pure ACK) fixes offset 0, so every segment's offset
	 * means what it says (but see the keep-alive above). */
	bool ack_start = isn & 0x2000, first = true;
	uint32_t shift = 0;
	if (ack_start)
		ts_reasm_segment(r, d, TS_TCP_ACK, isn + 1, NULL, 0, 0, 0);
	else
		ts_reasm_segment(r, d, TS_TCP_SYN, isn, NULL, 0, 0, 0);
	while (end - p >= 3) {
		uint32_t off = ts_be16(p), len = p[2];
		p += 3;
		if (len > (uint32_t)(end - p))
			len = (uint32_t)(end - p);
		if (len == 0)
			continue;
		if (first && ack_start && off == 1)
			shift = 1; /* the ACK was a keep-alive */
		first = false;
		/* Byte by byte in stream order, as the reassembler cuts a
		 * segment: a byte already delivered is compared only while it is
		 * among the last `history` delivered (older: unverified); a byte
		 * held is always compared; a new byte at the delivery point is
		 * delivered with every held byte after it. */
		bool differs = false;
		for (uint32_t i = 0; i < len; i++) {
			if (off + i < shift)
				continue; /* before the start */
			uint64_t o = off + i - shift;
			if (o < model.next && o + history < model.next) {
				model.unverified++;
			} else if (model.seen[o]) {
				differs |= model.bytes[o] != p[i];
			} else {
				model.seen[o] = 1;
				model.bytes[o] = p[i];
				while (model.next < SPAN && model.seen[model.next])
					model.next++;
			}
		}
		model.inconsistent += differs;
		if (off + len - shift > model.end)
			model.end = off + len - shift;
		ts_reasm_segment(r, d, TS_TCP_ACK, isn + 1 + off, p, len, len, 0);
		p += len;
	}
	struct ts_reasm_dir_result res;
	ts_reasm_dir_end(r, d, &res);
	if (out.end != model.end || res.inconsistent != model.inconsistent ||
	    ts_reasm_stats(r)->unverified != model.unverified)
		abort();
	for (uint64_t o = 0; o < model.end; o++) {
		if (model.seen[o] ? (out.kind[o] != 1 || out.bytes[o] != model.bytes[o])
		                  : out.kind[o] != 2)
			abort();
	}
	if (ts_reasm_stats(r)->buffered != 0)
		abort();
	ts_reasm_free(r);
	return 0;
}
