// SPDX-License-Identifier: GPL-2.0
/*
 * Saving and restoring the whole VM. The writer keeps a sticky error
 * (after the first failure every put is a no-op; checked once at the end).
 * The reader validates the entire blob into a table of section pointers
 * before the first KVM ioctl, so a bad blob leaves the VM untouched.
 *
 * Restore order per vCPU follows the kernel's KVM selftests
 * (vcpu_load_state): sregs (APIC base, EFER) before MSRs and the LAPIC,
 * XCRs before XSAVE, events and MP state, debug registers, regs last.
 */
#include "state.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xxhash.h>

#include "vm.h"

#define MAX_MSRS 4096
#define DEVICE_STATE_MAX 512
#define NCHIPS 3
#define NVCPU_SECS (KM_ST_DEBUGREGS - KM_ST_REGS + 1)

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	uint32_t nsections;
	int err;
	struct km_err *why;
};

static void *w_reserve(struct wbuf *w, size_t n)
{
	uint8_t *np;
	size_t cap;

	if (w->err)
		return NULL;
	if (w->len + n > w->cap) {
		cap = (w->cap ? w->cap * 2 : 65536) + n;
		np = realloc(w->p, cap);
		if (!np) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->p = np;
		w->cap = cap;
	}
	w->len += n;
	return w->p + w->len - n;
}

static void w_section(struct wbuf *w, uint32_t type, uint32_t index,
		      const void *data, size_t len)
{
	struct km_state_sec sec = { .type = type,
				    .index = index,
				    .len = (uint32_t)len };
	uint8_t *at = w_reserve(w, sizeof(sec) + len);

	if (!at)
		return;
	memcpy(at, &sec, sizeof(sec));
	memcpy(at + sizeof(sec), data, len);
	w->nsections++;
}

static void w_fail(struct wbuf *w, const char *what, unsigned int index)
{
	if (w->err)
		return;
	w->err = -errno;
	km_err_set(w->why, "saving the VM state: %s (%u) failed: %s", what,
		   index, strerror(errno));
}

/* One GET ioctl of @size bytes into a section; @preset is copied first. */
static void w_ioctl(struct wbuf *w, int fd, unsigned long req, uint32_t type,
		    uint32_t index, size_t size, const void *preset,
		    const char *what)
{
	void *buf;

	if (w->err)
		return;
	buf = calloc(1, size);
	if (!buf) {
		w->err = -ENOMEM;
		return;
	}
	if (preset)
		memcpy(buf, preset, size);
	if (ioctl(fd, req, buf) < 0)
		w_fail(w, what, index);
	else
		w_section(w, type, index, buf, size);
	free(buf);
}

static struct kvm_msr_list *msr_index_list(struct km_vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;

	if (ioctl(vm->kvm.fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
	    errno != E2BIG)
		return NULL;
	if (probe.nmsrs > MAX_MSRS)
		probe.nmsrs = MAX_MSRS;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm.fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	return list;
}

/*
 * KVM_GET_MSRS stops at the first MSR it cannot read and returns how many
 * it did: drop that one and ask again (bounded by the list's length).
 */
static void save_msrs(struct wbuf *w, struct km_vcpu *v,
		      const struct kvm_msr_list *list)
{
	uint32_t i, n = list->nmsrs;
	struct kvm_msrs *m;
	int r;

	m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (!m) {
		w->err = w->err ? w->err : -ENOMEM;
		return;
	}
	for (i = 0; i < n; i++)
		m->entries[i].index = list->indices[i];
	for (;;) {
		m->nmsrs = n;
		r = ioctl(v->fd, KVM_GET_MSRS, m);
		if (r < 0 || (uint32_t)r >= n)
			break;
		memmove(&m->entries[r], &m->entries[r + 1],
			(n - r - 1) * sizeof(m->entries[0]));
		n--;
	}
	if (r < 0)
		w_fail(w, "KVM_GET_MSRS", v->id);
	else
		w_section(w, KM_ST_MSRS, v->id, m->entries,
			  n * sizeof(m->entries[0]));
	free(m);
}

static void save_vcpu(struct wbuf *w, struct km_vcpu *v,
		      const struct kvm_msr_list *list)
{
	int fd = v->fd;

	w_ioctl(w, fd, KVM_GET_REGS, KM_ST_REGS, v->id, sizeof(struct kvm_regs),
		NULL, "KVM_GET_REGS");
	w_ioctl(w, fd, KVM_GET_SREGS, KM_ST_SREGS, v->id,
		sizeof(struct kvm_sregs), NULL, "KVM_GET_SREGS");
	w_ioctl(w, fd, KVM_GET_XSAVE, KM_ST_XSAVE, v->id,
		sizeof(struct kvm_xsave), NULL, "KVM_GET_XSAVE");
	w_ioctl(w, fd, KVM_GET_XCRS, KM_ST_XCRS, v->id, sizeof(struct kvm_xcrs),
		NULL, "KVM_GET_XCRS");
	save_msrs(w, v, list);
	w_ioctl(w, fd, KVM_GET_LAPIC, KM_ST_LAPIC, v->id,
		sizeof(struct kvm_lapic_state), NULL, "KVM_GET_LAPIC");
	w_ioctl(w, fd, KVM_GET_VCPU_EVENTS, KM_ST_EVENTS, v->id,
		sizeof(struct kvm_vcpu_events), NULL, "KVM_GET_VCPU_EVENTS");
	w_ioctl(w, fd, KVM_GET_MP_STATE, KM_ST_MP_STATE, v->id,
		sizeof(struct kvm_mp_state), NULL, "KVM_GET_MP_STATE");
	w_ioctl(w, fd, KVM_GET_DEBUGREGS, KM_ST_DEBUGREGS, v->id,
		sizeof(struct kvm_debugregs), NULL, "KVM_GET_DEBUGREGS");
}

static void save_chips(struct wbuf *w, struct km_vm *vm)
{
	struct kvm_irqchip chip;
	uint32_t i;

	for (i = 0; i < NCHIPS; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;
		w_ioctl(w, vm->fd, KVM_GET_IRQCHIP, KM_ST_IRQCHIP, i,
			sizeof(chip), &chip, "KVM_GET_IRQCHIP");
	}
	w_ioctl(w, vm->fd, KVM_GET_PIT2, KM_ST_PIT, 0,
		sizeof(struct kvm_pit_state2), NULL, "KVM_GET_PIT2");
	w_ioctl(w, vm->fd, KVM_GET_CLOCK, KM_ST_CLOCK, 0,
		sizeof(struct kvm_clock_data), NULL, "KVM_GET_CLOCK");
}

static void save_devices(struct wbuf *w, struct km_vm *vm)
{
	uint8_t buf[DEVICE_STATE_MAX];
	unsigned int i;
	size_t n;

	for (i = 0; i < vm->nioports; i++) {
		struct km_ioport *io = &vm->ioports[i];

		if (!io->ops->save)
			continue;
		n = io->ops->save(io, buf, sizeof(buf));
		w_section(w, KM_ST_DEVICE, io->base, buf, n);
	}
}

static void seal(struct wbuf *w)
{
	struct km_state_hdr hdr = {
		.magic = KM_STATE_MAGIC,
		.version = KM_STATE_VERSION,
		.nsections = w->nsections,
		.payload_len = w->len - sizeof(hdr),
	};

	hdr.checksum = XXH64(w->p + sizeof(hdr), hdr.payload_len, 0);
	memcpy(w->p, &hdr, sizeof(hdr));
}

int km_vm_state_save(struct km_vm *vm, uint8_t **blob, size_t *len,
		     struct km_err *err)
{
	struct km_state_vm info = { .mem_size = vm->mem_size,
				    .ncpus = vm->ncpus };
	struct wbuf w = { .why = err };
	struct kvm_msr_list *list = msr_index_list(vm);
	unsigned int i;

	if (!list) {
		km_err_set(err,
			   "saving the VM state: KVM_GET_MSR_INDEX_LIST "
			   "failed: %s",
			   strerror(errno));
		return -errno;
	}
	w_reserve(&w, sizeof(struct km_state_hdr));
	w_section(&w, KM_ST_VM, 0, &info, sizeof(info));
	save_chips(&w, vm);
	for (i = 0; i < vm->ncpus; i++)
		save_vcpu(&w, &vm->vcpus[i], list);
	save_devices(&w, vm);
	free(list);
	if (w.err) {
		km_err_set(err, "saving the VM state failed: %s",
			   strerror(-w.err));
		free(w.p);
		return w.err;
	}
	seal(&w);
	*blob = w.p;
	*len = w.len;
	return 0;
}

/* ---- restore ---- */

struct sec_ref {
	const uint8_t *data;
	uint32_t len;
};

struct parsed {
	struct sec_ref vm;
	struct sec_ref vcpu[KM_MAX_VCPUS][NVCPU_SECS];
	struct sec_ref chip[NCHIPS];
	struct sec_ref pit, clock;
	struct sec_ref dev[KM_MAX_IOPORTS];
};

static size_t fixed_size(uint32_t type)
{
	switch (type) {
	case KM_ST_VM:
		return sizeof(struct km_state_vm);
	case KM_ST_REGS:
		return sizeof(struct kvm_regs);
	case KM_ST_SREGS:
		return sizeof(struct kvm_sregs);
	case KM_ST_XSAVE:
		return sizeof(struct kvm_xsave);
	case KM_ST_XCRS:
		return sizeof(struct kvm_xcrs);
	case KM_ST_LAPIC:
		return sizeof(struct kvm_lapic_state);
	case KM_ST_EVENTS:
		return sizeof(struct kvm_vcpu_events);
	case KM_ST_MP_STATE:
		return sizeof(struct kvm_mp_state);
	case KM_ST_DEBUGREGS:
		return sizeof(struct kvm_debugregs);
	case KM_ST_IRQCHIP:
		return sizeof(struct kvm_irqchip);
	case KM_ST_PIT:
		return sizeof(struct kvm_pit_state2);
	case KM_ST_CLOCK:
		return sizeof(struct kvm_clock_data);
	default:
		return 0; /* variable: MSRs, devices */
	}
}

static int device_slot(const struct km_vm *vm, uint32_t port)
{
	unsigned int i;

	for (i = 0; i < vm->nioports; i++)
		if (vm->ioports[i].base == port && vm->ioports[i].ops->restore)
			return (int)i;
	return -1;
}

/* Where section (@type, @index) goes in @p, or NULL if it has no place. */
static struct sec_ref *slot(const struct km_vm *vm, struct parsed *p,
			    uint32_t type, uint32_t index)
{
	int d;

	if (type >= KM_ST_REGS && type <= KM_ST_DEBUGREGS)
		return index < vm->ncpus ? &p->vcpu[index][type - KM_ST_REGS] :
					   NULL;
	switch (type) {
	case KM_ST_VM:
		return index == 0 ? &p->vm : NULL;
	case KM_ST_IRQCHIP:
		return index < NCHIPS ? &p->chip[index] : NULL;
	case KM_ST_PIT:
		return index == 0 ? &p->pit : NULL;
	case KM_ST_CLOCK:
		return index == 0 ? &p->clock : NULL;
	case KM_ST_DEVICE:
		d = device_slot(vm, index);
		return d < 0 ? NULL : &p->dev[d];
	default:
		return NULL;
	}
}

static int __attribute__((format(printf, 2, 3)))
bad(struct km_err *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	km_err_set(err, "the saved VM state is invalid: %s", what);
	return -EINVAL;
}

static int check_header(const uint8_t *blob, size_t len,
			struct km_state_hdr *hdr, struct km_err *err)
{
	uint64_t sum;

	if (len < sizeof(*hdr))
		return bad(err, "%zu bytes is shorter than its %zu-byte header",
			   len, sizeof(*hdr));
	memcpy(hdr, blob, sizeof(*hdr));
	if (hdr->magic != KM_STATE_MAGIC)
		return bad(err, "bad magic %#x (want %#x)", hdr->magic,
			   KM_STATE_MAGIC);
	if (hdr->version != KM_STATE_VERSION || hdr->flags || hdr->reserved)
		return bad(err,
			   "format version %u flags %#x; this build reads "
			   "version %u only",
			   hdr->version, hdr->flags, KM_STATE_VERSION);
	if (hdr->payload_len != len - sizeof(*hdr))
		return bad(err,
			   "the header announces %llu payload bytes, %zu "
			   "are there",
			   (unsigned long long)hdr->payload_len,
			   len - sizeof(*hdr));
	sum = XXH64(blob + sizeof(*hdr), hdr->payload_len, 0);
	if (sum != hdr->checksum) {
		bad(err, "checksum mismatch (stored %#llx, computed %#llx)",
		    (unsigned long long)hdr->checksum, (unsigned long long)sum);
		return -EBADMSG;
	}
	return 0;
}

static int check_section(const struct km_vm *vm, struct parsed *p,
			 const struct km_state_sec *sec, const uint8_t *data,
			 uint32_t n, struct km_err *err)
{
	size_t want = fixed_size(sec->type);
	struct sec_ref *ref = slot(vm, p, sec->type, sec->index);

	if (!ref)
		return bad(err,
			   "section %u: type %u index %u does not belong "
			   "to this VM",
			   n, sec->type, sec->index);
	if (ref->data)
		return bad(err, "section %u: type %u index %u appears twice", n,
			   sec->type, sec->index);
	if (want && sec->len != want)
		return bad(err,
			   "section %u (type %u): %u bytes, its structure "
			   "has %zu",
			   n, sec->type, sec->len, want);
	if (sec->type == KM_ST_MSRS &&
	    (sec->len % sizeof(struct kvm_msr_entry) ||
	     sec->len / sizeof(struct kvm_msr_entry) > MAX_MSRS))
		return bad(err,
			   "section %u: %u bytes is not a list of at most "
			   "%d MSRs",
			   n, sec->len, MAX_MSRS);
	if (sec->type == KM_ST_DEVICE && sec->len > DEVICE_STATE_MAX)
		return bad(err,
			   "section %u: %u bytes of device state, at most "
			   "%d",
			   n, sec->len, DEVICE_STATE_MAX);
	ref->data = data;
	ref->len = sec->len;
	return 0;
}

static int walk(const struct km_vm *vm, struct parsed *p, const uint8_t *blob,
		size_t len, const struct km_state_hdr *hdr, struct km_err *err)
{
	size_t off = sizeof(*hdr);
	struct km_state_sec sec;
	uint32_t n;
	int r;

	for (n = 0; n < hdr->nsections; n++) {
		if (len - off < sizeof(sec))
			return bad(err, "section %u of %u starts past the end",
				   n, hdr->nsections);
		memcpy(&sec, blob + off, sizeof(sec));
		off += sizeof(sec);
		if (sec.reserved || sec.len > len - off)
			return bad(err,
				   "section %u claims %u bytes, %zu remain", n,
				   sec.len, len - off);
		r = check_section(vm, p, &sec, blob + off, n, err);
		if (r < 0)
			return r;
		off += sec.len;
	}
	if (off != len)
		return bad(err, "%zu bytes follow the last section", len - off);
	return 0;
}

static int check_complete(const struct km_vm *vm, const struct parsed *p,
			  struct km_err *err)
{
	struct km_state_vm info;
	unsigned int i, j;

	if (!p->vm.data)
		return bad(err, "the VM section is missing");
	memcpy(&info, p->vm.data, sizeof(info));
	if (info.mem_size != vm->mem_size || info.ncpus != vm->ncpus)
		return bad(err,
			   "it is for %llu MiB and %u vCPUs, this VM has "
			   "%llu MiB and %u",
			   (unsigned long long)(info.mem_size >> 20),
			   info.ncpus, (unsigned long long)(vm->mem_size >> 20),
			   vm->ncpus);
	for (i = 0; i < vm->ncpus; i++)
		for (j = 0; j < NVCPU_SECS; j++)
			if (!p->vcpu[i][j].data)
				return bad(err,
					   "vCPU %u has no section of "
					   "type %u",
					   i, KM_ST_REGS + j);
	for (i = 0; i < NCHIPS; i++)
		if (!p->chip[i].data)
			return bad(err, "irqchip %u is missing", i);
	if (!p->pit.data || !p->clock.data)
		return bad(err, "the PIT or kvmclock section is missing");
	for (i = 0; i < vm->nioports; i++)
		if (vm->ioports[i].ops->restore && !p->dev[i].data)
			return bad(err, "the %s device at %#x is missing",
				   vm->ioports[i].ops->name,
				   vm->ioports[i].base);
	return 0;
}

static int set(int fd, unsigned long req, const struct sec_ref *ref,
	       const char *what, unsigned int index, struct km_err *err)
{
	/* A private, aligned copy: KVM may write back into some of these. */
	void *buf = malloc(ref->len);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, ref->data, ref->len);
	if (ioctl(fd, req, buf) < 0) {
		r = -errno;
		km_err_set(err, "restoring the VM state: %s (%u) failed: %s",
			   what, index, strerror(errno));
	}
	free(buf);
	return r;
}

static int set_msrs(struct km_vcpu *v, const struct sec_ref *ref,
		    struct km_err *err)
{
	uint32_t n = ref->len / sizeof(struct kvm_msr_entry);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + ref->len);
	int r;

	if (!m)
		return -ENOMEM;
	m->nmsrs = n;
	memcpy(m->entries, ref->data, ref->len);
	r = ioctl(v->fd, KVM_SET_MSRS, m);
	if (r >= 0 && (uint32_t)r < n) {
		km_err_set(err,
			   "restoring the VM state: vCPU %u refused MSR "
			   "%#x",
			   v->id, m->entries[r].index);
		r = -EINVAL;
	} else if (r < 0) {
		r = -errno;
		km_err_set(err,
			   "restoring the VM state: KVM_SET_MSRS (%u) "
			   "failed: %s",
			   v->id, strerror(errno));
	}
	free(m);
	return r < 0 ? r : 0;
}

static int restore_vcpu(struct km_vcpu *v, struct sec_ref *s,
			struct km_err *err)
{
	int fd = v->fd, r;

#define SEC(t) (&s[(t)-KM_ST_REGS])
	r = set(fd, KVM_SET_SREGS, SEC(KM_ST_SREGS), "KVM_SET_SREGS", v->id,
		err);
	if (r == 0)
		r = set_msrs(v, SEC(KM_ST_MSRS), err);
	if (r == 0)
		r = set(fd, KVM_SET_LAPIC, SEC(KM_ST_LAPIC), "KVM_SET_LAPIC",
			v->id, err);
	if (r == 0)
		r = set(fd, KVM_SET_XCRS, SEC(KM_ST_XCRS), "KVM_SET_XCRS",
			v->id, err);
	if (r == 0)
		r = set(fd, KVM_SET_XSAVE, SEC(KM_ST_XSAVE), "KVM_SET_XSAVE",
			v->id, err);
	if (r == 0)
		r = set(fd, KVM_SET_VCPU_EVENTS, SEC(KM_ST_EVENTS),
			"KVM_SET_VCPU_EVENTS", v->id, err);
	if (r == 0)
		r = set(fd, KVM_SET_MP_STATE, SEC(KM_ST_MP_STATE),
			"KVM_SET_MP_STATE", v->id, err);
	if (r == 0)
		r = set(fd, KVM_SET_DEBUGREGS, SEC(KM_ST_DEBUGREGS),
			"KVM_SET_DEBUGREGS", v->id, err);
	if (r == 0)
		r = set(fd, KVM_SET_REGS, SEC(KM_ST_REGS), "KVM_SET_REGS",
			v->id, err);
#undef SEC
	return r;
}

static int restore_vm(struct km_vm *vm, struct parsed *p, struct km_err *err)
{
	struct kvm_clock_data clock;
	unsigned int i;
	int r = 0;

	for (i = 0; i < NCHIPS && r == 0; i++)
		r = set(vm->fd, KVM_SET_IRQCHIP, &p->chip[i], "KVM_SET_IRQCHIP",
			i, err);
	if (r == 0)
		r = set(vm->fd, KVM_SET_PIT2, &p->pit, "KVM_SET_PIT2", 0, err);
	if (r < 0)
		return r;
	/* Only the clock value: the flags say how it was read, not set. */
	memset(&clock, 0, sizeof(clock));
	memcpy(&clock.clock,
	       p->clock.data + offsetof(struct kvm_clock_data, clock),
	       sizeof(clock.clock));
	if (ioctl(vm->fd, KVM_SET_CLOCK, &clock) < 0) {
		km_err_set(err,
			   "restoring the VM state: KVM_SET_CLOCK failed: "
			   "%s",
			   strerror(errno));
		return -errno;
	}
	return 0;
}

static int restore_devices(struct km_vm *vm, struct parsed *p,
			   struct km_err *err)
{
	unsigned int i;
	int r;

	for (i = 0; i < vm->nioports; i++) {
		struct km_ioport *io = &vm->ioports[i];

		if (!io->ops->restore)
			continue;
		r = io->ops->restore(io, p->dev[i].data, p->dev[i].len);
		if (r < 0)
			return bad(err,
				   "the %s device at %#x refused its %u "
				   "bytes",
				   io->ops->name, io->base, p->dev[i].len);
	}
	return 0;
}

int km_vm_state_restore(struct km_vm *vm, const uint8_t *blob, size_t len,
			struct km_err *err)
{
	struct km_state_hdr hdr = { 0 };
	struct parsed *p = calloc(1, sizeof(*p));
	unsigned int i;
	int r;

	if (!p)
		return -ENOMEM;
	r = check_header(blob, len, &hdr, err);
	if (r == 0)
		r = walk(vm, p, blob, len, &hdr, err);
	if (r == 0)
		r = check_complete(vm, p, err);
	if (r == 0)
		r = restore_vm(vm, p, err);
	for (i = 0; i < vm->ncpus && r == 0; i++)
		r = restore_vcpu(&vm->vcpus[i], p->vcpu[i], err);
	if (r == 0)
		r = restore_devices(vm, p, err);
	free(p);
	return r;
}
