//! grep's printers: [`TextSink`] (sipgrep/ngrep-like text), [`JsonSink`] (NDJSON rows) and
//! [`CountSink`] (only the number), each a [`GrepSink`] that the query pushes matches into.
use std::io::{self, Write};

use super::{ngrep_time, sanitize, Palette};
use crate::decode::{Datagram, Mirror};
use crate::query::grep::{GrepOutcome, GrepSink, Match};
use crate::query::rows::{MessageRow, MirrorJson};
use crate::sip;

/// sipgrep-like text: a header line per message (transport, time, flow, notes), then the message.
pub struct TextSink<'w> {
    pub out: &'w mut dyn Write,
    pub palette: Palette,
}

impl GrepSink for TextSink<'_> {
    fn matched(&mut self, m: &Match<'_, '_>) -> io::Result<()> {
        write_text(self.out, &self.palette, m.datagram, m.message, m.mirror)
    }

    fn finish(&mut self, _: &GrepOutcome) -> io::Result<()> {
        self.out.flush()
    }
}

/// One [`MessageRow`] per line.
pub struct JsonSink<'w> {
    pub out: &'w mut dyn Write,
}

impl GrepSink for JsonSink<'_> {
    fn matched(&mut self, m: &Match<'_, '_>) -> io::Result<()> {
        let mut row = MessageRow::new(m.datagram, m.message, m.file.display().to_string());
        row.mirrored_by_hep = m.mirror.map(MirrorJson::from);
        serde_json::to_writer(&mut *self.out, &row).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    fn finish(&mut self, _: &GrepOutcome) -> io::Result<()> {
        self.out.flush()
    }
}

/// Only the number of matching messages, at the end.
pub struct CountSink<'w> {
    pub out: &'w mut dyn Write,
}

impl GrepSink for CountSink<'_> {
    fn matched(&mut self, _: &Match<'_, '_>) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, o: &GrepOutcome) -> io::Result<()> {
        writeln!(self.out, "{}", o.matched)?;
        self.out.flush()
    }
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

fn write_text(
    out: &mut dyn Write,
    p: &Palette,
    dg: &Datagram<'_>,
    msg: &sip::Message<'_>,
    mirror: Option<Mirror>,
) -> io::Result<()> {
    let proto = match dg.transport {
        crate::decode::Transport::Udp => 'U',
        crate::decode::Transport::Tcp => 'T',
        crate::decode::Transport::Sctp => 'S',
    };
    let mut notes = String::new();
    if let Some(e) = dg.encap.name() {
        notes.push_str(&format!(" [{e}"));
        if let Some(v) = dg.vlan {
            notes.push_str(&format!(" vlan={v}"));
        }
        if let Some(id) = dg.hep.and_then(|h| h.capture_id) {
            notes.push_str(&format!(" hep-id={id}"));
        }
        notes.push(']');
    }
    if let Some(m) = mirror {
        match m.capture_id {
            Some(id) => notes.push_str(&format!(" [mirrored hep-id={id}]")),
            None => notes.push_str(" [mirrored hep]"),
        }
    }
    writeln!(
        out,
        "{}{} {} {} -> {}{}{}",
        p.header,
        proto,
        ngrep_time(dg.ts_ns),
        endpoint(dg.src, dg.src_port),
        endpoint(dg.dst, dg.dst_port),
        notes,
        p.reset
    )?;
    let text = sanitize(msg.raw, true);
    let mut lines = text.split('\n');
    if let Some(first) = lines.next() {
        let colour = match msg.status() {
            Some(code) => p.status(code),
            None => p.request,
        };
        writeln!(out, "{}{}{}", colour, first.trim_end_matches('\r'), p.reset)?;
    }
    for line in lines {
        writeln!(out, "{}", line.trim_end_matches('\r'))?;
    }
    writeln!(out)
}
