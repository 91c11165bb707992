/* SOCKS5 messages to Tor and bounds-checked parsers of its answers. */
#include <stdio.h>
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/socks5.h"

#define SOCKS5_VERSION  5
#define AUTH_VERSION    1 /* RFC 1929 */
#define METHOD_NONE     0x00
#define METHOD_USERPASS 0x02
#define ATYP_IPV4       0x01
#define ATYP_NAME       0x03
#define ATYP_IPV6       0x04

const char *ts_socks5_reply_text(uint8_t code, char buf[32])
{
	switch (code) {
#define TS_SOCKS5_REPLY_CASE(c, id, text) \
	case c:                           \
		return text;
		TS_SOCKS5_REPLY_LIST(TS_SOCKS5_REPLY_CASE)
#undef TS_SOCKS5_REPLY_CASE
	default:
		snprintf(buf, 32, "unknown reply 0x%02x", code);
		return buf;
	}
}

enum ts_reject_kind ts_socks5_reject_kind(uint8_t code)
{
	switch (code) {
	case TS_SOCKS5_REFUSED:
	/* Tor answers a refused connection at the exit (and most other exit
	 * failures) with a general failure: tor 0.4.9 does, checked in the
	 * private Tor network. A reset says "nothing there" as the kernel
	 * would have, and is not held back by reject-rate. */
	case TS_SOCKS5_GENERAL_FAILURE:
		return TS_REJECT_TCP_RESET;
	case TS_SOCKS5_NET_UNREACHABLE:
		return TS_REJECT_NET_UNREACHABLE;
	case TS_SOCKS5_HOST_UNREACHABLE:
	case TS_SOCKS5_TTL_EXPIRED:
		return TS_REJECT_HOST_UNREACHABLE;
	default:
		if (code >= TS_SOCKS5_ONION_DESC_NOT_FOUND && code <= TS_SOCKS5_ONION_INTRO_TIMEOUT)
			return TS_REJECT_HOST_UNREACHABLE;
		return TS_REJECT_ADMIN_PROHIBITED;
	}
}

size_t ts_socks5_greeting(uint8_t *out, size_t cap)
{
	if (cap < TS_SOCKS5_GREETING)
		return 0;
	/* Username/password is what carries the isolation token; offering no
	 * authentication too lets a plain SOCKS port answer. */
	out[0] = SOCKS5_VERSION;
	out[1] = 2;
	out[2] = METHOD_NONE;
	out[3] = METHOD_USERPASS;
	return TS_SOCKS5_GREETING;
}

size_t ts_socks5_auth(const char *user, const char *pass, uint8_t *out, size_t cap)
{
	size_t ulen = strlen(user), plen = strlen(pass);
	/* RFC 1929: both 1 to 255 bytes */
	if (!ulen || !plen || ulen > TS_SOCKS5_CRED_MAX || plen > TS_SOCKS5_CRED_MAX ||
	    cap < 3 + ulen + plen)
		return 0;
	out[0] = AUTH_VERSION;
	out[1] = (uint8_t)ulen;
	memcpy(out + 2, user, ulen);
	out[2 + ulen] = (uint8_t)plen;
	memcpy(out + 3 + ulen, pass, plen);
	return 3 + ulen + plen;
}

size_t ts_socks5_request(enum ts_socks5_cmd cmd, const struct ts_socks5_addr *to, uint8_t *out,
                         size_t cap)
{
	size_t n = 4, alen;
	uint8_t atyp;
	if (to->family == 4) {
		atyp = ATYP_IPV4;
		alen = 4;
	} else if (to->family == 6) {
		atyp = ATYP_IPV6;
		alen = 16;
	} else {
		atyp = ATYP_NAME;
		alen = strlen(to->name);
		if (!alen || alen > TS_SOCKS5_NAME_MAX)
			return 0;
	}
	size_t total = n + (atyp == ATYP_NAME ? 1 : 0) + alen + 2;
	if (cap < total)
		return 0;
	out[0] = SOCKS5_VERSION;
	out[1] = (uint8_t)cmd;
	out[2] = 0;
	out[3] = atyp;
	if (atyp == ATYP_NAME) {
		out[n++] = (uint8_t)alen;
		memcpy(out + n, to->name, alen);
	} else {
		memcpy(out + n, to->addr, alen);
	}
	n += alen;
	out[n] = (uint8_t)(to->port >> 8);
	out[n + 1] = (uint8_t)to->port;
	return total;
}

enum ts_socks5_parse ts_socks5_parse_method(const uint8_t *p, size_t len, uint8_t *method,
                                            size_t *used)
{
	if (len < 2)
		return len && p[0] != SOCKS5_VERSION ? TS_SOCKS5_BAD : TS_SOCKS5_NEED_MORE;
	if (p[0] != SOCKS5_VERSION)
		return TS_SOCKS5_BAD;
	if (p[1] != METHOD_NONE && p[1] != METHOD_USERPASS && p[1] != 0xff)
		return TS_SOCKS5_BAD; /* a method we did not offer */
	*method = p[1];
	*used = 2;
	return TS_SOCKS5_DONE;
}

enum ts_socks5_parse ts_socks5_parse_auth(const uint8_t *p, size_t len, bool *ok, size_t *used)
{
	if (len < 2)
		return len && p[0] != AUTH_VERSION ? TS_SOCKS5_BAD : TS_SOCKS5_NEED_MORE;
	if (p[0] != AUTH_VERSION)
		return TS_SOCKS5_BAD;
	*ok = p[1] == 0;
	*used = 2;
	return TS_SOCKS5_DONE;
}

enum ts_socks5_parse ts_socks5_parse_reply(const uint8_t *p, size_t len, uint8_t *code,
                                           struct ts_socks5_addr *bound, size_t *used)
{
	/* Each field is checked as soon as its bytes are there, so a bad reply
	 * is refused without waiting for bytes that may never come. */
	if (len >= 1 && p[0] != SOCKS5_VERSION)
		return TS_SOCKS5_BAD;
	if (len >= 3 && p[2] != 0)
		return TS_SOCKS5_BAD;
	if (len < 4)
		return TS_SOCKS5_NEED_MORE;
	size_t need, off = 4;
	switch (p[3]) {
	case 0:
		/* Tor answers a failed RESOLVE with address type 0 and six zero
		 * bytes (tor 0.4.9, checked): no address, the length of IPv4's.
		 * Only a failure may come without an address. */
		if (len >= 2 && p[1] == 0)
			return TS_SOCKS5_BAD;
		need = 4 + 4 + 2;
		break;
	case ATYP_IPV4:
		need = 4 + 4 + 2;
		break;
	case ATYP_IPV6:
		need = 4 + 16 + 2;
		break;
	case ATYP_NAME:
		if (len < 5)
			return TS_SOCKS5_NEED_MORE;
		need = 4 + 1 + (size_t)p[4] + 2;
		off = 5;
		break;
	default:
		return TS_SOCKS5_BAD;
	}
	if (len < need)
		return TS_SOCKS5_NEED_MORE;
	memset(bound, 0, sizeof(*bound));
	if (p[3] == 0) {
		bound->family = 0; /* no address */
	} else if (p[3] == ATYP_IPV4) {
		bound->family = 4;
		memcpy(bound->addr, p + off, 4);
	} else if (p[3] == ATYP_IPV6) {
		bound->family = 6;
		memcpy(bound->addr, p + off, 16);
	} else {
		if (!p[4] || memchr(p + off, '\0', p[4]))
			return TS_SOCKS5_BAD;       /* an empty name, or one a C string would cut */
		memcpy(bound->name, p + off, p[4]); /* at most 255: the name has 256 bytes */
		bound->name[p[4]] = '\0';
	}
	bound->port = ts_be16(p + need - 2);
	*code = p[1];
	*used = need;
	return TS_SOCKS5_DONE;
}
