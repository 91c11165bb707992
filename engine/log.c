/* Daemon logging to standard error or syslog. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "torsieve/log.h"

static bool to_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void ts_log_open(bool use_syslog)
{
	to_syslog = use_syslog;
	if (to_syslog)
		openlog("torsieve", LOG_PID, LOG_DAEMON);
}

void ts_log_close(void)
{
	if (to_syslog)
		closelog();
}

static const char *prio_name(int prio)
{
	switch (prio) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	default:
		return "";
	}
}

void ts_log(int prio, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (to_syslog)
		syslog(prio, "%s", msg);
	else
		fprintf(stderr, "torsieve: %s%s\n", prio_name(prio), msg);
	pthread_mutex_unlock(&log_lock);
}

void ts_log_lines(int prio, const char *text)
{
	pthread_mutex_lock(&log_lock);
	while (*text) {
		size_t n = strcspn(text, "\n");
		if (to_syslog)
			syslog(prio, "%.*s", (int)n, text);
		else
			fprintf(stderr, "torsieve: %.*s\n", (int)n, text);
		text += n;
		if (*text)
			text++;
	}
	pthread_mutex_unlock(&log_lock);
}
