/*
 * probe: the kernel lab's guest-side helper.
 *
 * Small subcommands that lab scenarios need to poke the kernel the way an
 * unprivileged user would. Every subcommand prints one machine-readable line
 * on stdout and exits 0 when the probe itself ran (whatever the kernel said);
 * a non-zero exit means the probe was misused or could not run at all.
 *
 *   probe socket FAMILY TYPE PROTO        -> ok | errno=NAME
 *   probe socketpair FAMILY TYPE PROTO    -> ok | errno=NAME
 *   probe as-user UID GID -- CMD ARGS...  (drop to UID/GID, no groups, exec)
 *   probe alg-bind TYPE NAME              -> ok | socket-errno=NAME | errno=NAME
 *   probe unshare-user                    -> ok | errno=NAME
 *   probe unshare-user-net-netlink PROTO  -> ok | unshare-errno=NAME | errno=NAME
 *   probe sockdiag FAMILY [PROTO]         -> ok | socket-errno=NAME | errno=NAME
 *   probe tiocsetd LDISC                  -> ok | open-errno=NAME | errno=NAME
 *   probe splice-alg FILE                 -> ok sha256=HEX bytes=N | step=STEP errno=NAME
 *   probe sendfile-alg FILE               -> (the same)
 *   probe splice-tcp FILE                 -> ok bytes=N sum=HEX file_bytes=N file_sum=HEX
 *                                            | step=.. errno=..
 *   probe sendfile-tcp FILE               -> (the same)
 *   probe splice-dev DEV                  -> ok bytes=N | step=.. errno=..
 *   probe copy-fallback SRC DST           -> ok bytes=N method=splice|fallback ...
 *                                            | step=.. errno=..
 *   probe copy-range SRC DST              -> ok bytes=N | step=.. errno=..
 *   probe uring-splice FILE               -> ok bytes=N res=N | step=.. errno=..
 *   probe uring-tee                       -> ok bytes=N res=N | step=.. errno=..
 *   probe vmsplice | tee | splice-pipe    -> ok bytes=N | step=.. errno=..
 *   probe vmsplice-read                   (pipe -> memory: vmsplice on the read end)
 *   probe vmsplice32 | tee32              (the ia32 entries, by int 0x80)
 *   probe errno-name N                    -> NAME (for scripts)
 *   probe bench OP ITERS [ROUNDS [SIZE]] OP: socket getpid readzero splice-tcp
 *                                         sendfile-tcp pipe-rw file-read file-write
 *                                         setuid mmap mmap-exec
 *                                         -> ns_per_op=MEDIAN min=.. max=.. rounds=.. iters=..
 *   probe lsm-floor HOOK PIN              -> ok btf_id=N | step=.. errno=.. (root: an
 *                                            empty BPF-LSM program on HOOK, its link
 *                                            pinned at PIN; rm PIN detaches it)
 *
 * Numbers may be decimal or 0x-hex. Built with `gcc -static -O2` at lab
 * build time, so it needs no libraries in the guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/if_alg.h>
#include <linux/inet_diag.h>
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/vm_sockets_diag.h>

/* Symbolic name of an errno value; "E<number>" for unknown ones. */
static const char *errno_name(int e)
{
	static char buf[32];
#define E(x) case x: return #x
	switch (e) {
	E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(ENXIO); E(E2BIG);
	E(ENOEXEC); E(EBADF); E(ECHILD); E(EAGAIN); E(ENOMEM); E(EACCES);
	E(EFAULT); E(EBUSY); E(EEXIST); E(ENODEV); E(ENOTDIR); E(EISDIR);
	E(EINVAL); E(ENFILE); E(EMFILE); E(ENOTTY); E(ENOSPC); E(EROFS);
	E(ERANGE); E(ENOSYS); E(ENOTSOCK); E(EPROTOTYPE); E(ENOPROTOOPT);
	E(EPROTONOSUPPORT); E(ESOCKTNOSUPPORT); E(EOPNOTSUPP);
	E(EPFNOSUPPORT); E(EAFNOSUPPORT); E(EADDRINUSE); E(EADDRNOTAVAIL);
	E(ENETDOWN); E(ENOBUFS); E(ECONNREFUSED); E(ENOKEY); E(EUSERS);
	E(ENOPKG); E(EPIPE); E(ESPIPE); E(EXDEV); E(ECONNRESET); E(ENOTCONN);
	E(EOVERFLOW);
	default:
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
#undef E
}

static void usage(void)
{
	fputs("usage: probe socket FAMILY TYPE PROTO\n"
	      "       probe socketpair FAMILY TYPE PROTO\n"
	      "       probe as-user UID GID -- CMD [ARGS...]\n"
	      "       probe alg-bind TYPE NAME\n"
	      "       probe unshare-user\n"
	      "       probe uring-setup\n"
	      "       probe unshare-user-net-netlink PROTO\n"
	      "       probe sockdiag FAMILY [PROTO]\n"
	      "       probe tiocsetd LDISC\n"
	      "       probe splice-alg FILE\n"
	      "       probe sendfile-alg FILE\n"
	      "       probe splice-tcp FILE\n"
	      "       probe sendfile-tcp FILE\n"
	      "       probe splice-dev DEV\n"
	      "       probe copy-fallback SRC DST\n"
	      "       probe copy-range SRC DST\n"
	      "       probe uring-splice FILE\n"
	      "       probe uring-tee\n"
	      "       probe vmsplice\n"
	      "       probe tee\n"
	      "       probe vmsplice-read | vmsplice32 | tee32\n"
	      "       probe splice-pipe\n"
	      "       probe errno-name N\n"
	      "       probe drop-caps -- CMD...   (uid 0, no capabilities, empty bounding set)\n"
	      "       probe sendfile-pipe FILE\n"
	      "       probe sendfile-race FILE N [first]\n"
	      "       probe x32-splice FILE\n"
	      "       probe userns-hold GOFILE OUTFILE\n"
	      "       probe setns-user PID\n"
	      "       probe ptrace-attach PID\n"
	      "       probe mmap-exec FILE\n"
	      "       probe bench OP ITERATIONS [ROUNDS [SIZE]]\n"
	      "         OP: socket getpid readzero splice-tcp sendfile-tcp pipe-rw\n"
	      "             file-read file-write\n"
	      "       probe flood N FAMILY TYPE PROTO\n"
	      "       probe lsm-floor HOOK PIN\n",
	      stderr);
	exit(2);
}

/* Parse a decimal or 0x-hex integer argument, or die with usage. */
static long num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0') {
		fprintf(stderr, "probe: not a number: %s\n", s);
		usage();
	}
	return v;
}

/* Print "ok" or "<prefix>errno=NAME" and return 0 (the probe ran). */
static int report(int rc, const char *prefix)
{
	if (rc < 0)
		printf("%serrno=%s\n", prefix, errno_name(errno));
	else
		printf("ok\n");
	return 0;
}

/* socket(FAMILY, TYPE, PROTO): the classic module autoload trigger. */
static int cmd_socket(int argc, char **argv)
{
	int fd;

	if (argc != 3)
		usage();
	fd = socket(num(argv[0]), num(argv[1]), num(argv[2]));
	report(fd, "");
	if (fd >= 0)
		close(fd);
	return 0;
}

/* socketpair(FAMILY, TYPE, PROTO): creates the family's sockets, and so
 * autoloads its module, before the family can refuse a pair. */
static int cmd_socketpair(int argc, char **argv)
{
	int sv[2];
	int rc;

	if (argc != 3)
		usage();
	rc = socketpair(num(argv[0]), num(argv[1]), num(argv[2]), sv);
	report(rc, "");
	if (rc == 0) {
		close(sv[0]);
		close(sv[1]);
	}
	return 0;
}

/* Become UID/GID with no supplementary groups, then exec CMD. */
static int cmd_as_user(int argc, char **argv)
{
	uid_t uid;
	gid_t gid;

	if (argc < 4 || strcmp(argv[2], "--") != 0)
		usage();
	uid = num(argv[0]);
	gid = num(argv[1]);
	if (setgroups(0, NULL) < 0) {
		perror("probe: setgroups");
		return 1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		perror("probe: setresgid");
		return 1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		perror("probe: setresuid");
		return 1;
	}
	execvp(argv[3], &argv[3]);
	fprintf(stderr, "probe: exec %s: %s\n", argv[3], strerror(errno));
	return 127;
}

/*
 * AF_ALG bind: socket(AF_ALG) autoloads af_alg, the salg_type autoloads
 * algif-TYPE, and the salg_name makes the crypto API load crypto-NAME
 * (and the templates it is built from).
 */
static int cmd_alg_bind(int argc, char **argv)
{
	struct sockaddr_alg sa;
	int fd, rc;

	if (argc != 2)
		usage();
	if (strlen(argv[0]) >= sizeof(sa.salg_type) ||
	    strlen(argv[1]) >= sizeof(sa.salg_name)) {
		fputs("probe: alg type or name too long\n", stderr);
		return 2;
	}
	fd = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (fd < 0)
		return report(fd, "socket-");
	memset(&sa, 0, sizeof(sa));
	sa.salg_family = AF_ALG;
	strcpy((char *)sa.salg_type, argv[0]);
	strcpy((char *)sa.salg_name, argv[1]);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	report(rc, "");
	close(fd);
	return 0;
}

/* unshare(CLONE_NEWUSER): can this user create a user namespace? */
static int cmd_unshare_user(int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		usage();
	return report(unshare(CLONE_NEWUSER), "");
}

/*
 * io_uring_setup(4, {0}): "ok", or the errno (EPERM under
 * kernel.io_uring_disabled=2, or =1 for a task outside io_uring_group).
 */
static int cmd_uring_setup(int argc, char **argv)
{
	struct io_uring_params par;
	long fd;

	(void)argv;
	if (argc != 0)
		usage();
	memset(&par, 0, sizeof(par));
	fd = syscall(__NR_io_uring_setup, 4, &par);
	if (fd >= 0)
		close((int)fd);
	return report(fd < 0 ? -1 : 0, "");
}

/*
 * unshare(CLONE_NEWUSER|CLONE_NEWNET), then socket(AF_NETLINK, SOCK_RAW,
 * PROTO): netlink families whose modules load from inside a user namespace.
 */
static int cmd_unshare_user_net_netlink(int argc, char **argv)
{
	int fd;

	if (argc != 1)
		usage();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		return report(-1, "unshare-");
	fd = socket(AF_NETLINK, SOCK_RAW, num(argv[0]));
	report(fd, "");
	if (fd >= 0)
		close(fd);
	return 0;
}

/*
 * A SOCK_DIAG_BY_FAMILY dump request for FAMILY over NETLINK_SOCK_DIAG. The
 * kernel loads net-pf-16-proto-4-type-FAMILY (e.g. inet_diag, vsock_diag,
 * unix_diag) to answer it, and for AF_INET/AF_INET6 the inet_diag handler
 * loads net-pf-16-proto-4-type-FAMILY-PROTO (tcp_diag, udp_diag, ...).
 * PROTO defaults to IPPROTO_TCP for inet families and is unused otherwise.
 * Prints "ok" when the dump answered without an error.
 */
static int cmd_sockdiag(int argc, char **argv)
{
	struct {
		struct nlmsghdr nlh;
		union {
			struct inet_diag_req_v2 inet;
			struct vsock_diag_req vsock;
			struct sock_diag_req generic;
		} r;
	} req;
	struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
	char buf[16384];
	int family, fd;
	ssize_t n;

	if (argc != 1 && argc != 2)
		usage();
	family = num(argv[0]);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return report(fd, "socket-");

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nlh.nlmsg_seq = 1;
	if (family == AF_INET || family == AF_INET6) {
		req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r.inet));
		req.r.inet.sdiag_family = family;
		req.r.inet.sdiag_protocol = argc == 2 ? num(argv[1]) : 6;
		req.r.inet.idiag_states = ~0U;
	} else if (family == AF_VSOCK) {
		req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r.vsock));
		req.r.vsock.sdiag_family = family;
		req.r.vsock.vdiag_states = ~0U;
	} else {
		/* Families with their own request layout all start like this;
		 * the handler is loaded before the payload is looked at. */
		req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r));
		req.r.generic.sdiag_family = family;
		if (argc == 2)
			req.r.generic.sdiag_protocol = num(argv[1]);
	}
	if (sendto(fd, &req, req.nlh.nlmsg_len, 0,
		   (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0) {
		report(-1, "send-");
		close(fd);
		return 0;
	}
	/* Read until NLMSG_DONE or NLMSG_ERROR. */
	for (;;) {
		struct nlmsghdr *h;

		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			report(-1, "recv-");
			break;
		}
		if (n == 0) {
			printf("ok\n");
			break;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				printf("ok\n");
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *err = NLMSG_DATA(h);

				if (err->error == 0)
					printf("ok\n");
				else
					printf("errno=%s\n",
					       errno_name(-err->error));
				goto out;
			}
		}
	}
out:
	close(fd);
	return 0;
}

/* Open a pty master and set line discipline LDISC (loads tty-ldisc-N). */
static int cmd_tiocsetd(int argc, char **argv)
{
	int fd, ldisc;

	if (argc != 1)
		usage();
	ldisc = num(argv[0]);
	fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return report(fd, "open-");
	report(ioctl(fd, TIOCSETD, &ldisc), "");
	close(fd);
	return 0;
}

static int cmd_errno_name(int argc, char **argv)
{
	if (argc != 1)
		usage();
	printf("%s\n", errno_name(num(argv[0])));
	return 0;
}

/*
 * The splice family (issue 5): splice, sendfile, copy_file_range, tee,
 * vmsplice and io_uring's splice and tee ops, between the endpoints kgate's
 * [splice] registry names (files, pipes, sockets, character devices).
 * These probes print "ok ..." with the bytes moved, or "step=STEP
 * errno=NAME" for the first step that failed, so a scenario can tell a
 * denied splice (the step that moves data) from a failed setup step.
 *
 * Checksums are FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3, over the bytes in order), printed as 16 hex digits:
 * "sum" is over what arrived, "file_sum" over FILE read with read(2).
 */
#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define CHUNK 65536	/* bytes per splice call: the default pipe capacity */

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= FNV_PRIME;
	}
	return h;
}

/* Print "step=STEP errno=NAME" (errno as set by the failed call); 0. */
static int step_fail(const char *step)
{
	printf("step=%s errno=%s\n", step, errno_name(errno));
	return 0;
}

/*
 * Open argv[0] to read and argv[1] to write (created or truncated). On
 * failure, reports the step (open-src, open-dst) and returns -1 with
 * nothing left open.
 */
static int open_src_dst(char **argv, int *src, int *dst)
{
	*src = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (*src < 0) {
		step_fail("open-src");
		return -1;
	}
	*dst = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*dst < 0) {
		step_fail("open-dst");
		close(*src);
		return -1;
	}
	return 0;
}

/* Length and FNV-1a 64 of PATH read with read(2); -1 and errno on error. */
static int file_fnv(const char *path, long long *bytes, uint64_t *sum)
{
	static unsigned char buf[CHUNK];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	*bytes = 0;
	*sum = FNV_BASIS;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		*bytes += n;
		*sum = fnv1a(*sum, buf, n);
	}
	close(fd);
	return n < 0 ? -1 : 0;
}

/*
 * A loopback TCP connection whose far end is drained by a child process:
 * `fd` is the sending side; the child reads the accepted side to EOF and,
 * if asked to, reports the byte count and FNV-1a 64 of what it read
 * through the `res` pipe.
 */
struct sink {
	int fd;
	int res;
	pid_t pid;
};

struct sink_result {
	long long bytes;
	uint64_t sum;
};

/* Set up a sink; NULL, or the name of the step that failed (errno set). */
static const char *sink_open(struct sink *s, int hash)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int lfd, afd, rp[2], e;

	s->fd = s->res = -1;
	s->pid = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return "socket";
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		e = errno;
		close(lfd);
		errno = e;
		return "listen";
	}
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(lfd);
		errno = e;
		return "connect";
	}
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	e = errno;
	close(lfd);
	errno = e;
	if (afd < 0)
		return "accept";
	if (pipe2(rp, O_CLOEXEC) < 0)
		return "pipe";
	s->pid = fork();
	if (s->pid < 0)
		return "fork";
	if (s->pid == 0) {
		static unsigned char buf[CHUNK];
		struct sink_result r = { 0, FNV_BASIS };
		ssize_t n;

		close(s->fd);
		close(rp[0]);
		close(STDOUT_FILENO);	/* let $(probe ...) end with the parent */
		while ((n = read(afd, buf, sizeof(buf))) > 0) {
			r.bytes += n;
			if (hash)
				r.sum = fnv1a(r.sum, buf, n);
		}
		if (n < 0)
			r.bytes = -errno;
		_exit(write(rp[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(afd);
	close(rp[1]);
	s->res = rp[0];
	return NULL;
}

/* Close the sending side, collect the child's result; -1 if it has none. */
static int sink_close(struct sink *s, struct sink_result *r)
{
	ssize_t n = -1;

	if (s->fd >= 0)
		close(s->fd);
	if (s->res >= 0) {
		n = read(s->res, r, sizeof(*r));
		close(s->res);
	}
	if (s->pid > 0)
		waitpid(s->pid, NULL, 0);
	return n == sizeof(*r) ? 0 : -1;
}

/*
 * AF_ALG sha256 hash of FILE, fed by splice(FILE -> pipe) and
 * splice(pipe -> op socket) (splice-alg): the path "Copy Fail"
 * (CVE-2026-31431) takes to get file pages into the crypto API; or by
 * sendfile(op socket, FILE) (sendfile-alg), the same pages by the
 * kernel's internal pipe. Splice chunks go with SPLICE_F_MORE and an
 * empty send() finishes the hash; sendfile sends the whole file in one
 * call, whose last chunk finishes it. Steps:
 * socket, bind, accept, pipe, open, file-to-pipe, pipe-to-alg, sendfile,
 * finish, read.
 */
static int alg_hash(int argc, char **argv, int use_sendfile)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	unsigned char digest[32];
	const char *step = NULL;
	int tfm = -1, op = -1, ffd = -1, p[2] = { -1, -1 }, i;
	loff_t off = 0;
	ssize_t n, m;

	if (argc != 1)
		usage();
	strcpy((char *)sa.salg_type, "hash");
	strcpy((char *)sa.salg_name, "sha256");
	tfm = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (tfm < 0)
		return step_fail("socket");
	if (bind(tfm, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		step = "bind";
		goto out;
	}
	op = accept4(tfm, NULL, NULL, SOCK_CLOEXEC);
	if (op < 0) {
		step = "accept";
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		step = "pipe";
		goto out;
	}
	ffd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (ffd < 0) {
		step = "open";
		goto out;
	}
	for (;;) {
		if (use_sendfile) {
			/* One call for the whole file: sendfile marks all but
			 * its last internal chunk "more", and its last one
			 * finishes the hash. */
			struct stat st;
			if (fstat(ffd, &st) < 0) {
				step = "open";
				goto out;
			}
			n = sendfile(op, ffd, &off, (size_t)(st.st_size - off));
			if (n < 0) {
				step = "sendfile";
				goto out;
			}
			if (n == 0 || off >= st.st_size)
				break;
			continue;
		}
		n = splice(ffd, &off, p[1], NULL, CHUNK, 0);
		if (n < 0) {
			step = "file-to-pipe";
			goto out;
		}
		if (n == 0)
			break;
		while (n > 0) {
			m = splice(p[0], NULL, op, NULL, n, SPLICE_F_MORE);
			if (m <= 0) {
				if (m == 0)
					errno = EIO;
				step = "pipe-to-alg";
				goto out;
			}
			n -= m;
		}
	}
	if (!use_sendfile && send(op, "", 0, 0) < 0) {
		step = "finish";
		goto out;
	}
	if (read(op, digest, sizeof(digest)) != sizeof(digest)) {
		step = "read";
		goto out;
	}
	printf("ok sha256=");
	for (i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf(" bytes=%lld\n", (long long)off);
out:
	if (step)
		step_fail(step);
	if (ffd >= 0)
		close(ffd);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	if (op >= 0)
		close(op);
	close(tfm);
	return 0;
}

static int cmd_splice_alg(int argc, char **argv)
{
	return alg_hash(argc, argv, 0);
}

static int cmd_sendfile_alg(int argc, char **argv)
{
	return alg_hash(argc, argv, 1);
}

/*
 * FILE to a loopback TCP socket, with splice(FILE -> pipe) +
 * splice(pipe -> socket) (splice-tcp) or sendfile(socket, FILE)
 * (sendfile-tcp), looping over partial transfers. Prints
 * "ok bytes=N sum=HEX file_bytes=N file_sum=HEX": what the reading end
 * received, and FILE read directly. Steps: open, file-read, socket,
 * listen, connect, accept, pipe, fork, file-to-pipe, pipe-to-socket,
 * sendfile, sink.
 */
static int tcp_send(const char *path, int use_sendfile)
{
	struct sink s;
	struct sink_result r;
	const char *step = NULL;
	long long fbytes;
	uint64_t fsum;
	int ffd, p[2] = { -1, -1 };
	loff_t off = 0;
	ssize_t n, m;

	ffd = open(path, O_RDONLY | O_CLOEXEC);
	if (ffd < 0)
		return step_fail("open");
	if (file_fnv(path, &fbytes, &fsum) < 0) {
		close(ffd);
		return step_fail("file-read");
	}
	step = sink_open(&s, 1);
	if (step)
		goto out;
	if (!use_sendfile && pipe2(p, O_CLOEXEC) < 0) {
		step = "pipe";
		goto out;
	}
	for (;;) {
		if (use_sendfile) {
			n = sendfile(s.fd, ffd, &off, CHUNK);
			if (n < 0) {
				step = "sendfile";
				goto out;
			}
			if (n == 0)
				break;
			continue;
		}
		n = splice(ffd, &off, p[1], NULL, CHUNK, SPLICE_F_MOVE);
		if (n < 0) {
			step = "file-to-pipe";
			goto out;
		}
		if (n == 0)
			break;
		while (n > 0) {
			m = splice(p[0], NULL, s.fd, NULL, n, SPLICE_F_MOVE);
			if (m <= 0) {
				if (m == 0)
					errno = EIO;
				step = "pipe-to-socket";
				goto out;
			}
			n -= m;
		}
	}
out:
	if (step)
		step_fail(step);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	close(ffd);
	if (sink_close(&s, &r) < 0) {
		if (!step) {
			errno = EPIPE;
			step_fail("sink");
		}
	} else if (!step) {
		if (r.bytes < 0) {
			errno = -r.bytes;
			step_fail("sink");
		} else {
			printf("ok bytes=%lld sum=%016llx file_bytes=%lld file_sum=%016llx\n",
			       r.bytes, (unsigned long long)r.sum, fbytes,
			       (unsigned long long)fsum);
		}
	}
	return 0;
}

static int cmd_splice_tcp(int argc, char **argv)
{
	if (argc != 1)
		usage();
	return tcp_send(argv[0], 0);
}

static int cmd_sendfile_tcp(int argc, char **argv)
{
	if (argc != 1)
		usage();
	return tcp_send(argv[0], 1);
}

/*
 * splice(DEV -> pipe) of 4096 bytes (e.g. /dev/zero, /dev/urandom: a
 * character device as the source). Steps: open, pipe, splice.
 */
static int cmd_splice_dev(int argc, char **argv)
{
	int fd, p[2];
	long long total = 0;
	ssize_t n = 0;

	if (argc != 1)
		usage();
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return step_fail("open");
	if (pipe2(p, O_CLOEXEC) < 0) {
		step_fail("pipe");
		close(fd);
		return 0;
	}
	while (total < 4096) {
		n = splice(fd, NULL, p[1], NULL, 4096 - total, 0);
		if (n <= 0)
			break;
		total += n;
	}
	if (n < 0)
		step_fail("splice");
	else
		printf("ok bytes=%lld\n", total);
	close(p[0]);
	close(p[1]);
	close(fd);
	return 0;
}

/* Errors that mean "these endpoints do not splice": use read/write. */
static int splice_unsupported(int e)
{
	return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP;
}

/*
 * Copy SRC to DST (created or truncated, mode 0644) the way splice users
 * such as coreutils or nginx do: splice(SRC -> pipe) + splice(pipe -> DST)
 * and, when a splice fails with EINVAL, ENOSYS or EOPNOTSUPP, read(2) and
 * write(2) for the rest (bytes already in the pipe included). Prints
 * "ok bytes=N method=splice" or "ok bytes=N method=fallback
 * fallback_at=STEP:ERRNO spliced=N". Steps: open-src, open-dst, pipe,
 * file-to-pipe, pipe-to-file, read, write.
 */
static int cmd_copy_fallback(int argc, char **argv)
{
	static char buf[CHUNK];
	const char *step = NULL, *fb = NULL;
	int src, dst, p[2], fb_errno = 0;
	loff_t in_off = 0, out_off = 0;
	long long spliced = 0, total = 0;
	ssize_t n = 0, m;

	if (argc != 2)
		usage();
	if (open_src_dst(argv, &src, &dst) < 0)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		step_fail("pipe");
		close(src);
		close(dst);
		return 0;
	}
	/* n: bytes spliced into the pipe and not yet out of it. */
	while (!fb) {
		n = splice(src, &in_off, p[1], NULL, CHUNK, SPLICE_F_MOVE);
		if (n < 0) {
			n = 0;
			if (!splice_unsupported(errno)) {
				step = "file-to-pipe";
				goto out;
			}
			fb = "file-to-pipe";
			fb_errno = errno;
			break;
		}
		if (n == 0)
			goto done;
		while (n > 0) {
			m = splice(p[0], NULL, dst, &out_off, n, SPLICE_F_MOVE);
			if (m < 0) {
				if (!splice_unsupported(errno)) {
					step = "pipe-to-file";
					goto out;
				}
				fb = "pipe-to-file";
				fb_errno = errno;
				break;
			}
			n -= m;
			spliced += m;
		}
	}
	/* Fallback: what is left in the pipe, then the rest of SRC. */
	total = spliced;
	if (lseek(src, in_off, SEEK_SET) < 0 ||
	    (lseek(dst, out_off, SEEK_SET) < 0 && errno != ESPIPE)) {
		step = "lseek";
		goto out;
	}
	for (;;) {
		int from = n > 0 ? p[0] : src;
		ssize_t w, k;

		m = read(from, buf, n > 0 && n < CHUNK ? n : CHUNK);
		if (m < 0) {
			step = "read";
			goto out;
		}
		if (m == 0)
			break;
		if (from == p[0])
			n -= m;
		for (w = 0; w < m; w += k) {
			k = write(dst, buf + w, m - w);
			if (k < 0) {
				step = "write";
				goto out;
			}
			total += k;
		}
	}
done:
	if (fb)
		printf("ok bytes=%lld method=fallback fallback_at=%s:%s spliced=%lld\n",
		       total, fb, errno_name(fb_errno), spliced);
	else
		printf("ok bytes=%lld method=splice\n", spliced);
out:
	if (step)
		step_fail(step);
	close(p[0]);
	close(p[1]);
	close(src);
	close(dst);
	return 0;
}

/*
 * copy_file_range(SRC -> DST) (DST created or truncated), looping to EOF;
 * no fallback. Steps: open-src, open-dst, copy.
 */
static int cmd_copy_range(int argc, char **argv)
{
	long long total = 0;
	int src, dst;
	ssize_t n;

	if (argc != 2)
		usage();
	if (open_src_dst(argv, &src, &dst) < 0)
		return 0;
	while ((n = copy_file_range(src, NULL, dst, NULL, CHUNK, 0)) > 0)
		total += n;
	if (n < 0)
		step_fail("copy");
	else
		printf("ok bytes=%lld\n", total);
	close(src);
	close(dst);
	return 0;
}

/*
 * vmsplice(2) of a 4096-byte user buffer into a pipe; tee(2) and
 * splice(2) of 4096 bytes from one pipe to another. None of these reaches
 * an LSM hook. Steps: pipe, fill (write into the source pipe), vmsplice,
 * tee, splice.
 */
/*
 * The ia32 entry points (__ia32_sys_*), reached from this 64-bit process
 * by int 0x80 with i386 syscall numbers: tee (315) from pipe a to a new
 * pipe, or vmsplice (316) of a compat iovec into pipe a. Pointers must fit
 * in 32 bits: the iovec and its buffer are mapped below 4 GiB. Returns
 * the result or -1 with errno, like a libc call; "step=map" when the low
 * mapping fails.
 */
static long int80(long nr, long a1, long a2, long a3, long a4)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a1), "c"(a2), "d"(a3), "S"(a4)
			 : "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static long ia32_pipe_op(const char *what, int a[2])
{
	if (strcmp(what, "tee32") == 0) {
		int b[2];
		long n;
		if (pipe2(b, O_CLOEXEC) < 0)
			return -1;
		if (write(a[1], "k", 1) != 1) {
			close(b[0]);
			close(b[1]);
			return -1;
		}
		n = int80(315, a[0], b[1], 1, 0);
		close(b[0]);
		close(b[1]);
		return n;
	}
	uint32_t *low = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (low == MAP_FAILED)
		return -1;
	memset(low, 'k', 8192);
	low[0] = (uint32_t)(uintptr_t)((char *)low + 4096); /* iov_base */
	low[1] = 4096;                                       /* iov_len */
	long n = int80(316, a[1], (long)(uintptr_t)low, 1, 0);
	munmap(low, 8192);
	return n;
}

static int pipe_op(const char *what)
{
	static char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	int a[2], b[2] = { -1, -1 };
	ssize_t n;

	if (pipe2(a, O_CLOEXEC) < 0)
		return step_fail("pipe");
	memset(buf, 'k', sizeof(buf));
	if (strcmp(what, "vmsplice") == 0) {
		n = vmsplice(a[1], &iov, 1, 0);
	} else if (strcmp(what, "vmsplice-read") == 0) {
		if (write(a[1], buf, sizeof(buf)) != sizeof(buf)) {
			step_fail("fill");
			goto out;
		}
		n = vmsplice(a[0], &iov, 1, 0);
	} else if (strcmp(what, "vmsplice32") == 0 || strcmp(what, "tee32") == 0) {
		n = ia32_pipe_op(what, a);
	} else if (pipe2(b, O_CLOEXEC) < 0) {
		step_fail("pipe");
		goto out;
	} else if (write(a[1], buf, sizeof(buf)) != sizeof(buf)) {
		step_fail("fill");
		goto out;
	} else if (strcmp(what, "tee") == 0) {
		n = tee(a[0], b[1], sizeof(buf), 0);
	} else {
		n = splice(a[0], NULL, b[1], NULL, sizeof(buf), 0);
	}
	if (n < 0)
		step_fail(what);
	else
		printf("ok bytes=%zd\n", n);
out:
	close(a[0]);
	close(a[1]);
	if (b[0] >= 0) {
		close(b[0]);
		close(b[1]);
	}
	return 0;
}

/*
 * A minimal io_uring on raw syscalls (no liburing): one submission at a
 * time. The SQ and CQ rings are mapped separately, which every kernel
 * accepts (IORING_FEAT_SINGLE_MMAP only makes it optional).
 */
struct uring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

/* Set up a ring with 4 entries; NULL, or the failing step (errno set). */
static const char *uring_open(struct uring *u)
{
	struct io_uring_params par;
	char *sq, *cq;

	memset(&par, 0, sizeof(par));
	u->fd = syscall(__NR_io_uring_setup, 4, &par);
	if (u->fd < 0)
		return "setup";
	sq = mmap(NULL, par.sq_off.array + par.sq_entries * sizeof(unsigned),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
		  IORING_OFF_SQ_RING);
	cq = mmap(NULL, par.cq_off.cqes + par.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
		  IORING_OFF_CQ_RING);
	u->sqes = mmap(NULL, par.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
		       IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || u->sqes == MAP_FAILED)
		return "mmap";
	u->sq_tail = (unsigned *)(sq + par.sq_off.tail);
	u->sq_mask = (unsigned *)(sq + par.sq_off.ring_mask);
	u->sq_array = (unsigned *)(sq + par.sq_off.array);
	u->cq_head = (unsigned *)(cq + par.cq_off.head);
	u->cq_tail = (unsigned *)(cq + par.cq_off.tail);
	u->cq_mask = (unsigned *)(cq + par.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)(cq + par.cq_off.cqes);
	return NULL;
}

/* Submit SQE and wait for its completion: the CQE's res, or -1 + errno
 * when io_uring_enter itself failed. */
static int uring_run(struct uring *u, const struct io_uring_sqe *sqe, int *res)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask, head;

	u->sqes[idx] = *sqe;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, u->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -1;
	head = *u->cq_head;
	while (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE))
		if (syscall(__NR_io_uring_enter, u->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
			return -1;
	*res = u->cqes[head & *u->cq_mask].res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Read N bytes (what the op reported) back out of a pipe: bytes read. */
static long long drain(int fd, long long n)
{
	static char buf[CHUNK];
	long long got = 0;
	ssize_t m;

	while (got < n && (m = read(fd, buf, n - got < CHUNK ? n - got : CHUNK)) > 0)
		got += m;
	return got;
}

/*
 * IORING_OP_SPLICE of up to 64 KiB from FILE (offset 0) into a pipe, or
 * (uring-tee) IORING_OP_TEE of 5 bytes from one pipe to another. The
 * bytes are read back out of the destination pipe and counted. io_uring
 * runs splice in a kernel worker with the submitter's credentials.
 * Steps: setup (EPERM when kernel.io_uring_disabled forbids it), mmap,
 * open, pipe, fill, enter, then the op's name (errno from the CQE).
 */
static int uring_op(const char *file)
{
	struct io_uring_sqe sqe;
	struct uring u;
	const char *step;
	int a[2] = { -1, -1 }, b[2] = { -1, -1 }, ffd = -1, res = 0;
	long long got;

	step = uring_open(&u);
	if (step) {
		step_fail(step);
		if (u.fd >= 0)
			close(u.fd);
		return 0;
	}
	memset(&sqe, 0, sizeof(sqe));
	if (pipe2(a, O_CLOEXEC) < 0) {
		step = "pipe";
		goto out;
	}
	if (file) {
		ffd = open(file, O_RDONLY | O_CLOEXEC);
		if (ffd < 0) {
			step = "open";
			goto out;
		}
		sqe.opcode = IORING_OP_SPLICE;
		sqe.fd = a[1];
		sqe.off = (__u64)-1;	/* the pipe has no offset */
		sqe.splice_fd_in = ffd;
		sqe.splice_off_in = 0;
		sqe.len = CHUNK;
	} else {
		if (pipe2(b, O_CLOEXEC) < 0) {
			step = "pipe";
			goto out;
		}
		if (write(b[1], "kgate", 5) != 5) {
			step = "fill";
			goto out;
		}
		sqe.opcode = IORING_OP_TEE;
		sqe.fd = a[1];
		sqe.splice_fd_in = b[0];
		sqe.len = 5;
	}
	if (uring_run(&u, &sqe, &res) < 0) {
		step = "enter";
		goto out;
	}
	if (res < 0) {
		errno = -res;
		step = file ? "uring-splice" : "uring-tee";
		goto out;
	}
	got = drain(a[0], res);
	printf("ok bytes=%lld res=%d\n", got, res);
out:
	if (step)
		step_fail(step);
	if (ffd >= 0)
		close(ffd);
	if (a[0] >= 0) {
		close(a[0]);
		close(a[1]);
	}
	if (b[0] >= 0) {
		close(b[0]);
		close(b[1]);
	}
	close(u.fd);
	return 0;
}

static int cmd_uring_splice(int argc, char **argv)
{
	if (argc != 1)
		usage();
	return uring_op(argv[0]);
}

static int cmd_uring_tee(int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		usage();
	return uring_op(NULL);
}

/*
 * Timing of one hot syscall in a tight loop, for the lab's overhead
 * benchmarks (lab/bench/). Each op:
 *   socket        socket(AF_INET, SOCK_STREAM, 0) + close  (LSM socket_create)
 *   getpid        syscall(SYS_getpid)                       (no LSM hook)
 *   readzero      read(fd, buf, 1) of /dev/zero             (no socket/module hook)
 *   splice-tcp    64 KiB from a file to a loopback TCP socket with
 *                 splice(file -> pipe) + splice(pipe -> socket)
 *   sendfile-tcp  64 KiB sendfile(socket, file)
 *   pipe-rw       write SIZE bytes into a pipe and read them back
 *   file-read     pread SIZE bytes of a file
 *   file-write    pwrite SIZE bytes to a file
 *   setuid        setuid(getuid()): one capability check (CAP_SETUID) per op
 *                 (LSM capable), allowed for every user
 *   mmap          mmap + munmap of SIZE bytes of a file, PROT_READ (LSM mmap_file)
 *   mmap-exec     the same with PROT_READ | PROT_EXEC (mmap_file's longest
 *                 path for a file the user owns)
 * SIZE is 1..65536, default 4096.
 * The file ops use a 64 KiB file created (and unlinked at once) in
 * $TMPDIR, default /tmp (tmpfs in the lab guest). For the TCP ops a child
 * process drains the far end of the connection; sockets, pipe and file are
 * set up once, outside the timed loops (splice/sendfile/file_permission
 * hooks fire per op, socket creation does not).
 * A warm-up of ITERATIONS/4 ops, then ROUNDS (default 5) rounds of
 * ITERATIONS ops, each timed with clock_gettime(CLOCK_MONOTONIC). Prints
 * the median, min and max round in ns per op. Any failing op is an error
 * (exit 1): a benchmark of a denied call measures nothing.
 */
enum { B_SOCKET, B_GETPID, B_READZERO, B_SPLICE_TCP, B_SENDFILE_TCP, B_PIPE_RW,
       B_FILE_READ, B_FILE_WRITE, B_SETUID, B_MMAP, B_MMAP_EXEC, B_COUNT };

struct bench {
	int op;
	int fd;		/* /dev/zero or the file */
	int p[2];	/* pipe */
	struct sink sink;
	size_t size;	/* pipe-rw, file-read, file-write */
	char buf[CHUNK];
};

/* Move 64 KiB of the file to the socket with splice or sendfile. */
static int bench_tcp(struct bench *b, int use_sendfile)
{
	loff_t off = 0;
	ssize_t n, m;

	while (off < CHUNK) {
		if (use_sendfile) {
			n = sendfile(b->sink.fd, b->fd, &off, CHUNK - off);
			if (n <= 0)
				return -1;
			continue;
		}
		n = splice(b->fd, &off, b->p[1], NULL, CHUNK - off, SPLICE_F_MOVE);
		if (n <= 0)
			return -1;
		while (n > 0) {
			m = splice(b->p[0], NULL, b->sink.fd, NULL, n, SPLICE_F_MOVE);
			if (m <= 0)
				return -1;
			n -= m;
		}
	}
	return 0;
}

static int bench_op(struct bench *b)
{
	char c;
	int fd;

	switch (b->op) {
	case B_SOCKET:
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		return close(fd);
	case B_GETPID:
		return syscall(SYS_getpid) > 0 ? 0 : -1;
	case B_READZERO:
		return read(b->fd, &c, 1) == 1 ? 0 : -1;
	case B_SPLICE_TCP:
		return bench_tcp(b, 0);
	case B_SENDFILE_TCP:
		return bench_tcp(b, 1);
	case B_PIPE_RW:
		return write(b->p[1], b->buf, b->size) == (ssize_t)b->size &&
		       read(b->p[0], b->buf, b->size) == (ssize_t)b->size ? 0 : -1;
	case B_FILE_READ:
		return pread(b->fd, b->buf, b->size, 0) == (ssize_t)b->size ? 0 : -1;
	case B_SETUID:
		return setuid(getuid());
	case B_MMAP:
	case B_MMAP_EXEC: {
		void *m = mmap(NULL, b->size, PROT_READ | (b->op == B_MMAP_EXEC ? PROT_EXEC : 0),
			       MAP_PRIVATE, b->fd, 0);
		if (m == MAP_FAILED)
			return -1;
		return munmap(m, b->size);
	}
	case B_FILE_WRITE:
		return pwrite(b->fd, b->buf, b->size, 0) == (ssize_t)b->size ? 0 : -1;
	}
	return -1;
}

/* What an op needs, set up once; 0, or -1 after printing why. */
static int bench_setup(struct bench *b)
{
	static char chunk[CHUNK];
	const char *dir = getenv("TMPDIR"), *step;
	char path[4096];

	b->fd = b->p[0] = b->p[1] = b->sink.fd = -1;
	memset(b->buf, 'k', sizeof(b->buf));
	switch (b->op) {
	case B_READZERO:
		b->fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (b->fd < 0) {
			perror("probe: /dev/zero");
			return -1;
		}
		return 0;
	case B_SPLICE_TCP:
	case B_SENDFILE_TCP:
	case B_FILE_READ:
	case B_FILE_WRITE:
	case B_MMAP:
	case B_MMAP_EXEC:
		snprintf(path, sizeof(path), "%s/probe-bench-XXXXXX", dir && *dir ? dir : "/tmp");
		b->fd = mkostemp(path, O_CLOEXEC);
		if (b->fd < 0) {
			fprintf(stderr, "probe: %s: %s\n", path, strerror(errno));
			return -1;
		}
		unlink(path);
		memset(chunk, 'k', sizeof(chunk));
		if (write(b->fd, chunk, sizeof(chunk)) != sizeof(chunk)) {
			perror("probe: bench file");
			return -1;
		}
		break;
	default:
		break;
	}
	if (b->op == B_SPLICE_TCP || b->op == B_PIPE_RW) {
		if (pipe2(b->p, O_CLOEXEC) < 0) {
			perror("probe: pipe");
			return -1;
		}
	}
	if (b->op == B_SPLICE_TCP || b->op == B_SENDFILE_TCP) {
		step = sink_open(&b->sink, 0);
		if (step) {
			fprintf(stderr, "probe: loopback tcp: %s: %s\n", step, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmd_bench(int argc, char **argv)
{
	static const char *const ops[B_COUNT] = {
		"socket", "getpid", "readzero", "splice-tcp", "sendfile-tcp",
		"pipe-rw", "file-read", "file-write", "setuid", "mmap", "mmap-exec",
	};
	static struct bench bench;
	struct bench *b = &bench;
	double ns[64];
	long iters, rounds = 5, i, r;
	struct timespec t0, t1;

	if (argc < 2 || argc > 4)
		usage();
	b->op = -1;
	b->size = 4096;
	if (argc == 4)
		b->size = num(argv[3]);
	if (b->size < 1 || b->size > CHUNK)
		usage();
	for (i = 0; i < B_COUNT; i++)
		if (strcmp(argv[0], ops[i]) == 0)
			b->op = i;
	if (b->op < 0)
		usage();
	iters = num(argv[1]);
	if (argc >= 3)
		rounds = num(argv[2]);
	if (iters < 1 || rounds < 1 || rounds > 64)
		usage();
	if (bench_setup(b) < 0)
		return 1;
	for (i = 0; i < iters / 4 + 1; i++)
		if (bench_op(b) < 0)
			goto fail;
	for (r = 0; r < rounds; r++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < iters; i++)
			if (bench_op(b) < 0)
				goto fail;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns[r] = ((t1.tv_sec - t0.tv_sec) * 1e9 +
			 (t1.tv_nsec - t0.tv_nsec)) / iters;
	}
	qsort(ns, rounds, sizeof(ns[0]), cmp_double);
	printf("ns_per_op=%.1f min=%.1f max=%.1f rounds=%ld iters=%ld\n",
	       rounds % 2 ? ns[rounds / 2] : (ns[rounds / 2 - 1] + ns[rounds / 2]) / 2,
	       ns[0], ns[rounds - 1], rounds, iters);
	if (b->sink.fd >= 0) {
		struct sink_result res;

		sink_close(&b->sink, &res);
	}
	return 0;
fail:
	printf("errno=%s\n", errno_name(errno));
	return 1;
}

/*
 * N socket() calls as fast as possible, for the event-loss scenario:
 * prints how many succeeded and failed, and the last error.
 */
static int cmd_flood(int argc, char **argv)
{
	long n, i, ok = 0, failed = 0;
	int family, type, proto, last = 0, fd;

	if (argc != 4)
		usage();
	n = num(argv[0]);
	family = num(argv[1]);
	type = num(argv[2]);
	proto = num(argv[3]);
	for (i = 0; i < n; i++) {
		fd = socket(family, type, proto);
		if (fd < 0) {
			failed++;
			last = errno;
		} else {
			ok++;
			close(fd);
		}
	}
	printf("ok=%ld failed=%ld last=%s\n", ok, failed, last ? errno_name(last) : "none");
	return 0;
}

/*
 * The floor of any BPF-LSM program on a hook, for the benchmarks: an empty
 * program (r0 = 0; exit) of type LSM attached to bpf_lsm_HOOK, the way
 * libbpf attaches "lsm/HOOK", with its link pinned at PIN (a bpffs path)
 * so that it outlives the probe; `rm PIN` detaches it. What kgate's own
 * program costs beyond this is kgate's; the rest is the kernel's BPF
 * trampoline. Steps: btf (reading /sys/kernel/btf/vmlinux), lookup (no
 * such hook), load, attach, pin.
 */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* The BTF type id of the function NAME in the kernel's BTF, 0 when there
 * is none, -1 when the BTF cannot be read. */
static int vmlinux_func_id(const char *name)
{
	FILE *f = fopen("/sys/kernel/btf/vmlinux", "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int id = -1;

	if (!f)
		return -1;
	for (;;) {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + (1 << 20));
			if (!nb)
				goto out;
			buf = nb;
			cap += 1 << 20;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	const struct btf_header *h = (const void *)buf;
	if (len < sizeof(*h) || h->magic != BTF_MAGIC ||
	    (size_t)h->hdr_len + h->str_off + h->str_len > len ||
	    (size_t)h->hdr_len + h->type_off + h->type_len > len) {
		errno = EINVAL;
		goto out;
	}
	const char *types = buf + h->hdr_len + h->type_off;
	const char *strs = buf + h->hdr_len + h->str_off;
	size_t off = 0;
	id = 0;
	for (int i = 1; off + sizeof(struct btf_type) <= h->type_len; i++) {
		const struct btf_type *t = (const void *)(types + off);
		unsigned int kind = BTF_INFO_KIND(t->info), vlen = BTF_INFO_VLEN(t->info);
		if (kind == BTF_KIND_FUNC && t->name_off < h->str_len &&
		    strcmp(strs + t->name_off, name) == 0) {
			id = i;
			break;
		}
		off += sizeof(*t);
		switch (kind) {
		case BTF_KIND_INT: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG:
			off += 4;
			break;
		case BTF_KIND_ARRAY:
			off += sizeof(struct btf_array);
			break;
		case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_DATASEC:
		case BTF_KIND_ENUM64:
			off += 12 * (size_t)vlen;
			break;
		case BTF_KIND_ENUM: case BTF_KIND_FUNC_PROTO:
			off += 8 * (size_t)vlen;
			break;
		default:
			break;
		}
	}
out:
	free(buf);
	fclose(f);
	return id;
}

static int cmd_lsm_floor(int argc, char **argv)
{
	static const struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char func[128], log[4096] = "";
	union bpf_attr a;
	int id, fd, link;

	if (argc != 2)
		usage();
	snprintf(func, sizeof(func), "bpf_lsm_%s", argv[0]);
	id = vmlinux_func_id(func);
	if (id < 0)
		return step_fail("btf");
	if (id == 0) {
		printf("step=lookup errno=ENOENT\n");
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_LSM;
	a.expected_attach_type = BPF_LSM_MAC;
	a.insns = (uintptr_t)prog;
	a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	a.license = (uintptr_t) "GPL";
	a.attach_btf_id = (unsigned int)id;
	a.log_buf = (uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0) {
		step_fail("load");
		if (log[0])
			fprintf(stderr, "probe: verifier log: %s\n", log);
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.raw_tracepoint.prog_fd = (unsigned int)fd;
	link = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
	if (link < 0)
		return step_fail("attach");
	memset(&a, 0, sizeof(a));
	a.pathname = (uintptr_t)argv[1];
	a.bpf_fd = (unsigned int)link;
	if (sys_bpf(BPF_OBJ_PIN, &a) < 0)
		return step_fail("pin");
	printf("ok btf_id=%d\n", id);
	return 0;
}

/*
 * Root in a default container, only harder: stay uid 0, drop every
 * capability from the bounding set (so exec gains none back), clear the
 * ambient, inheritable, permitted and effective sets, set no_new_privs,
 * then exec CMD.
 */
static int cmd_drop_caps(int argc, char **argv)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	struct { uint32_t eff, perm, inh; } data[2];

	if (argc < 2 || strcmp(argv[0], "--") != 0)
		usage();
	for (int c = 0; c < 64; c++)
		prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0) {
		perror("probe: capset");
		return 1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("probe: no_new_privs");
		return 1;
	}
	execvp(argv[1], &argv[1]);
	fprintf(stderr, "probe: exec %s: %s\n", argv[1], strerror(errno));
	return 127;
}

/* sendfile(pipe, FILE): file -> pipe with no write-side check. */
static int cmd_sendfile_pipe(int argc, char **argv)
{
	int p[2], fd;
	ssize_t n;

	if (argc != 1)
		usage();
	fd = open(argv[0], O_RDONLY);
	if (fd < 0 || pipe(p) < 0)
		return report(-1, "setup-");
	n = sendfile(p[1], fd, NULL, 4096);
	if (n < 0)
		return report(-1, "");
	printf("ok bytes=%zd\n", n);
	return 0;
}

static volatile int race_stop, race_started;
static int race_fd, race_pipe, race_sock;

static void *race_swap(void *arg)
{
	(void)arg;
	race_started = 1;
	while (!race_stop) {
		dup2(race_pipe, race_fd);
		for (volatile int i = 0; i < 2000; i++)
			;
		dup2(race_sock, race_fd);
		for (volatile int i = 0; i < 2000; i++)
			;
	}
	return NULL;
}

/*
 * sendfile(out, FILE) N times while another thread (sharing the fd table)
 * flips `out` between a unix socket and a pipe: the pipe case is the one
 * the kernel checks nothing for after the source. Prints how many bytes
 * reached the pipe. With "first", stops at the first bytes that reached it
 * (showing the race can be won). Each try yields the CPU, so the swapping
 * thread runs between tries even when both threads share one vCPU.
 */
static int cmd_sendfile_race(int argc, char **argv)
{
	int p[2], sv[2], fd, n;
	long pipe_bytes = 0, ok = 0, fails = 0;
	pthread_t th;
	char buf[65536];
	int last_errno = 0;

	int first = 0;

	if (argc == 3 && strcmp(argv[2], "first") == 0)
		first = 1;
	else if (argc != 2)
		usage();
	n = num(argv[1]);
	fd = open(argv[0], O_RDONLY);
	if (fd < 0 || pipe2(p, O_NONBLOCK) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return report(-1, "setup-");
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	race_pipe = p[1];
	race_sock = sv[0];
	race_fd = dup(sv[0]);
	if (pthread_create(&th, NULL, race_swap, NULL) != 0)
		return report(-1, "thread-");
	while (!race_started)
		usleep(1000);
	for (int i = 0; i < n && !(first && pipe_bytes > 0); i++) {
		off_t off = 0;
		ssize_t r;

		sched_yield();
		r = sendfile(race_fd, fd, &off, 512);
		if (r >= 0)
			ok++;
		else {
			fails++;
			last_errno = errno;
		}
		ssize_t m;
		while ((m = read(p[0], buf, sizeof(buf))) > 0)
			pipe_bytes += m;
		while (read(sv[1], buf, sizeof(buf)) > 0)
			;
	}
	race_stop = 1;
	pthread_join(th, NULL);
	printf("pipe_bytes=%ld ok=%ld failed=%ld errno=%s\n", pipe_bytes, ok, fails,
	       last_errno ? errno_name(last_errno) : "none");
	return 0;
}

/* splice(FILE -> pipe) through the x32 syscall table (nr | 0x40000000). */
static int cmd_x32_splice(int argc, char **argv)
{
	int p[2], fd;
	long n;

	if (argc != 1)
		usage();
	fd = open(argv[0], O_RDONLY);
	if (fd < 0 || pipe(p) < 0)
		return report(-1, "setup-");
	n = syscall(0x40000000 | 275, fd, NULL, p[1], NULL, 4096L, 0);
	if (n < 0)
		return report(-1, "");
	printf("ok bytes=%ld\n", n);
	return 0;
}

/*
 * A process that lives in a user namespace made before kgate applied:
 * unshare(CLONE_NEWUSER), print "ready PID", wait until GOFILE exists, then
 * unshare(CLONE_NEWNET) and write the result to OUTFILE.
 */
static int cmd_userns_hold(int argc, char **argv)
{
	FILE *out;
	int rc;

	if (argc != 2)
		usage();
	if (unshare(CLONE_NEWUSER) < 0)
		return report(-1, "unshare-user-");
	printf("ready %d\n", getpid());
	fflush(stdout);
	for (int i = 0; i < 6000 && access(argv[0], F_OK) != 0; i++)
		usleep(100000);
	rc = unshare(CLONE_NEWNET);
	out = fopen(argv[1], "w");
	if (!out)
		return 1;
	if (rc < 0)
		fprintf(out, "errno=%s\n", errno_name(errno));
	else
		fprintf(out, "ok\n");
	fclose(out);
	return 0;
}

/* setns() into PID's user namespace, then unshare(CLONE_NEWNET). */
static int cmd_setns_user(int argc, char **argv)
{
	char path[64];
	int fd;

	if (argc != 1)
		usage();
	snprintf(path, sizeof(path), "/proc/%ld/ns/user", num(argv[0]));
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return report(-1, "open-");
	if (setns(fd, CLONE_NEWUSER) < 0)
		return report(-1, "");
	if (unshare(CLONE_NEWNET) < 0)
		return report(-1, "netns-");
	printf("ok netns\n");
	return 0;
}

/* ptrace(PTRACE_ATTACH, PID), detaching again when it worked. */
static int cmd_ptrace_attach(int argc, char **argv)
{
	long pid;

	if (argc != 1)
		usage();
	pid = num(argv[0]);
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) < 0)
		return report(-1, "");
	waitpid(pid, NULL, 0);
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	printf("ok\n");
	return 0;
}

/* mmap(FILE, PROT_READ|PROT_EXEC): what ld.so does for LD_PRELOAD. */
static int cmd_mmap_exec(int argc, char **argv)
{
	int fd;
	void *m;

	if (argc != 1)
		usage();
	fd = open(argv[0], O_RDONLY);
	if (fd < 0)
		return report(-1, "open-");
	m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return report(-1, "");
	printf("ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "socket", cmd_socket },
		{ "socketpair", cmd_socketpair },
		{ "as-user", cmd_as_user },
		{ "alg-bind", cmd_alg_bind },
		{ "unshare-user", cmd_unshare_user },
		{ "uring-setup", cmd_uring_setup },
		{ "unshare-user-net-netlink", cmd_unshare_user_net_netlink },
		{ "sockdiag", cmd_sockdiag },
		{ "tiocsetd", cmd_tiocsetd },
		{ "splice-alg", cmd_splice_alg },
		{ "sendfile-alg", cmd_sendfile_alg },
		{ "splice-tcp", cmd_splice_tcp },
		{ "sendfile-tcp", cmd_sendfile_tcp },
		{ "splice-dev", cmd_splice_dev },
		{ "copy-fallback", cmd_copy_fallback },
		{ "copy-range", cmd_copy_range },
		{ "uring-splice", cmd_uring_splice },
		{ "uring-tee", cmd_uring_tee },
		{ "errno-name", cmd_errno_name },
		{ "drop-caps", cmd_drop_caps },
		{ "sendfile-pipe", cmd_sendfile_pipe },
		{ "sendfile-race", cmd_sendfile_race },
		{ "x32-splice", cmd_x32_splice },
		{ "userns-hold", cmd_userns_hold },
		{ "setns-user", cmd_setns_user },
		{ "ptrace-attach", cmd_ptrace_attach },
		{ "mmap-exec", cmd_mmap_exec },
		{ "bench", cmd_bench },
		{ "flood", cmd_flood },
		{ "lsm-floor", cmd_lsm_floor },
	};
	/* One pipe operation each, no arguments (pipe_op). */
	static const struct {
		const char *name;
		const char *op;
	} pipe_cmds[] = {
		{ "vmsplice", "vmsplice" }, { "vmsplice-read", "vmsplice-read" },
		{ "vmsplice32", "vmsplice32" }, { "tee", "tee" },
		{ "tee32", "tee32" }, { "splice-pipe", "splice" },
	};
	size_t i;

	if (argc < 2)
		usage();
	/* Scenario output goes to a console shared with other writers. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 2, argv + 2);
	for (i = 0; i < sizeof(pipe_cmds) / sizeof(pipe_cmds[0]); i++) {
		if (strcmp(argv[1], pipe_cmds[i].name) == 0) {
			if (argc != 2)
				usage();
			return pipe_op(pipe_cmds[i].op);
		}
	}
	fprintf(stderr, "probe: unknown command %s\n", argv[1]);
	usage();
	return 2;
}
