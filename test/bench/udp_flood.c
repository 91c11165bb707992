/*
 * The NFQUEUE benchmark's traffic generator: small UDP datagrams as fast as
 * one core sends them (sendmmsg, 64 at a time, on connected sockets), for a
 * fixed time. hping3 --flood sends one packet per system call through a raw
 * socket and is slower than the queue's consumers on this machine.
 *
 * usage: udp_flood DST_IPV4 PORT SECONDS [--size BYTES] [--flows N] [--rate PPS]
 *
 *   --size   UDP payload bytes (default 18: a 60-byte Ethernet frame)
 *   --flows  N sockets on N source ports, a batch from each in turn
 *            (default 1: one flow)
 *   --rate   at most PPS datagrams a second: a batch of 64 at a time, each at
 *            its own time (clock_nanosleep to an absolute time; default: as
 *            fast as it can)
 *
 * SIGTERM or SIGINT ends it early. Prints "udp_flood: sent N datagrams in S s
 * (R/s), F flows, E send errors" at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"

#define BATCH     64
#define MAX_FLOWS 4096

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int main(int argc, char **argv)
{
	static const char usage[] = "usage: udp_flood DST_IPV4 PORT SECONDS [--size BYTES] "
	                            "[--flows N] [--rate PPS]\n";
	if (argc < 4) {
		fputs(usage, stderr);
		return 2;
	}
	struct sockaddr_in dst = {.sin_family = AF_INET};
	int port = atoi(argv[2]);
	double seconds = atof(argv[3]);
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 || port < 1 || port > 65535 ||
	    seconds <= 0) {
		fputs(usage, stderr);
		return 2;
	}
	dst.sin_port = htons((uint16_t)port);
	int size = 18, flows = 1;
	double rate = 0;
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size = atoi(argv[++i]);
		else if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc)
			flows = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			rate = atof(argv[++i]);
		else
			size = -1;
		if (size < 0 || size > 1400 || flows < 1 || flows > MAX_FLOWS || rate < 0) {
			fputs(usage, stderr);
			return 2;
		}
	}

	static int fds[MAX_FLOWS];
	for (int f = 0; f < flows; f++) {
		fds[f] = socket(AF_INET, SOCK_DGRAM, 0);
		if (fds[f] < 0 || connect(fds[f], (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			perror("udp_flood: socket");
			return 1;
		}
	}
	static char payload[1400];
	memset(payload, 'x', sizeof(payload));
	struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size};
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	uint64_t sent = 0, errors = 0;
	double t0 = now_ns(), end = t0 + seconds * 1e9, t = t0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long step = rate > 0 ? (long)(BATCH * 1e9 / rate) : 0;
	for (int f = 0; t < end && !stop_requested; f = (f + 1) % flows) {
		if (step) {
			next.tv_nsec += step;
			while (next.tv_nsec >= 1000000000L) {
				next.tv_nsec -= 1000000000L;
				next.tv_sec++;
			}
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) ==
			               EINTR &&
			       !stop_requested)
				;
		}
		int n = sendmmsg(fds[f], msgs, BATCH, 0);
		if (n > 0)
			sent += (uint64_t)n;
		else if (errno != EINTR)
			errors++; /* ECONNREFUSED from an ICMP error, ENOBUFS: go on */
		t = now_ns();
	}
	double s = (t - t0) / 1e9;
	printf("udp_flood: sent %" PRIu64 " datagrams in %.3f s (%.0f/s), %d flows, %" PRIu64
	       " send errors\n",
	       sent, s, (double)sent / s, flows, errors);
	for (int f = 0; f < flows; f++)
		close(fds[f]);
	return 0;
}
