//! Compiles `src/bpf/kgate.bpf.c` (which includes one file per concern)
//! with clang and generates the libbpf-rs skeleton into `OUT_DIR`.

use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCES: &[&str] = &[
    "src/bpf/kgate.bpf.c",
    "src/bpf/modules.bpf.c",
    "src/bpf/sockets.bpf.c",
    "src/bpf/userns.bpf.c",
    "src/bpf/splice.bpf.c",
    "src/bpf/kgate.h",
    "src/bpf/vmlinux_min.h",
    "src/bpf/record.bpf.c",
    "src/bpf/record.h",
];

fn main() {
    for s in SOURCES {
        println!("cargo:rerun-if-changed={s}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("kgate.skel.rs");
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("kgate-bpf: unsupported target architecture {other}"),
        Err(_) => "x86",
    };
    // The recorder (kgate record) is its own object: its maps and raw
    // tracepoints have nothing in common with the LSM programs'.
    let out_record = out.with_file_name("record.skel.rs");
    // -mcpu=v3: atomic fetch-and-or/and on the followed-task bitmap (5.12+).
    build("src/bpf/record.bpf.c", &out_record, arch, &["-mcpu=v3"]);
    build("src/bpf/kgate.bpf.c", &out, arch, &[]);
}

fn build(source: &str, out: &std::path::Path, arch: &str, extra: &[&str]) {
    if let Err(e) = SkeletonBuilder::new()
        .source(source)
        .clang_args(
            [
                format!("-D__TARGET_ARCH_{arch}"),
                "-Wall".into(),
                "-O2".into(),
            ]
            .into_iter()
            .chain(extra.iter().map(|s| (*s).to_owned())),
        )
        .build_and_generate(out)
    {
        panic!(
            "kgate-bpf: building the BPF programs failed: {e:#}\n\
             They need clang (>= 11) on PATH (Debian: apt-get install clang llvm libelf-dev \
             zlib1g-dev pkg-config, or run scripts/deps.sh build)."
        );
    }
}
