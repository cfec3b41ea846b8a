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

use super::lex::parse_u32;
use super::{Message, NameAddr, StartLine};

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

const CAP_CSEQS: usize = 32;
const CAP_REGISTER: usize = 8;
const CAP_TEXT: usize = 8;
const CAP_CHALLENGES: usize = 256;

/// Inserts into a sorted set capped at `cap`, keeping the smallest entries (or the largest with
/// `keep_largest`): the k extreme entries of a union do not depend on insertion order.
fn set_insert<T: Ord>(v: &mut Vec<T>, x: T, cap: usize, keep_largest: bool) {
    if let Err(pos) = v.binary_search(&x) {
        v.insert(pos, x);
        if v.len() > cap {
            if keep_largest {
                v.remove(0);
            } else {
                v.pop();
            }
        }
    }
}

/// Per-CSeq earliest time, capped to the smallest CSeqs.
fn timed_insert(v: &mut Vec<Timed>, t: Timed) {
    match v.binary_search_by_key(&t.cseq, |e| e.cseq) {
        Ok(i) => v[i].ts_ns = v[i].ts_ns.min(t.ts_ns),
        Err(pos) => {
            v.insert(pos, t);
            v.truncate(CAP_CSEQS);
        }
    }
}

/// One entry per (CSeq, method, code), the earliest (ties by reason text); capped by CSeq.
fn final_insert(v: &mut Vec<FinalResponse>, f: FinalResponse, keep_largest: bool) {
    if let Some(e) = v
        .iter_mut()
        .find(|e| e.cseq == f.cseq && e.code == f.code && e.method == f.method)
    {
        if (f.key, &f.reason) < (e.key, &e.reason) {
            *e = f;
        }
        return;
    }
    set_insert(v, f, CAP_CSEQS, keep_largest);
}

/// One entry per CSeq (retransmissions differ only in time), the smallest; latest CSeqs kept.
fn per_cseq_insert<T: Ord + Clone>(v: &mut Vec<T>, x: T, cseq: impl Fn(&T) -> u32) {
    if let Some(e) = v.iter_mut().find(|e| cseq(e) == cseq(&x)) {
        if x < *e {
            *e = x;
        }
        return;
    }
    set_insert(v, x, CAP_REGISTER, true);
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// `user@host:port` with the host lower-cased: enough to match a REGISTER's Contact in its 2xx
/// (RFC 3261 §10.3 compares URIs; parameters such as `line=` are kept by registrars anyway).
fn binding_key(value: &[u8]) -> Option<(String, Option<u32>)> {
    let na = NameAddr::parse(value)?;
    let uri = na.uri?;
    let mut key = String::new();
    if let Some(u) = uri.user {
        key.push_str(&String::from_utf8_lossy(u));
        key.push('@');
    }
    key.push_str(&String::from_utf8_lossy(uri.host).to_ascii_lowercase());
    if let Some(p) = uri.port {
        key.push(':');
        key.push_str(&p.to_string());
    }
    Some((key, na.param("expires").and_then(parse_u32)))
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

    fn observe_alone(&mut self, seen: Seen, msg: &Message<'_>, extra_headers: &[String]) {
        let ts = seen.ts_ns;
        self.messages = 1;
        self.start_ns = Some(ts);
        self.end_ns = Some(ts);
        let cseq = msg.cseq.map(|c| c.number).unwrap_or(0);
        let cseq_method = msg.cseq.map(|c| c.method).unwrap_or(b"");
        let to_tag = msg.to.and_then(|t| t.tag);
        let from_tag = text(msg.from.and_then(|f| f.tag));
        if let Some(ua) = msg.user_agent.or(msg.server) {
            self.user_agents
                .push(String::from_utf8_lossy(ua).into_owned());
        }
        if let Some(x) = msg.x_call_id {
            self.x_call_ids
                .push(String::from_utf8_lossy(x).into_owned());
        }
        for name in extra_headers {
            for v in msg.headers_named(name) {
                set_insert(
                    &mut self.correlation_values,
                    String::from_utf8_lossy(v).into_owned(),
                    CAP_TEXT,
                    false,
                );
            }
        }
        match msg.start {
            StartLine::Request { method, .. } => {
                self.methods |= method_bits::of(method);
                let key = EventKey {
                    ts_ns: ts,
                    cseq,
                    response: false,
                    code: 0,
                };
                let rank = match method {
                    b"CANCEL" => 1,
                    b"ACK" => 2,
                    _ if to_tag.is_none() => RANK_OPENING,
                    _ => 3,
                };
                let ruri = msg.request_uri();
                let from_uri = msg.from.and_then(|f| f.uri);
                let to_uri = msg.to.and_then(|f| f.uri);
                self.first = Some(FirstRequest {
                    rank,
                    key,
                    method: String::from_utf8_lossy(method).into_owned(),
                    src_ip: seen.src_ip,
                    src_port: seen.src_port,
                    dst_ip: seen.dst_ip,
                    dst_port: seen.dst_port,
                    from_user: text(from_uri.and_then(|u| u.user)),
                    from_host: text(from_uri.map(|u| u.host)),
                    from_display: text(msg.from.and_then(|f| f.display_name)),
                    from_tag: from_tag.clone(),
                    to_user: text(to_uri.and_then(|u| u.user)),
                    to_host: text(to_uri.map(|u| u.host)),
                    ruri_user: text(ruri.and_then(|u| u.user)),
                    ruri_host: text(ruri.map(|u| u.host)),
                    user_agent: text(msg.user_agent),
                    contact: text(msg.contact),
                    x_call_id: text(msg.x_call_id),
                });
                let timed = Timed { cseq, ts_ns: ts };
                match method {
                    b"INVITE" if to_tag.is_none() => {
                        self.initial_invites.push(timed);
                        self.set_caller(0, key, &from_tag);
                    }
                    b"INVITE" => self.reinvite_cseqs.push(cseq),
                    b"ACK" => {
                        self.acks.push(timed);
                        self.set_caller(2, key, &from_tag);
                    }
                    b"CANCEL" => {
                        self.cancels.push(timed);
                        self.set_caller(1, key, &from_tag);
                    }
                    b"BYE" => {
                        self.bye = Some(Bye {
                            key,
                            from_tag: from_tag.clone(),
                        })
                    }
                    b"REGISTER" => {
                        let wildcard = msg.contact.is_some_and(|c| c == b"*");
                        let binding = msg.contact.filter(|_| !wildcard).and_then(binding_key);
                        self.register_requests.push(RegisterRequest {
                            cseq,
                            key,
                            contact: text(msg.contact),
                            expires: binding.as_ref().and_then(|b| b.1).or(msg.expires),
                            contact_uri: binding.map(|b| b.0),
                            wildcard,
                        });
                    }
                    _ => {}
                }
            }
            StartLine::Response { code, reason } => {
                self.methods |= method_bits::of(cseq_method);
                let key = EventKey {
                    ts_ns: ts,
                    cseq,
                    response: true,
                    code,
                };
                self.first_response_ns = Some(ts);
                if code == 401 || code == 407 {
                    self.challenges.push((cseq, code));
                }
                let fin = || FinalResponse {
                    cseq,
                    method: String::from_utf8_lossy(cseq_method).into_owned(),
                    code,
                    key,
                    reason: String::from_utf8_lossy(reason).into_owned(),
                };
                match cseq_method {
                    b"INVITE" => {
                        // A response keeps the request's From: the caller's, unless this answers
                        // a re-INVITE from the callee; rank 2 lets a seen INVITE or CANCEL win.
                        self.set_caller(2, key, &from_tag);
                        if (180..=189).contains(&code) {
                            self.provisionals.push(Timed { cseq, ts_ns: ts });
                        }
                        if code >= 200 {
                            self.invite_finals.push(fin());
                        }
                    }
                    b"ACK" | b"BYE" | b"CANCEL" | b"PRACK" | b"UPDATE" => {}
                    _ if code >= 200 => {
                        if cseq_method == b"REGISTER" && (200..300).contains(&code) {
                            self.register_oks.push(RegisterOk {
                                cseq,
                                key,
                                bindings: msg
                                    .header_values("Contact")
                                    .filter_map(binding_key)
                                    .take(CAP_REGISTER)
                                    .collect(),
                                expires_header: msg.expires,
                            });
                        }
                        self.other_finals.push(fin());
                    }
                    _ => {}
                }
            }
        }
    }

    fn set_caller(&mut self, rank: u8, key: EventKey, tag: &Option<String>) {
        if let Some(tag) = tag {
            self.caller = Some(CallerTag {
                rank,
                key,
                tag: tag.clone(),
            });
        }
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

    pub fn kind(&self) -> DialogKind {
        use method_bits as m;
        match self.first.as_ref().filter(|f| f.rank == RANK_OPENING) {
            Some(f) if f.method == "INVITE" => DialogKind::Call,
            Some(f) if f.method == "REGISTER" => DialogKind::Registration,
            Some(_) => DialogKind::Other,
            // seen from the middle: ACK, BYE, CANCEL, PRACK and UPDATE only live in INVITE dialogs
            None if self.methods & (m::INVITE | m::ACK | m::BYE | m::CANCEL | m::PRACK) != 0 => {
                DialogKind::Call
            }
            None if self.methods & m::REGISTER != 0 => DialogKind::Registration,
            None => DialogKind::Other,
        }
    }

    /// Whether an INVITE with this CSeq belongs to the initial INVITE (or its auth retries) rather
    /// than a re-INVITE. A CSeq seen only in responses is taken as initial unless it lies above
    /// every initial INVITE seen (then it is a later in-dialog transaction).
    fn is_initial_cseq(&self, cseq: u32) -> bool {
        let initial = self.initial_invites.iter().any(|t| t.cseq == cseq);
        if initial {
            return true;
        }
        if self.reinvite_cseqs.contains(&cseq) {
            return false;
        }
        self.initial_invites
            .iter()
            .map(|t| t.cseq)
            .max()
            .is_none_or(|m| cseq <= m)
    }

    /// The earliest 2xx to the initial INVITE (a re-INVITE's 2xx does not answer a call).
    pub fn answer(&self) -> Option<&FinalResponse> {
        self.invite_finals
            .iter()
            .filter(|f| (200..300).contains(&f.code) && self.is_initial_cseq(f.cseq))
            .min_by_key(|f| f.key)
    }

    /// The main request's method: the opening request's, else INVITE or REGISTER when seen.
    fn main_method(&self) -> Option<&str> {
        match self.first.as_ref().filter(|f| f.rank == RANK_OPENING) {
            Some(f) => Some(&f.method),
            None => match self.kind() {
                DialogKind::Call => Some("INVITE"),
                DialogKind::Registration => Some("REGISTER"),
                DialogKind::Other => None,
            },
        }
    }

    /// The final response that decided the dialog. Calls: the earliest 2xx to the initial INVITE,
    /// else the earliest final response of the last initial-INVITE transaction (highest CSeq).
    /// Others: the earliest final response of the last transaction of the main method.
    pub fn final_response(&self) -> Option<&FinalResponse> {
        if self.kind() == DialogKind::Call {
            if let Some(ok) = self.answer() {
                return Some(ok);
            }
            return last_transaction(
                self.invite_finals
                    .iter()
                    .filter(|f| self.is_initial_cseq(f.cseq)),
            );
        }
        let main = self.main_method();
        last_transaction(
            self.other_finals
                .iter()
                .filter(|f| main.is_none_or(|m| f.method == m)),
        )
    }

    /// Calls: `answered` (a 2xx to the initial INVITE, or a re-INVITE or BYE, which only exist in
    /// an established dialog), `canceled` (a CANCEL of the last INVITE transaction before its final
    /// response, or a 487), `failed` (any other final ≥ 300, including a challenge never retried),
    /// else `in_progress`. Registrations: the outcome of the last REGISTER transaction with a final
    /// response: `registered`, `unregistered` (expires 0 asked or granted, or `Contact: *`),
    /// `failed`. Others: the final status code, or `in_progress`.
    pub fn state(&self) -> DialogState {
        let fin = self.final_response();
        match self.kind() {
            DialogKind::Call => {
                if self.answer().is_some() {
                    return DialogState::Answered;
                }
                let last_cancel = self.cancels.iter().max_by_key(|t| t.cseq);
                let last_invite = self.initial_invites.iter().map(|t| t.cseq).max();
                match (fin, last_cancel) {
                    (Some(f), _) if f.code == 487 => DialogState::Canceled,
                    (Some(f), Some(c))
                        if c.cseq > f.cseq || (c.cseq == f.cseq && c.ts_ns <= f.key.ts_ns) =>
                    {
                        DialogState::Canceled
                    }
                    (None, Some(_)) => DialogState::Canceled,
                    // an auth retry (or other new attempt) went out after this final
                    (Some(f), _) if last_invite.is_some_and(|i| i > f.cseq) => {
                        DialogState::InProgress
                    }
                    (Some(_), _) => DialogState::Failed,
                    (None, None) if !self.reinvite_cseqs.is_empty() || self.bye.is_some() => {
                        DialogState::Answered
                    }
                    (None, None) => DialogState::InProgress,
                }
            }
            DialogKind::Registration => {
                let Some(f) = fin else {
                    return DialogState::InProgress;
                };
                let later_request = self.register_requests.iter().any(|r| r.cseq > f.cseq);
                match f.code {
                    200..=299 if self.register_expires() == Some(0) => DialogState::Unregistered,
                    200..=299 => DialogState::Registered,
                    _ if later_request => DialogState::InProgress,
                    _ => DialogState::Failed,
                }
            }
            DialogKind::Other => match fin {
                Some(f) => DialogState::Final(f.code),
                None => DialogState::InProgress,
            },
        }
    }

    /// The 2xx of the deciding REGISTER transaction and the request it answers (when seen).
    fn register_outcome(&self) -> Option<(&RegisterOk, Option<&RegisterRequest>)> {
        let fin = self.final_response()?;
        let ok = self.register_oks.iter().find(|o| o.cseq == fin.cseq)?;
        let req = self.register_requests.iter().find(|r| r.cseq == fin.cseq);
        Some((ok, req))
    }

    /// Seconds the registrar granted in the deciding 2xx: the `expires` of the Contact the
    /// request registered, else the 2xx's Expires header, else its only binding's `expires`,
    /// else what the request asked for (RFC 3261 §10.2.4). 0 when the request removed bindings.
    pub fn register_expires(&self) -> Option<u32> {
        let (ok, req) = self.register_outcome()?;
        if let Some(r) = req {
            if r.wildcard || r.expires == Some(0) {
                return Some(0);
            }
        }
        let matched = req
            .and_then(|r| r.contact_uri.as_ref())
            .and_then(|uri| ok.bindings.iter().find(|(b, _)| b == uri))
            .and_then(|(_, e)| *e);
        let single = match ok.bindings.as_slice() {
            [(_, e)] => *e,
            _ => None,
        };
        matched
            .or(ok.expires_header)
            .or(single)
            .or(req.and_then(|r| r.expires))
    }

    /// The Contact of the deciding REGISTER, else of the latest REGISTER seen.
    pub fn register_contact(&self) -> Option<&str> {
        let by_outcome = self
            .register_outcome()
            .and_then(|(_, r)| r)
            .and_then(|r| r.contact.as_deref());
        by_outcome.or_else(|| {
            self.register_requests
                .iter()
                .max_by_key(|r| r.cseq)
                .and_then(|r| r.contact.as_deref())
        })
    }

    /// The first INVITE of the call (auth retries included), as the caller dialed.
    pub fn invite_ns(&self) -> Option<i64> {
        self.initial_invites.iter().map(|t| t.ts_ns).min()
    }

    fn invite_of(&self, cseq: u32) -> Option<i64> {
        self.initial_invites
            .iter()
            .find(|t| t.cseq == cseq)
            .map(|t| t.ts_ns)
    }

    /// The first 18x to the initial INVITE.
    pub fn first_provisional(&self) -> Option<Timed> {
        self.provisionals
            .iter()
            .filter(|t| self.is_initial_cseq(t.cseq))
            .min_by_key(|t| (t.ts_ns, t.cseq))
            .copied()
    }

    pub fn first_provisional_ns(&self) -> Option<i64> {
        self.first_provisional().map(|t| t.ts_ns)
    }

    /// Post-dial delay: INVITE → first 18x, or → the final response when no 18x came (not for a
    /// canceled call or a bare challenge: the caller, not the network, ended those). Measured
    /// from the INVITE of the same transaction (CSeq), so a 401/407 round trip and the time the
    /// caller took to retry with credentials are not counted as network delay.
    pub fn pdd_ms(&self) -> Option<f64> {
        let (cseq, end) = match self.first_provisional() {
            Some(p) => (p.cseq, p.ts_ns),
            None => {
                let f = self.final_response()?;
                if matches!(f.code, 401 | 407 | 487) || self.state() == DialogState::Canceled {
                    return None;
                }
                (f.cseq, f.key.ts_ns)
            }
        };
        let start = self.invite_of(cseq)?;
        (end >= start).then(|| (end - start) as f64 / 1e6)
    }

    /// Setup time: the answered INVITE transaction's INVITE → its 2xx.
    pub fn setup_ms(&self) -> Option<f64> {
        let a = self.answer()?;
        let start = self.invite_of(a.cseq)?;
        (a.key.ts_ns >= start).then(|| (a.key.ts_ns - start) as f64 / 1e6)
    }

    pub fn answer_ns(&self) -> Option<i64> {
        self.answer().map(|a| a.key.ts_ns)
    }

    /// The ACK of the answering 2xx (not the ACK of a 407 or of a failure).
    pub fn ack_ns(&self) -> Option<i64> {
        let cseq = self.answer()?.cseq;
        self.acks.iter().find(|t| t.cseq == cseq).map(|t| t.ts_ns)
    }

    pub fn bye_ns(&self) -> Option<i64> {
        self.bye.as_ref().map(|b| b.key.ts_ns)
    }

    pub fn cancel_ns(&self) -> Option<i64> {
        self.cancels.iter().map(|t| t.ts_ns).min()
    }

    /// Call duration: 2xx → BYE.
    pub fn duration_s(&self) -> Option<f64> {
        let a = self.answer_ns()?;
        let b = self.bye_ns()?;
        (b >= a).then(|| (b - a) as f64 / 1e9)
    }

    /// The caller's From tag: from the initial INVITE, else a CANCEL, else the earliest ACK or
    /// INVITE response (right unless the only ones seen belong to a re-INVITE from the callee).
    pub fn caller_tag(&self) -> Option<&str> {
        self.caller.as_ref().map(|c| c.tag.as_str())
    }

    /// `caller` when the BYE's From tag is the caller's, else `callee`.
    pub fn ended_by(&self) -> Option<EndedBy> {
        let bye = self.bye.as_ref()?;
        let caller = self.caller_tag()?;
        Some(if bye.from_tag.as_deref() == Some(caller) {
            EndedBy::Caller
        } else {
            EndedBy::Callee
        })
    }

    pub fn reinvites(&self) -> u32 {
        self.reinvite_cseqs.len() as u32
    }

    /// 401/407 responses, one per challenged transaction and code.
    pub fn auth_challenges(&self) -> u32 {
        self.challenges.len() as u32
    }
}

/// The earliest final of the highest CSeq.
fn last_transaction<'a>(
    finals: impl Iterator<Item = &'a FinalResponse> + Clone,
) -> Option<&'a FinalResponse> {
    let max_cseq = finals.clone().map(|f| f.cseq).max()?;
    finals.filter(|f| f.cseq == max_cseq).min_by_key(|f| f.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse;
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    const CALLER: &str = "10.0.0.1";
    const CALLEE: &str = "10.0.0.2";

    /// A message with the usual headers; `to_tag` and `extra` as given.
    fn sip(
        start: &str,
        cseq: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        reverse: bool,
        extra: &[&str],
    ) -> Vec<u8> {
        let (from, to) = ("<sip:alice@a.example>", "<sip:bob@b.example>");
        let (from_tag, to_tag) = (Some(from_tag), to_tag);
        // a request from the callee swaps From and To
        let (f, ft, t, tt) = if reverse {
            (to, to_tag, from, from_tag)
        } else {
            (from, from_tag, to, to_tag)
        };
        let mut s = String::new();
        let _ = write!(
            s,
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
        );
        let _ = write!(s, "From: {f}");
        if let Some(tag) = ft {
            let _ = write!(s, ";tag={tag}");
        }
        let _ = write!(s, "\r\nTo: {t}");
        if let Some(tag) = tt {
            let _ = write!(s, ";tag={tag}");
        }
        let _ = write!(s, "\r\nCall-ID: c1@a.example\r\nCSeq: {cseq}\r\n");
        for h in extra {
            let _ = write!(s, "{h}\r\n");
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s.into_bytes()
    }

    struct Flow(Vec<(i64, bool, Vec<u8>)>);

    impl Flow {
        fn new() -> Self {
            Flow(Vec::new())
        }
        /// `ms` after start; `up` = sent by the caller.
        fn add(&mut self, ms: i64, up: bool, m: Vec<u8>) -> &mut Self {
            self.0.push((ms * 1_000_000, up, m));
            self
        }
        fn summaries(&self) -> Vec<DialogSummary> {
            self.0
                .iter()
                .map(|(ts, up, m)| {
                    let (a, b) = (CALLER.parse().unwrap(), CALLEE.parse().unwrap());
                    let (src_ip, dst_ip) = if *up { (a, b) } else { (b, a) };
                    let seen = Seen {
                        ts_ns: *ts,
                        src_ip,
                        src_port: 5060,
                        dst_ip,
                        dst_port: 5060,
                    };
                    let mut d = DialogSummary::new("c1@a.example");
                    d.observe(seen, &parse(m).unwrap());
                    d
                })
                .collect()
        }
        /// Folded in order, and checked equal to reverse order and to shuffled partial merges.
        fn fold(&self) -> DialogSummary {
            let parts = self.summaries();
            let forward = fold_all(parts.clone());
            let mut rev = parts.clone();
            rev.reverse();
            assert_eq!(forward, fold_all(rev), "reverse order");
            for seed in 1..20 {
                assert_eq!(forward, random_split_merge(&parts, seed), "seed {seed}");
            }
            forward
        }
    }

    fn fold_all(parts: Vec<DialogSummary>) -> DialogSummary {
        let mut d = DialogSummary::default();
        for p in parts {
            d.merge(p);
        }
        d
    }

    /// splitmix64: enough randomness to split and shuffle deterministically.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                v.swap(i, self.below(i + 1));
            }
        }
    }

    /// Shuffle the messages, cut them into random chunks (files, threads), fold each chunk,
    /// then merge the partial summaries pairwise in random order.
    fn random_split_merge(parts: &[DialogSummary], seed: u64) -> DialogSummary {
        let mut rng = Rng(seed);
        let mut v = parts.to_vec();
        rng.shuffle(&mut v);
        let mut chunks: Vec<DialogSummary> = Vec::new();
        while !v.is_empty() {
            let n = 1 + rng.below(v.len().min(5));
            chunks.push(fold_all(v.drain(..n).collect()));
        }
        while chunks.len() > 1 {
            let a = chunks.swap_remove(rng.below(chunks.len()));
            let i = rng.below(chunks.len());
            let mut b = std::mem::take(&mut chunks[i]);
            b.merge(a);
            chunks[i] = b;
        }
        chunks.pop().unwrap_or_default()
    }

    const INV: &str = "INVITE sip:bob@b.example SIP/2.0";

    fn ms(d: Option<f64>) -> Option<i64> {
        d.map(|x| x.round() as i64)
    }

    #[test]
    fn auth_retry_then_answered() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                40,
                false,
                sip(
                    "SIP/2.0 407 Proxy Authentication Required",
                    "1 INVITE",
                    "ft",
                    Some("px"),
                    false,
                    &["Proxy-Authenticate: Digest realm=\"b\""],
                ),
            )
            .add(
                45,
                true,
                sip(
                    "ACK sip:bob@b.example SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("px"),
                    false,
                    &[],
                ),
            )
            .add(
                60,
                true,
                sip(
                    INV,
                    "2 INVITE",
                    "ft",
                    None,
                    false,
                    &["Proxy-Authorization: Digest username=\"alice\""],
                ),
            )
            .add(
                70,
                false,
                sip("SIP/2.0 100 Trying", "2 INVITE", "ft", None, false, &[]),
            )
            .add(
                300,
                false,
                sip(
                    "SIP/2.0 180 Ringing",
                    "2 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                2300,
                false,
                sip(
                    "SIP/2.0 200 OK",
                    "2 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &["Contact: <sip:bob@10.0.0.2>"],
                ),
            )
            .add(
                2310,
                true,
                sip(
                    "ACK sip:bob@10.0.0.2 SIP/2.0",
                    "2 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                62310,
                true,
                sip(
                    "BYE sip:bob@10.0.0.2 SIP/2.0",
                    "3 BYE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                62320,
                false,
                sip("SIP/2.0 200 OK", "3 BYE", "ft", Some("tt"), false, &[]),
            );
        let d = f.fold();
        assert_eq!(d.kind(), DialogKind::Call);
        assert_eq!(d.state(), DialogState::Answered);
        assert_eq!(d.state().to_string(), "answered");
        assert_eq!(d.auth_challenges(), 1);
        assert_eq!(d.messages, 10);
        assert_eq!(d.invite_ns(), Some(0));
        assert_eq!(d.final_response().map(|f| (f.cseq, f.code)), Some((2, 200)));
        // PDD and setup from the credentialed INVITE, not across the 407 round trip
        assert_eq!(ms(d.pdd_ms()), Some(240));
        assert_eq!(ms(d.setup_ms()), Some(2240));
        assert_eq!(d.ack_ns(), Some(2_310_000_000));
        assert_eq!(d.duration_s(), Some(60.01));
        assert_eq!(d.ended_by(), Some(EndedBy::Caller));
        assert_eq!(d.reinvites(), 0);
        let first = d.first.as_ref().unwrap();
        assert_eq!((first.method.as_str(), first.key.cseq), ("INVITE", 1));
        assert_eq!(first.from_user.as_deref(), Some("alice"));
        assert_eq!(first.src_ip.to_string(), CALLER);
    }

    #[test]
    fn cancel_before_answer_is_canceled() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                10,
                false,
                sip("SIP/2.0 100 Trying", "1 INVITE", "ft", None, false, &[]),
            )
            .add(
                500,
                false,
                sip(
                    "SIP/2.0 180 Ringing",
                    "1 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                3000,
                true,
                sip(
                    "CANCEL sip:bob@b.example SIP/2.0",
                    "1 CANCEL",
                    "ft",
                    None,
                    false,
                    &[],
                ),
            )
            .add(
                3010,
                false,
                sip("SIP/2.0 200 OK", "1 CANCEL", "ft", Some("tt"), false, &[]),
            )
            .add(
                3020,
                false,
                sip(
                    "SIP/2.0 487 Request Terminated",
                    "1 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                3030,
                true,
                sip(
                    "ACK sip:bob@b.example SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            );
        let d = f.fold();
        assert_eq!(d.state(), DialogState::Canceled);
        assert_eq!(d.cancel_ns(), Some(3_000_000_000));
        assert_eq!(d.final_response().map(|f| f.code), Some(487));
        assert_eq!(d.answer_ns(), None);
        assert_eq!(d.ack_ns(), None, "the ACK of a 487 is not an answer's ACK");
        assert_eq!(ms(d.pdd_ms()), Some(500));
        assert_eq!(d.setup_ms(), None);
    }

    #[test]
    fn rejections_are_failed() {
        for (code, reason) in [
            (486, "Busy Here"),
            (603, "Decline"),
            (503, "Service Unavailable"),
        ] {
            let mut f = Flow::new();
            let status = format!("SIP/2.0 {code} {reason}");
            f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
                .add(
                    900,
                    false,
                    sip(&status, "1 INVITE", "ft", Some("tt"), false, &[]),
                )
                .add(
                    910,
                    true,
                    sip(
                        "ACK sip:bob@b.example SIP/2.0",
                        "1 ACK",
                        "ft",
                        Some("tt"),
                        false,
                        &[],
                    ),
                );
            let d = f.fold();
            assert_eq!(d.state(), DialogState::Failed, "{code}");
            let fin = d.final_response().unwrap();
            assert_eq!((fin.code, fin.reason.as_str()), (code, reason));
            assert_eq!(ms(d.pdd_ms()), Some(900), "no 18x: PDD runs to the final");
        }
    }

    #[test]
    fn challenge_without_retry_is_failed_and_retry_pending_is_in_progress() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                40,
                false,
                sip(
                    "SIP/2.0 407 Proxy Authentication Required",
                    "1 INVITE",
                    "ft",
                    Some("px"),
                    false,
                    &[],
                ),
            );
        assert_eq!(f.fold().state(), DialogState::Failed);
        f.add(60, true, sip(INV, "2 INVITE", "ft", None, false, &[]));
        assert_eq!(f.fold().state(), DialogState::InProgress);
    }

    #[test]
    fn forked_provisionals_count_once() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                200,
                false,
                sip(
                    "SIP/2.0 180 Ringing",
                    "1 INVITE",
                    "ft",
                    Some("fork-a"),
                    false,
                    &[],
                ),
            )
            .add(
                250,
                false,
                sip(
                    "SIP/2.0 180 Ringing",
                    "1 INVITE",
                    "ft",
                    Some("fork-b"),
                    false,
                    &[],
                ),
            )
            .add(
                4000,
                false,
                sip(
                    "SIP/2.0 200 OK",
                    "1 INVITE",
                    "ft",
                    Some("fork-b"),
                    false,
                    &[],
                ),
            )
            .add(
                4010,
                true,
                sip(
                    "ACK sip:bob@b.example SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("fork-b"),
                    false,
                    &[],
                ),
            );
        let d = f.fold();
        assert_eq!(d.provisionals.len(), 1);
        assert_eq!(ms(d.pdd_ms()), Some(200));
        assert_eq!(d.state(), DialogState::Answered);
        assert_eq!(ms(d.setup_ms()), Some(4000));
    }

    #[test]
    fn reinvite_outcomes_do_not_change_the_call() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                1000,
                false,
                sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                1010,
                true,
                sip(
                    "ACK sip:bob@10.0.0.2 SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            // caller's re-INVITE meets glare: 491
            .add(
                5000,
                true,
                sip(INV, "2 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                5010,
                false,
                sip(
                    "SIP/2.0 491 Request Pending",
                    "2 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                5020,
                true,
                sip(
                    "ACK sip:bob@10.0.0.2 SIP/2.0",
                    "2 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                7000,
                true,
                sip(INV, "3 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                7010,
                false,
                sip("SIP/2.0 200 OK", "3 INVITE", "ft", Some("tt"), false, &[]),
            )
            // a 488 to a re-INVITE whose request was not captured
            .add(
                8010,
                false,
                sip(
                    "SIP/2.0 488 Not Acceptable Here",
                    "4 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                9000,
                true,
                sip(
                    "BYE sip:bob@10.0.0.2 SIP/2.0",
                    "5 BYE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            );
        let d = f.fold();
        assert_eq!(d.state(), DialogState::Answered);
        assert_eq!(d.reinvites(), 2);
        let fin = d.final_response().unwrap();
        assert_eq!((fin.cseq, fin.code), (1, 200));
        assert_eq!(d.answer_ns(), Some(1_000_000_000));
        assert_eq!(d.ack_ns(), Some(1_010_000_000));
        assert_eq!(d.duration_s(), Some(8.0));
        // the same without the initial 2xx: the re-INVITE 2xx does not become the answer
        let mut g = Flow::new();
        g.0 =
            f.0.iter()
                .filter(|(ts, ..)| *ts != 1_000_000_000)
                .cloned()
                .collect();
        let d = g.fold();
        assert_eq!(d.answer_ns(), None);
        assert_eq!(
            d.state(),
            DialogState::Answered,
            "re-INVITEs exist only in a confirmed dialog"
        );
    }

    #[test]
    fn bye_from_callee() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                1000,
                false,
                sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                1010,
                true,
                sip(
                    "ACK sip:bob@10.0.0.2 SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                31000,
                false,
                sip(
                    "BYE sip:alice@10.0.0.1 SIP/2.0",
                    "1 BYE",
                    "ft",
                    Some("tt"),
                    true,
                    &[],
                ),
            )
            .add(
                31010,
                true,
                sip("SIP/2.0 200 OK", "1 BYE", "ft", Some("tt"), true, &[]),
            );
        let d = f.fold();
        assert_eq!(d.ended_by(), Some(EndedBy::Callee));
        assert_eq!(d.duration_s(), Some(30.0));
        assert_eq!(
            d.first.as_ref().unwrap().from_user.as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn dialog_seen_from_the_middle() {
        let mut f = Flow::new();
        f.add(
            1000,
            false,
            sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            1010,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "1 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            21010,
            false,
            sip(
                "BYE sip:alice@10.0.0.1 SIP/2.0",
                "7 BYE",
                "ft",
                Some("tt"),
                true,
                &[],
            ),
        );
        let d = f.fold();
        assert_eq!(d.kind(), DialogKind::Call);
        assert_eq!(d.state(), DialogState::Answered);
        assert_eq!(d.invite_ns(), None);
        assert_eq!((d.setup_ms(), d.pdd_ms()), (None, None));
        assert_eq!(d.duration_s(), Some(20.01));
        assert_eq!(d.ended_by(), Some(EndedBy::Callee));
        // the ACK speaks for the caller side, not the callee's BYE
        let first = d.first.as_ref().unwrap();
        assert_eq!(
            (first.method.as_str(), first.from_user.as_deref()),
            ("ACK", Some("alice"))
        );
    }

    const REG: &str = "REGISTER sip:b.example SIP/2.0";

    #[test]
    fn register_challenge_then_ok() {
        let contact = "Contact: <sip:alice@10.0.0.1:5060;line=x>;expires=3600";
        let mut f = Flow::new();
        f.add(0, true, sip(REG, "1 REGISTER", "r1", None, false, &[contact]))
            .add(50, false, sip("SIP/2.0 401 Unauthorized", "1 REGISTER", "r1", Some("s1"), false, &["WWW-Authenticate: Digest realm=\"b\""]))
            .add(70, true, sip(REG, "2 REGISTER", "r2", None, false, &[contact, "Authorization: Digest username=\"alice\""]))
            // the registrar lists another device's binding first and grants less than asked
            .add(120, false, sip("SIP/2.0 200 OK", "2 REGISTER", "r2", Some("s2"), false, &["Contact: <sip:alice@192.0.2.9>;expires=55, <sip:alice@10.0.0.1:5060;line=x>;expires=1800"]));
        let d = f.fold();
        assert_eq!(d.kind(), DialogKind::Registration);
        assert_eq!(d.state(), DialogState::Registered);
        assert_eq!(d.register_expires(), Some(1800));
        assert_eq!(d.auth_challenges(), 1);
        assert_eq!(
            d.register_contact(),
            Some("<sip:alice@10.0.0.1:5060;line=x>;expires=3600")
        );
    }

    #[test]
    fn register_expires_from_expires_header() {
        let mut f = Flow::new();
        f.add(
            0,
            true,
            sip(
                REG,
                "5 REGISTER",
                "r1",
                None,
                false,
                &["Contact: <sip:alice@10.0.0.1>", "Expires: 600"],
            ),
        )
        .add(
            20,
            false,
            sip(
                "SIP/2.0 200 OK",
                "5 REGISTER",
                "r1",
                Some("s1"),
                false,
                &["Contact: <sip:alice@10.0.0.1>", "Expires: 300"],
            ),
        );
        let d = f.fold();
        assert_eq!(
            (d.state(), d.register_expires()),
            (DialogState::Registered, Some(300))
        );
    }

    #[test]
    fn register_expires_zero_unregisters() {
        for contact in ["Contact: <sip:alice@10.0.0.1>;expires=0", "Contact: *"] {
            let mut f = Flow::new();
            f.add(
                0,
                true,
                sip(
                    REG,
                    "9 REGISTER",
                    "r1",
                    None,
                    false,
                    &[contact, "Expires: 0"],
                ),
            )
            .add(
                20,
                false,
                sip("SIP/2.0 200 OK", "9 REGISTER", "r1", Some("s1"), false, &[]),
            );
            let d = f.fold();
            assert_eq!(d.state(), DialogState::Unregistered, "{contact}");
            assert_eq!(d.register_expires(), Some(0));
        }
    }

    #[test]
    fn options_state_is_the_status_code() {
        let opt = "OPTIONS sip:b.example SIP/2.0";
        let mut f = Flow::new();
        f.add(0, true, sip(opt, "1 OPTIONS", "o1", None, false, &[]));
        assert_eq!(f.fold().state().to_string(), "in_progress");
        f.add(
            5,
            false,
            sip("SIP/2.0 200 OK", "1 OPTIONS", "o1", Some("s"), false, &[]),
        );
        let d = f.fold();
        assert_eq!(d.kind(), DialogKind::Other);
        assert_eq!(d.state(), DialogState::Final(200));
        assert_eq!(d.state().to_string(), "200");
        let mut g = Flow::new();
        g.add(0, true, sip(opt, "1 OPTIONS", "o1", None, false, &[]))
            .add(
                5,
                false,
                sip(
                    "SIP/2.0 404 Not Found",
                    "1 OPTIONS",
                    "o1",
                    Some("s"),
                    false,
                    &[],
                ),
            );
        assert_eq!(g.fold().state().to_string(), "404");
    }

    #[test]
    fn retransmissions_count_but_do_not_move_times() {
        let mut f = Flow::new();
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(500, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                700,
                false,
                sip(
                    "SIP/2.0 180 Ringing",
                    "1 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(1500, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                1510,
                false,
                sip(
                    "SIP/2.0 180 Ringing",
                    "1 INVITE",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                2000,
                false,
                sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                2500,
                false,
                sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                2510,
                true,
                sip(
                    "ACK sip:bob@10.0.0.2 SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            )
            .add(
                2520,
                true,
                sip(
                    "ACK sip:bob@10.0.0.2 SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            );
        let d = f.fold();
        assert_eq!(d.messages, 9);
        assert_eq!(d.invite_ns(), Some(0));
        assert_eq!(ms(d.pdd_ms()), Some(700));
        assert_eq!(ms(d.setup_ms()), Some(2000));
        assert_eq!(d.ack_ns(), Some(2_510_000_000));
        assert_eq!(d.invite_finals.len(), 1);
    }

    #[test]
    fn capped_sets_merge_the_same_in_any_order() {
        let mut f = Flow::new();
        let contact = "Contact: <sip:alice@10.0.0.1>;expires=60";
        for i in 0..40u32 {
            let cseq = format!("{} REGISTER", i + 1);
            let t = i64::from(i) * 60_000;
            f.add(t, true, sip(REG, &cseq, "r", None, false, &[contact]));
            let status = if i % 2 == 0 {
                "SIP/2.0 401 Unauthorized"
            } else {
                "SIP/2.0 200 OK"
            };
            f.add(
                t + 10,
                false,
                sip(status, &cseq, "r", Some("s"), false, &[contact]),
            );
        }
        let d = f.fold();
        assert_eq!(d.register_requests.len(), CAP_REGISTER);
        assert_eq!(
            d.final_response().map(|f| (f.cseq, f.code)),
            Some((40, 200))
        );
        assert_eq!(
            (d.state(), d.register_expires()),
            (DialogState::Registered, Some(60))
        );
        assert_eq!(d.auth_challenges(), 20);
    }

    // ---- the corpus: real captures, with tshark's dissection as the reference ----

    struct Frame {
        seen: Seen,
        payload: Vec<u8>,
    }

    fn corpus_frames(name: &str) -> Vec<Frame> {
        let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
        let hex = std::fs::read_to_string(format!("{dir}/{name}.hex")).unwrap();
        let meta = std::fs::read_to_string(format!("{dir}/{name}.frames.tsv")).unwrap();
        let hex: Vec<&str> = hex.lines().filter(|l| !l.is_empty()).collect();
        let meta: Vec<&str> = meta.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(hex.len(), meta.len(), "{name}: fixtures out of step");
        hex.iter()
            .zip(meta)
            .map(|(h, m)| {
                let f: Vec<&str> = m.split('\t').collect();
                let (secs, frac) = f[0].split_once('.').unwrap();
                let frac = format!("{frac:0<9}");
                let ts_ns = secs.parse::<i64>().unwrap() * 1_000_000_000
                    + frac[..9].parse::<i64>().unwrap();
                Frame {
                    seen: Seen {
                        ts_ns,
                        src_ip: f[1].parse().unwrap(),
                        src_port: f[2].parse().unwrap(),
                        dst_ip: f[3].parse().unwrap(),
                        dst_port: f[4].parse().unwrap(),
                    },
                    payload: (0..h.len() / 2)
                        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                        .collect(),
                }
            })
            .collect()
    }

    /// One single-message summary per parsed frame, grouped by Call-ID, in capture order.
    fn corpus_parts(name: &str) -> BTreeMap<String, Vec<DialogSummary>> {
        let mut out: BTreeMap<String, Vec<DialogSummary>> = BTreeMap::new();
        for fr in corpus_frames(name) {
            let Ok(m) = parse(&fr.payload) else { continue };
            let id = String::from_utf8_lossy(m.call_id.unwrap_or(b"")).into_owned();
            let mut d = DialogSummary::new(&id);
            d.observe(fr.seen, &m);
            out.entry(id).or_default().push(d);
        }
        out
    }

    /// Every dialog of a capture, checked order-independent: capture order, reverse, random splits.
    fn corpus_dialogs(name: &str) -> BTreeMap<String, DialogSummary> {
        corpus_parts(name)
            .into_iter()
            .map(|(id, parts)| {
                let forward = fold_all(parts.clone());
                let mut rev = parts.clone();
                rev.reverse();
                assert_eq!(forward, fold_all(rev), "{name} {id}: reverse");
                for seed in 1..8 {
                    assert_eq!(
                        forward,
                        random_split_merge(&parts, seed),
                        "{name} {id}: {seed}"
                    );
                }
                assert_eq!(forward.call_id, id);
                (id, forward)
            })
            .collect()
    }

    #[test]
    fn corpus_fold_is_order_independent() {
        let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(pcap) = name.strip_suffix(".frames.tsv") {
                let dialogs = corpus_dialogs(pcap);
                let msgs: u32 = dialogs.values().map(|d| d.messages).sum();
                assert!(msgs > 0, "{pcap}");
                files += 1;
            }
        }
        assert!(files >= 19, "{files}");
    }

    fn outcome(d: &DialogSummary) -> (DialogKind, String, Option<u16>, u32) {
        let code = d.final_response().map(|f| f.code);
        (d.kind(), d.state().to_string(), code, d.auth_challenges())
    }

    #[test]
    fn corpus_cancel_487_is_canceled() {
        let dialogs = corpus_dialogs("sip-cancel-487.pcap");
        assert_eq!(dialogs.len(), 1);
        let d = &dialogs["1-6261@127.0.1.1"];
        assert_eq!(
            outcome(d),
            (DialogKind::Call, "canceled".into(), Some(487), 0)
        );
        // tshark -z sip,stat: one CANCEL, one 487, one 200 (to the CANCEL), one 180
        assert_eq!(d.messages, 7);
        assert_eq!(d.answer_ns(), None);
        assert_eq!(d.cancel_ns(), Some(1_362_867_912_811_773_000));
        // INVITE 909.703901 → 180 911.808744
        assert_eq!(ms(d.pdd_ms()), Some(2105));
    }

    #[test]
    fn corpus_simple_invite_bye_is_answered() {
        let dialogs = corpus_dialogs("sip-simple-invite-bye.pcap");
        let d = &dialogs["1-6847@127.0.1.1"];
        assert_eq!(
            outcome(d),
            (DialogKind::Call, "answered".into(), Some(200), 0)
        );
        // INVITE 678.972518 → 200 683.078535; tshark's sip,stat reports the setup as 4107 ms
        let setup = d.setup_ms().unwrap();
        assert!((setup - 4106.017).abs() < 1e-6, "{setup}");
        assert!((setup - 4107.0).abs() < 1.0);
        // 200 683.078535 → BYE 695.081386, sent by the caller (SIPp's From tag)
        assert!((d.duration_s().unwrap() - 12.002851).abs() < 1e-9);
        assert_eq!(d.ended_by(), Some(EndedBy::Caller));
        assert_eq!(d.ack_ns(), Some(1_362_868_683_079_184_000));
        assert_eq!(d.caller_tag(), Some("6847SIPpTag001"));
    }

    #[test]
    fn corpus_sipp_five_answered_calls() {
        let dialogs = corpus_dialogs("sip-sipp-5-calls.pcap");
        assert_eq!(dialogs.len(), 5);
        for d in dialogs.values() {
            assert_eq!(
                outcome(d),
                (DialogKind::Call, "answered".into(), Some(200), 0)
            );
            assert_eq!(d.messages, 6);
            assert_eq!(d.ended_by(), Some(EndedBy::Caller));
            assert!(d.duration_s().unwrap() > 1.0);
        }
    }

    #[test]
    fn corpus_mixed_register_invite_cancel_auth() {
        let dialogs = corpus_dialogs("sip-udp-register-invite-cancel-auth-mixed.pcap");
        let got: BTreeMap<&str, _> = dialogs
            .iter()
            .map(|(id, d)| (id.as_str(), outcome(d)))
            .collect();
        use DialogKind::*;
        let want: BTreeMap<&str, _> = [
            // INVITE (x3) → 100, CANCELs from 34 s on, then 408: the caller gave up
            (
                "105090259-446faf7a@192.168.1.2",
                (Call, "canceled".to_string(), Some(408), 0),
            ),
            // 407 → retry with credentials → 183 → 480
            (
                "11894297-4432a9f8@192.168.1.2",
                (Call, "failed".into(), Some(480), 1),
            ),
            // 407 → retry → 403 Wrong password
            (
                "24487391-449bf2a0@192.168.1.2",
                (Call, "failed".into(), Some(403), 1),
            ),
            // REGISTER 1..6: 401, 200, 401, 401, 401, 200
            (
                "29858147-465b0752@29858051-465b07b2",
                (Registration, "registered".into(), Some(200), 4),
            ),
            // REGISTER 68..79: the last transaction (79) ends in 401 with no retry seen
            (
                "578222729-4665d775@578222732-4665d772",
                (Registration, "failed".into(), Some(401), 10),
            ),
            (
                "85216695-42dcdb1d@192.168.1.2",
                (Call, "failed".into(), Some(403), 1),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
        // tshark -z sip,stat: 14 × 401 and 3 × 407 (no retransmitted challenges in this capture)
        let by_code = |c| {
            dialogs
                .values()
                .flat_map(|d| &d.challenges)
                .filter(|x| x.1 == c)
                .count()
        };
        assert_eq!((by_code(401), by_code(407)), (14, 3));
        let total: u32 = dialogs.values().map(|d| d.messages).sum();
        assert_eq!(total, 81, "tshark: 81 SIP messages");
        let reg = &dialogs["29858147-465b0752@29858051-465b07b2"];
        assert_eq!(reg.register_expires(), Some(1200));
        assert!(reg
            .register_contact()
            .is_some_and(|c| c.contains("sip:35104723@192.168.1.2:5060")));
        // the canceled call's only final came after the CANCEL: no PDD to blame on the network
        assert_eq!(dialogs["105090259-446faf7a@192.168.1.2"].pdd_ms(), None);
        // 2 INVITE 1443.024176 → 183 1443.450638, the 407 round trip excluded
        let d = &dialogs["11894297-4432a9f8@192.168.1.2"];
        assert_eq!(ms(d.pdd_ms()), Some(426));
        // the call still began with the first INVITE (frame 602)
        assert_eq!(d.invite_ns(), Some(1_120_470_966_443_914_000));
    }

    #[test]
    fn corpus_other_captures() {
        let d = corpus_dialogs("sip-options-200.pcap");
        let d = d.values().next().unwrap();
        assert_eq!(
            (d.kind(), d.state().to_string()),
            (DialogKind::Other, "200".into())
        );
        let d = corpus_dialogs("sip-register-auth-hello.pcapng");
        let d = d.values().next().unwrap();
        assert_eq!(
            outcome(d),
            (DialogKind::Registration, "registered".into(), Some(200), 2)
        );
        assert_eq!(d.register_expires(), Some(600));
        // mid-call capture: 180, 200, ACK, BYE, 200 without the INVITE
        let d = corpus_dialogs("sip-udp-ipv4-fragmented-call.pcap");
        let d = &d["1-21520@10.192.243.79"];
        assert_eq!(
            outcome(d),
            (DialogKind::Call, "answered".into(), Some(200), 0)
        );
        assert_eq!((d.invite_ns(), d.setup_ms()), (None, None));
        assert_eq!(d.ended_by(), Some(EndedBy::Caller));
        let d = corpus_dialogs("sip-udp-invite-register-cloudshark.pcap");
        assert_eq!(d["12015624@200.57.7.195"].state(), DialogState::InProgress);
        assert_eq!(d["12013223@200.57.7.195"].state(), DialogState::Answered);
        let reg = &d["D3A26FC3974B44ECB5A96E07282903E3@bestel.com"];
        assert_eq!(reg.state(), DialogState::Registered);
    }

    fn summary_line(d: &DialogSummary) -> String {
        format!(
            "{} {} {} fin={:?} ch={} pdd={:?} setup={:?} dur={:?} by={:?} exp={:?}",
            d.call_id,
            d.kind().as_str(),
            d.state(),
            d.final_response().map(|f| f.code),
            d.auth_challenges(),
            ms(d.pdd_ms()),
            ms(d.setup_ms()),
            d.duration_s(),
            d.ended_by(),
            d.register_expires()
        )
    }

    #[test]
    #[ignore = "prints every corpus dialog; run with --ignored --nocapture to inspect"]
    fn corpus_dump() {
        let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.strip_suffix(".frames.tsv").map(str::to_string)
            })
            .collect();
        names.sort();
        for n in names {
            println!("== {n}");
            for d in corpus_dialogs(&n).values() {
                println!("  {}", summary_line(d));
            }
        }
    }
}
