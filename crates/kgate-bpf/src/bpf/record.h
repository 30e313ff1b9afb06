/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Types shared by record.bpf.c and src/record.rs, and the few kernel types
 * the recorder reads (CO-RE: each struct is preserve_access_index, so only
 * the names and types of the fields used must match the running kernel).
 * Separate from vmlinux_min.h: the recorder is its own object.
 */
#ifndef KGATE_RECORD_H
#define KGATE_RECORD_H

#ifdef __bpf__
typedef unsigned char __u8;
typedef short unsigned int __u16;
typedef unsigned int __u32;
typedef long long unsigned int __u64;
typedef signed char __s8;
typedef short int __s16;
typedef int __s32;
typedef long long int __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u8 u8;
typedef __u32 u32;
typedef __u64 u64;
typedef _Bool bool;
#define true 1
#define false 0
typedef int pid_t;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_CGROUP_ARRAY = 8,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

struct pt_regs {
	unsigned long bx;
	unsigned long cx;
	unsigned long di;
	unsigned long si;
	unsigned long dx;
} __attribute__((preserve_access_index));

struct thread_info {
	u32 status;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_info thread_info;
	pid_t pid;
	pid_t tgid;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));
#endif

/* Syscall counters: x86_64 numbers 0..KR_NR_IA32-1 at their number, ia32
 * (compat: int 0x80, sysenter, 32-bit processes) numbers at KR_NR_IA32 +
 * number, everything else (x32, out of range) in KR_NR_OTHER. */
#define KR_NR_MAX 1024
#define KR_NR_IA32 512
#define KR_NR_OTHER (KR_NR_MAX - 1)
#define KR_PATH_LEN 256
#define KR_MODNAME_LEN 64

/* What the recorder follows (rodata kr_mode). */
#define KR_MODE_TASKS 0  /* tids in kr_tasks (a command or a pid) */
#define KR_MODE_CGROUP 1 /* tasks under the cgroup in kr_cgroup */

/* kr_stats indexes. */
#define KR_STAT_LOST_TASKS 0
#define KR_STAT_LOST_SOCKETS 1
#define KR_STAT_LOST_EXECS 2
#define KR_STAT_LOST_MODREQ 3
#define KR_STAT_PROCESSES 4
#define KR_STAT_THREADS 5
#define KR_STAT_MAX 8

struct kr_socket_key {
	__u32 family;
	__u32 type;
	__u32 protocol;
};

struct kr_path_key {
	char path[KR_PATH_LEN];
};

struct kr_mod_key {
	char name[KR_MODNAME_LEN];
};

#endif
