//! `kgate generate-docs` (hidden): man pages and shell completions, made
//! from the command line's own definition, for the Debian package
//! (`cargo xtask deb`). Not for users: it only writes into the directories
//! it is given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// Write man pages and shell completions of kgate.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write kgate.1 and one kgate-SUBCOMMAND.1 per subcommand here.
    #[arg(long, value_name = "DIR")]
    pub man: Option<PathBuf>,
    /// Write completions for bash (kgate), zsh (_kgate) and fish
    /// (kgate.fish) here.
    #[arg(long, value_name = "DIR")]
    pub completions: Option<PathBuf>,
}

/// Run `kgate generate-docs` over `cmd`, the whole command line.
pub fn run(args: &Args, cmd: clap::Command) -> Result<ExitCode> {
    if let Some(dir) = &args.man {
        man_pages(dir, cmd.clone())?;
    }
    if let Some(dir) = &args.completions {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let path = clap_complete::generate_to(shell, &mut cmd.clone(), "kgate", dir)
                .with_context(|| {
                    format!("cannot write {shell} completions into {}", dir.display())
                })?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kgate.1`, and `kgate-NAME.1` for each visible subcommand (and
/// `kgate-NAME-SUB.1` for theirs).
fn man_pages(dir: &Path, cmd: clap::Command) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = cmd;
    cmd.build();
    write_page(dir, &cmd, "kgate")?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("kgate-{}", sub.get_name());
        write_page(dir, sub, &name)?;
        for subsub in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            if subsub.get_name() == "help" {
                continue;
            }
            write_page(dir, subsub, &format!("{name}-{}", subsub.get_name()))?;
        }
    }
    Ok(())
}

fn write_page(dir: &Path, cmd: &clap::Command, name: &str) -> Result<()> {
    let cmd = cmd
        .clone()
        .name(name.to_owned())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(name.to_uppercase())
        .section("1")
        .source(format!("kgate {}", env!("CARGO_PKG_VERSION")))
        .manual("kgate manual")
        .render(&mut buf)
        .with_context(|| format!("cannot render {name}.1"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
