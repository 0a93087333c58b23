// SPDX-License-Identifier: GPL-2.0
/*
 * TCP transport. Pages leave with sendmsg() straight from guest memory (no
 * bounce copy); TCP_NODELAY because every epoch ends in a small COMMIT that
 * must not wait for Nagle; keepalive and TCP_USER_TIMEOUT so a dead peer
 * host turns into an error instead of a hang.
 */
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "transport.h"

#define TCP_KEEPIDLE_S 5
#define TCP_KEEPINTVL_S 1
#define TCP_KEEPCNT_N 5
#define TCP_USER_TIMEOUT_MS 10000
/*
 * Socket buffers (the kernel doubles the value): room for a whole 64-page
 * epoch or one 512 KiB batch in flight, so the sender is not held up by a
 * closed window while the secondary checksums what it already received,
 * but no more. Larger buffers let the sender run megabytes ahead and the
 * secondary then copies from socket buffers that have left the cache
 * (measured on loopback with both ends on one CPU: 1024-page ratio p50
 * ~1.7 with 4 MiB against ~1.15 with 256 KiB; docs/performance.md). A
 * link whose bandwidth-delay product exceeds ~512 KiB (100 Gb/s with more
 * than ~40 us RTT) would want more.
 */
#define TCP_BUF_BYTES (256 << 10)

/*
 * Small reads (headers, meta parts, ACKs) are served from a receive buffer
 * so a run of control messages costs one recv() instead of one each;
 * reads of at least half the buffer (page data) go straight to the
 * caller's memory, so pages are copied once, by the kernel. The buffer is
 * small on purpose: whatever page data a header read pulls into it is
 * copied a second time (a 64 KiB buffer copied a quarter of a 64-page
 * epoch again).
 */
#define RBUF_SIZE (4u << 10)

struct tcp_conn {
	struct km_transport base;
	int fd;
	size_t rpos, rlen;
	uint8_t rbuf[RBUF_SIZE];
};

static struct tcp_conn *to_tcp(struct km_transport *t)
{
	return (struct tcp_conn *)t;
}

static int tcp_wrap(int fd, struct km_transport **out)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->base.ops = &km_tcp_ops;
	c->fd = fd;
	*out = &c->base;
	return 0;
}

static int setopt(int fd, int level, int name, int val)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)))
		return -errno;
	return 0;
}

static int tune_stream(int fd)
{
	int r;

	r = setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	r = r ?: setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	r = r ?: setopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPIDLE_S);
	r = r ?: setopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, TCP_KEEPINTVL_S);
	r = r ?: setopt(fd, IPPROTO_TCP, TCP_KEEPCNT, TCP_KEEPCNT_N);
	r = r ?: setopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS);
	r = r ?: setopt(fd, SOL_SOCKET, SO_SNDBUF, TCP_BUF_BYTES);
	r = r ?: setopt(fd, SOL_SOCKET, SO_RCVBUF, TCP_BUF_BYTES);
	return r;
}

static int resolve(const char *host, const char *port, int passive,
		   struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = passive ? AI_PASSIVE : 0,
	};
	int r = getaddrinfo(host, port, &hints, res);

	if (r == EAI_SYSTEM)
		return -errno;
	return r ? -EHOSTUNREACH : 0;
}

static int tcp_listen(const char *host, const char *port,
		      struct km_transport **out)
{
	struct addrinfo *ai;
	int fd, r;

	r = resolve(host, port, 1, &ai);
	if (r)
		return r;
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto err_free_ai;
	}
	r = setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!r && (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 8)))
		r = -errno;
	if (r)
		goto err_close;
	r = tcp_wrap(fd, out);
	if (r)
		goto err_close;
	freeaddrinfo(ai);
	return 0;

err_close:
	close(fd);
err_free_ai:
	freeaddrinfo(ai);
	return r;
}

static int tcp_accept(struct km_transport *listener, struct km_transport **out)
{
	int fd, r;

	do
		fd = accept4(to_tcp(listener)->fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	r = tune_stream(fd);
	r = r ?: tcp_wrap(fd, out);
	if (r)
		close(fd);
	return r;
}

static int tcp_connect(const char *host, const char *port,
		       struct km_transport **out)
{
	struct addrinfo *ai, *a;
	int fd = -1, r;

	r = resolve(host, port, 0, &ai);
	if (r)
		return r;
	r = -ECONNREFUSED;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		r = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return r;
	r = tune_stream(fd);
	r = r ?: tcp_wrap(fd, out);
	if (r)
		close(fd);
	return r;
}

static int io_error(void)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -ETIMEDOUT;
	if (errno == EPIPE)
		return -ECONNRESET;
	return -errno;
}

/* Drop @n sent bytes from the front of the vector. */
static void advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

static int tcp_sendv_chunk(int fd, struct iovec *iov, int cnt)
{
	struct msghdr msg = { 0 };
	ssize_t n;

	while (cnt) {
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)cnt;
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_error();
		advance(&iov, &cnt, (size_t)n);
	}
	return 0;
}

static int tcp_sendv(struct km_transport *t, const struct iovec *iov,
		     int iovcnt)
{
	/* A small local copy: partial writes edit the vector. */
	struct iovec v[256];
	int done = 0, n, r;

	while (done < iovcnt) {
		n = iovcnt - done < 256 ? iovcnt - done : 256;
		memcpy(v, iov + done, (size_t)n * sizeof(*v));
		r = tcp_sendv_chunk(to_tcp(t)->fd, v, n);
		if (r)
			return r;
		done += n;
	}
	return 0;
}

/* Poll without sleeping until something arrives or @deadline passes. */
static ssize_t recv_spin(int fd, void *buf, size_t len, struct km_spin *s)
{
	ssize_t n;

	do {
		n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return n;
	} while (km__spin_more(s));
	errno = EAGAIN;
	return -1;
}

static int recv_some(struct tcp_conn *c, void *buf, size_t len, size_t min)
{
	struct km_spin spin;
	size_t got = 0;
	ssize_t n = -1;

	km__spin_start(&c->base, &spin);
	while (got < min) {
		if (spin.deadline)
			n = recv_spin(c->fd, (char *)buf + got, len - got,
				      &spin);
		if (!spin.deadline || (n < 0 && errno == EAGAIN))
			n = recv(c->fd, (char *)buf + got, len - got,
				 len == min ? MSG_WAITALL : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_error();
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
		/* Data keeps coming: poll again for the next piece. */
		km__spin_start(&c->base, &spin);
	}
	return (int)(got > INT_MAX ? INT_MAX : got);
}

static int tcp_recv(struct km_transport *t, void *buf, size_t len)
{
	struct tcp_conn *c = to_tcp(t);
	size_t n = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;
	int r;

	memcpy(buf, c->rbuf + c->rpos, n);
	c->rpos += n;
	buf = (char *)buf + n;
	len -= n;
	if (!len)
		return 0;
	if (len >= RBUF_SIZE / 2) {
		r = recv_some(c, buf, len, len);
		return r < 0 ? r : 0;
	}
	r = recv_some(c, c->rbuf, RBUF_SIZE, len);
	if (r < 0)
		return r;
	c->rlen = (size_t)r;
	memcpy(buf, c->rbuf, len);
	c->rpos = len;
	return 0;
}

static int tcp_set_timeout(struct km_transport *t, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };
	int fd = to_tcp(t)->fd;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

static int tcp_local_port(struct km_transport *t)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(to_tcp(t)->fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

static void tcp_close(struct km_transport *t)
{
	struct tcp_conn *c = to_tcp(t);

	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

const struct km_transport_ops km_tcp_ops = {
	.name = "tcp",
	.listen = tcp_listen,
	.accept = tcp_accept,
	.connect = tcp_connect,
	.sendv = tcp_sendv,
	.recv = tcp_recv,
	.set_timeout = tcp_set_timeout,
	.local_port = tcp_local_port,
	.register_memory = NULL,
	.close = tcp_close,
};
