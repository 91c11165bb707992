/*
 * The policy: an ordered list of rules, first match wins, and an implicit
 * final drop. This header is the parsed form; classify.h compiles it into
 * the structure the packet path uses. docs/policy.md describes the language.
 *
 * A policy is immutable once loaded, so a reload can build a new one and
 * swap a pointer.
 */
#ifndef TORSIEVE_POLICY_H
#define TORSIEVE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsieve/decode.h"

enum ts_verdict {
	TS_VERDICT_DROP = 0,
	TS_VERDICT_REJECT,
	TS_VERDICT_PASS,
	TS_VERDICT_DIVERT,
	TS_VERDICT_DNS,
	TS_VERDICT_COUNT
};

/* What the client is told on reject. DEFAULT is a TCP reset for TCP and a
 * port unreachable (ICMP or ICMPv6) for everything else. */
enum ts_reject_kind {
	TS_REJECT_DEFAULT = 0,
	TS_REJECT_TCP_RESET,
	TS_REJECT_NET_UNREACHABLE,
	TS_REJECT_HOST_UNREACHABLE,
	TS_REJECT_PORT_UNREACHABLE,
	TS_REJECT_PROTO_UNREACHABLE,
	TS_REJECT_ADMIN_PROHIBITED,
	TS_REJECT_COUNT
};

/* The fields a rule can constrain; a rule's match_mask has a bit for each. */
enum ts_field {
	TS_FIELD_FAMILY = 0,
	TS_FIELD_PROTO,
	TS_FIELD_SRC,
	TS_FIELD_DST,
	TS_FIELD_SPORT,
	TS_FIELD_DPORT,
	TS_FIELD_MAC,
	TS_FIELD_IFACE,
	TS_FIELD_TCP_FLAGS,
	TS_FIELD_ICMP_TYPE,
	TS_FIELD_ICMP_CODE,
	TS_FIELD_BPF,
	TS_FIELD_COUNT
};

#define TS_IFNAME_MAX 16 /* IFNAMSIZ */

struct ts_prefix {
	uint8_t family; /* 4 or 6 */
	uint8_t len;    /* prefix length in bits */
	uint8_t addr[16];
};

/* An address match: true when some prefix covers the address, inverted by
 * negated. A packet without an address of that family is covered by none. */
struct ts_addr_spec {
	bool negated;
	uint32_t count;
	struct ts_prefix *prefixes;
};

struct ts_port_range {
	uint16_t lo, hi;
};

/* A port match: only packets with ports (TCP or UDP with a header) can
 * match, negated or not. */
struct ts_port_spec {
	bool negated;
	uint32_t count;
	struct ts_port_range *ranges;
};

struct ts_mac_spec {
	bool negated;
	uint32_t count;
	uint8_t (*macs)[6];
};

struct ts_iface_spec {
	bool negated;
	uint32_t count;
	char (*names)[TS_IFNAME_MAX];
};

struct ts_rule {
	uint32_t line; /* in the policy file; 0 never names a rule */
	uint32_t col;
	enum ts_verdict action;
	enum ts_reject_kind reject;
	uint32_t match_mask; /* 1 << enum ts_field for each constrained field */

	uint8_t family;     /* 4 or 6 */
	uint8_t protos[32]; /* bitmap of IP protocol numbers */
	struct ts_addr_spec src, dst;
	struct ts_port_spec sport, dport;
	struct ts_mac_spec mac;                 /* source MAC */
	struct ts_iface_spec iface;             /* input interface */
	uint8_t tcp_flags, tcp_flags_mask;      /* (flags & mask) == value */
	uint8_t icmp_types[32], icmp_codes[32]; /* bitmaps */
	char *bpf_expr; /* libpcap filter over the packet from its IP header */
	void *bpf_prog; /* the compiled program (struct bpf_program) */
};

/* Flow timeout classes (flow.h): each has its own idle timeout. */
enum ts_flow_class {
	TS_FLOW_TCP_OPENING = 0, /* SYN seen, not yet established */
	TS_FLOW_TCP_ESTABLISHED,
	TS_FLOW_TCP_CLOSING, /* FIN or RST seen */
	TS_FLOW_UDP,
	TS_FLOW_OTHER,
	TS_FLOW_CLASSES
};

/* The flow table's cap and timeouts (`set max-flows N`,
 * `set timeout CLASS SECONDS`). */
struct ts_flow_config {
	uint32_t max_flows;                /* default 65536 */
	uint32_t timeout[TS_FLOW_CLASSES]; /* seconds idle; 30 3600 30 60 30 */
};

void ts_flow_config_default(struct ts_flow_config *c);
const char *ts_flow_class_name(enum ts_flow_class c);

/* Stream reassembly caps (`set stream-buffer`, `set stream-memory`,
 * `set stream-history`); the same as struct ts_reasm_config. */
struct ts_stream_config {
	uint32_t dir_buffer;   /* out-of-order bytes per direction, default 1M */
	uint64_t total_buffer; /* out-of-order bytes in all, default 64M */
	uint32_t history;      /* delivered bytes kept per direction, default 64K */
};

/* IP defragmentation (defrag.h): `set defrag-datagrams N`, `defrag-memory
 * SIZE`, `defrag-timeout SECONDS`, `defrag-overlap first|drop`. */
enum ts_defrag_overlap {
	TS_DEFRAG_FIRST = 0, /* first copy wins (IPv4 default) */
	TS_DEFRAG_DROP,      /* drop the datagram (always for IPv6) */
};

struct ts_defrag_config {
	uint32_t max_datagrams; /* in progress at once, default 1024 */
	uint64_t memory;        /* bytes held, default 4 MiB */
	uint32_t timeout;       /* seconds from the first fragment, default 30 */
	enum ts_defrag_overlap ipv4_overlap;
};

void ts_defrag_config_default(struct ts_defrag_config *c);

/* Caps a policy file can set (`set NAME VALUE`), with their defaults. */
struct ts_policy_limits {
	uint32_t max_rules;         /* default 100000 */
	uint64_t classifier_memory; /* bytes, default 64 MiB */
	struct ts_flow_config flows;
	struct ts_stream_config streams;
	struct ts_defrag_config defrag;
};

struct ts_classifier;
struct ts_match_input;

struct ts_policy {
	char *source; /* the file it came from, for messages */
	uint32_t rule_count;
	struct ts_rule *rules;
	struct ts_policy_limits limits;
	uint32_t list_count; /* named lists defined */
	struct ts_classifier *classifier;
	/* Evaluates a rule's bpf expression. Set by the loader (which links
	 * libpcap) so the matching core stays free of libraries. */
	bool (*bpf_match)(const struct ts_rule *r, const struct ts_match_input *in);
};

/*
 * Parse and compile a policy from text. On error returns NULL and writes
 * "NAME:LINE:COL: expected ..., found ..." into err: nothing half-parsed is
 * ever returned.
 */
struct ts_policy *ts_policy_parse(const char *text, size_t len, const char *name, char *err,
                                  size_t errlen);

/* The same from a file ("-" is standard input). */
struct ts_policy *ts_policy_load(const char *path, char *err, size_t errlen);

void ts_policy_free(struct ts_policy *p);

/* The shipped default policy (etc/torsieve.conf), built in, and the name
 * it goes by in messages and output. */
extern const char ts_default_policy[];
extern const size_t ts_default_policy_len;
#define TS_DEFAULT_POLICY_NAME "built-in:etc/torsieve.conf"
#define TS_POLICY_PATH         "/etc/torsieve/torsieve.conf"

/* Writes rule r as policy text that parses back to the same rule. */
void ts_rule_format(const struct ts_rule *r, char *buf, size_t len);

/* What a packet looks like to the rules: its decode result plus what the
 * decoder cannot know (the input interface). */
struct ts_match_input {
	const struct ts_decoded *dec;
	const uint8_t *frame; /* the captured bytes, for the bpf escape hatch */
	uint32_t caplen, wirelen;
	const char *iface; /* NULL when unknown */
};

/* Does rule r match the packet on every field but bpf? */
bool ts_rule_matches_fields(const struct ts_rule *r, const struct ts_match_input *in);

/*
 * The linear reference: the index of the first matching rule, or -1 for the
 * implicit final drop. Anomalous packets match no rule.
 */
int32_t ts_policy_match_linear(const struct ts_policy *p, const struct ts_match_input *in);

/* What the policy decides for one packet. */
struct ts_judgement {
	enum ts_verdict verdict;
	enum ts_reject_kind reject;
	int32_t rule;  /* index into rules, or -1: the implicit final drop */
	uint32_t line; /* the rule's line, 0 for the implicit drop */
};

/* Judge a packet with the compiled classifier: anomalous packets and packets
 * no rule matches are dropped. No allocation. */
void ts_policy_judge(const struct ts_policy *p, const struct ts_match_input *in,
                     struct ts_judgement *out);

const char *ts_verdict_name(enum ts_verdict v);
const char *ts_reject_name(enum ts_reject_kind k);

#endif
