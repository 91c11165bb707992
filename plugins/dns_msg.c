/* DNS messages: parse queries and upstream answers, write answers (dns.h). */
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/dns.h"

#define FLAG_QR   0x8000
#define FLAG_AA   0x0400
#define FLAG_TC   0x0200
#define FLAG_RD   0x0100
#define FLAG_RA   0x0080
#define OPCODE(f) (((f) >> 11) & 0xf)
#define CLASS_IN  1
#define NAME_WIRE 255 /* a name's most bytes on the wire */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static bool name_byte_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '*';
}

bool ts_dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap)
{
	size_t pos = *off, after = 0, wire = 0, n = 0;
	unsigned pointers = 0;
	for (;;) {
		if (pos >= len)
			return false;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++pointers > TS_DNS_MAX_POINTERS)
				return false;
			size_t to = ((size_t)(l & 0x3f) << 8) | msg[pos + 1];
			/* backwards only (a name points at an earlier one); the
			 * pointer count and the 255 bytes end any loop */
			if (to >= pos)
				return false;
			if (!after)
				after = pos + 2;
			pos = to;
			continue;
		}
		if (l & 0xc0)
			return false; /* 0x40 and 0x80: extended label types, unused */
		wire += 1u + l;
		if (wire > NAME_WIRE)
			return false;
		if (l == 0) {
			pos++;
			break;
		}
		if (pos + 1 + l > len)
			return false;
		if (out) {
			/* the dot, the label, and the final NUL must fit */
			if (n + (n ? 1u : 0u) + l + 1 > outcap)
				return false;
			if (n)
				out[n++] = '.';
			for (size_t i = 0; i < l; i++) {
				uint8_t c = msg[pos + 1 + i];
				if (!name_byte_ok(c))
					return false;
				out[n++] = (char)c;
			}
		}
		pos += 1u + l;
	}
	if (out) {
		if (n >= outcap)
			return false;
		out[n] = '\0';
	}
	*off = after ? after : pos;
	return true;
}

/* The additional section of a query: at most an OPT record. */
static bool read_edns(const uint8_t *msg, size_t len, size_t off, uint16_t arcount,
                      struct ts_dns_query *q)
{
	for (uint16_t i = 0; i < arcount; i++) {
		if (!ts_dns_read_name(msg, len, &off, NULL, 0) || off + 10 > len)
			return false;
		uint16_t type = ts_be16(msg + off);
		uint16_t rdlen = ts_be16(msg + off + 8);
		if (off + 10 + rdlen > len)
			return false;
		if (type == TS_DNS_OPT) {
			if (q->edns)
				return false; /* RFC 6891: more than one OPT is FORMERR */
			q->edns = true;
			uint16_t size = ts_be16(msg + off + 2);
			q->edns_size = size < TS_DNS_UDP_MIN ? TS_DNS_UDP_MIN : size;
		}
		off += 10u + rdlen;
	}
	return off == len;
}

enum ts_dns_parse ts_dns_parse_query(const uint8_t *msg, size_t len, struct ts_dns_query *q)
{
	memset(q, 0, sizeof(*q));
	q->edns_size = TS_DNS_UDP_MIN;
	if (len < TS_DNS_HEADER)
		return TS_DNS_IGNORE;
	q->id = ts_be16(msg);
	q->flags = ts_be16(msg + 2);
	if (q->flags & FLAG_QR)
		return TS_DNS_IGNORE; /* a response: answering it could make a loop */
	if (OPCODE(q->flags) != 0)
		return TS_DNS_NOT_QUERY;
	uint16_t qd = ts_be16(msg + 4), an = ts_be16(msg + 6), ns = ts_be16(msg + 8),
	         ar = ts_be16(msg + 10);
	if (qd != 1 || an || ns)
		return TS_DNS_MALFORMED;
	size_t off = TS_DNS_HEADER;
	if (!ts_dns_read_name(msg, len, &off, q->name_as_sent, sizeof(q->name_as_sent)))
		return TS_DNS_MALFORMED;
	if (off + 4 > len)
		return TS_DNS_MALFORMED;
	q->qtype = ts_be16(msg + off);
	q->qclass = ts_be16(msg + off + 2);
	off += 4;
	if (!read_edns(msg, len, off, ar, q))
		return TS_DNS_MALFORMED;
	for (size_t i = 0;; i++) {
		char c = q->name_as_sent[i];
		q->name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		if (!c)
			break;
	}
	return TS_DNS_PARSED;
}

/* A name in wire form, uncompressed. Returns its length, 0 when it does
 * not fit or a label is empty or too long. */
static size_t write_name(const char *name, uint8_t *out, size_t cap)
{
	size_t n = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || n + 1 + l + 1 > cap || n + 1 + l + 1 > NAME_WIRE)
			return 0;
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l;
		if (*p == '.')
			p++;
	}
	if (n + 1 > cap)
		return 0;
	out[n++] = 0;
	return n;
}

/* header + question; returns the length, 0 when it does not fit */
static size_t write_head(const struct ts_dns_query *q, uint8_t rcode, bool tc, uint16_t ancount,
                         bool opt, uint8_t *out, size_t cap)
{
	if (cap < TS_DNS_HEADER)
		return 0;
	uint16_t flags = (uint16_t)(FLAG_QR | FLAG_RA | (q->flags & FLAG_RD) | (rcode & 0xf));
	if (tc)
		flags |= FLAG_TC;
	put16(out, q->id);
	put16(out + 2, flags);
	put16(out + 4, 1);
	put16(out + 6, ancount);
	put16(out + 8, 0);
	put16(out + 10, opt ? 1 : 0);
	size_t n = write_name(q->name_as_sent, out + TS_DNS_HEADER, cap - TS_DNS_HEADER);
	if (!n || TS_DNS_HEADER + n + 4 > cap)
		return 0;
	n += TS_DNS_HEADER;
	put16(out + n, q->qtype);
	put16(out + n + 2, q->qclass);
	return n + 4;
}

/* OPT: our UDP size, no options (RFC 6891: answer EDNS with EDNS) */
static size_t write_opt(uint8_t *out, size_t cap)
{
	if (cap < 11)
		return 0;
	out[0] = 0;
	put16(out + 1, TS_DNS_OPT);
	put16(out + 3, TS_DNS_UDP_MAX);
	put32(out + 5, 0);
	put16(out + 9, 0);
	return 11;
}

size_t ts_dns_write_answer(const struct ts_dns_query *q, uint8_t rcode, const struct ts_dns_rr *rr,
                           size_t count, size_t limit, uint8_t *out, size_t cap)
{
	if (limit < cap)
		cap = limit;
	size_t n = write_head(q, rcode, false, (uint16_t)count, q->edns, out, cap);
	if (!n)
		return 0;
	bool fits = true;
	for (size_t i = 0; i < count && fits; i++) {
		uint8_t rdata[NAME_WIRE];
		size_t rdlen;
		if (rr[i].type == TS_DNS_A) {
			memcpy(rdata, rr[i].addr, 4);
			rdlen = 4;
		} else if (rr[i].type == TS_DNS_AAAA) {
			memcpy(rdata, rr[i].addr, 16);
			rdlen = 16;
		} else {
			rdlen = write_name(rr[i].name, rdata, sizeof(rdata));
			if (!rdlen)
				return 0;
		}
		if (n + 12 + rdlen > cap) {
			fits = false;
			break;
		}
		put16(out + n, 0xc000 | TS_DNS_HEADER); /* the question's name */
		put16(out + n + 2, rr[i].type);
		put16(out + n + 4, CLASS_IN);
		put32(out + n + 6, rr[i].ttl);
		put16(out + n + 10, (uint16_t)rdlen);
		memcpy(out + n + 12, rdata, rdlen);
		n += 12 + rdlen;
	}
	if (fits && q->edns) {
		size_t o = write_opt(out + n, cap - n);
		fits = o != 0;
		n += o;
	}
	if (fits)
		return n;
	/* Truncated: no records, TC set; the client asks again over TCP. */
	n = write_head(q, rcode, true, 0, q->edns, out, cap);
	if (!n)
		return 0;
	if (q->edns) {
		size_t o = write_opt(out + n, cap - n);
		if (!o) {
			put16(out + 10, 0);
			return n;
		}
		n += o;
	}
	return n;
}

size_t ts_dns_write_error(const uint8_t *msg, size_t len, uint8_t rcode, uint8_t *out, size_t cap)
{
	if (len < TS_DNS_HEADER || cap < TS_DNS_HEADER)
		return 0;
	uint16_t flags = ts_be16(msg + 2);
	flags = (uint16_t)(FLAG_QR | FLAG_RA | (flags & (FLAG_RD | 0x7800)) | (rcode & 0xf));
	memcpy(out, msg, 2);
	put16(out + 2, flags);
	memset(out + 4, 0, 8);
	return TS_DNS_HEADER;
}

size_t ts_dns_write_question(uint16_t id, const char *name, uint16_t qtype, uint8_t *out,
                             size_t cap)
{
	if (cap < TS_DNS_HEADER)
		return 0;
	put16(out, id);
	put16(out + 2, FLAG_RD);
	put16(out + 4, 1);
	memset(out + 6, 0, 6);
	size_t n = write_name(name, out + TS_DNS_HEADER, cap - TS_DNS_HEADER);
	if (!n || TS_DNS_HEADER + n + 4 > cap)
		return 0;
	n += TS_DNS_HEADER;
	put16(out + n, qtype);
	put16(out + n + 2, CLASS_IN);
	return n + 4;
}

static bool same_name(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
		char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
		if (x != y)
			return false;
		if (!x)
			return true;
	}
}

bool ts_dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                         uint16_t qtype, struct ts_dns_result *out)
{
	memset(out, 0, sizeof(*out));
	if (len < TS_DNS_HEADER || ts_be16(msg) != id)
		return false;
	uint16_t flags = ts_be16(msg + 2);
	if (!(flags & FLAG_QR) || OPCODE(flags) != 0 || ts_be16(msg + 4) != 1)
		return false;
	out->rcode = flags & 0xf;
	uint16_t an = ts_be16(msg + 6);
	size_t off = TS_DNS_HEADER;
	char owner[TS_DNS_NAME_MAX + 1], target[TS_DNS_NAME_MAX + 1];
	if (!ts_dns_read_name(msg, len, &off, owner, sizeof(owner)) || !same_name(owner, name) ||
	    off + 4 > len || ts_be16(msg + off) != qtype)
		return false;
	off += 4;
	/* The name whose records answer: the question's, or the end of a
	 * CNAME chain (records in order, as resolvers write them). */
	char want[TS_DNS_NAME_MAX + 1];
	strcpy(want, owner);
	for (uint16_t i = 0; i < an; i++) {
		if (!ts_dns_read_name(msg, len, &off, owner, sizeof(owner)) || off + 10 > len)
			return false;
		uint16_t type = ts_be16(msg + off), cls = ts_be16(msg + off + 2);
		uint32_t ttl = ts_be32(msg + off + 4);
		uint16_t rdlen = ts_be16(msg + off + 8);
		size_t rd = off + 10;
		if (rd + rdlen > len)
			return false;
		off = rd + rdlen;
		if (cls != CLASS_IN || !same_name(owner, want))
			continue;
		if (type == TS_DNS_CNAME) {
			size_t t = rd;
			if (!ts_dns_read_name(msg, rd + rdlen, &t, target, sizeof(target)) ||
			    t != rd + rdlen)
				return false;
			strcpy(want, target);
			continue;
		}
		if (type != qtype || out->count == TS_DNS_MAX_ANSWERS)
			continue;
		size_t alen = type == TS_DNS_A ? 4 : type == TS_DNS_AAAA ? 16 : 0;
		if (!alen || rdlen != alen)
			return false;
		struct ts_dns_rr *r = &out->rr[out->count++];
		r->type = type;
		r->ttl = ttl > 0x7fffffffu ? 0 : ttl; /* RFC 2181: a TTL over 2^31 - 1 is 0 */
		memcpy(r->addr, msg + rd, alen);
	}
	return true;
}
