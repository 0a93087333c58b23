// SPDX-License-Identifier: GPL-2.0
/*
 * The i8042 keyboard controller, after Firecracker's: no keyboard behind
 * it, but the controller answers Linux's probe (command byte, self-test)
 * and command 0xfe, "pulse the reset line", ends the VM cleanly. With
 * reboot=k on the guest command line that is how reboot ends, and
 * poweroff too (init exits, the kernel panics, panic=N reboots).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "devices.h"
#include "vm.h"

#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08
#define STATUS_UNLOCKED 0x10
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_READ_OUTP 0xd0
#define CMD_WRITE_OUTP 0xd1
#define CMD_RESET 0xfe

struct i8042 {
	pthread_mutex_t lock;
	uint8_t status, ctr, out, pending_cmd;
};

static void push(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->status |= STATUS_OBF;
}

static void command(struct km_vm *vm, struct i8042 *k, uint8_t cmd)
{
	k->status |= STATUS_CMD;
	k->pending_cmd = 0;
	switch (cmd) {
	case CMD_READ_CTR:
		push(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
		k->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		push(k, 0x55);
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		push(k, 0x00);
		break;
	case CMD_READ_OUTP:
		push(k, 0x01);
		break;
	case CMD_RESET:
		km_vm_stop(vm, KM_VM_RESET,
			   "the guest reset the machine "
			   "through the i8042 controller");
		break;
	default:
		break;
	}
}

static void i8042_in(struct km_ioport *io, uint16_t port, uint8_t *data,
		     unsigned int size)
{
	struct i8042 *k = io->priv;

	(void)size;
	pthread_mutex_lock(&k->lock);
	if (port == I8042_CMD) {
		data[0] = k->status;
	} else if (port == I8042_DATA) {
		data[0] = k->out;
		k->status &= ~STATUS_OBF;
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		      unsigned int size)
{
	struct i8042 *k = io->priv;

	(void)size;
	pthread_mutex_lock(&k->lock);
	if (port == I8042_CMD) {
		command(io->vm, k, data[0]);
	} else if (port == I8042_DATA) {
		k->status &= ~STATUS_CMD;
		if (k->pending_cmd == CMD_WRITE_CTR)
			k->ctr = data[0];
		else if (k->pending_cmd == CMD_WRITE_OUTP && !(data[0] & 1))
			km_vm_stop(io->vm, KM_VM_RESET,
				   "the guest reset the "
				   "machine through the i8042 output port");
		k->pending_cmd = 0;
	}
	pthread_mutex_unlock(&k->lock);
}

static size_t i8042_save(struct km_ioport *io, void *buf, size_t cap)
{
	struct i8042 *k = io->priv;
	uint8_t *b = buf;

	if (cap < 4)
		return 0;
	pthread_mutex_lock(&k->lock);
	b[0] = k->status;
	b[1] = k->ctr;
	b[2] = k->out;
	b[3] = k->pending_cmd;
	pthread_mutex_unlock(&k->lock);
	return 4;
}

static int i8042_restore(struct km_ioport *io, const void *buf, size_t len)
{
	struct i8042 *k = io->priv;
	const uint8_t *b = buf;

	if (len != 4)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->status = b[0];
	k->ctr = b[1];
	k->out = b[2];
	k->pending_cmd = b[3];
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(struct km_ioport *io)
{
	struct i8042 *k = io->priv;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct km_ioport_ops i8042_ops = {
	.name = "i8042",
	.in = i8042_in,
	.out = i8042_out,
	.save = i8042_save,
	.restore = i8042_restore,
	.destroy = i8042_destroy,
};

int km_i8042_init(struct km_vm *vm, struct km_err *err)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	k->status = STATUS_SYS | STATUS_UNLOCKED;
	k->ctr = 0x44; /* translate, system flag; interrupts off */
	/* One range for 0x60-0x64; 0x61 (PIT speaker) never exits to us. */
	r = km_ioport_register(vm, I8042_DATA, 5, &i8042_ops, k);
	if (r < 0) {
		km_err_set(err, "registering the i8042 at 0x60/0x64 failed");
		i8042_destroy(&(struct km_ioport){ .priv = k });
	}
	return r;
}
