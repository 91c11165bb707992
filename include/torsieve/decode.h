/*
 * Packet decoder: one bounds-checked pass from the link header to the
 * transport header, with no allocation and no unaligned loads.
 *
 * The decoder never trusts a length a header claims: each layer is handed the
 * length the layer below validated, and a field is read only after the bytes
 * holding it are known to be captured. A packet that is malformed or cut short
 * where a needed header should be gets exactly one anomaly reason (the first
 * problem found, in decode order); decoding stops there. Fields decoded before
 * the problem stay valid, which lets a caller say what it was looking at.
 *
 * Checksums are not verified: captures taken on the sending host carry
 * offloaded (unfilled) checksums, and the kernel has verified them already on
 * the inline path.
 */
#ifndef TORSIEVE_DECODE_H
#define TORSIEVE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Link types the decoder understands. Values are torsieve's own, so the core
 * does not depend on libpcap's headers; sources map their link type here. */
enum ts_link {
	TS_LINK_UNSUPPORTED = 0,
	TS_LINK_ETHERNET,
	TS_LINK_SLL,  /* Linux cooked v1 */
	TS_LINK_SLL2, /* Linux cooked v2 */
	TS_LINK_RAW,  /* raw IP, version from the first nibble */
	TS_LINK_IPV4,
	TS_LINK_IPV6,
	TS_LINK_NULL, /* BSD loopback, family in the capturing host's byte order */
	TS_LINK_LOOP, /* OpenBSD loopback, family in network byte order */
};

/*
 * Every reason a packet can be malformed. The string is the stable name used
 * in counters and JSON output; add new reasons at the end of a group, never
 * rename one.
 */
#define TS_ANOMALY_LIST(X)                                    \
	X(NONE, "none")                                       \
	X(LINKTYPE_UNSUPPORTED, "linktype_unsupported")       \
	X(ETH_TRUNCATED, "eth_truncated")                     \
	X(VLAN_TRUNCATED, "vlan_truncated")                   \
	X(VLAN_TOO_DEEP, "vlan_too_deep")                     \
	X(SLL_TRUNCATED, "sll_truncated")                     \
	X(SLL2_TRUNCATED, "sll2_truncated")                   \
	X(NULL_TRUNCATED, "null_truncated")                   \
	X(RAW_BAD_VERSION, "raw_bad_version")                 \
	X(IPV4_TRUNCATED, "ipv4_truncated")                   \
	X(IPV4_BAD_VERSION, "ipv4_bad_version")               \
	X(IPV4_BAD_HLEN, "ipv4_bad_hlen")                     \
	X(IPV4_BAD_TOTLEN, "ipv4_bad_totlen")                 \
	X(IPV4_BAD_OPTION, "ipv4_bad_option")                 \
	X(IPV4_FRAG_BAD_LENGTH, "ipv4_frag_bad_length")       \
	X(IPV4_FRAG_TINY, "ipv4_frag_tiny")                   \
	X(IPV6_TRUNCATED, "ipv6_truncated")                   \
	X(IPV6_BAD_VERSION, "ipv6_bad_version")               \
	X(IPV6_BAD_PLEN, "ipv6_bad_plen")                     \
	X(IPV6_JUMBOGRAM, "ipv6_jumbogram")                   \
	X(IPV6_EXT_TRUNCATED, "ipv6_ext_truncated")           \
	X(IPV6_EXT_CHAIN_TOO_LONG, "ipv6_ext_chain_too_long") \
	X(IPV6_HBH_NOT_FIRST, "ipv6_hbh_not_first")           \
	X(IPV6_ROUTING_TYPE0, "ipv6_routing_type0")           \
	X(IPV6_FRAG_DUPLICATE, "ipv6_frag_duplicate")         \
	X(IPV6_FRAG_BAD_LENGTH, "ipv6_frag_bad_length")       \
	X(IPV6_FRAG_TINY, "ipv6_frag_tiny")                   \
	X(TCP_TRUNCATED, "tcp_truncated")                     \
	X(TCP_BAD_DOFF, "tcp_bad_doff")                       \
	X(TCP_BAD_OPTION, "tcp_bad_option")                   \
	X(TCP_BAD_OPTION_LEN, "tcp_bad_option_len")           \
	X(TCP_BAD_FLAGS, "tcp_bad_flags")                     \
	X(UDP_TRUNCATED, "udp_truncated")                     \
	X(UDP_BAD_LEN, "udp_bad_len")                         \
	X(PORT_ZERO, "port_zero")                             \
	X(ICMP_TRUNCATED, "icmp_truncated")                   \
	X(ICMP6_TRUNCATED, "icmp6_truncated")                 \
	X(ICMP_WRONG_FAMILY, "icmp_wrong_family")

enum ts_anomaly {
#define TS_ANOMALY_ENUM(id, name) TS_ANOM_##id,
	TS_ANOMALY_LIST(TS_ANOMALY_ENUM)
#undef TS_ANOMALY_ENUM
	TS_ANOM_COUNT
};

enum ts_l3 {
	TS_L3_NONE = 0, /* no network layer (decode stopped in the link layer) */
	TS_L3_IPV4,
	TS_L3_IPV6,
	TS_L3_OTHER, /* a well-formed frame carrying something else (ARP, ...) */
};

enum ts_l4 {
	TS_L4_NONE = 0, /* no transport: not IP, or decoding stopped before it */
	TS_L4_TCP,
	TS_L4_UDP,
	TS_L4_ICMP,
	TS_L4_ICMP6,
	TS_L4_OTHER, /* a protocol torsieve does not parse (ESP, GRE, SCTP, ...) */
};

/* IANA protocol numbers the decoder names. */
enum {
	TS_IPPROTO_HOPOPTS = 0,
	TS_IPPROTO_ICMP = 1,
	TS_IPPROTO_TCP = 6,
	TS_IPPROTO_UDP = 17,
	TS_IPPROTO_ROUTING = 43,
	TS_IPPROTO_FRAGMENT = 44,
	TS_IPPROTO_ESP = 50,
	TS_IPPROTO_AH = 51,
	TS_IPPROTO_ICMPV6 = 58,
	TS_IPPROTO_NONE = 59,
	TS_IPPROTO_DSTOPTS = 60,
};

/* TCP flag bits as they sit in the header's 13th byte. */
enum {
	TS_TCP_FIN = 0x01,
	TS_TCP_SYN = 0x02,
	TS_TCP_RST = 0x04,
	TS_TCP_PSH = 0x08,
	TS_TCP_ACK = 0x10,
	TS_TCP_URG = 0x20,
	TS_TCP_ECE = 0x40,
	TS_TCP_CWR = 0x80,
};

#define TS_VLAN_MAX     4 /* tags beyond this are vlan_too_deep */
#define TS_IPV6_EXT_MAX 8 /* extension headers beyond this are ipv6_ext_chain_too_long */
#define TS_TCP_SACK_MAX 4 /* SACK blocks that fit in 40 option bytes */

struct ts_tcp_opts {
	uint16_t mss;
	uint8_t wscale;
	uint8_t sack_blocks; /* number of SACK blocks present */
	uint32_t ts_val, ts_ecr;
	bool has_mss, has_wscale, sack_permitted, has_timestamp;
};

/*
 * What one packet decoded to. Offsets are from the start of the captured
 * bytes; lengths are what the packet's own headers say after validation
 * against the frame (a snaplen-truncated capture may hold fewer bytes).
 *
 * The fields up to TS_DECODED_RESET_END are reset on every decode. The rest
 * are written only by the layer that owns them and are valid only under the
 * condition their comment gives; reading them otherwise reads stale bytes.
 * (Resetting all 160-odd bytes cost a fifth of the decode time.)
 */
struct ts_decoded {
	enum ts_link link;
	enum ts_anomaly anomaly;
	enum ts_l3 l3;
	enum ts_l4 l4;

	uint32_t l3_offset;
	uint32_t l3_len; /* the datagram's length per its header, validated */
	uint32_t l4_offset;
	uint32_t l4_len;      /* segment length per the network header */
	uint32_t frag_offset; /* in bytes; fragmentation from IPv4 or the IPv6 fragment header */
	uint32_t frag_id;
	uint32_t payload_offset;
	uint32_t payload_len; /* per the headers; captured bytes may be fewer */

	uint16_t ethertype; /* of the network layer, after any VLAN tags */
	uint16_t sport, dport;
	bool has_mac;
	uint8_t vlan_count;
	uint8_t ttl;
	uint8_t ip_proto; /* upper-layer protocol after IPv6 extension headers */
	uint8_t ipv6_ext_count;
	bool is_fragment;
	bool frag_more;
	bool has_ports;     /* sport/dport were read */
	bool has_l4_header; /* the fixed transport header was read */

	/* ---- TS_DECODED_RESET_END: nothing below is reset ---- */

	/* valid when l4 is TCP and has_l4_header */
	uint8_t tcp_flags;
	uint16_t tcp_window;
	uint32_t tcp_seq, tcp_ack;
	struct ts_tcp_opts tcp_opts;
	/* valid when is_fragment: where this fragment's share of the datagram
	 * starts (after the IPv4 header, or after the IPv6 fragment header) and,
	 * for IPv6, where the fragment header is and which byte names it (the
	 * IPv6 header's next-header field or the previous extension's) */
	uint32_t frag_data_offset;
	uint32_t frag_hdr_offset, frag_nh_offset;
	/* valid when l4 is ICMP or ICMP6 and has_l4_header */
	uint8_t icmp_type, icmp_code;
	/* valid when has_mac (dst_mac is zero for Linux cooked captures) */
	uint8_t src_mac[6], dst_mac[6];
	/* the first vlan_count are valid */
	uint16_t vlan_ids[TS_VLAN_MAX];
	/* the first ipv6_ext_count are valid: extension header types, in order */
	uint8_t ipv6_ext[TS_IPV6_EXT_MAX];
	/* valid when l3 is IPv4 or IPv6; IPv4 uses the first 4 bytes, the rest are zero */
	uint8_t src_addr[16], dst_addr[16];
};

#define TS_DECODED_RESET_END offsetof(struct ts_decoded, tcp_flags)

/*
 * Decode one frame. caplen bytes are readable at data; wirelen is the
 * frame's length on the wire (>= caplen; a smaller value is treated as
 * caplen). Always fills *out completely; returns out->anomaly.
 */
enum ts_anomaly ts_decode(enum ts_link link, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                          struct ts_decoded *out);

/* Decode starting at an IP header (the NFQUEUE source and the raw link types). */
enum ts_anomaly ts_decode_ip(const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                             struct ts_decoded *out);

const char *ts_anomaly_name(enum ts_anomaly a);
/* "tcp", "udp", "icmp", "icmp6", or NULL for protocols shown by number. */
const char *ts_ip_proto_name(uint8_t ip_proto);
const char *ts_link_name(enum ts_link link);
const char *ts_l3_name(enum ts_l3 l3);
const char *ts_l4_name(enum ts_l4 l4);

/* Writes the TCP flags as letters in tcpdump's order (e.g. "S", "SA", "FPA");
 * buf must hold 9 bytes. */
void ts_tcp_flags_str(uint8_t flags, char buf[9]);

#endif
