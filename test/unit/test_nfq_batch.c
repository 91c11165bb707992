/*
 * NFQUEUE verdict batching against a model of the kernel's queue: a batch
 * verdict applies to every queued packet up to its id, so it must never be
 * sent while a packet below the run still waits for a verdict of its own (a
 * held fragment). The source's sending is intercepted here; each packet's
 * verdict as the kernel would apply it must be the one torsieve gave it.
 */
#include "../../engine/source_nfqueue.c"
#include "check.h"
#include "rng.h"

#define MAX_ID 4096

/* The kernel's side: what is queued, and what verdict each packet got. */
static bool queued[MAX_ID];
static int applied[MAX_ID]; /* 0 none, 1 accept, 2 drop */
static uint32_t applied_mark[MAX_ID];
static int messages, batches, refused;

ssize_t mnl_socket_sendto(const struct mnl_socket *nl, const void *buf, size_t len)
{
	(void)nl;
	const struct nlmsghdr *nlh = buf;
	const struct nlattr *a;
	int type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	uint32_t id = 0, mark = 0;
	int verdict = 0;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) == NFQA_VERDICT_HDR) {
			const struct nfqnl_msg_verdict_hdr *v = mnl_attr_get_payload(a);
			id = ntohl(v->id);
			verdict = ntohl(v->verdict) == NF_ACCEPT ? 1 : 2;
		} else if (mnl_attr_get_type(a) == NFQA_MARK) {
			mark = ntohl(mnl_attr_get_u32(a));
		}
	}
	messages++;
	if (type == NFQNL_MSG_VERDICT_BATCH) {
		batches++;
		for (uint32_t i = 1; i <= id && i < MAX_ID; i++)
			if (queued[i]) {
				queued[i] = false;
				applied[i] = verdict;
				applied_mark[i] = mark;
			}
	} else if (id < MAX_ID && queued[id]) {
		queued[id] = false;
		applied[id] = verdict;
		applied_mark[id] = mark;
	} else {
		refused++; /* the kernel answers ENOENT */
	}
	return (ssize_t)len;
}

static struct nfq_source *fake_source(size_t cap)
{
	memset(queued, 0, sizeof(queued));
	memset(applied, 0, sizeof(applied));
	messages = batches = refused = 0;
	struct nfq_source *s = calloc(1, sizeof(*s));
	s->pending_cap = cap;
	s->pending = calloc(cap, sizeof(*s->pending));
	return s;
}

static void receive(struct nfq_source *s, uint32_t id)
{
	queued[id] = true;
	pending_add(s, id);
}

static void free_source(struct nfq_source *s)
{
	free(s->pending);
	free(s);
}

static void test_held_packet_blocks_the_batch(void)
{
	/* 1 is a held fragment; 2 and 3 pass; 4 completes 1's datagram, which
	 * is dropped: 1 must be dropped, not swept into 2..3's accept. */
	struct nfq_source *s = fake_source(16);
	for (uint32_t id = 1; id <= 4; id++)
		receive(s, id);
	ts_nfq_verdict(&s->base, 2, true, 0x100, 0xff00, 0);
	ts_nfq_verdict(&s->base, 3, true, 0x100, 0xff00, 0);
	ts_nfq_verdict(&s->base, 1, false, 0, 0xff00, 0);
	ts_nfq_verdict(&s->base, 4, false, 0, 0xff00, 0);
	CHECK_EQ_INT(ts_nfq_flush(&s->base), 0);
	CHECK_EQ_INT(applied[1], 2);
	CHECK_EQ_INT(applied[2], 1);
	CHECK_EQ_INT(applied[3], 1);
	CHECK_EQ_INT(applied[4], 2);
	CHECK_EQ_INT(refused, 0);
	free_source(s);
}

static void test_runs_batch(void)
{
	struct nfq_source *s = fake_source(256);
	for (uint32_t id = 1; id <= 100; id++)
		receive(s, id);
	for (uint32_t id = 1; id <= 100; id++)
		ts_nfq_verdict(&s->base, id, true, 0x200, 0xff00, 0x11);
	ts_nfq_flush(&s->base);
	CHECK_EQ_INT(messages, 1);
	CHECK_EQ_INT(batches, 1);
	for (uint32_t id = 1; id <= 100; id++) {
		CHECK_EQ_INT(applied[id], 1);
		CHECK_EQ_INT(applied_mark[id], 0x211); /* the packet's other mark bits stay */
	}
	CHECK_EQ_INT(s->pending_count, 0);
	free_source(s);
}

static void test_random_orders(void)
{
	rng_state = 0xba7c4e5;
	for (int round = 0; round < 300; round++) {
		struct nfq_source *s = fake_source(64);
		uint32_t n = 2 + rnd() % 60, next = 1;
		int want[MAX_ID] = {0};
		uint32_t held[64], held_count = 0;
		/* Packets arrive in order; each is answered at once, or held and
		 * answered later (in any order), with runs of equal verdicts. */
		while (next <= n || held_count) {
			if (next <= n && (held_count == 0 || rnd() % 3)) {
				uint32_t id = next++;
				receive(s, id);
				want[id] = rnd() % 4 ? 1 : 2;
				if (rnd() % 5 == 0) {
					held[held_count++] = id;
					continue;
				}
				ts_nfq_verdict(&s->base, id, want[id] == 1, 0x100, 0xff00, 0);
			} else {
				uint32_t k = rnd() % held_count, id = held[k];
				held[k] = held[--held_count];
				ts_nfq_verdict(&s->base, id, want[id] == 1, 0x100, 0xff00, 0);
			}
			if (rnd() % 7 == 0)
				ts_nfq_flush(&s->base);
		}
		ts_nfq_flush(&s->base);
		for (uint32_t id = 1; id <= n; id++)
			CHECK_EQ_INT(applied[id], want[id]);
		CHECK_EQ_INT(refused, 0);
		CHECK_EQ_INT(s->pending_count, 0);
		free_source(s);
		if (check_test_failed) {
			printf("  round %d, %u packets\n", round, n);
			break;
		}
	}
}

static void test_overflow_stops_batching(void)
{
	struct nfq_source *s = fake_source(4);
	for (uint32_t id = 1; id <= 6; id++)
		receive(s, id); /* 5 and 6 do not fit in the record */
	for (uint32_t id = 2; id <= 6; id++)
		ts_nfq_verdict(&s->base, id, true, 0x100, 0xff00, 0);
	ts_nfq_flush(&s->base);
	CHECK_EQ_INT(batches, 0);
	CHECK_EQ_INT(queued[1], true); /* never covered by someone else's verdict */
	free_source(s);
}

int main(void)
{
	RUN(test_held_packet_blocks_the_batch);
	RUN(test_runs_batch);
	RUN(test_random_orders);
	RUN(test_overflow_stops_batching);
	return check_exit_code();
}
