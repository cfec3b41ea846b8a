//! Output policy: colour and TTY detection, and the rendering of what the queries return (rows as
//! an aligned table, NDJSON or CSV; the text reports; grep's printers). Queries never print.
//! Bytes from the wire never reach a terminal unescaped: control characters are shown as `\xNN`.

mod calls;
pub mod grep;
pub mod quality;
pub mod rows;
mod search;
pub mod stats;
mod streams;
pub mod table;

pub use rows::{write_csv, write_json, write_rows, TableView};

pub use crate::text::{lossy, ngrep_time, rfc3339, sanitize, short_time};

use std::io::IsTerminal;

/// `--color auto|always|never`; `auto` honours `NO_COLOR` and whether stdout is a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn use_color(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

/// ANSI styles used by the text writers; empty strings when colour is off, so callers never branch.
#[derive(Clone, Copy, Debug)]
pub struct Palette {
    pub header: &'static str,
    pub request: &'static str,
    pub ok: &'static str,
    pub provisional: &'static str,
    pub error: &'static str,
    pub dim: &'static str,
    pub reset: &'static str,
}

impl Palette {
    pub fn new(color: bool) -> Palette {
        if color {
            Palette {
                header: "\x1b[1;36m",
                request: "\x1b[1;33m",
                ok: "\x1b[1;32m",
                provisional: "\x1b[33m",
                error: "\x1b[1;31m",
                dim: "\x1b[2m",
                reset: "\x1b[0m",
            }
        } else {
            Palette {
                header: "",
                request: "",
                ok: "",
                provisional: "",
                error: "",
                dim: "",
                reset: "",
            }
        }
    }

    /// Colour for a SIP status code class.
    pub fn status(&self, code: u16) -> &'static str {
        match code {
            100..=199 => self.provisional,
            200..=299 => self.ok,
            _ => self.error,
        }
    }
}

/// How the row commands print their rows: people get a table, scripts NDJSON or CSV (RFC 4180,
/// a header line naming the same fields as the JSON rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns cut to `width` display columns when set (the terminal's).
    Table {
        color: bool,
        width: Option<usize>,
    },
    Json,
    Csv,
}

/// True when an I/O error means the reader went away (`| head`): we stop quietly with status 0.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Text from the DB for a table cell or report line: sanitised, empty when absent.
pub fn clean(s: Option<&str>) -> String {
    s.map(|s| sanitize(s.as_bytes(), false).into_owned())
        .unwrap_or_default()
}

/// `192.0.2.1:5060`, or `[2001:db8::1]:5060` for IPv6.
pub fn endpoint(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `192.0.2.1:5060 → [2001:db8::1]:5060`
pub fn flow(src_ip: &str, src_port: u16, dst_ip: &str, dst_port: u16) -> String {
    format!(
        "{} → {}",
        endpoint(src_ip, src_port),
        endpoint(dst_ip, dst_port)
    )
}

/// A measured value with `prec` decimals, `-` when there is none.
pub fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_bracket_ipv6() {
        assert_eq!(
            flow("2001:db8::1", 5060, "192.0.2.1", 5061),
            "[2001:db8::1]:5060 → 192.0.2.1:5061"
        );
    }
}
