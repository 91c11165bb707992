/*
 * Fuzz the SOCKS5 reply parsers. The input is parsed as Tor's answer whole
 * and at every split point: a prefix of a good reply must ask for more, the
 * bytes used never pass the input, and a parsed name is always terminated.
 * Then the input is read as a request to build (an address and a port),
 * built, and parsed back as a reply: the address must come back unchanged.
 * The harness aborts when any of that fails.
 */
#include <stdlib.h>
#include <string.h>

#include "torsieve/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t code, method;
	bool ok;
	size_t used = 0;
	struct ts_socks5_addr bound;
	enum ts_socks5_parse whole = ts_socks5_parse_reply(data, size, &code, &bound, &used);
	if (whole == TS_SOCKS5_DONE &&
	    (used > size || used < 8 || memchr(bound.name, '\0', sizeof(bound.name)) == NULL))
		abort();
	for (size_t k = 0; k < size && k < 300; k++) {
		size_t u2;
		struct ts_socks5_addr b2;
		uint8_t c2;
		enum ts_socks5_parse part = ts_socks5_parse_reply(data, k, &c2, &b2, &u2);
		if (whole == TS_SOCKS5_DONE && k < used && part != TS_SOCKS5_NEED_MORE)
			abort();
		if (whole == TS_SOCKS5_BAD && part == TS_SOCKS5_DONE)
			abort();
	}
	ts_socks5_parse_method(data, size, &method, &used);
	ts_socks5_parse_auth(data, size, &ok, &used);

	/* Build a request from the input and read it back. */
	if (size < 3)
		return 0;
	struct ts_socks5_addr to;
	memset(&to, 0, sizeof(to));
	to.port = (uint16_t)(data[1] << 8 | data[2]);
	const uint8_t *rest = data + 3;
	size_t n = size - 3;
	if (data[0] % 3 == 0 && n >= 4) {
		to.family = 4;
		memcpy(to.addr, rest, 4);
	} else if (data[0] % 3 == 1 && n >= 16) {
		to.family = 6;
		memcpy(to.addr, rest, 16);
	} else {
		size_t len = n > TS_SOCKS5_NAME_MAX ? TS_SOCKS5_NAME_MAX : n;
		memcpy(to.name, rest, len);
		to.name[len] = '\0';
	}
	uint8_t req[TS_SOCKS5_REQUEST_MAX];
	size_t rlen = ts_socks5_request(TS_SOCKS5_CONNECT, &to, req, sizeof(req));
	if (!rlen)
		return 0; /* an empty name */
	if (ts_socks5_parse_reply(req, rlen, &code, &bound, &used) != TS_SOCKS5_DONE ||
	    used != rlen || code != TS_SOCKS5_CONNECT || bound.port != to.port ||
	    bound.family != to.family || memcmp(bound.addr, to.addr, 16) != 0 ||
	    strcmp(bound.name, to.name) != 0)
		abort();
	return 0;
}
