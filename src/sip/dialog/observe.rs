//! Folding one SIP message into a one-message `DialogSummary`: the start line, the headers that
//! correlate legs, and the request or response records the outcomes are later derived from.
use super::capped::{set_insert, CAP_REGISTER, CAP_TEXT};
use super::{
    method_bits, Bye, CallerTag, DialogSummary, EventKey, FinalResponse, FirstRequest, RegisterOk,
    RegisterRequest, Seen, Timed, RANK_OPENING,
};
use crate::sip::lex::parse_u32;
use crate::sip::{Message, NameAddr, StartLine};

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
    /// The summary of one message alone; `observe_with` merges it into the dialog so that one
    /// message and a whole file take the same path.
    pub(super) fn observe_alone(
        &mut self,
        seen: Seen,
        msg: &Message<'_>,
        extra_headers: &[String],
    ) {
        let ts = seen.ts_ns;
        self.messages = 1;
        self.start_ns = Some(ts);
        self.end_ns = Some(ts);
        self.note_text_headers(msg, extra_headers);
        match msg.start {
            StartLine::Request { method, .. } => self.observe_request(seen, msg, method),
            StartLine::Response { code, reason } => self.observe_response(ts, msg, code, reason),
        }
    }

    /// User-Agent/Server, X-Call-ID and the configured correlation headers, on any message.
    fn note_text_headers(&mut self, msg: &Message<'_>, extra_headers: &[String]) {
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
    }

    /// A request: the opening-request candidate, then the per-method records.
    fn observe_request(&mut self, seen: Seen, msg: &Message<'_>, method: &[u8]) {
        let ts = seen.ts_ns;
        let cseq = msg.cseq.map(|c| c.number).unwrap_or(0);
        let to_tag = msg.to.and_then(|t| t.tag);
        let from_tag = text(msg.from.and_then(|f| f.tag));
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

    /// A response, filed by the method its CSeq names.
    fn observe_response(&mut self, ts: i64, msg: &Message<'_>, code: u16, reason: &[u8]) {
        let cseq = msg.cseq.map(|c| c.number).unwrap_or(0);
        let cseq_method = msg.cseq.map(|c| c.method).unwrap_or(b"");
        let from_tag = text(msg.from.and_then(|f| f.tag));
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

    fn set_caller(&mut self, rank: u8, key: EventKey, tag: &Option<String>) {
        if let Some(tag) = tag {
            self.caller = Some(CallerTag {
                rank,
                key,
                tag: tag.clone(),
            });
        }
    }
}
