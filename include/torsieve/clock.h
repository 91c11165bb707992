/*
 * Clocks. Deadlines and timeouts use the monotonic clock: a router without
 * a real-time clock boots at its firmware's date and NTP then steps the
 * wall clock by months, which must not expire or stretch anything. Wall
 * time is for what people read (log lines, counters' "when") and for what
 * must mean the same after a restart (isolation epochs).
 */
#ifndef TORSIEVE_CLOCK_H
#define TORSIEVE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ts_monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t ts_wall_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
