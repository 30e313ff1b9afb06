/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The few kernel types kgate's BPF programs read, hand-written instead of a
 * multi-megabyte bpftool-generated vmlinux.h tied to the build host's
 * kernel. Every struct carries preserve_access_index, so libbpf relocates
 * each field access (CO-RE) against the running kernel's BTF at load time:
 * only the names and types of the fields used here must match, not their
 * offsets or the rest of the struct. Add a field here before reading it.
 */
#ifndef KGATE_VMLINUX_MIN_H
#define KGATE_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef short unsigned int __u16;
typedef unsigned int __u32;
typedef long long unsigned int __u64;
typedef signed char __s8;
typedef short int __s16;
typedef int __s32;
typedef long long int __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0
typedef __u32 dev_t;

/* The map type and flag numbers libbpf's headers expect (uapi/linux/bpf.h). */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

#define BPF_F_NO_PREALLOC 1
#define BPF_LOCAL_STORAGE_GET_F_CREATE 1

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

struct qstr {
	union {
		struct {
			u32 hash;
			u32 len;
		};
		u64 hash_len;
	};
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount;

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

typedef unsigned short umode_t;

struct super_block {
	dev_t s_dev;
	unsigned long s_magic;
} __attribute__((preserve_access_index));

typedef struct {
	u32 val;
} kuid_t;

struct timespec64 {
	s64 tv_sec;
	long tv_nsec;
};

struct inode {
	umode_t i_mode;
	kuid_t i_uid;
	unsigned long i_ino;
	dev_t i_rdev;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

/* The inode's change time moved twice: 6.1 `i_ctime`, 6.6 `__i_ctime`,
 * 6.11 `i_ctime_sec` + `i_ctime_nsec`. libbpf drops the `___flavor`
 * suffix and matches these against `struct inode`. */
struct inode___v611 {
	s64 i_ctime_sec;
	u32 i_ctime_nsec;
} __attribute__((preserve_access_index));

struct inode___v66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___v61 {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_mode;
	void *private_data;
} __attribute__((preserve_access_index));

struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct files_struct {
	atomic_t count;
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct thread_info {
	u32 status;
} __attribute__((preserve_access_index));

struct user_namespace {
	int level;
} __attribute__((preserve_access_index));

/* kernel_cap_t is `struct { u64 val; }` since 6.3 and `struct { u32
 * cap[2]; }` before: both are 8 bytes, capability N is bit N of them read
 * as one little-endian u64. kgate reads it that way, by offset. */
typedef struct {
	u64 val;
} kernel_cap_t;

struct cred {
	kuid_t uid;
	kernel_cap_t cap_effective;
	struct user_namespace *user_ns;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_info thread_info;
	unsigned int flags;
	unsigned int ptrace;
	struct mm_struct *mm;
	struct files_struct *files;
	const struct cred *cred;
	char comm[16];
} __attribute__((preserve_access_index));

/* x86-64 user registers at syscall entry (arch/x86/include/asm/ptrace.h). */
struct pt_regs {
	unsigned long bx;
	unsigned long cx;
	unsigned long r10;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	u16 sk_type;
	u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct io_kiocb;

/* crypto/algboss.c: what the cryptomgr_probe kernel thread is started
 * with (a type local to that file, present in the kernel's BTF). */
struct crypto_larval;

struct cryptomgr_param {
	struct crypto_larval *larval;
} __attribute__((preserve_access_index));

/* Why the kernel reads a file or a buffer (include/linux/kernel_read_file.h,
 * linux/security.h); CO-RE relocates the values we compare with. */
enum kernel_read_file_id {
	READING_UNKNOWN = 0,
	READING_FIRMWARE = 1,
	READING_MODULE = 2,
};

enum kernel_load_data_id {
	LOADING_UNKNOWN = 0,
	LOADING_FIRMWARE = 1,
	LOADING_MODULE = 2,
};

typedef long long loff_t;

/* Only for the offset of `name` within the image's .gnu.linkonce.this_module. */
struct module {
	char name[56];
} __attribute__((preserve_access_index));

#endif
