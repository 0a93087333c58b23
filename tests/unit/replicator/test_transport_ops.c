// SPDX-License-Identifier: GPL-2.0
/*
 * What the engines ask of a transport beyond bytes, checked with a
 * recording wrapper around TCP: the primary registers guest memory as a
 * source, the secondary its staging area as a target before it reads
 * anything, and releases staging after every applied epoch, never
 * before (the RDMA transport's flow control rests on this). A failed
 * registration reaches the caller with the transport's own sentence.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replicator.h"

#define PAGES 64
#define STAGING 16
#define EPOCHS 5

static const uint8_t key[] = "0123456789abcdef0123456789abcdef";

struct spy {
	struct km_transport base;
	struct km_transport *inner;
	int nreg;
	void *reg_addr;
	size_t reg_len;
	unsigned int reg_how;
	bool io_before_reg;
	int nrelease;
	uint64_t applied_at_release[16];
	int fail_register;
};

static volatile uint64_t applied;

static struct spy *to_spy(struct km_transport *t)
{
	return (struct spy *)t;
}

static int spy_sendv(struct km_transport *t, const struct iovec *iov, int n)
{
	struct spy *s = to_spy(t);

	s->io_before_reg |= !s->nreg;
	return km_transport_sendv(s->inner, iov, n);
}

static int spy_recv(struct km_transport *t, void *buf, size_t len)
{
	struct spy *s = to_spy(t);

	s->io_before_reg |= !s->nreg;
	return km_transport_recv(s->inner, buf, len);
}

static int spy_set_timeout(struct km_transport *t, unsigned int ms)
{
	return to_spy(t)->inner->ops->set_timeout(to_spy(t)->inner, ms);
}

static int spy_register(struct km_transport *t, void *addr, size_t len,
			unsigned int how)
{
	struct spy *s = to_spy(t);

	s->nreg++;
	s->reg_addr = addr;
	s->reg_len = len;
	s->reg_how = how;
	if (s->fail_register) {
		snprintf(t->why, sizeof(t->why),
			 "RLIMIT_MEMLOCK is too small (spy)");
		return -ENOMEM;
	}
	return 0;
}

static int spy_release(struct km_transport *t)
{
	struct spy *s = to_spy(t);

	if (s->nrelease < 16)
		s->applied_at_release[s->nrelease] =
			__atomic_load_n(&applied, __ATOMIC_ACQUIRE);
	s->nrelease++;
	return 0;
}

static void spy_close(struct km_transport *t)
{
	km_transport_close(to_spy(t)->inner);
}

static const struct km_transport_ops spy_ops = {
	.name = "spy",
	.sendv = spy_sendv,
	.recv = spy_recv,
	.set_timeout = spy_set_timeout,
	.register_memory = spy_register,
	.release = spy_release,
	.close = spy_close,
};

static struct spy psec, ppri;
static struct km_transport *lis;
static struct km_secondary *sec;
static int serve_ret;

static void on_applied(void *opaque, uint64_t epoch)
{
	(void)opaque;
	__atomic_store_n(&applied, epoch, __ATOMIC_RELEASE);
}

static void *serve(void *arg)
{
	(void)arg;
	cr_assert_eq(lis->ops->accept(lis, &psec.inner), 0);
	psec.base.ops = &spy_ops;
	serve_ret = km_secondary_serve(sec, &psec.base);
	km_transport_close(&psec.base);
	return NULL;
}

static uint64_t dirty_all[(PAGES + 63) / 64];

static int dirty(void *opaque, uint64_t *bitmap, uint64_t npages)
{
	(void)opaque;
	(void)npages;
	memcpy(bitmap, dirty_all, sizeof(dirty_all));
	return 0;
}

static uint8_t *mem, *replica;
static pthread_t th;
static char port[16];

static void setup(void)
{
	struct km_secondary_config cfg = {
		.mem_size = PAGES * KM_PAGE_SIZE,
		.key = key,
		.key_len = sizeof(key) - 1,
		.staging_pages = STAGING,
		.applied = on_applied,
	};

	mem = aligned_alloc(KM_PAGE_SIZE, PAGES * KM_PAGE_SIZE);
	replica = aligned_alloc(KM_PAGE_SIZE, PAGES * KM_PAGE_SIZE);
	cr_assert(mem && replica);
	memset(mem, 0x5a, PAGES * KM_PAGE_SIZE);
	memset(replica, 0, PAGES * KM_PAGE_SIZE);
	memset(&psec, 0, sizeof(psec));
	memset(&ppri, 0, sizeof(ppri));
	applied = 0;
	cfg.replica = replica;
	cr_assert_eq(km_secondary_create(&cfg, &sec), 0);
	cr_assert_eq(km_tcp_ops.listen("127.0.0.1", "0", &lis), 0);
	snprintf(port, sizeof(port), "%d", lis->ops->local_port(lis));
	cr_assert_eq(pthread_create(&th, NULL, serve, NULL), 0);
	ppri.base.ops = &spy_ops;
	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", port, &ppri.inner), 0);
}

static void teardown(void)
{
	pthread_join(th, NULL);
	km_transport_close(lis);
	km_secondary_destroy(sec);
	free(mem);
	free(replica);
}

static struct km_primary_config pcfg(void)
{
	return (struct km_primary_config){
		.mem = mem,
		.mem_size = PAGES * KM_PAGE_SIZE,
		.dirty = dirty,
		.key = key,
		.key_len = sizeof(key) - 1,
		.generation = 1,
		.ack_timeout_ms = 5000,
	};
}

Test(transport_ops, register_and_release, .init = setup, .fini = teardown)
{
	struct km_primary_config cfg = pcfg();
	struct km_primary *p;
	char err[256];
	int i;

	memset(dirty_all, 0, sizeof(dirty_all));
	dirty_all[0] = 0xff00ff; /* 16 pages: exactly the staging area */
	cr_assert_eq(km_primary_create(&cfg, &ppri.base, &p, err, sizeof(err)),
		     0, "%s", err);
	for (i = 0; i < EPOCHS; i++) {
		mem[(16 + i) * KM_PAGE_SIZE] = (uint8_t)i;
		cr_assert_eq(km_primary_epoch(p, NULL, 0), 0, "%s",
			     km_primary_strerror(p));
	}
	km_primary_destroy(p);
	pthread_join(th, NULL);
	th = pthread_self();

	cr_assert_eq(ppri.nreg, 1);
	cr_assert_eq(ppri.reg_addr, mem);
	cr_assert_eq(ppri.reg_len, PAGES * KM_PAGE_SIZE);
	cr_assert_eq(ppri.reg_how, KM_MEM_SOURCE);
	cr_assert_not(ppri.io_before_reg);
	cr_assert_eq(ppri.nrelease, 0);

	cr_assert_eq(psec.nreg, 1);
	cr_assert_eq(psec.reg_len, STAGING * KM_PAGE_SIZE);
	cr_assert_eq(psec.reg_how, KM_MEM_TARGET);
	cr_assert_not(psec.io_before_reg);
	cr_assert_eq(psec.nrelease, EPOCHS, "%d releases", psec.nrelease);
	for (i = 0; i < EPOCHS; i++)
		cr_assert_eq(psec.applied_at_release[i], (uint64_t)i + 1,
			     "release %d after %llu applied", i,
			     (unsigned long long)psec.applied_at_release[i]);
	cr_assert_eq(serve_ret, -ECONNRESET);
	/* The shipped pages (0-7, 16-23) arrived; the others were never sent. */
	for (i = 0; i < PAGES; i++) {
		static const uint8_t zero[KM_PAGE_SIZE];
		bool shipped = dirty_all[0] >> i & 1;

		cr_assert_eq(memcmp(replica + (size_t)i * KM_PAGE_SIZE,
				    shipped ? mem + (size_t)i * KM_PAGE_SIZE :
					      zero,
				    KM_PAGE_SIZE),
			     0, "page %d", i);
	}
}

/* More than the staging area: refused, nothing released, nothing applied. */
Test(transport_ops, epoch_beyond_staging, .init = setup, .fini = teardown)
{
	struct km_primary_config cfg = pcfg();
	struct km_primary *p;
	char err[256];

	memset(dirty_all, 0, sizeof(dirty_all));
	dirty_all[0] = 0x1ffff; /* 17 pages */
	cr_assert_eq(km_primary_create(&cfg, &ppri.base, &p, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_neq(km_primary_epoch(p, NULL, 0), 0);
	km_primary_destroy(p);
	pthread_join(th, NULL);
	th = pthread_self();
	cr_assert_eq(serve_ret, -ENOSPC);
	cr_assert_eq(psec.nrelease, 0);
	cr_assert_eq(applied, 0);
}

Test(transport_ops, failed_registration_is_explained, .init = setup,
     .fini = teardown)
{
	struct km_primary_config cfg = pcfg();
	struct km_primary *p = NULL;
	char err[256];

	ppri.fail_register = 1;
	cr_assert_eq(km_primary_create(&cfg, &ppri.base, &p, err, sizeof(err)),
		     -ENOMEM);
	cr_assert_null(p);
	cr_assert(strstr(err, "RLIMIT_MEMLOCK is too small (spy)"), "%s", err);
}
