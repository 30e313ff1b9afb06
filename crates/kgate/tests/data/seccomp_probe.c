/*
 * For `kgate run`'s tests. Mode "base" makes only the calls a recording
 * should allow (and, with "splice", a pipe-to-pipe splice); mode "full"
 * then tries calls outside the recording. Modes "pair" and "pair-full"
 * do the same with socketpair(2) and no socket(2). Each attempt prints
 * "NAME RET ERRNO" on standard output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void report(const char *name, long ret)
{
	printf("%s %ld %d\n", name, ret, ret < 0 ? errno : 0);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "base";
	if (strncmp(mode, "pair", 4) == 0) {
		/* "pair": only socketpair(AF_UNIX); "pair-full": then families
		 * the recording did not use (inet has no pairs: EOPNOTSUPP
		 * unless a filter answers first; vsock may be absent). */
		int sv[2];
		long r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		report("socketpair_unix", r);
		if (r == 0) {
			close(sv[0]);
			close(sv[1]);
		}
		if (strcmp(mode, "pair-full") == 0) {
			report("socketpair_inet", socketpair(AF_INET, SOCK_STREAM, 0, sv));
			report("socketpair_vsock", socketpair(40, SOCK_STREAM, 0, sv));
		}
		return 0;
	}
	long s = socket(AF_UNIX, SOCK_STREAM, 0);
	report("socket_unix", s);
	if (s >= 0)
		close((int)s);
	if (strcmp(mode, "splice") == 0) {
		int a[2], b[2];
		pipe(a);
		pipe(b);
		write(a[1], "x", 1);
		report("splice", splice(a[0], NULL, b[1], NULL, 1, 0));
	}
	if (strcmp(mode, "full") == 0) {
		report("getppid", syscall(SYS_getppid));
		s = socket(AF_INET, SOCK_STREAM, 0);
		report("socket_inet", s);
		struct iovec iov = {"x", 1};
		report("vmsplice", syscall(SYS_vmsplice, 1, &iov, 1, 0));
		report("splice", syscall(SYS_splice, 0, NULL, 1, NULL, 1, 0));
	}
	return 0;
}
