/*
 * The flow table: one entry per conversation, keyed by the normalised
 * 5-tuple plus VLAN tags, so both directions find the same flow. Capacity is
 * fixed when the table is made (one allocation, no allocation per packet).
 *
 * Each flow is in one timeout class, kept in its own least-recently-used
 * list; the head of each list is its stalest flow, so expiry looks at one
 * flow per class per packet. When the table is full, a new flow evicts the
 * stalest flow of the cheapest class to lose (closing, opening, UDP, other,
 * established, in that order), and says so in a counter.
 *
 * The verdict of a flow is decided on its first packet and kept: later
 * packets of a diverted flow stay diverted even if they would not match on
 * their own, and a policy reload does not change live flows.
 */
#ifndef TORSIEVE_FLOW_H
#define TORSIEVE_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsieve/decode.h"
#include "torsieve/policy.h"

/* enum ts_flow_class and struct ts_flow_config are in policy.h: the
 * configuration file sets them. */

struct ts_flow_key {
	uint8_t addr[2][16]; /* the lower endpoint first */
	uint16_t port[2];
	uint16_t vlan[2]; /* outermost two tags, 0 when absent */
	uint8_t family;   /* 4, 6, or 0 for non-IP */
	uint8_t proto;
};

struct ts_flow {
	struct ts_flow_key key;
	uint64_t id;        /* 1-based, in order of creation */
	uint8_t initiator;  /* key side (0/1) that sent the first packet */
	uint8_t flow_class; /* enum ts_flow_class */
	bool seen_fin[2];   /* per key side */
	struct ts_judgement verdict;
	int64_t first_usec, last_usec;
	uint64_t packets[2], bytes[2]; /* per key side */
	void *user;                    /* the reassembler's per-flow state */
	/* internal: table links */
	uint32_t hash_next;
	uint32_t lru_prev, lru_next;
	uint32_t hash;
};

struct ts_flow_stats {
	uint64_t total; /* flows created */
	uint64_t tcp, udp, other;
	uint64_t expired; /* idle past their class's timeout */
	uint64_t evicted; /* pushed out by a new flow when the table was full */
	uint64_t reused;  /* ended by a new connection on the same tuple (see ts_flow_lookup) */
	uint64_t active;  /* in the table now */
};

struct ts_flow_table;

/* Called with each flow as it leaves the table (why: "expired", "evicted",
 * "reused", or "end of capture" when flushed), before its slot is reused. */
typedef void (*ts_flow_end_fn)(void *ctx, struct ts_flow *flow, const char *why);

/* NULL when the memory cannot be had. */
struct ts_flow_table *ts_flow_table_new(const struct ts_flow_config *cfg, ts_flow_end_fn on_end,
                                        void *ctx);
void ts_flow_table_free(struct ts_flow_table *t);

/*
 * The flow of a decoded packet at time now_usec, created if new (and
 * *created set); expires stale flows first. side is set to the packet's key
 * side (0/1), so side == flow->initiator means "from the initiator". Never
 * NULL: a full table evicts.
 *
 * A TCP SYN without ACK for a flow in the tcp-closing class (a FIN or a RST
 * was seen) is a new connection on the same 4-tuple (port reuse): the old
 * flow ends ("reused", counted) and a new one is created, judged afresh.
 */
struct ts_flow *ts_flow_lookup(struct ts_flow_table *t, const struct ts_decoded *d,
                               int64_t now_usec, bool *created, int *side);

/* Account a packet to its flow and move it along its TCP states. */
void ts_flow_update(struct ts_flow_table *t, struct ts_flow *f, const struct ts_decoded *d,
                    int side, uint32_t wirelen, int64_t now_usec);

/* End every flow still in the table (the end of a replay). */
void ts_flow_flush(struct ts_flow_table *t);

void ts_flow_get_stats(const struct ts_flow_table *t, struct ts_flow_stats *out);

#endif
