/*
 * Stream files: each direction of each TCP stream written to DIR/<flow>-c2s
 * and DIR/<flow>-s2c, and one JSON line per direction in DIR/streams.json
 * (sorted by flow, then direction, so the output does not depend on the
 * order in which flows end).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "torsieve/output.h"
#include "torsieve/sha256.h"

/* Open stream files at once, at most; past it all are closed and reopened
 * for appending as their flows write again. */
#define MAX_OPEN_FILES 128

struct stream_dir_state {
	struct ts_sha256 sha;
	uint64_t bytes;
	FILE *fp;
	bool started;
};

/* Live flows' records, by flow id in a small chained hash: memory follows
 * the flows with stream data now, not the highest flow id. */
#define RECORD_BUCKETS 4096

struct flow_record {
	struct flow_record *next;
	uint64_t flow;
	struct stream_dir_state dir[2];
};

struct line {
	uint64_t flow;
	int dir;
	char *text;
};

struct ts_stream_files {
	char dir[2048];
	struct flow_record *records[RECORD_BUCKETS];
	struct line *lines;
	size_t line_count, line_cap;
	unsigned open_files;
	char err[2600]; /* the first failure, reported at close */
};

static const char *const dir_names[2] = {"c2s", "s2c"};

static void fail(struct ts_stream_files *sf, const char *what, const char *path)
{
	if (!sf->err[0])
		snprintf(sf->err, sizeof(sf->err), "%s: %s: %s", path, what, strerror(errno));
}

static struct flow_record **record_link(struct ts_stream_files *sf, uint64_t flow)
{
	struct flow_record **link = &sf->records[flow % RECORD_BUCKETS];
	while (*link && (*link)->flow != flow)
		link = &(*link)->next;
	return link;
}

static struct flow_record *record_of(struct ts_stream_files *sf, uint64_t flow)
{
	struct flow_record **link = record_link(sf, flow);
	if (*link)
		return *link;
	struct flow_record *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->flow = flow;
	ts_sha256_init(&r->dir[0].sha);
	ts_sha256_init(&r->dir[1].sha);
	*link = r;
	return r;
}

static void record_free(struct ts_stream_files *sf, uint64_t flow)
{
	struct flow_record **link = record_link(sf, flow);
	struct flow_record *r = *link;
	if (!r)
		return;
	*link = r->next;
	for (int d = 0; d < 2; d++)
		if (r->dir[d].fp) {
			if (fclose(r->dir[d].fp) != 0)
				fail(sf, "writing", sf->dir);
			sf->open_files--;
		}
	free(r);
}

static void close_all(struct ts_stream_files *sf)
{
	for (size_t b = 0; b < RECORD_BUCKETS; b++)
		for (struct flow_record *r = sf->records[b]; r; r = r->next)
			for (int d = 0; d < 2; d++)
				if (r->dir[d].fp) {
					if (fclose(r->dir[d].fp) != 0)
						fail(sf, "writing", sf->dir);
					r->dir[d].fp = NULL;
				}
	sf->open_files = 0;
}

static FILE *file_of(struct ts_stream_files *sf, uint64_t flow, int dir, struct stream_dir_state *s)
{
	if (s->fp)
		return s->fp;
	if (sf->open_files >= MAX_OPEN_FILES)
		close_all(sf);
	char path[2200];
	snprintf(path, sizeof(path), "%s/%" PRIu64 "-%s", sf->dir, flow, dir_names[dir]);
	s->fp = fopen(path, s->started ? "ab" : "wb");
	if (!s->fp) {
		fail(sf, "cannot write", path);
		return NULL;
	}
	s->started = true;
	sf->open_files++;
	return s->fp;
}

static struct stream_dir_state *state_of(struct ts_stream_files *sf, uint64_t flow, int dir)
{
	struct flow_record *r = record_of(sf, flow);
	if (!r) {
		errno = ENOMEM;
		fail(sf, "recording streams", sf->dir);
		return NULL;
	}
	return &r->dir[dir];
}

static void stream_files_on_data(void *ctx, const struct ts_stream_event *ev)
{
	struct ts_stream_files *sf = ctx;
	if (!ev->data) /* a gap: nothing to write; counted in the flow's result */
		return;
	struct stream_dir_state *s = state_of(sf, ev->flow->id, ev->dir);
	FILE *fp = s ? file_of(sf, ev->flow->id, ev->dir, s) : NULL;
	if (!fp)
		return;
	if (fwrite(ev->data, 1, ev->len, fp) != ev->len)
		fail(sf, "writing", sf->dir);
	ts_sha256_update(&s->sha, ev->data, ev->len);
	s->bytes += ev->len;
}

static void format_endpoint(const struct ts_flow *f, int side, char *addr, size_t len)
{
	if (!inet_ntop(f->key.family == 4 ? AF_INET : AF_INET6, f->key.addr[side], addr,
	               (socklen_t)len))
		snprintf(addr, len, "?");
}

static void stream_files_on_flow_end(void *ctx, const struct ts_flow_event *ev)
{
	struct ts_stream_files *sf = ctx;
	if (!ev->streams)
		return;
	const struct ts_flow *f = ev->flow;
	for (int dir = 0; dir < 2; dir++) {
		struct stream_dir_state *s = state_of(sf, f->id, dir);
		if (!s)
			return;
		/* Every direction gets its file, empty or not. */
		if (!s->started && !file_of(sf, f->id, dir, s))
			return;
		if (s->fp) {
			if (fclose(s->fp) != 0)
				fail(sf, "writing", sf->dir);
			s->fp = NULL;
			sf->open_files--;
		}
		char digest[65], src[64], dst[64];
		ts_sha256_hex(&s->sha, digest);
		int from = dir == 0 ? f->initiator : !f->initiator;
		format_endpoint(f, from, src, sizeof(src));
		format_endpoint(f, !from, dst, sizeof(dst));
		char *text = NULL;
		int n = asprintf(
		        &text,
		        "{\"flow\":%" PRIu64 ",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\","
		        "\"dport\":%u,\"dir\":\"%s\",\"bytes\":%" PRIu64 ",\"sha256\":\"%s\","
		        "\"gaps\":%" PRIu64 ",\"gap_bytes\":%" PRIu64
		        ",\"inconsistent_overlaps\":%" PRIu64 ",\"verdict\":\"%s\"}\n",
		        f->id, src, f->key.port[from], dst, f->key.port[!from], dir_names[dir],
		        s->bytes, digest, ev->streams[dir].gaps, ev->streams[dir].gap_bytes,
		        ev->streams[dir].inconsistent, ts_verdict_name(f->verdict.verdict));
		if (n < 0) {
			errno = ENOMEM;
			fail(sf, "recording streams", sf->dir);
			return;
		}
		if (sf->line_count == sf->line_cap) {
			size_t cap = sf->line_cap ? sf->line_cap * 2 : 64;
			struct line *g = realloc(sf->lines, cap * sizeof(*g));
			if (!g) {
				free(text);
				errno = ENOMEM;
				fail(sf, "recording streams", sf->dir);
				return;
			}
			sf->lines = g;
			sf->line_cap = cap;
		}
		sf->lines[sf->line_count++] =
		        (struct line){.flow = f->id, .dir = dir, .text = text};
	}
	record_free(sf, f->id);
}

static int line_cmp(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	if (x->flow != y->flow)
		return x->flow < y->flow ? -1 : 1;
	return x->dir - y->dir;
}

struct ts_stream_files *ts_stream_files_open(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return NULL;
	}
	struct ts_stream_files *sf = calloc(1, sizeof(*sf));
	if (!sf || strlen(dir) >= sizeof(sf->dir)) {
		snprintf(err, errlen, "%s: %s", dir, sf ? "path too long" : "out of memory");
		free(sf);
		return NULL;
	}
	strcpy(sf->dir, dir);
	return sf;
}

void ts_stream_files_plugin(struct ts_plugin *p, struct ts_stream_files *sf)
{
	*p = (struct ts_plugin){
	        .name = "stream-files",
	        .ctx = sf,
	        .on_stream_data = stream_files_on_data,
	        .on_flow_end = stream_files_on_flow_end,
	};
}

int ts_stream_files_close(struct ts_stream_files *sf, bool write_index, char *err, size_t errlen)
{
	close_all(sf);
	int rc = 0;
	if (write_index && !sf->err[0]) {
		if (sf->line_count)
			qsort(sf->lines, sf->line_count, sizeof(*sf->lines), line_cmp);
		char path[2200];
		snprintf(path, sizeof(path), "%s/streams.json", sf->dir);
		FILE *fp = fopen(path, "w");
		if (!fp) {
			fail(sf, "cannot write", path);
		} else {
			for (size_t i = 0; i < sf->line_count; i++)
				fputs(sf->lines[i].text, fp);
			if (fclose(fp) != 0)
				fail(sf, "writing", path);
		}
	}
	if (sf->err[0]) {
		snprintf(err, errlen, "%s", sf->err);
		rc = -1;
	}
	for (size_t i = 0; i < sf->line_count; i++)
		free(sf->lines[i].text);
	free(sf->lines);
	for (size_t b = 0; b < RECORD_BUCKETS; b++)
		while (sf->records[b]) {
			struct flow_record *r = sf->records[b];
			sf->records[b] = r->next;
			free(r);
		}
	free(sf);
	return rc;
}
