/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Layouts shared by the BPF programs and the Rust loader (src/abi.rs
 * mirrors every struct here, field for field; a unit test checks sizes).
 */
#ifndef KGATE_H
#define KGATE_H

#define KG_NAME_LEN 64       /* MODULE_NAME_LEN is 56; aliases fit in 64 */
#define KG_FAMILIES 64       /* AF_MAX is 46 on 6.12 */
#define KG_ANY 0xffffffffu   /* socket rule wildcard for type or protocol */
#define KG_SECTIONS 24  /* >= the number of hooks (the Rust Hook::ALL) */
#define KG_VERDICTS 4

/* Section modes. */
#define KG_MODE_OFF 0
#define KG_MODE_AUDIT 1
#define KG_MODE_ENFORCE 2
/* modules.root */
#define KG_ROOT_ALLOW 0
#define KG_ROOT_AUDIT 1
#define KG_ROOT_POLICY 2
/* userns.unprivileged */
#define KG_USERNS_ALLOW 0
#define KG_USERNS_AUDIT 1
#define KG_USERNS_DENY 2

/* Hooks (also the section index of the counters). */
#define KG_HOOK_MODULE 0
#define KG_HOOK_SOCKET 1
#define KG_HOOK_USERNS 2
#define KG_HOOK_MODULE_FILE 3   /* finit_module(2): kernel_read_file */
#define KG_HOOK_MODULE_DATA 4   /* init_module(2): kernel_post_load_data */
#define KG_HOOK_SPLICE 5        /* splice family: file_permission in splice context */
/* 6, 7: the io_uring splice marks (no decisions) */
#define KG_HOOK_VMSPLICE 8      /* fmod_ret/__x64_sys_vmsplice */
#define KG_HOOK_TEE 9           /* fmod_ret/__x64_sys_tee */
#define KG_HOOK_VMSPLICE32 10   /* fmod_ret/__ia32_sys_vmsplice */
#define KG_HOOK_TEE32 11        /* fmod_ret/__ia32_sys_tee */
#define KG_HOOK_SETNS 12        /* lsm/capable inside setns(2): entering a user namespace */
#define KG_HOOK_PTRACE 13       /* lsm/ptrace_access_check: attaching to a namespaced or allow_exe task */
#define KG_HOOK_MMAP_EXEC 14    /* lsm/mmap_file: code a user could write, mapped into an allow_exe process */
/* 15, 16: crypto request attribution (fentry, no decisions) */

/* Capabilities (include/uapi/linux/capability.h) that make a task
 * privileged, per section, when held in the initial user namespace. */
#define KG_CAP_NET_ADMIN 12
#define KG_CAP_SYS_MODULE 16
#define KG_CAP_SYS_ADMIN 21

/* Verdicts. */
#define KG_ALLOW 0   /* allowed by a rule */
#define KG_DENY 1    /* denied */
#define KG_AUDIT 2   /* allowed, but enforce mode would deny */
#define KG_PASS 3    /* not checked: root, kernel socket, section off */

/* Rules (what decided). */
#define KG_RULE_NONE 0
#define KG_RULE_MODULE_LISTED 1      /* request string in the allowlist */
#define KG_RULE_MODULE_NOT_LISTED 2  /* request string not in the allowlist */
#define KG_RULE_MODULE_ROOT 3        /* modules.root */
#define KG_RULE_SOCKET_LISTED 4
#define KG_RULE_SOCKET_FAMILY 5      /* no rule for the family */
#define KG_RULE_SOCKET_PROTOCOL 6    /* family listed, not this type/protocol */
#define KG_RULE_USERNS_EXE 7         /* executable in allow_exe */
#define KG_RULE_USERNS_UNPRIV 8      /* userns.unprivileged */
#define KG_RULE_MODULE_UNNAMED 9     /* explicit load whose module name could not be read */
#define KG_RULE_SPLICE_LISTED 10     /* both endpoints (and the pair) allowed */
#define KG_RULE_SPLICE_SOURCE 11     /* source endpoint not in splice.allow */
#define KG_RULE_SPLICE_DEST 12       /* destination endpoint not in splice.allow */
#define KG_RULE_SPLICE_PAIR 13       /* endpoints allowed, the pair is not in splice.pairs */
#define KG_RULE_SPLICE_CALL 14       /* tee/vmsplice: their pipe/memory pairs are not all allowed */
#define KG_RULE_USERNS_ENTER 15      /* setns(2) into a user namespace, not from an allow_exe executable */
#define KG_RULE_USERNS_PTRACE 16     /* ptrace/process_vm_writev//proc/PID/mem of a namespaced or allow_exe task */
#define KG_RULE_USERNS_INJECT 17     /* executable mapping of a user-writable file in an allow_exe process */
#define KG_RULE_SPLICE_SHARED 18     /* sendfile source from a shared fd table: its destination could become a pipe */

/* Splice endpoint kinds. */
#define KG_EP_PIPE 1
#define KG_EP_FILE 2     /* a = superblock magic */
#define KG_EP_SOCKET 3   /* a = family, b = type, c = protocol */
#define KG_EP_CHARDEV 4  /* a = major, b = minor */
#define KG_EP_OTHER 5
#define KG_EP_MEMORY 6   /* user memory: vmsplice's other end */
#define KG_EP_ANYKIND 0xffffffffu  /* pair pattern "*" */

/* splice_flags */
#define KG_SPLICE_HAS_PAIRS 1
#define KG_SPLICE_TEE_OK 2       /* pipe -> pipe allowed: tee(2) passes */
#define KG_SPLICE_VMSPLICE_OK 4  /* memory -> pipe and pipe -> memory allowed */
#define KG_SPLICE_PIPE_OK 8      /* pipe in splice.allow: no lookup for a pipe end */

/* The call a splice event came from. */
#define KG_SPLICE_CALL_SPLICE 1
#define KG_SPLICE_CALL_SENDFILE 2
#define KG_SPLICE_CALL_COPY_FILE_RANGE 3
#define KG_SPLICE_CALL_IO_URING 4
#define KG_SPLICE_CALL_VMSPLICE 5
#define KG_SPLICE_CALL_TEE 6

struct kg_config {
	u32 modules_mode;
	u32 root_mode;
	u32 sockets_mode;
	u32 userns_mode;
	u32 splice_mode;
	u32 splice_flags;
	u64 generation;
	char hash[64];
};

struct kg_module_key {
	u32 gen;
	char name[KG_NAME_LEN];
};

struct kg_socket_key {
	u32 gen;
	u32 family;
	u32 type;
	u32 protocol;
};

/* An executable: (device, inode) and the inode's change time, which a
 * rewrite, chmod, rename or link of the file moves, so that a replaced
 * file, or another file that later gets the same inode number, does not
 * match. */
struct kg_exe_key {
	u32 gen;
	u32 dev;
	u64 ino;
	s64 ctime_sec;
	u32 ctime_nsec;
	u32 _pad;
};

/* The self-test (src/selftest.rs): while `tgid` is set, the hook `hook`
 * denies that process's requests and counts them in kg_selftest_hits. */
struct kg_selftest {
	u32 tgid;
	u32 hook;
};

/* Who a module request is for: the requesting task, or for a crypto
 * manager kernel thread the task whose algorithm lookup started it. */
struct kg_attr {
	u32 uid;
	u32 privileged;
	u32 set;
	u32 _pad;
};

/* One splice endpoint, or (in pairs) a pattern: a, b, c may be KG_ANY. */
struct kg_endpoint {
	u32 kind;
	u32 a;
	u32 b;
	u32 c;
};

struct kg_splice_ep_key {
	u32 gen;
	struct kg_endpoint ep;
};

struct kg_splice_pair_key {
	u32 gen;
	struct kg_endpoint src;
	struct kg_endpoint dst;
};

/* A splice event's request bytes. */
struct kg_splice_request {
	u32 call;
	struct kg_endpoint src;
	struct kg_endpoint dst;
};

struct kg_event {
	u64 time_ns;
	u64 cgroup_id;
	u32 pid;
	u32 tgid;
	u32 uid;
	u32 hook;
	u32 verdict;
	u32 rule;
	u32 family;
	u32 type;
	u32 protocol;
	u32 _pad;
	char comm[16];
	char request[KG_NAME_LEN];
	char exe[KG_NAME_LEN];
};

#endif
