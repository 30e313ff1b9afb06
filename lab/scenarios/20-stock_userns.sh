# Stock behaviour: nobody may create a user namespace.
# results: stock_userns

out=$(as_nobody probe unshare-user 2>&1)
if [ "$out" = ok ]; then
	result stock_userns PASS "as nobody: unshare(CLONE_NEWUSER) -> ok"
else
	result stock_userns FAIL "as nobody: unshare(CLONE_NEWUSER) -> $out; kernel.unprivileged_userns_clone=$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null) user.max_user_namespaces=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)"
fi
