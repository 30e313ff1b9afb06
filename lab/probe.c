/*
 * probe: the kernel lab's guest-side helper.
 *
 * Small subcommands that lab scenarios need to poke the kernel the way an
 * unprivileged user would. Every subcommand prints one machine-readable line
 * on stdout and exits 0 when the probe itself ran (whatever the kernel said);
 * a non-zero exit means the probe was misused or could not run at all.
 *
 *   probe socket FAMILY TYPE PROTO        -> ok | errno=NAME
 *   probe as-user UID GID -- CMD ARGS...  (drop to UID/GID, no groups, exec)
 *   probe alg-bind TYPE NAME              -> ok | socket-errno=NAME | errno=NAME
 *   probe unshare-user                    -> ok | errno=NAME
 *   probe unshare-user-net-netlink PROTO  -> ok | unshare-errno=NAME | errno=NAME
 *   probe sockdiag FAMILY [PROTO]         -> ok | socket-errno=NAME | errno=NAME
 *   probe tiocsetd LDISC                  -> ok | open-errno=NAME | errno=NAME
 *   probe errno-name N                    -> NAME (for scripts)
 *   probe bench socket|getpid|readzero ITERATIONS [ROUNDS]
 *                                         -> ns_per_op=MEDIAN min=.. max=.. rounds=.. iters=..
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
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/if_alg.h>
#include <linux/inet_diag.h>
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
	E(ENOPKG);
	default:
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
#undef E
}

static void usage(void)
{
	fputs("usage: probe socket FAMILY TYPE PROTO\n"
	      "       probe as-user UID GID -- CMD [ARGS...]\n"
	      "       probe alg-bind TYPE NAME\n"
	      "       probe unshare-user\n"
	      "       probe unshare-user-net-netlink PROTO\n"
	      "       probe sockdiag FAMILY [PROTO]\n"
	      "       probe tiocsetd LDISC\n"
	      "       probe errno-name N\n"
	      "       probe bench socket|getpid|readzero ITERATIONS [ROUNDS]\n"
	      "       probe flood N FAMILY TYPE PROTO\n",
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
 * Timing of one hot syscall in a tight loop, for the lab's overhead
 * benchmarks (lab/bench/). Each op:
 *   socket    socket(AF_INET, SOCK_STREAM, 0) + close  (LSM socket_create)
 *   getpid    syscall(SYS_getpid)                       (no LSM hook)
 *   readzero  read(fd, buf, 1) of /dev/zero             (no socket/module hook)
 * A warm-up of ITERATIONS/4 ops, then ROUNDS (default 5) rounds of
 * ITERATIONS ops, each timed with clock_gettime(CLOCK_MONOTONIC). Prints
 * the median, min and max round in ns per op. Any failing op is an error
 * (exit 1): a benchmark of a denied call measures nothing.
 */
static int bench_op(int op, int zfd)
{
	char c;
	int fd;

	switch (op) {
	case 0:
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		return close(fd);
	case 1:
		return syscall(SYS_getpid) > 0 ? 0 : -1;
	default:
		return read(zfd, &c, 1) == 1 ? 0 : -1;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmd_bench(int argc, char **argv)
{
	static const char *const ops[] = { "socket", "getpid", "readzero" };
	double ns[64];
	long iters, rounds = 5, i, r;
	int op = -1, zfd = -1;
	struct timespec t0, t1;

	if (argc != 2 && argc != 3)
		usage();
	for (i = 0; i < 3; i++)
		if (strcmp(argv[0], ops[i]) == 0)
			op = i;
	if (op < 0)
		usage();
	iters = num(argv[1]);
	if (argc == 3)
		rounds = num(argv[2]);
	if (iters < 1 || rounds < 1 || rounds > 64)
		usage();
	if (op == 2) {
		zfd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (zfd < 0) {
			perror("probe: /dev/zero");
			return 1;
		}
	}
	for (i = 0; i < iters / 4 + 1; i++)
		if (bench_op(op, zfd) < 0)
			goto fail;
	for (r = 0; r < rounds; r++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < iters; i++)
			if (bench_op(op, zfd) < 0)
				goto fail;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns[r] = ((t1.tv_sec - t0.tv_sec) * 1e9 +
			 (t1.tv_nsec - t0.tv_nsec)) / iters;
	}
	qsort(ns, rounds, sizeof(ns[0]), cmp_double);
	printf("ns_per_op=%.1f min=%.1f max=%.1f rounds=%ld iters=%ld\n",
	       rounds % 2 ? ns[rounds / 2] : (ns[rounds / 2 - 1] + ns[rounds / 2]) / 2,
	       ns[0], ns[rounds - 1], rounds, iters);
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

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "socket", cmd_socket },
		{ "as-user", cmd_as_user },
		{ "alg-bind", cmd_alg_bind },
		{ "unshare-user", cmd_unshare_user },
		{ "unshare-user-net-netlink", cmd_unshare_user_net_netlink },
		{ "sockdiag", cmd_sockdiag },
		{ "tiocsetd", cmd_tiocsetd },
		{ "errno-name", cmd_errno_name },
		{ "bench", cmd_bench },
		{ "flood", cmd_flood },
	};
	size_t i;

	if (argc < 2)
		usage();
	/* Scenario output goes to a console shared with other writers. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 2, argv + 2);
	fprintf(stderr, "probe: unknown command %s\n", argv[1]);
	usage();
	return 2;
}
