/* The engine: source -> decode -> counters -> plugins. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/engine.h"

void ts_engine_init(struct ts_engine *e)
{
	memset(e, 0, sizeof(*e));
}

/* A TCP flow's reassembly: one direction each way (0: from the initiator). */
struct flow_streams {
	struct ts_reasm_dir *dir[2];
	struct stream_ctx {
		struct ts_engine *e;
		const struct ts_flow *flow;
		int dir;
	} ctx[2];
	uint16_t window[2]; /* each side's last advertised window */
	uint8_t wscale[2];
	bool wscale_offered[2], have_window[2];
};

static void emit_stream(const struct stream_ctx *c, uint64_t off, const uint8_t *p, uint64_t n)
{
	struct ts_stream_event ev = {
	        .flow = c->flow, .dir = c->dir, .offset = off, .data = p, .len = n};
	const struct ts_engine *e = c->e;
	if (e->releasing)
		return;
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_stream_data)
			e->plugins[i]->on_stream_data(e->plugins[i]->ctx, &ev);
}

static void stream_data(void *ctx, uint64_t off, const uint8_t *p, uint32_t n)
{
	emit_stream(ctx, off, p, n);
}

static void stream_gap(void *ctx, uint64_t off, uint64_t n)
{
	emit_stream(ctx, off, NULL, n);
}

/* Marks a TCP flow whose streams could not be had, so they are not tried
 * again on every packet. */
static char no_streams;

static struct flow_streams *flow_streams_new(struct ts_engine *e, struct ts_flow *f)
{
	struct flow_streams *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return NULL;
	for (int dir = 0; dir < 2; dir++) {
		fs->ctx[dir] = (struct stream_ctx){.e = e, .flow = f, .dir = dir};
		struct ts_stream_sink sink = {
		        .data = stream_data, .gap = stream_gap, .ctx = &fs->ctx[dir]};
		fs->dir[dir] = ts_reasm_dir_new(e->reasm, &sink);
	}
	if (!fs->dir[0] || !fs->dir[1]) {
		ts_reasm_dir_end(e->reasm, fs->dir[0], NULL);
		ts_reasm_dir_end(e->reasm, fs->dir[1], NULL);
		free(fs);
		return NULL;
	}
	return fs;
}

/* Feed a clean TCP segment to its flow's reassembly. Only the captured
 * payload goes in: bytes a snap length cut off become a gap. */
static void stream_segment(struct ts_engine *e, struct ts_flow *f, int side,
                           const struct ts_decoded *d, const struct ts_packet *pkt)
{
	if (!e->reasm || d->l4 != TS_L4_TCP || !d->has_l4_header || d->is_fragment)
		return;
	if (f->user == &no_streams)
		return;
	struct flow_streams *fs = f->user;
	if (!fs && !(fs = f->user = flow_streams_new(e, f))) {
		f->user = &no_streams; /* out of memory: counted, not retried */
		e->stats.streams.unreassembled++;
		return;
	}
	int dir = side == f->initiator ? 0 : 1, other = !dir;
	bool syn = d->tcp_flags & TS_TCP_SYN;
	if (syn) {
		fs->wscale_offered[dir] = d->tcp_opts.has_wscale;
		fs->wscale[dir] = d->tcp_opts.wscale > 14 ? 14 : d->tcp_opts.wscale;
	}
	/* The window the receiver of this segment advertised, scaled only when
	 * both sides offered scaling (RFC 7323). */
	uint32_t window = 0;
	if (fs->have_window[other]) {
		bool scaled = fs->wscale_offered[0] && fs->wscale_offered[1];
		window = (uint32_t)fs->window[other] << (scaled ? fs->wscale[other] : 0);
	}
	fs->window[dir] = d->tcp_window;
	fs->have_window[dir] = !syn || fs->have_window[dir];
	uint32_t captured = 0;
	if (d->payload_offset < pkt->caplen) {
		captured = pkt->caplen - d->payload_offset;
		if (captured > d->payload_len)
			captured = d->payload_len;
	}
	ts_reasm_segment(e->reasm, fs->dir[dir], d->tcp_flags, d->tcp_seq,
	                 pkt->data + d->payload_offset, captured, d->payload_len, window);
}

static void defrag_done(void *ctx, const struct ts_defrag_result *r);

static void flow_ended(void *ctx, struct ts_flow *flow, const char *why)
{
	struct ts_engine *e = ctx;
	struct ts_reasm_dir_result results[2];
	struct ts_flow_event ev = {.flow = flow, .why = why};
	struct flow_streams *fs = flow->user == &no_streams ? NULL : flow->user;
	flow->user = NULL;
	if (fs) {
		for (int dir = 0; dir < 2; dir++) {
			ts_reasm_dir_end(e->reasm, fs->dir[dir], &results[dir]);
			e->stats.streams.count++;
			e->stats.streams.bytes += results[dir].bytes;
			e->stats.streams.gaps += results[dir].gaps;
			e->stats.streams.gap_bytes += results[dir].gap_bytes;
			e->stats.streams.inconsistent += results[dir].inconsistent;
		}
		free(fs);
		flow->user = NULL;
		ev.streams = results;
	}
	if (e->releasing)
		return;
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_flow_end)
			e->plugins[i]->on_flow_end(e->plugins[i]->ctx, &ev);
}

int ts_engine_set_policy(struct ts_engine *e, const struct ts_policy *p, const char *iface)
{
	uint64_t *hits = calloc(p->rule_count ? p->rule_count : 1, sizeof(*hits));
	struct ts_flow_table *flows = ts_flow_table_new(&p->limits.flows, flow_ended, e);
	struct ts_reasm_config rc = {
	        .dir_buffer = p->limits.streams.dir_buffer,
	        .total_buffer = p->limits.streams.total_buffer,
	        .history = p->limits.streams.history,
	};
	struct ts_reasm *reasm = ts_reasm_new(&rc);
	struct ts_defrag *defrag = ts_defrag_new(&p->limits.defrag, defrag_done, e);
	if (!hits || !flows || !reasm || !defrag) {
		free(hits);
		ts_flow_table_free(flows);
		ts_reasm_free(reasm);
		ts_defrag_free(defrag);
		return -1;
	}
	ts_engine_release(e);
	e->stats.rule_hits = hits;
	e->flows = flows;
	e->reasm = reasm;
	e->defrag = defrag;
	e->policy = p;
	e->iface = iface;
	return 0;
}

void ts_engine_release(struct ts_engine *e)
{
	free(e->stats.rule_hits);
	e->stats.rule_hits = NULL;
	if (e->flows) {
		/* Flows still open (a run that stopped on an error) free their
		 * streams here, reporting to nobody. */
		e->releasing = true;
		ts_flow_flush(e->flows);
		e->releasing = false;
	}
	ts_flow_table_free(e->flows);
	e->flows = NULL;
	ts_reasm_free(e->reasm);
	e->reasm = NULL;
	ts_defrag_free(e->defrag); /* held fragments go unreported */
	e->defrag = NULL;
}

int ts_engine_add_plugin(struct ts_engine *e, const struct ts_plugin *p)
{
	if (e->plugin_count == TS_ENGINE_MAX_PLUGINS)
		return -1;
	e->plugins[e->plugin_count++] = p;
	return 0;
}

/* The packet's time in microseconds, clamped where a crafted timestamp would
 * overflow, and never backwards: flows expire by the latest time seen. */
static int64_t packet_clock(struct ts_engine *e, const struct ts_packet *pkt)
{
	int64_t sec = pkt->ts_sec < 0 ? 0 : pkt->ts_sec;
	int64_t now =
	        sec > INT64_MAX / 1000000 - 1 ? INT64_MAX - 1000000 : sec * 1000000 + pkt->ts_usec;
	if (now < e->clock_usec)
		now = e->clock_usec;
	e->clock_usec = now;
	return now;
}

static void dispatch_packet(const struct ts_engine *e, const struct ts_packet_event *ev)
{
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_packet)
			e->plugins[i]->on_packet(e->plugins[i]->ctx, ev);
}

/* The flow of a clean packet or reassembled datagram: judged when new,
 * then accounted and fed to reassembly. */
static struct ts_flow *flow_judge(struct ts_engine *e, const struct ts_packet *pkt,
                                  const struct ts_decoded *dec, int64_t now, struct ts_judgement *j,
                                  int *side)
{
	struct ts_match_input in = {
	        .dec = dec,
	        .frame = pkt->data,
	        .caplen = pkt->caplen,
	        .wirelen = pkt->len,
	        .iface = pkt->iface ? pkt->iface : e->iface,
	};
	bool created;
	struct ts_flow *f = ts_flow_lookup(e->flows, dec, now, &created, side);
	if (created) {
		ts_policy_judge(e->policy, &in, &f->verdict);
		f->verdict.generation = e->stats.generation;
	}
	*j = f->verdict;
	ts_flow_update(e->flows, f, dec, *side, pkt->len, now);
	stream_segment(e, f, *side, dec, pkt);
	return f;
}

/* A datagram's fragments are done: judge the reassembled datagram like any
 * packet, then report every fragment with its verdict (or the drop). */
static void defrag_done(void *ctx, const struct ts_defrag_result *r)
{
	struct ts_engine *e = ctx;
	struct ts_defrag_outcome out = {.fate = r->fate, .fragments = r->record_count};
	struct ts_judgement j = {.verdict = TS_VERDICT_DROP, .rule = -1};
	struct ts_decoded dgram, d;
	struct ts_flow *f = NULL;
	int side = 0;
	if (r->fate == TS_DEFRAG_REASSEMBLED) {
		const struct ts_packet *head = &r->head->pkt;
		struct ts_packet dp = {
		        .data = r->datagram,
		        .caplen = r->caplen,
		        .len = r->len,
		        .ts_sec = head->ts_sec,
		        .ts_usec = head->ts_usec,
		        .index = head->index,
		        .link = TS_LINK_RAW,
		        .iface = head->iface,
		};
		ts_decode_ip(r->datagram, r->caplen, r->len, &dgram);
		/* The datagram has the head fragment's link layer: MAC rules and
		 * VLAN-keyed flows must see it as they see unfragmented packets. */
		ts_decode(head->link, head->data, head->caplen, head->len, &d);
		dgram.link = d.link;
		dgram.ethertype = d.ethertype;
		dgram.has_mac = d.has_mac;
		memcpy(dgram.src_mac, d.src_mac, 6);
		memcpy(dgram.dst_mac, d.dst_mac, 6);
		dgram.vlan_count = d.vlan_count;
		memcpy(dgram.vlan_ids, d.vlan_ids, sizeof(d.vlan_ids));
		out.datagram = &dgram;
		out.len = r->len;
		if (dgram.anomaly == TS_ANOM_NONE)
			f = flow_judge(e, &dp, &dgram, e->clock_usec, &j, &side);
		else
			e->stats.defrag_malformed++;
	}
	for (const struct ts_defrag_record *rec = r->records; rec; rec = rec->next) {
		ts_decode(rec->pkt.link, rec->pkt.data, rec->pkt.caplen, rec->pkt.len, &d);
		if (f) {
			ts_stats_count_verdict(&e->stats, &d, &j);
		} else {
			e->stats.verdicts[TS_VERDICT_DROP]++;
			e->stats.defrag_drops++;
		}
		struct ts_packet_event ev = {
		        .pkt = &rec->pkt,
		        .dec = &d,
		        .judgement = &j,
		        .flow = f,
		        .side = side,
		        .defrag = &out,
		};
		if (!e->releasing)
			dispatch_packet(e, &ev);
	}
}

void ts_engine_packet(struct ts_engine *e, const struct ts_packet *pkt)
{
	struct ts_decoded dec;
	ts_decode(pkt->link, pkt->data, pkt->caplen, pkt->len, &dec);
	ts_stats_count(&e->stats, pkt->caplen, pkt->len, &dec);

	struct ts_judgement judgement;
	struct ts_packet_event ev = {.pkt = pkt, .dec = &dec};
	if (e->policy) {
		if (dec.anomaly != TS_ANOM_NONE) {
			/* Malformed: dropped before any rule, and no flow is made for it. */
			struct ts_match_input in = {.dec = &dec,
			                            .frame = pkt->data,
			                            .caplen = pkt->caplen,
			                            .wirelen = pkt->len,
			                            .iface = pkt->iface ? pkt->iface : e->iface};
			ts_policy_judge(e->policy, &in, &judgement);
		} else if (dec.is_fragment) {
			/* Held until its datagram is whole or given up; reported then
			 * (defrag_done). */
			ts_defrag_add(e->defrag, pkt, &dec, packet_clock(e, pkt));
			return;
		} else {
			ev.flow = flow_judge(e, pkt, &dec, packet_clock(e, pkt), &judgement,
			                     &ev.side);
		}
		ts_stats_count_verdict(&e->stats, &dec, &judgement);
		ev.judgement = &judgement;
	}
	dispatch_packet(e, &ev);
}

int ts_engine_replace_policy(struct ts_engine *e, const struct ts_policy *p)
{
	uint64_t *hits = calloc(p->rule_count ? p->rule_count : 1, sizeof(*hits));
	if (!hits)
		return -1;
	free(e->stats.rule_hits);
	e->stats.rule_hits = hits;
	e->stats.generation++;
	e->policy = p;
	e->run.policy = p;
	return 0;
}

void ts_engine_tick(struct ts_engine *e, int64_t now_usec)
{
	if (!e->defrag)
		return;
	if (now_usec < e->clock_usec)
		now_usec = e->clock_usec;
	e->clock_usec = now_usec;
	ts_defrag_expire(e->defrag, now_usec);
}

void ts_engine_snapshot(struct ts_engine *e)
{
	if (e->defrag)
		e->stats.defrag = *ts_defrag_get_stats(e->defrag);
	if (e->flows)
		ts_flow_get_stats(e->flows, &e->stats.flows);
	if (e->reasm) {
		const struct ts_reasm_stats *rs = ts_reasm_stats(e->reasm);
		e->stats.streams.cap_hits = rs->dir_cap_hits + rs->total_cap_hits;
		e->stats.streams.history_skipped = rs->history_skipped;
	}
}

void ts_engine_start(struct ts_engine *e, const struct ts_source *src)
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
}

int ts_engine_run_file(struct ts_engine *e, struct ts_source *src)
{
	ts_engine_start(e, src);
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

	if (e->defrag)
		ts_defrag_flush(e->defrag);
	if (e->flows)
		ts_flow_flush(e->flows);
	ts_engine_snapshot(e);
	for (size_t i = 0; i < e->plugin_count; i++)
		if (e->plugins[i]->on_finish)
			e->plugins[i]->on_finish(e->plugins[i]->ctx, &e->run, &e->stats);
	return 0;
}
