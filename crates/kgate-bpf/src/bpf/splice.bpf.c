// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Splice: a known-good endpoint registry, enforced at lsm/file_permission.
 *
 * file_permission runs on every read and write (rw_verify_area), so the
 * first branch asks whether the task is inside a splice-family syscall, by
 * the syscall number the task entered with (bpf_task_pt_regs()->orig_ax,
 * without the x32 bit, ia32 numbers when the task is in a compat
 * syscall), or is an io_uring task; everything else returns at once.
 *
 * Which file is which end:
 * - splice(2) and io_uring's IORING_OP_SPLICE: one end is a pipe, and the
 *   kernel checks only the other end (pipe -> pipe reaches no hook), with
 *   MAY_READ when it is the source and MAY_WRITE when it is the
 *   destination;
 * - sendfile(2) and copy_file_range(2): in every call the kernel checks
 *   the source (MAY_READ) and then the destination (MAY_WRITE) before any
 *   data moves, then the source again for every chunk the internal pipe
 *   carries (vfs_splice_read), and 6.1 the destination once more
 *   (do_splice_direct). kgate classifies the source at its checks, keeps
 *   it in the thread's task storage, and decides the pair at the
 *   destination's check from it; the first source check of a call always
 *   comes before the destination's (do_sendfile, vfs_copy_file_range), and
 *   the file behind an fd does not change within a call, so the kept
 *   source is this call's. A repeated destination check that follows an
 *   allow with no source check in between reuses the verdict. Without
 *   task storage the source is resolved from the syscall's fd argument.
 *   Except: sendfile to a pipe checks nothing after the source
 *   (do_sendfile goes straight to splice_file_to_pipe), so the source
 *   check reads out_fd itself and decides source -> pipe there when it is
 *   a pipe, and also when the fd table is shared (another thread could
 *   make out_fd a pipe between this check and the kernel's lookup; such a
 *   sendfile gets EINVAL unless source -> pipe is allowed, and callers
 *   fall back to read/write).
 * - io_uring: a splice runs in io_splice(), inline in io_uring_enter or in
 *   an io-wq worker; fentry/fexit on it mark the thread in task storage.
 *   A thread that could not be marked (no memory for its storage) is
 *   counted in kg_uring_unmarked, and while that count is not zero every
 *   io_uring read or write is decided as a splice (fail closed).
 *
 * Endpoints are identified by inode mode, superblock magic, device numbers
 * and socket family/type/protocol, never by kernel addresses. Unprivileged
 * tasks only: privileged is CAP_SYS_ADMIN in the initial user namespace
 * (root in a default container is unprivileged). A denial returns -EINVAL, which splice
 * callers already handle by falling back to read/write.
 *
 * vmsplice(2), tee(2) and pipe -> pipe splice never call file_permission:
 * no LSM hook sees them (kgate gates them with seccomp instead).
 * Included by kgate.bpf.c.
 */

#define EINVAL 22
#define KG_MAY_WRITE 0x2
#define KG_MAY_READ 0x4
#define KG_PF_IO_WORKER 0x10

#define KG_S_IFMT 0170000
#define KG_S_IFSOCK 0140000
#define KG_S_IFREG 0100000
#define KG_S_IFCHR 0020000
#define KG_S_IFIFO 0010000

/* x86-64 syscall numbers, then ia32 (compat) ones. */
#define KG_NR_sendfile 40
#define KG_NR_splice 275
#define KG_NR_copy_file_range 326
#define KG_NR_io_uring_enter 426
#define KG_NR32_sendfile 187
#define KG_NR32_sendfile64 239
#define KG_NR32_splice 313
#define KG_NR32_copy_file_range 377

/* Allowed endpoints (kg_splice_ep_key: exact, or sockets with KG_ANY). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kg_splice_ep_key);
	__type(value, u8);
} kg_splice_ep SEC(".maps");

/* Allowed source -> destination patterns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kg_splice_pair_key);
	__type(value, u8);
} kg_splice_pair SEC(".maps");

/* sendfile/copy_file_range: the source kept between the checks of one
 * call (see the top of this file). */
struct kg_splice_stash {
	struct kg_endpoint src;
	u64 out;     /* the destination an allow was given for, or 0 */
	u64 out_gen; /* the policy generation of that allow */
	u32 valid;   /* src was set by a source check */
	u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kg_splice_stash);
} kg_splice_stash SEC(".maps");

/* Threads inside io_uring's io_splice(): their nesting depth. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u32);
} kg_uring_splice SEC(".maps");

/* Threads inside io_splice() that could not be marked. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} kg_uring_unmarked SEC(".maps");

static __always_inline void kg_classify(struct file *f, struct kg_endpoint *ep)
{
	ep->kind = KG_EP_OTHER;
	ep->a = 0;
	ep->b = 0;
	ep->c = 0;
	if (!f)
		return;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if (!inode)
		return;
	u32 fmt = BPF_CORE_READ(inode, i_mode) & KG_S_IFMT;
	if (fmt == KG_S_IFIFO) {
		ep->kind = KG_EP_PIPE;
	} else if (fmt == KG_S_IFREG) {
		ep->kind = KG_EP_FILE;
		ep->a = (u32)BPF_CORE_READ(inode, i_sb, s_magic);
	} else if (fmt == KG_S_IFSOCK) {
		struct socket *sock = (struct socket *)BPF_CORE_READ(f, private_data);
		struct sock *sk = BPF_CORE_READ(sock, sk);
		if (!sk)
			return;
		ep->kind = KG_EP_SOCKET;
		ep->a = BPF_CORE_READ(sk, __sk_common.skc_family);
		ep->b = BPF_CORE_READ(sk, sk_type);
		ep->c = BPF_CORE_READ(sk, sk_protocol);
	} else if (fmt == KG_S_IFCHR) {
		dev_t rdev = BPF_CORE_READ(inode, i_rdev);
		ep->kind = KG_EP_CHARDEV;
		ep->a = rdev >> 20;
		ep->b = rdev & 0xfffff;
	}
}

/*
 * kg_classify for the hook's own file, a pointer the verifier knows the
 * type of: fields are read by direct loads (the verifier makes each a
 * single guarded load) and the socket comes from bpf_sock_from_file,
 * instead of one bpf_probe_read_kernel call per field. Same result.
 */
static __always_inline void kg_classify_arg(struct file *f, struct kg_endpoint *ep)
{
	ep->kind = KG_EP_OTHER;
	ep->a = 0;
	ep->b = 0;
	ep->c = 0;
	struct inode *inode = f->f_inode;
	if (!inode)
		return;
	u32 fmt = inode->i_mode & KG_S_IFMT;
	if (fmt == KG_S_IFIFO) {
		ep->kind = KG_EP_PIPE;
	} else if (fmt == KG_S_IFREG) {
		ep->kind = KG_EP_FILE;
		ep->a = (u32)inode->i_sb->s_magic;
	} else if (fmt == KG_S_IFSOCK) {
		struct socket *sock = bpf_sock_from_file(f);
		if (!sock)
			return;
		struct sock *sk = sock->sk;
		if (!sk)
			return;
		ep->kind = KG_EP_SOCKET;
		ep->a = sk->__sk_common.skc_family;
		ep->b = sk->sk_type;
		ep->c = sk->sk_protocol;
	} else if (fmt == KG_S_IFCHR) {
		dev_t rdev = inode->i_rdev;
		ep->kind = KG_EP_CHARDEV;
		ep->a = rdev >> 20;
		ep->b = rdev & 0xfffff;
	}
}

/* The open file behind descriptor fd of task t, or 0. */
static __always_inline struct file *kg_fd_file(struct task_struct *t, u64 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), arr + fd);
	return f;
}

/* Pattern i (0..5) an endpoint matches: exact, the three socket wildcard
 * forms, its class ("file:*"), anything ("*"). 0 when i does not apply. */
static __always_inline int kg_pattern(const struct kg_endpoint *ep, int i, struct kg_endpoint *out)
{
	*out = *ep;
	switch (i) {
	case 0:
		return 1;
	case 1:
		out->b = KG_ANY;
		return ep->kind == KG_EP_SOCKET;
	case 2:
		out->c = KG_ANY;
		return ep->kind == KG_EP_SOCKET;
	case 3:
		out->b = KG_ANY;
		out->c = KG_ANY;
		return ep->kind == KG_EP_SOCKET;
	case 4:
		out->a = KG_ANY;
		out->b = KG_ANY;
		out->c = KG_ANY;
		return ep->kind == KG_EP_FILE || ep->kind == KG_EP_SOCKET || ep->kind == KG_EP_CHARDEV;
	default:
		out->kind = KG_EP_ANYKIND;
		out->a = KG_ANY;
		out->b = KG_ANY;
		out->c = KG_ANY;
		return 1;
	}
}

static __always_inline int kg_ep_allowed(u32 gen, const struct kg_endpoint *ep)
{
	struct kg_splice_ep_key k;
	__builtin_memset(&k, 0, sizeof(k));
	k.gen = gen;
	for (int i = 0; i < 4; i++) {
		if (!kg_pattern(ep, i, &k.ep))
			continue;
		if (bpf_map_lookup_elem(&kg_splice_ep, &k))
			return 1;
	}
	return 0;
}

static __always_inline int kg_pair_allowed(u32 gen, const struct kg_endpoint *src,
					   const struct kg_endpoint *dst)
{
	struct kg_splice_pair_key k;
	__builtin_memset(&k, 0, sizeof(k));
	k.gen = gen;
	for (int i = 0; i < 6; i++) {
		if (!kg_pattern(src, i, &k.src))
			continue;
		for (int j = 0; j < 6; j++) {
			if (!kg_pattern(dst, j, &k.dst))
				continue;
			if (bpf_map_lookup_elem(&kg_splice_pair, &k))
				return 1;
		}
	}
	return 0;
}

/*
 * The decision, for a task inside a splice-family call: 1 to deny, 0 to
 * let it pass. A subprogram of its own (not inlined), so that the hook's
 * fast path below stays a few instructions with no register spills.
 */
static __noinline int kg_splice_decide(struct file *file, int mask, u32 call)
{
	struct task_struct *t = bpf_get_current_task_btf();
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->splice_mode == KG_MODE_OFF)
		return 0;
	if (call == KG_SPLICE_CALL_IO_URING) {
		u32 *depth = bpf_task_storage_get(&kg_uring_splice, t, 0, 0);
		if (!depth || !*depth) {
			u32 zero = 0;
			u64 *unmarked = bpf_map_lookup_elem(&kg_uring_unmarked, &zero);
			if (!unmarked || !*unmarked)
				return 0; /* an io_uring read or write, not a splice */
		}
	}
	if (kg_selftest_hit(KG_HOOK_SPLICE))
		return 1;
	if (kg_privileged(KG_CAP_SYS_ADMIN)) {
		kg_count(KG_HOOK_SPLICE, KG_PASS);
		return 0;
	}

	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	int compat = (t->thread_info.status & KG_TS_COMPAT) != 0;
	struct kg_splice_stash *st = 0;
	struct kg_splice_request req;
	__builtin_memset(&req, 0, sizeof(req));
	req.call = call;
	int source_check = 0, shared = 0;
	if (call == KG_SPLICE_CALL_SENDFILE || call == KG_SPLICE_CALL_COPY_FILE_RANGE) {
		/* Decided at the destination's check; the source checks keep
		 * the source, except sendfile's towards a pipe (see the top). */
		st = bpf_task_storage_get(&kg_splice_stash, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!(mask & KG_MAY_WRITE)) {
			if (st) {
				kg_classify_arg(file, &st->src);
				st->valid = 1;
				st->out = 0;
			}
			if (call != KG_SPLICE_CALL_SENDFILE)
				return 0;
			u64 out_fd = compat ? regs->bx : regs->di;
			kg_classify(kg_fd_file(t, (u32)out_fd), &req.dst);
			shared = BPF_CORE_READ(t, files, count.counter) > 1;
			if (req.dst.kind != KG_EP_PIPE && !shared)
				return 0;
			source_check = 1;
			shared = req.dst.kind != KG_EP_PIPE; /* not a pipe yet */
			kg_classify_arg(file, &req.src);
			req.dst.kind = KG_EP_PIPE;
			req.dst.a = 0;
			req.dst.b = 0;
			req.dst.c = 0;
		} else {
			/* 6.1's second destination check of the same call, after
			 * an allow under the same policy. */
			if (st && st->out == (u64)file && cfg->generation == st->out_gen)
				return 0;
			if (st && st->valid) {
				req.src = st->src;
			} else {
				/* sendfile(out_fd, in_fd, ...), copy_file_range(fd_in,
				 * off_in, fd_out, ...): the source from its fd. */
				u64 in_fd;
				if (call == KG_SPLICE_CALL_SENDFILE)
					in_fd = compat ? regs->cx : regs->si;
				else
					in_fd = compat ? regs->bx : regs->di;
				kg_classify(kg_fd_file(t, (u32)in_fd), &req.src);
			}
			kg_classify_arg(file, &req.dst);
		}
	} else {
		/* splice(2) and io_uring: one end is a pipe, the kernel checks
		 * the other. */
		struct kg_endpoint pipe = { .kind = KG_EP_PIPE };
		if (mask & KG_MAY_WRITE) {
			req.src = pipe;
			kg_classify_arg(file, &req.dst);
		} else {
			kg_classify_arg(file, &req.src);
			req.dst = pipe;
		}
	}

	u32 rule = KG_RULE_SPLICE_LISTED;
	int pipe_ok = (cfg->splice_flags & KG_SPLICE_PIPE_OK) != 0;
	if (!(pipe_ok && req.src.kind == KG_EP_PIPE) && !kg_ep_allowed(gen, &req.src))
		rule = KG_RULE_SPLICE_SOURCE;
	else if (!(pipe_ok && req.dst.kind == KG_EP_PIPE) && !kg_ep_allowed(gen, &req.dst))
		rule = KG_RULE_SPLICE_DEST;
	else if ((cfg->splice_flags & KG_SPLICE_HAS_PAIRS) && !kg_pair_allowed(gen, &req.src, &req.dst))
		rule = KG_RULE_SPLICE_PAIR;
	if (rule == KG_RULE_SPLICE_LISTED) {
		kg_count(KG_HOOK_SPLICE, KG_ALLOW);
		if (st && !source_check) {
			st->out = (u64)file;
			st->out_gen = cfg->generation;
		}
		return 0;
	}
	if (source_check && shared)
		rule = KG_RULE_SPLICE_SHARED;
	char buf[KG_NAME_LEN];
	__builtin_memset(buf, 0, sizeof(buf));
	__builtin_memcpy(buf, &req, sizeof(req));
	if (cfg->splice_mode == KG_MODE_ENFORCE) {
		kg_count(KG_HOOK_SPLICE, KG_DENY);
		kg_emit(KG_HOOK_SPLICE, KG_DENY, rule, buf, 0, 0, 0);
		return 1;
	}
	kg_count(KG_HOOK_SPLICE, KG_AUDIT);
	kg_emit(KG_HOOK_SPLICE, KG_AUDIT, rule, buf, 0, 0, 0);
	return 0;
}

SEC("lsm/file_permission")
int BPF_PROG(kg_splice_file, struct file *file, int mask)
{
	/* First branch: not in a splice-family call -> done. Every read and
	 * write pays this: two helper calls, a load, a mask and two compares
	 * for ordinary syscall numbers (all below sendfile's 40 or above
	 * io_uring_enter's 426 on x86_64 and ia32 alike; x32 numbers are the
	 * x86_64 ones with bit 30 set, which the mask clears). */
	struct task_struct *t = bpf_get_current_task_btf();
	long nr = kg_syscall_nr(t);
	u32 call = 0;
	if (nr >= KG_NR_sendfile && nr <= KG_NR_io_uring_enter) {
		int compat = (t->thread_info.status & KG_TS_COMPAT) != 0;
		if (nr == KG_NR_io_uring_enter)
			call = KG_SPLICE_CALL_IO_URING;
		else if (!compat && nr == KG_NR_splice)
			call = KG_SPLICE_CALL_SPLICE;
		else if (!compat && nr == KG_NR_sendfile)
			call = KG_SPLICE_CALL_SENDFILE;
		else if (!compat && nr == KG_NR_copy_file_range)
			call = KG_SPLICE_CALL_COPY_FILE_RANGE;
		else if (compat && nr == KG_NR32_splice)
			call = KG_SPLICE_CALL_SPLICE;
		else if (compat && (nr == KG_NR32_sendfile || nr == KG_NR32_sendfile64))
			call = KG_SPLICE_CALL_SENDFILE;
		else if (compat && nr == KG_NR32_copy_file_range)
			call = KG_SPLICE_CALL_COPY_FILE_RANGE;
	} else if (t->flags & KG_PF_IO_WORKER) {
		call = KG_SPLICE_CALL_IO_URING;
	}
	if (!call)
		return 0;
	/* Constants from separate branches: the verifier must see the
	 * return value in [-4095, 0]. */
	if (kg_splice_decide(file, mask, call))
		KG_RETURN_ERR(EINVAL);
	return 0;
}

/* io_uring runs IORING_OP_SPLICE in io_splice(), inline in io_uring_enter
 * or in an io-wq worker: mark the thread for the duration. */
SEC("fentry/io_splice")
int BPF_PROG(kg_uring_splice_enter, struct io_kiocb *req, unsigned int issue_flags)
{
	struct task_struct *t = bpf_get_current_task_btf();
	u32 *depth = bpf_task_storage_get(&kg_uring_splice, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (depth) {
		*depth += 1;
		return 0;
	}
	u32 zero = 0;
	u64 *unmarked = bpf_map_lookup_elem(&kg_uring_unmarked, &zero);
	if (unmarked)
		__sync_fetch_and_add(unmarked, 1);
	return 0;
}

SEC("fexit/io_splice")
int BPF_PROG(kg_uring_splice_exit, struct io_kiocb *req, unsigned int issue_flags, int ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	u32 *depth = bpf_task_storage_get(&kg_uring_splice, t, 0, 0);
	if (depth && *depth) {
		*depth -= 1;
		return 0;
	}
	u32 zero = 0;
	u64 *unmarked = bpf_map_lookup_elem(&kg_uring_unmarked, &zero);
	if (unmarked && *unmarked)
		__sync_fetch_and_sub(unmarked, 1);
	return 0;
}

/*
 * tee(2) and vmsplice(2) reach no LSM hook. Where the kernel lets BPF fail
 * a syscall (CONFIG_FUNCTION_ERROR_INJECTION: the syscall entry points are
 * on the error-injection list), fmod_ret programs on their entry decide for
 * unprivileged tasks, from two bits userspace computed from the registry:
 * tee moves pipe -> pipe; vmsplice moves memory -> pipe or pipe -> memory,
 * by which end of a pipe its fd is, which another thread sharing the fd
 * table could change between this check and the kernel's own lookup, so
 * vmsplice passes only when both directions are allowed. Nothing here
 * reads the fds to decide. Pipe -> pipe splice(2) is not gated: telling it
 * apart needs both fds, which such a thread could swap after the check.
 * A denial returns -EINVAL without running the syscall.
 */
#define KG_FMODE_WRITE 0x2

static __noinline int kg_syscall_gate(u32 hook, u32 call, u64 fd)
{
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (kg_selftest_hit(hook))
		return 1;
	if (!cfg || cfg->splice_mode == KG_MODE_OFF)
		return 0;
	if (kg_privileged(KG_CAP_SYS_ADMIN)) {
		kg_count(hook, KG_PASS);
		return 0;
	}
	u32 ok = call == KG_SPLICE_CALL_TEE ? KG_SPLICE_TEE_OK : KG_SPLICE_VMSPLICE_OK;
	if (cfg->splice_flags & ok) {
		kg_count(hook, KG_ALLOW);
		return 0;
	}
	struct kg_splice_request req;
	__builtin_memset(&req, 0, sizeof(req));
	req.call = call;
	req.src.kind = KG_EP_PIPE;
	req.dst.kind = KG_EP_PIPE;
	if (call == KG_SPLICE_CALL_VMSPLICE) {
		/* For the event only: the direction the fd shows now. */
		struct file *f = kg_fd_file(bpf_get_current_task_btf(), (u32)fd);
		if (f && (BPF_CORE_READ(f, f_mode) & KG_FMODE_WRITE))
			req.src.kind = KG_EP_MEMORY;
		else
			req.dst.kind = KG_EP_MEMORY;
	}
	char buf[KG_NAME_LEN];
	__builtin_memset(buf, 0, sizeof(buf));
	__builtin_memcpy(buf, &req, sizeof(req));
	if (cfg->splice_mode == KG_MODE_ENFORCE) {
		kg_count(hook, KG_DENY);
		kg_emit(hook, KG_DENY, KG_RULE_SPLICE_CALL, buf, 0, 0, 0);
		return 1;
	}
	kg_count(hook, KG_AUDIT);
	kg_emit(hook, KG_AUDIT, KG_RULE_SPLICE_CALL, buf, 0, 0, 0);
	return 0;
}

SEC("fmod_ret/__x64_sys_vmsplice")
int BPF_PROG(kg_vmsplice, const struct pt_regs *regs, long ret)
{
	if (kg_syscall_gate(KG_HOOK_VMSPLICE, KG_SPLICE_CALL_VMSPLICE, regs->di))
		return -EINVAL;
	return 0;
}

SEC("fmod_ret/__x64_sys_tee")
int BPF_PROG(kg_tee, const struct pt_regs *regs, long ret)
{
	if (kg_syscall_gate(KG_HOOK_TEE, KG_SPLICE_CALL_TEE, 0))
		return -EINVAL;
	return 0;
}

/* ia32 entries (IA32_EMULATION): the first argument is in bx. */
SEC("fmod_ret/__ia32_sys_vmsplice")
int BPF_PROG(kg_vmsplice32, const struct pt_regs *regs, long ret)
{
	if (kg_syscall_gate(KG_HOOK_VMSPLICE32, KG_SPLICE_CALL_VMSPLICE, regs->bx))
		return -EINVAL;
	return 0;
}

SEC("fmod_ret/__ia32_sys_tee")
int BPF_PROG(kg_tee32, const struct pt_regs *regs, long ret)
{
	if (kg_syscall_gate(KG_HOOK_TEE32, KG_SPLICE_CALL_TEE, 0))
		return -EINVAL;
	return 0;
}
