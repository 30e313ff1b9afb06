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

/* Global (init user namespace) uid of the current task. */
static __always_inline u32 kg_uid(void)
{
	return (u32)bpf_get_current_uid_gid();
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
static __always_inline void kg_emit(u32 hook, u32 verdict, u32 rule, const char *request,
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
	e->uid = kg_uid();
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

#include "modules.bpf.c"
#include "sockets.bpf.c"
#include "userns.bpf.c"
#include "splice.bpf.c"
