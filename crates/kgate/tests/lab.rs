//! The kernel lab as cargo tests: boots each lab kernel once under qemu
//! (TCG) with this build of kgate inside, runs every `lab/scenarios/*.sh`,
//! and exposes each scenario result as its own test, e.g.
//! `lab::cloud_6_12::stock_autoload_vsock`.
//!
//! The kernels: Debian's three (`cargo xtask fetch`) and fei-6.12, the
//! lab's own build with CONFIG_FUNCTION_ERROR_INJECTION (`cargo xtask
//! build-kernel fei-6.12`). A kernel missing from the lab cache, or a build
//! older than its config fragment, skips its tests loudly, unless
//! `KGATE_REQUIRE_KERNELS=1`, which makes them fail. `KGATE_LAB_SKIP=1`
//! skips the lab (also unless kernels are required).
//!
//! Boots: by default one at a time, each when its first test asks for it.
//! With `KGATE_LAB_JOBS=N` (N > 1; scripts/test.sh sets it to the number
//! of CPUs), the first test starts every kernel's boot, N at a time, so
//! that guests which leave a CPU idle (most scenarios run one process at a
//! time) overlap. A boot takes 10 s to several minutes.
//!
//! Adding a scenario: write `lab/scenarios/NN-name.sh` declaring its results
//! (`# results: a b`) and add the names to `lab_results!` below;
//! `every_scenario_result_has_a_test` checks the two agree.

use std::sync::{Arc, Condvar, Mutex, OnceLock};

use kgate_lab::{Flavour, Kernel, LabRun, RunOptions};

/// A kernel's run: `None` when skipped, `Err` when the lab failed.
type Outcome = Arc<Option<Result<LabRun, String>>>;

/// The real-system chain's run, likewise.
type SystemRun = Option<Result<kgate_lab::system_run::SystemRun, String>>;

/// One boot's slot: not started, booting, or done with its `T`.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    done: Condvar,
}

enum SlotState<T> {
    Idle,
    Booting,
    Done(Arc<T>),
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            state: Mutex::new(SlotState::Idle),
            done: Condvar::new(),
        }
    }
}

impl<T: Send + Sync + 'static> Slot<T> {
    /// Start `run` in its own thread (which takes a permit to boot,
    /// [`take_permit`]), unless this slot has started.
    fn start(&'static self, run: impl FnOnce() -> T + Send + 'static) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*state, SlotState::Idle) {
            return;
        }
        *state = SlotState::Booting;
        std::thread::spawn(move || {
            let outcome = Arc::new(run());
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = SlotState::Done(outcome);
            self.done.notify_all();
        });
    }

    /// Wait until the slot's boot is done.
    fn wait(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let SlotState::Done(o) = &*state {
                return o.clone();
            }
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The slots, in [`Flavour::ALL`] order, and the boots allowed at once.
struct Lab {
    slots: [Slot<Option<Result<LabRun, String>>>; 4],
    system: Slot<SystemRun>,
    permits: Mutex<Permits>,
    permit_freed: Condvar,
}

/// Boots allowed to start now, and the ranks ([`BOOT_ORDER`]) of the boots
/// ready to start: a free permit goes to the ready boot of lowest rank. A
/// boot is ready once it has what it needs (a kernel built, a .deb), so
/// one still preparing holds up no other.
struct Permits {
    free: usize,
    waiting: std::collections::BTreeSet<usize>,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| Lab {
        slots: Default::default(),
        system: Default::default(),
        permits: Mutex::new(Permits {
            free: jobs(),
            waiting: Default::default(),
        }),
        permit_freed: Condvar::new(),
    })
}

/// `KGATE_LAB_JOBS`: boots at once (default 1).
fn jobs() -> usize {
    std::env::var("KGATE_LAB_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

fn required() -> bool {
    std::env::var("KGATE_REQUIRE_KERNELS").as_deref() == Ok("1")
}

fn index(flavour: Flavour) -> usize {
    Flavour::ALL.iter().position(|f| *f == flavour).unwrap()
}

fn rank(flavour: Flavour) -> usize {
    job_rank(Job::Kernel(flavour))
}

fn job_rank(job: Job) -> usize {
    BOOT_ORDER.iter().position(|j| *j == job).unwrap()
}

/// Wait for a permit to boot, in rank order among the ready boots
/// ([`Permits`]).
fn take_permit(rank: usize) {
    let lab = lab();
    let mut p = lab.permits.lock().unwrap_or_else(|e| e.into_inner());
    p.waiting.insert(rank);
    while p.free == 0 || p.waiting.first() != Some(&rank) {
        p = lab.permit_freed.wait(p).unwrap_or_else(|e| e.into_inner());
    }
    p.waiting.remove(&rank);
    p.free -= 1;
    // The next ready boot may start too if a permit is left.
    lab.permit_freed.notify_all();
}

fn release_permit() {
    let lab = lab();
    lab.permits.lock().unwrap_or_else(|e| e.into_inner()).free += 1;
    lab.permit_freed.notify_all();
}

fn boot(flavour: Flavour) -> Option<Result<LabRun, String>> {
    if !required() && std::env::var("KGATE_LAB_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: lab test on {flavour}: KGATE_LAB_SKIP=1");
        return None;
    }
    // A build of this kernel running beside the tests (scripts/test.sh)
    // finishes first.
    let lock = flavour
        .build()
        .map(|_| kgate_lab::BuildLock::take(flavour, false))
        .transpose();
    let kernel = match lock
        .and_then(|_lock| Kernel::find(flavour))
        .and_then(|k| k.check_current().map(|()| k))
    {
        Ok(k) => k,
        Err(e) if required() => {
            return Some(Err(format!("{e:#} (KGATE_REQUIRE_KERNELS=1)")));
        }
        Err(e) => {
            eprintln!("SKIPPED: lab test on {flavour}: {e:#}");
            return None;
        }
    };
    let scenarios = match kgate_lab::default_scenarios() {
        Ok(s) => s,
        Err(e) => return Some(Err(format!("{e:#}"))),
    };
    let opts = RunOptions::new(env!("CARGO_BIN_EXE_kgate"));
    take_permit(rank(flavour));
    eprintln!("lab: booting {flavour} ({})", kernel.package);
    let boot_once = || {
        std::panic::catch_unwind(|| kgate_lab::run(&kernel, &scenarios, &opts))
            .map_err(|_| "the lab runner panicked".to_owned())
            .and_then(|r| r.map_err(|e| format!("{e:#}")))
    };
    let mut run = boot_once();
    // One known flake of the emulator, not of the kernel or kgate: under
    // TCG with two vCPUs, a live patch of kernel text (a BPF trampoline
    // attached to an LSM hook: text_poke_bp's int3) is now and then
    // executed stale by the other vCPU, and the guest dies with "Oops:
    // int3" at the patched site (seen once in bpf_lsm_capable, with two
    // guests on two host cores). Such a crash is retried once, loudly; a
    // second crash fails, as does any other crash.
    if let Ok(first) = &run {
        if !first.completed && first.console.contains("Oops: int3") {
            eprintln!(
                "lab: {flavour}: the guest died of an int3 Oops at a live-patched site (TCG); booting once more. The first console:\n{}",
                first.console_tail(80)
            );
            run = boot_once();
        }
    }
    release_permit();
    if let Ok(run) = &run {
        eprintln!(
            "lab: {flavour}: initrd {:.1} MiB, /init after {:.1}s, all scenarios done after {:.1}s, {} failed",
            run.initrd_bytes as f64 / (1 << 20) as f64,
            run.boot_seconds,
            run.total_seconds,
            run.failures()
        );
        eprintln!("lab: {flavour}: {}", run.time_report(8));
    }
    Some(run)
}

/// Start `flavour`'s boot in its own thread unless it has started.
fn start(flavour: Flavour) {
    lab().slots[index(flavour)].start(move || boot(flavour));
}

/// `flavour`'s run, booting it (and, with `KGATE_LAB_JOBS` > 1, every
/// other kernel) if nothing has yet.
fn outcome(flavour: Flavour) -> Outcome {
    if jobs() > 1 {
        start_all();
    } else {
        start(flavour);
    }
    lab().slots[index(flavour)].wait()
}

/// A boot the lab runs: a kernel of the initramfs lab, or the
/// real-system chain (`kgate_lab::system_run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Kernel(Flavour),
    System,
}

/// The order ready boots take permits in: the longest first (generic-6.12,
/// the system chain of six Debian boots, cloud-6.12), so that the short
/// ones fill in beside them; fei-6.12 last. A boot still preparing (fei
/// waiting for its build, the chain for its image and .deb) is not ready
/// and holds up none of the others.
const BOOT_ORDER: [Job; 5] = [
    Job::Kernel(Flavour::Generic612),
    Job::System,
    Job::Kernel(Flavour::Cloud612),
    Job::Kernel(Flavour::Cloud61),
    Job::Kernel(Flavour::Fei612),
];

/// Start every boot (`KGATE_LAB_JOBS` > 1).
fn start_all() {
    for j in BOOT_ORDER {
        match j {
            Job::Kernel(f) => start(f),
            Job::System => start_system(),
        }
    }
}

fn start_system() {
    lab().system.start(system_boot);
}

/// The .deb of this tree: `cargo xtask deb --no-lintian` (a release
/// build; quick when scripts/test.sh's deb step built it).
fn build_deb() -> Result<std::path::PathBuf, String> {
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(&ws)
        .args(["run", "-q", "-p", "xtask", "--", "deb", "--no-lintian"])
        .output()
        .map_err(|e| format!("cannot run cargo xtask deb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo xtask deb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let path = String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .to_owned();
    Ok(path.into())
}

fn system_boot() -> SystemRun {
    if !required() && std::env::var("KGATE_LAB_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: real-system lab: KGATE_LAB_SKIP=1");
        return None;
    }
    // Not yet in scripts/test.sh: the chain takes about 22 minutes under
    // TCG beside a kernel guest (bench/RESULTS.md), too long for CI's 45
    // with the rest.
    if std::env::var("KGATE_LAB_SYSTEM").as_deref() != Ok("1") {
        eprintln!("SKIPPED: real-system lab: set KGATE_LAB_SYSTEM=1 to run it (about 22 min)");
        return None;
    }
    let lab_dir = kgate_lab::lab_dir();
    let src = kgate_lab::guest_src();
    // scripts/test.sh builds the image beside the earlier steps
    // (cargo xtask system-image); built here when missing.
    let image = match kgate_lab::system::ensure_image(&lab_dir, &src) {
        Ok(i) => i,
        Err(e) if required() => return Some(Err(format!("{e:#} (KGATE_REQUIRE_KERNELS=1)"))),
        Err(e) => {
            eprintln!("SKIPPED: real-system lab: {e:#}");
            return None;
        }
    };
    let deb = match build_deb() {
        Ok(d) => d,
        Err(e) => return Some(Err(e)),
    };
    let probe = match kgate_lab::initramfs::build_probe(&src, &lab_dir.join("cache")) {
        Ok(p) => p,
        Err(e) => return Some(Err(format!("{e:#}"))),
    };
    take_permit(job_rank(Job::System));
    eprintln!(
        "lab: booting the real-system chain ({})",
        image.dir.display()
    );
    let opts = kgate_lab::system_run::SystemOptions {
        image,
        deb,
        probe,
        work: kgate_lab::system_run::work_dir(&lab_dir),
    };
    let run = std::panic::catch_unwind(|| kgate_lab::system_run::run(&opts))
        .map_err(|_| "the real-system chain panicked".to_owned());
    release_permit();
    if let Ok(r) = &run {
        eprintln!("lab: system: timings {:?}", r.timings);
    }
    Some(run)
}

fn system_outcome() -> Arc<SystemRun> {
    if jobs() > 1 {
        start_all();
    } else {
        start_system();
    }
    lab().system.wait()
}

/// Assert that the real-system chain's `result` passed.
fn check_system(result: &str) {
    match &*system_outcome() {
        None => eprintln!("SKIPPED: system {result}: the real-system lab did not run"),
        Some(Err(e)) => panic!("the real-system lab could not run: {e}"),
        Some(Ok(run)) => match run.check(result) {
            Ok(detail) => eprintln!("system {result}: {detail}"),
            Err(msg) => panic!("{msg}"),
        },
    }
}

#[test]
fn every_system_result_has_a_test() {
    assert_eq!(SYSTEM_RESULTS, kgate_lab::system_run::RESULTS);
}

/// Assert that `result` passed on `flavour`, or was skipped for a feature
/// that kernel's manifest declares missing (`kgate_lab::manifest`).
fn check(flavour: Flavour, result: &str) {
    match &*outcome(flavour) {
        None => eprintln!("SKIPPED: {flavour} {result}: kernel not available"),
        Some(Err(e)) => panic!("the kernel lab could not run {flavour}: {e}"),
        Some(Ok(run)) => match run.check(result) {
            Ok(detail) => eprintln!("{flavour} {result}: {detail}"),
            Err(msg) => panic!("{msg}"),
        },
    }
}

macro_rules! kernel_tests {
    ($module:ident, $flavour:expr, [$($result:ident),* $(,)?]) => {
        pub mod $module {
            $(
                #[test]
                fn $result() {
                    crate::check($flavour, stringify!($result));
                }
            )*
        }
    };
}

/// Every result the scenarios declare; one test per kernel and result.
macro_rules! lab_results {
    (
        kernels: [$($module:ident => $flavour:expr),* $(,)?],
        system: [$($system:ident),* $(,)?],
        results: $results:tt
    ) => {
        const RESULTS: &[&str] = &names!($results);
        const SYSTEM_RESULTS: &[&str] = &[$(stringify!($system)),*];
        /// Every lab result, as `lab::KERNEL::RESULT`, and the real-system
        /// chain's as `lab::system::RESULT` (`cargo test -- --skip lab::`
        /// runs everything but the lab: scripts/test.sh).
        mod lab {
            $( kernel_tests!($module, $flavour, $results); )*
            pub mod system {
                $(
                    #[test]
                    fn $system() {
                        crate::check_system(stringify!($system));
                    }
                )*
            }
        }
    };
}

macro_rules! names {
    ([$($result:ident),* $(,)?]) => { [$(stringify!($result)),*] };
}

lab_results! {
    kernels: [
        cloud_6_12 => kgate_lab::Flavour::Cloud612,
        generic_6_12 => kgate_lab::Flavour::Generic612,
        cloud_6_1 => kgate_lab::Flavour::Cloud61,
        fei_6_12 => kgate_lab::Flavour::Fei612,
    ],
    system: [
        system_deb_install,
        system_audit_logs,
        system_enforced_after_reboot,
        system_boot_order,
        system_services_work,
        system_workload_no_denials,
        system_unprivileged_denied,
        system_journal_events,
        system_kernel_hook,
        system_kernel_upgrade,
        system_corrupt_policy,
        system_kgate_off,
        system_purge_stock,
    ],
    results: [
        kernel_bpf_lsm_active,
        kernel_btf_vmlinux,
        kernel_error_injection_syscalls,
        stock_autoload_vsock,
        stock_autoload_sctp,
        stock_autoload_af_alg_aead,
        stock_autoload_sock_diag,
        stock_autoload_sock_diag_vsock,
        stock_autoload_kcm,
        stock_autoload_l2tp,
        stock_autoload_smc,
        stock_autoload_appletalk,
        stock_autoload_bluetooth,
        stock_autoload_can_bcm,
        stock_userns,
        modprobe_freeze,
        modprobe_dry_run_changes_nothing,
        modprobe_apply_writes,
        modprobe_apply_idempotent,
        modprobe_blocked_module_fails,
        modprobe_allowed_module_loads,
        modprobe_unprivileged_autoload_blocked,
        modprobe_survey_counts_blocked,
        modprobe_bad_policy_rejected,
        modprobe_revert,
        modprobe_revert_restores_autoload,
        bpf_probe,
        bpf_freeze_policy,
        bpf_apply,
        bpf_unprivileged_sockets_denied,
        bpf_allowed_families_work,
        bpf_userns_denied,
        bpf_userns_allow_exe,
        bpf_root_modprobe_allowed,
        bpf_events_logged,
        bpf_status_counters,
        bpf_events_drops_counted,
        bpf_reapply_swaps,
        bpf_unprivileged_autoload_denied,
        bpf_allowed_autoload_works,
        bpf_root_policy_autoload_denied,
        bpf_root_policy_explicit_load,
        bpf_audit_permits_and_logs,
        bpf_survives_kill,
        bpf_bad_policy_rejected,
        bpf_revert_restores,
        security_pin_dir_precreated,
        security_cache_owner,
        security_alias_blocked,
        security_event_escape,
        security_bpf_sysctl,
        security_container_root_modules,
        security_crypto_kthread,
        security_selftest,
        security_sendfile_pipe,
        security_sendfile_shared_fdtable,
        security_splice_x32,
        security_setns_userns,
        security_userns_preexisting,
        security_userns_inject,
        security_exe_stale,
        security_explicit_real_name,
        splice_stock_works,
        splice_alg_denied,
        splice_tcp_bytes,
        sendfile_tcp_bytes,
        splice_outside_registry_denied,
        splice_fallback_identical,
        splice_strict_sendfile_works,
        splice_uring_denied,
        splice_ungated_paths,
        splice_audit_logs,
        splice_revert,
        splice_hook_on_demand,
        splice_syscall_gates,
        splice_syscall_default_allows,
        splice_syscall_vmsplice_denied,
        splice_syscall_tee_denied,
        splice_syscall_audit,
        splice_syscall_revert,
        hap_workload,
        hap_irq_noise_filtered,
        hap_ftrace_state_restored,
        hap_sigint_restores,
        hap_sigkill_instance_reaped,
        hap_stale_instance_impostor,
        hap_with_policy,
        record_module_request,
        record_socket_shape,
        record_nothing_lost,
        security_seccomp_socketpair,
        security_seccomp_io_uring,
        kgate_survey_runs,
    ]
}

#[test]
fn every_scenario_result_has_a_test() {
    let mut declared: Vec<String> = kgate_lab::default_scenarios()
        .unwrap()
        .into_iter()
        .flat_map(|s| s.results)
        .collect();
    declared.sort();
    let mut tested: Vec<String> = RESULTS.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(
        declared, tested,
        "lab/scenarios/*.sh `# results:` lines and lab_results! in tests/lab.rs must list the same names"
    );
}
