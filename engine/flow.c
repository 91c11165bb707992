/* The flow table (see flow.h). Indices into the slot array are stored +1 so
 * that 0 means "none". */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "torsieve/flow.h"

#define NONE 0u

struct lru {
	uint32_t head, tail; /* head: stalest */
};

struct ts_flow_table {
	struct ts_flow_config cfg;
	struct ts_flow *slots;
	uint32_t *buckets;
	uint32_t bucket_mask;
	uint32_t free_head; /* chained through hash_next */
	struct lru lru[TS_FLOW_CLASSES];
	uint64_t next_id;
	uint64_t seed;
	ts_flow_end_fn on_end;
	void *ctx;
	struct ts_flow_stats stats;
};

void ts_flow_config_default(struct ts_flow_config *c)
{
	c->max_flows = 65536;
	c->timeout[TS_FLOW_TCP_OPENING] = 30;
	c->timeout[TS_FLOW_TCP_ESTABLISHED] = 3600;
	c->timeout[TS_FLOW_TCP_CLOSING] = 30;
	c->timeout[TS_FLOW_UDP] = 60;
	c->timeout[TS_FLOW_OTHER] = 30;
}

const char *ts_flow_class_name(enum ts_flow_class c)
{
	static const char *const names[TS_FLOW_CLASSES] = {"tcp-opening", "tcp-established",
	                                                   "tcp-closing", "udp", "other"};
	return (unsigned)c < TS_FLOW_CLASSES ? names[c] : "unknown";
}

static struct ts_flow *slot(struct ts_flow_table *t, uint32_t ref)
{
	return &t->slots[ref - 1];
}

static uint32_t ref_of(const struct ts_flow_table *t, const struct ts_flow *f)
{
	return (uint32_t)(f - t->slots) + 1;
}

struct ts_flow_table *ts_flow_table_new(const struct ts_flow_config *cfg, ts_flow_end_fn on_end,
                                        void *ctx)
{
	if (cfg->max_flows == 0 || cfg->max_flows > (1u << 30))
		return NULL;
	struct ts_flow_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uint32_t nbuckets = 1;
	while (nbuckets < cfg->max_flows)
		nbuckets <<= 1;
	t->cfg = *cfg;
	t->slots = calloc(cfg->max_flows, sizeof(*t->slots));
	t->buckets = calloc(nbuckets, sizeof(*t->buckets));
	if (!t->slots || !t->buckets) {
		ts_flow_table_free(t);
		return NULL;
	}
	t->bucket_mask = nbuckets - 1;
	for (uint32_t i = cfg->max_flows; i > 0; i--) {
		t->slots[i - 1].hash_next = t->free_head;
		t->free_head = i;
	}
	/* A per-table secret keeps a peer from aiming packets at one bucket. */
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
	t->on_end = on_end;
	t->ctx = ctx;
	return t;
}

void ts_flow_table_free(struct ts_flow_table *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->buckets);
	free(t);
}

static uint32_t key_hash(const struct ts_flow_table *t, const struct ts_flow_key *k)
{
	/* Eight bytes at a time (a byte-wise FNV-1a over the 42-byte key was a
	 * chain of 42 multiplies on every packet), seeded, each word mixed in
	 * with a multiply and a shift, then murmur3's finaliser. */
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = t->seed, w;
	size_t i = 0;
	for (; i + 8 <= sizeof(*k); i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, p + i, sizeof(*k) - i);
	h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (uint32_t)h;
}

static int endpoint_cmp(const uint8_t *a, uint16_t pa, const uint8_t *b, uint16_t pb)
{
	int c = memcmp(a, b, 16);
	if (c)
		return c;
	return pa < pb ? -1 : pa > pb;
}

/* The normalised key and which side the packet's source is. */
static int make_key(const struct ts_decoded *d, struct ts_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	bool ip = d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6;
	k->family = d->l3 == TS_L3_IPV4 ? 4 : d->l3 == TS_L3_IPV6 ? 6 : 0;
	k->proto = ip ? d->ip_proto : 0;
	for (unsigned i = 0; i < d->vlan_count && i < 2; i++)
		k->vlan[i] = d->vlan_ids[i];
	if (!ip)
		return 0;
	uint16_t sport = d->has_ports ? d->sport : 0, dport = d->has_ports ? d->dport : 0;
	int side = endpoint_cmp(d->src_addr, sport, d->dst_addr, dport) <= 0 ? 0 : 1;
	memcpy(k->addr[side], d->src_addr, 16);
	memcpy(k->addr[!side], d->dst_addr, 16);
	k->port[side] = sport;
	k->port[!side] = dport;
	return side;
}

static void lru_unlink(struct ts_flow_table *t, struct ts_flow *f)
{
	struct lru *l = &t->lru[f->flow_class];
	if (f->lru_prev)
		slot(t, f->lru_prev)->lru_next = f->lru_next;
	else
		l->head = f->lru_next;
	if (f->lru_next)
		slot(t, f->lru_next)->lru_prev = f->lru_prev;
	else
		l->tail = f->lru_prev;
	f->lru_prev = f->lru_next = NONE;
}

static void lru_append(struct ts_flow_table *t, struct ts_flow *f)
{
	struct lru *l = &t->lru[f->flow_class];
	uint32_t ref = ref_of(t, f);
	f->lru_next = NONE;
	f->lru_prev = l->tail;
	if (l->tail)
		slot(t, l->tail)->lru_next = ref;
	else
		l->head = ref;
	l->tail = ref;
}

static void remove_flow(struct ts_flow_table *t, struct ts_flow *f, const char *why)
{
	if (t->on_end)
		t->on_end(t->ctx, f, why);
	uint32_t ref = ref_of(t, f);
	uint32_t *link = &t->buckets[f->hash & t->bucket_mask];
	while (*link != ref)
		link = &slot(t, *link)->hash_next;
	*link = f->hash_next;
	lru_unlink(t, f);
	f->hash_next = t->free_head;
	t->free_head = ref;
	t->stats.active--;
}

static void expire(struct ts_flow_table *t, int64_t now_usec)
{
	for (int c = 0; c < TS_FLOW_CLASSES; c++) {
		int64_t idle = (int64_t)t->cfg.timeout[c] * 1000000;
		while (t->lru[c].head) {
			struct ts_flow *f = slot(t, t->lru[c].head);
			if (now_usec - f->last_usec <= idle)
				break;
			t->stats.expired++;
			remove_flow(t, f, "expired");
		}
	}
}

static void evict_one(struct ts_flow_table *t)
{
	static const enum ts_flow_class order[] = {TS_FLOW_TCP_CLOSING, TS_FLOW_TCP_OPENING,
	                                           TS_FLOW_UDP, TS_FLOW_OTHER,
	                                           TS_FLOW_TCP_ESTABLISHED};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (t->lru[order[i]].head) {
			t->stats.evicted++;
			remove_flow(t, slot(t, t->lru[order[i]].head), "evicted");
			return;
		}
}

static bool syn_only(const struct ts_decoded *d)
{
	return d->ip_proto == TS_IPPROTO_TCP && d->has_l4_header &&
	       (d->tcp_flags & (TS_TCP_SYN | TS_TCP_ACK)) == TS_TCP_SYN;
}

static enum ts_flow_class initial_class(const struct ts_decoded *d)
{
	if (d->l3 != TS_L3_IPV4 && d->l3 != TS_L3_IPV6)
		return TS_FLOW_OTHER;
	if (d->ip_proto == TS_IPPROTO_UDP)
		return TS_FLOW_UDP;
	if (d->ip_proto != TS_IPPROTO_TCP)
		return TS_FLOW_OTHER;
	/* A flow first seen mid-stream is taken as established. */
	return syn_only(d) ? TS_FLOW_TCP_OPENING : TS_FLOW_TCP_ESTABLISHED;
}

/* A connection's 4-tuple used again: a SYN (without ACK) for a TCP flow
 * that has seen a FIN or a RST opens a new connection, whose bytes and
 * verdict are its own. Kept in the old flow, they would be cut against the
 * old connection's sequence numbers and lost. */
static bool reopens(const struct ts_flow *f, const struct ts_decoded *d)
{
	return f->key.proto == TS_IPPROTO_TCP && f->flow_class == TS_FLOW_TCP_CLOSING &&
	       syn_only(d);
}

struct ts_flow *ts_flow_lookup(struct ts_flow_table *t, const struct ts_decoded *d,
                               int64_t now_usec, bool *created, int *side)
{
	expire(t, now_usec);
	struct ts_flow_key key;
	*side = make_key(d, &key);
	uint32_t hash = key_hash(t, &key);
	for (uint32_t ref = t->buckets[hash & t->bucket_mask]; ref; ref = slot(t, ref)->hash_next) {
		struct ts_flow *f = slot(t, ref);
		if (f->hash == hash && memcmp(&f->key, &key, sizeof(key)) == 0) {
			if (reopens(f, d)) {
				t->stats.reused++;
				remove_flow(t, f, "reused");
				break; /* its slot is free now: the new flow takes it */
			}
			*created = false;
			return f;
		}
	}
	if (!t->free_head)
		evict_one(t);
	uint32_t ref = t->free_head;
	struct ts_flow *f = slot(t, ref);
	t->free_head = f->hash_next;
	memset(f, 0, sizeof(*f));
	f->key = key;
	f->hash = hash;
	f->id = ++t->next_id;
	f->initiator = (uint8_t)*side;
	f->flow_class = (uint8_t)initial_class(d);
	f->first_usec = f->last_usec = now_usec;
	f->hash_next = t->buckets[hash & t->bucket_mask];
	t->buckets[hash & t->bucket_mask] = ref;
	lru_append(t, f);
	t->stats.total++;
	t->stats.active++;
	if (key.family && key.proto == TS_IPPROTO_TCP)
		t->stats.tcp++;
	else if (key.family && key.proto == TS_IPPROTO_UDP)
		t->stats.udp++;
	else
		t->stats.other++;
	*created = true;
	return f;
}

void ts_flow_update(struct ts_flow_table *t, struct ts_flow *f, const struct ts_decoded *d,
                    int side, uint32_t wirelen, int64_t now_usec)
{
	f->packets[side]++;
	f->bytes[side] += wirelen;
	if (now_usec > f->last_usec)
		f->last_usec = now_usec;
	enum ts_flow_class c = (enum ts_flow_class)f->flow_class;
	if (f->key.proto == TS_IPPROTO_TCP && d->l4 == TS_L4_TCP && d->has_l4_header) {
		uint8_t fl = d->tcp_flags;
		if (fl & TS_TCP_FIN)
			f->seen_fin[side] = true;
		if ((fl & (TS_TCP_RST | TS_TCP_FIN)) || c == TS_FLOW_TCP_CLOSING)
			c = TS_FLOW_TCP_CLOSING;
		else if (c == TS_FLOW_TCP_OPENING && side != f->initiator && (fl & TS_TCP_ACK))
			c = TS_FLOW_TCP_ESTABLISHED;
	}
	/* Move to the fresh end of its (possibly new) class list. */
	lru_unlink(t, f);
	f->flow_class = (uint8_t)c;
	lru_append(t, f);
}

void ts_flow_flush(struct ts_flow_table *t)
{
	for (int c = 0; c < TS_FLOW_CLASSES; c++)
		while (t->lru[c].head)
			remove_flow(t, slot(t, t->lru[c].head), "end of capture");
}

void ts_flow_get_stats(const struct ts_flow_table *t, struct ts_flow_stats *out)
{
	*out = t->stats;
}
