//! The text report of `stats`: one labelled line per figure, per bucket and for the total.
use std::io::{self, Write};

use super::{clean, rfc3339, Palette};
use crate::query::rows::Counted;
use crate::query::stats::{top, Report, StatsPlan, Tally};

/// Writes the report as text; bucket titles take the palette's header style.
pub fn write_text(
    r: &Report,
    plan: &StatsPlan,
    p: &Palette,
    out: &mut dyn Write,
) -> io::Result<()> {
    if let Some(by) = plan.by {
        for (&start, t) in &r.buckets {
            writeln!(
                out,
                "{}== {} .. {} (UTC){}",
                p.header,
                rfc3339(start),
                rfc3339(start + by.ns()),
                p.reset
            )?;
            write_tally(out, t, plan.top)?;
            writeln!(out)?;
        }
        writeln!(out, "{}== total{}", p.header, p.reset)?;
    }
    write_tally(out, &r.total, plan.top)?;
    writeln!(
        out,
        "{:<15}{} HEP mirrors and {} SPAN duplicates dropped at index time ({} capture files)",
        "dropped", r.hep_mirrors, r.span_duplicates, r.files
    )
}

fn write_tally(out: &mut dyn Write, t: &Tally, n: usize) -> io::Result<()> {
    let reqs: u64 = t.requests.values().sum();
    let resps: u64 = t.responses.values().sum();
    writeln!(
        out,
        "{:<15}{} ({reqs} requests, {resps} responses)",
        "messages", t.messages
    )?;
    let mut methods: Vec<(&String, &u64)> = t.requests.iter().collect();
    methods.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let methods: Vec<String> = methods
        .iter()
        .map(|(m, c)| format!("{} {c}", clean(Some(m))))
        .collect();
    writeln!(out, "{:<15}{}", "methods", methods.join(", "))?;
    let codes: Vec<String> = t
        .responses
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    writeln!(out, "{:<15}{}", "responses", codes.join(", "))?;
    let asr = t.asr_pct().map_or("-".to_owned(), |a| format!("{a:.1} %"));
    writeln!(
        out,
        "{:<15}{} attempts: {} answered, {} failed, {} canceled, {} in progress; ASR {asr}",
        "calls", t.calls, t.answered, t.failed, t.canceled, t.in_progress
    )?;
    match (t.avg_pdd_ms(), t.pdd_max_ms) {
        (Some(avg), Some(max)) => writeln!(
            out,
            "{:<15}avg {avg:.0} ms, max {max:.0} ms over {} calls",
            "PDD", t.pdd_n
        )?,
        _ => writeln!(out, "{:<15}-", "PDD")?,
    }
    writeln!(
        out,
        "{:<15}{}: {} registered, {} failed",
        "registrations", t.registrations, t.registered, t.registrations_failed
    )?;
    writeln!(out, "{:<15}{}", "other dialogs", t.other_dialogs)?;
    let list = |out: &mut dyn Write, title: &str, items: Vec<Counted>| -> io::Result<()> {
        if items.is_empty() {
            return writeln!(out, "{title:<15}-");
        }
        for (i, c) in items.iter().enumerate() {
            let head = if i == 0 { title } else { "" };
            writeln!(out, "{head:<15}{:>8}  {}", c.count, clean(Some(&c.value)))?;
        }
        Ok(())
    };
    list(out, "user agents", top(&t.user_agents, n))?;
    list(out, "sources", top(&t.sources, n))?;
    writeln!(out, "{:<15}{} dialogs", "scanners", t.scanner_dialogs)?;
    list(out, "scanner srcs", top(&t.scanner_sources, n))
}
