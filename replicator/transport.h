/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transports: one ops table, one implementation per .c file (tcp.c, and
 * rdma.c later). The replicator only ever calls the km_transport_*()
 * wrappers below, so it never knows which transport it talks to.
 *
 * Errors are sticky, as in QEMU's migration stream: after the first failed
 * send or receive every further call returns that same error without
 * touching the connection. Callers check km_transport_error() once at a
 * checkpoint boundary instead of after every message.
 */
#ifndef KEMARI_REPLICATOR_TRANSPORT_H
#define KEMARI_REPLICATOR_TRANSPORT_H

#include <stddef.h>
#include <sys/uio.h>

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
	 * Optional (NULL for TCP): register a memory range the transport may
	 * read from (primary's guest memory) or write to (secondary's
	 * staging area) without copies, as RDMA needs.
	 */
	int (*register_memory)(struct km_transport *t, void *addr, size_t len);
	/* Free the endpoint; safe on a half-built one. */
	void (*close)(struct km_transport *t);
};

/* Embedded at the start of each implementation's connection struct. */
struct km_transport {
	const struct km_transport_ops *ops;
	int err; /* sticky: first failure, 0 while healthy */
};

/** km_tcp_ops - the TCP transport (tcp.c). */
extern const struct km_transport_ops km_tcp_ops;

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
