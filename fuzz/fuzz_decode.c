/*
 * Fuzz the decoder. Input: byte 0 picks the link type (enum ts_link, modulo
 * its range), byte 1 is how many bytes the frame had beyond those captured
 * (a snap length), the rest is the frame. Besides memory safety, the harness
 * aborts on a decode result that breaks the decoder's own contract.
 */
#include <stdint.h>
#include <stdlib.h>

#include "torsieve/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 65535 + 2)
		return 0;
	enum ts_link link = (enum ts_link)(data[0] % (TS_LINK_LOOP + 1));
	uint32_t caplen = (uint32_t)size - 2;
	uint32_t wirelen = caplen + data[1];
	struct ts_decoded d;
	enum ts_anomaly a = ts_decode(link, data + 2, caplen, wirelen, &d);

	if (a >= TS_ANOM_COUNT || a != d.anomaly)
		abort();
	if (d.l3 == TS_L3_IPV4 || d.l3 == TS_L3_IPV6)
		if (d.l3_offset > caplen)
			abort();
	if (d.has_l4_header && d.l4_offset > caplen)
		abort();
	if (a == TS_ANOM_NONE && d.has_ports && d.l4 == TS_L4_TCP &&
	    d.payload_offset < d.l4_offset + 20)
		abort();
	if (d.vlan_count > TS_VLAN_MAX || d.ipv6_ext_count > TS_IPV6_EXT_MAX)
		abort();
	return 0;
}
