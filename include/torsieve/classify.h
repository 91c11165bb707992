/*
 * The compiled classifier: the policy as per-field lookups, each yielding
 * the set of rules that field allows, intersected; the lowest rule left is
 * the first match.
 *
 * Rules are grouped by the set of fields they constrain (small groups are
 * merged up to 64 rules), and each group is classified alone, so one
 * field's wildcards cannot pollute another's intersection. In a group a
 * rule set is a bit vector behind an aggregate bitmap (one bit per 64-rule
 * word, set when the word is not zero; large groups store only the non-zero
 * words), so intersecting k fields costs k * ceil(rules / 4096) words plus
 * the few words the aggregates point at. Only fields the group constrains
 * are looked up, and a group that starts past the best match so far is
 * skipped. Addresses and ports are found by binary search
 * over the elementary intervals the rules' prefixes and ranges cut; protocol,
 * TCP flags and ICMP type and code by table. Identical vectors are stored
 * once. The bpf escape hatch is evaluated last, and only for candidate rules.
 *
 * Built once, immutable after, no allocation per packet.
 */
#ifndef TORSIEVE_CLASSIFY_H
#define TORSIEVE_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "torsieve/policy.h"

struct ts_classifier_stats {
	uint32_t rules;
	uint32_t vectors;   /* distinct rule vectors stored */
	uint32_t intervals; /* address and port intervals, all fields */
	uint32_t fields;    /* fields some rule constrains */
	uint32_t groups;    /* rule groups (one per set of constrained fields) */
	size_t memory;      /* bytes */
};

/* Returns NULL with a message in err when the policy's classifier-memory cap
 * would be exceeded or memory runs out. */
struct ts_classifier *ts_classifier_build(const struct ts_policy *p, char *err, size_t errlen);
void ts_classifier_free(struct ts_classifier *c);

/* The index of the first rule that matches, or -1. The packet must not be
 * anomalous (ts_policy_judge drops those first). */
int32_t ts_classify(const struct ts_classifier *c, const struct ts_match_input *in);

void ts_classifier_get_stats(const struct ts_classifier *c, struct ts_classifier_stats *out);

#endif
