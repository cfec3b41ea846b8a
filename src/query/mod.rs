//! Queries over capture files and the index: grep, search, calls, stats.
//! Each takes a validated plan (built by the CLI) and writes to the given output.

pub mod filter;
pub mod grep;
pub mod media;
