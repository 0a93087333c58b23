// SPDX-License-Identifier: GPL-2.0
/* Wire format: round trips, and each field's validation with its error. */
#include <criterion/criterion.h>
#include <string.h>

#include <xxhash.h>

#include "replicator_int.h"
#include "wire.h"
#include "digest.h"

#define MEM_PAGES 1024

static uint8_t buf[KM_WIRE_HDR_SIZE + KM_PAGES_META_FIXED +
		   KM_PAGES_MAX_RUNS * KM_PAGE_RUN_SIZE + 8 * KM_PAGE_SIZE];
static struct km_msg m;

static long decode(size_t len)
{
	return km_wire_decode(buf, len, MEM_PAGES, &m);
}

/* Patch a little-endian field and re-seal the header checksum. */
static void patch32(size_t off, uint32_t v, size_t meta_len)
{
	uint8_t *p = buf + off;
	uint64_t seed;
	uint32_t c;

	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	seed = XXH3_64bits(buf, 12);
	c = (uint32_t)XXH3_64bits_withSeed(buf + KM_WIRE_HDR_SIZE, meta_len,
					   seed);
	memcpy(buf + 12, &c, 4);
}

static size_t begin_msg(void)
{
	struct km_msg_begin b = { .epoch = 7, .generation = 3, .flags = 0 };

	return km_wire_encode_begin(buf, &b);
}

Test(wire, hello_round_trip)
{
	struct km_msg_hello h = { .flags = KM_HELLO_DATA_AUTH,
				  .page_size = KM_PAGE_SIZE,
				  .mem_size = 1 << 20 };
	size_t len;

	memset(h.nonce, 0xa5, sizeof(h.nonce));
	len = km_wire_encode_hello(buf, &h);
	cr_assert_eq(len, KM_WIRE_HDR_SIZE + KM_HELLO_SIZE);
	cr_assert_eq(decode(len), (long)len);
	cr_assert_eq(m.hdr.type, KM_MSG_HELLO);
	cr_assert_eq(m.hello.flags, KM_HELLO_DATA_AUTH);
	cr_assert_eq(m.hello.mem_size, 1 << 20);
	cr_assert(!memcmp(m.hello.nonce, h.nonce, KM_NONCE_SIZE));
}

Test(wire, challenge_response_round_trip)
{
	struct km_msg_challenge c;
	struct km_msg_response r;
	size_t len;

	memset(c.nonce, 1, sizeof(c.nonce));
	memset(c.mac, 2, sizeof(c.mac));
	len = km_wire_encode_challenge(buf, &c);
	cr_assert_eq(decode(len), (long)len);
	cr_assert(!memcmp(m.challenge.mac, c.mac, KM_MAC_SIZE));
	memset(r.mac, 3, sizeof(r.mac));
	len = km_wire_encode_response(buf, &r);
	cr_assert_eq(decode(len), (long)len);
	cr_assert(!memcmp(m.response.mac, r.mac, KM_MAC_SIZE));
}

Test(wire, begin_round_trip_little_endian)
{
	size_t len = begin_msg();

	cr_assert_eq(decode(len), (long)len);
	cr_assert_eq(m.begin.epoch, 7);
	cr_assert_eq(m.begin.generation, 3);
	/* Fixed layout: magic bytes "KMRI", then epoch LE at offset 16. */
	cr_assert(!memcmp(buf, "KMRI", 4));
	cr_assert_eq(buf[16], 7);
	cr_assert_eq(buf[17], 0);
}

Test(wire, pages_round_trip)
{
	struct km_page_run runs[3] = { { 5, 2, 0 },
				       { 9, 4, KM_RUN_ZERO },
				       { 1000, 1, 0 } };
	size_t len = km_wire_encode_pages(buf, runs, 3, 3);
	struct km_page_run r;

	memset(buf + len, 0x5a, 3 * KM_PAGE_SIZE);
	len += 3 * KM_PAGE_SIZE;
	cr_assert_eq(decode(len), (long)len);
	cr_assert_eq(m.pages.nruns, 3);
	cr_assert_eq(m.pages.data_pages, 3);
	cr_assert_eq(m.data_len, 3 * KM_PAGE_SIZE);
	km_wire_pages_run(&m.pages, 1, &r);
	cr_assert_eq(r.first, 9);
	cr_assert_eq(r.count, 4);
	cr_assert_eq(r.flags, KM_RUN_ZERO);
}

Test(wire, state_commit_ack_error_round_trip)
{
	struct km_msg_commit c = { .epoch = 9,
				   .generation = 2,
				   .digest = 0x1122334455667788ull,
				   .flags = KM_COMMIT_MAC,
				   .nmsgs = 4 };
	struct km_msg_ack a = { 9, 2 };
	size_t len;

	len = km_wire_encode_state(buf, 42, 5);
	memcpy(buf + len, "hello", 5);
	cr_assert_eq(decode(len + 5), (long)len + 5);
	cr_assert_eq(m.state.tag, 42);
	cr_assert_eq(m.data_len, 5);

	memset(c.mac, 7, sizeof(c.mac));
	len = km_wire_encode_commit(buf, &c);
	cr_assert_eq(len, KM_WIRE_HDR_SIZE + KM_COMMIT_SIZE + KM_MAC_SIZE);
	cr_assert_eq(decode(len), (long)len);
	cr_assert_eq(m.commit.digest, c.digest);
	cr_assert_eq(m.commit.nmsgs, 4);
	cr_assert(!memcmp(m.commit.mac, c.mac, KM_MAC_SIZE));

	len = km_wire_encode_ack(buf, &a);
	cr_assert_eq(decode(len), (long)len);
	cr_assert_eq(m.ack.epoch, 9);

	len = km_wire_encode_error(buf, -KM_EGAP, 12, "gap at 12");
	cr_assert_eq(decode(len), (long)len);
	cr_assert_eq(m.error.code, -KM_EGAP);
	cr_assert_str_eq(m.error.text, "gap at 12");
}

Test(wire, wrong_magic)
{
	size_t len = begin_msg();

	buf[0] ^= 1;
	cr_assert_eq(decode(len), -KM_EMAGIC);
}

Test(wire, wrong_version)
{
	size_t len = begin_msg();

	buf[4] = KM_WIRE_VERSION + 1;
	cr_assert_eq(decode(len), -KM_EVERSION);
	/* Version 1 had another epoch digest: refused, not misread. */
	buf[4] = 1;
	cr_assert_eq(decode(len), -KM_EVERSION);
}

Test(wire, wrong_type)
{
	size_t len = begin_msg();

	buf[6] = 0;
	cr_assert_eq(decode(len), -KM_ETYPE);
	buf[6] = KM_MSG_TYPE_MAX + 1;
	cr_assert_eq(decode(len), -KM_ETYPE);
}

Test(wire, wrong_length)
{
	size_t len = begin_msg();

	patch32(8, KM_BEGIN_SIZE + 1, KM_BEGIN_SIZE);
	cr_assert_eq(decode(len + 1), -KM_ELENGTH);
	patch32(8, 0xffffffffu, KM_BEGIN_SIZE);
	cr_assert_eq(decode(len), -KM_ELENGTH);
	/* A truncated buffer never reads past its end. */
	len = begin_msg();
	cr_assert_eq(decode(len - 1), -KM_ELENGTH);
	cr_assert_eq(decode(10), -KM_ELENGTH);
}

Test(wire, wrong_checksum)
{
	size_t len = begin_msg();

	buf[KM_WIRE_HDR_SIZE + 1] ^= 0x10;
	cr_assert_eq(decode(len), -KM_ECHECKSUM);
	len = begin_msg();
	buf[13] ^= 0x01;
	cr_assert_eq(decode(len), -KM_ECHECKSUM);
}

Test(wire, state_tag_zero_rejected)
{
	size_t len = km_wire_encode_state(buf, 0, 0);

	cr_assert_eq(decode(len), -KM_ETAG);
}

Test(wire, state_inner_length_mismatch)
{
	size_t len = km_wire_encode_state(buf, 1, 4);

	patch32(KM_WIRE_HDR_SIZE + 4, 3, KM_STATE_META_SIZE);
	cr_assert_eq(decode(len + 4), -KM_ELENGTH);
}

Test(wire, pages_run_out_of_bounds)
{
	struct km_page_run run = { MEM_PAGES - 1, 2, KM_RUN_ZERO };
	size_t len = km_wire_encode_pages(buf, &run, 1, 0);

	cr_assert_eq(decode(len), -KM_ELENGTH);
	run = (struct km_page_run){ UINT64_MAX, 2, KM_RUN_ZERO };
	len = km_wire_encode_pages(buf, &run, 1, 0);
	cr_assert_eq(decode(len), -KM_ELENGTH);
}

Test(wire, pages_empty_run_and_bad_flags)
{
	struct km_page_run run = { 1, 0, KM_RUN_ZERO };
	size_t len = km_wire_encode_pages(buf, &run, 1, 0);

	cr_assert_eq(decode(len), -KM_EFIELD);
	run = (struct km_page_run){ 1, 1, 0x80 | KM_RUN_ZERO };
	len = km_wire_encode_pages(buf, &run, 1, 0);
	cr_assert_eq(decode(len), -KM_EFIELD);
}

Test(wire, pages_data_count_mismatch)
{
	struct km_page_run run = { 1, 2, 0 };
	size_t len = km_wire_encode_pages(buf, &run, 1, 1);

	/* Header says one data page, the run says two. */
	cr_assert_eq(decode(len + KM_PAGE_SIZE), -KM_ELENGTH);
}

Test(wire, pages_too_many_runs)
{
	struct km_page_run run = { 1, 1, KM_RUN_ZERO };
	size_t len = km_wire_encode_pages(buf, &run, 1, 0);

	patch32(KM_WIRE_HDR_SIZE, KM_PAGES_MAX_RUNS + 1, 24);
	cr_assert_eq(decode(len), -KM_ELENGTH);
}

Test(wire, commit_mac_length_must_match_flag)
{
	struct km_msg_commit c = { .epoch = 1, .generation = 1, .digest = 5 };
	size_t len = km_wire_encode_commit(buf, &c);

	patch32(KM_WIRE_HDR_SIZE + 24, KM_COMMIT_MAC, KM_COMMIT_SIZE);
	cr_assert_eq(decode(len), -KM_ELENGTH);
}

Test(wire, begin_epoch_zero_and_flags)
{
	struct km_msg_begin b = { 0, 1, 0 };
	size_t len = km_wire_encode_begin(buf, &b);

	cr_assert_eq(decode(len), -KM_EFIELD);
	b = (struct km_msg_begin){ 1, 1, 0x100 };
	len = km_wire_encode_begin(buf, &b);
	cr_assert_eq(decode(len), -KM_EFIELD);
}

Test(wire, error_text_must_be_printable)
{
	size_t len = km_wire_encode_error(buf, -EIO, 1, "abc");

	buf[KM_WIRE_HDR_SIZE + KM_ERROR_FIXED + 1] = '\n';
	patch32(KM_WIRE_HDR_SIZE, (uint32_t)-EIO, len - KM_WIRE_HDR_SIZE);
	cr_assert_eq(decode(len), -KM_EFIELD);
}

Test(wire, hello_page_size)
{
	struct km_msg_hello h = { .page_size = 8192, .mem_size = 1 << 20 };
	size_t len = km_wire_encode_hello(buf, &h);

	cr_assert_eq(decode(len), -KM_EFIELD);
}

Test(wire, meta_len_needs_prefix)
{
	struct km_wire_hdr h = { .type = KM_MSG_PAGES, .length = 100 };
	size_t meta;

	cr_assert_eq(km_wire_meta_len(&h, buf, 4, &meta), -EAGAIN);
}

Test(wire, strerror_names_the_problem)
{
	cr_assert(strstr(km_strerror(-KM_EGENERATION), "generation"));
	cr_assert(strstr(km_strerror(-KM_EMAGIC), "magic"));
	cr_assert(strstr(km_strerror(-KM_ECHECKSUM), "checksum"));
}

Test(stats, percentiles)
{
	static struct km__stats_ring ring;
	struct km_epoch_stats e = { 0 };
	struct km_stats st;
	uint64_t i;

	for (i = 1; i <= 100; i++) {
		e.pause_ns = i * 1000;
		e.pages = 2;
		km__stats_add(&ring, &e);
	}
	km__stats_get(&ring, &st);
	cr_assert_eq(st.epochs, 100);
	cr_assert_eq(st.pages, 200);
	cr_assert_eq(st.pause_p50_ns, 50000);
	cr_assert_eq(st.pause_p99_ns, 99000);
}

/* The epoch digest is CRC-64/XZ, as docs/protocol.md says, and chains. */
Test(wire, epoch_digest_is_crc64_xz)
{
	static const char check[] = "123456789";

	cr_assert_eq(km_digest(0, check, 9), 0x995dc9bbdf1939faull);
	cr_assert_eq(km_digest(km_digest(0, check, 4), check + 4, 5),
		     0x995dc9bbdf1939faull);
	cr_assert_eq(km_digest(0, NULL, 0), 0);
}
