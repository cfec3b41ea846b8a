//! Dialogs: every SIP message of one Call-ID folded into a summary (kind, state, key times, PDD).
//! The fold is a commutative merge, so the summary is the same however a capture was split into
//! files, in whatever order files or threads were processed, and across indexing runs.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Message, StartLine};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogKind {
    Call,
    Registration,
    Other,
}

impl DialogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DialogKind::Call => "call",
            DialogKind::Registration => "registration",
            DialogKind::Other => "other",
        }
    }
}

/// A point on the time line with a tie-break that does not depend on file order: when two events
/// share a timestamp, the smaller CSeq and then requests before responses come first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub ts_ns: i64,
    pub cseq: u32,
    pub response: bool,
    pub code: u16,
}

fn min_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// What the first request of the dialog said: who called whom, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstRequest {
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

/// A final (≥ 200) response to an INVITE or to the dialog's main request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FinalResponse {
    pub cseq: u32,
    pub key: EventKey,
    pub code: u16,
    pub reason: String,
}

/// The mergeable state of one dialog. Every field is a min, max, sum or bounded set, so
/// `a.merge(b) == b.merge(a)` and observing messages in any order gives the same summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DialogSummary {
    pub call_id: String,
    pub first: Option<FirstRequest>,
    pub messages: u32,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    /// CSeq numbers of INVITEs without a To tag (initial INVITE and its auth retries).
    pub initial_invite_cseqs: Vec<u32>,
    /// CSeq numbers of INVITEs inside the dialog (To tag present): re-INVITEs.
    pub reinvite_cseqs: Vec<u32>,
    pub invite_ns: Option<i64>,
    pub first_provisional_ns: Option<i64>,
    pub first_response_ns: Option<i64>,
    pub answer: Option<EventKey>,
    pub ack_ns: Option<i64>,
    pub bye: Option<EventKey>,
    pub bye_from_tag: Option<String>,
    pub cancel_ns: Option<i64>,
    /// Final responses to INVITE (kept one per CSeq and code, bounded).
    pub invite_finals: Vec<FinalResponse>,
    /// Final responses to the non-INVITE main method (REGISTER, OPTIONS, ...), bounded.
    pub other_finals: Vec<FinalResponse>,
    /// (CSeq, code) of 401/407 challenges.
    pub challenges: Vec<(u32, u16)>,
    pub register_expires: Option<u32>,
    pub register_contact: Option<String>,
    pub user_agents: Vec<String>,
}

const MAX_SET: usize = 64;

fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) {
    if let Err(pos) = v.binary_search(&x) {
        if v.len() < MAX_SET {
            v.insert(pos, x);
        }
    }
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
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

impl DialogSummary {
    pub fn new(call_id: &str) -> Self {
        DialogSummary {
            call_id: call_id.to_string(),
            ..Default::default()
        }
    }

    /// Fold one message of this Call-ID into the summary.
    pub fn observe(&mut self, seen: Seen, msg: &Message<'_>) {
        let mut one = DialogSummary::new(&self.call_id);
        one.observe_alone(seen, msg);
        self.merge(one);
    }

    fn observe_alone(&mut self, seen: Seen, msg: &Message<'_>) {
        let ts = seen.ts_ns;
        self.messages = 1;
        self.start_ns = Some(ts);
        self.end_ns = Some(ts);
        let cseq = msg.cseq.map(|c| c.number).unwrap_or(0);
        let cseq_method = msg.cseq.map(|c| c.method).unwrap_or(b"");
        let to_tag = msg.to.and_then(|t| t.tag);
        if let Some(ua) = msg.user_agent.or(msg.server) {
            self.user_agents
                .push(String::from_utf8_lossy(ua).into_owned());
        }
        match msg.start {
            StartLine::Request { method, .. } => {
                let key = EventKey {
                    ts_ns: ts,
                    cseq,
                    response: false,
                    code: 0,
                };
                let ruri = msg.request_uri();
                let from_uri = msg.from.and_then(|f| f.uri);
                let to_uri = msg.to.and_then(|f| f.uri);
                // ACK, CANCEL and BYE never open a dialog in our summary's sense
                if !matches!(method, b"ACK" | b"CANCEL" | b"BYE") {
                    self.first = Some(FirstRequest {
                        key,
                        method: String::from_utf8_lossy(method).into_owned(),
                        src_ip: seen.src_ip,
                        src_port: seen.src_port,
                        dst_ip: seen.dst_ip,
                        dst_port: seen.dst_port,
                        from_user: text(from_uri.and_then(|u| u.user)),
                        from_host: text(from_uri.map(|u| u.host)),
                        from_display: text(msg.from.and_then(|f| f.display_name)),
                        from_tag: text(msg.from.and_then(|f| f.tag)),
                        to_user: text(to_uri.and_then(|u| u.user)),
                        to_host: text(to_uri.map(|u| u.host)),
                        ruri_user: text(ruri.and_then(|u| u.user)),
                        ruri_host: text(ruri.map(|u| u.host)),
                        user_agent: text(msg.user_agent),
                        contact: text(msg.contact),
                        x_call_id: text(msg.x_call_id),
                    });
                }
                match method {
                    b"INVITE" => {
                        if to_tag.is_none() {
                            self.initial_invite_cseqs.push(cseq);
                            self.invite_ns = Some(ts);
                        } else {
                            self.reinvite_cseqs.push(cseq);
                        }
                    }
                    b"ACK" => self.ack_ns = Some(ts),
                    b"BYE" => {
                        self.bye = Some(key);
                        self.bye_from_tag = text(msg.from.and_then(|f| f.tag));
                    }
                    b"CANCEL" => self.cancel_ns = Some(ts),
                    b"REGISTER" => {
                        self.register_contact = text(msg.contact);
                        self.register_expires = msg.expires;
                    }
                    _ => {}
                }
            }
            StartLine::Response { code, reason } => {
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
                let fin = FinalResponse {
                    cseq,
                    key,
                    code,
                    reason: String::from_utf8_lossy(reason).into_owned(),
                };
                if cseq_method == b"INVITE" {
                    if (180..=183).contains(&code) {
                        self.first_provisional_ns = Some(ts);
                    }
                    if (200..300).contains(&code) {
                        self.answer = Some(key);
                    }
                    if code >= 200 {
                        self.invite_finals.push(fin);
                    }
                } else if code >= 200 && !matches!(cseq_method, b"BYE" | b"CANCEL" | b"ACK") {
                    if cseq_method == b"REGISTER" && (200..300).contains(&code) {
                        if let Some(e) = msg.expires {
                            self.register_expires = Some(e);
                        }
                    }
                    self.other_finals.push(fin);
                }
            }
        }
    }

    /// Merge another partial summary of the same Call-ID (commutative and associative).
    pub fn merge(&mut self, o: DialogSummary) {
        self.messages += o.messages;
        self.start_ns = min_opt(self.start_ns, o.start_ns);
        self.end_ns = match (self.end_ns, o.end_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, None) => a,
            (None, b) => b,
        };
        self.first = match (self.first.take(), o.first) {
            (Some(a), Some(b)) => Some(if b.key < a.key { b } else { a }),
            (a, None) => a,
            (None, b) => b,
        };
        for c in o.initial_invite_cseqs {
            insert_sorted(&mut self.initial_invite_cseqs, c);
        }
        for c in o.reinvite_cseqs {
            insert_sorted(&mut self.reinvite_cseqs, c);
        }
        self.invite_ns = min_opt(self.invite_ns, o.invite_ns);
        self.first_provisional_ns = min_opt(self.first_provisional_ns, o.first_provisional_ns);
        self.first_response_ns = min_opt(self.first_response_ns, o.first_response_ns);
        self.answer = min_opt(self.answer, o.answer);
        self.ack_ns = min_opt(self.ack_ns, o.ack_ns);
        match (&self.bye, o.bye) {
            (Some(a), Some(b)) if b < *a => {
                self.bye = Some(b);
                self.bye_from_tag = o.bye_from_tag;
            }
            (None, Some(b)) => {
                self.bye = Some(b);
                self.bye_from_tag = o.bye_from_tag;
            }
            _ => {}
        }
        self.cancel_ns = min_opt(self.cancel_ns, o.cancel_ns);
        for f in o.invite_finals {
            merge_final(&mut self.invite_finals, f);
        }
        for f in o.other_finals {
            merge_final(&mut self.other_finals, f);
        }
        for c in o.challenges {
            insert_sorted(&mut self.challenges, c);
        }
        // registration details: the latest REGISTER transaction wins
        if o.register_contact.is_some() {
            self.register_contact = max_text(self.register_contact.take(), o.register_contact);
        }
        self.register_expires = match (self.register_expires, o.register_expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        for ua in o.user_agents {
            insert_sorted(&mut self.user_agents, ua);
        }
    }

    pub fn kind(&self) -> DialogKind {
        match self.first.as_ref().map(|f| f.method.as_str()) {
            Some("INVITE") => DialogKind::Call,
            Some("REGISTER") => DialogKind::Registration,
            Some(_) => DialogKind::Other,
            // only responses, ACK/BYE/CANCEL seen: a call seen mid-way if INVITE responses exist
            None if !self.invite_finals.is_empty() || self.bye.is_some() => DialogKind::Call,
            None => DialogKind::Other,
        }
    }

    /// The final response that decided the dialog: for calls, a 2xx to the initial INVITE if any,
    /// else the final response to the last initial INVITE transaction; likewise for other methods.
    pub fn final_response(&self) -> Option<&FinalResponse> {
        let finals = match self.kind() {
            DialogKind::Call => &self.invite_finals,
            _ => &self.other_finals,
        };
        let reinvite = |f: &&FinalResponse| {
            self.kind() == DialogKind::Call
                && self.reinvite_cseqs.contains(&f.cseq)
                && !self.initial_invite_cseqs.contains(&f.cseq)
        };
        if let Some(ok) = finals
            .iter()
            .filter(|f| !reinvite(f))
            .filter(|f| (200..300).contains(&f.code))
            .min_by_key(|f| f.key)
        {
            return Some(ok);
        }
        // the last transaction (highest CSeq), its earliest final response
        let max_cseq = finals
            .iter()
            .filter(|f| !reinvite(f))
            .map(|f| f.cseq)
            .max()?;
        finals
            .iter()
            .filter(|f| f.cseq == max_cseq)
            .min_by_key(|f| f.key)
    }

    /// `answered`, `failed`, `canceled`, `in_progress` for calls; `registered`, `unregistered`,
    /// `failed`, `in_progress` for registrations; `completed`, `failed`, `in_progress` otherwise.
    pub fn state(&self) -> &'static str {
        let fin = self.final_response();
        match self.kind() {
            DialogKind::Call => {
                if self.answer.is_some() && fin.is_some_and(|f| f.code < 300) {
                    "answered"
                } else if self.cancel_ns.is_some() && fin.is_none_or(|f| f.code == 487) {
                    "canceled"
                } else if fin.is_some_and(|f| f.code >= 300) {
                    "failed"
                } else {
                    "in_progress"
                }
            }
            DialogKind::Registration => match fin.map(|f| f.code) {
                Some(200..=299) if self.register_expires == Some(0) => "unregistered",
                Some(200..=299) => "registered",
                Some(_) => "failed",
                None => "in_progress",
            },
            DialogKind::Other => match fin.map(|f| f.code) {
                Some(200..=299) => "completed",
                Some(_) => "failed",
                None => "in_progress",
            },
        }
    }

    /// Post-dial delay: first initial INVITE → first 18x, or → the final response without one.
    pub fn pdd_ms(&self) -> Option<f64> {
        let start = self.invite_ns?;
        let end = self
            .first_provisional_ns
            .or_else(|| self.final_response().map(|f| f.key.ts_ns))?;
        (end >= start).then(|| (end - start) as f64 / 1e6)
    }

    /// Setup time: first initial INVITE → 2xx.
    pub fn setup_ms(&self) -> Option<f64> {
        let start = self.invite_ns?;
        let end = self.answer?.ts_ns;
        (end >= start).then(|| (end - start) as f64 / 1e6)
    }

    /// Call duration: 2xx → BYE.
    pub fn duration_s(&self) -> Option<f64> {
        let a = self.answer?.ts_ns;
        let b = self.bye?.ts_ns;
        (b >= a).then(|| (b - a) as f64 / 1e9)
    }

    /// `caller` when the BYE's From tag is the initial request's From tag, else `callee`.
    pub fn ended_by(&self) -> Option<&'static str> {
        self.bye?;
        let caller_tag = self.first.as_ref()?.from_tag.as_deref()?;
        Some(if self.bye_from_tag.as_deref() == Some(caller_tag) {
            "caller"
        } else {
            "callee"
        })
    }

    pub fn reinvites(&self) -> u32 {
        self.reinvite_cseqs.len() as u32
    }

    pub fn auth_challenges(&self) -> u32 {
        self.challenges.len() as u32
    }
}

fn max_text(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn merge_final(v: &mut Vec<FinalResponse>, f: FinalResponse) {
    // one entry per (CSeq, code): retransmitted finals keep the earliest
    if let Some(e) = v.iter_mut().find(|e| e.cseq == f.cseq && e.code == f.code) {
        if f.key < e.key {
            *e = f;
        }
        return;
    }
    if v.len() < MAX_SET {
        v.push(f);
        v.sort();
    }
}
