//! Dialogs: every SIP message of one Call-ID folded into a summary (kind, state, key times, PDD).
//! The fold is a commutative, associative merge, so the summary is the same however a capture was
//! split into files, in whatever order files or threads ran, and across indexing runs.
//!
//! Every field is a min, max, sum, bit-or or a capped set. Capped sets keep the N smallest (or
//! largest) entries of the union, which does not depend on the order of insertion; per-CSeq maps
//! keep the earliest time per CSeq. Everything that needs the whole picture (which final response
//! decided the call, whether a CSeq was a re-INVITE) is derived when asked, never while folding.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Message;

use self::capped::{
    final_insert, max_opt, min_opt, per_cseq_insert, set_insert, timed_insert, CAP_CHALLENGES,
    CAP_CSEQS, CAP_TEXT,
};

mod capped;
mod observe;
mod outcome;
#[cfg(test)]
mod tests;

pub use crate::vocab::{DialogKind, DialogState, EndedBy};

/// A point on the time line with a tie-break that does not depend on file order: when two events
/// share a timestamp, the smaller CSeq and then requests before responses come first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub ts_ns: i64,
    pub cseq: u32,
    pub response: bool,
    pub code: u16,
}

/// The earliest time something happened in one transaction (one CSeq number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timed {
    pub cseq: u32,
    pub ts_ns: i64,
}

/// How sure we are that a request shows the caller's side of the dialog (lower is surer):
/// 0 the request that opened it (no To tag), 1 CANCEL (only the caller cancels), 2 ACK, 3 any
/// other in-dialog request (a BYE or re-INVITE may come from either side).
pub const RANK_OPENING: u8 = 0;

/// What the first request of the dialog said: who called whom, from where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FirstRequest {
    /// See [`RANK_OPENING`]; compared first, so an opening request beats an earlier in-dialog one.
    pub rank: u8,
    pub key: EventKey,
    pub method: String,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    pub from_user: Option<String>,
    pub from_host: Option<String>,
    pub from_display: Option<String>,
    pub from_tag: Option<String>,
    pub to_user: Option<String>,
    pub to_host: Option<String>,
    pub ruri_user: Option<String>,
    pub ruri_host: Option<String>,
    pub user_agent: Option<String>,
    pub contact: Option<String>,
    pub x_call_id: Option<String>,
}

/// A final (≥ 200) response; one kept per (CSeq, method, code), the earliest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FinalResponse {
    pub cseq: u32,
    /// The CSeq method (the request this answers).
    pub method: String,
    pub code: u16,
    pub key: EventKey,
    pub reason: String,
}

/// The earliest BYE, with its From tag (to tell who hung up).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bye {
    pub key: EventKey,
    pub from_tag: Option<String>,
}

/// The caller's From tag, from the surest message that carries it; see [`DialogSummary::caller_tag`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallerTag {
    pub rank: u8,
    pub key: EventKey,
    pub tag: String,
}

/// One REGISTER request: the binding it asked for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub cseq: u32,
    pub key: EventKey,
    /// The first Contact value as written.
    pub contact: Option<String>,
    /// `user@host:port` of that Contact, for matching it in the 2xx.
    pub contact_uri: Option<String>,
    /// The Contact's `expires` parameter, else the Expires header (RFC 3261 §10.2.1.1).
    pub expires: Option<u32>,
    /// `Contact: *`: remove every binding.
    pub wildcard: bool,
}

/// One 2xx to REGISTER: the bindings the registrar holds, each with its granted expiry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegisterOk {
    pub cseq: u32,
    pub key: EventKey,
    pub bindings: Vec<(String, Option<u32>)>,
    pub expires_header: Option<u32>,
}

/// Where a message was seen on the wire; the dialog only needs addresses and time.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub ts_ns: i64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
}

/// Bits of [`DialogSummary::methods`]: methods seen in request lines or response CSeqs.
pub mod method_bits {
    pub const INVITE: u16 = 1;
    pub const ACK: u16 = 1 << 1;
    pub const BYE: u16 = 1 << 2;
    pub const CANCEL: u16 = 1 << 3;
    pub const REGISTER: u16 = 1 << 4;
    pub const OPTIONS: u16 = 1 << 5;
    pub const PRACK: u16 = 1 << 6;
    pub const UPDATE: u16 = 1 << 7;
    pub const OTHER: u16 = 1 << 15;

    pub fn of(method: &[u8]) -> u16 {
        match method {
            b"INVITE" => INVITE,
            b"ACK" => ACK,
            b"BYE" => BYE,
            b"CANCEL" => CANCEL,
            b"REGISTER" => REGISTER,
            b"OPTIONS" => OPTIONS,
            b"PRACK" => PRACK,
            b"UPDATE" => UPDATE,
            _ => OTHER,
        }
    }
}

/// The mergeable state of one dialog. `a.merge(b)` equals `b.merge(a)`, and observing messages in
/// any order or grouping gives the same summary. Sets are capped (see the `CAP_*` constants): a
/// dialog with more transactions than that keeps the earliest INVITE transactions and the latest
/// REGISTER transactions, so counts derived from them saturate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DialogSummary {
    pub call_id: String,
    pub first: Option<FirstRequest>,
    pub messages: u32,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    /// Bit set of [`method_bits`].
    pub methods: u16,
    /// INVITEs without a To tag (the initial INVITE and its auth retries): first time per CSeq.
    pub initial_invites: Vec<Timed>,
    /// CSeq numbers of INVITEs inside the dialog (To tag present): re-INVITEs.
    pub reinvite_cseqs: Vec<u32>,
    /// First 18x per INVITE CSeq (forked 18x from several To tags count once).
    pub provisionals: Vec<Timed>,
    pub first_response_ns: Option<i64>,
    /// Final responses to INVITEs, initial and re-INVITEs alike.
    pub invite_finals: Vec<FinalResponse>,
    /// Final responses to other requests except ACK, BYE, CANCEL, PRACK and UPDATE.
    pub other_finals: Vec<FinalResponse>,
    pub acks: Vec<Timed>,
    pub cancels: Vec<Timed>,
    pub bye: Option<Bye>,
    pub caller: Option<CallerTag>,
    /// (CSeq, code) of 401/407 challenges: retransmitted challenges count once.
    pub challenges: Vec<(u32, u16)>,
    pub register_requests: Vec<RegisterRequest>,
    pub register_oks: Vec<RegisterOk>,
    pub user_agents: Vec<String>,
    /// Values of X-Call-ID / X-CID / X-Orig-Call-ID seen on any message.
    pub x_call_ids: Vec<String>,
    /// Values of the extra correlation headers (`CorrelateConfig::headers`), on any message.
    pub correlation_values: Vec<String>,
}

impl DialogSummary {
    pub fn new(call_id: &str) -> Self {
        DialogSummary {
            call_id: call_id.to_string(),
            ..Default::default()
        }
    }

    /// Fold one message of this Call-ID into the summary.
    pub fn observe(&mut self, seen: Seen, msg: &Message<'_>) {
        self.observe_with(seen, msg, &[]);
    }

    /// As [`observe`](Self::observe), also keeping the values of the headers named in
    /// `extra_headers` (`CorrelateConfig::headers`) for leg correlation.
    pub fn observe_with(&mut self, seen: Seen, msg: &Message<'_>, extra_headers: &[String]) {
        let mut one = DialogSummary::default();
        one.observe_alone(seen, msg, extra_headers);
        self.merge(one);
    }

    /// Merge another partial summary of the same Call-ID (commutative and associative).
    pub fn merge(&mut self, o: DialogSummary) {
        if self.call_id.is_empty() {
            self.call_id = o.call_id;
        }
        self.messages = self.messages.saturating_add(o.messages);
        self.start_ns = min_opt(self.start_ns, o.start_ns);
        self.end_ns = max_opt(self.end_ns, o.end_ns);
        self.first = min_opt(self.first.take(), o.first);
        self.methods |= o.methods;
        for t in o.initial_invites {
            timed_insert(&mut self.initial_invites, t);
        }
        for c in o.reinvite_cseqs {
            set_insert(&mut self.reinvite_cseqs, c, CAP_CSEQS, false);
        }
        for t in o.provisionals {
            timed_insert(&mut self.provisionals, t);
        }
        self.first_response_ns = min_opt(self.first_response_ns, o.first_response_ns);
        for f in o.invite_finals {
            final_insert(&mut self.invite_finals, f, false);
        }
        for f in o.other_finals {
            // registrations refresh for days: the latest transactions decide
            final_insert(&mut self.other_finals, f, true);
        }
        for t in o.acks {
            timed_insert(&mut self.acks, t);
        }
        for t in o.cancels {
            timed_insert(&mut self.cancels, t);
        }
        self.bye = min_opt(self.bye.take(), o.bye);
        self.caller = min_opt(self.caller.take(), o.caller);
        for c in o.challenges {
            set_insert(&mut self.challenges, c, CAP_CHALLENGES, true);
        }
        for r in o.register_requests {
            per_cseq_insert(&mut self.register_requests, r, |r| r.cseq);
        }
        for r in o.register_oks {
            per_cseq_insert(&mut self.register_oks, r, |r| r.cseq);
        }
        for ua in o.user_agents {
            set_insert(&mut self.user_agents, ua, CAP_TEXT, false);
        }
        for x in o.x_call_ids {
            set_insert(&mut self.x_call_ids, x, CAP_TEXT, false);
        }
        for x in o.correlation_values {
            set_insert(&mut self.correlation_values, x, CAP_TEXT, false);
        }
    }
}
