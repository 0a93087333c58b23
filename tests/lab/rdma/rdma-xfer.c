// SPDX-License-Identifier: GPL-2.0
/*
 * rdma-xfer: the lab's RDMA self-test, one program with two modes.
 *
 *   rdma-xfer server -a BIND_ADDR [-p PORT] [-n PAGES] [-s SEED] [-t SEC]
 *   rdma-xfer client -a SERVER_ADDR -b SRC_ADDR [-p PORT] [-n PAGES]
 *                    [-s SEED] [-t SEC] [-c CORRUPT_OFFSET]
 *
 * The server registers PAGES * 4 KiB for remote write and hands the
 * buffer's address, rkey and length to the client in the private data of
 * its accept. The client fills a local buffer with a pattern derived from
 * SEED, RDMA WRITEs it into the server's buffer and then SENDs a small
 * message carrying the seed, the length and the XXH64 of what it wrote.
 * On an RC queue pair the SEND is executed after the WRITE, so when the
 * server sees the receive completion the written bytes are in place. The
 * server checks the message, the hash of its buffer and the bytes against
 * its own copy of the pattern, and exits 0 only if all three agree.
 *
 * With -c the client flips one byte of its buffer after hashing it, so a
 * correct server must report a mismatch (exit status 1).
 *
 * The shape follows rdma-core's rping: resources are acquired in order and
 * released in reverse; connection setup is an explicit state driven by one
 * CM event handler. Every wait (CM events, completions) is a poll() with a
 * deadline, and completions are taken in event mode from a completion
 * channel: two busy-polling processes starve the lab's two emulated CPUs.
 *
 * Exit status: 0 verified, 1 verification failed, 2 usage or environment
 * (no RDMA device, locked-memory limit), 3 any other failure or timeout.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <xxhash.h>

#define XFER_PAGE_SIZE 4096u
#define XFER_MAX_PAGES 1024u
#define XFER_MAGIC 0x4b4d5258u /* "KMRX" */
#define XFER_VERSION 1u
#define XFER_MSG_WRITTEN 1u

enum { EXIT_MISMATCH = 1, EXIT_USAGE = 2, EXIT_FAIL = 3 };

enum xfer_wr_id { WR_WRITE = 1, WR_SEND, WR_RECV };

/* Where the connection stands; only cm_event_handle() moves it. */
enum xfer_state {
	XS_IDLE,
	XS_CONNECT_REQUEST,
	XS_ADDR_RESOLVED,
	XS_ROUTE_RESOLVED,
	XS_CONNECTED,
	XS_DISCONNECTED,
	XS_ERROR,
};

static const char *const state_names[] = {
	[XS_IDLE] = "idle",
	[XS_CONNECT_REQUEST] = "connect request",
	[XS_ADDR_RESOLVED] = "address resolved",
	[XS_ROUTE_RESOLVED] = "route resolved",
	[XS_CONNECTED] = "connected",
	[XS_DISCONNECTED] = "disconnected",
	[XS_ERROR] = "error",
};

/* The server's buffer, in the private data of its accept (big-endian). */
struct xfer_info {
	uint32_t magic;
	uint32_t rkey;
	uint64_t addr;
	uint64_t length;
} __attribute__((packed));

/* The client's SEND after its WRITE (big-endian). */
struct xfer_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint64_t seed;
	uint64_t length;
	uint64_t hash;
} __attribute__((packed));

struct xfer_opts {
	bool server;
	const char *addr;
	const char *src;
	const char *port;
	uint32_t pages;
	uint64_t seed;
	int timeout_ms;
	long corrupt; /* byte offset to flip after hashing, or -1 */
};

struct xfer_ctx {
	const struct xfer_opts *o;
	const char *who;
	enum xfer_state state;
	struct rdma_event_channel *cm_ch;
	struct rdma_cm_id *cm_id; /* the server's listener, the client's link */
	struct rdma_cm_id *id; /* the connected id */
	struct rdma_cm_id *reject_id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *comp_ch;
	struct ibv_cq *cq;
	uint8_t *buf;
	size_t buf_len;
	struct ibv_mr *buf_mr;
	struct xfer_msg msg;
	struct ibv_mr *msg_mr;
	struct xfer_info peer;
	double t_state[XS_ERROR + 1]; /* when each state was reached */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int remaining_ms(double deadline)
{
	double left = deadline - now_ms();

	return left > 0 ? (int)left + 1 : 0;
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int fail(struct xfer_ctx *c, const char *what)
{
	int e = errno ? errno : EIO;

	fprintf(stderr, "rdma-xfer: %s: %s: %s\n", c->who, what, strerror(e));
	return -e;
}

/* splitmix64: a deterministic pattern both ends can regenerate. */
static void fill_pattern(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t s = seed, z;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		s += 0x9e3779b97f4a7c15ull;
		z = s;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z = htole64(z ^ (z >> 31));
		memcpy(p + i, &z, 8);
	}
}

/* ---- the connection manager: one handler, one wait ---- */

static int take_peer_info(struct xfer_ctx *c, const struct rdma_conn_param *p)
{
	struct xfer_info in;

	/* RoCE pads private data to the CM message's size: check >=. */
	if (!p->private_data || p->private_data_len < sizeof(in)) {
		fprintf(stderr,
			"rdma-xfer: %s: accept carried %u bytes of "
			"private data, need %zu\n",
			c->who, p->private_data_len, sizeof(in));
		return -EPROTO;
	}
	memcpy(&in, p->private_data, sizeof(in));
	c->peer.magic = be32toh(in.magic);
	c->peer.rkey = be32toh(in.rkey);
	c->peer.addr = be64toh(in.addr);
	c->peer.length = be64toh(in.length);
	if (c->peer.magic != XFER_MAGIC || c->peer.length != c->buf_len) {
		fprintf(stderr,
			"rdma-xfer: %s: server buffer info is wrong: "
			"magic 0x%08" PRIx32 ", %" PRIu64 " bytes "
			"(want %zu): do both ends use the same -n?\n",
			c->who, c->peer.magic, c->peer.length, c->buf_len);
		return -EPROTO;
	}
	return 0;
}

static void cm_event_error(struct xfer_ctx *c, struct rdma_cm_event *ev)
{
	fprintf(stderr, "rdma-xfer: %s: %s (status %d) while %s\n", c->who,
		rdma_event_str(ev->event), ev->status, state_names[c->state]);
	if (ev->event == RDMA_CM_EVENT_REJECTED)
		fprintf(stderr,
			"rdma-xfer: %s: is a server listening on "
			"%s port %s?\n",
			c->who, c->o->addr, c->o->port);
	if (ev->event == RDMA_CM_EVENT_ADDR_ERROR)
		fprintf(stderr,
			"rdma-xfer: %s: %s is not reachable from %s "
			"through an RDMA device; if both are local "
			"addresses the kernel routes them through lo, "
			"which no RDMA device serves (run.sh shows "
			"how to route them over the link)\n",
			c->who, c->o->addr, c->o->src);
	c->state = XS_ERROR;
}

static int cm_event_dispatch(struct xfer_ctx *c, struct rdma_cm_event *ev)
{
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		c->state = XS_ADDR_RESOLVED;
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		c->state = XS_ROUTE_RESOLVED;
		break;
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		if (c->id) {
			/* One transfer per server: turn away the rest. */
			rdma_reject(ev->id, NULL, 0);
			c->reject_id = ev->id;
			break;
		}
		c->id = ev->id;
		c->state = XS_CONNECT_REQUEST;
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (!c->o->server && take_peer_info(c, &ev->param.conn)) {
			c->state = XS_ERROR;
			return -EPROTO;
		}
		c->state = XS_CONNECTED;
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		c->state = XS_DISCONNECTED;
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		cm_event_error(c, ev);
		return -ECONNABORTED;
	default:
		fprintf(stderr, "rdma-xfer: %s: ignoring CM event %s\n", c->who,
			rdma_event_str(ev->event));
		break;
	}
	return 0;
}

static int cm_event_handle(struct xfer_ctx *c, struct rdma_cm_event *ev)
{
	enum xfer_state before = c->state;
	int ret = cm_event_dispatch(c, ev);

	if (c->state != before)
		c->t_state[c->state] = now_ms();
	return ret;
}

/* Take every pending CM event; the fd is non-blocking. */
static int cm_events_drain(struct xfer_ctx *c)
{
	struct rdma_cm_event *ev;
	int ret = 0;

	while (!ret && !rdma_get_cm_event(c->cm_ch, &ev)) {
		ret = cm_event_handle(c, ev);
		rdma_ack_cm_event(ev);
		/* A rejected id can only go once its event is acked. */
		if (c->reject_id) {
			rdma_destroy_id(c->reject_id);
			c->reject_id = NULL;
		}
	}
	if (!ret && errno != EAGAIN)
		return fail(c, "rdma_get_cm_event");
	return ret;
}

static int cm_wait(struct xfer_ctx *c, enum xfer_state want)
{
	double deadline = now_ms() + c->o->timeout_ms;
	struct pollfd pfd = { .fd = c->cm_ch->fd, .events = POLLIN };
	int ret;

	while (c->state != want) {
		if (c->state == XS_ERROR)
			return -ECONNABORTED;
		ret = poll(&pfd, 1, remaining_ms(deadline));
		if (ret < 0 && errno != EINTR)
			return fail(c, "poll on the CM event channel");
		if (ret == 0) {
			fprintf(stderr,
				"rdma-xfer: %s: timed out after %d ms "
				"waiting for '%s' (still '%s')\n",
				c->who, c->o->timeout_ms, state_names[want],
				state_names[c->state]);
			return -ETIMEDOUT;
		}
		ret = cm_events_drain(c);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- verbs resources of the connected id ---- */

static int reg_mr(struct xfer_ctx *c, void *p, size_t len, int access,
		  struct ibv_mr **mr)
{
	struct rlimit rl;
	int ret;

	*mr = ibv_reg_mr(c->pd, p, len, access);
	if (*mr)
		return 0;
	ret = fail(c, "ibv_reg_mr");
	if ((ret == -ENOMEM || ret == -EPERM || ret == -EAGAIN) &&
	    !getrlimit(RLIMIT_MEMLOCK, &rl))
		fprintf(stderr,
			"rdma-xfer: %s: registering %zu bytes failed; "
			"RLIMIT_MEMLOCK is %llu bytes: raise it "
			"(ulimit -l, LimitMEMLOCK= in systemd) or run "
			"with CAP_IPC_LOCK\n",
			c->who, len, (unsigned long long)rl.rlim_cur);
	return ret;
}

static int qp_create(struct xfer_ctx *c)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = c->cq,
		.recv_cq = c->cq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4,
			 .max_recv_wr = 4,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};

	if (rdma_create_qp(c->id, c->pd, &attr))
		return fail(c, "rdma_create_qp");
	return 0;
}

static int res_create(struct xfer_ctx *c)
{
	int access = IBV_ACCESS_LOCAL_WRITE;
	int ret = -ENOMEM;

	if (c->o->server)
		access |= IBV_ACCESS_REMOTE_WRITE;
	c->pd = ibv_alloc_pd(c->id->verbs);
	if (!c->pd)
		return fail(c, "ibv_alloc_pd");
	c->comp_ch = ibv_create_comp_channel(c->id->verbs);
	if (!c->comp_ch) {
		ret = fail(c, "ibv_create_comp_channel");
		goto err_pd;
	}
	ret = set_nonblock(c->comp_ch->fd);
	if (ret)
		goto err_comp_ch;
	c->cq = ibv_create_cq(c->id->verbs, 8, NULL, c->comp_ch, 0);
	if (!c->cq) {
		ret = fail(c, "ibv_create_cq");
		goto err_comp_ch;
	}
	if (ibv_req_notify_cq(c->cq, 0)) {
		ret = fail(c, "ibv_req_notify_cq");
		goto err_cq;
	}
	ret = qp_create(c);
	if (ret)
		goto err_cq;
	ret = reg_mr(c, c->buf, c->buf_len, access, &c->buf_mr);
	if (ret)
		goto err_qp;
	ret = reg_mr(c, &c->msg, sizeof(c->msg), IBV_ACCESS_LOCAL_WRITE,
		     &c->msg_mr);
	if (ret)
		goto err_buf_mr;
	return 0;

err_buf_mr:
	ibv_dereg_mr(c->buf_mr);
err_qp:
	rdma_destroy_qp(c->id);
err_cq:
	ibv_destroy_cq(c->cq);
err_comp_ch:
	ibv_destroy_comp_channel(c->comp_ch);
err_pd:
	ibv_dealloc_pd(c->pd);
	return ret;
}

static void res_destroy(struct xfer_ctx *c)
{
	ibv_dereg_mr(c->msg_mr);
	ibv_dereg_mr(c->buf_mr);
	rdma_destroy_qp(c->id);
	ibv_destroy_cq(c->cq);
	ibv_destroy_comp_channel(c->comp_ch);
	ibv_dealloc_pd(c->pd);
}

/* ---- completions, in event mode ---- */

static int wc_check(struct xfer_ctx *c, const struct ibv_wc *wc)
{
	static const enum ibv_wc_opcode want[] = {
		[WR_WRITE] = IBV_WC_RDMA_WRITE,
		[WR_SEND] = IBV_WC_SEND,
		[WR_RECV] = IBV_WC_RECV,
	};

	if (wc->status != IBV_WC_SUCCESS) {
		fprintf(stderr,
			"rdma-xfer: %s: work request %" PRIu64
			" completed with '%s' (vendor error 0x%x)\n",
			c->who, wc->wr_id, ibv_wc_status_str(wc->status),
			wc->vendor_err);
		return -EIO;
	}
	if (wc->wr_id < WR_WRITE || wc->wr_id > WR_RECV ||
	    wc->opcode != want[wc->wr_id]) {
		fprintf(stderr,
			"rdma-xfer: %s: unexpected completion: "
			"wr_id %" PRIu64 ", opcode %d\n",
			c->who, wc->wr_id, wc->opcode);
		return -EPROTO;
	}
	return 0;
}

/* Block on the completion channel; a CM event (peer gone) ends the wait. */
static int cq_event_wait(struct xfer_ctx *c, double deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = c->comp_ch->fd, .events = POLLIN },
		{ .fd = c->cm_ch->fd, .events = POLLIN },
	};
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	int ret;

	if (c->state != XS_CONNECTED)
		return -ECONNRESET;
	ret = poll(pfd, 2, remaining_ms(deadline));
	if (ret < 0)
		return errno == EINTR ? 0 : fail(c, "poll on the CQ channel");
	if (ret == 0)
		return -ETIMEDOUT;
	if (pfd[0].revents) {
		if (ibv_get_cq_event(c->comp_ch, &ev_cq, &ev_ctx)) {
			if (errno == EAGAIN)
				return 0;
			return fail(c, "ibv_get_cq_event");
		}
		ibv_ack_cq_events(ev_cq, 1);
		if (ibv_req_notify_cq(c->cq, 0))
			return fail(c, "ibv_req_notify_cq");
		return 0;
	}
	ret = cm_events_drain(c);
	if (ret)
		return ret;
	/* The caller polls the CQ once more before giving up. */
	return c->state == XS_CONNECTED ? 0 : -ECONNRESET;
}

/* Wait for @n completions; each must succeed and be the one expected. */
static int cq_wait(struct xfer_ctx *c, int n, struct ibv_wc *last)
{
	double deadline = now_ms() + c->o->timeout_ms;
	int got, ret;

	while (n > 0) {
		got = ibv_poll_cq(c->cq, 1, last);
		if (got < 0)
			return fail(c, "ibv_poll_cq");
		if (got) {
			ret = wc_check(c, last);
			if (ret)
				return ret;
			n--;
			continue;
		}
		ret = cq_event_wait(c, deadline);
		if (ret == -ETIMEDOUT)
			fprintf(stderr,
				"rdma-xfer: %s: timed out after %d ms "
				"waiting for %d completion(s)\n",
				c->who, c->o->timeout_ms, n);
		if (ret == -ECONNRESET && ibv_poll_cq(c->cq, 1, last) == 1) {
			ret = wc_check(c, last);
			n--;
		} else if (ret == -ECONNRESET) {
			fprintf(stderr,
				"rdma-xfer: %s: the peer went away "
				"('%s') with %d completion(s) due\n",
				c->who, state_names[c->state], n);
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- setup shared by both modes ---- */

static int cm_open(struct xfer_ctx *c)
{
	int ret;

	c->cm_ch = rdma_create_event_channel();
	if (!c->cm_ch) {
		ret = fail(c, "rdma_create_event_channel");
		if (ret == -ENODEV || ret == -ENOENT)
			fprintf(stderr,
				"rdma-xfer: %s: /dev/infiniband/"
				"rdma_cm is missing: modprobe "
				"rdma_ucm\n",
				c->who);
		return ret;
	}
	ret = set_nonblock(c->cm_ch->fd);
	if (ret)
		goto err_cm_ch;
	if (rdma_create_id(c->cm_ch, &c->cm_id, c, RDMA_PS_TCP)) {
		ret = fail(c, "rdma_create_id");
		goto err_cm_ch;
	}
	return 0;

err_cm_ch:
	rdma_destroy_event_channel(c->cm_ch);
	return ret;
}

static void cm_close(struct xfer_ctx *c)
{
	rdma_destroy_id(c->cm_id);
	rdma_destroy_event_channel(c->cm_ch);
}

static int resolve(struct xfer_ctx *c, const char *host, struct addrinfo **ai)
{
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM };
	int ret = getaddrinfo(host, c->o->port, &hints, ai);

	if (ret) {
		fprintf(stderr,
			"rdma-xfer: %s: bad address '%s' port '%s': "
			"%s\n",
			c->who, host, c->o->port, gai_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

static void disconnect(struct xfer_ctx *c)
{
	if (c->state == XS_CONNECTED)
		rdma_disconnect(c->id);
	if (c->state != XS_DISCONNECTED && c->state != XS_ERROR &&
	    cm_wait(c, XS_DISCONNECTED))
		fprintf(stderr, "rdma-xfer: %s: no clean disconnect\n", c->who);
}

/* ---- server ---- */

static const char *device_name(const struct rdma_cm_id *id)
{
	const char *name = NULL;

	if (id->verbs)
		name = ibv_get_device_name(id->verbs->device);
	return name ? name : "?";
}

static int server_listen(struct xfer_ctx *c)
{
	struct addrinfo *ai;
	int ret;

	ret = resolve(c, c->o->addr, &ai);
	if (ret)
		return ret;
	if (rdma_bind_addr(c->cm_id, ai->ai_addr)) {
		ret = fail(c, "rdma_bind_addr");
		fprintf(stderr,
			"rdma-xfer: %s: is there an RDMA device on "
			"the interface of %s? (rdma link add rxe0 "
			"type rxe netdev IFACE)\n",
			c->who, c->o->addr);
		goto out;
	}
	if (rdma_listen(c->cm_id, 1)) {
		ret = fail(c, "rdma_listen");
		goto out;
	}
	printf("rdma-xfer: server: listening on %s port %s (%s), "
	       "%zu bytes to be registered for remote write\n",
	       c->o->addr, c->o->port, device_name(c->cm_id), c->buf_len);
	fflush(stdout);
out:
	freeaddrinfo(ai);
	return ret;
}

static int server_accept(struct xfer_ctx *c)
{
	struct xfer_info out = {
		.magic = htobe32(XFER_MAGIC),
		.rkey = htobe32(c->buf_mr->rkey),
		.addr = htobe64((uintptr_t)c->buf),
		.length = htobe64(c->buf_len),
	};
	struct rdma_conn_param param = {
		.private_data = &out,
		.private_data_len = sizeof(out),
		.responder_resources = 1,
		.initiator_depth = 1,
		.rnr_retry_count = 7,
	};
	struct ibv_sge sge = { .addr = (uintptr_t)&c->msg,
			       .length = sizeof(c->msg),
			       .lkey = c->msg_mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = WR_RECV,
				  .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;

	/* The receive must be posted before the client can send. */
	errno = ibv_post_recv(c->id->qp, &wr, &bad);
	if (errno)
		return fail(c, "ibv_post_recv");
	if (rdma_accept(c->id, &param))
		return fail(c, "rdma_accept");
	return cm_wait(c, XS_CONNECTED);
}

static int msg_decode(struct xfer_ctx *c, uint32_t len, struct xfer_msg *m)
{
	if (len != sizeof(*m)) {
		printf("rdma-xfer: server: MISMATCH: SEND carried %u bytes, "
		       "expected %zu\n",
		       len, sizeof(*m));
		return -EBADMSG;
	}
	m->magic = be32toh(c->msg.magic);
	m->version = be16toh(c->msg.version);
	m->type = be16toh(c->msg.type);
	m->seed = be64toh(c->msg.seed);
	m->length = be64toh(c->msg.length);
	m->hash = be64toh(c->msg.hash);
	if (m->magic != XFER_MAGIC || m->version != XFER_VERSION ||
	    m->type != XFER_MSG_WRITTEN) {
		printf("rdma-xfer: server: MISMATCH: SEND is not a 'written' "
		       "message (magic 0x%08" PRIx32 ", version %u, type "
		       "%u)\n",
		       m->magic, m->version, m->type);
		return -EBADMSG;
	}
	return 0;
}

static long first_difference(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

/* The bytes, their hash and the message must all agree with the seed. */
static int server_verify(struct xfer_ctx *c, const struct xfer_msg *m)
{
	uint64_t hash = XXH64(c->buf, c->buf_len, 0);
	uint8_t *want = malloc(c->buf_len);
	int ret = 0;
	long diff;

	if (!want)
		return fail(c, "malloc");
	fill_pattern(want, c->buf_len, c->o->seed);
	diff = first_difference(want, c->buf, c->buf_len);
	free(want);
	if (m->seed != c->o->seed || m->length != c->buf_len) {
		printf("rdma-xfer: server: MISMATCH: SEND says seed %" PRIu64
		       ", %" PRIu64 " bytes; expected seed %" PRIu64
		       ", %zu bytes\n",
		       m->seed, m->length, c->o->seed, c->buf_len);
		ret = -EBADMSG;
	}
	if (hash != m->hash) {
		printf("rdma-xfer: server: MISMATCH: buffer xxh64 %016" PRIx64
		       " != %016" PRIx64 " in the SEND\n",
		       hash, m->hash);
		ret = -EBADMSG;
	}
	if (diff >= 0) {
		printf("rdma-xfer: server: MISMATCH: first differing byte at "
		       "offset %ld (page %ld)\n",
		       diff, diff / XFER_PAGE_SIZE);
		ret = -EBADMSG;
	}
	if (!ret)
		printf("rdma-xfer: server: OK: %zu bytes (%u pages) written by "
		       "RDMA WRITE match seed %" PRIu64 " and xxh64 %016" PRIx64
		       " from the SEND\n",
		       c->buf_len, c->o->pages, c->o->seed, hash);
	return ret;
}

static int server_receive(struct xfer_ctx *c)
{
	struct xfer_msg m;
	struct ibv_wc wc;
	int ret;

	ret = cq_wait(c, 1, &wc);
	if (ret)
		return ret;
	ret = msg_decode(c, wc.byte_len, &m);
	if (ret)
		return ret;
	return server_verify(c, &m);
}

static int run_server(struct xfer_ctx *c)
{
	double t0;
	int ret;

	ret = cm_open(c);
	if (ret)
		return ret;
	ret = server_listen(c);
	if (ret)
		goto err_cm;
	ret = cm_wait(c, XS_CONNECT_REQUEST);
	if (ret)
		goto err_cm;
	t0 = now_ms();
	ret = res_create(c);
	if (ret)
		goto err_child_id;
	ret = server_accept(c);
	if (ret)
		goto err_res;
	ret = server_receive(c);
	printf("rdma-xfer: server: request to verdict %.1f ms\n",
	       now_ms() - t0);
	/* The client disconnects once its SEND has completed. */
	disconnect(c);
err_res:
	res_destroy(c);
err_child_id:
	rdma_destroy_id(c->id);
err_cm:
	cm_close(c);
	return ret;
}

/* ---- client ---- */

static int client_resolve(struct xfer_ctx *c)
{
	struct addrinfo *src, *dst;
	int ret;

	ret = resolve(c, c->o->src, &src);
	if (ret)
		return ret;
	ret = resolve(c, c->o->addr, &dst);
	if (ret)
		goto err_src;
	/* The kernel's own timeout fires first and says what failed. */
	if (rdma_resolve_addr(c->cm_id, src->ai_addr, dst->ai_addr,
			      c->o->timeout_ms / 2)) {
		ret = fail(c, "rdma_resolve_addr");
		fprintf(stderr,
			"rdma-xfer: client: is there an RDMA device "
			"on the interface of %s?\n",
			c->o->src);
		goto err_dst;
	}
	ret = cm_wait(c, XS_ADDR_RESOLVED);
err_dst:
	freeaddrinfo(dst);
err_src:
	freeaddrinfo(src);
	return ret;
}

static int client_connect(struct xfer_ctx *c)
{
	struct rdma_conn_param param = {
		.responder_resources = 1,
		.initiator_depth = 1,
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
	int ret;

	if (rdma_resolve_route(c->id, c->o->timeout_ms / 2))
		return fail(c, "rdma_resolve_route");
	ret = cm_wait(c, XS_ROUTE_RESOLVED);
	if (ret)
		return ret;
	if (rdma_connect(c->id, &param))
		return fail(c, "rdma_connect");
	return cm_wait(c, XS_CONNECTED);
}

static void client_prepare(struct xfer_ctx *c)
{
	uint64_t hash;

	fill_pattern(c->buf, c->buf_len, c->o->seed);
	hash = XXH64(c->buf, c->buf_len, 0);
	c->msg = (struct xfer_msg){
		.magic = htobe32(XFER_MAGIC),
		.version = htobe16(XFER_VERSION),
		.type = htobe16(XFER_MSG_WRITTEN),
		.seed = htobe64(c->o->seed),
		.length = htobe64(c->buf_len),
		.hash = htobe64(hash),
	};
	printf("rdma-xfer: client: writing %zu bytes, seed %" PRIu64
	       ", xxh64 %016" PRIx64 "\n",
	       c->buf_len, c->o->seed, hash);
	if (c->o->corrupt >= 0) {
		c->buf[c->o->corrupt] ^= 0x01;
		printf("rdma-xfer: client: corrupting byte %ld after hashing, "
		       "the server must refuse\n",
		       c->o->corrupt);
	}
}

/* WRITE then SEND on one RC QP: the SEND lands after the WRITE. */
static int client_transfer(struct xfer_ctx *c)
{
	struct ibv_sge wsge = { .addr = (uintptr_t)c->buf,
				.length = (uint32_t)c->buf_len,
				.lkey = c->buf_mr->lkey };
	struct ibv_sge ssge = { .addr = (uintptr_t)&c->msg,
				.length = sizeof(c->msg),
				.lkey = c->msg_mr->lkey };
	struct ibv_send_wr send = {
		.wr_id = WR_SEND,
		.sg_list = &ssge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr write = {
		.wr_id = WR_WRITE,
		.next = &send,
		.sg_list = &wsge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = c->peer.addr,
			     .rkey = c->peer.rkey },
	};
	struct ibv_send_wr *bad;
	struct ibv_wc wc;

	client_prepare(c);
	errno = ibv_post_send(c->id->qp, &write, &bad);
	if (errno)
		return fail(c, "ibv_post_send");
	return cq_wait(c, 2, &wc);
}

static int run_client(struct xfer_ctx *c)
{
	double t0 = now_ms(), t1;
	int ret;

	ret = cm_open(c);
	if (ret)
		return ret;
	ret = client_resolve(c);
	if (ret)
		goto err_cm;
	/* The client's id is the cm_id slot: it is the only one. */
	c->id = c->cm_id;
	ret = res_create(c);
	if (ret)
		goto err_cm;
	ret = client_connect(c);
	if (ret)
		goto err_res;
	t1 = now_ms();
	ret = client_transfer(c);
	if (!ret)
		printf("rdma-xfer: client: address resolved at %.1f ms, route "
		       "at %.1f ms, connected at %.1f ms; WRITE+SEND completed "
		       "in %.1f ms\n",
		       c->t_state[XS_ADDR_RESOLVED] - t0,
		       c->t_state[XS_ROUTE_RESOLVED] - t0, t1 - t0,
		       now_ms() - t1);
	disconnect(c);
err_res:
	res_destroy(c);
err_cm:
	cm_close(c);
	return ret;
}

/* ---- main ---- */

static int usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "rdma-xfer: %s\n", msg);
	fprintf(stderr,
		"usage: rdma-xfer server -a BIND_ADDR [options]\n"
		"       rdma-xfer client -a SERVER_ADDR -b SRC_ADDR [options]\n"
		"  -p PORT     CM port (default 7471)\n"
		"  -n PAGES    4 KiB pages to write, 1..%u (default 4)\n"
		"  -s SEED     pattern seed (default 1)\n"
		"  -t SEC      timeout of every wait (default 60)\n"
		"  -c OFFSET   client: flip this byte after hashing\n",
		XFER_MAX_PAGES);
	return EXIT_USAGE;
}

static int parse_opts(int argc, char **argv, struct xfer_opts *o)
{
	int opt;

	*o = (struct xfer_opts){ .port = "7471",
				 .pages = 4,
				 .seed = 1,
				 .timeout_ms = 60000,
				 .corrupt = -1 };
	if (argc < 2 ||
	    (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
		return usage("the first argument must be 'server' or 'client'");
	o->server = !strcmp(argv[1], "server");
	optind = 2;
	while ((opt = getopt(argc, argv, "a:b:p:n:s:t:c:")) != -1) {
		switch (opt) {
		case 'a':
			o->addr = optarg;
			break;
		case 'b':
			o->src = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'n':
			o->pages = strtoul(optarg, NULL, 0);
			break;
		case 's':
			o->seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			o->timeout_ms = atoi(optarg) * 1000;
			break;
		case 'c':
			o->corrupt = strtol(optarg, NULL, 0);
			break;
		default:
			return usage(NULL);
		}
	}
	if (optind != argc || !o->addr || (!o->server && !o->src))
		return usage("missing -a (and -b for the client), or extra "
			     "arguments");
	if (!o->pages || o->pages > XFER_MAX_PAGES || o->timeout_ms <= 0)
		return usage("-n must be 1..1024 and -t positive");
	if (o->corrupt >= (long)(o->pages * XFER_PAGE_SIZE) ||
	    (o->server && o->corrupt >= 0))
		return usage("-c is a client option, inside the buffer");
	return 0;
}

/* Say plainly when there is no RDMA device at all. */
static int check_devices(const char *who)
{
	struct ibv_device **list;
	int n = 0;

	list = ibv_get_device_list(&n);
	if (list)
		ibv_free_device_list(list);
	if (n > 0)
		return 0;
	fprintf(stderr,
		"rdma-xfer: %s: no RDMA device found (%s): load "
		"rdma_rxe and add one with 'rdma link add rxe0 type "
		"rxe netdev IFACE', or use a host with an RDMA NIC\n",
		who, list ? "the device list is empty" : strerror(errno));
	return -ENODEV;
}

int main(int argc, char **argv)
{
	struct xfer_opts o;
	struct xfer_ctx c = { .o = &o };
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret;
	c.who = o.server ? "server" : "client";
	if (check_devices(c.who))
		return EXIT_USAGE;
	c.buf_len = (size_t)o.pages * XFER_PAGE_SIZE;
	ret = posix_memalign((void **)&c.buf, XFER_PAGE_SIZE, c.buf_len);
	if (ret) {
		fprintf(stderr, "rdma-xfer: out of memory\n");
		return EXIT_FAIL;
	}
	memset(c.buf, 0, c.buf_len);
	ret = o.server ? run_server(&c) : run_client(&c);
	free(c.buf);
	if (ret == -EBADMSG)
		return EXIT_MISMATCH;
	if (ret == -ENOMEM || ret == -EPERM)
		return EXIT_USAGE;
	return ret ? EXIT_FAIL : 0;
}
