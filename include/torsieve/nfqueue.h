/*
 * The NFQUEUE source: packets the kernel queued for torsieve (iptables
 * NFQUEUE without --queue-bypass), through libnetfilter_queue's libmnl API.
 *
 * Fail-closed throughout: fail-open is never set, so a full queue drops;
 * a packet that never gets a verdict is dropped when the socket closes; and
 * ENOBUFS (the kernel could not hand packets over, so it dropped them) is
 * counted, not hidden with NETLINK_NO_ENOBUFS.
 *
 * Packets arrive with their IP header first. When the kernel gives the
 * sender's link-layer address, an Ethernet header is put in front (in the
 * receive buffer, over netlink headers already read), so `mac` rules match
 * inline as in replay; otherwise the frame is raw IP.
 *
 * Verdicts are queued with ts_nfq_verdict and sent by ts_nfq_flush:
 * consecutive packet ids with the same verdict and mark go as one batch
 * verdict, unless a packet below them still waits for its verdict (a held
 * fragment), which a batch would wrongly cover.
 */
#ifndef TORSIEVE_NFQUEUE_H
#define TORSIEVE_NFQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsieve/source.h"

struct ts_nfq_config {
	uint16_t queue;        /* the queue number */
	uint32_t queue_maxlen; /* packets the kernel may queue before it drops */
	uint32_t rcvbuf;       /* socket receive buffer, bytes */
};

struct ts_nfq_stats {
	uint64_t received;
	uint64_t accepted, dropped; /* verdicts */
	uint64_t verdict_messages;  /* sent: single and batch */
	uint64_t batches;           /* batch verdicts among them */
	uint64_t enobufs;           /* times the kernel could not hand packets over */
	uint64_t send_errors;       /* verdicts the kernel refused (the packet is dropped) */
	uint64_t truncated;         /* packets longer than the copy range (judged on what came) */
	/* from /proc/net/netfilter/nfnetlink_queue: the kernel's own drops */
	uint64_t queue_dropped, user_dropped;
};

/* Bind to the queue. On failure returns NULL and writes why into err. */
struct ts_source *ts_nfq_open(const struct ts_nfq_config *cfg, char *err, size_t errlen);

/* Queue the verdict for packet id: accept with mark (replacing the bits in
 * mark_mask of the packet's own mark), or drop. */
void ts_nfq_verdict(struct ts_source *src, uint32_t id, bool accept, uint32_t mark,
                    uint32_t mark_mask, uint32_t old_mark);

/* Send the queued verdicts. Returns -1 when the socket failed. */
int ts_nfq_flush(struct ts_source *src);

/* Counters, the kernel's included (read from /proc when it can be). */
void ts_nfq_get_stats(struct ts_source *src, struct ts_nfq_stats *out);

#endif
