/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMM's own dirty-page log. KVM's dirty log only sees the guest's
 * writes: a page that a device model (virtio-blk reading from its disk,
 * virtio-net receiving a packet, a used ring) writes through the VMM's
 * mapping of guest RAM is invisible to it. Every such write is recorded
 * here, one bit per 4 KiB page of the RAM slot, in KVM_GET_DIRTY_LOG's
 * layout (bit n of 64-bit word n / 64 = page n), so the replicator ORs the
 * two bitmaps word by word.
 *
 * Marking and harvesting are atomic per word: device threads (a TAP
 * receive thread runs while the vCPUs are parked) may mark concurrently
 * with a harvest, and a bit set during a harvest lands either in this
 * epoch's result or in the next, never nowhere.
 */
#ifndef KEMARI_VMM_DIRTY_H
#define KEMARI_VMM_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KM_DIRTY_PAGE_SHIFT 12

struct km_dirty {
	uint64_t *bits;
	uint64_t npages;
};

/* km_dirty_init() - an empty log for @mem_size bytes; 0 or -ENOMEM. */
int km_dirty_init(struct km_dirty *d, uint64_t mem_size);

/* km_dirty_destroy() - free the log (safe on a zeroed or destroyed one). */
void km_dirty_destroy(struct km_dirty *d);

/* km_dirty_words() - the bitmap's length in 64-bit words. */
static inline size_t km_dirty_words(const struct km_dirty *d)
{
	return (size_t)((d->npages + 63) / 64);
}

/*
 * km_dirty_mark() - record that [@gpa, @gpa + @len) was written. The range
 * must lie in RAM (callers have validated it before writing); anything past
 * the end is ignored. @len 0 marks nothing.
 */
void km_dirty_mark(struct km_dirty *d, uint64_t gpa, uint64_t len);

/* km_dirty_test() - whether page @pfn is recorded. */
bool km_dirty_test(const struct km_dirty *d, uint64_t pfn);

/* km_dirty_count() - how many pages are recorded now. */
uint64_t km_dirty_count(const struct km_dirty *d);

/*
 * km_dirty_harvest() - OR the log into @out (@nwords words, at least
 * km_dirty_words()) and clear it, atomically per word. Returns the number
 * of pages taken from the log, or -EINVAL if @out is too short.
 */
int64_t km_dirty_harvest(struct km_dirty *d, uint64_t *out, size_t nwords);

#endif
