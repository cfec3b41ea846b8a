//! Column maps between the owned records and Arrow arrays: one `Column` per Parquet column with a
//! getter and a setter, so the writer, the reader and the schema come from one list per table.

use super::record::{
    DialogRecord, MessageRecord, QosReportRecord, RtcpReportRecord, RtpStreamRecord,
};
use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampNanosecondArray,
    UInt16Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use std::borrow::Cow;
use std::sync::Arc;

#[doc(hidden)]
/// How one column reads from and writes into a record. String setters return `false` on a value
/// outside the documented set (an enum column holding an unknown word).
pub enum Access<R> {
    Ts(fn(&R) -> i64, fn(&mut R, i64)),
    OptTs(fn(&R) -> Option<i64>, fn(&mut R, Option<i64>)),
    Str(for<'a> fn(&'a R) -> Cow<'a, str>, fn(&mut R, &str) -> bool),
    OptStr(fn(&R) -> Option<&str>, fn(&mut R, Option<String>)),
    U16(fn(&R) -> u16, fn(&mut R, u16)),
    OptU16(fn(&R) -> Option<u16>, fn(&mut R, Option<u16>)),
    U32(fn(&R) -> u32, fn(&mut R, u32)),
    OptU32(fn(&R) -> Option<u32>, fn(&mut R, Option<u32>)),
    U64(fn(&R) -> u64, fn(&mut R, u64)),
    OptU64(fn(&R) -> Option<u64>, fn(&mut R, Option<u64>)),
    I64(fn(&R) -> i64, fn(&mut R, i64)),
    OptI64(fn(&R) -> Option<i64>, fn(&mut R, Option<i64>)),
    F64(fn(&R) -> f64, fn(&mut R, f64)),
    OptF64(fn(&R) -> Option<f64>, fn(&mut R, Option<f64>)),
    Bool(fn(&R) -> bool, fn(&mut R, bool)),
}

#[doc(hidden)]
pub struct Column<R> {
    pub name: &'static str,
    pub access: Access<R>,
}

/// A record type with a fixed column list: the contract between the Parquet writer and reader.
pub trait TableRow: Default + Send + 'static {
    /// Directory name under `tables/`.
    const TABLE: &'static str;
    /// Nanosecond timestamp that picks the day partition.
    fn partition_ts(&self) -> i64;
    #[doc(hidden)]
    fn columns() -> &'static [Column<Self>];
}

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

impl<R> Column<R> {
    pub fn field(&self) -> Field {
        let (dt, nullable) = match self.access {
            Access::Ts(..) => (timestamp_type(), false),
            Access::OptTs(..) => (timestamp_type(), true),
            Access::Str(..) => (DataType::Utf8, false),
            Access::OptStr(..) => (DataType::Utf8, true),
            Access::U16(..) => (DataType::UInt16, false),
            Access::OptU16(..) => (DataType::UInt16, true),
            Access::U32(..) => (DataType::UInt32, false),
            Access::OptU32(..) => (DataType::UInt32, true),
            Access::U64(..) => (DataType::UInt64, false),
            Access::OptU64(..) => (DataType::UInt64, true),
            Access::I64(..) => (DataType::Int64, false),
            Access::OptI64(..) => (DataType::Int64, true),
            Access::F64(..) => (DataType::Float64, false),
            Access::OptF64(..) => (DataType::Float64, true),
            Access::Bool(..) => (DataType::Boolean, false),
        };
        Field::new(self.name, dt, nullable)
    }

    /// Builds this column's array from a batch of rows.
    pub fn build(&self, rows: &[R]) -> ArrayRef {
        match &self.access {
            Access::Ts(g, _) => Arc::new(
                TimestampNanosecondArray::from_iter_values(rows.iter().map(g)).with_timezone("UTC"),
            ),
            Access::OptTs(g, _) => Arc::new(
                TimestampNanosecondArray::from_iter(rows.iter().map(g)).with_timezone("UTC"),
            ),
            Access::Str(g, _) => Arc::new(StringArray::from_iter_values(rows.iter().map(g))),
            Access::OptStr(g, _) => Arc::new(StringArray::from_iter(rows.iter().map(g))),
            Access::U16(g, _) => Arc::new(UInt16Array::from_iter_values(rows.iter().map(g))),
            Access::OptU16(g, _) => Arc::new(UInt16Array::from_iter(rows.iter().map(g))),
            Access::U32(g, _) => Arc::new(UInt32Array::from_iter_values(rows.iter().map(g))),
            Access::OptU32(g, _) => Arc::new(UInt32Array::from_iter(rows.iter().map(g))),
            Access::U64(g, _) => Arc::new(UInt64Array::from_iter_values(rows.iter().map(g))),
            Access::OptU64(g, _) => Arc::new(UInt64Array::from_iter(rows.iter().map(g))),
            Access::I64(g, _) => Arc::new(Int64Array::from_iter_values(rows.iter().map(g))),
            Access::OptI64(g, _) => Arc::new(Int64Array::from_iter(rows.iter().map(g))),
            Access::F64(g, _) => Arc::new(Float64Array::from_iter_values(rows.iter().map(g))),
            Access::OptF64(g, _) => Arc::new(Float64Array::from_iter(rows.iter().map(g))),
            Access::Bool(g, _) => {
                Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(g(r)))))
            }
        }
    }

    /// Copies this column of `array` into `rows` (same length). `Err` names the first bad value.
    pub fn load(&self, array: &dyn Array, rows: &mut [R]) -> Result<(), String> {
        fn cast<'a, T: 'static>(a: &'a dyn Array, name: &str) -> Result<&'a T, String> {
            a.as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| format!("column {name} has type {}", a.data_type()))
        }
        let name = self.name;
        // A null in a column documented as non-null is corruption, not a default.
        let need = |a: &dyn Array, i: usize| -> Result<(), String> {
            if a.is_null(i) {
                Err(format!("column {name} is null in row {i}"))
            } else {
                Ok(())
            }
        };
        match &self.access {
            Access::Ts(_, s) => {
                let a = cast::<TimestampNanosecondArray>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
            Access::OptTs(_, s) => {
                let a = cast::<TimestampNanosecondArray>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i)));
                }
            }
            Access::Str(_, s) => {
                let a = cast::<StringArray>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    if !s(r, a.value(i)) {
                        return Err(format!("column {name} has unknown value {:?}", a.value(i)));
                    }
                }
            }
            Access::OptStr(_, s) => {
                let a = cast::<StringArray>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i).to_owned()));
                }
            }
            Access::U16(_, s) => {
                let a = cast::<UInt16Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
            Access::OptU16(_, s) => {
                let a = cast::<UInt16Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i)));
                }
            }
            Access::U32(_, s) => {
                let a = cast::<UInt32Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
            Access::OptU32(_, s) => {
                let a = cast::<UInt32Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i)));
                }
            }
            Access::U64(_, s) => {
                let a = cast::<UInt64Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
            Access::OptU64(_, s) => {
                let a = cast::<UInt64Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i)));
                }
            }
            Access::I64(_, s) => {
                let a = cast::<Int64Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
            Access::OptI64(_, s) => {
                let a = cast::<Int64Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i)));
                }
            }
            Access::F64(_, s) => {
                let a = cast::<Float64Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
            Access::OptF64(_, s) => {
                let a = cast::<Float64Array>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    s(r, a.is_valid(i).then(|| a.value(i)));
                }
            }
            Access::Bool(_, s) => {
                let a = cast::<BooleanArray>(array, name)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    need(a, i)?;
                    s(r, a.value(i));
                }
            }
        }
        Ok(())
    }
}

/// The Arrow schema of a table, in column order.
pub fn schema_of<R: TableRow>() -> Schema {
    Schema::new(R::columns().iter().map(Column::field).collect::<Vec<_>>())
}

// One line per column: `name: Kind(field)`; enum columns spell out their getter and parser.
macro_rules! col {
    ($name:literal, Ts, $f:ident) => {
        Column {
            name: $name,
            access: Access::Ts(|r| r.$f, |r, v| r.$f = v),
        }
    };
    ($name:literal, OptTs, $f:ident) => {
        Column {
            name: $name,
            access: Access::OptTs(|r| r.$f, |r, v| r.$f = v),
        }
    };
    ($name:literal, Str, $f:ident) => {
        Column {
            name: $name,
            access: Access::Str(
                |r| Cow::Borrowed(r.$f.as_str()),
                |r, v| {
                    r.$f = v.to_owned();
                    true
                },
            ),
        }
    };
    ($name:literal, Enum, $f:ident) => {
        Column {
            name: $name,
            access: Access::Str(
                |r| Cow::Owned(r.$f.to_string()),
                |r, v| match v.parse() {
                    Ok(x) => {
                        r.$f = x;
                        true
                    }
                    Err(_) => false,
                },
            ),
        }
    };
    ($name:literal, StaticEnum, $f:ident) => {
        Column {
            name: $name,
            access: Access::Str(
                |r| Cow::Borrowed(r.$f.as_str()),
                |r, v| match v.parse() {
                    Ok(x) => {
                        r.$f = x;
                        true
                    }
                    Err(_) => false,
                },
            ),
        }
    };
    ($name:literal, OptStr, $f:ident) => {
        Column {
            name: $name,
            access: Access::OptStr(|r| r.$f.as_deref(), |r, v| r.$f = v),
        }
    };
    ($name:literal, $kind:ident, $f:ident) => {
        Column {
            name: $name,
            access: Access::$kind(|r| r.$f, |r, v| r.$f = v),
        }
    };
}

impl TableRow for MessageRecord {
    const TABLE: &'static str = "messages";
    fn partition_ts(&self) -> i64 {
        self.ts_ns
    }
    fn columns() -> &'static [Column<Self>] {
        static COLUMNS: &[Column<MessageRecord>] = &[
            col!("ts", Ts, ts_ns),
            col!("src_ip", Str, src_ip),
            col!("dst_ip", Str, dst_ip),
            col!("src_port", U16, src_port),
            col!("dst_port", U16, dst_port),
            col!("transport", StaticEnum, transport),
            col!("encap", OptStr, encap),
            col!("vlan", OptU16, vlan),
            col!("method", OptStr, method),
            col!("status", OptU16, status),
            col!("reason", OptStr, reason),
            col!("call_id", Str, call_id),
            col!("cseq_num", OptU32, cseq_num),
            col!("cseq_method", OptStr, cseq_method),
            col!("from_user", OptStr, from_user),
            col!("from_host", OptStr, from_host),
            col!("from_tag", OptStr, from_tag),
            col!("from_display", OptStr, from_display),
            col!("to_user", OptStr, to_user),
            col!("to_host", OptStr, to_host),
            col!("to_tag", OptStr, to_tag),
            col!("ruri_user", OptStr, ruri_user),
            col!("ruri_host", OptStr, ruri_host),
            col!("user_agent", OptStr, user_agent),
            col!("contact", OptStr, contact),
            col!("pai", OptStr, pai),
            col!("x_call_id", OptStr, x_call_id),
            col!("content_type", OptStr, content_type),
            col!("size", U32, size),
            col!("file_id", U32, file_id),
            col!("offset", U64, offset),
            col!("record_len", U32, record_len),
            col!("hep_capture_id", OptU32, hep_capture_id),
            col!("hep_mirror_capture_id", OptU32, hep_mirror_capture_id),
            col!("scanner", Bool, scanner),
        ];
        COLUMNS
    }
}

impl TableRow for DialogRecord {
    const TABLE: &'static str = "dialogs";
    fn partition_ts(&self) -> i64 {
        self.start_ns
    }
    fn columns() -> &'static [Column<Self>] {
        static COLUMNS: &[Column<DialogRecord>] = &[
            col!("call_id", Str, call_id),
            col!("kind", StaticEnum, kind),
            col!("state", Enum, state),
            col!("final_status", OptU16, final_status),
            col!("final_reason", OptStr, final_reason),
            col!("start", Ts, start_ns),
            col!("end", Ts, end_ns),
            col!("invite", OptTs, invite_ns),
            col!("first_provisional", OptTs, first_provisional_ns),
            col!("answer", OptTs, answer_ns),
            col!("ack", OptTs, ack_ns),
            col!("bye", OptTs, bye_ns),
            col!("cancel", OptTs, cancel_ns),
            col!("pdd_ms", OptF64, pdd_ms),
            col!("setup_ms", OptF64, setup_ms),
            col!("duration_s", OptF64, duration_s),
            Column {
                name: "ended_by",
                access: Access::OptStr(
                    |r| r.ended_by.map(|e| e.as_str()),
                    // Unknown words read as "not known" rather than failing the whole read.
                    |r, v| r.ended_by = v.and_then(|s| s.parse().ok()),
                ),
            },
            col!("reinvites", U32, reinvites),
            col!("auth_challenges", U32, auth_challenges),
            col!("from_user", OptStr, from_user),
            col!("to_user", OptStr, to_user),
            col!("ruri_user", OptStr, ruri_user),
            col!("from_host", OptStr, from_host),
            col!("to_host", OptStr, to_host),
            col!("src_ip", Str, src_ip),
            col!("dst_ip", Str, dst_ip),
            col!("src_port", U16, src_port),
            col!("dst_port", U16, dst_port),
            col!("user_agent", OptStr, user_agent),
            col!("contact", OptStr, contact),
            col!("expires", OptU32, expires),
            col!("messages", U32, messages),
            col!("correlation_id", Str, correlation_id),
            col!("scanner", Bool, scanner),
            col!("worst_mos", OptF64, worst_mos),
            col!("max_loss_pct", OptF64, max_loss_pct),
            col!("max_jitter_ms", OptF64, max_jitter_ms),
            col!("summary", OptStr, summary),
        ];
        COLUMNS
    }
}

impl TableRow for RtpStreamRecord {
    const TABLE: &'static str = "rtp_streams";
    fn partition_ts(&self) -> i64 {
        self.start_ns
    }
    fn columns() -> &'static [Column<Self>] {
        static COLUMNS: &[Column<RtpStreamRecord>] = &[
            col!("stream_id", Str, stream_id),
            col!("call_id", OptStr, call_id),
            col!("start", Ts, start_ns),
            col!("end", Ts, end_ns),
            col!("src_ip", Str, src_ip),
            col!("src_port", U16, src_port),
            col!("dst_ip", Str, dst_ip),
            col!("dst_port", U16, dst_port),
            col!("ssrc", U32, ssrc),
            col!("announced", Bool, announced),
            col!("payload_type", OptU16, payload_type),
            col!("payload_types", Str, payload_types),
            col!("payload", Str, payload),
            col!("codec", OptStr, codec),
            col!("clock_rate", U32, clock_rate),
            col!("packets", U64, packets),
            col!("expected", I64, expected),
            col!("lost", I64, lost),
            col!("lost_pct", F64, lost_pct),
            col!("sequence_errors", U32, sequence_errors),
            col!("duplicates", U64, duplicates),
            col!("out_of_order", U64, out_of_order),
            col!("min_delta_ms", F64, min_delta_ms),
            col!("mean_delta_ms", F64, mean_delta_ms),
            col!("max_delta_ms", F64, max_delta_ms),
            col!("max_delta_at", OptTs, max_delta_at_ns),
            col!("max_delta_index", U64, max_delta_index),
            col!("min_jitter_ms", F64, min_jitter_ms),
            col!("mean_jitter_ms", F64, mean_jitter_ms),
            col!("max_jitter_ms", F64, max_jitter_ms),
            col!("max_skew_ms", F64, max_skew_ms),
            col!("rfc3550_jitter_ms", OptF64, rfc3550_jitter_ms),
            col!("marker_packets", U64, marker_packets),
            col!("comfort_noise_packets", U64, comfort_noise_packets),
            col!("dtmf", OptStr, dtmf),
            col!("dtmf_events", OptStr, dtmf_events),
            col!("late_packets", U64, late_packets),
            col!("burst_ratio", OptF64, burst_ratio),
            col!("mos", OptF64, mos),
            col!("r_factor", OptF64, r_factor),
            col!("mos_codec", OptStr, mos_codec),
            col!("mos_loss_pct", OptF64, mos_loss_pct),
            col!("mos_delay_ms", OptF64, mos_delay_ms),
            col!("possible_capture_loss", Bool, possible_capture_loss),
            col!("possible_capture_lost", OptU64, possible_capture_lost),
            col!("capture_drops", U64, capture_drops),
            col!("span_duplicates_dropped", U64, span_duplicates_dropped),
            col!("problem", Bool, problem),
            col!("metrics", Str, metrics),
            col!("timeline", OptStr, timeline),
        ];
        COLUMNS
    }
}

impl TableRow for RtcpReportRecord {
    const TABLE: &'static str = "rtcp_reports";
    fn partition_ts(&self) -> i64 {
        self.ts_ns
    }
    fn columns() -> &'static [Column<Self>] {
        static COLUMNS: &[Column<RtcpReportRecord>] = &[
            col!("ts", Ts, ts_ns),
            col!("call_id", OptStr, call_id),
            col!("src_ip", Str, src_ip),
            col!("src_port", U16, src_port),
            col!("dst_ip", Str, dst_ip),
            col!("dst_port", U16, dst_port),
            col!("packet_type", Str, packet_type),
            col!("block", Str, block),
            col!("reporter_ssrc", U32, reporter_ssrc),
            col!("source_ssrc", OptU32, source_ssrc),
            col!("fraction_lost_pct", OptF64, fraction_lost_pct),
            col!("cumulative_lost", OptI64, cumulative_lost),
            col!("extended_highest_seq", OptU32, extended_highest_seq),
            col!("jitter", OptU32, jitter),
            col!("jitter_ms", OptF64, jitter_ms),
            col!("lsr", OptU32, lsr),
            col!("dlsr", OptU32, dlsr),
            col!("rtt_ms", OptF64, rtt_ms),
            col!("sender_packets", OptU32, sender_packets),
            col!("sender_octets", OptU32, sender_octets),
            col!("loss_rate_pct", OptF64, loss_rate_pct),
            col!("discard_rate_pct", OptF64, discard_rate_pct),
            col!("burst_density_pct", OptF64, burst_density_pct),
            col!("gap_density_pct", OptF64, gap_density_pct),
            col!("round_trip_delay_ms", OptF64, round_trip_delay_ms),
            col!("end_system_delay_ms", OptF64, end_system_delay_ms),
            col!("r_factor", OptF64, r_factor),
            col!("mos_lq", OptF64, mos_lq),
            col!("mos_cq", OptF64, mos_cq),
            col!("jb_nominal_ms", OptF64, jb_nominal_ms),
            col!("jb_maximum_ms", OptF64, jb_maximum_ms),
            col!("file_id", U32, file_id),
            col!("offset", U64, offset),
        ];
        COLUMNS
    }
}

impl TableRow for QosReportRecord {
    const TABLE: &'static str = "qos_reports";
    fn partition_ts(&self) -> i64 {
        self.ts_ns
    }
    fn columns() -> &'static [Column<Self>] {
        static COLUMNS: &[Column<QosReportRecord>] = &[
            col!("ts", Ts, ts_ns),
            col!("call_id", OptStr, call_id),
            col!("kind", Str, kind),
            col!("side", OptStr, side),
            col!("reporter_ip", Str, reporter_ip),
            col!("reporter_port", U16, reporter_port),
            col!("peer_ip", OptStr, peer_ip),
            col!("peer_port", OptU16, peer_port),
            col!("ssrc", OptU32, ssrc),
            col!("codec", OptStr, codec),
            col!("packets_sent", OptU64, packets_sent),
            col!("packets_received", OptU64, packets_received),
            col!("packets_lost", OptI64, packets_lost),
            col!("loss_pct", OptF64, loss_pct),
            col!("discard_pct", OptF64, discard_pct),
            col!("jitter_ms", OptF64, jitter_ms),
            col!("jitter_raw", OptF64, jitter_raw),
            col!("max_jitter_ms", OptF64, max_jitter_ms),
            col!("rtt_ms", OptF64, rtt_ms),
            col!("mos_lq", OptF64, mos_lq),
            col!("mos_cq", OptF64, mos_cq),
            col!("r_factor", OptF64, r_factor),
            col!("duration_s", OptF64, duration_s),
            col!("fields", Str, fields),
            col!("file_id", U32, file_id),
            col!("offset", U64, offset),
        ];
        COLUMNS
    }
}
