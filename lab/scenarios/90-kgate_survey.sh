# kgate itself runs in the guest and sees the live kernel correctly.
# results: kgate_survey_runs

kgate survey --format json --no-cache >/tmp/survey.json 2>/tmp/survey.err
rc=$?
flat=$(tr -d ' \n\t\r' </tmp/survey.json)
problems=
[ "$rc" = 0 ] || problems="$problems exit=$rc"
case "$flat" in *'"modules_supported":true'*) ;; *) problems="$problems modules_supported-not-true" ;; esac
case "$flat" in *'"bpf_lsm":{"state":"active"'*) ;; *) problems="$problems bpf_lsm-not-active" ;; esac
reachable=$(echo "$flat" | grep -o '"modules_unprivileged_reachable":[0-9]*' | cut -d: -f2)
if [ -z "$problems" ]; then
	result kgate_survey_runs PASS "kgate survey exit 0, modules_supported true, BPF-LSM active, unprivileged-reachable modules: $reachable"
else
	result kgate_survey_runs FAIL "problems:$problems; stderr: $(head -c 2000 /tmp/survey.err); json: $(echo "$flat" | head -c 1500)"
fi
