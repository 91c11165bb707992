/* Capture-file source through libpcap: pcap (either byte order, micro- or
 * nanosecond) and pcapng. */
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "torsieve/source.h"

struct pcap_source {
	struct ts_source base; /* first, so a ts_source* is a pcap_source* */
	pcap_t *pcap;
	uint64_t count;
};

/* libpcap's DLT values for the framings the decoder knows. DLT_RAW is 12 on
 * most systems and 14 on OpenBSD; a file's LINKTYPE_RAW (101) maps to it. */
enum ts_link ts_link_from_dlt(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
		return TS_LINK_ETHERNET;
	case DLT_LINUX_SLL:
		return TS_LINK_SLL;
	case DLT_LINUX_SLL2:
		return TS_LINK_SLL2;
	case 12:
	case 14:
	case 101:
		return TS_LINK_RAW;
	case DLT_IPV4:
		return TS_LINK_IPV4;
	case DLT_IPV6:
		return TS_LINK_IPV6;
	case DLT_NULL:
		return TS_LINK_NULL;
	case DLT_LOOP:
		return TS_LINK_LOOP;
	default:
		return TS_LINK_UNSUPPORTED;
	}
}

static enum ts_source_status pcap_source_next(struct ts_source *src, struct ts_packet *pkt)
{
	struct pcap_source *ps = (struct pcap_source *)src;
	struct pcap_pkthdr *hdr;
	const u_char *data;

	int rc = pcap_next_ex(ps->pcap, &hdr, &data);
	if (rc == PCAP_ERROR_BREAK)
		return TS_SOURCE_END;
	if (rc != 1) {
		snprintf(src->err, sizeof(src->err), "%s: %s", src->name, pcap_geterr(ps->pcap));
		return TS_SOURCE_ERROR;
	}
	ps->count++;
	*pkt = (struct ts_packet){
	        .data = data,
	        .caplen = hdr->caplen,
	        .len = hdr->len,
	        .ts_sec = (int64_t)hdr->ts.tv_sec,
	        .ts_usec = (uint32_t)hdr->ts.tv_usec,
	        .index = ps->count,
	        .link = src->link,
	};
	return TS_SOURCE_PACKET;
}

static int pcap_source_fd(const struct ts_source *src)
{
	(void)src;
	return -1;
}

static void pcap_source_close(struct ts_source *src)
{
	struct pcap_source *ps = (struct pcap_source *)src;
	pcap_close(ps->pcap);
	free(ps);
}

static const struct ts_source_ops pcap_source_ops = {
        .next = pcap_source_next,
        .fd = pcap_source_fd,
        .close = pcap_source_close,
};

static struct ts_source *pcap_source_wrap(pcap_t *pcap, const char *name, char *err, size_t errlen)
{
	struct pcap_source *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		snprintf(err, errlen, "%s: out of memory", name);
		pcap_close(pcap);
		return NULL;
	}
	ps->pcap = pcap;
	ps->base.ops = &pcap_source_ops;
	snprintf(ps->base.name, sizeof(ps->base.name), "%s", name);
	ps->base.linktype = pcap_datalink(pcap);
	ps->base.link = ts_link_from_dlt(ps->base.linktype);
	ps->base.link_label = pcap_datalink_val_to_name(ps->base.linktype);
	if (!ps->base.link_label)
		ps->base.link_label = "unknown";
	return &ps->base;
}

/* libpcap's open errors name the file already in some cases and not in
 * others; say it once, first. */
static void open_error(char *err, size_t errlen, const char *name, const char *reason)
{
	size_t n = strlen(name);
	if (strncmp(reason, name, n) == 0 && reason[n] == ':')
		snprintf(err, errlen, "%s", reason);
	else
		snprintf(err, errlen, "%s: %s", name, reason);
}

struct ts_source *ts_source_open_pcap(const char *path, char *err, size_t errlen)
{
	char pcap_err[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pcap = pcap_open_offline(path, pcap_err);
	if (!pcap) {
		open_error(err, errlen, path, pcap_err);
		return NULL;
	}
	return pcap_source_wrap(pcap, path, err, errlen);
}

struct ts_source *ts_source_open_pcap_stream(FILE *fp, const char *name, char *err, size_t errlen)
{
	char pcap_err[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pcap = pcap_fopen_offline(fp, pcap_err);
	if (!pcap) {
		fclose(fp);
		open_error(err, errlen, name, pcap_err);
		return NULL;
	}
	return pcap_source_wrap(pcap, name, err, errlen);
}
