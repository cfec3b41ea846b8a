//! The media side of a window rebuild: the rows of streams starting in F's span and F's reports,
//! analysed again by a fresh media pass after a pre-roll that stands for the history it lacks.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::store_err;
use crate::decode::Decoder;
use crate::index::catalog::{Catalog, CatalogFile};
use crate::index::media::{self, CallMedia, MediaPass, MediaState};
use crate::index::run::{time_order, IndexPlan, Progress, DAY_NS};
use crate::index::scan::PREROLL_NS;
use crate::index::IndexError;
use crate::source::open_capture;
use crate::store::parquet::{self as pq, DayRange, DialogFilter};
use crate::store::record::{MessageRecord, QosReportRecord, RtcpReportRecord, RtpStreamRecord};

/// What the media rebuild did, and the calls whose dialog media columns it changed.
#[derive(Default)]
pub(super) struct MediaRebuild {
    pub(super) files_fed: usize,
    pub(super) streams_removed: u64,
    pub(super) streams: u64,
    pub(super) streams_continuing: u64,
    pub(super) rtcp_removed: u64,
    pub(super) rtcp: u64,
    pub(super) qos_removed: u64,
    pub(super) qos: u64,
    pub(super) calls: HashMap<String, CallMedia>,
}

/// A stream's identity apart from its first packet: the 5-tuple and SSRC, as rows spell them.
type RowKey = (String, u16, String, u16, u32);

fn row_key(r: &RtpStreamRecord) -> RowKey {
    (
        r.src_ip.clone(),
        r.src_port,
        r.dst_ip.clone(),
        r.dst_port,
        r.ssrc,
    )
}

/// Rebuild the media rows of the window: streams starting in `[lo, hi]` (the span of F), and the
/// RTCP and quality reports read from F's files. See the module doc for the pre-roll.
pub(super) fn rebuild_media(
    plan: &IndexPlan,
    run: u64,
    catalog: &Catalog,
    in_f: &HashSet<u32>,
    (lo, hi): (i64, i64),
    progress: &mut dyn Progress,
) -> Result<MediaRebuild, IndexError> {
    let db = &plan.db;
    let mut out = MediaRebuild::default();
    if !plan.media.analyse {
        // `--no-media`: the stored media rows stay as they are
        return Ok(out);
    }

    // stored streams: those starting in the span are replaced; those running into it continue
    let (replaced, earlier) = stored_streams_around(db, lo, Some(hi))?;
    let mut running: HashMap<RowKey, Vec<(i64, i64)>> = HashMap::new();
    for r in &earlier {
        running
            .entry(row_key(r))
            .or_default()
            .push((r.start_ns, r.end_ns));
    }

    // F's reports go before the pass's writers pick their part numbers
    progress.phase("removing the window's media rows");
    let days = DayRange::from_ns(
        Some(lo.saturating_sub(PREROLL_NS)),
        Some(hi.saturating_add(1)),
    );
    out.rtcp_removed =
        pq::delete_rows::<RtcpReportRecord>(db, run, days, |r| in_f.contains(&r.file_id), |_| {})
            .map_err(|e| store_err(db, e))?;
    out.qos_removed =
        pq::delete_rows::<QosReportRecord>(db, run, days, |r| in_f.contains(&r.file_id), |_| {})
            .map_err(|e| store_err(db, e))?;

    progress.phase("media analysis");
    let mut pass = MediaPass::new(db, run, &plan.media, MediaState::default())?;
    pass.keep_reports_of(in_f.clone());
    media_preroll(plan, catalog, &mut pass, lo, &earlier, in_f)?;

    // the media order of `run`: catalog files in capture-time order, from the first one the span
    // overlaps, on until the streams starting in the span have closed
    let continuing = |key: RowKey, first_ns: i64| {
        running
            .get(&key)
            .is_some_and(|v| v.iter().any(|&(a, b)| a < lo && b >= first_ns))
    };
    let kept =
        |first_ns: i64, key: RowKey| first_ns >= lo && first_ns <= hi && !continuing(key, first_ns);
    let mut seq: Vec<&CatalogFile> = catalog.files.iter().filter(|f| f.error.is_none()).collect();
    seq.sort_by(|a, b| time_order(a.time_key(), b.time_key()));
    let overlaps = |f: &CatalogFile| matches!((f.first_ts_ns, f.last_ts_ns), (Some(a), Some(b)) if a <= hi && b >= lo);
    let first = seq.iter().position(|f| overlaps(f)).unwrap_or(seq.len());
    let last = seq.iter().rposition(|f| overlaps(f)).unwrap_or(0);
    if let Some(c) = seq[..first].iter().filter_map(|f| f.last_ts_ns).max() {
        pass.preroll_clock(c);
    }
    for (i, f) in seq.iter().enumerate().skip(first) {
        if i > last {
            let open = pass.open_streams().iter().any(|s| {
                let k = &s.key;
                kept(
                    s.first_ns,
                    (
                        k.src.to_string(),
                        k.src_port,
                        k.dst.to_string(),
                        k.dst_port,
                        k.ssrc,
                    ),
                )
            });
            if !open {
                break;
            }
        }
        pass.file(Path::new(&f.path), f.id)?;
        out.files_fed += 1;
    }
    let (rows, outcome) = pass.finish_rows()?;
    out.rtcp = outcome.rtcp_rows;
    out.qos = outcome.qos_rows;
    let mut streams: Vec<RtpStreamRecord> = Vec::new();
    for r in rows {
        if kept(r.start_ns, row_key(&r)) {
            streams.push(r);
        } else if r.start_ns >= lo && r.start_ns <= hi {
            out.streams_continuing += 1;
        }
    }

    // replace the span's stream rows, then summarise their calls again
    out.streams_removed = replaced.len() as u64;
    out.streams = streams.len() as u64;
    let mut calls: HashSet<String> = replaced.iter().filter_map(|r| r.call_id.clone()).collect();
    calls.extend(streams.iter().filter_map(|r| r.call_id.clone()));
    let end = streams.iter().map(|r| r.end_ns).max().unwrap_or(hi).max(hi);
    let removed: HashSet<String> = replaced.iter().map(|r| r.stream_id.clone()).collect();
    let previous: Vec<_> = replaced
        .iter()
        .map(|r| pq::day_of(r.start_ns))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    pq::upsert_rows_removing(
        db,
        run,
        streams,
        &removed,
        &previous,
        false,
        |r| &r.stream_id,
        |a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)),
    )
    .map_err(|e| store_err(db, e))?;
    if !calls.is_empty() {
        out.calls = media::call_media(db, &calls, (lo, end))?;
    }
    Ok(out)
}

/// The pre-roll of a media pass that starts at `lo` on a DB holding what came before: what the
/// pass would carry there had it analysed everything before `lo` — the SDP of the calls alive at
/// `lo` (their messages with a body, re-read from the captures at their stored locations), the
/// SRs of the last idle period (RTT), the stored RTTs, and the `earlier` stored streams' last
/// packets keeping their announcements alive. Files in `skip` are the ones being re-analysed.
pub(in crate::index) fn media_preroll(
    plan: &IndexPlan,
    catalog: &Catalog,
    pass: &mut MediaPass<'_>,
    lo: i64,
    earlier: &[RtpStreamRecord],
    skip: &HashSet<u32>,
) -> Result<(), IndexError> {
    let db = &plan.db;
    let in_f = skip;
    let reach = media::IDLE_NS + media::EVICT_EVERY_NS;
    // pre-roll sources: SDP of the calls alive at `lo`, SRs and RTTs of the last idle period
    let mut calls_alive: HashSet<String> =
        earlier.iter().filter_map(|r| r.call_id.clone()).collect();
    let mut sdp_from = lo;
    for d in pq::read_dialogs(
        db,
        &DialogFilter {
            since_ns: Some(lo.saturating_sub(DAY_NS)),
            until_ns: Some(lo),
            ..Default::default()
        },
    )
    .map_err(|e| store_err(db, e))?
    {
        if d.end_ns >= lo.saturating_sub(reach) {
            sdp_from = sdp_from.min(d.start_ns);
            calls_alive.insert(d.call_id);
        }
    }
    for r in earlier {
        sdp_from = sdp_from.min(r.start_ns.saturating_sub(DAY_NS));
    }
    let mut wanted: HashMap<u32, HashSet<u64>> = HashMap::new();
    if !calls_alive.is_empty() {
        pq::for_each_row::<MessageRecord>(db, DayRange::from_ns(Some(sdp_from), Some(lo)), |m| {
            let sdp = m.content_type.as_deref().is_some_and(|c| {
                let c = c.to_ascii_lowercase();
                c.contains("sdp") || c.starts_with("multipart/")
            });
            if sdp && m.ts_ns < lo && !in_f.contains(&m.file_id) && calls_alive.contains(&m.call_id)
            {
                wanted.entry(m.file_id).or_default().insert(m.offset);
            }
            Ok(())
        })
        .map_err(|e| store_err(db, e))?;
    }
    let mut rtts: Vec<(i64, u32, f64)> = Vec::new();
    pq::for_each_row::<RtcpReportRecord>(
        db,
        DayRange::from_ns(Some(lo.saturating_sub(reach)), Some(lo)),
        |r| {
            if r.ts_ns >= lo.saturating_sub(reach) && r.ts_ns < lo && !in_f.contains(&r.file_id) {
                if r.packet_type == "SR" {
                    wanted.entry(r.file_id).or_default().insert(r.offset);
                }
                if let (Some(ssrc), Some(rtt)) = (r.source_ssrc, r.rtt_ms) {
                    rtts.push((r.ts_ns, ssrc, rtt));
                }
            }
            Ok(())
        },
    )
    .map_err(|e| store_err(db, e))?;

    let mut pre: Vec<(u32, HashSet<u64>)> = wanted.into_iter().collect();
    pre.sort_by_key(|p| p.0);
    for (id, offsets) in pre {
        let Some(f) = catalog.by_id(id) else { continue };
        let Ok(mut reader) = open_capture(Path::new(&f.path), id) else {
            continue;
        };
        let mut decoder = Decoder::new(plan.media.decode.clone());
        while let Ok(Some(p)) = reader.next_packet() {
            if offsets.contains(&p.location.offset) {
                decoder.decode(&p, |dg| pass.preroll(dg));
            }
        }
    }
    rtts.sort_by_key(|r| r.0);
    for (_, ssrc, rtt) in rtts {
        pass.preroll_rtt(ssrc, rtt);
    }
    for r in earlier {
        if let (Ok(s), Ok(d)) = (r.src_ip.parse(), r.dst_ip.parse()) {
            pass.preroll_touch((s, r.src_port), (d, r.dst_port), r.end_ns.min(lo - 1));
        }
    }

    Ok(())
}

/// Stored streams around `lo`: those starting at or after it (up to `hi`), and those started
/// before it that were still running within `media::IDLE_NS + EVICT_EVERY_NS` of it (a pass
/// starting at `lo` sees their continuation; see the module doc).
pub(in crate::index) fn stored_streams_around(
    db: &Path,
    lo: i64,
    hi: Option<i64>,
) -> Result<(Vec<RtpStreamRecord>, Vec<RtpStreamRecord>), IndexError> {
    let reach = media::IDLE_NS + media::EVICT_EVERY_NS;
    let mut from: Vec<RtpStreamRecord> = Vec::new();
    let mut earlier: Vec<RtpStreamRecord> = Vec::new();
    pq::for_each_row::<RtpStreamRecord>(
        db,
        DayRange::from_ns(
            Some(lo.saturating_sub(DAY_NS)),
            hi.map(|h| h.saturating_add(1)),
        ),
        |r| {
            if r.start_ns >= lo && hi.is_none_or(|h| r.start_ns <= h) {
                from.push(r);
            } else if r.start_ns < lo && r.end_ns >= lo.saturating_sub(reach) {
                earlier.push(r);
            }
            Ok(())
        },
    )
    .map_err(|e| store_err(db, e))?;
    Ok((from, earlier))
}
