/*
 * The policy parser: text to struct ts_policy, then the compiled classifier.
 * Any error stops the parse and names the place: "FILE:LINE:COL: expected
 * X, found Y". Nothing half-parsed is ever returned. docs/policy.md is the
 * language reference.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

#define TS_BLOCK_NAME_MAX 253
#include "torsieve/classify.h"

#define MAX_POLICY_BYTES   (64u << 20)
#define MAX_LIST_NAME      64
#define DEFAULT_MAX_RULES  100000u
#define DEFAULT_CLASSIFIER (64ull << 20)

struct list_def {
	char name[MAX_LIST_NAME];
	struct ts_token *items;
	uint32_t count;
};

struct parser {
	struct ts_lexer lx;
	const char *name;
	struct ts_policy *p;
	uint32_t rule_cap;
	struct list_def *lists;
	uint32_t list_count, list_cap;
	uint32_t block_cap; /* of p->dns_block */
	char *err;
	size_t errlen;
	bool failed;
	const char *defining; /* the list being defined, while its items are read */
	size_t defining_len;
	uint32_t mark_line, mark_col; /* the last `set mark` or `set mark-mask`, for errors */
};

/* The items of a value set being parsed, after expanding $lists. */
struct items {
	struct ts_token *tok;
	uint32_t count, cap;
	bool negated;
};

static void fail_at(struct parser *ps, uint32_t line, uint32_t col, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void fail_at(struct parser *ps, uint32_t line, uint32_t col, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = true;
	int n = snprintf(ps->err, ps->errlen, "%s:%u:%u: ", ps->name, line, col);
	if (n < 0 || (size_t)n >= ps->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* "expected WHAT, found <the current token>" */
static void expected(struct parser *ps, const char *what)
{
	char found[96];
	ts_tok_describe(&ps->lx.tok, found, sizeof(found));
	fail_at(ps, ps->lx.tok.line, ps->lx.tok.col, "expected %s, found %s", what, found);
}

static void bad_item(struct parser *ps, const struct ts_token *t, const char *what)
{
	char found[96];
	ts_tok_describe(t, found, sizeof(found));
	if (t->via)
		fail_at(ps, t->line, t->col,
		        "expected %s, found %s (in list '$%.*s', used at %u:%u)", what, found,
		        (int)t->via_len, t->via, t->via_line, t->via_col);
	else
		fail_at(ps, t->line, t->col, "expected %s, found %s", what, found);
}

static void next(struct parser *ps)
{
	ts_lex_next(&ps->lx);
}

static const struct ts_token *cur(const struct parser *ps)
{
	return &ps->lx.tok;
}

static bool at_end_of_statement(const struct parser *ps)
{
	return cur(ps)->kind == TOK_NEWLINE || cur(ps)->kind == TOK_END;
}

static void *grow(struct parser *ps, void *ptr, uint32_t *cap, size_t elem)
{
	uint32_t n = *cap ? *cap * 2 : 8;
	void *q = realloc(ptr, (size_t)n * elem);
	if (!q) {
		fail_at(ps, cur(ps)->line, cur(ps)->col, "out of memory");
		return NULL;
	}
	*cap = n;
	return q;
}

/* ---- value sets: X, { X, Y }, $list, each optionally negated ---- */

static const struct list_def *find_list(const struct parser *ps, const struct ts_token *t)
{
	for (uint32_t i = 0; i < ps->list_count; i++)
		if (strlen(ps->lists[i].name) == t->len &&
		    memcmp(ps->lists[i].name, t->start, t->len) == 0)
			return &ps->lists[i];
	return NULL;
}

static bool items_add(struct parser *ps, struct items *it, const struct ts_token *t)
{
	if (it->count == it->cap) {
		struct ts_token *g = grow(ps, it->tok, &it->cap, sizeof(*g));
		if (!g)
			return false;
		it->tok = g;
	}
	it->tok[it->count++] = *t;
	return true;
}

static bool items_add_ref(struct parser *ps, struct items *it, const struct ts_token *ref)
{
	const struct list_def *l = find_list(ps, ref);
	if (!l && ps->defining && ps->defining_len == ref->len &&
	    memcmp(ps->defining, ref->start, ref->len) == 0) {
		fail_at(ps, ref->line, ref->col,
		        "expected items or other lists, found '$%.*s' inside its own definition",
		        (int)ref->len, ref->start);
		return false;
	}
	if (!l) {
		fail_at(ps, ref->line, ref->col,
		        "expected a defined list, found '$%.*s' (define it "
		        "with 'list %.*s = { ... }' before this line)",
		        (int)ref->len, ref->start, (int)ref->len, ref->start);
		return false;
	}
	for (uint32_t i = 0; i < l->count; i++) {
		struct ts_token t = l->items[i];
		t.via = ref->start;
		t.via_len = ref->len;
		t.via_line = ref->line;
		t.via_col = ref->col;
		if (!items_add(ps, it, &t))
			return false;
	}
	return true;
}

/* Reads one value set at the current token into it; leaves the token after it. */
static bool parse_items(struct parser *ps, struct items *it, bool negatable, const char *what)
{
	it->count = 0;
	it->negated = false;
	if (negatable && cur(ps)->kind == TOK_BANG) {
		it->negated = true;
		next(ps);
	}
	if (cur(ps)->kind == TOK_WORD) {
		bool ok = items_add(ps, it, cur(ps));
		next(ps);
		return ok;
	}
	if (cur(ps)->kind == TOK_LISTREF) {
		bool ok = items_add_ref(ps, it, cur(ps));
		next(ps);
		return ok;
	}
	if (cur(ps)->kind != TOK_LBRACE) {
		expected(ps, what);
		return false;
	}
	const struct ts_token open = *cur(ps);
	next(ps);
	for (;;) {
		if (cur(ps)->kind == TOK_END) {
			fail_at(ps, open.line, open.col,
			        "expected '}' to close this '{', found end of file");
			return false;
		}
		if (cur(ps)->kind == TOK_COMMA) {
			expected(ps, it->count ? "another item or '}'" : "an item");
			return false;
		}
		if (cur(ps)->kind == TOK_RBRACE && it->count == 0) {
			expected(ps, "at least one item before '}'");
			return false;
		}
		if (cur(ps)->kind == TOK_RBRACE)
			break;
		if (cur(ps)->kind == TOK_WORD) {
			if (!items_add(ps, it, cur(ps)))
				return false;
		} else if (cur(ps)->kind == TOK_LISTREF) {
			if (!items_add_ref(ps, it, cur(ps)))
				return false;
		} else {
			expected(ps, it->count ? "',', another item or '}'" : "an item or '}'");
			return false;
		}
		next(ps);
		if (cur(ps)->kind == TOK_COMMA)
			next(ps);
	}
	next(ps);
	return true;
}

/* ---- item parsers ---- */

static bool tok_copy(const struct ts_token *t, char *buf, size_t len)
{
	if (t->len >= len)
		return false;
	memcpy(buf, t->start, t->len);
	buf[t->len] = '\0';
	return true;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	if (!*s || *s == '-' || *s == '+')
		return false;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_prefix(struct parser *ps, const struct ts_token *t, struct ts_prefix *out)
{
	char buf[64];
	if (!tok_copy(t, buf, sizeof(buf))) {
		bad_item(ps, t, "an address or prefix");
		return false;
	}
	char *slash = strchr(buf, '/');
	unsigned long len = 0;
	if (slash)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		len = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = 6;
		len = 128;
	} else {
		bad_item(ps, t, "an IPv4 or IPv6 address or prefix");
		return false;
	}
	if (slash && !parse_uint(slash + 1, len, &len)) {
		fail_at(ps, t->line, t->col, "expected a prefix length of 0 to %s, found '%s'",
		        out->family == 4 ? "32" : "128", slash + 1);
		return false;
	}
	out->len = (uint8_t)len;
	for (unsigned bit = out->len; bit < (out->family == 4 ? 32u : 128u); bit++) {
		if (out->addr[bit / 8] & (0x80u >> (bit % 8))) {
			fail_at(ps, t->line, t->col,
			        "expected a prefix with no host bits set, found '%.*s' (bits past "
			        "/%u are set)",
			        (int)t->len, t->start, out->len);
			return false;
		}
	}
	return true;
}

static bool parse_port_range(struct parser *ps, const struct ts_token *t, struct ts_port_range *out)
{
	char buf[32];
	unsigned long lo, hi;
	if (!tok_copy(t, buf, sizeof(buf)))
		goto bad;
	char *sep = strpbrk(buf, "-:");
	if (sep)
		*sep = '\0';
	if (!parse_uint(buf, 65535, &lo))
		goto bad;
	hi = lo;
	if (sep && !parse_uint(sep + 1, 65535, &hi))
		goto bad;
	if (hi < lo) {
		fail_at(ps, t->line, t->col,
		        "expected a port range low-high, found '%.*s' (high < low)", (int)t->len,
		        t->start);
		return false;
	}
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return true;
bad:
	bad_item(ps, t, "a port (0-65535) or range (1000-2000)");
	return false;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly six pairs of hex digits, separated by ':' or '-'. */
static bool parse_mac(struct parser *ps, const struct ts_token *t, uint8_t out[6])
{
	bool ok = t->kind == TOK_WORD && t->len == 17;
	for (size_t i = 0; ok && i < 6; i++) {
		const char *p = t->start + i * 3;
		int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
		ok = hi >= 0 && lo >= 0 && (i == 5 || p[2] == ':' || p[2] == '-');
		if (ok)
			out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!ok)
		bad_item(ps, t, "a MAC address like 02:00:00:00:00:01");
	return ok;
}

static bool parse_iface(struct parser *ps, const struct ts_token *t, char out[TS_IFNAME_MAX])
{
	if (t->len == 0 || t->len >= TS_IFNAME_MAX || memchr(t->start, '/', t->len) ||
	    memchr(t->start, ':', t->len)) {
		bad_item(ps, t, "an interface name (at most 15 characters, no '/' or ':')");
		return false;
	}
	memcpy(out, t->start, t->len);
	out[t->len] = '\0';
	return true;
}

static const struct {
	const char *name;
	uint8_t number;
} proto_names[] = {
        {"icmp", 1}, {"igmp", 2}, {"tcp", 6},    {"udp", 17},       {"gre", 47},
        {"esp", 50}, {"ah", 51},  {"icmp6", 58}, {"ipv6-icmp", 58}, {"sctp", 132},
};

static bool parse_proto(struct parser *ps, const struct ts_token *t, uint8_t *out)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (ts_tok_is(t, proto_names[i].name)) {
			*out = proto_names[i].number;
			return true;
		}
	char buf[8];
	unsigned long v;
	if (tok_copy(t, buf, sizeof(buf)) && parse_uint(buf, 255, &v)) {
		*out = (uint8_t)v;
		return true;
	}
	bad_item(ps, t, "a protocol (tcp, udp, icmp, icmp6, gre, esp, ah, sctp, igmp or 0-255)");
	return false;
}

static bool parse_byte(struct parser *ps, const struct ts_token *t, const char *what, uint8_t *out)
{
	char buf[8];
	unsigned long v;
	if (tok_copy(t, buf, sizeof(buf)) && parse_uint(buf, 255, &v)) {
		*out = (uint8_t)v;
		return true;
	}
	bad_item(ps, t, what);
	return false;
}

static void bitmap_set(uint8_t *bitmap, uint8_t v)
{
	bitmap[v >> 3] |= (uint8_t)(1u << (v & 7));
}

static bool bitmap_has(const uint8_t *bitmap, uint8_t v)
{
	return bitmap[v >> 3] & (1u << (v & 7));
}

/* ---- terms ---- */

#define FIELD(f) (1u << (f))

static bool claim(struct parser *ps, struct ts_rule *r, enum ts_field f, const struct ts_token *at,
                  const char *what)
{
	if (r->match_mask & FIELD(f)) {
		fail_at(ps, at->line, at->col, "expected each match once per rule, found %s again",
		        what);
		return false;
	}
	r->match_mask |= FIELD(f);
	return true;
}

static bool addr_spec(struct parser *ps, struct items *it, struct ts_addr_spec *s)
{
	s->negated = it->negated;
	s->prefixes = calloc(it->count, sizeof(*s->prefixes));
	if (!s->prefixes) {
		fail_at(ps, cur(ps)->line, cur(ps)->col, "out of memory");
		return false;
	}
	for (uint32_t i = 0; i < it->count; i++)
		if (!parse_prefix(ps, &it->tok[i], &s->prefixes[s->count++]))
			return false;
	return true;
}

static bool port_spec(struct parser *ps, struct items *it, struct ts_port_spec *s)
{
	s->negated = it->negated;
	s->ranges = calloc(it->count, sizeof(*s->ranges));
	if (!s->ranges) {
		fail_at(ps, cur(ps)->line, cur(ps)->col, "out of memory");
		return false;
	}
	for (uint32_t i = 0; i < it->count; i++)
		if (!parse_port_range(ps, &it->tok[i], &s->ranges[s->count++]))
			return false;
	return true;
}

/* from|to [!]ADDRS [port [!]PORTS], or from|to port [!]PORTS */
static bool parse_endpoint(struct parser *ps, struct ts_rule *r, struct items *it, bool src)
{
	const struct ts_token at = *cur(ps);
	next(ps);
	enum ts_field af = src ? TS_FIELD_SRC : TS_FIELD_DST;
	enum ts_field pf = src ? TS_FIELD_SPORT : TS_FIELD_DPORT;
	if (!ts_tok_is(cur(ps), "port")) {
		if (ts_tok_is(cur(ps), "any")) {
			next(ps);
		} else {
			if (!parse_items(ps, it, true,
			                 "an address, prefix, { list }, $list, any or port"))
				return false;
			if (!claim(ps, r, af, &at, src ? "'from'" : "'to'"))
				return false;
			if (!addr_spec(ps, it, src ? &r->src : &r->dst))
				return false;
		}
		if (!ts_tok_is(cur(ps), "port"))
			return true;
	}
	const struct ts_token port_at = *cur(ps);
	next(ps);
	if (!parse_items(ps, it, true, "a port, range, { list } or $list"))
		return false;
	if (!claim(ps, r, pf, &port_at, src ? "a source port" : "a destination port"))
		return false;
	return port_spec(ps, it, src ? &r->sport : &r->dport);
}

static bool parse_protos(struct parser *ps, struct ts_rule *r, struct items *it,
                         const struct ts_token *at)
{
	if (!claim(ps, r, TS_FIELD_PROTO, at, "a protocol"))
		return false;
	if (ts_tok_is(at, "proto")) {
		next(ps);
		if (!parse_items(ps, it, false, "a protocol, { list } or $list"))
			return false;
		for (uint32_t i = 0; i < it->count; i++) {
			uint8_t v;
			if (!parse_proto(ps, &it->tok[i], &v))
				return false;
			bitmap_set(r->protos, v);
		}
		return true;
	}
	uint8_t v;
	if (!parse_proto(ps, at, &v))
		return false;
	bitmap_set(r->protos, v);
	next(ps);
	return true;
}

static bool parse_flags(struct parser *ps, struct ts_rule *r)
{
	static const char letters[] = "FSRPAUEC";
	const struct ts_token at = *cur(ps);
	next(ps);
	if (!claim(ps, r, TS_FIELD_TCP_FLAGS, &at, "'flags'"))
		return false;
	const struct ts_token *t = cur(ps);
	uint8_t value = 0, mask = 0;
	bool in_mask = false, ok = t->kind == TOK_WORD;
	for (size_t i = 0; ok && i < t->len; i++) {
		char c = t->start[i];
		if (c == '/' && !in_mask) {
			in_mask = true;
			continue;
		}
		const char *pos = strchr(letters, c);
		if (!pos || !c) {
			ok = false;
			break;
		}
		uint8_t bit = (uint8_t)(1u << (pos - letters));
		if (in_mask)
			mask |= bit;
		else
			value |= bit;
	}
	if (!in_mask)
		mask = value;
	if (!ok || value == 0 || (value & mask) != value) {
		expected(ps, "TCP flags as SET/MASK from the letters FSRPAUEC, e.g. S/SA (the set "
		             "must lie inside the mask)");
		return false;
	}
	r->tcp_flags = value;
	r->tcp_flags_mask = mask;
	next(ps);
	return true;
}

static bool parse_icmp(struct parser *ps, struct ts_rule *r, struct items *it)
{
	const struct ts_token at = *cur(ps);
	next(ps);
	if (!claim(ps, r, TS_FIELD_ICMP_TYPE, &at, "'icmp-type'"))
		return false;
	if (!parse_items(ps, it, false, "an ICMP type (0-255), { list } or $list"))
		return false;
	for (uint32_t i = 0; i < it->count; i++) {
		uint8_t v;
		if (!parse_byte(ps, &it->tok[i], "an ICMP type (0-255)", &v))
			return false;
		bitmap_set(r->icmp_types, v);
	}
	if (!ts_tok_is(cur(ps), "code"))
		return true;
	const struct ts_token code_at = *cur(ps);
	next(ps);
	if (!claim(ps, r, TS_FIELD_ICMP_CODE, &code_at, "'code'"))
		return false;
	if (!parse_items(ps, it, false, "an ICMP code (0-255), { list } or $list"))
		return false;
	for (uint32_t i = 0; i < it->count; i++) {
		uint8_t v;
		if (!parse_byte(ps, &it->tok[i], "an ICMP code (0-255)", &v))
			return false;
		bitmap_set(r->icmp_codes, v);
	}
	return true;
}

static bool parse_list_values(struct parser *ps, struct ts_rule *r, struct items *it,
                              enum ts_field f)
{
	const struct ts_token at = *cur(ps);
	next(ps);
	bool mac = f == TS_FIELD_MAC;
	if (!claim(ps, r, f, &at, mac ? "'mac'" : "'on'"))
		return false;
	if (!parse_items(ps, it, true,
	                 mac ? "a MAC address, { list } or $list"
	                     : "an interface, { list } or $list"))
		return false;
	if (mac) {
		r->mac.negated = it->negated;
		r->mac.macs = calloc(it->count, sizeof(*r->mac.macs));
		if (!r->mac.macs)
			return false;
		for (uint32_t i = 0; i < it->count; i++)
			if (!parse_mac(ps, &it->tok[i], r->mac.macs[r->mac.count++]))
				return false;
		return true;
	}
	r->iface.negated = it->negated;
	r->iface.names = calloc(it->count, sizeof(*r->iface.names));
	if (!r->iface.names)
		return false;
	for (uint32_t i = 0; i < it->count; i++)
		if (!parse_iface(ps, &it->tok[i], r->iface.names[r->iface.count++]))
			return false;
	return true;
}

static bool parse_bpf(struct parser *ps, struct ts_rule *r)
{
	const struct ts_token at = *cur(ps);
	next(ps);
	if (!claim(ps, r, TS_FIELD_BPF, &at, "'bpf'"))
		return false;
	const struct ts_token str = *cur(ps);
	if (str.kind != TOK_STRING || str.len == 0) {
		expected(ps, "a libpcap filter expression in double quotes");
		return false;
	}
	r->bpf_expr = strndup(str.start, str.len);
	if (!r->bpf_expr)
		return false;
	char why[256];
	if (ts_bpf_compile(r, why, sizeof(why)) != 0) {
		fail_at(ps, str.line, str.col,
		        "expected a libpcap filter expression, found \"%s\" (%s)", r->bpf_expr,
		        why);
		return false;
	}
	next(ps);
	return true;
}

static const struct {
	const char *name;
	enum ts_reject_kind kind;
} reject_names[] = {
        {"tcp-reset", TS_REJECT_TCP_RESET},
        {"net-unreachable", TS_REJECT_NET_UNREACHABLE},
        {"host-unreachable", TS_REJECT_HOST_UNREACHABLE},
        {"port-unreachable", TS_REJECT_PORT_UNREACHABLE},
        {"proto-unreachable", TS_REJECT_PROTO_UNREACHABLE},
        {"admin-prohibited", TS_REJECT_ADMIN_PROHIBITED},
};

static bool parse_reject_kind(struct parser *ps, struct ts_rule *r)
{
	next(ps);
	bool icmp_word = ts_tok_is(cur(ps), "icmp") || ts_tok_is(cur(ps), "icmp6");
	if (icmp_word)
		next(ps); /* "with icmp port-unreachable" reads naturally too */
	for (size_t i = icmp_word ? 1 : 0; i < sizeof(reject_names) / sizeof(reject_names[0]); i++)
		if (ts_tok_is(cur(ps), reject_names[i].name)) {
			r->reject = reject_names[i].kind;
			next(ps);
			return true;
		}
	expected(ps, icmp_word ? "net-unreachable, host-unreachable, port-unreachable, "
	                         "proto-unreachable or admin-prohibited"
	                       : "tcp-reset, net-unreachable, host-unreachable, port-unreachable, "
	                         "proto-unreachable or admin-prohibited");
	return false;
}

/* Does the rule constrain the protocol to a subset of {a, b}? (b may equal a) */
static bool protos_only(const struct ts_rule *r, uint8_t a, uint8_t b)
{
	if (!(r->match_mask & FIELD(TS_FIELD_PROTO)))
		return false;
	for (unsigned v = 0; v < 256; v++)
		if (bitmap_has(r->protos, (uint8_t)v) && v != a && v != b)
			return false;
	return true;
}

/* The one family every item of a non-negated address list has, or 0. */
static uint8_t addr_family(const struct ts_rule *r, enum ts_field f)
{
	const struct ts_addr_spec *s = f == TS_FIELD_SRC ? &r->src : &r->dst;
	if (!(r->match_mask & FIELD(f)) || s->negated || s->count == 0)
		return 0;
	uint8_t family = s->prefixes[0].family;
	for (uint32_t i = 1; i < s->count; i++)
		if (s->prefixes[i].family != family)
			return 0;
	return family;
}

/* Rules that can never match, or ask for what the gateway cannot do, are
 * errors: they are almost always a typo. */
static const char *rule_problem(const struct ts_rule *r)
{
	uint32_t m = r->match_mask;
	bool protos = m & FIELD(TS_FIELD_PROTO);
	uint8_t family = (m & FIELD(TS_FIELD_FAMILY)) ? r->family : 0;
	uint8_t src_family = addr_family(r, TS_FIELD_SRC),
	        dst_family = addr_family(r, TS_FIELD_DST);

	if ((m & (FIELD(TS_FIELD_SPORT) | FIELD(TS_FIELD_DPORT))) && protos &&
	    !bitmap_has(r->protos, TS_IPPROTO_TCP) && !bitmap_has(r->protos, TS_IPPROTO_UDP))
		return "ports need tcp or udp among the protocols";
	if ((m & FIELD(TS_FIELD_TCP_FLAGS)) && protos && !bitmap_has(r->protos, TS_IPPROTO_TCP))
		return "flags need tcp among the protocols";
	if ((m & FIELD(TS_FIELD_ICMP_TYPE)) && protos && !bitmap_has(r->protos, TS_IPPROTO_ICMP) &&
	    !bitmap_has(r->protos, TS_IPPROTO_ICMPV6))
		return "icmp-type needs icmp or icmp6 among the protocols";
	if (family && src_family && src_family != family)
		return "'from' lists no address of the rule's family";
	if (family && dst_family && dst_family != family)
		return "'to' lists no address of the rule's family";
	if (src_family && dst_family && src_family != dst_family)
		return "'from' lists only one family's addresses and 'to' only the other's";
	if (family == 4 && protos_only(r, TS_IPPROTO_ICMPV6, TS_IPPROTO_ICMPV6))
		return "icmp6 travels only in IPv6 (inet6)";
	if (family == 6 && protos_only(r, TS_IPPROTO_ICMP, TS_IPPROTO_ICMP))
		return "icmp travels only in IPv4 (inet)";
	if (r->reject == TS_REJECT_TCP_RESET && !protos_only(r, TS_IPPROTO_TCP, TS_IPPROTO_TCP))
		return "'with tcp-reset' needs a rule that matches tcp only";
	if (r->action == TS_VERDICT_DIVERT && !protos_only(r, TS_IPPROTO_TCP, TS_IPPROTO_TCP))
		return "divert hands TCP connections to Tor, so it needs a rule that matches tcp "
		       "only";
	if (r->action == TS_VERDICT_DNS && !protos_only(r, TS_IPPROTO_UDP, TS_IPPROTO_TCP))
		return "dns answers DNS queries, so it needs a rule that matches udp or tcp only";
	return NULL;
}

static bool check_rule(struct parser *ps, const struct ts_rule *r)
{
	const char *why = rule_problem(r);
	if (why) {
		fail_at(ps, r->line, r->col, "expected a rule that can match, found one where %s",
		        why);
		return false;
	}
	return true;
}

static const struct {
	const char *name;
	enum ts_verdict verdict;
} actions[] = {
        {"drop", TS_VERDICT_DROP},     {"reject", TS_VERDICT_REJECT}, {"pass", TS_VERDICT_PASS},
        {"divert", TS_VERDICT_DIVERT}, {"dns", TS_VERDICT_DNS},
};

static bool is_action(const struct ts_token *t, enum ts_verdict *v)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (ts_tok_is(t, actions[i].name)) {
			*v = actions[i].verdict;
			return true;
		}
	return false;
}

static void rule_free(struct ts_rule *r)
{
	free(r->src.prefixes);
	free(r->dst.prefixes);
	free(r->sport.ranges);
	free(r->dport.ranges);
	free(r->mac.macs);
	free(r->iface.names);
	ts_bpf_free(r);
	free(r->bpf_expr);
}

static bool parse_rule(struct parser *ps, enum ts_verdict action)
{
	struct ts_policy *p = ps->p;
	if (p->rule_count == ps->rule_cap) {
		struct ts_rule *g = grow(ps, p->rules, &ps->rule_cap, sizeof(*g));
		if (!g)
			return false;
		p->rules = g;
	}
	struct ts_rule *r = &p->rules[p->rule_count++];
	memset(r, 0, sizeof(*r));
	r->line = cur(ps)->line;
	r->col = cur(ps)->col;
	r->action = action;
	next(ps);

	struct items it = {0};
	bool ok = true, saw_all = false, saw_with = false;
	while (ok && !at_end_of_statement(ps)) {
		const struct ts_token t = *cur(ps);
		if (ts_tok_is(&t, "with")) {
			if (action != TS_VERDICT_REJECT)
				expected(ps, "a match ('with' goes only with reject)");
			else if (saw_with)
				fail_at(ps, t.line, t.col,
				        "expected each match once per rule, found 'with' again");
			ok = !ps->failed && parse_reject_kind(ps, r);
			saw_with = true;
		} else if (ts_tok_is(&t, "all")) {
			saw_all = true;
			next(ps);
		} else if (ts_tok_is(&t, "inet") || ts_tok_is(&t, "inet6")) {
			ok = claim(ps, r, TS_FIELD_FAMILY, &t, "an address family");
			r->family = ts_tok_is(&t, "inet") ? 4 : 6;
			next(ps);
		} else if (ts_tok_is(&t, "proto") || ts_tok_is(&t, "tcp") || ts_tok_is(&t, "udp") ||
		           ts_tok_is(&t, "icmp") || ts_tok_is(&t, "icmp6")) {
			ok = parse_protos(ps, r, &it, &t);
		} else if (ts_tok_is(&t, "from") || ts_tok_is(&t, "to")) {
			ok = parse_endpoint(ps, r, &it, ts_tok_is(&t, "from"));
		} else if (ts_tok_is(&t, "mac")) {
			ok = parse_list_values(ps, r, &it, TS_FIELD_MAC);
		} else if (ts_tok_is(&t, "on")) {
			ok = parse_list_values(ps, r, &it, TS_FIELD_IFACE);
		} else if (ts_tok_is(&t, "flags")) {
			ok = parse_flags(ps, r);
		} else if (ts_tok_is(&t, "icmp-type")) {
			ok = parse_icmp(ps, r, &it);
		} else if (ts_tok_is(&t, "bpf")) {
			ok = parse_bpf(ps, r);
		} else {
			expected(ps, "a match (all, inet, inet6, tcp, udp, icmp, icmp6, proto, "
			             "from, to, "
			             "mac, on, flags, icmp-type, bpf) or end of line");
			ok = false;
		}
	}
	free(it.tok);
	if (!ok)
		return false;
	if (saw_all && r->match_mask) {
		fail_at(ps, r->line, r->col,
		        "expected 'all' alone or other matches, found both in one rule");
		return false;
	}
	if (!saw_all && !r->match_mask) {
		expected(ps, "a match, or 'all' to match every packet");
		return false;
	}
	return check_rule(ps, r);
}

static bool parse_list(struct parser *ps)
{
	next(ps);
	const struct ts_token name = *cur(ps);
	if (name.kind != TOK_WORD || name.len >= MAX_LIST_NAME) {
		expected(ps, "a list name (letters, digits, '_', '-', at most 63)");
		return false;
	}
	if (find_list(ps, &name)) {
		fail_at(ps, name.line, name.col, "expected a new list name, found '%.*s' again",
		        (int)name.len, name.start);
		return false;
	}
	next(ps);
	if (cur(ps)->kind != TOK_EQUALS) {
		expected(ps, "'='");
		return false;
	}
	next(ps);
	if (ps->list_count == ps->list_cap) {
		struct list_def *g = grow(ps, ps->lists, &ps->list_cap, sizeof(*g));
		if (!g)
			return false;
		ps->lists = g;
	}
	struct items it = {0};
	ps->defining = name.start;
	ps->defining_len = name.len;
	bool ok = parse_items(ps, &it, false, "'{', an item or $list");
	ps->defining = NULL;
	if (!ok) {
		free(it.tok);
		return false;
	}
	struct list_def *l = &ps->lists[ps->list_count++];
	memset(l, 0, sizeof(*l));
	memcpy(l->name, name.start, name.len);
	l->items = it.tok;
	l->count = it.count;
	ps->p->list_count++;
	return true;
}

static bool parse_size(const struct ts_token *t, uint64_t *out)
{
	char buf[32];
	if (!tok_copy(t, buf, sizeof(buf)) || !buf[0])
		return false;
	uint64_t mult = 1;
	size_t n = strlen(buf);
	switch (buf[n - 1]) {
	case 'K':
	case 'k':
		mult = 1ull << 10;
		break;
	case 'M':
	case 'm':
		mult = 1ull << 20;
		break;
	case 'G':
	case 'g':
		mult = 1ull << 30;
		break;
	default:
		break;
	}
	if (mult != 1)
		buf[n - 1] = '\0';
	unsigned long v;
	if (!parse_uint(buf, 1ul << 20, &v) || v == 0)
		return false;
	*out = v * mult;
	return true;
}

/* A number in decimal or 0x hex, at most max. */
static bool parse_number(const char *buf, unsigned long max, unsigned long *out)
{
	if (!strncmp(buf, "0x", 2) || !strncmp(buf, "0X", 2)) {
		if (!buf[2] || strspn(buf + 2, "0123456789abcdefABCDEF") != strlen(buf + 2) ||
		    strlen(buf + 2) > 8)
			return false;
		unsigned long v = strtoul(buf + 2, NULL, 16);
		if (v > max)
			return false;
		*out = v;
		return true;
	}
	return parse_uint(buf, max, out);
}

static bool token_number(struct parser *ps, unsigned long min, unsigned long max, const char *what,
                         unsigned long *out)
{
	char buf[32];
	if (!tok_copy(cur(ps), buf, sizeof(buf)) || !parse_number(buf, max, out) || *out < min) {
		expected(ps, what);
		return false;
	}
	return true;
}

/* The inline gateway's settings (struct ts_gateway_config). Returns false
 * with ps->failed unset when the setting is not one of them. */
static bool parse_gateway_set(struct parser *ps, bool *known)
{
	struct ts_gateway_config *g = &ps->p->gateway;
	unsigned long v;
	*known = true;
	if (ts_tok_is(cur(ps), "interface")) {
		next(ps);
		char buf[TS_IFNAME_MAX];
		if (!tok_copy(cur(ps), buf, sizeof(buf)) || !buf[0] ||
		    strspn(buf,
		           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@") !=
		            strlen(buf)) {
			expected(ps, "an interface name (at most 15 characters)");
			return false;
		}
		memcpy(g->iface, buf, sizeof(buf));
	} else if (ts_tok_is(cur(ps), "queue")) {
		next(ps);
		char buf[32];
		unsigned long lo = 0, hi = 0;
		char *dash = NULL;
		bool ok = tok_copy(cur(ps), buf, sizeof(buf));
		if (ok && (dash = strchr(buf, '-')))
			*dash = '\0';
		ok = ok && parse_uint(buf, 65535, &lo);
		hi = lo;
		if (ok && dash)
			ok = parse_uint(dash + 1, 65535, &hi) && hi >= lo && hi - lo < 64;
		if (!ok) {
			expected(ps,
			         "a queue number or range such as 0 or 0-1 (0 to 65535, at most 64 "
			         "queues)");
			return false;
		}
		g->queue_first = (uint16_t)lo;
		g->queue_last = (uint16_t)hi;
	} else if (ts_tok_is(cur(ps), "queue-length")) {
		next(ps);
		if (!token_number(ps, 1, 1ul << 20, "a number of packets from 1 to 1048576", &v))
			return false;
		g->queue_length = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "queue-buffer")) {
		next(ps);
		uint64_t size;
		if (!parse_size(cur(ps), &size) || size > (1ull << 30)) {
			expected(ps, "a size such as 8M (K, M or G; at most 1G)");
			return false;
		}
		g->queue_buffer = (uint32_t)size;
	} else if (ts_tok_is(cur(ps), "mark-mask")) {
		ps->mark_line = cur(ps)->line;
		ps->mark_col = cur(ps)->col;
		next(ps);
		if (!token_number(ps, 1, 0xffffffffu, "a mark mask such as 0xff00", &v))
			return false;
		g->mark_mask = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "mark")) {
		ps->mark_line = cur(ps)->line;
		ps->mark_col = cur(ps)->col;
		next(ps);
		int k = 0;
		while (k < TS_MARK_COUNT && !ts_tok_is(cur(ps), ts_mark_name((enum ts_mark_kind)k)))
			k++;
		if (k == TS_MARK_COUNT) {
			expected(ps, "a mark name (pass, divert, dns, reset)");
			return false;
		}
		next(ps);
		if (!token_number(ps, 1, 0xffffffffu, "a mark value from 1", &v))
			return false;
		g->marks[k] = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "divert-port") || ts_tok_is(cur(ps), "dns-port")) {
		bool divert = ts_tok_is(cur(ps), "divert-port");
		next(ps);
		if (!token_number(ps, 1, 65535, "a port from 1 to 65535", &v))
			return false;
		if (divert)
			g->divert_port = (uint16_t)v;
		else
			g->dns_port = (uint16_t)v;
	} else if (ts_tok_is(cur(ps), "fast-path")) {
		next(ps);
		if (ts_tok_is(cur(ps), "on"))
			g->fast_path = true;
		else if (ts_tok_is(cur(ps), "off"))
			g->fast_path = false;
		else {
			expected(ps, "on or off");
			return false;
		}
	} else if (ts_tok_is(cur(ps), "reject-rate")) {
		next(ps);
		if (!token_number(ps, 1, 1000000, "ICMP errors per second from 1 to 1000000", &v))
			return false;
		g->reject_rate = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "route-table")) {
		next(ps);
		/* 253-255 are the kernel's default, main and local tables */
		if (!token_number(ps, 1, 0xfffffffeu, "a routing table number other than 253-255",
		                  &v))
			return false;
		if (v >= 253 && v <= 255) {
			expected(ps, "a routing table number other than 253-255");
			return false;
		}
		g->route_table = (uint32_t)v;
	} else {
		*known = false;
		return false;
	}
	next(ps);
	return true;
}

/* "127.0.0.1:9050", or "[::1]:9050" (a quoted string: the lexer's words
 * have no brackets). */
static bool parse_tor_endpoint(const struct ts_token *t, struct ts_tor_endpoint *ep)
{
	char buf[64];
	if ((t->kind != TOK_WORD && t->kind != TOK_STRING) || !tok_copy(t, buf, sizeof(buf)))
		return false;
	char *host = buf, *port;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close || close[1] != ':')
			return false;
		*close = '\0';
		host = buf + 1;
		port = close + 2;
	} else {
		port = strrchr(buf, ':');
		if (!port)
			return false;
		*port++ = '\0';
	}
	unsigned long v;
	if (!parse_uint(port, 65535, &v) || v == 0)
		return false;
	memset(ep, 0, sizeof(*ep));
	ep->port = (uint16_t)v;
	if (buf[0] != '[' && inet_pton(AF_INET, host, ep->addr) == 1)
		ep->family = 4;
	else if (buf[0] == '[' && inet_pton(AF_INET6, host, ep->addr) == 1)
		ep->family = 6;
	else
		return false;
	return true;
}

/* A setting that is one number, stored as a uint32_t at offset in a
 * settings struct. */
struct number_setting {
	const char *name;
	size_t offset;
	unsigned long min, max;
	const char *what;
};

/* When the current word names one of table's settings, read its number
 * into base; *matched says whether it did. */
static bool parse_number_setting(struct parser *ps, const struct number_setting *table, size_t n,
                                 void *base, bool *matched)
{
	*matched = false;
	for (size_t i = 0; i < n; i++) {
		if (!ts_tok_is(cur(ps), table[i].name))
			continue;
		*matched = true;
		next(ps);
		unsigned long v;
		if (!token_number(ps, table[i].min, table[i].max, table[i].what, &v))
			return false;
		uint32_t u = (uint32_t)v;
		memcpy((char *)base + table[i].offset, &u, sizeof(u));
		next(ps);
		return true;
	}
	return true;
}

/* The relay's settings (struct ts_relay_config). Unlike the others some
 * take several words, so this leaves the parser after the last one. */
static bool parse_relay_set(struct parser *ps, bool *known)
{
	struct ts_relay_config *r = &ps->p->gateway.relay;
	static const struct number_setting numbers[] = {
	        {"pending-syns", offsetof(struct ts_relay_config, pending_syns), 1, 65536,
	         "a number of SYNs from 1 to 65536"},
	        {"pending-syns-per-client", offsetof(struct ts_relay_config, pending_per_client), 1,
	         65536, "a number of SYNs from 1 to 65536"},
	        {"syn-timeout", offsetof(struct ts_relay_config, syn_timeout), 1, 600,
	         "a timeout in seconds from 1 to 600"},
	        {"relay-connections", offsetof(struct ts_relay_config, connections), 1, 1u << 20,
	         "a number of connections from 1 to 1048576"},
	        {"relay-connections-per-client",
	         offsetof(struct ts_relay_config, connections_per_client), 1, 1u << 20,
	         "a number of connections from 1 to 1048576"},
	        {"relay-idle", offsetof(struct ts_relay_config, idle_timeout), 1, 86400 * 7,
	         "a timeout in seconds from 1 to 604800"},
	        {"tor-retry", offsetof(struct ts_relay_config, tor_retry), 1, 3600,
	         "a time in seconds from 1 to 3600"},
	};
	*known = true;
	bool matched;
	bool ok = parse_number_setting(ps, numbers, sizeof(numbers) / sizeof(numbers[0]), r,
	                               &matched);
	if (matched)
		return ok;
	if (ts_tok_is(cur(ps), "relay")) {
		next(ps);
		if (ts_tok_is(cur(ps), "on"))
			r->enabled = true;
		else if (ts_tok_is(cur(ps), "off"))
			r->enabled = false;
		else {
			expected(ps, "on or off");
			return false;
		}
		next(ps);
	} else if (ts_tok_is(cur(ps), "relay-buffer")) {
		next(ps);
		uint64_t size;
		/* the kernel's pipe sizes: a page up to 1 MiB by default */
		if (!parse_size(cur(ps), &size) || size < 4096 || size > (1u << 20)) {
			expected(ps, "a size from 4K to 1M such as 64K");
			return false;
		}
		r->buffer = (uint32_t)size;
		next(ps);
	} else if (ts_tok_is(cur(ps), "tor-socks")) {
		next(ps);
		r->tor_count = 0;
		do {
			if (r->tor_count == TS_TOR_MAX) {
				expected(ps, "at most 8 Tor SOCKS ports");
				return false;
			}
			if (!parse_tor_endpoint(cur(ps), &r->tor[r->tor_count])) {
				expected(ps, "a Tor SOCKS port such as 127.0.0.1:9050 or "
				             "\"[::1]:9050\"");
				return false;
			}
			for (uint8_t o = 0; o < r->tor_count; o++)
				if (!memcmp(&r->tor[o], &r->tor[r->tor_count], sizeof(r->tor[o]))) {
					expected(ps, "distinct Tor SOCKS ports");
					return false;
				}
			r->tor_count++;
			next(ps);
		} while (!at_end_of_statement(ps));
	} else if (ts_tok_is(cur(ps), "isolation")) {
		next(ps);
		if (ts_tok_is(cur(ps), "mac"))
			r->isolation = TS_ISOLATE_MAC;
		else if (ts_tok_is(cur(ps), "ip"))
			r->isolation = TS_ISOLATE_IP;
		else if (ts_tok_is(cur(ps), "none"))
			r->isolation = TS_ISOLATE_NONE;
		else {
			expected(ps, "mac, ip or none");
			return false;
		}
		next(ps);
		r->isolate_port = false;
		r->isolate_epoch = 0;
		while (!at_end_of_statement(ps)) {
			if (r->isolation == TS_ISOLATE_NONE) {
				expected(ps, "end of line (isolation none takes no port or epoch)");
				return false;
			}
			if (ts_tok_is(cur(ps), "port") && !r->isolate_port) {
				r->isolate_port = true;
				next(ps);
			} else if (ts_tok_is(cur(ps), "epoch") && !r->isolate_epoch) {
				next(ps);
				unsigned long v;
				if (!token_number(ps, 60, 86400 * 7,
				                  "an epoch in seconds from 60 to 604800", &v))
					return false;
				r->isolate_epoch = (uint32_t)v;
				next(ps);
			} else {
				expected(ps, "port, epoch SECONDS, or end of line");
				return false;
			}
		}
	} else {
		*known = false;
		return false;
	}
	return true;
}

/* `dns-block VALUES`: names, each blocking itself and every name under it. */
static bool parse_dns_block(struct parser *ps)
{
	struct ts_policy *p = ps->p;
	next(ps);
	struct items it = {0};
	bool ok = parse_items(ps, &it, false,
	                      "a name or names such as { ads.example, tracker.example }");
	for (uint32_t i = 0; ok && i < it.count; i++) {
		const struct ts_token *t = &it.tok[i];
		char buf[TS_BLOCK_NAME_MAX + 1];
		bool good = tok_copy(t, buf, sizeof(buf)) && buf[0] && buf[0] != '.' &&
		            buf[strlen(buf) - 1] != '.' && !strstr(buf, "..");
		for (char *c = buf; good && *c; c++) {
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
			good = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
			       *c == '_' || *c == '.';
		}
		if (!good) {
			bad_item(ps, t, "a DNS name such as ads.example");
			ok = false;
			break;
		}
		if (p->dns_block_count == ps->block_cap) {
			char **g = grow(ps, p->dns_block, &ps->block_cap, sizeof(*g));
			if (!g) {
				ok = false;
				break;
			}
			p->dns_block = g;
		}
		if (!(p->dns_block[p->dns_block_count] = strdup(buf))) {
			fail_at(ps, t->line, t->col, "out of memory");
			ok = false;
			break;
		}
		p->dns_block_count++;
	}
	free(it.tok);
	return ok;
}

static int compare_block_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted and unique, for ts_policy_name_blocked's binary search. */
static void finish_dns_block(struct ts_policy *p)
{
	if (!p->dns_block_count)
		return;
	qsort(p->dns_block, p->dns_block_count, sizeof(*p->dns_block), compare_block_names);
	uint32_t n = 1;
	for (uint32_t i = 1; i < p->dns_block_count; i++) {
		if (strcmp(p->dns_block[i], p->dns_block[n - 1]))
			p->dns_block[n++] = p->dns_block[i];
		else
			free(p->dns_block[i]);
	}
	p->dns_block_count = n;
}

/* The DNS settings (struct ts_dns_config); like the relay's, this leaves
 * the parser after the last word. */
static bool parse_dns_set(struct parser *ps, bool *known)
{
	struct ts_dns_config *d = &ps->p->gateway.dns;
	static const struct number_setting numbers[] = {
	        {"dns-map", offsetof(struct ts_dns_config, map_size), 1, 1u << 20,
	         "a number of names from 1 to 1048576"},
	        {"dns-map-idle", offsetof(struct ts_dns_config, map_idle), 60, 86400 * 7,
	         "a time in seconds from 60 to 604800"},
	        {"dns-cache", offsetof(struct ts_dns_config, cache_size), 0, 1u << 20,
	         "a number of answers from 0 to 1048576"},
	        {"dns-ttl-min", offsetof(struct ts_dns_config, ttl_min), 0, 86400,
	         "a TTL in seconds from 0 to 86400"},
	        {"dns-ttl-max", offsetof(struct ts_dns_config, ttl_max), 0, 86400 * 7,
	         "a TTL in seconds from 0 to 604800"},
	        {"dns-pending", offsetof(struct ts_dns_config, pending), 1, 65536,
	         "a number of queries from 1 to 65536"},
	        {"dns-pending-per-client", offsetof(struct ts_dns_config, pending_per_client), 1,
	         65536, "a number of queries from 1 to 65536"},
	        {"dns-timeout", offsetof(struct ts_dns_config, timeout), 1, 120,
	         "a timeout in seconds from 1 to 120"},
	        {"dns-tcp-connections", offsetof(struct ts_dns_config, tcp_connections), 1, 65536,
	         "a number of connections from 1 to 65536"},
	};
	*known = true;
	bool matched;
	bool ok = parse_number_setting(ps, numbers, sizeof(numbers) / sizeof(numbers[0]), d,
	                               &matched);
	if (matched)
		return ok;
	if (ts_tok_is(cur(ps), "dns-service") || ts_tok_is(cur(ps), "dns-automap")) {
		bool *flag = ts_tok_is(cur(ps), "dns-service") ? &d->enabled : &d->automap;
		next(ps);
		if (ts_tok_is(cur(ps), "on"))
			*flag = true;
		else if (ts_tok_is(cur(ps), "off"))
			*flag = false;
		else {
			expected(ps, "on or off");
			return false;
		}
		next(ps);
	} else if (ts_tok_is(cur(ps), "tor-dns")) {
		next(ps);
		if (ts_tok_is(cur(ps), "off")) {
			d->use_dnsport = false;
		} else if (parse_tor_endpoint(cur(ps), &d->dnsport)) {
			d->use_dnsport = true;
		} else {
			expected(ps, "off, or Tor's DNSPort such as 127.0.0.1:5353");
			return false;
		}
		next(ps);
	} else if (ts_tok_is(cur(ps), "dns-virtual")) {
		next(ps);
		bool seen[2] = {false, false};
		do {
			struct ts_prefix pfx;
			if (cur(ps)->kind != TOK_WORD) {
				expected(ps, "a prefix such as 10.192.0.0/10");
				return false;
			}
			if (!parse_prefix(ps, cur(ps), &pfx))
				return false;
			int f = pfx.family == 6;
			if (seen[f] || pfx.len < 8 || pfx.len > (f ? 120 : 30)) {
				expected(ps, seen[f] ? "one prefix per family"
				             : f     ? "an IPv6 prefix from /8 to /120"
				                     : "an IPv4 prefix from /8 to /30");
				return false;
			}
			seen[f] = true;
			if (f)
				d->virtual6 = pfx;
			else
				d->virtual4 = pfx;
			next(ps);
		} while (!at_end_of_statement(ps));
	} else if (ts_tok_is(cur(ps), "dns-block-answer")) {
		next(ps);
		d->block_sinkhole = false;
		d->has_sinkhole4 = d->has_sinkhole6 = false;
		if (ts_tok_is(cur(ps), "nxdomain")) {
			next(ps);
			return true;
		}
		do {
			char buf[64];
			uint8_t a[16];
			if (!tok_copy(cur(ps), buf, sizeof(buf)) || cur(ps)->kind != TOK_WORD) {
				expected(ps, "nxdomain, or sinkhole addresses such as 0.0.0.0 ::");
				return false;
			}
			if (inet_pton(AF_INET, buf, a) == 1 && !d->has_sinkhole4) {
				memcpy(d->sinkhole4, a, 4);
				d->has_sinkhole4 = true;
			} else if (inet_pton(AF_INET6, buf, a) == 1 && !d->has_sinkhole6) {
				memcpy(d->sinkhole6, a, 16);
				d->has_sinkhole6 = true;
			} else {
				expected(ps, "nxdomain, or one sinkhole address per family such as "
				             "0.0.0.0 ::");
				return false;
			}
			d->block_sinkhole = true;
			next(ps);
		} while (!at_end_of_statement(ps));
	} else {
		*known = false;
		return false;
	}
	return true;
}

/* After the whole file: marks must fit under the mask and differ. */
static void check_marks(struct parser *ps)
{
	const struct ts_gateway_config *g = &ps->p->gateway;
	uint32_t shift = (uint32_t)__builtin_ctz(g->mark_mask);
	uint32_t room = g->mark_mask >> shift;
	for (int k = 0; k < TS_MARK_COUNT && !ps->failed; k++) {
		if (g->marks[k] > room || ((g->marks[k] << shift) & ~g->mark_mask)) {
			fail_at(ps, ps->mark_line, ps->mark_col,
			        "expected mark %s (%u) to fit under mark-mask 0x%x, found it does "
			        "not",
			        ts_mark_name((enum ts_mark_kind)k), g->marks[k], g->mark_mask);
			return;
		}
		for (int o = 0; o < k; o++)
			if (g->marks[o] == g->marks[k]) {
				fail_at(ps, ps->mark_line, ps->mark_col,
				        "expected distinct marks, found %s and %s both %u",
				        ts_mark_name((enum ts_mark_kind)o),
				        ts_mark_name((enum ts_mark_kind)k), g->marks[k]);
				return;
			}
	}
}

static bool parse_set(struct parser *ps)
{
	next(ps);
	struct ts_policy_limits *lim = &ps->p->limits;
	if (ts_tok_is(cur(ps), "max-rules")) {
		next(ps);
		char buf[16];
		unsigned long v;
		if (!tok_copy(cur(ps), buf, sizeof(buf)) || !parse_uint(buf, 10000000, &v) ||
		    v == 0) {
			expected(ps, "a number of rules from 1 to 10000000");
			return false;
		}
		lim->max_rules = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "classifier-memory")) {
		next(ps);
		if (!parse_size(cur(ps), &lim->classifier_memory)) {
			expected(ps, "a size such as 64M (K, M or G; at most 1048576 of a unit)");
			return false;
		}
	} else if (ts_tok_is(cur(ps), "max-flows")) {
		next(ps);
		char buf[16];
		unsigned long v;
		if (!tok_copy(cur(ps), buf, sizeof(buf)) || !parse_uint(buf, 1ul << 24, &v) ||
		    v == 0) {
			expected(ps, "a number of flows from 1 to 16777216");
			return false;
		}
		lim->flows.max_flows = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "timeout")) {
		next(ps);
		int c = 0;
		while (c < TS_FLOW_CLASSES &&
		       !ts_tok_is(cur(ps), ts_flow_class_name((enum ts_flow_class)c)))
			c++;
		if (c == TS_FLOW_CLASSES) {
			expected(ps, "a flow class (tcp-opening, tcp-established, tcp-closing, "
			             "udp, other)");
			return false;
		}
		next(ps);
		char buf[16];
		unsigned long v;
		if (!tok_copy(cur(ps), buf, sizeof(buf)) || !parse_uint(buf, 86400 * 7, &v) ||
		    v == 0) {
			expected(ps, "a timeout in seconds from 1 to 604800");
			return false;
		}
		lim->flows.timeout[c] = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "stream-buffer") || ts_tok_is(cur(ps), "stream-memory") ||
	           ts_tok_is(cur(ps), "stream-history")) {
		const struct ts_token which = *cur(ps);
		next(ps);
		uint64_t v;
		if (!parse_size(cur(ps), &v) || v > (1ull << 31)) {
			expected(ps, "a size such as 1M (K, M or G; at most 2G)");
			return false;
		}
		if (ts_tok_is(&which, "stream-buffer"))
			lim->streams.dir_buffer = (uint32_t)v;
		else if (ts_tok_is(&which, "stream-memory"))
			lim->streams.total_buffer = v;
		else
			lim->streams.history = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "defrag-datagrams") || ts_tok_is(cur(ps), "defrag-timeout")) {
		const struct ts_token which = *cur(ps);
		bool datagrams = ts_tok_is(&which, "defrag-datagrams");
		next(ps);
		char buf[16];
		unsigned long v;
		if (!tok_copy(cur(ps), buf, sizeof(buf)) ||
		    !parse_uint(buf, datagrams ? 1ul << 20 : 3600, &v) || v == 0) {
			expected(ps, datagrams ? "a number of datagrams from 1 to 1048576"
			                       : "a timeout in seconds from 1 to 3600");
			return false;
		}
		if (datagrams)
			lim->defrag.max_datagrams = (uint32_t)v;
		else
			lim->defrag.timeout = (uint32_t)v;
	} else if (ts_tok_is(cur(ps), "defrag-memory")) {
		next(ps);
		uint64_t v;
		if (!parse_size(cur(ps), &v) || v > (1ull << 31)) {
			expected(ps, "a size such as 4M (K, M or G; at most 2G)");
			return false;
		}
		lim->defrag.memory = v;
	} else if (ts_tok_is(cur(ps), "defrag-overlap")) {
		next(ps);
		if (ts_tok_is(cur(ps), "first"))
			lim->defrag.ipv4_overlap = TS_DEFRAG_FIRST;
		else if (ts_tok_is(cur(ps), "drop"))
			lim->defrag.ipv4_overlap = TS_DEFRAG_DROP;
		else {
			expected(ps, "first or drop");
			return false;
		}
	} else {
		bool known;
		bool ok = parse_relay_set(ps, &known);
		if (known)
			return ok;
		ok = parse_dns_set(ps, &known);
		if (known)
			return ok;
		ok = parse_gateway_set(ps, &known);
		if (known)
			return ok;
		expected(
		        ps,
		        "a setting (max-rules, classifier-memory, max-flows, timeout, "
		        "stream-buffer, stream-memory, stream-history, defrag-datagrams, "
		        "defrag-memory, defrag-timeout, defrag-overlap, interface, queue, "
		        "queue-length, queue-buffer, mark-mask, mark, divert-port, dns-port, "
		        "route-table, reject-rate, fast-path, relay, tor-socks, isolation, "
		        "pending-syns, pending-syns-per-client, syn-timeout, relay-connections, "
		        "relay-connections-per-client, relay-idle, relay-buffer, tor-retry, "
		        "dns-service, tor-dns, dns-automap, dns-virtual, dns-map, dns-map-idle, "
		        "dns-cache, dns-ttl-min, dns-ttl-max, dns-pending, dns-pending-per-client, "
		        "dns-timeout, "
		        "dns-tcp-connections, dns-block-answer)");
		return false;
	}
	next(ps);
	return true;
}

static void parse_all(struct parser *ps)
{
	next(ps);
	while (!ps->failed) {
		while (cur(ps)->kind == TOK_NEWLINE)
			next(ps);
		if (cur(ps)->kind == TOK_END)
			break;
		enum ts_verdict action;
		bool ok;
		if (ts_tok_is(cur(ps), "set"))
			ok = parse_set(ps);
		else if (ts_tok_is(cur(ps), "list"))
			ok = parse_list(ps);
		else if (ts_tok_is(cur(ps), "dns-block"))
			ok = parse_dns_block(ps);
		else if (is_action(cur(ps), &action))
			ok = parse_rule(ps, action);
		else {
			expected(ps, "'set', 'list', 'dns-block' or an action (drop, reject, pass, "
			             "divert, dns)");
			ok = false;
		}
		if (ok && !at_end_of_statement(ps))
			expected(ps, "end of line");
	}
	/* After the whole file: 'set' applies wherever it stands. */
	if (!ps->failed)
		check_marks(ps);
	if (!ps->failed && ps->p->gateway.dns.ttl_min > ps->p->gateway.dns.ttl_max)
		fail_at(ps, ps->lx.line, 1,
		        "expected dns-ttl-min (%u) at most dns-ttl-max (%u), found more",
		        ps->p->gateway.dns.ttl_min, ps->p->gateway.dns.ttl_max);
	finish_dns_block(ps->p);
	const struct ts_policy *p = ps->p;
	if (!ps->failed && p->rule_count > p->limits.max_rules) {
		const struct ts_rule *first_over = &p->rules[p->limits.max_rules];
		fail_at(ps, first_over->line, first_over->col,
		        "expected at most max-rules (%u) rules, found more; raise it with 'set "
		        "max-rules'",
		        p->limits.max_rules);
	}
}

void ts_policy_free(struct ts_policy *p)
{
	if (!p)
		return;
	ts_classifier_free(p->classifier);
	for (uint32_t i = 0; i < p->rule_count; i++)
		rule_free(&p->rules[i]);
	for (uint32_t i = 0; i < p->dns_block_count; i++)
		free(p->dns_block[i]);
	free(p->dns_block);
	free(p->rules);
	free(p->source);
	free(p);
}

struct ts_policy *ts_policy_parse(const char *text, size_t len, const char *name, char *err,
                                  size_t errlen)
{
	struct ts_policy *p = calloc(1, sizeof(*p));
	if (!p || !(p->source = strdup(name))) {
		snprintf(err, errlen, "%s: out of memory", name);
		free(p);
		return NULL;
	}
	p->limits.max_rules = DEFAULT_MAX_RULES;
	p->limits.classifier_memory = DEFAULT_CLASSIFIER;
	ts_flow_config_default(&p->limits.flows);
	p->limits.streams.dir_buffer = 1u << 20;
	p->limits.streams.total_buffer = 64ull << 20;
	p->limits.streams.history = 64u << 10;
	ts_defrag_config_default(&p->limits.defrag);
	ts_gateway_config_default(&p->gateway);
	p->bpf_match = ts_bpf_match;

	struct parser ps = {.name = name, .p = p, .err = err, .errlen = errlen};
	if (len > MAX_POLICY_BYTES) {
		snprintf(err, errlen, "%s: larger than %u bytes; is this a policy file?", name,
		         MAX_POLICY_BYTES);
		ps.failed = true;
	} else if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "%s: holds a NUL byte; a policy is text", name);
		ps.failed = true;
	} else {
		ts_lex_init(&ps.lx, text, len);
		parse_all(&ps);
	}
	for (uint32_t i = 0; i < ps.list_count; i++)
		free(ps.lists[i].items);
	free(ps.lists);
	if (!ps.failed && !(p->classifier = ts_classifier_build(p, err, errlen)))
		ps.failed = true;
	if (ps.failed) {
		ts_policy_free(p);
		return NULL;
	}
	return p;
}

struct ts_policy *ts_policy_load(const char *path, char *err, size_t errlen)
{
	bool is_stdin = strcmp(path, "-") == 0;
	FILE *fp = is_stdin ? stdin : fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *text = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			char *g = realloc(text, cap);
			if (!g) {
				free(text);
				if (!is_stdin)
					fclose(fp);
				snprintf(err, errlen, "%s: out of memory", path);
				return NULL;
			}
			text = g;
		}
		size_t n = fread(text + len, 1, cap - len, fp);
		len += n;
		if (len > MAX_POLICY_BYTES)
			break;
		if (n == 0)
			break;
	}
	int read_error = ferror(fp) ? (errno ? errno : EIO) : 0;
	if (!is_stdin)
		fclose(fp);
	if (read_error) {
		free(text);
		snprintf(err, errlen, "%s: %s", path, strerror(read_error));
		return NULL;
	}
	/* Past the size cap, ts_policy_parse refuses it with its own message. */
	struct ts_policy *p = ts_policy_parse(text ? text : "", len, path, err, errlen);
	free(text);
	return p;
}
