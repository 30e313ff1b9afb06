# Helpers for kernel lab scenarios (sourced before each scenario script).
#
# Scenarios run as root in the guest; use as_nobody to act as an
# unprivileged user. Report with `result NAME PASS|FAIL|SKIP "detail"`.
# A SKIP's detail starts with `needs:FEATURE` (function_error_injection,
# modules, module:NAME, x32_abi, run:SCENARIO, ...): it passes only on a
# kernel whose manifest (crates/kgate-lab/src/manifest.rs) declares FEATURE
# missing, and fails everywhere else.
# KGATE_LAB_KERNEL is cloud-6.12, generic-6.12, cloud-6.1 or fei-6.12 (the
# lab's own build, which ships no modules); KGATE_LAB_SCENARIO is the
# running scenario's path.

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

# has_modules: does this kernel ship loadable modules at all? (fei-6.12
# has module support but every feature built in: /proc/modules and
# modules.dep are empty, modprobe finds nothing.)
has_modules() {
	[ -s "/lib/modules/$(uname -r)/modules.dep" ]
}
NO_MODULES="needs:modules $KGATE_LAB_KERNEL ships no loadable modules (the lab builds everything in)"

# scenario_results: the result names the running scenario declares (its
# `# results:` line, else its name).
scenario_results() {
	_names=$(sed -n 's/^# results://p' "$KGATE_LAB_SCENARIO")
	if [ -z "$_names" ]; then
		_names=${KGATE_LAB_SCENARIO##*/}
		_names=${_names%.sh}
		case $_names in [0-9]*-*) _names=${_names#*-} ;; esac
	fi
	echo $_names
}

# skip_scenario "needs:FEATURE detail": report every result the running
# scenario declares as SKIP, and end the scenario.
skip_scenario() {
	for _r in $(scenario_results); do
		result "$_r" SKIP "$*"
	done
	exit 0
}

# fail_scenario DETAIL: report every result the running scenario declares
# as FAIL (a precondition that should hold broke), and end the scenario.
fail_scenario() {
	for _r in $(scenario_results); do
		result "$_r" FAIL "$*"
	done
	exit 0
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
# that it makes the kernel load every listed module. SKIP (needs:module:MOD,
# or needs:modules) when the kernel does not ship one of them as a loadable
# module (or ships no modules at all), FAIL when one is
# loaded already (the scenario would prove nothing) or is still missing
# afterwards.
expect_autoload() {
	_name=$1
	_mods=$2
	shift 2
	if ! has_modules; then
		result "$_name" SKIP "$NO_MODULES"
		return 0
	fi
	for _m in $_mods; do
		if ! available "$_m"; then
			if builtin "$_m"; then
				result "$_name" SKIP "needs:module:$_m $_m is built into $KGATE_LAB_KERNEL"
			else
				result "$_name" SKIP "needs:module:$_m $KGATE_LAB_KERNEL does not ship $_m"
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

# Unload every module not in use; a module whose last socket is still
# being freed (RCU) has a use count for a moment, and a protocol module's
# per-netns kernel sockets (sctp's control sockets) hold it until the
# kernel's asynchronous netns cleanup has run for namespaces that earlier
# scenarios created: `unload_all 60` waits for those, up to ~30 s (default
# ~3 s).
unload_all() {
	_i=0
	_waits=0
	_max=${1:-6}
	# (/proc files have size 0: test for content, not `-s`.)
	while [ $_i -lt 100 ] && [ -n "$(head -c1 /proc/modules)" ]; do
		_mods=$(awk '$3 == 0 { print $1 }' /proc/modules)
		if [ -n "$_mods" ]; then
			for _m in $_mods; do rmmod "$_m" 2>/dev/null; done
		elif [ $_waits -lt "$_max" ]; then
			sleep 0.5
			_waits=$((_waits + 1))
		else
			break
		fi
		_i=$((_i + 1))
	done
}
# snap, then new_mods: the modules loaded since, on one line.
snap() { { echo -; cut -d' ' -f1 /proc/modules; } >/tmp/.lab.modules.snap; }
new_mods() { cut -d' ' -f1 /proc/modules | grep -vxF -f /tmp/.lab.modules.snap | tr '\n' ' '; }

# unload_tree MODULE: unload MODULE and every module that uses it,
# recursively.
unload_tree() {
	local users u
	users=$(awk -v m="$1" '$1 == m && $4 != "-" { print $4 }' /proc/modules | tr ',' ' ')
	for u in $users; do unload_tree "$u"; done
	loaded "$1" && rmmod "$1" 2>/dev/null
	return 0
}
