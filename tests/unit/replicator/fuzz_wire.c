// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the wire decoder. Built with clang
 * -fsanitize=fuzzer,address,undefined; the test suite runs a short smoke
 * campaign. Besides "no crash, no out-of-bounds read", it checks that a
 * message the decoder accepts re-encodes to the very same bytes: nothing
 * the decoder lets through is ambiguous.
 *
 * Random mutations almost never carry a valid checksum, which would stop
 * the campaign at the header; so for odd-sized inputs the harness re-seals
 * the header checksum (the same XXH3 construction as wire.c) before
 * decoding, letting mutations reach every body decoder.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "wire.h"

#define MEM_PAGES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reencode(const struct km_msg *m, const uint8_t *data, long len)
{
	static uint8_t out[KM_WIRE_HDR_SIZE + KM_PAGES_META_FIXED +
			   KM_PAGES_MAX_RUNS * KM_PAGE_RUN_SIZE];
	size_t n;

	switch (m->hdr.type) {
	case KM_MSG_HELLO:
		n = km_wire_encode_hello(out, &m->hello);
		break;
	case KM_MSG_BEGIN:
		n = km_wire_encode_begin(out, &m->begin);
		break;
	case KM_MSG_COMMIT:
		n = km_wire_encode_commit(out, &m->commit);
		break;
	case KM_MSG_ACK:
		n = km_wire_encode_ack(out, &m->ack);
		break;
	case KM_MSG_ERROR:
		n = km_wire_encode_error(out, m->error.code, m->error.epoch,
					 m->error.text);
		break;
	default:
		return;
	}
	if ((long)n != len || memcmp(out, data, n))
		abort();
}

static void walk_runs(const struct km_msg *m)
{
	struct km_page_run r;
	uint64_t data = 0;
	uint32_t i;

	for (i = 0; i < m->pages.nruns; i++) {
		km_wire_pages_run(&m->pages, i, &r);
		if (r.first + r.count > MEM_PAGES)
			abort();
		if (!(r.flags & KM_RUN_ZERO))
			data += r.count;
	}
	if (data * KM_PAGE_SIZE != m->data_len)
		abort();
}

static uint8_t copy[1 << 16];

static const uint8_t *reseal(const uint8_t *data, size_t size)
{
	struct km_wire_hdr h;
	size_t meta;
	uint32_t c;

	if (size > sizeof(copy) || !(size & 1) ||
	    km_wire_decode_hdr(data, size, &h))
		return data;
	memcpy(copy, data, size);
	if (km_wire_meta_len(&h, copy + KM_WIRE_HDR_SIZE,
			     size - KM_WIRE_HDR_SIZE, &meta) ||
	    meta > size - KM_WIRE_HDR_SIZE)
		return data;
	c = (uint32_t)XXH3_64bits_withSeed(copy + KM_WIRE_HDR_SIZE, meta,
					   XXH3_64bits(copy, 12));
	copy[12] = (uint8_t)c;
	copy[13] = (uint8_t)(c >> 8);
	copy[14] = (uint8_t)(c >> 16);
	copy[15] = (uint8_t)(c >> 24);
	return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_msg m;
	long len;

	data = reseal(data, size);
	len = km_wire_decode(data, size, MEM_PAGES, &m);

	if (len <= 0)
		return 0;
	if ((size_t)len > size)
		abort();
	if (m.hdr.type == KM_MSG_PAGES)
		walk_runs(&m);
	reencode(&m, data, len);
	return 0;
}
