// SPDX-License-Identifier: GPL-2.0
/*
 * Replicator benchmark: the pause of one lockstep epoch against the floor,
 * the same bytes moved by the simplest code over the same transport (one
 * writev of the raw pages, then a one-byte reply), measured in the same
 * run with the two interleaved so both see the same machine load.
 *
 * One JSON object per line and dirty-set size; see docs/performance.md.
 *   replicator-bench [--scale F] [--pages N] [--no-auth-lines]
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
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

#define MEM_PAGES 32768u /* 128 MiB of guest memory */
#define MAX_SAMPLES 4000

static const uint8_t key[] = "kemari-bench-key-0123456789abcdef";

struct guest {
	uint8_t *mem;
	uint64_t dirty[MEM_PAGES / 64];
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
		j = i + (uint32_t)(rnd(g) % (MEM_PAGES - i));
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
	memset(g->dirty, 0, sizeof(g->dirty));
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
	if (fd < 0 || fallocate(fd, 0, 0, (off_t)MEM_PAGES * KM_PAGE_SIZE))
		return NULL;
	p = mmap(NULL, (size_t)MEM_PAGES * KM_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* Child: the kemari secondary, one session. */
static void secondary_child(struct km_transport *lis, bool auth)
{
	struct km_secondary_config cfg = {
		.replica = map_memfd(),
		.mem_size = (uint64_t)MEM_PAGES * KM_PAGE_SIZE,
		.key = key,
		.key_len = sizeof(key) - 1,
		.data_auth = auth,
	};
	struct km_transport *t;
	struct km_secondary *s;

	if (!cfg.replica || km_secondary_create(&cfg, &s) ||
	    lis->ops->accept(lis, &t))
		_exit(2);
	km_secondary_serve(s, t);
	_exit(0);
}

/* Child: the floor's receiver, as simple as it gets. */
static void floor_child(int lfd, uint32_t pages)
{
	size_t len = (size_t)pages * KM_PAGE_SIZE;
	uint8_t *buf = malloc(len), ack = 1;
	int fd = accept(lfd, NULL, NULL), one = 1;

	if (!buf || fd < 0)
		_exit(2);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		ssize_t n = recv(fd, buf, len, MSG_WAITALL);

		if (n != (ssize_t)len || send(fd, &ack, 1, 0) != 1)
			_exit(0);
	}
}

static int floor_listen(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 1) || getsockname(fd, (struct sockaddr *)&a, &alen))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int floor_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* The floor: one writev of the raw pages, a one-byte reply. */
static int floor_once(int fd, const struct guest *g, uint32_t n,
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
	json_object_object_add(o, "transport", json_object_new_string("tcp"));
	json_object_object_add(o, "data_auth", json_object_new_boolean(auth));
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
};

static int start_peers(struct guest *g, uint32_t pages, bool auth,
		       struct peers *pe)
{
	struct km_primary_config cfg = {
		.mem = g->mem,
		.mem_size = (uint64_t)MEM_PAGES * KM_PAGE_SIZE,
		.dirty = collect,
		.dirty_opaque = g,
		.key = key,
		.key_len = sizeof(key) - 1,
		.generation = 1,
		.data_auth = auth,
		.ack_timeout_ms = 10000,
	};
	struct km_transport *lis, *t;
	char port[16], err[256];
	int lfd, fport, r;

	r = km_tcp_ops.listen("127.0.0.1", "0", &lis);
	lfd = floor_listen(&fport);
	if (r || lfd < 0)
		return -EIO;
	snprintf(port, sizeof(port), "%d", lis->ops->local_port(lis));
	pe->sec = fork();
	if (!pe->sec)
		secondary_child(lis, auth);
	pe->flo = fork();
	if (!pe->flo)
		floor_child(lfd, pages);
	km_transport_close(lis);
	close(lfd);
	pe->ffd = floor_connect(fport);
	r = km_tcp_ops.connect("127.0.0.1", port, &t);
	r = r ?: km_primary_create(&cfg, t, &pe->p, err, sizeof(err));
	if (r || pe->ffd < 0) {
		fprintf(stderr, "bench: %s\n", r ? err : "floor connect");
		return r ?: -EIO;
	}
	return 0;
}

static void stop_peers(struct peers *pe)
{
	km_primary_destroy(pe->p);
	close(pe->ffd);
	waitpid(pe->sec, NULL, 0);
	waitpid(pe->flo, NULL, 0);
}

/* Interleave: kemari epoch, floor transfer, same page set for both. */
static int measure(struct guest *g, uint32_t pages, unsigned int iters,
		   bool auth, struct result *res)
{
	struct iovec *iov = calloc(pages, sizeof(*iov));
	unsigned int warm = iters / 10 + 2, i;
	struct peers pe;
	uint64_t t0;
	int r;

	r = iov ? start_peers(g, pages, auth, &pe) : -ENOMEM;
	for (i = 0; !r && i < warm + iters; i++) {
		uint64_t a, b;

		dirty_pages(g, pages);
		t0 = now_ns();
		r = km_primary_epoch(pe.p, NULL, 0);
		a = now_ns() - t0;
		t0 = now_ns();
		r = r ?: floor_once(pe.ffd, g, pages, iov);
		b = now_ns() - t0;
		if (i >= warm) {
			res->pause[res->n] = a;
			res->floor[res->n++] = b;
		}
	}
	if (r)
		fprintf(stderr, "bench: %s\n", km_primary_strerror(pe.p));
	km_primary_stats(pe.p, &res->st);
	stop_peers(&pe);
	free(iov);
	return r;
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
	uint32_t only = 0;
	bool auth_lines = true;
	unsigned int i, a;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--scale") && i + 1 < (unsigned int)argc)
			scale = atof(argv[++i]);
		else if (!strcmp(argv[i], "--pages") &&
			 i + 1 < (unsigned int)argc)
			only = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-auth-lines"))
			auth_lines = false;
		else {
			fprintf(stderr,
				"usage: %s [--scale F] [--pages N] [--no-auth-lines]\n",
				argv[0]);
			return 2;
		}
	}
	g.mem = map_memfd();
	g.set = calloc(MEM_PAGES, sizeof(*g.set));
	g.perm = calloc(MEM_PAGES, sizeof(*g.perm));
	if (!g.mem || !g.set || !g.perm)
		return 1;
	for (i = 0; i < MEM_PAGES; i++)
		g.perm[i] = i;
	for (a = 0; a <= (auth_lines ? 1u : 0u); a++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if (only && sizes[i] != only)
				continue;
			memset(&res, 0, sizeof(res));
			if (measure(&g, sizes[i], iterations(sizes[i], scale),
				    a, &res))
				return 1;
			print_json(sizes[i], a, &res);
		}
	}
	free(g.perm);
	free(g.set);
	munmap(g.mem, (size_t)MEM_PAGES * KM_PAGE_SIZE);
	return 0;
}
