/* Names for addresses: virtual ones and remembered ones (name_map.h). */
#include <stdlib.h>
#include <string.h>

#include "torsieve/name_map.h"

struct entry {
	struct entry *by_name, *by_addr; /* hash chains */
	struct entry *older, *newer;     /* use order, for eviction */
	bool is_virtual;
	uint8_t family;
	uint8_t addr[16];
	int64_t expires;
	char name[TS_DNS_NAME_MAX + 1];
};

struct ts_name_map {
	struct ts_name_map_config cfg;
	struct entry *entries, *free_list;
	struct entry **name_hash, **addr_hash;
	uint32_t mask;
	struct entry *oldest, *newest;
	uint64_t next_host[2]; /* the next virtual host number to try, per family */
	struct ts_name_map_stats st;
};

static uint32_t hash(const void *p, size_t n, uint32_t seed)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u ^ seed;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h ^ (h >> 16);
}

static uint32_t name_slot(const struct ts_name_map *m, const char *name, int family)
{
	return hash(name, strlen(name), (uint32_t)family) & m->mask;
}

static uint32_t addr_slot(const struct ts_name_map *m, int family, const uint8_t *addr)
{
	return hash(addr, 16, (uint32_t)family) & m->mask;
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
	if (!m->entries || !m->name_hash || !m->addr_hash) {
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
	free(m);
}

static void unlink_use(struct ts_name_map *m, struct entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		m->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		m->newest = e->older;
	e->older = e->newer = NULL;
}

static void link_newest(struct ts_name_map *m, struct entry *e)
{
	e->older = m->newest;
	e->newer = NULL;
	if (m->newest)
		m->newest->newer = e;
	else
		m->oldest = e;
	m->newest = e;
}

static void remove_entry(struct ts_name_map *m, struct entry *e)
{
	struct entry **pp = &m->addr_hash[addr_slot(m, e->family, e->addr)];
	while (*pp && *pp != e)
		pp = &(*pp)->by_addr;
	if (*pp)
		*pp = e->by_addr;
	if (e->is_virtual) {
		pp = &m->name_hash[name_slot(m, e->name, e->family)];
		while (*pp && *pp != e)
			pp = &(*pp)->by_name;
		if (*pp)
			*pp = e->by_name;
		m->st.virtual_now--;
	} else {
		m->st.real_now--;
	}
	unlink_use(m, e);
	memset(e, 0, sizeof(*e));
	e->by_name = m->free_list;
	m->free_list = e;
}

static struct entry *take_entry(struct ts_name_map *m, int64_t now)
{
	/* the expired first, then the one used longest ago */
	if (!m->free_list && m->oldest) {
		bool expired = m->oldest->expires <= now;
		remove_entry(m, m->oldest);
		if (expired)
			m->st.expired++;
		else
			m->st.evicted++;
	}
	struct entry *e = m->free_list;
	if (e) {
		m->free_list = e->by_name;
		memset(e, 0, sizeof(*e));
	}
	return e;
}

static struct entry *find_addr(const struct ts_name_map *m, int family, const uint8_t *addr)
{
	for (struct entry *e = m->addr_hash[addr_slot(m, family, addr)]; e; e = e->by_addr)
		if (e->family == family && !memcmp(e->addr, addr, 16))
			return e;
	return NULL;
}

static void add_addr(struct ts_name_map *m, struct entry *e)
{
	struct entry **pp = &m->addr_hash[addr_slot(m, e->family, e->addr)];
	e->by_addr = *pp;
	*pp = e;
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

bool ts_name_map_virtual(struct ts_name_map *m, const char *name, int family, int64_t now,
                         uint8_t addr[16])
{
	size_t len = strlen(name);
	if (!len || len > TS_DNS_NAME_MAX || !m->cfg.capacity)
		return false;
	int64_t idle = (int64_t)m->cfg.idle_sec * 1000000;
	for (struct entry *e = m->name_hash[name_slot(m, name, family)]; e; e = e->by_name)
		if (e->is_virtual && e->family == family && !strcmp(e->name, name)) {
			e->expires = now + idle;
			unlink_use(m, e);
			link_newest(m, e);
			memcpy(addr, e->addr, 16);
			return true;
		}
	struct entry *e = take_entry(m, now);
	if (!e)
		return false;
	/* The next free host number; 0 and all ones are left alone (network
	 * and broadcast, for IPv4 ranges people may route whole). */
	unsigned bits = (family == 6 ? 128u - m->cfg.v6_prefix : 32u - m->cfg.v4_prefix);
	uint64_t hosts = bits >= 63 ? (1ull << 62) : (1ull << bits);
	uint64_t *next = &m->next_host[family == 6];
	for (;;) {
		if (*next == 0 || *next >= hosts - 1)
			*next = 1;
		host_addr(m, family, (*next)++, addr);
		if (!find_addr(m, family, addr))
			break; /* at most capacity are taken, and the range is larger */
	}
	e->is_virtual = true;
	e->family = (uint8_t)family;
	memcpy(e->addr, addr, 16);
	memcpy(e->name, name, len + 1);
	e->expires = now + idle;
	struct entry **pp = &m->name_hash[name_slot(m, name, family)];
	e->by_name = *pp;
	*pp = e;
	add_addr(m, e);
	link_newest(m, e);
	m->st.virtual_now++;
	m->st.virtual_made++;
	return true;
}

void ts_name_map_note(struct ts_name_map *m, const char *name, int family, const uint8_t addr[16],
                      uint32_t ttl, int64_t now)
{
	size_t len = strlen(name);
	if (!len || len > TS_DNS_NAME_MAX || !m->cfg.capacity ||
	    ts_name_map_is_virtual(m, family, addr))
		return;
	struct entry *e = find_addr(m, family, addr);
	if (!e) {
		e = take_entry(m, now);
		if (!e)
			return;
		e->family = (uint8_t)family;
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

bool ts_name_map_name(struct ts_name_map *m, int family, const uint8_t addr[16], int64_t now,
                      char name[TS_DNS_NAME_MAX + 1])
{
	struct entry *e = find_addr(m, family, addr);
	if (!e)
		return false;
	if (e->expires <= now) {
		remove_entry(m, e);
		m->st.expired++;
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
