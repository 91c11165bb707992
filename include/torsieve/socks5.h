/*
 * SOCKS5 to Tor: the messages torsieve sends (RFC 1928, RFC 1929
 * username/password, Tor's RESOLVE extensions) and bounds-checked parsers for
 * what Tor answers, including Tor's extended error codes (SocksPort flag
 * ExtendedErrors, for onion services).
 *
 * Parsers are incremental: given the bytes received so far they answer
 * NEED_MORE, DONE (with the length consumed) or BAD; they never read past
 * the length given and keep no state, so a reply split anywhere parses the
 * same as a whole one.
 */
#ifndef TORSIEVE_SOCKS5_H
#define TORSIEVE_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsieve/policy.h"

#define TS_SOCKS5_NAME_MAX    255 /* a domain name in a request */
#define TS_SOCKS5_CRED_MAX    255 /* a username or password (RFC 1929) */
#define TS_SOCKS5_GREETING    4   /* version, 2 methods: no auth and username/password */
#define TS_SOCKS5_REQUEST_MAX (4 + 1 + TS_SOCKS5_NAME_MAX + 2)
#define TS_SOCKS5_AUTH_MAX    (3 + 2 * TS_SOCKS5_CRED_MAX)

enum ts_socks5_cmd {
	TS_SOCKS5_CONNECT = 0x01,
	TS_SOCKS5_RESOLVE = 0xf0,     /* Tor: resolve a name, the answer carries the address */
	TS_SOCKS5_RESOLVE_PTR = 0xf1, /* Tor: reverse lookup */
};

/* Reply codes: RFC 1928's, then Tor's extended ones. */
#define TS_SOCKS5_REPLY_LIST(X)                                                 \
	X(0x00, SUCCEEDED, "succeeded")                                         \
	X(0x01, GENERAL_FAILURE, "general failure")                             \
	X(0x02, NOT_ALLOWED, "not allowed by ruleset")                          \
	X(0x03, NET_UNREACHABLE, "network unreachable")                         \
	X(0x04, HOST_UNREACHABLE, "host unreachable")                           \
	X(0x05, REFUSED, "connection refused")                                  \
	X(0x06, TTL_EXPIRED, "TTL expired")                                     \
	X(0x07, CMD_UNSUPPORTED, "command not supported")                       \
	X(0x08, ATYP_UNSUPPORTED, "address type not supported")                 \
	X(0xf0, ONION_DESC_NOT_FOUND, "onion service descriptor not found")     \
	X(0xf1, ONION_DESC_INVALID, "onion service descriptor invalid")         \
	X(0xf2, ONION_INTRO_FAILED, "onion service introduction failed")        \
	X(0xf3, ONION_REND_FAILED, "onion service rendezvous failed")           \
	X(0xf4, ONION_MISSING_AUTH, "onion service needs client authorization") \
	X(0xf5, ONION_WRONG_AUTH, "onion service client authorization wrong")   \
	X(0xf6, ONION_BAD_ADDRESS, "invalid onion service address")             \
	X(0xf7, ONION_INTRO_TIMEOUT, "onion service introduction timed out")

enum ts_socks5_reply {
#define TS_SOCKS5_REPLY_ENUM(code, id, text) TS_SOCKS5_##id = code,
	TS_SOCKS5_REPLY_LIST(TS_SOCKS5_REPLY_ENUM)
#undef TS_SOCKS5_REPLY_ENUM
};

/* "connection refused", or "unknown reply 0x.." for codes not listed. */
const char *ts_socks5_reply_text(uint8_t code, char buf[32]);

/*
 * What the client is told when Tor answers code (not SUCCEEDED): refused or
 * general failure (Tor's answer to a port refused at the exit) -> a TCP
 * reset; network or host unreachable -> that ICMP unreachable; TTL expired
 * -> host unreachable (there is no ICMP for a remote hop limit); every
 * onion-service error -> host unreachable (the service cannot be reached,
 * and no ICMP code says more); anything else (not allowed by the exit
 * policy, unsupported) -> admin prohibited.
 */
enum ts_reject_kind ts_socks5_reject_kind(uint8_t code);

/* The address of a request. */
struct ts_socks5_addr {
	uint8_t family;   /* 4, 6, or 0 for a name */
	uint8_t addr[16]; /* family 4 uses the first 4 bytes */
	char name[TS_SOCKS5_NAME_MAX + 1];
	uint16_t port;
};

/* Writers: each returns the length written into out (cap bytes), or 0 when
 * the message does not fit or a field is too long. */
size_t ts_socks5_greeting(uint8_t *out, size_t cap);
size_t ts_socks5_auth(const char *user, const char *pass, uint8_t *out, size_t cap);
size_t ts_socks5_request(enum ts_socks5_cmd cmd, const struct ts_socks5_addr *to, uint8_t *out,
                         size_t cap);

enum ts_socks5_parse {
	TS_SOCKS5_NEED_MORE = 0,
	TS_SOCKS5_DONE,
	TS_SOCKS5_BAD, /* not SOCKS5, or a field that cannot be */
};

/* The server's method choice: *method is 0x00, 0x02 or 0xff (none acceptable). */
enum ts_socks5_parse ts_socks5_parse_method(const uint8_t *p, size_t len, uint8_t *method,
                                            size_t *used);

/* The RFC 1929 answer: *ok when the status is 0. */
enum ts_socks5_parse ts_socks5_parse_auth(const uint8_t *p, size_t len, bool *ok, size_t *used);

/* The reply to a request: its code and the bound address (for RESOLVE, the
 * answer; for RESOLVE_PTR, bound->name). */
enum ts_socks5_parse ts_socks5_parse_reply(const uint8_t *p, size_t len, uint8_t *code,
                                           struct ts_socks5_addr *bound, size_t *used);

#endif
