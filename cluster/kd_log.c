// SPDX-License-Identifier: GPL-2.0
/*
 * qb_log for kemarid: syslog (the journal) as a daemon, stderr in the
 * foreground, and always a 1 MiB blackbox ring at trace level that is
 * written to a file on every failover, so that the decision can be
 * examined afterwards (`qb-blackbox FILE`).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kemarid_int.h"

#define BLACKBOX_SIZE (1024 * 1024)

/* Debug is for kemarid's own files; libqb's IPC chatter stays at info. */
static const char *const own_files[] = {
	"kemarid.c", "kd_vm.c", "kd_corosync.c", "kd_ipc.c", "kd_child.c",
};

static void filter(int target, bool debug)
{
	size_t i;

	qb_log_filter_ctl(target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
			  LOG_INFO);
	for (i = 0; debug && i < sizeof(own_files) / sizeof(own_files[0]); i++)
		qb_log_filter_ctl(target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE,
				  own_files[i], LOG_DEBUG);
}

void kd_log_set_debug(bool foreground, bool debug)
{
	int t = foreground ? QB_LOG_STDERR : QB_LOG_SYSLOG;

	qb_log_filter_ctl(t, QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, NULL,
			  0);
	filter(t, debug);
}

void kd_log_init(bool foreground, bool debug)
{
	qb_log_init("kemarid", LOG_DAEMON, LOG_INFO);
	filter(QB_LOG_SYSLOG, debug);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, !foreground);
	qb_log_format_set(QB_LOG_STDERR, "%T kemarid[%P] %p: %b");
	filter(QB_LOG_STDERR, debug);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, foreground);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, BLACKBOX_SIZE);
	qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD,
			  QB_LOG_FILTER_FILE, "*", LOG_TRACE);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
}

void kd_log_blackbox(struct kd *kd, const char *why)
{
	const char *dir = kd->cfg->blackbox_dir[0] ? kd->cfg->blackbox_dir :
						     kd->cfg->state_dir;
	char path[PATH_MAX + 128], stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	ssize_t n;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(path, sizeof(path), "%s/kemarid-%s-%s.fdata", dir, why, stamp);
	n = qb_log_blackbox_write_to_file(path);
	if (n < 0)
		qb_log(LOG_ERR, "cannot write the blackbox to %s: %s", path,
		       strerror((int)-n));
	else
		qb_log(LOG_NOTICE, "blackbox written to %s (%zd bytes)", path,
		       n);
}

void kd_log_exit(void)
{
	qb_log_fini();
}
