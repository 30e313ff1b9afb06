// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * kgate record: what a process tree asks of the kernel, aggregated in the
 * kernel. Every syscall entry of a followed task bumps a per-CPU counter
 * indexed by syscall number; socket(2) and socketpair(2) shapes (one map:
 * kgate run checks both by the same family list), exec'd paths and module
 * requests go to hash maps of counters. Nothing is streamed, so nothing
 * can be lost to a full buffer: the only loss is a full hash map, which
 * is counted (kr_stats) and reported.
 *
 * Which tasks: in task mode, the thread ids in kr_tasks. sched_process_fork
 * (called before the child first runs) adds a new thread of a followed
 * process always, and a new process when kr_follow_children is set;
 * sched_process_exit removes the exiting thread. In cgroup mode, tasks
 * under the cgroup in kr_cgroup (descendant cgroups included).
 */
#include "record.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

const volatile u32 kr_mode = KR_MODE_TASKS;
const volatile u32 kr_follow_children = 1;

#define NR_SOCKET 41
#define NR_SOCKETPAIR 53
#define NR32_SOCKETCALL 102
#define NR32_SOCKET 359
#define NR32_SOCKETPAIR 360
#define SYS_SOCKET 1 /* socketcall(2)'s call numbers for socket() */
#define SYS_SOCKETPAIR 8 /* and socketpair() */
#define KR_TS_COMPAT 0x0002

/*
 * Followed thread ids as a bitmap: word tid/64, bit tid%64. Userspace sizes
 * it to pid_max before load (4M ids = 512 KiB). An array lookup is inlined
 * by the verifier into an address computation: the check every syscall
 * on the host pays is a few instructions, where a hash lookup (jhash and
 * a bucket walk) measured ~100 ns on the development VM.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u64);
} kr_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} kr_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KR_NR_MAX);
	__type(key, u32);
	__type(value, u64);
} kr_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kr_socket_key);
	__type(value, u64);
} kr_sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kr_path_key);
	__type(value, u64);
} kr_execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct kr_mod_key);
	__type(value, u64);
} kr_modreq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KR_STAT_MAX);
	__type(key, u32);
	__type(value, u64);
} kr_stats SEC(".maps");

/* Scratch for path keys (too big for the 512-byte stack with the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct kr_path_key);
} kr_scratch SEC(".maps");

static __always_inline void stat_add(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&kr_stats, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline bool followed(void)
{
	if (kr_mode == KR_MODE_CGROUP)
		return bpf_current_task_under_cgroup(&kr_cgroup, 0) == 1;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u32 word = tid >> 6;
	u64 *w = bpf_map_lookup_elem(&kr_tasks, &word);
	return w && (*w & (1ULL << (tid & 63)));
}

/* Add to a hash map of counters; count a loss when the map is full. */
static __always_inline void count_key(void *map, const void *key, u32 lost_stat)
{
	u64 one = 1;
	u64 *v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) != 0) {
		/* Lost the race to another CPU inserting it, or full. */
		v = bpf_map_lookup_elem(map, key);
		if (v)
			__sync_fetch_and_add(v, 1);
		else
			stat_add(lost_stat);
	}
}

SEC("raw_tp/sys_enter")
int BPF_PROG(kr_sys_enter, struct pt_regs *regs, long id)
{
	if (!followed())
		return 0;
	/* A compat syscall carries an ia32 number: TS_COMPAT in the thread's
	 * status (x86). A typed pointer: one load, no probe-read call. */
	struct task_struct *t = bpf_get_current_task_btf();
	bool ia32 = t->thread_info.status & KR_TS_COMPAT;
	u32 idx = KR_NR_OTHER;
	if (id >= 0 && id < KR_NR_IA32)
		idx = ia32 ? KR_NR_IA32 + (u32)id : (u32)id;
	if (idx >= KR_NR_OTHER)
		idx = KR_NR_OTHER;
	u64 *v = bpf_map_lookup_elem(&kr_syscalls, &idx);
	if (v)
		*v += 1; /* per-CPU: no other writer */
	if ((id == NR_SOCKET || id == NR_SOCKETPAIR) && !ia32) {
		struct kr_socket_key k = {
			.family = (u32)BPF_CORE_READ(regs, di),
			/* SOCK_NONBLOCK and SOCK_CLOEXEC ride in the type. */
			.type = (u32)BPF_CORE_READ(regs, si) & 0xf,
			.protocol = (u32)BPF_CORE_READ(regs, dx),
		};
		count_key(&kr_sockets, &k, KR_STAT_LOST_SOCKETS);
	} else if (ia32 && (id == NR32_SOCKET || id == NR32_SOCKETPAIR ||
			    id == NR32_SOCKETCALL)) {
		/* ia32: socket(2) and socketpair(2) take bx, cx, dx;
		 * socketcall(SYS_SOCKET or SYS_SOCKETPAIR, args) takes them from
		 * the first three u32s at the user address in cx. */
		u32 a[3] = {};
		if (id != NR32_SOCKETCALL) {
			a[0] = (u32)BPF_CORE_READ(regs, bx);
			a[1] = (u32)BPF_CORE_READ(regs, cx);
			a[2] = (u32)BPF_CORE_READ(regs, dx);
		} else {
			u32 call = (u32)BPF_CORE_READ(regs, bx);
			if (call != SYS_SOCKET && call != SYS_SOCKETPAIR)
				return 0;
			u64 args = (u32)BPF_CORE_READ(regs, cx);
			/* Unreadable: the call fails with EFAULT, no socket. */
			if (bpf_probe_read_user(a, sizeof(a), (void *)args) != 0)
				return 0;
		}
		struct kr_socket_key k = {
			.family = a[0],
			.type = a[1] & 0xf,
			.protocol = a[2],
		};
		count_key(&kr_sockets, &k, KR_STAT_LOST_SOCKETS);
	}
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(kr_fork, struct task_struct *parent, struct task_struct *child)
{
	if (kr_mode != KR_MODE_TASKS || !followed())
		return 0;
	u32 pid = (u32)BPF_CORE_READ(child, pid);
	u32 tgid = (u32)BPF_CORE_READ(child, tgid);
	u32 ptgid = (u32)(bpf_get_current_pid_tgid() >> 32);
	bool thread = tgid == ptgid;
	if (!thread && !kr_follow_children)
		return 0;
	u32 word = pid >> 6;
	u64 *w = bpf_map_lookup_elem(&kr_tasks, &word);
	if (!w) {
		/* Beyond pid_max as read at start: cannot happen unless raised. */
		stat_add(KR_STAT_LOST_TASKS);
		return 0;
	}
	__sync_fetch_and_or(w, 1ULL << (pid & 63));
	stat_add(thread ? KR_STAT_THREADS : KR_STAT_PROCESSES);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(kr_exit, struct task_struct *p)
{
	if (kr_mode != KR_MODE_TASKS)
		return 0;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u32 word = tid >> 6;
	u64 *w = bpf_map_lookup_elem(&kr_tasks, &word);
	if (w && (*w & (1ULL << (tid & 63))))
		__sync_fetch_and_and(w, ~(1ULL << (tid & 63)));
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(kr_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!followed())
		return 0;
	u32 zero = 0;
	struct kr_path_key *k = bpf_map_lookup_elem(&kr_scratch, &zero);
	if (!k)
		return 0;
	__builtin_memset(k, 0, sizeof(*k));
	const char *name = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(k->path, sizeof(k->path), name);
	count_key(&kr_execs, k, KR_STAT_LOST_EXECS);
	return 0;
}

/* Exists only with CONFIG_MODULES; userspace attaches it when present. */
SEC("raw_tp/module_request")
int BPF_PROG(kr_module_request, char *name, bool wait, unsigned long ip)
{
	if (!followed())
		return 0;
	struct kr_mod_key k = {};
	bpf_probe_read_kernel_str(k.name, sizeof(k.name), name);
	count_key(&kr_modreq, &k, KR_STAT_LOST_MODREQ);
	return 0;
}
