//! `search` in the aligned table: one line per message, requests and responses coloured.

use super::rows::Columns;
use super::table::{Cell, Column};
use super::{clean, flow, short_time, Palette};
use crate::query::rows::SearchRow;

impl Columns for SearchRow {
    const COLUMNS: &'static [Column] = &[
        Column::fixed("TIME"),
        Column::left("MESSAGE", 6, 24),
        Column::left("FROM", 6, 24),
        Column::left("TO", 6, 24),
        Column::left("RURI", 6, 24),
        Column::left("CALL-ID", 10, 44),
        Column::left("UA", 6, 28),
        Column::left("SRC → DST", 21, 60),
    ];

    fn cells(&self, p: &Palette) -> Vec<Cell> {
        let h = self;
        let (message, style) = match (h.status, &h.method) {
            (Some(code), _) => {
                let reason = clean(h.reason.as_deref());
                (
                    format!("{code} {reason}").trim_end().to_owned(),
                    p.status(code),
                )
            }
            (None, Some(m)) => (clean(Some(m)), p.request),
            (None, None) => (String::new(), ""),
        };
        vec![
            Cell::from(short_time(h.ts)),
            Cell {
                text: message,
                style,
            },
            Cell::from(clean(h.from_user.as_deref())),
            Cell::from(clean(h.to_user.as_deref())),
            Cell::from(clean(h.ruri_user.as_deref())),
            Cell::from(clean(h.call_id.as_deref())),
            Cell::from(clean(h.user_agent.as_deref())),
            Cell::from(clean(Some(&flow(
                &h.src_ip, h.src_port, &h.dst_ip, h.dst_port,
            )))),
        ]
    }
}
