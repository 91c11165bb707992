/*
 * The compiled classifier (see classify.h for the idea).
 *
 * A vector is one block of 64-bit words: [aggregate: A][rank: A][words],
 * where the aggregate has bit w set when rule word w is not zero. In a group
 * of up to DENSE_WORDS words, the words are all stored and word w is at w.
 * In a larger group only the non-zero words are stored (packed), rank[a] is
 * the number of packed words before aggregate word a, and finding a word
 * takes a popcount (a library call on CPUs without the instruction, which is
 * why small groups do without). A = ceil(W / 64), W = ceil(rules / 64).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/classify.h"

typedef const uint64_t *vec_t;

#define DENSE_WORDS 8

#define FIELD(f) (1u << (f))

struct interval_set {
	uint32_t count;   /* >= 1; the first interval starts at key 0 */
	uint64_t *key_hi; /* IPv6 only: the upper 64 bits */
	uint64_t *key_lo;
	vec_t *vecs;
	/* For long IPv4 and port sets: index[h] is the interval holding key
	 * h << shift, so a lookup searches only [index[h], index[h + 1]]. */
	uint32_t *index;
	uint8_t shift;
};

/* Past this many intervals a set gets a 65537-entry index (256 KiB). */
#define INDEX_INTERVALS 64

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

/*
 * Rules are grouped by the set of fields they constrain, and each group is
 * classified on its own. Inside a group no rule is a wildcard on a field
 * another rule of it constrains, so one field's "rules I do not constrain"
 * cannot pollute the intersection with another's (which is what made
 * interleaved 'from' and 'to' block lists visit every word). The first
 * match is the lowest over the groups; groups are visited in order of their
 * first rule, and a group that starts past the best match so far is skipped.
 */
struct group {
	uint32_t first_rule; /* global index of the group's first rule */
	uint32_t rules;
	uint32_t *index; /* local rule -> global rule, increasing */
	uint32_t words, agg_words;
	bool packed;     /* words > DENSE_WORDS: only non-zero words stored */
	uint32_t active; /* the fields its rules constrain, looked up per packet */
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
};

struct ts_classifier {
	const struct ts_policy *policy;
	uint32_t rules;
	uint32_t group_count;
	struct group *groups; /* by first rule */
	uint32_t active;      /* union of the groups' fields */

	struct block *blocks;
	size_t memory;
	uint32_t vector_count, interval_count;
};

/* ---- building ---- */

struct builder {
	struct ts_classifier *c;
	struct group *g; /* the group being built */
	const struct ts_policy *p;
	uint32_t n;            /* rules in the group */
	const uint32_t *index; /* local -> global */
	uint32_t W, A;
	bool packed;
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

static const struct ts_rule *rule_at(const struct builder *b, uint32_t local)
{
	return &b->p->rules[b->index[local]];
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

/* Calls fn(w, word) for each non-zero word w of a stored vector, in order. */
#define FOR_EACH_STORED_WORD(b, v, w, word, body)                                   \
	do {                                                                        \
		uint32_t k_ = 0;                                                    \
		for (uint32_t w = 0; w < (b)->W; w++) {                             \
			if (!((v)[w / 64] & (1ull << (w % 64))))                    \
				continue;                                           \
			uint64_t word = (v)[2 * (b)->A + ((b)->packed ? k_++ : w)]; \
			body;                                                       \
		}                                                                   \
	} while (0)

static uint64_t hash_packed(const struct builder *b, vec_t v)
{
	/* The same value hash_words gives for the dense form. */
	uint64_t h = 0xcbf29ce484222325ull;
	FOR_EACH_STORED_WORD(b, v, w, word, {
		h ^= word + w;
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	});
	return h;
}

static bool packed_equals_dense(const struct builder *b, vec_t v, const uint64_t *dense)
{
	/* Equal when every stored word matches and no other word is set. */
	uint32_t matched = 0, nonzero = 0;
	for (uint32_t w = 0; w < b->W; w++)
		nonzero += dense[w] != 0;
	FOR_EACH_STORED_WORD(b, v, w, word, {
		if (dense[w] != word)
			return false;
		matched++;
	});
	return matched == nonzero;
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
	uint64_t *v = keep(b, ((size_t)2 * b->A + (b->packed ? nonzero : b->W)) * 8);
	if (!v)
		return NULL;
	uint32_t k = 0;
	for (uint32_t w = 0; w < b->W; w++) {
		if (w % 64 == 0)
			v[b->A + w / 64] = k;
		if (!b->dense[w])
			continue;
		v[w / 64] |= 1ull << (w % 64);
		v[2 * b->A + (b->packed ? k++ : w)] = b->dense[w];
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
	for (uint32_t i = 0; i < b->n; i++) {
		const struct ts_rule *r = rule_at(b, i);
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
	memset(b->cover, 0, (size_t)b->n * sizeof(*b->cover));
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
				dense_set(b, e->rule, now_covered != negated(rule_at(b, e->rule)));
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

/* The first-level index of a 32-bit (shift 16) or 16-bit (shift 0) set. */
static void build_index(struct builder *b, struct interval_set *s, uint8_t shift)
{
	if (b->failed || s->count <= INDEX_INTERVALS)
		return;
	s->index = keep(b, (size_t)65537 * sizeof(*s->index));
	if (!s->index)
		return;
	s->shift = shift;
	uint32_t j = 0;
	for (uint64_t h = 0; h <= 65536; h++) {
		uint64_t point = h << shift;
		while (j + 1 < s->count && s->key_lo[j + 1] <= point)
			j++;
		s->index[h] = j;
	}
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
	for (uint32_t i = 0; i < b->n && !b->failed; i++) {
		const struct ts_rule *r = rule_at(b, i);
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
		if (family == 4)
			build_index(b, out, 16);
	}
	free(l.ev);
}

static void build_port_field(struct builder *b, enum ts_field f, struct interval_set *out,
                             vec_t *none)
{
	bool (*neg)(const struct ts_rule *) = f == TS_FIELD_SPORT ? sport_negated : dport_negated;
	struct event_list l = {0};
	for (uint32_t i = 0; i < b->n && !b->failed; i++) {
		const struct ts_rule *r = rule_at(b, i);
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
		build_index(b, out, 0);
		/* A packet without ports matches no port term, negated or not. */
		dense_base(b, f, false, never_negated);
		*none = intern(b);
	}
	free(l.ev);
}

/* ---- table fields ---- */

/* The vector of rules whose field f allows value v (allows(r, v)). */
static vec_t table_vector(struct builder *b, enum ts_field f, unsigned v,
                          bool (*allows)(const struct ts_rule *, unsigned))
{
	dense_clear(b);
	for (uint32_t i = 0; i < b->n; i++) {
		const struct ts_rule *r = rule_at(b, i);
		dense_set(b, i, !constrains(r, f) || allows(r, v));
	}
	return intern(b);
}

static bool proto_allows(const struct ts_rule *r, unsigned v)
{
	return v < 256 && bit_is_set(r->protos, v);
}

static bool family_allows(const struct ts_rule *r, unsigned v)
{
	return (v == 1 && r->family == 4) || (v == 2 && r->family == 6);
}

static bool flags_allow(const struct ts_rule *r, unsigned v)
{
	return (v & r->tcp_flags_mask) == r->tcp_flags;
}

static bool icmp_type_allows(const struct ts_rule *r, unsigned v)
{
	return bit_is_set(r->icmp_types, v);
}

static bool icmp_code_allows(const struct ts_rule *r, unsigned v)
{
	return bit_is_set(r->icmp_codes, v);
}

static void build_tables(struct builder *b)
{
	struct group *g = b->g;
	if (g->active & FIELD(TS_FIELD_PROTO))
		for (unsigned v = 0; v < 257 && !b->failed; v++)
			g->proto[v] = table_vector(b, TS_FIELD_PROTO, v, proto_allows);
	if (g->active & FIELD(TS_FIELD_FAMILY))
		for (unsigned v = 0; v < 3 && !b->failed; v++)
			g->family[v] = table_vector(b, TS_FIELD_FAMILY, v, family_allows);
	if (g->active & FIELD(TS_FIELD_TCP_FLAGS)) {
		for (unsigned v = 0; v < 256 && !b->failed; v++)
			g->tcp_flags[v] = table_vector(b, TS_FIELD_TCP_FLAGS, v, flags_allow);
		dense_base(b, TS_FIELD_TCP_FLAGS, false, never_negated);
		g->tcp_flags_none = intern(b);
	}
	if (g->active & FIELD(TS_FIELD_ICMP_TYPE)) {
		for (unsigned v = 0; v < 256 && !b->failed; v++)
			g->icmp_type[v] = table_vector(b, TS_FIELD_ICMP_TYPE, v, icmp_type_allows);
		dense_base(b, TS_FIELD_ICMP_TYPE, false, never_negated);
		g->icmp_type_none = intern(b);
	}
	if (g->active & FIELD(TS_FIELD_ICMP_CODE)) {
		for (unsigned v = 0; v < 256 && !b->failed; v++)
			g->icmp_code[v] = table_vector(b, TS_FIELD_ICMP_CODE, v, icmp_code_allows);
		dense_base(b, TS_FIELD_ICMP_CODE, false, never_negated);
		g->icmp_code_none = intern(b);
	}
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
	uint64_t x, y;
	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	return x < y ? -1 : x > y;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void build_mac_field(struct builder *b)
{
	struct mac_set *m = &b->g->mac;
	uint32_t total = 0;
	for (uint32_t i = 0; i < b->n; i++)
		if (constrains(rule_at(b, i), TS_FIELD_MAC))
			total += rule_at(b, i)->mac.count;
	m->keys = keep(b, (size_t)(total + 1) * 8);
	m->vecs = keep(b, (size_t)(total + 1) * sizeof(vec_t));
	if (b->failed)
		return;
	for (uint32_t i = 0; i < b->n; i++)
		if (constrains(rule_at(b, i), TS_FIELD_MAC))
			for (uint32_t j = 0; j < rule_at(b, i)->mac.count; j++)
				m->keys[m->count++] = mac_key(rule_at(b, i)->mac.macs[j]);
	qsort(m->keys, m->count, 8, u64_cmp);
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->count; i++)
		if (n == 0 || m->keys[n - 1] != m->keys[i])
			m->keys[n++] = m->keys[i];
	m->count = n;
	for (uint32_t k = 0; k < m->count && !b->failed; k++) {
		dense_clear(b);
		for (uint32_t i = 0; i < b->n; i++) {
			const struct ts_rule *r = rule_at(b, i);
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
	struct iface_set *s = &b->g->iface;
	uint32_t total = 0;
	for (uint32_t i = 0; i < b->n; i++)
		if (constrains(rule_at(b, i), TS_FIELD_IFACE))
			total += rule_at(b, i)->iface.count;
	s->names = keep(b, (size_t)(total + 1) * TS_IFNAME_MAX);
	s->vecs = keep(b, (size_t)(total + 1) * sizeof(vec_t));
	if (b->failed)
		return;
	for (uint32_t i = 0; i < b->n; i++)
		if (constrains(rule_at(b, i), TS_FIELD_IFACE))
			for (uint32_t j = 0; j < rule_at(b, i)->iface.count; j++)
				memcpy(s->names[s->count++], rule_at(b, i)->iface.names[j],
				       TS_IFNAME_MAX);
	qsort(s->names, s->count, TS_IFNAME_MAX, name_cmp);
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->count; i++)
		if (n == 0 || strcmp(s->names[n - 1], s->names[i]) != 0)
			memmove(s->names[n++], s->names[i], TS_IFNAME_MAX);
	s->count = n;
	for (uint32_t k = 0; k < s->count && !b->failed; k++) {
		dense_clear(b);
		for (uint32_t i = 0; i < b->n; i++) {
			const struct ts_rule *r = rule_at(b, i);
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

/* Build one group: the rules in index[0..n), which all constrain `fields`. */
static void build_group(struct builder *b, struct group *g, uint32_t fields)
{
	b->g = g;
	b->n = g->rules;
	b->index = g->index;
	g->active = fields & ~FIELD(TS_FIELD_BPF);
	g->first_rule = g->index[0];
	g->words = b->W = (g->rules + 63) / 64;
	g->agg_words = b->A = (b->W + 63) / 64;
	g->packed = b->packed = b->W > DENSE_WORDS;
	b->table_used = 0;
	if (b->table)
		memset(b->table, 0, (size_t)b->table_cap * sizeof(*b->table));
	free(b->dense);
	free(b->cover);
	b->dense = calloc(b->W, 8);
	b->cover = calloc(g->rules, sizeof(*b->cover));
	if (!b->dense || !b->cover) {
		build_fail(b, "out of memory compiling the policy");
		return;
	}

	dense_clear(b);
	for (uint32_t i = 0; i < g->rules; i++)
		dense_set(b, i, true);
	g->all = intern(b);
	g->bpf_rules = keep(b, (size_t)b->W * 8);
	for (uint32_t i = 0; i < g->rules && !b->failed; i++)
		if (constrains(rule_at(b, i), TS_FIELD_BPF))
			g->bpf_rules[i / 64] |= 1ull << (i % 64);

	build_tables(b);
	if (g->active & FIELD(TS_FIELD_SRC)) {
		build_addr_field(b, TS_FIELD_SRC, 4, &g->src4);
		build_addr_field(b, TS_FIELD_SRC, 6, &g->src6);
		dense_base(b, TS_FIELD_SRC, true, src_negated);
		g->src_none = intern(b);
	}
	if (g->active & FIELD(TS_FIELD_DST)) {
		build_addr_field(b, TS_FIELD_DST, 4, &g->dst4);
		build_addr_field(b, TS_FIELD_DST, 6, &g->dst6);
		dense_base(b, TS_FIELD_DST, true, dst_negated);
		g->dst_none = intern(b);
	}
	if (g->active & FIELD(TS_FIELD_SPORT))
		build_port_field(b, TS_FIELD_SPORT, &g->sport, &g->sport_none);
	if (g->active & FIELD(TS_FIELD_DPORT))
		build_port_field(b, TS_FIELD_DPORT, &g->dport, &g->dport_none);
	if (g->active & FIELD(TS_FIELD_MAC))
		build_mac_field(b);
	if (g->active & FIELD(TS_FIELD_IFACE))
		build_iface_field(b);
}

/* The fields that decide a rule's group (bpf is checked per candidate). */
static uint32_t group_key(const struct ts_rule *r)
{
	return r->match_mask & ~FIELD(TS_FIELD_BPF);
}

struct ts_classifier *ts_classifier_build(const struct ts_policy *p, char *err, size_t errlen)
{
	struct ts_classifier *c = calloc(1, sizeof(*c));
	struct builder b = {.c = c, .p = p, .err = err, .errlen = errlen};
	if (!c) {
		snprintf(err, errlen, "%s: out of memory compiling the policy",
		         p->source ? p->source : "policy");
		return NULL;
	}
	c->policy = p;
	c->rules = p->rule_count;
	c->memory = sizeof(*c);

	/* Group the rules by the fields they constrain, in order of each
	 * group's first rule. Distinct keys are few (at most 2^11). */
	uint32_t *keys = calloc(p->rule_count + 1, sizeof(*keys));
	uint32_t *group_of = calloc(p->rule_count + 1, sizeof(*group_of));
	uint32_t *sizes = calloc(p->rule_count + 1, sizeof(*sizes));
	uint32_t *merged = calloc(p->rule_count + 1, sizeof(*merged));
	if (!keys || !group_of || !sizes || !merged)
		build_fail(&b, "out of memory compiling the policy");
	uint32_t nkeys = 0;
	for (uint32_t i = 0; i < p->rule_count && !b.failed; i++) {
		uint32_t key = group_key(&p->rules[i]), g = 0;
		while (g < nkeys && keys[g] != key)
			g++;
		if (g == nkeys)
			keys[nkeys++] = key;
		group_of[i] = g;
		sizes[g]++;
	}
	/* Inside one 64-rule word the intersection is exact, so small groups
	 * are merged (up to 64 rules) to save a lookup per group. */
	uint32_t open_group = UINT32_MAX, open_size = 0;
	for (uint32_t g = 0; g < nkeys && !b.failed; g++) {
		if (sizes[g] < 64 && open_group != UINT32_MAX && open_size + sizes[g] <= 64) {
			merged[g] = open_group;
			keys[open_group] |= keys[g];
			open_size += sizes[g];
			continue;
		}
		merged[g] = c->group_count;
		keys[c->group_count] = keys[g];
		if (sizes[g] < 64) {
			open_group = c->group_count;
			open_size = sizes[g];
		}
		c->group_count++;
	}
	for (uint32_t i = 0; i < p->rule_count && !b.failed; i++)
		group_of[i] = merged[group_of[i]];
	free(sizes);
	free(merged);
	c->groups = keep(&b, (size_t)(c->group_count ? c->group_count : 1) * sizeof(*c->groups));
	for (uint32_t i = 0; i < p->rule_count && !b.failed; i++)
		c->groups[group_of[i]].rules++;
	for (uint32_t g = 0; g < c->group_count && !b.failed; g++) {
		c->groups[g].index = keep(&b, (size_t)c->groups[g].rules * sizeof(uint32_t));
		c->groups[g].rules = 0;
	}
	for (uint32_t i = 0; i < p->rule_count && !b.failed; i++) {
		struct group *g = &c->groups[group_of[i]];
		g->index[g->rules++] = i;
	}
	for (uint32_t g = 0; g < c->group_count && !b.failed; g++) {
		build_group(&b, &c->groups[g], keys[g]);
		c->active |= c->groups[g].active;
	}

	free(keys);
	free(group_of);
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

/* Below this many intervals a forward scan beats binary search (its
 * branches are predictable; a handful of ports or prefixes is the norm). */
#define SCAN_INTERVALS 16

static vec_t find32(const struct interval_set *s, uint64_t key)
{
	if (s->count <= SCAN_INTERVALS) {
		uint32_t i = 0;
		while (i + 1 < s->count && s->key_lo[i + 1] <= key)
			i++;
		return s->vecs[i];
	}
	/* The answer is the last interval starting at or before key, in
	 * [lo, hi]: the whole set, or the slice the index points at. */
	uint32_t lo = 0, hi = s->count - 1;
	if (s->index) {
		uint64_t h = key >> s->shift;
		lo = s->index[h];
		hi = s->index[h + 1];
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;
		if (s->key_lo[mid] <= key)
			lo = mid;
		else
			hi = mid - 1;
	}
	return s->vecs[lo];
}

static bool key128_le(const struct interval_set *s, uint32_t i, uint64_t khi, uint64_t klo)
{
	return s->key_hi[i] < khi || (s->key_hi[i] == khi && s->key_lo[i] <= klo);
}

static vec_t find128(const struct interval_set *s, uint64_t khi, uint64_t klo)
{
	if (s->count <= SCAN_INTERVALS) {
		uint32_t i = 0;
		while (i + 1 < s->count && key128_le(s, i + 1, khi, klo))
			i++;
		return s->vecs[i];
	}
	uint32_t lo = 0, hi = s->count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (key128_le(s, mid, khi, klo))
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
		return find32(v4, ts_be32(a));
	if (d->l3 != TS_L3_IPV6)
		return none;
	return find128(v6, ts_be64(a), ts_be64(a + 8));
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

/* The lowest rule of group g that matches, as a global index, if it is
 * below `below`; else -1. */
static int32_t group_classify(const struct ts_policy *p, const struct group *g,
                              const struct ts_match_input *in, uint32_t below)
{
	const struct ts_decoded *d = in->dec;
	bool ip = d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6;
	bool tcp = d->l4 == TS_L4_TCP && d->has_l4_header;
	vec_t v[TS_FIELD_COUNT];
	unsigned k = 0;
	uint32_t active = g->active;

	if (active & FIELD(TS_FIELD_FAMILY))
		v[k++] = g->family[d->l3 == TS_L3_IPV4 ? 1 : d->l3 == TS_L3_IPV6 ? 2 : 0];
	if (active & FIELD(TS_FIELD_PROTO))
		v[k++] = g->proto[ip ? d->ip_proto : 256];
	if (active & FIELD(TS_FIELD_SRC))
		v[k++] = addr_vec(&g->src4, &g->src6, g->src_none, d, d->src_addr);
	if (active & FIELD(TS_FIELD_DST))
		v[k++] = addr_vec(&g->dst4, &g->dst6, g->dst_none, d, d->dst_addr);
	if (active & FIELD(TS_FIELD_SPORT))
		v[k++] = d->has_ports ? find32(&g->sport, d->sport) : g->sport_none;
	if (active & FIELD(TS_FIELD_DPORT))
		v[k++] = d->has_ports ? find32(&g->dport, d->dport) : g->dport_none;
	if (active & FIELD(TS_FIELD_MAC))
		v[k++] = mac_vec(&g->mac, d);
	if (active & FIELD(TS_FIELD_IFACE))
		v[k++] = iface_vec(&g->iface, in->iface);
	if (active & FIELD(TS_FIELD_TCP_FLAGS))
		v[k++] = tcp ? g->tcp_flags[d->tcp_flags] : g->tcp_flags_none;
	if (active & FIELD(TS_FIELD_ICMP_TYPE))
		v[k++] = has_icmp_header(d) ? g->icmp_type[d->icmp_type] : g->icmp_type_none;
	if (active & FIELD(TS_FIELD_ICMP_CODE))
		v[k++] = has_icmp_header(d) ? g->icmp_code[d->icmp_code] : g->icmp_code_none;

	if (k == 0)
		v[k++] = g->all; /* a group of rules that constrain nothing */
	uint32_t A = g->agg_words;
	for (uint32_t a = 0; a < A; a++) {
		uint64_t agg = ~0ull;
		for (unsigned j = 0; j < k; j++)
			agg &= v[j][a];
		while (agg) {
			unsigned bit = (unsigned)__builtin_ctzll(agg);
			uint32_t w = a * 64 + bit;
			uint64_t word = ~0ull;
			if (!g->packed) {
				for (unsigned j = 0; j < k; j++)
					word &= v[j][2 * A + w];
			} else {
				uint64_t below_bit = (1ull << bit) - 1;
				for (unsigned j = 0; j < k; j++) {
					uint64_t rank =
					        v[j][A + a] +
					        (uint64_t)__builtin_popcountll(v[j][a] & below_bit);
					word &= v[j][2 * A + rank];
				}
			}
			while (word) {
				uint32_t local = w * 64 + (uint32_t)__builtin_ctzll(word);
				uint32_t r = g->index[local];
				if (r >= below)
					return -1; /* an earlier group matched first */
				if (!(g->bpf_rules[w] & (word & -word)) ||
				    (p->bpf_match && p->bpf_match(&p->rules[r], in)))
					return (int32_t)r;
				word &= word - 1;
			}
			agg &= agg - 1;
		}
	}
	return -1;
}

int32_t ts_classify(const struct ts_classifier *c, const struct ts_match_input *in)
{
	uint32_t best = UINT32_MAX;
	for (uint32_t i = 0; i < c->group_count; i++) {
		const struct group *g = &c->groups[i];
		if (g->first_rule >= best)
			break; /* groups are in order of their first rule */
		int32_t r = group_classify(c->policy, g, in, best);
		if (r >= 0)
			best = (uint32_t)r;
	}
	return best == UINT32_MAX ? -1 : (int32_t)best;
}

void ts_classifier_get_stats(const struct ts_classifier *c, struct ts_classifier_stats *out)
{
	out->rules = c->rules;
	out->vectors = c->vector_count;
	out->intervals = c->interval_count;
	out->fields = (uint32_t)__builtin_popcount(c->active);
	out->groups = c->group_count;
	out->memory = c->memory;
}
