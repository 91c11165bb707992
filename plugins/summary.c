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
	fputs("}}\n", out);
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
		return;
	}
	fprintf(out, "anomalies   %" PRIu64 "\n", bad);
	for (int a = TS_ANOM_NONE + 1; a < TS_ANOM_COUNT; a++)
		if (s->anomalies[a])
			fprintf(out, "  %-24s %" PRIu64 "\n", ts_anomaly_name((enum ts_anomaly)a),
			        s->anomalies[a]);
}

static void summary_on_finish(void *ctx, const struct ts_run_info *run, const struct ts_stats *s)
{
	const struct ts_output_opts *o = ctx;
	if (o->json)
		json_summary(o->out, run, s);
	else
		human_summary(o->out, run, s);
}

void ts_summary_plugin(struct ts_plugin *p, struct ts_output_opts *opts)
{
	*p = (struct ts_plugin){
	        .name = "summary",
	        .ctx = opts,
	        .on_finish = summary_on_finish,
	};
}
