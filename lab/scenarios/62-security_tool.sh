# Issue 13, item 5 and 2: the root-run tool must not be steered by an
# unprivileged user (pin directory, fact cache, allowed aliases, event
# text), and `kgate apply --backend bpf-lsm` puts [sysctl] in force too.
# Each check is an attack by nobody against root's kgate; each fails on a
# kgate without the fix.
# results: security_pin_dir_precreated security_cache_owner security_alias_blocked security_event_escape security_bpf_sysctl

PIN=/sys/fs/bpf/kgate

has_modules || skip_scenario "$NO_MODULES: these policies are about module loading"

# A clean start: nothing of kgate's applied.
bpffs_mode=$(stat -c %a /sys/fs/bpf)
kgate revert >/dev/null 2>&1
rm -rf $PIN
unload_all
kgate freeze --loaded /run/boot.modules -o /tmp/sec-freeze.toml >/tmp/sec-freeze.out 2>&1 ||
	fail_scenario "kgate freeze failed: $(cat /tmp/sec-freeze.out)"

# --- 5a: a pin directory nobody created first -------------------------------------
# bpffs as the kernel mounts it by default: 01777, anyone may mkdir.
mount -o remount,mode=1777 /sys/fs/bpf
as_nobody mkdir $PIN
owner=$(stat -c '%u %a' $PIN 2>&1)
out=$(kgate apply /tmp/sec-freeze.toml --backend bpf-lsm 2>&1)
rc=$?
links=$(ls $PIN 2>/dev/null | grep -c '^link_')
st=$(kgate status 2>&1 | head -1)
rm -rf $PIN
out2=$(kgate apply /tmp/sec-freeze.toml --backend bpf-lsm 2>&1)
rc2=$?
made=$(stat -c '%u %a %F' $PIN 2>&1)
if [ "$owner" = "65534 755" ] && [ $rc != 0 ] && [ "$links" = 0 ] && echo "$out" | grep -q 'rm -r /sys/fs/bpf/kgate' &&
	[ $rc2 = 0 ] && [ "$made" = "0 700 directory" ]; then
	result security_pin_dir_precreated PASS "nobody's $PIN ($owner): rc=$rc $(echo "$out" | grep -i error | head -1); links pinned: $links; after rm: rc=$rc2, $PIN is '$made'"
else
	result security_pin_dir_precreated FAIL "nobody's $PIN ($owner): rc=$rc, links pinned: $links, $out; status: $st; after rm: rc=$rc2, '$made', $out2"
fi
kgate revert >/dev/null 2>&1

# --- 5b: root's kgate and nobody's fact cache ------------------------------------
# nobody fills a cache of this kernel's modules, then plants a fact in it
# (vsock's code size: 123456789 bytes, patched into the bincode file),
# and root runs kgate with HOME and XDG_CACHE_HOME pointing there (sudo -E,
# su without -). Root must not use it: the survey shows vsock's real size,
# root's facts go to /var/cache/kgate (0700 root), and an explicit
# --cache-dir owned by nobody is ignored with a warning.
# The surveys read a copy of this kernel's vsock module alone (--root): the
# cache is the same code whatever the tree, and each survey of all 4,000
# modules without a cache would take minutes under emulation. Root's own
# cache of the full tree is kept aside, so that later scenarios stay warm.
rm -rf /tmp/nbc /var/cache/kgate.lab
[ -e /var/cache/kgate ] && mv /var/cache/kgate /var/cache/kgate.lab
mkdir /tmp/nbc
chown 65534:65534 /tmp/nbc
MD=/lib/modules/$(uname -r)
vsock_ko=$(sed -n 's|^\([^:]*/vsock\.ko[.a-z]*\):.*|\1|p' $MD/modules.dep | head -1)
SMALL=/tmp/nbc-root
rm -rf $SMALL
mkdir -p "$SMALL$MD/$(dirname "$vsock_ko")"
cp "$MD/$vsock_ko" "$SMALL$MD/$vsock_ko"
chmod -R a+rX $SMALL
as_nobody sh -c "HOME=/tmp/nbc XDG_CACHE_HOME=/tmp/nbc kgate survey --root $SMALL --format json >/dev/null 2>&1"
planted=$(ls /tmp/nbc/kgate/facts-*.bin 2>/dev/null | head -1)
key=$(strings -t d "$planted" 2>/dev/null | grep -o 'kernel/net/vmw_vsock/vsock\.ko[.a-z]*$' | head -1)
off=$(strings -t d "$planted" 2>/dev/null | grep "$key\$" | head -1 | awk '{print $1}')
if [ -z "$planted" ] || [ -z "$off" ]; then
	result security_cache_owner FAIL "nobody's survey wrote no cache with vsock under /tmp/nbc/kgate: $(ls -la /tmp/nbc/kgate 2>&1)"
else
	# bincode: key, then FileStamp (size u64, mtime i128), then KoFacts.text_bytes (u64 LE).
	printf '\025\315\133\007\000\000\000\000' |
		as_nobody dd of="$planted" bs=1 seek=$((off + ${#key} + 24)) conv=notrunc 2>/dev/null
	size() { tr -d ' \n' <"$1" | grep -o '"name":"vsock","path":"[^"]*","loaded":[a-z]*,"builtin":[a-z]*,"text_bytes":[0-9]*' | grep -o '[0-9]*$'; }
	as_nobody sh -c "HOME=/tmp/nbc XDG_CACHE_HOME=/tmp/nbc kgate survey --root $SMALL --format json" >/tmp/nbc.user.json 2>/dev/null
	HOME=/tmp/nbc XDG_CACHE_HOME=/tmp/nbc kgate survey --root $SMALL --format json >/tmp/nbc.root.json 2>/tmp/nbc.err
	rc=$?
	kgate survey --root $SMALL --cache-dir /tmp/nbc/kgate --format json >/tmp/nbc.root2.json 2>/tmp/nbc2.err
	rc2=$?
	u=$(size /tmp/nbc.user.json)
	r1=$(size /tmp/nbc.root.json)
	r2=$(size /tmp/nbc.root2.json)
	root_dir=$(stat -c '%u %a' /var/cache/kgate 2>&1)
	root_file=$(stat -c '%u %a' /var/cache/kgate/facts-*.bin 2>&1 | head -1)
	if [ $rc = 0 ] && [ $rc2 = 0 ] && [ "$u" = 123456789 ] && [ -n "$r1" ] && [ "$r1" != 123456789 ] && [ "$r2" = "$r1" ] &&
		[ "$root_dir" = "0 700" ] && [ "$root_file" = "0 600" ] && grep -qi 'ignor' /tmp/nbc2.err; then
		result security_cache_owner PASS "planted vsock text_bytes: nobody sees $u, root sees $r1 (HOME/XDG_CACHE_HOME) and $r2 (--cache-dir); root's cache /var/cache/kgate ($root_dir), file ($root_file); $(grep -i ignor /tmp/nbc2.err | head -1)"
	else
		result security_cache_owner FAIL "rc=$rc/$rc2; planted vsock text_bytes: nobody sees '$u', root sees '$r1' (env) and '$r2' (--cache-dir); /var/cache/kgate: '$root_dir', file '$root_file'; stderr: $(cat /tmp/nbc.err /tmp/nbc2.err | head -3)"
	fi
fi
# Root's cache of the full tree back in place.
rm -rf /var/cache/kgate
[ -e /var/cache/kgate.lab ] && mv /var/cache/kgate.lab /var/cache/kgate

# --- 5c: an allowed name that is an alias of a blocked module --------------------
# The freeze policy blocks vsock; allowing "net-pf-40" (vsock's alias) must
# not let socket(AF_VSOCK) get vsock loaded. [sockets] off, so that only
# [modules] decides.
sed -e '/^\[modules\]/,/^\[/ s/^allow = \[/allow = [\n    "net-pf-40",/' \
	-e '/^\[sockets\]/,/^\[/ s/^mode = .*/mode = "off"/' /tmp/sec-freeze.toml >/tmp/sec-alias.toml
unload_all 60
pre=$(grep -oE '^(vsock|vmw_vsock_virtio_transport_common|vsock_loopback) ' /proc/modules | tr '\n' ' ')
out=$(kgate apply /tmp/sec-alias.toml --backend bpf-lsm 2>&1)
rc=$?
r=$(as_nobody probe socket 40 1 0 2>&1)
if ! grep -q 'net-pf-40' /tmp/sec-alias.toml; then
	result security_alias_blocked FAIL "could not add net-pf-40 to the policy: $(sed -n '/^\[modules\]/,/^\[/p' /tmp/sec-alias.toml | head -5)"
elif [ -n "$pre" ]; then
	result security_alias_blocked FAIL "could not unload $pre before the test"
elif [ $rc = 0 ] && ! loaded vsock && echo "$out" | grep 'warning' | grep 'net.pf.40' | grep -q vsock; then
	result security_alias_blocked PASS "$(echo "$out" | grep 'net.pf.40' | head -1); as nobody socket(AF_VSOCK) -> $r; vsock not loaded"
else
	result security_alias_blocked FAIL "rc=$rc; as nobody socket(AF_VSOCK) -> $r; vsock loaded: $(loaded vsock && echo yes || echo no); $out"
fi

# --- 5d: an executable named to forge event lines --------------------------------
# Its file name holds a newline and a terminal escape; the denied module
# request logs it as comm and exe. `kgate events` must print one line per
# event, with the name escaped.
kgate events >/dev/null 2>&1
mkdir -p /tmp/ev
name=$(printf 'ev\nevent allow module:FORGED\033[2K')
cp "$(command -v probe)" "/tmp/ev/$name"
chmod 755 "/tmp/ev/$name"
r=$(as_nobody "/tmp/ev/$name" socket 2 1 132 2>&1)
ev=$(kgate events 2>&1)
esc=$(printf '\033')
line=$(echo "$ev" | grep -F 'ev\nevent\x20allow\x20module:FORGED\x1b[2K' | head -1)
if [ -n "$line" ] && ! echo "$ev" | grep -q '^event allow module:FORGED' && ! echo "$ev" | grep -qF "$esc"; then
	result security_event_escape PASS "socket(AF_INET, SOCK_STREAM, sctp) by that file -> $r; $line"
else
	result security_event_escape FAIL "socket(AF_INET, SOCK_STREAM, sctp) by that file -> $r; events: $(echo "$ev" | tr "$esc" '?' | sed 's/^/| /')"
fi
kgate revert >/dev/null 2>&1

# --- 2a: [sysctl] under the bpf-lsm backend --------------------------------------
# A freeze policy sets kernel.io_uring_disabled = 2 (and six more). Applied
# with the bpf-lsm backend, each sysctl this kernel has holds the policy's
# value, io_uring_setup fails for nobody, and revert puts back what was
# there.
before=
after=
want=
for s in $(sed -n '/^\[sysctl\]/,/^\[/ s/^"\{0,1\}\([a-z_.]*\)"\{0,1\} = .*/\1/p' /tmp/sec-freeze.toml); do
	f=/proc/sys/$(echo "$s" | tr . /)
	[ -e "$f" ] || continue
	v=$(sed -n "/^\[sysctl\]/,/^\[/ s/^\"\{0,1\}$s\"\{0,1\} = //p" /tmp/sec-freeze.toml)
	want="$want $s=$v"
	before="$before $s=$(cat "$f")"
done
u0=$(as_nobody probe uring-setup 2>&1)
out=$(kgate apply /tmp/sec-freeze.toml --backend bpf-lsm 2>&1)
rc=$?
for kv in $want; do
	f=/proc/sys/$(echo "${kv%%=*}" | tr . /)
	after="$after ${kv%%=*}=$(cat "$f")"
done
u1=$(as_nobody probe uring-setup 2>&1)
rv=$(kgate revert 2>&1)
restored=
for kv in $before; do
	f=/proc/sys/$(echo "${kv%%=*}" | tr . /)
	restored="$restored ${kv%%=*}=$(cat "$f")"
done
if [ -e /proc/sys/kernel/io_uring_disabled ]; then
	uring_ok=$([ "$u1" = "errno=EPERM" ] && echo yes)
	uring="io_uring_setup as nobody: $u0 -> $u1"
else
	uring_ok=yes
	uring="no kernel.io_uring_disabled on $KGATE_LAB_RELEASE (added in 6.6); io_uring_setup as nobody: $u0 -> $u1"
fi
if [ $rc = 0 ] && [ -n "$want" ] && [ "$after" = "$want" ] && [ "$restored" = "$before" ] && [ -n "$uring_ok" ] &&
	echo "$out" | grep -q '^sysctl '; then
	result security_bpf_sysctl PASS "applied:$after; $uring; reverted:$restored; $(echo "$out" | grep -E '^(section|modules|sysctl|seccomp) ' | tr '\n' ';')"
else
	result security_bpf_sysctl FAIL "rc=$rc; want:$want; before:$before; after:$after; restored:$restored; $uring; apply: $out; revert: $rv"
fi
mount -o remount,mode="$bpffs_mode" /sys/fs/bpf
