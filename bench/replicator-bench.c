// SPDX-License-Identifier: GPL-2.0
/*
 * Replicator benchmark: the pause of one lockstep epoch against the floor,
 * the same bytes moved by the simplest code over the same transport (one
 * writev of the raw pages, then a one-byte reply), measured in the same
 * run with the two interleaved so both see the same machine load.
 *
 * One JSON object per line and dirty-set size; see docs/performance.md.
 *   replicator-bench [--scale F] [--pages N] [--no-auth-lines]
 *		      [--max-pages N] [--transport tcp|rdma] [--addr A]
 *		      [--from SRC] [--mem-pages N]
 *		      [--placement split|same|free] [--spin-us N|never]
 *
 * Over RDMA the floor is one chain of plain RDMA WRITEs of the raw pages
 * (gathered, at most the device's SGE limit per WRITE, the last one WITH
 * IMMEDIATE so the receiver is told) and a one-byte SEND back, written
 * with librdmacm's simplest API (rdma_verbs.h), waiting in event mode as
 * the transport does. The secondary and the floor's receiver listen on
 * --addr; the primary connects from --from.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "replicator.h"

#define MAX_SAMPLES 4000

/* Guest memory in pages: 128 MiB unless --mem-pages says otherwise. */
static uint32_t mem_pages = 32768u;

/*
 * Where the ends run. On loopback the scheduler decides by itself whether
 * the two ends share a CPU, and it decides differently from run to run
 * (docs/performance.md), so the bench pins them: "split" (the default)
 * gives the primary one CPU and both receivers (the secondary and the
 * floor's) another, as two hosts would; "same" puts everything on one
 * CPU; "free" leaves it to the scheduler.
 */
enum placement { PLACE_SPLIT, PLACE_SAME, PLACE_FREE };
static const char *const place_names[] = { "split", "same", "free" };

struct opts {
	const struct km_transport_ops *ops;
	const char *addr; /* where the receivers listen */
	const char *from; /* RDMA: the primary's source address */
	enum placement place;
	int cpu[2]; /* the primary's CPU, the receivers' CPU */
	unsigned int spin_us; /* 0: the replicator's default */
};

static struct opts opt = { .addr = "127.0.0.1" };

/* Pin the caller to @cpu; -1 leaves it where it is. */
static int pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* The first two CPUs this process may use, per the placement. */
static int plan_placement(void)
{
	cpu_set_t set;
	int c, n = 0, first[2] = { -1, -1 };

	opt.cpu[0] = opt.cpu[1] = -1;
	if (opt.place == PLACE_FREE)
		return 0;
	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	for (c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			first[n++] = c;
	if (opt.place == PLACE_SPLIT && n < 2) {
		fprintf(stderr,
			"bench: --placement split needs two CPUs, this process may use one; use --placement same or free\n");
		return -EINVAL;
	}
	opt.cpu[0] = first[0];
	opt.cpu[1] = opt.place == PLACE_SPLIT ? first[1] : first[0];
	return 0;
}

static const uint8_t key[] = "kemari-bench-key-0123456789abcdef";

struct guest {
	uint8_t *mem;
	uint64_t *dirty;
	uint32_t *set; /* this epoch's dirty pages, ascending */
	uint32_t *perm;
	uint64_t rng;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct guest *g)
{
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 0x2545f4914f6cdd1dull;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Pick @n distinct random pages and write fresh non-zero data to them. */
static void dirty_pages(struct guest *g, uint32_t n)
{
	uint32_t i, j, t;

	for (i = 0; i < n; i++) {
		j = i + (uint32_t)(rnd(g) % (mem_pages - i));
		t = g->perm[i];
		g->perm[i] = g->perm[j];
		g->perm[j] = t;
		g->set[i] = g->perm[i];
	}
	qsort(g->set, n, sizeof(*g->set), cmp_u32);
	for (i = 0; i < n; i++) {
		uint64_t *w =
			(uint64_t *)(g->mem + (size_t)g->set[i] * KM_PAGE_SIZE);
		uint64_t v = rnd(g) | 1;

		for (j = 0; j < KM_PAGE_SIZE / 8; j++)
			w[j] = v + j;
		g->dirty[g->set[i] / 64] |= 1ull << (g->set[i] % 64);
	}
}

static int collect(void *opaque, uint64_t *bitmap, uint64_t npages)
{
	struct guest *g = opaque;

	memcpy(bitmap, g->dirty, (npages + 63) / 64 * 8);
	memset(g->dirty, 0, (npages + 63) / 64 * 8);
	return 0;
}

static uint8_t *map_memfd(void)
{
	int fd = memfd_create("kemari-bench", MFD_CLOEXEC);
	void *p;

	/*
	 * Allocate every page up front, as a VM's memory and a synced
	 * replica are: otherwise first writes pay for page allocation.
	 */
	if (fd < 0 || fallocate(fd, 0, 0, (off_t)mem_pages * KM_PAGE_SIZE))
		return NULL;
	p = mmap(NULL, (size_t)mem_pages * KM_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* Children listen themselves (verbs state must not cross a fork). */
static void report_port(int wfd, int port)
{
	if (write(wfd, &port, sizeof(port)) != sizeof(port))
		_exit(2);
	close(wfd);
}

/*
 * The secondary says when it has applied an epoch (the copy into the
 * replica runs after its ACK). The parent waits for that outside both
 * timed sections, so neither the floor nor the next epoch is measured
 * while the previous epoch's apply still runs on the same cores.
 */
static int applied_pipe[2] = { -1, -1 };

static void on_applied(void *opaque, uint64_t epoch)
{
	(void)opaque;
	(void)epoch;
	if (write(applied_pipe[1], "a", 1) != 1)
		_exit(2);
}

/* Child: the kemari secondary, one session. */
static void secondary_child(bool auth, int wfd)
{
	struct km_secondary_config cfg = {
		.replica = map_memfd(),
		.mem_size = (uint64_t)mem_pages * KM_PAGE_SIZE,
		.key = key,
		.key_len = sizeof(key) - 1,
		.data_auth = auth,
		.applied = on_applied,
		.spin_us = opt.spin_us,
	};
	struct km_transport *lis, *t;
	struct km_secondary *s;

	close(applied_pipe[0]);

	if (!cfg.replica || km_secondary_create(&cfg, &s) ||
	    opt.ops->listen(opt.addr, "0", &lis)) {
		fprintf(stderr, "bench: secondary: %s\n",
			km_transport_last_error());
		_exit(2);
	}
	report_port(wfd, lis->ops->local_port(lis));
	if (lis->ops->accept(lis, &t))
		_exit(2);
	km_secondary_serve(s, t);
	_exit(0);
}

/* ---- the TCP floor: one writev of the raw pages, a one-byte reply ---- */

static void tcp_floor_child(uint32_t pages, int wfd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	size_t len = (size_t)pages * KM_PAGE_SIZE;
	uint8_t *buf = malloc(len), ack = 1;
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd, one = 1;

	if (!buf || lfd < 0 || inet_pton(AF_INET, opt.addr, &a.sin_addr) != 1 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		_exit(2);
	report_port(wfd, ntohs(a.sin_port));
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(2);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		ssize_t n = recv(fd, buf, len, MSG_WAITALL);

		if (n != (ssize_t)len || send(fd, &ack, 1, 0) != 1)
			_exit(0);
	}
}

static int tcp_floor_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, opt.addr, &a.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int tcp_floor_once(int fd, const struct guest *g, uint32_t n,
			  struct iovec *iov)
{
	uint32_t i, done = 0;
	uint8_t ack;

	for (i = 0; i < n; i++) {
		iov[i].iov_base = g->mem + (size_t)g->set[i] * KM_PAGE_SIZE;
		iov[i].iov_len = KM_PAGE_SIZE;
	}
	while (done < n) {
		int cnt = n - done > 1024 ? 1024 : (int)(n - done);
		ssize_t w = writev(fd, iov + done, cnt);

		if (w < 0)
			return -errno;
		while (w > 0) {
			size_t take = (size_t)w < iov[done].iov_len ?
					      (size_t)w :
					      iov[done].iov_len;

			iov[done].iov_base = (char *)iov[done].iov_base + take;
			iov[done].iov_len -= take;
			w -= (ssize_t)take;
			if (!iov[done].iov_len)
				done++;
		}
	}
	return recv(fd, &ack, 1, MSG_WAITALL) == 1 ? 0 : -EIO;
}

/* ---- the RDMA floor: plain WRITEs of the raw pages, a one-byte SEND ---- */

#define RF_MAX_WR 1024

struct rfloor {
	struct rdma_cm_id *id;
	struct ibv_mr *mem_mr, *ack_mr;
	uint8_t ack;
	uint64_t raddr;
	uint32_t rkey;
	int max_sge;
	struct ibv_send_wr wr[RF_MAX_WR];
	struct ibv_sge *sge;
};

struct rf_info {
	uint64_t addr;
	uint32_t rkey;
} __attribute__((packed));

static struct rdma_addrinfo *rf_resolve(const char *host, const char *port,
					bool passive)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP,
				       .ai_flags = passive ? RAI_PASSIVE : 0 },
			     *res = NULL;
	struct sockaddr_in src = { .sin_family = AF_INET };

	if (!passive && opt.from &&
	    inet_pton(AF_INET, opt.from, &src.sin_addr) == 1) {
		hints.ai_src_addr = (struct sockaddr *)&src;
		hints.ai_src_len = sizeof(src);
	}
	if (rdma_getaddrinfo(host, port, &hints, &res))
		return NULL;
	return res;
}

static void rdma_floor_child(uint32_t pages, int wfd)
{
	struct ibv_qp_init_attr attr = {
		.cap = { .max_send_wr = 4,
			 .max_recv_wr = 4,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
		.sq_sig_all = 1,
	};
	size_t len = (size_t)pages * KM_PAGE_SIZE;
	struct rdma_addrinfo *res = rf_resolve(opt.addr, "0", true);
	struct rdma_cm_id *lid, *id;
	struct ibv_mr *mr, *amr;
	struct rf_info info;
	struct rdma_conn_param param = { .private_data = &info,
					 .private_data_len = sizeof(info),
					 .rnr_retry_count = 7 };
	uint8_t *buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	uint8_t ack[2] = { 1, 0 };
	struct ibv_wc wc;

	if (!res || buf == MAP_FAILED ||
	    rdma_create_ep(&lid, res, NULL, &attr) || rdma_listen(lid, 1))
		_exit(2);
	report_port(wfd, ntohs(rdma_get_src_port(lid)));
	if (rdma_get_request(lid, &id))
		_exit(2);
	mr = rdma_reg_write(id, buf, len);
	amr = rdma_reg_msgs(id, ack, sizeof(ack));
	if (!mr || !amr || rdma_post_recv(id, NULL, ack + 1, 1, amr))
		_exit(2);
	info = (struct rf_info){ (uintptr_t)buf, mr->rkey };
	if (rdma_accept(id, &param))
		_exit(2);
	for (;;) {
		/* The WRITE WITH IMMEDIATE consumes a receive: data is in. */
		if (rdma_get_recv_comp(id, &wc) <= 0 ||
		    wc.status != IBV_WC_SUCCESS ||
		    rdma_post_recv(id, NULL, ack + 1, 1, amr) ||
		    rdma_post_send(id, NULL, ack, 1, amr, IBV_SEND_SIGNALED) ||
		    rdma_get_send_comp(id, &wc) <= 0 ||
		    wc.status != IBV_WC_SUCCESS)
			_exit(0);
	}
}

static int rf_fail(const char *what)
{
	fprintf(stderr, "bench: RDMA floor: %s: %s\n", what, strerror(errno));
	return -EIO;
}

static int rdma_floor_connect(struct rfloor *f, const struct guest *g, int port)
{
	/* 16 SGEs: what most NICs take, and what the transport uses. */
	struct ibv_qp_init_attr attr = {
		.cap = { .max_send_wr = RF_MAX_WR,
			 .max_recv_wr = 4,
			 .max_send_sge = 16,
			 .max_recv_sge = 1 },
	};
	struct rdma_conn_param param = { .rnr_retry_count = 7,
					 .retry_count = 7 };
	struct rdma_addrinfo *res;
	struct rf_info info;
	char p[16];

	snprintf(p, sizeof(p), "%d", port);
	res = rf_resolve(opt.addr, p, false);
	if (!res)
		return rf_fail("rdma_getaddrinfo");
	if (rdma_create_ep(&f->id, res, NULL, &attr)) {
		rdma_freeaddrinfo(res);
		return rf_fail("rdma_create_ep");
	}
	rdma_freeaddrinfo(res);
	f->max_sge = 16;
	f->mem_mr =
		rdma_reg_msgs(f->id, g->mem, (size_t)mem_pages * KM_PAGE_SIZE);
	f->ack_mr = rdma_reg_msgs(f->id, &f->ack, 1);
	f->sge = calloc(mem_pages, sizeof(*f->sge));
	if (!f->mem_mr || !f->ack_mr || !f->sge)
		return rf_fail("memory registration");
	if (rdma_post_recv(f->id, NULL, &f->ack, 1, f->ack_mr))
		return rf_fail("rdma_post_recv");
	if (rdma_connect(f->id, &param))
		return rf_fail("rdma_connect");
	if (!f->id->event ||
	    f->id->event->param.conn.private_data_len < sizeof(info))
		return rf_fail("no buffer address in the accept");
	memcpy(&info, f->id->event->param.conn.private_data, sizeof(info));
	f->raddr = info.addr;
	f->rkey = info.rkey;
	return 0;
}

static int rdma_floor_once(struct rfloor *f, const struct guest *g, uint32_t n)
{
	uint32_t i, nwr = 0;
	struct ibv_send_wr *bad;
	struct ibv_wc wc;

	for (i = 0; i < n; i++)
		f->sge[i] = (struct ibv_sge){
			.addr = (uintptr_t)(g->mem +
					    (size_t)g->set[i] * KM_PAGE_SIZE),
			.length = KM_PAGE_SIZE,
			.lkey = f->mem_mr->lkey,
		};
	for (i = 0; i < n; i += (uint32_t)f->max_sge, nwr++) {
		struct ibv_send_wr *w = &f->wr[nwr];
		uint32_t k = n - i < (uint32_t)f->max_sge ?
				     n - i :
				     (uint32_t)f->max_sge;

		*w = (struct ibv_send_wr){
			.sg_list = &f->sge[i],
			.num_sge = (int)k,
			.opcode = IBV_WR_RDMA_WRITE,
			.wr.rdma = { f->raddr + (uint64_t)i * KM_PAGE_SIZE,
				     f->rkey },
		};
		if (nwr)
			f->wr[nwr - 1].next = w;
	}
	f->wr[nwr - 1].opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	f->wr[nwr - 1].send_flags = IBV_SEND_SIGNALED;
	if (ibv_post_send(f->id->qp, f->wr, &bad) ||
	    rdma_get_recv_comp(f->id, &wc) <= 0 ||
	    wc.status != IBV_WC_SUCCESS ||
	    rdma_post_recv(f->id, NULL, &f->ack, 1, f->ack_mr) ||
	    rdma_get_send_comp(f->id, &wc) <= 0 || wc.status != IBV_WC_SUCCESS)
		return -EIO;
	return 0;
}

static void rdma_floor_close(struct rfloor *f)
{
	if (!f->id)
		return;
	rdma_disconnect(f->id);
	if (f->mem_mr)
		rdma_dereg_mr(f->mem_mr);
	if (f->ack_mr)
		rdma_dereg_mr(f->ack_mr);
	rdma_destroy_ep(f->id);
	free(f->sge);
}

struct result {
	uint64_t pause[MAX_SAMPLES], floor[MAX_SAMPLES];
	unsigned int n;
	struct km_stats st;
};

static void pctl(uint64_t *v, unsigned int n, double *p50, double *p99)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	*p50 = (double)v[(n * 50 + 99) / 100 - 1] / 1000.0;
	*p99 = (double)v[(n * 99 + 99) / 100 - 1] / 1000.0;
}

static void print_json(uint32_t pages, bool auth, struct result *r)
{
	struct json_object *o = json_object_new_object();
	double p50, p99, f50, f99;

	pctl(r->pause, r->n, &p50, &p99);
	pctl(r->floor, r->n, &f50, &f99);
	json_object_object_add(o, "transport",
			       json_object_new_string(opt.ops->name));
	json_object_object_add(o, "data_auth", json_object_new_boolean(auth));
	json_object_object_add(o, "placement",
			       json_object_new_string(place_names[opt.place]));
	json_object_object_add(o, "spin_us",
			       json_object_new_int((int)km_spin_us(opt.spin_us)));
	json_object_object_add(o, "pages", json_object_new_int(pages));
	json_object_object_add(o, "epochs", json_object_new_int((int)r->n));
	json_object_object_add(o, "pause_p50_us", json_object_new_double(p50));
	json_object_object_add(o, "pause_p99_us", json_object_new_double(p99));
	json_object_object_add(o, "floor_p50_us", json_object_new_double(f50));
	json_object_object_add(o, "floor_p99_us", json_object_new_double(f99));
	json_object_object_add(o, "ratio_p50",
			       json_object_new_double(p50 / f50));
	json_object_object_add(o, "ratio_p99",
			       json_object_new_double(p99 / f99));
	json_object_object_add(
		o, "wire_bytes_ratio",
		json_object_new_double((double)r->st.wire_bytes /
				       ((double)r->st.pages * KM_PAGE_SIZE)));
	json_object_object_add(
		o, "send_p50_us",
		json_object_new_double((double)r->st.send_p50_ns / 1000.0));
	json_object_object_add(
		o, "ack_p50_us",
		json_object_new_double((double)r->st.ack_p50_ns / 1000.0));
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

struct peers {
	pid_t sec, flo;
	struct km_primary *p;
	int ffd;
	struct rfloor rf;
};

static pid_t spawn(void (*child)(uint32_t, int), uint32_t arg, int *port)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (!pid) {
		close(fds[0]);
		if (pin_to(opt.cpu[1]))
			_exit(2);
		child(arg, fds[1]);
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], port, sizeof(*port)) != sizeof(*port))
		pid = -1;
	close(fds[0]);
	return pid;
}

static void secondary_plain(uint32_t auth, int wfd)
{
	secondary_child(auth, wfd);
}

static int start_peers(struct guest *g, uint32_t pages, bool auth,
		       struct peers *pe)
{
	struct km_primary_config cfg = {
		.mem = g->mem,
		.mem_size = (uint64_t)mem_pages * KM_PAGE_SIZE,
		.dirty = collect,
		.dirty_opaque = g,
		.key = key,
		.key_len = sizeof(key) - 1,
		.generation = 1,
		.data_auth = auth,
		.ack_timeout_ms = 60000,
		.spin_us = opt.spin_us,
	};
	bool rdma = opt.ops == &km_rdma_ops;
	char port[16], host[128], err[256];
	struct km_transport *t;
	int sport, fport, r;

	if (pipe(applied_pipe))
		return -errno;
	pe->sec = spawn(secondary_plain, auth, &sport);
	close(applied_pipe[1]);
	pe->flo =
		spawn(rdma ? rdma_floor_child : tcp_floor_child, pages, &fport);
	if (pe->sec < 0 || pe->flo < 0)
		return -EIO;
	if (rdma) {
		pe->ffd = -1;
		r = rdma_floor_connect(&pe->rf, g, fport);
	} else {
		pe->ffd = tcp_floor_connect(fport);
		r = pe->ffd < 0 ? -EIO : 0;
	}
	if (r) {
		fprintf(stderr, "bench: floor connect failed\n");
		return r;
	}
	snprintf(port, sizeof(port), "%d", sport);
	snprintf(host, sizeof(host), "%s%s%s", opt.addr, opt.from ? "@" : "",
		 opt.from ? opt.from : "");
	r = opt.ops->connect(host, port, &t);
	if (r)
		snprintf(err, sizeof(err), "%s", km_transport_last_error());
	r = r ?: km_primary_create(&cfg, t, &pe->p, err, sizeof(err));
	if (r) {
		fprintf(stderr, "bench: %s\n", err);
		return r;
	}
	return 0;
}

static void stop_peers(struct peers *pe, bool failed)
{
	/* A child still waiting for a connection would never exit. */
	if (failed && pe->sec > 0)
		kill(pe->sec, SIGKILL);
	/*
	 * The RDMA floor's receiver blocks on its completion queue only (the
	 * simplest code) and never sees the disconnect: always stop it.
	 */
	if (pe->flo > 0)
		kill(pe->flo, SIGKILL);
	km_primary_destroy(pe->p);
	if (pe->ffd >= 0)
		close(pe->ffd);
	rdma_floor_close(&pe->rf);
	if (pe->sec > 0)
		waitpid(pe->sec, NULL, 0);
	close(applied_pipe[0]);
	if (pe->flo > 0)
		waitpid(pe->flo, NULL, 0);
}

/* Interleave: kemari epoch, floor transfer, same page set for both. */
static int measure(struct guest *g, uint32_t pages, unsigned int iters,
		   bool auth, struct result *res)
{
	struct iovec *iov = calloc(pages, sizeof(*iov));
	unsigned int warm = iters / 10 + 2, i;
	struct peers pe = { 0 };
	char c;
	uint64_t t0;
	int r;

	r = iov ? start_peers(g, pages, auth, &pe) : -ENOMEM;
	for (i = 0; !r && i < warm + iters; i++) {
		uint64_t a, b;

		dirty_pages(g, pages);
		t0 = now_ns();
		r = km_primary_epoch(pe.p, NULL, 0);
		a = now_ns() - t0;
		if (!r && read(applied_pipe[0], &c, 1) != 1)
			r = -EIO;
		t0 = now_ns();
		if (!r)
			r = pe.ffd >= 0 ?
				    tcp_floor_once(pe.ffd, g, pages, iov) :
				    rdma_floor_once(&pe.rf, g, pages);
		b = now_ns() - t0;
		if (i >= warm) {
			res->pause[res->n] = a;
			res->floor[res->n++] = b;
		}
	}
	if (r)
		fprintf(stderr, "bench: %s\n",
			pe.p ? km_primary_strerror(pe.p) : "start failed");
	if (pe.p)
		km_primary_stats(pe.p, &res->st);
	stop_peers(&pe, r != 0);
	free(iov);
	return r;
}

static bool parse_placement(const char *s)
{
	unsigned int i;

	for (i = 0; i < sizeof(place_names) / sizeof(place_names[0]); i++) {
		if (!strcmp(s, place_names[i])) {
			opt.place = (enum placement)i;
			return true;
		}
	}
	return false;
}

static unsigned int iterations(uint32_t pages, double scale)
{
	unsigned int n = pages <= 1    ? 3000 :
			 pages <= 64   ? 2000 :
			 pages <= 1024 ? 500 :
					 40;

	n = (unsigned int)(n * scale);
	if (n < 5)
		n = 5;
	return n > MAX_SAMPLES - 500 ? MAX_SAMPLES - 500 : n;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { 1, 64, 1024, 16384 };
	static struct result res;
	struct guest g = { .rng = 0x9e3779b97f4a7c15ull };
	double scale = 1.0;
	uint32_t only = 0, max_pages = UINT32_MAX;
	bool auth_lines = true, ok_place = true;
	unsigned int i, a;

	opt.ops = &km_tcp_ops;
	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--scale") && i + 1 < (unsigned int)argc)
			scale = atof(argv[++i]);
		else if (!strcmp(argv[i], "--pages") &&
			 i + 1 < (unsigned int)argc)
			only = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-auth-lines"))
			auth_lines = false;
		else if (!strcmp(argv[i], "--transport") &&
			 i + 1 < (unsigned int)argc)
			opt.ops = km_transport_find(argv[++i]);
		else if (!strcmp(argv[i], "--addr") &&
			 i + 1 < (unsigned int)argc)
			opt.addr = argv[++i];
		else if (!strcmp(argv[i], "--from") &&
			 i + 1 < (unsigned int)argc)
			opt.from = argv[++i];
		else if (!strcmp(argv[i], "--max-pages") &&
			 i + 1 < (unsigned int)argc)
			max_pages = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--placement") &&
			 i + 1 < (unsigned int)argc)
			ok_place = parse_placement(argv[++i]);
		else if (!strcmp(argv[i], "--spin-us") &&
			 i + 1 < (unsigned int)argc)
			opt.spin_us = strcmp(argv[++i], "never") ?
					      (unsigned int)atoi(argv[i]) :
					      KM_SPIN_NEVER;
		else if (!strcmp(argv[i], "--mem-pages") &&
			 i + 1 < (unsigned int)argc)
			mem_pages = (uint32_t)atoi(argv[++i]) & ~63u;
		else
			opt.ops = NULL;
		if (!opt.ops || !ok_place || mem_pages < 16384) {
			fprintf(stderr,
				"usage: %s [--scale F] [--pages N] [--max-pages N] [--no-auth-lines] [--transport tcp|rdma] [--addr A] [--from SRC] [--mem-pages N>=16384] [--placement split|same|free] [--spin-us N]\n",
				argv[0]);
			return 2;
		}
	}
	if (plan_placement() || pin_to(opt.cpu[0]))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	g.mem = map_memfd();
	g.dirty = calloc(mem_pages / 64, sizeof(*g.dirty));
	g.set = calloc(mem_pages, sizeof(*g.set));
	g.perm = calloc(mem_pages, sizeof(*g.perm));
	if (!g.mem || !g.set || !g.perm || !g.dirty)
		return 1;
	for (i = 0; i < mem_pages; i++)
		g.perm[i] = i;
	for (a = 0; a <= (auth_lines ? 1u : 0u); a++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if ((only && sizes[i] != only) || sizes[i] > max_pages)
				continue;
			memset(&res, 0, sizeof(res));
			if (measure(&g, sizes[i], iterations(sizes[i], scale),
				    a, &res))
				return 1;
			print_json(sizes[i], a, &res);
		}
	}
	free(g.dirty);
	free(g.perm);
	free(g.set);
	munmap(g.mem, (size_t)mem_pages * KM_PAGE_SIZE);
	return 0;
}
