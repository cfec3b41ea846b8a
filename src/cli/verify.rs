//! `verify` arguments → `index::verify`, and its findings printed as lines or NDJSON.
//! Status 0 when the DB is sound (warnings allowed), 1 when a problem was found.
use std::io::Write;

use anyhow::Result;

use super::args::VerifyArgs;
use super::{EXIT_MATCH, EXIT_NO_MATCH};
use crate::index::verify::{verify, Severity};

pub fn run(a: VerifyArgs) -> Result<u8> {
    let db = &a.db.db;
    if !crate::index::verify::is_db(db) {
        let what = if db.is_dir() {
            "is not a sipidx database (no catalog.json)"
        } else {
            "does not exist"
        };
        anyhow::bail!("{}: {what}", db.display());
    }
    let report = verify(db)?;
    let mut out = std::io::stdout().lock();
    for f in &report.findings {
        if a.json {
            let mut v = serde_json::to_value(f)?;
            v["type"] = v["severity"].take();
            v.as_object_mut().map(|o| o.remove("severity"));
            writeln!(out, "{v}")?;
        } else {
            let tag = match f.severity {
                Severity::Problem => "problem",
                Severity::Warning => "warning",
            };
            // paths and messages may carry bytes from packets (Call-IDs) or odd file names
            let path = crate::text::sanitize(f.path.as_os_str().as_encoded_bytes(), false);
            let msg = crate::text::sanitize(f.message.as_bytes(), false);
            writeln!(out, "{tag}: {}: {path}: {msg}", f.check)?;
        }
    }
    let text_docs = report
        .text_documents
        .map_or("no".to_owned(), |n| n.to_string());
    if a.json {
        let v = serde_json::json!({
            "type": "summary",
            "db": db,
            "sound": report.is_sound(),
            "problems": report.problems(),
            "warnings": report.warnings(),
            "files": report.files,
            "parts": report.parts,
            "messages": report.messages,
            "dialogs": report.dialogs,
            "text_documents": report.text_documents,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{}: {} ({} problems, {} warnings; {} capture files, {} parts, {} messages, {} \
             dialogs, {text_docs} text documents)",
            db.display(),
            if report.is_sound() {
                "sound"
            } else {
                "NOT SOUND"
            },
            report.problems(),
            report.warnings(),
            report.files,
            report.parts,
            report.messages,
            report.dialogs,
        )?;
    }
    out.flush()?;
    Ok(if report.is_sound() {
        EXIT_MATCH
    } else {
        EXIT_NO_MATCH
    })
}
