// SPDX-License-Identifier: GPL-2.0
/* Record framing of the RDMA transport (see rdma_int.h). */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "rdma_int.h"

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

size_t km__rrec_put(uint8_t *p, const struct km__rrec *r)
{
	put16(p, KM_RREC_MAGIC);
	put16(p + 2, r->type);
	put32(p + 4, r->key);
	put64(p + 8, r->off);
	put64(p + 16, r->len);
	return KM_RREC_HDR;
}

int km__rrec_next(const uint8_t *msg, size_t msg_len, size_t pos,
		  uint64_t region_len, struct km__rrec *r, size_t *next)
{
	const uint8_t *p = msg + pos;

	if (pos > msg_len || msg_len - pos < KM_RREC_HDR ||
	    get16(p) != KM_RREC_MAGIC)
		return -EBADMSG;
	r->type = get16(p + 2);
	r->key = get32(p + 4);
	r->off = get64(p + 8);
	r->len = get64(p + 16);
	*next = pos + KM_RREC_HDR;
	switch (r->type) {
	case KM_RREC_DATA:
		if (r->len > msg_len - *next)
			return -EMSGSIZE;
		*next += r->len;
		return 0;
	case KM_RREC_PLACED:
		if (!r->len || r->off > region_len ||
		    r->len > region_len - r->off)
			return -ERANGE;
		return 0;
	case KM_RREC_REGION:
	case KM_RREC_CREDIT:
		return 0;
	default:
		return -ENOMSG;
	}
}
