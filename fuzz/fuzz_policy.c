/*
 * Fuzz the policy parser and compiler. Input: policy text. A policy that
 * parses must print back (ts_rule_format) to text that parses to rules that
 * print the same; anything else is a bug, and the harness aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	char err[1024];
	struct ts_policy *p = ts_policy_parse((const char *)data, size, "fuzz", err, sizeof(err));
	if (!p) {
		if (strncmp(err, "fuzz", 4) != 0)
			abort(); /* every message names the policy */
		return 0;
	}
	size_t cap = 4096 + (size_t)p->rule_count * 4096;
	char *text = malloc(cap), *line = malloc(4096);
	if (!text || !line)
		abort();
	size_t used = 0;
	for (uint32_t i = 0; i < p->rule_count; i++) {
		ts_rule_format(&p->rules[i], line, 4096);
		size_t n = strlen(line);
		memcpy(text + used, line, n);
		text[used + n] = '\n';
		used += n + 1;
	}
	/* The printed rules must parse under the same limits, the size written
	 * in the largest unit that divides it (as a user would). */
	unsigned long long mem = p->limits.classifier_memory;
	const char *unit = "";
	static const struct {
		unsigned long long size;
		const char *suffix;
	} units[] = {{1ull << 30, "G"}, {1ull << 20, "M"}, {1ull << 10, "K"}};
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]) && !*unit; u++)
		if (mem % units[u].size == 0) {
			mem /= units[u].size;
			unit = units[u].suffix;
		}
	char head[128];
	int h = snprintf(head, sizeof(head), "set max-rules %u\nset classifier-memory %llu%s\n",
	                 p->limits.max_rules, mem, unit);
	char *whole = malloc((size_t)h + used + 1);
	if (!whole)
		abort();
	memcpy(whole, head, (size_t)h);
	memcpy(whole + h, text, used);
	struct ts_policy *q =
	        ts_policy_parse(whole, (size_t)h + used, "fuzz-again", err, sizeof(err));
	if (!q || q->rule_count != p->rule_count)
		abort();
	for (uint32_t i = 0; i < p->rule_count; i++) {
		char a[4096], b[4096];
		ts_rule_format(&p->rules[i], a, sizeof(a));
		ts_rule_format(&q->rules[i], b, sizeof(b));
		if (strcmp(a, b) != 0 || p->rules[i].match_mask != q->rules[i].match_mask)
			abort();
	}
	ts_policy_free(q);
	free(whole);
	free(text);
	free(line);
	ts_policy_free(p);
	return 0;
}
