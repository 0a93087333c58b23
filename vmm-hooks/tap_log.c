// SPDX-License-Identifier: GPL-2.0
/*
 * The hook that only records: until the replicator attaches its own, this
 * is what proves the tap fires where it should (RIP at the OUT, the others
 * parked, the byte not yet written).
 */
#include <stdio.h>

#include "tap.h"
#include "vm.h"

int km_tap_log_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
		    void *opaque)
{
	FILE *log = opaque;
	uint64_t rip = 0;
	uint32_t i, n = ev->size * ev->count;
	int r = km_vcpu_get_rip(vcpu, &rip);

	if (r < 0)
		return r;
	fprintf(log, "tap vcpu=%u rip=%#llx port=%#x dev=%s parked=%u data=",
		ev->vcpu, (unsigned long long)rip, ev->port,
		ev->device ? ev->device : "-", km_vm_parked(vcpu->vm));
	for (i = 0; i < n; i++)
		fprintf(log, "%02x", ev->data[i]);
	fputc('\n', log);
	return ferror(log) ? -5 : 0;
}
