# Helpers for kernel lab scenarios (sourced before each scenario script).
#
# Scenarios run as root in the guest; use as_nobody to act as an
# unprivileged user. Report with `result NAME PASS|FAIL|SKIP "detail"`.
# KGATE_LAB_KERNEL is cloud-6.12, generic-6.12 or cloud-6.1.

# Debian's busybox-static runs its own applets before searching PATH
# (FEATURE_SH_STANDALONE), so `modprobe` alone would be busybox's, which
# ignores modprobe.d `install` lines. Scenarios must exercise kmod, the
# modprobe the kernel itself runs.
modprobe() { /sbin/modprobe "$@"; }
rmmod() { /sbin/rmmod "$@"; }
insmod() { /sbin/insmod "$@"; }
lsmod() { /sbin/lsmod "$@"; }
modinfo() { /sbin/modinfo "$@"; }
depmod() { /sbin/depmod "$@"; }

NOBODY_UID=65534
NOBODY_GID=65534

# result NAME OUTCOME DETAIL...: one result line on the console. The detail
# is flattened to one line.
result() {
	_name=$1
	_outcome=$2
	shift 2
	_detail=$(printf '%s' "$*" | tr '\n\r\t' '   ')
	echo "KGATE-LAB-RESULT $_name $_outcome $_detail"
}

# loaded MODULE: is MODULE (underscore spelling) in /proc/modules?
loaded() {
	grep -q "^$1 " /proc/modules
}

# builtin MODULE: is MODULE built into the kernel?
builtin() {
	grep -q "/$1\.ko\$" "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null ||
		grep -q "/$(echo "$1" | tr _ -)\.ko\$" "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null
}

# available MODULE: does this kernel ship MODULE as a loadable module?
available() {
	modinfo -F filename "$1" >/dev/null 2>&1
}

# as_user UID GID CMD...: run CMD with those ids and no supplementary groups.
as_user() {
	_uid=$1
	_gid=$2
	shift 2
	probe as-user "$_uid" "$_gid" -- "$@"
}

# as_nobody CMD...: run CMD as nobody:nogroup.
as_nobody() {
	as_user "$NOBODY_UID" "$NOBODY_GID" "$@"
}

# expect_autoload NAME "MOD1 MOD2..." CMD...: run CMD as nobody and check
# that it makes the kernel load every listed module. SKIP when the kernel
# does not ship one of them, FAIL when one is loaded already (the scenario
# would prove nothing) or is still missing afterwards.
expect_autoload() {
	_name=$1
	_mods=$2
	shift 2
	for _m in $_mods; do
		if ! available "$_m"; then
			if builtin "$_m"; then
				result "$_name" SKIP "$_m is built into $KGATE_LAB_KERNEL"
			else
				result "$_name" SKIP "$KGATE_LAB_KERNEL does not ship $_m"
			fi
			return 0
		fi
		if loaded "$_m"; then
			result "$_name" FAIL "$_m was loaded before the trigger ran"
			return 0
		fi
	done
	# A sentinel line: busybox grep -v -f with an empty pattern file prints nothing.
	{ echo -; cut -d' ' -f1 /proc/modules; } >/tmp/.modules.before
	_out=$(as_nobody "$@" 2>&1)
	_new=$(cut -d' ' -f1 /proc/modules | grep -vxF -f /tmp/.modules.before | tr '\n' ' ')
	_missing=
	for _m in $_mods; do
		loaded "$_m" || _missing="$_missing $_m"
	done
	if [ -z "$_missing" ]; then
		result "$_name" PASS "as nobody: $* -> $_out; newly loaded: $_new"
	else
		result "$_name" FAIL "as nobody: $* -> $_out; not loaded:$_missing; newly loaded: $_new; /proc/modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
	fi
}
