// SPDX-License-Identifier: GPL-2.0
/* Transport-neutral wrappers that keep the sticky stream error. */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "transport.h"

static __thread char last_error[320];

const struct km_transport_ops *km_transport_find(const char *name)
{
	if (!strcmp(name, km_tcp_ops.name))
		return &km_tcp_ops;
	if (!strcmp(name, km_rdma_ops.name))
		return &km_rdma_ops;
	return NULL;
}

static long involuntary_switches(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? -1 : ru.ru_nivcsw;
}

void km__spin_start(const struct km_transport *t, struct km_spin *s)
{
	s->deadline = t->spin_us ? km__now_ns() + t->spin_us * 1000ull : 0;
	s->switches = -1;
}

/*
 * Poll only while nobody else wants this CPU. Yields that switched to
 * another task (counted as involuntary switches; interrupts are not)
 * mean someone else needs the CPU: perhaps the very peer that has to
 * produce the answer (both ends on one CPU), perhaps other work. Polling
 * on would steal its time, so the caller goes to sleep instead. One
 * switch is forgiven: kernel housekeeping threads (rcu_preempt every few
 * milliseconds) take the CPU for microseconds and are gone again.
 */
#define SPIN_SWITCHES_MAX 2

bool km__spin_more(struct km_spin *s)
{
	if (!s->deadline)
		return false;
	if (s->switches < 0)
		s->switches = involuntary_switches();
	sched_yield();
	if (involuntary_switches() - s->switches >= SPIN_SWITCHES_MAX)
		return false;
	return km__now_ns() < s->deadline;
}

const char *km_transport_last_error(void)
{
	return last_error;
}

void km__transport_set_last_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

int km_transport_register(struct km_transport *t, void *addr, size_t len,
			  unsigned int how)
{
	int r;

	if (t->err)
		return t->err;
	if (!t->ops->register_memory)
		return 0;
	r = t->ops->register_memory(t, addr, len, how);
	if (r < 0)
		t->err = r;
	return r;
}

int km_transport_release(struct km_transport *t)
{
	int r;

	if (t->err)
		return t->err;
	if (!t->ops->release)
		return 0;
	r = t->ops->release(t);
	if (r < 0)
		t->err = r;
	return r;
}

const char *km_transport_why(const struct km_transport *t)
{
	return t->why;
}

int km_transport_sendv(struct km_transport *t, const struct iovec *iov,
		       int iovcnt)
{
	int r;

	if (t->err)
		return t->err;
	r = t->ops->sendv(t, iov, iovcnt);
	if (r < 0)
		t->err = r;
	return r;
}

int km_transport_send(struct km_transport *t, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return km_transport_sendv(t, &iov, 1);
}

int km_transport_recv(struct km_transport *t, void *buf, size_t len)
{
	int r;

	if (t->err)
		return t->err;
	r = t->ops->recv(t, buf, len);
	if (r < 0)
		t->err = r;
	return r;
}

int km_transport_error(const struct km_transport *t)
{
	return t->err;
}

void km_transport_close(struct km_transport *t)
{
	if (t)
		t->ops->close(t);
}
