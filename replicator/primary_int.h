/* SPDX-License-Identifier: GPL-2.0 */
/* Private to primary.c and sync.c: the primary's engine state. */
#ifndef KEMARI_REPLICATOR_PRIMARY_INT_H
#define KEMARI_REPLICATOR_PRIMARY_INT_H

#include <sodium.h>
#include "digest.h"

#include "replicator_int.h"

/*
 * A PAGES message is flushed once it holds this many data pages, so the
 * secondary's receive and checksum of one message overlap with the
 * primary's checksum and send of the next.
 */
#define KM_FLUSH_PAGES 64u

/*
 * Messages are gathered into one vector and sent with one sendmsg() per
 * batch: a small epoch (BEGIN, PAGES, STATE, COMMIT) costs one system call.
 * A batch goes out once it holds KM_BATCH_BYTES, so large epochs still
 * pipeline with the secondary's receive and checksum. 512 KiB measured
 * best for 1024-page epochs with the two ends on two CPUs: 256 KiB
 * batches cost 16 system calls and ~1.3-1.5x the floor's time in them,
 * 768 KiB and more let the batch drop out of the cache before its
 * checksum (docs/performance.md).
 */
#define KM_BATCH_IOV 1024
#define KM_BATCH_BYTES (512u << 10)
#define KM_ARENA_SIZE (64u << 10)

/*
 * Checksumming (and the optional MAC) of a batch flushed in the middle of
 * an epoch is deferred until it is sent: the secondary receives and
 * hashes it while the primary hashes it. The last batch is hashed before
 * it goes out with its COMMIT, in one system call: sending the COMMIT on
 * its own measured worse (the secondary sleeps once more waiting for it).
 */
#define KM_HASH_QUEUE (KM_BATCH_IOV * 2)
#define KM_HQ_DIGEST 1u
#define KM_HQ_MAC 2u

struct km__hq {
	const void *buf;
	size_t len;
	unsigned int what; /* KM_HQ_* */
};

struct km_primary {
	struct km_primary_config cfg;
	struct km_transport *t;
	struct km__session sess;
	uint64_t npages;
	uint64_t nwords; /* bitmap words */
	uint64_t *bitmap; /* the epoch being shipped */
	uint64_t *pending; /* left dirty by the initial sync */
	uint64_t epoch; /* last acked */
	bool need_sync; /* reconnected to a replica we cannot continue */

	/* The message under construction. */
	struct km_page_run runs[KM_PAGES_MAX_RUNS];
	uint32_t nruns;
	uint32_t data_pages;
	uint8_t *bounce; /* sync rounds copy here: the guest is running */

	/* The batch being gathered; headers and meta live in the arena. */
	struct iovec batch[KM_BATCH_IOV];
	int nbatch;
	size_t batch_bytes;
	uint8_t arena[KM_ARENA_SIZE];
	size_t arena_used;

	/* What the digest (and MAC) still has to take in, in order. */
	struct km__hq hq[KM_HASH_QUEUE];
	unsigned int nhq;
	size_t hq_bytes;

	/* The epoch under construction. */
	bool sync;
	uint32_t nmsgs;
	struct km_epoch_stats es;
	uint64_t digest; /* of the epoch so far (digest.h) */
	crypto_generichash_state mac;

	/* Initial-sync progress, NULL outside km_primary_sync(). */
	const struct km_sync_opts *sync_opts;
	struct km_sync_progress progress;
	uint64_t sync_start_ns;

	struct km__stats_ring stats;
	char err[512];
};

/** km__primary_harvest() - fill p->bitmap from the dirty source + pending. */
int km__primary_harvest(struct km_primary *p);

/**
 * km__primary_ship() - send one epoch of p->bitmap and wait for its ACK.
 * @sync: an initial-sync round (pages copied first: the guest runs).
 */
int km__primary_ship(struct km_primary *p, bool sync,
		     const struct km_blob *blobs, unsigned int nblobs);

#endif
