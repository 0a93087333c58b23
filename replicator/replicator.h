/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The checkpoint engine. A primary ships epochs of guest memory and opaque
 * device/vCPU state to a secondary over a transport (transport.h):
 *
 *   primary                         secondary
 *   HELLO(nonce_c)          ---->
 *                           <----   CHALLENGE(nonce_s, mac_s)
 *   RESPONSE(mac_c)         ---->
 *                           <----   ACK(last epoch, generation)
 *   BEGIN(N, gen) PAGES... STATE... COMMIT(N, digest[, mac]) ---->
 *                                   stage, verify
 *                           <----   ACK(N) or ERROR
 *                                   apply to the replica
 *
 * docs/protocol.md describes every message and both state machines.
 */
#ifndef KEMARI_REPLICATOR_H
#define KEMARI_REPLICATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"
#include "wire.h"

#define KM_KEY_MIN 16 /* bytes of pre-shared key, at least */

/* Per-epoch statistics; times in nanoseconds. */
struct km_epoch_stats {
	uint64_t epoch;
	uint64_t pages; /* dirty pages shipped, zero pages included */
	uint64_t zero_pages; /* sent as markers */
	uint64_t wire_bytes; /* headers included */
	uint64_t harvest_ns; /* dirty bitmap collection */
	uint64_t send_ns; /* encode, checksum, send */
	uint64_t ack_ns; /* waiting for ACK */
	uint64_t pause_ns; /* the three above */
};

/* Running figures over the last KM_STATS_WINDOW epochs. */
#define KM_STATS_WINDOW 1024
struct km_stats {
	uint64_t epochs;
	uint64_t pages;
	uint64_t wire_bytes;
	struct km_epoch_stats last;
	uint64_t pause_p50_ns, pause_p99_ns;
	uint64_t harvest_p50_ns, harvest_p99_ns;
	uint64_t send_p50_ns, send_p99_ns;
	uint64_t ack_p50_ns, ack_p99_ns;
};

/*
 * Dirty-bitmap source: set bit i (bitmap[i / 64] bit i % 64) for each page
 * written since the previous call; the bitmap arrives cleared. The VMM ORs
 * KVM's dirty log with its own write log here.
 */
typedef int (*km_dirty_fn)(void *opaque, uint64_t *bitmap, uint64_t npages);

/* Opaque state blob shipped with an epoch (vCPU, irqchip, a device...). */
struct km_blob {
	uint32_t tag; /* != 0, unique within an epoch */
	uint32_t len;
	const void *data;
};

struct km_primary_config {
	void *mem; /* guest memory, page aligned */
	uint64_t mem_size; /* multiple of KM_PAGE_SIZE */
	km_dirty_fn dirty;
	void *dirty_opaque;
	const uint8_t *key; /* pre-shared key */
	size_t key_len; /* >= KM_KEY_MIN */
	uint64_t generation; /* of this primary's promotion */
	bool data_auth; /* MAC every epoch (full-data authentication) */
	unsigned int ack_timeout_ms; /* 0: wait forever */
	/*
	 * How long the wait for an ACK polls before it sleeps (transport.h);
	 * 0: KM_SPIN_US_DEFAULT, KM_SPIN_NEVER: sleep at once.
	 */
	unsigned int spin_us;
};

#define KM_SPIN_US_DEFAULT 100u
#define KM_SPIN_NEVER UINT32_MAX

/** km_spin_us() - the polling time, in us, a configured spin_us means. */
static inline unsigned int km_spin_us(unsigned int cfg)
{
	if (cfg == KM_SPIN_NEVER)
		return 0;
	return cfg ? cfg : KM_SPIN_US_DEFAULT;
}

struct km_primary;

/**
 * km_primary_create() - authenticate to a secondary and set up an engine.
 * @t: connected transport; owned by the primary from now on, closed by
 *	km_primary_destroy() (and on failure).
 *
 * Return: 0, -KM_EAUTH if the secondary failed to prove the key, the
 * secondary's ERROR code, or a transport error. km_primary_strerror()
 * then holds a sentence describing the failure.
 */
int km_primary_create(const struct km_primary_config *cfg,
		      struct km_transport *t, struct km_primary **out,
		      char *err, size_t errlen);

/**
 * km_primary_epoch() - ship one epoch and wait for its ACK.
 *
 * Harvests the dirty bitmap (plus anything left pending by an initial
 * sync), sends BEGIN, PAGES, one STATE per blob, COMMIT, and waits for
 * ACK. The guest must not run meanwhile.
 * Return: 0 when acked; a negative error otherwise, after which the
 * connection is unusable and the replica is at the last acked epoch or,
 * if the failure hit after the secondary committed, at this one.
 */
int km_primary_epoch(struct km_primary *p, const struct km_blob *blobs,
		     unsigned int nblobs);

/**
 * km_primary_reconnect() - resume on a new connection after a failure.
 * @t: connected transport, owned by the primary from now on (the old one
 *	is closed).
 *
 * Authenticates again and takes the secondary's last committed epoch. The
 * pages of an epoch that failed stay dirty, so the next km_primary_epoch()
 * ships them again. Return: 0 if the secondary is at this primary's last
 * acked epoch or the one in flight when it failed; -KM_EGAP if it is
 * elsewhere (a fresh or foreign replica): km_primary_epoch() then refuses
 * with -KM_EGAP until km_primary_sync() has run; or the handshake's error.
 */
int km_primary_reconnect(struct km_primary *p, struct km_transport *t,
			 char *err, size_t errlen);

/** km_primary_last_epoch() - the last epoch acknowledged by the secondary. */
uint64_t km_primary_last_epoch(const struct km_primary *p);

/** km_primary_stats() - running statistics (see struct km_stats). */
void km_primary_stats(const struct km_primary *p, struct km_stats *st);

/** km_primary_strerror() - sentence describing the last failure. */
const char *km_primary_strerror(const struct km_primary *p);

/** km_primary_destroy() - close the connection and free; NULL allowed. */
void km_primary_destroy(struct km_primary *p);

/* Initial-sync progress, reported after every message and every round. */
struct km_sync_progress {
	unsigned int round; /* 0: the full copy */
	uint64_t bytes_done; /* page bytes shipped, all rounds */
	uint64_t bytes_total; /* guest memory size */
	uint64_t rate_bps; /* bytes per second so far */
	uint64_t eta_ms; /* for the rest of the full copy, 0 after it */
	uint64_t remaining_pages; /* dirty after the last round */
};

typedef void (*km_progress_fn)(void *opaque,
			       const struct km_sync_progress *progress);

struct km_sync_opts {
	unsigned int max_rounds; /* pre-copy rounds after the full copy */
	uint64_t small_pages; /* stop when this few pages remain dirty */
	km_progress_fn progress;
	void *opaque;
};

/**
 * km_primary_sync() - initial sync while the guest keeps running.
 *
 * Sends all of memory, then pre-copy rounds of what the dirty source
 * reports, until at most @o->small_pages remain or @o->max_rounds ran.
 * The secondary's replica is Inconsistent until the next
 * km_primary_epoch(), which carries the remainder with the guest paused
 * and makes it UpToDate.
 */
int km_primary_sync(struct km_primary *p, const struct km_sync_opts *o);

struct km_secondary_config {
	void *replica; /* memfd-backed replica of guest memory */
	uint64_t mem_size;
	const uint8_t *key;
	size_t key_len;
	bool data_auth; /* require MAC on every epoch */
	uint64_t staging_pages; /* most pages in one epoch; 0: all memory */
	/* Called after an epoch is applied (its ACK is already sent). */
	void (*applied)(void *opaque, uint64_t epoch);
	void *opaque;
	/* Polling inside an epoch, as km_primary_config.spin_us. */
	unsigned int spin_us;
	/*
	 * Once an epoch has begun, the longest wait for more of it before
	 * the session ends with -ETIMEDOUT (its staged data dropped): a
	 * primary that hangs mid-epoch (frozen, stopped, or a host whose
	 * kernel still answers TCP) is noticed. 0:
	 * KM_EPOCH_TIMEOUT_MS_DEFAULT. Between epochs there is no bound: an
	 * idle guest sends nothing.
	 */
	unsigned int epoch_timeout_ms;
};

#define KM_EPOCH_TIMEOUT_MS_DEFAULT 10000u

struct km_secondary;

/** km_secondary_create() - allocate the staging area and state store. */
int km_secondary_create(const struct km_secondary_config *cfg,
			struct km_secondary **out);

/**
 * km_secondary_serve() - run one session on a connected transport.
 *
 * Authenticates the primary, then stages, verifies, acks and applies
 * epochs until the peer goes away or sends something invalid. An epoch is
 * acked (committed) once it arrived whole and verified, and applied before
 * anything more is read; on any error the
 * staged epoch is dropped, an ERROR goes to the peer (best effort), and
 * the replica stays at the last committed epoch.
 * Return: the error that ended the session (-ECONNRESET: the peer closed);
 * km_secondary_strerror() describes it. @t stays owned by the caller.
 */
int km_secondary_serve(struct km_secondary *s, struct km_transport *t);

/** km_secondary_epoch() - the last committed epoch (0: none yet). */
uint64_t km_secondary_epoch(const struct km_secondary *s);

/** km_secondary_generation() - generation of the last committed epoch. */
uint64_t km_secondary_generation(const struct km_secondary *s);

/** km_secondary_consistent() - true if the replica is UpToDate. */
bool km_secondary_consistent(const struct km_secondary *s);

/**
 * km_secondary_state() - committed blob with @tag, or NULL (errno ENOENT).
 * @len: set to the blob's length.
 */
const void *km_secondary_state(const struct km_secondary *s, uint32_t tag,
			       uint32_t *len);

/** km_secondary_strerror() - sentence describing why a session ended. */
const char *km_secondary_strerror(const struct km_secondary *s);

/** km_secondary_destroy() - free; NULL allowed. */
void km_secondary_destroy(struct km_secondary *s);

#endif
