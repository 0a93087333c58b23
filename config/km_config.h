/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kemari configuration: one main file plus one file per protected VM.
 *
 * Both files are libconfig syntax and are identical on every node (the DRBD
 * layout): a VM file names the two nodes that may run the VM in an `on`
 * list, one block per node. Every error carries the file and line of the
 * offending setting so that an operator can fix it without guessing.
 */
#ifndef KM_CONFIG_H
#define KM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KM_NAME_MAX 64 /* VM and node names, NUL included */
#define KM_ADDR_MAX 64 /* textual IPv4/IPv6 address, NUL included */
#define KM_CONFIG_DEFAULT "/etc/kemari/kemari.conf"

/* The first problem found while loading, as "file:line: message". */
struct km_config_error {
	char file[PATH_MAX];
	int line; /* 0 when the problem is not tied to a line */
	char msg[256];
};

enum km_transport {
	KM_TRANSPORT_TCP,
	KM_TRANSPORT_RDMA,
};

/* One node block of a VM file: `{ node = "alpha"; address = ...; }`. */
struct km_vm_node {
	char name[KM_NAME_MAX]; /* corosync node name (nodelist name) */
	char address[KM_ADDR_MAX];
	uint16_t port;
};

struct km_vm_config {
	char file[PATH_MAX];
	int line; /* line of the `vm` group */
	char name[KM_NAME_MAX];
	enum km_transport transport;
	uint32_t memory_mb;
	uint32_t vcpus;
	struct km_vm_node nodes[2];
};

struct km_config {
	char file[PATH_MAX];
	char group[KM_NAME_MAX]; /* CPG group name */
	char vm_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char fence_handler[PATH_MAX]; /* empty: no fencing configured */
	uint32_t fence_delay_ms;
	uint32_t fence_timeout_ms;
	uint32_t fence_retries; /* further runs after a failed handler */
	uint32_t fence_retry_ms; /* wait before each of them */
	char backend[KM_NAME_MAX]; /* backend type, "command" */
	char backend_command[PATH_MAX];
	char ipc_group[KM_NAME_MAX];
	char blackbox_dir[PATH_MAX];
	bool debug;
	size_t n_vms;
	struct km_vm_config *vms;
};

/*
 * km_config_load() - parse the main file at @path and every `*.conf` file in
 * its `vm_dir`, in name order. On success *@out holds the result (free it
 * with km_config_destroy()) and 0 is returned. On failure -EINVAL (bad
 * content) or -errno (unreadable file) is returned and @err describes the
 * first problem found.
 */
int km_config_load(const char *path, struct km_config **out,
		   struct km_config_error *err);

/*
 * km_config_load_vm() - parse one VM file into @vm. Returns 0, or -EINVAL /
 * -errno with @err filled in. Used by km_config_load() and by tests.
 */
int km_config_load_vm(const char *path, struct km_vm_config *vm,
		      struct km_config_error *err);

/*
 * km_config_compare() - whether kemarid can switch from @old to @new while it
 * runs. Fencing (handler, delays, timeout, retries), backend.command,
 * ipc.group, log.debug and log.blackbox_dir take effect at once; anything
 * else (cluster.group, state_dir, backend.type, and any VM added, removed
 * or changed) needs a restart. Returns 0 with @msg listing the settings that
 * changed ("no changes" if none), or -EBUSY with @msg naming the first
 * setting that needs a restart.
 */
int km_config_compare(const struct km_config *old, const struct km_config *new,
		      char *msg, size_t len);

/* km_config_destroy() - free a configuration; NULL is allowed. */
void km_config_destroy(struct km_config *cfg);

/* km_config_find_vm() - the VM named @name, or NULL (errno ENOENT). */
const struct km_vm_config *km_config_find_vm(const struct km_config *cfg,
					     const char *name);

/*
 * km_vm_config_node() - the block of node @node in @vm, or NULL when the VM
 * is not configured on that node.
 */
const struct km_vm_node *km_vm_config_node(const struct km_vm_config *vm,
					   const char *node);

/* km_vm_config_peer() - the other node's block, or NULL if @node is absent. */
const struct km_vm_node *km_vm_config_peer(const struct km_vm_config *vm,
					   const char *node);

/* km_config_error_format() - "file:line: message" into @buf, returns @buf. */
const char *km_config_error_format(const struct km_config_error *err, char *buf,
				   size_t len);

#endif /* KM_CONFIG_H */
