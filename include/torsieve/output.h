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

/* Fill *p (and its context *opts, which must outlive the run). */
void ts_summary_plugin(struct ts_plugin *p, struct ts_output_opts *opts);
void ts_packet_log_plugin(struct ts_plugin *p, struct ts_output_opts *opts);

/* Formats an address of the decoded packet's family (inet_ntop rules). */
void ts_format_addr(const struct ts_decoded *d, const uint8_t *addr, char *buf, size_t len);

#endif
