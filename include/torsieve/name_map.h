/*
 * Names for addresses, so the relay can ask Tor for a name instead of an
 * address (the exit resolves it, and .onion names work at all):
 *
 * - virtual addresses: a name under .onion (and, with `set dns-automap on`,
 *   every name) is answered with an address from a private range the map
 *   owns (`set dns-virtual`), the same one while the name is in use;
 * - real addresses: an address Tor resolved for a name is remembered for
 *   the answer's TTL, so a connection to it goes to Tor by that name.
 *
 * Fixed capacity (`set dns-map`), allocated once; a full map forgets the
 * entry used longest ago. A virtual entry lives `dns-map-idle` seconds
 * after its last use; a real one until its TTL. Nothing here allocates
 * after ts_name_map_new.
 */
#ifndef TORSIEVE_NAME_MAP_H
#define TORSIEVE_NAME_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsieve/dns.h"

struct ts_name_map_config {
	uint8_t v4_net[4];
	uint8_t v4_prefix; /* 8 to 30 */
	uint8_t v6_net[16];
	uint8_t v6_prefix; /* 8 to 120 */
	uint32_t capacity;
	uint32_t idle_sec; /* a virtual address unused this long is forgotten */
	uint32_t seed;     /* for the hashes: clients choose the names */
};

/* Whose entry: every entry belongs to the client (address) whose lookup
 * made it, and only that client's connections use it. So one client's
 * lookups never decide where another's connections go, and no client
 * learns another's names (PTR of a virtual address answers its owner). */
struct ts_name_client {
	uint8_t family; /* 4 or 6: addr is an address; TS_NAME_CLIENT_MAC: a MAC */
	uint8_t addr[16];
};

#define TS_NAME_CLIENT_MAC 2

struct ts_name_map;

/*
 * A client is its MAC when the map has seen one for its address (from the
 * packets the queue hands over: ts_name_map_learn), else its address. So a
 * dual-stack client that looks a name up over IPv6 and connects over IPv4
 * is one client, and a DNS query (a datagram, no MAC) and a connection
 * (whose SYN carried the MAC) agree on whose they are.
 */
void ts_name_map_learn(struct ts_name_map *m, int family, const uint8_t addr[16],
                       const uint8_t mac[6]);
void ts_name_map_client(const struct ts_name_map *m, int family, const uint8_t addr[16],
                        struct ts_name_client *out);

struct ts_name_map_stats {
	uint32_t virtual_now, real_now;
	uint64_t virtual_made, evicted, expired;
	uint64_t virtual_full; /* no room: every entry a live virtual address */
};

struct ts_name_map;

/* NULL without memory. The capacity shrinks to fit a virtual range
 * smaller than it (ts_name_map_capacity says what it became). */
struct ts_name_map *ts_name_map_new(const struct ts_name_map_config *cfg);
void ts_name_map_free(struct ts_name_map *m);
uint32_t ts_name_map_capacity(const struct ts_name_map *m);

/* The virtual address of name (family 4 or 6) for client c into addr (16
 * bytes, IPv4 in the first 4), made when it has none. A virtual address is
 * never given to two entries at once, and an entry is never forgotten
 * while used within idle_sec (resolved ones go first). False when name is
 * empty or too long, or the map is full of live virtual addresses. */
bool ts_name_map_virtual(struct ts_name_map *m, const struct ts_name_client *c, const char *name,
                         int family, int64_t now_usec, uint8_t addr[16]);

/* Whether addr is in the virtual range of its family. */
bool ts_name_map_is_virtual(const struct ts_name_map *m, int family, const uint8_t addr[16]);

/* name resolved (through Tor) to addr for client c, for ttl seconds. */
void ts_name_map_note(struct ts_name_map *m, const struct ts_name_client *c, const char *name,
                      int family, const uint8_t addr[16], uint32_t ttl, int64_t now_usec);

/* The name client c's entry gives addr (a virtual one's, or the name c
 * resolved to it), copied into name; false when c has none (or it
 * expired). A virtual entry's use is renewed. */
bool ts_name_map_name(struct ts_name_map *m, const struct ts_name_client *c, int family,
                      const uint8_t addr[16], int64_t now_usec, char name[TS_DNS_NAME_MAX + 1]);

void ts_name_map_get_stats(const struct ts_name_map *m, struct ts_name_map_stats *out);

#endif
