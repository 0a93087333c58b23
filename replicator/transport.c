// SPDX-License-Identifier: GPL-2.0
/* Transport-neutral wrappers that keep the sticky stream error. */
#include "transport.h"

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
