/* The engine: source -> decode -> counters -> plugins. */
#include <stdlib.h>
#include <string.h>

#include "torsieve/engine.h"

void ts_engine_init(struct ts_engine *e)
{
	memset(e, 0, sizeof(*e));
}

static void flow_ended(void *ctx, struct ts_flow *flow, const char *why)
{
	struct ts_engine *e = ctx;
	struct ts_flow_event ev = {.flow = flow, .why = why};
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_flow_end)
			e->plugins[i]->on_flow_end(e->plugins[i]->ctx, &ev);
}

int ts_engine_set_policy(struct ts_engine *e, const struct ts_policy *p, const char *iface)
{
	uint64_t *hits = calloc(p->rule_count ? p->rule_count : 1, sizeof(*hits));
	struct ts_flow_table *flows = ts_flow_table_new(&p->limits.flows, flow_ended, e);
	if (!hits || !flows) {
		free(hits);
		ts_flow_table_free(flows);
		return -1;
	}
	ts_engine_release(e);
	e->stats.rule_hits = hits;
	e->flows = flows;
	e->policy = p;
	e->iface = iface;
	return 0;
}

void ts_engine_release(struct ts_engine *e)
{
	free(e->stats.rule_hits);
	e->stats.rule_hits = NULL;
	ts_flow_table_free(e->flows);
	e->flows = NULL;
}

int ts_engine_add_plugin(struct ts_engine *e, const struct ts_plugin *p)
{
	if (e->plugin_count == TS_ENGINE_MAX_PLUGINS)
		return -1;
	e->plugins[e->plugin_count++] = p;
	return 0;
}

void ts_engine_packet(struct ts_engine *e, const struct ts_packet *pkt)
{
	struct ts_decoded dec;
	ts_decode(pkt->link, pkt->data, pkt->caplen, pkt->len, &dec);
	ts_stats_count(&e->stats, pkt->caplen, pkt->len, &dec);

	struct ts_judgement judgement;
	struct ts_packet_event ev = {.pkt = pkt, .dec = &dec};
	if (e->policy) {
		struct ts_match_input in = {
		        .dec = &dec,
		        .frame = pkt->data,
		        .caplen = pkt->caplen,
		        .wirelen = pkt->len,
		        .iface = e->iface,
		};
		if (dec.anomaly != TS_ANOM_NONE) {
			/* Malformed: dropped before any rule, and no flow is made for it. */
			ts_policy_judge(e->policy, &in, &judgement);
		} else {
			int64_t now = pkt->ts_sec * 1000000 + pkt->ts_usec;
			bool created;
			struct ts_flow *f = ts_flow_lookup(e->flows, &dec, now, &created, &ev.side);
			if (created)
				ts_policy_judge(e->policy, &in, &f->verdict);
			judgement = f->verdict;
			ts_flow_update(e->flows, f, &dec, ev.side, pkt->len, now);
			ev.flow = f;
		}
		ts_stats_count_verdict(&e->stats, &dec, &judgement);
		ev.judgement = &judgement;
	}
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_packet)
			e->plugins[i]->on_packet(e->plugins[i]->ctx, &ev);
}

int ts_engine_run_file(struct ts_engine *e, struct ts_source *src)
{
	e->run = (struct ts_run_info){
	        .source_name = src->name,
	        .link_label = src->link_label,
	        .linktype = src->linktype,
	        .link = src->link,
	        .policy = e->policy,
	        .iface = e->iface,
	};
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_start)
			e->plugins[i]->on_start(e->plugins[i]->ctx, &e->run);

	for (;;) {
		struct ts_packet pkt;
		enum ts_source_status st = ts_source_next(src, &pkt);
		if (st == TS_SOURCE_PACKET) {
			ts_engine_packet(e, &pkt);
			continue;
		}
		if (st == TS_SOURCE_END)
			break;
		if (st == TS_SOURCE_AGAIN)
			snprintf(src->err, sizeof(src->err), "%s: source would block", src->name);
		return -1;
	}

	if (e->flows) {
		ts_flow_flush(e->flows);
		ts_flow_get_stats(e->flows, &e->stats.flows);
	}
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_finish)
			e->plugins[i]->on_finish(e->plugins[i]->ctx, &e->run, &e->stats);
	return 0;
}
