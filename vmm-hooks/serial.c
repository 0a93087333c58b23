// SPDX-License-Identifier: GPL-2.0
/*
 * An 8250/16550A UART (kvmtool's hw/serial.c shape), transmit only: every
 * byte written to THR goes straight to the output fd, so the transmitter is
 * always empty. The interrupt line follows the state (level): high while
 * IER enables THRI (transmitter empty is always true) or RDI with data. The
 * IOAPIC pin is edge-triggered, so Linux's 8250 driver gets an edge each
 * time it enables THRI to start sending, and its ISR keeps finding THRI in
 * IIR until it has sent everything and disables it again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices.h"
#include "vm.h"

enum {
	UART_RX_TX = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

/* The registers a checkpoint carries, fixed-width for the state format. */
struct serial_regs {
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr, irq_level;
};

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	uint8_t iir;
	int irq_level;
};

/* Lock held. */
static void update_irq(struct km_vm *vm, struct serial *s)
{
	uint8_t iir = 0;
	int level;

	if (s->ier & IER_THRI)
		iir = IIR_THRI;
	s->iir = (iir ? iir : IIR_NO_INT) |
		 ((s->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
	level = iir != 0;
	if (level != s->irq_level) {
		km_vm_irq_line(vm, KM_SERIAL_IRQ, level);
		s->irq_level = level;
	}
}

static uint8_t modem_status(const struct serial *s)
{
	uint8_t m = 0;

	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (Linux probes). */
	if (s->mcr & 0x01)
		m |= MSR_DSR;
	if (s->mcr & 0x02)
		m |= MSR_CTS;
	if (s->mcr & 0x04)
		m |= MSR_RI;
	if (s->mcr & 0x08)
		m |= MSR_DCD;
	return m;
}

static uint8_t reg_read(struct serial *s, unsigned int off)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (off) {
	case UART_RX_TX:
		return dlab ? s->dll : 0;
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR_FCR:
		return s->iir;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT;
	case UART_MSR:
		return modem_status(s);
	default:
		return s->scr;
	}
}

static void transmit(struct serial *s, uint8_t c)
{
	ssize_t n;

	if (s->out_fd < 0 || (s->mcr & MCR_LOOP))
		return;
	do
		n = write(s->out_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	/* A console that went away must not stop the guest: drop output. */
	if (n < 0)
		s->out_fd = -1;
}

static void reg_write(struct serial *s, unsigned int off, uint8_t v)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (off) {
	case UART_RX_TX:
		if (dlab)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = v;
		else
			s->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		s->fcr = v & 0xc9;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break;
	}
}

static void serial_in(struct km_ioport *io, uint16_t port, uint8_t *data,
		      unsigned int size)
{
	struct serial *s = io->priv;

	(void)size;
	pthread_mutex_lock(&s->lock);
	data[0] = reg_read(s, port - io->base);
	pthread_mutex_unlock(&s->lock);
}

static void serial_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		       unsigned int size)
{
	struct serial *s = io->priv;

	(void)size;
	pthread_mutex_lock(&s->lock);
	reg_write(s, port - io->base, data[0]);
	update_irq(io->vm, s);
	pthread_mutex_unlock(&s->lock);
}

/* A THR write (DLAB clear) is a byte leaving the VM. */
static bool serial_tapped(struct km_ioport *io, uint16_t port,
			  const uint8_t *data, unsigned int size)
{
	struct serial *s = io->priv;
	bool dlab;

	(void)data;
	(void)size;
	if (port != io->base + UART_RX_TX)
		return false;
	pthread_mutex_lock(&s->lock);
	dlab = s->lcr & LCR_DLAB;
	pthread_mutex_unlock(&s->lock);
	return !dlab;
}

static size_t serial_save(struct km_ioport *io, void *buf, size_t cap)
{
	struct serial *s = io->priv;
	struct serial_regs r;

	if (cap < sizeof(r))
		return 0;
	pthread_mutex_lock(&s->lock);
	r = (struct serial_regs){
		s->dll, s->dlm, s->ier, s->fcr,
		s->lcr, s->mcr, s->scr, (uint8_t)s->irq_level
	};
	pthread_mutex_unlock(&s->lock);
	memcpy(buf, &r, sizeof(r));
	return sizeof(r);
}

static int serial_restore(struct km_ioport *io, const void *buf, size_t len)
{
	struct serial *s = io->priv;
	struct serial_regs r;

	if (len != sizeof(r))
		return -EINVAL;
	memcpy(&r, buf, sizeof(r));
	pthread_mutex_lock(&s->lock);
	s->dll = r.dll;
	s->dlm = r.dlm;
	s->ier = r.ier & 0x0f;
	s->fcr = r.fcr;
	s->lcr = r.lcr;
	s->mcr = r.mcr & 0x1f;
	s->scr = r.scr;
	/* The line level is re-derived; KVM's irqchip state is restored too. */
	s->irq_level = -1;
	update_irq(io->vm, s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void serial_destroy(struct km_ioport *io)
{
	struct serial *s = io->priv;

	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct km_ioport_ops serial_ops = {
	.name = "serial",
	.in = serial_in,
	.out = serial_out,
	.tapped = serial_tapped,
	.save = serial_save,
	.restore = serial_restore,
	.destroy = serial_destroy,
};

int km_serial_init(struct km_vm *vm, int out_fd, struct km_err *err)
{
	struct serial *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->iir = IIR_NO_INT;
	r = km_ioport_register(vm, KM_SERIAL_PORT, 8, &serial_ops, s);
	if (r < 0) {
		km_err_set(err, "registering the UART at %#x failed",
			   KM_SERIAL_PORT);
		serial_destroy(&(struct km_ioport){ .priv = s });
	}
	return r;
}
