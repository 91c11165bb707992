/*
 * torsieve rules: the gateway's firewall as a shell script, for IPv4 and
 * IPv6. `--apply` and `--remove` run it (through sh -e); both are
 * idempotent: torsieve's rules live in its own chains, which apply flushes
 * and refills, with one jump from each built-in chain, added only when
 * missing. `--nft` prints an nftables ruleset instead.
 *
 * The shape (docs/deployment.md explains each line):
 *   raw PREROUTING     every packet from the client interface to NFQUEUE,
 *                      without --queue-bypass: no torsieve, no traffic
 *   mangle PREROUTING  conntrack INVALID dropped; divert and dns marks to
 *                      the TPROXY listeners
 *   policy routing     packets with torsieve's marks delivered locally
 *   filter INPUT       reject marks answered by REJECT; pass, divert and dns
 *                      marks accepted; everything else from clients dropped
 *   filter FORWARD     everything from or to the client interface dropped
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "torsieve/commands.h"
#include "torsieve/policy.h"

static const char rules_usage[] =
        "usage: torsieve rules [-c POLICY] [--apply | --remove] [--nft]\n"
        "  Print the gateway's firewall (iptables-legacy and ip6tables-legacy, policy\n"
        "  routing for TPROXY) for the settings in POLICY (default " TS_POLICY_PATH ")\n"
        "  as a shell script. --apply runs it, --remove takes every part of it away;\n"
        "  both can be repeated safely. --nft prints an nftables ruleset instead (for\n"
        "  kernels with nft queue support, such as OpenWrt's firewall4; untested here).\n";

struct family {
	const char *ipt; /* iptables-legacy or ip6tables-legacy */
	const char *ip;  /* ip or ip -6 */
	const char *any; /* 0.0.0.0/0 or ::/0 */
};

static const struct family families[2] = {
        {"iptables-legacy", "ip", "0.0.0.0/0"},
        {"ip6tables-legacy", "ip -6", "::/0"},
};

/* torsieve's chains: table, built-in chain, own chain. */
static const char *const chains[4][3] = {
        {"raw", "PREROUTING", "torsieve-queue"},
        {"mangle", "PREROUTING", "torsieve-tproxy"},
        {"filter", "INPUT", "torsieve-input"},
        {"filter", "FORWARD", "torsieve-forward"},
};

struct marks {
	uint32_t mask;
	uint32_t v[TS_MARK_COUNT];
};

static void queue_target(FILE *out, const struct ts_gateway_config *g)
{
	if (g->queue_first == g->queue_last)
		fprintf(out, "NFQUEUE --queue-num %u", g->queue_first);
	else
		fprintf(out, "NFQUEUE --queue-balance %u:%u", g->queue_first, g->queue_last);
}

static void apply_script(FILE *out, const struct ts_gateway_config *g, const struct marks *m)
{
	const char *ifc = g->iface;
	fprintf(out,
	        "#!/bin/sh -e\n"
	        "# torsieve gateway firewall: client interface %s, queue %u-%u, marks under "
	        "0x%" PRIx32 ".\n"
	        "# Made by `torsieve rules`; `torsieve rules --remove` takes it away.\n"
	        "# Each table's chains are replaced in one commit (restore --noflush), so a\n"
	        "# second apply never leaves a moment without the rules.\n",
	        ifc, g->queue_first, g->queue_last, m->mask);
	/* Nothing is changed unless every tool is there: half a firewall
	 * (IPv4 without IPv6) would forward the other family. */
	fprintf(out, "for tool in iptables-legacy-restore ip6tables-legacy-restore iptables-legacy "
	             "ip6tables-legacy ip; do\n"
	             "\tcommand -v $tool >/dev/null || { echo \"torsieve rules: $tool is missing "
	             "(Debian: iptables, iproute2); nothing was changed\" >&2; exit 1; }\n"
	             "done\n");
	for (int f = 0; f < 2; f++) {
		const struct family *fam = &families[f];
		const char *t = fam->ipt;
		fprintf(out, "\n# ---- %s ----\n%s-restore -w --noflush <<'EOF'\n",
		        f ? "IPv6" : "IPv4", t);
		/* Every client packet is judged; without torsieve the kernel
		 * drops it (no --queue-bypass). */
		fprintf(out, "*raw\n:torsieve-queue - [0:0]\n");
		/* A client packet whose source would not be routed back to the
		 * client side is forged: it is dropped before anything answers it
		 * (a reset or an ICMP error would go to the forged address). */
		fprintf(out, "-A torsieve-queue -i %s -m rpfilter --invert -j DROP\n", ifc);
		/* The fast path: a packet of a connection torsieve's transparent
		 * listener already accepted (so judged divert) skips the queue;
		 * no client can make such a socket exist. */
		if (g->fast_path)
			fprintf(out,
			        "-A torsieve-queue -i %s -p tcp -m socket --transparent -j "
			        "ACCEPT\n",
			        ifc);
		fprintf(out, "-A torsieve-queue -i %s -j ", ifc);
		queue_target(out, g);
		fprintf(out,
		        "\nCOMMIT\n*mangle\n:torsieve-tproxy - [0:0]\n"
		        "-A torsieve-tproxy -i %s -m conntrack --ctstate INVALID -j DROP\n",
		        ifc);
		/* Fast-path packets carry no mark from a verdict: give them the
		 * divert mark, which delivers them locally to their socket. */
		if (g->fast_path)
			fprintf(out,
			        "-A torsieve-tproxy -i %s -p tcp -m socket --transparent -j MARK "
			        "--set-xmark 0x%" PRIx32 "/0x%" PRIx32 "\n"
			        "-A torsieve-tproxy -i %s -p tcp -m socket --transparent -j "
			        "ACCEPT\n",
			        ifc, m->v[TS_MARK_DIVERT], m->mask, ifc);
		fprintf(out,
		        "-A torsieve-tproxy -i %s -p tcp -m mark --mark 0x%" PRIx32 "/0x%" PRIx32
		        " -j TPROXY --on-port %u --tproxy-mark 0x%" PRIx32 "/0x%" PRIx32 "\n",
		        ifc, m->v[TS_MARK_DIVERT], m->mask, g->divert_port, m->v[TS_MARK_DIVERT],
		        m->mask);
		for (int p = 0; p < 2; p++)
			fprintf(out,
			        "-A torsieve-tproxy -i %s -p %s -m mark --mark 0x%" PRIx32
			        "/0x%" PRIx32 " -j TPROXY --on-port %u --tproxy-mark 0x%" PRIx32
			        "/0x%" PRIx32 "\n",
			        ifc, p ? "tcp" : "udp", m->v[TS_MARK_DNS], m->mask, g->dns_port,
			        m->v[TS_MARK_DNS], m->mask);
		fprintf(out,
		        "COMMIT\n*filter\n:torsieve-input - [0:0]\n:torsieve-forward - [0:0]\n");
		fprintf(out,
		        "-A torsieve-input -i %s -p tcp -m mark --mark 0x%" PRIx32 "/0x%" PRIx32
		        " -j REJECT --reject-with tcp-reset\n",
		        ifc, m->v[TS_MARK_RESET], m->mask);
		/* A reset asked for a packet that is not TCP cannot be sent. */
		fprintf(out,
		        "-A torsieve-input -i %s -m mark --mark 0x%" PRIx32 "/0x%" PRIx32
		        " -j DROP\n",
		        ifc, m->v[TS_MARK_RESET], m->mask);
		static const enum ts_mark_kind accepted[] = {TS_MARK_PASS, TS_MARK_DIVERT,
		                                             TS_MARK_DNS};
		for (int a = 0; a < 3; a++)
			fprintf(out,
			        "-A torsieve-input -i %s -m mark --mark 0x%" PRIx32 "/0x%" PRIx32
			        " -j ACCEPT\n",
			        ifc, m->v[accepted[a]], m->mask);
		fprintf(out,
		        "-A torsieve-input -i %s -j DROP\n"
		        "-A torsieve-forward -i %s -j DROP\n"
		        "-A torsieve-forward -o %s -j DROP\n"
		        "COMMIT\nEOF\n",
		        ifc, ifc, ifc);
		for (int c = 0; c < 4; c++)
			fprintf(out,
			        "%s -w -t %s -C %s -j %s 2>/dev/null || %s -w -t %s -I %s 1 -j "
			        "%s\n",
			        t, chains[c][0], chains[c][1], chains[c][2], t, chains[c][0],
			        chains[c][1], chains[c][2]);
		/* Marked packets are delivered locally: to the TPROXY listeners, and
		 * to INPUT where REJECT answers them. */
		for (int k = TS_MARK_DIVERT; k < TS_MARK_COUNT; k++) {
			/* `ip rule show` leaves out a full mask */
			char shown[16] = "";
			if (m->mask != 0xffffffffu)
				snprintf(shown, sizeof(shown), "/0x%" PRIx32, m->mask);
			fprintf(out,
			        "%s rule show | grep -q 'fwmark 0x%" PRIx32 "%s lookup %" PRIu32
			        "$' || %s rule add fwmark 0x%" PRIx32 "/0x%" PRIx32
			        " lookup %" PRIu32 "\n",
			        fam->ip, m->v[k], shown, g->route_table, fam->ip, m->v[k], m->mask,
			        g->route_table);
		}
		fprintf(out, "%s route replace local %s dev lo table %" PRIu32 "\n", fam->ip,
		        fam->any, g->route_table);
	}
}

static void remove_script(FILE *out, const struct ts_gateway_config *g, const struct marks *m)
{
	fprintf(out, "#!/bin/sh\n# Takes away what `torsieve rules --apply` made.\n");
	for (int f = 0; f < 2; f++) {
		const struct family *fam = &families[f];
		const char *t = fam->ipt;
		fprintf(out, "\n# ---- %s ----\n", f ? "IPv6" : "IPv4");
		for (int c = 0; c < 4; c++)
			fprintf(out, "while %s -w -t %s -D %s -j %s 2>/dev/null; do :; done\n", t,
			        chains[c][0], chains[c][1], chains[c][2]);
		for (int c = 0; c < 4; c++)
			fprintf(out,
			        "%s -w -t %s -F %s 2>/dev/null || true; %s -w -t %s -X %s "
			        "2>/dev/null || true\n",
			        t, chains[c][0], chains[c][2], t, chains[c][0], chains[c][2]);
		for (int k = TS_MARK_DIVERT; k < TS_MARK_COUNT; k++)
			fprintf(out,
			        "while %s rule del fwmark 0x%" PRIx32 "/0x%" PRIx32
			        " lookup %" PRIu32 " 2>/dev/null; do :; done\n",
			        fam->ip, m->v[k], m->mask, g->route_table);
		fprintf(out, "%s route del local %s dev lo table %" PRIu32 " 2>/dev/null || true\n",
		        fam->ip, fam->any, g->route_table);
	}
	fputs("true\n", out);
}

static void nft_ruleset(FILE *out, const struct ts_gateway_config *g, const struct marks *m)
{
	const char *ifc = g->iface;
	fprintf(out,
	        "#!/usr/sbin/nft -f\n"
	        "# torsieve gateway firewall for nftables (needs the kernel's nft queue\n"
	        "# support; untested on the development machine, which lacks it).\n"
	        "# Policy routing is not nftables: add the `ip rule` and `ip route` lines\n"
	        "# that `torsieve rules` prints.\n"
	        "table inet torsieve\n"
	        "delete table inet torsieve\n"
	        "table inet torsieve {\n"
	        "\tchain queue {\n"
	        "\t\ttype filter hook prerouting priority raw; policy accept;\n"
	        "\t\tiifname \"%s\" fib saddr . iif oif missing drop\n",
	        ifc);
	if (g->fast_path)
		fprintf(out, "\t\tiifname \"%s\" meta l4proto tcp socket transparent 1 accept\n",
		        ifc);
	fprintf(out, "\t\tiifname \"%s\" queue ", ifc);
	if (g->queue_first == g->queue_last)
		fprintf(out, "num %u\n", g->queue_first);
	else
		fprintf(out, "num %u-%u fanout\n", g->queue_first, g->queue_last);
	fprintf(out,
	        "\t}\n"
	        "\tchain tproxy {\n"
	        "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
	        "\t\tiifname \"%s\" ct state invalid drop\n",
	        ifc);
	if (g->fast_path)
		fprintf(out,
		        "\t\tiifname \"%s\" meta l4proto tcp socket transparent 1 meta mark set "
		        "meta "
		        "mark & 0x%" PRIx32 " | 0x%" PRIx32 " accept\n",
		        ifc, ~m->mask, m->v[TS_MARK_DIVERT]);
	const char *fam[2] = {"ip", "ip6"};
	for (int f = 0; f < 2; f++) {
		fprintf(out,
		        "\t\tiifname \"%s\" meta nfproto %s meta l4proto tcp meta mark & 0x%" PRIx32
		        " == 0x%" PRIx32 " tproxy %s to :%u\n",
		        ifc, f ? "ipv6" : "ipv4", m->mask, m->v[TS_MARK_DIVERT], fam[f],
		        g->divert_port);
		fprintf(out,
		        "\t\tiifname \"%s\" meta nfproto %s meta l4proto { tcp, udp } meta mark & "
		        "0x%" PRIx32 " == 0x%" PRIx32 " tproxy %s to :%u\n",
		        ifc, f ? "ipv6" : "ipv4", m->mask, m->v[TS_MARK_DNS], fam[f], g->dns_port);
	}
	fprintf(out, "\t}\n\tchain input {\n"
	             "\t\ttype filter hook input priority filter; policy accept;\n");
	fprintf(out,
	        "\t\tiifname \"%s\" meta mark & 0x%" PRIx32 " == 0x%" PRIx32
	        " meta l4proto tcp reject with tcp reset\n"
	        "\t\tiifname \"%s\" meta mark & 0x%" PRIx32 " == 0x%" PRIx32 " drop\n",
	        ifc, m->mask, m->v[TS_MARK_RESET], ifc, m->mask, m->v[TS_MARK_RESET]);
	static const enum ts_mark_kind accepted[] = {TS_MARK_PASS, TS_MARK_DIVERT, TS_MARK_DNS};
	for (int a = 0; a < 3; a++)
		fprintf(out,
		        "\t\tiifname \"%s\" meta mark & 0x%" PRIx32 " == 0x%" PRIx32 " accept\n",
		        ifc, m->mask, m->v[accepted[a]]);
	fprintf(out,
	        "\t\tiifname \"%s\" drop\n"
	        "\t}\n"
	        "\tchain forward {\n"
	        "\t\ttype filter hook forward priority filter; policy accept;\n"
	        "\t\tiifname \"%s\" drop\n"
	        "\t\toifname \"%s\" drop\n"
	        "\t}\n"
	        "}\n",
	        ifc, ifc, ifc);
}

/* Run a script with sh -e; returns its exit status. */
static int run_script(const char *script)
{
	FILE *sh = popen("/bin/sh -e", "w");
	if (!sh) {
		perror("torsieve rules: /bin/sh");
		return -1;
	}
	fputs(script, sh);
	int status = pclose(sh);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ts_cmd_rules(int argc, char **argv)
{
	const char *path = TS_POLICY_PATH;
	bool apply = false, remove = false, nft = false;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--apply") == 0)
			apply = true;
		else if (strcmp(argv[i], "--remove") == 0)
			remove = true;
		else if (strcmp(argv[i], "--nft") == 0)
			nft = true;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(rules_usage, stdout);
			return TS_EXIT_OK;
		} else {
			fprintf(stderr, "torsieve rules: unexpected '%s'\n%s", argv[i],
			        rules_usage);
			return TS_EXIT_USAGE;
		}
	}
	if (apply && remove) {
		fprintf(stderr, "torsieve rules: --apply and --remove exclude each other\n");
		return TS_EXIT_USAGE;
	}
	if (nft && (apply || remove)) {
		fprintf(stderr, "torsieve rules: --nft only prints; load it with nft -f\n");
		return TS_EXIT_USAGE;
	}
	char err[1024];
	struct ts_policy *p = ts_policy_load(path, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "%s\n", err);
		return TS_EXIT_USAGE;
	}
	struct marks m = {.mask = p->gateway.mark_mask};
	for (int k = 0; k < TS_MARK_COUNT; k++)
		m.v[k] = ts_gateway_mark(&p->gateway, (enum ts_mark_kind)k);

	char *text = NULL;
	size_t len = 0;
	FILE *out = apply || remove ? open_memstream(&text, &len) : stdout;
	if (!out) {
		ts_policy_free(p);
		return TS_EXIT_FAILURE;
	}
	if (nft)
		nft_ruleset(out, &p->gateway, &m);
	else if (remove)
		remove_script(out, &p->gateway, &m);
	else
		apply_script(out, &p->gateway, &m);
	ts_policy_free(p);
	if (out == stdout)
		return fflush(stdout) == 0 ? TS_EXIT_OK : TS_EXIT_FAILURE;
	fclose(out);
	int rc = run_script(text);
	free(text);
	if (rc != 0) {
		fprintf(stderr, "torsieve rules: %s failed (exit %d); see the messages above\n",
		        apply ? "applying the rules" : "removing the rules", rc);
		return TS_EXIT_FAILURE;
	}
	return TS_EXIT_OK;
}
