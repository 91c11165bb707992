/*
 * torsieve run: the inline gateway daemon. One worker thread per queue,
 * each with its own engine (flow table, defragmenter) and libevent loop;
 * `--queue-balance` in the rules keeps a flow on one queue. The main thread
 * only handles signals: SIGTERM/SIGINT stop, SIGHUP reloads the policy,
 * SIGUSR1 prints the counters.
 */
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "torsieve/clock.h"
#include "torsieve/commands.h"
#include "torsieve/dns_service.h"
#include "torsieve/engine.h"
#include "torsieve/log.h"
#include "torsieve/name_map.h"
#include "torsieve/nfqueue.h"
#include "torsieve/output.h"
#include "torsieve/policy.h"
#include "torsieve/privilege.h"
#include "torsieve/reject.h"
#include "torsieve/relay.h"

#define MAX_WORKERS 64
#define RELOAD_WAIT 2000 /* ms a worker may take to pick up a new policy */

static bool json_counters;
static const char *run_user;

static const char run_usage[] =
        "usage: torsieve run [-c POLICY] [--syslog] [--json] [--user USER]\n"
        "  Judge every packet the kernel queues (iptables NFQUEUE; `torsieve rules`\n"
        "  prints the rules) by POLICY (default " TS_POLICY_PATH "), in the\n"
        "  foreground. Logs to standard error, or to syslog with --syslog.\n"
        "  SIGTERM or SIGINT: stop. SIGHUP: reload the policy (a bad one is refused and\n"
        "  the running one stays; live flows keep their verdict). SIGUSR1: print the\n"
        "  counters (also printed at exit; --json: one JSON object per queue, the\n"
        "  replay summary's fields under \"summary\" and the queue's under \"nfqueue\").\n"
        "  Needs root (CAP_NET_ADMIN); with --user, runs as USER with CAP_NET_ADMIN\n"
        "  only once its sockets are open (the policy must stay readable for reloads).\n";

struct worker {
	pthread_t thread;
	bool started;
	uint16_t queue;
	struct ts_source *src;
	struct ts_engine engine;
	struct ts_plugin verdicts;
	struct ts_rejecter *rejecter;
	struct ts_relay *relay;      /* the built-in relay, on this worker's loop */
	struct ts_dns_service *dns;  /* DNS through Tor, on this worker's loop */
	struct ts_tor_pool pool;     /* the Tor instances, shared by relay and DNS */
	struct ts_name_map *names;   /* names for addresses, shared by relay and DNS */
	struct ts_gateway_config gw; /* the settings it started with (a reload keeps them) */
	struct event_base *base;
	struct event *rx, *wake, *tick;
	_Atomic(const struct ts_policy *) offered; /* a reload, set by the main thread */
	_Atomic(const struct ts_policy *) running;
	atomic_bool report, stop;
	atomic_int failed;
};

static struct worker workers[MAX_WORKERS];
static size_t worker_count;
static struct event_base *main_base;

static int64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Answer a client's packet with an ICMP error (sent by torsieve: reject.h
 * says why). A link-local IPv6 source is reached through the client
 * interface. */
static void reject_packet(struct worker *w, const uint8_t *frame, uint32_t caplen,
                          const struct ts_decoded *d, enum ts_reject_kind kind)
{
	uint32_t ifindex = 0;
	if (d->l3 == TS_L3_IPV6 && d->src_addr[0] == 0xfe && (d->src_addr[1] & 0xc0) == 0x80)
		ifindex = if_nametoindex(w->gw.iface);
	ts_reject_send(w->rejecter, frame, caplen, d, kind, ifindex, ts_monotonic_usec());
}

/* The verdict of every packet, as the engine reports it (held fragments
 * later, with their datagram's). */
static void verdict_on_packet(void *ctx, const struct ts_packet_event *ev)
{
	struct worker *w = ctx;
	const struct ts_decoded *d = ev->dec;
	enum ts_mark_kind kind = TS_MARK_PASS;
	enum ts_gateway_action act =
	        ev->judgement ? ts_gateway_action(ev->judgement, d->l4, &kind) : TS_GATEWAY_DROP;
	if (act == TS_GATEWAY_ICMP)
		reject_packet(w, ev->pkt->data, ev->pkt->caplen, d, ev->judgement->reject);
	bool divert_syn = act == TS_GATEWAY_MARK && kind == TS_MARK_DIVERT && d->l4 == TS_L4_TCP &&
	                  d->has_l4_header && !d->is_fragment &&
	                  (d->tcp_flags & (TS_TCP_SYN | TS_TCP_ACK)) == TS_TCP_SYN;
	/* who is who: an address's MAC, so the DNS service and the relay agree
	 * on a client (name_map.h); learnt where they use it, from DNS queries
	 * and diverted SYNs, not from every packet */
	if (w->names && d->has_mac && (d->l3 == TS_L3_IPV4 || d->l3 == TS_L3_IPV6) &&
	    (divert_syn || (act == TS_GATEWAY_MARK && kind == TS_MARK_DNS)))
		ts_name_map_learn(w->names, d->l3 == TS_L3_IPV6 ? 6 : 4, d->src_addr, d->src_mac);
	if (divert_syn && w->relay) {
		/* a SYN: Tor is asked first, and its answer is the verdict */
		enum ts_reject_kind rk;
		switch (ts_relay_syn(w->relay, ev->pkt, d, ts_monotonic_usec(), &rk)) {
		case TS_RELAY_SYN_HELD:
			return;
		case TS_RELAY_SYN_DIVERT:
			break;
		case TS_RELAY_SYN_DROP:
			act = TS_GATEWAY_DROP;
			break;
		case TS_RELAY_SYN_REJECT:
			if (rk == TS_REJECT_TCP_RESET) {
				kind = TS_MARK_RESET;
			} else {
				reject_packet(w, ev->pkt->data, ev->pkt->caplen, d, rk);
				act = TS_GATEWAY_DROP;
			}
			break;
		}
	}
	bool accept = act == TS_GATEWAY_MARK;
	uint32_t mark = accept ? ts_gateway_mark(&w->gw, kind) : 0;
	ts_nfq_verdict(w->src, ev->pkt->id, accept, mark, w->gw.mark_mask, ev->pkt->mark);
}

/* A held SYN's verdict, once Tor answered. */
static void relay_verdict(void *ctx, const struct ts_relay_held *h, enum ts_relay_verdict v,
                          enum ts_reject_kind kind)
{
	struct worker *w = ctx;
	if (v == TS_RELAY_DROP) {
		ts_nfq_verdict(w->src, h->id, false, 0, w->gw.mark_mask, h->mark);
		return;
	}
	bool divert = v == TS_RELAY_DIVERT;
	enum ts_mark_kind mk = divert ? TS_MARK_DIVERT : TS_MARK_RESET;
	if (!divert && kind != TS_REJECT_TCP_RESET) {
		struct ts_decoded d;
		ts_decode(h->link, h->frame, h->caplen, h->wirelen, &d);
		reject_packet(w, h->frame, h->caplen, &d, kind);
		ts_nfq_verdict(w->src, h->id, false, 0, w->gw.mark_mask, h->mark);
		return;
	}
	ts_nfq_verdict(w->src, h->id, true, ts_gateway_mark(&w->gw, mk), w->gw.mark_mask, h->mark);
}

static void worker_fail(struct worker *w, const char *why);

static void relay_flush(void *ctx)
{
	struct worker *w = ctx;
	if (ts_nfq_flush(w->src) < 0)
		worker_fail(w, "sending verdicts failed");
}

#define U(x) ((unsigned long long)(x))

/* "relay":{...}, with the Tor instances under "tor". */
static void relay_report_json(FILE *f, const struct ts_relay *r)
{
	struct ts_relay_stats st;
	ts_relay_get_stats(r, &st);
	fprintf(f,
	        "\"relay\":{\"syn_held\":%llu,\"syn_copies\":%llu,\"syn_copies_lost\":%llu,"
	        "\"syn_replaced\":%llu,"
	        "\"syn_opened\":%llu,\"syn_refused\":%llu,\"syn_timeout\":%llu,"
	        "\"syn_no_tor\":%llu,\"syn_broken\":%llu,\"syn_accept_first\":%llu,"
	        "\"syn_over_connections\":%llu,\"syn_unknown_name\":%llu,\"by_name\":%llu,"
	        "\"tor_replies\":{",
	        U(st.syn_held), U(st.syn_copies), U(st.syn_copies_lost), U(st.syn_replaced),
	        U(st.syn_opened), U(st.syn_refused), U(st.syn_timeout), U(st.syn_no_tor),
	        U(st.syn_broken), U(st.syn_accept_first), U(st.syn_over_connections),
	        U(st.syn_unknown_name), U(st.by_name));
	bool first = true;
	for (int code = 0; code < 256; code++)
		if (st.tor_replies[code]) {
			fprintf(f, "%s\"0x%02x\":%llu", first ? "" : ",", code,
			        U(st.tor_replies[code]));
			first = false;
		}
	fprintf(f,
	        "},\"accepted\":%llu,\"paired\":%llu,\"opened_after\":%llu,"
	        "\"over_connections\":%llu,\"emfile\":%llu,\"accept_errors\":%llu,"
	        "\"bytes_to_tor\":%llu,\"bytes_to_client\":%llu,\"held_back\":%llu,\"pending\":%u,"
	        "\"connections\":%u,\"clients\":%u,\"closed\":{",
	        U(st.accepted), U(st.paired), U(st.opened_after), U(st.over_connections),
	        U(st.emfile), U(st.accept_errors), U(st.bytes_to_tor), U(st.bytes_to_client),
	        U(st.held_back), st.pending, st.connections, st.clients);
	for (int c = 0; c < TS_RELAY_CLOSE_COUNT; c++)
		fprintf(f, "%s\"%s\":%llu", c ? "," : "",
		        ts_relay_close_name((enum ts_relay_close)c), U(st.closed[c]));
	fputs("},\"tor\":[", f);
	const struct ts_tor_pool *pool = ts_relay_tor_pool(r);
	for (size_t i = 0; i < pool->count; i++) {
		char ep[64];
		ts_tor_endpoint_text(&pool->ep[i], ep, sizeof(ep));
		fprintf(f, "%s{\"socks\":\"%s\",\"streams\":%llu,\"failures\":%llu,\"up\":%s}",
		        i ? "," : "", ep, U(pool->st[i].streams), U(pool->st[i].failures),
		        pool->st[i].down_until && pool->st[i].down_until > ts_monotonic_usec()
		                ? "false"
		                : "true");
	}
	fputs("]},", f);
}

static void relay_report_text(FILE *f, const struct ts_relay *r)
{
	struct ts_relay_stats st;
	ts_relay_get_stats(r, &st);
	fprintf(f,
	        "relay       SYNs: %llu held (+%llu copies, %llu copies dropped, %llu replaced), "
	        "%llu opened, "
	        "%llu refused by Tor, %llu timed out, %llu without Tor, %llu SOCKS failures, "
	        "%llu accepted first, %llu over relay-connections, %llu to forgotten virtual "
	        "addresses; %llu CONNECTs by name\n",
	        U(st.syn_held), U(st.syn_copies), U(st.syn_copies_lost), U(st.syn_replaced),
	        U(st.syn_opened), U(st.syn_refused), U(st.syn_timeout), U(st.syn_no_tor),
	        U(st.syn_broken), U(st.syn_accept_first), U(st.syn_over_connections),
	        U(st.syn_unknown_name), U(st.by_name));
	fprintf(f,
	        "relay       connections: %llu accepted, %llu paired, %llu opened after, %llu over "
	        "the caps, %llu at EMFILE, %llu failed; %u open, %u pending, %u clients; bytes: "
	        "%llu to Tor, %llu to clients; %llu times held back at relay-buffer\n"
	        "relay       closed:",
	        U(st.accepted), U(st.paired), U(st.opened_after), U(st.over_connections),
	        U(st.emfile), U(st.accept_errors), st.connections, st.pending, st.clients,
	        U(st.bytes_to_tor), U(st.bytes_to_client), U(st.held_back));
	for (int c = 0; c < TS_RELAY_CLOSE_COUNT; c++)
		fprintf(f, " %llu %s", U(st.closed[c]),
		        ts_relay_close_name((enum ts_relay_close)c));
	fputc('\n', f);
	const struct ts_tor_pool *pool = ts_relay_tor_pool(r);
	for (size_t i = 0; i < pool->count; i++) {
		char ep[64];
		ts_tor_endpoint_text(&pool->ep[i], ep, sizeof(ep));
		fprintf(f, "tor         %s: %llu streams, %llu failures, %s\n", ep,
		        U(pool->st[i].streams), U(pool->st[i].failures),
		        pool->st[i].down_until > ts_monotonic_usec() ? "left out" : "in use");
	}
}

/* "dns":{...} (json), or the text lines. */
static void dns_report(FILE *f, const struct worker *w, bool json)
{
	struct ts_dns_stats d;
	struct ts_name_map_stats m;
	ts_dns_service_get_stats(w->dns, &d);
	ts_name_map_get_stats(w->names, &m);
	if (json) {
		fprintf(f,
		        "\"dns\":{\"udp_queries\":%llu,\"tcp_queries\":%llu,\"answered\":%llu,"
		        "\"nodata\":%llu,\"nxdomain\":%llu,\"servfail\":%llu,\"formerr\":%llu,"
		        "\"notimp\":%llu,\"ignored\":%llu,\"blocked\":%llu,\"local_names\":%llu,"
		        "\"virtual_answers\":%llu,\"cache_hits\":%llu,\"cache_evicted\":%llu,"
		        "\"resolved\":%llu,"
		        "\"resolve_failed\":%llu,\"resolve_timeouts\":%llu,\"truncated\":%llu,"
		        "\"over_pending\":%llu,\"tcp_connections\":%llu,\"tcp_over\":%llu,"
		        "\"send_errors\":%llu,\"pending\":%u,\"tcp_now\":%u,\"cache_now\":%u,"
		        "\"map\":{\"virtual\":%u,\"real\":%u,\"virtual_made\":%llu,\"evicted\":%"
		        "llu,"
		        "\"expired\":%llu,\"virtual_full\":%llu}},",
		        U(d.udp_queries), U(d.tcp_queries), U(d.answered), U(d.nodata),
		        U(d.nxdomain), U(d.servfail), U(d.formerr), U(d.notimp), U(d.ignored),
		        U(d.blocked), U(d.local_names), U(d.virtual_answers), U(d.cache_hits),
		        U(d.cache_evicted), U(d.resolved), U(d.resolve_failed),
		        U(d.resolve_timeouts), U(d.truncated), U(d.over_pending),
		        U(d.tcp_connections), U(d.tcp_over), U(d.send_errors), d.pending, d.tcp_now,
		        d.cache_now, m.virtual_now, m.real_now, U(m.virtual_made), U(m.evicted),
		        U(m.expired), U(m.virtual_full));
		return;
	}
	fprintf(f,
	        "dns         %llu queries (%llu TCP): %llu answered, %llu NODATA, %llu NXDOMAIN, "
	        "%llu SERVFAIL, %llu FORMERR, %llu NOTIMP, %llu ignored; %llu blocked, %llu local "
	        "names, %llu virtual, %llu from the cache (%llu pushed out), %llu resolved by Tor "
	        "(%llu failed, %llu "
	        "timed out); %llu truncated, %llu over dns-pending, %llu over dns-tcp-connections\n"
	        "names       %u virtual, %u resolved; %llu made, %llu evicted, %llu expired, %llu "
	        "refused (full)\n",
	        U(d.udp_queries + d.tcp_queries), U(d.tcp_queries), U(d.answered), U(d.nodata),
	        U(d.nxdomain), U(d.servfail), U(d.formerr), U(d.notimp), U(d.ignored), U(d.blocked),
	        U(d.local_names), U(d.virtual_answers), U(d.cache_hits), U(d.cache_evicted),
	        U(d.resolved), U(d.resolve_failed), U(d.resolve_timeouts), U(d.truncated),
	        U(d.over_pending), U(d.tcp_over), m.virtual_now, m.real_now, U(m.virtual_made),
	        U(m.evicted), U(m.expired), U(m.virtual_full));
}

static void worker_report(struct worker *w, const char *when)
{
	ts_engine_snapshot(&w->engine);
	struct ts_nfq_stats q;
	ts_nfq_get_stats(w->src, &q);
	const struct ts_reject_stats *rj = ts_rejecter_stats(w->rejecter);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem) {
		ts_log(LOG_ERR, "queue %u: no memory for the counters", w->queue);
		return;
	}
	if (json_counters) {
		fprintf(mem,
		        "{\"queue\":%u,\"when\":\"%s\",\"nfqueue\":{\"received\":%llu,\"accepted\":"
		        "%llu,"
		        "\"dropped\":%llu,\"verdict_messages\":%llu,\"batches\":%llu,"
		        "\"send_errors\":%llu,\"enobufs\":%llu,\"queue_dropped\":%llu,"
		        "\"user_dropped\":%llu,\"truncated\":%llu},\"icmp_errors\":{\"sent\":%llu,"
		        "\"limited\":%llu,\"unanswered\":%llu,\"failed\":%llu},",
		        w->queue, when, (unsigned long long)q.received,
		        (unsigned long long)q.accepted, (unsigned long long)q.dropped,
		        (unsigned long long)q.verdict_messages, (unsigned long long)q.batches,
		        (unsigned long long)q.send_errors, (unsigned long long)q.enobufs,
		        (unsigned long long)q.queue_dropped, (unsigned long long)q.user_dropped,
		        (unsigned long long)q.truncated, (unsigned long long)rj->sent,
		        (unsigned long long)rj->limited, (unsigned long long)rj->unanswered,
		        (unsigned long long)rj->failed);
		if (w->relay)
			relay_report_json(mem, w->relay);
		if (w->dns)
			dns_report(mem, w, true);
		fputs("\"summary\":", mem);
		ts_summary_write(mem, true, &w->engine.run, &w->engine.stats);
		fflush(mem);
		if (len && text[len - 1] == '\n')
			fseek(mem, -1,
			      SEEK_CUR); /* the summary's newline becomes the closing brace */
		fputc('}', mem);
		fclose(mem);
		ts_log_lines(LOG_INFO, text);
		free(text);
		return;
	}
	fprintf(mem, "counters of queue %u (%s):\n", w->queue, when);
	ts_summary_write(mem, false, &w->engine.run, &w->engine.stats);
	fprintf(mem,
	        "nfqueue     %llu received; verdicts: %llu accepted, %llu dropped, in %llu "
	        "messages (%llu batches); %llu refused by the kernel; %llu ENOBUFS; kernel "
	        "drops: %llu queue full, %llu not delivered; %llu longer than the copy range\n",
	        (unsigned long long)q.received, (unsigned long long)q.accepted,
	        (unsigned long long)q.dropped, (unsigned long long)q.verdict_messages,
	        (unsigned long long)q.batches, (unsigned long long)q.send_errors,
	        (unsigned long long)q.enobufs, (unsigned long long)q.queue_dropped,
	        (unsigned long long)q.user_dropped, (unsigned long long)q.truncated);
	fprintf(mem,
	        "reject      %llu ICMP errors sent, %llu over reject-rate, %llu not answerable, "
	        "%llu failed\n",
	        (unsigned long long)rj->sent, (unsigned long long)rj->limited,
	        (unsigned long long)rj->unanswered, (unsigned long long)rj->failed);
	if (w->relay)
		relay_report_text(mem, w->relay);
	if (w->dns)
		dns_report(mem, w, false);
	fclose(mem);
	ts_log_lines(LOG_INFO, text);
	free(text);
}

static void worker_fail(struct worker *w, const char *why)
{
	ts_log(LOG_ERR, "queue %u: %s; stopping (the kernel drops what is queued)", w->queue, why);
	atomic_store(&w->failed, 1);
	event_base_loopbreak(w->base);
	kill(getpid(), SIGTERM); /* the main thread stops the others */
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	for (unsigned n = 1;; n++) {
		struct ts_packet pkt;
		enum ts_source_status st = ts_source_next(w->src, &pkt);
		if (st == TS_SOURCE_PACKET) {
			ts_engine_packet(&w->engine, &pkt);
			/* Under a steady stream, verdicts go out every so often rather
			 * than only when the socket runs dry. */
			if (n % 64 == 0 && ts_nfq_flush(w->src) < 0) {
				worker_fail(w, "sending verdicts failed");
				return;
			}
			continue;
		}
		if (st == TS_SOURCE_AGAIN)
			break;
		worker_fail(w, w->src->err);
		return;
	}
	if (ts_nfq_flush(w->src) < 0)
		worker_fail(w, "sending verdicts failed");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	ts_engine_tick(&w->engine, now_usec());
	if (w->relay)
		ts_relay_tick(w->relay, ts_monotonic_usec());
	if (w->dns)
		ts_dns_service_tick(w->dns, ts_monotonic_usec());
	if (ts_nfq_flush(w->src) < 0)
		worker_fail(w, "sending verdicts failed");
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	const struct ts_policy *p = atomic_load(&w->offered);
	if (p && p != atomic_load(&w->running)) {
		if (ts_engine_replace_policy(&w->engine, p) == 0) {
			if (w->dns)
				ts_dns_service_set_policy(w->dns, p);
			atomic_store(&w->running, p);
		} else
			ts_log(LOG_ERR,
			       "queue %u: no memory to take the new policy; keeping the old",
			       w->queue);
	}
	if (atomic_exchange(&w->report, false))
		worker_report(w, "on request");
	if (atomic_load(&w->stop))
		event_base_loopbreak(w->base);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	/* connections end before the last report, so it counts them */
	ts_relay_shutdown(w->relay);
	ts_nfq_flush(w->src);
	worker_report(w, "at exit");
	return NULL;
}

static void worker_free(struct worker *w)
{
	if (w->rx)
		event_free(w->rx);
	if (w->wake)
		event_free(w->wake);
	if (w->tick)
		event_free(w->tick);
	ts_relay_close(w->relay); /* before its loop goes */
	ts_dns_service_close(w->dns);
	ts_name_map_free(w->names);
	if (w->base)
		event_base_free(w->base);
	ts_source_close(w->src); /* unbinds: the kernel drops what still waits */
	ts_rejecter_close(w->rejecter);
	ts_engine_release(&w->engine);
}

static int worker_init(struct worker *w, uint16_t queue, const struct ts_policy *p)
{
	char err[512];
	w->queue = queue;
	w->gw = p->gateway;
	atomic_store(&w->running, p);
	atomic_store(&w->offered, p);
	ts_engine_init(&w->engine);
	if (ts_engine_set_policy(&w->engine, p, NULL) < 0) {
		ts_log(LOG_ERR, "queue %u: no memory for the flow table (max-flows %u)", queue,
		       p->limits.flows.max_flows);
		return -1;
	}
	w->verdicts =
	        (struct ts_plugin){.name = "verdicts", .ctx = w, .on_packet = verdict_on_packet};
	ts_engine_add_plugin(&w->engine, &w->verdicts);
	struct ts_nfq_config qc = {
	        .queue = queue,
	        .queue_maxlen = p->gateway.queue_length,
	        .rcvbuf = p->gateway.queue_buffer,
	};
	w->rejecter = ts_rejecter_open(p->gateway.reject_rate, p->gateway.iface, err, sizeof(err));
	if (!w->rejecter) {
		ts_log(LOG_ERR, "%s", err);
		return -1;
	}
	w->src = ts_nfq_open(&qc, err, sizeof(err));
	if (!w->src) {
		ts_log(LOG_ERR, "%s", err);
		return -1;
	}
	ts_engine_start(&w->engine, w->src);
	struct timeval second = {1, 0};
	w->base = event_base_new();
	if (w->base) {
		w->rx = event_new(w->base, w->src->ops->fd(w->src), EV_READ | EV_PERSIST,
		                  on_readable, w);
		w->wake = event_new(w->base, -1, 0, on_wake, w);
		w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
	}
	if (!w->base || !w->rx || !w->wake || !w->tick || event_add(w->rx, NULL) < 0 ||
	    event_add(w->tick, &second) < 0) {
		ts_log(LOG_ERR, "queue %u: cannot set up the event loop", queue);
		return -1;
	}
	const struct ts_gateway_config *g = &p->gateway;
	ts_tor_pool_init(&w->pool, &g->relay);
	if (g->dns.enabled) {
		struct ts_name_map_config nc = {
		        .v4_prefix = g->dns.virtual4.len,
		        .v6_prefix = g->dns.virtual6.len,
		        .capacity = g->dns.map_size,
		        .idle_sec = g->dns.map_idle,
		};
		memcpy(nc.v4_net, g->dns.virtual4.addr, 4);
		memcpy(nc.v6_net, g->dns.virtual6.addr, 16);
		if (getrandom(&nc.seed, sizeof(nc.seed), GRND_NONBLOCK) != sizeof(nc.seed))
			nc.seed = (uint32_t)ts_monotonic_usec();
		w->names = ts_name_map_new(&nc);
		if (w->names && ts_name_map_capacity(w->names) < g->dns.map_size)
			ts_log(LOG_WARNING,
			       "dns: dns-map %u does not fit the dns-virtual ranges; it holds %u "
			       "names",
			       g->dns.map_size, ts_name_map_capacity(w->names));
		w->dns = w->names ? ts_dns_service_open(&g->dns, g->dns_port, err, sizeof(err))
		                  : NULL;
		if (!w->names)
			snprintf(err, sizeof(err), "dns: no memory for dns-map %u",
			         g->dns.map_size);
		if (!w->dns) {
			ts_log(LOG_ERR, "%s", err);
			return -1;
		}
		if (ts_dns_service_attach(w->dns, w->base, &w->pool, w->names, &g->relay, p) < 0) {
			ts_log(LOG_ERR, "queue %u: cannot set up the DNS service's events", queue);
			return -1;
		}
	}
	if (p->gateway.relay.enabled) {
		w->relay = ts_relay_open(&p->gateway.relay, p->gateway.divert_port, &w->pool,
		                         w->names, err, sizeof(err));
		struct ts_relay_hooks hooks = {
		        .ctx = w, .verdict = relay_verdict, .flush = relay_flush};
		if (!w->relay) {
			ts_log(LOG_ERR, "%s", err);
			return -1;
		}
		if (ts_relay_attach(w->relay, w->base, &hooks) < 0) {
			ts_log(LOG_ERR, "queue %u: cannot set up the relay's events", queue);
			return -1;
		}
	}
	return 0;
}

static void wake_all(void)
{
	for (size_t i = 0; i < worker_count; i++)
		event_active(workers[i].wake, 0, 0);
}

static const char *policy_path;
static const struct ts_policy *current_policy;

static void reload(void)
{
	char err[1024];
	struct ts_policy *p = ts_policy_load(policy_path, err, sizeof(err));
	if (!p) {
		ts_log(LOG_ERR, "reload refused, the running policy stays: %s", err);
		return;
	}
	if (memcmp(&p->gateway, &current_policy->gateway, sizeof(p->gateway)) ||
	    memcmp(&p->limits.flows, &current_policy->limits.flows, sizeof(p->limits.flows)) ||
	    memcmp(&p->limits.defrag, &current_policy->limits.defrag, sizeof(p->limits.defrag)))
		ts_log(LOG_WARNING, "reload: settings other than the rules (queue, marks, flows, "
		                    "defrag) take effect at the next start");
	for (size_t i = 0; i < worker_count; i++)
		atomic_store(&workers[i].offered, p);
	wake_all();
	/* The old policy is freed once no worker judges by it. */
	for (int waited = 0; waited < RELOAD_WAIT; waited += 10) {
		size_t switched = 0;
		for (size_t i = 0; i < worker_count; i++)
			switched += atomic_load(&workers[i].running) == p;
		if (switched == worker_count) {
			ts_policy_free((struct ts_policy *)current_policy);
			current_policy = p;
			ts_log(LOG_NOTICE, "reloaded %s: %u rules; live flows keep their verdict",
			       p->source, p->rule_count);
			return;
		}
		struct timespec ten_ms = {0, 10 * 1000 * 1000};
		nanosleep(&ten_ms, NULL);
	}
	/* Not all switched: keep both rather than free one in use. */
	current_policy = p;
	ts_log(LOG_WARNING, "reload: a worker did not take the new policy within %d ms",
	       RELOAD_WAIT);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sig == SIGHUP) {
		reload();
	} else if (sig == SIGUSR1) {
		for (size_t i = 0; i < worker_count; i++)
			atomic_store(&workers[i].report, true);
		wake_all();
	} else {
		ts_log(LOG_NOTICE, "signal %d: stopping", (int)sig);
		for (size_t i = 0; i < worker_count; i++)
			atomic_store(&workers[i].stop, true);
		wake_all();
		event_base_loopbreak(main_base);
	}
}

static int run(const struct ts_policy *p)
{
	const struct ts_gateway_config *g = &p->gateway;
	if ((g->relay.enabled || g->dns.enabled) && g->queue_first != g->queue_last) {
		ts_log(LOG_ERR,
		       "%s: the built-in relay and DNS service run on one queue (set queue %u), or "
		       "set relay off and dns-service off to use other transparent proxies",
		       p->source, g->queue_first);
		return TS_EXIT_USAGE;
	}
	if (g->relay.enabled && (uint64_t)g->relay.pending_syns * 4 > g->queue_length / 2)
		ts_log(LOG_WARNING,
		       "%s: pending-syns %u (up to 4 queued packets each) may fill half the "
		       "queue (queue-length %u): other packets would then be dropped by the kernel",
		       p->source, g->relay.pending_syns, g->queue_length);
	for (unsigned q = g->queue_first; q <= g->queue_last; q++)
		if (worker_init(&workers[worker_count++], (uint16_t)q, p) < 0)
			return TS_EXIT_FAILURE;
	if (run_user) {
		char err[512];
		if (ts_drop_privileges(run_user, p->gateway.dns.enabled, err, sizeof(err)) < 0) {
			ts_log(LOG_ERR, "%s", err);
			return TS_EXIT_FAILURE;
		}
	}
	/* The signal handlers first: a SIGHUP sent as soon as "running" is
	 * logged must find them, not the default action. */
	main_base = event_base_new();
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
	struct event *sev[4] = {0};
	for (size_t i = 0; main_base && i < 4; i++) {
		sev[i] = evsignal_new(main_base, sigs[i], on_signal, NULL);
		if (!sev[i] || event_add(sev[i], NULL) < 0) {
			event_base_free(main_base);
			main_base = NULL;
		}
	}
	if (!main_base) {
		ts_log(LOG_ERR, "cannot set up the signal handling");
		return TS_EXIT_FAILURE;
	}

	/* Signals go to the main thread's loop only. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < worker_count; i++) {
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
			ts_log(LOG_ERR, "cannot start a worker thread");
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			for (size_t j = 0; j < i; j++)
				atomic_store(&workers[j].stop, true);
			wake_all();
			for (size_t j = 0; j < i; j++)
				pthread_join(workers[j].thread, NULL);
			return TS_EXIT_FAILURE;
		}
		workers[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	ts_log(LOG_NOTICE,
	       "running: %s (%u rules), queue %u-%u, client interface %s, mark mask 0x%x%s%s",
	       p->source, p->rule_count, g->queue_first, g->queue_last, g->iface, g->mark_mask,
	       run_user ? ", as user " : "", run_user ? run_user : "");

	signal(SIGPIPE, SIG_IGN);
	event_base_dispatch(main_base);

	for (size_t i = 0; i < worker_count; i++)
		atomic_store(&workers[i].stop, true);
	wake_all();
	int rc = TS_EXIT_OK;
	for (size_t i = 0; i < worker_count; i++) {
		pthread_join(workers[i].thread, NULL);
		if (atomic_load(&workers[i].failed))
			rc = TS_EXIT_FAILURE;
	}
	for (size_t i = 0; i < 4; i++)
		if (sev[i])
			event_free(sev[i]);
	event_base_free(main_base);
	return rc;
}

int ts_cmd_run(int argc, char **argv)
{
	policy_path = TS_POLICY_PATH;
	bool use_syslog = false;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			policy_path = argv[++i];
		} else if (strcmp(argv[i], "--syslog") == 0) {
			use_syslog = true;
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			run_user = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			json_counters = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(run_usage, stdout);
			return TS_EXIT_OK;
		} else {
			fprintf(stderr, "torsieve run: unexpected '%s'\n%s", argv[i], run_usage);
			return TS_EXIT_USAGE;
		}
	}
	char err[1024];
	struct ts_policy *p = ts_policy_load(policy_path, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "%s\n", err);
		return TS_EXIT_USAGE;
	}
	if (evthread_use_pthreads() < 0) {
		fprintf(stderr, "torsieve run: libevent without thread support\n");
		ts_policy_free(p);
		return TS_EXIT_FAILURE;
	}
	ts_log_open(use_syslog);
	current_policy = p;
	int rc = run(p);
	for (size_t i = 0; i < worker_count; i++)
		worker_free(&workers[i]);
	ts_policy_free((struct ts_policy *)current_policy);
	ts_log(LOG_NOTICE, "stopped");
	ts_log_close();
	return rc;
}
