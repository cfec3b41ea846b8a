//! Errors of the capture readers; each names the file it happened in.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: read error: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a capture file (no pcap or pcapng magic, nor a known compressed format; first bytes {magic})")]
    NotACapture { path: PathBuf, magic: String },
    #[error("{path}: corrupt capture at byte offset {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
}
