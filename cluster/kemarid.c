// SPDX-License-Identifier: GPL-2.0
/*
 * kemarid: one per host. Start-up order, unwound in reverse on exit:
 * configuration, logging, state directories, the loop, IPC, corosync
 * (which names this node), the VMs, the backend, systemd readiness.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "kemarid_int.h"

struct opts {
	const char *config;
	const char *node;
	const char *ipc_name;
	bool foreground;
	bool debug;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kemarid [-f] [-d] [-c CONFIG] [-n NODE] [-s IPC-NAME]\n"
		"  -c CONFIG  main configuration file (default %s)\n"
		"  -f         stay in the foreground and log to stderr\n"
		"  -d         debug logging\n"
		"  -n NODE    this node's name (default: from corosync's nodelist)\n"
		"  -s NAME    IPC service name (default %s)\n"
		"See kemarid(8).\n",
		KM_CONFIG_DEFAULT, KM_IPC_NAME);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	o->config = KM_CONFIG_DEFAULT;
	o->ipc_name = KM_IPC_NAME;
	while ((c = getopt(argc, argv, "c:fdn:s:h")) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'n':
			o->node = optarg;
			break;
		case 's':
			o->ipc_name = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static int mkdirs(const char *path)
{
	char buf[PATH_MAX], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Reload: only the settings that can change under running state machines
 * (km_config_compare()); the rest is refused as a whole, so kemarid never
 * runs half of an old and half of a new configuration.
 */
int kd_config_reload(struct kd *kd, char *msg, size_t len)
{
	struct km_config *cfg, *old = kd->cfg;
	struct km_config_error err;
	struct km_vmsm_policy policy;
	size_t i;
	int r;

	sd_notify(0, "RELOADING=1");
	r = km_config_load(kd->config_path, &cfg, &err);
	if (r) {
		km_config_error_format(&err, msg, len);
		goto err_log;
	}
	r = km_config_compare(old, cfg, msg, len);
	if (!r && cfg->blackbox_dir[0] &&
	    strcmp(cfg->blackbox_dir, old->blackbox_dir))
		r = mkdirs(cfg->blackbox_dir);
	if (r) {
		if (r != -EBUSY)
			snprintf(msg, len, "cannot create %s: %s",
				 cfg->blackbox_dir, strerror(-r));
		km_config_destroy(cfg);
		goto err_log;
	}
	/* The VM set is the same (compare said so): re-point each VM. */
	kd_vm_policy(cfg, &policy);
	for (i = 0; i < kd->n_vms; i++) {
		kd->vms[i].cfg = km_config_find_vm(cfg, kd->vms[i].cfg->name);
		km_vmsm_set_policy(&kd->vms[i].sm, &policy);
	}
	kd->cfg = cfg;
	km_config_destroy(old);
	kd_ipc_set_group(kd);
	kd_log_set_debug(kd->foreground, kd->debug_forced || cfg->debug);
	qb_log(LOG_NOTICE, "configuration %s reloaded: %s", kd->config_path,
	       msg);
	sd_notify(0, "READY=1");
	return 0;

err_log:
	qb_log(LOG_WARNING, "configuration reload refused: %s", msg);
	sd_notify(0, "READY=1");
	return r;
}

static int32_t on_hangup(int32_t sig, void *data)
{
	char msg[PATH_MAX + 300];

	(void)sig;
	kd_config_reload(data, msg, sizeof(msg));
	return 0;
}

static void stop_loop(void *data)
{
	struct kd *kd = data;

	qb_loop_stop(kd->loop);
}

/*
 * Subscribers are told that every object goes away, and given a moment to
 * read it: a client that sees the connection close first stops reading.
 */
#define STOP_GRACE_MS 200

static int32_t on_signal(int32_t sig, void *data)
{
	struct kd *kd = data;
	qb_loop_timer_handle t;

	qb_log(LOG_NOTICE, "signal %d: shutting down (VMs keep running)", sig);
	sd_notify(0, "STOPPING=1");
	kd_ipc_publish_destroy(kd);
	if (qb_loop_timer_add(kd->loop, QB_LOOP_HIGH,
			      STOP_GRACE_MS * QB_TIME_NS_IN_MSEC, kd, stop_loop,
			      &t))
		qb_loop_stop(kd->loop);
	return 0;
}

static void watchdog_kick(void *data)
{
	struct kd *kd = data;
	qb_loop_timer_handle t;
	uint64_t usec = 0;

	sd_notify(0, "WATCHDOG=1");
	if (sd_watchdog_enabled(0, &usec) > 0)
		qb_loop_timer_add(kd->loop, QB_LOOP_HIGH,
				  usec / 2 * QB_TIME_NS_IN_USEC, kd,
				  watchdog_kick, &t);
}

/*
 * Connecting to corosync learns our name from its nodelist; the VMs are
 * set up then. Without corosync and without -n they wait for it: a guessed
 * name would silently leave VMs out.
 */
static int start_cluster(struct kd *kd, const struct opts *o)
{
	if (o->node) {
		snprintf(kd->node, sizeof(kd->node), "%s", o->node);
		kd->node_forced = true;
	}
	if (!kd_cs_connect(kd))
		return 0;
	qb_log(LOG_WARNING, "corosync is not reachable yet: retrying%s",
	       o->node ? "" : "; VMs are set up once it answers");
	kd_cs_lost(kd);
	return o->node ? kd_vms_init(kd) : 0;
}

static int load_config(struct kd *kd, const char *path)
{
	struct km_config_error err;
	char buf[PATH_MAX + 300];
	int r;

	r = km_config_load(path, &kd->cfg, &err);
	if (r) {
		fprintf(stderr, "kemarid: %s\n",
			km_config_error_format(&err, buf, sizeof(buf)));
		return r;
	}
	r = mkdirs(kd->cfg->state_dir);
	if (!r && kd->cfg->blackbox_dir[0])
		r = mkdirs(kd->cfg->blackbox_dir);
	if (r)
		fprintf(stderr, "kemarid: cannot create %s: %s\n",
			kd->cfg->state_dir, strerror(-r));
	return r;
}

static int run(struct kd *kd, const struct opts *o)
{
	int r;

	kd->loop = qb_loop_create();
	if (!kd->loop)
		return -ENOMEM;
	qb_loop_signal_add(kd->loop, QB_LOOP_HIGH, SIGTERM, kd, on_signal,
			   NULL);
	qb_loop_signal_add(kd->loop, QB_LOOP_HIGH, SIGINT, kd, on_signal, NULL);
	qb_loop_signal_add(kd->loop, QB_LOOP_HIGH, SIGHUP, kd, on_hangup, NULL);
	r = kd_ipc_init(kd);
	if (r) {
		qb_log(LOG_ERR, "cannot start the IPC service %s: %s",
		       kd->ipc_name, strerror(-r));
		goto err_loop;
	}
	kd->backend = &kd_backend_command_ops;
	r = kd->backend->init(kd);
	if (r)
		goto err_ipc;
	r = start_cluster(kd, o);
	if (r)
		goto err_cs;
	qb_log(LOG_NOTICE, "kemarid running: node %s, %zu VM(s), backend %s",
	       kd->node[0] ? kd->node : "(waiting for corosync)", kd->n_vms,
	       kd->backend->name);
	sd_notifyf(0, "READY=1\nSTATUS=node %s, %zu VM(s)",
		   kd->node[0] ? kd->node : "unknown", kd->n_vms);
	watchdog_kick(kd);
	qb_loop_run(kd->loop);

err_cs:
	kd_vms_exit(kd);
	kd_cs_exit(kd);
	kd->backend->exit(kd);
err_ipc:
	kd_ipc_exit(kd);
err_loop:
	qb_loop_destroy(kd->loop);
	return r;
}

int main(int argc, char **argv)
{
	struct kd kd = { 0 };
	struct opts o = { 0 };
	int r;

	if (parse_opts(argc, argv, &o))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (load_config(&kd, o.config))
		return 6; /* LSB: program is not configured */
	kd_log_init(o.foreground, o.debug || kd.cfg->debug);
	kd.ipc_name = o.ipc_name;
	kd.config_path = o.config;
	kd.foreground = o.foreground;
	kd.debug_forced = o.debug;
	r = run(&kd, &o);
	km_config_destroy(kd.cfg);
	kd_log_exit();
	return r ? 1 : 0;
}
