/*
 * A SOCKS5 CONNECT through Tor, without blocking: connect to the client's
 * Tor instance (tor_pool.h), greet, authenticate with the isolation token
 * as the username (RFC 1929), ask for the destination and read Tor's reply
 * (socks5.h parses every message). When the instance's SOCKS port refuses,
 * closes, or does not greet back within a few seconds, the instance is
 * marked failed and the next one for this client is tried; a CONNECT that
 * Tor answers, even with an error, is Tor's answer and is not retried.
 */
#ifndef TORSIEVE_SOCKS_CLIENT_H
#define TORSIEVE_SOCKS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "torsieve/socks5.h"
#include "torsieve/tor_pool.h"

struct event_base;

enum ts_socks_outcome {
	TS_SOCKS_OPEN = 0, /* Tor opened the stream: fd is connected through Tor */
	TS_SOCKS_REFUSED,  /* Tor answered with an error: reply is its code */
	TS_SOCKS_NO_TOR,   /* no instance answered (all failed, or left out) */
	TS_SOCKS_TIMEOUT,  /* Tor did not answer the CONNECT in time */
	TS_SOCKS_BROKEN,   /* not SOCKS5, the token was refused, or a socket error */
};

const char *ts_socks_outcome_name(enum ts_socks_outcome o);

/* Called once per started request (never after a cancel). On OPEN, fd is
 * the caller's to close (for CONNECT; -1 for RESOLVE); otherwise it is -1.
 * instance is the one used (-1 for NO_TOR). */
typedef void (*ts_socks_done_fn)(void *ctx, enum ts_socks_outcome o, uint8_t reply, int fd,
                                 int instance);

struct ts_socks_request {
	const void *key; /* the client's key for the instance choice */
	size_t keylen;
	const char *user;       /* the isolation token */
	enum ts_socks5_cmd cmd; /* CONNECT (0 means it too), or Tor's RESOLVE */
	struct ts_socks5_addr to;
	/* RESOLVE: where Tor's answer (the address) is written on OPEN; the
	 * socket is then closed, and fd is -1 */
	struct ts_socks5_addr *resolved;
	uint32_t timeout_sec;
	ts_socks_done_fn done;
	void *ctx;
};

struct ts_socks_client;

/* Start a request (the key is copied). Returns NULL when no instance can
 * even be tried (*why: NO_TOR) or there is no memory or socket (*why:
 * BROKEN); done is then not called. */
struct ts_socks_client *ts_socks_connect(struct event_base *base, struct ts_tor_pool *pool,
                                         const struct ts_socks_request *req, int64_t now_usec,
                                         enum ts_socks_outcome *why);

/* Give up a request: its socket is closed and done is not called. */
void ts_socks_cancel(struct ts_socks_client *c);

#endif
