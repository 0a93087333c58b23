// SPDX-License-Identifier: GPL-2.0
/*
 * The primary's epoch engine: harvest, then BEGIN -> PAGES... -> STATE...
 * -> COMMIT, then wait for ACK. Sends go through the sticky-error stream;
 * the error is checked once, before waiting for the ACK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "primary_int.h"

typedef uint64_t __attribute__((may_alias)) word_t;

static bool page_is_zero(const uint8_t *page)
{
	const word_t *w = (const word_t *)page;
	word_t acc = 0;
	unsigned int i;

	/* Most dirty pages are not zero: decide on the first word. */
	if (w[0])
		return false;
	for (i = 1; i < KM_PAGE_SIZE / sizeof(*w); i++)
		acc |= w[i];
	return !acc;
}

static void hash_drain(struct km_primary *p)
{
	unsigned int i;

	for (i = 0; i < p->nhq; i++) {
		const struct km__hq *q = &p->hq[i];

		if (q->what & KM_HQ_DIGEST)
			p->digest = km_digest(p->digest, q->buf, q->len);
		if (q->what & KM_HQ_MAC)
			crypto_generichash_update(&p->mac, q->buf, q->len);
	}
	p->nhq = 0;
	p->hq_bytes = 0;
}

static void hash_later(struct km_primary *p, const void *buf, size_t len,
		       unsigned int what)
{
	if (!len || !what)
		return;
	if (p->nhq == KM_HASH_QUEUE)
		hash_drain(p);
	p->hq[p->nhq++] = (struct km__hq){ buf, len, what };
	p->hq_bytes += len;
}

/* Bytes the epoch digest (and MAC) covers. */
static void absorb(struct km_primary *p, const void *buf, size_t len)
{
	hash_later(p, buf, len, KM_HQ_DIGEST | (p->cfg.data_auth ? KM_HQ_MAC : 0));
}

/* Bytes only the MAC covers (headers). */
static void absorb_mac(struct km_primary *p, const void *buf, size_t len)
{
	hash_later(p, buf, len, p->cfg.data_auth ? KM_HQ_MAC : 0);
}

/* Send the batch, then hash it: the two ends hash at the same time. */
static void batch_flush(struct km_primary *p)
{
	if (p->nbatch)
		km_transport_sendv(p->t, p->batch, p->nbatch);
	hash_drain(p);
	p->nbatch = 0;
	p->batch_bytes = 0;
	p->arena_used = 0;
}

/* Room for a header or meta part; valid until the batch is flushed. */
static uint8_t *arena_get(struct km_primary *p, size_t len)
{
	uint8_t *r;

	if (p->arena_used + len > KM_ARENA_SIZE)
		batch_flush(p);
	r = p->arena + p->arena_used;
	p->arena_used += len;
	return r;
}

static void batch_add(struct km_primary *p, const void *base, size_t len)
{
	if (p->nbatch == KM_BATCH_IOV)
		batch_flush(p);
	p->batch[p->nbatch].iov_base = (void *)base;
	p->batch[p->nbatch++].iov_len = len;
	p->batch_bytes += len;
	p->es.wire_bytes += len;
}

static void report_progress(struct km_primary *p, uint64_t pages)
{
	struct km_sync_progress *pr = &p->progress;
	uint64_t dt = km__now_ns() - p->sync_start_ns;

	pr->bytes_done += pages * KM_PAGE_SIZE;
	pr->rate_bps = dt ? pr->bytes_done * 1000000000ull / dt : 0;
	pr->eta_ms = 0;
	if (!pr->round && pr->rate_bps && pr->bytes_done < pr->bytes_total)
		pr->eta_ms = (pr->bytes_total - pr->bytes_done) * 1000 /
			     pr->rate_bps;
	if (p->sync_opts->progress)
		p->sync_opts->progress(p->sync_opts->opaque, pr);
}

/* Queue the pending message's data: guest memory, or the bounce copy. */
static void queue_data(struct km_primary *p)
{
	const uint8_t *mem = p->cfg.mem;
	uint8_t *b = p->bounce;
	uint32_t i;

	for (i = 0; i < p->nruns; i++) {
		const struct km_page_run *r = &p->runs[i];
		const uint8_t *src = mem + r->first * KM_PAGE_SIZE;
		size_t len = (size_t)r->count * KM_PAGE_SIZE;

		if (r->flags & KM_RUN_ZERO)
			continue;
		if (p->sync) {
			memcpy(b, src, len);
			src = b;
			b += len;
		}
		absorb(p, src, len);
		batch_add(p, src, len);
	}
}

static void flush_pages(struct km_primary *p)
{
	size_t mlen = KM_WIRE_HDR_SIZE + KM_PAGES_META_FIXED +
		      (size_t)p->nruns * KM_PAGE_RUN_SIZE;
	uint8_t *meta;
	uint64_t covered = 0;
	uint32_t i;

	if (!p->nruns)
		return;
	meta = arena_get(p, mlen);
	km_wire_encode_pages(meta, p->runs, p->nruns, p->data_pages);
	absorb_mac(p, meta, KM_WIRE_HDR_SIZE);
	absorb(p, meta + KM_WIRE_HDR_SIZE, mlen - KM_WIRE_HDR_SIZE);
	batch_add(p, meta, mlen);
	queue_data(p);
	/* The bounce buffer is reused by the next message: send it now. */
	if (p->sync || p->batch_bytes >= KM_BATCH_BYTES)
		batch_flush(p);
	for (i = 0; i < p->nruns; i++)
		covered += p->runs[i].count;
	p->nmsgs++;
	p->nruns = 0;
	p->data_pages = 0;
	if (p->sync_opts)
		report_progress(p, covered);
}

static void add_page(struct km_primary *p, uint64_t pfn)
{
	const uint8_t *page = (const uint8_t *)p->cfg.mem + pfn * KM_PAGE_SIZE;
	uint32_t flags = page_is_zero(page) ? KM_RUN_ZERO : 0;
	struct km_page_run *r = p->nruns ? &p->runs[p->nruns - 1] : NULL;

	p->es.pages++;
	if (flags)
		p->es.zero_pages++;
	if (r && r->first + r->count == pfn && r->flags == flags) {
		r->count++;
	} else {
		if (p->nruns == KM_PAGES_MAX_RUNS)
			flush_pages(p);
		p->runs[p->nruns++] = (struct km_page_run){ pfn, 1, flags };
	}
	if (!flags && ++p->data_pages == KM_FLUSH_PAGES)
		flush_pages(p);
}

static void send_pages(struct km_primary *p)
{
	uint64_t w, pfn;

	for (w = 0; w < p->nwords; w++) {
		uint64_t bits = p->bitmap[w];

		while (bits) {
			pfn = w * 64 + (uint64_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			add_page(p, pfn);
		}
	}
	flush_pages(p);
}

static void send_blob(struct km_primary *p, const struct km_blob *b)
{
	uint8_t *hdr = arena_get(p, KM_WIRE_HDR_SIZE + KM_STATE_META_SIZE);
	size_t len = km_wire_encode_state(hdr, b->tag, b->len);

	absorb_mac(p, hdr, KM_WIRE_HDR_SIZE);
	absorb(p, hdr + KM_WIRE_HDR_SIZE, KM_STATE_META_SIZE);
	absorb(p, b->data, b->len);
	batch_add(p, hdr, len);
	if (b->len)
		batch_add(p, b->data, b->len);
	p->nmsgs++;
}

static int check_blobs(struct km_primary *p, const struct km_blob *blobs,
		       unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		bool dup = false;

		for (j = 0; j < i; j++)
			dup |= blobs[j].tag == blobs[i].tag;
		if (!blobs[i].tag || dup || blobs[i].len > KM_STATE_MAX_DATA) {
			snprintf(
				p->err, sizeof(p->err),
				"state blob %u: tag %u must be non-zero and unique, length %u at most %u",
				i, blobs[i].tag, blobs[i].len,
				KM_STATE_MAX_DATA);
			return -EINVAL;
		}
	}
	return 0;
}

static void send_begin(struct km_primary *p, uint64_t epoch)
{
	struct km_msg_begin b = { epoch, p->cfg.generation,
				  p->sync ? KM_BEGIN_SYNC : 0 };
	uint8_t *buf = arena_get(p, KM_WIRE_HDR_SIZE + KM_BEGIN_SIZE);
	size_t len = km_wire_encode_begin(buf, &b);

	p->nhq = 0;
	p->hq_bytes = 0;
	p->digest = 0;
	if (p->cfg.data_auth)
		crypto_generichash_init(&p->mac, p->sess.key,
					sizeof(p->sess.key), KM_MAC_SIZE);
	absorb_mac(p, buf, len);
	batch_add(p, buf, len);
}

static void send_commit(struct km_primary *p, uint64_t epoch)
{
	struct km_msg_commit c = {
		.epoch = epoch,
		.generation = p->cfg.generation,
		.flags = p->cfg.data_auth ? KM_COMMIT_MAC : 0,
		.nmsgs = p->nmsgs,
	};
	uint8_t *buf;
	size_t len;

	hash_drain(p);
	c.digest = p->digest;
	buf = arena_get(p, KM_WIRE_HDR_SIZE + KM_COMMIT_SIZE + KM_MAC_SIZE);

	if (p->cfg.data_auth) {
		/* The tag covers the fields it travels with, except itself. */
		km_wire_encode_commit(buf, &c);
		crypto_generichash_update(&p->mac, buf + KM_WIRE_HDR_SIZE,
					  KM_COMMIT_SIZE);
		crypto_generichash_final(&p->mac, c.mac, KM_MAC_SIZE);
	}
	len = km_wire_encode_commit(buf, &c);
	batch_add(p, buf, len);
	batch_flush(p);
}

static int wait_ack(struct km_primary *p, uint64_t epoch)
{
	uint8_t raw[KM_CTL_MAX];
	struct km_msg_ack ack;
	struct km_wire_hdr h;
	int r;

	r = km__recv_ctl(p->t, raw, &h, p->err, sizeof(p->err));
	r = r ?: km_wire_decode_ack(&h, raw + KM_WIRE_HDR_SIZE, h.length, &ack);
	if (!r && (ack.epoch != epoch || ack.generation != p->cfg.generation))
		r = -KM_ESEQUENCE;
	return r;
}

/*
 * An epoch that was not acked may or may not have been committed: keep
 * its pages dirty so that, after km_primary_reconnect(), the next epoch
 * ships them again (resending current contents is always correct).
 */
static int fail(struct km_primary *p, int r, const char *what)
{
	uint64_t w;

	for (w = 0; w < p->nwords; w++)
		p->pending[w] |= p->bitmap[w];
	p->nbatch = 0;
	p->batch_bytes = 0;
	p->arena_used = 0;
	p->nhq = 0;
	p->hq_bytes = 0;
	p->nruns = 0;
	p->data_pages = 0;
	if (!p->err[0])
		snprintf(p->err, sizeof(p->err), "epoch %llu: %s: %s%s%s%s",
			 (unsigned long long)p->epoch + 1, what, km_strerror(r),
			 *km_transport_why(p->t) ? " (" : "",
			 km_transport_why(p->t),
			 *km_transport_why(p->t) ? ")" : "");
	return r;
}

int km__primary_ship(struct km_primary *p, bool sync,
		     const struct km_blob *blobs, unsigned int nblobs)
{
	uint64_t epoch = p->epoch + 1, t0 = km__now_ns(), t1;
	unsigned int i;
	int r;

	p->sync = sync;
	p->nmsgs = 0;
	send_begin(p, epoch);
	send_pages(p);
	for (i = 0; i < nblobs; i++)
		send_blob(p, &blobs[i]);
	send_commit(p, epoch);
	r = km_transport_error(p->t);
	t1 = km__now_ns();
	p->es.send_ns = t1 - t0;
	if (r)
		return fail(p, r, "sending to the secondary failed");
	r = wait_ack(p, epoch);
	p->es.ack_ns = km__now_ns() - t1;
	if (r)
		return fail(p, r, "no valid ACK from the secondary");
	p->epoch = epoch;
	return 0;
}

int km__primary_harvest(struct km_primary *p)
{
	uint64_t w;
	int r;

	memset(p->bitmap, 0, p->nwords * sizeof(*p->bitmap));
	r = p->cfg.dirty(p->cfg.dirty_opaque, p->bitmap, p->npages);
	if (r) {
		snprintf(p->err, sizeof(p->err),
			 "the dirty-page source failed: %s", strerror(-r));
		return r;
	}
	for (w = 0; w < p->nwords; w++) {
		p->bitmap[w] |= p->pending[w];
		p->pending[w] = 0;
	}
	if (p->npages % 64)
		p->bitmap[p->nwords - 1] &= (1ull << (p->npages % 64)) - 1;
	return 0;
}

int km_primary_epoch(struct km_primary *p, const struct km_blob *blobs,
		     unsigned int nblobs)
{
	uint64_t t0 = km__now_ns();
	int r;

	if (km_transport_error(p->t))
		return km_transport_error(p->t);
	if (p->need_sync)
		return -KM_EGAP;
	r = check_blobs(p, blobs, nblobs);
	r = r ?: km__primary_harvest(p);
	if (r)
		return r;
	memset(&p->es, 0, sizeof(p->es));
	p->es.harvest_ns = km__now_ns() - t0;
	r = km__primary_ship(p, false, blobs, nblobs);
	if (r)
		return r;
	p->es.epoch = p->epoch;
	p->es.pause_ns = p->es.harvest_ns + p->es.send_ns + p->es.ack_ns;
	km__stats_add(&p->stats, &p->es);
	return 0;
}

static int check_config(const struct km_primary_config *cfg, char *err,
			size_t errlen)
{
	if (!cfg->mem || !cfg->mem_size || cfg->mem_size % KM_PAGE_SIZE ||
	    (uintptr_t)cfg->mem % KM_PAGE_SIZE) {
		snprintf(
			err, errlen,
			"guest memory must be a non-empty, page-aligned mapping whose size is a multiple of %u",
			KM_PAGE_SIZE);
		return -EINVAL;
	}
	if (!cfg->dirty || !cfg->key || cfg->key_len < KM_KEY_MIN) {
		snprintf(
			err, errlen,
			"a dirty-page source and a pre-shared key of at least %d bytes are required",
			KM_KEY_MIN);
		return -EINVAL;
	}
	return 0;
}

static int alloc_engine(struct km_primary *p)
{
	p->nwords = (p->npages + 63) / 64;
	p->bitmap = calloc(p->nwords, sizeof(*p->bitmap));
	p->pending = calloc(p->nwords, sizeof(*p->pending));
	p->bounce = malloc((size_t)KM_FLUSH_PAGES * KM_PAGE_SIZE);
	if (!p->bitmap || !p->pending || !p->bounce)
		return -ENOMEM;
	return 0;
}

/*
 * Guest memory is registered once per connection: a transport that reads
 * it directly (RDMA) needs it pinned; the guest is paused from harvest to
 * ACK, so nothing changes it while the hardware reads.
 */
static int attach(struct km_primary *p, struct km_transport *t)
{
	int r = t->ops->set_timeout(t, p->cfg.ack_timeout_ms);

	/* Everything the primary receives is an answer it waits for. */
	km_transport_set_spin(t, km_spin_us(p->cfg.spin_us));
	r = r	  ?:
		    km_transport_register(t, p->cfg.mem, p->cfg.mem_size,
					  KM_MEM_SOURCE);
	if (r && *km_transport_why(t))
		snprintf(p->err, sizeof(p->err), "%s", km_transport_why(t));
	return r;
}

int km_primary_create(const struct km_primary_config *cfg,
		      struct km_transport *t, struct km_primary **out,
		      char *err, size_t errlen)
{
	struct km_primary *p;
	int r;

	r = check_config(cfg, err, errlen);
	if (r)
		goto err_close_transport;
	p = calloc(1, sizeof(*p));
	if (!p) {
		r = -ENOMEM;
		goto err_close_transport;
	}
	p->cfg = *cfg;
	p->t = t;
	p->npages = cfg->mem_size / KM_PAGE_SIZE;
	p->sess.mem_size = cfg->mem_size;
	p->sess.flags = cfg->data_auth ? KM_HELLO_DATA_AUTH : 0;
	r = alloc_engine(p);
	r = r ?: attach(p, t);
	r = r	  ?:
		    km__auth_client(t, cfg->key, cfg->key_len, &p->sess, p->err,
				    sizeof(p->err));
	if (r)
		goto err_destroy;
	p->epoch = p->sess.last_epoch;
	*out = p;
	return 0;

err_destroy:
	if (!p->err[0] && *km_transport_why(t))
		snprintf(p->err, sizeof(p->err), "%s: %s", km_strerror(r),
			 km_transport_why(t));
	snprintf(err, errlen, "%s", p->err[0] ? p->err : km_strerror(r));
	km_primary_destroy(p);
	return r;
err_close_transport:
	km_transport_close(t);
	return r;
}

int km_primary_reconnect(struct km_primary *p, struct km_transport *t,
			 char *err, size_t errlen)
{
	uint64_t mine = p->epoch;
	int r;

	km_transport_close(p->t);
	p->t = t;
	p->err[0] = '\0';
	r = attach(p, t);
	r = r	  ?:
		    km__auth_client(t, p->cfg.key, p->cfg.key_len, &p->sess,
				    p->err, sizeof(p->err));
	if (!r) {
		p->epoch = p->sess.last_epoch;
		if (p->epoch != mine && p->epoch != mine + 1) {
			snprintf(
				p->err, sizeof(p->err),
				"the secondary's replica is at epoch %llu, this primary at %llu: run an initial sync (km_primary_sync) before the next epoch",
				(unsigned long long)p->epoch,
				(unsigned long long)mine);
			p->need_sync = true;
			r = -KM_EGAP;
		}
	}
	if (r && !p->err[0] && *km_transport_why(t))
		snprintf(p->err, sizeof(p->err), "%s: %s", km_strerror(r),
			 km_transport_why(t));
	if (r)
		snprintf(err, errlen, "%s",
			 p->err[0] ? p->err : km_strerror(r));
	return r;
}

uint64_t km_primary_last_epoch(const struct km_primary *p)
{
	return p->epoch;
}

void km_primary_stats(const struct km_primary *p, struct km_stats *st)
{
	km__stats_get(&p->stats, st);
}

const char *km_primary_strerror(const struct km_primary *p)
{
	return p->err;
}

void km_primary_destroy(struct km_primary *p)
{
	if (!p)
		return;
	km_transport_close(p->t);
	free(p->bounce);
	free(p->pending);
	free(p->bitmap);
	sodium_memzero(&p->sess, sizeof(p->sess));
	free(p);
}
