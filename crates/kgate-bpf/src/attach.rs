//! Load, attach and pin the programs; write a policy generation into the
//! maps and swap it in.

use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, Map, MapCore, MapFlags, MapHandle, MapMut, OpenMapMut};
use serde::Serialize;

use crate::abi::{self, Config};
use crate::entries::{generation_write, GENERATION_KEYED};
use crate::hook::{hook_prog, Hook};
use crate::pins::{
    bpf_err, check_bpffs, is_applied, link_pin, map, map_pin, missing_map, open_pinned,
    pinned_maps, policy_maps, prog_pin,
};
use crate::policy::{BpfPolicy, SectionMode};
use crate::probe::{available_hooks, complete_groups, ROOT_HINT};
use crate::revert::revert;
use crate::skel::{KgateProgs, KgateSkelBuilder};
use crate::BpfError;

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// `true`: programs were loaded, attached and pinned now. `false`: they
    /// were already pinned and only the policy was swapped.
    pub attached_now: bool,
    /// The attached hooks.
    pub hooks: Vec<Hook>,
    /// The new policy generation (1 on first apply).
    pub generation: u64,
    /// The policy hash now enforced.
    pub hash: String,
    /// Module request strings in the map.
    pub module_requests: usize,
    /// Socket patterns in the map.
    pub socket_patterns: usize,
    /// `allow_exe` executables in the map.
    pub userns_exe: usize,
    /// `allow_exe` paths that could not be stat()ed, with the error: they
    /// match nothing.
    pub skipped_exe: Vec<(PathBuf, String)>,
    /// The self-test of each attached hook of an enabled section
    /// ([`crate::selftest`]).
    pub selftest: Vec<crate::selftest::HookCheck>,
}

/// An `allow_exe` file as the kernel identifies it: device (kernel
/// encoding), inode, change time.
pub type ExeKey = (u32, u64, i64, u32);

/// The key of the file at `p` now (following symlinks, as `exec` does).
pub fn exe_key_of(p: &Path) -> std::io::Result<ExeKey> {
    let m = std::fs::metadata(p)?;
    Ok((
        abi::kernel_dev(m.dev()),
        m.ino(),
        m.ctime(),
        m.ctime_nsec() as u32,
    ))
}

/// The policy's userns executables, resolved before anything is touched.
pub(crate) struct Prepared<'a> {
    policy: &'a BpfPolicy,
    exes: Vec<ExeKey>,
    skipped: Vec<(PathBuf, String)>,
}

pub(crate) fn prepare(policy: &BpfPolicy) -> Result<Prepared<'_>, BpfError> {
    policy.validate()?;
    let mut exes = Vec::new();
    let mut skipped = Vec::new();
    for p in &policy.userns.allow_exe {
        match exe_key_of(p) {
            Ok(k) => exes.push(k),
            Err(e) => skipped.push((p.clone(), e.to_string())),
        }
    }
    Ok(Prepared {
        policy,
        exes,
        skipped,
    })
}

/// The policy maps ([`policy_maps`]) by name, from a fresh skeleton or
/// from pins.
pub(crate) struct PolicyMaps<'a>(Vec<(&'static str, &'a dyn MapCore)>);

impl<'a> PolicyMaps<'a> {
    /// Every policy map, found by `find`; an error names a missing one.
    fn find(
        mut find: impl FnMut(&'static str) -> Result<&'a dyn MapCore, BpfError>,
    ) -> Result<PolicyMaps<'a>, BpfError> {
        policy_maps()
            .map(|(name, _)| Ok((name, find(name)?)))
            .collect::<Result<_, _>>()
            .map(PolicyMaps)
    }

    fn get(&self, name: &str) -> Result<&'a dyn MapCore, BpfError> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| missing_map(name))
    }
}

pub(crate) fn read_active(
    active: &dyn MapCore,
    config: &dyn MapCore,
) -> Result<(u32, Config), BpfError> {
    let zero = 0u32.to_ne_bytes();
    let gen = active
        .lookup(&zero, MapFlags::ANY)
        .map_err(bpf_err("reading kg_active", None))?
        .map(|v| abi::u32_at(&v, 0) & 1)
        .unwrap_or(0);
    let cfg = config
        .lookup(&gen.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf_err("reading kg_config", None))?
        .and_then(|v| Config::decode(&v))
        .unwrap_or_default();
    Ok((gen, cfg))
}

/// Fill the inactive generation, then flip `kg_active`. Until the flip the
/// running policy is untouched; an error before it leaves it in force.
/// The bytes come from [`generation_write`]; this only writes them.
pub(crate) fn write_policy(maps: &PolicyMaps<'_>, p: &Prepared<'_>) -> Result<u64, BpfError> {
    let (cur, cur_cfg) = read_active(maps.get(map::ACTIVE)?, maps.get(map::CONFIG)?)?;
    let next = 1 - cur;
    let generation = cur_cfg.generation + 1;
    let w = generation_write(p.policy, &p.exes, next, generation);
    // Stale entries of the inactive generation (from the apply before last).
    for name in GENERATION_KEYED {
        let map = maps.get(name)?;
        let stale: Vec<Vec<u8>> = map
            .keys()
            .filter(|k| abi::key_gen(k) == Some(w.gen))
            .collect();
        for k in stale {
            map.delete(&k).map_err(bpf_err(
                format!("clearing the inactive generation of {name}"),
                None,
            ))?;
        }
    }
    // The entries, then the swap: one 4-byte array write.
    for e in w.entries.iter().chain([&w.activate]) {
        maps.get(e.map)?
            .update(&e.key, &e.value, MapFlags::ANY)
            .map_err(bpf_err(e.what.clone(), None))?;
    }
    Ok(generation)
}

/// Enforce `policy`: load, attach and pin the programs, their links and
/// maps under `pin_dir` (normally [`crate::DEFAULT_PIN_DIR`]), so that
/// enforcement outlives this process. When kgate's links are already
/// pinned there, only the policy is swapped, atomically (see the crate
/// docs); the programs stay attached.
///
/// The policy is validated first ([`BpfPolicy::validate`]); any error
/// leaves the running enforcement as it was: on first apply, everything
/// pinned so far is removed again (nothing stays attached); on re-apply,
/// the active generation is not switched.
pub fn apply(policy: &BpfPolicy, pin_dir: &Path) -> Result<ApplyReport, BpfError> {
    let prepared = prepare(policy)?;
    crate::pindir::check(pin_dir)?;
    let report = |attached_now, hooks: Vec<Hook>, generation| -> Result<ApplyReport, BpfError> {
        let tested: Vec<Hook> = hooks
            .iter()
            .copied()
            .filter(|h| h.section_enabled(policy))
            .collect();
        let selftest = crate::selftest::run(pin_dir, &tested)?;
        let broken: Vec<String> = selftest
            .iter()
            .filter_map(|c| match &c.state {
                crate::selftest::CheckState::Broken(why) => Some(why.clone()),
                _ => None,
            })
            .collect();
        if !broken.is_empty() {
            let detached = attached_now;
            if detached {
                let _ = revert(pin_dir);
            }
            return Err(BpfError::SelfTest { broken, detached });
        }
        Ok(ApplyReport {
            selftest,
            attached_now,
            hooks,
            generation,
            hash: policy.hash.clone(),
            module_requests: policy.modules.allowed_requests.len(),
            socket_patterns: policy.sockets.allow.len(),
            userns_exe: prepared.exes.len(),
            skipped_exe: prepared.skipped.clone(),
        })
    };

    if is_applied(pin_dir) {
        let h: Vec<(&str, MapHandle)> = policy_maps()
            .map(|(name, size)| {
                let m = open_pinned(pin_dir, name)?;
                if m.value_size() as usize != size {
                    return Err(BpfError::Inconsistent {
                        pin_dir: pin_dir.to_owned(),
                        what: format!(
                            "pinned map {name} has {}-byte values, this kgate expects {size} (another kgate version)",
                            m.value_size()
                        ),
                    });
                }
                Ok((name, m))
            })
            .collect::<Result<_, _>>()?;
        let maps = PolicyMaps::find(|name| {
            h.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| m as &dyn MapCore)
                .ok_or_else(|| missing_map(name))
        })?;
        let generation = write_policy(&maps, &prepared)?;
        // A policy that turns [splice] on where it was off needs the
        // splice programs, which the first apply left out: attach them to
        // the pinned maps (the new policy is in force already).
        let missing: Vec<Hook> = hooks_for(policy, available_hooks())
            .into_iter()
            .filter(|h| !link_pin(pin_dir, *h).exists())
            .collect();
        if !missing.is_empty() {
            attach_more(pin_dir, &missing)?;
        }
        let hooks = Hook::ALL
            .into_iter()
            .filter(|h| link_pin(pin_dir, *h).exists())
            .collect();
        return report(false, hooks, generation);
    }

    check_bpffs(pin_dir)?;
    let mut hooks = hooks_for(policy, available_hooks());
    let mut storage = MaybeUninit::uninit();
    let mut retry_storage = MaybeUninit::uninit();
    let mut last_storage = MaybeUninit::uninit();
    // The optional programs need BTF trampolines, and the fmod_ret ones
    // error injection: when the load fails, try without the fmod_ret
    // ones, then without any optional program.
    let mut skel = match open_and_load(&mut storage, &hooks) {
        Ok(skel) => skel,
        Err(first) if hooks.iter().any(|h| h.optional()) => {
            let without_fmod: Vec<Hook> =
                hooks.iter().copied().filter(|h| !h.is_fmod_ret()).collect();
            let retry = if without_fmod.len() < hooks.len() {
                open_and_load(&mut retry_storage, &without_fmod).map(|s| (s, without_fmod))
            } else {
                Err(first)
            };
            match retry {
                Ok((skel, kept)) => {
                    hooks = kept;
                    skel
                }
                Err(_) => {
                    hooks.retain(|h| !h.optional());
                    open_and_load(&mut last_storage, &hooks)
                        .map_err(bpf_err("loading the BPF-LSM programs", Some(ROOT_HINT)))?
                }
            }
        }
        Err(e) => {
            return Err(bpf_err("loading the BPF-LSM programs", Some(ROOT_HINT))(e));
        }
    };
    {
        let object: Vec<Map<'_>> = skel.object().maps().collect();
        let maps = PolicyMaps::find(|name| {
            object
                .iter()
                .find(|m| m.name() == name)
                .map(|m| m as &dyn MapCore)
                .ok_or_else(|| missing_map(name))
        })?;
        write_policy(&maps, &prepared)?;
    }

    // Attach, then pin; on any error remove what was pinned (dropping the
    // links then detaches them).
    let created_dir = !pin_dir.exists();
    let mut pinned: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<(Vec<Link>, Vec<Hook>), BpfError> {
        if created_dir {
            crate::pindir::create(pin_dir)?;
        }
        let (mut links, hooks) = attach_hooks(&skel.progs, &hooks)?;
        {
            let mut object: Vec<MapMut<'_>> = skel.object_mut().maps_mut().collect();
            for name in pinned_maps() {
                let map = object
                    .iter_mut()
                    .find(|m| m.name() == name)
                    .ok_or_else(|| missing_map(name))?;
                let path = map_pin(pin_dir, name);
                map.pin(&path)
                    .map_err(bpf_err(format!("pinning map {}", path.display()), None))?;
                pinned.push(path);
            }
        }
        pin_hooks(&mut skel.progs, pin_dir, &hooks, &mut links, &mut pinned)?;
        Ok((links, hooks))
    })();
    match result {
        Ok((links, hooks)) => {
            // The links are pinned: dropping them keeps the programs
            // attached. The self-test runs against the pins.
            drop(links);
            report(true, hooks, 1)
        }
        Err(e) => {
            for p in pinned.iter().rev() {
                let _ = std::fs::remove_file(p);
            }
            if created_dir {
                let _ = std::fs::remove_dir(pin_dir);
            }
            Err(e)
        }
    }
}

/// Attach the programs of `hooks`, first apply and [`attach_more`] alike:
/// a required hook that does not attach is an error; an optional one is
/// left out (`status` reports it as not attached). Of what attached, only
/// whole groups are kept ([`whole_groups`]). The links and hooks returned
/// are parallel.
fn attach_hooks(
    progs: &KgateProgs<'_>,
    hooks: &[Hook],
) -> Result<(Vec<Link>, Vec<Hook>), BpfError> {
    let mut links = Vec::new();
    let mut attached = Vec::new();
    for h in hooks {
        let prog = hook_prog!([&] progs, *h);
        let link = if h.optional() {
            match prog.attach() {
                Ok(link) => link,
                Err(_) => continue,
            }
        } else {
            prog.attach_lsm().map_err(bpf_err(
                format!("attaching to {}", h.attach_point()),
                Some("is BPF-LSM active? see `kgate_bpf::probe`"),
            ))?
        };
        links.push(link);
        attached.push(*h);
    }
    Ok(whole_groups(links, attached))
}

/// Pin the program and the link of each of `hooks` (parallel to `links`),
/// adding each path to `pinned` as soon as it exists, so that the caller
/// can remove them all on a later error.
fn pin_hooks(
    progs: &mut KgateProgs<'_>,
    pin_dir: &Path,
    hooks: &[Hook],
    links: &mut [Link],
    pinned: &mut Vec<PathBuf>,
) -> Result<(), BpfError> {
    for (h, link) in hooks.iter().zip(links.iter_mut()) {
        let prog = hook_prog!([&mut] progs, *h);
        let path = prog_pin(pin_dir, *h);
        prog.pin(&path)
            .map_err(bpf_err(format!("pinning program {}", path.display()), None))?;
        pinned.push(path);
        let path = link_pin(pin_dir, *h);
        link.pin(&path)
            .map_err(bpf_err(format!("pinning link {}", path.display()), None))?;
        pinned.push(path);
    }
    Ok(())
}

/// Keep only the hooks whose whole [`Hook::group`] is attached (an
/// io_uring mark set but never cleared would decide every io_uring read as
/// a splice; cleared but never set, it would let splices through). The
/// dropped links detach when they are dropped here.
pub(crate) fn whole_groups(links: Vec<Link>, hooks: Vec<Hook>) -> (Vec<Link>, Vec<Hook>) {
    let kept = complete_groups(hooks.clone());
    let kept_links = links
        .into_iter()
        .zip(hooks)
        .filter(|(_, h)| kept.contains(h))
        .map(|(link, _)| link)
        .collect();
    (kept_links, kept)
}

/// The hooks a policy needs: all, except the splice programs when
/// `[splice]` is off (`file_permission` runs on every read and write; a
/// host that does not use the registry should not pay for it).
pub(crate) fn hooks_for(policy: &BpfPolicy, available: Vec<Hook>) -> Vec<Hook> {
    available
        .into_iter()
        .filter(|h| policy.splice.mode != SectionMode::Off || !h.is_splice())
        .collect()
}

/// Load the programs of `hooks` against the maps pinned in `pin_dir`,
/// attach and pin them. On error nothing new stays pinned.
pub(crate) fn attach_more(pin_dir: &Path, hooks: &[Hook]) -> Result<(), BpfError> {
    let mut storage = MaybeUninit::uninit();
    let mut open = KgateSkelBuilder::default()
        .open(&mut storage)
        .map_err(bpf_err("opening the BPF object", None))?;
    for h in Hook::ALL {
        if !hooks.contains(&h) {
            hook_prog!([&mut] open.progs, h).set_autoload(false);
        }
    }
    {
        let mut object: Vec<OpenMapMut<'_>> = open.open_object_mut().maps_mut().collect();
        for name in pinned_maps() {
            let map = object
                .iter_mut()
                .find(|m| m.name() == name)
                .ok_or_else(|| missing_map(name))?;
            map.reuse_pinned_map(map_pin(pin_dir, name))
                .map_err(bpf_err(format!("reusing the pinned map {name}"), None))?;
        }
    }
    let mut skel = open
        .load()
        .map_err(bpf_err("loading the BPF-LSM programs", Some(ROOT_HINT)))?;
    let mut pinned: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<Vec<Link>, BpfError> {
        let (mut links, attached) = attach_hooks(&skel.progs, hooks)?;
        pin_hooks(&mut skel.progs, pin_dir, &attached, &mut links, &mut pinned)?;
        Ok(links)
    })();
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            for p in pinned.iter().rev() {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// Open the object and load it with the programs of `hooks` only.
pub(crate) fn open_and_load<'obj>(
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
    hooks: &[Hook],
) -> Result<crate::skel::KgateSkel<'obj>, libbpf_rs::Error> {
    let mut open = KgateSkelBuilder::default().open(storage)?;
    for h in Hook::ALL {
        if !hooks.contains(&h) {
            hook_prog!([&mut] open.progs, h).set_autoload(false);
        }
    }
    open.load()
}
