/* SPDX-License-Identifier: GPL-2.0 */
/* Private to replicator/: message I/O helpers and the handshake. */
#ifndef KEMARI_REPLICATOR_INT_H
#define KEMARI_REPLICATOR_INT_H

#include <stdint.h>
#include <time.h>

#include "replicator.h"

/* Largest control message: an ERROR with the longest text. */
#define KM_CTL_MAX (KM_WIRE_HDR_SIZE + KM_ERROR_FIXED + KM_ERROR_MAX_TEXT)
#define KM_SESSION_KEY_SIZE 32

/* What both ends agree on in the handshake. */
struct km__session {
	uint32_t flags; /* KM_HELLO_* */
	uint64_t mem_size;
	uint8_t key[KM_SESSION_KEY_SIZE]; /* per-session MAC key */
	uint64_t last_epoch; /* the secondary's, from the welcome ACK */
	uint64_t generation;
};

/**
 * km__recv_ctl() - receive one whole control message into @raw.
 * @raw: KM_CTL_MAX bytes; header first, then the body.
 *
 * Validates header and checksum; PAGES and STATE are refused with
 * -KM_ESEQUENCE (they are streamed by the secondary itself). An ERROR is
 * decoded into @peer_err (text) and its code is returned.
 */
int km__recv_ctl(struct km_transport *t, uint8_t *raw, struct km_wire_hdr *h,
		 char *peer_err, size_t errlen);

/** km__send_error() - best-effort ERROR to the peer (sticky errors kept). */
void km__send_error(struct km_transport *t, int code, uint64_t epoch,
		    const char *text);

/**
 * km__auth_client() - primary side of the handshake.
 * @s: flags and mem_size in; session key, last_epoch, generation out.
 */
int km__auth_client(struct km_transport *t, const uint8_t *key, size_t key_len,
		    struct km__session *s, char *err, size_t errlen);

/**
 * km__auth_server() - secondary side of the handshake.
 * @s: flags, mem_size, last_epoch, generation in (what this secondary
 *	expects and holds); session key out.
 */
int km__auth_server(struct km_transport *t, const uint8_t *key, size_t key_len,
		    struct km__session *s, char *err, size_t errlen);

struct km__stats_ring {
	struct km_stats tot;
	uint64_t pause[KM_STATS_WINDOW];
	uint64_t harvest[KM_STATS_WINDOW];
	uint64_t send[KM_STATS_WINDOW];
	uint64_t ack[KM_STATS_WINDOW];
};

/** km__stats_add() - record one epoch. */
void km__stats_add(struct km__stats_ring *r, const struct km_epoch_stats *e);

/** km__stats_get() - totals, last epoch and percentiles over the window. */
void km__stats_get(const struct km__stats_ring *r, struct km_stats *st);

#endif
