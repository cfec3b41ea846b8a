//! The catalog: which capture files are in the DB, by identity (path, size, content fingerprint).
//! It is the commit point of a run: rows of a file not in the catalog are garbage to be removed.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IndexError;

pub use super::layout::CATALOG_FILE;
pub const CATALOG_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogFile {
    pub id: u32,
    /// Absolute path as the user named it at index time: a symlink is kept, not resolved (the
    /// run knows a file again by this name or by the one it resolves to, see `run`).
    pub path: String,
    pub size: u64,
    /// xxh3-64 over the size, the first and the last 64 KiB, in hex: cheap, and enough to tell a
    /// reused ring-buffer name from the file indexed before.
    pub fingerprint: String,
    pub mtime_ns: i64,
    pub run: u64,
    pub packets: u64,
    pub sip_messages: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    /// Set when the file ended inside a record: offset of the partial record.
    pub truncated_at: Option<u64>,
    #[serde(default)]
    pub malformed_sip: u64,
    /// HEP copies of raw messages dropped, and SPAN duplicates dropped.
    #[serde(default)]
    pub hep_mirrors: u64,
    #[serde(default)]
    pub span_duplicates: u64,
    /// Set when the file could not be read at all; it is remembered so it is not retried forever.
    pub error: Option<String>,
}

impl CatalogFile {
    /// What orders files in time (`run::time_order`): the first packet, then the path.
    pub fn time_key(&self) -> (Option<i64>, &Path) {
        (self.first_ts_ns, Path::new(&self.path))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub version: u32,
    /// File ids are never reused: every id ≥ this one found in the tables is from an uncommitted run.
    pub next_file_id: u32,
    pub last_run: u64,
    pub files: Vec<CatalogFile>,
}

impl Catalog {
    pub fn load(db: &Path) -> Result<Catalog, IndexError> {
        let path = db.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let c: Catalog =
                    serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
                        path: path.clone(),
                        what: e.to_string(),
                    })?;
                if c.version != CATALOG_VERSION {
                    return Err(IndexError::Corrupt {
                        path,
                        what: format!("catalog version {} (expected {CATALOG_VERSION})", c.version),
                    });
                }
                Ok(c)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog {
                version: CATALOG_VERSION,
                ..Default::default()
            }),
            Err(e) => Err(IndexError::io(&path, e)),
        }
    }

    /// Write atomically: temp file, fsync, rename, fsync the directory.
    pub fn save(&self, db: &Path) -> Result<(), IndexError> {
        let path = db.join(CATALOG_FILE);
        let tmp = db.join(format!("{CATALOG_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).expect("catalog serialises");
        write_atomic(&tmp, &path, &bytes)
    }

    pub fn find(&self, path: &str, size: u64, fingerprint: &str) -> Option<&CatalogFile> {
        self.files
            .iter()
            .find(|f| f.path == path && f.size == size && f.fingerprint == fingerprint)
    }

    pub fn by_id(&self, id: u32) -> Option<&CatalogFile> {
        self.files.iter().find(|f| f.id == id)
    }
}

pub fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    let mut f = File::create(tmp).map_err(|e| IndexError::io(tmp, e))?;
    f.write_all(bytes).map_err(|e| IndexError::io(tmp, e))?;
    f.sync_all().map_err(|e| IndexError::io(tmp, e))?;
    drop(f);
    std::fs::rename(tmp, dest).map_err(|e| IndexError::io(dest, e))?;
    if let Some(dir) = dest.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The content fingerprint of a capture file (see `CatalogFile::fingerprint`).
pub fn fingerprint(path: &Path, size: u64) -> std::io::Result<String> {
    const SPAN: u64 = 64 * 1024;
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&size.to_le_bytes());
    let mut buf = vec![0u8; SPAN as usize];
    let n = read_up_to(&mut f, &mut buf)?;
    h.update(&buf[..n]);
    if size > SPAN {
        f.seek(SeekFrom::Start(size.saturating_sub(SPAN).max(SPAN)))?;
        let n = read_up_to(&mut f, &mut buf)?;
        h.update(&buf[..n]);
    }
    Ok(format!("{:016x}", h.digest()))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A capture file an `index` run was given: named on the command line, or found by walking a
/// directory or matching a glob (only those wait for `--settle`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Absolute, as the user spelled it: a symlink stays a symlink (its target is read, but
    /// reports and the catalog keep the name the user knows).
    pub path: PathBuf,
    pub named: bool,
}

/// Expand PATH arguments: files as given, directories recursively, globs via `glob`-like `*`
/// matching of the last component. Paths are made absolute without resolving symlinks; two
/// names of one file (a link and its target) are one input, the first name kept. The order is
/// the walk's; a run orders its files by capture time (`run`), not by name.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<Input>, IndexError> {
    let mut out = Vec::new();
    for p in inputs {
        let s = p.to_string_lossy();
        if s.contains('*') || s.contains('?') {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pat = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rd = std::fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))?;
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| wildcard(&pat, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            out.extend(found.into_iter().map(|path| Input { path, named: false }));
        } else if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            out.extend(found.into_iter().map(|path| Input { path, named: false }));
        } else if p.exists() {
            out.push(Input {
                path: p.clone(),
                named: true,
            });
        } else {
            return Err(IndexError::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
    }
    let mut seen = std::collections::HashMap::new();
    let mut kept: Vec<Input> = Vec::with_capacity(out.len());
    for mut i in out {
        i.path = std::path::absolute(&i.path).unwrap_or(i.path);
        let real = std::fs::canonicalize(&i.path).unwrap_or_else(|_| i.path.clone());
        match seen.get(&real) {
            // named on the command line beats found by a walk: it does not wait to settle
            Some(&k) => {
                let first: &mut Input = &mut kept[k];
                first.named |= i.named;
            }
            None => {
                seen.insert(real, kept.len());
                kept.push(i);
            }
        }
    }
    Ok(kept)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IndexError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| IndexError::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() && !is_hidden(&p) && looks_like_capture(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Directory walks take only files that start like a capture (pcap, pcapng) or a compressed
/// stream (gzip, bzip2, zstd), so README files and oracle outputs beside captures are not errors.
/// Files named explicitly are always taken, and reported if they are not captures.
pub fn looks_like_capture(p: &Path) -> bool {
    let mut magic = [0u8; 4];
    let Ok(mut f) = File::open(p) else {
        return true; // let the reader report why it cannot be opened
    };
    if read_up_to(&mut f, &mut magic).unwrap_or(0) < 4 {
        return false;
    }
    matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x0a, 0x0d, 0x0d, 0x0a]
            | [0x28, 0xb5, 0x2f, 0xfd]
            | [0x1f, 0x8b, _, _]
            | [b'B', b'Z', b'h', _]
    )
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// `*` and `?` wildcards over one path component.
pub fn wildcard(pat: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pat.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_component() {
        assert!(wildcard("*.pcap", "a.pcap"));
        assert!(wildcard("trunk-??.pcap*", "trunk-01.pcap.zst"));
        assert!(!wildcard("*.pcap", "a.pcapng"));
    }

    #[test]
    fn catalog_round_trips_and_saves_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::load(dir.path()).unwrap();
        assert_eq!(c.version, CATALOG_VERSION);
        c.next_file_id = 3;
        c.files.push(CatalogFile {
            id: 2,
            path: "/x/a.pcap".into(),
            size: 10,
            fingerprint: "00".into(),
            mtime_ns: 1,
            run: 1,
            packets: 5,
            sip_messages: 2,
            first_ts_ns: Some(1),
            last_ts_ns: Some(2),
            truncated_at: None,
            malformed_sip: 0,
            hep_mirrors: 0,
            span_duplicates: 0,
            error: None,
        });
        c.save(dir.path()).unwrap();
        assert!(!dir.path().join("catalog.json.tmp").exists());
        assert_eq!(Catalog::load(dir.path()).unwrap(), c);
        assert!(c.find("/x/a.pcap", 10, "00").is_some());
        assert!(c.find("/x/a.pcap", 11, "00").is_none());
    }

    #[test]
    fn fingerprint_changes_with_content_of_a_reused_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ring0.pcap");
        std::fs::write(&p, vec![1u8; 200_000]).unwrap();
        let a = fingerprint(&p, 200_000).unwrap();
        let mut v = vec![1u8; 200_000];
        v[199_999] = 2;
        std::fs::write(&p, v).unwrap();
        assert_ne!(a, fingerprint(&p, 200_000).unwrap());
    }
}

#[cfg(test)]
mod schema_doc {
    use super::*;

    /// schemas/db.md lists every field of a catalog file entry, and nothing else.
    #[test]
    fn catalog_fields_match_schemas_db_md() {
        let doc = include_str!("../../schemas/db.md");
        let section = doc
            .split("## `catalog.json`")
            .nth(1)
            .expect("catalog section");
        let mut documented: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(" |").next())
            .filter(|f| *f != "field" && !f.starts_with("---"))
            .collect();
        documented.sort();
        let entry = CatalogFile {
            id: 0,
            path: String::new(),
            size: 0,
            fingerprint: String::new(),
            mtime_ns: 0,
            run: 0,
            packets: 0,
            sip_messages: 0,
            first_ts_ns: None,
            last_ts_ns: None,
            truncated_at: None,
            malformed_sip: 0,
            hep_mirrors: 0,
            span_duplicates: 0,
            error: None,
        };
        let v = serde_json::to_value(&entry).unwrap();
        let mut actual: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        actual.sort();
        assert_eq!(actual, documented);
    }
}
