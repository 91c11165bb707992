/*
 * Packet sources: where frames come from. A capture file and (later) an
 * NFQUEUE look the same to the engine: next() hands out one frame at a time,
 * fd() says what to wait on when next() answers AGAIN.
 */
#ifndef TORSIEVE_SOURCE_H
#define TORSIEVE_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "torsieve/decode.h"

/* One frame. data stays valid until the next call to next() or close(). */
struct ts_packet {
	const uint8_t *data;
	uint32_t caplen;
	uint32_t len; /* on the wire */
	int64_t ts_sec;
	uint32_t ts_usec;
	uint64_t index; /* 1-based position in the source */
	enum ts_link link;
	/* Inline sources only (zero from files): */
	uint32_t id;       /* the kernel's packet id, for the verdict */
	uint32_t mark;     /* the packet's mark as it came */
	const char *iface; /* input interface (as iptables -i names it), NULL if unknown */
};

enum ts_source_status {
	TS_SOURCE_PACKET, /* *pkt holds a frame */
	TS_SOURCE_AGAIN,  /* nothing now: wait on fd() */
	TS_SOURCE_END,    /* no more frames, ever */
	TS_SOURCE_ERROR,  /* unrecoverable; the reason is in src->err */
};

struct ts_source;

struct ts_source_ops {
	enum ts_source_status (*next)(struct ts_source *src, struct ts_packet *pkt);
	int (*fd)(const struct ts_source *src); /* -1: next() never answers AGAIN */
	void (*close)(struct ts_source *src);
};

struct ts_source {
	const struct ts_source_ops *ops;
	char name[256];         /* the file or queue, for messages */
	enum ts_link link;      /* how frames are framed */
	int linktype;           /* the capture's own DLT value */
	const char *link_label; /* the capture's link type by libpcap's name, e.g. "EN10MB" */
	char err[512];          /* "NAME: reason" after TS_SOURCE_ERROR or a failed open */
};

static inline enum ts_source_status ts_source_next(struct ts_source *src, struct ts_packet *pkt)
{
	return src->ops->next(src, pkt);
}

static inline void ts_source_close(struct ts_source *src)
{
	if (src)
		src->ops->close(src);
}

/* torsieve's framing for a capture's DLT value (TS_LINK_UNSUPPORTED for
 * those the decoder does not know). */
enum ts_link ts_link_from_dlt(int dlt);

/*
 * Open a pcap or pcapng file ("-" is standard input). On failure returns NULL
 * and writes "PATH: reason" into err.
 */
struct ts_source *ts_source_open_pcap(const char *path, char *err, size_t errlen);

/* The same over an open stream (the fuzz harness reads from memory); the
 * source takes ownership of fp, also on failure. */
struct ts_source *ts_source_open_pcap_stream(FILE *fp, const char *name, char *err, size_t errlen);

#endif
