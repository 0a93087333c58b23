// SPDX-License-Identifier: GPL-2.0
/*
 * Configuration parser: the examples load, and every kind of mistake is
 * reported with the exact file and line of the offending setting.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "km_config.h"

static char dir[PATH_MAX];

static void setup(void)
{
	char vms[PATH_MAX + 8];

	snprintf(dir, sizeof(dir), "/tmp/km-config-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(vms, sizeof(vms), "%s/vms.d", dir);
	cr_assert_eq(mkdir(vms, 0700), 0);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

static const char *put(const char *name, const char *text)
{
	static char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char good_main[] = "fencing: {\n"
				"	handler = \"/bin/true\";\n"
				"};\n";

static const char good_vm[] =
	"vm: {\n" /* 1 */
	"	name = \"web1\";\n" /* 2 */
	"	on = (\n" /* 3 */
	"		{ node = \"alpha\"; address = \"192.0.2.1\"; },\n"
	"		{ node = \"beta\"; address = \"192.0.2.2\"; port = 7000; }\n"
	"	);\n"
	"};\n";

/* Load main text (and optionally one VM file) and expect an error. */
static struct km_config_error expect_main_error(const char *main_text,
						const char *vm_text)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg = NULL;
	const char *path;

	if (vm_text)
		put("vms.d/web1.conf", vm_text);
	path = put("kemari.conf", main_text);
	cr_assert_eq(km_config_load(path, &cfg, &err), -EINVAL,
		     "expected -EINVAL");
	cr_assert_null(cfg);
	return err;
}

static struct km_config_error expect_vm_error(const char *vm_text)
{
	struct km_config_error err = { 0 };
	struct km_vm_config vm;
	const char *path = put("vms.d/web1.conf", vm_text);

	cr_assert_eq(km_config_load_vm(path, &vm, &err), -EINVAL);
	cr_assert(strstr(err.file, "vms.d/web1.conf"), "file is %s", err.file);
	return err;
}

#define assert_error(err, l, text)                                       \
	do {                                                             \
		cr_assert_eq((err).line, (l), "line %d, wanted %d (%s)", \
			     (err).line, (l), (err).msg);                \
		cr_assert(strstr((err).msg, (text)), "message: %s",      \
			  (err).msg);                                    \
	} while (0)

Test(config, examples_load)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg;
	const struct km_vm_config *vm;
	const struct km_vm_node *peer;

	cr_assert_eq(km_config_load(KM_EXAMPLES "/kemari.conf", &cfg, &err), 0,
		     "%s:%d: %s", err.file, err.line, err.msg);
	cr_assert_str_eq(cfg->group, "kemari");
	cr_assert_str_eq(cfg->fence_handler, "/usr/lib/kemari/fence-peer");
	cr_assert_eq(cfg->fence_delay_ms, 5000);
	cr_assert_eq(cfg->fence_timeout_ms, 60000);
	cr_assert_str_eq(cfg->ipc_group, "haclient");
	cr_assert_eq(cfg->n_vms, 1);
	vm = km_config_find_vm(cfg, "web1");
	cr_assert_not_null(vm);
	cr_assert_eq(vm->memory_mb, 1024);
	cr_assert_eq(vm->vcpus, 2);
	cr_assert_eq(vm->transport, KM_TRANSPORT_TCP);
	peer = km_vm_config_peer(vm, "alpha");
	cr_assert_not_null(peer);
	cr_assert_str_eq(peer->name, "beta");
	cr_assert_str_eq(peer->address, "192.0.2.2");
	cr_assert_eq(peer->port, 7790);
	cr_assert_null(km_vm_config_peer(vm, "gamma"));
	cr_assert_null(km_config_find_vm(cfg, "web2"));
	km_config_destroy(cfg);
}

Test(config, defaults_and_relative_vm_dir)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg;

	put("vms.d/web1.conf", good_vm);
	cr_assert_eq(km_config_load(put("kemari.conf", good_main), &cfg, &err),
		     0, "%s", err.msg);
	cr_assert_str_eq(cfg->group, "kemari");
	cr_assert_str_eq(cfg->state_dir, "/var/lib/kemari");
	cr_assert_eq(cfg->fence_delay_ms, 0);
	cr_assert_eq(cfg->n_vms, 1);
	cr_assert_eq(cfg->vms[0].nodes[0].port, 7790);
	cr_assert_eq(cfg->vms[0].nodes[1].port, 7000);
	cr_assert_eq(cfg->vms[0].line, 1);
	km_config_destroy(cfg);
}

Test(config, missing_main_file)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg;
	char buf[PATH_MAX + 300];

	cr_assert_eq(km_config_load("/nonexistent/kemari.conf", &cfg, &err),
		     -ENOENT);
	cr_assert_eq(err.line, 0);
	km_config_error_format(&err, buf, sizeof(buf));
	cr_assert_str_eq(
		buf,
		"/nonexistent/kemari.conf: cannot read: No such file or directory");
}

Test(config, syntax_error_line)
{
	struct km_config_error err =
		expect_main_error("fencing: {\n"
				  "	handler = \"/bin/true\";\n"
				  "	delay_ms = ;\n"
				  "};\n",
				  NULL);

	assert_error(err, 3, "syntax error");
	cr_assert(strstr(err.file, "kemari.conf"));
}

Test(config, unknown_setting_line)
{
	struct km_config_error err =
		expect_main_error("fencing: {\n"
				  "	handler = \"/bin/true\";\n"
				  "\n"
				  "	dealy_ms = 10;\n"
				  "};\n",
				  NULL);

	assert_error(err, 4, "unknown setting 'dealy_ms' in fencing");
}

Test(config, wrong_type_line)
{
	struct km_config_error err =
		expect_main_error("fencing: {\n"
				  "	handler = \"/bin/true\";\n"
				  "	delay_ms = \"10\";\n"
				  "};\n",
				  NULL);

	assert_error(err, 3, "'delay_ms' must be an integer");
}

Test(config, out_of_range_line)
{
	struct km_config_error err =
		expect_main_error("fencing: {\n"
				  "	handler = \"/bin/true\";\n"
				  "	timeout_ms = 5;\n"
				  "};\n",
				  NULL);

	assert_error(err, 3,
		     "'timeout_ms' is 5, outside the range 100..3600000");
}

Test(config, missing_required_reports_group_line)
{
	struct km_config_error err =
		expect_main_error("# comment\n"
				  "\n"
				  "fencing: {\n"
				  "	delay_ms = 10;\n"
				  "};\n",
				  NULL);

	assert_error(err, 3, "fencing lacks the required setting 'handler'");
}

Test(config, relative_handler_refused)
{
	struct km_config_error err =
		expect_main_error("fencing: {\n"
				  "	handler = \"fence-peer\";\n"
				  "};\n",
				  NULL);

	assert_error(err, 2, "must be an absolute path");
}

Test(config, unknown_backend_type)
{
	struct km_config_error err =
		expect_main_error("backend: {\n"
				  "	type = \"libvirt\";\n"
				  "	command = \"/bin/true\";\n"
				  "};\n",
				  NULL);

	assert_error(err, 2, "backend type 'libvirt' is unknown");
}

Test(config, explicit_vm_dir_missing)
{
	struct km_config_error err =
		expect_main_error("\n"
				  "vm_dir = \"/nonexistent/vms\";\n",
				  NULL);

	assert_error(err, 2, "cannot read the VM directory /nonexistent/vms");
}

Test(config, bad_group_name)
{
	struct km_config_error err =
		expect_main_error("cluster: { group = \"-x y\"; };\n", NULL);

	assert_error(err, 1, "'group' is '-x y'");
}

Test(config, include_error_names_included_file)
{
	struct km_config_error err;

	put("fencing.inc", "handler = \"/bin/true\";\nbogus = 1;\n");
	err = expect_main_error("fencing: {\n"
				"@include \"fencing.inc\"\n"
				"};\n",
				NULL);
	assert_error(err, 2, "unknown setting 'bogus'");
	cr_assert(strstr(err.file, "fencing.inc"), "file %s", err.file);
}

Test(config, vm_error_inside_main_load_names_vm_file)
{
	struct km_config_error err = expect_main_error(
		good_main,
		"vm: {\n"
		"	name = \"web1\";\n"
		"	on = ( { node = \"alpha\"; address = \"192.0.2.1\"; } );\n"
		"};\n");

	assert_error(err, 3, "'on' lists 1 node(s)");
	cr_assert(strstr(err.file, "vms.d/web1.conf"), "file %s", err.file);
}

Test(config, vm_syntax_error)
{
	struct km_config_error err = expect_vm_error("vm: {\n"
						     "	name = \"web1\";\n"
						     "	on = (\n"
						     "};\n");

	assert_error(err, 4, "syntax error");
}

Test(config, vm_missing_group)
{
	struct km_config_error err = expect_vm_error("name = \"web1\";\n");

	assert_error(err, 1, "unknown setting 'name' in the top level");
}

Test(config, vm_empty_file)
{
	struct km_config_error err = expect_vm_error("# nothing\n");

	assert_error(err, 0, "the top level lacks the required setting 'vm'");
}

Test(config, vm_duplicate_node)
{
	struct km_config_error err = expect_vm_error(
		"vm: {\n"
		"	name = \"web1\";\n"
		"	on = (\n"
		"		{ node = \"alpha\"; address = \"192.0.2.1\"; },\n"
		"		{ node = \"alpha\"; address = \"192.0.2.2\"; }\n"
		"	);\n"
		"};\n");

	assert_error(err, 5, "node 'alpha' is listed twice");
}

Test(config, vm_bad_address)
{
	struct km_config_error err = expect_vm_error(
		"vm: {\n"
		"	name = \"web1\";\n"
		"	on = (\n"
		"		{ node = \"alpha\"; address = \"192.0.2.1\"; },\n"
		"		{ node = \"beta\";\n"
		"		  address = \"beta.example\"; }\n"
		"	);\n"
		"};\n");

	assert_error(err, 6, "'address' is 'beta.example', not an IPv4");
}

Test(config, vm_bad_port)
{
	struct km_config_error err = expect_vm_error(
		"vm: {\n"
		"	name = \"web1\";\n"
		"	on = (\n"
		"		{ node = \"alpha\"; address = \"192.0.2.1\"; },\n"
		"		{ node = \"beta\"; address = \"2001:db8::2\";\n"
		"		  port = 70000; }\n"
		"	);\n"
		"};\n");

	assert_error(err, 6, "'port' is 70000, outside the range 1..65535");
}

Test(config, vm_node_not_a_group)
{
	struct km_config_error err =
		expect_vm_error("vm: {\n"
				"	name = \"web1\";\n"
				"	on = ( \"alpha\",\n"
				"	       \"beta\" );\n"
				"};\n");

	assert_error(err, 3, "each element of 'on' must be a group");
}

Test(config, vm_bad_transport_and_name)
{
	struct km_config_error err =
		expect_vm_error("vm: {\n"
				"	name = \"web1\";\n"
				"	transport = \"udp\";\n"
				"	on = ();\n"
				"};\n");

	assert_error(err, 3, "'transport' is 'udp'");
	err = expect_vm_error("vm: {\n"
			      "	name = \"web 1\";\n"
			      "	on = ();\n"
			      "};\n");
	assert_error(err, 2, "'name' is 'web 1'");
}

Test(config, vm_missing_name_reports_vm_line)
{
	struct km_config_error err = expect_vm_error("\n"
						     "\n"
						     "vm: {\n"
						     "	on = ();\n"
						     "};\n");

	assert_error(err, 3, "vm lacks the required setting 'name'");
}

Test(config, duplicate_vm_across_files)
{
	struct km_config_error err;

	put("vms.d/a.conf", good_vm);
	err = expect_main_error(good_main, "\n\n\n\n"
					   "vm: {\n"
					   "	name = \"web1\";\n"
					   "	on = ();\n"
					   "};\n");
	/* The duplicate is checked only after the second file parsed. */
	cr_assert_eq(err.line, 7, "%d %s", err.line, err.msg);
	cr_assert(strstr(err.file, "vms.d/web1.conf"));
	cr_assert(strstr(err.msg, "'on' lists 0 node(s)"), "%s", err.msg);

	put("vms.d/web1.conf",
	    "\n\n\n\n"
	    "vm: {\n"
	    "	name = \"web1\";\n"
	    "	on = (\n"
	    "		{ node = \"a\"; address = \"192.0.2.1\"; },\n"
	    "		{ node = \"b\"; address = \"192.0.2.2\"; }\n"
	    "	);\n"
	    "};\n");
	err = expect_main_error(good_main, NULL);
	assert_error(err, 5, "VM 'web1' is already defined in");
	cr_assert(strstr(err.msg, "vms.d/a.conf:1"), "%s", err.msg);
	cr_assert(strstr(err.file, "vms.d/web1.conf"));
}

Test(config, non_conf_files_ignored)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg;

	put("vms.d/web1.conf.rpmsave", "garbage");
	put("vms.d/.web1.conf", "garbage");
	put("vms.d/README", "garbage");
	cr_assert_eq(km_config_load(put("kemari.conf", good_main), &cfg, &err),
		     0, "%s", err.msg);
	cr_assert_eq(cfg->n_vms, 0);
	km_config_destroy(cfg);
}

Test(config, fence_retries_defaults_and_range)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg;

	cr_assert_eq(km_config_load(put("kemari.conf", good_main), &cfg, &err),
		     0, "%s", err.msg);
	cr_assert_eq(cfg->fence_retries, 2);
	cr_assert_eq(cfg->fence_retry_ms, 1000);
	km_config_destroy(cfg);
	err = expect_main_error("fencing: {\n"
				"	handler = \"/bin/true\";\n"
				"	retries = 11;\n"
				"};\n",
				NULL);
	assert_error(err, 3, "'retries' is 11, outside the range 0..10");
	err = expect_main_error("fencing: {\n"
				"	handler = \"/bin/true\";\n"
				"	retry_delay_ms = \"1s\";\n"
				"};\n",
				NULL);
	assert_error(err, 3, "'retry_delay_ms' must be an integer");
}

/* Load @main_text (and @vm_text as vms.d/web1.conf) or fail the test. */
static struct km_config *load_ok(const char *main_text, const char *vm_text)
{
	struct km_config_error err = { 0 };
	struct km_config *cfg;

	put("vms.d/web1.conf", vm_text);
	cr_assert_eq(km_config_load(put("kemari.conf", main_text), &cfg, &err),
		     0, "%s:%d: %s", err.file, err.line, err.msg);
	return cfg;
}

Test(config, compare_live_settings)
{
	struct km_config *a, *b;
	char msg[512];

	a = load_ok(good_main, good_vm);
	b = load_ok("fencing: {\n"
		    "	handler = \"/bin/false\";\n"
		    "	delay_ms = 2000;\n"
		    "	retries = 0;\n"
		    "};\n"
		    "ipc: { group = \"wheel\"; };\n"
		    "log: { debug = true; };\n",
		    good_vm);
	cr_assert_eq(km_config_compare(a, a, msg, sizeof(msg)), 0);
	cr_assert_str_eq(msg, "no changes");
	cr_assert_eq(km_config_compare(a, b, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_str_eq(msg,
			 "fencing.handler, fencing.delay_ms, fencing.retries, "
			 "ipc.group, log.debug");
	km_config_destroy(a);
	km_config_destroy(b);
}

Test(config, compare_restart_settings)
{
	static const char other_vm[] =
		"vm: {\n"
		"	name = \"web1\";\n"
		"	on = (\n"
		"		{ node = \"alpha\"; address = \"192.0.2.1\"; },\n"
		"		{ node = \"gamma\"; address = \"192.0.2.3\"; }\n"
		"	);\n"
		"};\n";
	struct km_config *a, *b;
	char msg[512];

	a = load_ok(good_main, good_vm);
	b = load_ok("cluster: { group = \"other\"; };\n"
		    "fencing: { handler = \"/bin/true\"; delay_ms = 5; };\n",
		    good_vm);
	cr_assert_eq(km_config_compare(a, b, msg, sizeof(msg)), -EBUSY);
	cr_assert_str_eq(msg,
			 "cluster.group changed: restart kemarid to apply it");
	km_config_destroy(b);
	b = load_ok(good_main, other_vm);
	cr_assert_eq(km_config_compare(a, b, msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "VM web1 changed in "), "%s", msg);
	km_config_destroy(b);
	put("vms.d/web2.conf",
	    "vm: {\n"
	    "	name = \"web2\";\n"
	    "	on = (\n"
	    "		{ node = \"alpha\"; address = \"192.0.2.1\"; },\n"
	    "		{ node = \"beta\"; address = \"192.0.2.2\"; }\n"
	    "	);\n"
	    "};\n");
	b = load_ok(good_main, good_vm);
	cr_assert_eq(b->n_vms, 2);
	cr_assert_eq(km_config_compare(a, b, msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "VM web2 added in "), "%s", msg);
	cr_assert_eq(km_config_compare(b, a, msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "VM web2 removed (was in "), "%s", msg);
	km_config_destroy(a);
	km_config_destroy(b);
}
