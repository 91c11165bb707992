/*
 * Fuzz the capture-file reader end to end: the input is a whole pcap or
 * pcapng file, read through libpcap into the engine, with the per-packet
 * JSON log and the summary written to /dev/null so their formatting runs too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "torsieve/engine.h"
#include "torsieve/output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink(void)
{
	static FILE *devnull;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	return devnull;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || !sink())
		return 0;
	FILE *fp = fmemopen((void *)(uintptr_t)data, size, "rb");
	if (!fp)
		return 0;
	char err[512];
	struct ts_source *src = ts_source_open_pcap_stream(fp, "fuzz-input", err, sizeof(err));
	if (!src)
		return 0;

	struct ts_engine engine;
	ts_engine_init(&engine);
	struct ts_output_opts json = {.out = sink(), .json = true};
	struct ts_output_opts human = {.out = sink(), .json = false};
	struct ts_plugin log_json, log_human, summary;
	ts_packet_log_plugin(&log_json, &json);
	ts_packet_log_plugin(&log_human, &human);
	ts_summary_plugin(&summary, &json);
	ts_engine_add_plugin(&engine, &log_json);
	ts_engine_add_plugin(&engine, &log_human);
	ts_engine_add_plugin(&engine, &summary);
	ts_engine_run_file(&engine, src);

	/* The counters' contract: every packet in exactly one bucket. */
	uint64_t l3 = 0, anomalies = 0;
	for (int i = 0; i < TS_L3_BUCKETS; i++)
		l3 += engine.stats.l3[i];
	for (int i = 0; i < TS_ANOM_COUNT; i++)
		anomalies += engine.stats.anomalies[i];
	if (l3 != engine.stats.packets || anomalies != engine.stats.packets)
		abort();
	ts_source_close(src);
	return 0;
}
