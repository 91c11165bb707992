/*
 * TCP reassembly (see reassembly.h). A direction keeps the next stream
 * offset to deliver, the out-of-order pieces it holds (sorted, disjoint, all
 * past `next`, with a tail pointer so in-order arrival after a hole appends
 * in constant time), and a ring of recently delivered bytes (grown with the
 * stream, written and compared with at most two memcpy/memcmp per segment,
 * freed when the direction closes). Incoming data is cut against what is
 * delivered and what is held: new bytes at `next` go straight out, new bytes
 * further on are held, bytes seen before are only compared. A segment's
 * bytes known to exist but not captured (a snap length) are given up as a
 * gap as soon as delivery reaches them.
 */
#include <stdlib.h>
#include <string.h>

#include "torsieve/decode.h"
#include "torsieve/reassembly.h"

struct piece {
	struct piece *next;
	uint64_t off;
	uint32_t len;
	uint32_t lost; /* bytes after this piece that were on the wire, not captured */
	uint8_t data[];
};

struct ts_reasm {
	struct ts_reasm_config cfg;
	struct ts_reasm_stats st;
};

struct ts_reasm_dir {
	struct ts_stream_sink sink;
	bool started, fin_seen, closed;
	bool ack_start;    /* started by a pure ACK, and nothing since (see ts_reasm_segment) */
	uint32_t base;     /* the sequence number of stream offset 0 */
	uint64_t next;     /* the next offset to deliver */
	uint64_t fin_off;  /* where the FIN sits */
	uint64_t seen_end; /* one past the last byte known to exist */
	struct piece *held, *tail;
	uint64_t held_cost; /* bytes plus per-piece cost */
	struct ts_reasm_dir_result result;
	/* Ring of delivered bytes: offset o at history[o % hist_size]. It starts
	 * small and doubles up to cfg.history as the stream grows, so a short
	 * stream pays for what it delivered, not for the whole cap. */
	uint8_t *history;
	uint32_t hist_size;
	bool history_short; /* not made or not grown (no memory): counted once */
	bool finished;      /* ended (closed, or at the end): held memory given back */
	bool gap_open;      /* [gap_from, next) given up, not reported yet (see gap()) */
	uint64_t gap_from;
	uint64_t history_from; /* the lowest offset whose byte is in the ring */
};

/* A new ring's size; it doubles from here. Small enough that a request of a
 * few hundred bytes touches one page, big enough that a long stream doubles
 * only a handful of times. */
#define HISTORY_FIRST 2048u

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
	(void)r;
	struct ts_reasm_dir *d = calloc(1, sizeof(*d));
	if (d)
		d->sink = *sink;
	return d;
}

bool ts_reasm_dir_closed(const struct ts_reasm_dir *d)
{
	return d->closed;
}

/* Copy n bytes (n <= size) into a ring at stream offset off: one memcpy,
 * or two where the ring wraps. */
static void ring_put(uint8_t *ring, uint32_t size, uint64_t off, const uint8_t *p, uint64_t n)
{
	uint32_t at = (uint32_t)(off % size);
	uint64_t first = size - at < n ? size - at : n;
	memcpy(ring + at, p, first);
	memcpy(ring, p + first, n - first);
}

/* Whether n bytes (n <= size) differ from what a ring holds at offset off. */
static bool ring_differs(const uint8_t *ring, uint32_t size, uint64_t off, const uint8_t *p,
                         uint64_t n)
{
	uint32_t at = (uint32_t)(off % size);
	uint64_t first = size - at < n ? size - at : n;
	return memcmp(ring + at, p, first) != 0 || memcmp(ring, p + first, n - first) != 0;
}

/* The oldest offset whose byte the ring holds. */
static uint64_t history_oldest(const struct ts_reasm_dir *d)
{
	uint64_t oldest = d->next > d->hist_size ? d->next - d->hist_size : 0;
	return oldest < d->history_from ? d->history_from : oldest;
}

/* Make the ring big enough for the last `want` delivered bytes (at most
 * cfg.history), doubling it, the growth charged to the total cap. When the
 * memory cannot be had, the direction keeps the ring it has (none, or a
 * smaller one): older retransmissions go unverified, and the direction is
 * counted once in history_skipped. */
static void history_reserve(struct ts_reasm *r, struct ts_reasm_dir *d, uint64_t want)
{
	uint32_t h = r->cfg.history;
	if (want > h)
		want = h;
	if (d->hist_size >= want || d->history_short)
		return;
	uint64_t size = d->hist_size ? d->hist_size : (h < HISTORY_FIRST ? h : HISTORY_FIRST);
	while (size < want)
		size *= 2;
	if (size > h)
		size = h;
	uint64_t more = size - d->hist_size;
	uint8_t *ring = NULL;
	if (r->st.buffered + more <= r->cfg.total_buffer)
		ring = malloc(size);
	if (!ring) {
		d->history_short = true;
		r->st.history_skipped++;
		return;
	}
	if (d->history) { /* move what the old ring holds, each piece to its new place */
		uint64_t from = history_oldest(d), n = d->next - from;
		uint32_t at = (uint32_t)(from % d->hist_size);
		uint64_t first = d->hist_size - at < n ? d->hist_size - at : n;
		ring_put(ring, (uint32_t)size, from, d->history + at, first);
		ring_put(ring, (uint32_t)size, from + first, d->history, n - first);
		free(d->history);
	}
	d->history = ring;
	d->hist_size = (uint32_t)size;
	r->st.buffered += more;
}

/* Give the ring back: nothing after this compares with it. */
static void history_free(struct ts_reasm *r, struct ts_reasm_dir *d)
{
	r->st.buffered -= d->hist_size;
	free(d->history);
	d->history = NULL;
	d->hist_size = 0;
}

/* Report the gap that ends at `next`, if one is open. */
static void flush_gap(struct ts_reasm *r, struct ts_reasm_dir *d)
{
	if (!d->gap_open)
		return;
	d->gap_open = false;
	uint64_t n = d->next - d->gap_from;
	if (d->sink.gap)
		d->sink.gap(d->sink.ctx, d->gap_from, n);
	r->st.gaps++;
	r->st.gap_bytes += n;
	d->result.gaps++;
	d->result.gap_bytes += n;
}

/* Give up [next, until). Reported when the next bytes are delivered or the
 * direction ends, so that holes which meet (payloads a snap length cut
 * whole, one after another) make one gap, not one per segment. */
static void gap(struct ts_reasm *r, struct ts_reasm_dir *d, uint64_t until)
{
	(void)r;
	if (until <= d->next)
		return;
	if (!d->gap_open) {
		d->gap_open = true;
		d->gap_from = d->next;
	}
	d->next = until;
	d->history_from = until; /* the ring holds nothing for the gap */
}

static void deliver(struct ts_reasm *r, struct ts_reasm_dir *d, const uint8_t *p, uint32_t n)
{
	if (!n)
		return;
	flush_gap(r, d);
	if (d->sink.data)
		d->sink.data(d->sink.ctx, d->next, p, n);
	if (r->cfg.history && !d->finished) {
		history_reserve(r, d, d->next + n - d->history_from);
		if (d->history) { /* only the last hist_size bytes stay */
			uint32_t keep = n < d->hist_size ? n : d->hist_size;
			ring_put(d->history, d->hist_size, d->next + (n - keep), p + (n - keep),
			         keep);
		}
	}
	d->next += n;
	r->st.delivered += n;
	d->result.bytes += n;
}

static void release(struct ts_reasm *r, struct ts_reasm_dir *d, struct piece *p)
{
	uint64_t cost = (uint64_t)p->len + TS_REASM_PIECE_COST;
	d->held_cost -= cost;
	r->st.buffered -= cost;
	free(p);
}

/* Deliver the held pieces that now start at (or before) `next`; a piece's
 * uncaptured tail becomes a gap right after it. Pieces a gap already passed
 * over (wholly or in part) give only what lies beyond it. */
static void drain(struct ts_reasm *r, struct ts_reasm_dir *d)
{
	while (d->held && d->held->off <= d->next) {
		struct piece *p = d->held;
		d->held = p->next;
		if (!d->held)
			d->tail = NULL;
		uint64_t end = p->off + p->len;
		if (end > d->next)
			deliver(r, d, p->data + (d->next - p->off), (uint32_t)(end - d->next));
		if (p->lost)
			gap(r, d, end + p->lost);
		release(r, d, p);
	}
}

/* Give up the hole [next, until) as a gap, then deliver what follows it. */
static void give_up(struct ts_reasm *r, struct ts_reasm_dir *d, uint64_t until)
{
	gap(r, d, until);
	drain(r, d);
}

/* Compare bytes already delivered with the history ring; true if any of
 * those it still holds differ. Older bytes are counted as unverified. */
static bool differs_from_history(struct ts_reasm *r, const struct ts_reasm_dir *d, uint64_t off,
                                 const uint8_t *p, uint64_t n)
{
	if (!d->history) {
		r->st.unverified += n;
		return false;
	}
	uint64_t oldest = history_oldest(d);
	if (off < oldest) {
		uint64_t old = oldest - off < n ? oldest - off : n;
		r->st.unverified += old;
		off += old;
		p += old;
		n -= old;
	}
	return n && ring_differs(d->history, d->hist_size, off, p, n);
}

static bool fits(const struct ts_reasm *r, const struct ts_reasm_dir *d, uint32_t n)
{
	uint64_t cost = (uint64_t)n + TS_REASM_PIECE_COST;
	return d->held_cost + cost <= r->cfg.dir_buffer &&
	       r->st.buffered + cost <= r->cfg.total_buffer;
}

/* Hold [off, off + n) before *link. */
static void hold(struct ts_reasm *r, struct ts_reasm_dir *d, struct piece **link, uint64_t off,
                 const uint8_t *p, uint32_t n, uint32_t lost)
{
	struct piece *pc = malloc(sizeof(*pc) + n);
	if (!pc) {
		r->st.dropped_bytes += n; /* a gap when the hole is given up */
		return;
	}
	pc->off = off;
	pc->len = n;
	pc->lost = lost;
	memcpy(pc->data, p, n);
	pc->next = *link;
	*link = pc;
	if (!pc->next)
		d->tail = pc;
	uint64_t cost = (uint64_t)n + TS_REASM_PIECE_COST;
	d->held_cost += cost;
	r->st.buffered += cost;
}

/* The link to the first held piece ending after cur; in constant time when
 * cur is past the tail (in-order arrival after a hole). */
static struct piece **find(struct ts_reasm_dir *d, uint64_t cur)
{
	if (d->tail && d->tail->off + d->tail->len <= cur)
		return &d->tail->next;
	struct piece **link = &d->held;
	while (*link && (*link)->off + (*link)->len <= cur)
		link = &(*link)->next;
	return link;
}

/* New bytes [off, off + len) of a segment whose `lost` bytes after them were
 * on the wire but not captured. */
static void add_data(struct ts_reasm *r, struct ts_reasm_dir *d, uint64_t off, const uint8_t *data,
                     uint32_t len, uint32_t lost)
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
		struct piece **link = find(d, cur);
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
		uint32_t tail_lost = upto == end ? lost : 0;
		if (cur == d->next) {
			deliver(r, d, p, n);
			if (tail_lost)
				gap(r, d, d->next + tail_lost);
			drain(r, d);
		} else if (fits(r, d, n)) {
			hold(r, d, link, cur, p, n, tail_lost);
		} else {
			/* A cap: give up the first hole (before this piece or before
			 * the first held piece) so held bytes can go, and retry. */
			if (d->held_cost + (uint64_t)n + TS_REASM_PIECE_COST > r->cfg.dir_buffer)
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
	struct piece **link = &d->held, *prev = NULL;
	while (*link) {
		struct piece *p = *link;
		if (p->off >= d->fin_off) {
			*link = p->next;
			r->st.data_after_fin += p->len;
			d->result.data_after_fin += p->len;
			release(r, d, p);
			continue;
		}
		if (p->off + p->len > d->fin_off) {
			uint32_t keep = (uint32_t)(d->fin_off - p->off);
			uint64_t cut = p->len - keep;
			r->st.data_after_fin += cut;
			d->result.data_after_fin += cut;
			d->held_cost -= cut;
			r->st.buffered -= cut;
			p->len = keep;
			p->lost = 0;
		}
		prev = p;
		link = &p->next;
	}
	d->tail = prev;
	if (d->seen_end > d->fin_off)
		d->seen_end = d->fin_off;
}

/* The direction has ended (closed, or its flow left the table): give up the
 * holes that remain, deliver what is held, and give its memory back. Once
 * closed, nothing it receives is used (counted as data after the FIN), so
 * doing this at the close rather than when the flow leaves the table (the
 * tcp-closing timeout later) changes no byte and no counter. */
static void finish(struct ts_reasm *r, struct ts_reasm_dir *d)
{
	if (d->finished)
		return;
	d->finished = true; /* from here, deliver() keeps no history */
	while (d->held)
		give_up(r, d, d->held->off);
	/* Bytes known to exist but never seen (before the FIN, or cut off by a
	 * snap length): a gap too. */
	if (d->fin_seen && d->next < d->fin_off)
		gap(r, d, d->fin_off);
	if (d->next < d->seen_end)
		gap(r, d, d->seen_end);
	flush_gap(r, d);
	history_free(r, d);
}

void ts_reasm_segment(struct ts_reasm *r, struct ts_reasm_dir *d, uint8_t tcp_flags, uint32_t seq,
                      const uint8_t *payload, uint32_t len, uint32_t wire_len, uint32_t window)
{
	bool syn = tcp_flags & TS_TCP_SYN, fin = tcp_flags & TS_TCP_FIN,
	     rst = tcp_flags & TS_TCP_RST;
	if (wire_len < len)
		wire_len = len;
	if (!wire_len && !syn && !fin && !rst) {
		/* A pure ACK: its sequence number is the sender's next byte. The
		 * first segment of a direction, it fixes where the stream starts,
		 * so data that then arrives out of order fills the hole from there
		 * (or the hole becomes a gap) instead of being cut off as before
		 * the start. Provisional: see below. Later pure ACKs say nothing. */
		if (!d->started) {
			d->started = d->ack_start = true;
			d->base = seq;
		}
		return;
	}
	r->st.segments++;
	if (d->closed) {
		r->st.data_after_fin += len;
		d->result.data_after_fin += len;
		return;
	}
	uint32_t data_seq = syn ? seq + 1 : seq; /* a SYN takes one sequence number */
	if (!d->started) {
		d->started = true;
		d->base = data_seq; /* mid-stream pickup starts where we came in */
	} else if (d->ack_start) {
		/* The first segment after a start a pure ACK fixed (nothing is
		 * delivered or held yet). A SYN knows better. Data or a FIN one
		 * byte past it means the ACK was a keep-alive, which carries the
		 * sender's next sequence number minus one (RFC 1122 4.2.3.6):
		 * the stream starts one on, not after a false one-byte gap. Any
		 * other segment confirms the start. */
		if (syn || data_seq == d->base + 1)
			d->base = data_seq;
		d->ack_start = false;
	}
	/* Offsets relative to `next`, so sequence numbers may wrap. */
	int64_t off = (int64_t)d->next + (int32_t)(data_seq - (d->base + (uint32_t)d->next));

	if (rst) {
		/* RFC 5961's spirit: a reset counts only inside the window. */
		int64_t rel = off - (int64_t)d->next;
		if (window == 0 || (rel >= 0 && rel <= (int64_t)window)) {
			d->closed = true;
			finish(r, d);
		} else {
			r->st.rst_ignored++;
		}
		return;
	}
	if (fin && !d->fin_seen) {
		/* The FIN follows the payload as it was on the wire. One behind
		 * what is already delivered, or past the window, is not believed:
		 * it could cut a stream short. */
		int64_t at = off + (int64_t)wire_len, rel = at - (int64_t)d->next;
		if (rel >= 0 && (window == 0 || rel <= (int64_t)window)) {
			d->fin_seen = true;
			d->fin_off = (uint64_t)at;
			trim_after_fin(r, d);
		} else {
			r->st.fin_ignored++;
		}
	}
	if (off + (int64_t)wire_len > (int64_t)d->seen_end) {
		uint64_t end = (uint64_t)(off + (int64_t)wire_len);
		d->seen_end = d->fin_seen && end > d->fin_off ? d->fin_off : end;
	}
	if (off < 0 && wire_len) { /* before the stream's first byte: not ours */
		uint64_t before = (uint64_t)-off;
		uint32_t cut = before < len ? (uint32_t)before : len;
		uint32_t cut_wire = before < wire_len ? (uint32_t)before : wire_len;
		r->st.before_start += cut;
		payload += cut;
		len -= cut;
		wire_len -= cut_wire; /* what is left starts at 0, or nothing is */
		off += cut_wire;
	}
	if (!len && wire_len && off <= (int64_t)d->next) {
		/* A payload a snap length cut whole: nothing to hold, and its
		 * bytes past `next` are a gap as soon as delivery reaches them,
		 * as a cut tail's are (up to held bytes another copy brought). */
		uint64_t until = (uint64_t)off + wire_len;
		if (d->fin_seen && until > d->fin_off)
			until = d->fin_off;
		if (d->held && until > d->held->off)
			until = d->held->off;
		give_up(r, d, until);
	}
	if (len) {
		uint32_t lost = wire_len - len;
		if (d->fin_seen && (uint64_t)off + len > d->fin_off) {
			uint32_t keep = (uint64_t)off >= d->fin_off
			                        ? 0
			                        : (uint32_t)(d->fin_off - (uint64_t)off);
			r->st.data_after_fin += len - keep;
			d->result.data_after_fin += len - keep;
			len = keep;
			lost = 0;
		} else if (d->fin_seen && (uint64_t)off + len + lost > d->fin_off) {
			lost = (uint32_t)(d->fin_off - ((uint64_t)off + len));
		}
		if (len)
			add_data(r, d, (uint64_t)off, payload, len, lost);
	}
	if (d->fin_seen && d->next >= d->fin_off) {
		d->closed = true;
		finish(r, d);
	}
}

void ts_reasm_dir_end(struct ts_reasm *r, struct ts_reasm_dir *d,
                      struct ts_reasm_dir_result *result)
{
	if (!d)
		return;
	finish(r, d);
	if (result)
		*result = d->result;
	free(d);
}
