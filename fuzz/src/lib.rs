//! The fuzz targets' bodies, one module per target (`fuzz_targets/NAME.rs`
//! only hands libFuzzer's input to `NAME::run`). The same functions replay
//! the committed corpus (`corpus/NAME/`) and every input that once crashed
//! (`regressions/NAME/`) on stable Rust: `cargo test --manifest-path
//! fuzz/Cargo.toml` (tests/replay.rs), which `scripts/test.sh` runs.

/// `modules.builtin.modinfo` (`module.key=value\0` records, read by
/// `tree::read_depmod`) and `modules.builtin` as the CVE attribution reads
/// it (`kgate_score::attr`: module name → source directory).
pub mod builtin_modinfo {
    /// One input.
    pub fn run(data: &[u8]) {
        let _ = kgate_kernel::modinfo::parse_builtin_modinfo(data);
        let _ = kgate_score::attr::parse_builtin_dirs(&String::from_utf8_lossy(data));
    }
}

/// The caches: the fact cache (`kgate_kernel::cache`, bincode) and the
/// object-evidence cache (`kgate_score::objects`, JSON). A bad cache must be
/// ignored, never trusted or crash.
pub mod caches {
    /// One input.
    pub fn run(data: &[u8]) {
        let _ = kgate_kernel::cache::parse_cache(data, "/lib/modules/6.12.0");
        let _ = kgate_score::objects::parse_cache(data);
    }
}

/// `git cat-file --batch` output read from a vulns clone
/// (`kgate_score::import`): `<oid> blob <size>\n`, the contents, a newline;
/// the size is git's (the repository's) word. A blob handed on is never
/// over `MAX_RECORD_BYTES`.
pub mod cat_file_batch {
    use kgate_score::import::{read_cat_file_batch, BatchBlob, MAX_RECORD_BYTES};

    /// One input.
    pub fn run(data: &[u8]) {
        let names: Vec<String> = (0..4)
            .map(|i| format!("cve/published/2024/CVE-2024-{i}.json"))
            .collect();
        let mut reader = data;
        let _ = read_cat_file_batch(&mut reader, &names, |_, _, blob| {
            if let BatchBlob::Contents(b) = blob {
                assert!(b.len() <= MAX_RECORD_BYTES);
                let _ = kgate_score::import::parse_cve_json(b, true, None);
            }
        });
    }
}

/// A CVE table in kgate's CSV layout (`kgate cve import FILE.csv`).
pub mod cve_csv {
    /// One input.
    pub fn run(data: &[u8]) {
        let opts = kgate_score::import::ImportOptions {
            terms: None,
            progress: None,
        };
        let _ = kgate_score::import::parse_csv(
            &String::from_utf8_lossy(data),
            std::path::Path::new("f.csv"),
            &opts,
        );
    }
}

/// The CVE database `cve-db.json` (`kgate_score::db`), written by `kgate
/// cve import` but read from a directory the user names.
pub mod cve_db {
    /// One input.
    pub fn run(data: &[u8]) {
        if let Ok(db) = kgate_score::db::CveDb::from_json(data, std::path::Path::new("cve-db.json"))
        {
            let _ = db.get("CVE-2024-1");
            let _ = db.under_prefix("net/").count();
        }
    }
}

/// One CVE JSON 5 record (the kernel CNA's vulns repository, cvelistV5).
pub mod cve_json {
    /// One input.
    pub fn run(data: &[u8]) {
        let _ = kgate_score::import::parse_cve_json(data, true, None);
        let _ = kgate_score::import::parse_cve_json(data, false, Some("2026-01-01"));
    }
}

/// A compressed module file (`.ko.xz`, `.ko.zst`, `.ko.gz`) through the
/// bounded decompression of the module reader (`ko::decompress`), with a
/// 1 MiB cap: a bomb must stop at the cap, the output never exceed it. The
/// first byte picks the decoder (the reader picks it by file name, so any
/// bytes reach any decoder).
pub mod decompress {
    use kgate_kernel::ko::{decompress, Compression};

    const CAP: u64 = 1 << 20;

    /// One input.
    pub fn run(data: &[u8]) {
        let Some((&which, input)) = data.split_first() else {
            return;
        };
        let compression = match which % 4 {
            0 => Compression::Xz,
            1 => Compression::Zstd,
            2 => Compression::Gzip,
            _ => Compression::None,
        };
        let mut out = Vec::new();
        let result = decompress(compression, input, &mut out, CAP);
        assert!(out.len() as u64 <= CAP + 1, "{} bytes held", out.len());
        if result.is_ok() {
            assert!(out.len() as u64 <= CAP, "{} bytes returned", out.len());
            let _ = kgate_kernel::ko::parse_module_elf(&out);
        }
    }
}

/// depmod's text files (modules.dep, modules.alias, modules.softdep,
/// modules.builtin) and /proc/modules, as read from a `--root` image.
pub mod depmod {
    use kgate_kernel::depmod;

    /// One input.
    pub fn run(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let _ = depmod::parse_modules_dep(&text);
        let _ = depmod::parse_modules_alias(&text);
        let _ = depmod::parse_modules_softdep(&text);
        let _ = depmod::parse_modules_builtin(&text);
        let _ = depmod::parse_proc_modules(&text);
    }
}

/// `kgate hap`: the ftrace `function` tracer's text (`trace_pipe`, or a
/// saved trace) line by line into the collector, and a saved HAP profile
/// (`kgate.hap/1` JSON, `kgate hap --baseline`, `kgate report`).
pub mod hap {
    use kgate_hap::{trace, Collector, Hap};

    /// One input.
    pub fn run(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        for line in text.lines().take(256) {
            let _ = trace::parse_line(line);
        }
        let mut c = Collector::new();
        c.text(&text);
        let _ = c.totals();
        if let Ok(p) = Hap::from_json(&text) {
            let _ = p.compare(&p);
        }
    }
}

/// The `/proc` and `/sys` host facts under `--root`: the LSM list, the
/// lockdown mode, sysctl values (judged by every attack-surface rule), the
/// kernel command line (`lsm=`, `security=`), the effective LSM order,
/// `osrelease`, and the dm/md facts of `/sys/class/block` (`dm/uuid`,
/// `md/level`).
pub mod host_facts {
    use kgate_kernel::{boot, host, sysctl};

    /// One input.
    pub fn run(data: &[u8]) {
        let value = sysctl::parse_value(data);
        for spec in sysctl::ATTACK_SURFACE_SYSCTLS {
            let r = sysctl::SysctlReading::judge(
                spec,
                Some(value.clone()),
                sysctl::SysctlStatus::Unreadable,
                sysctl::SysctlSource::Live,
                None,
            );
            let _ = r.int();
        }
        let text = value.as_str();
        let _ = host::parse_lsm_list(text);
        let _ = host::lockdown_mode(text);
        let _ = host::kernel_version(text);
        for name in ["lsm", "security"] {
            if let Some(order) = host::cmdline_param(text, name) {
                let _ = host::effective_lsm_list(&order, None, text);
            }
        }
        let _ = host::effective_lsm_list(text, None, "6.12.0");
        let _ = boot::dm_modules(text);
        let _ = boot::md_personality(text);
    }
}

/// An initramfs image (`boot::initramfs_modules`): cpio archives back to
/// back, each plain or gzip/zstd/xz-compressed, with zero padding; each
/// decompressed segment capped at 1 MiB here.
pub mod initramfs {
    use std::path::Path;

    use kgate_kernel::bounded::Limit;

    const CAP: Limit = Limit {
        kind: "initramfs segment",
        max: 1 << 20,
    };

    /// One input.
    pub fn run(data: &[u8]) {
        let _ = kgate_kernel::boot::parse_initramfs(data, Path::new("initrd.img"), CAP);
    }
}

/// `/proc/kallsyms` or `kgate hap --kallsyms FILE`: parsed by `kgate-hap`
/// (symbols, modules, lookups by name and address, mapping to subsystems)
/// and scanned by `host` for the error-injection list.
pub mod kallsyms {
    use std::collections::BTreeMap;

    use kgate_hap::{Kallsyms, Mapper};

    /// One input.
    pub fn run(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let _ = kgate_kernel::host::kallsyms_error_injection(&text);
        let syms = Kallsyms::parse(&text);
        let _ = syms.addresses_hidden();
        let dirs = BTreeMap::new();
        let mapper = Mapper::new(&syms, &dirs);
        for s in syms.symbols().iter().take(64) {
            let _ = syms.find(&s.name, Some(s.address));
            let _ = syms.find(&s.name, None);
            let _ = mapper.map(&s.name, Some(s.address.wrapping_add(1)));
        }
    }
}

/// A kernel config (`/boot/config-*`, `/proc/config.gz` contents).
pub mod kernel_config {
    /// One input.
    pub fn run(data: &[u8]) {
        let c = kgate_kernel::config::KernelConfig::parse(&String::from_utf8_lossy(data));
        let _ = c.tristate("CONFIG_BPF_LSM");
        let _ = c.get("CONFIG_LSM");
    }
}

/// A module file's ELF image (after decompression): sections, `.modinfo`,
/// code size, function count. Must never panic or loop on any bytes.
pub mod ko_elf {
    /// One input.
    pub fn run(data: &[u8]) {
        let _ = kgate_kernel::ko::parse_module_elf(data);
    }
}

/// `.modinfo` sections and `modules.builtin.modinfo`: NUL-separated
/// `key=value` strings from a module chosen by whoever built it.
pub mod modinfo {
    /// One input.
    pub fn run(data: &[u8]) {
        let _ = kgate_kernel::modinfo::parse_modinfo(data);
        let _ = kgate_kernel::modinfo::parse_builtin_modinfo(data);
    }
}

/// modprobe.d files of a host or image (`install`, `blacklist`, ...).
pub mod modprobe_conf {
    /// One input.
    pub fn run(data: &[u8]) {
        let mut conf = kgate_kernel::modprobe_conf::ModprobeConf::default();
        conf.add(&String::from_utf8_lossy(data), "fuzz.conf");
    }
}

/// `/proc/self/mountinfo` and `/proc/mounts` (`boot`: the filesystems a
/// host needs to boot), with the kernel's octal escapes.
pub mod mountinfo {
    /// One input.
    pub fn run(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let _ = kgate_kernel::boot::parse_mountinfo(&text);
        let _ = kgate_kernel::boot::parse_proc_mounts(&text);
    }
}

/// A policy file (TOML). A policy that parses must render and parse again
/// to the same hash: the canonical form is a fixed point.
pub mod policy {
    /// One input.
    pub fn run(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(loaded) = kgate_policy::Policy::parse(text, "fuzz.toml") {
            let again = kgate_policy::Policy::parse(&loaded.policy.to_toml(), "fuzz.toml")
                .expect("the canonical form of a valid policy parses");
            assert_eq!(again.policy.hash(), loaded.policy.hash());
        }
    }
}

/// A recorded workload profile (`kgate record -o FILE`, JSON), as merged
/// from a fleet.
pub mod profile {
    /// One input.
    pub fn run(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(p) =
            kgate_policy::profile::Profile::from_json(text, std::path::Path::new("f.json"))
        {
            let _ = p.syscall_names();
        }
    }
}

/// A record from the BPF-LSM event ring buffer (`struct kg_event`), as
/// `kgate events` reads it, with a clock offset from the input too.
pub mod bpf_event {
    /// One input.
    pub fn run(data: &[u8]) {
        let (offset, record) = match data.split_first_chunk::<16>() {
            Some((o, rest)) => (i128::from_ne_bytes(*o), rest),
            None => (0, data),
        };
        let _ = kgate_bpf::decode_event(record, offset);
    }
}

/// Every target: its name (the `[[bin]]` and the corpus directory) and its body.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("bpf_event", bpf_event::run),
    ("builtin_modinfo", builtin_modinfo::run),
    ("caches", caches::run),
    ("cat_file_batch", cat_file_batch::run),
    ("cve_csv", cve_csv::run),
    ("cve_db", cve_db::run),
    ("cve_json", cve_json::run),
    ("decompress", decompress::run),
    ("depmod", depmod::run),
    ("hap", hap::run),
    ("host_facts", host_facts::run),
    ("initramfs", initramfs::run),
    ("kallsyms", kallsyms::run),
    ("kernel_config", kernel_config::run),
    ("ko_elf", ko_elf::run),
    ("modinfo", modinfo::run),
    ("modprobe_conf", modprobe_conf::run),
    ("mountinfo", mountinfo::run),
    ("policy", policy::run),
    ("profile", profile::run),
];
