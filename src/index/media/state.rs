//! The state the media pass carries from run to run (`MediaState`) and its file under
//! `<db>/state/`, whose format `schemas/db.md` documents.
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::announce::Announcement;
use super::flows::Maps;
use super::{FastMap, Flow5};
use crate::index::layout::{DbPaths, STATE_DIR};
use crate::index::IndexError;
use crate::rtp::{StreamKey, StreamTable};

/// Everything the pass carries from one file (and run) to the next.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MediaState {
    pub(super) table: StreamTable,
    pub(super) announced: Vec<((IpAddr, u16), Announcement)>,
    pub(super) rtcp_addrs: Vec<((IpAddr, u16), (String, i64))>,
    /// Last SRs per sender SSRC: (NTP middle bits, capture time).
    pub(super) sr_seen: Vec<(u32, Vec<(u32, i64)>)>,
    /// Latest measured RTT per reported SSRC, ms (feeds the E-model delay).
    pub(super) rtt_ms: Vec<(u32, f64)>,
    /// Capturer drops reported by files a stream spans, per stream (key and first packet), and
    /// the stream's packets lost by sequence gap within those files' time spans.
    pub(super) capture_drops: Vec<((StreamKey, i64), u64)>,
    #[serde(default)]
    pub(super) capture_window_lost: Vec<((StreamKey, i64), u64)>,
    pub(super) next_evict_ns: Option<i64>,
    /// Latest capture time seen: a file starting before it is out of order (see `file`).
    #[serde(default)]
    pub(super) clock_ns: Option<i64>,
    /// SPAN duplicates dropped per 5-tuple (src, src port, dst, dst port).
    #[serde(default)]
    pub(super) span_duplicates: Vec<(Flow5, u64)>,
    #[serde(skip)]
    pub(super) maps: Maps,
}

impl MediaState {
    pub(super) fn build_maps(&mut self) {
        if self.maps.built {
            return;
        }
        let m = &mut self.maps;
        m.built = true;
        for (k, mut a) in std::mem::take(&mut self.announced) {
            m.last_version += 1;
            a.version = m.last_version;
            m.announced.insert(k, a);
        }
        m.rtcp_addrs = std::mem::take(&mut self.rtcp_addrs).into_iter().collect();
        m.sr_seen = std::mem::take(&mut self.sr_seen).into_iter().collect();
        m.rtt_ms = std::mem::take(&mut self.rtt_ms).into_iter().collect();
        m.capture_drops = std::mem::take(&mut self.capture_drops)
            .into_iter()
            .collect();
        m.capture_window_lost = std::mem::take(&mut self.capture_window_lost)
            .into_iter()
            .collect();
        m.span_duplicates = std::mem::take(&mut self.span_duplicates)
            .into_iter()
            .collect();
        for s in self.table.streams() {
            if let Some(c) = &s.call_id {
                m.set_ssrc_call(s.key.ssrc, c.clone(), s.clock_rate());
            }
        }
    }

    /// Sorted vectors so the saved state is byte-identical for identical content.
    pub(super) fn flatten(&mut self) {
        fn sorted<K: Ord + Clone, V>(m: &mut FastMap<K, V>) -> Vec<(K, V)> {
            let mut v: Vec<(K, V)> = m.drain().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        let mut announced: Vec<_> = self.maps.announced.drain().collect();
        announced.sort_by_key(|a| a.0);
        self.announced = announced;
        self.rtcp_addrs = sorted(&mut self.maps.rtcp_addrs);
        self.sr_seen = sorted(&mut self.maps.sr_seen);
        let mut rtt: Vec<(u32, f64)> = self.maps.rtt_ms.drain().collect();
        rtt.sort_by_key(|a| a.0);
        self.rtt_ms = rtt;
        let mut drops: Vec<_> = self.maps.capture_drops.drain().collect();
        drops.sort_by_key(|a| a.0);
        self.capture_drops = drops;
        let mut lost: Vec<_> = self.maps.capture_window_lost.drain().collect();
        lost.sort_by_key(|a| a.0);
        self.capture_window_lost = lost;
        let mut dups: Vec<_> = self.maps.span_duplicates.drain().collect();
        dups.sort_by_key(|a| a.0);
        self.span_duplicates = dups;
        self.maps = Maps::default();
    }

    pub(super) fn path(db: &Path, run: u64) -> PathBuf {
        DbPaths(db).media_state(run)
    }

    /// The state the catalog's last run left (empty for a new DB).
    pub fn load(db: &Path, last_run: u64) -> Result<MediaState, IndexError> {
        let path = Self::path(db, last_run);
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MediaState::default()),
            Err(e) => return Err(IndexError::io(&path, e)),
        };
        let mut text = Vec::new();
        zstd::Decoder::new(f)
            .and_then(|mut d| d.read_to_end(&mut text))
            .map_err(|e| IndexError::io(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| IndexError::Corrupt {
            path,
            what: e.to_string(),
        })
    }

    /// Written atomically (tmp, fsync, rename) under the run's number.
    pub fn save(mut self, db: &Path, run: u64) -> Result<(), IndexError> {
        self.flatten();
        let dir = db.join(STATE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| IndexError::io(&dir, e))?;
        // Level 1: the state is written at the end of every run (13 MB of JSON for 6,000 open
        // streams), where level 3 cost a tenth of the media pass (and was no smaller on that
        // state: 2.37 MB against 2.22 MB).
        let json = serde_json::to_vec(&self).expect("media state serialises");
        let bytes = zstd::encode_all(&json[..], 1).map_err(|e| IndexError::io(&dir, e))?;
        let path = Self::path(db, run);
        crate::index::catalog::write_atomic(&path.with_extension("zst.tmp"), &path, &bytes)
    }
}

/// Deletes state files of runs other than `keep` (after a commit), or newer than `keep` (the
/// leftovers of a run that died before its commit point).
pub fn prune_states(db: &Path, keep: u64, only_newer: bool) {
    let Ok(entries) = std::fs::read_dir(db.join(STATE_DIR)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(run) = name
            .to_str()
            .and_then(|n| n.strip_prefix("media-"))
            .and_then(|n| n.split('.').next())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if run != keep && (!only_newer || run > keep) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
