// SPDX-License-Identifier: GPL-2.0
/* The TCP transport: whole vectors, buffered receive, sticky errors, peer
 * loss, timeouts, and no file descriptor left behind. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "transport.h"

#define NPAGES 1500 /* more iovecs than one sendmsg() takes at once */

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

struct pair {
	struct km_transport *lis, *a, *b;
};

static void *do_accept(void *arg)
{
	struct pair *p = arg;

	cr_assert_eq(p->lis->ops->accept(p->lis, &p->b), 0);
	return NULL;
}

static void make_pair(struct pair *p)
{
	char port[16];
	pthread_t th;

	cr_assert_eq(km_tcp_ops.listen("127.0.0.1", "0", &p->lis), 0);
	snprintf(port, sizeof(port), "%d", p->lis->ops->local_port(p->lis));
	cr_assert_eq(pthread_create(&th, NULL, do_accept, p), 0);
	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", port, &p->a), 0);
	pthread_join(th, NULL);
}

static void free_pair(struct pair *p)
{
	km_transport_close(p->a);
	km_transport_close(p->b);
	km_transport_close(p->lis);
}

static uint8_t *pages;

static void *send_pages(void *arg)
{
	struct km_transport *t = arg;
	struct iovec *iov = calloc(NPAGES + 1, sizeof(*iov));
	static const char hdr[] = "hdr";
	int i;

	iov[0] = (struct iovec){ (void *)hdr, 3 };
	for (i = 0; i < NPAGES; i++)
		iov[i + 1] = (struct iovec){ pages + (size_t)i * 4096, 4096 };
	cr_assert_eq(km_transport_sendv(t, iov, NPAGES + 1), 0);
	free(iov);
	return NULL;
}

Test(tcp, vectors_and_mixed_reads_arrive_whole)
{
	int fds = count_fds();
	struct pair p;
	pthread_t th;
	uint8_t *got = malloc((size_t)NPAGES * 4096), h[3];
	size_t i;

	pages = malloc((size_t)NPAGES * 4096);
	for (i = 0; i < (size_t)NPAGES * 4096; i++)
		pages[i] = (uint8_t)(i * 7 + i / 4096);
	make_pair(&p);
	cr_assert_eq(pthread_create(&th, NULL, send_pages, p.a), 0);
	/* A small read (buffered), then a large one (direct). */
	cr_assert_eq(km_transport_recv(p.b, h, 3), 0);
	cr_assert(!memcmp(h, "hdr", 3));
	cr_assert_eq(km_transport_recv(p.b, got, 100), 0);
	cr_assert_eq(km_transport_recv(p.b, got + 100,
				       (size_t)NPAGES * 4096 - 100),
		     0);
	pthread_join(th, NULL);
	cr_assert(!memcmp(got, pages, (size_t)NPAGES * 4096));
	free_pair(&p);
	free(got);
	free(pages);
	cr_assert_eq(count_fds(), fds, "file descriptor leaked");
}

Test(tcp, peer_loss_is_econnreset_and_sticky)
{
	struct pair p;
	uint8_t b[8] = { 0 };

	make_pair(&p);
	km_transport_close(p.b);
	p.b = NULL;
	cr_assert_eq(km_transport_recv(p.a, b, sizeof(b)), -ECONNRESET);
	cr_assert_eq(km_transport_error(p.a), -ECONNRESET);
	/* Sticky: later calls fail the same way without touching the fd. */
	cr_assert_eq(km_transport_send(p.a, b, sizeof(b)), -ECONNRESET);
	cr_assert_eq(km_transport_recv(p.a, b, 1), -ECONNRESET);
	free_pair(&p);
}

Test(tcp, send_to_closed_peer_fails_cleanly)
{
	static uint8_t big[1 << 20];
	struct pair p;
	int i, r = 0;

	make_pair(&p);
	km_transport_close(p.b);
	p.b = NULL;
	/* No SIGPIPE: the first failing send returns -ECONNRESET. */
	for (i = 0; i < 64 && !r; i++)
		r = km_transport_send(p.a, big, sizeof(big));
	cr_assert_eq(r, -ECONNRESET);
	free_pair(&p);
}

Test(tcp, receive_timeout)
{
	struct pair p;
	uint8_t b;

	make_pair(&p);
	cr_assert_eq(p.a->ops->set_timeout(p.a, 50), 0);
	cr_assert_eq(km_transport_recv(p.a, &b, 1), -ETIMEDOUT);
	free_pair(&p);
}

/* Atomic: GCC's UBSan build turned a volatile bool loop into one load. */
static bool hog_stop;

static void *hog(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&hog_stop, __ATOMIC_RELAXED))
		;
	return NULL;
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof(set), &set),
		     0);
}

/* The CPU the late sender runs on: not the receiver's (-1: any). */
static int sender_cpu = -1;

/* Sends one byte on @arg after 20 ms. */
static void *send_late(void *arg)
{
	struct timespec d = { 0, 20 * 1000 * 1000 };

	nanosleep(&d, NULL);
	cr_assert_eq(km_transport_send(arg, "x", 1), 0);
	return NULL;
}

/* Voluntary context switches of this thread while receiving one byte. */
static long sleeps_in_recv(struct pair *p, unsigned int spin_us)
{
	struct rusage a, b;
	pthread_attr_t attr;
	pthread_t th;
	uint8_t c = 0;

	km_transport_set_spin(p->a, spin_us);
	/* Pinned from birth: not even its first run on the receiver's CPU. */
	cr_assert_eq(pthread_attr_init(&attr), 0);
	if (sender_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(sender_cpu, &set);
		cr_assert_eq(pthread_attr_setaffinity_np(&attr, sizeof(set),
							 &set),
			     0);
	}
	cr_assert_eq(pthread_create(&th, &attr, send_late, p->b), 0);
	pthread_attr_destroy(&attr);
	getrusage(RUSAGE_THREAD, &a);
	cr_assert_eq(km_transport_recv(p->a, &c, 1), 0);
	getrusage(RUSAGE_THREAD, &b);
	pthread_join(th, NULL);
	cr_assert_eq(c, 'x');
	return b.ru_nvcsw - a.ru_nvcsw;
}

/*
 * A receive with a spin time polls (yielding, which is not a voluntary
 * switch) instead of sleeping; once the spin time is over it sleeps. The
 * polling stops early whenever another task gets this CPU (kernel
 * writeback threads after a build, other tests), so the receiver polls
 * as a SCHED_FIFO thread where it may (root, as CI runs): no ordinary
 * task then takes its CPU. Elsewhere it gets 20 tries at an undisturbed
 * 20 ms.
 */
Test(tcp, spin_polls_then_sleeps)
{
	struct sched_param fifo = { .sched_priority = 1 }, other = { 0 };
	cpu_set_t saved;
	struct pair p;
	long best = 1;
	bool rt;
	int i;

	/* The sender on another CPU, or its wake-up ends the polling. */
	cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof(saved),
					    &saved),
		     0);
	cr_assert_geq(CPU_COUNT(&saved), 2, "this test needs two CPUs");
	for (i = 0; !CPU_ISSET(i, &saved); i++)
		;
	pin_self(i);
	for (sender_cpu = i + 1; !CPU_ISSET(sender_cpu, &saved); sender_cpu++)
		;
	make_pair(&p);
	rt = !pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo);
	for (i = 0; i < 20 && best; i++) {
		long n = sleeps_in_recv(&p, 500000);

		best = n < best ? n : best;
	}
	if (rt)
		cr_assert_eq(pthread_setschedparam(pthread_self(), SCHED_OTHER,
						   &other),
			     0);
	cr_assert_eq(best, 0, "slept while polling, 20 times (SCHED_FIFO: %s)",
		     rt ? "yes" : "no");
	cr_assert_geq(sleeps_in_recv(&p, 1000), 1, "never slept");
	cr_assert_geq(sleeps_in_recv(&p, 0), 1, "never slept");
	sender_cpu = -1;
	cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof(saved),
					    &saved),
		     0);
	free_pair(&p);
}

/* A task that wants the CPU ends the polling: the receive sleeps. */
Test(tcp, spin_gives_way_to_a_busy_cpu)
{
	cpu_set_t saved;
	pthread_t th;
	struct pair p;
	int cpu = sched_getcpu();

	cr_assert_geq(cpu, 0);
	cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof(saved),
					    &saved),
		     0);
	make_pair(&p);
	pin_self(cpu);
	__atomic_store_n(&hog_stop, false, __ATOMIC_RELAXED);
	/* The hog inherits the pinning: both want this one CPU. */
	cr_assert_eq(pthread_create(&th, NULL, hog, NULL), 0);
	cr_assert_geq(sleeps_in_recv(&p, 500000), 1,
		      "polled on while another task wanted the CPU");
	__atomic_store_n(&hog_stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	cr_assert_eq(pthread_setaffinity_np(pthread_self(), sizeof(saved),
					    &saved),
		     0);
	free_pair(&p);
}

Test(tcp, connect_refused_and_bad_host)
{
	struct km_transport *t = NULL;
	struct pair p;
	char port[16];

	cr_assert_eq(km_tcp_ops.listen("127.0.0.1", "0", &p.lis), 0);
	snprintf(port, sizeof(port), "%d", p.lis->ops->local_port(p.lis));
	km_transport_close(p.lis);
	cr_assert_eq(km_tcp_ops.connect("127.0.0.1", port, &t), -ECONNREFUSED);
	cr_assert_lt(km_tcp_ops.connect("no-such-host.invalid", "1", &t), 0);
}
