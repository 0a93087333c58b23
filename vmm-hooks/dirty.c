// SPDX-License-Identifier: GPL-2.0
/* The VMM's own dirty-page log; see dirty.h. */
#include "dirty.h"

#include <errno.h>
#include <stdlib.h>

int km_dirty_init(struct km_dirty *d, uint64_t mem_size)
{
	d->npages = (mem_size + (1u << KM_DIRTY_PAGE_SHIFT) - 1) >>
		    KM_DIRTY_PAGE_SHIFT;
	d->bits = calloc(km_dirty_words(d) ? km_dirty_words(d) : 1,
			 sizeof(uint64_t));
	if (!d->bits) {
		d->npages = 0;
		return -ENOMEM;
	}
	return 0;
}

void km_dirty_destroy(struct km_dirty *d)
{
	free(d->bits);
	d->bits = NULL;
	d->npages = 0;
}

void km_dirty_mark(struct km_dirty *d, uint64_t gpa, uint64_t len)
{
	uint64_t pfn, last;

	if (!len || !d->bits || gpa >> KM_DIRTY_PAGE_SHIFT >= d->npages)
		return;
	pfn = gpa >> KM_DIRTY_PAGE_SHIFT;
	/* Written as gpa + len - 1 so a range ending at 2^64 cannot wrap. */
	last = (gpa + (len - 1)) >> KM_DIRTY_PAGE_SHIFT;
	if (last < pfn || last >= d->npages)
		last = d->npages - 1;
	for (; pfn <= last; pfn++)
		__atomic_fetch_or(&d->bits[pfn / 64], 1ull << (pfn % 64),
				  __ATOMIC_RELEASE);
}

bool km_dirty_test(const struct km_dirty *d, uint64_t pfn)
{
	if (pfn >= d->npages)
		return false;
	return __atomic_load_n(&d->bits[pfn / 64], __ATOMIC_ACQUIRE) &
	       (1ull << (pfn % 64));
}

uint64_t km_dirty_count(const struct km_dirty *d)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < km_dirty_words(d); i++)
		n += (uint64_t)__builtin_popcountll(
			__atomic_load_n(&d->bits[i], __ATOMIC_ACQUIRE));
	return n;
}

int64_t km_dirty_harvest(struct km_dirty *d, uint64_t *out, size_t nwords)
{
	size_t i, n = km_dirty_words(d);
	int64_t pages = 0;

	if (nwords < n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint64_t w =
			__atomic_exchange_n(&d->bits[i], 0, __ATOMIC_ACQ_REL);

		out[i] |= w;
		pages += __builtin_popcountll(w);
	}
	return pages;
}
