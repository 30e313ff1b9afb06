// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Module autoload: lsm/kernel_module_request sees the request string
 * ("net-pf-40", "fs-xfs", "algif-aead", ...) before the kernel runs
 * modprobe. The string is normalized like kmod does ('-' -> '_') and looked
 * up in kg_module_allow, which userspace fills with the strings that
 * resolve only to allowed modules. Included by kgate.bpf.c.
 */

#define KG_PF_KTHREAD 0x00200000
#define KG_CRYPTO_MSG_ALG_REQUEST 0 /* include/crypto/algapi.h */
#define KG_UID_UNKNOWN 0xffffffffu

/* Crypto algorithm lookups waiting for a cryptomgr_probe thread, by the
 * larval the lookup registered: who asked. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct kg_attr);
} kg_crypto_larval SEC(".maps");

/* A crypto manager kernel thread's attribution. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kg_attr);
} kg_task_attr SEC(".maps");

/*
 * Who a module request is for. A task: itself (privileged when it holds
 * CAP_SYS_MODULE in the initial user namespace). A crypto manager thread
 * (cryptomgr_probe instantiates templates such as authencesn for whoever
 * looked the algorithm up; it runs as the kernel, with every capability):
 * the task its attribution names, and when there is none (the attribution
 * programs are not attached, or the LRU lost the entry), an unknown
 * unprivileged user: a kernel thread never launders a user's request.
 */
static __always_inline void kg_requester(struct kg_attr *who)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct kg_attr *a = bpf_task_storage_get(&kg_task_attr, t, 0, 0);
	if (a && a->set) {
		*who = *a;
		return;
	}
	who->set = 1;
	who->_pad = 0;
	if (t->flags & KG_PF_KTHREAD) {
		char comm[16];
		__builtin_memcpy(comm, t->comm, sizeof(comm));
		if (bpf_strncmp(comm, 10, "cryptomgr_") == 0) {
			who->uid = KG_UID_UNKNOWN;
			who->privileged = 0;
			return;
		}
	}
	who->uid = kg_uid();
	who->privileged = kg_privileged(KG_CAP_SYS_MODULE);
}

/* kmod's rule: '-' and '_' are the same; names are kept with '_'. */
static __always_inline void kg_normalize(char *name)
{
	for (int i = 0; i < KG_NAME_LEN; i++) {
		if (name[i] == 0)
			break;
		if (name[i] == '-')
			name[i] = '_';
	}
}

SEC("lsm/kernel_module_request")
int BPF_PROG(kg_module_request, char *kmod_name)
{
	if (kg_selftest_hit(KG_HOOK_MODULE))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->modules_mode == KG_MODE_OFF)
		return 0;
	struct kg_attr who;
	kg_requester(&who);
	u32 root = who.privileged;
	u32 root_mode = cfg->root_mode;
	if (root && root_mode == KG_ROOT_ALLOW) {
		kg_count(KG_HOOK_MODULE, KG_PASS);
		return 0;
	}

	struct kg_module_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.gen = gen;
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), kmod_name);
	kg_normalize(key.name);
	if (bpf_map_lookup_elem(&kg_module_allow, &key)) {
		kg_count(KG_HOOK_MODULE, KG_ALLOW);
		return 0;
	}

	u32 rule = root ? KG_RULE_MODULE_ROOT : KG_RULE_MODULE_NOT_LISTED;
	if (cfg->modules_mode == KG_MODE_ENFORCE && !(root && root_mode == KG_ROOT_AUDIT)) {
		kg_count(KG_HOOK_MODULE, KG_DENY);
		kg_emit_as(who.uid, KG_HOOK_MODULE, KG_DENY, rule, key.name, 0, 0, 0);
		KG_RETURN_ERR(EPERM);
	}
	kg_count(KG_HOOK_MODULE, KG_AUDIT);
	kg_emit_as(who.uid, KG_HOOK_MODULE, KG_AUDIT, rule, key.name, 0, 0, 0);
	return 0;
}

/* An algorithm lookup that found nothing asks the crypto manager to build
 * it (crypto_alg_mod_lookup -> crypto_probing_notify(CRYPTO_MSG_ALG_REQUEST,
 * larval) -> the notifier cryptomgr_notify), in the asking task: remember
 * who asked, by larval. The notifier, called through a pointer, cannot be
 * inlined; crypto_probing_notify is, into its caller in crypto/api.c, so
 * an fentry there never fires. Inside a crypto manager thread (a template
 * needing an inner algorithm) the thread's own attribution carries over. */
SEC("fentry/cryptomgr_notify")
int BPF_PROG(kg_crypto_notify, void *nb, unsigned long val, void *v)
{
	if (val != KG_CRYPTO_MSG_ALG_REQUEST || !v)
		return 0;
	struct kg_attr who;
	kg_requester(&who);
	u64 key = (u64)v;
	bpf_map_update_elem(&kg_crypto_larval, &key, &who, BPF_ANY);
	return 0;
}

/* The crypto manager thread for that larval starts: it acts for the task
 * that asked (unknown, so unprivileged, when nothing was recorded). */
SEC("fentry/cryptomgr_probe")
int BPF_PROG(kg_crypto_probe, struct cryptomgr_param *param)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct kg_attr *a = bpf_task_storage_get(&kg_task_attr, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return 0; /* kg_requester treats the thread as unknown */
	u64 key = (u64)BPF_CORE_READ(param, larval);
	struct kg_attr *who = bpf_map_lookup_elem(&kg_crypto_larval, &key);
	if (who) {
		*a = *who;
		bpf_map_delete_elem(&kg_crypto_larval, &key);
	} else {
		a->uid = KG_UID_UNKNOWN;
		a->privileged = 0;
	}
	a->set = 1;
	return 0;
}

/*
 * Explicit loads: modprobe/insmod end in finit_module(2) (a file: the
 * kernel_post_read_file hook, READING_MODULE, which sees the bytes the
 * kernel read) or init_module(2) (a buffer, which kmod before 31 uses for
 * every compressed module: kernel_post_load_data, LOADING_MODULE). Only a
 * task with CAP_SYS_MODULE in the initial user namespace gets here (the
 * kernel checks it first), so this is about root: modules.root = "allow"
 * passes, "audit" reports what the allowlist would deny, "policy" holds
 * root to the allowlist. The module is judged by its real name, the one
 * the kernel itself gives it: `struct module`'s name in the image's
 * SHF_ALLOC section .gnu.linkonce.this_module, never the file name, so
 * `insmod /tmp/xfs.ko` holding kcm is kcm. An image whose name cannot be
 * read is treated as not listed (fail closed). The one exception: a
 * compressed file that finit_module(MODULE_INIT_COMPRESSED_FILE) will
 * decompress in the kernel (kmod 31+ on kernels with
 * CONFIG_MODULE_DECOMPRESS) reaches no hook after decompression; it is
 * judged by its file name up to the first '.' (docs/policy.md, "What
 * kgate does not stop").
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
		/* The kernel's find_sec() only takes an SHF_ALLOC section. */
		u64 flags = 0;
		bpf_probe_read_kernel(&flags, sizeof(flags), sh + 0x08);
		if (!(flags & 0x2))
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
	if (named) {
		kg_normalize(key->name);
		if (bpf_map_lookup_elem(&kg_module_allow, key)) {
			kg_count(hook, KG_ALLOW);
			return 0;
		}
	}
	/* Every task here holds CAP_SYS_MODULE (the kernel checked it first),
	 * so it is judged by modules.root. */
	u32 rule = named ? KG_RULE_MODULE_ROOT : KG_RULE_MODULE_UNNAMED;
	if (cfg->modules_mode == KG_MODE_ENFORCE && cfg->root_mode != KG_ROOT_AUDIT) {
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
	if (cfg->root_mode == KG_ROOT_ALLOW) {
		kg_count(hook, KG_PASS);
		return 0;
	}
	return cfg;
}

/* xz, zstd, gzip: what CONFIG_MODULE_DECOMPRESS takes. */
static __always_inline int kg_compressed(const char *buf, u64 size)
{
	u8 m[4] = {};
	if (size < 4 || bpf_probe_read_kernel(m, sizeof(m), buf) < 0)
		return 0;
	return (m[0] == 0xfd && m[1] == '7' && m[2] == 'z' && m[3] == 'X') ||
	       (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) ||
	       (m[0] == 0x1f && m[1] == 0x8b);
}

SEC("lsm/kernel_post_read_file")
int BPF_PROG(kg_module_file, struct file *file, char *buf, loff_t size, enum kernel_read_file_id id)
{
	if (id != bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return 0;
	if (kg_selftest_hit(KG_HOOK_MODULE_FILE))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_module_load_cfg(KG_HOOK_MODULE_FILE, &gen);
	if (!cfg)
		return 0;
	struct kg_module_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.gen = gen;
	int named = 0;
	if (size > 0 && kg_compressed(buf, (u64)size)) {
		const unsigned char *fname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
		named = fname && bpf_probe_read_kernel_str(key.name, sizeof(key.name), fname) > 1;
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
	} else if (size > 0) {
		named = kg_image_module_name(buf, (u64)size, key.name) == 0;
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
	if (kg_selftest_hit(KG_HOOK_MODULE_DATA))
		KG_RETURN_ERR(EPERM);
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
