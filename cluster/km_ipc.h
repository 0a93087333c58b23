/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The control IPC between kemarictl and kemarid (libqb IPC, service
 * "kemari"). Requests and responses are fixed-layout structs behind libqb's
 * own headers; both ends are built from this one file, so the layout is
 * checked by the size field only.
 */
#ifndef KM_IPC_H
#define KM_IPC_H

#include <qb/qbipc_common.h>
#include <stdint.h>

#include "km_vmsm.h"

#define KM_IPC_NAME "kemari"
#define KM_IPC_MAX_MSG (256 * 1024)
#define KM_IPC_MAX_VMS 256

enum km_ipc_id {
	KM_IPC_STATUS = QB_IPC_MSG_USER_START,
	KM_IPC_SUBSCRIBE,
	KM_IPC_COMMAND,
	KM_IPC_EVENT, /* server to client, on the event channel */
	KM_IPC_RELOAD, /* re-read the configuration (reply: km_ipc_reply) */
	KM_IPC__END,
};

enum km_ipc_cmd {
	KM_CMD_PROTECT,
	KM_CMD_UNPROTECT,
	KM_CMD_SWITCHOVER,
	KM_CMD_REPROTECT,
	KM_CMD_DRILL,
	KM_CMD__COUNT,
};

struct km_ipc_request {
	struct qb_ipc_request_header hdr;
	uint32_t cmd; /* KM_IPC_COMMAND: enum km_ipc_cmd */
	char vm[KM_VMSM_NAME_MAX]; /* "" for all (status) */
	char peer[KM_VMSM_NAME_MAX]; /* protect --peer */
} __attribute__((aligned(8)));

/* One VM as kemarictl shows it. */
struct km_ipc_vm {
	char name[KM_VMSM_NAME_MAX];
	char peer[KM_VMSM_NAME_MAX];
	uint64_t generation;
	uint8_t role, replica, conn, repl;
	uint8_t peer_role, peer_replica, peer_repl, fence;
	uint8_t protected, suspended, pending, peer_present;
	int32_t fence_rc;
	char reason[KM_VMSM_REASON_MAX];
} __attribute__((aligned(8)));

struct km_ipc_node {
	char name[KM_VMSM_NAME_MAX];
	uint32_t connected; /* to corosync */
	uint32_t quorate;
	uint32_t members; /* corosync members */
	uint32_t group_members; /* kemarid instances in the CPG group */
	/* km_gate_describe() without its prefix: "present (...)", "absent"
	 * or "unusable (...)"; filled for status replies only. */
	char kernel_gate[96];
} __attribute__((aligned(8)));

struct km_ipc_status {
	struct qb_ipc_response_header hdr;
	struct km_ipc_node node;
	uint32_t n_vms;
	uint32_t pad;
	struct km_ipc_vm vms[];
} __attribute__((aligned(8)));

struct km_ipc_reply {
	struct qb_ipc_response_header hdr; /* hdr.error: 0 or -errno */
	char msg[256];
} __attribute__((aligned(8)));

enum km_ipc_event_kind {
	KM_EVENT_EXISTS,
	KM_EVENT_CHANGE,
	KM_EVENT_DESTROY,
	KM_EVENT_END_OF_DUMP, /* "exists -": the initial dump is complete */
};

enum km_ipc_object {
	KM_OBJ_NODE,
	KM_OBJ_VM,
};

struct km_ipc_event {
	struct qb_ipc_response_header hdr;
	uint32_t kind;
	uint32_t object;
	uint64_t usec; /* CLOCK_REALTIME of the change */
	struct km_ipc_node node;
	struct km_ipc_vm vm;
} __attribute__((aligned(8)));

#endif /* KM_IPC_H */
