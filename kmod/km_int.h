/* SPDX-License-Identifier: GPL-2.0 */
/*
 * km_int.h - what the parts of kemari.ko tell each other. Included first
 * by every .c file of the module, so pr_fmt applies everywhere.
 */
#ifndef KM_INT_H
#define KM_INT_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/types.h>

/**
 * km__kernel_check() - may this module run on kernel @release?
 * @release: a utsname release string such as "6.1.0-56-amd64"
 *
 * The module hooks KVM internals that differ between kernel series, so it
 * runs only on the series listed in km_version.c. Logs why it refuses.
 *
 * Return: 0 if supported, -EINVAL if @release cannot be parsed,
 * -EOPNOTSUPP if it names a series this module does not know.
 */
int km__kernel_check(const char *release);

/**
 * km__dev_register() - create /dev/kemari
 *
 * Return: 0 or the misc_register() error.
 */
int km__dev_register(void);

/**
 * km__dev_unregister() - remove /dev/kemari
 *
 * Open files keep the module pinned (fops.owner), so no ioctl runs once
 * this returns at module exit.
 */
void km__dev_unregister(void);

#endif /* KM_INT_H */
