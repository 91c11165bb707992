/*
 * SOCKS5 messages: requests byte for byte as RFC 1928/1929 lay them out,
 * replies parsed at every split point the same as whole, bad replies
 * refused as soon as the bad byte is there, and Tor's reply codes mapped to
 * what the client is told.
 */
#include "check.h"
#include "torsieve/socks5.h"

static void test_writers(void)
{
	uint8_t out[600];
	CHECK_EQ_INT(ts_socks5_greeting(out, sizeof(out)), 4);
	CHECK(memcmp(out, "\x05\x02\x00\x02", 4) == 0);
	size_t n = ts_socks5_auth("c:02:00:00:00:01:01", "x", out, sizeof(out));
	CHECK_EQ_INT(n, 3 + 19 + 1);
	CHECK(memcmp(out,
	             "\x01\x13"
	             "c:02:00:00:00:01:01"
	             "\x01x",
	             n) == 0);
	CHECK_EQ_INT(ts_socks5_auth("", "x", out, sizeof(out)), 0);
	char longer[300];
	memset(longer, 'a', 256);
	longer[256] = '\0';
	CHECK_EQ_INT(ts_socks5_auth(longer, "x", out, sizeof(out)), 0);

	struct ts_socks5_addr a = {.family = 4, .addr = {203, 0, 113, 80}, .port = 443};
	n = ts_socks5_request(TS_SOCKS5_CONNECT, &a, out, sizeof(out));
	CHECK_EQ_INT(n, 10);
	CHECK(memcmp(out, "\x05\x01\x00\x01\xcb\x00\x71\x50\x01\xbb", 10) == 0);
	struct ts_socks5_addr b = {.family = 0, .name = "www.example.test", .port = 80};
	n = ts_socks5_request(TS_SOCKS5_CONNECT, &b, out, sizeof(out));
	CHECK_EQ_INT(n, 4 + 1 + 16 + 2);
	CHECK(memcmp(out, "\x05\x01\x00\x03\x10www.example.test\x00\x50", n) == 0);
	struct ts_socks5_addr c = {.family = 6, .addr = {0x20, 0x01, 0x0d, 0xb8}, .port = 1};
	n = ts_socks5_request(TS_SOCKS5_RESOLVE_PTR, &c, out, sizeof(out));
	CHECK_EQ_INT(n, 22);
	CHECK_EQ_INT(out[1], 0xf1);
	CHECK_EQ_INT(out[3], 4);
	CHECK_EQ_INT(ts_socks5_request(TS_SOCKS5_CONNECT, &a, out, 9), 0); /* no room */
	struct ts_socks5_addr empty = {.family = 0, .port = 80};
	CHECK_EQ_INT(ts_socks5_request(TS_SOCKS5_CONNECT, &empty, out, sizeof(out)), 0);
}

/* Parse r whole, then every prefix: a prefix is NEED_MORE unless the whole
 * is BAD (then a prefix may already be BAD). */
static enum ts_socks5_parse parse_all_splits(const uint8_t *r, size_t len, uint8_t *code,
                                             struct ts_socks5_addr *bound, size_t *used)
{
	enum ts_socks5_parse whole = ts_socks5_parse_reply(r, len, code, bound, used);
	for (size_t k = 0; k < len; k++) {
		uint8_t c2;
		struct ts_socks5_addr b2;
		size_t u2;
		enum ts_socks5_parse part = ts_socks5_parse_reply(r, k, &c2, &b2, &u2);
		if (whole == TS_SOCKS5_BAD)
			CHECK(part != TS_SOCKS5_DONE);
		else if (k < *used)
			CHECK_EQ_INT(part, TS_SOCKS5_NEED_MORE);
	}
	return whole;
}

static void test_replies(void)
{
	uint8_t code;
	struct ts_socks5_addr bound;
	size_t used;
	static const uint8_t ok4[] = {5, 0, 0, 1, 127, 0, 0, 1, 0x23, 0x82, 0xee};
	CHECK_EQ_INT(parse_all_splits(ok4, sizeof(ok4), &code, &bound, &used), TS_SOCKS5_DONE);
	CHECK_EQ_INT(used, 10); /* the byte after it is the stream's */
	CHECK_EQ_INT(code, TS_SOCKS5_SUCCEEDED);
	CHECK_EQ_INT(bound.family, 4);
	CHECK_EQ_INT(bound.port, 9090);
	static const uint8_t refused6[] = {5, 5, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0,
	                                   0, 0, 0, 0, 0,    0, 0,   0,    1, 0, 80};
	CHECK_EQ_INT(parse_all_splits(refused6, sizeof(refused6), &code, &bound, &used),
	             TS_SOCKS5_DONE);
	CHECK_EQ_INT(code, TS_SOCKS5_REFUSED);
	CHECK_EQ_INT(bound.family, 6);
	static const uint8_t name[] = {5, 0, 0, 3, 4, 'a', '.', 'b', 'c', 0, 0};
	CHECK_EQ_INT(parse_all_splits(name, sizeof(name), &code, &bound, &used), TS_SOCKS5_DONE);
	CHECK_EQ_STR(bound.name, "a.bc");
	static const uint8_t bad_version[] = {4, 0, 0, 1, 1, 2, 3, 4, 0, 0};
	CHECK_EQ_INT(ts_socks5_parse_reply(bad_version, 1, &code, &bound, &used), TS_SOCKS5_BAD);
	static const uint8_t bad_rsv[] = {5, 0, 7, 1, 1, 2, 3, 4, 0, 0};
	CHECK_EQ_INT(ts_socks5_parse_reply(bad_rsv, 3, &code, &bound, &used), TS_SOCKS5_BAD);
	static const uint8_t bad_atyp[] = {5, 0, 0, 9};
	CHECK_EQ_INT(ts_socks5_parse_reply(bad_atyp, 4, &code, &bound, &used), TS_SOCKS5_BAD);
	/* Tor's failed RESOLVE: address type 0, six zero bytes; a success
	 * without an address is not a reply */
	static const uint8_t no_addr[] = {5, 4, 0, 0, 0, 0, 0, 0, 0, 0};
	CHECK_EQ_INT(ts_socks5_parse_reply(no_addr, 9, &code, &bound, &used), TS_SOCKS5_NEED_MORE);
	CHECK_EQ_INT(ts_socks5_parse_reply(no_addr, 10, &code, &bound, &used), TS_SOCKS5_DONE);
	CHECK_EQ_INT(code, 4);
	CHECK_EQ_INT(used, 10);
	CHECK_EQ_INT(bound.family, 0);
	static const uint8_t ok_no_addr[] = {5, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	CHECK_EQ_INT(ts_socks5_parse_reply(ok_no_addr, 10, &code, &bound, &used), TS_SOCKS5_BAD);
	static const uint8_t nul_name[] = {5, 0, 0, 3, 2, 'a', 0, 0, 80};
	CHECK_EQ_INT(ts_socks5_parse_reply(nul_name, sizeof(nul_name), &code, &bound, &used),
	             TS_SOCKS5_BAD);
	static const uint8_t empty_name[] = {5, 0, 0, 3, 0, 0, 80};
	CHECK_EQ_INT(ts_socks5_parse_reply(empty_name, sizeof(empty_name), &code, &bound, &used),
	             TS_SOCKS5_BAD);
	/* a 255-byte name fills the buffer and stays terminated */
	uint8_t max[4 + 1 + 255 + 2];
	memcpy(max, "\x05\x00\x00\x03\xff", 5);
	memset(max + 5, 'n', 255);
	max[260] = 0, max[261] = 80;
	CHECK_EQ_INT(ts_socks5_parse_reply(max, sizeof(max), &code, &bound, &used), TS_SOCKS5_DONE);
	CHECK_EQ_INT(strlen(bound.name), 255);

	uint8_t method;
	bool ok;
	CHECK_EQ_INT(ts_socks5_parse_method((const uint8_t *)"\x05\x02", 2, &method, &used),
	             TS_SOCKS5_DONE);
	CHECK_EQ_INT(method, 2);
	CHECK_EQ_INT(ts_socks5_parse_method((const uint8_t *)"\x05\x01", 2, &method, &used),
	             TS_SOCKS5_BAD); /* GSSAPI: not offered */
	CHECK_EQ_INT(ts_socks5_parse_method((const uint8_t *)"\x05", 1, &method, &used),
	             TS_SOCKS5_NEED_MORE);
	CHECK_EQ_INT(ts_socks5_parse_auth((const uint8_t *)"\x01\x00", 2, &ok, &used),
	             TS_SOCKS5_DONE);
	CHECK(ok);
	CHECK_EQ_INT(ts_socks5_parse_auth((const uint8_t *)"\x01\x01", 2, &ok, &used),
	             TS_SOCKS5_DONE);
	CHECK(!ok);
	CHECK_EQ_INT(ts_socks5_parse_auth((const uint8_t *)"\x05\x00", 2, &ok, &used),
	             TS_SOCKS5_BAD);
}

static void test_reject_kinds(void)
{
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_REFUSED), TS_REJECT_TCP_RESET);
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_NET_UNREACHABLE), TS_REJECT_NET_UNREACHABLE);
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_HOST_UNREACHABLE), TS_REJECT_HOST_UNREACHABLE);
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_TTL_EXPIRED), TS_REJECT_HOST_UNREACHABLE);
	for (int c = TS_SOCKS5_ONION_DESC_NOT_FOUND; c <= TS_SOCKS5_ONION_INTRO_TIMEOUT; c++)
		CHECK_EQ_INT(ts_socks5_reject_kind((uint8_t)c), TS_REJECT_HOST_UNREACHABLE);
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_GENERAL_FAILURE), TS_REJECT_TCP_RESET);
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_NOT_ALLOWED), TS_REJECT_ADMIN_PROHIBITED);
	CHECK_EQ_INT(ts_socks5_reject_kind(TS_SOCKS5_CMD_UNSUPPORTED), TS_REJECT_ADMIN_PROHIBITED);
	char buf[32];
	CHECK_EQ_STR(ts_socks5_reply_text(0xf6, buf), "invalid onion service address");
	CHECK_EQ_STR(ts_socks5_reply_text(0x42, buf), "unknown reply 0x42");
}

int main(void)
{
	RUN(test_writers);
	RUN(test_replies);
	RUN(test_reject_kinds);
	return check_exit_code();
}
