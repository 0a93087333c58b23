// SPDX-License-Identifier: GPL-2.0
/* Kemari wire format: encoders and validating decoders (docs/protocol.md). */
#include <string.h>
#include "xxh.h"

#include "wire.h"

struct len_bounds {
	uint32_t min;
	uint32_t max;
};

static const struct len_bounds bounds[KM_MSG_TYPE_MAX + 1] = {
	[KM_MSG_HELLO] = { KM_HELLO_SIZE, KM_HELLO_SIZE },
	[KM_MSG_CHALLENGE] = { KM_CHALLENGE_SIZE, KM_CHALLENGE_SIZE },
	[KM_MSG_RESPONSE] = { KM_RESPONSE_SIZE, KM_RESPONSE_SIZE },
	[KM_MSG_BEGIN] = { KM_BEGIN_SIZE, KM_BEGIN_SIZE },
	[KM_MSG_PAGES] = { KM_PAGES_META_FIXED,
			   KM_PAGES_META_FIXED +
				   KM_PAGES_MAX_RUNS *KM_PAGE_RUN_SIZE +
				   KM_PAGES_MAX_DATA_PAGES *KM_PAGE_SIZE },
	[KM_MSG_STATE] = { KM_STATE_META_SIZE,
			   KM_STATE_META_SIZE + KM_STATE_MAX_DATA },
	[KM_MSG_COMMIT] = { KM_COMMIT_SIZE, KM_COMMIT_SIZE + KM_MAC_SIZE },
	[KM_MSG_ACK] = { KM_ACK_SIZE, KM_ACK_SIZE },
	[KM_MSG_ERROR] = { KM_ERROR_FIXED, KM_ERROR_FIXED + KM_ERROR_MAX_TEXT },
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

const char *km_strerror(int err)
{
	switch (-err) {
	case 0:
		return "success";
	case KM_EMAGIC:
		return "bad magic: the peer does not speak the kemari protocol";
	case KM_EVERSION:
		return "unsupported protocol version: upgrade both hosts";
	case KM_ETYPE:
		return "unknown message type";
	case KM_ELENGTH:
		return "length field out of bounds";
	case KM_ECHECKSUM:
		return "checksum mismatch: data corrupted in transit";
	case KM_ETAG:
		return "authentication tag rejected: data altered or wrong key";
	case KM_EAUTH:
		return "peer failed to prove the pre-shared key (wrong key or replayed session)";
	case KM_EGENERATION:
		return "epoch from a lower generation: a stale primary";
	case KM_EDUPLICATE:
		return "duplicate epoch: already committed";
	case KM_EREPLAY:
		return "replayed epoch: older than the last committed one";
	case KM_EGAP:
		return "epoch gap: at least one epoch is missing";
	case KM_ESEQUENCE:
		return "message out of sequence";
	case KM_EFIELD:
		return "field value out of its domain";
	case ECONNRESET:
		return "peer closed the connection";
	case ENOSPC:
		return "epoch larger than the staging area";
	default:
		return strerror(-err);
	}
}

static uint32_t checksum(const uint8_t *hdr, const void *meta, size_t len)
{
	/* The header minus its own checksum field seeds the body hash. */
	uint64_t seed = XXH3_64bits(hdr, 12);

	return (uint32_t)XXH3_64bits_withSeed(meta, len, seed);
}

int km_wire_decode_hdr(const void *buf, size_t len, struct km_wire_hdr *h)
{
	const uint8_t *p = buf;

	if (len < KM_WIRE_HDR_SIZE)
		return -KM_ELENGTH;
	h->magic = get32(p);
	h->version = get16(p + 4);
	h->type = get16(p + 6);
	h->length = get32(p + 8);
	h->checksum = get32(p + 12);
	if (h->magic != KM_WIRE_MAGIC)
		return -KM_EMAGIC;
	if (h->version != KM_WIRE_VERSION)
		return -KM_EVERSION;
	if (h->type < KM_MSG_HELLO || h->type > KM_MSG_TYPE_MAX)
		return -KM_ETYPE;
	if (h->length < bounds[h->type].min || h->length > bounds[h->type].max)
		return -KM_ELENGTH;
	return 0;
}

int km_wire_meta_len(const struct km_wire_hdr *h, const void *prefix,
		     size_t plen, size_t *meta_len)
{
	uint32_t nruns;

	switch (h->type) {
	case KM_MSG_STATE:
		*meta_len = KM_STATE_META_SIZE;
		return 0;
	case KM_MSG_PAGES:
		if (plen < KM_PAGES_META_FIXED)
			return -EAGAIN;
		nruns = get32(prefix);
		if (nruns > KM_PAGES_MAX_RUNS)
			return -KM_ELENGTH;
		*meta_len =
			KM_PAGES_META_FIXED + (size_t)nruns * KM_PAGE_RUN_SIZE;
		if (*meta_len > h->length)
			return -KM_ELENGTH;
		return 0;
	default:
		*meta_len = h->length;
		return 0;
	}
}

int km_wire_verify(const void *hdr, const void *meta, size_t meta_len)
{
	const uint8_t *p = hdr;

	if (checksum(p, meta, meta_len) != get32(p + 12))
		return -KM_ECHECKSUM;
	return 0;
}

static int check_fixed(const struct km_wire_hdr *h, uint16_t type, size_t len,
		       size_t want)
{
	if (h->type != type)
		return -KM_ETYPE;
	if (h->length != want || len != want)
		return -KM_ELENGTH;
	return 0;
}

int km_wire_decode_hello(const struct km_wire_hdr *h, const void *body,
			 size_t len, struct km_msg_hello *m)
{
	const uint8_t *p = body;
	int r = check_fixed(h, KM_MSG_HELLO, len, KM_HELLO_SIZE);

	if (r)
		return r;
	m->flags = get32(p);
	m->page_size = get32(p + 4);
	m->mem_size = get64(p + 8);
	memcpy(m->nonce, p + 16, KM_NONCE_SIZE);
	if (m->flags & ~KM_HELLO_DATA_AUTH)
		return -KM_EFIELD;
	if (m->page_size != KM_PAGE_SIZE || !m->mem_size ||
	    m->mem_size % KM_PAGE_SIZE)
		return -KM_EFIELD;
	return 0;
}

int km_wire_decode_challenge(const struct km_wire_hdr *h, const void *body,
			     size_t len, struct km_msg_challenge *m)
{
	const uint8_t *p = body;
	int r = check_fixed(h, KM_MSG_CHALLENGE, len, KM_CHALLENGE_SIZE);

	if (r)
		return r;
	memcpy(m->nonce, p, KM_NONCE_SIZE);
	memcpy(m->mac, p + KM_NONCE_SIZE, KM_MAC_SIZE);
	return 0;
}

int km_wire_decode_response(const struct km_wire_hdr *h, const void *body,
			    size_t len, struct km_msg_response *m)
{
	int r = check_fixed(h, KM_MSG_RESPONSE, len, KM_RESPONSE_SIZE);

	if (r)
		return r;
	memcpy(m->mac, body, KM_MAC_SIZE);
	return 0;
}

int km_wire_decode_begin(const struct km_wire_hdr *h, const void *body,
			 size_t len, struct km_msg_begin *m)
{
	const uint8_t *p = body;
	int r = check_fixed(h, KM_MSG_BEGIN, len, KM_BEGIN_SIZE);

	if (r)
		return r;
	m->epoch = get64(p);
	m->generation = get64(p + 8);
	m->flags = get32(p + 16);
	if (!m->epoch || (m->flags & ~KM_BEGIN_SYNC) || get32(p + 20))
		return -KM_EFIELD;
	return 0;
}

void km_wire_pages_run(const struct km_msg_pages *m, uint32_t i,
		       struct km_page_run *run)
{
	const uint8_t *p = m->runs + (size_t)i * KM_PAGE_RUN_SIZE;

	run->first = get64(p);
	run->count = get32(p + 8);
	run->flags = get32(p + 12);
}

static int check_runs(const struct km_msg_pages *m, uint64_t mem_pages)
{
	struct km_page_run run;
	uint64_t data = 0;
	uint32_t i;

	for (i = 0; i < m->nruns; i++) {
		km_wire_pages_run(m, i, &run);
		if (!run.count || (run.flags & ~KM_RUN_ZERO))
			return -KM_EFIELD;
		if (run.first >= mem_pages || run.count > mem_pages - run.first)
			return -KM_ELENGTH;
		if (!(run.flags & KM_RUN_ZERO))
			data += run.count;
	}
	if (data != m->data_pages)
		return -KM_ELENGTH;
	return 0;
}

int km_wire_decode_pages(const struct km_wire_hdr *h, const void *meta,
			 size_t len, uint64_t mem_pages, struct km_msg_pages *m)
{
	const uint8_t *p = meta;
	size_t meta_len;
	int r;

	if (h->type != KM_MSG_PAGES)
		return -KM_ETYPE;
	r = km_wire_meta_len(h, meta, len, &meta_len);
	if (r)
		return r == -EAGAIN ? -KM_ELENGTH : r;
	if (len != meta_len)
		return -KM_ELENGTH;
	m->nruns = get32(p);
	m->data_pages = get32(p + 4);
	m->runs = p + KM_PAGES_META_FIXED;
	if (m->data_pages > KM_PAGES_MAX_DATA_PAGES ||
	    h->length != meta_len + (uint64_t)m->data_pages * KM_PAGE_SIZE)
		return -KM_ELENGTH;
	return check_runs(m, mem_pages);
}

int km_wire_decode_state(const struct km_wire_hdr *h, const void *meta,
			 size_t len, struct km_msg_state *m)
{
	const uint8_t *p = meta;

	if (h->type != KM_MSG_STATE)
		return -KM_ETYPE;
	if (len != KM_STATE_META_SIZE)
		return -KM_ELENGTH;
	m->tag = get32(p);
	m->data_len = h->length - KM_STATE_META_SIZE;
	if (!m->tag)
		return -KM_ETAG;
	if (get32(p + 4) != m->data_len)
		return -KM_ELENGTH;
	return 0;
}

int km_wire_decode_commit(const struct km_wire_hdr *h, const void *body,
			  size_t len, struct km_msg_commit *m)
{
	const uint8_t *p = body;
	size_t want;

	if (h->type != KM_MSG_COMMIT)
		return -KM_ETYPE;
	if (len != h->length || len < KM_COMMIT_SIZE)
		return -KM_ELENGTH;
	m->epoch = get64(p);
	m->generation = get64(p + 8);
	m->digest = get64(p + 16);
	m->flags = get32(p + 24);
	m->nmsgs = get32(p + 28);
	if (!m->epoch || (m->flags & ~KM_COMMIT_MAC))
		return -KM_EFIELD;
	want = KM_COMMIT_SIZE + (m->flags & KM_COMMIT_MAC ? KM_MAC_SIZE : 0);
	if (len != want)
		return -KM_ELENGTH;
	if (m->flags & KM_COMMIT_MAC)
		memcpy(m->mac, p + KM_COMMIT_SIZE, KM_MAC_SIZE);
	else
		memset(m->mac, 0, KM_MAC_SIZE);
	return 0;
}

int km_wire_decode_ack(const struct km_wire_hdr *h, const void *body,
		       size_t len, struct km_msg_ack *m)
{
	const uint8_t *p = body;
	int r = check_fixed(h, KM_MSG_ACK, len, KM_ACK_SIZE);

	if (r)
		return r;
	m->epoch = get64(p);
	m->generation = get64(p + 8);
	return 0;
}

int km_wire_decode_error(const struct km_wire_hdr *h, const void *body,
			 size_t len, struct km_msg_error *m)
{
	const uint8_t *p = body;
	uint32_t tlen, i;

	if (h->type != KM_MSG_ERROR)
		return -KM_ETYPE;
	if (len != h->length || len < KM_ERROR_FIXED)
		return -KM_ELENGTH;
	m->code = (int32_t)get32(p);
	tlen = get32(p + 4);
	m->epoch = get64(p + 8);
	if (tlen > KM_ERROR_MAX_TEXT || len != KM_ERROR_FIXED + tlen)
		return -KM_ELENGTH;
	if (m->code >= 0 || m->code < -4095)
		return -KM_EFIELD;
	for (i = 0; i < tlen; i++) {
		char c = (char)p[KM_ERROR_FIXED + i];

		if (c < 0x20 || c > 0x7e)
			return -KM_EFIELD;
		m->text[i] = c;
	}
	m->text[tlen] = '\0';
	return 0;
}

static int decode_body(struct km_msg *m, const uint8_t *body, size_t meta,
		       uint64_t mem_pages)
{
	const struct km_wire_hdr *h = &m->hdr;

	m->data = NULL;
	m->data_len = 0;
	switch (h->type) {
	case KM_MSG_HELLO:
		return km_wire_decode_hello(h, body, meta, &m->hello);
	case KM_MSG_CHALLENGE:
		return km_wire_decode_challenge(h, body, meta, &m->challenge);
	case KM_MSG_RESPONSE:
		return km_wire_decode_response(h, body, meta, &m->response);
	case KM_MSG_BEGIN:
		return km_wire_decode_begin(h, body, meta, &m->begin);
	case KM_MSG_PAGES:
		m->data = body + meta;
		m->data_len = h->length - meta;
		return km_wire_decode_pages(h, body, meta, mem_pages,
					    &m->pages);
	case KM_MSG_STATE:
		m->data = body + meta;
		m->data_len = h->length - meta;
		return km_wire_decode_state(h, body, meta, &m->state);
	case KM_MSG_COMMIT:
		return km_wire_decode_commit(h, body, meta, &m->commit);
	case KM_MSG_ACK:
		return km_wire_decode_ack(h, body, meta, &m->ack);
	default:
		return km_wire_decode_error(h, body, meta, &m->error);
	}
}

long km_wire_decode(const void *buf, size_t len, uint64_t mem_pages,
		    struct km_msg *m)
{
	const uint8_t *p = buf;
	const uint8_t *body = p + KM_WIRE_HDR_SIZE;
	size_t meta;
	int r;

	r = km_wire_decode_hdr(buf, len, &m->hdr);
	if (r)
		return r;
	if (len - KM_WIRE_HDR_SIZE < m->hdr.length)
		return -KM_ELENGTH;
	r = km_wire_meta_len(&m->hdr, body, m->hdr.length, &meta);
	if (r)
		return r == -EAGAIN ? -KM_ELENGTH : r;
	r = km_wire_verify(p, body, meta);
	if (r)
		return r;
	r = decode_body(m, body, meta, mem_pages);
	if (r)
		return r;
	return KM_WIRE_HDR_SIZE + (long)m->hdr.length;
}

static size_t seal(uint8_t *buf, uint16_t type, uint32_t length, size_t meta)
{
	put32(buf, KM_WIRE_MAGIC);
	put16(buf + 4, KM_WIRE_VERSION);
	put16(buf + 6, type);
	put32(buf + 8, length);
	put32(buf + 12, checksum(buf, buf + KM_WIRE_HDR_SIZE, meta));
	return KM_WIRE_HDR_SIZE + meta;
}

size_t km_wire_encode_hello(void *buf, const struct km_msg_hello *m)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;

	put32(p, m->flags);
	put32(p + 4, m->page_size);
	put64(p + 8, m->mem_size);
	memcpy(p + 16, m->nonce, KM_NONCE_SIZE);
	return seal(buf, KM_MSG_HELLO, KM_HELLO_SIZE, KM_HELLO_SIZE);
}

size_t km_wire_encode_challenge(void *buf, const struct km_msg_challenge *m)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;

	memcpy(p, m->nonce, KM_NONCE_SIZE);
	memcpy(p + KM_NONCE_SIZE, m->mac, KM_MAC_SIZE);
	return seal(buf, KM_MSG_CHALLENGE, KM_CHALLENGE_SIZE,
		    KM_CHALLENGE_SIZE);
}

size_t km_wire_encode_response(void *buf, const struct km_msg_response *m)
{
	memcpy((uint8_t *)buf + KM_WIRE_HDR_SIZE, m->mac, KM_MAC_SIZE);
	return seal(buf, KM_MSG_RESPONSE, KM_RESPONSE_SIZE, KM_RESPONSE_SIZE);
}

size_t km_wire_encode_begin(void *buf, const struct km_msg_begin *m)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;

	put64(p, m->epoch);
	put64(p + 8, m->generation);
	put32(p + 16, m->flags);
	put32(p + 20, 0);
	return seal(buf, KM_MSG_BEGIN, KM_BEGIN_SIZE, KM_BEGIN_SIZE);
}

size_t km_wire_encode_pages(void *buf, const struct km_page_run *runs,
			    uint32_t nruns, uint32_t data_pages)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;
	size_t meta = KM_PAGES_META_FIXED + (size_t)nruns * KM_PAGE_RUN_SIZE;
	uint32_t i;

	put32(p, nruns);
	put32(p + 4, data_pages);
	for (i = 0; i < nruns; i++) {
		uint8_t *r = p + KM_PAGES_META_FIXED + i * KM_PAGE_RUN_SIZE;

		put64(r, runs[i].first);
		put32(r + 8, runs[i].count);
		put32(r + 12, runs[i].flags);
	}
	return seal(buf, KM_MSG_PAGES,
		    (uint32_t)(meta + (size_t)data_pages * KM_PAGE_SIZE), meta);
}

size_t km_wire_encode_state(void *buf, uint32_t tag, uint32_t data_len)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;

	put32(p, tag);
	put32(p + 4, data_len);
	return seal(buf, KM_MSG_STATE, KM_STATE_META_SIZE + data_len,
		    KM_STATE_META_SIZE);
}

size_t km_wire_encode_commit(void *buf, const struct km_msg_commit *m)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;
	uint32_t len = KM_COMMIT_SIZE;

	put64(p, m->epoch);
	put64(p + 8, m->generation);
	put64(p + 16, m->digest);
	put32(p + 24, m->flags);
	put32(p + 28, m->nmsgs);
	if (m->flags & KM_COMMIT_MAC) {
		memcpy(p + KM_COMMIT_SIZE, m->mac, KM_MAC_SIZE);
		len += KM_MAC_SIZE;
	}
	return seal(buf, KM_MSG_COMMIT, len, len);
}

size_t km_wire_encode_ack(void *buf, const struct km_msg_ack *m)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;

	put64(p, m->epoch);
	put64(p + 8, m->generation);
	return seal(buf, KM_MSG_ACK, KM_ACK_SIZE, KM_ACK_SIZE);
}

size_t km_wire_encode_error(void *buf, int code, uint64_t epoch,
			    const char *text)
{
	uint8_t *p = (uint8_t *)buf + KM_WIRE_HDR_SIZE;
	uint32_t tlen = 0;

	while (text[tlen] && tlen < KM_ERROR_MAX_TEXT) {
		char c = text[tlen];

		p[KM_ERROR_FIXED + tlen] = (c < 0x20 || c > 0x7e) ? '?' : c;
		tlen++;
	}
	put32(p, (uint32_t)code);
	put32(p + 4, tlen);
	put64(p + 8, epoch);
	return seal(buf, KM_MSG_ERROR, KM_ERROR_FIXED + tlen,
		    KM_ERROR_FIXED + tlen);
}
