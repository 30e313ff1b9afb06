# The BPF-LSM backend on a real kernel, driven through the kgate CLI
# (`apply --backend bpf-lsm`, `status`, `events`, `revert`). Checks each
# claim through syscall results and /proc/modules.
# results: bpf_probe bpf_freeze_policy bpf_apply bpf_unprivileged_sockets_denied bpf_allowed_families_work bpf_userns_denied bpf_userns_allow_exe bpf_root_modprobe_allowed bpf_events_logged bpf_status_counters bpf_events_drops_counted bpf_reapply_swaps bpf_unprivileged_autoload_denied bpf_allowed_autoload_works bpf_root_policy_autoload_denied bpf_root_policy_explicit_load bpf_audit_permits_and_logs bpf_survives_kill bpf_bad_policy_rejected bpf_revert_restores

ALL="bpf_probe bpf_freeze_policy bpf_apply bpf_unprivileged_sockets_denied bpf_allowed_families_work bpf_userns_denied bpf_userns_allow_exe bpf_root_modprobe_allowed bpf_events_logged bpf_status_counters bpf_events_drops_counted bpf_reapply_swaps bpf_unprivileged_autoload_denied bpf_allowed_autoload_works bpf_root_policy_autoload_denied bpf_root_policy_explicit_load bpf_audit_permits_and_logs bpf_survives_kill bpf_bad_policy_rejected bpf_revert_restores"
PIN=/sys/fs/bpf/kgate

# Every step below freezes, loads or blocks modules.
has_modules || skip_scenario "$NO_MODULES: this scenario's policies are about module loading"


policy() { # policy FILE MODMODE ROOT SOCKMODE "SOCKETS" USERNS "MODULES"
	cat >"$1" <<EOP
version = 1

[modules]
mode = "$2"
root = "$3"
allow = [$7]

[sockets]
mode = "$4"
allow = [$5]

[userns]
unprivileged = "$6"
EOP
}
BASE_SOCKS='"unix", "inet/tcp", "inet/udp", "netlink/route"'

# --- the policy: a real `kgate freeze` of this guest --------------------------------
# The guest's modules right after boot (init.sh saved /proc/modules before
# any scenario ran), so the freeze allows what the guest really uses:
# builtins and boot needs, not what earlier scenarios autoloaded. User namespaces: the
# freeze proposes "audit"; this host decides "deny", except for one sandbox
# binary (a copy of probe standing in for bwrap).
unload_all
mkdir -p /tmp/sb
cp "$(command -v probe)" /tmp/sb/sandbox
out=$(kgate freeze --loaded /run/boot.modules -o /tmp/bpf-a.toml 2>&1)
rc=$?
sed -i -e 's/^unprivileged = "audit"/unprivileged = "deny"/' \
	-e 's|^allow_exe = \[\]|allow_exe = ["/tmp/sb/sandbox"]|' /tmp/bpf-a.toml
frozen=$(sed -n '/^\[modules\]/,/^\[/p' /tmp/bpf-a.toml | tr '\n' ' ')
if [ $rc = 0 ] && grep -q '^mode = "enforce"' /tmp/bpf-a.toml && grep -q '^unprivileged = "deny"' /tmp/bpf-a.toml &&
	grep -q '"/tmp/sb/sandbox"' /tmp/bpf-a.toml && ! grep -qE '"(vsock|sctp|kcm|af_alg|smc|l2tp_ip)"' /tmp/bpf-a.toml &&
	kgate policy check /tmp/bpf-a.toml >/dev/null 2>&1; then
	result bpf_freeze_policy PASS "$(echo "$out" | head -1); $frozen"
else
	result bpf_freeze_policy FAIL "rc=$rc; $out; $(cat /tmp/bpf-a.toml)"
fi

# --- probe ------------------------------------------------------------------------
out=$(kgate apply /tmp/bpf-a.toml --backend bpf-lsm --dry-run 2>&1)
if [ $? = 0 ]; then
	result bpf_probe PASS "$out; lsm=$(cat /sys/kernel/security/lsm)"
else
	result bpf_probe FAIL "$out; lsm=$(cat /sys/kernel/security/lsm)"
fi

# --- apply ------------------------------------------------------------------------
out=$(kgate apply /tmp/bpf-a.toml --backend bpf-lsm 2>&1)
rc=$?
st=$(kgate status 2>&1)
if [ $rc = 0 ] && echo "$out" | grep -q 'attached_now=true' && [ -e $PIN/link_modules ] && [ -e $PIN/link_sockets ] &&
	echo "$st" | grep -q 'hook socket_create attached=true'; then
	result bpf_apply PASS "$(echo "$out" | head -1); pins: $(ls $PIN | tr '\n' ' ')"
else
	result bpf_apply FAIL "rc=$rc; $out; status: $st"
fi

# --- unprivileged triggers fail and load nothing ------------------------------------
snap
tried=
# vsock, sctp, kcm, smc, l2tp, AF_ALG aead, vsock_diag, appletalk, bluetooth,
# can_bcm (the last three ship on the generic kernel only).
# A module still loaded from an earlier scenario would make the test prove
# nothing (enforcement gates loading, not loaded code).
unload_all 60
pre=$(grep -oE '^(vsock|sctp|kcm|smc|l2tp_ip|af_alg|algif_aead|vsock_diag|appletalk|bluetooth|can|can_bcm) ' /proc/modules | tr '\n' ' ')
for t in "socket 40 1 0" "socket 2 1 132" "socket 41 5 0" "socket 43 1 0" "socket 2 2 115" \
	"alg-bind aead authencesn(hmac(sha256),cbc(aes))" "sockdiag 40" "socket 5 2 0" "socket 31 3 1" "socket 29 2 2"; do
	# shellcheck disable=SC2086
	r=$(as_nobody probe $t 2>&1)
	tried="$tried [$t]=$r"
done
new=$(new_mods)
ok=$(echo "$tried" | grep -o '\]=ok' | head -1)
if [ -n "$pre" ]; then
	result bpf_unprivileged_sockets_denied FAIL "could not unload $pre before the test ($(grep -E "^($(echo $pre | tr ' ' '|')) " /proc/modules | cut -d' ' -f1,3,4 | tr '\n' ';')); as nobody:$tried"
elif [ -z "$new" ] && [ -z "$ok" ]; then
	result bpf_unprivileged_sockets_denied PASS "as nobody:$tried; no module loaded"
else
	result bpf_unprivileged_sockets_denied FAIL "as nobody:$tried; newly loaded: $new"
fi

tried=
fail=
for t in "1 1 0" "2 1 0" "2 2 0" "16 3 0" "2 1 6" "2 2 17"; do
	# shellcheck disable=SC2086
	r=$(as_nobody probe socket $t 2>&1)
	tried="$tried [$t]=$r"
	[ "$r" = ok ] || fail=1
done
if [ -z "$fail" ]; then
	result bpf_allowed_families_work PASS "as nobody:$tried"
else
	result bpf_allowed_families_work FAIL "as nobody:$tried"
fi

u=$(as_nobody probe unshare-user 2>&1)
ru=$(probe unshare-user 2>&1)
if [ "$u" != ok ] && [ "$ru" = ok ]; then
	result bpf_userns_denied PASS "as nobody: unshare(CLONE_NEWUSER) -> $u; as root -> $ru"
else
	result bpf_userns_denied FAIL "as nobody -> $u; as root -> $ru"
fi

# userns.allow_exe: the same program under the allowed path works; a copy
# elsewhere (same content, another inode) does not.
cp /tmp/sb/sandbox /tmp/sb/other
sb=$(as_nobody /tmp/sb/sandbox unshare-user 2>&1)
ot=$(as_nobody /tmp/sb/other unshare-user 2>&1)
if [ "$sb" = ok ] && [ "$ot" != ok ]; then
	result bpf_userns_allow_exe PASS "as nobody: /tmp/sb/sandbox unshare -> $sb; /tmp/sb/other (same bytes) -> $ot"
else
	result bpf_userns_allow_exe FAIL "as nobody: /tmp/sb/sandbox -> $sb; /tmp/sb/other -> $ot"
fi

# Root (modules.root = allow): explicit modprobe and root's own autoload work.
snap
modprobe vsock 2>/tmp/mp.err
rc=$?
if [ $rc = 0 ] && loaded vsock; then
	result bpf_root_modprobe_allowed PASS "root: modprobe vsock -> ok; loaded: $(new_mods)"
else
	result bpf_root_modprobe_allowed FAIL "root: modprobe vsock -> $rc $(cat /tmp/mp.err)"
fi
unload_all

ev=$(kgate events 2>&1)
if echo "$ev" | grep -q 'event deny socket:40/1/0 uid=65534' && echo "$ev" | grep -q 'event deny userns uid=65534' &&
	echo "$ev" | grep -q 'dropped_total=0 undecodable=0$'; then
	result bpf_events_logged PASS "$(echo "$ev" | grep -c '^event') events; $(echo "$ev" | grep 'socket:40/1/0' | head -1); $(echo "$ev" | grep userns | head -1); $(echo "$ev" | tail -1)"
else
	result bpf_events_logged FAIL "$ev"
fi

st=$(kgate status 2>&1)
hash=$(echo "$st" | sed -n 's/.*hash=\([0-9a-f]*\).*/\1/p')
# The kernel's run statistics of each program, while bpf_stats_enabled=1:
# 100 denied socket() calls add at least 100 runs of socket_create.
runs() { kgate status 2>/dev/null | sed -n 's/^hook socket_create .* runs=\([0-9]*\) run_ns=\([0-9]*\).*/\1 \2/p'; }
echo 1 >/proc/sys/kernel/bpf_stats_enabled
r0=$(runs)
as_nobody probe flood 100 40 1 0 >/dev/null 2>&1
r1=$(runs)
echo 0 >/proc/sys/kernel/bpf_stats_enabled
stats_ok=$(echo "${r0:-0 0} ${r1:-0 0}" | awk '{ print ($3 - $1 >= 100 && $4 > $2) ? "yes" : "no" }')
if echo "$st" | grep -q 'hook socket_create attached=true allow=[1-9][0-9]* deny=[1-9]' && [ ${#hash} = 64 ] && [ "$stats_ok" = yes ]; then
	result bpf_status_counters PASS "run statistics before/after 100 denials: [$r0] [$r1]; $(echo "$st" | tr '\n' ';')"
else
	result bpf_status_counters FAIL "run statistics before/after 100 denials: [$r0] [$r1]; $st"
fi

# --- event loss under load: counted and shown ---------------------------------------
# 20,000 denials with nobody reading overflow the 1 MiB ring buffer
# (~5,000 events): every denial is either delivered or counted as dropped.
kgate events >/dev/null 2>&1
d0=$(kgate status 2>&1 | sed -n 's/.*dropped=\([0-9]*\).*/\1/p')
c0=$(kgate status 2>&1 | sed -n 's/.*hook socket_create attached=true .*deny=\([0-9]*\).*/\1/p')
fl=$(as_nobody probe flood 20000 40 1 0 2>&1)
kgate events >/tmp/ev.out 2>/tmp/ev.err
d1=$(kgate status 2>&1 | sed -n 's/.*dropped=\([0-9]*\).*/\1/p')
c1=$(kgate status 2>&1 | sed -n 's/.*hook socket_create attached=true .*deny=\([0-9]*\).*/\1/p')
got=$(grep -c '^event deny socket:40/1/0' /tmp/ev.out)
lost=$((d1 - d0))
if [ "$fl" = "ok=0 failed=20000 last=EAFNOSUPPORT" ] && [ "$lost" -gt 0 ] && [ $((got + lost)) = 20000 ] &&
	[ $((c1 - c0)) = 20000 ] && grep -q "dropped_total=$d1" /tmp/ev.out && grep -q 'events were lost' /tmp/ev.err; then
	result bpf_events_drops_counted PASS "flood: $fl; delivered $got + dropped $lost = 20000; deny counter +$((c1 - c0)); $(head -1 /tmp/ev.err)"
else
	result bpf_events_drops_counted FAIL "flood: $fl; delivered=$got dropped $d0 -> $d1; deny counter $c0 -> $c1; $(tail -1 /tmp/ev.out); $(cat /tmp/ev.err)"
fi

# --- re-apply: the module hook on its own ------------------------------------------
# Whole inet and vsock families allowed at socket_create; modules: xfs and
# the three modules that declare the net-pf-40 alias (vmw_vsock_vmci_transport,
# hv_sock, vsock_loopback: modprobe loads every match; vsock is their
# dependency). l2tp_ip (net-pf-2-proto-115-type-2) is not allowed.
policy /tmp/bpf-b.toml enforce allow enforce "$BASE_SOCKS, \"inet\", \"vsock\"" deny '"xfs", "vmw_vsock_vmci_transport", "hv_sock", "vsock_loopback"'
out=$(kgate apply /tmp/bpf-b.toml --backend bpf-lsm 2>&1)
rc=$?
st=$(kgate status 2>&1)
if [ $rc = 0 ] && echo "$out" | grep -q 'attached_now=false .* generation=2' && echo "$st" | grep -q 'generation=2'; then
	result bpf_reapply_swaps PASS "$(echo "$out" | head -1)"
else
	result bpf_reapply_swaps FAIL "rc=$rc; $out; $st"
fi

snap
r=$(as_nobody probe socket 2 2 115 2>&1)
new=$(new_mods)
ev=$(kgate events 2>&1)
if available l2tp_ip && [ "$r" != ok ] && [ -z "$new" ] && echo "$ev" | grep -q 'event deny module:net_pf_2_proto_115_type_2 uid=65534'; then
	result bpf_unprivileged_autoload_denied PASS "as nobody: socket(inet, dgram, l2tp) -> $r; nothing loaded; $(echo "$ev" | grep net_pf_2_proto_115 | head -1)"
elif ! available l2tp_ip; then
	result bpf_unprivileged_autoload_denied SKIP "needs:module:l2tp_ip $KGATE_LAB_KERNEL does not ship l2tp_ip"
else
	result bpf_unprivileged_autoload_denied FAIL "as nobody: l2tp -> $r; newly loaded: $new; events: $ev"
fi

snap
r=$(as_nobody probe socket 40 1 0 2>&1)
if loaded vsock && loaded vmw_vsock_vmci_transport && [ "$r" = ok ]; then
	result bpf_allowed_autoload_works PASS "as nobody: socket(AF_VSOCK) -> $r; newly loaded: $(new_mods)"
else
	result bpf_allowed_autoload_works FAIL "as nobody: socket(AF_VSOCK) -> $r; newly loaded: $(new_mods); events: $(kgate events 2>&1)"
fi

# --- root = policy -------------------------------------------------------------------
policy /tmp/bpf-c.toml enforce policy enforce "$BASE_SOCKS, \"inet\", \"vsock\"" deny '"xfs", "vmw_vsock_vmci_transport", "hv_sock", "vsock_loopback"'
kgate apply /tmp/bpf-c.toml --backend bpf-lsm >/dev/null 2>&1
snap
r=$(probe socket 2 2 115 2>&1)
new=$(new_mods)
ev=$(kgate events 2>&1)
if [ "$r" != ok ] && [ -z "$new" ] && echo "$ev" | grep -q 'event deny module:net_pf_2_proto_115_type_2 uid=0 .*rule="modules.root"'; then
	result bpf_root_policy_autoload_denied PASS "root: socket(inet, dgram, l2tp) -> $r; $(echo "$ev" | grep net_pf_2 | head -1)"
else
	result bpf_root_policy_autoload_denied FAIL "root: l2tp -> $r; newly loaded: $new; events: $ev"
fi

# Root's explicit loads under root = "policy": modprobe of a .ko.xz (kmod
# decompresses it and calls init_module), insmod of an uncompressed copy
# (finit_module), both of kcm (not allowed, no dependencies); modprobe of
# an allowed module with dependencies works.
snap
kcm=$(modinfo -F filename kcm 2>/dev/null)
case $kcm in
*.xz) xz -dc "$kcm" >/tmp/kcm.ko ;;
*.zst) zstd -dc "$kcm" >/tmp/kcm.ko ;;
*) cp "$kcm" /tmp/kcm.ko ;;
esac
modprobe kcm 2>/tmp/mp1.err
rc1=$?
insmod /tmp/kcm.ko 2>/tmp/mp2.err
rc2=$?
modprobe xfs 2>/tmp/mp3.err
rc3=$?
new=$(new_mods)
ev=$(kgate events 2>&1)
if [ $rc1 != 0 ] && [ $rc2 != 0 ] && ! loaded kcm && [ $rc3 = 0 ] && loaded xfs &&
	echo "$ev" | grep -q 'event deny load:kcm uid=0 .*rule="modules.root"' &&
	[ "$(echo "$ev" | grep -c 'event deny load:kcm')" = 2 ]; then
	result bpf_root_policy_explicit_load PASS "root: modprobe kcm -> $(head -c 120 /tmp/mp1.err); insmod kcm.ko -> $(head -c 120 /tmp/mp2.err); modprobe xfs -> ok (loaded: $new); $(echo "$ev" | grep 'load:kcm' | tr '\n' ';')"
else
	result bpf_root_policy_explicit_load FAIL "modprobe kcm rc=$rc1 $(cat /tmp/mp1.err); insmod rc=$rc2 $(cat /tmp/mp2.err); modprobe xfs rc=$rc3 $(cat /tmp/mp3.err); loaded: $new; events: $ev"
fi
unload_all

# --- audit mode ------------------------------------------------------------------------
policy /tmp/bpf-d.toml audit allow audit "$BASE_SOCKS" audit '"xfs"'
kgate apply /tmp/bpf-d.toml --backend bpf-lsm >/dev/null 2>&1
kgate events >/dev/null 2>&1
snap
r1=$(as_nobody probe socket 2 2 115 2>&1)
r2=$(as_nobody probe unshare-user 2>&1)
new=$(new_mods)
ev=$(kgate events 2>&1)
if [ "$r1" = ok ] && [ "$r2" = ok ] && echo "$ev" | grep -q 'event audit socket:2/2/115 uid=65534' &&
	echo "$ev" | grep -q 'event audit module:net_pf_2_proto_115_type_2' && echo "$ev" | grep -q 'event audit userns' &&
	! echo "$ev" | grep -q 'event deny'; then
	result bpf_audit_permits_and_logs PASS "as nobody: l2tp -> $r1 (loaded: $new), unshare -> $r2; $(echo "$ev" | grep '^event' | tr '\n' ';')"
else
	result bpf_audit_permits_and_logs FAIL "l2tp -> $r1, unshare -> $r2, loaded: $new; events: $ev"
fi
unload_all

# --- kill -9 of the loader -----------------------------------------------------------------
kgate revert --backend bpf-lsm >/dev/null 2>&1
kgate apply /tmp/bpf-a.toml --backend bpf-lsm >/tmp/hold.out 2>&1
# kgate's long-running process is the event follower: kill it hard.
kgate events --follow >/tmp/follow.out 2>&1 &
pid=$!
sleep 2
kill -9 $pid
wait $pid 2>/dev/null
snap
r=$(as_nobody probe socket 40 1 0 2>&1)
u=$(as_nobody probe unshare-user 2>&1)
new=$(new_mods)
if grep -q 'attached_now=true' /tmp/hold.out && [ "$r" != ok ] && [ "$u" != ok ] && [ -z "$new" ]; then
	result bpf_survives_kill PASS "kgate applied, then kgate events --follow killed (-9); as nobody: vsock -> $r, unshare -> $u"
else
	result bpf_survives_kill FAIL "$(cat /tmp/hold.out); vsock -> $r, unshare -> $u, loaded: $new"
fi

# --- malformed policy ------------------------------------------------------------------------
before=$(kgate status 2>&1 | head -1)
printf 'version = 1\n[modules]\nmode = "enforcing"\n' >/tmp/bpf-bad.toml
out=$(kgate apply /tmp/bpf-bad.toml --backend bpf-lsm 2>&1)
rc=$?
after=$(kgate status 2>&1 | head -1)
r=$(as_nobody probe socket 40 1 0 2>&1)
if [ $rc != 0 ] && [ "$before" = "$after" ] && [ "$r" != ok ] && echo "$out" | grep -q 'bpf-bad.toml:3:8'; then
	result bpf_bad_policy_rejected PASS "rejected: $(echo "$out" | head -1); status unchanged; vsock still -> $r"
else
	result bpf_bad_policy_rejected FAIL "rc=$rc; $out; before: $before; after: $after; vsock -> $r"
fi

# --- revert ------------------------------------------------------------------------------------
out=$(kgate revert --backend bpf-lsm 2>&1)
rc=$?
snap
# revert returns once the kernel has released the programs (their ids are
# gone), so stock behaviour must be back on the very first try.
r=$(as_nobody probe socket 40 1 0 2>&1)
u=$(as_nobody probe unshare-user 2>&1)
if [ $rc = 0 ] && [ ! -e $PIN ] && [ "$r" = ok ] && loaded vsock && [ "$u" = ok ]; then
	result bpf_revert_restores PASS "$out; as nobody: vsock -> $r (loaded: $(new_mods)), unshare -> $u"
else
	result bpf_revert_restores FAIL "rc=$rc; $out; pins: $(ls $PIN 2>&1); vsock -> $r; unshare -> $u; loaded: $(new_mods)"
fi
