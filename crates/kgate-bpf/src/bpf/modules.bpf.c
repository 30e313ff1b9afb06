// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Module autoload: lsm/kernel_module_request sees the request string
 * ("net-pf-40", "fs-xfs", "algif-aead", ...) before the kernel runs
 * modprobe. The string is normalized like kmod does ('-' -> '_') and looked
 * up in kg_module_allow, which userspace fills with the strings that
 * resolve only to allowed modules. Included by kgate.bpf.c.
 */

SEC("lsm/kernel_module_request")
int BPF_PROG(kg_module_request, char *kmod_name)
{
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->modules_mode == KG_MODE_OFF)
		return 0;
	u32 root = kg_uid() == 0;
	u32 root_mode = cfg->root_mode;
	if (root && root_mode == KG_ROOT_ALLOW) {
		kg_count(KG_HOOK_MODULE, KG_PASS);
		return 0;
	}

	struct kg_module_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.gen = gen;
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), kmod_name);
	for (int i = 0; i < KG_NAME_LEN; i++) {
		if (key.name[i] == 0)
			break;
		if (key.name[i] == '-')
			key.name[i] = '_';
	}
	if (bpf_map_lookup_elem(&kg_module_allow, &key)) {
		kg_count(KG_HOOK_MODULE, KG_ALLOW);
		return 0;
	}

	u32 rule = root ? KG_RULE_MODULE_ROOT : KG_RULE_MODULE_NOT_LISTED;
	if (cfg->modules_mode == KG_MODE_ENFORCE && !(root && root_mode == KG_ROOT_AUDIT)) {
		kg_count(KG_HOOK_MODULE, KG_DENY);
		kg_emit(KG_HOOK_MODULE, KG_DENY, rule, key.name, 0, 0, 0);
		KG_RETURN_ERR(EPERM);
	}
	kg_count(KG_HOOK_MODULE, KG_AUDIT);
	kg_emit(KG_HOOK_MODULE, KG_AUDIT, rule, key.name, 0, 0, 0);
	return 0;
}
