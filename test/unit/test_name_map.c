/*
 * The name map: a virtual address per name, stable while in use, inside
 * the range and never one already taken; names found back from virtual and
 * noted real addresses; expiry; the oldest forgotten when full; a range
 * smaller than the capacity never hangs the search for a free address.
 */
#include "check.h"
#include "torsieve/name_map.h"

#define SEC 1000000LL

static struct ts_name_map *map_of(uint32_t capacity, uint8_t v4_prefix)
{
	struct ts_name_map_config cfg = {
	        .v4_net = {10, 192, 0, 0},
	        .v4_prefix = v4_prefix,
	        .v6_net = {0xfd, 0x74, 0x6f, 0x72},
	        .v6_prefix = 32,
	        .capacity = capacity,
	        .idle_sec = 60,
	};
	if (v4_prefix > 10)
		cfg.v4_net[1] = 192, cfg.v4_net[2] = 0;
	return ts_name_map_new(&cfg);
}

static void test_virtual(void)
{
	struct ts_name_map *m = map_of(100, 10);
	CHECK(m != NULL);
	uint8_t a[16], b[16], c[16], six[16];
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(ts_name_map_virtual(m, "abc.onion", 4, 0, a));
	CHECK(ts_name_map_virtual(m, "def.onion", 4, 0, b));
	CHECK(ts_name_map_virtual(m, "abc.onion", 4, 10 * SEC, c));
	CHECK(memcmp(a, c, 16) == 0); /* stable */
	CHECK(memcmp(a, b, 16) != 0);
	CHECK(a[0] == 10 && (a[1] & 0xc0) == 0xc0);
	CHECK(ts_name_map_is_virtual(m, 4, a));
	uint8_t outside[16] = {10, 0, 0, 1};
	CHECK(!ts_name_map_is_virtual(m, 4, outside));
	CHECK(ts_name_map_virtual(m, "abc.onion", 6, 0, six));
	CHECK(six[0] == 0xfd && six[1] == 0x74 && ts_name_map_is_virtual(m, 6, six));
	CHECK(ts_name_map_name(m, 4, b, SEC, name));
	CHECK_EQ_STR(name, "def.onion");
	CHECK(ts_name_map_name(m, 6, six, SEC, name));
	CHECK_EQ_STR(name, "abc.onion");
	CHECK(!ts_name_map_virtual(m, "", 4, 0, a));
	/* unused for idle_sec: gone; used meanwhile: kept */
	CHECK(ts_name_map_name(m, 4, c, 69 * SEC, name));  /* abc, used at 10 s */
	CHECK(!ts_name_map_name(m, 4, b, 69 * SEC, name)); /* def, last at 1 s */
	struct ts_name_map_stats st;
	ts_name_map_get_stats(m, &st);
	CHECK_EQ_INT(st.virtual_made, 3);
	CHECK_EQ_INT(st.expired, 1);
	CHECK_EQ_INT(st.virtual_now, 2);
	ts_name_map_free(m);
}

static void test_real(void)
{
	struct ts_name_map *m = map_of(100, 10);
	uint8_t addr[16] = {203, 0, 113, 80};
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(!ts_name_map_name(m, 4, addr, 0, name));
	ts_name_map_note(m, "www.example.test", 4, addr, 30, 0);
	CHECK(ts_name_map_name(m, 4, addr, 29 * SEC, name));
	CHECK_EQ_STR(name, "www.example.test");
	/* the latest name for an address wins */
	ts_name_map_note(m, "example.test", 4, addr, 30, 0);
	CHECK(ts_name_map_name(m, 4, addr, 1, name));
	CHECK_EQ_STR(name, "example.test");
	CHECK(!ts_name_map_name(m, 4, addr, 31 * SEC, name)); /* its TTL */
	/* a virtual address is never taken as a real one */
	uint8_t v[16];
	CHECK(ts_name_map_virtual(m, "x.onion", 4, 0, v));
	ts_name_map_note(m, "evil.example", 4, v, 30, 0);
	CHECK(ts_name_map_name(m, 4, v, 1, name));
	CHECK_EQ_STR(name, "x.onion");
	ts_name_map_free(m);
}

static void test_full(void)
{
	struct ts_name_map *m = map_of(3, 10);
	uint8_t a[16], b[16], c[16], d[16];
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(ts_name_map_virtual(m, "a.onion", 4, 0, a));
	CHECK(ts_name_map_virtual(m, "b.onion", 4, 1, b));
	CHECK(ts_name_map_virtual(m, "c.onion", 4, 2, c));
	CHECK(ts_name_map_name(m, 4, a, 3, name)); /* a used: b is the oldest */
	CHECK(ts_name_map_virtual(m, "d.onion", 4, 4, d));
	CHECK(!ts_name_map_name(m, 4, b, 5, name));
	CHECK(ts_name_map_name(m, 4, a, 5, name));
	struct ts_name_map_stats st;
	ts_name_map_get_stats(m, &st);
	CHECK_EQ_INT(st.evicted, 1);
	ts_name_map_free(m);

	/* a /30 has two usable addresses: the capacity yields to it, and
	 * making many names goes round without ever hanging */
	m = map_of(100, 30);
	uint8_t seen[2][16];
	for (int i = 0; i < 50; i++) {
		char n[16];
		snprintf(n, sizeof(n), "n%d.onion", i);
		uint8_t x[16];
		CHECK(ts_name_map_virtual(m, n, 4, i, x));
		CHECK(x[3] == 1 || x[3] == 2);
		memcpy(seen[i % 2], x, 16);
	}
	CHECK(memcmp(seen[0], seen[1], 16) != 0);
	ts_name_map_free(m);
}

int main(void)
{
	RUN(test_virtual);
	RUN(test_real);
	RUN(test_full);
	return check_exit_code();
}
