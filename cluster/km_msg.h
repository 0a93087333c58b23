/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Messages between kemarid daemons, carried by corosync CPG (group
 * "kemari"). One fixed-size little-endian frame per message: a header
 * (magic, version, type, length, xxh64 checksum) and the VM record. CPG
 * delivers in total order to every member, so there is no ack here: a
 * request is answered by the state the receiver broadcasts afterwards.
 */
#ifndef KM_MSG_H
#define KM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "km_vmsm.h"

#define KM_MSG_MAGIC 0x4b4d5247u /* "KMRG" */
#define KM_MSG_VERSION 1

enum km_msg_type {
	KM_WIRE_STATE = 1, /* our state for one VM */
	KM_WIRE_PROTECT, /* the peer-directed requests of km_peer_msg */
	KM_WIRE_UNPROTECT,
	KM_WIRE_HANDOVER,
	KM_WIRE_FAULT,
	KM_WIRE__MAX = KM_WIRE_FAULT,
};

struct km_wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t length; /* whole frame, header included */
	uint32_t reserved;
	uint64_t checksum; /* xxh64 of the frame with this field 0 */
} __attribute__((packed));

struct km_wire_vm {
	struct km_wire_hdr hdr;
	char from[KM_VMSM_NAME_MAX]; /* sending node */
	char to[KM_VMSM_NAME_MAX]; /* addressed node ("" for state) */
	char vm[KM_VMSM_NAME_MAX];
	uint64_t generation;
	uint8_t role, replica, conn, repl;
	uint8_t protected, suspended, pad[2];
} __attribute__((packed));

/* The decoded, host-order form. */
struct km_msg {
	enum km_msg_type type;
	char from[KM_VMSM_NAME_MAX];
	char to[KM_VMSM_NAME_MAX];
	char vm[KM_VMSM_NAME_MAX];
	uint64_t generation;
	enum km_role role;
	enum km_replica replica;
	enum km_conn conn;
	enum km_repl repl;
	bool protected;
	bool suspended;
};

/* km_msg_encode() - frame @m into @w (checksum included). 0 or -EINVAL. */
int km_msg_encode(const struct km_msg *m, struct km_wire_vm *w);

/*
 * km_msg_decode() - validate @len bytes at @buf (length, magic, version,
 * type, checksum, NUL-terminated names, enum ranges) and decode them into
 * @m. Returns 0, -EPROTO (malformed), -EBADMSG (checksum) or -ENOTSUP
 * (another version).
 */
int km_msg_decode(const void *buf, size_t len, struct km_msg *m);

#endif /* KM_MSG_H */
