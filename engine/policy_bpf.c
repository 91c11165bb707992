/*
 * The bpf escape hatch: a libpcap filter expression, compiled once for raw
 * IP (DLT_RAW) and run over the packet from its IP header. So one
 * expression means the same whatever the capture's link type, and the same
 * inline (NFQUEUE hands over IP packets); link-layer filters (ether, vlan)
 * are not available there, which the native matches cover.
 */
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

int ts_bpf_compile(struct ts_rule *r, char *err, size_t errlen)
{
	pcap_t *dead = pcap_open_dead(DLT_RAW, 65535);
	if (!dead) {
		snprintf(err, errlen, "libpcap could not be initialised");
		return -1;
	}
	struct bpf_program *prog = calloc(1, sizeof(*prog));
	if (!prog) {
		pcap_close(dead);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pcap_compile(dead, prog, r->bpf_expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s", pcap_geterr(dead));
		free(prog);
		pcap_close(dead);
		return -1;
	}
	pcap_close(dead);
	r->bpf_prog = prog;
	return 0;
}

void ts_bpf_free(struct ts_rule *r)
{
	if (r->bpf_prog) {
		pcap_freecode(r->bpf_prog);
		free(r->bpf_prog);
		r->bpf_prog = NULL;
	}
}

bool ts_bpf_match(const struct ts_rule *r, const struct ts_match_input *in)
{
	const struct ts_decoded *d = in->dec;
	if (!r->bpf_prog || !in->frame || (d->l3 != TS_L3_IPV4 && d->l3 != TS_L3_IPV6) ||
	    d->l3_offset > in->caplen)
		return false;
	const struct bpf_program *prog = r->bpf_prog;
	uint32_t wire = in->wirelen > in->caplen ? in->wirelen : in->caplen;
	return bpf_filter(prog->bf_insns, in->frame + d->l3_offset, wire - d->l3_offset,
	                  in->caplen - d->l3_offset) != 0;
}
