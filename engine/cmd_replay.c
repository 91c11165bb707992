/* torsieve replay: what the gateway would make of a capture file. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "torsieve/commands.h"
#include "torsieve/engine.h"
#include "torsieve/output.h"

static const char replay_usage[] =
        "usage: torsieve replay [--json] [--packets] FILE\n"
        "  Decode every packet of a pcap or pcapng FILE (- for standard input)\n"
        "  and print a summary.\n"
        "  --packets  one line per packet instead (with --json: one JSON object\n"
        "             per line and no summary)\n"
        "  --json     machine-readable output\n";

struct replay_args {
	const char *file;
	bool json;
	bool packets;
};

static int parse_args(int argc, char **argv, struct replay_args *a)
{
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (!options_done && strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if (!options_done && strcmp(arg, "--packets") == 0) {
			a->packets = true;
		} else if (!options_done &&
		           (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
			fputs(replay_usage, stdout);
			return 1;
		} else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
			fprintf(stderr, "torsieve replay: unknown option '%s'\n%s", arg,
			        replay_usage);
			return -1;
		} else if (a->file) {
			fprintf(stderr,
			        "torsieve replay: one capture file at a time ('%s' and '%s')\n",
			        a->file, arg);
			return -1;
		} else {
			a->file = arg;
		}
	}
	if (!a->file) {
		fprintf(stderr, "torsieve replay: no capture file given\n%s", replay_usage);
		return -1;
	}
	return 0;
}

int ts_cmd_replay(int argc, char **argv)
{
	struct replay_args args = {0};
	int rc = parse_args(argc, argv, &args);
	if (rc)
		return rc > 0 ? TS_EXIT_OK : TS_EXIT_USAGE;

	char err[512];
	struct ts_source *src = ts_source_open_pcap(args.file, err, sizeof(err));
	if (!src) {
		fprintf(stderr, "torsieve replay: %s\n", err);
		return TS_EXIT_USAGE;
	}

	struct ts_engine engine;
	ts_engine_init(&engine);
	struct ts_output_opts opts = {.out = stdout, .json = args.json};
	struct ts_plugin packet_log, summary;
	ts_packet_log_plugin(&packet_log, &opts);
	ts_summary_plugin(&summary, &opts);
	if (args.packets)
		ts_engine_add_plugin(&engine, &packet_log);
	if (!args.packets || !args.json)
		ts_engine_add_plugin(&engine, &summary);

	rc = ts_engine_run_file(&engine, src);
	if (rc < 0) {
		fflush(stdout);
		fprintf(stderr, "torsieve replay: %s\n", src->err);
		ts_source_close(src);
		return TS_EXIT_USAGE;
	}
	ts_source_close(src);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("torsieve replay: writing output");
		return TS_EXIT_FAILURE;
	}
	return TS_EXIT_OK;
}
