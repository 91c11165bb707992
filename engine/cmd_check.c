/* torsieve check: validate a policy and show what it compiled to. */
#include <stdio.h>
#include <string.h>

#include "torsieve/classify.h"
#include "torsieve/commands.h"
#include "torsieve/policy.h"

static const char check_usage[] =
        "usage: torsieve check [-c POLICY | --default] [--quiet]\n"
        "  Parse and compile POLICY (default " TS_POLICY_PATH "; - for\n"
        "  standard input) and print each rule as it was understood. Exits 0 when\n"
        "  the policy is good, 2 with FILE:LINE:COL: and the problem when not.\n"
        "  --default   check the shipped default policy built into this binary\n"
        "  --quiet     print nothing when the policy is good\n";

int ts_cmd_check(int argc, char **argv)
{
	const char *path = TS_POLICY_PATH;
	bool quiet = false, builtin = false;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
			quiet = true;
		} else if (strcmp(argv[i], "--default") == 0) {
			builtin = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(check_usage, stdout);
			return TS_EXIT_OK;
		} else {
			fprintf(stderr, "torsieve check: unexpected '%s'\n%s", argv[i],
			        check_usage);
			return TS_EXIT_USAGE;
		}
	}

	char err[1024];
	struct ts_policy *p = builtin ? ts_policy_parse(ts_default_policy, ts_default_policy_len,
	                                                TS_DEFAULT_POLICY_NAME, err, sizeof(err))
	                              : ts_policy_load(path, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "%s\n", err);
		return TS_EXIT_USAGE;
	}
	if (!quiet) {
		struct ts_classifier_stats cs;
		ts_classifier_get_stats(p->classifier, &cs);
		printf("%s: ok, %u rules, %u lists\n", p->source, p->rule_count, p->list_count);
		for (uint32_t i = 0; i < p->rule_count; i++) {
			char text[4096];
			ts_rule_format(&p->rules[i], text, sizeof(text));
			printf("  line %-5u %s\n", p->rules[i].line, text);
		}
		printf("  (then)     drop all  # implicit: no rule matched\n");
		printf("compiled: %u fields looked up per packet, %u rule vectors, %u intervals, "
		       "%zu bytes (classifier-memory %llu, max-rules %u)\n",
		       cs.fields, cs.vectors, cs.intervals, cs.memory,
		       (unsigned long long)p->limits.classifier_memory, p->limits.max_rules);
		const struct ts_flow_config *f = &p->limits.flows;
		printf("flows: max-flows %u, timeouts", f->max_flows);
		for (int c = 0; c < TS_FLOW_CLASSES; c++)
			printf(" %s %us", ts_flow_class_name((enum ts_flow_class)c), f->timeout[c]);
		printf("\n");
	}
	ts_policy_free(p);
	return TS_EXIT_OK;
}
