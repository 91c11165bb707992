/*
 * Classify benchmark: torsieve's decode + compiled-policy judgement against
 * libpcap's bpf_filter running the equivalent filter, on the same in-memory
 * packets in the same run, at 10, 100, 1,000 and 10,000 rules.
 *
 * A policy of N rules is N - 5 block rules ("drop to PREFIX", "drop from
 * PREFIX": distinct, non-overlapping IPv4 /32, /28, /24 and IPv6 /48, /128
 * prefixes, one in four a source) followed by the shipped default policy
 * (its 7 rules). Two orders of the same rules are measured: "grouped" (the
 * destination block list, then the source block list) and "interleaved"
 * (to and from mixed, as generated).
 *
 * Two peers run on libpcap's interpreter, both compiled with optimisation:
 *   first-match: one bpf program per rule, run in order until one matches,
 *     which is what first-match semantics cost in BPF (the final "drop all"
 *     is the no-match default and runs nothing);
 *   single expression: one program, "not (BLOCKS) and (ALLOWED)", which only
 *     tells dropped from not dropped, not which rule. libpcap's compile time
 *     grows faster than quadratically with the number of terms, so it is
 *     compiled in a child process and skipped past a budget.
 *
 * Packet arrays: "real" is the capture as recorded. "mix" is the capture
 * copied MIX_COPIES times with the IP addresses rewritten deterministically:
 * one IP packet in 8 gets a destination inside a "drop to" prefix and one in
 * 16 a source inside a "drop from" prefix (spread over the whole list), the
 * others a distinct destination no rule lists. Checksums are left stale:
 * neither side verifies them.
 *
 * usage: bench_classify [CAPTURE [SECONDS [COMPILE_BUDGET]]]
 *   SECONDS: the target length of one measurement (default 0.25)
 *   COMPILE_BUDGET: seconds allowed for compiling a single expression (30)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "torsieve/classify.h"
#include "torsieve/decode.h"
#include "torsieve/policy.h"
#include "torsieve/source.h"

#define MAX_PACKETS  100000
#define MIX_COPIES   8
#define RUNS         5
#define N_SIZES      4
#define N_DEFAULT    7 /* rules in the shipped default policy */
#define N_ARRAYS     2
#define N_LAYOUTS    2
#define GROUPED      0
#define INTERLEAVED  1
#define LAYOUT_NAMES "grouped", "interleaved"

static const uint32_t sizes[N_SIZES] = {10, 100, 1000, 10000};

/* The default policy's first four rules as libpcap expressions, in order;
 * the fifth, "drop all", is the no-match default. The gateway addresses are
 * those of etc/torsieve.conf; the verdict check below catches a drift. */
static const char *const default_bpf[N_DEFAULT - 1] = {
        "icmp6 and (ip6[40] == 133 or ip6[40] == 135 or ip6[40] == 136)",
        "udp and src port 68 and dst port 67",
        "tcp and (dst host 10.77.0.1 or dst host fd77::1) and dst port 9050",
        "tcp and (dst port 80 or dst port 443)",
        "udp and dst port 53",
        "udp and dst port 443",
};
static const enum ts_verdict default_verdicts[N_DEFAULT] = {
        TS_VERDICT_PASS, TS_VERDICT_PASS,   TS_VERDICT_PASS, TS_VERDICT_DIVERT,
        TS_VERDICT_DNS,  TS_VERDICT_REJECT, TS_VERDICT_DROP};

static volatile unsigned long bench_sink;

struct frame {
	uint8_t *data;
	uint32_t caplen, len;
};

struct packets {
	const char *name;
	struct frame *f;
	size_t n;
};

/* One block rule. */
struct entry {
	bool from;
	uint8_t family, len;
	uint8_t addr[16];
};

/* What is measured at one rule count. */
struct setup {
	uint32_t rules, blocks;
	enum ts_link link;
	struct entry *entries;
	struct ts_policy *policy[N_LAYOUTS];
	double compile_ms[N_LAYOUTS];
	/* first-match: per block entry, then the default rules */
	struct bpf_program *progs;
	uint32_t prog_count;
	const struct bpf_insn **chain[N_LAYOUTS]; /* in the layout's rule order */
	double bpf_compile_ms;
	uint64_t bpf_insns;
	/* single expression */
	struct bpf_insn *single;
	uint32_t single_len;
	double single_compile_ms; /* < 0: not compiled within the budget */
	bool single_failed;
};

enum subject {
	S_TS_GROUPED,
	S_TS_INTERLEAVED,
	S_FM_GROUPED,
	S_FM_INTERLEAVED,
	S_SINGLE,
	S_DECODE, /* ts_decode alone, for reference */
	S_COUNT
};

struct result {
	double ns[S_COUNT]; /* best of RUNS; < 0 when not measured */
	unsigned rounds[S_COUNT];
	size_t packets, agree_fm, agree_single, blocked;
	char mismatch[256];
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "bench_classify: out of memory\n");
		exit(1);
	}
	return p;
}

/* ---- the rules ---- */

/* /24 blocks no block rule may use: 0/8, 10/8 (the gateway), 100.64/10 (the
 * mix's unblocked destinations), 127/8, 192.0.2/24 (the capture), 224/3. */
static bool reserved24(uint32_t b)
{
	uint32_t o1 = b >> 16, o2 = (b >> 8) & 0xff, o3 = b & 0xff;
	return o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224 || (o1 == 100 && (o2 & 0xc0) == 64) ||
	       (o1 == 192 && o2 == 0 && o3 == 2);
}

/* Distinct, non-overlapping prefixes: each entry takes its own /24 block
 * (IPv4) or 2a0c:XXXX:XX00::/40 (IPv6), from a bijective hash of a counter. */
static void make_entries(struct entry *e, uint32_t m)
{
	uint32_t j = 0;
	for (uint32_t i = 0; i < m; i++) {
		uint32_t b;
		do
			b = (j++ * 2654435761u) & 0xffffff;
		while (reserved24(b));
		memset(&e[i], 0, sizeof(e[i]));
		e[i].from = i % 4 == 3;
		if (i % 5 == 4) {
			e[i].family = 6;
			e[i].addr[0] = 0x2a;
			e[i].addr[1] = 0x0c;
			e[i].addr[2] = (uint8_t)(b >> 16);
			e[i].addr[3] = (uint8_t)(b >> 8);
			e[i].addr[4] = (uint8_t)b;
			e[i].len = (i / 5) % 2 ? 128 : 48;
			if (e[i].len == 128)
				e[i].addr[15] = 1;
			continue;
		}
		e[i].family = 4;
		e[i].addr[0] = (uint8_t)(b >> 16);
		e[i].addr[1] = (uint8_t)(b >> 8);
		e[i].addr[2] = (uint8_t)b;
		switch ((i / 3) % 4) {
		case 0:
		case 1:
			e[i].len = 32;
			e[i].addr[3] = (uint8_t)(1 + i % 254);
			break;
		case 2:
			e[i].len = 24;
			break;
		default:
			e[i].len = 28;
			e[i].addr[3] = (uint8_t)((i * 16) & 0xf0);
			break;
		}
	}
}

static void entry_text(const struct entry *e, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, e->len);
}

/* The entries' indices in the layout's rule order. */
static void layout_order(const struct entry *e, uint32_t m, int layout, uint32_t *order)
{
	uint32_t k = 0;
	if (layout == INTERLEAVED) {
		for (uint32_t i = 0; i < m; i++)
			order[k++] = i;
		return;
	}
	for (uint32_t i = 0; i < m; i++)
		if (!e[i].from)
			order[k++] = i;
	for (uint32_t i = 0; i < m; i++)
		if (e[i].from)
			order[k++] = i;
}

static struct ts_policy *make_policy(const struct setup *s, const uint32_t *order, double *ms)
{
	size_t cap = (size_t)s->blocks * 64 + ts_default_policy_len + 1, len = 0;
	char *text = xmalloc(cap);
	for (uint32_t k = 0; k < s->blocks; k++) {
		const struct entry *e = &s->entries[order[k]];
		char pfx[64];
		entry_text(e, pfx, sizeof(pfx));
		len += (size_t)snprintf(text + len, cap - len, "drop %s %s\n",
		                        e->from ? "from" : "to", pfx);
	}
	memcpy(text + len, ts_default_policy, ts_default_policy_len);
	len += ts_default_policy_len;
	char err[512];
	double t0 = now_ns();
	struct ts_policy *p = ts_policy_parse(text, len, "bench", err, sizeof(err));
	*ms = (now_ns() - t0) / 1e6;
	free(text);
	if (!p) {
		fprintf(stderr, "bench_classify: %s\n", err);
		exit(2);
	}
	bool ok = p->rule_count == s->rules;
	for (uint32_t k = 0; ok && k < N_DEFAULT; k++)
		ok = p->rules[s->blocks + k].action == default_verdicts[k];
	if (!ok) {
		fprintf(stderr,
		        "bench_classify: the shipped default policy no longer has the 7 rules "
		        "this benchmark's bpf equivalents assume; update default_bpf\n");
		exit(2);
	}
	return p;
}

/* ---- the bpf peers ---- */

static void bpf_expr(const struct entry *e, char *buf, size_t len)
{
	char pfx[64];
	entry_text(e, pfx, sizeof(pfx));
	snprintf(buf, len, "%s net %s", e->from ? "src" : "dst", pfx);
}

static void compile_or_die(pcap_t *p, struct bpf_program *prog, const char *expr)
{
	if (pcap_compile(p, prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		fprintf(stderr, "bench_classify: %s: %s\n", expr, pcap_geterr(p));
		exit(2);
	}
}

static char *single_expression(const struct setup *s)
{
	size_t cap = (size_t)s->blocks * 64 + 512, len = 0;
	char *x = xmalloc(cap);
	len += (size_t)snprintf(x + len, cap - len, "not (");
	for (uint32_t i = 0; i < s->blocks; i++) {
		char term[96];
		bpf_expr(&s->entries[i], term, sizeof(term));
		len += (size_t)snprintf(x + len, cap - len, "%s%s", i ? " or " : "", term);
	}
	len += (size_t)snprintf(x + len, cap - len, ") and (");
	for (uint32_t k = 0; k < N_DEFAULT - 1; k++)
		len += (size_t)snprintf(x + len, cap - len, "%s(%s)", k ? " or " : "",
		                        default_bpf[k]);
	snprintf(x + len, cap - len, ")");
	return x;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *b = buf;
	while (len) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		b += n;
		len -= (size_t)n;
	}
	return true;
}

struct single_header {
	int32_t ok;
	uint32_t len;
	double ns;
};

/* Compiles the single expression in a child, so a compile past the budget
 * can be abandoned. */
static void compile_single(pcap_t *p, struct setup *s, double budget_s)
{
	char *expr = single_expression(s);
	int fds[2];
	s->single_compile_ms = -1;
	if (pipe(fds) != 0) {
		perror("bench_classify: pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench_classify: fork");
		exit(1);
	}
	if (pid == 0) {
		close(fds[0]);
		struct bpf_program prog;
		double t0 = now_ns();
		int rc = pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN);
		struct single_header h = {
		        .ok = rc == 0, .len = rc == 0 ? prog.bf_len : 0, .ns = now_ns() - t0};
		bool ok = write_all(fds[1], &h, sizeof(h));
		if (ok && rc == 0)
			ok = write_all(fds[1], prog.bf_insns,
			               (size_t)prog.bf_len * sizeof(*prog.bf_insns));
		else if (ok)
			ok = write_all(fds[1], pcap_geterr(p), strlen(pcap_geterr(p)) + 1);
		_exit(ok ? 0 : 1);
	}
	close(fds[1]);
	free(expr);

	double deadline = now_ns() + budget_s * 1e9;
	struct single_header h;
	char *buf = NULL;
	size_t got = 0, want = sizeof(h);
	bool done = false, timed_out = false;
	while (!done) {
		double left_ms = (deadline - now_ns()) / 1e6;
		if (left_ms <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left_ms + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			continue;
		char *dst = got < sizeof(h) ? (char *)&h + got : buf + (got - sizeof(h));
		ssize_t n = read(fds[0], dst, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the child died */
		got += (size_t)n;
		if (got == sizeof(h)) {
			want += h.ok ? (size_t)h.len * sizeof(struct bpf_insn) : PCAP_ERRBUF_SIZE;
			buf = xmalloc(want - sizeof(h));
		}
		if (got == want || (got > sizeof(h) && !h.ok && buf[got - sizeof(h) - 1] == '\0'))
			done = true;
	}
	if (timed_out)
		kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	if (done && h.ok) {
		s->single = (struct bpf_insn *)buf;
		s->single_len = h.len;
		s->single_compile_ms = h.ns / 1e6;
		return;
	}
	if (done)
		fprintf(stderr, "bench_classify: libpcap refused the single expression: %s\n", buf);
	else if (!timed_out)
		fprintf(stderr, "bench_classify: the child compiling the single expression died\n");
	s->single_failed = !timed_out;
	free(buf);
}

/* ---- the packets ---- */

/* Sets the host bits of addr (past len) from seed. */
static void fill_host_bits(uint8_t *addr, unsigned len, unsigned bits, uint32_t seed)
{
	uint32_t h = seed * 2246822519u + 0x9e3779b9u;
	for (unsigned bit = len; bit < bits; bit++) {
		h ^= h >> 13;
		h *= 0x5bd1e995u;
		if (h >> 31)
			addr[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
		else
			addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	}
}

/* The index of the pick-th entry with this direction and family, spread
 * over the list; -1 if there is none. */
static int64_t pick_entry(const struct entry *e, uint32_t m, bool from, uint8_t family,
                          uint32_t pick)
{
	uint32_t count = 0;
	for (uint32_t i = 0; i < m; i++)
		count += e[i].from == from && e[i].family == family;
	if (!count)
		return -1;
	uint32_t want = (uint32_t)(((uint64_t)pick * 7919u) % count);
	for (uint32_t i = 0; i < m; i++)
		if (e[i].from == from && e[i].family == family && want-- == 0)
			return i;
	return -1;
}

static void make_mix(const struct packets *real, enum ts_link link, const struct setup *s,
                     struct packets *out)
{
	out->name = "mix";
	out->n = real->n * MIX_COPIES;
	out->f = xmalloc(out->n * sizeof(*out->f));
	uint32_t k = 0;
	for (size_t c = 0; c < MIX_COPIES; c++) {
		for (size_t i = 0; i < real->n; i++) {
			const struct frame *src = &real->f[i];
			struct frame *f = &out->f[c * real->n + i];
			f->data = xmalloc(src->caplen);
			memcpy(f->data, src->data, src->caplen);
			f->caplen = src->caplen;
			f->len = src->len;
			struct ts_decoded dec;
			ts_decode(link, f->data, f->caplen, f->len, &dec);
			bool v4 = dec.l3 == TS_L3_IPV4;
			if ((!v4 && dec.l3 != TS_L3_IPV6) || dec.anomaly != TS_ANOM_NONE)
				continue;
			uint8_t fam = v4 ? 4 : 6;
			unsigned bits = v4 ? 32 : 128;
			uint8_t *sa = f->data + dec.l3_offset + (v4 ? 12 : 8);
			uint8_t *da = f->data + dec.l3_offset + (v4 ? 16 : 24);
			int64_t hit = -1;
			if (k % 8 == 0)
				hit = pick_entry(s->entries, s->blocks, false, fam, k / 8);
			else if (k % 16 == 4)
				hit = pick_entry(s->entries, s->blocks, true, fam, k / 16);
			if (hit >= 0) {
				const struct entry *e = &s->entries[hit];
				uint8_t *a = e->from ? sa : da;
				memcpy(a, e->addr, bits / 8);
				fill_host_bits(a, e->len, bits, k);
			} else if (v4) {
				uint32_t x =
				        0x64400000u | ((k * 40503u) & 0x3fffff); /* 100.64/10 */
				da[0] = (uint8_t)(x >> 24);
				da[1] = (uint8_t)(x >> 16);
				da[2] = (uint8_t)(x >> 8);
				da[3] = (uint8_t)x;
			} else {
				static const uint8_t base[16] = {0x20, 0x01, 0x0d,
				                                 0xb8, 0xff, 0xff};
				memcpy(da, base, 16);
				fill_host_bits(da, 48, 128, k);
			}
			k++;
		}
	}
}

static void free_packets(struct packets *pk)
{
	for (size_t i = 0; i < pk->n; i++)
		free(pk->f[i].data);
	free(pk->f);
	pk->f = NULL;
	pk->n = 0;
}

/* ---- measuring ---- */

static int32_t first_match(const struct bpf_insn *const *chain, uint32_t count,
                           const struct frame *f)
{
	for (uint32_t k = 0; k < count; k++)
		if (bpf_filter(chain[k], f->data, f->len, f->caplen))
			return (int32_t)k;
	return -1;
}

static unsigned long run(const struct setup *s, enum subject what, const struct packets *pk,
                         unsigned rounds)
{
	unsigned long sink = 0;
	const struct frame *fr = pk->f;
	size_t n = pk->n;
	switch (what) {
	case S_TS_GROUPED:
	case S_TS_INTERLEAVED: {
		const struct ts_policy *p = s->policy[what == S_TS_GROUPED ? GROUPED : INTERLEAVED];
		for (unsigned r = 0; r < rounds; r++)
			for (size_t i = 0; i < n; i++) {
				struct ts_decoded dec;
				ts_decode(s->link, fr[i].data, fr[i].caplen, fr[i].len, &dec);
				struct ts_match_input in = {.dec = &dec,
				                            .frame = fr[i].data,
				                            .caplen = fr[i].caplen,
				                            .wirelen = fr[i].len};
				struct ts_judgement j;
				ts_policy_judge(p, &in, &j);
				sink += (unsigned long)j.verdict + (unsigned long)j.rule;
			}
		break;
	}
	case S_FM_GROUPED:
	case S_FM_INTERLEAVED: {
		const struct bpf_insn *const *chain =
		        s->chain[what == S_FM_GROUPED ? GROUPED : INTERLEAVED];
		for (unsigned r = 0; r < rounds; r++)
			for (size_t i = 0; i < n; i++)
				sink += (unsigned long)first_match(chain, s->prog_count, &fr[i]);
		break;
	}
	case S_SINGLE:
		for (unsigned r = 0; r < rounds; r++)
			for (size_t i = 0; i < n; i++)
				sink += bpf_filter(s->single, fr[i].data, fr[i].len, fr[i].caplen);
		break;
	case S_DECODE:
		for (unsigned r = 0; r < rounds; r++)
			for (size_t i = 0; i < n; i++) {
				struct ts_decoded dec;
				ts_decode(s->link, fr[i].data, fr[i].caplen, fr[i].len, &dec);
				sink += (unsigned long)dec.dport + dec.anomaly;
			}
		break;
	default:
		break;
	}
	return sink;
}

/* Rounds so that one measurement takes about target_s. */
static unsigned calibrate(const struct setup *s, enum subject what, const struct packets *pk,
                          double target_s)
{
	unsigned rounds = 1;
	for (;;) {
		double t0 = now_ns();
		bench_sink += run(s, what, pk, rounds);
		double t = now_ns() - t0;
		if (t >= 20e6 || rounds >= (1u << 24)) {
			double want = target_s * 1e9 / (t / rounds);
			return want < 1 ? 1 : want > 1e9 ? 1000000000u : (unsigned)want;
		}
		rounds *= 2;
	}
}

/* Do the peers decide as torsieve does? */
static void check_verdicts(const struct setup *s, const struct packets *pk, struct result *res)
{
	const struct ts_policy *p = s->policy[GROUPED];
	res->packets = pk->n;
	for (size_t i = 0; i < pk->n; i++) {
		const struct frame *f = &pk->f[i];
		struct ts_decoded dec;
		ts_decode(s->link, f->data, f->caplen, f->len, &dec);
		struct ts_match_input in = {
		        .dec = &dec, .frame = f->data, .caplen = f->caplen, .wirelen = f->len};
		struct ts_judgement j[N_LAYOUTS];
		ts_policy_judge(p, &in, &j[GROUPED]);
		ts_policy_judge(s->policy[INTERLEAVED], &in, &j[INTERLEAVED]);
		int32_t r = first_match(s->chain[GROUPED], s->prog_count, f);
		enum ts_verdict bv = r < 0 ? TS_VERDICT_DROP : p->rules[r].action;
		bool same =
		        bv == j[GROUPED].verdict && j[INTERLEAVED].verdict == j[GROUPED].verdict &&
		        (r < 0 ? j[GROUPED].rule < 0 || (uint32_t)j[GROUPED].rule == s->rules - 1
		               : r == j[GROUPED].rule);
		res->agree_fm += same;
		res->blocked += j[GROUPED].rule >= 0 && (uint32_t)j[GROUPED].rule < s->blocks;
		if (!same && !res->mismatch[0])
			snprintf(res->mismatch, sizeof(res->mismatch),
			         "first difference: packet %zu: torsieve rule %d (%s, anomaly %s), "
			         "bpf "
			         "rule %d (%s)",
			         i + 1, j[GROUPED].rule, ts_verdict_name(j[GROUPED].verdict),
			         ts_anomaly_name(dec.anomaly), r, ts_verdict_name(bv));
		if (s->single)
			res->agree_single += (bpf_filter(s->single, f->data, f->len, f->caplen) !=
			                      0) == (j[GROUPED].verdict != TS_VERDICT_DROP);
	}
}

static void measure(const struct setup *s, const struct packets *pk, double target_s,
                    struct result *res)
{
	bool have[S_COUNT];
	for (int w = 0; w < S_COUNT; w++) {
		have[w] = w != S_SINGLE || s->single;
		res->ns[w] = -1;
		res->rounds[w] = have[w] ? calibrate(s, (enum subject)w, pk, target_s) : 0;
	}
	/* Best of RUNS, interleaved, so every subject sees the same machine. */
	for (int run_no = 0; run_no < RUNS; run_no++)
		for (int w = 0; w < S_COUNT; w++) {
			if (!have[w])
				continue;
			double t0 = now_ns();
			bench_sink += run(s, (enum subject)w, pk, res->rounds[w]);
			double per = (now_ns() - t0) / ((double)res->rounds[w] * (double)pk->n);
			if (res->ns[w] < 0 || per < res->ns[w])
				res->ns[w] = per;
		}
	check_verdicts(s, pk, res);
}

/* ---- one rule count ---- */

static void setup_build(pcap_t *pc, enum ts_link link, uint32_t rules, double budget_s,
                        struct setup *s)
{
	memset(s, 0, sizeof(*s));
	s->rules = rules;
	s->blocks = rules - N_DEFAULT;
	s->link = link;
	s->entries = xmalloc((size_t)s->blocks * sizeof(*s->entries));
	make_entries(s->entries, s->blocks);
	uint32_t *order = xmalloc(((size_t)s->blocks + 1) * sizeof(*order));

	s->prog_count = s->blocks + N_DEFAULT - 1;
	s->progs = xmalloc((size_t)s->prog_count * sizeof(*s->progs));
	double t0 = now_ns();
	for (uint32_t i = 0; i < s->prog_count; i++) {
		char expr[128];
		if (i < s->blocks)
			bpf_expr(&s->entries[i], expr, sizeof(expr));
		else
			snprintf(expr, sizeof(expr), "%s", default_bpf[i - s->blocks]);
		compile_or_die(pc, &s->progs[i], expr);
		s->bpf_insns += s->progs[i].bf_len;
	}
	s->bpf_compile_ms = (now_ns() - t0) / 1e6;

	for (int l = 0; l < N_LAYOUTS; l++) {
		layout_order(s->entries, s->blocks, l, order);
		s->policy[l] = make_policy(s, order, &s->compile_ms[l]);
		s->chain[l] = xmalloc((size_t)s->prog_count * sizeof(*s->chain[l]));
		for (uint32_t k = 0; k < s->prog_count; k++)
			s->chain[l][k] = s->progs[k < s->blocks ? order[k] : k].bf_insns;
	}
	free(order);

	fprintf(stderr,
	        "bench_classify: %u rules: compiling the single bpf expression (budget %.0f s)\n",
	        rules, budget_s);
	compile_single(pc, s, budget_s);
}

static void setup_free(struct setup *s)
{
	for (int l = 0; l < N_LAYOUTS; l++) {
		ts_policy_free(s->policy[l]);
		free(s->chain[l]);
	}
	for (uint32_t i = 0; i < s->prog_count; i++)
		pcap_freecode(&s->progs[i]);
	free(s->progs);
	free(s->single);
	free(s->entries);
}

/* ---- output ---- */

struct summary {
	uint32_t rules;
	struct ts_classifier_stats stats[N_LAYOUTS];
	double compile_ms[N_LAYOUTS];
	double bpf_compile_ms, single_compile_ms;
	uint64_t bpf_insns;
	uint32_t prog_count, single_len;
	bool single_failed;
	struct result res[N_ARRAYS];
};

static void print_ratio(double peer, double ts)
{
	if (peer < 0)
		printf(" - |");
	else
		printf(" %.1f |", peer / ts);
}

static void print_ns(double ns)
{
	if (ns < 0)
		printf(" not compiled |");
	else if (ns >= 1000)
		printf(" %.0f |", ns);
	else
		printf(" %.1f |", ns);
}

static void print_table(const struct summary *sum, int a, int layout)
{
	enum subject ts = layout == GROUPED ? S_TS_GROUPED : S_TS_INTERLEAVED;
	enum subject fm = layout == GROUPED ? S_FM_GROUPED : S_FM_INTERLEAVED;
	printf("| rules | torsieve decode+classify ns/pkt | bpf first-match ns/pkt | ratio | "
	       "bpf single-expression ns/pkt | ratio | torsieve classifier bytes | compile ms "
	       "|\n|---|---|---|---|---|---|---|---|\n");
	for (int n = 0; n < N_SIZES; n++) {
		const struct summary *x = &sum[n];
		const struct result *r = &x->res[a];
		printf("| %u |", x->rules);
		print_ns(r->ns[ts]);
		print_ns(r->ns[fm]);
		print_ratio(r->ns[fm], r->ns[ts]);
		print_ns(r->ns[S_SINGLE]);
		print_ratio(r->ns[S_SINGLE], r->ns[ts]);
		printf(" %zu | %.1f |\n", x->stats[layout].memory, x->compile_ms[layout]);
	}
}

static void print_goals(const struct summary *sum, int a, int layout)
{
	enum subject ts = layout == GROUPED ? S_TS_GROUPED : S_TS_INTERLEAVED;
	enum subject fm = layout == GROUPED ? S_FM_GROUPED : S_FM_INTERLEAVED;
	const struct result *lo = &sum[0].res[a], *hi = &sum[N_SIZES - 1].res[a];
	double growth = hi->ns[ts] / lo->ns[ts];
	printf("- growth of torsieve's own cost, %u -> %u rules: %.2fx (goal <= 2x: %s)\n",
	       sum[0].rules, sum[N_SIZES - 1].rules, growth, growth <= 2 ? "met" : "NOT met");
	printf("- %u rules, first-match peer: %.1fx (goal >= 3x: %s)", sum[0].rules,
	       lo->ns[fm] / lo->ns[ts], lo->ns[fm] / lo->ns[ts] >= 3 ? "met" : "NOT met");
	if (lo->ns[S_SINGLE] >= 0)
		printf("; single-expression peer: %.1fx (%s)", lo->ns[S_SINGLE] / lo->ns[ts],
		       lo->ns[S_SINGLE] / lo->ns[ts] >= 3 ? "met" : "NOT met");
	printf("\n- %u rules, first-match peer: %.1fx (goal >= 100x: %s)", sum[N_SIZES - 1].rules,
	       hi->ns[fm] / hi->ns[ts], hi->ns[fm] / hi->ns[ts] >= 100 ? "met" : "NOT met");
	if (hi->ns[S_SINGLE] >= 0)
		printf("; single-expression peer: %.1fx (%s)", hi->ns[S_SINGLE] / hi->ns[ts],
		       hi->ns[S_SINGLE] / hi->ns[ts] >= 100 ? "met" : "NOT met");
	else
		printf("; single-expression peer: not compiled within the budget");
	printf("\n");
}

static void print_report(const struct summary *sum, const struct packets *arrays, double target_s,
                         double budget_s, const char *path)
{
	static const char *const layout_names[N_LAYOUTS] = {LAYOUT_NAMES};
	printf("# bench_classify: %s, best of %d interleaved runs, ~%.2f s per measurement\n\n",
	       path, RUNS, target_s);
	printf("torsieve: ts_decode + ts_policy_judge (compiled classifier) per packet.\n"
	       "bpf first-match: libpcap bpf_filter, one optimised program per rule run in order "
	       "until one matches (the final 'drop all' is the no-match default).\n"
	       "bpf single-expression: one optimised program 'not (BLOCKS) and (ALLOWED)': dropped "
	       "or not, no rule; compiled only when libpcap finishes within %.0f s.\n"
	       "ratio: bpf ns / torsieve ns (above 1: torsieve is faster).\n"
	       "Rules: N-7 block rules (3/4 'drop to', 1/4 'drop from'; IPv4 /32 /28 /24, IPv6 /48 "
	       "/128, distinct) then the shipped default policy's 7 rules. grouped: the 'drop "
	       "to' rules, then the 'drop from' rules; interleaved: the same rules, to and from "
	       "mixed.\n"
	       "Packets: real: the capture as recorded. mix: the capture x %d with IP addresses "
	       "rewritten: 1 IP packet in 8 to a 'drop to' prefix, 1 in 16 from a 'drop from' "
	       "prefix, the rest to distinct unlisted destinations.\n",
	       budget_s, MIX_COPIES);
	for (int a = 0; a < N_ARRAYS; a++) {
		double dec = -1;
		for (int n = 0; n < N_SIZES; n++)
			if (dec < 0 || sum[n].res[a].ns[S_DECODE] < dec)
				dec = sum[n].res[a].ns[S_DECODE];
		printf("\n%s packets: ts_decode alone costs %.1f ns/pkt (best over all rule "
		       "counts); "
		       "the rest of torsieve's figure is the policy.\n",
		       arrays[a].name, dec);
		for (int l = 0; l < N_LAYOUTS; l++) {
			printf("\n## %s packets (%zu), %s rules\n\n", arrays[a].name,
			       sum[0].res[a].packets, layout_names[l]);
			print_table(sum, a, l);
			printf("\n");
			print_goals(sum, a, l);
		}
	}
	printf("\n## Compiling\n\n| rules | torsieve ms grouped / interleaved | torsieve bytes "
	       "grouped / interleaved | vectors | intervals | fields | bpf first-match: programs, "
	       "insns, ms | bpf single expression: insns, ms "
	       "|\n|---|---|---|---|---|---|---|---|\n");
	for (int n = 0; n < N_SIZES; n++) {
		const struct summary *x = &sum[n];
		printf("| %u | %.1f / %.1f | %zu / %zu | %u / %u | %u | %u | %u, %llu, %.1f |",
		       x->rules, x->compile_ms[0], x->compile_ms[1], x->stats[0].memory,
		       x->stats[1].memory, x->stats[0].vectors, x->stats[1].vectors,
		       x->stats[0].intervals, x->stats[0].fields, x->prog_count,
		       (unsigned long long)x->bpf_insns, x->bpf_compile_ms);
		if (x->single_compile_ms >= 0)
			printf(" %u, %.1f |\n", x->single_len, x->single_compile_ms);
		else if (x->single_failed)
			printf(" libpcap refused it |\n");
		else
			printf(" not done in %.0f s, skipped |\n", budget_s);
	}
	printf("\n## Verdict check (does each peer decide as torsieve does?)\n\n");
	for (int n = 0; n < N_SIZES; n++)
		for (int a = 0; a < N_ARRAYS; a++) {
			const struct result *r = &sum[n].res[a];
			printf("- %u rules, %s: first-match agrees on %zu/%zu packets (rule and "
			       "verdict; "
			       "both layouts); ",
			       sum[n].rules, arrays[a].name, r->agree_fm, r->packets);
			if (r->ns[S_SINGLE] >= 0)
				printf("single expression agrees on dropped-or-not for %zu/%zu",
				       r->agree_single, r->packets);
			else
				printf("single expression not compiled");
			printf("; %zu packets hit a block rule%s%s\n", r->blocked,
			       r->mismatch[0] ? "; " : "", r->mismatch);
		}
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "test/pcaps/real-eth.pcap";
	double target_s = argc > 2 ? atof(argv[2]) : 0.25;
	double budget_s = argc > 3 ? atof(argv[3]) : 30;
	char err[PCAP_ERRBUF_SIZE];
	if (target_s <= 0 || budget_s <= 0) {
		fprintf(stderr, "usage: bench_classify [CAPTURE [SECONDS [COMPILE_BUDGET]]]\n");
		return 2;
	}

	pcap_t *pc = pcap_open_offline(path, err);
	if (!pc) {
		fprintf(stderr, "bench_classify: %s\n", err);
		return 2;
	}
	enum ts_link link = ts_link_from_dlt(pcap_datalink(pc));
	static struct frame frames[MAX_PACKETS];
	struct packets real = {.name = "real", .f = frames};
	struct pcap_pkthdr *h;
	const u_char *d;
	while (real.n < MAX_PACKETS && pcap_next_ex(pc, &h, &d) == 1) {
		frames[real.n].data = xmalloc(h->caplen);
		memcpy(frames[real.n].data, d, h->caplen);
		frames[real.n].caplen = h->caplen;
		frames[real.n].len = h->len;
		real.n++;
	}
	if (real.n == 0) {
		fprintf(stderr, "bench_classify: %s holds no packets\n", path);
		return 2;
	}

	static struct summary sum[N_SIZES];
	struct packets arrays[N_ARRAYS] = {real, {.name = "mix"}};
	for (int n = 0; n < N_SIZES; n++) {
		struct setup s;
		setup_build(pc, link, sizes[n], budget_s, &s);
		struct packets mix;
		make_mix(&real, link, &s, &mix);
		struct summary *x = &sum[n];
		x->rules = s.rules;
		for (int l = 0; l < N_LAYOUTS; l++) {
			ts_classifier_get_stats(s.policy[l]->classifier, &x->stats[l]);
			x->compile_ms[l] = s.compile_ms[l];
		}
		x->bpf_compile_ms = s.bpf_compile_ms;
		x->bpf_insns = s.bpf_insns;
		x->prog_count = s.prog_count;
		x->single_compile_ms = s.single_compile_ms;
		x->single_len = s.single_len;
		x->single_failed = s.single_failed;
		fprintf(stderr, "bench_classify: %u rules: measuring\n", s.rules);
		measure(&s, &real, target_s, &x->res[0]);
		measure(&s, &mix, target_s, &x->res[1]);
		arrays[1].n = mix.n;
		free_packets(&mix);
		setup_free(&s);
	}
	print_report(sum, arrays, target_s, budget_s, path);
	pcap_close(pc);
	for (size_t i = 0; i < real.n; i++)
		free(frames[i].data);
	return 0;
}
