/*
 * The policy language: errors name the place and what was expected, rules
 * print back to text that parses to the same rules, each match term means
 * what docs/policy.md says, and the shipped default policy gives the verdicts
 * the hotspot recipe wants.
 */
#include <arpa/inet.h>
#include <stdlib.h>

#include "check.h"
#include "torsieve/classify.h"
#include "torsieve/policy.h"

static struct ts_policy *parse(const char *text, char *err, size_t errlen)
{
	return ts_policy_parse(text, strlen(text), "t.conf", err, errlen);
}

/* ---- errors ---- */

static void test_errors_name_the_place(void)
{
	static const struct {
		const char *text;
		const char *want; /* the whole message after "t.conf:" */
	} cases[] = {
	        {"frob all\n",
	         "1:1: expected 'set', 'list', 'dns-block' or an action (drop, reject, pass, "
	         "divert, dns), found 'frob'"},
	        {"drop\n",
	         "1:5: expected a match, or 'all' to match every packet, found end of line"},
	        {"drop all\ndrop to 10.0.0.1/33\n",
	         "2:9: expected a prefix length of 0 to 32, found '33'"},
	        {"drop to 10.0.0.1/8\n", "1:9: expected a prefix with no host bits set, found "
	                                 "'10.0.0.1/8' (bits past /8 are set)"},
	        {"drop to port 70000\n",
	         "1:14: expected a port (0-65535) or range (1000-2000), found '70000'"},
	        {"drop to port 90-80\n",
	         "1:14: expected a port range low-high, found '90-80' (high < low)"},
	        {"drop to $nope\n", "1:9: expected a defined list, found '$nope' (define it with "
	                            "'list nope = { ... }' before this line)"},
	        {"list a = { }\n", "1:12: expected at least one item before '}', found '}'"},
	        {"drop tcp udp\n",
	         "1:10: expected each match once per rule, found a protocol again"},
	        {"drop icmp to port 80\n", "1:1: expected a rule that can match, found one where "
	                                   "ports need tcp or udp among the protocols"},
	        {"reject udp to port 1 with tcp-reset\n",
	         "1:1: expected a rule that can match, found one where 'with tcp-reset' needs a "
	         "rule "
	         "that matches tcp only"},
	        {"drop flags Z\n",
	         "1:12: expected TCP flags as SET/MASK from the letters FSRPAUEC, "
	         "e.g. S/SA (the set must lie inside the mask), found 'Z'"},
	        {"drop bpf \"no end\n", "1:10: expected a libpcap filter expression in double "
	                                "quotes, found a string with no closing quote"},
	        {"set max-rules 1\ndrop all\ndrop all\n",
	         "3:1: expected at most max-rules (1) rules, found more; raise it with 'set "
	         "max-rules'"},
	        {"pass all with port-unreachable\n",
	         "1:10: expected a match ('with' goes only with reject), found 'with'"},
	        {"drop all tcp\n",
	         "1:1: expected 'all' alone or other matches, found both in one rule"},
	        {"drop inet to 2001:db8::/32\n",
	         "1:1: expected a rule that can match, found one "
	         "where 'to' lists no address of the rule's family"},
	        {"drop mac 02:00:00:00:00\n",
	         "1:10: expected a MAC address like 02:00:00:00:00:01, found '02:00:00:00:00'"},
	        {"list a = { 1 }\nlist a = { 2 }\n",
	         "2:6: expected a new list name, found 'a' again"},
	        {"drop to { 10.0.0.0/8 ; }\n",
	         "1:22: expected ',', another item or '}', found ';'"},
	        {"drop all extra\n",
	         "1:10: expected a match (all, inet, inet6, tcp, udp, icmp, icmp6, "
	         "proto, from, to, mac, on, flags, icmp-type, bpf) or end of line, "
	         "found 'extra'"},
	        {"set max-rules 5 6\n", "1:17: expected end of line, found '6'"},
	        {"set frobs 3\n", "1:5: expected a setting (max-rules, classifier-memory, "
	                          "max-flows, timeout, stream-buffer, stream-memory, "
	                          "stream-history, defrag-datagrams, defrag-memory, "
	                          "defrag-timeout, defrag-overlap, interface, queue, "
	                          "queue-length, queue-buffer, mark-mask, mark, divert-port, "
	                          "dns-port, route-table, reject-rate, fast-path, relay, "
	                          "tor-socks, isolation, pending-syns, pending-syns-per-client, "
	                          "syn-timeout, relay-connections, relay-connections-per-client, "
	                          "relay-idle, relay-buffer, tor-retry, dns-service, tor-dns, "
	                          "dns-automap, dns-virtual, dns-map, dns-map-idle, dns-cache, "
	                          "dns-ttl-min, dns-ttl-max, dns-pending, dns-timeout, "
	                          "dns-tcp-connections, dns-block-answer), found 'frobs'"},
	        {"set defrag-overlap last\n", "1:20: expected first or drop, found 'last'"},
	        {"set defrag-timeout 3601\n",
	         "1:20: expected a timeout in seconds from 1 to 3600, found '3601'"},
	        {"set defrag-datagrams 0\n",
	         "1:22: expected a number of datagrams from 1 to 1048576, found '0'"},
	        {"set defrag-memory 3G\n",
	         "1:19: expected a size such as 4M (K, M or G; at most 2G), found '3G'"},
	        {"pass tcp\npass udp\ndrop all\nset max-rules 2\n",
	         "3:1: expected at most max-rules (2) rules, found more; raise it with 'set "
	         "max-rules'"},
	        {"pass mac 2:00:00:00:00:001\n",
	         "1:10: expected a MAC address like 02:00:00:00:00:01, found '2:00:00:00:00:001'"},
	        {"pass inet icmp6\n", "1:1: expected a rule that can match, found one where icmp6 "
	                              "travels only in IPv6 (inet6)"},
	        {"pass from 10.0.0.0/8 to fd00::/8\n",
	         "1:1: expected a rule that can match, found one where 'from' lists only one "
	         "family's addresses and 'to' only the other's"},
	        {"divert udp to port 80\n",
	         "1:1: expected a rule that can match, found one where "
	         "divert hands TCP connections to Tor, so it needs a rule "
	         "that matches tcp only"},
	        {"dns all\n",
	         "1:1: expected a rule that can match, found one where dns answers DNS "
	         "queries, so it needs a rule that matches udp or tcp only"},
	        {"reject tcp with icmp tcp-reset\n",
	         "1:22: expected net-unreachable, host-unreachable, port-unreachable, "
	         "proto-unreachable or admin-prohibited, found 'tcp-reset'"},
	        {"pass to port { 80,, 443 }\n", "1:19: expected another item or '}', found ','"},
	        {"pass on eth/0\n",
	         "1:9: expected an interface name (at most 15 characters, no '/' "
	         "or ':'), found 'eth/0'"},
	        {"pass to {\n 10.0.0.1\n",
	         "1:9: expected '}' to close this '{', found end of file"},
	        {"list a = { $a }\n",
	         "1:12: expected items or other lists, found '$a' inside its own definition"},
	        {"list a = { 80, x }\npass tcp to port $a\n",
	         "1:16: expected a port (0-65535) or range (1000-2000), found 'x' (in list '$a', "
	         "used "
	         "at 2:18)"},
	        {"drop to port $\n", "1:14: expected a port, range, { list } or $list, found '$' "
	                             "without a list name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512] = "";
		struct ts_policy *p = parse(cases[i].text, err, sizeof(err));
		CHECK(p == NULL);
		ts_policy_free(p);
		char want[512];
		snprintf(want, sizeof(want), "t.conf:%s", cases[i].want);
		CHECK_EQ_STR(err, want);
	}
}

static void test_bpf_errors_carry_libpcap_reason(void)
{
	char err[512] = "";
	struct ts_policy *p = parse("drop bpf \"tcp porq 80\"\n", err, sizeof(err));
	CHECK(p == NULL);
	CHECK(strstr(err, "t.conf:1:10: expected a libpcap filter expression, found \"tcp porq "
	                  "80\" (") == err);
	ts_policy_free(p);
}

static void test_classifier_memory_cap(void)
{
	char err[512] = "";
	struct ts_policy *p =
	        parse("set classifier-memory 1K\ndrop to { 10.0.0.0/8, 2001:db8::/32 }\n", err,
	              sizeof(err));
	CHECK(p == NULL);
	CHECK(strstr(err, "t.conf: the compiled policy needs more than classifier-memory allows "
	                  "(1024 bytes)") == err);
	ts_policy_free(p);
}

static void test_binary_and_huge_input(void)
{
	char err[512] = "";
	static const char nul[] = "drop all\n\0drop all\n";
	struct ts_policy *p = ts_policy_parse(nul, sizeof(nul) - 1, "bin", err, sizeof(err));
	CHECK(p == NULL);
	CHECK_EQ_STR(err, "bin: holds a NUL byte; a policy is text");
	p = parse("drop all \x01\n", err, sizeof(err));
	CHECK(p == NULL);
	CHECK_EQ_STR(err, "t.conf:1:10: expected a match (all, inet, inet6, tcp, udp, icmp, icmp6, "
	                  "proto, from, to, mac, on, flags, icmp-type, bpf) or end of line, found "
	                  "byte 0x01");
	p = ts_policy_load("/nonexistent/torsieve.conf", err, sizeof(err));
	CHECK(p == NULL);
	CHECK_EQ_STR(err, "/nonexistent/torsieve.conf: No such file or directory");
}

/* ---- round trip ---- */

static void test_format_round_trip(void)
{
	static const char text[] =
	        "list nets = { 10.0.0.0/8, 2001:db8::/32 }\n"
	        "list web = { 80, 443, 8000-8999 }\n"
	        "pass tcp to $nets port $web\n"
	        "pass inet6 proto { tcp, 47 } from ! { fd00::/8 } port ! 0-1023 to any\n"
	        "dns udp from port 1024-65535 to port 53\n"
	        "reject with host-unreachable udp to 203.0.113.7\n"
	        "reject tcp to port 25 with tcp-reset\n"
	        "drop mac { 02:00:00:00:00:01, 02-00-00-00-00-02 } on ! { br0, wlan0 }\n"
	        "drop tcp flags S/SAFR\n"
	        "pass icmp icmp-type { 0, 8 } code 0\n"
	        "pass bpf \"ip[8] < 5\"\n"
	        "drop all\n";
	char err[512];
	struct ts_policy *p = parse(text, err, sizeof(err));
	CHECK(p != NULL);
	if (!p) {
		printf("  %s\n", err);
		return;
	}
	CHECK_EQ_INT(p->rule_count, 10);
	CHECK_EQ_INT(p->list_count, 2);
	char again[8192] = "", line[1024];
	for (uint32_t i = 0; i < p->rule_count; i++) {
		ts_rule_format(&p->rules[i], line, sizeof(line));
		strcat(again, line);
		strcat(again, "\n");
	}
	struct ts_policy *q = parse(again, err, sizeof(err));
	CHECK(q != NULL);
	if (q) {
		CHECK_EQ_INT(q->rule_count, p->rule_count);
		for (uint32_t i = 0; i < p->rule_count && i < q->rule_count; i++) {
			char a[1024], b[1024];
			ts_rule_format(&p->rules[i], a, sizeof(a));
			ts_rule_format(&q->rules[i], b, sizeof(b));
			CHECK_EQ_STR(a, b);
			CHECK_EQ_INT(q->rules[i].match_mask, p->rules[i].match_mask);
		}
	} else {
		printf("  %s\n  in:\n%s", err, again);
	}
	ts_rule_format(&p->rules[1], line, sizeof(line));
	CHECK_EQ_STR(line, "pass inet6 proto { tcp, 47 } from !{ fd00::/8 } port !{ 0-1023 }");
	ts_rule_format(&p->rules[6], line, sizeof(line));
	CHECK_EQ_STR(line, "drop proto { tcp } flags S/FSRA");
	ts_policy_free(q);
	ts_policy_free(p);
}

/* ---- semantics, through the real parser and the compiled classifier ---- */

struct pkt {
	struct ts_decoded d;
	const char *iface;
};

static struct pkt ip_packet(const char *src, const char *dst, uint8_t proto, uint16_t sport,
                            uint16_t dport)
{
	struct pkt p;
	memset(&p, 0, sizeof(p));
	bool v6 = strchr(dst, ':') != NULL;
	p.d.l3 = v6 ? TS_L3_IPV6 : TS_L3_IPV4;
	inet_pton(v6 ? AF_INET6 : AF_INET, src, p.d.src_addr);
	inet_pton(v6 ? AF_INET6 : AF_INET, dst, p.d.dst_addr);
	p.d.ip_proto = proto;
	p.d.l4 = proto == 6    ? TS_L4_TCP
	         : proto == 17 ? TS_L4_UDP
	         : proto == 1  ? TS_L4_ICMP
	         : proto == 58 ? TS_L4_ICMP6
	                       : TS_L4_OTHER;
	p.d.has_l4_header = p.d.l4 != TS_L4_OTHER;
	p.d.has_ports = p.d.l4 == TS_L4_TCP || p.d.l4 == TS_L4_UDP;
	p.d.sport = sport;
	p.d.dport = dport;
	p.d.tcp_flags = TS_TCP_SYN;
	return p;
}

/* The line of the rule that judged p, 0 for the implicit drop; compiled and
 * linear must agree. */
static uint32_t judge(const struct ts_policy *pol, const struct pkt *p, enum ts_verdict *v)
{
	struct ts_match_input in = {.dec = &p->d, .iface = p->iface};
	struct ts_judgement j;
	ts_policy_judge(pol, &in, &j);
	int32_t linear = ts_policy_match_linear(pol, &in);
	CHECK_EQ_INT(j.rule, linear);
	if (v)
		*v = j.verdict;
	return j.line;
}

static void test_default_policy(void)
{
	char err[512];
	struct ts_policy *p = ts_policy_parse(ts_default_policy, ts_default_policy_len,
	                                      TS_DEFAULT_POLICY_NAME, err, sizeof(err));
	CHECK(p != NULL);
	if (!p)
		return;
	enum ts_verdict v;
	struct pkt web = ip_packet("10.77.0.23", "93.184.216.34", 6, 40000, 80);
	CHECK_EQ_INT(judge(p, &web, &v), 23);
	CHECK_EQ_INT(v, TS_VERDICT_DIVERT);
	struct pkt tls6 = ip_packet("fd77::23", "2001:db8::80", 6, 40000, 443);
	judge(p, &tls6, &v);
	CHECK_EQ_INT(v, TS_VERDICT_DIVERT);
	struct pkt socks = ip_packet("10.77.0.23", "10.77.0.1", 6, 40000, 9050);
	CHECK_EQ_INT(judge(p, &socks, &v), 20);
	CHECK_EQ_INT(v, TS_VERDICT_PASS);
	struct pkt socks_elsewhere = ip_packet("10.77.0.23", "198.51.100.1", 6, 40000, 9050);
	judge(p, &socks_elsewhere, &v);
	CHECK_EQ_INT(v, TS_VERDICT_DROP);
	struct pkt dns = ip_packet("10.77.0.23", "8.8.8.8", 17, 5353, 53);
	judge(p, &dns, &v);
	CHECK_EQ_INT(v, TS_VERDICT_DNS);
	struct pkt quic = ip_packet("10.77.0.23", "93.184.216.34", 17, 5353, 443);
	judge(p, &quic, &v);
	CHECK_EQ_INT(v, TS_VERDICT_REJECT);
	CHECK_EQ_INT(p->rules[5].reject, TS_REJECT_PORT_UNREACHABLE);
	struct pkt dhcp = ip_packet("0.0.0.0", "255.255.255.255", 17, 68, 67);
	CHECK_EQ_INT(judge(p, &dhcp, &v), 16);
	CHECK_EQ_INT(v, TS_VERDICT_PASS);
	struct pkt ntp = ip_packet("10.77.0.23", "193.0.0.1", 17, 123, 123);
	judge(p, &ntp, &v);
	CHECK_EQ_INT(v, TS_VERDICT_DROP);
	struct pkt ping = ip_packet("10.77.0.23", "193.0.0.1", 1, 0, 0);
	judge(p, &ping, &v);
	CHECK_EQ_INT(v, TS_VERDICT_DROP);
	struct pkt ssh6 = ip_packet("fd77::23", "2001:db8::22", 6, 40000, 22);
	judge(p, &ssh6, &v);
	CHECK_EQ_INT(v, TS_VERDICT_DROP);
	/* Malformed: dropped before any rule, even one that would divert it. */
	web.d.anomaly = TS_ANOM_TCP_BAD_FLAGS;
	CHECK_EQ_INT(judge(p, &web, &v), 0);
	CHECK_EQ_INT(v, TS_VERDICT_DROP);
	ts_policy_free(p);
}

static void test_negation_and_missing_fields(void)
{
	char err[512];
	struct ts_policy *p = parse("pass to ! 10.0.0.0/8\n"
	                            "divert tcp to port ! 80\n"
	                            "dns udp from ! 2001:db8::/32 port 53\n",
	                            err, sizeof(err));
	CHECK(p != NULL);
	if (!p)
		return;
	struct pkt inside = ip_packet("192.0.2.1", "10.1.2.3", 6, 1, 80);
	struct pkt outside = ip_packet("192.0.2.1", "11.1.2.3", 6, 1, 80);
	struct pkt v6 = ip_packet("2001:db8::1", "2001:db8::2", 6, 1, 80);
	struct pkt arp;
	memset(&arp, 0, sizeof(arp));
	arp.d.l3 = TS_L3_OTHER;
	CHECK_EQ_INT(judge(p, &outside, NULL), 1);
	CHECK_EQ_INT(judge(p, &v6, NULL), 1); /* no IPv4 destination: not in 10/8 */
	CHECK_EQ_INT(judge(p, &arp, NULL), 1);
	CHECK_EQ_INT(judge(p, &inside, NULL), 0); /* port 80: rule 2 does not match */
	inside.d.dport = 81;
	CHECK_EQ_INT(judge(p, &inside, NULL), 2);
	inside.d.has_ports = false; /* a non-first fragment: no port, no port match */
	CHECK_EQ_INT(judge(p, &inside, NULL), 0);
	struct pkt icmp = ip_packet("192.0.2.1", "10.1.2.3", 1, 0, 0);
	CHECK_EQ_INT(judge(p, &icmp, NULL), 0); /* ports need ports, negated or not */
	ts_policy_free(p);

	p = parse("dns udp from ! 2001:db8::/32 port 53\n", err, sizeof(err));
	CHECK(p != NULL);
	if (!p)
		return;
	struct pkt listed = ip_packet("2001:db8::1", "fd77::1", 17, 53, 5000);
	struct pkt unlisted = ip_packet("2001:db9::1", "fd77::1", 17, 53, 5000);
	struct pkt v4 = ip_packet("192.0.2.1", "10.0.0.1", 17, 53, 5000);
	CHECK_EQ_INT(judge(p, &listed, NULL), 0);
	CHECK_EQ_INT(judge(p, &unlisted, NULL), 1);
	CHECK_EQ_INT(judge(p, &v4, NULL), 1); /* no IPv6 source: not in the list */
	unlisted.d.sport = 54;
	CHECK_EQ_INT(judge(p, &unlisted, NULL), 0);
	ts_policy_free(p);
}

static void test_mac_iface_flags_icmp(void)
{
	char err[512];
	struct ts_policy *p = parse("drop mac 02:00:00:00:00:01\n"
	                            "pass on wlan0 tcp flags S/SA\n"
	                            "reject on ! wlan0 icmp icmp-type 8 code 0\n"
	                            "pass icmp6 icmp-type { 128, 129 }\n",
	                            err, sizeof(err));
	CHECK(p != NULL);
	if (!p)
		return;
	struct pkt syn = ip_packet("192.0.2.1", "198.51.100.1", 6, 1, 80);
	syn.iface = "wlan0";
	CHECK_EQ_INT(judge(p, &syn, NULL), 2);
	syn.d.has_mac = true;
	syn.d.src_mac[0] = 2;
	syn.d.src_mac[5] = 1;
	CHECK_EQ_INT(judge(p, &syn, NULL), 1);
	syn.d.src_mac[5] = 2;
	CHECK_EQ_INT(judge(p, &syn, NULL), 2);
	syn.d.tcp_flags = TS_TCP_SYN | TS_TCP_ACK;
	CHECK_EQ_INT(judge(p, &syn, NULL), 0);
	syn.d.tcp_flags = TS_TCP_SYN;
	syn.iface = NULL; /* unknown interface: no 'on' match, negated or not */
	CHECK_EQ_INT(judge(p, &syn, NULL), 0);
	struct pkt echo = ip_packet("192.0.2.1", "198.51.100.1", 1, 0, 0);
	echo.d.icmp_type = 8;
	echo.iface = "eth0";
	CHECK_EQ_INT(judge(p, &echo, NULL), 3);
	echo.iface = "wlan0";
	CHECK_EQ_INT(judge(p, &echo, NULL), 0);
	struct pkt echo6 = ip_packet("2001:db8::1", "2001:db8::2", 58, 0, 0);
	echo6.d.icmp_type = 129;
	CHECK_EQ_INT(judge(p, &echo6, NULL), 4);
	echo6.d.has_l4_header = false;
	CHECK_EQ_INT(judge(p, &echo6, NULL), 0);
	ts_policy_free(p);
}

static void test_bpf_on_real_bytes(void)
{
	char err[512];
	struct ts_policy *p =
	        parse("pass tcp bpf \"tcp dst port 8080\"\ndrop all\n", err, sizeof(err));
	CHECK(p != NULL);
	if (!p)
		return;
	/* Ethernet + IPv4 + TCP to port 8080: bpf runs from the IP header. */
	uint8_t frame[54] = {
	        [12] = 0x08, [13] = 0x00, [14] = 0x45, [16] = 0,    [17] = 40,   [22] = 64,
	        [23] = 6,    [26] = 192,  [27] = 0,    [28] = 2,    [29] = 1,    [30] = 198,
	        [31] = 51,   [32] = 100,  [33] = 1,    [34] = 0x9c, [35] = 0x40, [36] = 0x1f,
	        [37] = 0x90, [46] = 0x50, [47] = 0x02};
	struct ts_decoded d;
	CHECK_EQ_INT(ts_decode(TS_LINK_ETHERNET, frame, sizeof(frame), sizeof(frame), &d),
	             TS_ANOM_NONE);
	struct ts_match_input in = {.dec = &d, .frame = frame, .caplen = 54, .wirelen = 54};
	struct ts_judgement j;
	ts_policy_judge(p, &in, &j);
	CHECK_EQ_INT(j.line, 1);
	frame[37] = 0x91; /* port 8081 */
	ts_decode(TS_LINK_ETHERNET, frame, sizeof(frame), sizeof(frame), &d);
	ts_policy_judge(p, &in, &j);
	CHECK_EQ_INT(j.line, 2);
	CHECK_EQ_INT(ts_policy_match_linear(p, &in), 1);
	ts_policy_free(p);
}

static void test_crlf_and_continuations(void)
{
	char err[512];
	struct ts_policy *p =
	        parse("pass tcp \\\r\n  to port 80\r\ndrop all\r\n", err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_INT(p->rule_count, 2);
		CHECK_EQ_INT(p->rules[1].line, 3);
	} else {
		printf("  %s\n", err);
	}
	ts_policy_free(p);
}

static void test_settings_and_lists(void)
{
	char err[512];
	struct ts_policy *p = parse("set max-rules 3\nset classifier-memory 2M\n"
	                            "list a = 192.0.2.0/24\n"
	                            "list b = { $a, 198.51.100.0/24 }\n"
	                            "drop from $b \\\n  to port { 1,\n 2 }\n",
	                            err, sizeof(err));
	CHECK(p != NULL);
	if (!p) {
		printf("  %s\n", err);
		return;
	}
	CHECK_EQ_INT(p->limits.max_rules, 3);
	CHECK_EQ_INT(p->limits.classifier_memory, 2u << 20);
	CHECK_EQ_INT(p->rule_count, 1);
	CHECK_EQ_INT(p->rules[0].src.count, 2);
	CHECK_EQ_INT(p->rules[0].dport.count, 2);
	CHECK_EQ_INT(p->rules[0].line, 5);
	ts_policy_free(p);

	p = parse("set max-flows 10\nset timeout udp 5\nset timeout tcp-established 7200\n"
	          "drop all\n",
	          err, sizeof(err));
	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_EQ_INT(p->limits.flows.max_flows, 10);
	CHECK_EQ_INT(p->limits.flows.timeout[TS_FLOW_UDP], 5);
	CHECK_EQ_INT(p->limits.flows.timeout[TS_FLOW_TCP_ESTABLISHED], 7200);
	CHECK_EQ_INT(p->limits.flows.timeout[TS_FLOW_TCP_OPENING], 30);
	ts_policy_free(p);
	p = parse("set stream-buffer 512K\nset stream-memory 8M\nset stream-history 16K\n", err,
	          sizeof(err));
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_INT(p->limits.streams.dir_buffer, 512 * 1024);
		CHECK_EQ_INT(p->limits.streams.total_buffer, 8 * 1024 * 1024);
		CHECK_EQ_INT(p->limits.streams.history, 16 * 1024);
		ts_policy_free(p);
	}
	p = parse("set defrag-datagrams 64\nset defrag-memory 256K\nset defrag-timeout 5\n"
	          "set defrag-overlap drop\n",
	          err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_INT(p->limits.defrag.max_datagrams, 64);
		CHECK_EQ_INT(p->limits.defrag.memory, 256 * 1024);
		CHECK_EQ_INT(p->limits.defrag.timeout, 5);
		CHECK_EQ_INT(p->limits.defrag.ipv4_overlap, TS_DEFRAG_DROP);
		ts_policy_free(p);
	}
	p = parse("drop all\n", err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_INT(p->limits.defrag.max_datagrams, 1024);
		CHECK_EQ_INT(p->limits.defrag.memory, 4 * 1024 * 1024);
		CHECK_EQ_INT(p->limits.defrag.timeout, 30);
		CHECK_EQ_INT(p->limits.defrag.ipv4_overlap, TS_DEFRAG_FIRST);
		ts_policy_free(p);
	}
	p = parse("set interface wlan0-1\nset queue 2-3\nset queue-length 64\nset queue-buffer 1M\n"
	          "set mark-mask 0xf0\nset mark pass 5\nset mark divert 6\nset mark dns 7\n"
	          "set mark reset 8\nset divert-port 1234\nset dns-port 5353\n"
	          "set route-table 7\nset reject-rate 10\nset fast-path off\n",
	          err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		const struct ts_gateway_config *g = &p->gateway;
		CHECK_EQ_STR(g->iface, "wlan0-1");
		CHECK_EQ_INT(g->queue_first, 2);
		CHECK_EQ_INT(g->queue_last, 3);
		CHECK_EQ_INT(g->queue_length, 64);
		CHECK_EQ_INT(g->queue_buffer, 1 << 20);
		CHECK_EQ_INT(ts_gateway_mark(g, TS_MARK_PASS), 0x50);
		CHECK_EQ_INT(ts_gateway_mark(g, TS_MARK_RESET), 0x80);
		CHECK_EQ_INT(g->divert_port, 1234);
		CHECK_EQ_INT(g->dns_port, 5353);
		CHECK_EQ_INT(g->route_table, 7);
		CHECK_EQ_INT(g->reject_rate, 10);
		CHECK(!g->fast_path);
		ts_policy_free(p);
	}
	p = parse(
	        "set relay off\nset tor-socks 127.0.0.1:9050 \"[::1]:9060\" 10.0.0.1:1\n"
	        "set isolation ip port epoch 600\nset pending-syns 9\nset pending-syns-per-client "
	        "3\n"
	        "set syn-timeout 20\nset relay-connections 99\nset relay-connections-per-client 7\n"
	        "set relay-idle 60\nset relay-buffer 128K\nset tor-retry 2\n",
	        err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		const struct ts_relay_config *r = &p->gateway.relay;
		CHECK(!r->enabled);
		CHECK_EQ_INT(r->tor_count, 3);
		CHECK_EQ_INT(r->tor[0].family, 4);
		CHECK_EQ_INT(r->tor[0].port, 9050);
		CHECK_EQ_INT(r->tor[1].family, 6);
		CHECK_EQ_INT(r->tor[1].addr[15], 1);
		CHECK_EQ_INT(r->tor[1].port, 9060);
		CHECK_EQ_INT(r->tor[2].addr[0], 10);
		CHECK_EQ_INT(r->isolation, TS_ISOLATE_IP);
		CHECK(r->isolate_port);
		CHECK_EQ_INT(r->isolate_epoch, 600);
		CHECK_EQ_INT(r->pending_syns, 9);
		CHECK_EQ_INT(r->pending_per_client, 3);
		CHECK_EQ_INT(r->syn_timeout, 20);
		CHECK_EQ_INT(r->connections, 99);
		CHECK_EQ_INT(r->connections_per_client, 7);
		CHECK_EQ_INT(r->idle_timeout, 60);
		CHECK_EQ_INT(r->buffer, 128 * 1024);
		CHECK_EQ_INT(r->tor_retry, 2);
		ts_policy_free(p);
	}
	p = parse("set dns-service off\nset tor-dns 127.0.0.1:5353\nset dns-automap on\n"
	          "set dns-virtual 100.64.0.0/10 fd00:1:2::/48\nset dns-map 10\nset dns-map-idle "
	          "120\n"
	          "set dns-cache 0\nset dns-ttl-min 5\nset dns-ttl-max 50\nset dns-pending 7\n"
	          "set dns-timeout 3\nset dns-tcp-connections 4\nset dns-block-answer 0.0.0.0 ::1\n"
	          "dns-block { Ads.Example, b.test }\ndns-block ads.example\nlist l = { c.test }\n"
	          "dns-block $l\n",
	          err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		const struct ts_dns_config *d = &p->gateway.dns;
		CHECK(!d->enabled);
		CHECK(d->use_dnsport);
		CHECK_EQ_INT(d->dnsport.port, 5353);
		CHECK(d->automap);
		CHECK_EQ_INT(d->virtual4.addr[0], 100);
		CHECK_EQ_INT(d->virtual4.len, 10);
		CHECK_EQ_INT(d->virtual6.len, 48);
		CHECK_EQ_INT(d->map_size, 10);
		CHECK_EQ_INT(d->map_idle, 120);
		CHECK_EQ_INT(d->cache_size, 0);
		CHECK_EQ_INT(d->ttl_min, 5);
		CHECK_EQ_INT(d->ttl_max, 50);
		CHECK_EQ_INT(d->pending, 7);
		CHECK_EQ_INT(d->timeout, 3);
		CHECK_EQ_INT(d->tcp_connections, 4);
		CHECK(d->block_sinkhole && d->has_sinkhole4 && d->has_sinkhole6);
		CHECK_EQ_INT(d->sinkhole6[15], 1);
		/* lower case, sorted, once each */
		CHECK_EQ_INT(p->dns_block_count, 3);
		CHECK_EQ_STR(p->dns_block[0], "ads.example");
		CHECK(ts_policy_name_blocked(p, "ads.example"));
		CHECK(ts_policy_name_blocked(p, "x.y.ads.example"));
		CHECK(ts_policy_name_blocked(p, "c.test"));
		CHECK(!ts_policy_name_blocked(p, "bads.example"));
		CHECK(!ts_policy_name_blocked(p, "example"));
		CHECK(!ts_policy_name_blocked(p, "test"));
		ts_policy_free(p);
	}
	p = parse("drop all\n", err, sizeof(err));
	if (p) {
		CHECK(p->gateway.dns.enabled);
		CHECK(!p->gateway.dns.use_dnsport);
		CHECK_EQ_INT(p->gateway.dns.virtual4.addr[1], 192);
		CHECK(!ts_policy_name_blocked(p, "anything.example"));
		ts_policy_free(p);
	}
	p = parse("drop all\n", err, sizeof(err));
	if (p) {
		const struct ts_relay_config *r = &p->gateway.relay;
		CHECK(r->enabled);
		CHECK_EQ_INT(r->tor_count, 1);
		CHECK_EQ_INT(r->tor[0].port, 9050);
		CHECK_EQ_INT(r->isolation, TS_ISOLATE_MAC);
		CHECK_EQ_STR(p->gateway.iface, "br-lan");
		CHECK_EQ_INT(ts_gateway_mark(&p->gateway, TS_MARK_DIVERT), 0x200);
		CHECK(p->gateway.fast_path);
		ts_policy_free(p);
	}
	static const struct {
		const char *text, *err;
	} bad[] = {
	        {"set mark-mask 0xf0\nset mark dns 16\n",
	         "t.conf:2:5: expected mark dns (16) to fit under mark-mask 0xf0, found it does "
	         "not"},
	        {"set mark divert 1\n",
	         "t.conf:1:5: expected distinct marks, found pass and divert both 1"},
	        {"set queue 3-1\n", "t.conf:1:11: expected a queue number or range such as 0 or "
	                            "0-1 (0 to 65535, at most 64 queues), found '3-1'"},
	        {"set mark drop 9\n",
	         "t.conf:1:10: expected a mark name (pass, divert, dns, reset), found 'drop'"},
	        {"set fast-path maybe\n", "t.conf:1:15: expected on or off, found 'maybe'"},
	        {"set tor-socks 127.0.0.1\n",
	         "t.conf:1:15: expected a Tor SOCKS port such as 127.0.0.1:9050 or \"[::1]:9050\", "
	         "found '127.0.0.1'"},
	        {"set tor-socks ::1:9050\n",
	         "t.conf:1:15: expected a Tor SOCKS port such as 127.0.0.1:9050 or \"[::1]:9050\", "
	         "found '::1:9050'"},
	        {"set tor-socks 127.0.0.1:9050 127.0.0.1:9050\n",
	         "t.conf:1:30: expected distinct Tor SOCKS ports, found '127.0.0.1:9050'"},
	        {"set tor-socks 1.1.1.1:1 1.1.1.1:2 1.1.1.1:3 1.1.1.1:4 1.1.1.1:5 1.1.1.1:6 "
	         "1.1.1.1:7 1.1.1.1:8 1.1.1.1:9\n",
	         "t.conf:1:95: expected at most 8 Tor SOCKS ports, found '1.1.1.1:9'"},
	        {"set isolation none port\n",
	         "t.conf:1:20: expected end of line (isolation none takes no port or epoch), found "
	         "'port'"},
	        {"set isolation mac epoch 5\n",
	         "t.conf:1:25: expected an epoch in seconds from 60 to 604800, found '5'"},
	        {"set relay-buffer 2M\n",
	         "t.conf:1:18: expected a size from 4K to 1M such as 64K, found '2M'"},
	        {"dns-block { bad..name }\n",
	         "t.conf:1:13: expected a DNS name such as ads.example, found 'bad..name'"},
	        {"set dns-virtual 10.0.0.0/31\n",
	         "t.conf:1:17: expected an IPv4 prefix from /8 to /30, found '10.0.0.0/31'"},
	        {"set dns-virtual 10.0.0.0/8 10.1.0.0/16\n",
	         "t.conf:1:28: expected one prefix per family, found '10.1.0.0/16'"},
	        {"set dns-block-answer 0.0.0.0 0.0.0.1\n",
	         "t.conf:1:30: expected nxdomain, or one sinkhole address per family such as "
	         "0.0.0.0 "
	         "::, found '0.0.0.1'"},
	        {"set tor-dns 127.0.0.1\n",
	         "t.conf:1:13: expected off, or Tor's DNSPort such as 127.0.0.1:5353, found "
	         "'127.0.0.1'"},
	        {"set dns-ttl-min 10\nset dns-ttl-max 5\n",
	         "t.conf:3:1: expected dns-ttl-min (10) at most dns-ttl-max (5), found more"},
	        {"set pending-syns 0\n",
	         "t.conf:1:18: expected a number of SYNs from 1 to 65536, found '0'"},
	        {"set interface this-name-is-far-too-long\n",
	         "t.conf:1:15: expected an interface name (at most 15 characters), found "
	         "'this-name-is-far-too-long'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = parse(bad[i].text, err, sizeof(err));
		CHECK(p == NULL);
		CHECK_EQ_STR(err, bad[i].err);
		ts_policy_free(p);
	}
	p = parse("set stream-memory 3G\n", err, sizeof(err));
	CHECK(p == NULL);
	CHECK_EQ_STR(err,
	             "t.conf:1:19: expected a size such as 1M (K, M or G; at most 2G), found '3G'");
	p = parse("set timeout tcp 5\n", err, sizeof(err));
	CHECK(p == NULL);
	CHECK_EQ_STR(err, "t.conf:1:13: expected a flow class (tcp-opening, tcp-established, "
	                  "tcp-closing, udp, other), found 'tcp'");
	p = parse("set max-flows 0\n", err, sizeof(err));
	CHECK(p == NULL);
	CHECK_EQ_STR(err, "t.conf:1:15: expected a number of flows from 1 to 16777216, found '0'");
}

int main(void)
{
	RUN(test_errors_name_the_place);
	RUN(test_bpf_errors_carry_libpcap_reason);
	RUN(test_classifier_memory_cap);
	RUN(test_binary_and_huge_input);
	RUN(test_format_round_trip);
	RUN(test_default_policy);
	RUN(test_negation_and_missing_fields);
	RUN(test_mac_iface_flags_icmp);
	RUN(test_bpf_on_real_bytes);
	RUN(test_settings_and_lists);
	RUN(test_crlf_and_continuations);
	return check_exit_code();
}
