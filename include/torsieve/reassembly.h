/*
 * TCP stream reassembly, one direction at a time (the offline path: inline,
 * the kernel terminates TCP).
 *
 * Bytes are delivered in stream order, each exactly once. Where segments
 * overlap, the bytes seen first win (they are the ones the classifier saw);
 * a later copy with different bytes counts as an inconsistency. Holes that
 * never fill (capture loss, a memory cap) become explicit gap records, never
 * silently skipped; holes that meet make one record. Sequence numbers wrap;
 * offsets are 64-bit.
 *
 * Where a direction starts: at the first segment seen in it. A SYN starts it
 * after the SYN's sequence number, data, a FIN or a RST at their sequence
 * number, and so does a pure ACK (no data, SYN, FIN or RST), whose sequence
 * number is the sender's next byte: bytes between it and the first data
 * segment that arrive later fill that hole (or it becomes a gap) instead of
 * being dropped as before the start. A start a pure ACK fixed is settled by
 * the next segment with data, SYN, FIN or RST: a SYN moves it to the SYN's;
 * one starting exactly one byte past it moves it there, the ACK having been
 * a keep-alive (sequence number next byte minus one, RFC 1122 4.2.3.6), so a
 * keep-alive makes no one-byte gap (a genuine one-byte hole just there goes
 * unseen); anything else keeps it. Pure ACKs after the start change nothing.
 * Bytes before the start are not the stream's and are counted
 * (before_start). A segment whose payload a snap length cut whole is data,
 * not a pure ACK: its bytes are a gap.
 *
 * Memory is bounded: bytes held out of order per direction and in total,
 * and a history of recently delivered bytes per direction against which
 * retransmissions are compared. Each cap has a counter and a defined
 * behaviour, documented at ts_reasm_config.
 */
#ifndef TORSIEVE_REASSEMBLY_H
#define TORSIEVE_REASSEMBLY_H

#include <stdbool.h>
#include <stdint.h>

struct ts_reasm_config {
	/* Memory for out-of-order data per direction: each held piece costs its
	 * bytes plus TS_REASM_PIECE_COST. When a piece would pass it, the first
	 * hole is given up as a gap (counted) so held data can be delivered,
	 * and the piece is tried again. */
	uint32_t dir_buffer;
	/* The same over all directions, history rings included (a direction
	 * whose ring does not fit, or cannot grow, keeps what it has, possibly
	 * nothing: retransmissions older than that are counted as unverified,
	 * and the direction once in history_skipped). */
	uint64_t total_buffer;
	/* Delivered bytes kept per direction for comparing retransmissions;
	 * older bytes are not compared (counted as unverified). The ring grows
	 * with the stream (from 2 KiB, doubling) up to this size, and is given
	 * back as soon as the direction ends: its FIN delivered or a RST
	 * accepted, after which nothing it receives is compared or kept. */
	uint32_t history;
};

/* What a held piece costs beyond its bytes (header and allocator). */
#define TS_REASM_PIECE_COST 64

void ts_reasm_config_default(struct ts_reasm_config *c);

struct ts_reasm_stats {
	uint64_t segments;        /* with payload (on the wire), SYN, FIN or RST */
	uint64_t delivered;       /* bytes */
	uint64_t gaps, gap_bytes; /* holes given up */
	uint64_t inconsistent;    /* segments whose overlap differed from the first copy */
	uint64_t retransmitted;   /* bytes already delivered or held, seen again */
	uint64_t unverified;      /* of those, bytes too old to compare */
	uint64_t data_after_fin;  /* bytes past a FIN, ignored */
	uint64_t before_start;    /* bytes before a direction's first byte, ignored */
	uint64_t rst_ignored;     /* RSTs outside the window */
	uint64_t fin_ignored;     /* FINs behind delivered data or outside the window */
	uint64_t dir_cap_hits, total_cap_hits;
	uint64_t dropped_bytes;   /* not held for want of memory (they become a gap) */
	uint64_t history_skipped; /* directions whose ring could not be made or grown (memory) */
	uint64_t buffered;        /* memory held now: pieces and history rings */
};

/* One direction's account, given when it ends. */
struct ts_reasm_dir_result {
	uint64_t bytes; /* delivered */
	uint64_t gaps, gap_bytes;
	uint64_t inconsistent;   /* segments whose overlap differed from the first copy */
	uint64_t data_after_fin; /* bytes past the FIN or a RST, ignored */
};

/* Where a direction's bytes go. */
struct ts_stream_sink {
	void (*data)(void *ctx, uint64_t offset, const uint8_t *bytes, uint32_t len);
	void (*gap)(void *ctx, uint64_t offset, uint64_t len);
	void *ctx;
};

struct ts_reasm;     /* shared by all directions: config, counters, total */
struct ts_reasm_dir; /* one direction of one connection */

struct ts_reasm *ts_reasm_new(const struct ts_reasm_config *cfg);
void ts_reasm_free(struct ts_reasm *r);
const struct ts_reasm_stats *ts_reasm_stats(const struct ts_reasm *r);

/* NULL when memory cannot be had. */
struct ts_reasm_dir *ts_reasm_dir_new(struct ts_reasm *r, const struct ts_stream_sink *sink);

/*
 * One segment of this direction: TCP flags, sequence number, the captured
 * payload (len bytes) and how long the payload was on the wire (wire_len >=
 * len; a capture's snap length can cut it). Bytes known to exist but never
 * captured end up as a gap. window is the receiver's current window in
 * bytes (its advertised window scaled), used to judge RSTs; 0 when unknown
 * (a RST then closes).
 */
void ts_reasm_segment(struct ts_reasm *r, struct ts_reasm_dir *d, uint8_t tcp_flags, uint32_t seq,
                      const uint8_t *payload, uint32_t len, uint32_t wire_len, uint32_t window);

/* True once a FIN was delivered in order or a RST accepted. */
bool ts_reasm_dir_closed(const struct ts_reasm_dir *d);

/* End the direction: give up remaining holes as gaps, deliver what is held,
 * fill *result (if not NULL), free everything. A direction that closed did
 * all but the last at its close. */
void ts_reasm_dir_end(struct ts_reasm *r, struct ts_reasm_dir *d,
                      struct ts_reasm_dir_result *result);

#endif
