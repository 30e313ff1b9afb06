# The modprobe.d/sysctl.d backend on a real kernel: freeze what the "host"
# uses, apply it, and check that modprobe, the kernel's own autoload and the
# sysctls follow it; then revert and check stock behaviour is back.
# results: modprobe_freeze modprobe_dry_run_changes_nothing modprobe_apply_writes modprobe_apply_idempotent modprobe_blocked_module_fails modprobe_allowed_module_loads modprobe_unprivileged_autoload_blocked modprobe_survey_counts_blocked modprobe_bad_policy_rejected modprobe_revert modprobe_revert_restores_autoload

has_modules || skip_scenario "$NO_MODULES: the modprobe.d backend has nothing to do"

POLICY=/tmp/freeze.toml
CONF=/etc/modprobe.d/kgate.conf
SYSCTL_CONF=/etc/sysctl.d/90-kgate.conf
# The "host workload": a filesystem module with dependencies.
INUSE=xfs

# Unload everything earlier scenarios loaded (lib.sh), so the freeze sees
# only what this scenario loads.

unload_all
if ! modprobe "$INUSE"; then
	for r in modprobe_freeze modprobe_dry_run_changes_nothing modprobe_apply_writes modprobe_apply_idempotent modprobe_blocked_module_fails modprobe_allowed_module_loads modprobe_unprivileged_autoload_blocked modprobe_survey_counts_blocked modprobe_bad_policy_rejected modprobe_revert modprobe_revert_restores_autoload; do
		result "$r" FAIL "cannot load $INUSE to set the scene"
	done
	exit 0
fi
inuse_mods=$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')

# --- freeze ---------------------------------------------------------------
out=$(kgate freeze -o "$POLICY" 2>&1)
rc=$?
# The modules the policy blocks, one per line (one kgate run, not one per
# module: the generic kernel has 4,230 modules and the guest is emulated).
kgate policy diff "$POLICY" --format json | tr -d ' \n' | sed 's/.*"blocked":\[\([^]]*\)\].*/\1/' |
	tr ',' '\n' | tr -d '"' >/tmp/blocked.list
blocked_by_policy() { grep -qxF "$1" /tmp/blocked.list; }
explain=$(kgate policy explain "$POLICY" "$INUSE" 2>&1)
dep_ok=1
for m in $inuse_mods; do
	blocked_by_policy "$m" && dep_ok=0
done
vsock_explain=$(kgate policy explain "$POLICY" vsock 2>&1)
if [ $rc = 0 ] && kgate policy check "$POLICY" >/dev/null 2>&1 && [ $dep_ok = 1 ] &&
	blocked_by_policy vsock && echo "$vsock_explain" | grep -q BLOCKED; then
	result modprobe_freeze PASS "froze with $inuse_mods loaded; all allowed; vsock blocked; $(echo "$out" | head -1)"
else
	result modprobe_freeze FAIL "rc=$rc deps_allowed=$dep_ok blocked=$(wc -l </tmp/blocked.list); $out; explain: $explain; vsock: $vsock_explain"
fi

# --- dry run ----------------------------------------------------------------
ldisc_before=$(cat /proc/sys/dev/tty/ldisc_autoload)
dry=$(kgate apply "$POLICY" --backend modprobe --dry-run 2>&1)
rc=$?
if [ $rc = 0 ] && [ ! -e "$CONF" ] && [ ! -e "$SYSCTL_CONF" ] &&
	[ "$(cat /proc/sys/dev/tty/ldisc_autoload)" = "$ldisc_before" ] &&
	echo "$dry" | grep -q "^+install vsock /bin/false" && echo "$dry" | grep -q "Dry run: nothing was changed"; then
	result modprobe_dry_run_changes_nothing PASS "diff shown ($(echo "$dry" | grep -c '^+install') install lines), no file written"
else
	result modprobe_dry_run_changes_nothing FAIL "rc=$rc; files: $(ls /etc/modprobe.d /etc/sysctl.d 2>&1); $(echo "$dry" | tail -5)"
fi

# --- apply --------------------------------------------------------------------
out=$(kgate apply "$POLICY" --backend modprobe 2>&1)
rc=$?
ldisc_after=$(cat /proc/sys/dev/tty/ldisc_autoload)
if [ $rc = 0 ] && grep -q "^install vsock /bin/false" "$CONF" && ! grep -q "^install $INUSE " "$CONF" &&
	grep -q "dev.tty.ldisc_autoload = 0" "$SYSCTL_CONF" && [ "$ldisc_after" = 0 ]; then
	result modprobe_apply_writes PASS "$(grep -c '^install' "$CONF") modules blocked; ldisc_autoload $ldisc_before -> $ldisc_after"
else
	result modprobe_apply_writes FAIL "rc=$rc ldisc=$ldisc_after; $out"
fi

stamp1=$(stat -c '%Y %i' "$CONF" "$SYSCTL_CONF" | tr '\n' ' ')
sleep 1
out=$(kgate apply "$POLICY" --backend modprobe 2>&1)
rc=$?
stamp2=$(stat -c '%Y %i' "$CONF" "$SYSCTL_CONF" | tr '\n' ' ')
if [ $rc = 0 ] && echo "$out" | grep -q "Nothing to change" && [ "$stamp1" = "$stamp2" ]; then
	result modprobe_apply_idempotent PASS "second apply: $(echo "$out" | tail -1)"
else
	result modprobe_apply_idempotent FAIL "rc=$rc; before $stamp1 after $stamp2; $out"
fi

# --- modprobe and the kernel's autoload follow it -------------------------------
modprobe vsock 2>/tmp/modprobe.err
rc=$?
if [ $rc != 0 ] && ! loaded vsock; then
	result modprobe_blocked_module_fails PASS "modprobe vsock -> exit $rc, not loaded"
else
	result modprobe_blocked_module_fails FAIL "modprobe vsock -> exit $rc; stderr: $(cat /tmp/modprobe.err); -n -v: $(modprobe -n -v vsock 2>&1); conf: $(grep -n vsock "$CONF"); loaded: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
fi

unload_all
if modprobe "$INUSE" && loaded "$INUSE"; then
	missing=
	for m in $inuse_mods; do loaded "$m" || missing="$missing $m"; done
	if [ -z "$missing" ]; then
		result modprobe_allowed_module_loads PASS "modprobe $INUSE loaded $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
	else
		result modprobe_allowed_module_loads FAIL "dependencies not loaded:$missing"
	fi
else
	result modprobe_allowed_module_loads FAIL "modprobe $INUSE failed; $(cat /proc/modules)"
fi

# Unprivileged triggers of modules the policy blocks: each must fail and
# load nothing blocked. (A module loaded when the policy was frozen, such as
# sctp, which cannot be unloaded once used, is allowed and skipped.)
{ echo -; cut -d' ' -f1 /proc/modules; } >/tmp/.modules.before
tried=
for t in "vsock:socket 40 1 0" "sctp:socket 2 1 132" "kcm:socket 41 5 0" "smc:socket 43 1 0" \
	"l2tp_ip:socket 2 2 115" "algif_aead:alg-bind aead authencesn(hmac(sha256),cbc(aes))" \
	"vsock_diag:sockdiag 40"; do
	mod=${t%%:*}
	args=${t#*:}
	available "$mod" || continue
	blocked_by_policy "$mod" || continue
	# shellcheck disable=SC2086
	r=$(as_nobody probe $args 2>&1)
	tried="$tried $mod=$r"
done
new=$(cut -d' ' -f1 /proc/modules | grep -vxF -f /tmp/.modules.before | tr '\n' ' ')
# Allowed modules may load on the way (crypto helpers of allowed modules);
# no blocked one may. sock_diag requests fail silently, so only socket()
# and bind() results are checked for errors.
leaked=
for m in $new; do
	blocked_by_policy "$m" && leaked="$leaked $m"
done
succeeded=$(echo "$tried" | tr ' ' '\n' | grep -v '^vsock_diag=' | grep '=ok$' | tr '\n' ' ')
if [ -n "$tried" ] && [ -z "$leaked" ] && [ -z "$succeeded" ]; then
	result modprobe_unprivileged_autoload_blocked PASS "as nobody:$tried; no blocked module loaded (newly loaded, all allowed: $new)"
else
	result modprobe_unprivileged_autoload_blocked FAIL "as nobody:$tried; succeeded: $succeeded; blocked modules loaded:$leaked; newly loaded: $new"
fi

# --- the survey sees it -----------------------------------------------------------
flat=$(kgate survey --format json | tr -d ' \n\t')
blocked=$(echo "$flat" | grep -o '"modules_blocked_by_modprobe_conf":[0-9]*' | cut -d: -f2)
reach=$(echo "$flat" | grep -o '"modules_unprivileged_reachable":[0-9]*' | cut -d: -f2)
if [ -n "$blocked" ] && [ "$blocked" -gt 100 ] && [ -n "$reach" ] && [ "$reach" -lt 50 ]; then
	result modprobe_survey_counts_blocked PASS "survey: $blocked modules blocked by modprobe.d, $reach still reachable"
else
	result modprobe_survey_counts_blocked FAIL "blocked=$blocked reachable=$reach"
fi

# --- a bad policy changes nothing -----------------------------------------------------
sum_before=$(cat "$CONF" "$SYSCTL_CONF" | md5sum)
printf 'version = 1\n[modules]\nmode = "enforcing"\n' >/tmp/bad.toml
out=$(kgate apply /tmp/bad.toml --backend modprobe 2>&1)
rc=$?
if [ $rc != 0 ] && [ "$(cat "$CONF" "$SYSCTL_CONF" | md5sum)" = "$sum_before" ] &&
	echo "$out" | grep -q "bad.toml:3:8: modules.mode"; then
	result modprobe_bad_policy_rejected PASS "rejected: $(echo "$out" | head -1)"
else
	result modprobe_bad_policy_rejected FAIL "rc=$rc; $out"
fi

# --- revert -------------------------------------------------------------------------
echo "# not kgate's" >/etc/modprobe.d/local.conf
out=$(kgate revert --backend modprobe 2>&1)
rc=$?
ldisc_reverted=$(cat /proc/sys/dev/tty/ldisc_autoload)
if [ $rc = 0 ] && [ ! -e "$CONF" ] && [ ! -e "$SYSCTL_CONF" ] && [ -e /etc/modprobe.d/local.conf ] &&
	[ "$ldisc_reverted" = "$ldisc_before" ]; then
	result modprobe_revert PASS "kgate files removed, local.conf kept, ldisc_autoload back to $ldisc_reverted"
else
	result modprobe_revert FAIL "rc=$rc ldisc=$ldisc_reverted; $out; $(ls -la /etc/modprobe.d)"
fi
rm -f /etc/modprobe.d/local.conf

expect_autoload modprobe_revert_restores_autoload "vsock" probe socket 40 1 0
