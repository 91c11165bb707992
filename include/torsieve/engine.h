/*
 * The engine: decode each frame from a source, find its flow, judge it by
 * the policy, count it, reassemble TCP, and hand it all to the plugins. The
 * same path serves replay and (later) the inline gateway.
 */
#ifndef TORSIEVE_ENGINE_H
#define TORSIEVE_ENGINE_H

#include <stddef.h>

#include "torsieve/plugin.h"
#include "torsieve/source.h"
#include "torsieve/stats.h"

#define TS_ENGINE_MAX_PLUGINS 8

struct ts_engine {
	struct ts_stats stats;
	struct ts_run_info run;
	const struct ts_policy *policy;
	const char *iface;
	struct ts_flow_table *flows; /* made with the policy, from its flow settings */
	struct ts_reasm *reasm;      /* TCP reassembly (offline), from its stream settings */
	struct ts_defrag *defrag;    /* IP defragmentation, from its defrag settings */
	bool releasing;              /* flows ending in ts_engine_release reach no plugin */
	int64_t clock_usec; /* the latest packet time seen: flows age by it, never backwards */
	const struct ts_plugin *plugins[TS_ENGINE_MAX_PLUGINS];
	size_t plugin_count;
};

void ts_engine_init(struct ts_engine *e);

/* Judge every flow by p (which must outlive the engine) on its first
 * packet, and every later packet of it by that verdict. iface, if not NULL,
 * is the input interface of every packet (for `on` matches in replay).
 * Returns -1 when the flow table or the per-rule counters cannot be had. */
int ts_engine_set_policy(struct ts_engine *e, const struct ts_policy *p, const char *iface);

/*
 * A reload: judge new flows by p from now on. Live flows keep their verdict
 * (their packets count under earlier_policy); rule hits start again for
 * p's rules. The flow, stream and defragmentation settings stay those the
 * engine was made with. Returns -1 (and changes nothing) without memory.
 */
int ts_engine_replace_policy(struct ts_engine *e, const struct ts_policy *p);

/* Time passes without packets (inline): datagrams held too long are given
 * up, so their fragments get a verdict. */
void ts_engine_tick(struct ts_engine *e, int64_t now_usec);

/* Bring the flow, stream and defragmentation counters in e->stats up to
 * date (they are otherwise filled at the end of a run). */
void ts_engine_snapshot(struct ts_engine *e);

/* Start the plugins on a run from src (ts_engine_run_file does this). */
void ts_engine_start(struct ts_engine *e, const struct ts_source *src);

/* Frees what the engine allocated (flow table, reassembly, defragmentation,
 * per-rule counters). */
void ts_engine_release(struct ts_engine *e);

/* Returns -1 when TS_ENGINE_MAX_PLUGINS are already attached. */
int ts_engine_add_plugin(struct ts_engine *e, const struct ts_plugin *p);

/* Decode, count and dispatch one frame. No allocation. */
void ts_engine_packet(struct ts_engine *e, const struct ts_packet *pkt);

/*
 * Drain a source that never answers AGAIN (a file): start the plugins, feed
 * every frame, finish the plugins. Returns 0 at the end of the source, or -1
 * with the reason in src->err; the plugins are not finished on error, so no
 * summary of a partial read is mistaken for a whole one.
 */
int ts_engine_run_file(struct ts_engine *e, struct ts_source *src);

#endif
