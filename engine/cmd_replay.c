/* torsieve replay: what the gateway would make of a capture file. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "torsieve/commands.h"
#include "torsieve/engine.h"
#include "torsieve/output.h"
#include "torsieve/policy.h"

static const char replay_usage[] =
        "usage: torsieve replay [-c POLICY] [--in IFACE] [--json] [--packets] FILE\n"
        "  Decode and judge every packet of a pcap or pcapng FILE (- for standard\n"
        "  input) and print a summary.\n"
        "  -c, --config POLICY  judge by this policy file (default: the shipped\n"
        "                       policy, etc/torsieve.conf, built in)\n"
        "  --in IFACE           the input interface of every packet, for 'on' rules\n"
        "  --streams DIR        write each TCP stream direction to DIR/<flow>-c2s and\n"
        "                       -s2c, and one line per direction to DIR/streams.json\n"
        "  --packets            one line per packet instead (with --json: one JSON\n"
        "                       object per line and no summary)\n"
        "  --json               machine-readable output\n";

struct replay_args {
	const char *file;
	const char *policy;
	const char *iface;
	const char *streams;
	bool json;
	bool packets;
};

/* The value of an option that takes one, or NULL (and a message). */
static const char *option_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "torsieve replay: %s needs a value\n%s", argv[*i], replay_usage);
		return NULL;
	}
	return argv[++*i];
}

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
		           (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0)) {
			if (!(a->policy = option_value(argc, argv, &i)))
				return -1;
		} else if (!options_done && strcmp(arg, "--streams") == 0) {
			if (!(a->streams = option_value(argc, argv, &i)))
				return -1;
		} else if (!options_done && strcmp(arg, "--in") == 0) {
			if (!(a->iface = option_value(argc, argv, &i)))
				return -1;
			if (strlen(a->iface) >= TS_IFNAME_MAX) {
				fprintf(stderr,
				        "torsieve replay: '%s' is longer than an interface name\n",
				        a->iface);
				return -1;
			}
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
	struct ts_policy *policy =
	        args.policy ? ts_policy_load(args.policy, err, sizeof(err))
	                    : ts_policy_parse(ts_default_policy, ts_default_policy_len,
	                                      TS_DEFAULT_POLICY_NAME, err, sizeof(err));
	if (!policy) {
		fprintf(stderr, "torsieve replay: %s\n", err);
		return TS_EXIT_USAGE;
	}
	struct ts_source *src = ts_source_open_pcap(args.file, err, sizeof(err));
	if (!src) {
		fprintf(stderr, "torsieve replay: %s\n", err);
		ts_policy_free(policy);
		return TS_EXIT_USAGE;
	}

	struct ts_engine engine;
	ts_engine_init(&engine);
	if (ts_engine_set_policy(&engine, policy, args.iface) != 0) {
		fprintf(stderr, "torsieve replay: out of memory\n");
		ts_source_close(src);
		ts_policy_free(policy);
		return TS_EXIT_FAILURE;
	}
	struct ts_output_opts opts = {.out = stdout, .json = args.json};
	struct ts_plugin packet_log, summary;
	ts_packet_log_plugin(&packet_log, &opts);
	ts_summary_plugin(&summary, &opts);
	struct ts_plugin stream_files_plugin;
	struct ts_stream_files *stream_files = NULL;
	if (args.streams) {
		stream_files = ts_stream_files_open(args.streams, err, sizeof(err));
		if (!stream_files) {
			fprintf(stderr, "torsieve replay: %s\n", err);
			ts_engine_release(&engine);
			ts_source_close(src);
			ts_policy_free(policy);
			return TS_EXIT_USAGE;
		}
		ts_stream_files_plugin(&stream_files_plugin, stream_files);
		ts_engine_add_plugin(&engine, &stream_files_plugin);
	}
	if (args.packets)
		ts_engine_add_plugin(&engine, &packet_log);
	if (!args.packets || !args.json)
		ts_engine_add_plugin(&engine, &summary);

	rc = ts_engine_run_file(&engine, src);
	ts_engine_release(&engine);
	ts_policy_free(policy);
	if (stream_files && ts_stream_files_close(stream_files, rc == 0, err, sizeof(err)) != 0) {
		fflush(stdout);
		fprintf(stderr, "torsieve replay: %s\n", err);
		ts_source_close(src);
		return TS_EXIT_FAILURE;
	}
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
