//! The floor of any `raw_syscalls` recorder, for the `kgate record`
//! overhead benchmark (bench/seccomp.sh): load a BPF object (an empty
//! `raw_tp/sys_enter` program, bench/floor.bpf.c), attach its programs,
//! run a command, detach. Attaching any program to `sys_enter` switches
//! every task on the host to the syscall slow path; what kgate's recorder
//! costs beyond that is its own.
//!
//! Usage: raw_tp_floor OBJECT -- CMD [ARGS...]   (root)

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (obj, cmd) = match args.split_first() {
        Some((obj, rest)) if rest.first().map(String::as_str) == Some("--") && rest.len() > 1 => {
            (obj, &rest[1..])
        }
        _ => {
            eprintln!("usage: raw_tp_floor OBJECT -- CMD [ARGS...]");
            return ExitCode::from(2);
        }
    };
    let open = match libbpf_rs::ObjectBuilder::default().open_file(obj) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("raw_tp_floor: {obj}: {e}");
            return ExitCode::from(1);
        }
    };
    let loaded = match open.load() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("raw_tp_floor: loading {obj}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut links = Vec::new();
    for prog in loaded.progs_mut() {
        match prog.attach() {
            Ok(l) => links.push(l),
            Err(e) => {
                eprintln!("raw_tp_floor: attaching {:?}: {e}", prog.name());
                return ExitCode::from(1);
            }
        }
    }
    let status = Command::new(&cmd[0]).args(&cmd[1..]).status();
    drop(links);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("raw_tp_floor: {}: {s}", cmd[0]);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("raw_tp_floor: {}: {e}", cmd[0]);
            ExitCode::from(1)
        }
    }
}
