// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * User namespaces: lsm/userns_create (6.1+). Unprivileged tasks (global
 * uid != 0; root inside a user namespace maps to its owner's uid) follow
 * userns.unprivileged, except when the task's executable is in
 * kg_userns_exe, keyed by the (device, inode) of current->mm->exe_file
 * that userspace took from stat() of each allow_exe path: no path string
 * is needed in the hook (bpf_d_path is not allowed here) and a renamed or
 * replaced file does not match. Included by kgate.bpf.c.
 */

SEC("lsm/userns_create")
int BPF_PROG(kg_userns_create, const struct cred *cred)
{
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->userns_mode == KG_USERNS_ALLOW)
		return 0;
	if (kg_uid() == 0) {
		kg_count(KG_HOOK_USERNS, KG_PASS);
		return 0;
	}
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = BPF_CORE_READ(t, mm, exe_file, f_inode);
	if (inode) {
		struct kg_exe_key k;
		__builtin_memset(&k, 0, sizeof(k));
		k.gen = gen;
		k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		k.ino = BPF_CORE_READ(inode, i_ino);
		if (bpf_map_lookup_elem(&kg_userns_exe, &k)) {
			kg_count(KG_HOOK_USERNS, KG_ALLOW);
			return 0;
		}
	}
	if (cfg->userns_mode == KG_USERNS_DENY) {
		kg_count(KG_HOOK_USERNS, KG_DENY);
		kg_emit(KG_HOOK_USERNS, KG_DENY, KG_RULE_USERNS_UNPRIV, 0, 0, 0, 0);
		KG_RETURN_ERR(EPERM);
	}
	kg_count(KG_HOOK_USERNS, KG_AUDIT);
	kg_emit(KG_HOOK_USERNS, KG_AUDIT, KG_RULE_USERNS_UNPRIV, 0, 0, 0, 0);
	return 0;
}
