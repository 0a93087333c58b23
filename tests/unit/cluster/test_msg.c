// SPDX-License-Identifier: GPL-2.0
/*
 * CPG frames: a round trip, and every malformed frame refused before any
 * field is used.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "km_msg.h"

static struct km_msg sample(void)
{
	struct km_msg m = { .type = KM_WIRE_STATE,
			    .generation = 0x1122334455667788ull,
			    .role = KM_ROLE_PRIMARY,
			    .replica = KM_REPLICA_UPTODATE,
			    .conn = KM_CONN_CONNECTED,
			    .repl = KM_REPL_LOCKSTEP,
			    .protected = true };

	strcpy(m.from, "alpha");
	strcpy(m.vm, "web1");
	return m;
}

Test(msg, round_trip)
{
	struct km_msg in = sample(), out;
	struct km_wire_vm w;

	in.type = KM_WIRE_HANDOVER;
	strcpy(in.to, "beta");
	cr_assert_eq(km_msg_encode(&in, &w), 0);
	cr_assert_eq(le32toh(w.hdr.magic), KM_MSG_MAGIC);
	cr_assert_eq(le64toh(w.generation), 0x1122334455667788ull);
	cr_assert_eq(km_msg_decode(&w, sizeof(w), &out), 0);
	cr_assert_eq(out.type, KM_WIRE_HANDOVER);
	cr_assert_str_eq(out.from, "alpha");
	cr_assert_str_eq(out.to, "beta");
	cr_assert_str_eq(out.vm, "web1");
	cr_assert_eq(out.generation, in.generation);
	cr_assert_eq(out.role, KM_ROLE_PRIMARY);
	cr_assert_eq(out.replica, KM_REPLICA_UPTODATE);
	cr_assert_eq(out.conn, KM_CONN_CONNECTED);
	cr_assert_eq(out.repl, KM_REPL_LOCKSTEP);
	cr_assert(out.protected);
	cr_assert_not(out.suspended);
}

Test(msg, encode_refuses_bad_type)
{
	struct km_msg m = sample();
	struct km_wire_vm w;

	m.type = (enum km_msg_type)0;
	cr_assert_eq(km_msg_encode(&m, &w), -EINVAL);
	m.type = (enum km_msg_type)(KM_WIRE__MAX + 1);
	cr_assert_eq(km_msg_encode(&m, &w), -EINVAL);
}

static struct km_wire_vm good(void)
{
	struct km_msg m = sample();
	struct km_wire_vm w;

	cr_assert_eq(km_msg_encode(&m, &w), 0);
	return w;
}

/* Re-seal after tampering so that the field check, not the sum, decides. */
static int decode_resealed(struct km_wire_vm *w)
{
	struct km_wire_vm c;
	struct km_msg m;
	uint64_t sum;

	w->hdr.checksum = 0;
	c = *w;
	sum = XXH64(&c, sizeof(c), 0);
	w->hdr.checksum = htole64(sum);
	return km_msg_decode(w, sizeof(*w), &m);
}

Test(msg, short_and_long_frames)
{
	struct km_wire_vm w = good();
	unsigned char big[sizeof(w) + 8] = { 0 };
	struct km_msg m;

	cr_assert_eq(km_msg_decode(&w, 3, &m), -EPROTO);
	cr_assert_eq(km_msg_decode(&w, sizeof(w) - 1, &m), -EPROTO);
	memcpy(big, &w, sizeof(w));
	cr_assert_eq(km_msg_decode(big, sizeof(big), &m), -EPROTO);
}

Test(msg, other_version_is_enotsup)
{
	struct km_wire_vm w = good();
	unsigned char big[sizeof(w) + 8] = { 0 };
	struct km_msg m;

	w.hdr.version = htole16(KM_MSG_VERSION + 1);
	cr_assert_eq(decode_resealed(&w), -ENOTSUP);
	memcpy(big, &w, sizeof(w));
	cr_assert_eq(km_msg_decode(big, sizeof(big), &m), -ENOTSUP,
		     "a longer frame of a newer version");
}

Test(msg, checksum_catches_flips)
{
	struct km_wire_vm w = good();
	struct km_msg m;

	w.generation ^= htole64(1);
	cr_assert_eq(km_msg_decode(&w, sizeof(w), &m), -EBADMSG);
}

Test(msg, bad_fields)
{
	struct km_wire_vm w;

	w = good();
	w.hdr.magic = 0;
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	w.hdr.type = htole16(99);
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	w.hdr.length = htole32(12);
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	memset(w.vm, 'x', sizeof(w.vm)); /* no NUL */
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	w.from[0] = '\0';
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	w.role = KM_ROLE_PRIMARY + 1;
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	w.repl = 9;
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	w.protected = 2;
	cr_assert_eq(decode_resealed(&w), -EPROTO);
	w = good();
	cr_assert_eq(decode_resealed(&w), 0, "resealing alone changes nothing");
}
