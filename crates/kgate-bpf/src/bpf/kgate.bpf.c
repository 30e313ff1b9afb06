// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * kgate's BPF-LSM object: the maps every hook shares, then one file per
 * concern (modules.bpf.c, sockets.bpf.c, userns.bpf.c), compiled as ONE
 * object so that a single skeleton owns the shared config, event ring
 * buffer and counters (see the crate docs for why not three objects).
 *
 * Policy generations: every policy map key (and the config array index)
 * carries a generation bit. Userspace fills the inactive generation, then
 * flips `active` with a single 4-byte write: a hook sees either the old or
 * the new policy, never a half-filled one.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kgate.h"

#define EPERM 1
#define EAFNOSUPPORT 97
#define EPROTONOSUPPORT 93

/* thread_info.status: the task is in an ia32 syscall. */
#define KG_TS_COMPAT 0x2
/* x32 syscall numbers are the x86_64 ones with this bit set. */
#define KG_X32_SYSCALL_BIT 0x40000000

char LICENSE[] SEC("license") = "GPL";

/* The active generation (0 or 1). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} kg_active SEC(".maps");

/* Per generation: modes and the policy hash. All zero = everything off. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct kg_config);
} kg_config SEC(".maps");

/* Allowed module request strings (kmod-normalized: '-' written '_'). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct kg_module_key);
	__type(value, u8);
} kg_module_allow SEC(".maps");

/* Allowed (family, type, protocol); type/protocol may be KG_ANY. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct kg_socket_key);
	__type(value, u8);
} kg_socket_allow SEC(".maps");

/* gen * KG_FAMILIES + family -> 1 when some rule names the family. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * KG_FAMILIES);
	__type(key, u32);
	__type(value, u8);
} kg_socket_family SEC(".maps");

/* Executables (device, inode) that may create user namespaces. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, struct kg_exe_key);
	__type(value, u8);
} kg_userns_exe SEC(".maps");

/* Events: denials, audits, root audits. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} kg_events SEC(".maps");

/* Events that did not fit in the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} kg_drops SEC(".maps");

/* Decisions: hook * KG_VERDICTS + verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KG_SECTIONS * KG_VERDICTS);
	__type(key, u32);
	__type(value, u64);
} kg_counters SEC(".maps");

/*
 * Return an error from its own basic block. The 6.12 verifier needs an LSM
 * program's return value provably in [-4095, 0]; clang turns
 * `deny ? -E : 0` into a branch-free negate it cannot bound. The empty
 * volatile asm keeps the branch.
 */
#define KG_RETURN_ERR(e)                       \
	do {                                       \
		asm volatile("" ::: "memory");         \
		return -(e);                           \
	} while (0)

/* The active generation's config, and the generation in *gen. */
static __always_inline struct kg_config *kg_current(u32 *gen)
{
	u32 zero = 0;
	u32 *active = bpf_map_lookup_elem(&kg_active, &zero);
	if (!active)
		return 0;
	u32 g = *active & 1;
	*gen = g;
	return bpf_map_lookup_elem(&kg_config, &g);
}

/* The self-test's target: which process, which hook (see kgate.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct kg_selftest);
} kg_selftest SEC(".maps");

/* Self-test requests each hook saw, by hook. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KG_SECTIONS);
	__type(key, u32);
	__type(value, u64);
} kg_selftest_hits SEC(".maps");

/* The syscall task t entered with, x32 bit cleared (x32 numbers are the
 * x86_64 ones); ia32 numbers when t is in a compat syscall. */
static __always_inline long kg_syscall_nr(struct task_struct *t)
{
	return ((struct pt_regs *)bpf_task_pt_regs(t))->orig_ax & ~KG_X32_SYSCALL_BIT;
}

/* Global (init user namespace) uid of the current task. */
static __always_inline u32 kg_uid(void)
{
	return (u32)bpf_get_current_uid_gid();
}

/*
 * Privilege is a capability in the initial user namespace, never a uid:
 * root in a default container (uid 0, no CAP_SYS_MODULE, CAP_NET_ADMIN or
 * CAP_SYS_ADMIN) is unprivileged here, and so is root inside a user
 * namespace. Effective capabilities of the subjective credentials, as the
 * kernel's own capable() checks them.
 */
static __always_inline int kg_cred_capable(const struct cred *c, u32 cap)
{
	if (!c)
		return 0;
	if (BPF_CORE_READ(c, user_ns, level) != 0)
		return 0;
	u64 caps = 0;
	if (bpf_probe_read_kernel(&caps, sizeof(caps), __builtin_preserve_access_index(&c->cap_effective)) < 0)
		return 0;
	return (caps >> (cap & 63)) & 1;
}

static __always_inline int kg_privileged(u32 cap)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	return kg_cred_capable(BPF_CORE_READ(t, cred), cap);
}

/* Is the current process the self-test's target for `hook`? Counts it. */
static __always_inline int kg_selftest_hit(u32 hook)
{
	u32 zero = 0;
	struct kg_selftest *s = bpf_map_lookup_elem(&kg_selftest, &zero);
	if (!s || !s->tgid || s->hook != hook)
		return 0;
	if (s->tgid != (u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	u64 *n = bpf_map_lookup_elem(&kg_selftest_hits, &hook);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}

/* The inode's change time, whichever field this kernel keeps it in. */
static __always_inline void kg_inode_ctime(struct inode *inode, s64 *sec, u32 *nsec)
{
	struct inode___v611 *i611 = (void *)inode;
	struct inode___v66 *i66 = (void *)inode;
	struct inode___v61 *i61 = (void *)inode;
	if (bpf_core_field_exists(i611->i_ctime_sec)) {
		*sec = BPF_CORE_READ(i611, i_ctime_sec);
		*nsec = BPF_CORE_READ(i611, i_ctime_nsec);
	} else if (bpf_core_field_exists(i66->__i_ctime)) {
		*sec = BPF_CORE_READ(i66, __i_ctime.tv_sec);
		*nsec = (u32)BPF_CORE_READ(i66, __i_ctime.tv_nsec);
	} else {
		*sec = BPF_CORE_READ(i61, i_ctime.tv_sec);
		*nsec = (u32)BPF_CORE_READ(i61, i_ctime.tv_nsec);
	}
}

static __always_inline void kg_count(u32 hook, u32 verdict)
{
	u32 idx = hook * KG_VERDICTS + verdict;
	u64 *n = bpf_map_lookup_elem(&kg_counters, &idx);
	if (n)
		*n += 1;
}

/*
 * One event. `request` is a KG_NAME_LEN buffer on the BPF stack, or 0.
 * A full ring buffer is counted in kg_drops, never silent.
 */
static __always_inline void kg_emit_as(u32 uid, u32 hook, u32 verdict, u32 rule, const char *request,
				       u32 family, u32 type, u32 protocol)
{
	struct kg_event *e = bpf_ringbuf_reserve(&kg_events, sizeof(*e), 0);
	if (!e) {
		u32 zero = 0;
		u64 *d = bpf_map_lookup_elem(&kg_drops, &zero);
		if (d)
			*d += 1;
		return;
	}
	u64 pid_tgid = bpf_get_current_pid_tgid();
	e->time_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = (u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->uid = uid;
	e->hook = hook;
	e->verdict = verdict;
	e->rule = rule;
	e->family = family;
	e->type = type;
	e->protocol = protocol;
	e->_pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (request)
		__builtin_memcpy(e->request, request, KG_NAME_LEN);
	else
		__builtin_memset(e->request, 0, KG_NAME_LEN);
	/* Best effort: the executable's file name (bpf_d_path is not
	 * allowed in these hooks). */
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const unsigned char *name = BPF_CORE_READ(t, mm, exe_file, f_path.dentry, d_name.name);
	if (!name || bpf_probe_read_kernel_str(e->exe, KG_NAME_LEN, name) < 0)
		e->exe[0] = 0;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void kg_emit(u32 hook, u32 verdict, u32 rule, const char *request,
				    u32 family, u32 type, u32 protocol)
{
	kg_emit_as(kg_uid(), hook, verdict, rule, request, family, type, protocol);
}

/* Is task t's executable in kg_userns_exe for generation gen? */
static __always_inline int kg_exe_allowed(struct task_struct *t, u32 gen)
{
	struct inode *inode = BPF_CORE_READ(t, mm, exe_file, f_inode);
	if (!inode)
		return 0;
	struct kg_exe_key k;
	__builtin_memset(&k, 0, sizeof(k));
	k.gen = gen;
	k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k.ino = BPF_CORE_READ(inode, i_ino);
	kg_inode_ctime(inode, &k.ctime_sec, &k.ctime_nsec);
	return bpf_map_lookup_elem(&kg_userns_exe, &k) != 0;
}

#include "modules.bpf.c"
#include "sockets.bpf.c"
#include "userns.bpf.c"
#include "splice.bpf.c"
