// SPDX-License-Identifier: GPL-2.0
/*
 * The RDMA transport's record framing (every received record is validated
 * before it is used) and what it says on a host without an RDMA device.
 * The transport itself runs in the lab (tests/lab/replicator).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "rdma_int.h"
#include "transport.h"

static uint8_t msg[256];

static size_t put(size_t at, uint16_t type, uint64_t off, uint64_t len)
{
	struct km__rrec r = { .type = type, .key = 7, .off = off, .len = len };

	return at + km__rrec_put(msg + at, &r);
}

Test(rdma_frame, round_trip)
{
	struct km__rrec r;
	size_t n, next;

	n = put(0, KM_RREC_DATA, 0, 5);
	memcpy(msg + n, "hello", 5);
	n = put(n + 5, KM_RREC_PLACED, 4096, 8192);
	n = put(n, KM_RREC_CREDIT, 0, 0);
	cr_assert_eq(km__rrec_next(msg, n, 0, 16384, &r, &next), 0);
	cr_assert_eq(r.type, KM_RREC_DATA);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(r.key, 7);
	cr_assert_eq(next, KM_RREC_HDR + 5);
	cr_assert_eq(km__rrec_next(msg, n, next, 16384, &r, &next), 0);
	cr_assert_eq(r.type, KM_RREC_PLACED);
	cr_assert_eq(r.off, 4096);
	cr_assert_eq(r.len, 8192);
	cr_assert_eq(km__rrec_next(msg, n, next, 16384, &r, &next), 0);
	cr_assert_eq(r.type, KM_RREC_CREDIT);
	cr_assert_eq(next, n);
}

Test(rdma_frame, truncated_and_bad_magic)
{
	struct km__rrec r;
	size_t next, n = put(0, KM_RREC_CREDIT, 0, 0);

	cr_assert_eq(km__rrec_next(msg, n - 1, 0, 0, &r, &next), -EBADMSG);
	cr_assert_eq(km__rrec_next(msg, n, n, 0, &r, &next), -EBADMSG);
	cr_assert_eq(km__rrec_next(msg, n, n + 1, 0, &r, &next), -EBADMSG);
	msg[0] ^= 1;
	cr_assert_eq(km__rrec_next(msg, n, 0, 0, &r, &next), -EBADMSG);
}

Test(rdma_frame, unknown_type)
{
	struct km__rrec r;
	size_t next, n = put(0, 9, 0, 0);

	cr_assert_eq(km__rrec_next(msg, n, 0, 0, &r, &next), -ENOMSG);
	n = put(0, 0, 0, 0);
	cr_assert_eq(km__rrec_next(msg, n, 0, 0, &r, &next), -ENOMSG);
}

Test(rdma_frame, data_beyond_message)
{
	struct km__rrec r;
	size_t next, n = put(0, KM_RREC_DATA, 0, 10);

	cr_assert_eq(km__rrec_next(msg, n + 9, 0, 0, &r, &next), -EMSGSIZE);
	cr_assert_eq(km__rrec_next(msg, n + 10, 0, 0, &r, &next), 0);
	put(0, KM_RREC_DATA, 0, UINT64_MAX);
	cr_assert_eq(km__rrec_next(msg, n, 0, 0, &r, &next), -EMSGSIZE);
}

/* Placed data must lie inside this side's staging region, if it has one. */
Test(rdma_frame, placed_outside_region)
{
	struct km__rrec r;
	size_t next, n;

	n = put(0, KM_RREC_PLACED, 0, 4096);
	cr_assert_eq(km__rrec_next(msg, n, 0, 0, &r, &next), -ERANGE);
	cr_assert_eq(km__rrec_next(msg, n, 0, 4096, &r, &next), 0);
	cr_assert_eq(km__rrec_next(msg, n, 0, 4095, &r, &next), -ERANGE);
	put(0, KM_RREC_PLACED, 4096, 1);
	cr_assert_eq(km__rrec_next(msg, n, 0, 4096, &r, &next), -ERANGE);
	put(0, KM_RREC_PLACED, 8, UINT64_MAX - 4);
	cr_assert_eq(km__rrec_next(msg, n, 0, 4096, &r, &next), -ERANGE);
	put(0, KM_RREC_PLACED, 0, 0);
	cr_assert_eq(km__rrec_next(msg, n, 0, 4096, &r, &next), -ERANGE);
}

Test(rdma, found_by_name)
{
	cr_assert_eq(km_transport_find("rdma"), &km_rdma_ops);
	cr_assert_eq(km_transport_find("tcp"), &km_tcp_ops);
	cr_assert_null(km_transport_find("udp"));
	cr_assert_not_null(km_rdma_ops.register_memory);
	cr_assert_not_null(km_rdma_ops.release);
}

/* These hosts have no RDMA device (the lab has): say so, in a sentence. */
Test(rdma, no_device_is_named)
{
	struct km_transport *t = NULL;

	cr_assert_eq(km_rdma_ops.listen("127.0.0.1", "0", &t), -ENODEV);
	cr_assert_null(t);
	cr_assert(strstr(km_transport_last_error(), "no RDMA device"), "%s",
		  km_transport_last_error());
	cr_assert_eq(km_rdma_ops.connect("127.0.0.1", "1", &t), -ENODEV);
	cr_assert(strstr(km_transport_last_error(), "rdma link add"));
}
