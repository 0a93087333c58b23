// SPDX-License-Identifier: GPL-2.0
/*
 * Configuration loader. libconfig does the syntax; this file does the
 * meaning: every group is checked against a table of known settings so that
 * a misspelt key is an error (with its line) rather than a silently ignored
 * default.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "km_config.h"

struct key {
	const char *name;
	int type; /* CONFIG_TYPE_*; INT also accepts INT64 */
	bool required;
};

static const struct key main_keys[] = {
	{ "cluster", CONFIG_TYPE_GROUP, false },
	{ "vm_dir", CONFIG_TYPE_STRING, false },
	{ "state_dir", CONFIG_TYPE_STRING, false },
	{ "fencing", CONFIG_TYPE_GROUP, false },
	{ "backend", CONFIG_TYPE_GROUP, false },
	{ "ipc", CONFIG_TYPE_GROUP, false },
	{ "log", CONFIG_TYPE_GROUP, false },
	{ NULL, 0, false },
};

static const struct key cluster_keys[] = {
	{ "group", CONFIG_TYPE_STRING, false },
	{ NULL, 0, false },
};

static const struct key fencing_keys[] = {
	{ "handler", CONFIG_TYPE_STRING, true },
	{ "delay_ms", CONFIG_TYPE_INT, false },
	{ "timeout_ms", CONFIG_TYPE_INT, false },
	{ "retries", CONFIG_TYPE_INT, false },
	{ "retry_delay_ms", CONFIG_TYPE_INT, false },
	{ NULL, 0, false },
};

static const struct key backend_keys[] = {
	{ "type", CONFIG_TYPE_STRING, true },
	{ "command", CONFIG_TYPE_STRING, false },
	{ NULL, 0, false },
};

static const struct key ipc_keys[] = {
	{ "group", CONFIG_TYPE_STRING, false },
	{ NULL, 0, false },
};

static const struct key log_keys[] = {
	{ "blackbox_dir", CONFIG_TYPE_STRING, false },
	{ "debug", CONFIG_TYPE_BOOL, false },
	{ NULL, 0, false },
};

static const struct key vm_file_keys[] = {
	{ "vm", CONFIG_TYPE_GROUP, true },
	{ NULL, 0, false },
};

static const struct key vm_keys[] = {
	{ "name", CONFIG_TYPE_STRING, true },
	{ "transport", CONFIG_TYPE_STRING, false },
	{ "memory_mb", CONFIG_TYPE_INT, false },
	{ "vcpus", CONFIG_TYPE_INT, false },
	{ "on", CONFIG_TYPE_LIST, true },
	{ NULL, 0, false },
};

static const struct key node_keys[] = {
	{ "node", CONFIG_TYPE_STRING, true },
	{ "address", CONFIG_TYPE_STRING, true },
	{ "port", CONFIG_TYPE_INT, false },
	{ NULL, 0, false },
};

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group { ... }";
	case CONFIG_TYPE_LIST:
		return "a list ( ... )";
	case CONFIG_TYPE_STRING:
		return "a string in double quotes";
	case CONFIG_TYPE_INT:
		return "an integer";
	case CONFIG_TYPE_BOOL:
		return "true or false";
	default:
		return "another type";
	}
}

static void set_error(struct km_config_error *err, const char *file, int line,
		      const char *fmt, va_list ap)
{
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "?");
	err->line = line;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

/* Record a problem at setting @s (its own file and line); returns -EINVAL. */
static int __attribute__((format(printf, 4, 5)))
fail_at(struct km_config_error *err, const config_setting_t *s,
	const char *file, const char *fmt, ...)
{
	const char *sfile = s ? config_setting_source_file(s) : NULL;
	va_list ap;

	va_start(ap, fmt);
	set_error(err, sfile ? sfile : file,
		  s ? config_setting_source_line(s) : 0, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *where(const config_setting_t *grp)
{
	const char *n = config_setting_name(grp);

	return n ? n : "the top level";
}

static const struct key *find_key(const struct key *keys, const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

static bool type_ok(int want, int have)
{
	if (want == CONFIG_TYPE_INT)
		return have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64;
	return want == have;
}

/* Every member of @grp must be a known key of the right type. */
static int check_members(const config_setting_t *grp, const struct key *keys,
			 const char *file, struct km_config_error *err)
{
	int i, n = config_setting_length(grp);

	for (i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(grp, i);
		const char *name = config_setting_name(m);
		const struct key *k = find_key(keys, name);

		if (!k)
			return fail_at(err, m, file,
				       "unknown setting '%s' in %s", name,
				       where(grp));
		if (!type_ok(k->type, config_setting_type(m)))
			return fail_at(err, m, file, "'%s' must be %s", name,
				       type_name(k->type));
	}
	for (; keys->name; keys++)
		if (keys->required &&
		    !config_setting_get_member(grp, keys->name))
			return fail_at(err, grp, file,
				       "%s lacks the required setting '%s'",
				       where(grp), keys->name);
	return 0;
}

static int get_string(const config_setting_t *grp, const char *name, char *dst,
		      size_t len, const char *file, struct km_config_error *err)
{
	config_setting_t *s = config_setting_get_member(grp, name);
	const char *v;

	if (!s)
		return 0;
	v = config_setting_get_string(s);
	if (!*v)
		return fail_at(err, s, file, "'%s' must not be empty", name);
	if (strlen(v) >= len)
		return fail_at(err, s, file,
			       "'%s' is longer than %zu characters", name,
			       len - 1);
	strcpy(dst, v);
	return 0;
}

static int get_u32(const config_setting_t *grp, const char *name, long long min,
		   long long max, uint32_t *dst, const char *file,
		   struct km_config_error *err)
{
	config_setting_t *s = config_setting_get_member(grp, name);
	long long v;

	if (!s)
		return 0;
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return fail_at(err, s, file,
			       "'%s' is %lld, outside the range %lld..%lld",
			       name, v, min, max);
	*dst = (uint32_t)v;
	return 0;
}

static int get_abs_path(const config_setting_t *grp, const char *name,
			char *dst, size_t len, const char *file,
			struct km_config_error *err)
{
	int r = get_string(grp, name, dst, len, file, err);

	if (r)
		return r;
	if (dst[0] && dst[0] != '/')
		return fail_at(err, config_setting_get_member(grp, name), file,
			       "'%s' must be an absolute path, not '%s'", name,
			       dst);
	return 0;
}

/* Names go into logs, file names and wire messages: keep them tame. */
static bool name_valid(const char *s)
{
	if (!isalnum((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static int get_name(const config_setting_t *grp, const char *name, char *dst,
		    const char *file, struct km_config_error *err)
{
	int r = get_string(grp, name, dst, KM_NAME_MAX, file, err);

	if (r)
		return r;
	if (!name_valid(dst))
		return fail_at(
			err, config_setting_get_member(grp, name), file,
			"'%s' is '%s': use letters, digits, '_', '.' and '-', starting with a letter or digit",
			name, dst);
	return 0;
}

static int read_file(config_t *cf, const char *path,
		     struct km_config_error *err)
{
	FILE *f = fopen(path, "r");
	char dir[PATH_MAX];
	int r;

	if (!f) {
		r = -errno;
		snprintf(err->file, sizeof(err->file), "%s", path);
		err->line = 0;
		snprintf(err->msg, sizeof(err->msg), "cannot read: %s",
			 strerror(-r));
		return r;
	}
	fclose(f);
	/* @include "x" is relative to the including file's directory. */
	snprintf(dir, sizeof(dir), "%s", path);
	config_set_include_dir(cf, dirname(dir));
	if (config_read_file(cf, path) == CONFIG_TRUE)
		return 0;
	snprintf(err->file, sizeof(err->file), "%s",
		 config_error_file(cf) ? config_error_file(cf) : path);
	err->line = config_error_line(cf);
	snprintf(err->msg, sizeof(err->msg), "syntax error: %s",
		 config_error_text(cf));
	return -EINVAL;
}

static int parse_node(const config_setting_t *s, struct km_vm_node *n,
		      const char *file, struct km_config_error *err)
{
	unsigned char buf[sizeof(struct in6_addr)];
	uint32_t port = 7790;
	int r;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return fail_at(
			err, s, file,
			"each element of 'on' must be a group { node = ...; address = ...; }");
	r = check_members(s, node_keys, file, err);
	r = r ?: get_name(s, "node", n->name, file, err);
	r = r	  ?:
		    get_string(s, "address", n->address, sizeof(n->address),
			       file, err);
	r = r ?: get_u32(s, "port", 1, 65535, &port, file, err);
	if (r)
		return r;
	if (inet_pton(AF_INET, n->address, buf) != 1 &&
	    inet_pton(AF_INET6, n->address, buf) != 1)
		return fail_at(err, config_setting_get_member(s, "address"),
			       file,
			       "'address' is '%s', not an IPv4 or IPv6 address",
			       n->address);
	n->port = (uint16_t)port;
	return 0;
}

static int parse_nodes(const config_setting_t *on, struct km_vm_config *vm,
		       const char *file, struct km_config_error *err)
{
	int i, r;

	if (config_setting_length(on) != 2)
		return fail_at(
			err, on, file,
			"'on' lists %d node(s): a protected VM needs exactly 2, one per node",
			config_setting_length(on));
	for (i = 0; i < 2; i++) {
		r = parse_node(config_setting_get_elem(on, i), &vm->nodes[i],
			       file, err);
		if (r)
			return r;
	}
	if (!strcmp(vm->nodes[0].name, vm->nodes[1].name))
		return fail_at(err, config_setting_get_elem(on, 1), file,
			       "node '%s' is listed twice in 'on'",
			       vm->nodes[1].name);
	return 0;
}

static int parse_transport(const config_setting_t *grp, struct km_vm_config *vm,
			   const char *file, struct km_config_error *err)
{
	config_setting_t *s = config_setting_get_member(grp, "transport");
	const char *v;

	vm->transport = KM_TRANSPORT_TCP;
	if (!s)
		return 0;
	v = config_setting_get_string(s);
	if (!strcmp(v, "tcp"))
		return 0;
	if (!strcmp(v, "rdma")) {
		vm->transport = KM_TRANSPORT_RDMA;
		return 0;
	}
	return fail_at(err, s, file,
		       "'transport' is '%s': use \"tcp\" or \"rdma\"", v);
}

static int parse_vm(const config_t *cf, struct km_vm_config *vm,
		    const char *file, struct km_config_error *err)
{
	config_setting_t *root = config_root_setting(cf);
	config_setting_t *grp;
	int r;

	r = check_members(root, vm_file_keys, file, err);
	if (r)
		return r;
	grp = config_setting_get_member(root, "vm");
	vm->line = config_setting_source_line(grp);
	vm->memory_mb = 512;
	vm->vcpus = 1;
	r = check_members(grp, vm_keys, file, err);
	r = r ?: get_name(grp, "name", vm->name, file, err);
	r = r ?: parse_transport(grp, vm, file, err);
	r = r	  ?:
		    get_u32(grp, "memory_mb", 16, 1 << 20, &vm->memory_mb, file,
			    err);
	r = r ?: get_u32(grp, "vcpus", 1, 64, &vm->vcpus, file, err);
	r = r	  ?:
		    parse_nodes(config_setting_get_member(grp, "on"), vm, file,
				err);
	return r;
}

int km_config_load_vm(const char *path, struct km_vm_config *vm,
		      struct km_config_error *err)
{
	config_t cf;
	int r;

	memset(vm, 0, sizeof(*vm));
	snprintf(vm->file, sizeof(vm->file), "%s", path);
	config_init(&cf);
	r = read_file(&cf, path, err);
	r = r ?: parse_vm(&cf, vm, path, err);
	config_destroy(&cf);
	return r;
}

static int parse_section(const config_setting_t *root, const char *name,
			 const struct key *keys, config_setting_t **out,
			 const char *file, struct km_config_error *err)
{
	*out = config_setting_get_member(root, name);
	return *out ? check_members(*out, keys, file, err) : 0;
}

static int parse_fencing(const config_setting_t *root, struct km_config *cfg,
			 struct km_config_error *err)
{
	config_setting_t *g;
	int r = parse_section(root, "fencing", fencing_keys, &g, cfg->file,
			      err);

	if (r || !g)
		return r;
	r = get_abs_path(g, "handler", cfg->fence_handler,
			 sizeof(cfg->fence_handler), cfg->file, err);
	r = r	  ?:
		    get_u32(g, "delay_ms", 0, 600000, &cfg->fence_delay_ms,
			    cfg->file, err);
	r = r	  ?:
		    get_u32(g, "timeout_ms", 100, 3600000,
			    &cfg->fence_timeout_ms, cfg->file, err);
	r = r	  ?:
		    get_u32(g, "retries", 0, 10, &cfg->fence_retries, cfg->file,
			    err);
	r = r	  ?:
		    get_u32(g, "retry_delay_ms", 0, 600000,
			    &cfg->fence_retry_ms, cfg->file, err);
	return r;
}

static int parse_backend(const config_setting_t *root, struct km_config *cfg,
			 struct km_config_error *err)
{
	config_setting_t *g;
	int r = parse_section(root, "backend", backend_keys, &g, cfg->file,
			      err);

	if (r || !g)
		return r;
	r = get_name(g, "type", cfg->backend, cfg->file, err);
	r = r	  ?:
		    get_abs_path(g, "command", cfg->backend_command,
				 sizeof(cfg->backend_command), cfg->file, err);
	if (r)
		return r;
	if (strcmp(cfg->backend, "command"))
		return fail_at(err, config_setting_get_member(g, "type"),
			       cfg->file,
			       "backend type '%s' is unknown: use \"command\"",
			       cfg->backend);
	if (!cfg->backend_command[0])
		return fail_at(
			err, g, cfg->file,
			"backend type \"command\" needs 'command', the program run for each VM action");
	return 0;
}

static int parse_misc(const config_setting_t *root, struct km_config *cfg,
		      struct km_config_error *err)
{
	config_setting_t *c, *i, *l;
	int r, debug = 0;

	r = parse_section(root, "cluster", cluster_keys, &c, cfg->file, err);
	r = r ?: parse_section(root, "ipc", ipc_keys, &i, cfg->file, err);
	r = r ?: parse_section(root, "log", log_keys, &l, cfg->file, err);
	if (r)
		return r;
	if (c)
		r = get_name(c, "group", cfg->group, cfg->file, err);
	if (!r && i)
		r = get_name(i, "group", cfg->ipc_group, cfg->file, err);
	if (!r && l) {
		r = get_abs_path(l, "blackbox_dir", cfg->blackbox_dir,
				 sizeof(cfg->blackbox_dir), cfg->file, err);
		if (config_setting_lookup_bool(l, "debug", &debug))
			cfg->debug = debug;
	}
	r = r	  ?:
		    get_string(root, "state_dir", cfg->state_dir,
			       sizeof(cfg->state_dir), cfg->file, err);
	return r;
}

static void set_defaults(struct km_config *cfg)
{
	strcpy(cfg->group, "kemari");
	strcpy(cfg->state_dir, "/var/lib/kemari");
	strcpy(cfg->ipc_group, "haclient");
	strcpy(cfg->backend, "command");
	strcpy(cfg->backend_command, "/usr/lib/kemari/vm-backend");
	cfg->fence_timeout_ms = 60000;
	cfg->fence_retries = 2;
	cfg->fence_retry_ms = 1000;
}

/* A relative vm_dir is taken relative to the main file's directory. */
static int resolve_vm_dir(const config_setting_t *root, struct km_config *cfg,
			  bool *explicit, struct km_config_error *err)
{
	char rel[PATH_MAX] = "vms.d", base[PATH_MAX];
	int r;

	r = get_string(root, "vm_dir", rel, sizeof(rel), cfg->file, err);
	if (r)
		return r;
	*explicit = config_setting_get_member(root, "vm_dir") != NULL;
	if (rel[0] == '/') {
		strcpy(cfg->vm_dir, rel);
		return 0;
	}
	snprintf(base, sizeof(base), "%s", cfg->file);
	if (snprintf(cfg->vm_dir, sizeof(cfg->vm_dir), "%s/%s", dirname(base),
		     rel) >= (int)sizeof(cfg->vm_dir))
		return fail_at(err, config_setting_get_member(root, "vm_dir"),
			       cfg->file, "'vm_dir' is too long");
	return 0;
}

static int conf_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 &&
	       !strcmp(d->d_name + n - 5, ".conf");
}

static int check_unique(const struct km_config *cfg,
			const struct km_vm_config *vm,
			struct km_config_error *err)
{
	size_t i;

	for (i = 0; i < cfg->n_vms; i++) {
		const struct km_vm_config *o = &cfg->vms[i];

		if (strcmp(o->name, vm->name))
			continue;
		snprintf(err->file, sizeof(err->file), "%s", vm->file);
		err->line = vm->line;
		snprintf(err->msg, sizeof(err->msg),
			 "VM '%s' is already defined in %.120s:%d", vm->name,
			 o->file, o->line);
		return -EINVAL;
	}
	return 0;
}

static int load_vm_entry(struct km_config *cfg, const char *name,
			 struct km_config_error *err)
{
	struct km_vm_config *vms, *vm;
	char path[PATH_MAX];
	int r;

	if (snprintf(path, sizeof(path), "%s/%s", cfg->vm_dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	vms = realloc(cfg->vms, (cfg->n_vms + 1) * sizeof(*vms));
	if (!vms)
		return -ENOMEM;
	cfg->vms = vms;
	vm = &vms[cfg->n_vms];
	r = km_config_load_vm(path, vm, err);
	r = r ?: check_unique(cfg, vm, err);
	if (!r)
		cfg->n_vms++;
	return r;
}

static int load_vm_dir(const config_setting_t *root, struct km_config *cfg,
		       struct km_config_error *err)
{
	struct dirent **list;
	bool explicit;
	int i, n, r;

	r = resolve_vm_dir(root, cfg, &explicit, err);
	if (r)
		return r;
	n = scandir(cfg->vm_dir, &list, conf_filter, alphasort);
	if (n < 0) {
		if (errno == ENOENT && !explicit)
			return 0;
		return fail_at(err, config_setting_get_member(root, "vm_dir"),
			       cfg->file, "cannot read the VM directory %s: %s",
			       cfg->vm_dir, strerror(errno));
	}
	for (i = 0, r = 0; i < n; i++) {
		if (!r)
			r = load_vm_entry(cfg, list[i]->d_name, err);
		free(list[i]);
	}
	free(list);
	return r;
}

static int parse_main(const config_t *cf, struct km_config *cfg,
		      struct km_config_error *err)
{
	config_setting_t *root = config_root_setting(cf);
	int r;

	r = check_members(root, main_keys, cfg->file, err);
	r = r ?: parse_misc(root, cfg, err);
	r = r ?: parse_fencing(root, cfg, err);
	r = r ?: parse_backend(root, cfg, err);
	r = r ?: load_vm_dir(root, cfg, err);
	return r;
}

int km_config_load(const char *path, struct km_config **out,
		   struct km_config_error *err)
{
	struct km_config *cfg;
	config_t cf;
	int r;

	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	snprintf(cfg->file, sizeof(cfg->file), "%s", path);
	set_defaults(cfg);
	config_init(&cf);
	r = read_file(&cf, path, err);
	r = r ?: parse_main(&cf, cfg, err);
	config_destroy(&cf);
	if (r) {
		km_config_destroy(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

struct changes {
	char *buf;
	size_t len, used;
	int n;
};

static void changed(struct changes *c, bool differs, const char *key)
{
	int n;

	if (!differs || c->used >= c->len)
		return;
	n = snprintf(c->buf + c->used, c->len - c->used, "%s%s",
		     c->n++ ? ", " : "", key);
	c->used += n > 0 ? (size_t)n : 0;
}

static bool vm_differs(const struct km_vm_config *a,
		       const struct km_vm_config *b)
{
	int i;

	if (a->transport != b->transport || a->memory_mb != b->memory_mb ||
	    a->vcpus != b->vcpus)
		return true;
	for (i = 0; i < 2; i++)
		if (strcmp(a->nodes[i].name, b->nodes[i].name) ||
		    strcmp(a->nodes[i].address, b->nodes[i].address) ||
		    a->nodes[i].port != b->nodes[i].port)
			return true;
	return false;
}

/* The first difference that a running kemarid cannot take on. */
static const char *restart_key(const struct km_config *old,
			       const struct km_config *new, char *vm,
			       size_t len)
{
	const struct km_vm_config *o;
	size_t i;

	if (strcmp(old->group, new->group))
		return "cluster.group changed";
	if (strcmp(old->state_dir, new->state_dir))
		return "state_dir changed";
	if (strcmp(old->backend, new->backend))
		return "backend.type changed";
	for (i = 0; i < new->n_vms; i++) {
		o = km_config_find_vm(old, new->vms[i].name);
		snprintf(vm, len, "VM %s %s in %s", new->vms[i].name,
			 o ? "changed" : "added", new->vms[i].file);
		if (!o || vm_differs(o, &new->vms[i]))
			return vm;
	}
	for (i = 0; i < old->n_vms; i++) {
		snprintf(vm, len, "VM %s removed (was in %s)", old->vms[i].name,
			 old->vms[i].file);
		if (!km_config_find_vm(new, old->vms[i].name))
			return vm;
	}
	return NULL;
}

int km_config_compare(const struct km_config *old, const struct km_config *new,
		      char *msg, size_t len)
{
	struct changes c = { .buf = msg, .len = len };
	char vm[PATH_MAX + 96];
	const char *key = restart_key(old, new, vm, sizeof(vm));

	if (key) {
		snprintf(msg, len, "%s: restart kemarid to apply it", key);
		return -EBUSY;
	}
	msg[0] = '\0';
	changed(&c, strcmp(old->fence_handler, new->fence_handler),
		"fencing.handler");
	changed(&c, old->fence_delay_ms != new->fence_delay_ms,
		"fencing.delay_ms");
	changed(&c, old->fence_timeout_ms != new->fence_timeout_ms,
		"fencing.timeout_ms");
	changed(&c, old->fence_retries != new->fence_retries,
		"fencing.retries");
	changed(&c, old->fence_retry_ms != new->fence_retry_ms,
		"fencing.retry_delay_ms");
	changed(&c, strcmp(old->backend_command, new->backend_command),
		"backend.command");
	changed(&c, strcmp(old->ipc_group, new->ipc_group), "ipc.group");
	changed(&c, old->debug != new->debug, "log.debug");
	changed(&c, strcmp(old->blackbox_dir, new->blackbox_dir),
		"log.blackbox_dir");
	if (!c.n)
		snprintf(msg, len, "no changes");
	return 0;
}

void km_config_destroy(struct km_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->vms);
	free(cfg);
}

const struct km_vm_config *km_config_find_vm(const struct km_config *cfg,
					     const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_vms; i++)
		if (!strcmp(cfg->vms[i].name, name))
			return &cfg->vms[i];
	errno = ENOENT;
	return NULL;
}

const struct km_vm_node *km_vm_config_node(const struct km_vm_config *vm,
					   const char *node)
{
	int i;

	for (i = 0; i < 2; i++)
		if (!strcmp(vm->nodes[i].name, node))
			return &vm->nodes[i];
	errno = ENOENT;
	return NULL;
}

const struct km_vm_node *km_vm_config_peer(const struct km_vm_config *vm,
					   const char *node)
{
	const struct km_vm_node *n = km_vm_config_node(vm, node);

	return n ? &vm->nodes[n == &vm->nodes[0]] : NULL;
}

const char *km_config_error_format(const struct km_config_error *err, char *buf,
				   size_t len)
{
	if (err->line > 0)
		snprintf(buf, len, "%s:%d: %s", err->file, err->line, err->msg);
	else
		snprintf(buf, len, "%s: %s", err->file, err->msg);
	return buf;
}
