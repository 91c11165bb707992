/*
 * Reassembly benchmark: TCP stream bytes produced per second by torsieve's
 * engine and by libnids, reading the same capture file in the same run, and
 * each one's peak memory.
 *
 * Each measurement runs in a forked child, so the peak RSS that wait4
 * reports is that peer's own, and the runs alternate between the peers so
 * both see the same machine. Both read the file through libpcap, reassemble
 * every TCP direction and hand every delivered byte to the same cheap
 * consumer (a sum of the bytes); the figure is stream bytes over wall time,
 * best of RUNS.
 *
 * torsieve: ts_engine with a policy passing every TCP flow (flow table and
 * stream memory large enough that nothing is evicted or capped), a plugin on
 * on_stream_data. libnids: nids_run over the file, scan detection off, a
 * stream table large enough, checksums verified as libnids always does, a
 * TCP callback collecting both directions.
 *
 * Afterwards, untimed, each peer runs once more computing every direction's
 * SHA-256; the two lists must be identical, direction by direction.
 *
 * usage: bench_reassembly CAPTURE [RUNS [PEER]]
 *   RUNS: timed runs of each peer (default 5)
 *   PEER: torsieve or libnids: time that one alone, no comparison (for perf)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <nids.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_clock.h"
#include "torsieve/engine.h"
#include "torsieve/policy.h"
#include "torsieve/sha256.h"
#include "torsieve/source.h"

#define DEFAULT_RUNS 5
#define NIDS_STREAMS (1 << 16) /* libnids follows up to 3/4 of this at once */
#define MAX_SHOWN    20        /* mismatching directions printed in full */

/* What every torsieve run is configured with: every TCP flow passes, and
 * the caps are far above what the capture needs (stream-memory covers a
 * 64K history ring for every direction of every flow in it). */
static const char policy_text[] = "set max-flows 65536\n"
                                  "set stream-buffer 1M\n"
                                  "set stream-memory 1G\n"
                                  "set stream-history 64K\n"
                                  "pass tcp\n";

enum peer {
	TORSIEVE,
	LIBNIDS,
	NOTHING,
	PEERS
};
static const char *const peer_names[PEERS] = {"torsieve", "libnids", "nothing"};

/* What a child reports to the parent, after a digest run's lines. */
struct tally {
	int ok;
	double seconds;
	uint64_t bytes, sum, gaps;
	/* torsieve's engine counters */
	uint64_t packets, flows, evicted, directions, inconsistent, cap_hits, history_skipped;
	/* libnids' stream endings and warnings */
	uint64_t established, closed, reset, timed_out, exiting, warnings[16];
	char err[600]; /* room for a source's message and a prefix */
};

/* The child's state: one peer, one run. */
static struct tally tally;
static FILE *digest_out; /* NULL in a timed run */

/* One direction's digest (the untimed run). */
struct dir_digest {
	struct ts_sha256 sha;
	uint64_t bytes, gaps;
};

/*
 * The per-byte work both peers do on what they deliver: a sum of the bytes,
 * which does not depend on how a stream was cut into pieces. Eight bytes at
 * a time in 16-bit lanes, folded every 128 words before a lane can overflow
 * (128 x 2 x 255 < 65536), so the consumer costs little beside reassembly.
 */
static uint64_t byte_sum(const uint8_t *p, size_t n)
{
	uint64_t total = 0;
	while (n >= 8) {
		size_t words = n / 8 > 128 ? 128 : n / 8;
		uint64_t lanes = 0;
		for (size_t i = 0; i < words; i++, p += 8) {
			uint64_t w;
			memcpy(&w, p, 8);
			lanes += (w & 0x00ff00ff00ff00ffull) + (w >> 8 & 0x00ff00ff00ff00ffull);
		}
		n -= words * 8;
		total += (lanes & 0xffff) + (lanes >> 16 & 0xffff) + (lanes >> 32 & 0xffff) +
		         (lanes >> 48);
	}
	while (n--)
		total += *p++;
	return total;
}

static void consume(const uint8_t *p, size_t n)
{
	tally.bytes += n;
	tally.sum += byte_sum(p, n);
}

static void digest_line(const char *client, unsigned cport, const char *server, unsigned sport,
                        const char *dir, struct dir_digest *d)
{
	if (!d->bytes && !d->gaps)
		return;
	char hex[65];
	ts_sha256_hex(&d->sha, hex);
	fprintf(digest_out, "%s:%u %s:%u %s %" PRIu64 " %" PRIu64 " %s\n", client, cport, server,
	        sport, dir, d->bytes, d->gaps, hex);
}

/* torsieve */

/* Digests by flow id (ids are dense, from 1): two directions each. */
static struct dir_digest *flow_digests;
static uint64_t flow_digest_cap;

static struct dir_digest *flow_digest(uint64_t id)
{
	if (id >= flow_digest_cap) {
		uint64_t cap = flow_digest_cap ? flow_digest_cap : 4096;
		while (cap <= id)
			cap *= 2;
		struct dir_digest *d = realloc(flow_digests, cap * 2 * sizeof(*d));
		if (!d) {
			fprintf(stderr, "bench_reassembly: out of memory\n");
			_exit(1);
		}
		for (uint64_t i = flow_digest_cap * 2; i < cap * 2; i++) {
			memset(&d[i], 0, sizeof(d[i]));
			ts_sha256_init(&d[i].sha);
		}
		flow_digests = d;
		flow_digest_cap = cap;
	}
	return &flow_digests[id * 2];
}

static void ts_on_stream_data(void *ctx, const struct ts_stream_event *ev)
{
	(void)ctx;
	if (!ev->data) {
		tally.gaps++;
		if (digest_out)
			flow_digest(ev->flow->id)[ev->dir].gaps++;
		return;
	}
	consume(ev->data, ev->len);
	if (digest_out) {
		struct dir_digest *d = &flow_digest(ev->flow->id)[ev->dir];
		ts_sha256_update(&d->sha, ev->data, ev->len);
		d->bytes += ev->len;
	}
}

static void ts_on_flow_end(void *ctx, const struct ts_flow_event *ev)
{
	(void)ctx;
	const struct ts_flow *f = ev->flow;
	/* The capture is IPv4, as libnids only follows IPv4. */
	if (!digest_out || !ev->streams || f->key.family != 4)
		return;
	int c = f->initiator, s = !c;
	char client[INET_ADDRSTRLEN], server[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, f->key.addr[c], client, sizeof(client));
	inet_ntop(AF_INET, f->key.addr[s], server, sizeof(server));
	struct dir_digest *d = flow_digest(f->id);
	digest_line(client, f->key.port[c], server, f->key.port[s], "c2s", &d[0]);
	digest_line(client, f->key.port[c], server, f->key.port[s], "s2c", &d[1]);
}

static int run_torsieve(const char *path)
{
	char err[512];
	struct ts_policy *policy =
	        ts_policy_parse(policy_text, sizeof(policy_text) - 1, "bench", err, sizeof(err));
	if (!policy) {
		snprintf(tally.err, sizeof(tally.err), "%s", err);
		return -1;
	}
	struct ts_source *src = ts_source_open_pcap(path, err, sizeof(err));
	if (!src) {
		snprintf(tally.err, sizeof(tally.err), "%s", err);
		return -1;
	}
	struct ts_engine e;
	ts_engine_init(&e);
	struct ts_plugin plugin = {.name = "bench",
	                           .on_stream_data = ts_on_stream_data,
	                           .on_flow_end = ts_on_flow_end};
	if (ts_engine_set_policy(&e, policy, NULL) != 0 || ts_engine_add_plugin(&e, &plugin) != 0) {
		snprintf(tally.err, sizeof(tally.err), "the engine cannot be set up");
		return -1;
	}
	int rc = ts_engine_run_file(&e, src);
	if (rc != 0)
		snprintf(tally.err, sizeof(tally.err), "%s", src->err);
	tally.packets = e.stats.packets;
	tally.flows = e.stats.flows.total;
	tally.evicted = e.stats.flows.evicted;
	tally.directions = e.stats.streams.count;
	tally.inconsistent = e.stats.streams.inconsistent;
	tally.cap_hits = e.stats.streams.cap_hits;
	tally.history_skipped = e.stats.streams.history_skipped;
	ts_source_close(src);
	ts_engine_release(&e);
	ts_policy_free(policy);
	return rc;
}

/* libnids */

static void nids_note(int type, int errnum, struct ip *iph, void *data)
{
	(void)type;
	(void)iph;
	(void)data;
	tally.warnings[errnum >= 0 && errnum < 16 ? errnum : 0]++;
}

static void nids_out_of_memory(char *where)
{
	fprintf(stderr, "bench_reassembly: libnids out of memory in %s\n", where);
	_exit(1);
}

/* The data a half-stream received this time: libnids keeps no more than
 * that since nothing is ever left unread (no nids_discard). */
static void nids_take(struct half_stream *h, struct dir_digest *d)
{
	if (!h->count_new)
		return;
	consume((const uint8_t *)h->data, (size_t)h->count_new);
	if (d) {
		ts_sha256_update(&d->sha, (const uint8_t *)h->data, (size_t)h->count_new);
		d->bytes += (uint64_t)h->count_new;
	}
}

static void nids_digest_lines(const struct tcp_stream *t, struct dir_digest *d)
{
	char client[INET_ADDRSTRLEN], server[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &t->addr.saddr, client, sizeof(client));
	inet_ntop(AF_INET, &t->addr.daddr, server, sizeof(server));
	digest_line(client, t->addr.source, server, t->addr.dest, "c2s", &d[0]);
	digest_line(client, t->addr.source, server, t->addr.dest, "s2c", &d[1]);
}

/* libnids' client half-stream holds what the client received (s2c), the
 * server half what the server received (c2s). */
static void nids_tcp(struct tcp_stream *t, void **param)
{
	struct dir_digest *d = *param;
	switch (t->nids_state) {
	case NIDS_JUST_EST:
		t->client.collect++;
		t->server.collect++;
		tally.established++;
		*param = NULL;
		if (digest_out) {
			d = calloc(2, sizeof(*d));
			if (!d)
				nids_out_of_memory("the benchmark");
			ts_sha256_init(&d[0].sha);
			ts_sha256_init(&d[1].sha);
			*param = d;
		}
		return;
	case NIDS_DATA:
		nids_take(&t->server, d ? &d[0] : NULL);
		nids_take(&t->client, d ? &d[1] : NULL);
		return;
	case NIDS_CLOSE:
		tally.closed++;
		break;
	case NIDS_RESET:
		tally.reset++;
		break;
	case NIDS_TIMED_OUT:
		tally.timed_out++;
		break;
	case NIDS_EXITING:
		tally.exiting++;
		break;
	default:
		return;
	}
	if (d) {
		nids_digest_lines(t, d);
		free(d);
		*param = NULL;
	}
}

static int run_libnids(const char *path)
{
	static char filename[4096];
	snprintf(filename, sizeof(filename), "%s", path);
	nids_params.filename = filename;
	nids_params.device = NULL;
	nids_params.scan_num_hosts = 0;
	nids_params.n_tcp_streams = NIDS_STREAMS;
	nids_params.syslog = nids_note;
	nids_params.no_mem = nids_out_of_memory;
	nids_params.pcap_filter = NULL;
	nids_params.multiproc = 0;
	if (!nids_init()) {
		snprintf(tally.err, sizeof(tally.err), "nids_init: %s", nids_errbuf);
		return -1;
	}
	nids_register_tcp(nids_tcp);
	nids_run(); /* to the end of the file, then nids_exit */
	return 0;
}

/* The parent */

struct measure {
	struct tally t;
	long maxrss_kb;
	char *text; /* a digest run's lines, NUL-terminated */
};

/* In the child: run one peer, then write the tally after whatever lines the
 * digest run wrote, so the parent finds it at the end. */
static void child(enum peer peer, const char *path, bool digest, int fd)
{
	FILE *out = fdopen(fd, "w");
	if (!out)
		_exit(1);
	digest_out = digest ? out : NULL;
	double t0 = now_ns();
	int rc = peer == TORSIEVE ? run_torsieve(path) : peer == LIBNIDS ? run_libnids(path) : 0;
	tally.seconds = (now_ns() - t0) / 1e9;
	tally.ok = rc == 0;
	fwrite(&tally, sizeof(tally), 1, out);
	_exit(fclose(out) == 0 ? 0 : 1);
}

static int read_child(int fd, struct measure *m)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	for (;;) {
		if (buf && cap - len < 4096) {
			char *grown = realloc(buf, cap *= 2);
			if (!grown)
				free(buf);
			buf = grown;
		}
		if (!buf)
			return -1;
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len < sizeof(m->t)) {
		free(buf);
		return -1;
	}
	len -= sizeof(m->t);
	memcpy(&m->t, buf + len, sizeof(m->t));
	buf[len] = 0;
	m->text = buf;
	return 0;
}

/* One run of one peer in its own process: its tally, its peak RSS and, in a
 * digest run, its per-direction lines. */
static int measure(enum peer peer, const char *path, bool digest, struct measure *m)
{
	int fds[2];
	memset(m, 0, sizeof(*m));
	if (pipe(fds) != 0) {
		perror("bench_reassembly: pipe");
		return -1;
	}
	fflush(NULL); /* or the child would inherit unwritten output */
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench_reassembly: fork");
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		child(peer, path, digest, fds[1]);
	}
	close(fds[1]);
	int got = read_child(fds[0], m);
	close(fds[0]);
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("bench_reassembly: wait4");
		return -1;
	}
	m->maxrss_kb = ru.ru_maxrss;
	if (got != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !m->t.ok) {
		fprintf(stderr, "bench_reassembly: the %s run failed%s%s\n", peer_names[peer],
		        m->t.err[0] ? ": " : "", m->t.err);
		return -1;
	}
	return 0;
}

/* One direction in a digest run's output. */
struct record {
	char key[112]; /* "CLIENT:PORT SERVER:PORT DIR" */
	uint64_t bytes, gaps;
	char sha[65];
};

static int record_cmp(const void *a, const void *b)
{
	return strcmp(((const struct record *)a)->key, ((const struct record *)b)->key);
}

static struct record *parse_records(char *text, size_t *count)
{
	size_t lines = 0;
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	struct record *r = calloc(lines ? lines : 1, sizeof(*r));
	if (!r)
		return NULL;
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && n < lines;
	     line = strtok_r(NULL, "\n", &save)) {
		char client[48], server[48], dir[4];
		if (sscanf(line, "%47s %47s %3s %" SCNu64 " %" SCNu64 " %64s", client, server, dir,
		           &r[n].bytes, &r[n].gaps, r[n].sha) != 6)
			continue;
		snprintf(r[n].key, sizeof(r[n].key), "%s %s %s", client, server, dir);
		n++;
	}
	qsort(r, n, sizeof(*r), record_cmp);
	*count = n;
	return r;
}

static void show_mismatch(size_t shown, const char *key, const struct record *a,
                          const struct record *b)
{
	if (shown > MAX_SHOWN)
		return;
	if (shown == MAX_SHOWN) {
		printf("MISMATCH: more directions differ, not shown\n");
		return;
	}
	printf("MISMATCH %s: torsieve ", key);
	if (a)
		printf("%" PRIu64 " bytes, %" PRIu64 " gaps, sha256 %s", a->bytes, a->gaps, a->sha);
	else
		printf("delivered nothing");
	printf("; libnids ");
	if (b)
		printf("%" PRIu64 " bytes, sha256 %s\n", b->bytes, b->sha);
	else
		printf("delivered nothing\n");
}

/* Walk both sorted lists; a direction is identical when both delivered the
 * same bytes, without a gap. Returns the directions that differ. */
static size_t compare_digests(const struct record *a, size_t na, const struct record *b, size_t nb,
                              size_t *total)
{
	size_t i = 0, j = 0, differ = 0;
	*total = 0;
	while (i < na || j < nb) {
		int c = i < na && j < nb ? strcmp(a[i].key, b[j].key) : i < na ? -1 : 1;
		const struct record *x = c <= 0 ? &a[i] : NULL, *y = c >= 0 ? &b[j] : NULL;
		++*total;
		bool same = x && y && x->bytes == y->bytes && !x->gaps && !y->gaps &&
		            strcmp(x->sha, y->sha) == 0;
		if (!same)
			show_mismatch(differ++, x ? x->key : y->key, x, y);
		i += x != NULL;
		j += y != NULL;
	}
	return differ;
}

static double mib(long kb)
{
	return (double)kb / 1024.0;
}

static double mbps(const struct tally *t)
{
	return (double)t->bytes / t->seconds / 1e6;
}

static void print_nids_warnings(const struct tally *t)
{
	bool any = false;
	for (int w = 0; w < 16; w++) {
		if (!t->warnings[w])
			continue;
		printf("%s%" PRIu64 " x \"%s\"", any ? ", " : "", t->warnings[w],
		       w <= NIDS_WARN_TCP_BADFLAGS ? nids_warnings[w] : "unknown");
		any = true;
	}
	printf("%s\n", any ? "" : "none");
}

static void print_report(const char *path, off_t size, int runs, const struct measure *best,
                         const long *peak, long base_kb)
{
	const struct tally *ts = &best[TORSIEVE].t, *nids = &best[LIBNIDS].t;
	double ratio = mbps(ts) / mbps(nids);
	printf("# bench_reassembly: %s (%.1f MB, %" PRIu64 " packets), best of %d interleaved "
	       "runs\n\n",
	       path, (double)size / 1e6, ts->packets, runs);
	printf("torsieve: ts_engine_run_file (libpcap read, decode, flow table, policy 'pass tcp', "
	       "reassembly) with a plugin summing every delivered byte; max-flows 65536, "
	       "stream-buffer 1M, stream-memory 1G, stream-history 64K.\n"
	       "libnids %d.%d: nids_run over the file (libpcap read, IPv4 and TCP checksums "
	       "verified, scan detection off, n_tcp_streams %d) with a TCP callback collecting "
	       "both directions and summing every byte.\n"
	       "MB/s: stream bytes delivered (10^6 bytes) per second of wall time, from opening "
	       "the file to the last flow's end. Peak RSS: ru_maxrss of the child process that "
	       "ran it (a child doing nothing: %.1f MiB).\n\n",
	       NIDS_MAJOR, NIDS_MINOR, NIDS_STREAMS, mib(base_kb));
	printf("| peer | stream bytes | best s | MB/s | peak RSS MiB |\n|---|---|---|---|---|\n");
	for (int p = TORSIEVE; p <= LIBNIDS; p++)
		printf("| %s | %" PRIu64 " | %.3f | %.1f | %.1f |\n", peer_names[p],
		       best[p].t.bytes, best[p].t.seconds, mbps(&best[p].t), mib(peak[p]));
	printf("\n- throughput ratio torsieve/libnids: %.2fx (goal >= 2x: %s)\n", ratio,
	       ratio >= 2.0 ? "met" : "NOT met");
	printf("- peak RSS ratio torsieve/libnids: %.2fx\n",
	       (double)peak[TORSIEVE] / (double)peak[LIBNIDS]);
	printf("- torsieve: %" PRIu64 " flows, %" PRIu64 " directions ended, %" PRIu64
	       " gaps, %" PRIu64 " inconsistent, %" PRIu64 " cap hits, %" PRIu64
	       " history rings skipped, %" PRIu64 " flows evicted\n",
	       ts->flows, ts->directions, ts->gaps, ts->inconsistent, ts->cap_hits,
	       ts->history_skipped, ts->evicted);
	printf("- libnids: %" PRIu64 " streams established, ended: %" PRIu64 " closed, %" PRIu64
	       " reset, %" PRIu64 " timed out, %" PRIu64 " still open at the end; warnings: ",
	       nids->established, nids->closed, nids->reset, nids->timed_out, nids->exiting);
	print_nids_warnings(nids);
}

/* RUNS timed runs of each peer asked for, interleaved, the peer that goes
 * first alternating; the best time and the highest peak of each. False when
 * a run fails or two runs deliver different bytes. */
static bool timed_runs(const char *path, int runs, const bool *want, struct measure *best,
                       long *peak, bool *agree)
{
	struct measure m;
	const struct tally *ref = NULL;
	*agree = true;
	for (int run = 0; run < runs; run++)
		for (int k = 0; k < 2; k++) {
			enum peer p = (run + k) % 2 ? LIBNIDS : TORSIEVE;
			if (!want[p])
				continue;
			if (measure(p, path, false, &m) != 0)
				return false;
			free(m.text);
			m.text = NULL;
			if (m.maxrss_kb > peak[p])
				peak[p] = m.maxrss_kb;
			if (run == 0 || m.t.seconds < best[p].t.seconds)
				best[p] = m;
			if (ref)
				*agree &= m.t.bytes == ref->bytes && m.t.sum == ref->sum;
			else
				ref = &best[p].t;
		}
	return true;
}

/* Untimed: every direction's SHA-256 from each peer, compared. Returns the
 * directions that differ, or -1 when a run fails. */
static long digest_runs(const char *path, size_t *total)
{
	struct measure dig[2];
	struct record *rec[2];
	size_t nrec[2];
	for (int p = TORSIEVE; p <= LIBNIDS; p++) {
		if (measure(p, path, true, &dig[p]) != 0)
			return -1;
		rec[p] = parse_records(dig[p].text, &nrec[p]);
		free(dig[p].text);
		if (!rec[p]) {
			fprintf(stderr, "bench_reassembly: out of memory\n");
			return -1;
		}
	}
	size_t differ = compare_digests(rec[0], nrec[0], rec[1], nrec[1], total);
	free(rec[0]);
	free(rec[1]);
	return (long)differ;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: bench_reassembly CAPTURE [RUNS [torsieve|libnids]]\n");
		return 2;
	}
	const char *path = argv[1];
	int runs = argc > 2 ? atoi(argv[2]) : DEFAULT_RUNS;
	if (runs < 1)
		runs = 1;
	bool want[2] = {true, true};
	if (argc > 3) {
		want[TORSIEVE] = strcmp(argv[3], peer_names[TORSIEVE]) == 0;
		want[LIBNIDS] = strcmp(argv[3], peer_names[LIBNIDS]) == 0;
		if (!want[TORSIEVE] && !want[LIBNIDS]) {
			fprintf(stderr, "bench_reassembly: %s: no such peer\n", argv[3]);
			return 2;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "bench_reassembly: %s: %s\n", path, strerror(errno));
		return 2;
	}

	struct measure base, best[2];
	long peak[2] = {0, 0};
	bool agree;
	if (measure(NOTHING, path, false, &base) != 0)
		return 1;
	free(base.text);
	if (!timed_runs(path, runs, want, best, peak, &agree))
		return 1;
	if (!want[TORSIEVE] || !want[LIBNIDS]) {
		/* One peer alone, to profile it (perf record follows the children). */
		enum peer p = want[TORSIEVE] ? TORSIEVE : LIBNIDS;
		printf("%s: %" PRIu64 " stream bytes, best %.3f s, %.1f MB/s, peak RSS %.1f MiB\n",
		       peer_names[p], best[p].t.bytes, best[p].t.seconds, mbps(&best[p].t),
		       mib(peak[p]));
		return agree ? 0 : 1;
	}
	print_report(path, st.st_size, runs, best, peak, base.maxrss_kb);
	size_t total = 0;
	long differ = digest_runs(path, &total);
	if (differ < 0)
		return 1;
	printf("- bytes identical: %zu of %zu directions (SHA-256 of each direction, untimed "
	       "run)%s\n",
	       total - (size_t)differ, total, differ ? ": MISMATCH, see above" : "");
	printf("- byte count and byte sum equal for both peers in every timed run: %s\n",
	       agree ? "yes" : "NO: MISMATCH");
	return differ || !agree ? 1 : 0;
}
