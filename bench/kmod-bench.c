// SPDX-License-Identifier: GPL-2.0
/*
 * kmod-bench: what kemari.ko adds to one PIO exit, inside the lab.
 *
 *   kmod-bench --module KO [--exits N] [--rounds R]
 *
 * A real-mode guest loops on one OUT; each KVM_RUN returns one exit. In one
 * boot, with the module unloaded at the start (it loads and unloads KO
 * itself), it measures the time per exit for:
 *
 *   absent        the module not loaded (the floor)
 *   unregistered  loaded, the VM not registered
 *   untapped      registered, the port not tapped
 *   tapped_self   tapped; the vCPU thread reads the event and acks it
 *                 itself before the next KVM_RUN (never held)
 *   tapped_other  tapped; an agent thread blocks in poll(), reads and acks
 *                 while the vCPU thread's next KVM_RUN waits in the gate
 *
 * and, as a reference for tapped_other, "wakeup_rtt": the same two
 * cross-thread wake-ups without KVM (two threads ping-ponging through
 * eventfds, blocking in poll() and read() as the agent and the vCPU do).
 *
 * Each round measures every case once, the floor first with the module
 * unloaded, then loads it for the rest and unloads it again, so drift of
 * the shared host hits all cases alike. One JSON object per line (json-c): per case the median and
 * minimum microseconds per exit over the rounds, the median's ratio to the
 * floor's median and the minimum's ratio to the floor's minimum.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kemari_gate.h"
#include "kvm_util.h"

#define PORT 0xf0
#define MEM_SIZE (1u << 20)
#define MAX_ROUNDS 64 /* each loads and unloads the module once */

extern const uint8_t bench_guest[], bench_guest_end[];

__asm__(".pushsection .rodata\n"
	".code16\n"
	"bench_guest:\n"
	"1:	out %al, $0xf0\n"
	"	jmp 1b\n"
	"bench_guest_end:\n"
	".code64\n"
	".popsection\n");

enum bench_case {
	ABSENT,
	UNREGISTERED,
	UNTAPPED,
	TAPPED_SELF,
	TAPPED_OTHER,
	WAKEUP_RTT,
	NCASES
};

static const char *const case_name[NCASES] = {
	"absent",      "unregistered", "untapped",
	"tapped_self", "tapped_other", "wakeup_rtt",
};

struct sample_set {
	double us[MAX_ROUNDS];
	int n;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn)) fail(const char *what, int err)
{
	fprintf(stderr, "kmod-bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static void run_exit(struct lab_vm *vm)
{
	uint8_t val;

	if (lab_vcpu_run_io(vm, &val) != PORT)
		fail("unexpected exit port", EPROTO);
}

/* N plain exits; microseconds per exit. */
static double plain(struct lab_vm *vm, int n)
{
	double t0 = now_s();

	for (int i = 0; i < n; i++)
		run_exit(vm);
	return (now_s() - t0) * 1e6 / n;
}

static double self_acked(struct lab_vm *vm, struct km_gate_vm *agent, int n)
{
	struct kemari_event ev;
	double t0 = now_s();
	int r;

	for (int i = 0; i < n; i++) {
		run_exit(vm);
		r = km_gate_read_events(agent, &ev, 1, 0);
		if (r != 1)
			fail("no event after a tapped exit",
			     r < 0 ? -r : EPROTO);
		r = km_gate_ack(agent, ev.epoch);
		if (r)
			fail("ack", -r);
	}
	return (now_s() - t0) * 1e6 / n;
}

struct acker {
	struct km_gate_vm *agent;
	int n;
	int err;
};

static void *acker_fn(void *arg)
{
	struct acker *a = arg;
	struct kemari_event ev;
	int r;

	for (int i = 0; i < a->n; i++) {
		r = km_gate_read_events(a->agent, &ev, 1, -1);
		if (r == 1)
			r = km_gate_ack(a->agent, ev.epoch);
		else if (r >= 0)
			r = -EPROTO;
		if (r) {
			a->err = -r;
			break;
		}
	}
	return NULL;
}

static double other_acked(struct lab_vm *vm, struct km_gate_vm *agent, int n)
{
	struct acker a = { .agent = agent, .n = n };
	pthread_t th;
	double t0, us;

	if (pthread_create(&th, NULL, acker_fn, &a))
		fail("pthread_create", EAGAIN);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		run_exit(vm); /* from the second on, held until the ack */
	us = (now_s() - t0) * 1e6 / n;
	pthread_join(th, NULL);
	if (a.err)
		fail("the acking thread", a.err);
	return us;
}

struct pingpong {
	int to_peer, from_peer;
	int n;
};

static void *pong_fn(void *arg)
{
	struct pingpong *p = arg;
	struct pollfd pfd = { .fd = p->from_peer, .events = POLLIN };
	uint64_t v;

	for (int i = 0; i < p->n; i++) {
		if (poll(&pfd, 1, -1) != 1 ||
		    read(p->from_peer, &v, sizeof(v)) != sizeof(v) ||
		    write(p->to_peer, &v, sizeof(v)) != sizeof(v))
			fail("pong", errno);
	}
	return NULL;
}

/* Cross-thread round trips: as tapped_other's event and ack, minus KVM. */
static double wakeup_rtt(int n)
{
	struct pingpong p = { .n = n };
	int ping = eventfd(0, EFD_CLOEXEC), pong = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 1;
	pthread_t th;
	double t0, us;

	if (ping < 0 || pong < 0)
		fail("eventfd", errno);
	p.from_peer = ping;
	p.to_peer = pong;
	if (pthread_create(&th, NULL, pong_fn, &p))
		fail("pthread_create", EAGAIN);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		if (write(ping, &v, sizeof(v)) != sizeof(v) ||
		    read(pong, &v, sizeof(v)) != sizeof(v))
			fail("ping", errno);
	}
	us = (now_s() - t0) * 1e6 / n;
	pthread_join(th, NULL);
	close(ping);
	close(pong);
	return us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(struct sample_set *s)
{
	qsort(s->us, s->n, sizeof(s->us[0]), cmp_double);
	return s->n % 2 ? s->us[s->n / 2] :
			  (s->us[s->n / 2 - 1] + s->us[s->n / 2]) / 2;
}

static void load(const char *ko)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fail(ko, errno);
	if (syscall(SYS_finit_module, fd, "", 0))
		fail("loading the module", errno);
	close(fd);
}

static void unload(void)
{
	if (syscall(SYS_delete_module, "kemari", O_NONBLOCK))
		fail("unloading the module", errno);
}

static void settle(struct lab_vm *vm, int exits)
{
	struct timespec ts = { 0, 300 * 1000000L };

	nanosleep(&ts, NULL);
	plain(vm, exits / 10 + 1);
}

static void print_case(enum bench_case c, struct sample_set *s, double floor,
		       double floor_min, int exits)
{
	struct json_object *o = json_object_new_object();
	double p50 = median(s);

	json_object_object_add(o, "bench", json_object_new_string("kmod-gate"));
	json_object_object_add(o, "case", json_object_new_string(case_name[c]));
	json_object_object_add(o, "exits", json_object_new_int(exits));
	json_object_object_add(o, "rounds", json_object_new_int(s->n));
	json_object_object_add(o, "us_per_exit_p50",
			       json_object_new_double(p50));
	json_object_object_add(o, "us_per_exit_min",
			       json_object_new_double(s->us[0]));
	json_object_object_add(o, "ratio_p50",
			       json_object_new_double(p50 / floor));
	/* Best round over best round: what the code costs when the shared
	 * host lets the lab run undisturbed (medians suffer from its load). */
	json_object_object_add(o, "ratio_min",
			       json_object_new_double(s->us[0] / floor_min));
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "exits", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ 0 },
	};
	struct kemari_port_range tapped = { PORT, PORT },
				 other = { 0x80, 0x80 };
	struct km_gate_vm *a_untapped, *a_self, *a_other;
	struct sample_set s[NCASES] = { 0 };
	struct lab_vm vu, vn, vs, vo;
	const char *ko = NULL;
	int exits = 2000, rounds = 5, c, r;
	struct km_gate *gate;
	double floor;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'm')
			ko = optarg;
		else if (c == 'n')
			exits = atoi(optarg);
		else if (c == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (!ko || exits < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr,
			"usage: kmod-bench --module KO [--exits N] [--rounds 1..%d]\n",
			MAX_ROUNDS);
		return 2;
	}
	if (access("/dev/kemari", F_OK) == 0) {
		fprintf(stderr,
			"kmod-bench: unload kemari first (the floor is measured without it)\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Every VM exists before the module loads: no VM create meanwhile. */
	lab_vm_create(&vu, MEM_SIZE, 0, bench_guest, bench_guest_end);
	lab_vm_create(&vn, MEM_SIZE, 0, bench_guest, bench_guest_end);
	lab_vm_create(&vs, MEM_SIZE, 0, bench_guest, bench_guest_end);
	lab_vm_create(&vo, MEM_SIZE, 0, bench_guest, bench_guest_end);
	/* Warm-up: a vCPU's first runs are slow. */
	plain(&vu, exits / 10 + 1);
	plain(&vn, exits / 10 + 1);
	plain(&vs, exits / 10 + 1);
	plain(&vo, exits / 10 + 1);

	/*
	 * Every round measures the floor with the module unloaded, then loads
	 * it and measures the other cases: load and unload each round, so the
	 * floor sees the same drift of the shared host as the rest.
	 */
	for (int i = 0; i < rounds; i++) {
		/*
		 * Load and unload patch kernel text and leave RCU work behind:
		 * let that settle before measuring, then warm up.
		 */
		settle(&vu, exits);
		s[ABSENT].us[s[ABSENT].n++] = plain(&vu, exits);
		load(ko);
		settle(&vu, exits);
		r = km_gate_open(NULL, &gate);
		if (r)
			fail("/dev/kemari", -r);
		if (km_gate_register(gate, vn.vm_fd, &other, 1, 0,
				     &a_untapped) ||
		    km_gate_register(gate, vs.vm_fd, &tapped, 1, 0, &a_self) ||
		    km_gate_register(gate, vo.vm_fd, &tapped, 1, 0, &a_other))
			fail("register", EPROTO);
		/* Rotated each round: no case always runs first after load. */
		for (int k = 0; k < WAKEUP_RTT; k++) {
			enum bench_case bc =
				UNREGISTERED + (i + k) % WAKEUP_RTT;
			struct sample_set *ss = &s[bc];

			if (bc == UNREGISTERED)
				ss->us[ss->n++] = plain(&vu, exits);
			else if (bc == UNTAPPED)
				ss->us[ss->n++] = plain(&vn, exits);
			else if (bc == TAPPED_SELF)
				ss->us[ss->n++] =
					self_acked(&vs, a_self, exits);
			else if (bc == TAPPED_OTHER)
				ss->us[ss->n++] =
					other_acked(&vo, a_other, exits);
			else
				ss->us[ss->n++] = wakeup_rtt(exits);
		}
		km_gate_unregister(a_untapped);
		km_gate_unregister(a_self);
		km_gate_unregister(a_other);
		km_gate_close(gate);
		unload();
	}

	floor = median(&s[ABSENT]); /* sorts: s[ABSENT].us[0] is the minimum */
	for (c = 0; c < NCASES; c++)
		print_case(c, &s[c], floor, s[ABSENT].us[0], exits);
	lab_vm_destroy(&vu);
	lab_vm_destroy(&vn);
	lab_vm_destroy(&vs);
	lab_vm_destroy(&vo);
	return 0;
}
