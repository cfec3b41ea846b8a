//! Command-line interface: clap definitions and their validation into plans for the library.
//! Nothing below this module sees clap types.

mod args;
mod capture;
mod grep;
mod index;
mod install;
mod query;
mod verify;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Exit statuses, as documented in README: grep-like.
pub const EXIT_MATCH: u8 = 0;
pub const EXIT_NO_MATCH: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Parse the command line, run it, and map the outcome to an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        args::Command::Grep(a) => grep::run(a),
        args::Command::Index(a) => index::run(a, false),
        args::Command::Reindex(a) => index::run(a, true),
        args::Command::Capture(a) => capture::run(a),
        args::Command::Search(a) => query::run_search(a),
        args::Command::Calls(a) => query::run_calls(a),
        args::Command::Stats(a) => query::run_stats(a),
        args::Command::Streams(a) => query::run_streams(a),
        args::Command::Quality(a) => query::run_quality(a),
        args::Command::Verify(a) => verify::run(a),
        args::Command::Completions(a) => install::completions(a),
        args::Command::Man(a) => install::man(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if crate::output::is_broken_pipe(&e) => ExitCode::from(EXIT_MATCH),
        Err(e) => {
            eprintln!("sipidx: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
