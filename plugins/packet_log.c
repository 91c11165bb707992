/* Per-packet log: one line per packet, human or JSON (one object per line). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <sys/socket.h>

#include "torsieve/output.h"

void ts_format_addr(const struct ts_decoded *d, const uint8_t *addr, char *buf, size_t len)
{
	int family = d->l3 == TS_L3_IPV6 ? AF_INET6 : AF_INET;
	if (!inet_ntop(family, addr, buf, (socklen_t)len) && len)
		buf[0] = '\0';
}

static bool has_addresses(const struct ts_decoded *d)
{
	return d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6;
}

static void json_defrag(FILE *out, const struct ts_defrag_outcome *o)
{
	fprintf(out, ",\"defrag\":{\"fate\":\"%s\",\"fragments\":%" PRIu32,
	        ts_defrag_fate_name(o->fate), o->fragments);
	if (o->datagram) {
		fprintf(out, ",\"len\":%" PRIu32, o->len);
		if (o->datagram->has_ports)
			fprintf(out, ",\"sport\":%u,\"dport\":%u", o->datagram->sport,
			        o->datagram->dport);
		if (o->datagram->anomaly != TS_ANOM_NONE)
			fprintf(out, ",\"anomaly\":\"%s\"", ts_anomaly_name(o->datagram->anomaly));
	}
	fputc('}', out);
}

static void json_packet(FILE *out, const struct ts_packet_event *ev)
{
	const struct ts_packet *pkt = ev->pkt;
	const struct ts_decoded *d = ev->dec;
	const struct ts_judgement *j = ev->judgement;
	fprintf(out,
	        "{\"n\":%" PRIu64 ",\"ts\":%" PRId64 ".%06" PRIu32 ",\"len\":%" PRIu32
	        ",\"caplen\":%" PRIu32,
	        pkt->index, pkt->ts_sec, pkt->ts_usec, pkt->len, pkt->caplen);
	if (has_addresses(d)) {
		char src[64], dst[64];
		ts_format_addr(d, d->src_addr, src, sizeof(src));
		ts_format_addr(d, d->dst_addr, dst, sizeof(dst));
		fprintf(out, ",\"l3\":\"%s\",\"src\":\"%s\",\"dst\":\"%s\"", ts_l3_name(d->l3), src,
		        dst);
		const char *name = ts_ip_proto_name(d->ip_proto);
		if (name)
			fprintf(out, ",\"proto\":\"%s\"", name);
		else
			fprintf(out, ",\"proto\":%u", d->ip_proto);
	} else {
		fputs(",\"l3\":null,\"src\":null,\"dst\":null,\"proto\":null", out);
	}
	if (d->has_ports)
		fprintf(out, ",\"sport\":%u,\"dport\":%u", d->sport, d->dport);
	if (d->is_fragment)
		fprintf(out, ",\"frag\":{\"offset\":%" PRIu32 ",\"more\":%s}", d->frag_offset,
		        d->frag_more ? "true" : "false");
	fputs(",\"vlan\":[", out);
	for (unsigned i = 0; i < d->vlan_count; i++)
		fprintf(out, "%s%u", i ? "," : "", d->vlan_ids[i]);
	fputc(']', out);
	if (d->ipv6_ext_count) {
		fputs(",\"ipv6_ext\":[", out);
		for (unsigned i = 0; i < d->ipv6_ext_count; i++)
			fprintf(out, "%s%u", i ? "," : "", d->ipv6_ext[i]);
		fputc(']', out);
	}
	if (d->l4 == TS_L4_TCP && d->has_l4_header) {
		char flags[9];
		ts_tcp_flags_str(d->tcp_flags, flags);
		fprintf(out, ",\"tcp_flags\":\"%s\"", flags);
	}
	if ((d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) && d->has_l4_header)
		fprintf(out, ",\"icmp_type\":%u,\"icmp_code\":%u", d->icmp_type, d->icmp_code);
	if (d->anomaly != TS_ANOM_NONE)
		fprintf(out, ",\"anomaly\":\"%s\"", ts_anomaly_name(d->anomaly));
	if (j)
		fprintf(out, ",\"verdict\":\"%s\",\"rule\":%" PRIu32, ts_verdict_name(j->verdict),
		        j->line);
	if (ev->flow)
		fprintf(out, ",\"flow\":%" PRIu64, ev->flow->id);
	if (ev->defrag)
		json_defrag(out, ev->defrag);
	fputs("}\n", out);
}

static void human_endpoint(FILE *out, const struct ts_decoded *d, const uint8_t *addr,
                           uint16_t port)
{
	char buf[64];
	ts_format_addr(d, addr, buf, sizeof(buf));
	if (!d->has_ports)
		fputs(buf, out);
	else if (d->l3 == TS_L3_IPV6)
		fprintf(out, "[%s]:%u", buf, port);
	else
		fprintf(out, "%s:%u", buf, port);
}

static void human_packet(FILE *out, const struct ts_packet_event *ev)
{
	const struct ts_packet *pkt = ev->pkt;
	const struct ts_decoded *d = ev->dec;
	const struct ts_judgement *j = ev->judgement;
	fprintf(out, "%" PRIu64 " %" PRId64 ".%06" PRIu32 " ", pkt->index, pkt->ts_sec,
	        pkt->ts_usec);
	if (has_addresses(d)) {
		fprintf(out, "%s ", ts_l3_name(d->l3));
		human_endpoint(out, d, d->src_addr, d->sport);
		fputs(" > ", out);
		human_endpoint(out, d, d->dst_addr, d->dport);
		const char *name = ts_ip_proto_name(d->ip_proto);
		if (name)
			fprintf(out, " %s", name);
		else
			fprintf(out, " proto-%u", d->ip_proto);
	} else {
		fprintf(out, "%s ethertype 0x%04x", ts_l3_name(d->l3), d->ethertype);
	}
	if (d->l4 == TS_L4_TCP && d->has_l4_header) {
		char flags[9];
		ts_tcp_flags_str(d->tcp_flags, flags);
		fprintf(out, " [%s]", flags);
	}
	if ((d->l4 == TS_L4_ICMP || d->l4 == TS_L4_ICMP6) && d->has_l4_header)
		fprintf(out, " type %u code %u", d->icmp_type, d->icmp_code);
	if (d->is_fragment)
		fprintf(out, " frag %" PRIu32 "%s", d->frag_offset, d->frag_more ? "+" : "");
	for (unsigned i = 0; i < d->vlan_count; i++)
		fprintf(out, "%s%u", i ? "," : " vlan ", d->vlan_ids[i]);
	fprintf(out, " len %" PRIu32, pkt->len);
	if (pkt->caplen < pkt->len)
		fprintf(out, " (captured %" PRIu32 ")", pkt->caplen);
	if (d->anomaly != TS_ANOM_NONE)
		fprintf(out, " ANOMALY %s", ts_anomaly_name(d->anomaly));
	const struct ts_defrag_outcome *o = ev->defrag;
	if (o && o->datagram)
		fprintf(out, " [datagram of %" PRIu32 " fragments, %" PRIu32 " bytes]",
		        o->fragments, o->len);
	if (o && !ev->flow)
		fprintf(out, " -> %s (fragment %s%s%s)", ts_verdict_name(j->verdict),
		        o->datagram ? "of a malformed datagram: " : "not reassembled: ",
		        o->datagram ? ts_anomaly_name(o->datagram->anomaly) : "",
		        o->datagram ? "" : ts_defrag_fate_name(o->fate));
	else if (j && j->line)
		fprintf(out, " -> %s (line %" PRIu32 ")", ts_verdict_name(j->verdict), j->line);
	else if (j)
		fprintf(out, " -> %s (%s)", ts_verdict_name(j->verdict),
		        d->anomaly != TS_ANOM_NONE ? "malformed" : "no rule matched");
	fputc('\n', out);
}

static void packet_log_on_packet(void *ctx, const struct ts_packet_event *ev)
{
	const struct ts_output_opts *o = ctx;
	if (o->json)
		json_packet(o->out, ev);
	else
		human_packet(o->out, ev);
}

void ts_packet_log_plugin(struct ts_plugin *p, struct ts_output_opts *opts)
{
	*p = (struct ts_plugin){
	        .name = "packet-log",
	        .ctx = opts,
	        .on_packet = packet_log_on_packet,
	};
}
