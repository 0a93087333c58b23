// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA transport (librdmacm + libibverbs, RC queue pairs), behind the same
 * ops table as TCP: the engines see the same byte stream.
 *
 * How the stream travels (records: rdma_int.h):
 *   - Bytes inside memory the sender registered as KM_MEM_SOURCE (guest
 *     memory) go by RDMA WRITE, gathered from the scattered pages, into
 *     the receiver's KM_MEM_TARGET region (the secondary's staging area)
 *     at a cursor; a PLACED record in the next SEND says where. The
 *     secondary's engine receives page data at the same place, so the
 *     receive is no copy at all.
 *   - Everything else (headers, COMMIT, ACK, state blobs) is copied into
 *     registered send buffers as DATA records and goes by SEND. On an RC
 *     queue pair a SEND is delivered after the WRITEs posted before it, so
 *     page data is in place when its PLACED record is read.
 *
 * Flow control of the staging area ("grants"):
 *
 *   primary                                secondary
 *   <---------------------------- REGION (grant 0: addr, rkey, size)
 *   WRITE pages at 0.., SEND PLACED, COMMIT ->   stage, verify
 *   <---------------------------- ACK(N)
 *   (grant 0 is spent: it was used before a recv)      apply
 *   <---------------------------- CREDIT(1)  (staging consumed)
 *   epoch N+1: first WRITE waits for CREDIT(1), cursor back to 0
 *
 * The primary never writes into a grant once it has received an answer
 * after using it, and the secondary grants again only after its engine
 * called release() (after apply): staging is never overwritten while it
 * is read, and each epoch's data starts at offset 0, where the engine's
 * staging starts too. Page data that does not fit goes inline, marked as
 * page data: it spends the grant all the same (the engine stages it), and
 * nothing more is placed in that turn, so placed bytes can never land on
 * bytes already staged (the engine refuses an epoch larger than its
 * staging area anyway). SENDs themselves are paced by RNR retry
 * (infinite) over 64 posted receive buffers.
 *
 * Completions are taken in event mode (completion channel + poll), which
 * the lab needs: two busy-polling processes starve its emulated CPUs.
 * Connection setup is one CM-event handler moving an explicit state.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "rdma_int.h"
#include "transport.h"

#define SBUF_SIZE (64u << 10)
#define NSEND 16u
#define NRECV 64u
#define SQ_DEPTH 256u
#define WRQ_MAX 32u /* work requests gathered before one post */
#define MAX_SGE 16u
#define MAX_SRC 4u
#define RESOLVE_MS 2000 /* per attempt; lost ARP wake-ups: retry */
#define RESOLVE_TRIES 5
#define CLOSE_WAIT_MS 500

enum wr_kind { WK_SEND = 1, WK_WRITE, WK_RECV };

/* Where the connection stands; only cm_dispatch() moves it. */
enum rstate {
	RS_IDLE,
	RS_LISTENING,
	RS_ADDR_RESOLVED,
	RS_ROUTE_RESOLVED,
	RS_CONNECT_REQUEST,
	RS_CONNECTED,
	RS_DISCONNECTED,
	RS_ERROR,
};

static const char *const state_names[] = {
	[RS_IDLE] = "idle",
	[RS_LISTENING] = "listening",
	[RS_ADDR_RESOLVED] = "address resolved",
	[RS_ROUTE_RESOLVED] = "route resolved",
	[RS_CONNECT_REQUEST] = "connect request",
	[RS_CONNECTED] = "connected",
	[RS_DISCONNECTED] = "disconnected",
	[RS_ERROR] = "error",
};

struct src_region {
	const uint8_t *addr;
	size_t len;
	struct ibv_mr *mr;
};

struct rmsg {
	uint32_t idx; /* receive buffer */
	uint32_t len;
	size_t pos; /* current record */
	uint64_t done; /* bytes of it consumed */
};

struct rdma_conn {
	struct km_transport base;
	enum rstate state;
	int cm_err; /* CM event that ended the connection */
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct rdma_cm_id *pending; /* listener: the request being accepted */
	unsigned int timeout_ms;

	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	bool qp;
	unsigned int max_sge;

	uint8_t *sbuf, *rbuf; /* NSEND / NRECV buffers of SBUF_SIZE */
	struct ibv_mr *smr, *rmr;
	bool sbusy[NSEND];
	unsigned int snext;
	int cur; /* send buffer being filled, -1: none */
	size_t cur_len;
	size_t last_rec; /* offset of the last record in it */
	bool last_placed; /* ...and it is PLACED */

	struct ibv_send_wr wrq[WRQ_MAX];
	struct ibv_sge sgq[WRQ_MAX][MAX_SGE];
	unsigned int nwrq;
	unsigned int sq_used; /* posted, completion not yet seen */
	unsigned int unsignaled;

	struct rmsg rq[NRECV]; /* received, not yet consumed, in order */
	unsigned int rq_head, rq_n;

	struct src_region src[MAX_SRC];
	unsigned int nsrc;

	/* This side's target region (the secondary's staging). */
	uint8_t *tgt;
	uint64_t tgt_len;
	struct ibv_mr *tmr;
	uint32_t grant; /* last grant sent */
	bool tgt_used; /* placed bytes consumed under it */

	/* The peer's target region, as this side writes into it. */
	bool have_region;
	uint64_t raddr, rlen, rpos;
	uint32_t rkey;
	uint32_t rgrant; /* last grant received */
	uint32_t credits; /* received, not yet taken */
	bool rused, rstale;
	bool no_place; /* page data went inline this turn */
};

static struct rdma_conn *to_rc(struct km_transport *t)
{
	return (struct rdma_conn *)t;
}

static uint64_t now_ms(void)
{
	return km__now_ns() / 1000000;
}

static uint64_t deadline_of(unsigned int ms)
{
	return ms ? now_ms() + ms : 0;
}

static int remaining(uint64_t deadline)
{
	uint64_t n = now_ms();

	if (!deadline)
		return -1;
	return deadline > n ? (int)(deadline - n) : 0;
}

static int why(struct rdma_conn *c, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Keep the first sentence; return @r for chaining. */
static int why(struct rdma_conn *c, int r, const char *fmt, ...)
{
	va_list ap;

	if (c->base.why[0])
		return r;
	va_start(ap, fmt);
	vsnprintf(c->base.why, sizeof(c->base.why), fmt, ap);
	va_end(ap);
	return r;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- the connection manager: one handler, one wait ---- */

static int cm_dispatch(struct rdma_conn *c, struct rdma_cm_event *ev)
{
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		c->state = RS_ADDR_RESOLVED;
		return 0;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		c->state = RS_ROUTE_RESOLVED;
		return 0;
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		if (c->pending) {
			/* One request at a time; the peer retries. */
			rdma_reject(ev->id, NULL, 0);
			return 0;
		}
		c->pending = ev->id;
		c->state = RS_CONNECT_REQUEST;
		return 0;
	case RDMA_CM_EVENT_ESTABLISHED:
		c->state = RS_CONNECTED;
		return 0;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		if (c->state == RS_CONNECTED || c->state == RS_DISCONNECTED) {
			c->state = RS_DISCONNECTED;
			return 0;
		}
		break;
	case RDMA_CM_EVENT_ADDR_CHANGE:
	case RDMA_CM_EVENT_CONNECT_RESPONSE:
		return 0;
	default:
		break;
	}
	/* ADDR/ROUTE/CONNECT_ERROR, UNREACHABLE, REJECTED, DEVICE_REMOVAL. */
	c->cm_err = ev->event;
	why(c, -ECONNABORTED,
	    "RDMA connection manager: %s (status %d) while %s",
	    rdma_event_str(ev->event), ev->status, state_names[c->state]);
	c->state = RS_ERROR;
	return 0;
}

/* Take every pending CM event; the channel is non-blocking. */
static int cm_drain(struct rdma_conn *c)
{
	struct rdma_cm_event *ev;

	while (!rdma_get_cm_event(c->ch, &ev)) {
		cm_dispatch(c, ev);
		rdma_ack_cm_event(ev);
	}
	if (errno != EAGAIN)
		return why(c, -errno, "rdma_get_cm_event: %s", strerror(errno));
	return 0;
}

static int cm_error_code(const struct rdma_conn *c)
{
	switch (c->cm_err) {
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED;
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
		return -EHOSTUNREACH;
	default:
		return -ECONNABORTED;
	}
}

static int cm_wait(struct rdma_conn *c, enum rstate want, unsigned int ms)
{
	struct pollfd pfd = { .fd = c->ch->fd, .events = POLLIN };
	uint64_t deadline = deadline_of(ms);
	int n, r;

	while (c->state != want) {
		if (c->state == RS_ERROR)
			return cm_error_code(c);
		if (c->state == RS_DISCONNECTED)
			return -ECONNRESET;
		n = poll(&pfd, 1, remaining(deadline));
		if (n < 0 && errno != EINTR)
			return why(c, -errno, "poll: %s", strerror(errno));
		if (n == 0)
			return why(
				c, -ETIMEDOUT,
				"RDMA connection manager: no '%s' within %u ms (still '%s')",
				state_names[want], ms, state_names[c->state]);
		r = cm_drain(c);
		if (r)
			return r;
	}
	return 0;
}

/* ---- verbs resources ---- */

static int reg_mr(struct rdma_conn *c, void *p, size_t len, int access,
		  struct ibv_mr **mr, const char *what)
{
	struct rlimit rl = { 0 };
	int e;

	*mr = ibv_reg_mr(c->pd, p, len, access);
	if (*mr)
		return 0;
	e = errno ? errno : ENOMEM;
	if ((e == ENOMEM || e == EPERM || e == EAGAIN) &&
	    !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY)
		return why(
			c, -ENOMEM,
			"registering %zu bytes of %s for RDMA failed (%s): RLIMIT_MEMLOCK is %llu bytes; raise it to cover guest memory plus staging (LimitMEMLOCK=infinity in the systemd unit, ulimit -l unlimited) or run with CAP_IPC_LOCK",
			len, what, strerror(e),
			(unsigned long long)rl.rlim_cur);
	return why(c, -e, "registering %zu bytes of %s for RDMA failed: %s",
		   len, what, strerror(e));
}

static int post_recv(struct rdma_conn *c, uint32_t idx)
{
	struct ibv_sge sge = { .addr = (uintptr_t)(c->rbuf + idx * SBUF_SIZE),
			       .length = SBUF_SIZE,
			       .lkey = c->rmr->lkey };
	struct ibv_recv_wr wr = { .wr_id = ((uint64_t)WK_RECV << 24) | idx,
				  .sg_list = &sge,
				  .num_sge = 1 },
			   *bad;
	int e = ibv_post_recv(c->id->qp, &wr, &bad);

	return e ? why(c, -e, "ibv_post_recv: %s", strerror(e)) : 0;
}

static int qp_create(struct rdma_conn *c)
{
	struct ibv_device_attr da;
	struct ibv_qp_init_attr attr = {
		.send_cq = c->cq,
		.recv_cq = c->cq,
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0,
	};

	c->max_sge = MAX_SGE;
	if (!ibv_query_device(c->id->verbs, &da) &&
	    (unsigned int)da.max_sge < c->max_sge)
		c->max_sge = (unsigned int)da.max_sge;
	attr.cap = (struct ibv_qp_cap){ .max_send_wr = SQ_DEPTH,
					.max_recv_wr = NRECV,
					.max_send_sge = c->max_sge,
					.max_recv_sge = 1 };
	if (rdma_create_qp(c->id, c->pd, &attr))
		return why(c, -errno, "rdma_create_qp: %s", strerror(errno));
	c->qp = true;
	return 0;
}

static void *alloc_bufs(unsigned int n)
{
	void *p = mmap(NULL, (size_t)n * SBUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Everything a connected id needs; undone by res_destroy(). */
static int res_create(struct rdma_conn *c)
{
	unsigned int i;
	int r;

	c->pd = ibv_alloc_pd(c->id->verbs);
	if (!c->pd)
		return why(c, -ENOMEM, "ibv_alloc_pd failed");
	c->cc = ibv_create_comp_channel(c->id->verbs);
	if (!c->cc)
		return why(c, -errno, "ibv_create_comp_channel: %s",
			   strerror(errno));
	r = set_nonblock(c->cc->fd);
	if (r)
		return r;
	c->cq = ibv_create_cq(c->id->verbs, SQ_DEPTH + NRECV, c, c->cc, 0);
	if (!c->cq)
		return why(c, -errno, "ibv_create_cq: %s", strerror(errno));
	r = qp_create(c);
	if (r)
		return r;
	c->sbuf = alloc_bufs(NSEND);
	c->rbuf = alloc_bufs(NRECV);
	if (!c->sbuf || !c->rbuf)
		return -ENOMEM;
	r = reg_mr(c, c->sbuf, NSEND * SBUF_SIZE, IBV_ACCESS_LOCAL_WRITE,
		   &c->smr, "send buffers");
	r = r	  ?:
		    reg_mr(c, c->rbuf, NRECV * SBUF_SIZE,
			   IBV_ACCESS_LOCAL_WRITE, &c->rmr, "receive buffers");
	/* The receives must be posted before the peer can send. */
	for (i = 0; !r && i < NRECV; i++)
		r = post_recv(c, i);
	return r;
}

static void res_destroy(struct rdma_conn *c)
{
	unsigned int i;

	if (c->qp)
		rdma_destroy_qp(c->id);
	for (i = 0; i < c->nsrc; i++)
		ibv_dereg_mr(c->src[i].mr);
	if (c->tmr)
		ibv_dereg_mr(c->tmr);
	if (c->rmr)
		ibv_dereg_mr(c->rmr);
	if (c->smr)
		ibv_dereg_mr(c->smr);
	if (c->rbuf)
		munmap(c->rbuf, (size_t)NRECV * SBUF_SIZE);
	if (c->sbuf)
		munmap(c->sbuf, (size_t)NSEND * SBUF_SIZE);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->cc)
		ibv_destroy_comp_channel(c->cc);
	if (c->pd)
		ibv_dealloc_pd(c->pd);
}

static struct rdma_conn *conn_new(void)
{
	struct rdma_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->base.ops = &km_rdma_ops;
	c->cur = -1;
	return c;
}

static int channel_open(struct rdma_conn *c)
{
	c->ch = rdma_create_event_channel();
	if (!c->ch) {
		if (errno == ENODEV || errno == ENOENT)
			return why(
				c, -ENODEV,
				"/dev/infiniband/rdma_cm is missing: load rdma_ucm (and an RDMA driver, e.g. rdma_rxe)");
		return why(c, -errno, "rdma_create_event_channel: %s",
			   strerror(errno));
	}
	return set_nonblock(c->ch->fd);
}

static int cq_drain(struct rdma_conn *c);
static int wait_event(struct rdma_conn *c, uint64_t deadline);

/*
 * Let posted SENDs (an ERROR saying why we close) reach the peer before
 * the disconnect flushes them; bounded, the peer may be gone.
 */
static void sends_settle(struct rdma_conn *c)
{
	uint64_t deadline = deadline_of(CLOSE_WAIT_MS);
	unsigned int i;
	bool busy = true;

	while (busy && c->state == RS_CONNECTED && remaining(deadline) > 0) {
		for (busy = false, i = 0; i < NSEND; i++)
			busy |= c->sbusy[i];
		if (busy && cq_drain(c) == 0 && wait_event(c, deadline))
			break;
	}
}

static void rdma_close(struct km_transport *t)
{
	struct rdma_conn *c = to_rc(t);

	if (c->cq)
		sends_settle(c);
	if (c->state == RS_CONNECTED && !rdma_disconnect(c->id))
		cm_wait(c, RS_DISCONNECTED, CLOSE_WAIT_MS);
	res_destroy(c);
	if (c->pending)
		rdma_destroy_id(c->pending);
	if (c->id)
		rdma_destroy_id(c->id);
	if (c->ch)
		rdma_destroy_event_channel(c->ch);
	free(c);
}

/* ---- completions ---- */

static int on_recv(struct rdma_conn *c, uint32_t idx, uint32_t len);

static int wc_fail(struct rdma_conn *c, const struct ibv_wc *wc)
{
	static const char *const kind[] = {
		[WK_SEND] = "SEND", [WK_WRITE] = "RDMA WRITE", [WK_RECV] = "receive"
	};
	unsigned int k = (wc->wr_id >> 24) & 0xff;

	/* Flushed work after the peer left is the peer leaving. */
	if (wc->status == IBV_WC_WR_FLUSH_ERR)
		cm_drain(c);
	if (wc->status == IBV_WC_WR_FLUSH_ERR &&
	    (c->state == RS_DISCONNECTED || c->state == RS_ERROR))
		return -ECONNRESET;
	return why(c, wc->status == IBV_WC_WR_FLUSH_ERR ? -ECONNRESET : -EIO,
		   "%s completed with '%s' (vendor error 0x%x)",
		   k <= WK_RECV && kind[k] ? kind[k] : "work request",
		   ibv_wc_status_str(wc->status), wc->vendor_err);
}

static int wc_handle(struct rdma_conn *c, const struct ibv_wc *wc)
{
	unsigned int k = (wc->wr_id >> 24) & 0xff;
	uint32_t idx = wc->wr_id & 0xffffff;

	if (wc->status != IBV_WC_SUCCESS)
		return wc_fail(c, wc);
	if (k == WK_RECV && wc->opcode == IBV_WC_RECV && idx < NRECV)
		return on_recv(c, idx, wc->byte_len);
	if ((k == WK_SEND && wc->opcode == IBV_WC_SEND && idx < NSEND) ||
	    (k == WK_WRITE && wc->opcode == IBV_WC_RDMA_WRITE)) {
		/* A signaled WR retires the unsignaled ones before it. */
		c->sq_used -= (unsigned int)(wc->wr_id >> 32);
		if (k == WK_SEND)
			c->sbusy[idx] = false;
		return 0;
	}
	return why(c, -EPROTO,
		   "unexpected completion: wr_id 0x%" PRIx64 ", opcode %d",
		   wc->wr_id, wc->opcode);
}

/* Poll the CQ dry; returns the number taken or an error. */
static int cq_drain(struct rdma_conn *c)
{
	struct ibv_wc wc[16];
	int n, i, r, got = 0;

	do {
		n = ibv_poll_cq(c->cq, 16, wc);
		if (n < 0)
			return why(c, -EIO, "ibv_poll_cq failed");
		for (i = 0; i < n; i++) {
			r = wc_handle(c, &wc[i]);
			if (r)
				return r;
		}
		got += n;
	} while (n == 16);
	return got;
}

/* Poll the CQ for the spin time (transport.h): 1 if something came. */
static int cq_spin(struct rdma_conn *c)
{
	struct km_spin spin;
	int n;

	km__spin_start(&c->base, &spin);
	if (!spin.deadline)
		return 0;
	do {
		n = cq_drain(c);
		if (n)
			return n < 0 ? n : 1;
	} while (c->state == RS_CONNECTED && km__spin_more(&spin));
	return 0;
}

/*
 * Sleep until a completion or CM event arrives (or @deadline); the caller
 * re-checks its condition. Arm, re-poll (closing the race), then block.
 */
static int wait_event(struct rdma_conn *c, uint64_t deadline)
{
	struct pollfd pfd[2] = { { .fd = c->cc->fd, .events = POLLIN },
				 { .fd = c->ch->fd, .events = POLLIN } };
	struct ibv_cq *cq;
	void *ctx;
	int n;

	n = cq_spin(c);
	if (n)
		return n < 0 ? n : 0;
	if (ibv_req_notify_cq(c->cq, 0))
		return why(c, -EIO, "ibv_req_notify_cq failed");
	n = cq_drain(c);
	if (n)
		return n < 0 ? n : 0;
	if (c->state != RS_CONNECTED)
		return -ECONNRESET;
	n = poll(pfd, 2, remaining(deadline));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ETIMEDOUT;
	if (pfd[0].revents && !ibv_get_cq_event(c->cc, &cq, &ctx))
		ibv_ack_cq_events(cq, 1);
	if (pfd[1].revents)
		return cm_drain(c);
	return 0;
}

/* ---- receiving: records into the engines' stream ---- */

static void repost_head(struct rdma_conn *c)
{
	uint32_t idx = c->rq[c->rq_head].idx;

	c->rq_head = (c->rq_head + 1) % NRECV;
	c->rq_n--;
	post_recv(c, idx);
}

/*
 * Validate a whole received message and act on the transport's own
 * records now; DATA/PLACED wait in the queue for recv().
 */
static int on_recv(struct rdma_conn *c, uint32_t idx, uint32_t len)
{
	const uint8_t *m = c->rbuf + (size_t)idx * SBUF_SIZE;
	bool data = false;
	struct km__rrec r;
	size_t pos = 0, next;
	int e;

	while (pos < len) {
		e = km__rrec_next(m, len, pos, c->tgt_len, &r, &next);
		if (e)
			return why(
				c, e,
				"invalid transport record at byte %zu of a %u-byte message (%s)",
				pos, len, strerror(-e));
		if (r.type == KM_RREC_REGION) {
			if (c->have_region || c->tgt || !r.len)
				return why(
					c, -EPROTO,
					"unexpected staging-region announcement");
			c->have_region = true;
			c->raddr = r.off;
			c->rlen = r.len;
			c->rkey = r.key;
		} else if (r.type == KM_RREC_CREDIT) {
			if (!c->have_region || r.key != c->rgrant + 1)
				return why(c, -EPROTO,
					   "credit for grant %u, expected %u",
					   r.key, c->rgrant + 1);
			c->rgrant = r.key;
			c->credits++;
		} else {
			data = true;
		}
		pos = next;
	}
	if (!data)
		return post_recv(c, idx);
	c->rq[(c->rq_head + c->rq_n) % NRECV] =
		(struct rmsg){ .idx = idx, .len = len };
	c->rq_n++;
	return 0;
}

/* Move past consumed and transport-only records of the queue head. */
static void skip_done(struct rdma_conn *c, struct rmsg *h, struct km__rrec *r)
{
	const uint8_t *m = c->rbuf + (size_t)h->idx * SBUF_SIZE;
	size_t next;

	while (h->pos < h->len) {
		/* Validated on arrival: cannot fail here. */
		km__rrec_next(m, h->len, h->pos, c->tgt_len, r, &next);
		if ((r->type == KM_RREC_DATA || r->type == KM_RREC_PLACED) &&
		    h->done < r->len)
			return;
		h->pos = next;
		h->done = 0;
	}
}

/*
 * Copy (or find in place) up to @len stream bytes from the queue head. A
 * message is given back to the receive queue as soon as it is used up,
 * so the queue only ever holds bytes still to be read.
 */
static size_t take(struct rdma_conn *c, uint8_t *buf, size_t len)
{
	struct rmsg *h = &c->rq[c->rq_head];
	const uint8_t *m = c->rbuf + (size_t)h->idx * SBUF_SIZE;
	const uint8_t *src;
	struct km__rrec r;
	size_t n = 0;

	skip_done(c, h, &r);
	if (h->pos < h->len) {
		n = r.len - h->done < len ? (size_t)(r.len - h->done) : len;
		if (r.type == KM_RREC_DATA) {
			src = m + h->pos + KM_RREC_HDR + h->done;
		} else {
			src = c->tgt + r.off + h->done;
		}
		/* Page data (placed or not) used the staging grant. */
		if (r.type == KM_RREC_PLACED || (r.key & KM_RREC_PAGE_DATA))
			c->tgt_used = true;
		/* Page data received where it was placed costs nothing. */
		if (src != buf)
			memmove(buf, src, n);
		h->done += n;
		skip_done(c, h, &r);
	}
	if (h->pos >= h->len)
		repost_head(c);
	return n;
}

static int rdma_recv(struct km_transport *t, void *buf, size_t len)
{
	struct rdma_conn *c = to_rc(t);
	uint64_t deadline = deadline_of(c->timeout_ms);
	uint8_t *p = buf;
	int r;

	/* An answer arrived after this grant was used: it is spent. */
	if (c->rused)
		c->rstale = true;
	c->no_place = false;
	while (len) {
		if (c->rq_n) {
			size_t n = take(c, p, len);

			p += n;
			len -= n;
			continue;
		}
		r = cq_drain(c);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = wait_event(c, deadline);
		if (r == -ETIMEDOUT)
			return why(c, r, "nothing received within %u ms",
				   c->timeout_ms);
		if (r == -ECONNRESET && !c->rq_n && cq_drain(c) == 0)
			return -ECONNRESET;
		if (r && r != -ECONNRESET)
			return r;
	}
	return 0;
}

/* ---- sending ---- */

static int post_wrq(struct rdma_conn *c)
{
	struct ibv_send_wr *bad;
	unsigned int i;
	int e, r;

	if (!c->nwrq)
		return 0;
	while (c->sq_used + c->nwrq > SQ_DEPTH) {
		r = cq_drain(c);
		if (r < 0)
			return r;
		if (!r) {
			r = wait_event(c, deadline_of(c->timeout_ms));
			if (r)
				return r == -ETIMEDOUT ?
					       why(c, r,
						   "send queue full for %u ms",
						   c->timeout_ms) :
					       r;
		}
	}
	for (i = 0; i < c->nwrq; i++) {
		struct ibv_send_wr *w = &c->wrq[i];

		w->next = i + 1 < c->nwrq ? &c->wrq[i + 1] : NULL;
		c->unsignaled++;
		/* Signal SENDs (buffer reuse) and now and then a WRITE. */
		if (w->opcode == IBV_WR_SEND || c->unsignaled >= SQ_DEPTH / 4 ||
		    !w->next) {
			w->send_flags |= IBV_SEND_SIGNALED;
			w->wr_id |= (uint64_t)c->unsignaled << 32;
			c->unsignaled = 0;
		}
	}
	e = ibv_post_send(c->id->qp, c->wrq, &bad);
	if (e)
		return why(c, -e, "ibv_post_send: %s", strerror(e));
	c->sq_used += c->nwrq;
	c->nwrq = 0;
	return 0;
}

static struct ibv_send_wr *wrq_add(struct rdma_conn *c, int *r)
{
	struct ibv_send_wr *w;

	*r = 0;
	if (c->nwrq == WRQ_MAX)
		*r = post_wrq(c);
	if (*r)
		return NULL;
	w = &c->wrq[c->nwrq];
	memset(w, 0, sizeof(*w));
	w->sg_list = c->sgq[c->nwrq++];
	return w;
}

static int msg_post(struct rdma_conn *c)
{
	struct ibv_send_wr *w;
	int r;

	if (c->cur < 0)
		return 0;
	w = wrq_add(c, &r);
	if (!w)
		return r;
	w->wr_id = ((uint64_t)WK_SEND << 24) | (uint32_t)c->cur;
	w->opcode = IBV_WR_SEND;
	w->num_sge = 1;
	w->sg_list[0] = (struct ibv_sge){
		.addr = (uintptr_t)(c->sbuf + (size_t)c->cur * SBUF_SIZE),
		.length = (uint32_t)c->cur_len,
		.lkey = c->smr->lkey,
	};
	c->sbusy[c->cur] = true;
	c->cur = -1;
	return post_wrq(c);
}

/* Start a message in a free send buffer, waiting for one if needed. */
static int msg_open(struct rdma_conn *c)
{
	uint64_t deadline = deadline_of(c->timeout_ms);
	unsigned int i;
	int r;

	for (;;) {
		for (i = 0; i < NSEND; i++) {
			unsigned int k = (c->snext + i) % NSEND;

			if (!c->sbusy[k]) {
				c->cur = (int)k;
				c->snext = (k + 1) % NSEND;
				c->cur_len = 0;
				c->last_placed = false;
				return 0;
			}
		}
		r = cq_drain(c);
		if (r < 0)
			return r;
		if (!r) {
			r = wait_event(c, deadline);
			if (r == -ETIMEDOUT)
				return why(c, r,
					   "no send buffer free for %u ms",
					   c->timeout_ms);
			if (r)
				return r;
		}
	}
}

/* Room for a record header plus @want bytes, in the current message. */
static uint8_t *msg_room(struct rdma_conn *c, size_t want, size_t *got, int *r)
{
	*r = 0;
	if (c->cur >= 0 && SBUF_SIZE - c->cur_len < KM_RREC_HDR + 64)
		*r = msg_post(c);
	if (!*r && c->cur < 0)
		*r = msg_open(c);
	if (*r)
		return NULL;
	*got = SBUF_SIZE - c->cur_len - KM_RREC_HDR;
	if (*got > want)
		*got = want;
	c->last_rec = c->cur_len;
	return c->sbuf + (size_t)c->cur * SBUF_SIZE + c->cur_len;
}

static int put_rec(struct rdma_conn *c, const struct km__rrec *rec,
		   const void *data)
{
	size_t got;
	uint8_t *p;
	int r;

	p = msg_room(c, rec->type == KM_RREC_DATA ? rec->len : 0, &got, &r);
	if (!p)
		return r;
	km__rrec_put(p, rec);
	if (data)
		memcpy(p + KM_RREC_HDR, data, got);
	c->cur_len += KM_RREC_HDR + (rec->type == KM_RREC_DATA ? got : 0);
	c->last_placed = rec->type == KM_RREC_PLACED;
	return 0;
}

static int put_data(struct rdma_conn *c, const uint8_t *p, size_t len,
		    uint32_t key)
{
	struct km__rrec rec = { .type = KM_RREC_DATA, .key = key };
	size_t got;
	uint8_t *m;
	int r;

	while (len) {
		m = msg_room(c, len, &got, &r);
		if (!m)
			return r;
		rec.len = got;
		km__rrec_put(m, &rec);
		memcpy(m + KM_RREC_HDR, p, got);
		c->cur_len += KM_RREC_HDR + got;
		c->last_placed = false;
		p += got;
		len -= got;
	}
	return 0;
}

static const struct src_region *find_src(const struct rdma_conn *c,
					 const uint8_t *p, size_t len)
{
	unsigned int i;

	for (i = 0; i < c->nsrc; i++)
		if (p >= c->src[i].addr &&
		    (size_t)(p - c->src[i].addr) <= c->src[i].len &&
		    len <= c->src[i].len - (size_t)(p - c->src[i].addr))
			return &c->src[i];
	return NULL;
}

/*
 * May @len more bytes be placed now? Takes a fresh grant if the current
 * one is spent, waiting for the peer's CREDIT unless the peer has already
 * answered something else (then the bytes go inline and the engine
 * above deals with whatever the answer was).
 */
static int grant_ok(struct rdma_conn *c, size_t len, bool *ok)
{
	uint64_t deadline = deadline_of(c->timeout_ms);
	int r;

	*ok = false;
	if (c->no_place)
		return 0;
	while (c->have_region && c->rstale && !c->credits && !c->rq_n) {
		r = msg_post(c);
		r = r ?: cq_drain(c);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = wait_event(c, deadline);
		if (r == -ETIMEDOUT)
			return why(
				c, r,
				"no staging credit from the peer within %u ms",
				c->timeout_ms);
		if (r)
			return r;
	}
	if (c->rstale && c->credits) {
		c->credits--;
		c->rstale = false;
		c->rused = false;
		c->rpos = 0;
	}
	*ok = c->have_region && !c->rstale && len <= c->rlen - c->rpos;
	return 0;
}

static int put_placed(struct rdma_conn *c, const uint8_t *p, size_t len,
		      const struct src_region *s)
{
	uint8_t *m = c->cur >= 0 ? c->sbuf + (size_t)c->cur * SBUF_SIZE : NULL;
	struct ibv_send_wr *w = c->nwrq ? &c->wrq[c->nwrq - 1] : NULL;
	struct km__rrec rec = { .type = KM_RREC_PLACED,
				.off = c->rpos,
				.len = len };
	struct km__rrec last;
	size_t next;
	int r;

	/*
	 * Gather contiguous destination bytes into one WRITE (up to the
	 * device's SGE limit) and one PLACED record.
	 */
	if (w && w->opcode == IBV_WR_RDMA_WRITE &&
	    (unsigned int)w->num_sge < c->max_sge && m && c->last_placed &&
	    !km__rrec_next(m, c->cur_len, c->last_rec, UINT64_MAX, &last,
			   &next) &&
	    last.off + last.len == c->rpos) {
		w->sg_list[w->num_sge++] = (struct ibv_sge){
			.addr = (uintptr_t)p,
			.length = (uint32_t)len,
			.lkey = s->mr->lkey,
		};
		last.len += len;
		km__rrec_put(m + c->last_rec, &last);
		goto placed;
	}
	w = wrq_add(c, &r);
	if (!w)
		return r;
	w->wr_id = (uint64_t)WK_WRITE << 24;
	w->opcode = IBV_WR_RDMA_WRITE;
	w->num_sge = 1;
	w->sg_list[0] = (struct ibv_sge){ .addr = (uintptr_t)p,
					  .length = (uint32_t)len,
					  .lkey = s->mr->lkey };
	w->wr.rdma.remote_addr = c->raddr + c->rpos;
	w->wr.rdma.rkey = c->rkey;
	r = put_rec(c, &rec, NULL);
	if (r)
		return r;
placed:
	c->rpos += len;
	c->rused = true;
	return 0;
}

static int rdma_sendv(struct km_transport *t, const struct iovec *iov,
		      int iovcnt)
{
	struct rdma_conn *c = to_rc(t);
	const struct src_region *s;
	bool ok;
	int i, r = 0;

	if (c->state != RS_CONNECTED)
		return -ECONNRESET;
	for (i = 0; !r && i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (!len)
			continue;
		s = len <= UINT32_MAX ? find_src(c, p, len) : NULL;
		ok = false;
		if (s)
			r = grant_ok(c, len, &ok);
		if (r)
			break;
		if (ok) {
			r = put_placed(c, p, len, s);
			continue;
		}
		/*
		 * Page data that cannot be placed goes inline, marked: the
		 * peer's engine stages it too, so it spends the grant like
		 * placed data, and nothing more may be placed in this turn
		 * (it could land on what was just staged).
		 */
		if (s && c->have_region) {
			c->rused = true;
			c->no_place = true;
		}
		/* Both ends count exactly the same bytes against a grant. */
		r = put_data(c, p, len,
			     s && c->have_region ? KM_RREC_PAGE_DATA : 0);
	}
	return r ?: msg_post(c);
}

static int rdma_register(struct km_transport *t, void *addr, size_t len,
			 unsigned int how)
{
	struct rdma_conn *c = to_rc(t);
	struct km__rrec rec = { .type = KM_RREC_REGION };
	struct src_region *s;
	int r;

	if (how == KM_MEM_SOURCE) {
		if (c->nsrc == MAX_SRC)
			return why(c, -ENOSPC, "too many registered regions");
		s = &c->src[c->nsrc];
		r = reg_mr(c, addr, len, IBV_ACCESS_LOCAL_WRITE, &s->mr,
			   "guest memory");
		if (r)
			return r;
		s->addr = addr;
		s->len = len;
		c->nsrc++;
		return 0;
	}
	if (how != KM_MEM_TARGET || c->tgt)
		return why(c, -EINVAL, "one staging region per connection");
	r = reg_mr(c, addr, len,
		   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, &c->tmr,
		   "the staging area");
	if (r)
		return r;
	c->tgt = addr;
	c->tgt_len = len;
	rec.key = c->tmr->rkey;
	rec.off = (uintptr_t)addr;
	rec.len = len;
	r = put_rec(c, &rec, NULL);
	return r ?: msg_post(c);
}

static int rdma_release(struct km_transport *t)
{
	struct rdma_conn *c = to_rc(t);
	struct km__rrec rec = { .type = KM_RREC_CREDIT };
	int r;

	if (!c->tgt_used)
		return 0;
	c->tgt_used = false;
	rec.key = ++c->grant;
	r = put_rec(c, &rec, NULL);
	return r ?: msg_post(c);
}

static int rdma_set_timeout(struct km_transport *t, unsigned int ms)
{
	to_rc(t)->timeout_ms = ms;
	return 0;
}

/* ---- connection setup ---- */

static int resolve(const char *host, const char *port, bool passive,
		   struct addrinfo **ai)
{
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	int r = getaddrinfo(host, port, &hints, ai);

	if (r) {
		km__transport_set_last_error(
			"rdma: bad address '%s' port '%s': %s",
			host ? host : "*", port, gai_strerror(r));
		return -EINVAL;
	}
	return 0;
}

static int no_device(void)
{
	struct ibv_device **l;
	int n = 0;

	l = ibv_get_device_list(&n);
	if (l)
		ibv_free_device_list(l);
	if (n > 0)
		return 0;
	km__transport_set_last_error(
		"rdma: no RDMA device found: load rdma_rxe and add one ('rdma link add rxe0 type rxe netdev IFACE') or use a host with an RDMA NIC");
	return -ENODEV;
}

static int fail_setup(struct rdma_conn *c, int r)
{
	km__transport_set_last_error("rdma: %s", c->base.why[0] ? c->base.why :
								  strerror(-r));
	rdma_close(&c->base);
	return r;
}

/*
 * What listening and connecting both start with: an RDMA device must
 * exist, then a connection with its event channel and its CM id.
 */
static int conn_open(struct rdma_conn **out)
{
	struct rdma_conn *c;
	int r;

	r = no_device();
	if (r)
		return r;
	c = conn_new();
	if (!c)
		return -ENOMEM;
	r = channel_open(c);
	if (r)
		return fail_setup(c, r);
	if (rdma_create_id(c->ch, &c->id, c, RDMA_PS_TCP))
		return fail_setup(c, why(c, -errno, "rdma_create_id: %s",
					 strerror(errno)));
	*out = c;
	return 0;
}

static int rc_listen(const char *host, const char *port,
		     struct km_transport **out)
{
	struct rdma_conn *c;
	struct addrinfo *ai;
	int r;

	r = conn_open(&c);
	if (r)
		return r;
	r = resolve(host, port, true, &ai);
	if (r) {
		rdma_close(&c->base);
		return r;
	}
	if (rdma_bind_addr(c->id, ai->ai_addr))
		r = why(c, -errno,
			"cannot bind %s: %s (is there an RDMA device on its interface?)",
			host ? host : "*", strerror(errno));
	else if (rdma_listen(c->id, 8))
		r = why(c, -errno, "rdma_listen: %s", strerror(errno));
	freeaddrinfo(ai);
	if (r)
		return fail_setup(c, r);
	c->state = RS_LISTENING;
	*out = &c->base;
	return 0;
}

static int accept_conn(struct rdma_conn *c)
{
	struct rdma_conn_param param = { .rnr_retry_count = 7,
					 .retry_count = 7 };
	int r;

	r = channel_open(c);
	if (r)
		return r;
	/* Its own event channel: the listener may go on or go away. */
	if (rdma_migrate_id(c->id, c->ch))
		return why(c, -errno, "rdma_migrate_id: %s", strerror(errno));
	r = res_create(c);
	if (r)
		return r;
	if (rdma_accept(c->id, &param))
		return why(c, -errno, "rdma_accept: %s", strerror(errno));
	return cm_wait(c, RS_CONNECTED, RESOLVE_MS * RESOLVE_TRIES);
}

static int rdma_accept_op(struct km_transport *listener,
			  struct km_transport **out)
{
	struct rdma_conn *l = to_rc(listener), *c;
	int r;

	r = cm_wait(l, RS_CONNECT_REQUEST, l->timeout_ms);
	if (r) {
		km__transport_set_last_error("rdma: %s", l->base.why);
		l->base.why[0] = '\0';
		if (l->state != RS_ERROR)
			return r;
		l->state = RS_LISTENING;
		return r;
	}
	l->state = RS_LISTENING;
	c = conn_new();
	if (!c) {
		rdma_reject(l->pending, NULL, 0);
		rdma_destroy_id(l->pending);
		l->pending = NULL;
		return -ENOMEM;
	}
	c->id = l->pending;
	c->id->context = c;
	l->pending = NULL;
	r = accept_conn(c);
	if (r)
		return fail_setup(c, r);
	*out = &c->base;
	return 0;
}

/* "DST" or "DST@SRC": connect to DST from the local address SRC. */
static int split_host(const char *host, char *dst, size_t n, const char **src)
{
	const char *at = strchr(host, '@');
	size_t len = at ? (size_t)(at - host) : strlen(host);

	if (len >= n)
		return -EINVAL;
	memcpy(dst, host, len);
	dst[len] = '\0';
	*src = at ? at + 1 : NULL;
	return 0;
}

static int resolve_addr(struct rdma_conn *c, const char *host, const char *port)
{
	struct addrinfo *dst, *src = NULL;
	const char *srcname;
	char name[256];
	int r, i;

	r = split_host(host, name, sizeof(name), &srcname);
	r = r ?: resolve(name, port, false, &dst);
	if (r)
		return r;
	if (srcname)
		r = resolve(srcname, "0", false, &src);
	/*
	 * ib_core can lose the wake-up of an ARP reply that comes back at
	 * once (veth): a short timeout and a retry beat one long wait.
	 */
	for (i = 0; !r && i < RESOLVE_TRIES; i++) {
		c->state = RS_IDLE;
		c->base.why[0] = '\0';
		if (rdma_resolve_addr(c->id, src ? src->ai_addr : NULL,
				      dst->ai_addr, RESOLVE_MS)) {
			r = why(c, -errno,
				"rdma_resolve_addr %s: %s (is there an RDMA device on the way there?)",
				host, strerror(errno));
			break;
		}
		r = cm_wait(c, RS_ADDR_RESOLVED, RESOLVE_MS + 500);
		if (r != -EHOSTUNREACH && r != -ETIMEDOUT)
			break;
		if (i + 1 < RESOLVE_TRIES)
			r = 0;
	}
	if (src)
		freeaddrinfo(src);
	freeaddrinfo(dst);
	return r;
}

static int rdma_connect_op(const char *host, const char *port,
			   struct km_transport **out)
{
	struct rdma_conn_param param = { .rnr_retry_count = 7,
					 .retry_count = 7 };
	struct rdma_conn *c;
	int r;

	r = conn_open(&c);
	if (r)
		return r;
	r = resolve_addr(c, host, port);
	if (r == -EINVAL) {
		rdma_close(&c->base);
		return r;
	}
	if (!r && rdma_resolve_route(c->id, RESOLVE_MS))
		r = why(c, -errno, "rdma_resolve_route: %s", strerror(errno));
	r = r ?: cm_wait(c, RS_ROUTE_RESOLVED, RESOLVE_MS * 2);
	r = r ?: res_create(c);
	if (!r && rdma_connect(c->id, &param))
		r = why(c, -errno, "rdma_connect: %s", strerror(errno));
	r = r ?: cm_wait(c, RS_CONNECTED, RESOLVE_MS * RESOLVE_TRIES);
	if (r == -ECONNREFUSED)
		why(c, r,
		    "connection to %s port %s refused: is a secondary listening there?",
		    host, port);
	if (r)
		return fail_setup(c, r);
	*out = &c->base;
	return 0;
}

static int rdma_local_port(struct km_transport *t)
{
	return ntohs(rdma_get_src_port(to_rc(t)->id));
}

const struct km_transport_ops km_rdma_ops = {
	.name = "rdma",
	.listen = rc_listen,
	.accept = rdma_accept_op,
	.connect = rdma_connect_op,
	.sendv = rdma_sendv,
	.recv = rdma_recv,
	.set_timeout = rdma_set_timeout,
	.local_port = rdma_local_port,
	.register_memory = rdma_register,
	.release = rdma_release,
	.close = rdma_close,
};
