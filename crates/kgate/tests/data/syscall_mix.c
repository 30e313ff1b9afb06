/*
 * A workload with a known syscall set for `kgate record`'s tests. Each
 * rare syscall is made from one specific place: the main thread, worker
 * threads, a forked child, a thread of that child, a grandchild, and an
 * exec'd program. Results do not matter (several calls fail); that the
 * kernel was entered does. NCALLS getppid calls from each of NTHREADS
 * threads check that nothing is lost under concurrency. A child makes
 * NIA32 ia32 getpid calls (number 20, which is writev on x86_64) through
 * int 0x80, the compat entry a 64-bit process can use too.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4
#define NCALLS 20000
#define NIA32 7

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < NCALLS; i++)
		syscall(SYS_getppid);
	unsigned cpu, node;
	syscall(SYS_getcpu, &cpu, &node, NULL);
	return NULL;
}

static void *child_thread(void *arg)
{
	(void)arg;
	syscall(SYS_syslog, 10, NULL, 0); /* SYSLOG_ACTION_SIZE_BUFFER */
	return NULL;
}

int main(void)
{
	/* Main thread. */
	syscall(SYS_sched_get_priority_max, 0);
	syscall(SYS_tee, -1, -1, 1, 0);
	syscall(SYS_vmsplice, -1, NULL, 0, 0);
	int s;
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0)
		close(s);
	if ((s = socket(AF_NETLINK, SOCK_RAW, 0)) >= 0)
		close(s);
	if ((s = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0)) >= 0)
		close(s);

	/* Threads. */
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);

	/* A child, its thread, a grandchild, an exec. */
	pid_t c = fork();
	if (c == 0) {
		syscall(SYS_personality, 0xffffffffUL);
		pthread_t ct;
		pthread_create(&ct, NULL, child_thread, NULL);
		pthread_join(ct, NULL);
		pid_t g = fork();
		if (g == 0) {
			syscall(SYS_getpgid, 0);
			syscall(SYS_times, NULL);
			_exit(0);
		}
		waitpid(g, NULL, 0);
		execl("/bin/true", "true", (char *)NULL);
		_exit(1);
	}
	waitpid(c, NULL, 0);

	/* ia32 syscalls, from a child (a kernel without IA32_EMULATION
	 * kills it, not the workload). */
	c = fork();
	if (c == 0) {
		for (int i = 0; i < NIA32; i++) {
			long ret = 20; /* __NR_getpid in the ia32 table */
			__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
		}
		/* ia32 socket(AF_INET6, SOCK_DGRAM, 0) (359), and
		 * socketcall(SYS_SOCKET, {AF_INET, SOCK_STREAM, 0}) (102),
		 * whose arguments must sit below 4 GiB. */
		long ret = 359;
		__asm__ volatile("int $0x80" : "+a"(ret) : "b"(10L), "c"(2L), "d"(0L) : "memory");
		if (ret >= 0)
			close((int)ret);
		unsigned int *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		if (low != MAP_FAILED) {
			low[0] = 2;
			low[1] = 1;
			low[2] = 0;
			ret = 102;
			__asm__ volatile("int $0x80"
					 : "+a"(ret)
					 : "b"(1L), "c"((long)(unsigned long)low)
					 : "memory");
			if (ret >= 0)
				close((int)ret);
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	return 0;
}
