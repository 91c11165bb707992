/* Names for addresses, per client: virtual ones and resolved ones (name_map.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/lru.h"
#include "torsieve/name_map.h"

struct entry {
	struct entry *by_name;  /* virtual: (client, family, name) chain; also the free list */
	struct entry *by_addr;  /* (client, family, addr) chain */
	struct entry *by_vaddr; /* virtual: (family, addr) chain, for uniqueness */
	struct ts_lru_node use; /* in used[is_virtual] */
	bool is_virtual;
	uint8_t family;
	uint8_t addr[16];
	struct ts_name_client client;
	int64_t expires;
	char name[TS_DNS_NAME_MAX + 1];
};

/* An address's MAC, as last seen: a cache, overwritten freely. */
struct neighbour {
	uint8_t family;
	uint8_t addr[16];
	uint8_t mac[6];
};

#define NEIGHBOUR_PROBES 8

struct ts_name_map {
	struct ts_name_map_config cfg;
	struct entry *entries, *free_list;
	struct entry **name_hash, **addr_hash, **vaddr_hash;
	struct neighbour *neighbours; /* mask + 1 of them */
	uint32_t mask;
	struct ts_lru used[2]; /* [is_virtual], oldest first */
	uint64_t next_host[2]; /* the next virtual host number to try, per family */
	struct ts_name_map_stats st;
};

static uint32_t mix(uint32_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t finish(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	return h;
}

static uint32_t name_slot(const struct ts_name_map *m, const struct ts_name_client *c,
                          const char *name, int family)
{
	uint32_t h = mix(2166136261u ^ m->cfg.seed ^ (uint32_t)family, c, sizeof(*c));
	return finish(mix(h, name, strlen(name))) & m->mask;
}

static uint32_t addr_slot(const struct ts_name_map *m, const struct ts_name_client *c, int family,
                          const uint8_t *addr)
{
	uint32_t h = mix(2166136261u ^ m->cfg.seed ^ (uint32_t)family, c, sizeof(*c));
	return finish(mix(h, addr, 16)) & m->mask;
}

static uint32_t vaddr_slot(const struct ts_name_map *m, int family, const uint8_t *addr)
{
	return finish(mix(2166136261u ^ m->cfg.seed ^ (uint32_t)family, addr, 16)) & m->mask;
}

static bool same_client(const struct ts_name_client *a, const struct ts_name_client *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, 16);
}

struct ts_name_map *ts_name_map_new(const struct ts_name_map_config *cfg)
{
	struct ts_name_map *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = *cfg;
	/* Each range must have a free address for every entry, or finding
	 * one could go round for ever: the capacity yields to the smaller
	 * range (less its network and broadcast numbers). */
	for (int f = 0; f < 2; f++) {
		unsigned bits = f ? 128u - cfg->v6_prefix : 32u - cfg->v4_prefix;
		if (bits < 32 && (1ull << bits) - 2 <= m->cfg.capacity)
			m->cfg.capacity = bits >= 2 ? (uint32_t)((1ull << bits) - 3) : 0;
	}
	uint32_t buckets = 16;
	while (buckets < m->cfg.capacity * 2 && buckets < (1u << 30))
		buckets <<= 1;
	m->mask = buckets - 1;
	m->entries = calloc(m->cfg.capacity ? m->cfg.capacity : 1, sizeof(*m->entries));
	m->name_hash = calloc(buckets, sizeof(*m->name_hash));
	m->addr_hash = calloc(buckets, sizeof(*m->addr_hash));
	m->vaddr_hash = calloc(buckets, sizeof(*m->vaddr_hash));
	m->neighbours = calloc(buckets, sizeof(*m->neighbours));
	if (!m->entries || !m->name_hash || !m->addr_hash || !m->vaddr_hash || !m->neighbours) {
		ts_name_map_free(m);
		return NULL;
	}
	for (uint32_t i = m->cfg.capacity; i-- > 0;) {
		m->entries[i].by_name = m->free_list;
		m->free_list = &m->entries[i];
	}
	m->next_host[0] = m->next_host[1] = 1;
	return m;
}

void ts_name_map_free(struct ts_name_map *m)
{
	if (!m)
		return;
	free(m->entries);
	free(m->name_hash);
	free(m->addr_hash);
	free(m->vaddr_hash);
	free(m->neighbours);
	free(m);
}

uint32_t ts_name_map_capacity(const struct ts_name_map *m)
{
	return m->cfg.capacity;
}

static void unlink_use(struct ts_name_map *m, struct entry *e)
{
	ts_lru_unlink(&m->used[e->is_virtual], &e->use);
}

static void link_newest(struct ts_name_map *m, struct entry *e)
{
	ts_lru_push(&m->used[e->is_virtual], &e->use);
}

static struct entry *oldest(const struct ts_name_map *m, bool is_virtual)
{
	const struct ts_lru_node *n = m->used[is_virtual].oldest;
	return n ? TS_LRU_ENTRY(n, struct entry, use) : NULL;
}

static void unchain(struct entry **pp, struct entry *e, size_t link_offset)
{
	while (*pp && *pp != e)
		pp = (struct entry **)((char *)*pp + link_offset);
	if (*pp)
		*pp = *(struct entry **)((char *)e + link_offset);
}

static void remove_entry(struct ts_name_map *m, struct entry *e, bool expired)
{
	unchain(&m->addr_hash[addr_slot(m, &e->client, e->family, e->addr)], e,
	        offsetof(struct entry, by_addr));
	if (e->is_virtual) {
		unchain(&m->name_hash[name_slot(m, &e->client, e->name, e->family)], e,
		        offsetof(struct entry, by_name));
		unchain(&m->vaddr_hash[vaddr_slot(m, e->family, e->addr)], e,
		        offsetof(struct entry, by_vaddr));
		m->st.virtual_now--;
	} else {
		m->st.real_now--;
	}
	if (expired)
		m->st.expired++;
	else
		m->st.evicted++;
	unlink_use(m, e);
	memset(e, 0, sizeof(*e));
	e->by_name = m->free_list;
	m->free_list = e;
}

/* A free entry for a new one of kind is_virtual, or NULL. Virtual entries
 * are forgotten only once unused for idle_sec; resolved ones are hints and
 * give way first. */
static struct entry *take_entry(struct ts_name_map *m, bool is_virtual, int64_t now)
{
	if (!m->free_list) {
		struct entry *v = oldest(m, true), *r = oldest(m, false);
		if (v && v->expires <= now)
			remove_entry(m, v, true);
		else if (r && r->expires <= now)
			remove_entry(m, r, true);
		else if (r)
			remove_entry(m, r, false);
		else if (is_virtual)
			m->st.virtual_full++;
	}
	struct entry *e = m->free_list;
	if (e) {
		m->free_list = e->by_name;
		memset(e, 0, sizeof(*e));
	}
	return e;
}

static struct entry *find_addr(const struct ts_name_map *m, const struct ts_name_client *c,
                               int family, const uint8_t *addr)
{
	for (struct entry *e = m->addr_hash[addr_slot(m, c, family, addr)]; e; e = e->by_addr)
		if (e->family == family && !memcmp(e->addr, addr, 16) && same_client(&e->client, c))
			return e;
	return NULL;
}

static bool virtual_taken(const struct ts_name_map *m, int family, const uint8_t *addr)
{
	for (struct entry *e = m->vaddr_hash[vaddr_slot(m, family, addr)]; e; e = e->by_vaddr)
		if (e->family == family && !memcmp(e->addr, addr, 16))
			return true;
	return false;
}

static void add_addr(struct ts_name_map *m, struct entry *e)
{
	struct entry **pp = &m->addr_hash[addr_slot(m, &e->client, e->family, e->addr)];
	e->by_addr = *pp;
	*pp = e;
}

static struct neighbour *neighbour_slot(const struct ts_name_map *m, int family,
                                        const uint8_t *addr, bool *found)
{
	uint32_t h = vaddr_slot(m, family + 16, addr);
	struct neighbour *empty = NULL;
	for (uint32_t i = 0; i < NEIGHBOUR_PROBES; i++) {
		struct neighbour *n = &m->neighbours[(h + i) & m->mask];
		if (n->family == family && !memcmp(n->addr, addr, 16)) {
			*found = true;
			return n;
		}
		if (!n->family && !empty)
			empty = n;
	}
	*found = false;
	/* no room near: the first probe's is overwritten (a cache) */
	return empty ? empty : &m->neighbours[h & m->mask];
}

void ts_name_map_learn(struct ts_name_map *m, int family, const uint8_t addr[16],
                       const uint8_t mac[6])
{
	bool found;
	struct neighbour *n = neighbour_slot(m, family, addr, &found);
	if (found && !memcmp(n->mac, mac, 6))
		return;
	n->family = (uint8_t)family;
	memcpy(n->addr, addr, 16);
	memcpy(n->mac, mac, 6);
}

void ts_name_map_client(const struct ts_name_map *m, int family, const uint8_t addr[16],
                        struct ts_name_client *out)
{
	memset(out, 0, sizeof(*out));
	bool found;
	const struct neighbour *n = neighbour_slot(m, family, addr, &found);
	if (found) {
		out->family = TS_NAME_CLIENT_MAC;
		memcpy(out->addr, n->mac, 6);
	} else {
		out->family = (uint8_t)family;
		memcpy(out->addr, addr, 16);
	}
}

bool ts_name_map_is_virtual(const struct ts_name_map *m, int family, const uint8_t addr[16])
{
	const uint8_t *net = family == 6 ? m->cfg.v6_net : m->cfg.v4_net;
	unsigned prefix = family == 6 ? m->cfg.v6_prefix : m->cfg.v4_prefix;
	for (unsigned bit = 0; bit < prefix; bit++) {
		uint8_t mask = (uint8_t)(0x80u >> (bit % 8));
		if ((addr[bit / 8] & mask) != (net[bit / 8] & mask))
			return false;
	}
	return true;
}

/* The address of host number h in the family's range. */
static void host_addr(const struct ts_name_map *m, int family, uint64_t h, uint8_t addr[16])
{
	memset(addr, 0, 16);
	unsigned len = family == 6 ? 16 : 4;
	memcpy(addr, family == 6 ? m->cfg.v6_net : m->cfg.v4_net, len);
	for (unsigned i = 0; i < 8 && i < len; i++)
		addr[len - 1 - i] |= (uint8_t)(h >> (8 * i));
}

bool ts_name_map_virtual(struct ts_name_map *m, const struct ts_name_client *c, const char *name,
                         int family, int64_t now, uint8_t addr[16])
{
	size_t len = strlen(name);
	if (!len || len > TS_DNS_NAME_MAX || !m->cfg.capacity)
		return false;
	int64_t idle = (int64_t)m->cfg.idle_sec * 1000000;
	for (struct entry *e = m->name_hash[name_slot(m, c, name, family)]; e; e = e->by_name)
		if (e->is_virtual && e->family == family && same_client(&e->client, c) &&
		    !strcmp(e->name, name)) {
			e->expires = now + idle;
			unlink_use(m, e);
			link_newest(m, e);
			memcpy(addr, e->addr, 16);
			return true;
		}
	struct entry *e = take_entry(m, true, now);
	if (!e)
		return false;
	/* The next free host number; 0 and all ones are left alone (network
	 * and broadcast, for IPv4 ranges people may route whole). Numbers go
	 * round the whole range before one is used again. */
	unsigned bits = (family == 6 ? 128u - m->cfg.v6_prefix : 32u - m->cfg.v4_prefix);
	uint64_t hosts = bits >= 63 ? (1ull << 62) : (1ull << bits);
	uint64_t *next = &m->next_host[family == 6];
	for (;;) {
		if (*next == 0 || *next >= hosts - 1)
			*next = 1;
		host_addr(m, family, (*next)++, addr);
		if (!virtual_taken(m, family, addr))
			break; /* at most capacity are taken, and the range is larger */
	}
	e->is_virtual = true;
	e->family = (uint8_t)family;
	e->client = *c;
	memcpy(e->addr, addr, 16);
	memcpy(e->name, name, len + 1);
	e->expires = now + idle;
	struct entry **pp = &m->name_hash[name_slot(m, c, name, family)];
	e->by_name = *pp;
	*pp = e;
	pp = &m->vaddr_hash[vaddr_slot(m, family, addr)];
	e->by_vaddr = *pp;
	*pp = e;
	add_addr(m, e);
	link_newest(m, e);
	m->st.virtual_now++;
	m->st.virtual_made++;
	return true;
}

void ts_name_map_note(struct ts_name_map *m, const struct ts_name_client *c, const char *name,
                      int family, const uint8_t addr[16], uint32_t ttl, int64_t now)
{
	size_t len = strlen(name);
	if (!len || len > TS_DNS_NAME_MAX || !m->cfg.capacity ||
	    ts_name_map_is_virtual(m, family, addr))
		return;
	struct entry *e = find_addr(m, c, family, addr);
	if (!e) {
		e = take_entry(m, false, now);
		if (!e)
			return; /* a hint the map has no room for: CONNECT by address */
		e->family = (uint8_t)family;
		e->client = *c;
		memcpy(e->addr, addr, 16);
		add_addr(m, e);
		m->st.real_now++;
	} else {
		unlink_use(m, e);
	}
	memcpy(e->name, name, len + 1);
	e->expires = now + (int64_t)ttl * 1000000;
	link_newest(m, e);
}

bool ts_name_map_name(struct ts_name_map *m, const struct ts_name_client *c, int family,
                      const uint8_t addr[16], int64_t now, char name[TS_DNS_NAME_MAX + 1])
{
	struct entry *e = find_addr(m, c, family, addr);
	if (!e)
		return false;
	if (e->expires <= now) {
		remove_entry(m, e, true);
		return false;
	}
	if (e->is_virtual) {
		e->expires = now + (int64_t)m->cfg.idle_sec * 1000000;
		unlink_use(m, e);
		link_newest(m, e);
	}
	memcpy(name, e->name, strlen(e->name) + 1);
	return true;
}

void ts_name_map_get_stats(const struct ts_name_map *m, struct ts_name_map_stats *out)
{
	*out = m->st;
}
