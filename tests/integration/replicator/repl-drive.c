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
 * HASH is XXH3-64 of the whole memory. --die-at-byte wraps the TCP
 * transport in one that sends exactly X bytes and then SIGKILLs itself:
 * a primary dying at a chosen byte of the stream.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
		.applied = on_applied,
		.opaque = &rep,
	};
	struct km_transport *lis, *t;
	struct km_secondary *s;
	unsigned int i;
	int r;

	r = km_secondary_create(&cfg, &s);
	r = r ?: km_tcp_ops.listen("127.0.0.1", "0", &lis);
	if (r) {
		fprintf(stderr, "secondary: %s\n", km_strerror(r));
		return 2;
	}
	printf("listening %d\n", lis->ops->local_port(lis));
	fflush(stdout);
	for (i = 0; i < o->sessions; i++) {
		r = lis->ops->accept(lis, &t);
		if (r)
			break;
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
	raise(SIGKILL);
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
	.close = dying_close,
};

static struct km_transport *wrap_dying(struct km_transport *inner, long long at)
{
	struct dying *d = calloc(1, sizeof(*d));

	if (!d)
		exit(2);
	d->base.ops = &dying_ops;
	d->inner = inner;
	d->left = at;
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
	int r;

	dirty_some(&g);
	r = km_tcp_ops.connect("127.0.0.1", o->port, &t);
	if (r) {
		fprintf(stderr, "primary: connect: %s\n", km_strerror(r));
		goto out_free;
	}
	if (o->die_at >= 0)
		t = wrap_dying(t, o->die_at);
	r = km_primary_create(&cfg, t, &p, err, sizeof(err));
	if (r) {
		fprintf(stderr, "primary: %s\n", err);
		goto out_free;
	}
	r = o->sync ? km_primary_sync(p, &so) : 0;
	if (r)
		fprintf(stderr, "primary: sync: %s\n", km_primary_strerror(p));
	else
		printf("synced\n");
	r = r ?: run_epochs(p, &g, o);
	km_primary_destroy(p);
out_free:
	free(g.dirty);
	munmap(g.mem, g.pages * KM_PAGE_SIZE);
	return r ? 1 : 0;
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
		{ 0 },
	};
	int c;

	*o = (struct opts){ .pages = 256,
			    .key = "kemari-test-key-0123456789",
			    .sessions = 1,
			    .seed = 1,
			    .epochs = 10,
			    .gen = 1,
			    .die_at = -1 };
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
	if (!strcmp(o.role, "primary") && o.port)
		return run_primary(&o);
	fprintf(stderr, "repl-drive: unknown role '%s' or missing --port\n",
		o.role);
	return 2;
}
