/*
 * The engine's counters. Every packet is counted once in packets, once in
 * exactly one l3 bucket, one l4 bucket and one anomaly bucket (TS_ANOM_NONE
 * for a clean packet), so each group sums to packets.
 */
#ifndef TORSIEVE_STATS_H
#define TORSIEVE_STATS_H

#include <stdint.h>

#include "torsieve/decode.h"
#include "torsieve/defrag.h"
#include "torsieve/flow.h"
#include "torsieve/policy.h"

#define TS_L3_BUCKETS (TS_L3_OTHER + 1)
#define TS_L4_BUCKETS (TS_L4_OTHER + 1)

struct ts_stats {
	uint64_t packets;
	uint64_t bytes; /* wire bytes */
	uint64_t captured_bytes;
	uint64_t snapped; /* frames captured shorter than they were on the wire */
	uint64_t l3[TS_L3_BUCKETS];
	uint64_t l4[TS_L4_BUCKETS];
	uint64_t fragments;
	uint64_t vlan_tagged;
	uint64_t anomalies[TS_ANOM_COUNT];

	/* With a policy: every packet under exactly one verdict, and under
	 * exactly one reason: a rule's hits, default_drops (clean, no rule
	 * matched), anomalies (malformed, dropped before any rule) or
	 * defrag_drops (a fragment whose datagram was not reassembled, or was
	 * malformed once reassembled). A fragment of a reassembled datagram is
	 * counted under the datagram's verdict and rule. */
	uint64_t verdicts[TS_VERDICT_COUNT];
	uint64_t default_drops;
	uint64_t defrag_drops;
	/* packets of flows judged by a policy since replaced (a reload): their
	 * rule was another policy's, so they count here instead of rule_hits */
	uint64_t earlier_policy;
	uint32_t generation; /* of the policy rule_hits belongs to */
	uint64_t *rule_hits; /* one per policy rule; owned by the engine */

	struct ts_flow_stats flows; /* as of the end of the run */
	struct ts_defrag_stats defrag;
	uint64_t defrag_malformed; /* reassembled datagrams that decoded with an anomaly */

	/* TCP stream directions reassembled (two per TCP flow with segments). */
	struct {
		uint64_t count, bytes, gaps, gap_bytes, inconsistent;
		uint64_t unreassembled;   /* TCP flows whose streams could not be had (memory) */
		uint64_t cap_hits;        /* stream-buffer or stream-memory reached */
		uint64_t history_skipped; /* directions without a history ring (stream-memory) */
	} streams;
};

void ts_stats_count(struct ts_stats *s, uint32_t caplen, uint32_t wirelen,
                    const struct ts_decoded *d);

/* Count one judged packet (after ts_stats_count). */
void ts_stats_count_verdict(struct ts_stats *s, const struct ts_decoded *d,
                            const struct ts_judgement *j);

/* The number of packets with any anomaly. */
uint64_t ts_stats_anomalous(const struct ts_stats *s);

#endif
