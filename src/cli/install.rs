//! `completions` and `man`: shell completion scripts and man pages generated from the clap
//! definitions (clap_complete, clap_mangen), so they can never drift from `--help`.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::args::Cli;
use super::EXIT_MATCH;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the script for (bash, zsh, fish; elvish and powershell work too)
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write sipidx.1 and one page per subcommand (sipidx-index.1, ...) into this directory,
    /// created if missing; without it, sipidx.1 goes to stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Print the completion script for one shell to stdout.
pub fn completions(a: CompletionsArgs) -> Result<u8> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, name, &mut out);
    out.flush()?;
    Ok(EXIT_MATCH)
}

/// Print sipidx.1 to stdout, or write every page into `--dir`.
pub fn man(a: ManArgs) -> Result<u8> {
    // no page for clap's `help` subcommand (clap_mangen::generate_to drops it too), so that
    // sipidx.1 on stdout is the same page as the one written into --dir
    let cmd = Cli::command().disable_help_subcommand(true);
    match a.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            // one page per command, as clap_mangen names them: sipidx.1, sipidx-index.1, ...
            let pages = 1 + cmd.get_subcommands().count();
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            eprintln!("sipidx: wrote {pages} man pages into {}", dir.display());
        }
    }
    Ok(EXIT_MATCH)
}
