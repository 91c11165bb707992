/* torsieve: command dispatch. */
#include <stdio.h>
#include <string.h>

#include "torsieve/commands.h"
#include "torsieve/version.h"

static const char usage[] = "usage: torsieve COMMAND [ARGS]\n"
                            "\n"
                            "commands:\n"
                            "  replay FILE   decode a capture, judge it by the policy, report\n"
                            "  check         validate a policy and print what it compiled to\n"
                            "  run           the inline gateway: judge packets from NFQUEUE\n"
                            "  rules         print, apply or remove the gateway's firewall rules\n"
                            "  version       print the version\n"
                            "  help          this text\n"
                            "\n"
                            "'torsieve COMMAND --help' describes a command.\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return TS_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "replay") == 0)
		return ts_cmd_replay(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return ts_cmd_check(argc - 1, argv + 1);
	if (strcmp(cmd, "run") == 0)
		return ts_cmd_run(argc - 1, argv + 1);
	if (strcmp(cmd, "rules") == 0)
		return ts_cmd_rules(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("torsieve %s\n", TS_VERSION);
		return TS_EXIT_OK;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(usage, stdout);
		return TS_EXIT_OK;
	}
	fprintf(stderr, "torsieve: unknown command '%s'\n\n%s", cmd, usage);
	return TS_EXIT_USAGE;
}
