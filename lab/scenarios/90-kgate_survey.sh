# kgate itself runs in the guest and sees the live kernel correctly
# (modules_supported: the kernel can load modules, /proc/modules exists,
# even where it ships none, as fei-6.12).
# results: kgate_survey_runs

kgate survey --format json >/tmp/survey.json 2>/tmp/survey.err
rc=$?
flat=$(tr -d ' \n\t\r' </tmp/survey.json)
problems=
[ "$rc" = 0 ] || problems="$problems exit=$rc"
if [ -e /proc/modules ]; then
	supported=true
else
	supported=false
fi
case "$flat" in *"\"modules_supported\":$supported"*) ;; *) problems="$problems modules_supported-not-$supported" ;; esac
case "$flat" in *'"bpf_lsm":{"state":"active"'*) ;; *) problems="$problems bpf_lsm-not-active" ;; esac
# error_injection (CONFIG_FUNCTION_ERROR_INJECTION, what fmod_ret on syscalls
# needs): true where the kernel has it (fei-6.12), never true elsewhere.
ei=$(echo "$flat" | grep -o '"error_injection":[a-z]*' | cut -d: -f2)
if [ -e /sys/kernel/debug/error_injection/list ]; then
	[ "$ei" = true ] || problems="$problems error_injection=$ei-not-true"
else
	[ "$ei" != true ] || problems="$problems error_injection=true-without-debugfs-list"
fi
reachable=$(echo "$flat" | grep -o '"modules_unprivileged_reachable":[0-9]*' | cut -d: -f2)
if [ -z "$problems" ]; then
	result kgate_survey_runs PASS "kgate survey exit 0, modules_supported $supported, BPF-LSM active, error_injection $ei, unprivileged-reachable modules: $reachable"
else
	result kgate_survey_runs FAIL "problems:$problems; stderr: $(head -c 2000 /tmp/survey.err); json: $(echo "$flat" | head -c 1500)"
fi
