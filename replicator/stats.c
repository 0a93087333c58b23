// SPDX-License-Identifier: GPL-2.0
/* Per-epoch statistics with running p50/p99 over a window of epochs. */
#include <stdlib.h>
#include <string.h>

#include "replicator_int.h"

void km__stats_add(struct km__stats_ring *r, const struct km_epoch_stats *e)
{
	size_t i = r->tot.epochs % KM_STATS_WINDOW;

	r->pause[i] = e->pause_ns;
	r->harvest[i] = e->harvest_ns;
	r->send[i] = e->send_ns;
	r->ack[i] = e->ack_ns;
	r->tot.epochs++;
	r->tot.pages += e->pages;
	r->tot.wire_bytes += e->wire_bytes;
	r->tot.last = *e;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of the first @n samples. */
static void pctl(const uint64_t *samples, size_t n, uint64_t *p50,
		 uint64_t *p99)
{
	uint64_t sorted[KM_STATS_WINDOW];

	*p50 = *p99 = 0;
	if (!n)
		return;
	memcpy(sorted, samples, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	*p50 = sorted[(n * 50 + 99) / 100 - 1];
	*p99 = sorted[(n * 99 + 99) / 100 - 1];
}

void km__stats_get(const struct km__stats_ring *r, struct km_stats *st)
{
	size_t n = r->tot.epochs < KM_STATS_WINDOW ? r->tot.epochs :
						     KM_STATS_WINDOW;

	*st = r->tot;
	pctl(r->pause, n, &st->pause_p50_ns, &st->pause_p99_ns);
	pctl(r->harvest, n, &st->harvest_p50_ns, &st->harvest_p99_ns);
	pctl(r->send, n, &st->send_p50_ns, &st->send_p99_ns);
	pctl(r->ack, n, &st->ack_p50_ns, &st->ack_p99_ns);
}
