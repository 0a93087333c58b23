// SPDX-License-Identifier: GPL-2.0
/*
 * The "command" backend: every VM action runs the configured program as
 *
 *     COMMAND ACTION VM   (ACTION: start-replica promote demote stop probe)
 *
 * with KEMARI_VM, KEMARI_NODE, KEMARI_PEER, KEMARI_GENERATION and
 * KEMARI_ACTION in its environment. Exit 0 is success; for `probe` (asked
 * once when kemarid restarts on a node that was Primary) 0 means the VM
 * runs here and 7 that it does not, as an OCF monitor. This stands between
 * kemarid's decisions and whatever runs the VM until kemari-vmm is wired in
 * by its own backend; tests and the OCF agent use it as is.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kemarid_int.h"

#define BACKEND_TIMEOUT_MS (10 * 60 * 1000)
/* A hung probe must not keep a restored Primary frozen for ten minutes. */
#define PROBE_TIMEOUT_MS (30 * 1000)

/* The state machine keeps at most one backend action per VM in flight. */
static void command_done(void *arg, int code)
{
	struct kd_vm *vm = arg;

	vm->backend_child = NULL;
	kd_vm_backend_done(vm, vm->backend_action, code);
}

static int command_run(struct kd_vm *vm, enum km_backend_action action)
{
	struct kd *kd = vm->kd;
	char e_vm[96], e_node[96], e_peer[96], e_gen[64], e_act[64];
	char *env[] = { e_vm, e_node, e_peer, e_gen, e_act, NULL };
	const char *name = km_backend_action_name(action);
	char *argv[] = { kd->cfg->backend_command, (char *)name,
			 (char *)vm->cfg->name, NULL };

	if (vm->backend_child)
		return -EBUSY;
	vm->backend_action = action;
	snprintf(e_vm, sizeof(e_vm), "KEMARI_VM=%s", vm->cfg->name);
	snprintf(e_node, sizeof(e_node), "KEMARI_NODE=%s", kd->node);
	snprintf(e_peer, sizeof(e_peer), "KEMARI_PEER=%s", vm->peer);
	snprintf(e_gen, sizeof(e_gen), "KEMARI_GENERATION=%" PRIu64,
		 vm->sm.generation);
	snprintf(e_act, sizeof(e_act), "KEMARI_ACTION=%s", name);
	return kd_child_spawn(kd->loop, argv, env,
			      action == KM_BACKEND_PROBE ? PROBE_TIMEOUT_MS :
							   BACKEND_TIMEOUT_MS,
			      command_done, vm, &vm->backend_child);
}

static void command_cancel(struct kd_vm *vm)
{
	kd_child_abandon(vm->backend_child);
	vm->backend_child = NULL;
}

static int command_init(struct kd *kd)
{
	if (access(kd->cfg->backend_command, X_OK))
		qb_log(LOG_WARNING,
		       "backend command %s is not executable (%s): VM actions will fail",
		       kd->cfg->backend_command, strerror(errno));
	return 0;
}

static void command_exit(struct kd *kd)
{
	(void)kd;
}

const struct kd_backend_ops kd_backend_command_ops = {
	.name = "command",
	.init = command_init,
	.run = command_run,
	.cancel = command_cancel,
	.exit = command_exit,
};
