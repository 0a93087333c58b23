/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The legacy devices, one file each, each registering its ports with the
 * dispatcher (ioport.h). Every init returns 0 or -errno with @err set; the
 * device's state is freed by its ops->destroy from km_vm_destroy().
 */
#ifndef KEMARI_VMM_DEVICES_H
#define KEMARI_VMM_DEVICES_H

#include "err.h"

struct km_vm;

#define KM_SERIAL_PORT 0x3f8
#define KM_SERIAL_IRQ 4

/*
 * km_serial_init() - an 8250/16550A UART at 0x3f8 on IRQ 4 whose
 * transmitted bytes are written to @out_fd (-1: dropped). THR writes are
 * tapped. The fd is not closed by the device.
 */
int km_serial_init(struct km_vm *vm, int out_fd, struct km_err *err);

/* km_rtc_init() - the MC146818 RTC/CMOS at 0x70-0x71, host time in BCD. */
int km_rtc_init(struct km_vm *vm, struct km_err *err);

/*
 * km_i8042_init() - enough of the i8042 keyboard controller at 0x60/0x64
 * for Linux to probe it and for command 0xfe (pulse reset) to end the VM
 * cleanly, which is how a guest reboot or poweroff (with reboot=k) ends.
 */
int km_i8042_init(struct km_vm *vm, struct km_err *err);

/*
 * km_pci_init() - the PCI host bridge's type 1 configuration ports
 * 0xcf8-0xcff: the address register reads back, data reads find no device.
 */
int km_pci_init(struct km_vm *vm, struct km_err *err);

#endif
