/*
 * Choosing a Tor instance: a client key always lands on the same instance,
 * keys spread over all of them, an instance left out moves only its own
 * clients (rendezvous hashing); when all are left out the one back soonest
 * is still tried, and once each was tried there is none.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "check.h"
#include "torsieve/tor_pool.h"

#define KEYS 3000

static void pool_of(struct ts_tor_pool *p, int n)
{
	struct ts_relay_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tor_count = (uint8_t)n;
	for (int i = 0; i < n; i++)
		cfg.tor[i] = (struct ts_tor_endpoint){
		        .family = 4, .addr = {127, 0, 0, 1}, .port = (uint16_t)(9050 + 10 * i)};
	cfg.tor_retry = 5;
	ts_tor_pool_init(p, &cfg);
}

static void key_of(int k, uint8_t key[6])
{
	/* MACs of a hotspot's clients: they differ in the last bytes */
	key[0] = 0x02;
	key[1] = 0x00;
	key[2] = 0xc0;
	key[3] = (uint8_t)(k >> 16);
	key[4] = (uint8_t)(k >> 8);
	key[5] = (uint8_t)k;
}

static void test_stable_and_spread(void)
{
	struct ts_tor_pool p;
	pool_of(&p, 3);
	int count[3] = {0};
	for (int k = 0; k < KEYS; k++) {
		uint8_t key[6];
		key_of(k, key);
		int i = ts_tor_pool_pick(&p, key, sizeof(key), 0, 0);
		CHECK(i >= 0 && i < 3);
		CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), 123456789, 0), i);
		count[i]++;
	}
	for (int i = 0; i < 3; i++)
		CHECK(count[i] > KEYS / 3 - KEYS / 10 && count[i] < KEYS / 3 + KEYS / 10);
}

static void test_failover_moves_only_its_clients(void)
{
	struct ts_tor_pool p;
	pool_of(&p, 3);
	int before[KEYS];
	for (int k = 0; k < KEYS; k++) {
		uint8_t key[6];
		key_of(k, key);
		before[k] = ts_tor_pool_pick(&p, key, sizeof(key), 0, 0);
	}
	int64_t now = 1000000000;
	ts_tor_pool_failed(&p, 1, now);
	CHECK_EQ_INT(p.st[1].failures, 1);
	int moved_to[3] = {0};
	for (int k = 0; k < KEYS; k++) {
		uint8_t key[6];
		key_of(k, key);
		int i = ts_tor_pool_pick(&p, key, sizeof(key), now + 1, 0);
		CHECK(i == 0 || i == 2);
		if (before[k] != 1)
			CHECK_EQ_INT(i, before[k]);
		else
			moved_to[i]++;
		/* the request's own tried mask leaves out more */
		int j = ts_tor_pool_pick(&p, key, sizeof(key), now + 1, 1u << i);
		CHECK_EQ_INT(j, i == 0 ? 2 : 0);
		/* with 0 and 2 tried, the one left out is tried after all */
		CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), now + 1, 5u), 1);
		CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), now + 1, 7u), -1);
	}
	/* the ones that moved spread over both others */
	CHECK(moved_to[0] > 0 && moved_to[2] > 0);
	/* after tor-retry seconds the instance is tried again */
	uint8_t key[6];
	for (int k = 0; k < KEYS; k++) {
		key_of(k, key);
		if (before[k] == 1) {
			CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), now + 4999999, 0) != 1,
			             1);
			CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), now + 5000000, 0), 1);
			break;
		}
	}
	/* an answer brings it back at once */
	ts_tor_pool_failed(&p, 1, now);
	ts_tor_pool_answered(&p, 1);
	CHECK_EQ_INT(p.st[1].down_until, 0);
	CHECK_EQ_INT(p.st[1].streams, 1);
}

static void test_none_left(void)
{
	struct ts_tor_pool p;
	pool_of(&p, 2);
	uint8_t key[6];
	key_of(7, key);
	ts_tor_pool_failed(&p, 1, 10);
	ts_tor_pool_failed(&p, 0, 20);
	/* all left out: the one back soonest, then the other, then none */
	CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), 21, 0), 1);
	CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), 21, 2u), 0);
	CHECK_EQ_INT(ts_tor_pool_pick(&p, key, sizeof(key), 21, 3u), -1);
	/* out-of-range indexes are ignored, not written */
	ts_tor_pool_failed(&p, 2, 10);
	ts_tor_pool_failed(&p, -1, 10);
	ts_tor_pool_answered(&p, 8);
	struct ts_tor_pool empty;
	pool_of(&empty, 0);
	CHECK_EQ_INT(ts_tor_pool_pick(&empty, key, sizeof(key), 0, 0), -1);
}

static void test_endpoint_text(void)
{
	char buf[64];
	struct ts_tor_endpoint v4 = {.family = 4, .addr = {127, 0, 0, 1}, .port = 9050};
	ts_tor_endpoint_text(&v4, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "127.0.0.1:9050");
	struct ts_tor_endpoint v6 = {.family = 6, .addr = {[15] = 1}, .port = 9060};
	ts_tor_endpoint_text(&v6, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "[::1]:9060");
	struct sockaddr_storage ss;
	CHECK_EQ_INT(ts_tor_endpoint_sockaddr(&v4, &ss), sizeof(struct sockaddr_in));
	CHECK_EQ_INT(ss.ss_family, AF_INET);
	CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9050);
	CHECK_EQ_INT(ts_tor_endpoint_sockaddr(&v6, &ss), sizeof(struct sockaddr_in6));
	CHECK_EQ_INT(((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[15], 1);
}

int main(void)
{
	RUN(test_stable_and_spread);
	RUN(test_failover_moves_only_its_clients);
	RUN(test_none_left);
	RUN(test_endpoint_text);
	return check_exit_code();
}
