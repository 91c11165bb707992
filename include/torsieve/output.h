/*
 * The replay outputs, built as plugins: a run summary and a per-packet log,
 * each in a human and a JSON form. Both write to the FILE they are given.
 */
#ifndef TORSIEVE_OUTPUT_H
#define TORSIEVE_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include "torsieve/plugin.h"

struct ts_output_opts {
	FILE *out;
	bool json;
};

/* The summary of stats, as the summary plugin writes it at the end. */
void ts_summary_write(FILE *out, bool json, const struct ts_run_info *run,
                      const struct ts_stats *stats);

/* Fill *p (and its context *opts, which must outlive the run). */
void ts_summary_plugin(struct ts_plugin *p, struct ts_output_opts *opts);
void ts_packet_log_plugin(struct ts_plugin *p, struct ts_output_opts *opts);

/* Stream files (`replay --streams DIR`): each TCP stream direction to
 * DIR/<flow>-c2s and -s2c, and DIR/streams.json. open() creates DIR if
 * needed; close() writes streams.json (if write_index) and reports the first
 * write failure, -1 with the message in err. */
struct ts_stream_files;
struct ts_stream_files *ts_stream_files_open(const char *dir, char *err, size_t errlen);
void ts_stream_files_plugin(struct ts_plugin *p, struct ts_stream_files *sf);
int ts_stream_files_close(struct ts_stream_files *sf, bool write_index, char *err, size_t errlen);

/* Formats an address of the decoded packet's family (inet_ntop rules). */
void ts_format_addr(const struct ts_decoded *d, const uint8_t *addr, char *buf, size_t len);

#endif
