//! Queries over capture files and the index: grep, search, calls, stats.
//! Each takes a validated plan (built by the CLI) and writes to the given output.

pub mod calls;
pub mod filter;
pub mod grep;
pub mod media;
pub mod search;
pub mod stats;

/// Why a DB query failed. Output errors stay `io::Error` underneath, so a closed pipe is found
/// in the chain and ends the run quietly.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

impl From<csv::Error> for QueryError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => QueryError::Io(io),
            other => QueryError::Io(std::io::Error::other(format!("csv: {other:?}"))),
        }
    }
}
