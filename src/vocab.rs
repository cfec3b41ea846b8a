//! The words every layer shares: transport, dialog kind and state, who ended a call, whether a stream
//! starts a message. A leaf (no imports of ours): decode, sip and store use one type each, no strings.
//!
//! The `as_str`/`Display` spellings are the on-disk column values (schemas/): changing one is a
//! schema change.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Transport protocol a SIP message arrived over (RFC 3261 section 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Sctp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Sctp => "sctp",
        }
    }
}

impl FromStr for Transport {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "sctp" => Ok(Transport::Sctp),
            _ => Err(UnknownValue),
        }
    }
}

/// A string column held a value outside its documented set (a corrupt or foreign file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownValue;

/// What a Call-ID carried: an INVITE dialog, a REGISTER series, or anything else (OPTIONS, MESSAGE…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialogKind {
    #[default]
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

impl FromStr for DialogKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "call" => Ok(DialogKind::Call),
            "registration" => Ok(DialogKind::Registration),
            "other" => Ok(DialogKind::Other),
            _ => Err(UnknownValue),
        }
    }
}

/// Outcome of a dialog. Calls use answered/failed/canceled/in_progress; registrations
/// registered/failed/unregistered/in_progress; `other` stores its final status code as text ("200").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DialogState {
    Answered,
    Failed,
    Canceled,
    #[default]
    InProgress,
    Registered,
    Unregistered,
    /// Final response code of a non-INVITE, non-REGISTER transaction.
    Final(u16),
}

impl fmt::Display for DialogState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DialogState::Answered => "answered",
            DialogState::Failed => "failed",
            DialogState::Canceled => "canceled",
            DialogState::InProgress => "in_progress",
            DialogState::Registered => "registered",
            DialogState::Unregistered => "unregistered",
            DialogState::Final(code) => return write!(f, "{code}"),
        };
        f.write_str(s)
    }
}

impl FromStr for DialogState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Ok(match s {
            "answered" => DialogState::Answered,
            "failed" => DialogState::Failed,
            "canceled" => DialogState::Canceled,
            "in_progress" => DialogState::InProgress,
            "registered" => DialogState::Registered,
            "unregistered" => DialogState::Unregistered,
            code => DialogState::Final(code.parse().map_err(|_| UnknownValue)?),
        })
    }
}

impl Serialize for DialogState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DialogState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown dialog state {s:?}")))
    }
}

/// Which side sent the BYE that ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndedBy {
    Caller,
    Callee,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Callee => "callee",
        }
    }
}

impl FromStr for EndedBy {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "caller" => Ok(EndedBy::Caller),
            "callee" => Ok(EndedBy::Callee),
            _ => Err(UnknownValue),
        }
    }
}

/// Whether a byte stream opens with a message here: the verdict the upper layer's rule (SIP's,
/// `sip::stream_start`) hands the TCP reassembler in `decode`, which frames without knowing SIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Yes,
    No,
    /// Consistent so far, but the first line has not ended yet.
    Incomplete,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_state_round_trips_through_text() {
        for s in [
            DialogState::Answered,
            DialogState::Failed,
            DialogState::Canceled,
            DialogState::InProgress,
            DialogState::Registered,
            DialogState::Unregistered,
            DialogState::Final(486),
        ] {
            assert_eq!(s.to_string().parse::<DialogState>(), Ok(s));
        }
        assert_eq!("bogus".parse::<DialogState>(), Err(UnknownValue));
    }
}
