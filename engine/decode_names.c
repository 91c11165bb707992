/* Stable names for decoder results: counters and JSON output use them. */
#include "torsieve/decode.h"

static const char *const anomaly_names[TS_ANOM_COUNT] = {
#define TS_ANOMALY_NAME(id, name) [TS_ANOM_##id] = name,
        TS_ANOMALY_LIST(TS_ANOMALY_NAME)
#undef TS_ANOMALY_NAME
};

const char *ts_anomaly_name(enum ts_anomaly a)
{
	if ((unsigned)a >= TS_ANOM_COUNT)
		return "unknown";
	return anomaly_names[a];
}

const char *ts_ip_proto_name(uint8_t ip_proto)
{
	switch (ip_proto) {
	case TS_IPPROTO_TCP:
		return "tcp";
	case TS_IPPROTO_UDP:
		return "udp";
	case TS_IPPROTO_ICMP:
		return "icmp";
	case TS_IPPROTO_ICMPV6:
		return "icmp6";
	default:
		return NULL;
	}
}

const char *ts_link_name(enum ts_link link)
{
	switch (link) {
	case TS_LINK_ETHERNET:
		return "ethernet";
	case TS_LINK_SLL:
		return "linux_sll";
	case TS_LINK_SLL2:
		return "linux_sll2";
	case TS_LINK_RAW:
		return "raw";
	case TS_LINK_IPV4:
		return "ipv4";
	case TS_LINK_IPV6:
		return "ipv6";
	case TS_LINK_NULL:
		return "null";
	case TS_LINK_LOOP:
		return "loop";
	case TS_LINK_UNSUPPORTED:
		break;
	}
	return "unsupported";
}

const char *ts_l3_name(enum ts_l3 l3)
{
	switch (l3) {
	case TS_L3_IPV4:
		return "ipv4";
	case TS_L3_IPV6:
		return "ipv6";
	case TS_L3_OTHER:
		return "other";
	case TS_L3_NONE:
		break;
	}
	return "none";
}

const char *ts_l4_name(enum ts_l4 l4)
{
	switch (l4) {
	case TS_L4_TCP:
		return "tcp";
	case TS_L4_UDP:
		return "udp";
	case TS_L4_ICMP:
		return "icmp";
	case TS_L4_ICMP6:
		return "icmp6";
	case TS_L4_OTHER:
		return "other";
	case TS_L4_NONE:
		break;
	}
	return "none";
}

void ts_tcp_flags_str(uint8_t flags, char buf[9])
{
	static const char letters[8] = {'F', 'S', 'R', 'P', 'A', 'U', 'E', 'C'};
	int n = 0;
	for (int bit = 0; bit < 8; bit++)
		if (flags & (1u << bit))
			buf[n++] = letters[bit];
	buf[n] = '\0';
}
