// SPDX-License-Identifier: GPL-2.0
/*
 * Two-process test driver for the replicator over TCP. One binary, two
 * roles, each a real process started by run.py:
 *
 *   repl-drive secondary --pages N --key K [--sessions S] [--data-auth]
 *	prints "listening PORT", then "applied E HASH" after every applied
 *	epoch and "session RET EPOCH HASH CONSISTENT TEXT" after a session.
 *   repl-drive primary --port P --pages N --key K --seed S --epochs E
 *	[--gen G] [--sync] [--data-auth] [--die-at-byte X]
 *	dirties its memfd in random patterns; prints "synced", then
 *	"commit E HASH" before each epoch and "acked E" after its ACK.
 *
 * HASH is XXH3-64 of the whole memory. --die-at-byte wraps the
 * transport in one that sends exactly X bytes and then SIGKILLs itself:
 * a primary dying at a chosen byte of the stream. --stall-at-byte X does
 * the same with SIGSTOP: a primary that hangs there, connection open.
 *
 * The secondary takes --staging-pages N (the most pages one epoch may
 * carry; default all of memory) and --epoch-timeout-ms T (how long it
 * waits for more of a begun epoch).
 *
 * Both roles take --transport tcp|rdma (default tcp) and --addr A: the
 * secondary listens on A (default 127.0.0.1), the primary connects to A
 * ("DST@SRC" for RDMA picks the local source address).
 *
 *   repl-drive primary ... --reps R [--kill-window-ms W] [--die-range B]
 *	runs R primaries one after the other, each a forked child (a new
 *	process costs seconds in the lab, a fork does not): child K uses
 *	seed + K; even K die at a random byte below B (with --die-range),
 *	the others are sent SIGKILL at a random time within W ms after they
 *	connected. Prints "rep K" before and "end K STATUS" after each.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "replicator.h"

struct opts {
	const char *role;
	const char *port;
	uint64_t pages;
	const char *key;
	unsigned int sessions;
	uint64_t seed;
	unsigned int epochs;
	uint64_t gen;
	bool sync;
	bool data_auth;
	long long die_at;
	int die_sig; /* SIGKILL, or SIGSTOP for --stall-at-byte */
	const struct km_transport_ops *ops;
	const char *addr;
	unsigned int reps;
	uint64_t staging_pages;
	unsigned int epoch_timeout_ms;
	unsigned int kill_window_ms;
	long long die_range;
	int ready_fd; /* --reps child: tell the parent we are connected */
};

struct guest {
	uint8_t *mem;
	uint64_t pages;
	uint64_t *dirty;
	uint64_t rng;
};

static uint8_t *map_memfd(uint64_t pages)
{
	size_t len = pages * KM_PAGE_SIZE;
	int fd = memfd_create("kemari-test", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)len)) {
		perror("memfd");
		exit(2);
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static uint64_t mem_hash(const uint8_t *mem, uint64_t pages)
{
	return XXH3_64bits(mem, pages * KM_PAGE_SIZE);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- secondary ---------------------------------------------------------- */

struct replica {
	uint8_t *mem;
	uint64_t pages;
};

static void on_applied(void *opaque, uint64_t epoch)
{
	struct replica *r = opaque;

	printf("applied %llu %016llx\n", (unsigned long long)epoch,
	       (unsigned long long)mem_hash(r->mem, r->pages));
	fflush(stdout);
}

static int run_secondary(const struct opts *o)
{
	struct replica rep = { map_memfd(o->pages), o->pages };
	struct km_secondary_config cfg = {
		.replica = rep.mem,
		.mem_size = o->pages * KM_PAGE_SIZE,
		.key = (const uint8_t *)o->key,
		.key_len = strlen(o->key),
		.data_auth = o->data_auth,
		.staging_pages = o->staging_pages,
		.epoch_timeout_ms = o->epoch_timeout_ms,
		.applied = on_applied,
		.opaque = &rep,
	};
	struct km_transport *lis, *t;
	struct km_secondary *s;
	unsigned int i;
	int r;

	r = km_secondary_create(&cfg, &s);
	r = r ?: o->ops->listen(o->addr, "0", &lis);
	if (r) {
		fprintf(stderr, "secondary: %s %s\n", km_strerror(r),
			km_transport_last_error());
		return 2;
	}
	printf("listening %d\n", lis->ops->local_port(lis));
	fflush(stdout);
	for (i = 0; i < o->sessions; i++) {
		r = lis->ops->accept(lis, &t);
		if (r) {
			/* A primary killed while connecting: still a session. */
			printf("session %d %llu %016llx %d accept failed: %s\n",
			       r, (unsigned long long)km_secondary_epoch(s),
			       (unsigned long long)mem_hash(rep.mem, rep.pages),
			       km_secondary_consistent(s),
			       km_transport_last_error());
			fflush(stdout);
			continue;
		}
		r = km_secondary_serve(s, t);
		km_transport_close(t);
		printf("session %d %llu %016llx %d %s\n", r,
		       (unsigned long long)km_secondary_epoch(s),
		       (unsigned long long)mem_hash(rep.mem, rep.pages),
		       km_secondary_consistent(s), km_secondary_strerror(s));
		fflush(stdout);
	}
	km_transport_close(lis);
	km_secondary_destroy(s);
	munmap(rep.mem, rep.pages * KM_PAGE_SIZE);
	return 0;
}

/* --- a transport that dies at a chosen byte ------------------------------ */

struct dying {
	struct km_transport base;
	struct km_transport *inner;
	long long left;
	long long sent;
	int sig;
};

static int dying_sendv(struct km_transport *t, const struct iovec *iov, int n)
{
	struct dying *d = (struct dying *)t;
	struct iovec cut[256];
	long long total = 0;
	int i, k = 0;

	for (i = 0; i < n; i++)
		total += (long long)iov[i].iov_len;
	if (total <= d->left) {
		d->left -= total;
		d->sent += total;
		return d->inner->ops->sendv(d->inner, iov, n);
	}
	for (i = 0; i < n && d->left > 0 && k < 256; i++, k++) {
		cut[k] = iov[i];
		if ((long long)cut[k].iov_len > d->left)
			cut[k].iov_len = (size_t)d->left;
		d->left -= (long long)cut[k].iov_len;
	}
	if (k)
		d->inner->ops->sendv(d->inner, cut, k);
	fflush(stdout);
	raise(d->sig);
	return -EIO;
}

static int dying_recv(struct km_transport *t, void *buf, size_t len)
{
	struct dying *d = (struct dying *)t;

	return d->inner->ops->recv(d->inner, buf, len);
}

static int dying_set_timeout(struct km_transport *t, unsigned int ms)
{
	struct dying *d = (struct dying *)t;

	return d->inner->ops->set_timeout(d->inner, ms);
}

static int dying_register(struct km_transport *t, void *addr, size_t len,
			  unsigned int how)
{
	struct dying *d = (struct dying *)t;
	int r = km_transport_register(d->inner, addr, len, how);

	snprintf(t->why, sizeof(t->why), "%s", d->inner->why);
	return r;
}

static void dying_close(struct km_transport *t)
{
	struct dying *d = (struct dying *)t;

	printf("sent %lld\n", d->sent);
	km_transport_close(d->inner);
	free(d);
}

static const struct km_transport_ops dying_ops = {
	.name = "tcp-dying",
	.sendv = dying_sendv,
	.recv = dying_recv,
	.set_timeout = dying_set_timeout,
	.register_memory = dying_register,
	.close = dying_close,
};

static struct km_transport *wrap_dying(struct km_transport *inner,
				       long long at, int sig)
{
	struct dying *d = calloc(1, sizeof(*d));

	if (!d)
		exit(2);
	d->base.ops = &dying_ops;
	d->inner = inner;
	d->left = at;
	d->sig = sig;
	return &d->base;
}

/* --- primary ------------------------------------------------------------ */

static uint64_t rnd(struct guest *g)
{
	/* xorshift64*: reproducible from --seed, good enough for patterns. */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 0x2545f4914f6cdd1dull;
}

static void touch(struct guest *g, uint64_t pfn, int pattern)
{
	uint8_t *p = g->mem + pfn * KM_PAGE_SIZE;
	uint64_t off = rnd(g) % KM_PAGE_SIZE;

	switch (pattern) {
	case 0: /* a few bytes */
		p[off] = (uint8_t)rnd(g);
		break;
	case 1: /* the whole page */
		memset(p, (int)(rnd(g) | 1), KM_PAGE_SIZE);
		break;
	default: /* cleared: goes as a zero-page marker */
		memset(p, 0, KM_PAGE_SIZE);
		break;
	}
	g->dirty[pfn / 64] |= 1ull << (pfn % 64);
}

/* Random pages, a contiguous range, and sometimes zeroed pages. */
static void dirty_some(struct guest *g)
{
	uint64_t n = rnd(g) % 32, start, len, i;

	for (i = 0; i < n; i++)
		touch(g, rnd(g) % g->pages, (int)(rnd(g) % 3));
	start = rnd(g) % g->pages;
	len = rnd(g) % 48;
	for (i = start; i < g->pages && i < start + len; i++)
		touch(g, i, 1);
}

static int collect(void *opaque, uint64_t *bitmap, uint64_t npages)
{
	struct guest *g = opaque;

	memcpy(bitmap, g->dirty, (npages + 63) / 64 * sizeof(*bitmap));
	memset(g->dirty, 0, (npages + 63) / 64 * sizeof(*bitmap));
	return 0;
}

/* The guest keeps running during the initial sync. */
static void on_progress(void *opaque, const struct km_sync_progress *pr)
{
	struct guest *g = opaque;

	if (!pr->round && pr->bytes_done < pr->bytes_total)
		dirty_some(g);
}

static int run_epochs(struct km_primary *p, struct guest *g,
		      const struct opts *o)
{
	char blob[64];
	struct km_blob b = { 1, 0, blob };
	unsigned int i;
	int r;

	for (i = 0; i < o->epochs; i++) {
		uint64_t e = km_primary_last_epoch(p) + 1;

		dirty_some(g);
		b.len = (uint32_t)snprintf(blob, sizeof(blob), "vcpu at %llu",
					   (unsigned long long)e);
		printf("commit %llu %016llx\n", (unsigned long long)e,
		       (unsigned long long)mem_hash(g->mem, g->pages));
		fflush(stdout);
		r = km_primary_epoch(p, &b, 1);
		if (r) {
			fprintf(stderr, "primary: %s\n",
				km_primary_strerror(p));
			return 1;
		}
		printf("acked %llu\n", (unsigned long long)e);
		fflush(stdout);
	}
	return 0;
}

static int run_primary(const struct opts *o)
{
	struct guest g = { map_memfd(o->pages), o->pages,
			   calloc((o->pages + 63) / 64, 8), o->seed | 1 };
	struct km_primary_config cfg = {
		.mem = g.mem,
		.mem_size = o->pages * KM_PAGE_SIZE,
		.dirty = collect,
		.dirty_opaque = &g,
		.key = (const uint8_t *)o->key,
		.key_len = strlen(o->key),
		.generation = o->gen,
		.data_auth = o->data_auth,
		.ack_timeout_ms = 5000,
	};
	struct km_sync_opts so = { .max_rounds = 4,
				   .small_pages = 8,
				   .progress = on_progress,
				   .opaque = &g };
	struct km_transport *t;
	struct km_primary *p;
	char err[256];
	uint64_t t0;
	int r;

	dirty_some(&g);
	r = o->ops->connect(o->addr, o->port, &t);
	if (r) {
		fprintf(stderr, "primary: connect: %s %s\n", km_strerror(r),
			km_transport_last_error());
		goto out_free;
	}
	if (o->die_at >= 0)
		t = wrap_dying(t, o->die_at, o->die_sig);
	r = km_primary_create(&cfg, t, &p, err, sizeof(err));
	if (r) {
		fprintf(stderr, "primary: %s\n", err);
		goto out_free;
	}
	if (o->ready_fd >= 0 && write(o->ready_fd, "c", 1) != 1)
		perror("ready pipe");
	t0 = now_ms();
	r = o->sync ? km_primary_sync(p, &so) : 0;
	if (r)
		fprintf(stderr, "primary: sync: %s\n", km_primary_strerror(p));
	else
		printf("synced\n");
	r = r ?: run_epochs(p, &g, o);
	printf("elapsed %llu\n", (unsigned long long)(now_ms() - t0));
	km_primary_destroy(p);
out_free:
	free(g.dirty);
	munmap(g.mem, g.pages * KM_PAGE_SIZE);
	return r ? 1 : 0;
}

/* Child @k of --reps: a whole primary, killed by itself or by us. */
static int run_rep(const struct opts *base, unsigned int k, uint64_t *rng)
{
	struct opts o = *base;
	int fds[2], status;
	struct pollfd pfd;
	char c;
	pid_t pid;

	o.seed = base->seed + k;
	o.die_at = -1;
	if (k % 2 == 0 && base->die_range > 0)
		o.die_at = (long long)(*rng % (uint64_t)base->die_range);
	*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
	if (pipe(fds))
		return -errno;
	printf("rep %u\n", k);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		close(fds[0]);
		o.ready_fd = fds[1];
		_exit(run_primary(&o));
	}
	close(fds[1]);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	if (o.die_at < 0 && poll(&pfd, 1, 30000) == 1 &&
	    read(fds[0], &c, 1) == 1) {
		usleep((useconds_t)(*rng %
				    (base->kill_window_ms * 1000ull + 1)));
		kill(pid, SIGKILL);
	}
	/* Closed only now: a child writing to it must not get SIGPIPE. */
	waitpid(pid, &status, 0);
	close(fds[0]);
	printf("end %u %d\n", k,
	       WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status));
	fflush(stdout);
	return 0;
}

static int run_reps(const struct opts *o)
{
	uint64_t rng = (uint64_t)time(NULL) * 2654435761u + o->seed;
	unsigned int k;
	int r;

	printf("reps seed %llu\n", (unsigned long long)rng);
	for (k = 0; k < o->reps; k++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		r = run_rep(o, k, &rng);
		if (r)
			return 2;
	}
	return 0;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "port", 1, 0, 'p' },
		{ "pages", 1, 0, 'n' },
		{ "key", 1, 0, 'k' },
		{ "sessions", 1, 0, 's' },
		{ "seed", 1, 0, 'S' },
		{ "epochs", 1, 0, 'e' },
		{ "gen", 1, 0, 'g' },
		{ "sync", 0, 0, 'y' },
		{ "data-auth", 0, 0, 'a' },
		{ "die-at-byte", 1, 0, 'd' },
		{ "stall-at-byte", 1, 0, 'x' },
		{ "transport", 1, 0, 't' },
		{ "addr", 1, 0, 'A' },
		{ "reps", 1, 0, 'r' },
		{ "kill-window-ms", 1, 0, 'w' },
		{ "die-range", 1, 0, 'D' },
		{ "staging-pages", 1, 0, 'P' },
		{ "epoch-timeout-ms", 1, 0, 'T' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .pages = 256,
			    .key = "kemari-test-key-0123456789",
			    .sessions = 1,
			    .seed = 1,
			    .epochs = 10,
			    .gen = 1,
			    .die_at = -1,
			    .die_sig = SIGKILL,
			    .ops = &km_tcp_ops,
			    .addr = "127.0.0.1",
			    .kill_window_ms = 200,
			    .ready_fd = -1 };
	if (argc < 2) {
		fprintf(stderr,
			"usage: repl-drive primary|secondary [options] (see the source's header)\n");
		exit(2);
	}
	o->role = argv[1];
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->port = optarg;
			break;
		case 'n':
			o->pages = strtoull(optarg, NULL, 0);
			break;
		case 'k':
			o->key = optarg;
			break;
		case 's':
			o->sessions = (unsigned int)atoi(optarg);
			break;
		case 'S':
			o->seed = strtoull(optarg, NULL, 0);
			break;
		case 'e':
			o->epochs = (unsigned int)atoi(optarg);
			break;
		case 'g':
			o->gen = strtoull(optarg, NULL, 0);
			break;
		case 'y':
			o->sync = true;
			break;
		case 'a':
			o->data_auth = true;
			break;
		case 'd':
			o->die_at = atoll(optarg);
			break;
		case 'x':
			o->die_at = atoll(optarg);
			o->die_sig = SIGSTOP;
			break;
		case 't':
			o->ops = km_transport_find(optarg);
			if (!o->ops) {
				fprintf(stderr, "unknown transport '%s'\n",
					optarg);
				exit(2);
			}
			break;
		case 'A':
			o->addr = optarg;
			break;
		case 'r':
			o->reps = (unsigned int)atoi(optarg);
			break;
		case 'w':
			o->kill_window_ms = (unsigned int)atoi(optarg);
			break;
		case 'D':
			o->die_range = atoll(optarg);
			break;
		case 'P':
			o->staging_pages = strtoull(optarg, NULL, 0);
			break;
		case 'T':
			o->epoch_timeout_ms = (unsigned int)atoi(optarg);
			break;
		default:
			exit(2);
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o;

	parse(argc, argv, &o);
	if (!strcmp(o.role, "secondary"))
		return run_secondary(&o);
	if (!strcmp(o.role, "primary") && o.port && o.reps)
		return run_reps(&o);
	if (!strcmp(o.role, "primary") && o.port)
		return run_primary(&o);
	fprintf(stderr, "repl-drive: unknown role '%s' or missing --port\n",
		o.role);
	return 2;
}
