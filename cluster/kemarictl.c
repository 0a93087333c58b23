// SPDX-License-Identifier: GPL-2.0
/*
 * kemarictl: the operator's CLI. Talks to the local kemarid over libqb IPC,
 * except `config check`, which only parses files.
 *
 * Exit codes (kemarictl(8)):
 *   0 success                     4 permission denied
 *   1 refused by kemarid          5 configuration invalid
 *   2 usage error                 6 no such VM
 *   3 kemarid not reachable       7 timed out
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <qb/qbipcc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kemarictl_fmt.h"
#include "km_config.h"
#include "km_ipc.h"

enum {
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_RUNNING = 3,
	EXIT_DENIED = 4,
	EXIT_CONFIG = 5,
	EXIT_NO_VM = 6,
	EXIT_TIMEOUT = 7,
};

#define IPC_TIMEOUT_MS 30000

static const char *ipc_name = KM_IPC_NAME;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kemarictl [-s IPC-NAME] COMMAND [ARGS]\n"
		"  status [VM] [--json]            state of every VM (DRBD-style)\n"
		"  events [--timestamps] [--now]   stream of state changes\n"
		"  protect VM --peer NODE          VM runs here; replicate it to NODE\n"
		"  unprotect VM                    stop replicating VM\n"
		"  switchover VM                   lossless move to the peer\n"
		"  reprotect VM                    resync a new Secondary after failover\n"
		"  drill VM [--timeout SEC]        controlled failover, reports its time\n"
		"  config check [-c FILE]          validate the configuration files\n"
		"  config reload                   kemarid re-reads its configuration\n"
		"Exit codes: 0 ok, 1 refused, 2 usage, 3 kemarid not reachable,\n"
		"4 permission denied, 5 bad configuration, 6 no such VM, 7 timeout.\n"
		"See kemarictl(8).\n");
}

static int ipc_connect(qb_ipcc_connection_t **out)
{
	*out = qb_ipcc_connect(ipc_name, KM_IPC_MAX_MSG);
	if (*out)
		return 0;
	if (errno == EACCES || errno == EPERM) {
		fprintf(stderr,
			"kemarictl: permission denied: only root and the group configured in ipc.group (haclient) may use kemarid\n");
		return EXIT_DENIED;
	}
	fprintf(stderr,
		"kemarictl: cannot connect to kemarid (IPC %s): %s; is kemarid running?\n",
		ipc_name, strerror(errno));
	return EXIT_NOT_RUNNING;
}

static int request(qb_ipcc_connection_t *c, uint32_t id, uint32_t cmd,
		   const char *vm, const char *peer, void *resp, size_t len)
{
	struct km_ipc_request req = { 0 };
	ssize_t n;

	req.hdr.id = (int32_t)id;
	req.hdr.size = sizeof(req);
	req.cmd = cmd;
	snprintf(req.vm, sizeof(req.vm), "%s", vm ? vm : "");
	snprintf(req.peer, sizeof(req.peer), "%s", peer ? peer : "");
	n = qb_ipcc_send(c, &req, sizeof(req));
	if (n >= 0)
		n = qb_ipcc_recv(c, resp, len, IPC_TIMEOUT_MS);
	if (n < 0) {
		fprintf(stderr, "kemarictl: IPC with kemarid failed: %s\n",
			strerror((int)-n));
		return EXIT_NOT_RUNNING;
	}
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
					    { NULL, 0, NULL, 0 } };
	qb_ipcc_connection_t *c;
	struct km_ipc_status *st;
	bool json = false;
	int r, o;

	while ((o = getopt_long(argc, argv, "j", lo, NULL)) != -1) {
		if (o != 'j')
			return EXIT_USAGE;
		json = true;
	}
	if (argc - optind > 1)
		return EXIT_USAGE;
	r = ipc_connect(&c);
	if (r)
		return r;
	st = calloc(1, KM_IPC_MAX_MSG);
	if (!st) {
		qb_ipcc_disconnect(c);
		return EXIT_REFUSED;
	}
	r = request(c, KM_IPC_STATUS, 0, argv[optind], NULL, st,
		    KM_IPC_MAX_MSG);
	if (!r && st->hdr.error == -ENOENT) {
		fprintf(stderr, "kemarictl: no VM '%s' on this node\n",
			argv[optind]);
		r = EXIT_NO_VM;
	} else if (!r && json) {
		struct json_object *j = kc_status_json(st);

		printf("%s\n", json_object_to_json_string_ext(
				       j, JSON_C_TO_STRING_PRETTY));
		json_object_put(j);
	} else if (!r) {
		kc_print_status(stdout, st);
	}
	free(st);
	qb_ipcc_disconnect(c);
	return r;
}

static int subscribe(qb_ipcc_connection_t *c)
{
	struct km_ipc_reply rep;
	int r = request(c, KM_IPC_SUBSCRIBE, 0, NULL, NULL, &rep, sizeof(rep));

	if (!r && rep.hdr.error) {
		fprintf(stderr, "kemarictl: %s\n", rep.msg);
		return EXIT_REFUSED;
	}
	return r;
}

static int next_event(qb_ipcc_connection_t *c, struct km_ipc_event *ev,
		      int timeout_ms)
{
	ssize_t n = qb_ipcc_event_recv(c, ev, sizeof(*ev), timeout_ms);

	if (n == -ETIMEDOUT || n == -EAGAIN)
		return -ETIMEDOUT;
	if (n < 0)
		return (int)n;
	return n == sizeof(*ev) ? 0 : -EPROTO;
}

static int cmd_events(int argc, char **argv)
{
	static const struct option lo[] = { { "timestamps", no_argument, NULL,
					      't' },
					    { "now", no_argument, NULL, 'n' },
					    { NULL, 0, NULL, 0 } };
	bool ts = false, now = false;
	qb_ipcc_connection_t *c;
	struct km_ipc_event ev;
	int r, o;

	while ((o = getopt_long(argc, argv, "tn", lo, NULL)) != -1) {
		if (o == 't')
			ts = true;
		else if (o == 'n')
			now = true;
		else
			return EXIT_USAGE;
	}
	if (optind != argc)
		return EXIT_USAGE;
	r = ipc_connect(&c);
	r = r ?: subscribe(c);
	if (r)
		return r;
	for (;;) {
		r = next_event(c, &ev, -1);
		if (r == -ETIMEDOUT)
			continue;
		if (r) {
			fprintf(stderr, "kemarictl: event stream ended: %s\n",
				strerror(-r));
			r = EXIT_NOT_RUNNING;
			break;
		}
		if (!kc_print_event(stdout, &ev, ts) && now)
			break;
	}
	qb_ipcc_disconnect(c);
	return r;
}

static int exit_for(int error)
{
	switch (error) {
	case 0:
		return 0;
	case -ENOENT:
		return EXIT_NO_VM;
	case -EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_REFUSED;
	}
}

static int command(qb_ipcc_connection_t *c, enum km_ipc_cmd cmd, const char *vm,
		   const char *peer)
{
	struct km_ipc_reply rep;
	int r = request(c, KM_IPC_COMMAND, cmd, vm, peer, &rep, sizeof(rep));

	if (r)
		return r;
	if (rep.hdr.error) {
		fprintf(stderr, "kemarictl: %s: %s\n", vm, rep.msg);
		return exit_for(rep.hdr.error);
	}
	return 0;
}

static int cmd_simple(enum km_ipc_cmd cmd, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "peer", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 }
	};
	const char *peer = NULL;
	qb_ipcc_connection_t *c;
	int r, o;

	while ((o = getopt_long(argc, argv, "p:", lo, NULL)) != -1) {
		if (o != 'p' || cmd != KM_CMD_PROTECT)
			return EXIT_USAGE;
		peer = optarg;
	}
	if (argc - optind != 1 || (cmd == KM_CMD_PROTECT && !peer))
		return EXIT_USAGE;
	r = ipc_connect(&c);
	if (r)
		return r;
	r = command(c, cmd, argv[optind], peer);
	if (!r)
		printf("%s: ok\n", argv[optind]);
	qb_ipcc_disconnect(c);
	return r;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Wait for the peer to announce itself Primary for @vm. */
static int wait_peer_primary(qb_ipcc_connection_t *c, const char *vm,
			     uint64_t start, int timeout_s)
{
	uint64_t deadline = start + (uint64_t)timeout_s * 1000000;
	struct km_ipc_event ev;
	int r;

	while (now_usec() < deadline) {
		r = next_event(c, &ev, 500);
		if (r == -ETIMEDOUT)
			continue;
		if (r)
			return EXIT_NOT_RUNNING;
		if (ev.object != KM_OBJ_VM || strcmp(ev.vm.name, vm) ||
		    ev.vm.peer_role != KM_ROLE_PRIMARY)
			continue;
		printf("drill: %s failed over to %s in %.1f ms (generation %" PRIu64
		       ")\n",
		       vm, ev.vm.peer, (double)(ev.usec - start) / 1000.0,
		       ev.vm.generation);
		return 0;
	}
	fprintf(stderr,
		"kemarictl: drill: %s did not become Primary on the peer within %d s\n",
		vm, timeout_s);
	return EXIT_TIMEOUT;
}

static int cmd_drill(int argc, char **argv)
{
	static const struct option lo[] = { { "timeout", required_argument,
					      NULL, 't' },
					    { NULL, 0, NULL, 0 } };
	struct km_ipc_event ev;
	qb_ipcc_connection_t *c;
	int r, o, timeout = 60;
	uint64_t start;

	while ((o = getopt_long(argc, argv, "t:", lo, NULL)) != -1) {
		if (o != 't' || (timeout = atoi(optarg)) <= 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return EXIT_USAGE;
	r = ipc_connect(&c);
	r = r ?: subscribe(c);
	if (r)
		return r;
	while (!next_event(c, &ev, 2000) && ev.kind != KM_EVENT_END_OF_DUMP)
		;
	start = now_usec();
	r = command(c, KM_CMD_DRILL, argv[optind], NULL);
	r = r ?: wait_peer_primary(c, argv[optind], start, timeout);
	qb_ipcc_disconnect(c);
	return r;
}

/*
 * kemarid applies what can change while it runs and refuses the whole file
 * otherwise: 0 applied, 5 the file is invalid, 1 a setting needs a restart.
 */
static int cmd_reload(int argc)
{
	struct km_ipc_reply rep;
	qb_ipcc_connection_t *c;
	int r;

	if (argc != 2)
		return EXIT_USAGE;
	r = ipc_connect(&c);
	if (r)
		return r;
	r = request(c, KM_IPC_RELOAD, 0, NULL, NULL, &rep, sizeof(rep));
	qb_ipcc_disconnect(c);
	if (r)
		return r;
	if (!rep.hdr.error) {
		printf("reloaded: %s\n", rep.msg);
		return 0;
	}
	fprintf(stderr, "kemarictl: reload refused: %s\n", rep.msg);
	return rep.hdr.error == -EINVAL ? EXIT_CONFIG : EXIT_REFUSED;
}

static int cmd_config(int argc, char **argv)
{
	const char *path = KM_CONFIG_DEFAULT;
	struct km_config_error err;
	struct km_config *cfg;
	char buf[PATH_MAX + 300];
	size_t i;
	int o;

	if (argc >= 2 && !strcmp(argv[1], "reload"))
		return cmd_reload(argc);
	if (argc < 2 || strcmp(argv[1], "check"))
		return EXIT_USAGE;
	argc--;
	argv++;
	while ((o = getopt(argc, argv, "c:")) != -1) {
		if (o != 'c')
			return EXIT_USAGE;
		path = optarg;
	}
	if (km_config_load(path, &cfg, &err)) {
		fprintf(stderr, "%s\n",
			km_config_error_format(&err, buf, sizeof(buf)));
		return EXIT_CONFIG;
	}
	printf("%s: ok, %zu VM(s)", path, cfg->n_vms);
	for (i = 0; i < cfg->n_vms; i++)
		printf("%s %s (%s, %s)", i ? "," : ":", cfg->vms[i].name,
		       cfg->vms[i].nodes[0].name, cfg->vms[i].nodes[1].name);
	printf("\n");
	if (!cfg->fence_handler[0])
		fprintf(stderr,
			"warning: no fencing.handler: kemarid will never take over from a lost Primary\n");
	else if (access(cfg->fence_handler, X_OK))
		fprintf(stderr,
			"warning: fencing.handler %s is not executable on this node\n",
			cfg->fence_handler);
	if (access(cfg->backend_command, X_OK))
		fprintf(stderr,
			"warning: backend.command %s is not executable on this node\n",
			cfg->backend_command);
	km_config_destroy(cfg);
	return 0;
}

static int dispatch(int argc, char **argv)
{
	const char *cmd = argv[0];

	optind = 0; /* GNU getopt: start over on the sub-command's words */
	if (!strcmp(cmd, "status"))
		return cmd_status(argc, argv);
	if (!strcmp(cmd, "events"))
		return cmd_events(argc, argv);
	if (!strcmp(cmd, "protect"))
		return cmd_simple(KM_CMD_PROTECT, argc, argv);
	if (!strcmp(cmd, "unprotect"))
		return cmd_simple(KM_CMD_UNPROTECT, argc, argv);
	if (!strcmp(cmd, "switchover"))
		return cmd_simple(KM_CMD_SWITCHOVER, argc, argv);
	if (!strcmp(cmd, "reprotect"))
		return cmd_simple(KM_CMD_REPROTECT, argc, argv);
	if (!strcmp(cmd, "drill"))
		return cmd_drill(argc, argv);
	if (!strcmp(cmd, "config"))
		return cmd_config(argc, argv);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	int o, r;

	while ((o = getopt(argc, argv, "+s:h")) != -1) {
		if (o == 's') {
			ipc_name = optarg;
		} else if (o == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	r = dispatch(argc - optind, argv + optind);
	if (r == EXIT_USAGE)
		usage(stderr);
	return r;
}
