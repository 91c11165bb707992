/* Packet counters: one bucket per group for every packet. */
#include "torsieve/stats.h"

void ts_stats_count(struct ts_stats *s, uint32_t caplen, uint32_t wirelen,
                    const struct ts_decoded *d)
{
	s->packets++;
	s->bytes += wirelen > caplen ? wirelen : caplen;
	s->captured_bytes += caplen;
	if (wirelen > caplen)
		s->snapped++;
	s->l3[d->l3]++;
	s->l4[d->l4]++;
	if (d->is_fragment)
		s->fragments++;
	if (d->vlan_count)
		s->vlan_tagged++;
	s->anomalies[d->anomaly]++;
}

void ts_stats_count_verdict(struct ts_stats *s, const struct ts_decoded *d,
                            const struct ts_judgement *j)
{
	s->verdicts[j->verdict]++;
	if (j->rule >= 0 && j->generation != s->generation)
		s->earlier_policy++;
	else if (j->rule >= 0)
		s->rule_hits[j->rule]++;
	else if (d->anomaly == TS_ANOM_NONE)
		s->default_drops++;
}

uint64_t ts_stats_anomalous(const struct ts_stats *s)
{
	return s->packets - s->anomalies[TS_ANOM_NONE];
}
