//! Dialog summaries (sip::dialog) to and from the `dialogs` table rows (store::record).
//! The row keeps the full summary as JSON so a later run can extend the dialog exactly.
use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::sip::dialog::{DialogKind as SipKind, DialogSummary};
use crate::sip::scanner::is_scanner_user_agent;
use crate::store::record::{DialogKind, DialogRecord, DialogState, EndedBy};

/// Build the table row. `flooders` are sources over the request-rate threshold in this run.
pub fn dialog_record(
    d: &DialogSummary,
    correlation_id: String,
    flooders: &BTreeSet<IpAddr>,
) -> DialogRecord {
    let first = d.first.as_ref();
    let fin = d.final_response();
    let scanner = d
        .user_agents
        .iter()
        .any(|ua| is_scanner_user_agent(ua.as_bytes()))
        || first.is_some_and(|f| flooders.contains(&f.src_ip));
    DialogRecord {
        call_id: d.call_id.clone(),
        kind: match d.kind() {
            SipKind::Call => DialogKind::Call,
            SipKind::Registration => DialogKind::Registration,
            SipKind::Other => DialogKind::Other,
        },
        state: d
            .state()
            .to_string()
            .parse::<DialogState>()
            .unwrap_or(DialogState::InProgress),
        final_status: fin.map(|f| f.code),
        final_reason: fin.map(|f| f.reason.clone()),
        start_ns: d.start_ns.unwrap_or(0),
        end_ns: d.end_ns.unwrap_or(0),
        invite_ns: d.invite_ns(),
        first_provisional_ns: d.first_provisional_ns(),
        answer_ns: d.answer_ns(),
        ack_ns: d.ack_ns(),
        bye_ns: d.bye_ns(),
        cancel_ns: d.cancel_ns(),
        pdd_ms: d.pdd_ms(),
        setup_ms: d.setup_ms(),
        duration_s: d.duration_s(),
        ended_by: d.ended_by().map(|e| {
            if e == "caller" {
                EndedBy::Caller
            } else {
                EndedBy::Callee
            }
        }),
        reinvites: d.reinvites(),
        auth_challenges: d.auth_challenges(),
        from_user: first.and_then(|f| f.from_user.clone()),
        to_user: first.and_then(|f| f.to_user.clone()),
        ruri_user: first.and_then(|f| f.ruri_user.clone()),
        from_host: first.and_then(|f| f.from_host.clone()),
        to_host: first.and_then(|f| f.to_host.clone()),
        src_ip: first.map(|f| f.src_ip.to_string()).unwrap_or_default(),
        dst_ip: first.map(|f| f.dst_ip.to_string()).unwrap_or_default(),
        src_port: first.map(|f| f.src_port).unwrap_or(0),
        dst_port: first.map(|f| f.dst_port).unwrap_or(0),
        user_agent: first
            .and_then(|f| f.user_agent.clone())
            .or_else(|| d.user_agents.first().cloned()),
        contact: d
            .register_contact()
            .map(str::to_string)
            .or_else(|| first.and_then(|f| f.contact.clone())),
        expires: d.register_expires(),
        messages: d.messages,
        correlation_id,
        scanner,
        worst_mos: None,
        max_loss_pct: None,
        max_jitter_ms: None,
        summary: serde_json::to_string(d).ok(),
    }
}

/// The mergeable summary stored in a row, if the row has one this version can read.
pub fn summary_of(rec: &DialogRecord) -> Option<DialogSummary> {
    rec.summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}
