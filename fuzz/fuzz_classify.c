/*
 * Differential fuzzing of the compiled classifier against the linear
 * reference. Input: policy text, a NUL byte, then frames, each as
 * [link type][length][bytes] (link type as in fuzz_decode). For every frame
 * the two must pick the same rule; the harness aborts when they do not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/classify.h"
#include "torsieve/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	if (!nul || nul - data > 8192)
		return 0;
	char err[1024];
	struct ts_policy *p =
	        ts_policy_parse((const char *)data, (size_t)(nul - data), "fuzz", err, sizeof(err));
	if (!p)
		return 0;
	const uint8_t *f = nul + 1, *end = data + size;
	static const char *const ifaces[] = {NULL, "br0", "wlan0", "eth0"};
	unsigned n = 0;
	while (end - f >= 2) {
		enum ts_link link = (enum ts_link)(f[0] % (TS_LINK_LOOP + 1));
		uint32_t len = f[1];
		f += 2;
		if (len > (uint32_t)(end - f))
			len = (uint32_t)(end - f);
		struct ts_decoded d;
		ts_decode(link, f, len, len, &d);
		struct ts_match_input in = {.dec = &d,
		                            .frame = f,
		                            .caplen = len,
		                            .wirelen = len,
		                            .iface = ifaces[n++ % 4]};
		int32_t linear = ts_policy_match_linear(p, &in);
		struct ts_judgement j;
		ts_policy_judge(p, &in, &j);
		if (j.rule != linear)
			abort();
		f += len;
	}
	ts_policy_free(p);
	return 0;
}
