// SPDX-License-Identifier: GPL-2.0
/*
 * Primary and secondary engines against each other over TCP loopback, the
 * secondary in a thread. Raw sessions (handshake, then hand-made messages)
 * check the secondary's sequence, generation, checksum and tag rules.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"

#include "replicator_int.h"

#define PAGES 64
#define MAX_SESSIONS 4

static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t bad_key[32] = "0123456789abcdef0123456789abcdeX";

struct fixture {
	struct km_transport *lis;
	char port[16];
	pthread_t th;
	struct km_secondary *sec;
	uint8_t *replica;
	int nsessions;
	int ret[MAX_SESSIONS];
	char msg[MAX_SESSIONS][320];
};

struct guest {
	uint8_t *mem;
	uint64_t dirty[(PAGES + 63) / 64];
};

static struct fixture fx;
static struct guest g;
static int fds_before;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}
static volatile uint64_t applied_epoch;

static void on_applied(void *opaque, uint64_t epoch)
{
	(void)opaque;
	__atomic_store_n(&applied_epoch, epoch, __ATOMIC_RELEASE);
}

/*
 * The secondary acks before it copies the epoch into the replica; wait
 * (bounded) until it is applied before looking at the replica.
 */
static void wait_applied(uint64_t epoch)
{
	int i;

	for (i = 0; i < 5000; i++) {
		if (__atomic_load_n(&applied_epoch, __ATOMIC_ACQUIRE) >= epoch)
			return;
		usleep(1000);
	}
	cr_assert_fail("epoch %llu never applied", (unsigned long long)epoch);
}

static void *serve(void *arg)
{
	struct fixture *f = arg;
	struct km_transport *t;
	int i;

	for (i = 0; i < f->nsessions; i++) {
		f->ret[i] = f->lis->ops->accept(f->lis, &t);
		if (f->ret[i])
			continue;
		f->ret[i] = km_secondary_serve(f->sec, t);
		snprintf(f->msg[i], sizeof(f->msg[i]), "%s",
			 km_secondary_strerror(f->sec));
		km_transport_close(t);
	}
	return NULL;
}

/* The secondary's epoch timeout for the next start(); 0: the default. */
static unsigned int epoch_timeout_ms;

static void start(int nsessions, bool data_auth)
{
	struct km_secondary_config cfg = {
		.mem_size = PAGES * KM_PAGE_SIZE,
		.key = key,
		.key_len = sizeof(key),
		.data_auth = data_auth,
		.applied = on_applied,
		.epoch_timeout_ms = epoch_timeout_ms,
	};

	fds_before = count_fds();
	applied_epoch = 0;
	fx.replica = aligned_alloc(KM_PAGE_SIZE, PAGES * KM_PAGE_SIZE);
	g.mem = aligned_alloc(KM_PAGE_SIZE, PAGES * KM_PAGE_SIZE);
	cr_assert(fx.replica && g.mem);
	memset(fx.replica, 0, PAGES * KM_PAGE_SIZE);
	memset(g.mem, 0, PAGES * KM_PAGE_SIZE);
	memset(g.dirty, 0, sizeof(g.dirty));
	cfg.replica = fx.replica;
	cr_assert_eq(km_secondary_create(&cfg, &fx.sec), 0);
	cr_assert_eq(km_tcp_ops.listen("127.0.0.1", "0", &fx.lis), 0);
	snprintf(fx.port, sizeof(fx.port), "%d",
		 fx.lis->ops->local_port(fx.lis));
	fx.nsessions = nsessions;
	cr_assert_eq(pthread_create(&fx.th, NULL, serve, &fx), 0);
}

/* Wait for the secondary's sessions to end. */
static void join(void)
{
	pthread_join(fx.th, NULL);
	km_transport_close(fx.lis);
}

/* Frees everything and checks that no socket was left open. */
static void cleanup(void)
{
	km_secondary_destroy(fx.sec);
	free(fx.replica);
	free(g.mem);
	cr_assert_eq(count_fds(), fds_before, "file descriptor leaked");
}

static int collect(void *opaque, uint64_t *bitmap, uint64_t npages)
{
	struct guest *gg = opaque;

	cr_assert_eq(npages, PAGES);
	memcpy(bitmap, gg->dirty, sizeof(gg->dirty));
	memset(gg->dirty, 0, sizeof(gg->dirty));
	return 0;
}

static void write_page(uint64_t pfn, uint8_t v)
{
	memset(g.mem + pfn * KM_PAGE_SIZE, v, KM_PAGE_SIZE);
	g.dirty[pfn / 64] |= 1ull << (pfn % 64);
}

static int connect_primary(const uint8_t *k, uint64_t gen, bool data_auth,
			   struct km_primary **p, char *err, size_t errlen)
{
	struct km_primary_config cfg = {
		.mem = g.mem,
		.mem_size = PAGES * KM_PAGE_SIZE,
		.dirty = collect,
		.dirty_opaque = &g,
		.key = k,
		.key_len = 32,
		.generation = gen,
		.data_auth = data_auth,
		.ack_timeout_ms = 5000,
	};
	struct km_transport *t;
	int r = km_tcp_ops.connect("127.0.0.1", fx.port, &t);

	if (r)
		return r;
	return km_primary_create(&cfg, t, p, err, errlen);
}

/* A real primary at generation 5 commits epochs 1 and 2. */
static void two_epochs(bool data_auth)
{
	struct km_primary *p;
	char err[256];
	int i;

	cr_assert_eq(connect_primary(key, 5, data_auth, &p, err, sizeof(err)),
		     0, "%s", err);
	for (i = 0; i < 2; i++) {
		write_page(3 + (uint64_t)i, (uint8_t)(0x10 + i));
		cr_assert_eq(km_primary_epoch(p, NULL, 0), 0, "%s",
			     km_primary_strerror(p));
	}
	km_primary_destroy(p);
}

Test(engine, epochs_replicate_pages_and_state)
{
	struct km_blob blobs[2] = { { 1, 4, "cpu0" }, { 2, 3, "uar" } };
	struct km_primary *p;
	struct km_stats st;
	const char *blob;
	uint32_t len;
	char err[256];
	int i;

	start(1, false);
	cr_assert_eq(connect_primary(key, 1, false, &p, err, sizeof(err)), 0,
		     "%s", err);
	for (i = 0; i < 5; i++) {
		write_page((uint64_t)(i * 7) % PAGES, (uint8_t)i + 1);
		write_page((uint64_t)(i * 7 + 1) % PAGES, (uint8_t)i + 2);
		write_page(40, 0); /* a zero page */
		cr_assert_eq(km_primary_epoch(p, blobs, 2), 0, "%s",
			     km_primary_strerror(p));
		wait_applied(km_primary_last_epoch(p));
		cr_assert(!memcmp(g.mem, fx.replica, PAGES * KM_PAGE_SIZE),
			  "replica differs after epoch %d", i + 1);
	}
	km_primary_stats(p, &st);
	cr_assert_eq(st.epochs, 5);
	cr_assert_eq(st.pages, 15);
	cr_assert_eq(st.last.zero_pages, 1);
	cr_assert(st.last.wire_bytes < 3 * KM_PAGE_SIZE);
	cr_assert(st.pause_p50_ns > 0 && st.pause_p99_ns >= st.pause_p50_ns);
	cr_assert_eq(km_primary_last_epoch(p), 5);
	km_primary_destroy(p);
	join();
	cr_assert_eq(fx.ret[0], -ECONNRESET, "%s", fx.msg[0]);
	cr_assert(strstr(fx.msg[0], "between epochs"), "%s", fx.msg[0]);
	cr_assert_eq(km_secondary_epoch(fx.sec), 5);
	cr_assert(km_secondary_consistent(fx.sec));
	blob = km_secondary_state(fx.sec, 2, &len);
	cr_assert(blob && len == 3 && !memcmp(blob, "uar", 3));
	cr_assert_null(km_secondary_state(fx.sec, 9, &len));
	cleanup();
}

Test(engine, data_auth_epochs)
{
	start(1, true);
	two_epochs(true);
	join();
	cr_assert_eq(km_secondary_epoch(fx.sec), 2, "%s", fx.msg[0]);
	cr_assert(!memcmp(g.mem, fx.replica, PAGES * KM_PAGE_SIZE));
	cleanup();
}

Test(engine, wrong_key_refused_both_ways)
{
	struct km_primary *p = NULL;
	char err[256];

	start(1, false);
	cr_assert_eq(connect_primary(bad_key, 1, false, &p, err, sizeof(err)),
		     -KM_EAUTH);
	cr_assert(strstr(err, "pre-shared key"), "%s", err);
	join();
	cr_assert_eq(km_secondary_epoch(fx.sec), 0);
	cleanup();
}

Test(engine, data_auth_mismatch_refused)
{
	struct km_primary *p = NULL;
	char err[256];

	start(1, true);
	cr_assert_eq(connect_primary(key, 1, false, &p, err, sizeof(err)),
		     -KM_EFIELD);
	cr_assert(strstr(err, "full-data authentication"), "%s", err);
	join();
	cr_assert_eq(fx.ret[0], -KM_EFIELD);
	cleanup();
}

struct progress_log {
	unsigned int calls;
	struct km_sync_progress last;
	bool dirtied;
};

/* The guest keeps writing while round 0 runs: rounds 1.. must follow. */
static void on_progress(void *opaque, const struct km_sync_progress *pr)
{
	struct progress_log *log = opaque;

	cr_assert(pr->bytes_done >= log->last.bytes_done);
	log->calls++;
	log->last = *pr;
	if (!pr->round && !log->dirtied) {
		write_page(60, 0x60);
		write_page(61, 0x61);
		write_page(62, 0x62);
		log->dirtied = true;
	}
}

Test(engine, initial_sync_then_lockstep)
{
	struct progress_log log = { 0 };
	struct km_sync_opts o = { .max_rounds = 5,
				  .small_pages = 2,
				  .progress = on_progress,
				  .opaque = &log };
	struct km_primary *p;
	char err[256];
	uint64_t i;

	start(1, false);
	for (i = 0; i < PAGES; i += 3)
		memset(g.mem + i * KM_PAGE_SIZE, (int)i + 1, KM_PAGE_SIZE);
	cr_assert_eq(connect_primary(key, 1, false, &p, err, sizeof(err)), 0);
	write_page(7, 0x77); /* logged before the sync: still replicated */
	cr_assert_eq(km_primary_sync(p, &o), 0, "%s", km_primary_strerror(p));
	cr_assert(log.calls >= 2);
	cr_assert_eq(log.last.bytes_total, PAGES * KM_PAGE_SIZE);
	/* Round 0 covered all memory, round 1 the three pages dirtied. */
	cr_assert_eq(log.last.bytes_done, (PAGES + 3) * KM_PAGE_SIZE);
	cr_assert_eq(log.last.round, 1);
	cr_assert(log.last.rate_bps > 0);
	cr_assert_eq(log.last.remaining_pages, 0);
	write_page(8, 0x88);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), 0);
	wait_applied(km_primary_last_epoch(p));
	cr_assert(!memcmp(g.mem, fx.replica, PAGES * KM_PAGE_SIZE));
	km_primary_destroy(p);
	join();
	cr_assert(km_secondary_consistent(fx.sec));
	cleanup();
}

/* A session that authenticates properly, then sends hand-made messages. */
static struct km_transport *raw_session(struct km__session *s)
{
	struct km_transport *t;
	char err[256] = "";

	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", fx.port, &t), 0);
	s->mem_size = PAGES * KM_PAGE_SIZE;
	cr_assert_eq(km__auth_client(t, key, sizeof(key), s, err, sizeof(err)),
		     0, "%s", err);
	return t;
}

/*
 * The secondary drops the connection as soon as it rejects something, so
 * later sends may fail; that is expected and checked through the reply.
 */
static void raw_send(struct km_transport *t, const void *buf, size_t len)
{
	km_transport_send(t, buf, len);
}

static void raw_begin(struct km_transport *t, uint64_t epoch, uint64_t gen)
{
	struct km_msg_begin b = { epoch, gen, 0 };
	uint8_t buf[64];

	raw_send(t, buf, km_wire_encode_begin(buf, &b));
}

/* One zero-data PAGES message of @pfn; returns its body digest input. */
static void raw_page(struct km_transport *t, uint64_t pfn, uint8_t fill,
		     uint64_t *d)
{
	struct km_page_run run = { pfn, 1, 0 };
	uint8_t buf[64], page[KM_PAGE_SIZE];
	size_t len = km_wire_encode_pages(buf, &run, 1, 1);

	memset(page, fill, sizeof(page));
	*d = km_digest(*d, buf + KM_WIRE_HDR_SIZE, len - KM_WIRE_HDR_SIZE);
	*d = km_digest(*d, page, sizeof(page));
	raw_send(t, buf, len);
	raw_send(t, page, sizeof(page));
}

static void raw_commit(struct km_transport *t, uint64_t epoch, uint64_t gen,
		       uint64_t digest, uint32_t nmsgs, bool mac)
{
	struct km_msg_commit c = { .epoch = epoch,
				   .generation = gen,
				   .digest = digest,
				   .flags = mac ? KM_COMMIT_MAC : 0,
				   .nmsgs = nmsgs };
	uint8_t buf[128];

	memset(c.mac, 0x42, sizeof(c.mac));
	raw_send(t, buf, km_wire_encode_commit(buf, &c));
}

/*
 * The secondary's answer: 0 for the right ACK, else its ERROR code. The
 * ERROR may be lost to a reset when our unread sends hit a closed socket,
 * so a reset also passes; the secondary's own return code is the check.
 */
static int raw_reply(struct km_transport *t, uint64_t epoch, int want)
{
	uint8_t raw[KM_CTL_MAX];
	struct km_wire_hdr h;
	struct km_msg_ack ack;
	char err[256];
	int r = km__recv_ctl(t, raw, &h, err, sizeof(err));

	if (r == -ECONNRESET || r == -EPIPE)
		return want;
	if (r)
		return r;
	cr_assert_eq(km_wire_decode_ack(&h, raw + KM_WIRE_HDR_SIZE, h.length,
					&ack),
		     0);
	cr_assert_eq(ack.epoch, epoch);
	return 0;
}

/* Epochs 1-2 at generation 5, then one raw epoch; expect @want. */
static void raw_case(uint64_t epoch, uint64_t gen, int corrupt, int want)
{
	uint8_t before[PAGES * KM_PAGE_SIZE];
	struct km__session s = { 0 };
	struct km_transport *t;
	uint64_t digest = 0;

	start(2, corrupt == 3);
	two_epochs(corrupt == 3);
	wait_applied(2);
	memcpy(before, fx.replica, sizeof(before));
	s.flags = corrupt == 3 ? KM_HELLO_DATA_AUTH : 0;
	t = raw_session(&s);
	cr_assert_eq(s.last_epoch, 2);
	cr_assert_eq(s.generation, 5);
	raw_begin(t, epoch, gen);
	raw_page(t, 9, 0x99, &digest);
	if (corrupt == 1)
		digest ^= 1;
	raw_commit(t, epoch, gen, digest, corrupt == 2 ? 2 : 1, corrupt == 3);
	cr_assert_eq(raw_reply(t, epoch, want), want);
	km_transport_close(t);
	join();
	cr_assert_eq(fx.ret[1], want ?: -ECONNRESET, "%s", fx.msg[1]);
	if (want) {
		cr_assert(!memcmp(before, fx.replica, sizeof(before)),
			  "replica changed by a rejected epoch");
		cr_assert_eq(km_secondary_epoch(fx.sec), 2);
		cr_assert(strstr(fx.msg[1], "rejected"), "%s", fx.msg[1]);
	} else {
		cr_assert_eq(fx.replica[9 * KM_PAGE_SIZE], 0x99);
	}
	cleanup();
}

Test(engine, raw_epoch_accepted)
{
	raw_case(3, 5, 0, 0);
}

Test(engine, lower_generation_rejected)
{
	raw_case(3, 4, 0, -KM_EGENERATION);
}

Test(engine, higher_generation_accepted)
{
	raw_case(3, 6, 0, 0);
}

Test(engine, duplicate_epoch_rejected)
{
	raw_case(2, 5, 0, -KM_EDUPLICATE);
}

Test(engine, replayed_epoch_rejected)
{
	raw_case(1, 5, 0, -KM_EREPLAY);
}

Test(engine, epoch_gap_rejected)
{
	raw_case(4, 5, 0, -KM_EGAP);
}

Test(engine, epoch_digest_mismatch_rejected)
{
	raw_case(3, 5, 1, -KM_ECHECKSUM);
}

Test(engine, message_count_mismatch_rejected)
{
	raw_case(3, 5, 2, -KM_ECHECKSUM);
}

Test(engine, forged_mac_tag_rejected)
{
	raw_case(3, 5, 3, -KM_ETAG);
}

Test(engine, commit_for_other_epoch_rejected)
{
	struct km__session s = { 0 };
	struct km_transport *t;

	start(1, false);
	t = raw_session(&s);
	raw_begin(t, 1, 1);
	raw_commit(t, 2, 1, 0, 0, false);
	cr_assert_eq(raw_reply(t, 1, -KM_ESEQUENCE), -KM_ESEQUENCE);
	km_transport_close(t);
	join();
	cr_assert_eq(km_secondary_epoch(fx.sec), 0);
	cleanup();
}

/*
 * A primary that stops sending inside an epoch, connection open: the
 * secondary gives up after its epoch timeout, says so, and applies none
 * of what it staged.
 */
Test(engine, stalled_epoch_times_out)
{
	struct km__session s = { 0 };
	struct km_transport *t;
	uint64_t d = 0;

	epoch_timeout_ms = 200;
	start(1, false);
	t = raw_session(&s);
	raw_begin(t, 1, 1);
	raw_page(t, 3, 0x33, &d);
	join();
	cr_assert_eq(fx.ret[0], -ETIMEDOUT);
	cr_assert(strstr(fx.msg[0], "epoch 1 incomplete"), "%s", fx.msg[0]);
	cr_assert(strstr(fx.msg[0], "200 ms"), "%s", fx.msg[0]);
	cr_assert_eq(km_secondary_epoch(fx.sec), 0);
	cr_assert_eq(fx.replica[3 * KM_PAGE_SIZE], 0, "a staged page applied");
	km_transport_close(t);
	cleanup();
}

Test(engine, pages_before_begin_rejected)
{
	struct km__session s = { 0 };
	struct km_transport *t;
	uint64_t d = 0;

	start(1, false);
	t = raw_session(&s);
	raw_page(t, 1, 1, &d);
	cr_assert_eq(raw_reply(t, 1, -KM_ESEQUENCE), -KM_ESEQUENCE);
	km_transport_close(t);
	join();
	cr_assert_eq(fx.ret[0], -KM_ESEQUENCE);
	cleanup();
}

/* A TCP connection whose sends start failing once armed (a lost link). */
struct flaky {
	struct km_transport base;
	struct km_transport *inner;
	bool armed;
};

static int flaky_sendv(struct km_transport *t, const struct iovec *iov, int n)
{
	struct flaky *f = (struct flaky *)t;

	if (f->armed)
		return -EIO;
	return f->inner->ops->sendv(f->inner, iov, n);
}

static int flaky_recv(struct km_transport *t, void *buf, size_t len)
{
	struct flaky *f = (struct flaky *)t;

	return f->inner->ops->recv(f->inner, buf, len);
}

static int flaky_set_timeout(struct km_transport *t, unsigned int ms)
{
	struct flaky *f = (struct flaky *)t;

	return f->inner->ops->set_timeout(f->inner, ms);
}

static void flaky_close(struct km_transport *t)
{
	struct flaky *f = (struct flaky *)t;

	km_transport_close(f->inner);
	free(f);
}

static const struct km_transport_ops flaky_ops = {
	.name = "flaky",
	.sendv = flaky_sendv,
	.recv = flaky_recv,
	.set_timeout = flaky_set_timeout,
	.close = flaky_close,
};

static struct flaky *flaky_connect(const char *port)
{
	struct flaky *f = calloc(1, sizeof(*f));

	cr_assert(f);
	f->base.ops = &flaky_ops;
	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", port, &f->inner), 0);
	return f;
}

static struct km_primary *flaky_primary(struct flaky *f)
{
	struct km_primary_config cfg = {
		.mem = g.mem,
		.mem_size = PAGES * KM_PAGE_SIZE,
		.dirty = collect,
		.dirty_opaque = &g,
		.key = key,
		.key_len = sizeof(key),
		.generation = 1,
		.ack_timeout_ms = 5000,
	};
	struct km_primary *p;
	char err[256];

	cr_assert_eq(km_primary_create(&cfg, &f->base, &p, err, sizeof(err)), 0,
		     "%s", err);
	return p;
}

Test(engine, reconnect_resends_the_failed_epoch)
{
	struct km_transport *t;
	struct km_primary *p;
	struct flaky *f;
	char err[256];

	start(2, false);
	f = flaky_connect(fx.port);
	p = flaky_primary(f);
	write_page(1, 0x11);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), 0);
	f->armed = true;
	write_page(5, 0x55);
	write_page(6, 0x66);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), -EIO);
	cr_assert(strstr(km_primary_strerror(p), "sending"), "%s",
		  km_primary_strerror(p));
	/* Sticky: nothing more goes out on the broken connection. */
	cr_assert_eq(km_primary_epoch(p, NULL, 0), -EIO);

	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", fx.port, &t), 0);
	cr_assert_eq(km_primary_reconnect(p, t, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(km_primary_last_epoch(p), 1);
	write_page(9, 0x99);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), 0, "%s",
		     km_primary_strerror(p));
	wait_applied(2);
	cr_assert(!memcmp(g.mem, fx.replica, PAGES * KM_PAGE_SIZE),
		  "pages of the failed epoch were lost");
	km_primary_destroy(p);
	join();
	cr_assert_eq(fx.ret[0], -ECONNRESET, "%s", fx.msg[0]);
	cleanup();
}

struct fresh {
	struct km_secondary *sec;
	struct km_transport *lis;
	uint8_t *replica;
	int ret;
};

static void *serve_fresh(void *arg)
{
	struct fresh *fr = arg;
	struct km_transport *t;

	fr->ret = fr->lis->ops->accept(fr->lis, &t);
	if (!fr->ret) {
		fr->ret = km_secondary_serve(fr->sec, t);
		km_transport_close(t);
	}
	return NULL;
}

Test(engine, reconnect_to_a_fresh_replica_requires_sync)
{
	struct km_sync_opts o = { .max_rounds = 2, .small_pages = 0 };
	struct km_secondary_config cfg = {
		.mem_size = PAGES * KM_PAGE_SIZE,
		.key = key,
		.key_len = sizeof(key),
	};
	struct fresh fr = { 0 };
	struct km_transport *t;
	struct km_primary *p;
	pthread_t th;
	char port[16], err[256];

	start(1, false);
	p = flaky_primary(flaky_connect(fx.port));
	write_page(1, 0x11);
	write_page(2, 0x22);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), 0);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), 0);

	/* The secondary host is replaced by one with an empty replica. */
	fr.replica = calloc(PAGES, KM_PAGE_SIZE);
	cfg.replica = fr.replica;
	cr_assert_eq(km_secondary_create(&cfg, &fr.sec), 0);
	cr_assert_eq(km_tcp_ops.listen("127.0.0.1", "0", &fr.lis), 0);
	snprintf(port, sizeof(port), "%d", fr.lis->ops->local_port(fr.lis));
	cr_assert_eq(pthread_create(&th, NULL, serve_fresh, &fr), 0);
	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", port, &t), 0);
	cr_assert_eq(km_primary_reconnect(p, t, err, sizeof(err)), -KM_EGAP);
	cr_assert(strstr(err, "initial sync"), "%s", err);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), -KM_EGAP);
	cr_assert_eq(km_primary_sync(p, &o), 0, "%s", km_primary_strerror(p));
	write_page(3, 0x33);
	cr_assert_eq(km_primary_epoch(p, NULL, 0), 0, "%s",
		     km_primary_strerror(p));
	km_primary_destroy(p);
	pthread_join(th, NULL);
	cr_assert(km_secondary_consistent(fr.sec));
	cr_assert(!memcmp(g.mem, fr.replica, PAGES * KM_PAGE_SIZE));
	km_transport_close(fr.lis);
	km_secondary_destroy(fr.sec);
	free(fr.replica);
	join();
	cleanup();
}
