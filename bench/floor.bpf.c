// SPDX-License-Identifier: GPL-2.0
/* The floor of any raw_syscalls recorder: an empty sys_enter program. */
__attribute__((section("license"), used)) char LICENSE[] = "GPL";
__attribute__((section("raw_tp/sys_enter"), used)) int floor_sys_enter(void *ctx) { return 0; }
