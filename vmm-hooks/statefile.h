/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A whole VM in one file, for kemari-vmm --save/--restore: what the
 * replicator ships as pages plus a state blob, written locally instead.
 *
 *   header  u32 magic "KMVF" | u16 version 1 | u16 flags 0
 *           | u64 mem_size | u32 ncpus | u32 reserved 0
 *           | u64 blob_len | u64 XXH64(RAM, seed 0)
 *   the state blob (state.h: its own header and checksum)
 *   RAM, mem_size bytes
 *
 * Little-endian, fixed-width. The loader checks the header against the
 * file's size and the VMM's limits before allocating anything, and the RAM
 * checksum before any state is applied.
 */
#ifndef KEMARI_VMM_STATEFILE_H
#define KEMARI_VMM_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KM_STATEFILE_MAGIC 0x46564d4bu /* "KMVF" */
#define KM_STATEFILE_VERSION 1

struct km_statefile_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t reserved;
	uint64_t blob_len;
	uint64_t ram_hash;
};

struct km_vm;

/*
 * km_statefile_save() - write @vm's state and RAM to @path (via a
 * temporary file renamed into place). Same conditions as
 * km_vm_state_save(): from a tap hook or with the VM not running.
 */
int km_statefile_save(struct km_vm *vm, const char *path, struct km_err *err);

/*
 * km_statefile_open() - read and check @path's header: returns an open fd
 * positioned after it, or -errno with @err set.
 */
int km_statefile_open(const char *path, struct km_statefile_hdr *hdr,
		      struct km_err *err);

/*
 * km_statefile_load() - read the blob and RAM from @fd (after
 * km_statefile_open()) into @vm, created with the header's size and vCPU
 * count, verify RAM, and restore the state. Closes nothing.
 */
int km_statefile_load(struct km_vm *vm, int fd,
		      const struct km_statefile_hdr *hdr, struct km_err *err);

#endif
