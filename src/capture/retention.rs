//! File names of the ring and the budgets over its directory: `-W` newest files per ring,
//! `--keep-bytes` and `--keep-time` over every complete `sipidx-*` capture in the directory.
//!
//! Names sort by time: `sipidx-LABEL-YYYYmmddTHHMMSS.ffffffZ-SEQ.EXT`, written as `NAME.part` first.
//! Only complete (renamed) files are ever deleted; the file a ring is writing is never touched.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// Replaces characters that would make a name ambiguous or unsafe with `_`.
pub(crate) fn sanitize_label(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// `sipidx-LABEL-20240327T104000.123456Z-000001.pcap` for a file opened at `ts_ns`.
pub(crate) fn file_name(label: &str, ts_ns: i64, seq: u64, ext: &str) -> String {
    let t = DateTime::<Utc>::from_timestamp(
        ts_ns.div_euclid(1_000_000_000),
        ts_ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default();
    format!(
        "sipidx-{label}-{}-{seq:06}.{ext}",
        t.format("%Y%m%dT%H%M%S%.6fZ")
    )
}

/// A complete ring file found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RingFile {
    pub path: PathBuf,
    pub label: String,
    /// The name's time part: fixed width, so it sorts as text.
    pub time: String,
    pub seq: u64,
    pub len: u64,
    pub modified: SystemTime,
}

/// Splits a complete ring file's name into (label, time, seq); `None` for anything else,
/// including `.part` files.
pub(crate) fn parse_name(name: &str) -> Option<(&str, &str, u64)> {
    let stem = name
        .strip_suffix(".pcap")
        .or_else(|| name.strip_suffix(".pcapng"))?;
    let rest = stem.strip_prefix("sipidx-")?;
    let (rest, seq) = rest.rsplit_once('-')?;
    let (label, time) = rest.rsplit_once('-')?;
    let ok_time = time.len() == 23 && time.ends_with('Z') && time.as_bytes()[8] == b'T';
    if label.is_empty() || !ok_time {
        return None;
    }
    Some((label, time, seq.parse().ok()?))
}

/// The complete ring files in `dir`, oldest first.
pub(crate) fn scan(dir: &Path) -> io::Result<Vec<RingFile>> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some((label, time, seq)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        // A file deleted between the listing and the stat is simply gone.
        let Ok(md) = e.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        files.push(RingFile {
            path: e.path(),
            label: label.to_string(),
            time: time.to_string(),
            seq,
            len: md.len(),
            modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    files.sort_by(|a, b| (&a.time, a.seq, &a.label).cmp(&(&b.time, b.seq, &b.label)));
    Ok(files)
}

/// The budgets; all `None` means keep everything (and a full disk is then fatal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Keep the newest N complete files of each ring (`-W`).
    pub ring_files: Option<u32>,
    /// Keep the newest complete files whose sizes add up to at most this (`--keep-bytes`).
    pub keep_bytes: Option<u64>,
    /// Delete complete files last written longer ago than this (`--keep-time`).
    pub keep_time: Option<Duration>,
}

impl Budget {
    pub fn any(&self) -> bool {
        self.ring_files.is_some() || self.keep_bytes.is_some() || self.keep_time.is_some()
    }
}

/// Budget enforcement shared by all rings of one capture; the lock makes two rings never race
/// over the same deletion.
pub(crate) struct Retention {
    dir: PathBuf,
    budget: Budget,
    lock: Mutex<()>,
    pub deleted: AtomicU64,
    pub deleted_bytes: AtomicU64,
}

impl Retention {
    pub fn new(dir: &Path, budget: Budget) -> Retention {
        Retention {
            dir: dir.to_path_buf(),
            budget,
            lock: Mutex::new(()),
            deleted: AtomicU64::new(0),
            deleted_bytes: AtomicU64::new(0),
        }
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    fn remove(&self, f: &RingFile) -> io::Result<()> {
        match fs::remove_file(&f.path) {
            Ok(()) => {
                self.deleted.fetch_add(1, Ordering::Relaxed);
                self.deleted_bytes.fetch_add(f.len, Ordering::Relaxed);
                Ok(())
            }
            // someone else (an operator, a second capture) got there first
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Applies the budgets to the directory as it is now.
    pub fn enforce(&self, now: SystemTime) -> io::Result<()> {
        if !self.budget.any() {
            return Ok(());
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let files = scan(&self.dir)?;
        let mut doomed = vec![false; files.len()];
        if let Some(n) = self.budget.ring_files {
            let mut seen = std::collections::HashMap::<&str, u32>::new();
            for (i, f) in files.iter().enumerate().rev() {
                let c = seen.entry(&f.label).or_default();
                *c += 1;
                if *c > n {
                    doomed[i] = true;
                }
            }
        }
        if let Some(max) = self.budget.keep_bytes {
            let mut total = 0u64;
            for (i, f) in files.iter().enumerate().rev() {
                if doomed[i] {
                    continue;
                }
                total += f.len;
                if total > max {
                    doomed[i] = true;
                }
            }
        }
        if let Some(age) = self.budget.keep_time {
            let cutoff = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
            for (i, f) in files.iter().enumerate() {
                if f.modified < cutoff {
                    doomed[i] = true;
                }
            }
        }
        for (f, _) in files.iter().zip(&doomed).filter(|(_, d)| **d) {
            self.remove(f)?;
        }
        Ok(())
    }

    /// On a full disk: deletes the oldest complete ring file, if the budgets allow deleting at all.
    /// Returns false when nothing could be freed.
    pub fn free_oldest(&self) -> io::Result<bool> {
        if !self.budget.any() {
            return Ok(false);
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match scan(&self.dir)?.first() {
            Some(f) => self.remove(f).map(|()| true),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_parse_back() {
        let a = file_name("eth0", 1_711_536_000_123_456_789, 7, "pcap");
        assert_eq!(a, "sipidx-eth0-20240327T104000.123456Z-000007.pcap");
        assert_eq!(parse_name(&a), Some(("eth0", "20240327T104000.123456Z", 7)));
        let b = file_name("eth0", 1_711_536_001_000_000_000, 1, "pcapng");
        assert!(a < b);
        assert_eq!(parse_name(&format!("{a}.part")), None);
        assert_eq!(parse_name("sipidx-x.pcap"), None);
        assert_eq!(parse_name("hep-nodes.jsonl"), None);
        // labels may hold dashes: the name is split from the right
        let c = file_name("br-lan", 0, 0, "pcap");
        assert_eq!(parse_name(&c).unwrap().0, "br-lan");
        assert_eq!(sanitize_label("eth0:1/x"), "eth0_1_x");
    }

    fn touch(dir: &Path, label: &str, secs: i64, len: usize) -> PathBuf {
        let p = dir.join(file_name(label, secs * 1_000_000_000, 0, "pcap"));
        fs::write(&p, vec![0u8; len]).unwrap();
        p
    }

    fn names(dir: &Path) -> Vec<String> {
        scan(dir)
            .unwrap()
            .into_iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn ring_files_are_counted_per_label() {
        let d = tempfile::tempdir().unwrap();
        for s in 0..4 {
            touch(d.path(), "a", 100 + s, 10);
            touch(d.path(), "b", 200 + s, 10);
        }
        fs::write(d.path().join("sipidx-a-x.pcap.part"), b"x").unwrap();
        let r = Retention::new(
            d.path(),
            Budget {
                ring_files: Some(2),
                ..Budget::default()
            },
        );
        r.enforce(SystemTime::now()).unwrap();
        let left = names(d.path());
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(left[0].contains("a-19700101T000142"));
        assert!(left[2].contains("b-19700101T000322"));
        assert!(d.path().join("sipidx-a-x.pcap.part").exists());
        assert_eq!(r.deleted.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn byte_budget_keeps_newest_and_free_oldest() {
        let d = tempfile::tempdir().unwrap();
        for s in 0..5 {
            touch(d.path(), "a", s, 100);
        }
        let r = Retention::new(
            d.path(),
            Budget {
                keep_bytes: Some(250),
                ..Budget::default()
            },
        );
        r.enforce(SystemTime::now()).unwrap();
        let left = names(d.path());
        assert_eq!(left.len(), 2);
        assert!(left[0].contains("T000003"));
        assert!(r.free_oldest().unwrap());
        assert_eq!(names(d.path()).len(), 1);
        let none = Retention::new(d.path(), Budget::default());
        assert!(!none.free_oldest().unwrap());
    }

    #[test]
    fn age_budget_uses_modification_time() {
        let d = tempfile::tempdir().unwrap();
        let p = touch(d.path(), "a", 1, 1);
        touch(d.path(), "a", 2, 1);
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let r = Retention::new(
            d.path(),
            Budget {
                keep_time: Some(Duration::from_secs(60)),
                ..Budget::default()
            },
        );
        r.enforce(SystemTime::now()).unwrap();
        assert_eq!(names(d.path()).len(), 1);
        assert!(!p.exists());
    }
}
