// SPDX-License-Identifier: GPL-2.0
/*
 * The secondary: stage an epoch, verify it whole, apply it, then ACK.
 *
 *   BEGIN(N)      check generation and sequence; nothing touched yet
 *   PAGES/STATE   received into the staging area, hashed as they arrive
 *   COMMIT(N)     digest, message count, MAC; any mismatch drops staging
 *   ACK(N)        the epoch is committed: verified and staged
 *   apply         copy staged runs into the replica, merge state blobs,
 *                 before anything else is read from the primary
 *
 * Until apply, the replica is exactly epoch N-1, so a primary that dies at
 * any byte of epoch N leaves N-1 behind. Initial-sync rounds are the one
 * exception: they are written in place and leave the replica
 * Inconsistent until the next lockstep epoch commits.
 */
#include <sched.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "digest.h"

#include "replicator_int.h"

#define STATE_MAX_TOTAL (64u << 20) /* staged state bytes per epoch */
#define RECV_CHUNK (64u << 10)

struct blob {
	uint32_t tag;
	uint32_t len;
	uint8_t *data;
};

struct blob_set {
	struct blob *v;
	size_t n, cap;
};

struct km_secondary {
	struct km_secondary_config cfg;
	uint64_t npages;
	uint64_t epoch; /* last committed */
	uint64_t generation;
	bool consistent;

	uint8_t *stage; /* staging_pages pages, mmap'ed, touched lazily */
	uint64_t stage_pages;
	uint64_t stage_used;
	struct km_page_run *runs; /* staged runs, data in stage in order */
	uint64_t nruns, runs_cap;
	struct blob_set staged; /* state blobs of the epoch in flight */
	uint64_t staged_bytes;
	struct blob_set state; /* committed state blobs */

	struct km_msg_begin begin; /* the epoch in flight */
	uint32_t nmsgs;
	bool in_epoch; /* BEGIN accepted, COMMIT not yet */
	uint64_t digest; /* of the epoch so far (digest.h) */
	crypto_generichash_state mac;
	struct km__session sess;
	uint8_t meta[KM_PAGES_META_FIXED + KM_PAGES_MAX_RUNS * KM_PAGE_RUN_SIZE];
	char err[512];
};

static int reject(struct km_secondary *s, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reject(struct km_secondary *s, int r, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	if (s->err[0])
		return r;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(s->err, sizeof(s->err), "epoch %llu rejected: %s: %s",
		 (unsigned long long)s->begin.epoch, what, km_strerror(r));
	return r;
}

static void blobs_clear(struct blob_set *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->v[i].data);
	b->n = 0;
}

static struct blob *blobs_find(struct blob_set *b, uint32_t tag)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->v[i].tag == tag)
			return &b->v[i];
	return NULL;
}

static int blobs_push(struct blob_set *b, const struct blob *x)
{
	struct blob *v;

	if (b->n == b->cap) {
		v = realloc(b->v, (b->cap * 2 + 8) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = b->cap * 2 + 8;
	}
	b->v[b->n++] = *x;
	return 0;
}

static void drop_staging(struct km_secondary *s)
{
	s->stage_used = 0;
	s->nruns = 0;
	s->staged_bytes = 0;
	s->nmsgs = 0;
	s->in_epoch = false;
	blobs_clear(&s->staged);
}

static void absorb(struct km_secondary *s, const void *buf, size_t len)
{
	s->digest = km_digest(s->digest, buf, len);
	if (s->cfg.data_auth)
		crypto_generichash_update(&s->mac, buf, len);
}

static int check_sequence(struct km_secondary *s)
{
	const struct km_msg_begin *b = &s->begin;

	if (b->generation < s->generation)
		return reject(s, -KM_EGENERATION, "generation %llu < %llu",
			      (unsigned long long)b->generation,
			      (unsigned long long)s->generation);
	if (b->epoch == s->epoch)
		return reject(s, -KM_EDUPLICATE, "already committed");
	if (b->epoch < s->epoch)
		return reject(s, -KM_EREPLAY, "last committed is %llu",
			      (unsigned long long)s->epoch);
	if (b->epoch > s->epoch + 1)
		return reject(s, -KM_EGAP, "expected epoch %llu",
			      (unsigned long long)s->epoch + 1);
	return 0;
}

/* Receive a header; @what names the message we wait for in errors. */
static int recv_hdr(struct km_secondary *s, struct km_transport *t,
		    uint8_t *raw, struct km_wire_hdr *h)
{
	int r = km_transport_recv(t, raw, KM_WIRE_HDR_SIZE);

	if (r)
		return r;
	r = km_wire_decode_hdr(raw, KM_WIRE_HDR_SIZE, h);
	if (r)
		return reject(s, r, "invalid message header");
	return 0;
}

static int recv_body(struct km_secondary *s, struct km_transport *t,
		     const uint8_t *raw, const struct km_wire_hdr *h,
		     uint8_t *body)
{
	int r = km_transport_recv(t, body, h->length);

	if (r)
		return r;
	r = km_wire_verify(raw, body, h->length);
	if (r)
		return reject(s, r, "message type %u", h->type);
	return 0;
}

static int recv_begin(struct km_secondary *s, struct km_transport *t)
{
	uint8_t raw[KM_CTL_MAX];
	struct km_wire_hdr h;
	int r;

	memset(&s->begin, 0, sizeof(s->begin));
	s->begin.epoch = s->epoch + 1;
	r = recv_hdr(s, t, raw, &h);
	if (r)
		return r;
	if (h.type != KM_MSG_BEGIN)
		return reject(s, -KM_ESEQUENCE, "message type %u before BEGIN",
			      h.type);
	r = recv_body(s, t, raw, &h, raw + KM_WIRE_HDR_SIZE);
	if (r)
		return r;
	r = km_wire_decode_begin(&h, raw + KM_WIRE_HDR_SIZE, h.length,
				 &s->begin);
	if (r)
		return reject(s, r, "invalid BEGIN");
	r = check_sequence(s);
	if (r)
		return r;
	s->digest = 0;
	if (s->cfg.data_auth) {
		crypto_generichash_init(&s->mac, s->sess.key,
					sizeof(s->sess.key), KM_MAC_SIZE);
		crypto_generichash_update(&s->mac, raw,
					  KM_WIRE_HDR_SIZE + h.length);
	}
	if (s->begin.flags & KM_BEGIN_SYNC)
		s->consistent = false;
	s->in_epoch = true;
	return 0;
}

/* Receive and check the meta part of a PAGES or STATE message. */
static int recv_meta(struct km_secondary *s, struct km_transport *t,
		     const uint8_t *raw, const struct km_wire_hdr *h,
		     size_t *meta_len)
{
	int r;

	r = km_transport_recv(t, s->meta, KM_PAGES_META_FIXED);
	if (r)
		return r;
	r = km_wire_meta_len(h, s->meta, KM_PAGES_META_FIXED, meta_len);
	if (r)
		return reject(s, r, "message type %u meta", h->type);
	r = km_transport_recv(t, s->meta + KM_PAGES_META_FIXED,
			      *meta_len - KM_PAGES_META_FIXED);
	if (r)
		return r;
	r = km_wire_verify(raw, s->meta, *meta_len);
	if (r)
		return reject(s, r, "message type %u", h->type);
	if (s->cfg.data_auth)
		crypto_generichash_update(&s->mac, raw, KM_WIRE_HDR_SIZE);
	absorb(s, s->meta, *meta_len);
	return 0;
}

static int stage_runs(struct km_secondary *s, const struct km_msg_pages *m)
{
	struct km_page_run *v;
	uint32_t i;

	if (s->nruns + m->nruns > s->runs_cap) {
		if (s->nruns + m->nruns > s->npages)
			return reject(s, -ENOSPC, "more runs than pages");
		v = realloc(s->runs, (s->runs_cap * 2 + m->nruns) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->runs = v;
		s->runs_cap = s->runs_cap * 2 + m->nruns;
	}
	for (i = 0; i < m->nruns; i++)
		km_wire_pages_run(m, i, &s->runs[s->nruns++]);
	return 0;
}

/* Initial-sync rounds go straight into the replica, run by run. */
static int recv_in_place(struct km_secondary *s, struct km_transport *t,
			 const struct km_msg_pages *m)
{
	uint8_t *rep = s->cfg.replica;
	struct km_page_run run;
	uint32_t i;
	int r;

	for (i = 0; i < m->nruns; i++) {
		size_t len;
		uint8_t *dst;

		km_wire_pages_run(m, i, &run);
		len = (size_t)run.count * KM_PAGE_SIZE;
		dst = rep + run.first * KM_PAGE_SIZE;
		if (run.flags & KM_RUN_ZERO) {
			memset(dst, 0, len);
			continue;
		}
		r = km_transport_recv(t, dst, len);
		if (r)
			return r;
		absorb(s, dst, len);
	}
	return 0;
}

static int recv_staged(struct km_secondary *s, struct km_transport *t,
		       const struct km_msg_pages *m)
{
	uint8_t *dst = s->stage + s->stage_used * KM_PAGE_SIZE;
	size_t len = (size_t)m->data_pages * KM_PAGE_SIZE;
	int r;

	if (s->stage_used + m->data_pages > s->stage_pages)
		return reject(s, -ENOSPC, "staging area holds %llu pages",
			      (unsigned long long)s->stage_pages);
	r = stage_runs(s, m);
	if (r)
		return r;
	/* Hash each piece while the primary is still sending the next. */
	while (len) {
		size_t n = len < RECV_CHUNK ? len : RECV_CHUNK;

		r = km_transport_recv(t, dst, n);
		if (r)
			return r;
		absorb(s, dst, n);
		dst += n;
		len -= n;
	}
	s->stage_used += m->data_pages;
	return 0;
}

static int recv_pages(struct km_secondary *s, struct km_transport *t,
		      const uint8_t *raw, const struct km_wire_hdr *h)
{
	struct km_msg_pages m;
	size_t meta_len;
	int r;

	r = recv_meta(s, t, raw, h, &meta_len);
	if (r)
		return r;
	r = km_wire_decode_pages(h, s->meta, meta_len, s->npages, &m);
	if (r)
		return reject(s, r, "invalid PAGES");
	s->nmsgs++;
	if (s->begin.flags & KM_BEGIN_SYNC)
		return recv_in_place(s, t, &m);
	return recv_staged(s, t, &m);
}

static int recv_state(struct km_secondary *s, struct km_transport *t,
		      const uint8_t *raw, const struct km_wire_hdr *h)
{
	struct km_msg_state m;
	struct blob b;
	size_t meta_len;
	int r;

	r = recv_meta(s, t, raw, h, &meta_len);
	if (r)
		return r;
	r = km_wire_decode_state(h, s->meta, meta_len, &m);
	if (r)
		return reject(s, r, "invalid STATE");
	if (blobs_find(&s->staged, m.tag))
		return reject(s, -KM_ETAG, "state tag %u sent twice", m.tag);
	if (s->staged_bytes + m.data_len > STATE_MAX_TOTAL)
		return reject(s, -ENOSPC, "more than %u bytes of state",
			      STATE_MAX_TOTAL);
	b = (struct blob){ m.tag, m.data_len, malloc(m.data_len + 1) };
	if (!b.data)
		return -ENOMEM;
	r = km_transport_recv(t, b.data, m.data_len);
	r = r ?: blobs_push(&s->staged, &b);
	if (r) {
		free(b.data);
		return r;
	}
	absorb(s, b.data, m.data_len);
	s->staged_bytes += m.data_len;
	s->nmsgs++;
	return 0;
}

static int check_mac(struct km_secondary *s, const struct km_msg_commit *c,
		     const uint8_t *body)
{
	uint8_t want[KM_MAC_SIZE];

	if (!s->cfg.data_auth)
		return c->flags & KM_COMMIT_MAC ?
			       reject(s, -KM_EFIELD, "unexpected MAC") :
			       0;
	if (!(c->flags & KM_COMMIT_MAC))
		return reject(s, -KM_ETAG, "MAC missing");
	crypto_generichash_update(&s->mac, body, KM_COMMIT_SIZE);
	crypto_generichash_final(&s->mac, want, KM_MAC_SIZE);
	if (crypto_verify_32(want, c->mac))
		return reject(s, -KM_ETAG, "MAC mismatch");
	return 0;
}

static int check_commit(struct km_secondary *s, const struct km_msg_commit *c,
			const uint8_t *body)
{
	if (c->epoch != s->begin.epoch || c->generation != s->begin.generation)
		return reject(s, -KM_ESEQUENCE,
			      "COMMIT for epoch %llu generation %llu",
			      (unsigned long long)c->epoch,
			      (unsigned long long)c->generation);
	if (c->nmsgs != s->nmsgs)
		return reject(s, -KM_ECHECKSUM, "%u messages, COMMIT says %u",
			      s->nmsgs, c->nmsgs);
	if (c->digest != s->digest)
		return reject(s, -KM_ECHECKSUM, "epoch digest");
	return check_mac(s, c, body);
}

static int recv_commit(struct km_secondary *s, struct km_transport *t,
		       const uint8_t *raw, const struct km_wire_hdr *h)
{
	uint8_t body[KM_COMMIT_SIZE + KM_MAC_SIZE];
	struct km_msg_commit c;
	int r;

	r = recv_body(s, t, raw, h, body);
	if (r)
		return r;
	r = km_wire_decode_commit(h, body, h->length, &c);
	if (r)
		return reject(s, r, "invalid COMMIT");
	return check_commit(s, &c, body);
}

static unsigned int epoch_timeout(const struct km_secondary *s)
{
	return s->cfg.epoch_timeout_ms ? s->cfg.epoch_timeout_ms :
					 KM_EPOCH_TIMEOUT_MS_DEFAULT;
}

static int recv_epoch(struct km_secondary *s, struct km_transport *t)
{
	uint8_t raw[KM_WIRE_HDR_SIZE];
	struct km_wire_hdr h;
	int r;

	r = recv_begin(s, t);
	/*
	 * The rest of the epoch follows at once: poll for it (transport.h),
	 * and give up on a primary that stops sending in the middle.
	 */
	if (!r) {
		km_transport_set_spin(t, km_spin_us(s->cfg.spin_us));
		r = t->ops->set_timeout(t, epoch_timeout(s));
	}
	while (!r) {
		r = recv_hdr(s, t, raw, &h);
		if (r)
			break;
		if (h.type == KM_MSG_PAGES) {
			r = recv_pages(s, t, raw, &h);
		} else if (h.type == KM_MSG_STATE) {
			r = recv_state(s, t, raw, &h);
		} else if (h.type == KM_MSG_COMMIT) {
			r = recv_commit(s, t, raw, &h);
			break;
		} else {
			r = reject(s, -KM_ESEQUENCE,
				   "message type %u inside an epoch", h.type);
		}
	}
	/* Between epochs the wait may be long: sleep, leave the CPU. */
	km_transport_set_spin(t, 0);
	return r ?: t->ops->set_timeout(t, 0);
}

static void apply_state(struct km_secondary *s)
{
	size_t i;

	for (i = 0; i < s->staged.n; i++) {
		struct blob *b = &s->staged.v[i];
		struct blob *old = blobs_find(&s->state, b->tag);

		if (old) {
			free(old->data);
			*old = *b;
		} else if (blobs_push(&s->state, b)) {
			/* Out of memory: keep the old set rather than lose it. */
			free(b->data);
		}
	}
	s->staged.n = 0;
}

static void apply(struct km_secondary *s)
{
	uint8_t *rep = s->cfg.replica;
	const uint8_t *src = s->stage;
	uint64_t i;

	for (i = 0; i < s->nruns; i++) {
		const struct km_page_run *r = &s->runs[i];
		size_t len = (size_t)r->count * KM_PAGE_SIZE;
		uint8_t *dst = rep + r->first * KM_PAGE_SIZE;

		if (r->flags & KM_RUN_ZERO) {
			memset(dst, 0, len);
			continue;
		}
		memcpy(dst, src, len);
		src += len;
	}
	apply_state(s);
	s->epoch = s->begin.epoch;
	s->generation = s->begin.generation;
	s->consistent = !(s->begin.flags & KM_BEGIN_SYNC);
	drop_staging(s);
}

static int send_ack(struct km_secondary *s, struct km_transport *t)
{
	struct km_msg_ack ack = { s->begin.epoch, s->begin.generation };
	uint8_t buf[KM_WIRE_HDR_SIZE + KM_ACK_SIZE];

	return km_transport_send(t, buf, km_wire_encode_ack(buf, &ack));
}

static int end_session(struct km_secondary *s, struct km_transport *t, int r)
{
	bool idle = !s->in_epoch;

	drop_staging(s);
	if (r == -ECONNRESET && !s->err[0])
		snprintf(
			s->err, sizeof(s->err),
			"the primary closed the connection %s; replica stays at epoch %llu",
			idle ? "between epochs" : "in the middle of an epoch",
			(unsigned long long)s->epoch);
	else if (r == -ETIMEDOUT && !idle && !s->err[0])
		snprintf(
			s->err, sizeof(s->err),
			"epoch %llu incomplete: nothing more from the primary for %u ms in the middle of it; staged data dropped, replica stays at epoch %llu",
			(unsigned long long)s->begin.epoch, epoch_timeout(s),
			(unsigned long long)s->epoch);
	else if (!s->err[0])
		snprintf(s->err, sizeof(s->err),
			 "session ended at epoch %llu: %s%s%s%s",
			 (unsigned long long)s->epoch, km_strerror(r),
			 *km_transport_why(t) ? " (" : "", km_transport_why(t),
			 *km_transport_why(t) ? ")" : "");
	if (r != -ECONNRESET)
		km__send_error(t, r, s->begin.epoch, s->err);
	return r;
}

int km_secondary_serve(struct km_secondary *s, struct km_transport *t)
{
	int r;

	s->err[0] = '\0';
	memset(&s->begin, 0, sizeof(s->begin));
	s->sess.flags = s->cfg.data_auth ? KM_HELLO_DATA_AUTH : 0;
	s->sess.mem_size = s->cfg.mem_size;
	s->sess.last_epoch = s->epoch;
	s->sess.generation = s->generation;
	/* A transport that places page data (RDMA) writes into staging. */
	r = km_transport_register(t, s->stage, s->stage_pages * KM_PAGE_SIZE,
				  KM_MEM_TARGET);
	if (r) {
		snprintf(s->err, sizeof(s->err),
			 "the staging area cannot be registered: %s",
			 *km_transport_why(t) ? km_transport_why(t) :
						km_strerror(r));
		return r;
	}
	r = km__auth_server(t, s->cfg.key, s->cfg.key_len, &s->sess, s->err,
			    sizeof(s->err));
	if (r)
		return r;
	/*
	 * The commit point is a verified staging area: the ACK goes out
	 * then, and the copy into the replica overlaps with the primary
	 * resuming its guest. Nothing is read from the primary before the
	 * apply is done, and this function never returns with a verified
	 * epoch left unapplied, so the replica is always a whole epoch.
	 */
	for (;;) {
		r = recv_epoch(s, t);
		if (r)
			break;
		r = send_ack(s, t);
		/*
		 * Step aside before the copy: the ACK's wake-up of a local
		 * primary is a "sync" one, which puts it on this CPU
		 * expecting us to sleep, and it would otherwise wait for
		 * the whole apply (64-page pause p50 ~95 -> ~60 us on
		 * loopback, docs/performance.md). Free when nothing else
		 * is runnable here; the apply still runs before the next
		 * read.
		 */
		sched_yield();
		apply(s);
		if (s->cfg.applied)
			s->cfg.applied(s->cfg.opaque, s->epoch);
		/* Staging is free again: the primary may fill it. */
		r = r ?: km_transport_release(t);
		if (r)
			break;
	}
	return end_session(s, t, r);
}

int km_secondary_create(const struct km_secondary_config *cfg,
			struct km_secondary **out)
{
	struct km_secondary *s;
	size_t len;

	if (!cfg->replica || !cfg->mem_size || cfg->mem_size % KM_PAGE_SIZE ||
	    !cfg->key || cfg->key_len < KM_KEY_MIN)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->npages = cfg->mem_size / KM_PAGE_SIZE;
	s->stage_pages = cfg->staging_pages && cfg->staging_pages < s->npages ?
				 cfg->staging_pages :
				 s->npages;
	len = s->stage_pages * KM_PAGE_SIZE;
	s->stage = mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->stage == MAP_FAILED) {
		s->stage = NULL;
		goto err_destroy;
	}
	*out = s;
	return 0;

err_destroy:
	km_secondary_destroy(s);
	return -ENOMEM;
}

uint64_t km_secondary_epoch(const struct km_secondary *s)
{
	return s->epoch;
}

uint64_t km_secondary_generation(const struct km_secondary *s)
{
	return s->generation;
}

bool km_secondary_consistent(const struct km_secondary *s)
{
	return s->consistent;
}

const void *km_secondary_state(const struct km_secondary *s, uint32_t tag,
			       uint32_t *len)
{
	struct blob *b = blobs_find((struct blob_set *)&s->state, tag);

	if (!b) {
		errno = ENOENT;
		return NULL;
	}
	*len = b->len;
	return b->data;
}

const char *km_secondary_strerror(const struct km_secondary *s)
{
	return s->err;
}

void km_secondary_destroy(struct km_secondary *s)
{
	if (!s)
		return;
	blobs_clear(&s->staged);
	free(s->staged.v);
	blobs_clear(&s->state);
	free(s->state.v);
	free(s->runs);
	if (s->stage)
		munmap(s->stage, s->stage_pages * KM_PAGE_SIZE);
	sodium_memzero(&s->sess, sizeof(s->sess));
	free(s);
}
