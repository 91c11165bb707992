/*
 * Daemon logging: to standard error (the default, for systemd and procd,
 * which keep it) or to syslog. Safe from several threads.
 */
#ifndef TORSIEVE_LOG_H
#define TORSIEVE_LOG_H

#include <stdbool.h>
#include <syslog.h>

void ts_log_open(bool use_syslog);
void ts_log_close(void);

/* prio is a syslog priority (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO). */
void ts_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log each line of text (a multi-line report) at prio, as one block. */
void ts_log_lines(int prio, const char *text);

#endif
