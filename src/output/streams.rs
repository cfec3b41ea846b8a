//! `streams` as a table: tshark's `rtp,streams` columns plus the call and MOS, in fixed widths
//! (the layout `streams` has always printed, so it overrides the generic aligned table).
use std::io::{self, Write};

use super::rows::TableView;
use super::{endpoint, opt, rfc3339, sanitize, Palette};
use crate::query::rows::StreamRow;

impl TableView for StreamRow {
    fn write_table(
        rows: &[Self],
        p: &Palette,
        _width: Option<usize>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        writeln!(
            out,
            "{}{:<26} {:>21} {:>21} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>5}  call_id{}",
            p.header, "start", "src", "dst", "ssrc", "codec", "pkts", "lost", "loss%", "maxΔ ms",
            "maxJ ms", "meanJ ms", "MOS", p.reset
        )?;
        for r in rows {
            let s = &r.stream;
            writeln!(
                out,
                "{:<26} {:>21} {:>21} 0x{:08X} {:>10} {:>7} {:>7} {:>7.1} {:>9.3} {:>9.3} {:>9.3} {:>5}  {}{}",
                rfc3339(s.start_ns),
                endpoint(&s.src_ip, s.src_port),
                endpoint(&s.dst_ip, s.dst_port),
                s.ssrc,
                sanitize(s.codec.as_deref().unwrap_or(&s.payload).as_bytes(), false),
                s.packets,
                s.lost,
                s.lost_pct,
                s.max_delta_ms,
                s.max_jitter_ms,
                s.mean_jitter_ms,
                opt(s.mos, 2),
                s.call_id
                    .as_deref()
                    .map_or_else(|| "(unmatched)".into(), |c| sanitize(c.as_bytes(), false)),
                if s.possible_capture_loss {
                    "  [possible capture loss]"
                } else {
                    ""
                },
            )?;
        }
        Ok(())
    }
}
