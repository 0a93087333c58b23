// SPDX-License-Identifier: GPL-2.0
/*
 * Initial sync (DRBD's SyncSource): a full copy while the guest runs, then
 * pre-copy rounds of whatever the dirty source reports, until what remains
 * is small. The remainder goes with the next lockstep epoch, shipped with
 * the guest paused, which is what makes the replica consistent:
 *
 *   round 0: every page  | round 1..k: pages dirtied meanwhile | epoch N
 *   <-- replica Inconsistent (written in place) ------------> | UpToDate
 */
#include <stdio.h>
#include <string.h>

#include "primary_int.h"

static uint64_t count_dirty(const struct km_primary *p)
{
	uint64_t w, n = 0;

	for (w = 0; w < p->nwords; w++)
		n += (uint64_t)__builtin_popcountll(p->bitmap[w]);
	return n;
}

static int sync_round(struct km_primary *p, unsigned int round)
{
	int r;

	memset(&p->es, 0, sizeof(p->es));
	p->progress.round = round;
	r = km__primary_ship(p, true, NULL, 0);
	if (r)
		return r;
	if (p->sync_opts->progress)
		p->sync_opts->progress(p->sync_opts->opaque, &p->progress);
	return 0;
}

static int full_copy(struct km_primary *p)
{
	int r;

	/* Drop what the source logged so far: round 0 sends everything. */
	r = km__primary_harvest(p);
	if (r)
		return r;
	memset(p->bitmap, 0xff, p->nwords * sizeof(*p->bitmap));
	if (p->npages % 64)
		p->bitmap[p->nwords - 1] = (1ull << (p->npages % 64)) - 1;
	return sync_round(p, 0);
}

static int precopy(struct km_primary *p, const struct km_sync_opts *o)
{
	unsigned int round;
	uint64_t dirty;
	int r;

	for (round = 1;; round++) {
		r = km__primary_harvest(p);
		if (r)
			return r;
		dirty = count_dirty(p);
		p->progress.remaining_pages = dirty;
		if (dirty <= o->small_pages || round > o->max_rounds)
			break;
		r = sync_round(p, round);
		if (r)
			return r;
	}
	/* Ship the remainder with the next (paused) epoch. */
	memcpy(p->pending, p->bitmap, p->nwords * sizeof(*p->bitmap));
	if (o->progress)
		o->progress(o->opaque, &p->progress);
	return 0;
}

int km_primary_sync(struct km_primary *p, const struct km_sync_opts *o)
{
	int r;

	if (km_transport_error(p->t))
		return km_transport_error(p->t);
	memset(&p->progress, 0, sizeof(p->progress));
	p->progress.bytes_total = p->cfg.mem_size;
	p->sync_start_ns = km__now_ns();
	p->sync_opts = o;
	r = full_copy(p);
	r = r ?: precopy(p, o);
	if (!r)
		p->need_sync = false;
	p->sync_opts = NULL;
	p->sync = false;
	return r;
}
