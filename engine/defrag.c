/* IP defragmentation: bounded trackers, first copy wins, records kept whole. */
#include <stdlib.h>
#include <string.h>

#include "torsieve/bytes.h"
#include "torsieve/defrag.h"

#define UNIT         8              /* fragment offsets count in 8-byte units */
#define MAX_UNITS    (65536 / UNIT) /* a datagram's fragmentable part is below 64 KiB */
#define NONE         UINT32_MAX
#define IPV6_HLEN    40
#define IP_MAX_LEN   65535u
#define DGRAM_BUFFER (IPV6_HLEN + IP_MAX_LEN + 1)

void ts_defrag_config_default(struct ts_defrag_config *c)
{
	c->max_datagrams = 1024;
	c->memory = 4ull << 20;
	c->timeout = 30;
	c->ipv4_overlap = TS_DEFRAG_FIRST;
}

const char *ts_defrag_fate_name(enum ts_defrag_fate f)
{
	static const char *const names[] = {
#define TS_DEFRAG_FATE_NAME(id, name) name,
	        TS_DEFRAG_FATE_LIST(TS_DEFRAG_FATE_NAME)
#undef TS_DEFRAG_FATE_NAME
	};
	return (unsigned)f < TS_DEFRAG_FATE_COUNT ? names[f] : "?";
}

/* A record and what the decoder said about its share of the datagram. */
struct held {
	struct ts_defrag_record rec; /* first: records are handed out as this */
	uint32_t offset;             /* in the datagram's fragmentable part */
	uint32_t data_len;           /* on the wire */
	uint32_t data_captured;      /* of those, in the capture */
	uint32_t data_offset;        /* in the frame */
	uint32_t l3_offset, frag_hdr_offset, frag_nh_offset;
	bool more;
	bool owned; /* pkt.data is this record's own copy (bytes below) */
	uint8_t bytes[];
};

struct datagram_key {
	uint8_t src[16], dst[16];
	uint32_t id;
	uint16_t vlan[2];
	uint8_t family;
	uint8_t proto; /* IPv4 only: IPv6 fragments of one datagram may name it differently */
};

struct tracker {
	struct datagram_key key;
	bool dead; /* dropped for overlap: later fragments are dropped too */
	bool have_last;
	uint32_t total;   /* fragmentable bytes, known once the last fragment came */
	uint32_t max_end; /* the furthest any fragment reached */
	uint32_t covered; /* units held */
	int64_t created_usec;
	struct held *head; /* the first fragment at offset 0: its headers lead the datagram */
	struct ts_defrag_record *first, *last;
	uint32_t record_count;
	uint32_t hash, hash_next;
	uint32_t fifo_prev, fifo_next; /* by creation: the oldest first */
	uint8_t units[MAX_UNITS / 8];  /* bit per unit: held */
};

struct ts_defrag {
	struct ts_defrag_config cfg;
	ts_defrag_done_fn done;
	void *ctx;
	struct tracker *trackers;
	uint32_t *buckets;
	uint32_t bucket_mask;
	uint32_t free_head; /* through hash_next */
	uint32_t fifo_head, fifo_tail;
	struct ts_defrag_stats stats;
	uint8_t written[MAX_UNITS / 8]; /* assembly scratch */
	uint8_t datagram[DGRAM_BUFFER];
};

static bool unit_test(const uint8_t *bits, uint32_t u)
{
	return bits[u / 8] & (1u << (u % 8));
}

static void unit_set(uint8_t *bits, uint32_t u)
{
	bits[u / 8] |= (uint8_t)(1u << (u % 8));
}

static uint32_t units_of(uint32_t bytes)
{
	return (bytes + UNIT - 1) / UNIT;
}

static uint32_t key_hash(const struct datagram_key *k)
{
	/* FNV-1a: keys come from the wire, but the table is small and chained,
	 * and the trackers cap bounds any chain. */
	const uint8_t *p = (const uint8_t *)k;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void key_from(const struct ts_decoded *d, struct datagram_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->src, d->src_addr, 16);
	memcpy(k->dst, d->dst_addr, 16);
	k->id = d->frag_id;
	k->vlan[0] = d->vlan_count > 0 ? d->vlan_ids[0] : 0;
	k->vlan[1] = d->vlan_count > 1 ? d->vlan_ids[1] : 0;
	k->family = d->l3 == TS_L3_IPV6 ? 6 : 4;
	k->proto = d->l3 == TS_L3_IPV6 ? 0 : d->ip_proto;
}

struct ts_defrag *ts_defrag_new(const struct ts_defrag_config *cfg, ts_defrag_done_fn done,
                                void *ctx)
{
	uint32_t n = cfg->max_datagrams ? cfg->max_datagrams : 1;
	uint32_t nb = 1;
	while (nb < n * 2 && nb < (1u << 30))
		nb <<= 1;
	struct ts_defrag *df = calloc(1, sizeof(*df));
	if (!df)
		return NULL;
	df->trackers = calloc(n, sizeof(*df->trackers));
	df->buckets = malloc(nb * sizeof(*df->buckets));
	if (!df->trackers || !df->buckets) {
		ts_defrag_free(df);
		return NULL;
	}
	df->cfg = *cfg;
	df->cfg.max_datagrams = n;
	df->done = done;
	df->ctx = ctx;
	df->bucket_mask = nb - 1;
	memset(df->buckets, 0xff, nb * sizeof(*df->buckets));
	for (uint32_t i = 0; i < n; i++)
		df->trackers[i].hash_next = i + 1 < n ? i + 1 : NONE;
	df->free_head = 0;
	df->fifo_head = df->fifo_tail = NONE;
	return df;
}

static void records_free(struct ts_defrag_record *r)
{
	while (r) {
		struct ts_defrag_record *next = r->next;
		struct held *h = (struct held *)r;
		if (h->owned)
			free(h);
		r = next;
	}
}

void ts_defrag_free(struct ts_defrag *df)
{
	if (!df)
		return;
	if (df->trackers)
		for (uint32_t i = 0; i < df->cfg.max_datagrams; i++)
			records_free(df->trackers[i].first);
	free(df->trackers);
	free(df->buckets);
	free(df);
}

const struct ts_defrag_stats *ts_defrag_get_stats(const struct ts_defrag *df)
{
	return &df->stats;
}

static struct tracker *tracker_find(struct ts_defrag *df, const struct datagram_key *k,
                                    uint32_t hash)
{
	for (uint32_t i = df->buckets[hash & df->bucket_mask]; i != NONE;
	     i = df->trackers[i].hash_next) {
		struct tracker *t = &df->trackers[i];
		if (t->hash == hash && !memcmp(&t->key, k, sizeof(*k)))
			return t;
	}
	return NULL;
}

/* Free t's records (those it owns), with their accounting. */
static void tracker_empty(struct ts_defrag *df, struct tracker *t)
{
	for (struct ts_defrag_record *r = t->first; r; r = r->next)
		if (((const struct held *)r)->owned) {
			df->stats.memory -= TS_DEFRAG_RECORD_COST + r->pkt.caplen;
			df->stats.held--;
		}
	records_free(t->first);
	t->first = t->last = NULL;
	t->record_count = 0;
	t->head = NULL;
}

/* Take t out of the hash and the FIFO, free its records, and put it back on
 * the free list. */
static void tracker_release(struct ts_defrag *df, struct tracker *t)
{
	uint32_t idx = (uint32_t)(t - df->trackers);
	uint32_t *link = &df->buckets[t->hash & df->bucket_mask];
	while (*link != idx)
		link = &df->trackers[*link].hash_next;
	*link = t->hash_next;
	if (t->fifo_prev != NONE)
		df->trackers[t->fifo_prev].fifo_next = t->fifo_next;
	else
		df->fifo_head = t->fifo_next;
	if (t->fifo_next != NONE)
		df->trackers[t->fifo_next].fifo_prev = t->fifo_prev;
	else
		df->fifo_tail = t->fifo_prev;
	tracker_empty(df, t);
	df->stats.in_progress--;
	t->hash_next = df->free_head;
	df->free_head = idx;
}

static struct tracker *tracker_new(struct ts_defrag *df, const struct datagram_key *k,
                                   uint32_t hash, int64_t now_usec)
{
	uint32_t idx = df->free_head;
	struct tracker *t = &df->trackers[idx];
	df->free_head = t->hash_next;
	memset(t, 0, sizeof(*t));
	t->key = *k;
	t->hash = hash;
	t->created_usec = now_usec;
	t->hash_next = df->buckets[hash & df->bucket_mask];
	df->buckets[hash & df->bucket_mask] = idx;
	t->fifo_next = NONE;
	t->fifo_prev = df->fifo_tail;
	if (df->fifo_tail != NONE)
		df->trackers[df->fifo_tail].fifo_next = idx;
	else
		df->fifo_head = idx;
	df->fifo_tail = idx;
	df->stats.in_progress++;
	return t;
}

/* Report a datagram that ends without being reassembled, with extra (a
 * record not held, may be NULL) after its own, and release it. dead keeps the
 * tracker (without records) so later fragments of it are dropped too. */
static void tracker_drop(struct ts_defrag *df, struct tracker *t, enum ts_defrag_fate fate,
                         struct held *extra, bool dead)
{
	if (extra) {
		extra->rec.next = NULL;
		if (t->last)
			t->last->next = &extra->rec;
		else
			t->first = &extra->rec;
		t->last = &extra->rec;
		t->record_count++;
	}
	if (t->record_count) {
		struct ts_defrag_result r = {
		        .fate = fate, .records = t->first, .record_count = t->record_count};
		df->stats.fates[fate]++;
		df->stats.dropped += t->record_count;
		df->done(df->ctx, &r);
	}
	if (extra && t->last == &extra->rec) {
		/* extra is the caller's: detach it before the records are freed */
		struct ts_defrag_record **link = &t->first;
		while (*link != &extra->rec)
			link = &(*link)->next;
		*link = NULL;
	}
	if (!dead) {
		tracker_release(df, t);
		return;
	}
	tracker_empty(df, t);
	t->dead = true;
}

/* Report a fragment that is not held, on its own. */
static void report_alone(struct ts_defrag *df, struct held *h, enum ts_defrag_fate fate)
{
	h->rec.next = NULL;
	struct ts_defrag_result r = {.fate = fate, .records = &h->rec, .record_count = 1};
	df->stats.dropped++;
	df->done(df->ctx, &r);
}

static void expire(struct ts_defrag *df, int64_t now_usec)
{
	int64_t limit = (int64_t)df->cfg.timeout * 1000000;
	while (df->fifo_head != NONE) {
		struct tracker *t = &df->trackers[df->fifo_head];
		if (now_usec - t->created_usec <= limit)
			break;
		tracker_drop(df, t, TS_DEFRAG_TIMEOUT, NULL, false);
	}
}

/* The length of the datagram's headers: the first fragment's, up to its
 * data (IPv4) or up to its fragment header (IPv6). */
static uint32_t header_len(const struct tracker *t)
{
	const struct held *h = t->head;
	return t->key.family == 4 ? h->data_offset - h->l3_offset
	                          : h->frag_hdr_offset - h->l3_offset;
}

/* The datagram's headers (hlen bytes): the first fragment's, with the
 * fragmentation undone. */
static void write_headers(struct ts_defrag *df, const struct tracker *t, uint32_t hlen)
{
	const struct held *h = t->head;
	const uint8_t *frame = h->rec.pkt.data;
	uint8_t *out = df->datagram;
	memcpy(out, frame + h->l3_offset, hlen);
	if (t->key.family == 4) {
		uint32_t totlen = hlen + t->total;
		out[2] = (uint8_t)(totlen >> 8);
		out[3] = (uint8_t)totlen;
		out[6] &= 0xc0; /* keep DF and the reserved bit; clear MF and the offset */
		out[7] = 0;
		return;
	}
	out[h->frag_nh_offset - h->l3_offset] = frame[h->frag_hdr_offset];
	uint32_t plen = hlen - IPV6_HLEN + t->total;
	out[4] = (uint8_t)(plen >> 8);
	out[5] = (uint8_t)plen;
}

/* Copy the fragments' bytes in arrival order, each unit from the first
 * record that brought it. Returns where the first byte no capture holds is
 * (t->total when every byte was captured). */
static uint32_t write_data(struct ts_defrag *df, const struct tracker *t, uint8_t *out)
{
	uint32_t units = units_of(t->total), hole = t->total;
	memset(df->written, 0, (units + 7) / 8);
	for (const struct ts_defrag_record *r = t->first; r; r = r->next) {
		const struct held *h = (const struct held *)r;
		uint32_t end = h->offset + h->data_len, cap_end = h->offset + h->data_captured;
		uint32_t u = h->offset / UNIT, u_end = units_of(end);
		while (u < u_end) {
			if (unit_test(df->written, u)) {
				u++;
				continue;
			}
			uint32_t run = u;
			while (run < u_end && !unit_test(df->written, run))
				unit_set(df->written, run++);
			uint32_t a = u * UNIT, b = run * UNIT < end ? run * UNIT : end;
			uint32_t copy_end = cap_end < b ? cap_end : b;
			if (copy_end > a)
				memcpy(out + a, r->pkt.data + h->data_offset + (a - h->offset),
				       copy_end - a);
			if (copy_end < b) {
				uint32_t from = copy_end > a ? copy_end : a;
				memset(out + from, 0, b - from);
				if (from < hole)
					hole = from;
			}
			u = run;
		}
	}
	return hole;
}

static void reassemble(struct ts_defrag *df, struct tracker *t)
{
	uint32_t hlen = header_len(t);
	/* IPv4's total length and IPv6's payload length are 16 bits: a datagram
	 * that would not fit (the ping of death) is refused. */
	uint32_t limit = t->key.family == 4 ? IP_MAX_LEN : IP_MAX_LEN + IPV6_HLEN;
	if (hlen + t->total > limit) {
		tracker_drop(df, t, TS_DEFRAG_INCONSISTENT, NULL, false);
		return;
	}
	write_headers(df, t, hlen);
	uint32_t hole = write_data(df, t, df->datagram + hlen);
	struct ts_defrag_result r = {
	        .fate = TS_DEFRAG_REASSEMBLED,
	        .datagram = df->datagram,
	        .caplen = hlen + hole,
	        .len = hlen + t->total,
	        .records = t->first,
	        .record_count = t->record_count,
	        .head = &t->head->rec,
	};
	df->stats.fates[TS_DEFRAG_REASSEMBLED]++;
	df->stats.datagrams++;
	df->done(df->ctx, &r);
	tracker_release(df, t);
}

static void held_from(struct held *h, const struct ts_packet *pkt, const struct ts_decoded *d)
{
	h->rec.next = NULL;
	h->rec.pkt = *pkt;
	h->offset = d->frag_offset;
	h->data_offset = d->frag_data_offset;
	h->data_len = d->l3_offset + d->l3_len - d->frag_data_offset;
	h->data_captured = 0;
	if (pkt->caplen > h->data_offset) {
		h->data_captured = pkt->caplen - h->data_offset;
		if (h->data_captured > h->data_len)
			h->data_captured = h->data_len;
	}
	h->l3_offset = d->l3_offset;
	h->frag_hdr_offset = d->frag_hdr_offset;
	h->frag_nh_offset = d->frag_nh_offset;
	h->more = d->frag_more;
	h->owned = false;
}

/* Is some held record exactly this one's range? */
static bool exact_duplicate(const struct tracker *t, const struct held *in)
{
	for (const struct ts_defrag_record *r = t->first; r; r = r->next) {
		const struct held *h = (const struct held *)r;
		if (h->offset == in->offset && h->data_len == in->data_len)
			return true;
	}
	return false;
}

/* Do this fragment's lengths contradict what the datagram's others said? */
static bool contradicts(const struct tracker *t, const struct held *in)
{
	uint32_t end = in->offset + in->data_len;
	if (!in->more)
		return (t->have_last && t->total != end) || t->max_end > end;
	return t->have_last && end > t->total;
}

void ts_defrag_add(struct ts_defrag *df, const struct ts_packet *pkt, const struct ts_decoded *d,
                   int64_t now_usec)
{
	struct held in;
	held_from(&in, pkt, d);
	df->stats.fragments++;
	expire(df, now_usec);

	struct datagram_key k;
	key_from(d, &k);
	uint32_t hash = key_hash(&k);
	struct tracker *t = tracker_find(df, &k, hash);
	if (t && t->dead) {
		report_alone(df, &in, TS_DEFRAG_OVERLAP);
		return;
	}
	uint64_t cost = TS_DEFRAG_RECORD_COST + (uint64_t)pkt->caplen;
	if (!t) {
		if (df->stats.in_progress == df->cfg.max_datagrams)
			tracker_drop(df, &df->trackers[df->fifo_head], TS_DEFRAG_EVICTED, NULL,
			             false);
		t = tracker_new(df, &k, hash, now_usec);
	}
	/* Make room by pushing out the oldest other datagrams; this one is
	 * too big only if it alone does not fit. */
	uint32_t idx = df->fifo_head, self = (uint32_t)(t - df->trackers);
	while (df->stats.memory + cost > df->cfg.memory && idx != NONE) {
		uint32_t next = df->trackers[idx].fifo_next;
		if (idx != self)
			tracker_drop(df, &df->trackers[idx], TS_DEFRAG_EVICTED, NULL, false);
		idx = next;
	}
	if (df->stats.memory + cost > df->cfg.memory) {
		tracker_drop(df, t, TS_DEFRAG_TOO_BIG, &in, false);
		return;
	}
	if (contradicts(t, &in)) {
		tracker_drop(df, t, TS_DEFRAG_INCONSISTENT, &in, false);
		return;
	}

	uint32_t end = in.offset + in.data_len;
	uint32_t u_first = in.offset / UNIT, u_end = units_of(end);
	bool overlap = false;
	for (uint32_t u = u_first; u < u_end && !overlap; u++)
		overlap = unit_test(t->units, u);
	bool duplicate = overlap && exact_duplicate(t, &in);
	if (duplicate) {
		df->stats.duplicates++;
	} else if (overlap) {
		df->stats.overlaps++;
		if (t->key.family == 6 || df->cfg.ipv4_overlap == TS_DEFRAG_DROP) {
			tracker_drop(df, t, TS_DEFRAG_OVERLAP, &in, true);
			return;
		}
	}

	struct held *h = malloc(sizeof(*h) + pkt->caplen);
	if (!h) {
		tracker_drop(df, t, TS_DEFRAG_NO_MEMORY, &in, false);
		return;
	}
	*h = in;
	h->owned = true;
	memcpy(h->bytes, pkt->data, pkt->caplen);
	h->rec.pkt.data = h->bytes;
	if (t->last)
		t->last->next = &h->rec;
	else
		t->first = &h->rec;
	t->last = &h->rec;
	t->record_count++;
	df->stats.memory += cost;
	df->stats.held++;

	if (!duplicate)
		for (uint32_t u = u_first; u < u_end; u++)
			if (!unit_test(t->units, u)) {
				unit_set(t->units, u);
				t->covered++;
			}
	if (end > t->max_end)
		t->max_end = end;
	if (!in.more) {
		t->have_last = true;
		t->total = end;
	}
	if (in.offset == 0 && !t->head)
		t->head = h;
	if (t->have_last && t->covered == units_of(t->total))
		reassemble(df, t);
}

void ts_defrag_expire(struct ts_defrag *df, int64_t now_usec)
{
	expire(df, now_usec);
}

void ts_defrag_flush(struct ts_defrag *df)
{
	while (df->fifo_head != NONE) {
		struct tracker *t = &df->trackers[df->fifo_head];
		tracker_drop(df, t, TS_DEFRAG_INCOMPLETE, NULL, false);
	}
}
