/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transports: one ops table, one implementation per .c file (tcp.c,
 * rdma.c). The replicator only ever calls the km_transport_*() wrappers
 * below, so it never knows which transport it talks to.
 *
 * Errors are sticky, as in QEMU's migration stream: after the first failed
 * send or receive every further call returns that same error without
 * touching the connection. Callers check km_transport_error() once at a
 * checkpoint boundary instead of after every message.
 */
#ifndef KEMARI_REPLICATOR_TRANSPORT_H
#define KEMARI_REPLICATOR_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

struct km_transport;

struct km_transport_ops {
	const char *name;
	/* Create a listening endpoint bound to @host:@port ("0": any). */
	int (*listen)(const char *host, const char *port,
		      struct km_transport **out);
	/* Wait for one peer on a listening endpoint. */
	int (*accept)(struct km_transport *listener, struct km_transport **out);
	/* Connect to a listening peer. */
	int (*connect)(const char *host, const char *port,
		       struct km_transport **out);
	/* Send every byte of @iov, or fail; pages go straight from memory. */
	int (*sendv)(struct km_transport *t, const struct iovec *iov,
		     int iovcnt);
	/* Receive exactly @len bytes; -ECONNRESET if the peer went away. */
	int (*recv)(struct km_transport *t, void *buf, size_t len);
	/* Bound every later blocking call by @ms (0: no bound). */
	int (*set_timeout)(struct km_transport *t, unsigned int ms);
	/* Local port of a listening endpoint (for tests binding port 0). */
	int (*local_port)(struct km_transport *t);
	/*
	 * Optional (NULL for TCP): register a memory range once per
	 * connection. KM_MEM_SOURCE: later sendv() segments inside it may be
	 * read by the hardware after sendv() returns, so it must not change
	 * until the peer has answered (the next recv() returned): guest
	 * memory while the guest is paused. KM_MEM_TARGET: the peer may
	 * place received bytes in it directly (the secondary's staging
	 * area); a recv() into the place they were put costs no copy.
	 */
	int (*register_memory)(struct km_transport *t, void *addr, size_t len,
			       unsigned int how);
	/*
	 * Optional: everything received so far has been consumed, so the
	 * KM_MEM_TARGET range may be written by the peer again (flow
	 * control of the staging area).
	 */
	int (*release)(struct km_transport *t);
	/* Free the endpoint; safe on a half-built one. */
	void (*close)(struct km_transport *t);
};

#define KM_MEM_SOURCE 1u
#define KM_MEM_TARGET 2u

/* Embedded at the start of each implementation's connection struct. */
struct km_transport {
	const struct km_transport_ops *ops;
	int err; /* sticky: first failure, 0 while healthy */
	/*
	 * A receive that finds nothing polls this long (yielding the CPU
	 * between tries) before it sleeps; 0 sleeps at once. Set by the
	 * engine only while an answer is due within microseconds: a
	 * sleeping receiver costs its waker an IPI and a wake-up, which on
	 * virtual CPUs is tens of microseconds (docs/performance.md).
	 */
	unsigned int spin_us;
	char why[320]; /* sentence for the first failure, "" if none */
};

/** km_tcp_ops - the TCP transport (tcp.c). */
extern const struct km_transport_ops km_tcp_ops;
/** km_rdma_ops - the RDMA transport (rdma.c, librdmacm/libibverbs). */
extern const struct km_transport_ops km_rdma_ops;

/**
 * km_transport_find() - the ops table called @name ("tcp", "rdma"), or
 * NULL.
 */
const struct km_transport_ops *km_transport_find(const char *name);

/**
 * km_transport_register() - register memory (see the ops table); 0 when
 * the transport needs no registration.
 */
int km_transport_register(struct km_transport *t, void *addr, size_t len,
			  unsigned int how);
/** km_transport_release() - received bytes consumed (flow control). */
int km_transport_release(struct km_transport *t);
/**
 * km_transport_why() - sentence describing @t's first failure, "" if the
 * transport has nothing to add to the error code.
 */
const char *km_transport_why(const struct km_transport *t);
/**
 * km_transport_last_error() - sentence describing this thread's last
 * failed listen/accept/connect, "" if none (they have no object to hold
 * it).
 */
const char *km_transport_last_error(void);
/** km__transport_set_last_error() - for implementations: set the above. */
void km__transport_set_last_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/** km__now_ns() - CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t km__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/** km_transport_set_spin() - see &km_transport.spin_us. */
static inline void km_transport_set_spin(struct km_transport *t,
					 unsigned int us)
{
	t->spin_us = us;
}

/* One poll of a receive, for implementations. */
struct km_spin {
	uint64_t deadline; /* CLOCK_MONOTONIC ns; 0: do not poll */
	/* this thread's involuntary switches before its first yield, -1
	 * until then (a receive that finds data at once costs no getrusage) */
	long switches;
};

/** km__spin_start() - start polling as &km_transport.spin_us says. */
void km__spin_start(const struct km_transport *t, struct km_spin *s);
/**
 * km__spin_more() - yield the CPU once; false once the deadline passed or
 * another task ran on this CPU meanwhile (then the caller sleeps).
 */
bool km__spin_more(struct km_spin *s);

/** km_transport_sendv() - send all of @iov; sticky error on failure. */
int km_transport_sendv(struct km_transport *t, const struct iovec *iov,
		       int iovcnt);
/** km_transport_send() - send one buffer; sticky error on failure. */
int km_transport_send(struct km_transport *t, const void *buf, size_t len);
/** km_transport_recv() - receive exactly @len bytes; sticky error. */
int km_transport_recv(struct km_transport *t, void *buf, size_t len);
/** km_transport_error() - the sticky error (0 if none). */
int km_transport_error(const struct km_transport *t);
/** km_transport_close() - close @t; NULL is allowed. */
void km_transport_close(struct km_transport *t);

#endif
