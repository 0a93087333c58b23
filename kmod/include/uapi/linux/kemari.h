/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kemari.h - the ABI of /dev/kemari, shared by kemari.ko and userspace.
 *
 * Every structure has fixed-width fields and explicit padding, so 32-bit
 * and 64-bit callers see the same layout. An ioctl number encodes the size
 * of its argument: a caller built against another layout gets ENOTTY
 * instead of a misread structure.
 *
 * Userspace includes this as <linux/kemari.h> with kmod/include/uapi on
 * its include path (CMake: link the kemari-uapi interface target).
 */
#ifndef _UAPI_LINUX_KEMARI_H
#define _UAPI_LINUX_KEMARI_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The misc device: /dev/KEMARI_DEVICE_NAME, dynamic minor. */
#define KEMARI_DEVICE_NAME "kemari"

/*
 * Bumped on any incompatible change to this file. Additions that old
 * callers can ignore set a new feature bit instead.
 */
#define KEMARI_ABI_VERSION 1

/*
 * Feature bits reported by KEMARI_IOC_GET_VERSION. None is defined yet:
 * the sync gate and fault containment each add one when they land.
 */
#define KEMARI_FEATURES_KNOWN 0ULL

/* Not claimed in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define KEMARI_IOC_MAGIC 0xE7

/**
 * struct kemari_version - answer of KEMARI_IOC_GET_VERSION
 * @abi_version:	KEMARI_ABI_VERSION of the loaded module
 * @size:		sizeof(struct kemari_version) as the module knows it
 * @features:		KEMARI_FEATURE_* bits the loaded module implements
 */
struct kemari_version {
	__u32 abi_version;
	__u32 size;
	__u64 features;
};

#define KEMARI_IOC_GET_VERSION \
	_IOR(KEMARI_IOC_MAGIC, 0x00, struct kemari_version)

#endif /* _UAPI_LINUX_KEMARI_H */
