//! The `stats` row: message counts per method and status for one time bucket or the total.
//! Counted values keep their order of frequency.
use std::collections::BTreeMap;

use serde::Serialize;

use super::{ser_opt_time, Row};

/// A value and how often it was seen.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub value: String,
    pub count: u64,
}

/// One `stats` row: `type` is `bucket` (with `--by`, one per bucket in time order) or `total`
/// (always last).
#[derive(Serialize, Clone, Debug)]
pub struct TallyRow {
    #[serde(rename = "type")]
    pub row_type: &'static str,
    /// Bucket bounds (RFC 3339 UTC, end exclusive); for `total`, the window asked for.
    #[serde(serialize_with = "ser_opt_time")]
    pub start: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub end: Option<i64>,
    pub messages: u64,
    pub requests: BTreeMap<String, u64>,
    pub responses: BTreeMap<String, u64>,
    pub calls: u64,
    pub answered: u64,
    pub failed: u64,
    pub canceled: u64,
    pub in_progress: u64,
    /// Answered calls / call attempts, per cent.
    pub asr_pct: Option<f64>,
    pub avg_pdd_ms: Option<f64>,
    pub max_pdd_ms: Option<f64>,
    pub registrations: u64,
    pub registered: u64,
    pub registrations_failed: u64,
    pub other_dialogs: u64,
    pub top_user_agents: Vec<Counted>,
    pub top_sources: Vec<Counted>,
    pub scanner_dialogs: u64,
    pub top_scanner_sources: Vec<Counted>,
    /// `total` only: from the catalog, for the files whose span meets the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hep_mirrors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_duplicates: Option<u64>,
}

impl Row for TallyRow {
    const TYPE: &'static str = "total";
    const FIELDS: &'static [&'static str] = &[
        "type",
        "start",
        "end",
        "messages",
        "requests",
        "responses",
        "calls",
        "answered",
        "failed",
        "canceled",
        "in_progress",
        "asr_pct",
        "avg_pdd_ms",
        "max_pdd_ms",
        "registrations",
        "registered",
        "registrations_failed",
        "other_dialogs",
        "top_user_agents",
        "top_sources",
        "scanner_dialogs",
        "top_scanner_sources",
        "hep_mirrors",
        "span_duplicates",
    ];
}
