/*
 * Differential test of the policy matchers against libpcap.
 *
 * Thousands of random policies (seeded, reproducible) are generated as policy
 * TEXT and parsed with ts_policy_parse(). Each rule is also translated into a
 * libpcap filter expression that means the same thing, compiled with
 * pcap_compile() for the link type of each fixture capture in test/pcaps/.
 * For every packet of every capture (and for synthetic packets made from them
 * by writing addresses and ports at the edges of the policy's prefixes and
 * ranges), the first rule whose BPF program accepts the packet must be the
 * rule ts_classify() (the compiled classifier) and ts_policy_match_linear()
 * (the reference) both pick; -1 when none does.
 *
 * Where torsieve and libpcap differ on purpose, the translation says so and
 * the packet is compared compiled-vs-linear only, counted per reason (see
 * rule_to_bpf, bpf_first_match and eval_packet):
 *   - anomalous packets: torsieve drops them before any rule (the linear
 *     matcher returns -1; ts_policy_judge never calls ts_classify on them);
 *   - IPv6 extension headers: libpcap does not walk the chain (`ip6 proto`
 *     follows one fragment header, ports none), so such a packet is compared
 *     only while the rules before its first match use family, addresses and
 *     MAC alone;
 *   - VLAN tags: on Ethernet the expression gets one `vlan` per tag (which
 *     moves libpcap's offsets past it); the cooked captures have no `vlan`;
 *   - `mac` on Linux cooked captures: `ether src` exists only for DLT_EN10MB,
 *     and the cooked header carries the sender's MAC, which torsieve matches.
 *     On links with no MAC at all a mac term never matches, negated or not,
 *     and is compared as such; so is `on IFACE`, as capture files have no
 *     input interface (every clean packet is also run through both matchers
 *     with one, compiled vs linear).
 *
 * Reproduce one policy: TS_BPF_ONE=<policy seed printed in a failure> runs
 * that policy alone and prints its text and BPF translation. TS_BPF_SEED and
 * TS_BPF_POLICIES change the base seed and the number of policies.
 */
#include <dirent.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <arpa/inet.h>

#include "check.h"
#include "torsieve/classify.h"
#include "torsieve/decode.h"
#include "torsieve/policy.h"
#include "torsieve/source.h"

#define PCAP_DIR          "test/pcaps"
#define DEFAULT_SEED      0x7015e7eb9f00d5eeull
#define DEFAULT_POLICIES  3000u
#define SYNTHETIC_PER_POL 48u
#define MAX_ITEMS         6
#define MAX_DETAILED      4 /* mismatches printed in full */

/* ---- deterministic randomness ---- */

static uint64_t rng_state;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
	return splitmix(&rng_state);
}

static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static bool chance(uint32_t percent)
{
	return below(100) < percent;
}

/* ---- a growing string ---- */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s)
			abort();
		b->s = s;
		b->cap = cap;
	}
}

static void sb_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

static void sb_free(struct sbuf *b)
{
	free(b->s);
	*b = (struct sbuf){0};
}

/* ---- fixtures ---- */

/* A libpcap compile target: a link type, and for the BSD loopback types the
 * capture itself. pcap_open_dead() compiles as for a live capture on this
 * host, where `ip6` on DLT_NULL/DLT_LOOP means Linux's AF_INET6 (10); against
 * a capture file (as tcpdump compiles) it means the BSD values 24, 28 and 30
 * the decoder uses, and DLT_NULL's family is read in the byte order the file
 * was written in. Elsewhere the link type alone decides: pcap_open_dead(). */
struct context {
	int dlt;
	bool swapped;
	pcap_t *pcap;
	uint32_t l2len; /* link header length without VLAN tags */
	bool ethernet;
	bool no_mac; /* the link header has no MAC address */
};

struct packet {
	uint8_t *data; /* exactly caplen bytes on the heap, so ASan sees overreads */
	uint32_t caplen, wirelen;
	uint32_t fixture, number; /* 1-based in its capture */
	struct ts_decoded dec;
};

struct fixture {
	char path[256];
	int ctx; /* -1: a link type torsieve does not decode (every packet anomalous) */
	enum ts_link link;
	uint32_t first, count;
	uint64_t compared; /* against libpcap */
};

#define MAX_FIXTURES 64
#define MAX_CONTEXTS 16

static struct fixture fixtures[MAX_FIXTURES];
static uint32_t fixture_count;
static struct context contexts[MAX_CONTEXTS];
static uint32_t context_count;
static struct packet *packets;
static uint32_t packet_count, packet_cap;
static uint32_t *templates; /* clean IP packets, for synthetic ones */
static uint32_t template_count;

static uint32_t link_header_len(enum ts_link link)
{
	switch (link) {
	case TS_LINK_ETHERNET:
		return 14;
	case TS_LINK_SLL:
		return 16;
	case TS_LINK_SLL2:
		return 20;
	case TS_LINK_NULL:
	case TS_LINK_LOOP:
		return 4;
	default:
		return 0;
	}
}

/* The compile context for a capture; pcap is the open capture, which the
 * context keeps when it needs it (and closes otherwise). */
static int context_for(pcap_t *pcap, enum ts_link link)
{
	int dlt = pcap_datalink(pcap);
	bool loopback = dlt == DLT_NULL || dlt == DLT_LOOP;
	bool swapped = loopback && pcap_is_swapped(pcap);
	for (uint32_t i = 0; i < context_count; i++)
		if (contexts[i].dlt == dlt && contexts[i].swapped == swapped) {
			pcap_close(pcap);
			return (int)i;
		}
	if (context_count == MAX_CONTEXTS)
		abort();
	struct context *c = &contexts[context_count];
	*c = (struct context){.dlt = dlt,
	                      .swapped = swapped,
	                      .l2len = link_header_len(link),
	                      .ethernet = dlt == DLT_EN10MB,
	                      .no_mac = link != TS_LINK_ETHERNET && link != TS_LINK_SLL &&
	                                link != TS_LINK_SLL2};
	if (loopback) {
		c->pcap = pcap;
	} else {
		pcap_close(pcap);
		c->pcap = pcap_open_dead(dlt, 262144);
		if (!c->pcap)
			abort();
	}
	return (int)context_count++;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void add_packet(uint32_t fixture, uint32_t number, const uint8_t *data, uint32_t caplen,
                       uint32_t wirelen, enum ts_link link)
{
	if (packet_count == packet_cap) {
		packet_cap = packet_cap ? packet_cap * 2 : 1024;
		packets = realloc(packets, packet_cap * sizeof(*packets));
		if (!packets)
			abort();
	}
	struct packet *p = &packets[packet_count++];
	*p = (struct packet){
	        .caplen = caplen, .wirelen = wirelen, .fixture = fixture, .number = number};
	p->data = malloc(caplen ? caplen : 1);
	if (!p->data)
		abort();
	memcpy(p->data, data, caplen);
	ts_decode(link, p->data, caplen, wirelen, &p->dec);
}

/* Reads every capture in test/pcaps/ (not bad/, which libpcap must refuse). */
static bool load_fixtures(void)
{
	DIR *dir = opendir(PCAP_DIR);
	if (!dir) {
		printf("FAIL %s: cannot open %s (run from the repository root)\n", check_current,
		       PCAP_DIR);
		return false;
	}
	char *names[MAX_FIXTURES];
	uint32_t n = 0;
	for (struct dirent *e; (e = readdir(dir));)
		if ((ends_with(e->d_name, ".pcap") || ends_with(e->d_name, ".pcapng")) &&
		    n < MAX_FIXTURES)
			names[n++] = strdup(e->d_name);
	closedir(dir);
	qsort(names, n, sizeof(names[0]), name_cmp);
	bool ok = n > 0;
	for (uint32_t i = 0; i < n; i++) {
		struct fixture *f = &fixtures[fixture_count];
		snprintf(f->path, sizeof(f->path), "%s/%s", PCAP_DIR, names[i]);
		free(names[i]);
		char errbuf[PCAP_ERRBUF_SIZE];
		pcap_t *pcap = pcap_open_offline(f->path, errbuf);
		if (!pcap) {
			printf("FAIL %s: %s: %s\n", check_current, f->path, errbuf);
			ok = false;
			continue;
		}
		f->link = ts_link_from_dlt(pcap_datalink(pcap));
		f->first = packet_count;
		struct pcap_pkthdr *hdr;
		const u_char *data;
		int rc;
		while ((rc = pcap_next_ex(pcap, &hdr, &data)) == 1)
			add_packet(fixture_count, packet_count - f->first + 1, data, hdr->caplen,
			           hdr->len, f->link);
		if (rc != PCAP_ERROR_BREAK) {
			printf("FAIL %s: %s: %s\n", check_current, f->path, pcap_geterr(pcap));
			ok = false;
		}
		f->count = packet_count - f->first;
		if (f->link == TS_LINK_UNSUPPORTED) {
			f->ctx = -1;
			pcap_close(pcap);
		} else {
			f->ctx = context_for(pcap, f->link);
		}
		fixture_count++;
	}
	templates = calloc(packet_count + 1, sizeof(*templates));
	for (uint32_t i = 0; i < packet_count; i++) {
		const struct ts_decoded *d = &packets[i].dec;
		if (d->anomaly == TS_ANOM_NONE && (d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6))
			templates[template_count++] = i;
	}
	return ok && packet_count > 0 && template_count > 0;
}

static void free_fixtures(void)
{
	for (uint32_t i = 0; i < packet_count; i++)
		free(packets[i].data);
	free(packets);
	free(templates);
	for (uint32_t i = 0; i < context_count; i++)
		pcap_close(contexts[i].pcap);
}

/* ---- what the fixtures hold: values the generator draws from ---- */

struct pools {
	uint8_t v4[512][4];
	uint32_t n4;
	uint8_t v6[512][16];
	uint32_t n6;
	uint16_t ports[1024];
	uint32_t nports;
	uint8_t macs[128][6];
	uint32_t nmacs;
	uint8_t icmp[128][2]; /* type, code */
	uint32_t nicmp;
	uint8_t protos[64];
	uint32_t nprotos;
	uint8_t tcpflags[64];
	uint32_t ntcpflags;
	uint8_t ttls[64];
	uint32_t nttls;
};

static struct pools pool;

static void pool_add(void *arr, uint32_t *n, uint32_t cap, const void *v, size_t size)
{
	uint8_t *a = arr;
	for (uint32_t i = 0; i < *n; i++)
		if (memcmp(a + i * size, v, size) == 0)
			return;
	if (*n < cap)
		memcpy(a + (*n)++ * size, v, size);
}

#define POOL_ADD(field, count, value)                                                        \
	pool_add(pool.field, &pool.count, sizeof(pool.field) / sizeof(pool.field[0]), value, \
	         sizeof(pool.field[0]))

static void harvest_pools(void)
{
	static const uint8_t protos[] = {1, 2, 6, 17, 47, 50, 51, 58, 132, 0, 255};
	for (size_t i = 0; i < sizeof(protos); i++)
		POOL_ADD(protos, nprotos, &protos[i]);
	for (uint32_t i = 0; i < packet_count; i++) {
		const struct ts_decoded *d = &packets[i].dec;
		if (d->anomaly != TS_ANOM_NONE)
			continue;
		if (d->has_mac && fixtures[packets[i].fixture].link == TS_LINK_ETHERNET) {
			POOL_ADD(macs, nmacs, d->src_mac);
			POOL_ADD(macs, nmacs, d->dst_mac);
		}
		if (d->l3 == TS_L3_IPV4) {
			POOL_ADD(v4, n4, d->src_addr);
			POOL_ADD(v4, n4, d->dst_addr);
		} else if (d->l3 == TS_L3_IPV6) {
			POOL_ADD(v6, n6, d->src_addr);
			POOL_ADD(v6, n6, d->dst_addr);
		} else {
			continue;
		}
		POOL_ADD(protos, nprotos, &d->ip_proto);
		POOL_ADD(ttls, nttls, &d->ttl);
		if (d->has_ports) {
			POOL_ADD(ports, nports, &d->sport);
			POOL_ADD(ports, nports, &d->dport);
		}
		if (d->l4 == TS_L4_TCP && d->has_l4_header)
			POOL_ADD(tcpflags, ntcpflags, &d->tcp_flags);
		if ((d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) && d->has_l4_header) {
			uint8_t tc[2] = {d->icmp_type, d->icmp_code};
			POOL_ADD(icmp, nicmp, tc);
		}
	}
}

/* ---- the policy model: what the generator decides, emitted two ways ---- */

struct gprefix {
	uint8_t family, len;
	uint8_t addr[16];
};

struct gaddr {
	bool on, negated;
	uint32_t n;
	struct gprefix p[MAX_ITEMS];
};

struct gports {
	bool on, negated;
	uint32_t n;
	uint16_t lo[MAX_ITEMS], hi[MAX_ITEMS];
};

struct gmacs {
	bool on, negated;
	uint32_t n;
	uint8_t mac[MAX_ITEMS][6];
};

struct gifaces {
	bool on, negated;
	uint32_t n;
	char name[MAX_ITEMS][16];
};

/* The bpf escape hatch: expressions over the IP packet (torsieve compiles
 * them for DLT_RAW), with their translation to the capture's link type. */
enum gbpf {
	BPF_NONE = -1,
	BPF_TCP,
	BPF_UDP,
	BPF_ICMP,
	BPF_ICMP6,
	BPF_IP,
	BPF_IP6,
	BPF_NOT_ICMP,
	BPF_TTL_GE,
	BPF_HOPLIMIT,
	BPF_LEN_GE,
	BPF_TCP_SYN,
	BPF_UDP_DPORT,
	BPF_KINDS
};

struct grule {
	enum ts_verdict action;
	enum ts_reject_kind reject;
	bool all;
	uint8_t family; /* 0: not constrained */
	uint32_t nprotos;
	uint8_t protos[MAX_ITEMS];
	struct gaddr src, dst;
	struct gports sport, dport;
	struct gmacs mac;
	struct gifaces iface;
	bool flags_on;
	uint8_t flags, mask;
	uint32_t ntypes, ncodes;
	uint8_t types[MAX_ITEMS], codes[MAX_ITEMS];
	int bpf; /* enum gbpf */
	uint32_t bpf_arg;
	bool any_filler;   /* a `from any` / `to any` that constrains nothing */
	uint64_t spelling; /* seeds the random choices of how the rule is written */
};

struct gpolicy {
	uint64_t seed;
	uint32_t count, cap;
	struct grule *rules;
	bool allow_mac;
	bool large; /* for the compiled-vs-linear stress: narrow rules */
};

static bool has_proto(const struct grule *r, uint8_t v)
{
	for (uint32_t i = 0; i < r->nprotos; i++)
		if (r->protos[i] == v)
			return true;
	return false;
}

static void add_proto(struct grule *r, uint8_t v)
{
	if (has_proto(r, v))
		return;
	if (r->nprotos < MAX_ITEMS)
		r->protos[r->nprotos++] = v;
	else
		r->protos[below(MAX_ITEMS)] = v;
}

/* ---- generation ---- */

static void mask_prefix(struct gprefix *p)
{
	uint32_t bits = p->family == 4 ? 32 : 128;
	for (uint32_t bit = p->len; bit < bits; bit++)
		p->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
}

static void gen_prefix(struct gprefix *p, uint8_t family)
{
	memset(p, 0, sizeof(*p));
	p->family = family;
	if (family == 4) {
		if (pool.n4 && !chance(15))
			memcpy(p->addr, pool.v4[below(pool.n4)], 4);
		else
			for (int i = 0; i < 4; i++)
				p->addr[i] = (uint8_t)rnd();
		static const uint8_t lens[] = {32, 32, 32, 31, 30, 28, 24, 24, 16, 8, 25, 0};
		p->len = chance(80) ? lens[below(sizeof(lens))] : (uint8_t)below(33);
	} else {
		if (pool.n6 && !chance(15))
			memcpy(p->addr, pool.v6[below(pool.n6)], 16);
		else
			for (int i = 0; i < 16; i++)
				p->addr[i] = (uint8_t)rnd();
		static const uint8_t lens[] = {128, 128, 128, 127, 120, 112, 96,
		                               64,  64,  48,  33,  32,  16,  0};
		p->len = chance(80) ? lens[below(sizeof(lens))] : (uint8_t)below(129);
	}
	mask_prefix(p);
}

static uint8_t pick_family(void)
{
	if (!pool.n6)
		return 4;
	if (!pool.n4)
		return 6;
	return chance(55) ? 4 : 6;
}

static void gen_addr(struct gaddr *a, uint8_t rule_family)
{
	a->on = true;
	a->negated = chance(25);
	a->n = chance(60) ? 1 : 2 + below(MAX_ITEMS - 1);
	for (uint32_t i = 0; i < a->n; i++) {
		uint8_t fam = rule_family && chance(85) ? rule_family : pick_family();
		gen_prefix(&a->p[i], fam);
	}
	if (rule_family && !a->negated) {
		/* check_rule refuses a family with no prefix of that family. */
		bool any = false;
		for (uint32_t i = 0; i < a->n; i++)
			any = any || a->p[i].family == rule_family;
		if (!any)
			gen_prefix(&a->p[below(a->n)], rule_family);
	}
}

static uint16_t pool_port(void)
{
	if (pool.nports && !chance(10))
		return pool.ports[below(pool.nports)];
	return (uint16_t)rnd();
}

static void gen_ports(struct gports *p)
{
	p->on = true;
	p->negated = chance(25);
	p->n = chance(60) ? 1 : 2 + below(3);
	for (uint32_t i = 0; i < p->n; i++) {
		uint32_t lo, hi, k = below(100);
		if (k < 55) {
			lo = hi = pool_port();
		} else if (k < 80) {
			uint32_t v = pool_port();
			lo = v > 200 ? v - below(200) : 0;
			hi = v + below(2000);
		} else if (k < 92) {
			lo = below(65536);
			hi = lo + below(65536 - lo);
		} else {
			static const uint16_t edges[][2] = {{0, 0},     {65535, 65535},
			                                    {0, 1023},  {1024, 65535},
			                                    {0, 65535}, {1, 1}};
			k = below(sizeof(edges) / sizeof(edges[0]));
			lo = edges[k][0];
			hi = edges[k][1];
		}
		p->lo[i] = (uint16_t)lo;
		p->hi[i] = (uint16_t)(hi > 65535 ? 65535 : hi);
	}
}

static void gen_macs(struct gmacs *m)
{
	m->on = true;
	m->negated = chance(25);
	m->n = chance(60) ? 1 : 2 + below(3);
	for (uint32_t i = 0; i < m->n; i++) {
		if (pool.nmacs && !chance(15))
			memcpy(m->mac[i], pool.macs[below(pool.nmacs)], 6);
		else
			for (int j = 0; j < 6; j++)
				m->mac[i][j] = (uint8_t)rnd();
	}
}

static void gen_ifaces(struct gifaces *f)
{
	static const char *const names[] = {"eth0", "wlan0", "br-lan", "tun0", "veth1.100"};
	/* lo is named by no rule. */
	f->on = true;
	f->negated = chance(40);
	f->n = 1 + below(2);
	for (uint32_t i = 0; i < f->n; i++)
		snprintf(f->name[i], sizeof(f->name[i]), "%s", names[below(5)]);
}

static void gen_icmp(struct grule *r)
{
	r->ntypes = 1 + (chance(30) ? below(3) : 0);
	bool codes = chance(40);
	r->ncodes = codes ? 1 + (chance(30) ? below(2) : 0) : 0;
	for (uint32_t i = 0; i < r->ntypes; i++)
		r->types[i] = pool.nicmp && chance(85) ? pool.icmp[below(pool.nicmp)][0]
		                                       : (uint8_t)below(256);
	for (uint32_t i = 0; i < r->ncodes; i++)
		r->codes[i] = pool.nicmp && chance(85) ? pool.icmp[below(pool.nicmp)][1]
		                                       : (uint8_t)below(256);
}

static void gen_flags(struct grule *r)
{
	r->flags_on = true;
	for (;;) {
		uint8_t mask = (uint8_t)rnd();
		if (chance(50))
			mask &= 0x3f;
		if (chance(30))
			mask = 0x12; /* S/SA */
		uint8_t seen = pool.ntcpflags ? pool.tcpflags[below(pool.ntcpflags)] : 0x02;
		uint8_t value = chance(75) ? (uint8_t)(seen & mask) : (uint8_t)(rnd() & mask);
		if (value) {
			r->flags = value;
			r->mask = chance(20) ? value : mask;
			return;
		}
	}
}

static void gen_bpf(struct grule *r)
{
	r->bpf = (int)below(BPF_KINDS);
	switch (r->bpf) {
	case BPF_TTL_GE:
		r->bpf_arg = pool.nttls && chance(70) ? pool.ttls[below(pool.nttls)] : below(256);
		break;
	case BPF_HOPLIMIT:
		r->bpf_arg = pool.nttls && chance(70) ? pool.ttls[below(pool.nttls)] : below(256);
		break;
	case BPF_LEN_GE:
		r->bpf_arg = 20 + below(1500);
		break;
	case BPF_UDP_DPORT:
		r->bpf_arg = pool_port();
		break;
	default:
		break;
	}
}

static uint8_t pool_proto(void)
{
	return chance(90) ? pool.protos[below(pool.nprotos)] : (uint8_t)below(256);
}

/* The one family of a non-negated address set, or 0 when mixed or negated. */
static uint8_t addr_single_family(const struct gaddr *a)
{
	if (!a->on || a->negated)
		return 0;
	for (uint32_t i = 1; i < a->n; i++)
		if (a->p[i].family != a->p[0].family)
			return 0;
	return a->p[0].family;
}

/* One rule that torsieve must accept: it avoids every "can never match"
 * refusal of check_rule in engine/policy_parse.c (ports, flags and icmp-type
 * without their protocol, a family with no address of it, from and to on
 * different families, inet icmp6 and inet6 icmp, tcp-reset, divert and dns on
 * other protocols than theirs). */
static void gen_rule(struct grule *r, bool allow_mac, bool large)
{
	memset(r, 0, sizeof(*r));
	r->bpf = BPF_NONE;
	static const enum ts_verdict plain[] = {TS_VERDICT_DROP, TS_VERDICT_REJECT,
	                                        TS_VERDICT_PASS};
	r->action = plain[below(3)];
	if (chance(large ? 0 : 6)) {
		r->all = true;
	} else {
		uint32_t terms = 0;
		while (terms == 0) {
			if (chance(large ? 15 : 30)) {
				r->family = pick_family();
				terms++;
			}
			if (chance(large ? 30 : 45)) {
				r->nprotos = 1 + (chance(35) ? below(3) : 0);
				for (uint32_t i = 0; i < r->nprotos; i++)
					r->protos[i] = pool_proto();
				terms++;
			}
			if (chance(large ? 60 : 35)) {
				gen_addr(&r->src, r->family);
				terms++;
			}
			if (chance(large ? 60 : 40)) {
				gen_addr(&r->dst, r->family);
				terms++;
			}
			if (chance(large ? 40 : 20)) {
				gen_ports(&r->sport);
				terms++;
			}
			if (chance(large ? 50 : 35)) {
				gen_ports(&r->dport);
				terms++;
			}
			if (allow_mac && chance(20)) {
				gen_macs(&r->mac);
				terms++;
			}
			if (chance(3)) {
				gen_ifaces(&r->iface);
				terms++;
			}
			if (chance(12)) {
				gen_flags(r);
				terms++;
			}
			if (chance(12)) {
				gen_icmp(r);
				terms++;
			}
			if (chance(large ? 1 : 7)) {
				gen_bpf(r);
				terms++;
			}
		}
		/* The documented "can never match" refusals, avoided. */
		if (r->nprotos && (r->sport.on || r->dport.on) && !has_proto(r, 6) &&
		    !has_proto(r, 17))
			add_proto(r, chance(50) ? 6 : 17);
		if (r->nprotos && r->flags_on && !has_proto(r, 6))
			add_proto(r, 6);
		if (r->nprotos && r->ntypes && !has_proto(r, 1) && !has_proto(r, 58))
			add_proto(r, chance(50) ? 1 : 58);
		/* add_proto may replace one when full: check again, simply. */
		if (r->nprotos &&
		    (((r->sport.on || r->dport.on) && !has_proto(r, 6) && !has_proto(r, 17)) ||
		     (r->flags_on && !has_proto(r, 6)) ||
		     (r->ntypes && !has_proto(r, 1) && !has_proto(r, 58)))) {
			r->nprotos = 0;
			if (r->sport.on || r->dport.on || r->flags_on)
				r->protos[r->nprotos++] = 6;
			if (r->ntypes)
				r->protos[r->nprotos++] = chance(50) ? 1 : 58;
		}
		r->any_filler = chance(5);
		/* divert needs a rule on tcp only, dns on udp or tcp only. */
		if (chance(30) && !r->ntypes) {
			bool dns = chance(50);
			r->nprotos = 0;
			if (!dns || r->flags_on || chance(30))
				r->protos[r->nprotos++] = 6;
			if (dns && (r->nprotos == 0 || chance(50)))
				r->protos[r->nprotos++] = 17;
			r->action = dns ? TS_VERDICT_DNS : TS_VERDICT_DIVERT;
		}
		/* 'from' on one family and 'to' on the other never match. */
		uint8_t sf = addr_single_family(&r->src), df = addr_single_family(&r->dst);
		if (sf && df && sf != df)
			for (uint32_t i = 0; i < r->dst.n; i++)
				gen_prefix(&r->dst.p[i], sf);
		/* Neither do inet icmp6 and inet6 icmp. */
		bool only58 = r->nprotos > 0, only1 = r->nprotos > 0;
		for (uint32_t i = 0; i < r->nprotos; i++) {
			only58 = only58 && r->protos[i] == 58;
			only1 = only1 && r->protos[i] == 1;
		}
		if ((r->family == 4 && only58) || (r->family == 6 && only1))
			r->family = 0;
	}
	if (r->action == TS_VERDICT_REJECT && chance(50)) {
		bool tcp_only = r->nprotos > 0;
		for (uint32_t i = 0; i < r->nprotos; i++)
			tcp_only = tcp_only && r->protos[i] == 6;
		if (tcp_only && chance(50))
			r->reject = TS_REJECT_TCP_RESET;
		else
			r->reject = (enum ts_reject_kind)(
			        TS_REJECT_NET_UNREACHABLE +
			        below(TS_REJECT_COUNT - TS_REJECT_NET_UNREACHABLE));
	}
}

static void policy_add(struct gpolicy *g, const struct grule *r)
{
	if (g->count == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 32;
		g->rules = realloc(g->rules, g->cap * sizeof(*g->rules));
		if (!g->rules)
			abort();
	}
	g->rules[g->count++] = *r;
}

static void gen_policy(struct gpolicy *g, uint64_t seed, uint32_t force_rules)
{
	rng_state = seed;
	g->seed = seed;
	g->count = 0;
	g->large = force_rules > 0;
	g->allow_mac = chance(30);
	uint32_t n = force_rules;
	if (!n)
		n = chance(4) ? 30 + below(120) : 1 + below(20);
	for (uint32_t i = 0; i < n; i++) {
		struct grule r;
		gen_rule(&r, g->allow_mac, g->large);
		r.spelling = rnd();
		policy_add(g, &r);
	}
}

/* ---- the policy as text ---- */

struct emitter {
	struct sbuf *out;
	uint32_t lists;
};

static const char *sep(void)
{
	static const char *const seps[] = {" ", " ", " ", "  ", "\t", " \\\n\t"};
	return seps[below(sizeof(seps) / sizeof(seps[0]))];
}

/* A new list name; the first few may be keywords, which are names too. */
static void list_name(struct emitter *e, char *buf, size_t len)
{
	static const char *const keywords[] = {"port", "tcp",  "from", "any",
	                                       "all",  "list", "drop", "inet6"};
	uint32_t k = e->lists++;
	if (k < 8 && chance(30))
		snprintf(buf, len, "%s", keywords[k]);
	else
		snprintf(buf, len, "l%u", k);
}

/* Emits a value set in one of the language's spellings: X, { X, Y }, $list
 * (defined on the lines before the rule, sometimes nested), each with `!`. */
static void emit_set(struct emitter *e, struct sbuf *rule, char items[][64], uint32_t n,
                     bool negated)
{
	if (negated)
		sb_printf(rule, chance(50) ? "!" : "! ");
	uint32_t k = below(100);
	if (n == 1 && k < 45) {
		sb_printf(rule, "%s", items[0]);
		return;
	}
	if (k < 75) {
		sb_printf(rule, "{");
		for (uint32_t i = 0; i < n; i++) {
			const char *s = i == 0       ? " "
			                : chance(15) ? " "
			                : chance(10) ? ",\n  "
			                             : ", ";
			sb_printf(rule, "%s%s", s, items[i]);
		}
		sb_printf(rule, chance(20) ? ", }" : " }");
		return;
	}
	/* A list, maybe split across two: list a = {...}; list b = { $a, ... }. */
	uint32_t split = n > 1 && chance(50) ? 1 + below(n - 1) : n;
	char a[16], b[16];
	list_name(e, a, sizeof(a));
	sb_printf(e->out, "list %s = {", a);
	for (uint32_t i = 0; i < split; i++)
		sb_printf(e->out, "%s%s", i ? ", " : " ", items[i]);
	sb_printf(e->out, " }%s\n", chance(20) ? " # a list" : "");
	if (split == n) {
		sb_printf(rule, "$%s", a);
		return;
	}
	if (chance(50)) {
		list_name(e, b, sizeof(b));
		sb_printf(e->out, "list %s = { $%s", b, a);
		for (uint32_t i = split; i < n; i++)
			sb_printf(e->out, ", %s", items[i]);
		sb_printf(e->out, " }\n");
		sb_printf(rule, "$%s", b);
		return;
	}
	sb_printf(rule, "{ $%s", a);
	for (uint32_t i = split; i < n; i++)
		sb_printf(rule, ", %s", items[i]);
	sb_printf(rule, " }");
}

static void prefix_text(const struct gprefix *p, char *buf, size_t len, bool for_policy)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, a, sizeof(a));
	uint32_t full = p->family == 4 ? 32 : 128;
	if (for_policy && p->family == 6 && chance(10)) {
		/* The uncompressed spelling. */
		int n = 0;
		for (int i = 0; i < 16; i += 2)
			n += snprintf(a + n, sizeof(a) - (size_t)n, "%s%x", i ? ":" : "",
			              (unsigned)(p->addr[i] << 8 | p->addr[i + 1]));
	}
	if (for_policy && p->family == 6 && chance(10))
		for (char *c = a; *c; c++)
			*c = (char)(*c >= 'a' && *c <= 'f' ? *c - 'a' + 'A' : *c);
	if (for_policy && p->len == full && chance(50))
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, for_policy && chance(3) ? "%s/0%u" : "%s/%u", a, p->len);
}

static void emit_addr(struct emitter *e, struct sbuf *rule, const struct gaddr *a)
{
	char items[MAX_ITEMS][64];
	for (uint32_t i = 0; i < a->n; i++)
		prefix_text(&a->p[i], items[i], sizeof(items[i]), true);
	emit_set(e, rule, items, a->n, a->negated);
}

static void emit_ports(struct emitter *e, struct sbuf *rule, const struct gports *p)
{
	char items[MAX_ITEMS][64];
	for (uint32_t i = 0; i < p->n; i++) {
		if (p->lo[i] == p->hi[i] && chance(90))
			snprintf(items[i], sizeof(items[i]), chance(3) ? "0%u" : "%u", p->lo[i]);
		else
			snprintf(items[i], sizeof(items[i]), "%u%c%u", p->lo[i],
			         chance(80) ? '-' : ':', p->hi[i]);
	}
	emit_set(e, rule, items, p->n, p->negated);
}

static void emit_endpoint(struct emitter *e, struct sbuf *rule, const struct gaddr *a,
                          const struct gports *p, bool src)
{
	sb_printf(rule, "%s", src ? "from" : "to");
	if (a->on) {
		sb_printf(rule, "%s", sep());
		emit_addr(e, rule, a);
	} else if (chance(30)) {
		sb_printf(rule, " any");
	}
	if (p->on) {
		sb_printf(rule, "%sport%s", sep(), sep());
		emit_ports(e, rule, p);
	}
}

static const char *proto_word(uint8_t v)
{
	switch (v) {
	case 1:
		return "icmp";
	case 2:
		return "igmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 47:
		return "gre";
	case 50:
		return "esp";
	case 51:
		return "ah";
	case 58:
		return chance(50) ? "icmp6" : "ipv6-icmp";
	case 132:
		return "sctp";
	default:
		return NULL;
	}
}

static void emit_protos(struct emitter *e, struct sbuf *rule, const struct grule *r)
{
	uint8_t v = r->protos[0];
	if (r->nprotos == 1 && (v == 1 || v == 6 || v == 17 || v == 58) && chance(60)) {
		sb_printf(rule, "%s", v == 1 ? "icmp" : v == 6 ? "tcp" : v == 17 ? "udp" : "icmp6");
		return;
	}
	char items[MAX_ITEMS][64];
	for (uint32_t i = 0; i < r->nprotos; i++) {
		const char *w = chance(70) ? proto_word(r->protos[i]) : NULL;
		if (w)
			snprintf(items[i], sizeof(items[i]), "%s", w);
		else
			snprintf(items[i], sizeof(items[i]), "%u", r->protos[i]);
	}
	sb_printf(rule, "proto%s", sep());
	emit_set(e, rule, items, r->nprotos, false);
}

static void emit_macs(struct emitter *e, struct sbuf *rule, const struct gmacs *m)
{
	char items[MAX_ITEMS][64];
	for (uint32_t i = 0; i < m->n; i++) {
		char s = chance(80) ? ':' : '-';
		bool upper = chance(20);
		int n = 0;
		for (int j = 0; j < 6; j++)
			n += snprintf(items[i] + n, sizeof(items[i]) - (size_t)n,
			              upper ? "%s%02X" : "%s%02x", j ? (s == ':' ? ":" : "-") : "",
			              m->mac[i][j]);
	}
	sb_printf(rule, "mac%s", sep());
	emit_set(e, rule, items, m->n, m->negated);
}

static void emit_flags(struct sbuf *rule, const struct grule *r)
{
	static const char letters[] = "FSRPAUEC";
	char v[9], m[9];
	int nv = 0, nm = 0;
	for (int bit = 0; bit < 8; bit++) {
		if (r->flags & (1u << bit))
			v[nv++] = letters[bit];
		if (r->mask & (1u << bit))
			m[nm++] = letters[bit];
	}
	v[nv] = m[nm] = '\0';
	/* Any order of letters is accepted. */
	for (int i = nv - 1; i > 0 && chance(30); i--) {
		int j = (int)below((uint32_t)i + 1);
		char t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	if (r->mask == r->flags && chance(70))
		sb_printf(rule, "flags%s%s", sep(), v);
	else
		sb_printf(rule, "flags%s%s/%s", sep(), v, m);
}

static void emit_icmp(struct emitter *e, struct sbuf *rule, const struct grule *r)
{
	char items[MAX_ITEMS][64];
	for (uint32_t i = 0; i < r->ntypes; i++)
		snprintf(items[i], sizeof(items[i]), "%u", r->types[i]);
	sb_printf(rule, "icmp-type%s", sep());
	emit_set(e, rule, items, r->ntypes, false);
	if (!r->ncodes)
		return;
	for (uint32_t i = 0; i < r->ncodes; i++)
		snprintf(items[i], sizeof(items[i]), "%u", r->codes[i]);
	sb_printf(rule, "%scode%s", sep(), sep());
	emit_set(e, rule, items, r->ncodes, false);
}

/* The expression as torsieve sees it: over the IP packet (DLT_RAW). */
static void bpf_raw_text(const struct grule *r, char *buf, size_t len)
{
	switch (r->bpf) {
	case BPF_TCP:
		snprintf(buf, len, "tcp");
		break;
	case BPF_UDP:
		snprintf(buf, len, "udp");
		break;
	case BPF_ICMP:
		snprintf(buf, len, "icmp");
		break;
	case BPF_ICMP6:
		snprintf(buf, len, "icmp6");
		break;
	case BPF_IP:
		snprintf(buf, len, "ip");
		break;
	case BPF_IP6:
		snprintf(buf, len, "ip6");
		break;
	case BPF_NOT_ICMP:
		snprintf(buf, len, "not icmp");
		break;
	case BPF_TTL_GE:
		snprintf(buf, len, "ip[8] >= %u", r->bpf_arg);
		break;
	case BPF_HOPLIMIT:
		snprintf(buf, len, "ip6[7] = %u", r->bpf_arg);
		break;
	case BPF_LEN_GE:
		snprintf(buf, len, "len >= %u", r->bpf_arg);
		break;
	case BPF_TCP_SYN:
		snprintf(buf, len, "tcp[13] & 2 != 0");
		break;
	case BPF_UDP_DPORT:
		snprintf(buf, len, "udp dst port %u", r->bpf_arg);
		break;
	default:
		buf[0] = '\0';
		break;
	}
}

static const char *const reject_words[TS_REJECT_COUNT] = {"",
                                                          "tcp-reset",
                                                          "net-unreachable",
                                                          "host-unreachable",
                                                          "port-unreachable",
                                                          "proto-unreachable",
                                                          "admin-prohibited"};

static const char *const action_words[TS_VERDICT_COUNT] = {"drop", "reject", "pass", "divert",
                                                           "dns"};

enum term {
	T_FAMILY,
	T_PROTO,
	T_FROM,
	T_TO,
	T_MAC,
	T_ON,
	T_FLAGS,
	T_ICMP,
	T_BPF,
	T_WITH,
	T_COUNT
};

static void emit_rule(struct emitter *e, const struct grule *r)
{
	struct sbuf line = {0};
	sb_printf(&line, "%s", action_words[r->action]);
	int order[T_COUNT];
	for (int i = 0; i < T_COUNT; i++)
		order[i] = i;
	for (int i = T_COUNT - 1; i > 0; i--) {
		int j = (int)below((uint32_t)i + 1);
		int t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	if (r->all) {
		sb_printf(&line, "%sall", sep());
		if (r->reject)
			sb_printf(&line, " with %s", reject_words[r->reject]);
	}
	for (int i = 0; i < T_COUNT && !r->all; i++) {
		switch (order[i]) {
		case T_FAMILY:
			if (r->family)
				sb_printf(&line, "%s%s", sep(), r->family == 4 ? "inet" : "inet6");
			break;
		case T_PROTO:
			if (r->nprotos) {
				sb_printf(&line, "%s", sep());
				emit_protos(e, &line, r);
			}
			break;
		case T_FROM:
			if (r->src.on || r->sport.on) {
				sb_printf(&line, "%s", sep());
				emit_endpoint(e, &line, &r->src, &r->sport, true);
			} else if (r->any_filler) {
				sb_printf(&line, " from any");
			}
			break;
		case T_TO:
			if (r->dst.on || r->dport.on) {
				sb_printf(&line, "%s", sep());
				emit_endpoint(e, &line, &r->dst, &r->dport, false);
			} else if (r->any_filler) {
				sb_printf(&line, " to any");
			}
			break;
		case T_MAC:
			if (r->mac.on) {
				sb_printf(&line, "%s", sep());
				emit_macs(e, &line, &r->mac);
			}
			break;
		case T_ON:
			if (r->iface.on) {
				char items[MAX_ITEMS][64];
				for (uint32_t k = 0; k < r->iface.n; k++)
					snprintf(items[k], sizeof(items[k]), "%s",
					         r->iface.name[k]);
				sb_printf(&line, "%son%s", sep(), sep());
				emit_set(e, &line, items, r->iface.n, r->iface.negated);
			}
			break;
		case T_FLAGS:
			if (r->flags_on) {
				sb_printf(&line, "%s", sep());
				emit_flags(&line, r);
			}
			break;
		case T_ICMP:
			if (r->ntypes) {
				sb_printf(&line, "%s", sep());
				emit_icmp(e, &line, r);
			}
			break;
		case T_BPF:
			if (r->bpf != BPF_NONE) {
				char expr[64];
				bpf_raw_text(r, expr, sizeof(expr));
				sb_printf(&line, "%sbpf \"%s\"", sep(), expr);
			}
			break;
		case T_WITH:
			if (r->reject)
				sb_printf(&line, "%swith%s%s", sep(),
				          r->reject != TS_REJECT_TCP_RESET && chance(20)
				                  ? (chance(50) ? " icmp " : " icmp6 ")
				                  : " ",
				          reject_words[r->reject]);
			break;
		default:
			break;
		}
	}
	sb_printf(e->out, "%s%s\n", line.s, chance(5) ? "  # why this rule" : "");
	sb_free(&line);
}

static void emit_policy(const struct gpolicy *g, struct sbuf *out)
{
	/* The text's own randomness comes from the seed too, after the model's. */
	uint64_t saved = rng_state;
	rng_state = g->seed ^ 0x5bd1e995u;
	sb_reset(out);
	struct emitter e = {.out = out};
	sb_printf(out, "# random policy, seed 0x%016" PRIx64 "\n", g->seed);
	if (chance(10))
		sb_printf(out, "set max-rules %u\n", g->count + below(100));
	if (g->large || chance(5))
		sb_printf(out, "set classifier-memory %s\n", g->large ? "1G" : "64M");
	for (uint32_t i = 0; i < g->count; i++) {
		/* Each rule is spelled the same whatever rules surround it. */
		rng_state = g->rules[i].spelling;
		if (chance(5))
			sb_printf(out, chance(50) ? "\n" : "# a comment line\n");
		emit_rule(&e, &g->rules[i]);
	}
	rng_state = saved;
}

/* ---- the same rules as libpcap filter expressions ---- */

/* A port term matches only packets with ports: TCP or UDP with a header, that
 * is not a non-first IPv4 fragment (libpcap's port tests check the fragment
 * offset too) and, for IPv6, no extension header (those are excluded). */
#define HAS_PORTS_BPF                                                                 \
	"((ip and (ip proto 6 or ip proto 17) and ip[6:2] & 0x1fff = 0) or (ip6 and " \
	"(ip6[6] = 6 or ip6[6] = 17)))"

static void bpf_addr(struct sbuf *b, const struct gaddr *a, const char *dir)
{
	/* `ip src net`, not `src net`: unqualified, libpcap matches ARP and RARP
	 * addresses too. A negated set matches everything else, non-IP included. */
	sb_printf(b, "%s(", a->negated ? "not " : "");
	for (uint32_t i = 0; i < a->n; i++) {
		char text[64];
		prefix_text(&a->p[i], text, sizeof(text), false);
		sb_printf(b, "%sip%s %s net %s", i ? " or " : "", a->p[i].family == 6 ? "6" : "",
		          dir, text);
	}
	sb_printf(b, ")");
}

static void bpf_ports(struct sbuf *b, const struct gports *p, const char *dir)
{
	/* `tcp port` / `udp port`, not `port`, which takes SCTP too. */
	if (p->negated)
		sb_printf(b, "(%s and not (", HAS_PORTS_BPF);
	else
		sb_printf(b, "(");
	for (uint32_t i = 0; i < p->n; i++)
		for (int t = 0; t < 2; t++) {
			const char *proto = t ? "udp" : "tcp";
			const char * or = i || t ? " or " : "";
			if (p->lo[i] == p->hi[i])
				sb_printf(b, "%s%s %s port %u", or, proto, dir, p->lo[i]);
			else
				sb_printf(b, "%s%s %s portrange %u-%u", or, proto, dir, p->lo[i],
				          p->hi[i]);
		}
	sb_printf(b, p->negated ? "))" : ")");
}

/* The rule as a libpcap expression for context c, for packets with depth
 * VLAN tags (Ethernet only: the expression then starts with one `vlan` per
 * tag, each moving libpcap's network-layer offsets past one tag). Returns
 * false when libpcap cannot say it there (mac on a cooked capture); *never is
 * set when the rule cannot match any packet there: `on IFACE` (the input
 * interface is unknown, NULL, for capture files, and then no iface term
 * matches, negated or not), and `mac` on a link with no MAC. */
static bool rule_to_bpf(const struct grule *r, const struct context *c, uint32_t depth,
                        struct sbuf *b, bool *never)
{
	sb_reset(b);
	sb_printf(b, "%s", "");
	*never = r->iface.on;
	const char *and = "";
	for (uint32_t i = 0; i < depth; i++) {
		sb_printf(b, "%svlan", and);
		and = " and ";
	}
	if (r->all)
		return true; /* the empty expression accepts every packet */
	if (r->family) {
		sb_printf(b, "%s%s", and, r->family == 4 ? "ip" : "ip6");
		and = " and ";
	}
	if (r->nprotos) {
		/* `ip6 proto` also looks past one fragment header: those packets
		 * are excluded. */
		sb_printf(b, "%s(", and);
		for (uint32_t i = 0; i < r->nprotos; i++)
			sb_printf(b, "%sip proto %u or ip6 proto %u", i ? " or " : "", r->protos[i],
			          r->protos[i]);
		sb_printf(b, ")");
		and = " and ";
	}
	if (r->src.on) {
		sb_printf(b, "%s", and);
		bpf_addr(b, &r->src, "src");
		and = " and ";
	}
	if (r->dst.on) {
		sb_printf(b, "%s", and);
		bpf_addr(b, &r->dst, "dst");
		and = " and ";
	}
	if (r->sport.on) {
		sb_printf(b, "%s", and);
		bpf_ports(b, &r->sport, "src");
		and = " and ";
	}
	if (r->dport.on) {
		sb_printf(b, "%s", and);
		bpf_ports(b, &r->dport, "dst");
		and = " and ";
	}
	if (r->mac.on) {
		/* Ethernet only: `ether src` exists nowhere else. A link with no
		 * MAC at all (raw IP, BSD loopback) never matches a mac term,
		 * negated or not; the cooked captures do carry one (the sender's
		 * link-layer address), which libpcap cannot name: excluded. */
		if (c->no_mac)
			*never = true;
		if (!c->ethernet)
			return c->no_mac;
		sb_printf(b, "%s%s(", and, r->mac.negated ? "not " : "");
		for (uint32_t i = 0; i < r->mac.n; i++) {
			const uint8_t *m = r->mac.mac[i];
			sb_printf(b, "%sether src %02x:%02x:%02x:%02x:%02x:%02x", i ? " or " : "",
			          m[0], m[1], m[2], m[3], m[4], m[5]);
		}
		sb_printf(b, ")");
		and = " and ";
	}
	if (r->flags_on) {
		/* tcp[13] is IPv4 only (its header length comes from the IPv4 IHL
		 * and it checks the IPv4 fragment offset); IPv6 has the TCP header
		 * at 40 when no extension header comes first. */
		sb_printf(b,
		          "%s((ip and tcp[13] & 0x%02x = 0x%02x) or (ip6 and ip6[6] = 6 and "
		          "ip6[53] & 0x%02x = 0x%02x))",
		          and, r->mask, r->flags, r->mask, r->flags);
		and = " and ";
	}
	if (r->ntypes) {
		/* Either ICMP: icmp[] is IPv4 only and checks the fragment offset. */
		sb_printf(b, "%s((", and);
		for (uint32_t i = 0; i < r->ntypes; i++)
			sb_printf(b, "%sicmp[0] = %u", i ? " or " : "", r->types[i]);
		sb_printf(b, ") or (ip6 and ip6[6] = 58 and (");
		for (uint32_t i = 0; i < r->ntypes; i++)
			sb_printf(b, "%sip6[40] = %u", i ? " or " : "", r->types[i]);
		sb_printf(b, ")))");
		and = " and ";
	}
	if (r->ncodes) {
		sb_printf(b, "%s((", and);
		for (uint32_t i = 0; i < r->ncodes; i++)
			sb_printf(b, "%sicmp[1] = %u", i ? " or " : "", r->codes[i]);
		sb_printf(b, ") or (ip6 and ip6[6] = 58 and (");
		for (uint32_t i = 0; i < r->ncodes; i++)
			sb_printf(b, "%sip6[41] = %u", i ? " or " : "", r->codes[i]);
		sb_printf(b, ")))");
		and = " and ";
	}
	if (r->bpf != BPF_NONE) {
		/* torsieve runs it over the IP packet only. Loads are relative to
		 * the IP header in both compilations; only `len` counts the link
		 * header: l2len bytes and 4 per VLAN tag. */
		char expr[64];
		if (r->bpf == BPF_LEN_GE)
			snprintf(expr, sizeof(expr), "len >= %u",
			         r->bpf_arg + c->l2len + 4 * depth);
		else
			bpf_raw_text(r, expr, sizeof(expr));
		sb_printf(b, "%s((ip or ip6) and (%s))", and, expr);
	}
	return true;
}

/* ---- compiled programs, per rule and context, made when first needed ---- */

enum prog_state {
	PROG_NONE = 0,
	PROG_READY,
	PROG_NEVER,
	PROG_UNSAYABLE
};

struct prog {
	enum prog_state state;
	struct bpf_program bpf;
};

struct evaluation {
	const struct gpolicy *g;
	const struct ts_policy *p;
	const char *text;
	struct prog *progs[MAX_CONTEXTS][TS_VLAN_MAX + 1]; /* per context and VLAN depth */
	bool compile_failed;
};

static struct sbuf scratch;

static struct prog *get_prog(struct evaluation *ev, uint32_t ctx, uint32_t depth, uint32_t rule)
{
	struct prog **progs = &ev->progs[ctx][depth];
	if (!*progs) {
		*progs = calloc(ev->g->count, sizeof(struct prog));
		if (!*progs)
			abort();
	}
	struct prog *pr = &(*progs)[rule];
	if (pr->state != PROG_NONE)
		return pr;
	const struct context *c = &contexts[ctx];
	bool never;
	if (!rule_to_bpf(&ev->g->rules[rule], c, depth, &scratch, &never)) {
		pr->state = PROG_UNSAYABLE;
		return pr;
	}
	if (never) {
		pr->state = PROG_NEVER;
		return pr;
	}
	if (pcap_compile(c->pcap, &pr->bpf, scratch.s, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		/* The optimiser refuses an expression that rejects every packet
		 * (ip6 on DLT_IPV4); unoptimised, libpcap says the same. */
		if (!strstr(pcap_geterr(c->pcap), "rejects all packets") ||
		    pcap_compile(c->pcap, &pr->bpf, scratch.s, 0, PCAP_NETMASK_UNKNOWN) != 0) {
			printf("FAIL %s: seed 0x%016" PRIx64 " rule %u: pcap_compile(%s, \"%s\"): "
			       "%s\n",
			       check_current, ev->g->seed, rule, pcap_datalink_val_to_name(c->dlt),
			       scratch.s, pcap_geterr(c->pcap));
			check_test_failed = 1;
			ev->compile_failed = true;
			pr->state = PROG_UNSAYABLE;
			return pr;
		}
	}
	pr->state = PROG_READY;
	return pr;
}

static void free_progs(struct evaluation *ev)
{
	for (uint32_t c = 0; c < MAX_CONTEXTS; c++)
		for (uint32_t depth = 0; depth <= TS_VLAN_MAX; depth++) {
			struct prog *progs = ev->progs[c][depth];
			if (!progs)
				continue;
			for (uint32_t i = 0; i < ev->g->count; i++)
				if (progs[i].state == PROG_READY)
					pcap_freecode(&progs[i].bpf);
			free(progs);
			ev->progs[c][depth] = NULL;
		}
}

/* Terms libpcap reads at a fixed place after the IPv6 header, or with its
 * own partial walk of the extension headers (`ip6 proto` follows one
 * fragment header, ports none): not said right for a packet with extension
 * headers. Family, addresses and MAC are. */
static bool needs_upper_layer(const struct grule *r)
{
	return r->nprotos || r->sport.on || r->dport.on || r->flags_on || r->ntypes ||
	       r->bpf != BPF_NONE;
}

#define BPF_NOT_ON_LINK  (-2) /* a rule libpcap cannot say for this link type */
#define BPF_NOT_PAST_EXT (-4) /* a rule it cannot say past extension headers */

/* libpcap's answer: the first rule whose program accepts the packet, -1 for
 * none, or why it cannot be asked (when a rule it cannot say comes first). */
static int32_t bpf_first_match(struct evaluation *ev, uint32_t ctx, uint32_t depth, bool ext,
                               const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
	uint32_t wire = wirelen > caplen ? wirelen : caplen;
	for (uint32_t i = 0; i < ev->g->count; i++) {
		if (ext && needs_upper_layer(&ev->g->rules[i]))
			return BPF_NOT_PAST_EXT;
		struct prog *pr = get_prog(ev, ctx, depth, i);
		if (pr->state == PROG_UNSAYABLE)
			return BPF_NOT_ON_LINK;
		if (pr->state == PROG_NEVER)
			continue;
		if (bpf_filter(pr->bpf.bf_insns, data, wire, caplen) != 0)
			return (int32_t)i;
	}
	return -1;
}

/* ---- counters ---- */

enum decisive {
	D_ALL,
	D_FAMILY,
	D_PROTO,
	D_SRC,
	D_SRC_NEG,
	D_DST,
	D_DST_NEG,
	D_SPORT,
	D_SPORT_NEG,
	D_DPORT,
	D_DPORT_NEG,
	D_MAC,
	D_MAC_NEG,
	D_FLAGS,
	D_ICMP_TYPE,
	D_ICMP_CODE,
	D_BPF,
	D_COUNT
};

static const char *const decisive_names[D_COUNT] = {
        "all",       "inet/inet6", "proto",       "from ADDR", "from ! ADDR", "to ADDR",
        "to ! ADDR", "from port",  "from port !", "to port",   "to port !",   "mac",
        "mac !",     "flags",      "icmp-type",   "code",      "bpf"};

struct stats {
	uint64_t policies, rules, compared, compared_synthetic, matched, refused_never;
	uint64_t anomalous, vlan_cooked, ext_excluded, mac_unsayable;
	uint64_t vlan_compared, ext_compared, ext_frag_compared, iface_compared;
	uint64_t v4_first_frag, v4_later_frag, non_ip, ipv6;
	uint64_t decisive[D_COUNT];
	uint64_t mismatches;
};

static struct stats st;

static void count_decisive(const struct grule *r)
{
	if (r->all)
		st.decisive[D_ALL]++;
	if (r->family)
		st.decisive[D_FAMILY]++;
	if (r->nprotos)
		st.decisive[D_PROTO]++;
	if (r->src.on)
		st.decisive[r->src.negated ? D_SRC_NEG : D_SRC]++;
	if (r->dst.on)
		st.decisive[r->dst.negated ? D_DST_NEG : D_DST]++;
	if (r->sport.on)
		st.decisive[r->sport.negated ? D_SPORT_NEG : D_SPORT]++;
	if (r->dport.on)
		st.decisive[r->dport.negated ? D_DPORT_NEG : D_DPORT]++;
	if (r->mac.on)
		st.decisive[r->mac.negated ? D_MAC_NEG : D_MAC]++;
	if (r->flags_on)
		st.decisive[D_FLAGS]++;
	if (r->ntypes)
		st.decisive[D_ICMP_TYPE]++;
	if (r->ncodes)
		st.decisive[D_ICMP_CODE]++;
	if (r->bpf != BPF_NONE)
		st.decisive[D_BPF]++;
}

/* ---- comparing ---- */

static void print_hex(const uint8_t *data, uint32_t len)
{
	printf("    packet (%u bytes captured):", len);
	for (uint32_t i = 0; i < len; i++)
		printf("%s%02x", i % 32 ? "" : "\n      ", data[i]);
	printf("\n");
}

static void print_policy(const struct evaluation *ev, uint32_t ctx, uint32_t depth)
{
	printf("    policy:\n");
	const char *s = ev->text;
	while (*s) {
		const char *nl = strchr(s, '\n');
		int n = nl ? (int)(nl - s) : (int)strlen(s);
		printf("      | %.*s\n", n, s);
		s += n + (nl ? 1 : 0);
	}
	printf("    as libpcap expressions (%s, %u VLAN tags):\n",
	       pcap_datalink_val_to_name(contexts[ctx].dlt), depth);
	for (uint32_t i = 0; i < ev->g->count; i++) {
		bool never;
		bool ok = rule_to_bpf(&ev->g->rules[i], &contexts[ctx], depth, &scratch, &never);
		printf("      %u: %s\n", i,
		       !ok     ? "(not expressible on this link)"
		       : never ? "(never matches: no input interface, or no MAC on this link)"
		       : !scratch.len ? "(the empty expression: every packet)"
		                      : scratch.s);
	}
}

#define BPF_NOT_ASKED     (-3) /* anomalous: dropped before any rule */
#define BPF_VLAN_NOT_HERE (-5) /* a VLAN tag on a link libpcap has no `vlan` for */

/* libpcap's answer for a packet, or why it is not asked. */
static int32_t libpcap_answer(struct evaluation *ev, const struct packet *pk)
{
	const struct ts_decoded *d = &pk->dec;
	int ctx = fixtures[pk->fixture].ctx;
	if (d->anomaly != TS_ANOM_NONE || ctx < 0)
		return BPF_NOT_ASKED;
	if (d->vlan_count && !contexts[ctx].ethernet)
		return BPF_VLAN_NOT_HERE;
	bool ext = d->l3 == TS_L3_IPV6 && d->ipv6_ext_count;
	return bpf_first_match(ev, (uint32_t)ctx, d->vlan_count, ext, pk->data, pk->caplen,
	                       pk->wirelen);
}

/* The three answers for one packet under policy g (text in *text): false
 * when the policy does not parse. */
static bool answers(const struct gpolicy *g, struct sbuf *text, const struct packet *pk,
                    int32_t *bpf, int32_t *cls, int32_t *lin)
{
	emit_policy(g, text);
	char err[512];
	struct ts_policy *p = ts_policy_parse(text->s, text->len, "minimal", err, sizeof(err));
	if (!p)
		return false;
	const struct ts_decoded *d = &pk->dec;
	struct ts_match_input in = {
	        .dec = d, .frame = pk->data, .caplen = pk->caplen, .wirelen = pk->wirelen};
	*lin = ts_policy_match_linear(p, &in);
	*cls = d->anomaly == TS_ANOM_NONE ? ts_classify(p->classifier, &in) : -1;
	struct evaluation ev = {.g = g, .p = p, .text = text->s};
	*bpf = libpcap_answer(&ev, pk);
	free_progs(&ev);
	ts_policy_free(p);
	return true;
}

static bool differs(const struct gpolicy *g, struct sbuf *text, const struct packet *pk)
{
	int32_t bpf, cls, lin;
	if (!answers(g, text, pk, &bpf, &cls, &lin))
		return false;
	return cls != lin || (bpf >= -1 && bpf != lin) ||
	       (pk->dec.anomaly != TS_ANOM_NONE && lin != -1);
}

/* Drops rules, then terms, while the packet still shows the disagreement,
 * and prints what is left: the minimal reproduction. */
static void shrink(const struct gpolicy *orig, const struct packet *pk, uint32_t ctx,
                   uint32_t depth)
{
	struct gpolicy g = *orig;
	g.rules = malloc(orig->count * sizeof(*g.rules));
	if (!g.rules)
		abort();
	memcpy(g.rules, orig->rules, orig->count * sizeof(*g.rules));
	struct sbuf text = {0};
	for (uint32_t i = g.count; i-- > 0 && g.count > 1;) {
		struct grule saved = g.rules[i];
		memmove(&g.rules[i], &g.rules[i + 1], (g.count - i - 1) * sizeof(*g.rules));
		g.count--;
		if (!differs(&g, &text, pk)) {
			memmove(&g.rules[i + 1], &g.rules[i], (g.count - i) * sizeof(*g.rules));
			g.rules[i] = saved;
			g.count++;
		}
	}
	for (uint32_t i = 0; i < g.count; i++)
		for (int t = 0; t < 13; t++) {
			struct grule saved = g.rules[i], *r = &g.rules[i];
			switch (t) {
			case 0:
				r->family = 0;
				break;
			case 1:
				r->nprotos = 0;
				break;
			case 2:
				r->src.on = false;
				break;
			case 3:
				r->dst.on = false;
				break;
			case 4:
				r->sport.on = false;
				break;
			case 5:
				r->dport.on = false;
				break;
			case 6:
				r->mac.on = false;
				break;
			case 7:
				r->iface.on = false;
				break;
			case 8:
				r->flags_on = false;
				break;
			case 9:
				r->ntypes = r->ncodes = 0;
				break;
			case 10:
				r->ncodes = 0;
				break;
			case 11:
				r->bpf = BPF_NONE;
				break;
			default:
				r->reject = TS_REJECT_DEFAULT;
				r->any_filler = false;
				break;
			}
			if (!r->family && !r->nprotos && !r->src.on && !r->dst.on && !r->sport.on &&
			    !r->dport.on && !r->mac.on && !r->iface.on && !r->flags_on &&
			    !r->ntypes && r->bpf == BPF_NONE)
				r->all = true;
			if (memcmp(r, &saved, sizeof(saved)) == 0 || !differs(&g, &text, pk))
				g.rules[i] = saved;
		}
	int32_t bpf, cls, lin;
	if (answers(&g, &text, pk, &bpf, &cls, &lin)) {
		struct evaluation ev = {.g = &g, .text = text.s};
		printf("    minimal reproduction: libpcap %d, ts_classify %d, "
		       "ts_policy_match_linear %d\n",
		       bpf, cls, lin);
		print_policy(&ev, ctx, depth);
	}
	sb_free(&text);
	free(g.rules);
}

static void mismatch(struct evaluation *ev, const struct packet *pk, bool synthetic, uint32_t ctx,
                     const char *what, int32_t bpf, int32_t cls, int32_t lin)
{
	st.mismatches++;
	check_test_failed = 1;
	if (st.mismatches > MAX_DETAILED)
		return;
	const struct fixture *f = &fixtures[pk->fixture];
	char asked[32] = "not asked";
	if (bpf >= -1)
		snprintf(asked, sizeof(asked), "%d", bpf);
	else if (bpf == BPF_NOT_PAST_EXT || bpf == BPF_NOT_ON_LINK || bpf == BPF_VLAN_NOT_HERE)
		snprintf(asked, sizeof(asked), "cannot say it");
	printf("FAIL %s: seed 0x%016" PRIx64 ": %s #%u%s (%s): %s: libpcap %s, ts_classify %d, "
	       "ts_policy_match_linear %d\n",
	       check_current, ev->g->seed, f->path, pk->number, synthetic ? ", synthetic" : "",
	       ts_anomaly_name(pk->dec.anomaly), what, asked, cls, lin);
	print_policy(ev, ctx, pk->dec.vlan_count);
	print_hex(pk->data, pk->caplen);
	printf("    reproduce: TS_BPF_ONE=0x%016" PRIx64 " build/clang-san/test_classify_bpf\n",
	       ev->g->seed);
	if (st.mismatches == 1)
		shrink(ev->g, pk, ctx, pk->dec.vlan_count);
}

/* One packet through all three. synthetic: made by this test from a fixture
 * packet (counted apart). */
static void eval_packet(struct evaluation *ev, const struct packet *pk, bool synthetic)
{
	const struct ts_decoded *d = &pk->dec;
	const struct fixture *f = &fixtures[pk->fixture];
	struct ts_match_input in = {
	        .dec = d, .frame = pk->data, .caplen = pk->caplen, .wirelen = pk->wirelen};
	int32_t lin = ts_policy_match_linear(ev->p, &in);
	struct ts_judgement j;
	ts_policy_judge(ev->p, &in, &j);
	if (d->anomaly != TS_ANOM_NONE) {
		/* Dropped before any rule: the linear matcher says -1, and the
		 * judge never asks the classifier. */
		st.anomalous++;
		if (lin != -1 || j.rule != -1 || j.verdict != TS_VERDICT_DROP)
			mismatch(ev, pk, synthetic, f->ctx < 0 ? 0 : (uint32_t)f->ctx,
			         "anomalous packet matched a rule", BPF_NOT_ASKED, j.rule, lin);
		return;
	}
	int32_t cls = ts_classify(ev->p->classifier, &in);
	if (cls != lin || j.rule != cls ||
	    (cls >= 0 && (j.verdict != ev->p->rules[cls].action || j.line == 0))) {
		mismatch(ev, pk, synthetic, (uint32_t)f->ctx, "compiled and linear disagree",
		         BPF_NOT_ASKED, cls, lin);
		return;
	}
	/* With an input interface (which capture files do not have, so libpcap
	 * is not asked): compiled vs linear. */
	static const char *const ifaces[] = {"eth0", "wlan0", "br-lan", "tun0", "veth1.100", "lo"};
	in.iface = ifaces[(pk->number + st.iface_compared) % 6];
	int32_t lin_if = ts_policy_match_linear(ev->p, &in);
	int32_t cls_if = ts_classify(ev->p->classifier, &in);
	st.iface_compared++;
	if (cls_if != lin_if) {
		printf("FAIL %s: seed 0x%016" PRIx64 ": %s #%u%s on %s: ts_classify %d, "
		       "ts_policy_match_linear %d\n",
		       check_current, ev->g->seed, f->path, pk->number,
		       synthetic ? " (synthetic)" : "", in.iface, cls_if, lin_if);
		mismatch(ev, pk, synthetic, (uint32_t)f->ctx, "compiled and linear disagree",
		         BPF_NOT_ASKED, cls, lin);
		return;
	}
	/* What the translation takes for granted on the packets it is used on. */
	if ((d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6) &&
	    (d->l3_offset != contexts[f->ctx].l2len + 4u * d->vlan_count ||
	     (d->l3 == TS_L3_IPV6 && !d->ipv6_ext_count &&
	      pk->data[d->l3_offset + 6] != d->ip_proto))) {
		mismatch(ev, pk, synthetic, (uint32_t)f->ctx,
		         "test assumption broken (l3 offset, next header)", BPF_NOT_ASKED, cls,
		         lin);
		return;
	}
	bool ext = d->l3 == TS_L3_IPV6 && d->ipv6_ext_count;
	int32_t bpf = libpcap_answer(ev, pk);
	if (ev->compile_failed)
		return;
	if (bpf == BPF_VLAN_NOT_HERE || bpf == BPF_NOT_PAST_EXT || bpf == BPF_NOT_ON_LINK) {
		if (bpf == BPF_VLAN_NOT_HERE)
			st.vlan_cooked++;
		else if (bpf == BPF_NOT_PAST_EXT)
			st.ext_excluded++;
		else
			st.mac_unsayable++;
		return;
	}
	if (bpf != lin) {
		mismatch(ev, pk, synthetic, (uint32_t)f->ctx, "libpcap disagrees", bpf, cls, lin);
		return;
	}
	st.vlan_compared += d->vlan_count > 0;
	st.ext_compared += ext;
	st.ext_frag_compared += ext && d->is_fragment;
	if (synthetic)
		st.compared_synthetic++;
	else
		st.compared++;
	if (!synthetic)
		fixtures[pk->fixture].compared++;
	if (lin >= 0) {
		st.matched++;
		count_decisive(&ev->g->rules[lin]);
	}
	if (d->l3 == TS_L3_IPV4 && d->is_fragment)
		*(d->frag_offset ? &st.v4_later_frag : &st.v4_first_frag) += 1;
	else if (d->l3 == TS_L3_IPV6)
		st.ipv6++;
	else if (d->l3 != TS_L3_IPV4)
		st.non_ip++;
}

/* ---- synthetic packets: fixture packets with fields at rule edges ---- */

static void prefix_edge(const struct gprefix *p, uint8_t *out)
{
	uint32_t n = p->family == 4 ? 4 : 16;
	memcpy(out, p->addr, n);
	uint32_t k = below(5);
	if (k == 4) { /* somewhere inside */
		for (uint32_t bit = p->len; bit < n * 8; bit++)
			if (chance(50))
				out[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
		return;
	}
	if (k >= 2) /* the last address */
		for (uint32_t bit = p->len; bit < n * 8; bit++)
			out[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
	if (k == 1) { /* one before the first */
		for (int i = (int)n - 1; i >= 0 && out[i]-- == 0; i--)
			;
	} else if (k == 3) { /* one after the last */
		for (int i = (int)n - 1; i >= 0 && ++out[i] == 0; i--)
			;
	}
}

static const struct gprefix *random_prefix(const struct gpolicy *g, uint8_t family)
{
	for (int tries = 0; tries < 8; tries++) {
		const struct grule *r = &g->rules[below(g->count)];
		const struct gaddr *a = chance(50) ? &r->src : &r->dst;
		if (!a->on)
			continue;
		const struct gprefix *p = &a->p[below(a->n)];
		if (p->family == family)
			return p;
	}
	return NULL;
}

static bool random_port(const struct gpolicy *g, uint16_t *out)
{
	for (int tries = 0; tries < 8; tries++) {
		const struct grule *r = &g->rules[below(g->count)];
		const struct gports *p = chance(50) ? &r->sport : &r->dport;
		if (!p->on)
			continue;
		uint32_t i = below(p->n), k = below(4);
		uint32_t v = k == 0   ? p->lo[i] - 1u
		             : k == 1 ? p->lo[i]
		             : k == 2 ? p->hi[i]
		                      : p->hi[i] + 1u;
		*out = (uint16_t)v;
		return true;
	}
	return false;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void make_synthetic(const struct gpolicy *g, struct packet *out)
{
	const struct packet *t = &packets[templates[below(template_count)]];
	const struct ts_decoded *d = &t->dec;
	*out = *t;
	out->data = malloc(t->caplen);
	if (!out->data)
		abort();
	memcpy(out->data, t->data, t->caplen);
	uint8_t fam = d->l3 == TS_L3_IPV4 ? 4 : 6;
	uint32_t alen = fam == 4 ? 4 : 16;
	uint32_t src = d->l3_offset + (fam == 4 ? 12 : 8), dst = src + alen;
	const struct gprefix *p;
	if (chance(70) && (p = random_prefix(g, fam)))
		prefix_edge(p, out->data + src);
	if (chance(70) && (p = random_prefix(g, fam)))
		prefix_edge(p, out->data + dst);
	uint16_t port;
	if (d->has_ports && chance(70) && random_port(g, &port))
		put16(out->data + d->l4_offset, port);
	if (d->has_ports && chance(70) && random_port(g, &port))
		put16(out->data + d->l4_offset + 2, port);
	if ((d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) && d->has_l4_header && chance(50)) {
		const struct grule *r = &g->rules[below(g->count)];
		if (r->ntypes)
			out->data[d->l4_offset] = r->types[below(r->ntypes)];
		if (r->ncodes)
			out->data[d->l4_offset + 1] = r->codes[below(r->ncodes)];
	}
	if (d->l4 == TS_L4_TCP && d->has_l4_header && chance(30)) {
		const struct grule *r = &g->rules[below(g->count)];
		if (r->flags_on)
			out->data[d->l4_offset + 13] =
			        (uint8_t)(r->flags | (rnd() & ~r->mask & 0xff));
	}
	ts_decode(fixtures[t->fixture].link, out->data, out->caplen, out->wirelen, &out->dec);
}

/* ---- one policy ---- */

static struct sbuf policy_text;

static bool parse_policy(const struct gpolicy *g, struct ts_policy **out)
{
	emit_policy(g, &policy_text);
	char err[512];
	*out = ts_policy_parse(policy_text.s, policy_text.len, "random", err, sizeof(err));
	if (!*out) {
		/* The documented "can never match" refusals are the generator's to
		 * avoid: one that slips through is counted and shown, not failed
		 * (the list in check_rule grows); any other refusal is a failure. */
		bool never = strstr(err, "expected a rule that can match") != NULL;
		st.refused_never += never;
		if (!never || st.refused_never <= 3) {
			printf("%s %s: seed 0x%016" PRIx64 ": generated policy refused: %s\n",
			       never ? "    note:" : "FAIL", check_current, g->seed, err);
			printf("%s", policy_text.s);
		}
		if (!never)
			check_test_failed = 1;
		return false;
	}
	if ((*out)->rule_count != g->count) {
		printf("FAIL %s: seed 0x%016" PRIx64 ": %u rules generated, %u parsed\n",
		       check_current, g->seed, g->count, (*out)->rule_count);
		check_test_failed = 1;
		ts_policy_free(*out);
		return false;
	}
	return true;
}

static void run_policy(struct gpolicy *g, uint64_t seed, bool verbose)
{
	gen_policy(g, seed, 0);
	struct ts_policy *p;
	if (!parse_policy(g, &p))
		return;
	struct evaluation ev = {.g = g, .p = p, .text = policy_text.s};
	if (verbose) {
		for (uint32_t c = 0; c < context_count; c++)
			print_policy(&ev, c, 0);
	}
	st.policies++;
	st.rules += g->count;
	for (uint32_t i = 0; i < packet_count && !ev.compile_failed; i++)
		eval_packet(&ev, &packets[i], false);
	rng_state = seed ^ 0xa5a5a5a5a5a5a5a5ull;
	for (uint32_t i = 0; i < SYNTHETIC_PER_POL && !ev.compile_failed; i++) {
		struct packet s;
		make_synthetic(g, &s);
		eval_packet(&ev, &s, true);
		free(s.data);
	}
	free_progs(&ev);
	ts_policy_free(p);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char summary[2048];

static void test_bpf_differential(void)
{
	double t0 = now();
	uint64_t base = env_u64("TS_BPF_SEED", DEFAULT_SEED);
	uint64_t count = env_u64("TS_BPF_POLICIES", DEFAULT_POLICIES);
	uint64_t one = env_u64("TS_BPF_ONE", 0);
	struct gpolicy g = {0};
	if (one) {
		run_policy(&g, one, true);
	} else {
		for (uint64_t i = 0; i < count && st.mismatches < 1000; i++) {
			uint64_t s = base + i;
			run_policy(&g, splitmix(&s), false);
		}
	}
	free(g.rules);
	if (st.mismatches > MAX_DETAILED)
		printf("FAIL %s: %" PRIu64 " mismatches in all (the first %d shown)\n",
		       check_current, st.mismatches, MAX_DETAILED);

	/* A test that compares nothing proves nothing. */
	uint64_t total = st.compared + st.compared_synthetic;
	if (!one) {
		CHECK(st.compared > 100000);
		CHECK(st.refused_never * 100 <= count); /* the generator is out of step */
		CHECK(st.compared_synthetic > 10000);
		CHECK(st.matched > total / 10 && st.matched < total - total / 10);
		CHECK(st.vlan_compared > 0 && st.ext_compared > 0 && st.ext_frag_compared > 0);
		CHECK(st.ext_excluded > 0 && st.mac_unsayable > 0 && st.anomalous > 0);
		CHECK(st.v4_first_frag > 0 && st.v4_later_frag > 0);
		CHECK(st.ipv6 > 0 && st.non_ip > 0);
		for (int i = 0; i < D_COUNT; i++)
			if (st.decisive[i] == 0) {
				printf("FAIL %s: no comparison was decided by a rule with %s\n",
				       check_current, decisive_names[i]);
				check_test_failed = 1;
			}
		for (uint32_t i = 0; i < fixture_count; i++) {
			const struct fixture *f = &fixtures[i];
			bool clean = false;
			for (uint32_t k = f->first; k < f->first + f->count; k++)
				clean = clean || (packets[k].dec.anomaly == TS_ANOM_NONE &&
				                  !packets[k].dec.vlan_count &&
				                  !packets[k].dec.ipv6_ext_count);
			if (clean && f->compared == 0) {
				printf("FAIL %s: nothing from %s was compared against libpcap\n",
				       check_current, f->path);
				check_test_failed = 1;
			}
		}
	}
	int n = snprintf(summary, sizeof(summary),
	                 "%" PRIu64 " comparisons against libpcap (%" PRIu64 " fixture + %" PRIu64
	                 " synthetic packets; %" PRIu64 " matched a rule; IPv4 fragments %" PRIu64
	                 " first + %" PRIu64 " later, IPv6 %" PRIu64 " (%" PRIu64
	                 " with extension headers, %" PRIu64 " fragments), VLAN-tagged %" PRIu64
	                 ", non-IP %" PRIu64 ")",
	                 total, st.compared, st.compared_synthetic, st.matched, st.v4_first_frag,
	                 st.v4_later_frag, st.ipv6, st.ext_compared, st.ext_frag_compared,
	                 st.vlan_compared, st.non_ip);
	n += snprintf(summary + n, sizeof(summary) - (size_t)n,
	              " over %" PRIu64 " policies (%" PRIu64
	              " rules) and %u packets in %u captures",
	              st.policies, st.rules, packet_count, fixture_count);
	n += snprintf(summary + n, sizeof(summary) - (size_t)n,
	              "; compiled-vs-linear only: %" PRIu64 " (ipv6 ext under a "
	              "protocol/port/flags/icmp/bpf rule %" PRIu64 ", mac on cooked links %" PRIu64
	              ", vlan on cooked links %" PRIu64 ", anomalous %" PRIu64 ", and %" PRIu64
	              " again with an input interface)",
	              st.ext_excluded + st.mac_unsayable + st.vlan_cooked + st.anomalous,
	              st.ext_excluded, st.mac_unsayable, st.vlan_cooked, st.anomalous,
	              st.iface_compared);
	snprintf(summary + n, sizeof(summary) - (size_t)n,
	         "; %" PRIu64
	         " generated policies refused as never matching; base seed 0x%016" PRIx64
	         "; %.1f s",
	         st.refused_never, base, now() - t0);
	if (!check_test_failed) {
		printf("     decided by:");
		for (int i = 0; i < D_COUNT; i++)
			printf(" %s %" PRIu64 "%s", decisive_names[i], st.decisive[i],
			       i + 1 < D_COUNT ? "," : "\n");
	}
}

/* ---- the documented refusals: rules that can never match ---- */

static void test_never_match_refused(void)
{
	static const char *const bad[] = {
	        "pass proto { icmp, gre } to port 80",
	        "pass icmp6 from port ! 53",
	        "drop proto 47 from 192.0.2.0/24 port 1-1024",
	        "pass udp flags S/SA",
	        "pass proto { icmp, udp } flags A",
	        "pass tcp icmp-type 8",
	        "drop proto { udp, 50 } icmp-type { 0, 8 } code 0",
	        "pass inet from 2001:db8::/32",
	        "pass inet6 to { 192.0.2.1, 198.51.100.0/24 }",
	        "pass inet to 2001:db8::1 port 80",
	        "reject udp with tcp-reset",
	        "reject proto { tcp, udp } with tcp-reset",
	        "reject all with tcp-reset",
	        "reject to port 80 with tcp-reset",
	};
	struct gpolicy g = {0};
	struct sbuf text = {0};
	uint32_t refused = 0, failures = 0;
	for (uint32_t i = 0; i < 300; i++) {
		uint64_t s = DEFAULT_SEED ^ 0xbadu ^ i;
		gen_policy(&g, splitmix(&s), 0);
		emit_policy(&g, &policy_text);
		/* The bad rule goes after a random number of good lines. */
		uint32_t lines = 0;
		for (const char *c = policy_text.s; *c; c++)
			lines += *c == '\n';
		uint32_t at = below(lines + 1), line = 1, bad_line = 0;
		const char *rule = bad[below(sizeof(bad) / sizeof(bad[0]))];
		sb_reset(&text);
		const char *c = policy_text.s;
		int depth = 0;
		for (;;) {
			/* Only between statements: not after a continued line, not
			 * inside braces that span lines. */
			bool continued = text.len >= 2 && text.s[text.len - 2] == '\\';
			if (!bad_line && line > at && !continued && depth == 0) {
				sb_printf(&text, "%s\n", rule);
				bad_line = line++;
			}
			if (!*c)
				break;
			const char *nl = strchr(c, '\n');
			for (const char *q = c; q < nl && *q != '#'; q++)
				depth += *q == '{' ? 1 : *q == '}' ? -1 : 0;
			sb_printf(&text, "%.*s\n", (int)(nl - c), c);
			line++;
			c = nl + 1;
		}
		if (!bad_line) {
			sb_printf(&text, "%s\n", rule);
			bad_line = line;
		}
		char err[512] = "";
		struct ts_policy *p = ts_policy_parse(text.s, text.len, "random", err, sizeof(err));
		char want[64];
		snprintf(want, sizeof(want), "random:%u:", bad_line);
		if (p || !strstr(err, "expected a rule that can match") ||
		    strncmp(err, want, strlen(want)) != 0) {
			printf("FAIL %s: seed 0x%016" PRIx64 ": \"%s\" on line %u: %s\n",
			       check_current, g.seed, rule, bad_line, p ? "accepted" : err);
			check_test_failed = 1;
			ts_policy_free(p);
			if (++failures == 5)
				break;
			continue;
		}
		refused++;
	}
	CHECK(refused == 300);
	free(g.rules);
	sb_free(&text);
}

/* ---- large policies: the multi-word rule vectors, compiled vs linear ---- */

static void test_large_policies(void)
{
	static const uint32_t sizes[] = {65, 200, 1000, 4097, 6000};
	struct gpolicy g = {0};
	uint64_t compared = 0, matched = 0, deep = 0;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t s = DEFAULT_SEED ^ (0x1a46e000u + k);
		gen_policy(&g, splitmix(&s), sizes[k]);
		struct ts_policy *p;
		if (!parse_policy(&g, &p))
			continue;
		rng_state = g.seed ^ 0x5555;
		uint32_t synthetic = 4000;
		for (uint32_t i = 0; i < packet_count + synthetic; i++) {
			struct packet sp;
			const struct packet *pk = &packets[i < packet_count ? i : 0];
			if (i >= packet_count) {
				make_synthetic(&g, &sp);
				pk = &sp;
			}
			/* Every third packet without an input interface. */
			static const char *const ifaces[] = {"eth0", "br-lan", NULL};
			struct ts_match_input in = {.dec = &pk->dec,
			                            .frame = pk->data,
			                            .caplen = pk->caplen,
			                            .wirelen = pk->wirelen,
			                            .iface = ifaces[i % 3]};
			int32_t lin = ts_policy_match_linear(p, &in);
			int32_t cls = pk->dec.anomaly == TS_ANOM_NONE
			                      ? ts_classify(p->classifier, &in)
			                      : -1;
			if (cls != lin) {
				const struct fixture *f = &fixtures[pk->fixture];
				printf("FAIL %s: seed 0x%016" PRIx64 " (%u rules): %s #%u%s: "
				       "ts_classify %d, ts_policy_match_linear %d\n",
				       check_current, g.seed, g.count, f->path, pk->number,
				       i >= packet_count ? " (synthetic)" : "", cls, lin);
				print_hex(pk->data, pk->caplen);
				check_test_failed = 1;
			}
			compared++;
			matched += lin >= 0;
			deep += lin >= 64;
			if (i >= packet_count)
				free(sp.data);
		}
		struct ts_classifier_stats cs;
		ts_classifier_get_stats(p->classifier, &cs);
		printf("     %u rules: %u vectors, %u intervals, %zu KiB\n", cs.rules, cs.vectors,
		       cs.intervals, cs.memory / 1024);
		ts_policy_free(p);
	}
	free(g.rules);
	CHECK(compared > 0 && matched > 0 && deep > 0);
	printf("     large policies: %" PRIu64 " packets compared, %" PRIu64
	       " matched a rule, %" PRIu64 " past rule 64\n",
	       compared, matched, deep);
}

/* check_run, with a summary after PASS. */
static void run_with_summary(const char *name, void (*fn)(void), const char *sum)
{
	check_current = name;
	check_test_failed = 0;
	fn();
	if (check_test_failed) {
		check_total_failed++;
		printf("FAIL %s: %s\n", name, sum);
	} else {
		check_total_passed++;
		printf("PASS %s: %s\n", name, sum);
	}
}

static void test_load(void)
{
	CHECK(load_fixtures());
	harvest_pools();
	CHECK(pool.n4 > 0 && pool.n6 > 0 && pool.nports > 0 && pool.nmacs > 0 && pool.nicmp > 0);
}

int main(void)
{
	RUN(test_load);
	if (check_total_failed)
		return check_exit_code();
	run_with_summary("bpf_differential", test_bpf_differential, summary);
	RUN(test_never_match_refused);
	RUN(test_large_policies);
	free_fixtures();
	sb_free(&scratch);
	sb_free(&policy_text);
	return check_exit_code();
}
