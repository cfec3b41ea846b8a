//! What a folded dialog means, derived only when asked: kind, deciding final response, state,
//! registration outcome and the call timings (PDD, setup, duration).
use super::{
    method_bits, DialogKind, DialogState, DialogSummary, EndedBy, FinalResponse, RegisterOk,
    RegisterRequest, Timed, RANK_OPENING,
};

impl DialogSummary {
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
