//! Listening-quality estimate per stream: ITU-T G.107 E-model (simplified to the terms a passive
//! capture can feed), G.113 codec impairments, and the R → MOS mapping of G.107 Annex B.
//!
//! R = R0' − Id − Ie,eff with R0' = 93.2 (G.107 default R0 − Is with all defaults, A = 0).
//! Id: simplified delay impairment (Cole & Rosenbluth, derived from G.107 for Ta = T = Tr/2).
//! Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)  (G.107 §7.2 eq. 7-29).

use serde::Serialize;

use super::stream::{StreamState, JITTER_BUFFER_MS};

/// Codec classes with G.113 Appendix I provisional values where the ITU gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Codec {
    G711,
    G711Plc,
    G729,
    G723_1,
    G722,
    GsmFr,
    Opus,
    Unknown,
}

/// (Ie, Bpl, frame ms, whether the values are an ITU table entry or our approximation).
fn impairment(codec: Codec) -> (f64, f64, f64, bool) {
    match codec {
        // G.113 Table I.1: G.711 Ie = 0; Table I.3: Bpl = 4.3 without PLC, 25.1 with
        // G.711 Appendix I PLC.
        Codec::G711 => (0.0, 4.3, 20.0, true),
        Codec::G711Plc => (0.0, 25.1, 20.0, true),
        // G.113 Table I.1 / I.3: G.729(A) + VAD Ie = 11, Bpl = 19.0.
        Codec::G729 => (11.0, 19.0, 20.0, true),
        // G.113 Table I.1 / I.3: G.723.1 6.3 kbit/s Ie = 15, Bpl = 16.1.
        Codec::G723_1 => (15.0, 16.1, 30.0, true),
        // G.113 Table I.1: GSM 06.10 full rate Ie = 20; Bpl not tabulated: 10 assumed.
        Codec::GsmFr => (20.0, 10.0, 20.0, false),
        // Approximation: narrow-band view of G.722 (64 kbit/s) as transparent, with the G.711
        // PLC packet-loss robustness; the wide-band E-model (G.107.1) is out of scope.
        Codec::G722 => (0.0, 25.1, 20.0, false),
        // Approximation: no ITU entry; Opus with in-band FEC/PLC behaves near G.711+PLC.
        Codec::Opus => (0.0, 25.0, 20.0, false),
        // Unknown: treat like G.711 without PLC (the most loss-sensitive common case).
        Codec::Unknown => (0.0, 4.3, 20.0, false),
    }
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::G711 => "G711",
            Codec::G711Plc => "G711+PLC",
            Codec::G729 => "G729",
            Codec::G723_1 => "G723.1",
            Codec::G722 => "G722",
            Codec::GsmFr => "GSM-FR",
            Codec::Opus => "Opus",
            Codec::Unknown => "unknown",
        }
    }

    pub fn from_name(s: &str) -> Option<Codec> {
        [
            Codec::G711,
            Codec::G711Plc,
            Codec::G729,
            Codec::G723_1,
            Codec::G722,
            Codec::GsmFr,
            Codec::Opus,
            Codec::Unknown,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }

    /// From the payload type and, for dynamic types, the SDP encoding name.
    pub fn from_payload(pt: u8, encoding_name: Option<&str>) -> Codec {
        match pt {
            0 | 8 => return Codec::G711,
            3 => return Codec::GsmFr,
            4 => return Codec::G723_1,
            9 => return Codec::G722,
            18 => return Codec::G729,
            _ => {}
        }
        match encoding_name.map(str::to_ascii_lowercase).as_deref() {
            Some("pcmu" | "pcma") => Codec::G711,
            Some("g729" | "g729a") => Codec::G729,
            Some("g722") => Codec::G722,
            Some("gsm") => Codec::GsmFr,
            Some("g723") => Codec::G723_1,
            Some("opus") => Codec::Opus,
            _ => Codec::Unknown,
        }
    }
}

/// What the model was fed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MosInputs {
    pub codec: Codec,
    /// Network loss plus jitter-buffer discards, percent of expected packets.
    pub packet_loss_percent: f64,
    pub burst_ratio: f64,
    /// Mouth-to-ear delay estimate in ms (network + jitter buffer + packetisation).
    pub one_way_delay_ms: f64,
}

/// Inputs, intermediate terms and the result, for `explain`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MosExplanation {
    pub inputs: MosInputs,
    pub ie: f64,
    pub bpl: f64,
    /// False when Ie/Bpl are our approximation rather than a G.113 table value.
    pub ie_from_itu_table: bool,
    pub ie_eff: f64,
    pub id: f64,
    pub r_factor: f64,
    pub mos: f64,
}

/// G.107 default R0 − Is (all parameters at their default values), A = 0.
const R0_MINUS_IS: f64 = 93.2;

pub fn explain(inputs: MosInputs) -> MosExplanation {
    let (ie, bpl, _, from_table) = impairment(inputs.codec);
    let ppl = inputs.packet_loss_percent.clamp(0.0, 100.0);
    let burst = inputs.burst_ratio.max(1.0);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst + bpl);
    let d = inputs.one_way_delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let r = R0_MINUS_IS - id - ie_eff;
    MosExplanation {
        inputs,
        ie,
        bpl,
        ie_from_itu_table: from_table,
        ie_eff,
        id,
        r_factor: r,
        mos: mos_from_r(r),
    }
}

/// G.107 Annex B (B-4).
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// The model's inputs for one stream: loss from the Wireshark expected count plus simulated
/// jitter-buffer discards, burst ratio from the loss chain, and a delay of half the RTCP round
/// trip (if known) plus the buffer and one frame.
pub fn inputs_for_stream(
    stream: &StreamState,
    codec: Codec,
    round_trip_ms: Option<f64>,
) -> MosInputs {
    let s = stream.summary(super::Metrics::Rfc3550);
    let expected = s.expected.max(1) as f64;
    let lost = (s.lost.max(0) as f64 + stream.loss.late as f64).min(expected);
    let (_, _, frame_ms, _) = impairment(codec);
    MosInputs {
        codec,
        packet_loss_percent: 100.0 * lost / expected,
        burst_ratio: stream.loss.burst_ratio(),
        one_way_delay_ms: round_trip_ms.unwrap_or(0.0) / 2.0 + JITTER_BUFFER_MS as f64 + frame_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_to_mos_annex_b_points() {
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(100.0), 4.5);
        // G.107 default R = 93.2 gives MOS ≈ 4.41
        assert!((mos_from_r(93.2) - 4.409).abs() < 1e-3);
        assert!((mos_from_r(50.0) - 2.575).abs() < 1e-3);
    }

    #[test]
    fn loss_and_burstiness_lower_the_score() {
        let base = MosInputs {
            codec: Codec::G711,
            packet_loss_percent: 0.0,
            burst_ratio: 1.0,
            one_way_delay_ms: 0.0,
        };
        let clean = explain(base);
        assert!((clean.r_factor - 93.2).abs() < 1e-9);
        let lossy = explain(MosInputs {
            packet_loss_percent: 2.0,
            ..base
        });
        // Ie,eff = 95 * 2 / (2 + 4.3)
        assert!((lossy.ie_eff - 95.0 * 2.0 / 6.3).abs() < 1e-9);
        let bursty = explain(MosInputs {
            packet_loss_percent: 2.0,
            burst_ratio: 2.0,
            ..base
        });
        assert!(bursty.mos < clean.mos);
        assert!(bursty.ie_eff > lossy.ie_eff);
        let plc = explain(MosInputs {
            codec: Codec::G711Plc,
            packet_loss_percent: 2.0,
            ..base
        });
        assert!(plc.mos > lossy.mos);
        let g729 = explain(MosInputs {
            codec: Codec::G729,
            ..base
        });
        assert!((g729.r_factor - 82.2).abs() < 1e-9);
        let far = explain(MosInputs {
            one_way_delay_ms: 300.0,
            ..base
        });
        assert!((far.id - (0.024 * 300.0 + 0.11 * (300.0 - 177.3))).abs() < 1e-9);
    }

    #[test]
    fn codec_names_round_trip() {
        for c in [Codec::G711, Codec::G723_1, Codec::GsmFr, Codec::Unknown] {
            assert_eq!(Codec::from_name(c.name()), Some(c));
        }
        assert_eq!(Codec::from_name("nope"), None);
    }

    #[test]
    fn codec_from_payload() {
        assert_eq!(Codec::from_payload(8, None), Codec::G711);
        assert_eq!(Codec::from_payload(111, Some("opus")), Codec::Opus);
        assert_eq!(Codec::from_payload(96, None), Codec::Unknown);
    }
}
