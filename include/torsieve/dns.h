/*
 * DNS messages (RFC 1035, EDNS from RFC 6891): the queries clients send and
 * the answers torsieve writes back, and the answers Tor's DNSPort gives.
 *
 * Every read is bounds-checked against the message length; names may use
 * compression pointers, which must point backwards (before themselves) and
 * are followed at most TS_DNS_MAX_POINTERS times; a name is at most 255
 * bytes as read. The last two are what end a loop: labels move forward
 * again after a pointer, so pointers alone could go round. Nothing
 * here allocates.
 */
#ifndef TORSIEVE_DNS_H
#define TORSIEVE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_DNS_HEADER       12
#define TS_DNS_NAME_MAX     253  /* presentation form, without the final dot */
#define TS_DNS_UDP_MIN      512  /* what a client without EDNS accepts */
#define TS_DNS_UDP_MAX      1232 /* what torsieve sends at most over UDP (DNS flag day 2020) */
#define TS_DNS_MAX_POINTERS 32
#define TS_DNS_MAX_ANSWERS  16

enum ts_dns_type {
	TS_DNS_A = 1,
	TS_DNS_CNAME = 5,
	TS_DNS_PTR = 12,
	TS_DNS_AAAA = 28,
	TS_DNS_OPT = 41,
};

enum ts_dns_rcode {
	TS_DNS_NOERROR = 0,
	TS_DNS_FORMERR = 1,
	TS_DNS_SERVFAIL = 2,
	TS_DNS_NXDOMAIN = 3,
	TS_DNS_NOTIMP = 4,
	TS_DNS_REFUSED = 5,
};

/* A query as the client sent it. */
struct ts_dns_query {
	uint16_t id;
	uint16_t flags; /* the header's second 16 bits, as sent */
	uint16_t qtype, qclass;
	/* the name in lower case, without the final dot ("" for the root),
	 * and as sent (case kept: a client may check it, RFC 5452's 0x20) */
	char name[TS_DNS_NAME_MAX + 1];
	char name_as_sent[TS_DNS_NAME_MAX + 1];
	bool edns;
	uint16_t edns_size; /* the client's UDP payload size (EDNS), else 512 */
};

enum ts_dns_parse {
	TS_DNS_PARSED = 0, /* a query torsieve can answer */
	TS_DNS_MALFORMED,  /* answer FORMERR (the header was readable: id is set) */
	TS_DNS_NOT_QUERY,  /* an opcode other than QUERY: answer NOTIMP (id is set) */
	TS_DNS_IGNORE,     /* shorter than a header, or a response: no answer */
};

/* Parse a client's query. Names with bytes other than letters, digits,
 * '-', '_' and '*' are malformed here: no such name can reach Tor. */
enum ts_dns_parse ts_dns_parse_query(const uint8_t *msg, size_t len, struct ts_dns_query *q);

/*
 * Read the name at *off: into out (lower case, dotted, no final dot) when
 * out is not NULL, and *off moved past it (past the first pointer when it
 * is compressed). Returns false when it runs past len, loops, has a label
 * over 63 bytes, is over 255 bytes on the wire, or (with out) has a byte
 * the presentation form cannot carry.
 */
bool ts_dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap);

/* One record of an answer. */
struct ts_dns_rr {
	uint16_t type; /* A, AAAA or PTR */
	uint32_t ttl;
	uint8_t addr[16];               /* A: 4 bytes, AAAA: 16 */
	char name[TS_DNS_NAME_MAX + 1]; /* PTR */
};

/*
 * The answer to q: rcode, then the records (type A, AAAA or PTR; owner
 * q's name). Over limit bytes (512, or the client's EDNS size up to
 * TS_DNS_UDP_MAX, for UDP; 65535 for TCP) the answer goes without records
 * and with TC set, so the client asks again over TCP. Returns the length
 * written, 0 when out is too small even for that.
 */
size_t ts_dns_write_answer(const struct ts_dns_query *q, uint8_t rcode, const struct ts_dns_rr *rr,
                           size_t count, size_t limit, uint8_t *out, size_t cap);

/* A bare error (FORMERR, NOTIMP) to a message whose header was readable:
 * the id and opcode kept, no question. */
size_t ts_dns_write_error(const uint8_t *msg, size_t len, uint8_t rcode, uint8_t *out, size_t cap);

/* A question to send upstream (Tor's DNSPort): id, RD set, q's name and type. */
size_t ts_dns_write_question(uint16_t id, const char *name, uint16_t qtype, uint8_t *out,
                             size_t cap);

/* What an upstream answer says: its rcode and the A or AAAA records of
 * type qtype for name (directly, or at the end of a CNAME chain in it). */
struct ts_dns_result {
	uint8_t rcode;
	size_t count;
	struct ts_dns_rr rr[TS_DNS_MAX_ANSWERS];
};

/* Parse an upstream answer to the question (id, name, qtype). Returns
 * false when it is not that answer or is malformed. */
bool ts_dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                         uint16_t qtype, struct ts_dns_result *out);

#endif
