// SPDX-License-Identifier: GPL-2.0
/*
 * Test builds only (kbuild.sh --test): the deliberate fault behind
 * KEMARI_IOC_TEST_FAULT. A production kemari.ko is built with
 * km_notest.c instead and has no way to fault on purpose.
 */
#include "km_int.h"

#include <linux/compiler.h>
#include <linux/module.h>
#include <linux/printk.h>

#include <uapi/linux/kemari.h>

MODULE_INFO(kemari_test_build, "fault trigger (KEMARI_IOC_TEST_FAULT)");

/* Read through READ_ONCE so the compiler cannot see the fault coming. */
static unsigned long km_test_null;
static unsigned long km_test_noncanonical = 0xdead000000000000UL;

void km__test_fault(unsigned int kind)
{
	unsigned long addr = kind == KEMARI_TEST_FAULT_GP ?
				     READ_ONCE(km_test_noncanonical) :
				     READ_ONCE(km_test_null);

	pr_warn("test fault: %s at %#lx in KVM_RUN, vcpu->mutex held\n",
		kind == KEMARI_TEST_FAULT_GP ? "non-canonical access" :
					       "NULL dereference",
		addr);
	WRITE_ONCE(*(unsigned long *)addr, 1);
}
