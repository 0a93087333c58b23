// SPDX-License-Identifier: GPL-2.0
/*
 * CPG frames: encode and validating decode. Every field is checked before
 * the decoded message is handed to anyone.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "km_msg.h"

static uint64_t frame_sum(const struct km_wire_vm *w)
{
	struct km_wire_vm c = *w;

	c.hdr.checksum = 0;
	return XXH64(&c, sizeof(c), 0);
}

static bool name_ok(const char *s, size_t len, bool may_be_empty)
{
	size_t n = strnlen(s, len);

	return n < len && (may_be_empty || n > 0);
}

int km_msg_encode(const struct km_msg *m, struct km_wire_vm *w)
{
	if (m->type < KM_WIRE_STATE || m->type > KM_WIRE__MAX)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->hdr.magic = htole32(KM_MSG_MAGIC);
	w->hdr.version = htole16(KM_MSG_VERSION);
	w->hdr.type = htole16((uint16_t)m->type);
	w->hdr.length = htole32(sizeof(*w));
	memcpy(w->from, m->from, sizeof(w->from) - 1);
	memcpy(w->to, m->to, sizeof(w->to) - 1);
	memcpy(w->vm, m->vm, sizeof(w->vm) - 1);
	w->generation = htole64(m->generation);
	w->role = (uint8_t)m->role;
	w->replica = (uint8_t)m->replica;
	w->conn = (uint8_t)m->conn;
	w->repl = (uint8_t)m->repl;
	w->protected = m->protected;
	w->suspended = m->suspended;
	w->hdr.checksum = htole64(frame_sum(w));
	return 0;
}

static int check_header(const struct km_wire_vm *w, size_t len)
{
	uint16_t type = le16toh(w->hdr.type);

	if (le32toh(w->hdr.magic) != KM_MSG_MAGIC)
		return -EPROTO;
	if (le16toh(w->hdr.version) != KM_MSG_VERSION)
		return -ENOTSUP;
	if (le32toh(w->hdr.length) != len || len != sizeof(*w))
		return -EPROTO;
	if (type < KM_WIRE_STATE || type > KM_WIRE__MAX)
		return -EPROTO;
	if (le64toh(w->hdr.checksum) != frame_sum(w))
		return -EBADMSG;
	return 0;
}

static int check_body(const struct km_wire_vm *w)
{
	if (!name_ok(w->from, sizeof(w->from), false) ||
	    !name_ok(w->to, sizeof(w->to), true) ||
	    !name_ok(w->vm, sizeof(w->vm), false))
		return -EPROTO;
	if (w->role > KM_ROLE_PRIMARY || w->replica > KM_REPLICA_UPTODATE ||
	    w->conn > KM_CONN_CONNECTED || w->repl > KM_REPL_LOCKSTEP ||
	    w->protected > 1 || w->suspended > 1)
		return -EPROTO;
	return 0;
}

int km_msg_decode(const void *buf, size_t len, struct km_msg *m)
{
	struct km_wire_vm w;
	int r;

	if (len < sizeof(struct km_wire_hdr))
		return -EPROTO;
	if (len != sizeof(w)) {
		/* Still tell a future version from garbage. */
		memcpy(&w.hdr, buf, sizeof(w.hdr));
		if (le32toh(w.hdr.magic) == KM_MSG_MAGIC &&
		    le16toh(w.hdr.version) != KM_MSG_VERSION)
			return -ENOTSUP;
		return -EPROTO;
	}
	memcpy(&w, buf, sizeof(w));
	r = check_header(&w, len);
	r = r ?: check_body(&w);
	if (r)
		return r;
	memset(m, 0, sizeof(*m));
	m->type = (enum km_msg_type)le16toh(w.hdr.type);
	memcpy(m->from, w.from, sizeof(m->from));
	memcpy(m->to, w.to, sizeof(m->to));
	memcpy(m->vm, w.vm, sizeof(m->vm));
	m->generation = le64toh(w.generation);
	m->role = w.role;
	m->replica = w.replica;
	m->conn = w.conn;
	m->repl = w.repl;
	m->protected = w.protected;
	m->suspended = w.suspended;
	return 0;
}
