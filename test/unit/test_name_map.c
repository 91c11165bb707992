/*
 * The name map: a virtual address per (client, name), stable while in use,
 * inside the range and never one another entry has; names found back only
 * by the client that made them; a full map forgets resolved names and
 * expired entries, never a live virtual address; a range smaller than the
 * capacity never hangs the search for a free address.
 */
#include "check.h"
#include "torsieve/name_map.h"

#define SEC 1000000LL

static const struct ts_name_client c1 = {.family = 4, .addr = {192, 0, 2, 11}};
static const struct ts_name_client c2 = {.family = 4, .addr = {192, 0, 2, 12}};

static struct ts_name_map *map_of(uint32_t capacity, uint8_t v4_prefix)
{
	struct ts_name_map_config cfg = {
	        .v4_net = {10, 192, 0, 0},
	        .v4_prefix = v4_prefix,
	        .v6_net = {0xfd, 0x74, 0x6f, 0x72},
	        .v6_prefix = 32,
	        .capacity = capacity,
	        .idle_sec = 60,
	        .seed = 12345,
	};
	return ts_name_map_new(&cfg);
}

static void test_virtual(void)
{
	struct ts_name_map *m = map_of(100, 10);
	CHECK(m != NULL);
	uint8_t a[16], b[16], c[16], six[16];
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(ts_name_map_virtual(m, &c1, "abc.onion", 4, 0, a));
	CHECK(ts_name_map_virtual(m, &c1, "def.onion", 4, 0, b));
	CHECK(ts_name_map_virtual(m, &c1, "abc.onion", 4, 10 * SEC, c));
	CHECK(memcmp(a, c, 16) == 0); /* stable */
	CHECK(memcmp(a, b, 16) != 0);
	CHECK(a[0] == 10 && (a[1] & 0xc0) == 0xc0);
	CHECK(ts_name_map_is_virtual(m, 4, a));
	uint8_t outside[16] = {10, 0, 0, 1};
	CHECK(!ts_name_map_is_virtual(m, 4, outside));
	CHECK(ts_name_map_virtual(m, &c1, "abc.onion", 6, 0, six));
	CHECK(six[0] == 0xfd && six[1] == 0x74 && ts_name_map_is_virtual(m, 6, six));
	CHECK(ts_name_map_name(m, &c1, 4, b, SEC, name));
	CHECK_EQ_STR(name, "def.onion");
	CHECK(ts_name_map_name(m, &c1, 6, six, SEC, name));
	CHECK_EQ_STR(name, "abc.onion");
	CHECK(!ts_name_map_virtual(m, &c1, "", 4, 0, a));
	/* unused for idle_sec: gone; used meanwhile: kept */
	CHECK(ts_name_map_name(m, &c1, 4, c, 69 * SEC, name));  /* abc, used at 10 s */
	CHECK(!ts_name_map_name(m, &c1, 4, b, 69 * SEC, name)); /* def, last at 1 s */
	struct ts_name_map_stats st;
	ts_name_map_get_stats(m, &st);
	CHECK_EQ_INT(st.virtual_made, 3);
	CHECK_EQ_INT(st.expired, 1);
	CHECK_EQ_INT(st.virtual_now, 2);
	ts_name_map_free(m);
}

static void test_clients_apart(void)
{
	struct ts_name_map *m = map_of(100, 10);
	uint8_t v1[16], v2[16];
	char name[TS_DNS_NAME_MAX + 1];
	/* the same name: an address each, never shared */
	CHECK(ts_name_map_virtual(m, &c1, "bank.onion", 4, 0, v1));
	CHECK(ts_name_map_virtual(m, &c2, "bank.onion", 4, 0, v2));
	CHECK(memcmp(v1, v2, 16) != 0);
	/* another client's virtual address means nothing to a client (no
	 * name: no connection, no PTR) */
	CHECK(!ts_name_map_name(m, &c2, 4, v1, 1, name));
	/* a name c2 resolved for an address does not change where c1's
	 * connections to it go */
	uint8_t bank[16] = {203, 0, 113, 80};
	ts_name_map_note(m, &c1, "www.bank.test", 4, bank, 300, 0);
	ts_name_map_note(m, &c2, "evil.example", 4, bank, 300, 1);
	CHECK(ts_name_map_name(m, &c1, 4, bank, 2, name));
	CHECK_EQ_STR(name, "www.bank.test");
	CHECK(ts_name_map_name(m, &c2, 4, bank, 2, name));
	CHECK_EQ_STR(name, "evil.example");
	ts_name_map_free(m);
}

static void test_real(void)
{
	struct ts_name_map *m = map_of(100, 10);
	uint8_t addr[16] = {203, 0, 113, 80};
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(!ts_name_map_name(m, &c1, 4, addr, 0, name));
	ts_name_map_note(m, &c1, "www.example.test", 4, addr, 30, 0);
	CHECK(ts_name_map_name(m, &c1, 4, addr, 29 * SEC, name));
	CHECK_EQ_STR(name, "www.example.test");
	/* the client's latest name for an address wins */
	ts_name_map_note(m, &c1, "example.test", 4, addr, 30, 0);
	CHECK(ts_name_map_name(m, &c1, 4, addr, 1, name));
	CHECK_EQ_STR(name, "example.test");
	CHECK(!ts_name_map_name(m, &c1, 4, addr, 31 * SEC, name)); /* its TTL */
	/* a virtual address is never taken as a resolved one */
	uint8_t v[16];
	CHECK(ts_name_map_virtual(m, &c1, "x.onion", 4, 0, v));
	ts_name_map_note(m, &c1, "evil.example", 4, v, 30, 0);
	CHECK(ts_name_map_name(m, &c1, 4, v, 1, name));
	CHECK_EQ_STR(name, "x.onion");
	ts_name_map_free(m);
}

static void test_full(void)
{
	struct ts_name_map *m = map_of(3, 10);
	uint8_t a[16], b[16], c[16], d[16];
	uint8_t r1[16] = {203, 0, 113, 1};
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(ts_name_map_virtual(m, &c1, "a.onion", 4, 0, a));
	ts_name_map_note(m, &c1, "r1.test", 4, r1, 300, 1);
	CHECK(ts_name_map_virtual(m, &c1, "b.onion", 4, 2, b));
	/* full: a resolved name gives way to a virtual address */
	CHECK(ts_name_map_virtual(m, &c1, "c.onion", 4, 3, c));
	CHECK(!ts_name_map_name(m, &c1, 4, r1, 4, name));
	/* full of live virtual addresses: none is forgotten early, the new
	 * name gets none, and resolved names are not kept */
	CHECK(!ts_name_map_virtual(m, &c2, "d.onion", 4, 5, d));
	ts_name_map_note(m, &c2, "r2.test", 4, r1, 300, 5);
	CHECK(!ts_name_map_name(m, &c2, 4, r1, 6, name));
	CHECK(ts_name_map_name(m, &c1, 4, a, 6, name));
	CHECK_EQ_STR(name, "a.onion");
	struct ts_name_map_stats st;
	ts_name_map_get_stats(m, &st);
	CHECK_EQ_INT(st.virtual_full, 1);
	CHECK_EQ_INT(st.evicted, 1);
	/* once one is unused for idle_sec, it makes room */
	CHECK(ts_name_map_name(m, &c1, 4, c, 50 * SEC, name));
	CHECK(ts_name_map_name(m, &c1, 4, a, 50 * SEC, name));
	CHECK(ts_name_map_virtual(m, &c2, "d.onion", 4, 63 * SEC, d)); /* b: last used at 2 s */
	CHECK(!ts_name_map_name(m, &c1, 4, b, 63 * SEC, name));
	ts_name_map_get_stats(m, &st);
	CHECK_EQ_INT(st.expired, 1);
	ts_name_map_free(m);

	/* a /30 has two usable addresses: the capacity yields to it, and
	 * names made one after another, each after the last went unused,
	 * go round without ever hanging */
	m = map_of(100, 30);
	CHECK_EQ_INT(ts_name_map_capacity(m), 1);
	uint8_t seen[2][16];
	for (int i = 0; i < 50; i++) {
		char n[16];
		snprintf(n, sizeof(n), "n%d.onion", i);
		uint8_t x[16];
		CHECK(ts_name_map_virtual(m, &c1, n, 4, i * 61 * SEC, x));
		CHECK(x[3] == 1 || x[3] == 2);
		memcpy(seen[i % 2], x, 16);
	}
	CHECK(memcmp(seen[0], seen[1], 16) != 0);
	ts_name_map_free(m);
}

static void test_neighbours(void)
{
	struct ts_name_map *m = map_of(100, 10);
	uint8_t v4[16] = {192, 0, 2, 11}, v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 11};
	static const uint8_t mac[6] = {2, 0, 0xc0, 0, 2, 11}, other[6] = {2, 0, 0xc0, 0, 2, 99};
	struct ts_name_client a, b;
	/* unknown: the address stands for the client */
	ts_name_map_client(m, 4, v4, &a);
	CHECK_EQ_INT(a.family, 4);
	CHECK(memcmp(a.addr, v4, 16) == 0);
	/* both addresses seen with one MAC: one client */
	ts_name_map_learn(m, 4, v4, mac);
	ts_name_map_learn(m, 6, v6, mac);
	ts_name_map_client(m, 4, v4, &a);
	ts_name_map_client(m, 6, v6, &b);
	CHECK_EQ_INT(a.family, TS_NAME_CLIENT_MAC);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	uint8_t v[16];
	char name[TS_DNS_NAME_MAX + 1];
	CHECK(ts_name_map_virtual(m, &b, "x.onion", 4, 0, v));
	CHECK(ts_name_map_name(m, &a, 4, v, 1, name));
	/* the address moves to another device: a new client */
	ts_name_map_learn(m, 4, v4, other);
	ts_name_map_client(m, 4, v4, &a);
	CHECK(memcmp(a.addr, other, 6) == 0);
	CHECK(!ts_name_map_name(m, &a, 4, v, 1, name));
	/* many addresses: the table is a cache, it never fails or grows */
	for (int i = 0; i < 10000; i++) {
		uint8_t x[16] = {10, (uint8_t)(i >> 8), (uint8_t)i, 1};
		ts_name_map_learn(m, 4, x, mac);
	}
	ts_name_map_free(m);
}

int main(void)
{
	RUN(test_neighbours);
	RUN(test_virtual);
	RUN(test_clients_apart);
	RUN(test_real);
	RUN(test_full);
	return check_exit_code();
}
