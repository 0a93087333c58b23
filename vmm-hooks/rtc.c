// SPDX-License-Identifier: GPL-2.0
/*
 * The MC146818 RTC and its CMOS RAM, as much as Linux reads: the time and
 * date in BCD from the host's UTC clock, register A with UIP clear (Linux
 * waits for it to clear, forever if it never does), register D "valid".
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "vm.h"

#define RTC_PORT 0x70
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t time_reg(unsigned int reg)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (reg) {
	case 0x00:
		return bcd(tm.tm_sec);
	case 0x02:
		return bcd(tm.tm_min);
	case 0x04:
		return bcd(tm.tm_hour);
	case 0x06:
		return bcd(tm.tm_wday + 1);
	case 0x07:
		return bcd(tm.tm_mday);
	case 0x08:
		return bcd(tm.tm_mon + 1);
	case 0x09:
		return bcd(tm.tm_year % 100);
	default:
		return bcd(19 + tm.tm_year / 100);
	}
}

static uint8_t cmos_read(struct rtc *r, unsigned int reg)
{
	switch (reg) {
	case 0x00:
	case 0x02:
	case 0x04:
	case 0x06:
	case 0x07:
	case 0x08:
	case 0x09:
	case RTC_CENTURY:
		return time_reg(reg);
	case RTC_REG_C:
		return 0;
	default:
		return r->cmos[reg];
	}
}

static void rtc_in(struct km_ioport *io, uint16_t port, uint8_t *data,
		   unsigned int size)
{
	struct rtc *r = io->priv;

	(void)size;
	if (port != RTC_PORT + 1)
		return;
	pthread_mutex_lock(&r->lock);
	data[0] = cmos_read(r, r->index);
	pthread_mutex_unlock(&r->lock);
}

static void rtc_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		    unsigned int size)
{
	struct rtc *r = io->priv;

	(void)size;
	pthread_mutex_lock(&r->lock);
	if (port == RTC_PORT)
		r->index = data[0] & 0x7f; /* bit 7 is NMI disable */
	else if (r->index != RTC_REG_C && r->index != RTC_REG_D)
		r->cmos[r->index] = data[0];
	/* UIP stays clear whatever the guest writes to register A. */
	r->cmos[RTC_REG_A] &= 0x7f;
	pthread_mutex_unlock(&r->lock);
}

/* Index then the 128 CMOS bytes; the clock registers follow the host. */
static size_t rtc_save(struct km_ioport *io, void *buf, size_t cap)
{
	struct rtc *r = io->priv;

	if (cap < 1 + sizeof(r->cmos))
		return 0;
	pthread_mutex_lock(&r->lock);
	((uint8_t *)buf)[0] = r->index;
	memcpy((uint8_t *)buf + 1, r->cmos, sizeof(r->cmos));
	pthread_mutex_unlock(&r->lock);
	return 1 + sizeof(r->cmos);
}

static int rtc_restore(struct km_ioport *io, const void *buf, size_t len)
{
	struct rtc *r = io->priv;

	if (len != 1 + sizeof(r->cmos))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	r->index = ((const uint8_t *)buf)[0] & 0x7f;
	memcpy(r->cmos, (const uint8_t *)buf + 1, sizeof(r->cmos));
	r->cmos[RTC_REG_A] &= 0x7f;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void rtc_destroy(struct km_ioport *io)
{
	struct rtc *r = io->priv;

	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct km_ioport_ops rtc_ops = {
	.name = "rtc",
	.in = rtc_in,
	.out = rtc_out,
	.save = rtc_save,
	.restore = rtc_restore,
	.destroy = rtc_destroy,
};

int km_rtc_init(struct km_vm *vm, struct km_err *err)
{
	struct rtc *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz, 1024 Hz, UIP clear */
	r->cmos[RTC_REG_B] = 0x02; /* 24 hour, BCD, no interrupts */
	r->cmos[RTC_REG_D] = 0x80; /* battery good, time valid */
	ret = km_ioport_register(vm, RTC_PORT, 2, &rtc_ops, r);
	if (ret < 0) {
		km_err_set(err, "registering the RTC at %#x failed", RTC_PORT);
		rtc_destroy(&(struct km_ioport){ .priv = r });
	}
	return ret;
}
