// SPDX-License-Identifier: GPL-2.0
/*
 * cpg-watch: join a corosync CPG group and print every membership change,
 * every totem ring change and every quorum change as one JSON line on
 * stdout, stamped with CLOCK_MONOTONIC milliseconds ("t_ms"), so that a test
 * can measure how long the cluster took to notice something it did.
 *
 *   cpg-watch [-g GROUP] [-t SECONDS]   watch (SIGINT/SIGTERM end it)
 *   cpg-watch --now                     print CLOCK_MONOTONIC ms and exit
 *
 * Events:
 *   {"event":"ready","nodeid":1,"pid":42,"group":"g","t_ms":...}
 *   {"event":"joined"|"left","nodeid":2,"pid":43,"reason":"nodedown",...}
 *   {"event":"members","nodeids":[1,2],...}          CPG group after a change
 *   {"event":"ring","ring_id":"1.8","members":[1],...}    totem membership
 *   {"event":"quorum","quorate":true,"ring_id":"1.8","members":[1],...}
 *   {"event":"lost","what":"cpg_dispatch","error":"..."}  corosync went away
 *   {"event":"end","reason":"signal"|"timeout",...}
 *
 * Exit status: 0 after a signal or the timeout, 3 when the connection to
 * corosync was lost, 1 on any other error (named on stderr).
 *
 * One poll loop serves the CPG fd, the quorum fd and a signalfd, as kemarid
 * does; CS_ERR_TRY_AGAIN (corosync busy syncing) is retried with a bounded
 * exponential backoff in one place, CS_RETRY().
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <json-c/json.h>

enum { EXIT_LOST = 3 };

/* Backoff: 10, 20, 40 ... capped at 1000 ms; 10 calls, ~3.3 s of sleep. */
#define RETRY_TRIES 10
#define RETRY_FIRST_MS 10
#define RETRY_CAP_MS 1000

#define TIMEOUT_DEFAULT_S 120
#define TIMEOUT_MAX_S 3600

struct watch {
	cpg_handle_t cpg;
	quorum_handle_t quorum;
	int sig_fd;
	struct cpg_name group;
	const char *lost_what;
	cs_error_t lost_err;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sleeps before retry number @attempt (0-based) of a call that returned
 * CS_ERR_TRY_AGAIN; false once the retries are used up.
 */
static bool backoff(unsigned int attempt)
{
	unsigned int ms = RETRY_FIRST_MS << attempt;
	struct timespec ts;

	if (attempt + 1 >= RETRY_TRIES)
		return false;
	if (ms > RETRY_CAP_MS)
		ms = RETRY_CAP_MS;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
	return true;
}

/*
 * Stores the result of @call in @res, calling it again after a backoff as
 * long as corosync answers CS_ERR_TRY_AGAIN (it does while it syncs a new
 * membership); the last answer stays in @res when the tries run out.
 */
#define CS_RETRY(res, call)                                    \
	do {                                                   \
		unsigned int attempt__ = 0;                    \
		while (((res) = (call)) == CS_ERR_TRY_AGAIN && \
		       backoff(attempt__++))                   \
			;                                      \
	} while (0)

/* Stamps @o with the time, prints it as one line and frees it. */
static void emit(struct json_object *o)
{
	json_object_object_add(o, "t_ms", json_object_new_int64(now_ms()));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

static struct json_object *event_new(const char *name)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(name));
	return o;
}

static struct json_object *nodeids_new(const uint32_t *ids, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int64(ids[i]));
	return a;
}

static struct json_object *ring_id_new(uint32_t nodeid, uint64_t seq)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIx32 ".%" PRIx64, nodeid, seq);
	return json_object_new_string(buf);
}

static const char *reason_name(uint32_t reason)
{
	switch (reason) {
	case CPG_REASON_JOIN:
		return "join";
	case CPG_REASON_LEAVE:
		return "leave";
	case CPG_REASON_NODEDOWN:
		return "nodedown";
	case CPG_REASON_NODEUP:
		return "nodeup";
	case CPG_REASON_PROCDOWN:
		return "procdown";
	default:
		return "undefined";
	}
}

static void emit_addresses(const char *name, const struct cpg_address *a,
			   size_t n)
{
	struct json_object *o;
	size_t i;

	for (i = 0; i < n; i++) {
		o = event_new(name);
		json_object_object_add(o, "nodeid",
				       json_object_new_int64(a[i].nodeid));
		json_object_object_add(o, "pid",
				       json_object_new_int64(a[i].pid));
		json_object_object_add(
			o, "reason",
			json_object_new_string(reason_name(a[i].reason)));
		emit(o);
	}
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group,
		       const struct cpg_address *members, size_t n_members,
		       const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
	struct json_object *o, *ids;
	size_t i;

	(void)handle;
	(void)group;
	emit_addresses("left", left, n_left);
	emit_addresses("joined", joined, n_joined);
	o = event_new("members");
	ids = json_object_new_array();
	for (i = 0; i < n_members; i++)
		json_object_array_add(ids,
				      json_object_new_int64(members[i].nodeid));
	json_object_object_add(o, "nodeids", ids);
	emit(o);
}

static void on_totem_confchg(cpg_handle_t handle, struct cpg_ring_id ring_id,
			     uint32_t n_members, const uint32_t *members)
{
	struct json_object *o = event_new("ring");

	(void)handle;
	json_object_object_add(o, "ring_id",
			       ring_id_new(ring_id.nodeid, ring_id.seq));
	json_object_object_add(o, "members", nodeids_new(members, n_members));
	emit(o);
}

static void on_quorum(quorum_handle_t handle, uint32_t quorate,
		      struct quorum_ring_id ring_id, uint32_t n_members,
		      const uint32_t *members)
{
	struct json_object *o = event_new("quorum");

	(void)handle;
	json_object_object_add(o, "quorate",
			       json_object_new_boolean(quorate != 0));
	json_object_object_add(o, "ring_id",
			       ring_id_new(ring_id.nodeid, ring_id.seq));
	json_object_object_add(o, "members", nodeids_new(members, n_members));
	emit(o);
}

static void complain(const char *what, cs_error_t err)
{
	fprintf(stderr,
		"cpg-watch: %s: %s (%d); is corosync running in this "
		"network namespace?\n",
		what, cs_strerror(err), err);
}

static int signals_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int cpg_open(struct watch *w)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_confchg_fn = on_confchg,
		.cpg_totem_confchg_fn = on_totem_confchg,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	cs_error_t err;

	CS_RETRY(err, cpg_model_initialize(&w->cpg, CPG_MODEL_V1,
					   (cpg_model_data_t *)&model, w));
	if (err != CS_OK) {
		complain("cpg_model_initialize", err);
		return -ENOTCONN;
	}
	CS_RETRY(err, cpg_join(w->cpg, &w->group));
	if (err != CS_OK) {
		complain("cpg_join", err);
		cpg_finalize(w->cpg);
		return -ENOTCONN;
	}
	return 0;
}

static int quorum_open(struct watch *w)
{
	quorum_model_v1_data_t model = {
		.model = QUORUM_MODEL_V1,
		.quorum_notify_fn = on_quorum,
	};
	uint32_t type;
	cs_error_t err;

	CS_RETRY(err, quorum_model_initialize(&w->quorum, QUORUM_MODEL_V1,
					      (quorum_model_data_t *)&model,
					      &type, w));
	if (err != CS_OK) {
		complain("quorum_model_initialize", err);
		return -ENOTCONN;
	}
	CS_RETRY(err, quorum_trackstart(w->quorum,
					CS_TRACK_CURRENT | CS_TRACK_CHANGES));
	if (err != CS_OK) {
		complain("quorum_trackstart", err);
		quorum_finalize(w->quorum);
		return -ENOTCONN;
	}
	return 0;
}

static void emit_ready(struct watch *w)
{
	struct json_object *o;
	unsigned int nodeid = 0;
	cs_error_t err;

	CS_RETRY(err, cpg_local_get(w->cpg, &nodeid));
	if (err != CS_OK)
		complain("cpg_local_get", err);
	o = event_new("ready");
	json_object_object_add(o, "nodeid", json_object_new_int64(nodeid));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "group",
			       json_object_new_string(w->group.value));
	emit(o);
}

static int watch_open(struct watch *w)
{
	int ret;

	w->sig_fd = signals_open();
	if (w->sig_fd < 0) {
		fprintf(stderr, "cpg-watch: signalfd: %s\n",
			strerror(-w->sig_fd));
		return w->sig_fd;
	}
	ret = cpg_open(w);
	if (ret)
		goto err_close_signals;
	ret = quorum_open(w);
	if (ret)
		goto err_finalize_cpg;
	emit_ready(w);
	return 0;

err_finalize_cpg:
	cpg_finalize(w->cpg);
err_close_signals:
	close(w->sig_fd);
	return ret;
}

/* Safe after a lost connection: finalize only frees the local side then. */
static void watch_close(struct watch *w)
{
	quorum_finalize(w->quorum);
	cpg_leave(w->cpg, &w->group);
	cpg_finalize(w->cpg);
	close(w->sig_fd);
}

/* Dispatches one ready corosync fd; -ENOTCONN once corosync is gone. */
static int dispatch(struct watch *w, bool is_cpg, short revents)
{
	const char *what = is_cpg ? "cpg_dispatch" : "quorum_dispatch";
	cs_error_t err;

	if (is_cpg)
		CS_RETRY(err, cpg_dispatch(w->cpg, CS_DISPATCH_ALL));
	else
		CS_RETRY(err, quorum_dispatch(w->quorum, CS_DISPATCH_ALL));
	if (err == CS_OK && !(revents & (POLLHUP | POLLERR)))
		return 0;
	w->lost_what = what;
	w->lost_err = err == CS_OK ? CS_ERR_LIBRARY : err;
	return -ENOTCONN;
}

static void emit_end(const char *reason, const struct watch *w)
{
	struct json_object *o = event_new(reason ? "end" : "lost");

	if (reason) {
		json_object_object_add(o, "reason",
				       json_object_new_string(reason));
	} else {
		json_object_object_add(o, "what",
				       json_object_new_string(w->lost_what));
		json_object_object_add(
			o, "error",
			json_object_new_string(cs_strerror(w->lost_err)));
	}
	emit(o);
}

/* Returns the process exit status. */
static int watch_run(struct watch *w, int64_t deadline)
{
	struct pollfd pfd[3] = {
		{ .fd = w->sig_fd, .events = POLLIN },
		{ .events = POLLIN },
		{ .events = POLLIN },
	};
	int64_t left;
	int n, i;

	if (cpg_fd_get(w->cpg, &pfd[1].fd) != CS_OK ||
	    quorum_fd_get(w->quorum, &pfd[2].fd) != CS_OK) {
		fprintf(stderr, "cpg-watch: cannot get the corosync fds\n");
		return EXIT_FAILURE;
	}
	for (;;) {
		left = deadline - now_ms();
		if (left <= 0) {
			emit_end("timeout", w);
			return EXIT_SUCCESS;
		}
		n = poll(pfd, 3, (int)left);
		if (n < 0 && errno != EINTR) {
			perror("cpg-watch: poll");
			return EXIT_FAILURE;
		}
		if (n > 0 && pfd[0].revents) {
			emit_end("signal", w);
			return EXIT_SUCCESS;
		}
		for (i = 1; n > 0 && i < 3; i++) {
			if (pfd[i].revents &&
			    dispatch(w, i == 1, pfd[i].revents)) {
				emit_end(NULL, w);
				fprintf(stderr,
					"cpg-watch: lost corosync: %s: %s\n",
					w->lost_what, cs_strerror(w->lost_err));
				return EXIT_LOST;
			}
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cpg-watch [-g GROUP] [-t SECONDS]\n"
		"       cpg-watch --now\n"
		"Joins CPG group GROUP (default kemari-test) and prints each\n"
		"membership, ring and quorum change as a JSON line, for at\n"
		"most SECONDS (default %d, max %d). --now prints the\n"
		"CLOCK_MONOTONIC time in ms that the events are stamped with.\n",
		TIMEOUT_DEFAULT_S, TIMEOUT_MAX_S);
}

/* Returns -1 to go on watching, otherwise the exit status. */
static int parse_args(int argc, char **argv, struct watch *w, long *timeout)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "timeout", required_argument, NULL, 't' },
		{ "now", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *group = "kemari-test";
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "g:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			group = optarg;
			break;
		case 't':
			*timeout = strtol(optarg, &end, 10);
			if (*end || *timeout < 1 || *timeout > TIMEOUT_MAX_S) {
				fprintf(stderr,
					"cpg-watch: -t %s: give whole seconds "
					"from 1 to %d\n",
					optarg, TIMEOUT_MAX_S);
				return EXIT_FAILURE;
			}
			break;
		case 'n':
			printf("%" PRId64 "\n", now_ms());
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc || strlen(group) >= CPG_MAX_NAME_LENGTH) {
		fprintf(stderr, "cpg-watch: %s\n",
			optind != argc ? "unexpected argument" :
					 "group name longer than 127 bytes");
		usage(stderr);
		return EXIT_FAILURE;
	}
	w->group.length = strlen(group) + 1;
	memcpy(w->group.value, group, w->group.length);
	return -1;
}

int main(int argc, char **argv)
{
	struct watch w = { 0 };
	long timeout = TIMEOUT_DEFAULT_S;
	int ret;

	ret = parse_args(argc, argv, &w, &timeout);
	if (ret >= 0)
		return ret;
	if (watch_open(&w))
		return EXIT_FAILURE;
	ret = watch_run(&w, now_ms() + timeout * 1000);
	watch_close(&w);
	return ret;
}
