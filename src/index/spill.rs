//! Sorted runs on disk and their streaming k-way merge: what lets the dialog stage of a run hold
//! a budget's worth of summaries instead of every dialog of the input (README "Resource bounds").
//!
//! A run is a zstd stream of JSON lines, one item per line, sorted by the caller's order. Runs live
//! under `<db>/spill/` (never beside the tables), are removed when the run that made them ends, and
//! whatever a crash leaves there is removed by recovery. Hand-written rather than a crate
//! (extsort and friends) because the items must stay serde values the rest of the index already
//! reads, and a merge needs only a heap of readers.
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::IndexError;

pub use super::layout::SPILL_DIR;
/// Runs read at once by a merge; more are first merged in groups of this many. Each open run costs
/// its zstd window (128 KiB, see [`WINDOW_LOG`]) and a read buffer.
pub const FAN_IN: usize = 32;
/// zstd window of spill streams: small, so that a merge of [`FAN_IN`] runs stays a few MB.
const WINDOW_LOG: u32 = 17;

/// Where a run's spill files go; [`remove_all`] clears it.
pub fn spill_dir(db: &Path, run: u64) -> PathBuf {
    db.join(SPILL_DIR).join(run.to_string())
}

/// Removes every spill file (called by recovery, with the lock held, and after a run).
pub fn remove_all(db: &Path) -> Result<(), IndexError> {
    let dir = db.join(SPILL_DIR);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IndexError::io(&dir, e)),
    }
}

/// Writes items, one JSON line each, into a zstd stream.
pub struct RunWriter {
    path: PathBuf,
    enc: zstd::Encoder<'static, BufWriter<File>>,
    line: Vec<u8>,
    pub items: u64,
}

impl RunWriter {
    pub fn create(path: &Path) -> Result<Self, IndexError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        }
        let f = File::create(path).map_err(|e| IndexError::io(path, e))?;
        let mut enc =
            zstd::Encoder::new(BufWriter::new(f), 1).map_err(|e| IndexError::io(path, e))?;
        enc.window_log(WINDOW_LOG)
            .map_err(|e| IndexError::io(path, e))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            enc,
            line: Vec::new(),
            items: 0,
        })
    }

    pub fn push<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), IndexError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, item).map_err(|e| IndexError::Corrupt {
            path: self.path.clone(),
            what: e.to_string(),
        })?;
        self.line.push(b'\n');
        self.items += 1;
        self.enc
            .write_all(&self.line)
            .map_err(|e| IndexError::io(&self.path, e))
    }

    /// Ends the stream; the file is complete (not fsynced: a spill never outlives a crash).
    pub fn finish(self) -> Result<PathBuf, IndexError> {
        let w = self
            .enc
            .finish()
            .map_err(|e| IndexError::io(&self.path, e))?;
        w.into_inner()
            .map_err(|e| IndexError::io(&self.path, e.into_error()))?;
        Ok(self.path)
    }
}

/// Reads a run back, item by item.
pub struct RunReader<T> {
    path: PathBuf,
    lines: BufReader<zstd::Decoder<'static, BufReader<File>>>,
    buf: String,
    /// After an error the reader ends: a damaged stream yields one error, not one per call.
    failed: bool,
    _item: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> RunReader<T> {
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let f = File::open(path).map_err(|e| IndexError::io(path, e))?;
        let mut dec = zstd::Decoder::new(f).map_err(|e| IndexError::io(path, e))?;
        dec.window_log_max(WINDOW_LOG.max(27))
            .map_err(|e| IndexError::io(path, e))?;
        Ok(RunReader {
            path: path.to_path_buf(),
            lines: BufReader::with_capacity(64 * 1024, dec),
            buf: String::new(),
            failed: false,
            _item: std::marker::PhantomData,
        })
    }

    /// The next line as it is (for a header line that is not an item).
    pub fn next_line(&mut self) -> Result<Option<&str>, IndexError> {
        self.buf.clear();
        if self.failed {
            return Ok(None);
        }
        let n = self.lines.read_line(&mut self.buf).map_err(|e| {
            self.failed = true;
            IndexError::io(&self.path, e)
        })?;
        Ok((n > 0).then_some(self.buf.trim_end()))
    }
}

impl<T: DeserializeOwned> Iterator for RunReader<T> {
    type Item = Result<T, IndexError>;
    fn next(&mut self) -> Option<Self::Item> {
        let path = self.path.clone();
        match self.next_line() {
            Ok(Some(line)) => {
                let item = serde_json::from_str(line).map_err(|e| IndexError::Corrupt {
                    path,
                    what: e.to_string(),
                });
                self.failed = item.is_err();
                Some(item)
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

type Source<T> = Box<dyn Iterator<Item = Result<T, IndexError>> + Send>;

struct Head<T> {
    item: T,
    src: usize,
    order: fn(&T, &T) -> Ordering,
}

impl<T> PartialEq for Head<T> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl<T> Eq for Head<T> {}
impl<T> PartialOrd for Head<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Head<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reversed, and ties go to the earlier source so that the
        // merge is stable and its output does not depend on the heap's internals.
        (self.order)(&o.item, &self.item).then(o.src.cmp(&self.src))
    }
}

/// The k-way merge of sorted sources, itself sorted (stable: equal items leave in source order).
pub struct Merge<T> {
    sources: Vec<Source<T>>,
    heap: BinaryHeap<Head<T>>,
    order: fn(&T, &T) -> Ordering,
    started: bool,
    failed: bool,
}

impl<T> Merge<T> {
    pub fn new(sources: Vec<Source<T>>, order: fn(&T, &T) -> Ordering) -> Self {
        Merge {
            sources,
            heap: BinaryHeap::new(),
            order,
            started: false,
            failed: false,
        }
    }

    fn refill(&mut self, src: usize) -> Result<(), IndexError> {
        if let Some(item) = self.sources[src].next() {
            self.heap.push(Head {
                item: item?,
                src,
                order: self.order,
            });
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<T>, IndexError> {
        if !self.started {
            self.started = true;
            for src in 0..self.sources.len() {
                self.refill(src)?;
            }
        }
        let Some(head) = self.heap.pop() else {
            return Ok(None);
        };
        self.refill(head.src)?;
        Ok(Some(head.item))
    }
}

impl<T> Iterator for Merge<T> {
    type Item = Result<T, IndexError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.step();
        self.failed = r.is_err();
        r.transpose()
    }
}

/// Items collected in memory up to a byte budget, then sorted and written out as a run; at the
/// end, the merge of all runs and what is still in memory.
pub struct Sorter<T> {
    dir: PathBuf,
    prefix: String,
    order: fn(&T, &T) -> Ordering,
    size: fn(&T) -> usize,
    budget: usize,
    items: Vec<T>,
    bytes: usize,
    runs: Vec<PathBuf>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Sorter<T> {
    pub fn new(
        dir: &Path,
        prefix: &str,
        budget: usize,
        order: fn(&T, &T) -> Ordering,
        size: fn(&T) -> usize,
    ) -> Self {
        Sorter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            order,
            size,
            budget,
            items: Vec::new(),
            bytes: 0,
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, item: T) -> Result<(), IndexError> {
        self.bytes += (self.size)(&item) + std::mem::size_of::<T>();
        self.items.push(item);
        if self.bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> Result<(), IndexError> {
        let mut items = std::mem::take(&mut self.items);
        items.sort_by(self.order);
        let path = self
            .dir
            .join(format!("{}-{}.jsonl.zst", self.prefix, self.runs.len()));
        let mut w = RunWriter::create(&path)?;
        for it in &items {
            w.push(it)?;
        }
        self.runs.push(w.finish()?);
        self.bytes = 0;
        Ok(())
    }

    /// Everything pushed, in order.
    pub fn finish(mut self) -> Result<Merge<T>, IndexError> {
        self.items.sort_by(self.order);
        let mem: Source<T> = Box::new(std::mem::take(&mut self.items).into_iter().map(Ok));
        let mut sources = merge_runs(&self.dir, &self.prefix, self.runs, self.order)?;
        sources.push(mem);
        Ok(Merge::new(sources, self.order))
    }
}

/// Readers of `runs`, first merged in groups of [`FAN_IN`] into new runs while there are more.
pub fn merge_runs<T: Serialize + DeserializeOwned + Send + 'static>(
    dir: &Path,
    prefix: &str,
    mut runs: Vec<PathBuf>,
    order: fn(&T, &T) -> Ordering,
) -> Result<Vec<Source<T>>, IndexError> {
    let mut round = 0;
    while runs.len() > FAN_IN {
        let mut next = Vec::new();
        for (i, group) in runs.chunks(FAN_IN).enumerate() {
            let sources = open_all::<T>(group)?;
            let path = dir.join(format!("{prefix}-m{round}-{i}.jsonl.zst"));
            let mut w = RunWriter::create(&path)?;
            for item in Merge::new(sources, order) {
                w.push(&item?)?;
            }
            next.push(w.finish()?);
            for p in group {
                let _ = std::fs::remove_file(p);
            }
        }
        runs = next;
        round += 1;
    }
    open_all(&runs)
}

fn open_all<T: DeserializeOwned + Send + 'static>(
    runs: &[PathBuf],
) -> Result<Vec<Source<T>>, IndexError> {
    runs.iter()
        .map(|p| Ok(Box::new(RunReader::<T>::open(p)?) as Source<T>))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_value(a: &(u32, String), b: &(u32, String)) -> Ordering {
        a.0.cmp(&b.0)
    }

    #[test]
    fn sorter_spills_and_merges_stably_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // a budget of a few items forces many runs, and more runs than FAN_IN
        let mut s = Sorter::new(dir.path(), "t", 200, by_value, |x| x.1.len());
        let n = 3000u32;
        for i in 0..n {
            let v = (i * 7919) % 1000;
            s.push((v, format!("{i}"))).unwrap();
        }
        assert!(s.runs() > FAN_IN, "{} runs", s.runs());
        let out: Vec<_> = s.finish().unwrap().map(Result::unwrap).collect();
        assert_eq!(out.len(), n as usize);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut want: Vec<_> = (0..n).map(|i| (i * 7919) % 1000).collect();
        want.sort();
        assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), want);
    }

    #[test]
    fn a_damaged_run_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl.zst");
        let mut w = RunWriter::create(&p).unwrap();
        w.push(&(1u32, "a")).unwrap();
        w.push("not a pair").unwrap();
        w.push(&(2u32, "b")).unwrap();
        w.finish().unwrap();
        let r: Vec<_> = RunReader::<(u32, String)>::open(&p).unwrap().collect();
        assert!(r[0].is_ok() && r[1].is_err());
        assert_eq!(r.len(), 2, "a reader ends at its first error");
        std::fs::write(&p, b"\x28\xb5\x2f\xfd garbage").unwrap();
        let r: Vec<_> = RunReader::<(u32, String)>::open(&p).unwrap().collect();
        assert!(r.iter().any(Result::is_err));
    }
}
