/*
 * The one door through which optional parts see the engine: output sinks
 * (summaries, per-packet logs, stream files, metrics) and protocol parsers.
 *
 * A plugin fills in the callbacks it needs and leaves the rest NULL. Events
 * carry pointers that are valid only for the duration of the call; a plugin
 * that needs the bytes later copies them. Callbacks must not block: on the
 * inline path they run on the packet path.
 */
#ifndef TORSIEVE_PLUGIN_H
#define TORSIEVE_PLUGIN_H

#include "torsieve/decode.h"
#include "torsieve/defrag.h"
#include "torsieve/flow.h"
#include "torsieve/reassembly.h"
#include "torsieve/source.h"
#include "torsieve/stats.h"

/* What a run is reading from. */
struct ts_run_info {
	const char *source_name;
	const char *link_label; /* libpcap's link-type name, e.g. "EN10MB" */
	int linktype;           /* the DLT value */
	enum ts_link link;
	const struct ts_policy *policy; /* what packets are judged by; NULL: not judged */
	const char *iface;              /* the input interface given for every packet, or NULL */
};

/* For a fragment: what became of its datagram. */
struct ts_defrag_outcome {
	enum ts_defrag_fate fate;
	uint32_t fragments; /* records of the datagram, this one included */
	/* REASSEMBLED: the datagram's decode (its anomaly, if any, is why its
	 * fragments were dropped) and length */
	const struct ts_decoded *datagram;
	uint32_t len;
};

/* One packet with what the engine made of it. New results join this struct
 * without changing the callback. */
struct ts_packet_event {
	const struct ts_packet *pkt;
	const struct ts_decoded *dec;
	const struct ts_judgement *judgement; /* NULL when the run has no policy */
	const struct ts_flow *flow;           /* NULL for malformed packets and without a policy */
	int side;                             /* the packet's key side in flow */
	/* A fragment's event comes when its datagram is reassembled or given up
	 * (the gateway holds fragments until then), so events of fragments can
	 * come after those of later packets; defrag says what happened. NULL
	 * for packets that are not fragments, and without a policy. */
	const struct ts_defrag_outcome *defrag;
};

/* Reassembled bytes of one direction of a TCP stream, in order, or a gap. */
struct ts_stream_event {
	const struct ts_flow *flow;
	int dir;             /* 0: from the flow's initiator (c2s); 1: back (s2c) */
	uint64_t offset;     /* in the direction's byte stream */
	const uint8_t *data; /* NULL for a gap */
	uint64_t len;        /* bytes, or the gap's length */
};

/* A flow that ended: expired, evicted, or flushed at the end of a run. */
struct ts_flow_event {
	const struct ts_flow *flow;
	const char *why;
	/* For a TCP flow that carried segments: each direction's account
	 * (index as ts_stream_event.dir); NULL otherwise. */
	const struct ts_reasm_dir_result *streams;
};

struct ts_plugin {
	const char *name;
	void *ctx;
	void (*on_start)(void *ctx, const struct ts_run_info *run);
	void (*on_packet)(void *ctx, const struct ts_packet_event *ev);
	void (*on_stream_data)(void *ctx, const struct ts_stream_event *ev);
	void (*on_flow_end)(void *ctx, const struct ts_flow_event *ev);
	/* Once, after the last packet; stats are the engine's counters. */
	void (*on_finish)(void *ctx, const struct ts_run_info *run, const struct ts_stats *stats);
};

#endif
