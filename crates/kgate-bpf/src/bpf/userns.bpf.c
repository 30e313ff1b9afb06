// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * User namespaces. Privileged is CAP_SYS_ADMIN in the initial user
 * namespace (what every namespace operation needs outside one), never uid
 * 0: root in a default container is unprivileged here. Unprivileged tasks
 * follow userns.unprivileged for
 *
 * - creating one: lsm/userns_create (6.1+);
 * - entering one they do not already live in: setns(2) asks
 *   ns_capable(target, CAP_SYS_ADMIN) (userns_install), which lsm/capable
 *   sees with the target namespace; joining an existing namespace (a
 *   rootless podman pause process, a sandbox started before apply) would
 *   otherwise give its capabilities (unshare(CLONE_NEWNET), nf_tables)
 *   with no decision;
 * - taking over a task that lives in one, or an allow_exe task:
 *   lsm/ptrace_access_check in PTRACE_MODE_ATTACH (ptrace, /proc/PID/mem,
 *   process_vm_writev), the way to inject code into a namespaced process;
 * - loading code a user could have written into an allow_exe process:
 *   lsm/mmap_file with PROT_EXEC of a file not owned by root or writable
 *   by group or others (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH into a
 *   dynamically linked bwrap).
 *
 * The exception is the executable: kg_userns_exe holds the (device,
 * inode, change time) of each allow_exe file that userspace took from
 * stat(); a renamed, rewritten or replaced file does not match. A traced
 * task never gets the exception (its tracer could steer it).
 * Included by kgate.bpf.c.
 */

#define KG_PTRACE_MODE_ATTACH 0x02
#define KG_PROT_EXEC 0x4
#define KG_NR_setns 308
#define KG_NR32_setns 346

/* May this unprivileged task use its executable's allow_exe exception? */
static __always_inline int kg_exe_exception(u32 gen)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(t, ptrace))
		return 0;
	return kg_exe_allowed(t, gen);
}

/* Count and report an unprivileged userns request; 1 to deny. */
static __always_inline int kg_userns_verdict(struct kg_config *cfg, u32 hook, u32 rule)
{
	if (cfg->userns_mode == KG_USERNS_DENY) {
		kg_count(hook, KG_DENY);
		kg_emit(hook, KG_DENY, rule, 0, 0, 0, 0);
		return 1;
	}
	kg_count(hook, KG_AUDIT);
	kg_emit(hook, KG_AUDIT, rule, 0, 0, 0, 0);
	return 0;
}

SEC("lsm/userns_create")
int BPF_PROG(kg_userns_create, const struct cred *cred)
{
	if (kg_selftest_hit(KG_HOOK_USERNS))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->userns_mode == KG_USERNS_ALLOW)
		return 0;
	if (kg_privileged(KG_CAP_SYS_ADMIN)) {
		kg_count(KG_HOOK_USERNS, KG_PASS);
		return 0;
	}
	if (kg_exe_exception(gen)) {
		kg_count(KG_HOOK_USERNS, KG_ALLOW);
		return 0;
	}
	if (kg_userns_verdict(cfg, KG_HOOK_USERNS, KG_RULE_USERNS_UNPRIV))
		KG_RETURN_ERR(EPERM);
	return 0;
}

/*
 * Every capability check passes here, so the first branch is about the
 * capability and the syscall: only CAP_SYS_ADMIN inside setns(2) (x86-64,
 * x32 or ia32) goes further.
 */
SEC("lsm/capable")
int BPF_PROG(kg_setns, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	if (cap != KG_CAP_SYS_ADMIN)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	long nr = kg_syscall_nr(t);
	int compat = (t->thread_info.status & KG_TS_COMPAT) != 0;
	if (!(nr == KG_NR_setns && !compat) && !(nr == KG_NR32_setns && compat))
		return 0;
	if (kg_selftest_hit(KG_HOOK_SETNS))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->userns_mode == KG_USERNS_ALLOW)
		return 0;
	/* Capabilities in the task's own namespace, or in the initial one:
	 * not an entry into another user namespace. */
	if (!ns || ns == BPF_CORE_READ(cred, user_ns) || BPF_CORE_READ(ns, level) == 0)
		return 0;
	if (kg_cred_capable(cred, KG_CAP_SYS_ADMIN)) {
		kg_count(KG_HOOK_SETNS, KG_PASS);
		return 0;
	}
	if (kg_exe_exception(gen)) {
		kg_count(KG_HOOK_SETNS, KG_ALLOW);
		return 0;
	}
	if (kg_userns_verdict(cfg, KG_HOOK_SETNS, KG_RULE_USERNS_ENTER))
		KG_RETURN_ERR(EPERM);
	return 0;
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(kg_ptrace, struct task_struct *child, unsigned int mode)
{
	if (!(mode & KG_PTRACE_MODE_ATTACH))
		return 0;
	if (kg_selftest_hit(KG_HOOK_PTRACE))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->userns_mode == KG_USERNS_ALLOW)
		return 0;
	struct task_struct *self = (struct task_struct *)bpf_get_current_task();
	struct user_namespace *own = BPF_CORE_READ(self, cred, user_ns);
	struct user_namespace *theirs = BPF_CORE_READ(child, cred, user_ns);
	int namespaced = theirs != own && BPF_CORE_READ(theirs, level) > 0;
	if (!namespaced && !kg_exe_allowed(child, gen))
		return 0;
	if (kg_privileged(KG_CAP_SYS_ADMIN)) {
		kg_count(KG_HOOK_PTRACE, KG_PASS);
		return 0;
	}
	if (kg_userns_verdict(cfg, KG_HOOK_PTRACE, KG_RULE_USERNS_PTRACE))
		KG_RETURN_ERR(EPERM);
	return 0;
}

SEC("lsm/mmap_file")
int BPF_PROG(kg_mmap_exec, struct file *file, unsigned long reqprot, unsigned long prot,
	     unsigned long flags)
{
	if (!(prot & KG_PROT_EXEC) || !file)
		return 0;
	if (kg_selftest_hit(KG_HOOK_MMAP_EXEC))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->userns_mode == KG_USERNS_ALLOW)
		return 0;
	struct inode *inode = file->f_inode;
	if (!inode)
		return 0;
	if (inode->i_uid.val == 0 && !(inode->i_mode & 0022))
		return 0;
	if (!kg_exe_allowed((struct task_struct *)bpf_get_current_task(), gen))
		return 0;
	if (kg_privileged(KG_CAP_SYS_ADMIN)) {
		kg_count(KG_HOOK_MMAP_EXEC, KG_PASS);
		return 0;
	}
	if (kg_userns_verdict(cfg, KG_HOOK_MMAP_EXEC, KG_RULE_USERNS_INJECT))
		KG_RETURN_ERR(EPERM);
	return 0;
}
