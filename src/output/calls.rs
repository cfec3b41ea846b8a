//! `calls` in the aligned table: one line per dialog, state and final status coloured by outcome.

use super::rows::Columns;
use super::table::{Cell, Column};
use super::{clean, flow, short_time, Palette};
use crate::query::rows::CallRow;
use crate::store::DialogState;

impl Columns for CallRow {
    const COLUMNS: &'static [Column] = &[
        Column::fixed("START"),
        Column::fixed("KIND"),
        Column::fixed("STATE"),
        Column::left("FINAL", 3, 24),
        Column::left("FROM", 6, 24),
        Column::left("TO", 6, 24),
        Column::left("RURI", 6, 24),
        Column::fixed_right("DURATION"),
        Column::fixed_right("PDD"),
        Column::fixed_right("MSGS"),
        Column::left("CALL-ID", 10, 44),
        Column::left("UA", 6, 28),
        Column::left("SRC → DST", 21, 60),
    ];

    fn cells(&self, p: &Palette) -> Vec<Cell> {
        let d = self;
        let state_style = match d.state {
            DialogState::Answered | DialogState::Registered => p.ok,
            DialogState::Failed => p.error,
            DialogState::Canceled | DialogState::InProgress => p.provisional,
            DialogState::Unregistered => "",
            DialogState::Final(c) => p.status(c),
        };
        let (final_text, final_style) = match d.final_status {
            Some(c) => (
                format!("{c} {}", clean(d.final_reason.as_deref()))
                    .trim_end()
                    .to_owned(),
                p.status(c),
            ),
            None => (String::new(), ""),
        };
        vec![
            Cell::from(short_time(d.start)),
            Cell::from(d.kind.as_str()),
            Cell {
                text: d.state.to_string(),
                style: state_style,
            },
            Cell {
                text: final_text,
                style: final_style,
            },
            Cell::from(clean(d.from_user.as_deref())),
            Cell::from(clean(d.to_user.as_deref())),
            Cell::from(clean(d.ruri_user.as_deref())),
            Cell::from(d.duration_s.map(|s| format!("{s:.1}s")).unwrap_or_default()),
            Cell::from(d.pdd_ms.map(|s| format!("{s:.0}ms")).unwrap_or_default()),
            Cell::from(d.messages.to_string()),
            Cell::from(clean(Some(&d.call_id))),
            Cell::from(clean(d.user_agent.as_deref())),
            Cell::from(clean(Some(&flow(
                &d.src_ip, d.src_port, &d.dst_ip, d.dst_port,
            )))),
        ]
    }
}
