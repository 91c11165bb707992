/*
 * The compiled classifier (see classify.h for the idea).
 *
 * A vector is one block of 64-bit words: [aggregate: A][rank: A][packed],
 * where the aggregate has bit w set when rule word w is not zero, rank[a] is
 * the number of packed words before aggregate word a, and packed holds the
 * non-zero rule words in order. A = ceil(W / 64), W = ceil(rules / 64).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/classify.h"

typedef const uint64_t *vec_t;

#define FIELD(f) (1u << (f))

struct interval_set {
	uint32_t count;   /* >= 1; the first interval starts at key 0 */
	uint64_t *key_hi; /* IPv6 only: the upper 64 bits */
	uint64_t *key_lo;
	vec_t *vecs;
};

struct mac_set {
	uint32_t count;
	uint64_t *keys; /* 48-bit MACs, sorted */
	vec_t *vecs;
	vec_t other; /* a MAC no rule lists */
	vec_t none;  /* no MAC known */
};

struct iface_set {
	uint32_t count;
	char (*names)[TS_IFNAME_MAX]; /* sorted */
	vec_t *vecs;
	vec_t other;
	vec_t none;
};

struct block {
	struct block *next;
	size_t used, size;
	uint64_t data[];
};

struct ts_classifier {
	const struct ts_policy *policy;
	uint32_t rules, words, agg_words;
	uint32_t active; /* fields looked up per packet */
	vec_t all;
	vec_t family[3];  /* not IP, IPv4, IPv6 */
	vec_t proto[257]; /* 256: not IP */
	struct interval_set src4, src6, dst4, dst6;
	vec_t src_none, dst_none;
	struct interval_set sport, dport;
	vec_t sport_none, dport_none;
	struct mac_set mac;
	struct iface_set iface;
	vec_t tcp_flags[256], tcp_flags_none;
	vec_t icmp_type[256], icmp_type_none;
	vec_t icmp_code[256], icmp_code_none;
	uint64_t *bpf_rules; /* dense: rules with a bpf expression */

	struct block *blocks;
	size_t memory;
	uint32_t vector_count, interval_count;
};

/* ---- building ---- */

struct builder {
	struct ts_classifier *c;
	const struct ts_policy *p;
	uint32_t W, A;
	uint64_t *dense; /* scratch: W words */
	vec_t *table;    /* interned vectors, open addressing */
	uint32_t table_cap, table_used;
	uint32_t *cover; /* per rule: how many of its items cover the sweep point */
	char *err;
	size_t errlen;
	bool failed;
};

static void build_fail(struct builder *b, const char *what)
{
	if (!b->failed)
		snprintf(b->err, b->errlen, "%s: %s", b->p->source ? b->p->source : "policy", what);
	b->failed = true;
}

/* Memory the classifier keeps, counted against the policy's cap. */
static void *keep(struct builder *b, size_t bytes)
{
	struct ts_classifier *c = b->c;
	if (b->failed)
		return NULL;
	if (c->memory + bytes > b->p->limits.classifier_memory) {
		char msg[256];
		snprintf(msg, sizeof(msg),
		         "the compiled policy needs more than classifier-memory allows (%llu "
		         "bytes); "
		         "raise it with 'set classifier-memory' or merge rules into lists",
		         (unsigned long long)b->p->limits.classifier_memory);
		build_fail(b, msg);
		return NULL;
	}
	size_t words = (bytes + 7) / 8;
	struct block *blk = c->blocks;
	if (!blk || blk->size - blk->used < words) {
		size_t size = words > 8192 ? words : 8192;
		blk = malloc(sizeof(*blk) + size * 8);
		if (!blk) {
			build_fail(b, "out of memory compiling the policy");
			return NULL;
		}
		blk->next = c->blocks;
		blk->used = 0;
		blk->size = size;
		c->blocks = blk;
	}
	void *mem = blk->data + blk->used;
	blk->used += words;
	c->memory += words * 8;
	memset(mem, 0, words * 8);
	return mem;
}

static void dense_clear(struct builder *b)
{
	memset(b->dense, 0, (size_t)b->W * 8);
}

static void dense_set(struct builder *b, uint32_t rule, bool on)
{
	uint64_t bit = 1ull << (rule % 64);
	if (on)
		b->dense[rule / 64] |= bit;
	else
		b->dense[rule / 64] &= ~bit;
}

static uint64_t hash_words(const uint64_t *words, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < n; i++) {
		if (!words[i])
			continue;
		h ^= words[i] + i;
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}

static uint64_t hash_packed(const struct builder *b, vec_t v)
{
	/* The same value hash_words gives for the dense form. */
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t k = 0;
	for (uint32_t w = 0; w < b->W; w++) {
		if (!(v[w / 64] & (1ull << (w % 64))))
			continue;
		h ^= v[2 * b->A + k++] + w;
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}

static bool packed_equals_dense(const struct builder *b, vec_t v, const uint64_t *dense)
{
	uint32_t k = 0;
	for (uint32_t w = 0; w < b->W; w++) {
		bool stored = v[w / 64] & (1ull << (w % 64));
		if (!stored) {
			if (dense[w])
				return false;
		} else if (v[2 * b->A + k++] != dense[w]) {
			return false;
		}
	}
	return true;
}

static bool table_grow(struct builder *b)
{
	uint32_t cap = b->table_cap ? b->table_cap * 2 : 1024;
	vec_t *t = calloc(cap, sizeof(*t));
	if (!t)
		return false;
	for (uint32_t i = 0; i < b->table_cap; i++) {
		if (!b->table[i])
			continue;
		uint32_t j = (uint32_t)hash_packed(b, b->table[i]) & (cap - 1);
		while (t[j])
			j = (j + 1) & (cap - 1);
		t[j] = b->table[i];
	}
	free(b->table);
	b->table = t;
	b->table_cap = cap;
	return true;
}

/* The stored vector equal to the scratch vector, stored once. */
static vec_t intern(struct builder *b)
{
	if (b->failed)
		return NULL;
	if ((b->table_used + 1) * 2 > b->table_cap && !table_grow(b)) {
		build_fail(b, "out of memory compiling the policy");
		return NULL;
	}
	uint64_t h = hash_words(b->dense, b->W);
	uint32_t j = (uint32_t)h & (b->table_cap - 1);
	for (; b->table[j]; j = (j + 1) & (b->table_cap - 1))
		if (packed_equals_dense(b, b->table[j], b->dense))
			return b->table[j];

	uint32_t nonzero = 0;
	for (uint32_t w = 0; w < b->W; w++)
		nonzero += b->dense[w] != 0;
	uint64_t *v = keep(b, ((size_t)2 * b->A + nonzero) * 8);
	if (!v)
		return NULL;
	uint32_t k = 0;
	for (uint32_t w = 0; w < b->W; w++) {
		if (w % 64 == 0)
			v[b->A + w / 64] = k;
		if (b->dense[w]) {
			v[w / 64] |= 1ull << (w % 64);
			v[2 * b->A + k++] = b->dense[w];
		}
	}
	b->table[j] = v;
	b->table_used++;
	b->c->vector_count++;
	return v;
}

static bool constrains(const struct ts_rule *r, enum ts_field f)
{
	return r->match_mask & FIELD(f);
}

static bool bit_is_set(const uint8_t *bitmap, unsigned value)
{
	return bitmap[value >> 3] & (1u << (value & 7));
}

/* Rules that do not constrain f, plus (with_negated) those whose negated
 * match on f holds because nothing in their list is there. */
static void dense_base(struct builder *b, enum ts_field f, bool with_negated,
                       bool (*negated)(const struct ts_rule *))
{
	dense_clear(b);
	for (uint32_t i = 0; i < b->p->rule_count; i++) {
		const struct ts_rule *r = &b->p->rules[i];
		dense_set(b, i, !constrains(r, f) || (with_negated && negated(r)));
	}
}

static bool src_negated(const struct ts_rule *r)
{
	return r->src.negated;
}
static bool dst_negated(const struct ts_rule *r)
{
	return r->dst.negated;
}
static bool sport_negated(const struct ts_rule *r)
{
	return r->sport.negated;
}
static bool dport_negated(const struct ts_rule *r)
{
	return r->dport.negated;
}
static bool mac_negated(const struct ts_rule *r)
{
	return r->mac.negated;
}
static bool iface_negated(const struct ts_rule *r)
{
	return r->iface.negated;
}
static bool never_negated(const struct ts_rule *r)
{
	(void)r;
	return false;
}

/* ---- interval fields: addresses and ports ---- */

struct event {
	uint64_t hi, lo; /* where the sweep is when this happens */
	uint32_t rule;
	int32_t delta; /* +1: an item starts covering; -1: stops */
};

struct event_list {
	struct event *ev;
	uint32_t count, cap;
};

static bool event_add(struct event_list *l, uint64_t hi, uint64_t lo, uint32_t rule, int32_t delta)
{
	if (l->count == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 256;
		struct event *ev = realloc(l->ev, (size_t)cap * sizeof(*ev));
		if (!ev)
			return false;
		l->ev = ev;
		l->cap = cap;
	}
	l->ev[l->count++] = (struct event){.hi = hi, .lo = lo, .rule = rule, .delta = delta};
	return true;
}

static int event_cmp(const void *a, const void *b)
{
	const struct event *x = a, *y = b;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

/* Sweep the key space in order: at each point where some rule's items start
 * or stop covering, the set of matching rules changes; record it. */
static void sweep(struct builder *b, struct event_list *l, bool wide, struct interval_set *out,
                  bool (*negated)(const struct ts_rule *))
{
	if (l->count)
		qsort(l->ev, l->count, sizeof(*l->ev), event_cmp);
	memset(b->cover, 0, (size_t)b->p->rule_count * sizeof(*b->cover));
	uint32_t max = l->count + 1;
	out->key_lo = keep(b, (size_t)max * 8);
	out->key_hi = wide ? keep(b, (size_t)max * 8) : NULL;
	out->vecs = keep(b, (size_t)max * sizeof(vec_t));
	if (b->failed)
		return;
	out->count = 0;
	uint32_t i = 0;
	uint64_t hi = 0, lo = 0;
	for (;;) {
		for (; i < l->count && l->ev[i].hi == hi && l->ev[i].lo == lo; i++) {
			const struct event *e = &l->ev[i];
			uint32_t before = b->cover[e->rule];
			b->cover[e->rule] = (uint32_t)((int32_t)before + e->delta);
			bool now_covered = b->cover[e->rule] > 0;
			if ((before > 0) != now_covered)
				dense_set(b, e->rule,
				          now_covered != negated(&b->p->rules[e->rule]));
		}
		vec_t v = intern(b);
		if (!v)
			return;
		if (out->count == 0 || out->vecs[out->count - 1] != v) {
			out->key_lo[out->count] = lo;
			if (wide)
				out->key_hi[out->count] = hi;
			out->vecs[out->count++] = v;
		}
		if (i == l->count)
			break;
		hi = l->ev[i].hi;
		lo = l->ev[i].lo;
	}
	b->c->interval_count += out->count;
}

static void prefix_range(const struct ts_prefix *p, uint64_t *hi0, uint64_t *lo0, uint64_t *hi1,
                         uint64_t *lo1)
{
	uint64_t h = 0, l = 0;
	for (int i = 0; i < 8; i++)
		h = h << 8 | p->addr[i];
	for (int i = 8; i < 16; i++)
		l = l << 8 | p->addr[i];
	if (p->family == 4) {
		uint64_t a = h >> 32, mask = p->len ? (~0ull << (32 - p->len)) & 0xffffffffull : 0;
		*hi0 = *hi1 = 0;
		*lo0 = a & mask;
		*lo1 = (a & mask) | (~mask & 0xffffffffull);
		return;
	}
	uint64_t mh = p->len == 0 ? 0 : p->len >= 64 ? ~0ull : ~0ull << (64 - p->len);
	uint64_t ml = p->len <= 64 ? 0 : p->len == 128 ? ~0ull : ~0ull << (128 - p->len);
	*hi0 = h & mh;
	*lo0 = l & ml;
	*hi1 = (h & mh) | ~mh;
	*lo1 = (l & ml) | ~ml;
}

static void build_addr_field(struct builder *b, enum ts_field f, uint8_t family,
                             struct interval_set *out)
{
	bool (*neg)(const struct ts_rule *) = f == TS_FIELD_SRC ? src_negated : dst_negated;
	struct event_list l = {0};
	for (uint32_t i = 0; i < b->p->rule_count && !b->failed; i++) {
		const struct ts_rule *r = &b->p->rules[i];
		if (!constrains(r, f))
			continue;
		const struct ts_addr_spec *s = f == TS_FIELD_SRC ? &r->src : &r->dst;
		for (uint32_t j = 0; j < s->count; j++) {
			if (s->prefixes[j].family != family)
				continue;
			uint64_t h0, l0, h1, l1;
			prefix_range(&s->prefixes[j], &h0, &l0, &h1, &l1);
			bool ok = event_add(&l, h0, l0, i, +1);
			/* The item ends after its last address, unless that is the
			 * last address of the family. */
			bool last =
			        family == 4 ? l1 == 0xffffffffull : (h1 == ~0ull && l1 == ~0ull);
			if (!last)
				ok = ok && event_add(&l, l1 == ~0ull ? h1 + 1 : h1, l1 + 1, i, -1);
			if (!ok)
				build_fail(b, "out of memory compiling the policy");
		}
	}
	if (!b->failed) {
		dense_base(b, f, true, neg);
		sweep(b, &l, family == 6, out, neg);
	}
	free(l.ev);
}

static void build_port_field(struct builder *b, enum ts_field f, struct interval_set *out,
                             vec_t *none)
{
	bool (*neg)(const struct ts_rule *) = f == TS_FIELD_SPORT ? sport_negated : dport_negated;
	struct event_list l = {0};
	for (uint32_t i = 0; i < b->p->rule_count && !b->failed; i++) {
		const struct ts_rule *r = &b->p->rules[i];
		if (!constrains(r, f))
			continue;
		const struct ts_port_spec *s = f == TS_FIELD_SPORT ? &r->sport : &r->dport;
		for (uint32_t j = 0; j < s->count; j++)
			if (!event_add(&l, 0, s->ranges[j].lo, i, +1) ||
			    !event_add(&l, 0, (uint64_t)s->ranges[j].hi + 1, i, -1))
				build_fail(b, "out of memory compiling the policy");
	}
	if (!b->failed) {
		dense_base(b, f, true, neg);
		sweep(b, &l, false, out, neg);
		/* A packet without ports matches no port term, negated or not. */
		dense_base(b, f, false, never_negated);
		*none = intern(b);
	}
	free(l.ev);
}

/* ---- table fields ---- */

static void build_tables(struct builder *b)
{
	const struct ts_policy *p = b->p;
	for (unsigned v = 0; v < 257 && !b->failed; v++) {
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			dense_set(b, i,
			          !constrains(r, TS_FIELD_PROTO) ||
			                  (v < 256 && bit_is_set(r->protos, v)));
		}
		b->c->proto[v] = intern(b);
	}
	for (unsigned fam = 0; fam < 3 && !b->failed; fam++) {
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			dense_set(b, i,
			          !constrains(r, TS_FIELD_FAMILY) || (fam == 1 && r->family == 4) ||
			                  (fam == 2 && r->family == 6));
		}
		b->c->family[fam] = intern(b);
	}
	for (unsigned v = 0; v < 256 && !b->failed; v++) {
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			dense_set(b, i,
			          !constrains(r, TS_FIELD_TCP_FLAGS) ||
			                  (v & r->tcp_flags_mask) == r->tcp_flags);
		}
		b->c->tcp_flags[v] = intern(b);
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			dense_set(b, i,
			          !constrains(r, TS_FIELD_ICMP_TYPE) ||
			                  bit_is_set(r->icmp_types, v));
		}
		b->c->icmp_type[v] = intern(b);
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			dense_set(b, i,
			          !constrains(r, TS_FIELD_ICMP_CODE) ||
			                  bit_is_set(r->icmp_codes, v));
		}
		b->c->icmp_code[v] = intern(b);
	}
	dense_base(b, TS_FIELD_TCP_FLAGS, false, never_negated);
	b->c->tcp_flags_none = intern(b);
	dense_base(b, TS_FIELD_ICMP_TYPE, false, never_negated);
	b->c->icmp_type_none = intern(b);
	dense_base(b, TS_FIELD_ICMP_CODE, false, never_negated);
	b->c->icmp_code_none = intern(b);
}

static uint64_t mac_key(const uint8_t *mac)
{
	uint64_t k = 0;
	for (int i = 0; i < 6; i++)
		k = k << 8 | mac[i];
	return k;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void build_mac_field(struct builder *b)
{
	const struct ts_policy *p = b->p;
	struct mac_set *m = &b->c->mac;
	uint32_t total = 0;
	for (uint32_t i = 0; i < p->rule_count; i++)
		if (constrains(&p->rules[i], TS_FIELD_MAC))
			total += p->rules[i].mac.count;
	m->keys = keep(b, (size_t)(total + 1) * 8);
	m->vecs = keep(b, (size_t)(total + 1) * sizeof(vec_t));
	if (b->failed)
		return;
	for (uint32_t i = 0; i < p->rule_count; i++)
		if (constrains(&p->rules[i], TS_FIELD_MAC))
			for (uint32_t j = 0; j < p->rules[i].mac.count; j++)
				m->keys[m->count++] = mac_key(p->rules[i].mac.macs[j]);
	qsort(m->keys, m->count, 8, u64_cmp);
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->count; i++)
		if (n == 0 || m->keys[n - 1] != m->keys[i])
			m->keys[n++] = m->keys[i];
	m->count = n;
	for (uint32_t k = 0; k < m->count && !b->failed; k++) {
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			bool in = false;
			for (uint32_t j = 0; constrains(r, TS_FIELD_MAC) && j < r->mac.count && !in;
			     j++)
				in = mac_key(r->mac.macs[j]) == m->keys[k];
			dense_set(b, i, !constrains(r, TS_FIELD_MAC) || in != r->mac.negated);
		}
		m->vecs[k] = intern(b);
	}
	dense_base(b, TS_FIELD_MAC, true, mac_negated);
	m->other = intern(b);
	dense_base(b, TS_FIELD_MAC, false, never_negated);
	m->none = intern(b);
}

static void build_iface_field(struct builder *b)
{
	const struct ts_policy *p = b->p;
	struct iface_set *s = &b->c->iface;
	uint32_t total = 0;
	for (uint32_t i = 0; i < p->rule_count; i++)
		if (constrains(&p->rules[i], TS_FIELD_IFACE))
			total += p->rules[i].iface.count;
	s->names = keep(b, (size_t)(total + 1) * TS_IFNAME_MAX);
	s->vecs = keep(b, (size_t)(total + 1) * sizeof(vec_t));
	if (b->failed)
		return;
	for (uint32_t i = 0; i < p->rule_count; i++)
		if (constrains(&p->rules[i], TS_FIELD_IFACE))
			for (uint32_t j = 0; j < p->rules[i].iface.count; j++)
				memcpy(s->names[s->count++], p->rules[i].iface.names[j],
				       TS_IFNAME_MAX);
	qsort(s->names, s->count, TS_IFNAME_MAX, name_cmp);
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->count; i++)
		if (n == 0 || strcmp(s->names[n - 1], s->names[i]) != 0)
			memmove(s->names[n++], s->names[i], TS_IFNAME_MAX);
	s->count = n;
	for (uint32_t k = 0; k < s->count && !b->failed; k++) {
		dense_clear(b);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			const struct ts_rule *r = &p->rules[i];
			bool in = false;
			for (uint32_t j = 0;
			     constrains(r, TS_FIELD_IFACE) && j < r->iface.count && !in; j++)
				in = strcmp(r->iface.names[j], s->names[k]) == 0;
			dense_set(b, i, !constrains(r, TS_FIELD_IFACE) || in != r->iface.negated);
		}
		s->vecs[k] = intern(b);
	}
	dense_base(b, TS_FIELD_IFACE, true, iface_negated);
	s->other = intern(b);
	dense_base(b, TS_FIELD_IFACE, false, never_negated);
	s->none = intern(b);
}

void ts_classifier_free(struct ts_classifier *c)
{
	if (!c)
		return;
	for (struct block *blk = c->blocks, *next; blk; blk = next) {
		next = blk->next;
		free(blk);
	}
	free(c);
}

struct ts_classifier *ts_classifier_build(const struct ts_policy *p, char *err, size_t errlen)
{
	struct ts_classifier *c = calloc(1, sizeof(*c));
	struct builder b = {.c = c, .p = p, .err = err, .errlen = errlen};
	if (!c) {
		snprintf(err, errlen, "%s: out of memory compiling the policy", p->source);
		return NULL;
	}
	c->policy = p;
	c->rules = p->rule_count;
	c->words = b.W = p->rule_count ? (p->rule_count + 63) / 64 : 1;
	c->agg_words = b.A = (b.W + 63) / 64;
	c->memory = sizeof(*c);
	b.dense = calloc(b.W, 8);
	b.cover = calloc(p->rule_count ? p->rule_count : 1, sizeof(*b.cover));
	if (!b.dense || !b.cover)
		build_fail(&b, "out of memory compiling the policy");

	for (uint32_t i = 0; i < p->rule_count; i++)
		c->active |= p->rules[i].match_mask;
	c->active &= ~FIELD(TS_FIELD_BPF);

	dense_clear(&b);
	for (uint32_t i = 0; i < p->rule_count && !b.failed; i++)
		dense_set(&b, i, true);
	c->all = intern(&b);
	c->bpf_rules = keep(&b, (size_t)b.W * 8);
	for (uint32_t i = 0; i < p->rule_count && !b.failed; i++)
		if (constrains(&p->rules[i], TS_FIELD_BPF))
			c->bpf_rules[i / 64] |= 1ull << (i % 64);

	build_tables(&b);
	if (c->active & FIELD(TS_FIELD_SRC)) {
		build_addr_field(&b, TS_FIELD_SRC, 4, &c->src4);
		build_addr_field(&b, TS_FIELD_SRC, 6, &c->src6);
		dense_base(&b, TS_FIELD_SRC, true, src_negated);
		c->src_none = intern(&b);
	}
	if (c->active & FIELD(TS_FIELD_DST)) {
		build_addr_field(&b, TS_FIELD_DST, 4, &c->dst4);
		build_addr_field(&b, TS_FIELD_DST, 6, &c->dst6);
		dense_base(&b, TS_FIELD_DST, true, dst_negated);
		c->dst_none = intern(&b);
	}
	if (c->active & FIELD(TS_FIELD_SPORT))
		build_port_field(&b, TS_FIELD_SPORT, &c->sport, &c->sport_none);
	if (c->active & FIELD(TS_FIELD_DPORT))
		build_port_field(&b, TS_FIELD_DPORT, &c->dport, &c->dport_none);
	if (c->active & FIELD(TS_FIELD_MAC))
		build_mac_field(&b);
	if (c->active & FIELD(TS_FIELD_IFACE))
		build_iface_field(&b);

	free(b.dense);
	free(b.cover);
	free(b.table);
	if (b.failed) {
		ts_classifier_free(c);
		return NULL;
	}
	return c;
}

/* ---- lookup ---- */

static vec_t find32(const struct interval_set *s, uint64_t key)
{
	uint32_t lo = 0, hi = s->count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->key_lo[mid] <= key)
			lo = mid;
		else
			hi = mid;
	}
	return s->vecs[lo];
}

static vec_t find128(const struct interval_set *s, uint64_t khi, uint64_t klo)
{
	uint32_t lo = 0, hi = s->count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->key_hi[mid] < khi || (s->key_hi[mid] == khi && s->key_lo[mid] <= klo))
			lo = mid;
		else
			hi = mid;
	}
	return s->vecs[lo];
}

static vec_t addr_vec(const struct interval_set *v4, const struct interval_set *v6, vec_t none,
                      const struct ts_decoded *d, const uint8_t *a)
{
	if (d->l3 == TS_L3_IPV4)
		return find32(v4, (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 |
		                          (uint64_t)a[2] << 8 | a[3]);
	if (d->l3 != TS_L3_IPV6)
		return none;
	uint64_t h = 0, l = 0;
	for (int i = 0; i < 8; i++)
		h = h << 8 | a[i];
	for (int i = 8; i < 16; i++)
		l = l << 8 | a[i];
	return find128(v6, h, l);
}

static vec_t mac_vec(const struct mac_set *m, const struct ts_decoded *d)
{
	if (!d->has_mac)
		return m->none;
	uint64_t key = mac_key(d->src_mac);
	uint32_t lo = 0, hi = m->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->keys[mid] == key)
			return m->vecs[mid];
		if (m->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return m->other;
}

static vec_t iface_vec(const struct iface_set *s, const char *iface)
{
	if (!iface)
		return s->none;
	uint32_t lo = 0, hi = s->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int cmp = strncmp(s->names[mid], iface, TS_IFNAME_MAX);
		if (cmp == 0)
			return s->vecs[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return s->other;
}

static bool has_icmp_header(const struct ts_decoded *d)
{
	return (d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) && d->has_l4_header;
}

int32_t ts_classify(const struct ts_classifier *c, const struct ts_match_input *in)
{
	const struct ts_decoded *d = in->dec;
	bool ip = d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6;
	bool tcp = d->l4 == TS_L4_TCP && d->has_l4_header;
	vec_t v[TS_FIELD_COUNT];
	unsigned k = 0;
	uint32_t active = c->active;

	v[k++] = c->all;
	if (active & FIELD(TS_FIELD_FAMILY))
		v[k++] = c->family[d->l3 == TS_L3_IPV4 ? 1 : d->l3 == TS_L3_IPV6 ? 2 : 0];
	if (active & FIELD(TS_FIELD_PROTO))
		v[k++] = c->proto[ip ? d->ip_proto : 256];
	if (active & FIELD(TS_FIELD_SRC))
		v[k++] = addr_vec(&c->src4, &c->src6, c->src_none, d, d->src_addr);
	if (active & FIELD(TS_FIELD_DST))
		v[k++] = addr_vec(&c->dst4, &c->dst6, c->dst_none, d, d->dst_addr);
	if (active & FIELD(TS_FIELD_SPORT))
		v[k++] = d->has_ports ? find32(&c->sport, d->sport) : c->sport_none;
	if (active & FIELD(TS_FIELD_DPORT))
		v[k++] = d->has_ports ? find32(&c->dport, d->dport) : c->dport_none;
	if (active & FIELD(TS_FIELD_MAC))
		v[k++] = mac_vec(&c->mac, d);
	if (active & FIELD(TS_FIELD_IFACE))
		v[k++] = iface_vec(&c->iface, in->iface);
	if (active & FIELD(TS_FIELD_TCP_FLAGS))
		v[k++] = tcp ? c->tcp_flags[d->tcp_flags] : c->tcp_flags_none;
	if (active & FIELD(TS_FIELD_ICMP_TYPE))
		v[k++] = has_icmp_header(d) ? c->icmp_type[d->icmp_type] : c->icmp_type_none;
	if (active & FIELD(TS_FIELD_ICMP_CODE))
		v[k++] = has_icmp_header(d) ? c->icmp_code[d->icmp_code] : c->icmp_code_none;

	uint32_t A = c->agg_words;
	for (uint32_t a = 0; a < A; a++) {
		uint64_t agg = ~0ull;
		for (unsigned j = 0; j < k; j++)
			agg &= v[j][a];
		while (agg) {
			unsigned bit = (unsigned)__builtin_ctzll(agg);
			uint64_t below = (1ull << bit) - 1;
			uint64_t word = ~0ull;
			for (unsigned j = 0; j < k; j++) {
				uint64_t rank = v[j][A + a] +
				                (uint64_t)__builtin_popcountll(v[j][a] & below);
				word &= v[j][2 * A + rank];
			}
			uint32_t w = a * 64 + bit;
			while (word) {
				uint32_t r = w * 64 + (uint32_t)__builtin_ctzll(word);
				if (!(c->bpf_rules[w] & (word & -word)))
					return (int32_t)r;
				const struct ts_policy *p = c->policy;
				if (p->bpf_match && p->bpf_match(&p->rules[r], in))
					return (int32_t)r;
				word &= word - 1;
			}
			agg &= agg - 1;
		}
	}
	return -1;
}

void ts_classifier_get_stats(const struct ts_classifier *c, struct ts_classifier_stats *out)
{
	out->rules = c->rules;
	out->vectors = c->vector_count;
	out->intervals = c->interval_count;
	out->fields = (uint32_t)__builtin_popcount(c->active);
	out->memory = c->memory;
}
