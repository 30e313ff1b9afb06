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

/*
 * Explicit loads: modprobe/insmod end in finit_module(2) (a file: the
 * kernel_read_file hook, READING_MODULE) or init_module(2) (a buffer, which
 * kmod before 31 uses for every compressed module: kernel_post_load_data,
 * LOADING_MODULE). Only a task with CAP_SYS_MODULE gets here, so this is
 * about root: modules.root = "allow" passes, "audit" reports what the
 * allowlist would deny, "policy" holds root to the allowlist. The module
 * name is the file name up to its first '.', or, for a buffer, the name the
 * kernel itself will use: `struct module`'s name in the image's
 * .gnu.linkonce.this_module section. An image whose name cannot be read is
 * treated as not listed (fail closed).
 */

#define KG_MAX_SECTIONS 512

/* The image's module name into out (KG_NAME_LEN bytes); 0 on success. */
static __always_inline int kg_image_module_name(const char *buf, u64 size, char *out)
{
	u64 shoff = 0;
	u16 shentsize = 0, shnum = 0, shstrndx = 0;
	u64 stroff = 0;

	if (size < 64)
		return -1;
	bpf_probe_read_kernel(&shoff, sizeof(shoff), buf + 0x28);
	bpf_probe_read_kernel(&shentsize, sizeof(shentsize), buf + 0x3A);
	bpf_probe_read_kernel(&shnum, sizeof(shnum), buf + 0x3C);
	bpf_probe_read_kernel(&shstrndx, sizeof(shstrndx), buf + 0x3E);
	if (shentsize != 64 || shstrndx >= shnum || shoff > size ||
	    (u64)shnum * 64 > size - shoff)
		return -1;
	bpf_probe_read_kernel(&stroff, sizeof(stroff), buf + shoff + (u64)shstrndx * 64 + 0x18);
	if (stroff > size)
		return -1;
	for (u32 i = 1; i < KG_MAX_SECTIONS; i++) {
		if (i >= shnum)
			break;
		const char *sh = buf + shoff + (u64)i * 64;
		u32 name_off = 0;
		char name[32];
		bpf_probe_read_kernel(&name_off, sizeof(name_off), sh);
		if (name_off > size - stroff || size - stroff - name_off < 26)
			continue;
		if (bpf_probe_read_kernel(name, 26, buf + stroff + name_off) < 0)
			continue;
		if (bpf_strncmp(name, 26, ".gnu.linkonce.this_module") != 0)
			continue;
		u64 off = 0, len = 0;
		bpf_probe_read_kernel(&off, sizeof(off), sh + 0x18);
		bpf_probe_read_kernel(&len, sizeof(len), sh + 0x20);
		u64 name_at = bpf_core_field_offset(struct module, name);
		if (off > size || len > size - off || len < name_at + 2)
			return -1;
		if (bpf_probe_read_kernel_str(out, KG_NAME_LEN, buf + off + name_at) <= 1)
			return -1;
		return 0;
	}
	return -1;
}

/* Decide an explicit load of the module named in key (normalized here). */
static __always_inline int kg_module_load(u32 hook, struct kg_config *cfg, struct kg_module_key *key,
					  int named)
{
	u32 root = kg_uid() == 0;
	if (named) {
		for (int i = 0; i < KG_NAME_LEN; i++) {
			if (key->name[i] == 0)
				break;
			if (key->name[i] == '-')
				key->name[i] = '_';
		}
		if (bpf_map_lookup_elem(&kg_module_allow, key)) {
			kg_count(hook, KG_ALLOW);
			return 0;
		}
	}
	u32 rule = !named ? KG_RULE_MODULE_UNNAMED : root ? KG_RULE_MODULE_ROOT : KG_RULE_MODULE_NOT_LISTED;
	if (cfg->modules_mode == KG_MODE_ENFORCE && !(root && cfg->root_mode == KG_ROOT_AUDIT)) {
		kg_count(hook, KG_DENY);
		kg_emit(hook, KG_DENY, rule, key->name, 0, 0, 0);
		return -1;
	}
	kg_count(hook, KG_AUDIT);
	kg_emit(hook, KG_AUDIT, rule, key->name, 0, 0, 0);
	return 0;
}

/* Is this an explicit load kgate must decide? (mode on, and not root under "allow") */
static __always_inline struct kg_config *kg_module_load_cfg(u32 hook, u32 *gen)
{
	struct kg_config *cfg = kg_current(gen);
	if (!cfg || cfg->modules_mode == KG_MODE_OFF)
		return 0;
	if (kg_uid() == 0 && cfg->root_mode == KG_ROOT_ALLOW) {
		kg_count(hook, KG_PASS);
		return 0;
	}
	return cfg;
}

SEC("lsm/kernel_read_file")
int BPF_PROG(kg_module_file, struct file *file, enum kernel_read_file_id id, bool contents)
{
	if (id != bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return 0;
	u32 gen = 0;
	struct kg_config *cfg = kg_module_load_cfg(KG_HOOK_MODULE_FILE, &gen);
	if (!cfg)
		return 0;
	struct kg_module_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.gen = gen;
	const unsigned char *fname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	int named = fname && bpf_probe_read_kernel_str(key.name, sizeof(key.name), fname) > 1;
	if (named) {
		/* "vsock.ko.xz" -> "vsock" */
		int cut = 0;
		for (int i = 0; i < KG_NAME_LEN; i++) {
			if (key.name[i] == '.')
				cut = 1;
			if (cut)
				key.name[i] = 0;
		}
		named = key.name[0] != 0;
	}
	if (kg_module_load(KG_HOOK_MODULE_FILE, cfg, &key, named) < 0)
		KG_RETURN_ERR(EPERM);
	return 0;
}

SEC("lsm/kernel_post_load_data")
int BPF_PROG(kg_module_data, char *buf, loff_t size, enum kernel_load_data_id id, char *description)
{
	if (id != bpf_core_enum_value(enum kernel_load_data_id, LOADING_MODULE))
		return 0;
	u32 gen = 0;
	struct kg_config *cfg = kg_module_load_cfg(KG_HOOK_MODULE_DATA, &gen);
	if (!cfg)
		return 0;
	struct kg_module_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.gen = gen;
	int named = size > 0 && kg_image_module_name(buf, (u64)size, key.name) == 0;
	if (kg_module_load(KG_HOOK_MODULE_DATA, cfg, &key, named) < 0)
		KG_RETURN_ERR(EPERM);
	return 0;
}
