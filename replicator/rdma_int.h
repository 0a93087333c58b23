/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private to rdma.c (and its unit test): how the RDMA transport frames the
 * byte stream the engines see.
 *
 * Every SEND carries a sequence of records, each a 24-byte little-endian
 * header, possibly followed by bytes:
 *
 *   u16 magic "KR" | u16 type | u32 key | u64 off | u64 len
 *
 *   DATA    len bytes of the stream follow inline (headers, meta, blobs);
 *           key bit 0 (KM_RREC_PAGE_DATA): page data that could not be
 *           placed, which the receiver's engine stages all the same
 *   PLACED  len bytes of the stream were put by RDMA WRITE at offset off
 *           of the receiver's target region (page data), before this SEND
 *   REGION  the target region: key = rkey, off = address, len = size;
 *           it is also grant 0 of that region
 *   CREDIT  key = grant number: the receiver consumed everything placed
 *           under the previous grant, the region may be written again
 *           from offset 0
 *
 * DATA and PLACED records, in order, are the engines' byte stream; REGION
 * and CREDIT are the transport's own flow control and never reach them.
 */
#ifndef KEMARI_REPLICATOR_RDMA_INT_H
#define KEMARI_REPLICATOR_RDMA_INT_H

#include <stddef.h>
#include <stdint.h>

#define KM_RREC_MAGIC 0x524bu /* "KR" */
#define KM_RREC_HDR 24u
#define KM_RREC_PAGE_DATA 0x1u /* DATA key: page data sent inline */

enum km_rrec_type {
	KM_RREC_DATA = 1,
	KM_RREC_PLACED = 2,
	KM_RREC_REGION = 3,
	KM_RREC_CREDIT = 4,
};

struct km__rrec {
	uint16_t type;
	uint32_t key;
	uint64_t off;
	uint64_t len;
};

/** km__rrec_put() - encode @r's header at @p; returns KM_RREC_HDR. */
size_t km__rrec_put(uint8_t *p, const struct km__rrec *r);

/**
 * km__rrec_next() - decode and validate the record at @pos of a received
 * message of @msg_len bytes.
 * @region_len: size of this side's target region (0: none registered).
 * @next: set to the offset of the record after it.
 *
 * Checks the magic and type, that a DATA record's bytes lie inside the
 * message, and that a PLACED record lies inside the target region.
 * Return: 0, -EBADMSG (bad magic or truncated header), -ENOMSG (unknown
 * type), -EMSGSIZE (DATA beyond the message), -ERANGE (PLACED outside
 * the region or no region).
 */
int km__rrec_next(const uint8_t *msg, size_t msg_len, size_t pos,
		  uint64_t region_len, struct km__rrec *r, size_t *next);

#endif
