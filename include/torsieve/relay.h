/*
 * The relay: diverted TCP connections handed to Tor.
 *
 * The first SYN of a diverted connection is held in the queue (no verdict)
 * while the relay asks Tor, through SOCKS5, to connect to the SYN's
 * destination. Tor's answer decides the SYN's verdict: the stream opened ->
 * divert, so the kernel completes the handshake on the relay's transparent
 * listener and the accepted socket is paired with the stream already open;
 * Tor refused or failed -> a reject that says what Tor said (socks5.h
 * ts_socks5_reject_kind). Copies of the SYN the client sends meanwhile are
 * held with it and get the same verdict.
 *
 * Past the pending caps a SYN is diverted at once and Tor is asked after
 * the accept (the way transparent proxies do it); a refusal is then a reset
 * of the accepted connection. Relayed bytes go through a pipe per
 * direction (splice): no copy through user space, and the pipe's size is
 * the most a direction holds, so a slow side slows the other down instead
 * of filling memory.
 *
 * The relay runs on one event loop: the one of the queue's worker.
 */
#ifndef TORSIEVE_RELAY_H
#define TORSIEVE_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsieve/decode.h"
#include "torsieve/policy.h"
#include "torsieve/source.h"
#include "torsieve/tor_pool.h"

struct ts_name_map;

struct event_base;

/* How a connection ended. */
#define TS_RELAY_CLOSE_LIST(X)                                                            \
	X(DONE, "done", "both directions ended")                                          \
	X(CLIENT_RESET, "client_reset", "the client reset or failed")                     \
	X(TOR_RESET, "tor_reset", "Tor's side reset or failed")                           \
	X(IDLE, "idle", "relay-idle passed without a byte")                               \
	X(TOR_REFUSED, "tor_refused", "accepted first, then Tor refused")                 \
	X(TOR_TIMEOUT, "tor_timeout", "accepted first, then no answer from Tor")          \
	X(NO_TOR, "no_tor", "accepted first, then no Tor instance answered")              \
	X(SOCKS_FAILED, "socks_failed", "accepted first, then the SOCKS exchange failed") \
	X(LOCAL_ERROR, "local_error", "torsieve could not set the connection up")         \
	X(UNCLAIMED, "unclaimed", "Tor's stream opened but the client never came")        \
	X(SHUTDOWN, "shutdown", "torsieve stopped")

enum ts_relay_close {
#define TS_RELAY_CLOSE_ENUM(id, name, text) TS_RELAY_CLOSE_##id,
	TS_RELAY_CLOSE_LIST(TS_RELAY_CLOSE_ENUM)
#undef TS_RELAY_CLOSE_ENUM
	TS_RELAY_CLOSE_COUNT
};

const char *ts_relay_close_name(enum ts_relay_close c);

struct ts_relay_stats {
	/* SYNs */
	uint64_t syn_held;         /* first SYNs held while Tor is asked */
	uint64_t syn_copies;       /* retransmissions held with them */
	uint64_t syn_copies_lost;  /* retransmissions past what one SYN keeps: dropped */
	uint64_t syn_replaced;     /* held SYNs dropped for a new SYN (a new ISN) on their tuple */
	uint64_t syn_opened;       /* Tor opened the stream: diverted */
	uint64_t syn_refused;      /* Tor answered with an error: rejected */
	uint64_t syn_timeout;      /* Tor did not answer within syn-timeout: host unreachable */
	uint64_t syn_no_tor;       /* no Tor instance answered: reset */
	uint64_t syn_broken;       /* the SOCKS exchange failed: reset */
	uint64_t syn_accept_first; /* over pending-syns(-per-client): diverted at once */
	uint64_t syn_over_connections; /* the client or all are at relay-connections: reset */
	uint64_t syn_unknown_name;     /* to a virtual address no name maps to now: unreachable */
	uint64_t by_name;              /* CONNECTs that named the destination (the name map) */
	uint64_t tor_replies[256];     /* Tor's reply codes to held SYNs' CONNECTs */
	/* connections */
	uint64_t accepted;         /* by the transparent listeners */
	uint64_t paired;           /* with a stream opened for a held SYN */
	uint64_t opened_after;     /* accepted first, Tor asked after */
	uint64_t over_connections; /* accepted over relay-connections(-per-client): reset */
	uint64_t emfile;           /* accepted with the reserved descriptor and reset */
	uint64_t accept_errors;    /* accept or socket setup failed */
	uint64_t closed[TS_RELAY_CLOSE_COUNT];
	uint64_t bytes_to_tor, bytes_to_client;
	uint64_t held_back; /* a direction's pipe full (relay-buffer): its reading paused */
	/* now */
	uint32_t pending;     /* SYNs waiting for Tor, or streams waiting for their client */
	uint32_t connections; /* relayed, or accepted first and waiting for Tor */
	uint32_t clients;     /* addresses with anything above */
};

/* A held SYN's verdict, to be given by the caller (the queue's owner). */
struct ts_relay_held {
	uint32_t id, mark;
	enum ts_link link;
	uint32_t caplen, wirelen;
	const uint8_t *frame; /* the SYN as it came (the first bytes of it) */
};

enum ts_relay_verdict {
	TS_RELAY_DIVERT,
	TS_RELAY_REJECT, /* by kind: a TCP reset or an ICMP error */
	TS_RELAY_DROP,   /* a copy of a SYN the client has since replaced */
};

struct ts_relay_hooks {
	void *ctx;
	void (*verdict)(void *ctx, const struct ts_relay_held *h, enum ts_relay_verdict v,
	                enum ts_reject_kind kind);
	/* After a run of verdicts: send them. */
	void (*flush)(void *ctx);
};

struct ts_relay;

/*
 * Open the transparent listeners (IPv4 and IPv6, IP_TRANSPARENT) on port
 * and raise the descriptor limit to what the caps need. pool (the Tor
 * instances) and names (the name map, or NULL) are the caller's and must
 * outlive the relay; a destination with a name goes to Tor by name. Needs
 * CAP_NET_ADMIN, so before privileges are dropped. NULL with the reason in
 * err on failure.
 */
struct ts_relay *ts_relay_open(const struct ts_relay_config *cfg, uint16_t port,
                               struct ts_tor_pool *pool, struct ts_name_map *names, char *err,
                               size_t errlen);

/* Start accepting on base. Returns -1 when the events cannot be had. */
int ts_relay_attach(struct ts_relay *r, struct event_base *base, const struct ts_relay_hooks *h);

enum ts_relay_syn {
	TS_RELAY_SYN_HELD,   /* no verdict now: the hooks give it */
	TS_RELAY_SYN_DIVERT, /* divert it now */
	TS_RELAY_SYN_REJECT, /* reject it now, by *kind */
	TS_RELAY_SYN_DROP,   /* drop it (a copy of a held SYN that cannot be kept) */
};

/* A SYN (no ACK) the policy diverted. pkt is the queued packet and d its
 * decoding. */
enum ts_relay_syn ts_relay_syn(struct ts_relay *r, const struct ts_packet *pkt,
                               const struct ts_decoded *d, int64_t now_usec,
                               enum ts_reject_kind *kind);

/* Once a second: idle connections, streams never claimed, answers kept. */
void ts_relay_tick(struct ts_relay *r, int64_t now_usec);

void ts_relay_get_stats(const struct ts_relay *r, struct ts_relay_stats *out);
const struct ts_tor_pool *ts_relay_tor_pool(const struct ts_relay *r);

/* Stop: every connection reset (closed as shutdown), held SYNs dropped,
 * nothing more accepted; the counters stay for a last report. */
void ts_relay_shutdown(struct ts_relay *r);

/* Close everything (held SYNs are dropped: the socket's close does it). */
void ts_relay_close(struct ts_relay *r);

#endif
