// SPDX-License-Identifier: GPL-2.0
/*
 * Control-message I/O and the connection handshake.
 *
 * The handshake is DRBD's shared-secret idea with both directions
 * covered; each side proves the key over a nonce the other side just drew,
 * so a recorded session replayed to either end fails:
 *
 *   primary                                secondary
 *   HELLO{flags, page, mem, Nc}     ---->
 *                                   <----  CHALLENGE{Ns, HMAC(K, "s"|H|Ns)}
 *   check the secondary's MAC
 *   RESPONSE{HMAC(K, "c"|H|Ns)}     ---->  check; then the parameters
 *                                   <----  ACK{last epoch, generation}
 *   session key = HMAC(K, "k"|H|Ns), H = the HELLO body (Nc inside).
 *
 * All MACs are libsodium's HMAC-SHA-256; comparisons are constant-time.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "replicator_int.h"

#define HANDSHAKE_TIMEOUT_MS 10000

static const char label_server[] = "kemari-v1-secondary";
static const char label_client[] = "kemari-v1-primary";
static const char label_session[] = "kemari-v1-session";

int km__recv_ctl(struct km_transport *t, uint8_t *raw, struct km_wire_hdr *h,
		 char *peer_err, size_t errlen)
{
	uint8_t *body = raw + KM_WIRE_HDR_SIZE;
	struct km_msg_error e;
	int r;

	r = km_transport_recv(t, raw, KM_WIRE_HDR_SIZE);
	r = r ?: km_wire_decode_hdr(raw, KM_WIRE_HDR_SIZE, h);
	if (r)
		return r;
	if (h->type == KM_MSG_PAGES || h->type == KM_MSG_STATE)
		return -KM_ESEQUENCE;
	r = km_transport_recv(t, body, h->length);
	r = r ?: km_wire_verify(raw, body, h->length);
	if (r || h->type != KM_MSG_ERROR)
		return r;
	r = km_wire_decode_error(h, body, h->length, &e);
	if (r)
		return r;
	snprintf(peer_err, errlen, "peer reported: %s (%s)", e.text,
		 km_strerror(e.code));
	return e.code;
}

void km__send_error(struct km_transport *t, int code, uint64_t epoch,
		    const char *text)
{
	uint8_t buf[KM_CTL_MAX];
	size_t n = km_wire_encode_error(buf, code, epoch, text);

	/* Best effort: the connection is being dropped anyway. */
	if (!km_transport_error(t))
		t->ops->sendv(t, &(struct iovec){ buf, n }, 1);
}

static void mac(uint8_t out[KM_MAC_SIZE], const uint8_t *key, size_t key_len,
		const char *label, const uint8_t *hello, const uint8_t *nonce)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label,
				      strlen(label) + 1);
	crypto_auth_hmacsha256_update(&st, hello, KM_HELLO_SIZE);
	crypto_auth_hmacsha256_update(&st, nonce, KM_NONCE_SIZE);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

static int init_sodium(char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -EIO;
	}
	return 0;
}

static int client_hello(struct km_transport *t, struct km__session *s,
			uint8_t *raw)
{
	struct km_msg_hello hello = {
		.flags = s->flags,
		.page_size = KM_PAGE_SIZE,
		.mem_size = s->mem_size,
	};

	randombytes_buf(hello.nonce, sizeof(hello.nonce));
	return km_transport_send(t, raw, km_wire_encode_hello(raw, &hello));
}

static int client_prove(struct km_transport *t, const uint8_t *key,
			size_t key_len, struct km__session *s,
			const uint8_t *hello, char *err, size_t errlen)
{
	uint8_t raw[KM_CTL_MAX], want[KM_MAC_SIZE];
	struct km_msg_challenge ch;
	struct km_msg_response resp;
	struct km_wire_hdr h;
	int r;

	r = km__recv_ctl(t, raw, &h, err, errlen);
	r = r	  ?:
		    km_wire_decode_challenge(&h, raw + KM_WIRE_HDR_SIZE,
					     h.length, &ch);
	if (r)
		return r;
	mac(want, key, key_len, label_server, hello, ch.nonce);
	if (crypto_verify_32(want, ch.mac)) {
		snprintf(
			err, errlen,
			"the secondary failed to prove the pre-shared key: check that both hosts use the same key");
		return -KM_EAUTH;
	}
	mac(resp.mac, key, key_len, label_client, hello, ch.nonce);
	mac(s->key, key, key_len, label_session, hello, ch.nonce);
	return km_transport_send(t, raw, km_wire_encode_response(raw, &resp));
}

int km__auth_client(struct km_transport *t, const uint8_t *key, size_t key_len,
		    struct km__session *s, char *err, size_t errlen)
{
	uint8_t hello[KM_CTL_MAX], raw[KM_CTL_MAX];
	struct km_msg_ack ack;
	struct km_wire_hdr h;
	int r;

	r = init_sodium(err, errlen);
	r = r ?: client_hello(t, s, hello);
	r = r	  ?:
		    client_prove(t, key, key_len, s, hello + KM_WIRE_HDR_SIZE,
				 err, errlen);
	r = r ?: km__recv_ctl(t, raw, &h, err, errlen);
	r = r ?: km_wire_decode_ack(&h, raw + KM_WIRE_HDR_SIZE, h.length, &ack);
	if (r)
		return r;
	s->last_epoch = ack.epoch;
	s->generation = ack.generation;
	return 0;
}

static int server_check(const struct km__session *s,
			const struct km_msg_hello *hello, char *err,
			size_t errlen)
{
	if (hello->mem_size != s->mem_size) {
		snprintf(
			err, errlen,
			"guest memory size differs: primary %llu bytes, secondary %llu: configure the same size on both",
			(unsigned long long)hello->mem_size,
			(unsigned long long)s->mem_size);
		return -KM_EFIELD;
	}
	if (hello->flags != s->flags) {
		snprintf(
			err, errlen,
			"full-data authentication is %s on the primary but %s here: set it alike on both",
			hello->flags & KM_HELLO_DATA_AUTH ? "on" : "off",
			s->flags & KM_HELLO_DATA_AUTH ? "on" : "off");
		return -KM_EFIELD;
	}
	return 0;
}

static int server_challenge(struct km_transport *t, const uint8_t *key,
			    size_t key_len, const uint8_t *hello,
			    uint8_t *nonce)
{
	struct km_msg_challenge ch;
	uint8_t raw[KM_CTL_MAX];

	randombytes_buf(ch.nonce, sizeof(ch.nonce));
	memcpy(nonce, ch.nonce, KM_NONCE_SIZE);
	mac(ch.mac, key, key_len, label_server, hello, ch.nonce);
	return km_transport_send(t, raw, km_wire_encode_challenge(raw, &ch));
}

static int server_verify(struct km_transport *t, const uint8_t *key,
			 size_t key_len, const uint8_t *hello,
			 const uint8_t *nonce, char *err, size_t errlen)
{
	uint8_t raw[KM_CTL_MAX], want[KM_MAC_SIZE];
	struct km_msg_response resp;
	struct km_wire_hdr h;
	int r;

	r = km__recv_ctl(t, raw, &h, err, errlen);
	r = r	  ?:
		    km_wire_decode_response(&h, raw + KM_WIRE_HDR_SIZE,
					    h.length, &resp);
	if (r)
		return r;
	mac(want, key, key_len, label_client, hello, nonce);
	if (crypto_verify_32(want, resp.mac)) {
		snprintf(
			err, errlen,
			"the primary failed to prove the pre-shared key (wrong key or a replayed session): connection refused");
		return -KM_EAUTH;
	}
	return 0;
}

static int server_hello(struct km_transport *t, uint8_t *raw,
			struct km_msg_hello *hello, char *err, size_t errlen)
{
	struct km_wire_hdr h;
	int r;

	r = km__recv_ctl(t, raw, &h, err, errlen);
	r = r	  ?:
		    km_wire_decode_hello(&h, raw + KM_WIRE_HDR_SIZE, h.length,
					 hello);
	if (r && !*err)
		snprintf(err, errlen, "invalid HELLO from the primary: %s",
			 km_strerror(r));
	return r;
}

int km__auth_server(struct km_transport *t, const uint8_t *key, size_t key_len,
		    struct km__session *s, char *err, size_t errlen)
{
	uint8_t raw[KM_CTL_MAX], nonce[KM_NONCE_SIZE];
	const uint8_t *body = raw + KM_WIRE_HDR_SIZE;
	struct km_msg_hello hello;
	struct km_msg_ack ack = { s->last_epoch, s->generation };
	int r;

	*err = '\0';
	r = init_sodium(err, errlen);
	r = r ?: t->ops->set_timeout(t, HANDSHAKE_TIMEOUT_MS);
	r = r ?: server_hello(t, raw, &hello, err, errlen);
	r = r ?: server_challenge(t, key, key_len, body, nonce);
	r = r ?: server_verify(t, key, key_len, body, nonce, err, errlen);
	r = r ?: server_check(s, &hello, err, errlen);
	if (r && !*err)
		snprintf(err, errlen, "handshake with the primary failed: %s",
			 km_strerror(r));
	if (r) {
		km__send_error(t, r, 0, err);
		return r;
	}
	mac(s->key, key, key_len, label_session, body, nonce);
	r = km_transport_send(t, raw, km_wire_encode_ack(raw, &ack));
	return r ?: t->ops->set_timeout(t, 0);
}
