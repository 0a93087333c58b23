// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's own dirty-page log: page arithmetic at the edges, the
 * harvest's OR-and-clear in KVM's bitmap layout, and marks racing a
 * harvest from other threads are never lost.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "dirty.h"

#define MEM (2u << 20) /* 512 pages, 8 words */

static struct km_dirty d;

static void setup(void)
{
	cr_assert_eq(km_dirty_init(&d, MEM), 0);
}

static void teardown(void)
{
	km_dirty_destroy(&d);
}

TestSuite(dirty, .init = setup, .fini = teardown);

Test(dirty, ranges_mark_every_page_they_touch_and_no_other)
{
	km_dirty_mark(&d, 0x1fff, 2); /* straddles pages 1 and 2 */
	km_dirty_mark(&d, 0x5000, 0x1000); /* exactly page 5 */
	km_dirty_mark(&d, 0x9000, 0); /* nothing */
	km_dirty_mark(&d, MEM - 1, 1); /* the last page */
	cr_assert_eq(km_dirty_count(&d), 4);
	cr_assert(km_dirty_test(&d, 1));
	cr_assert(km_dirty_test(&d, 2));
	cr_assert(km_dirty_test(&d, 5));
	cr_assert(!km_dirty_test(&d, 6));
	cr_assert(!km_dirty_test(&d, 9));
	cr_assert(km_dirty_test(&d, 511));
	cr_assert(!km_dirty_test(&d, 512)); /* past the end: never */
}

Test(dirty, ranges_past_ram_are_clipped_not_wrapped)
{
	km_dirty_mark(&d, MEM, 4096); /* wholly outside */
	cr_assert_eq(km_dirty_count(&d), 0);
	km_dirty_mark(&d, MEM - 4096, 1ull << 40); /* runs off the end */
	cr_assert_eq(km_dirty_count(&d), 1);
	km_dirty_mark(&d, 0x3000, UINT64_MAX); /* would wrap */
	cr_assert_eq(km_dirty_count(&d), 512 - 3);
}

Test(dirty, harvest_ors_into_kvm_layout_and_clears)
{
	uint64_t kvm_log[8] = { 0 };

	kvm_log[0] = 1ull << 7; /* a page the guest wrote itself */
	km_dirty_mark(&d, 3 * 4096, 1);
	km_dirty_mark(&d, 64 * 4096, 1); /* word 1, bit 0 */
	km_dirty_mark(&d, 7 * 4096, 1); /* both logs: counted once here */
	cr_assert_eq(km_dirty_harvest(&d, kvm_log, 8), 3);
	cr_assert_eq(kvm_log[0], (1ull << 7) | (1ull << 3));
	cr_assert_eq(kvm_log[1], 1);
	cr_assert_eq(km_dirty_count(&d), 0, "the harvest did not clear");
	cr_assert_eq(km_dirty_harvest(&d, kvm_log, 8), 0);
	cr_assert_eq(km_dirty_harvest(&d, kvm_log, 7), -EINVAL);
}

#define MARKERS 4
#define ROUNDS 2000

static void *marker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;

	for (unsigned int r = 0; r < ROUNDS; r++)
		km_dirty_mark(&d, ((r * MARKERS + id) % 512) * 4096ull, 1);
	return NULL;
}

Test(dirty, marks_racing_a_harvest_are_never_lost)
{
	uint64_t all[8] = { 0 };
	pthread_t t[MARKERS];
	int64_t taken = 0;
	unsigned int i;

	for (i = 0; i < MARKERS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, marker,
					    (void *)(uintptr_t)i),
			     0);
	for (i = 0; i < 200; i++)
		taken += km_dirty_harvest(&d, all, 8);
	for (i = 0; i < MARKERS; i++)
		pthread_join(t[i], NULL);
	taken += km_dirty_harvest(&d, all, 8);
	/* Every page was marked; each harvest moved bits exactly once. */
	for (i = 0; i < 8; i++)
		cr_assert_eq(all[i], UINT64_MAX, "word %u: %#lx", i,
			     (unsigned long)all[i]);
	cr_assert_geq(taken, 512);
}
