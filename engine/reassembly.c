/*
 * TCP reassembly (see reassembly.h). A direction keeps the next stream
 * offset to deliver, the out-of-order pieces it holds (sorted, disjoint, all
 * past `next`), and a ring of recently delivered bytes. Incoming data is cut
 * against what is delivered and what is held: new bytes at `next` go straight
 * out, new bytes further on are held, bytes seen before are only compared.
 */
#include <stdlib.h>
#include <string.h>

#include "torsieve/decode.h"
#include "torsieve/reassembly.h"

struct piece {
	struct piece *next;
	uint64_t off;
	uint32_t len;
	uint8_t data[];
};

struct ts_reasm {
	struct ts_reasm_config cfg;
	struct ts_reasm_stats st;
};

struct ts_reasm_dir {
	struct ts_stream_sink sink;
	bool started, fin_seen, closed;
	uint32_t base;     /* the sequence number of stream offset 0 */
	uint64_t next;     /* the next offset to deliver */
	uint64_t fin_off;  /* where the FIN sits */
	uint64_t seen_end; /* one past the last byte known to exist */
	struct piece *held;
	uint32_t held_bytes;
	struct ts_reasm_dir_result result;
	uint8_t *history;      /* ring: offset o at history[o % cfg.history] */
	uint64_t history_from; /* the lowest offset whose byte is in the ring */
};

void ts_reasm_config_default(struct ts_reasm_config *c)
{
	c->dir_buffer = 1u << 20;
	c->total_buffer = 64ull << 20;
	c->history = 64u << 10;
}

struct ts_reasm *ts_reasm_new(const struct ts_reasm_config *cfg)
{
	struct ts_reasm *r = calloc(1, sizeof(*r));
	if (r)
		r->cfg = *cfg;
	return r;
}

void ts_reasm_free(struct ts_reasm *r)
{
	free(r);
}

const struct ts_reasm_stats *ts_reasm_stats(const struct ts_reasm *r)
{
	return &r->st;
}

struct ts_reasm_dir *ts_reasm_dir_new(struct ts_reasm *r, const struct ts_stream_sink *sink)
{
	struct ts_reasm_dir *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	if (r->cfg.history && !(d->history = malloc(r->cfg.history))) {
		free(d);
		return NULL;
	}
	d->sink = *sink;
	return d;
}

bool ts_reasm_dir_closed(const struct ts_reasm_dir *d)
{
	return d->closed;
}

static void deliver(struct ts_reasm *r, struct ts_reasm_dir *d, const uint8_t *p, uint32_t n)
{
	if (!n)
		return;
	if (d->sink.data)
		d->sink.data(d->sink.ctx, d->next, p, n);
	uint32_t h = r->cfg.history;
	for (uint32_t i = 0; h && i < n; i++)
		d->history[(d->next + i) % h] = p[i];
	d->next += n;
	r->st.delivered += n;
	d->result.bytes += n;
}

/* Deliver the held pieces that now start at `next`. */
static void drain(struct ts_reasm *r, struct ts_reasm_dir *d)
{
	while (d->held && d->held->off == d->next) {
		struct piece *p = d->held;
		d->held = p->next;
		d->held_bytes -= p->len;
		r->st.buffered -= p->len;
		deliver(r, d, p->data, p->len);
		free(p);
	}
}

/* Give up the hole [next, until) as a gap, then deliver what follows it. */
static void give_up(struct ts_reasm *r, struct ts_reasm_dir *d, uint64_t until)
{
	if (until > d->next) {
		if (d->sink.gap)
			d->sink.gap(d->sink.ctx, d->next, until - d->next);
		r->st.gaps++;
		r->st.gap_bytes += until - d->next;
		d->result.gaps++;
		d->result.gap_bytes += until - d->next;
		d->next = until;
		d->history_from = until; /* the ring holds nothing for the gap */
	}
	drain(r, d);
}

/* Compare bytes already delivered with the history ring; true if any of
 * those it still holds differ. */
static bool differs_from_history(struct ts_reasm *r, const struct ts_reasm_dir *d, uint64_t off,
                                 const uint8_t *p, uint64_t n)
{
	uint32_t h = r->cfg.history;
	uint64_t oldest = d->next > h ? d->next - h : 0;
	if (oldest < d->history_from)
		oldest = d->history_from;
	bool differs = false;
	for (uint64_t i = 0; i < n; i++) {
		if (off + i < oldest) {
			r->st.unverified++;
			continue;
		}
		differs |= d->history[(off + i) % h] != p[i];
	}
	return differs;
}

static bool fits(const struct ts_reasm *r, const struct ts_reasm_dir *d, uint32_t n)
{
	return d->held_bytes + (uint64_t)n <= r->cfg.dir_buffer &&
	       r->st.buffered + n <= r->cfg.total_buffer;
}

static void hold(struct ts_reasm *r, struct ts_reasm_dir *d, struct piece **link, uint64_t off,
                 const uint8_t *p, uint32_t n)
{
	struct piece *pc = malloc(sizeof(*pc) + n);
	if (!pc) {
		r->st.dropped_bytes += n; /* shows as a gap when the hole is given up */
		return;
	}
	pc->off = off;
	pc->len = n;
	memcpy(pc->data, p, n);
	pc->next = *link;
	*link = pc;
	d->held_bytes += n;
	r->st.buffered += n;
}

static void add_data(struct ts_reasm *r, struct ts_reasm_dir *d, uint64_t off, const uint8_t *data,
                     uint32_t len)
{
	uint64_t end = off + len, cur = off;
	bool differs = false;
	while (cur < end) {
		const uint8_t *p = data + (cur - off);
		if (cur < d->next) { /* delivered before: compare only */
			uint64_t upto = end < d->next ? end : d->next;
			differs |= differs_from_history(r, d, cur, p, upto - cur);
			r->st.retransmitted += upto - cur;
			cur = upto;
			continue;
		}
		struct piece **link = &d->held;
		while (*link && (*link)->off + (*link)->len <= cur)
			link = &(*link)->next;
		struct piece *s = *link;
		if (s && s->off <= cur) { /* held before: first copy wins */
			uint64_t upto = end < s->off + s->len ? end : s->off + s->len;
			differs |= memcmp(s->data + (cur - s->off), p, upto - cur) != 0;
			r->st.retransmitted += upto - cur;
			cur = upto;
			continue;
		}
		uint64_t upto = s && s->off < end ? s->off : end;
		uint32_t n = (uint32_t)(upto - cur);
		if (cur == d->next) {
			deliver(r, d, p, n);
			drain(r, d);
		} else if (fits(r, d, n)) {
			hold(r, d, link, cur, p, n);
		} else {
			/* A cap: give up the first hole (before this piece or before
			 * the first held piece) so held bytes can go, and retry. */
			if (d->held_bytes + (uint64_t)n > r->cfg.dir_buffer)
				r->st.dir_cap_hits++;
			else
				r->st.total_cap_hits++;
			uint64_t until = d->held && d->held->off < cur ? d->held->off : cur;
			give_up(r, d, until);
			continue;
		}
		cur = upto;
	}
	if (differs) {
		r->st.inconsistent++;
		d->result.inconsistent++;
	}
}

/* Data past a FIN does not belong to the stream: drop what is held there. */
static void trim_after_fin(struct ts_reasm *r, struct ts_reasm_dir *d)
{
	struct piece **link = &d->held;
	while (*link) {
		struct piece *p = *link;
		if (p->off >= d->fin_off) {
			*link = p->next;
			r->st.data_after_fin += p->len;
			d->held_bytes -= p->len;
			r->st.buffered -= p->len;
			free(p);
			continue;
		}
		if (p->off + p->len > d->fin_off) {
			uint32_t keep = (uint32_t)(d->fin_off - p->off);
			r->st.data_after_fin += p->len - keep;
			d->held_bytes -= p->len - keep;
			r->st.buffered -= p->len - keep;
			p->len = keep;
		}
		link = &p->next;
	}
}

void ts_reasm_segment(struct ts_reasm *r, struct ts_reasm_dir *d, uint8_t tcp_flags, uint32_t seq,
                      const uint8_t *payload, uint32_t len, uint32_t wire_len, uint32_t window)
{
	bool syn = tcp_flags & TS_TCP_SYN, fin = tcp_flags & TS_TCP_FIN,
	     rst = tcp_flags & TS_TCP_RST;
	if (!len && !syn && !fin && !rst)
		return;
	r->st.segments++;
	if (d->closed) {
		r->st.data_after_fin += len;
		return;
	}
	uint32_t data_seq = syn ? seq + 1 : seq; /* a SYN takes one sequence number */
	if (!d->started) {
		d->started = true;
		d->base = data_seq; /* mid-stream pickup starts where we came in */
	}
	/* Offsets relative to `next`, so sequence numbers may wrap. */
	int64_t off = (int64_t)d->next + (int32_t)(data_seq - (d->base + (uint32_t)d->next));

	if (rst) {
		/* RFC 5961's spirit: a reset counts only inside the window. */
		int64_t rel = off - (int64_t)d->next;
		if (window == 0 || (rel >= 0 && rel <= (int64_t)window)) {
			d->closed = true;
		} else {
			r->st.rst_ignored++;
		}
		return;
	}
	/* The FIN follows the segment's payload as it was on the wire, however
	 * much of it was captured. */
	if (fin && !d->fin_seen && off + (int64_t)wire_len >= 0) {
		d->fin_seen = true;
		d->fin_off = (uint64_t)(off + (int64_t)wire_len);
		trim_after_fin(r, d);
	}
	if (wire_len > len && off + (int64_t)wire_len > (int64_t)d->seen_end) {
		uint64_t end = (uint64_t)(off + (int64_t)wire_len);
		d->seen_end = d->fin_seen && end > d->fin_off ? d->fin_off : end;
	}
	if (len && off + (int64_t)len > 0) {
		if (off < 0) { /* before the stream's first byte: not ours */
			payload += -off;
			len -= (uint32_t)-off;
			off = 0;
		}
		if (d->fin_seen && (uint64_t)off + len > d->fin_off) {
			uint32_t keep = (uint64_t)off >= d->fin_off
			                        ? 0
			                        : (uint32_t)(d->fin_off - (uint64_t)off);
			r->st.data_after_fin += len - keep;
			len = keep;
		}
		if (len)
			add_data(r, d, (uint64_t)off, payload, len);
	}
	if (d->fin_seen && d->next >= d->fin_off)
		d->closed = true;
}

void ts_reasm_dir_end(struct ts_reasm *r, struct ts_reasm_dir *d,
                      struct ts_reasm_dir_result *result)
{
	if (!d)
		return;
	while (d->held)
		give_up(r, d, d->held->off);
	/* Bytes known to exist but never seen (before the FIN, or cut off by a
	 * snap length): a gap too. */
	if (d->fin_seen && d->next < d->fin_off)
		give_up(r, d, d->fin_off);
	if (d->next < d->seen_end)
		give_up(r, d, d->seen_end);
	if (result)
		*result = d->result;
	free(d->history);
	free(d);
}
