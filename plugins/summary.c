/* Run summary: totals, per layer, fragments and anomalies, human or JSON. */
#include <inttypes.h>

#include "torsieve/json.h"
#include "torsieve/output.h"

static const enum ts_l3 l3_order[] = {TS_L3_IPV4, TS_L3_IPV6, TS_L3_OTHER, TS_L3_NONE};
static const enum ts_l4 l4_order[] = {TS_L4_TCP,   TS_L4_UDP,   TS_L4_ICMP,
                                      TS_L4_ICMP6, TS_L4_OTHER, TS_L4_NONE};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static void json_summary(FILE *out, const struct ts_run_info *run, const struct ts_stats *s)
{
	fputs("{\"file\":", out);
	ts_json_string(out, run->source_name);
	fprintf(out, ",\"linktype\":");
	ts_json_string(out, run->link_label);
	fprintf(out,
	        ",\"linktype_id\":%d,\"link\":\"%s\",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
	        ",\"captured_bytes\":%" PRIu64 ",\"snapped\":%" PRIu64,
	        run->linktype, ts_link_name(run->link), s->packets, s->bytes, s->captured_bytes,
	        s->snapped);
	fputs(",\"l3\":{", out);
	for (size_t i = 0; i < COUNT_OF(l3_order); i++)
		fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", ts_l3_name(l3_order[i]),
		        s->l3[l3_order[i]]);
	fputs("},\"l4\":{", out);
	for (size_t i = 0; i < COUNT_OF(l4_order); i++)
		fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", ts_l4_name(l4_order[i]),
		        s->l4[l4_order[i]]);
	fprintf(out,
	        "},\"fragments\":%" PRIu64 ",\"vlan_tagged\":%" PRIu64 ",\"anomalous\":%" PRIu64
	        ",\"anomalies\":{",
	        s->fragments, s->vlan_tagged, ts_stats_anomalous(s));
	const char *sep = "";
	for (int a = TS_ANOM_NONE + 1; a < TS_ANOM_COUNT; a++) {
		if (!s->anomalies[a])
			continue;
		fprintf(out, "%s\"%s\":%" PRIu64, sep, ts_anomaly_name((enum ts_anomaly)a),
		        s->anomalies[a]);
		sep = ",";
	}
	fputc('}', out);
	if (run->policy) {
		const struct ts_policy *p = run->policy;
		fputs(",\"policy\":", out);
		ts_json_string(out, p->source);
		fputs(",\"verdicts\":{", out);
		for (int v = 0; v < TS_VERDICT_COUNT; v++)
			fprintf(out, "%s\"%s\":%" PRIu64, v ? "," : "",
			        ts_verdict_name((enum ts_verdict)v), s->verdicts[v]);
		fprintf(out,
		        "},\"default_drops\":%" PRIu64 ",\"defrag_drops\":%" PRIu64 ",\"rules\":[",
		        s->default_drops, s->defrag_drops);
		for (uint32_t i = 0; i < p->rule_count; i++)
			fprintf(out,
			        "%s{\"line\":%" PRIu32 ",\"action\":\"%s\",\"hits\":%" PRIu64 "}",
			        i ? "," : "", p->rules[i].line, ts_verdict_name(p->rules[i].action),
			        s->rule_hits[i]);
		fputc(']', out);
		const struct ts_flow_stats *f = &s->flows;
		fprintf(out,
		        ",\"flows\":{\"total\":%" PRIu64 ",\"tcp\":%" PRIu64 ",\"udp\":%" PRIu64
		        ",\"other\":%" PRIu64 ",\"evicted\":%" PRIu64 ",\"expired\":%" PRIu64
		        ",\"reused\":%" PRIu64 "}",
		        f->total, f->tcp, f->udp, f->other, f->evicted, f->expired, f->reused);
		fprintf(out,
		        ",\"streams\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
		        ",\"gaps\":%" PRIu64 ",\"gap_bytes\":%" PRIu64
		        ",\"inconsistent_overlaps\":%" PRIu64 ",\"unreassembled\":%" PRIu64
		        ",\"cap_hits\":%" PRIu64 ",\"history_skipped\":%" PRIu64 "}",
		        s->streams.count, s->streams.bytes, s->streams.gaps, s->streams.gap_bytes,
		        s->streams.inconsistent, s->streams.unreassembled, s->streams.cap_hits,
		        s->streams.history_skipped);
		const struct ts_defrag_stats *d = &s->defrag;
		fprintf(out,
		        ",\"defrag\":{\"fragments\":%" PRIu64 ",\"datagrams\":%" PRIu64
		        ",\"malformed\":%" PRIu64 ",\"overlaps\":%" PRIu64
		        ",\"duplicates\":%" PRIu64 ",\"given_up\":{",
		        d->fragments, d->datagrams, s->defrag_malformed, d->overlaps,
		        d->duplicates);
		for (int fate = TS_DEFRAG_REASSEMBLED + 1; fate < TS_DEFRAG_FATE_COUNT; fate++)
			fprintf(out, "%s\"%s\":%" PRIu64,
			        fate > TS_DEFRAG_REASSEMBLED + 1 ? "," : "",
			        ts_defrag_fate_name((enum ts_defrag_fate)fate), d->fates[fate]);
		fputs("}}", out);
	}
	fputs("}\n", out);
}

static void human_summary(FILE *out, const struct ts_run_info *run, const struct ts_stats *s)
{
	fprintf(out, "file        %s\n", run->source_name);
	fprintf(out, "link type   %s (%s, DLT %d)\n", run->link_label, ts_link_name(run->link),
	        run->linktype);
	fprintf(out,
	        "packets     %" PRIu64 " (%" PRIu64 " bytes on the wire, %" PRIu64 " captured)\n",
	        s->packets, s->bytes, s->captured_bytes);
	if (s->snapped)
		fprintf(out, "snapped     %" PRIu64 " captured shorter than sent\n", s->snapped);
	fputs("network    ", out);
	for (size_t i = 0; i < COUNT_OF(l3_order); i++)
		fprintf(out, " %s %" PRIu64, ts_l3_name(l3_order[i]), s->l3[l3_order[i]]);
	fputs("\ntransport  ", out);
	for (size_t i = 0; i < COUNT_OF(l4_order); i++)
		fprintf(out, " %s %" PRIu64, ts_l4_name(l4_order[i]), s->l4[l4_order[i]]);
	fprintf(out, "\nfragments   %" PRIu64 "\n", s->fragments);
	fprintf(out, "vlan tagged %" PRIu64 "\n", s->vlan_tagged);
	uint64_t bad = ts_stats_anomalous(s);
	if (!bad) {
		fputs("anomalies   none\n", out);
	} else {
		fprintf(out, "anomalies   %" PRIu64 "\n", bad);
		for (int a = TS_ANOM_NONE + 1; a < TS_ANOM_COUNT; a++)
			if (s->anomalies[a])
				fprintf(out, "  %-24s %" PRIu64 "\n",
				        ts_anomaly_name((enum ts_anomaly)a), s->anomalies[a]);
	}
	if (!run->policy)
		return;
	const struct ts_policy *p = run->policy;
	fprintf(out, "policy      %s (%" PRIu32 " rules)\nverdicts   ", p->source, p->rule_count);
	for (int v = 0; v < TS_VERDICT_COUNT; v++)
		fprintf(out, " %s %" PRIu64, ts_verdict_name((enum ts_verdict)v), s->verdicts[v]);
	fputs("\n", out);
	for (uint32_t i = 0; i < p->rule_count; i++)
		fprintf(out, "  line %-5" PRIu32 " %-7s %" PRIu64 "\n", p->rules[i].line,
		        ts_verdict_name(p->rules[i].action), s->rule_hits[i]);
	fprintf(out, "  no rule matched (dropped) %" PRIu64 "\n", s->default_drops);
	if (s->defrag_drops)
		fprintf(out, "  fragments not reassembled or malformed (dropped) %" PRIu64 "\n",
		        s->defrag_drops);
	if (s->earlier_policy)
		fprintf(out, "  flows judged before the last reload %" PRIu64 "\n",
		        s->earlier_policy);
	fprintf(out,
	        "flows       %" PRIu64 " (tcp %" PRIu64 ", udp %" PRIu64 ", other %" PRIu64
	        "; %" PRIu64 " expired, %" PRIu64 " evicted, %" PRIu64 " ended by port reuse)\n",
	        s->flows.total, s->flows.tcp, s->flows.udp, s->flows.other, s->flows.expired,
	        s->flows.evicted, s->flows.reused);
	fprintf(out,
	        "streams     %" PRIu64 " TCP stream directions, %" PRIu64 " bytes; %" PRIu64
	        " gaps (%" PRIu64 " bytes), %" PRIu64 " inconsistent overlaps\n",
	        s->streams.count, s->streams.bytes, s->streams.gaps, s->streams.gap_bytes,
	        s->streams.inconsistent);
	const struct ts_defrag_stats *d = &s->defrag;
	if (d->fragments) {
		fprintf(out,
		        "defrag      %" PRIu64 " fragments: %" PRIu64
		        " datagrams reassembled (%" PRIu64 " malformed); %" PRIu64
		        " overlaps, %" PRIu64 " duplicates",
		        d->fragments, d->datagrams, s->defrag_malformed, d->overlaps,
		        d->duplicates);
		for (int fate = TS_DEFRAG_REASSEMBLED + 1; fate < TS_DEFRAG_FATE_COUNT; fate++)
			if (d->fates[fate])
				fprintf(out, "; %" PRIu64 " %s", d->fates[fate],
				        ts_defrag_fate_name((enum ts_defrag_fate)fate));
		fputc('\n', out);
	}
	if (bad)
		fprintf(out, "  malformed (dropped)       %" PRIu64 "\n", bad);
}

static void summary_on_finish(void *ctx, const struct ts_run_info *run, const struct ts_stats *s)
{
	const struct ts_output_opts *o = ctx;
	ts_summary_write(o->out, o->json, run, s);
}

void ts_summary_write(FILE *out, bool json, const struct ts_run_info *run, const struct ts_stats *s)
{
	if (json)
		json_summary(out, run, s);
	else
		human_summary(out, run, s);
}

void ts_summary_plugin(struct ts_plugin *p, struct ts_output_opts *opts)
{
	*p = (struct ts_plugin){
	        .name = "summary",
	        .ctx = opts,
	        .on_finish = summary_on_finish,
	};
}
