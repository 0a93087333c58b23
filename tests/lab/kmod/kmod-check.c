// SPDX-License-Identifier: GPL-2.0
/*
 * Talks to a loaded kemari.ko through /dev/kemari and checks the ABI
 * basics: the node is the misc device sysfs describes, root-only, the
 * version ioctl answers what <linux/kemari.h> promises, and every malformed
 * command is refused with ENOTTY (or EFAULT for a bad pointer) without
 * touching the caller's memory. Run by run.sh inside the lab.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/kemari.h>

#define DEV_PATH "/dev/" KEMARI_DEVICE_NAME
#define SYSFS_DEV "/sys/class/misc/" KEMARI_DEVICE_NAME "/dev"
#define MISC_MAJOR 10

static int failures;

#define CHECK(cond, ...)                             \
	do {                                         \
		if (cond) {                          \
			printf("ok: %s\n", #cond);   \
		} else {                             \
			printf("FAIL: %s: ", #cond); \
			printf(__VA_ARGS__);         \
			printf("\n");                \
			failures++;                  \
		}                                    \
	} while (0)

static void check_node(void)
{
	unsigned int maj = 0, min = 0;
	struct stat st;
	FILE *f;

	CHECK(stat(DEV_PATH, &st) == 0, "stat %s: %s", DEV_PATH,
	      strerror(errno));
	CHECK(S_ISCHR(st.st_mode), "mode %o is not a character device",
	      st.st_mode);
	CHECK((st.st_mode & 0777) == 0600, "permissions %o, expected 600",
	      st.st_mode & 0777);
	f = fopen(SYSFS_DEV, "r");
	CHECK(f != NULL, "open %s: %s", SYSFS_DEV, strerror(errno));
	if (!f)
		return;
	CHECK(fscanf(f, "%u:%u", &maj, &min) == 2, "%s unreadable", SYSFS_DEV);
	fclose(f);
	CHECK(maj == MISC_MAJOR, "major %u, expected the misc major", maj);
	CHECK(major(st.st_rdev) == maj && minor(st.st_rdev) == min,
	      "node is %u:%u, sysfs says %u:%u", major(st.st_rdev),
	      minor(st.st_rdev), maj, min);
}

static void check_version(int fd)
{
	struct kemari_version v;

	memset(&v, 0xa5, sizeof(v));
	CHECK(ioctl(fd, KEMARI_IOC_GET_VERSION, &v) == 0,
	      "KEMARI_IOC_GET_VERSION: %s", strerror(errno));
	CHECK(v.abi_version == KEMARI_ABI_VERSION,
	      "abi_version %u, expected %u", v.abi_version, KEMARI_ABI_VERSION);
	CHECK(v.size == sizeof(v), "size %u, expected %zu", v.size, sizeof(v));
	CHECK((v.features & ~KEMARI_FEATURES_KNOWN) == 0,
	      "unknown feature bits %#llx",
	      (unsigned long long)(v.features & ~KEMARI_FEATURES_KNOWN));
	printf("abi %u, size %u, features %#llx\n", v.abi_version, v.size,
	       (unsigned long long)v.features);
}

/* Each of these must fail with @want and leave the buffer untouched. */
static void check_refused(int fd, unsigned long cmd, const char *what, int want)
{
	unsigned char buf[64];
	unsigned char ref[sizeof(buf)];
	int ret, err;

	memset(buf, 0x5a, sizeof(buf));
	memcpy(ref, buf, sizeof(buf));
	errno = 0;
	ret = ioctl(fd, cmd, buf);
	err = errno;
	if (ret != -1 || err != want) {
		printf("FAIL: %s (%#lx): returned %d, errno %s, expected %s\n",
		       what, cmd, ret, strerror(err), strerror(want));
		failures++;
	} else if (memcmp(buf, ref, sizeof(buf)) != 0) {
		printf("FAIL: %s (%#lx) wrote to the caller's buffer\n", what,
		       cmd);
		failures++;
	} else {
		printf("ok: %s (%#lx) refused with %s\n", what, cmd,
		       strerror(want));
	}
}

static void check_bad_ioctls(int fd)
{
	int ret;

	check_refused(fd, _IOR(KEMARI_IOC_MAGIC, 0x7f, struct kemari_version),
		      "unknown nr", ENOTTY);
	check_refused(fd, _IO(KEMARI_IOC_MAGIC, 0x00),
		      "GET_VERSION without size", ENOTTY);
	check_refused(fd, _IOW(KEMARI_IOC_MAGIC, 0x00, struct kemari_version),
		      "GET_VERSION with the wrong direction", ENOTTY);
	check_refused(fd, _IOR(KEMARI_IOC_MAGIC, 0x00, uint32_t),
		      "GET_VERSION with the wrong size", ENOTTY);
	check_refused(fd, _IOR(0xAE, 0x00, struct kemari_version),
		      "another magic (KVM's)", ENOTTY);
	errno = 0;
	ret = ioctl(fd, KEMARI_IOC_GET_VERSION, NULL);
	CHECK(ret == -1 && errno == EFAULT,
	      "GET_VERSION(NULL): returned %d, errno %s", ret, strerror(errno));
}

int main(void)
{
	int fd;

	check_node();
	fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", DEV_PATH, strerror(errno));
	if (fd < 0)
		return 1;
	CHECK(lseek(fd, 0, SEEK_SET) == -1 && errno == ESPIPE,
	      "the device is not seekable");
	check_version(fd);
	check_bad_ioctls(fd);
	close(fd);
	if (failures) {
		printf("kmod-check: %d check(s) failed\n", failures);
		return 1;
	}
	printf("kmod-check: all checks passed\n");
	return 0;
}
