// SPDX-License-Identifier: GPL-2.0
/*
 * Output formats of kemarictl. The words are DRBD's so that an operator
 * who knows `drbdadm status` and `drbdsetup events2` reads these at once.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "kemarictl_fmt.h"

static const char *yesno(unsigned int v)
{
	return v ? "yes" : "no";
}

/*
 * "kernel-gate:present" plus the detail in parentheses, if any, on its own
 * line: the value stays one word for scripts, the detail stays readable.
 */
static void kernel_gate_line(FILE *f, const char *gate)
{
	size_t word = strcspn(gate, " ");

	if (!gate[0])
		return;
	fprintf(f, "kernel-gate:%.*s%s%s\n", (int)word, gate,
		gate[word] ? " " : "", gate + word + (gate[word] ? 1 : 0));
}

void kc_print_status(FILE *f, const struct km_ipc_status *st)
{
	uint32_t i;

	fprintf(f,
		"node:%s connected:%s quorate:%s members:%u group-members:%u\n",
		st->node.name, yesno(st->node.connected),
		yesno(st->node.quorate), st->node.members,
		st->node.group_members);
	kernel_gate_line(f, st->node.kernel_gate);
	for (i = 0; i < st->n_vms; i++) {
		const struct km_ipc_vm *v = &st->vms[i];

		fprintf(f, "\n%s role:%s generation:%" PRIu64 " suspended:%s\n",
			v->name, km_role_name(v->role), v->generation,
			yesno(v->suspended));
		fprintf(f, "  replica:%s protected:%s\n",
			km_replica_name(v->replica), yesno(v->protected));
		fprintf(f, "  %s connection:%s role:%s\n", v->peer,
			km_conn_name(v->conn), km_role_name(v->peer_role));
		fprintf(f, "    replication:%s peer-replica:%s\n",
			km_repl_name(v->repl),
			km_replica_name(v->peer_replica));
		if (v->fence != KM_FENCE_NONE)
			fprintf(f, "  fencing:%s fence-exit:%d\n",
				km_fence_name(v->fence), v->fence_rc);
		if (v->pending)
			fprintf(f, "  pending:%s\n",
				km_backend_action_name(v->pending));
		if (v->reason[0])
			fprintf(f, "  reason:\"%s\"\n", v->reason);
	}
}

static struct json_object *vm_json(const struct km_ipc_vm *v)
{
	struct json_object *o = json_object_new_object();
	struct json_object *p = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "role",
			       json_object_new_string(km_role_name(v->role)));
	json_object_object_add(o, "generation",
			       json_object_new_int64((int64_t)v->generation));
	json_object_object_add(
		o, "replica",
		json_object_new_string(km_replica_name(v->replica)));
	json_object_object_add(o, "protected",
			       json_object_new_boolean(v->protected));
	json_object_object_add(o, "suspended",
			       json_object_new_boolean(v->suspended));
	json_object_object_add(o, "fencing",
			       json_object_new_string(km_fence_name(v->fence)));
	json_object_object_add(o, "fence-exit",
			       json_object_new_int(v->fence_rc));
	json_object_object_add(
		o, "pending",
		json_object_new_string(km_backend_action_name(v->pending)));
	json_object_object_add(
		o, "reason",
		v->reason[0] ? json_object_new_string(v->reason) : NULL);
	json_object_object_add(p, "node", json_object_new_string(v->peer));
	json_object_object_add(p, "present",
			       json_object_new_boolean(v->peer_present));
	json_object_object_add(p, "connection",
			       json_object_new_string(km_conn_name(v->conn)));
	json_object_object_add(
		p, "role", json_object_new_string(km_role_name(v->peer_role)));
	json_object_object_add(p, "replication",
			       json_object_new_string(km_repl_name(v->repl)));
	json_object_object_add(
		p, "replica",
		json_object_new_string(km_replica_name(v->peer_replica)));
	json_object_object_add(o, "peer", p);
	return o;
}

struct json_object *kc_status_json(const struct km_ipc_status *st)
{
	struct json_object *o = json_object_new_object();
	struct json_object *n = json_object_new_object();
	struct json_object *vms = json_object_new_array();
	uint32_t i;

	json_object_object_add(n, "name",
			       json_object_new_string(st->node.name));
	json_object_object_add(n, "connected",
			       json_object_new_boolean(st->node.connected));
	json_object_object_add(n, "quorate",
			       json_object_new_boolean(st->node.quorate));
	json_object_object_add(n, "members",
			       json_object_new_int((int32_t)st->node.members));
	json_object_object_add(
		n, "group-members",
		json_object_new_int((int32_t)st->node.group_members));
	if (st->node.kernel_gate[0]) {
		json_object_object_add(
			n, "kernel-gate",
			json_object_new_string_len(
				st->node.kernel_gate,
				(int)strcspn(st->node.kernel_gate, " ")));
		json_object_object_add(
			n, "kernel-gate-detail",
			json_object_new_string(st->node.kernel_gate));
	}
	json_object_object_add(o, "node", n);
	for (i = 0; i < st->n_vms; i++)
		json_object_array_add(vms, vm_json(&st->vms[i]));
	json_object_object_add(o, "vms", vms);
	return o;
}

/* ---- events ---- */

#define MAX_SEEN 256

static struct km_ipc_vm seen_vm[MAX_SEEN];
static size_t n_seen;
static struct km_ipc_node seen_node;
static bool node_seen;

struct line {
	char buf[1024];
	size_t len;
	bool any;
};

static void __attribute__((format(printf, 2, 3)))
add(struct line *l, const char *fmt, ...)
{
	va_list ap;

	if (l->len >= sizeof(l->buf))
		return;
	va_start(ap, fmt);
	l->len += (size_t)vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len,
				    fmt, ap);
	va_end(ap);
	if (l->len > sizeof(l->buf))
		l->len = sizeof(l->buf);
}

/* Add " key:value" when printing everything or when the value changed. */
#define FIELD(l, all, changed, key, fmt, val)           \
	do {                                            \
		if ((all) || (changed)) {               \
			add((l), " " key ":" fmt, val); \
			(l)->any |= (changed);          \
		}                                       \
	} while (0)

static void stamp(FILE *f, uint64_t usec, bool on)
{
	time_t t = (time_t)(usec / 1000000);
	char buf[64], zone[8];
	struct tm tm;

	if (!on)
		return;
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	fprintf(f, "%s.%06u%.3s:%s ", buf, (unsigned int)(usec % 1000000), zone,
		zone + 3);
}

static const char *kind_name(uint32_t k)
{
	return k == KM_EVENT_EXISTS  ? "exists" :
	       k == KM_EVENT_DESTROY ? "destroy" :
				       "change";
}

/* Like events2's, a destroy line names the object and nothing else. */
static void destroy_event(FILE *f, const struct km_ipc_event *ev, bool ts)
{
	stamp(f, ev->usec, ts);
	if (ev->object == KM_OBJ_NODE) {
		fprintf(f, "destroy node name:%s\n", ev->node.name);
		return;
	}
	fprintf(f, "destroy peer name:%s peer-node:%s\n", ev->vm.name,
		ev->vm.peer);
	stamp(f, ev->usec, ts);
	fprintf(f, "destroy vm name:%s\n", ev->vm.name);
}

static void node_event(FILE *f, const struct km_ipc_event *ev, bool ts)
{
	const struct km_ipc_node *n = &ev->node, *o = &seen_node;
	bool all = ev->kind != KM_EVENT_CHANGE || !node_seen;
	struct line l = { .len = 0 };

	add(&l, "%s node name:%s", kind_name(ev->kind), n->name);
	FIELD(&l, all, n->connected != o->connected, "connected", "%s",
	      yesno(n->connected));
	FIELD(&l, all, n->quorate != o->quorate, "quorate", "%s",
	      yesno(n->quorate));
	FIELD(&l, all, n->members != o->members, "members", "%u", n->members);
	FIELD(&l, all, n->group_members != o->group_members, "group-members",
	      "%u", n->group_members);
	seen_node = *n;
	node_seen = true;
	if (all || l.any) {
		stamp(f, ev->usec, ts);
		fprintf(f, "%s\n", l.buf);
	}
}

static struct km_ipc_vm *vm_seen(const char *name, bool *fresh)
{
	size_t i;

	*fresh = false;
	for (i = 0; i < n_seen; i++)
		if (!strcmp(seen_vm[i].name, name))
			return &seen_vm[i];
	*fresh = true;
	if (n_seen == MAX_SEEN)
		return &seen_vm[MAX_SEEN - 1];
	return &seen_vm[n_seen++];
}

static void vm_line(struct line *l, const char *kind, const struct km_ipc_vm *v,
		    const struct km_ipc_vm *o, bool all)
{
	add(l, "%s vm name:%s", kind, v->name);
	FIELD(l, all, v->role != o->role, "role", "%s", km_role_name(v->role));
	FIELD(l, all, v->generation != o->generation, "generation", "%" PRIu64,
	      v->generation);
	FIELD(l, all, v->replica != o->replica, "replica", "%s",
	      km_replica_name(v->replica));
	FIELD(l, all, v->protected != o->protected, "protected", "%s",
	      yesno(v->protected));
	FIELD(l, all, v->suspended != o->suspended, "suspended", "%s",
	      yesno(v->suspended));
	FIELD(l, all, v->fence != o->fence, "fencing", "%s",
	      km_fence_name(v->fence));
	FIELD(l, all, v->pending != o->pending, "pending", "%s",
	      km_backend_action_name(v->pending));
	FIELD(l, all && v->reason[0], strcmp(v->reason, o->reason) != 0,
	      "reason", "\"%s\"", v->reason);
}

static void peer_line(struct line *l, const char *kind,
		      const struct km_ipc_vm *v, const struct km_ipc_vm *o,
		      bool all)
{
	add(l, "%s peer name:%s peer-node:%s", kind, v->name, v->peer);
	FIELD(l, all, v->peer_present != o->peer_present, "present", "%s",
	      yesno(v->peer_present));
	FIELD(l, all, v->conn != o->conn, "connection", "%s",
	      km_conn_name(v->conn));
	FIELD(l, all, v->peer_role != o->peer_role, "role", "%s",
	      km_role_name(v->peer_role));
	FIELD(l, all, v->repl != o->repl, "replication", "%s",
	      km_repl_name(v->repl));
	FIELD(l, all, v->peer_replica != o->peer_replica, "peer-replica", "%s",
	      km_replica_name(v->peer_replica));
}

static void vm_event(FILE *f, const struct km_ipc_event *ev, bool ts)
{
	const struct km_ipc_vm *v = &ev->vm;
	bool fresh, all;
	struct km_ipc_vm *o = vm_seen(v->name, &fresh);
	struct line a = { .len = 0 }, b = { .len = 0 };
	const char *kind = kind_name(ev->kind);

	all = ev->kind != KM_EVENT_CHANGE || fresh;
	vm_line(&a, kind, v, o, all);
	peer_line(&b, kind, v, o, all);
	*o = *v;
	if (all || a.any) {
		stamp(f, ev->usec, ts);
		fprintf(f, "%s\n", a.buf);
	}
	if (all || b.any) {
		stamp(f, ev->usec, ts);
		fprintf(f, "%s\n", b.buf);
	}
}

bool kc_print_event(FILE *f, const struct km_ipc_event *ev, bool timestamps)
{
	if (ev->kind == KM_EVENT_END_OF_DUMP) {
		stamp(f, ev->usec, timestamps);
		fprintf(f, "exists -\n");
		fflush(f);
		return false;
	}
	if (ev->kind == KM_EVENT_DESTROY)
		destroy_event(f, ev, timestamps);
	else if (ev->object == KM_OBJ_NODE)
		node_event(f, ev, timestamps);
	else
		vm_event(f, ev, timestamps);
	fflush(f);
	return true;
}
