//! The one integration-test binary: every module runs the built `sipidx` on real and crafted
//! captures. One binary links arrow, parquet and tantivy once instead of once per test file.

mod util;

mod capture;
mod cli;
mod crafted;
mod dedup;
mod hostile;
mod index;
mod media;
mod queries;
mod verify;
