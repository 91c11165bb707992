/*
 * IP defragmentation (IPv4 and IPv6) for the offline path. Inline, the
 * kernel's nf_defrag reassembles before NFQUEUE, so torsieve sees whole
 * datagrams there; replay does the same here, so a capture is judged as
 * whole datagrams, as the gateway judges them. One difference on purpose:
 * Linux (since 4.19) drops IPv4 datagrams with overlapping fragments, while
 * the default here is the stated policy of keeping the first copy
 * (`set defrag-overlap drop` does what Linux does).
 *
 * The defragmenter keeps each fragment's whole record (frame bytes and
 * capture metadata), not only its payload: a held fragment has no verdict
 * until its datagram is complete (or given up), and then every one of its
 * records is reported with the datagram's fate, in arrival order.
 *
 * Overlaps: IPv4 resolves them by first copy wins (the bytes seen first are
 * kept, later copies only fill holes), or drops the datagram when configured
 * (`set defrag-overlap drop`, what Linux does since 4.19). IPv6 always drops
 * the datagram, and fragments of it that arrive later (RFC 5722). An exact
 * duplicate (same offset and length) is not an overlap for either: it adds
 * nothing and is counted (RFC 8200 4.5 allows this, and Linux does it).
 *
 * Bounded: datagrams in progress (`set defrag-datagrams`), bytes held
 * (`set defrag-memory`, each record costing its bytes plus
 * TS_DEFRAG_RECORD_COST), and a timeout from a datagram's first fragment
 * (`set defrag-timeout`). A new datagram past the first cap, or a fragment
 * past the second, pushes out the oldest datagram (evicted); a datagram that
 * alone does not fit in defrag-memory is dropped.
 */
#ifndef TORSIEVE_DEFRAG_H
#define TORSIEVE_DEFRAG_H

#include <stdbool.h>
#include <stdint.h>

#include "torsieve/decode.h"
#include "torsieve/policy.h"
#include "torsieve/source.h"

/* struct ts_defrag_config and ts_defrag_config_default() are in policy.h:
 * the configuration file sets them. */

/* What a held record costs beyond its frame bytes. */
#define TS_DEFRAG_RECORD_COST 96

/* What became of a datagram's fragments. Stable names (ts_defrag_fate_name)
 * appear in output. */
#define TS_DEFRAG_FATE_LIST(X)                                                        \
	X(REASSEMBLED, "reassembled")   /* complete; the datagram is in the result */ \
	X(TIMEOUT, "timeout")           /* not complete within defrag-timeout */      \
	X(EVICTED, "evicted")           /* pushed out by a cap */                     \
	X(TOO_BIG, "too_big")           /* alone larger than defrag-memory */         \
	X(OVERLAP, "overlap")           /* overlapping fragments: dropped */          \
	X(INCONSISTENT, "inconsistent") /* lengths that contradict each other */      \
	X(INCOMPLETE, "incomplete")     /* still incomplete at the end of the run */  \
	X(NO_MEMORY, "no_memory")       /* the allocator said no */

enum ts_defrag_fate {
#define TS_DEFRAG_FATE_ENUM(id, name) TS_DEFRAG_##id,
	TS_DEFRAG_FATE_LIST(TS_DEFRAG_FATE_ENUM)
#undef TS_DEFRAG_FATE_ENUM
	TS_DEFRAG_FATE_COUNT
};

const char *ts_defrag_fate_name(enum ts_defrag_fate f);

/* One fragment record as it came from the source; pkt.data is the
 * defragmenter's copy. */
struct ts_defrag_record {
	struct ts_defrag_record *next; /* arrival order */
	struct ts_packet pkt;
};

/* A datagram's end, handed to the done callback. Valid during the call. */
struct ts_defrag_result {
	enum ts_defrag_fate fate;
	/* REASSEMBLED: the datagram from its IP header, with the fragment
	 * fields cleared. caplen is less than len when a fragment was captured
	 * short (a snap length): the bytes past it are not known. */
	const uint8_t *datagram;
	uint32_t caplen, len;
	const struct ts_defrag_record *records; /* every record, arrival order */
	/* REASSEMBLED: the record whose headers lead the datagram (the first
	 * fragment at offset 0); its link layer is the datagram's */
	const struct ts_defrag_record *head;
	uint32_t record_count;
};

typedef void (*ts_defrag_done_fn)(void *ctx, const struct ts_defrag_result *r);

struct ts_defrag_stats {
	uint64_t fragments;  /* records taken in */
	uint64_t datagrams;  /* reassembled */
	uint64_t overlaps;   /* fragments overlapping held data (not exact duplicates) */
	uint64_t duplicates; /* exact duplicates */
	uint64_t fates[TS_DEFRAG_FATE_COUNT]; /* datagrams by fate */
	uint64_t dropped;                     /* records whose datagram was not reassembled */
	uint64_t held;                        /* records held now */
	uint64_t memory;                      /* bytes held now */
	uint64_t in_progress;
};

struct ts_defrag;

/* NULL when the memory cannot be had. done is called for every datagram
 * that ends, from ts_defrag_add and ts_defrag_flush. */
struct ts_defrag *ts_defrag_new(const struct ts_defrag_config *cfg, ts_defrag_done_fn done,
                                void *ctx);
void ts_defrag_free(struct ts_defrag *df);

/*
 * Take a clean fragment (d->is_fragment, no anomaly) of the frame pkt at
 * time now_usec (never less than an earlier call's). Datagrams that time
 * out, are pushed out, or end with this fragment are reported through done
 * before this returns; a fragment that cannot be held is reported alone.
 */
void ts_defrag_add(struct ts_defrag *df, const struct ts_packet *pkt, const struct ts_decoded *d,
                   int64_t now_usec);

/* Give up datagrams older than the timeout at now_usec (ts_defrag_add does
 * this too; inline, a timer calls it when no packets come). */
void ts_defrag_expire(struct ts_defrag *df, int64_t now_usec);

/* End every datagram still in progress (fate INCOMPLETE). */
void ts_defrag_flush(struct ts_defrag *df);

const struct ts_defrag_stats *ts_defrag_get_stats(const struct ts_defrag *df);

#endif
