/*
 * Fuzz IP defragmentation. Input: one byte of settings, then fragments as
 * [flags:1][offset:2][length:1][bytes]. Settings bit 0: IPv6; bit 1: IPv4
 * overlaps drop the datagram; bit 2: UDP instead of an unparsed protocol;
 * bit 3: tiny caps (2 datagrams, 2 KiB, 1 s). Fragment flags bit 0: more
 * fragments; bits 1-2: which of four datagram ids; bits 3-7: seconds to
 * advance the clock. The offset counts 8-byte units; the length counts
 * 8-byte units when more fragments follow, bytes otherwise.
 *
 * Each fragment is built into a real packet and decoded; clean fragments go
 * to the defragmenter. With caps out of reach the result of every datagram
 * must be what a plain model of the rules says (first copy wins or drop on
 * overlap, exact duplicates kept, contradictions and the 64 KiB limit
 * refused), byte for byte; with tiny caps, the accounting must hold. The
 * harness aborts when either does not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/decode.h"
#include "torsieve/defrag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IDS       4
#define SPAN      65536
#define MAX_HELD  1024
#define PROTO_RAW 253

struct model {
	uint8_t bytes[SPAN];
	uint8_t seen[SPAN];
	uint32_t held_off[MAX_HELD], held_len[MAX_HELD];
	uint32_t held, covered, total, max_end;
	uint32_t hlen; /* the header length of the first offset-0 fragment */
	bool have_last, have_head, dead, active;
};

static struct model models[IDS];

/* What the defragmenter reported for the fragment just added. */
static struct {
	int count;
	enum ts_defrag_fate fate[8];
	uint32_t records[8];
	uint32_t len[8], caplen[8];
	uint8_t datagram[SPAN + 64];
} seen;
static uint64_t reassembled_records;

static void on_done(void *ctx, const struct ts_defrag_result *r)
{
	(void)ctx;
	uint32_t n = 0;
	for (const struct ts_defrag_record *rec = r->records; rec; rec = rec->next)
		n++;
	if (n != r->record_count || n == 0 || r->caplen > r->len)
		abort();
	if (r->fate == TS_DEFRAG_REASSEMBLED) {
		reassembled_records += n;
		struct ts_decoded d;
		ts_decode_ip(r->datagram, r->caplen, r->len, &d); /* must not crash */
		if (d.is_fragment)
			abort(); /* the fragmentation was not undone */
		/* The rebuilt header says the datagram's own length. */
		uint8_t version = r->datagram[0] >> 4;
		if (version == 4 && ((uint32_t)ts_be16(r->datagram + 2) != r->len ||
		                     (ts_be16(r->datagram + 6) & 0x3fff) != 0))
			abort();
		if (version == 6 && (uint32_t)ts_be16(r->datagram + 4) + 40 != r->len)
			abort();
		if (version != 4 && version != 6)
			abort();
		memcpy(seen.datagram, r->datagram, r->caplen);
	}
	if (seen.count < 8) {
		seen.fate[seen.count] = r->fate;
		seen.records[seen.count] = n;
		seen.len[seen.count] = r->len;
		seen.caplen[seen.count] = r->caplen;
	}
	seen.count++;
}

/* The model's verdict on one fragment of datagram m; fills *expect_records.
 * Returns TS_DEFRAG_FATE_COUNT when the fragment is only held. */
static enum ts_defrag_fate model_add(struct model *m, uint32_t off, uint32_t len, bool more,
                                     const uint8_t *p, uint32_t hlen, bool drop_overlaps,
                                     uint32_t *expect_records)
{
	uint32_t end = off + len;
	if (m->dead) {
		*expect_records = 1;
		return TS_DEFRAG_OVERLAP;
	}
	m->active = true;
	*expect_records = m->held + 1;
	bool contradiction = more ? m->have_last && end > m->total
	                          : (m->have_last && m->total != end) || m->max_end > end;
	if (contradiction) {
		memset(m, 0, sizeof(*m));
		return TS_DEFRAG_INCONSISTENT;
	}
	bool hit = false, dup = false;
	for (uint32_t k = 0; k < len && !hit; k++)
		hit = m->seen[off + k];
	for (uint32_t i = 0; hit && i < m->held; i++)
		dup |= m->held_off[i] == off && m->held_len[i] == len;
	if (hit && !dup && drop_overlaps) {
		memset(m, 0, sizeof(*m));
		m->dead = true;
		return TS_DEFRAG_OVERLAP;
	}
	m->held_off[m->held] = off;
	m->held_len[m->held++] = len;
	for (uint32_t k = 0; k < len; k++)
		if (!m->seen[off + k]) {
			m->seen[off + k] = 1;
			m->bytes[off + k] = p[k];
			m->covered++;
		}
	if (end > m->max_end)
		m->max_end = end;
	if (!more) {
		m->have_last = true;
		m->total = end;
	}
	if (off == 0 && !m->have_head) {
		m->have_head = true;
		m->hlen = hlen;
	}
	if (!m->have_last || m->covered != m->total)
		return TS_DEFRAG_FATE_COUNT;
	return TS_DEFRAG_REASSEMBLED;
}

static uint32_t build(uint8_t *buf, bool v6, uint8_t proto, uint32_t id, uint32_t off, bool more,
                      const uint8_t *p, uint32_t len)
{
	if (!v6) {
		uint32_t tot = 20 + len;
		uint16_t fo = (uint16_t)((more ? 0x2000 : 0) | (off / 8));
		uint8_t h[20] = {0x45,
		                 0,
		                 (uint8_t)(tot >> 8),
		                 (uint8_t)tot,
		                 0,
		                 (uint8_t)id,
		                 (uint8_t)(fo >> 8),
		                 (uint8_t)fo,
		                 64,
		                 proto,
		                 0,
		                 0,
		                 192,
		                 0,
		                 2,
		                 1,
		                 198,
		                 51,
		                 100,
		                 2};
		memcpy(buf, h, 20);
		memcpy(buf + 20, p, len);
		return tot;
	}
	uint32_t plen = 8 + len;
	memset(buf, 0, 48);
	buf[0] = 0x60;
	buf[4] = (uint8_t)(plen >> 8);
	buf[5] = (uint8_t)plen;
	buf[6] = 44;
	buf[7] = 64;
	buf[8] = 0x20, buf[9] = 0x01, buf[23] = 1, buf[24] = 0x20, buf[25] = 0x01, buf[39] = 2;
	buf[40] = proto;
	uint16_t fo = (uint16_t)(off | (more ? 1 : 0));
	buf[42] = (uint8_t)(fo >> 8);
	buf[43] = (uint8_t)fo;
	buf[47] = (uint8_t)id;
	memcpy(buf + 48, p, len);
	return 48 + len;
}

static void check_result(enum ts_defrag_fate want, uint32_t records, const struct model *m, bool v6)
{
	/* The fragment's own datagram is reported last (after any it pushed
	 * out, which cannot happen with caps out of reach). */
	if (want == TS_DEFRAG_FATE_COUNT) {
		if (seen.count != 0)
			abort();
		return;
	}
	if (want == TS_DEFRAG_REASSEMBLED) {
		uint32_t limit = v6 ? 65535 + 40 : 65535;
		if (m->hlen + m->total > limit)
			want = TS_DEFRAG_INCONSISTENT;
	}
	if (seen.count != 1 || seen.fate[0] != want || seen.records[0] != records)
		abort();
	if (want != TS_DEFRAG_REASSEMBLED)
		return;
	if (seen.len[0] != m->hlen + m->total || seen.caplen[0] != seen.len[0] ||
	    memcmp(seen.datagram + m->hlen, m->bytes, m->total) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t settings = data[0];
	bool v6 = settings & 1, tiny = settings & 8;
	bool drop = v6 || (settings & 2);
	uint8_t proto = settings & 4 ? 17 : PROTO_RAW;

	struct ts_defrag_config cfg;
	ts_defrag_config_default(&cfg);
	cfg.ipv4_overlap = settings & 2 ? TS_DEFRAG_DROP : TS_DEFRAG_FIRST;
	if (tiny) {
		cfg.max_datagrams = 2;
		cfg.memory = 2048;
		cfg.timeout = 1;
	} else {
		cfg.memory = 1ull << 30;
		cfg.timeout = 3600;
	}
	struct ts_defrag *df = ts_defrag_new(&cfg, on_done, NULL);
	if (!df)
		return 0;
	memset(models, 0, sizeof(models));
	reassembled_records = 0;

	static uint8_t frame[SPAN + 128];
	static uint8_t zeros[SPAN];
	const uint8_t *p = data + 1, *end = data + size;
	int64_t now = 0;
	uint64_t index = 0;
	while (end - p >= 4) {
		uint8_t flags = p[0];
		bool more = flags & 1;
		uint32_t id = (flags >> 1) & 3;
		uint32_t off = (uint32_t)(ts_be16(p + 1) & 0x1fff) * 8;
		uint32_t len = more ? (uint32_t)p[3] * 8 : p[3];
		p += 4;
		const uint8_t *bytes = zeros;
		if ((size_t)(end - p) >= len) {
			bytes = p;
			p += len;
		}
		if (tiny)
			now += (int64_t)(flags >> 3) * 1000000;
		else if (models[id].held == MAX_HELD)
			break; /* longer than the model keeps */
		uint32_t flen = build(frame, v6, proto, id, off, more, bytes, len);
		struct ts_packet pkt = {.data = frame,
		                        .caplen = flen,
		                        .len = flen,
		                        .index = ++index,
		                        .link = TS_LINK_RAW};
		struct ts_decoded d;
		ts_decode(TS_LINK_RAW, frame, flen, flen, &d);
		if (d.anomaly != TS_ANOM_NONE || !d.is_fragment)
			continue;
		seen.count = 0;
		ts_defrag_add(df, &pkt, &d, now);
		const struct ts_defrag_stats *st = ts_defrag_get_stats(df);
		if (st->memory > cfg.memory || st->in_progress > cfg.max_datagrams)
			abort();
		if (st->fragments != reassembled_records + st->dropped + st->held)
			abort();
		if (tiny)
			continue;
		uint32_t records;
		enum ts_defrag_fate want =
		        model_add(&models[id], off, len, more, bytes,
		                  v6 ? d.frag_hdr_offset : d.frag_data_offset, drop, &records);
		check_result(want, records, &models[id], v6);
		if (want == TS_DEFRAG_REASSEMBLED)
			memset(&models[id], 0, sizeof(models[id]));
	}
	ts_defrag_flush(df);
	const struct ts_defrag_stats *st = ts_defrag_get_stats(df);
	if (st->held || st->memory || st->in_progress ||
	    st->fragments != reassembled_records + st->dropped)
		abort();
	ts_defrag_free(df);
	return 0;
}
