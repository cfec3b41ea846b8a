//! The public reader: detects compression and format by magic bytes, then walks records.
//! Plain files are memory-mapped; compressed ones are streamed through a bounded buffer.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::record::{Record, Step, MAX_BLOCK_LEN};
use super::stream::{self, Stream};
use super::{pcap, pcapng};
use super::{FileId, LinkType, PacketLocation, SourceError};

/// Largest file whose pages are all mapped up front (ring files are far smaller).
const POPULATE_MAX: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Zstd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    Pcapng,
}

/// One captured packet, borrowed from the mapped file or the stream buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture time in nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    pub link_type: LinkType,
    /// pcapng interface id; 0 for pcap.
    pub interface_id: u32,
    /// The captured bytes (caplen of them).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    pub location: PacketLocation,
}

#[derive(Clone, Debug, Default)]
pub struct ReadStats {
    pub packets: u64,
    /// Captured bytes of all packets returned.
    pub packet_bytes: u64,
    /// Bytes of the (uncompressed) capture stream consumed.
    pub stream_bytes: u64,
    /// Set when the file ends inside a record: the offset of that last partial record.
    pub truncated_at: Option<u64>,
    /// pcapng blocks skipped (unknown types, malformed options) and records with absurd lengths skipped.
    pub skipped_blocks: u64,
    /// pcapng Interface Statistics Blocks: (interface id, isb_ifdrop) as last reported. Interface
    /// ids restart with each section; a file of several sections gets each section's last report
    /// added up per id.
    pub interface_drops: Vec<(u32, u64)>,
    /// Set when the walk stopped at a record whose lengths are impossible (pcap caplen over any
    /// snapshot length, pcapng block length out of bounds): the offset of that record. Nothing after
    /// it is read, since nothing says where the next record starts. Also counted in `skipped_blocks`.
    pub corrupt_at: Option<u64>,
    /// pcapng Simple Packet Blocks carry no timestamp; such packets get the previous packet's
    /// time (0 before any) and are counted here.
    pub packets_without_timestamp: u64,
}

/// How to open a capture; see `open_capture_with`.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Memory-map a plain (uncompressed) file. Only for closed files: a file that is still being
    /// written or may be truncated must be opened with `mmap: false` (plain buffered reads).
    pub mmap: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { mmap: true }
    }
}

/// Where the capture bytes come from.
enum Input {
    Mapped { map: Mmap, pos: usize },
    Stream(Stream),
}

impl Input {
    #[inline]
    fn window(&self) -> &[u8] {
        match self {
            Input::Mapped { map, pos } => map.get(*pos..).unwrap_or_default(),
            Input::Stream(s) => s.window(),
        }
    }

    /// The whole backing bytes and the window start in them.
    #[inline]
    fn raw(&self) -> (&[u8], usize) {
        match self {
            Input::Mapped { map, pos } => (map, *pos),
            Input::Stream(s) => s.raw(),
        }
    }

    #[inline]
    fn offset(&self) -> u64 {
        match self {
            Input::Mapped { pos, .. } => *pos as u64,
            Input::Stream(s) => s.offset(),
        }
    }

    #[inline]
    fn at_eof(&self) -> bool {
        match self {
            Input::Mapped { .. } => true,
            Input::Stream(s) => s.at_eof(),
        }
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        match self {
            Input::Mapped { map, pos } => *pos = (*pos + n).min(map.len()),
            Input::Stream(s) => s.consume(n),
        }
    }

    fn fill(&mut self, want: usize) -> io::Result<()> {
        match self {
            Input::Mapped { .. } => Ok(()),
            Input::Stream(s) => s.fill(want),
        }
    }
}

enum Walker {
    Pcap(pcap::Header),
    Pcapng(pcapng::State),
}

/// Implementation state, private to the source module.
pub(crate) struct Inner {
    input: Input,
    walker: Walker,
    file_id: FileId,
    done: bool,
}

/// A capture file open for reading; see `open_capture`.
pub struct CaptureReader {
    pub(crate) path: PathBuf,
    pub(crate) format: CaptureFormat,
    pub(crate) compression: Compression,
    pub(crate) stats: ReadStats,
    // implementation state is private to the source module
    pub(crate) inner: Inner,
}

/// Open `path`, detect compression (gzip, bzip2, zstd) and format (pcap µs/ns, either byte order; pcapng)
/// from magic bytes. `file_id` is stamped into every `PacketLocation`.
///
/// Plain files are memory-mapped, except those named `*.part` (still being written by convention),
/// which are read with plain reads; use `open_capture_with` to choose.
pub fn open_capture(path: &Path, file_id: FileId) -> Result<CaptureReader, SourceError> {
    let part = path.extension().is_some_and(|e| e == "part");
    open_capture_with(path, file_id, OpenOptions { mmap: !part })
}

/// `open_capture` with explicit options.
pub fn open_capture_with(
    path: &Path,
    file_id: FileId,
    options: OpenOptions,
) -> Result<CaptureReader, SourceError> {
    open_with_chunk(path, file_id, options, stream::CHUNK)
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the file.
fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// `chunk` is the stream read size; tests make it tiny to exercise every refill path.
pub(crate) fn open_with_chunk(
    path: &Path,
    file_id: FileId,
    options: OpenOptions,
    chunk: usize,
) -> Result<CaptureReader, SourceError> {
    let io_err = |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = [0u8; 16];
    let head_len = read_head(&mut file, &mut head).map_err(io_err)?;
    let head = &head[..head_len];
    let not_a_capture = |input: Option<&Input>, why: &str| {
        let mut magic = if head.is_empty() {
            "(none: empty file)".to_string()
        } else {
            hex(head)
        };
        if let Some(c) = compression_of(head) {
            let inner = input.map(|i| hex(&i.window()[..i.window().len().min(16)]));
            magic.push_str(&format!(
                " ({c:?}-compressed; decompressed: {})",
                inner.unwrap_or_default()
            ));
        }
        if !why.is_empty() {
            magic.push_str(&format!("; {why}"));
        }
        SourceError::NotACapture {
            path: path.to_path_buf(),
            magic,
        }
    };
    if head.is_empty() {
        return Err(not_a_capture(None, ""));
    }
    let compression = compression_of(head).unwrap_or(Compression::None);
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    let map = if compression == Compression::None && options.mmap && regular {
        // SAFETY: the caller guarantees the file is closed and immutable while it is read (files
        // still being written are opened with `mmap: false`), so the mapped bytes cannot change.
        #[allow(unsafe_code)]
        let map = unsafe {
            let mut o = memmap2::MmapOptions::new();
            if file.metadata().is_ok_and(|m| m.len() <= POPULATE_MAX) {
                o.populate();
            }
            o.map(&file)
        };
        // populate: one bulk page-table fill instead of a fault per 16 pages (fault-around): on
        // an RTP trunk, 56% fewer faults and ~5% less CPU. Not for huge files, which it would
        // read whole before the first record. What cannot be mapped (a pipe, a FIFO) is read
        // like a compressed stream instead.
        map.ok()
    } else {
        None
    };
    let mut input = match map {
        Some(map) => {
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            Input::Mapped { map, pos: 0 }
        }
        None => {
            // The bytes already read go in front of the rest, so pipes work as well as files.
            let src = io::Cursor::new(head.to_vec()).chain(file);
            let src = stream::decoder(src, compression).map_err(io_err)?;
            Input::Stream(Stream::new(src, chunk))
        }
    };

    let mut stats = ReadStats::default();
    input.fill(pcap::FILE_HEADER_LEN).map_err(io_err)?;
    let (format, walker) = if let Some((order, nanosecond)) = pcap::sniff(input.window()) {
        let Some(header) = pcap::parse_header(input.window()) else {
            return Err(not_a_capture(
                Some(&input),
                "too short for a pcap file header",
            ));
        };
        input.consume(pcap::FILE_HEADER_LEN);
        stats.stream_bytes = pcap::FILE_HEADER_LEN as u64;
        let big_endian = order == super::record::ByteOrder::Big;
        (
            CaptureFormat::Pcap {
                nanosecond,
                big_endian,
            },
            Walker::Pcap(header),
        )
    } else if pcapng::sniff(input.window()) {
        let mut state = pcapng::State::new();
        loop {
            match state.step(input.window(), &mut stats) {
                Step::Consumed(n) => {
                    input.consume(n as usize);
                    stats.stream_bytes += u64::from(n);
                    break;
                }
                Step::Need(n) if !input.at_eof() => input.fill(n as usize).map_err(io_err)?,
                Step::Need(_) => {
                    return Err(not_a_capture(
                        Some(&input),
                        "too short for a pcapng section header",
                    ))
                }
                Step::Corrupt(what) => {
                    return Err(SourceError::Corrupt {
                        path: path.to_path_buf(),
                        offset: 0,
                        what: what.to_string(),
                    })
                }
                // Cannot happen (a block with the SHB magic is an SHB), but is not worth a panic.
                Step::Packet(_) => {
                    return Err(not_a_capture(
                        Some(&input),
                        "first block is not a section header",
                    ))
                }
            }
        }
        (CaptureFormat::Pcapng, Walker::Pcapng(state))
    } else {
        return Err(not_a_capture(Some(&input), ""));
    };
    Ok(CaptureReader {
        path: path.to_path_buf(),
        format,
        compression,
        stats,
        inner: Inner {
            input,
            walker,
            file_id,
            done: false,
        },
    })
}

fn compression_of(head: &[u8]) -> Option<Compression> {
    stream::sniff_compression(head)
}

impl CaptureReader {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn format(&self) -> CaptureFormat {
        self.format
    }
    pub fn compression(&self) -> Compression {
        self.compression
    }
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }
    /// The pcap file header's snapshot length; `None` for pcapng (it is per interface there).
    pub fn snaplen(&self) -> Option<u32> {
        match &self.inner.walker {
            Walker::Pcap(h) => Some(h.snaplen),
            Walker::Pcapng(_) => None,
        }
    }
    pub fn file_id(&self) -> FileId {
        self.inner.file_id
    }
    /// True when the plain file is memory-mapped (packets borrow the map).
    pub fn is_mapped(&self) -> bool {
        matches!(self.inner.input, Input::Mapped { .. })
    }

    /// The next packet; `Ok(None)` at the end. A file cut mid-record ends with `Ok(None)` and
    /// `stats().truncated_at` set (never an error). Corrupt headers before any packet are errors
    /// (from `open_capture`); a record with impossible lengths ends the walk with `Ok(None)` and
    /// `stats().corrupt_at` set. An I/O or decompression error is returned once, then `Ok(None)`.
    ///
    /// The packet borrows the reader: the map for plain files (zero-copy), else the stream buffer.
    ///
    /// Always inlined (its slow path is `next_record`): called out of line across codegen units,
    /// its 56-byte result went through memory and was read back at other widths (a
    /// store-forwarding stall per packet); a plain `#[inline]` only made the call direct.
    #[inline(always)]
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, SourceError> {
        let inner = &mut self.inner;
        if inner.done {
            return Ok(None);
        }
        let (rec, offset, cursor) = match mapped_record(inner, &mut self.stats) {
            Some(found) => found,
            None => match self.next_record()? {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        let inner = &self.inner;
        // Consuming only moves the cursor: the record's bytes stay where they are until the next call.
        let (raw, _) = inner.input.raw();
        let start = cursor + rec.data_start as usize;
        let data = raw
            .get(start..start + rec.caplen as usize)
            .unwrap_or_default();
        self.stats.packets += 1;
        self.stats.packet_bytes += u64::from(rec.caplen);
        self.stats.stream_bytes += u64::from(rec.record_len);
        Ok(Some(Packet {
            ts_ns: rec.ts_ns,
            link_type: rec.link_type,
            interface_id: rec.interface_id,
            data,
            orig_len: rec.orig_len,
            location: PacketLocation {
                file_id: inner.file_id,
                offset,
                record_len: rec.record_len,
            },
        }))
    }

    /// The general walk: any format, any input, refilling the stream window as needed. Returns the
    /// record, its stream offset and its start in `Input::raw`, already consumed; `None` at the end.
    #[inline(never)]
    fn next_record(&mut self) -> Result<Option<(Record, u64, usize)>, SourceError> {
        let inner = &mut self.inner;
        // The walkers return offsets, not borrows, so the window can be refilled inside this loop
        // and sliced once after it.
        let rec: Record = loop {
            let window = inner.input.window();
            let available = window.len();
            let step = match &mut inner.walker {
                Walker::Pcap(h) => pcap::step(h, window),
                Walker::Pcapng(s) => s.step(window, &mut self.stats),
            };
            match step {
                Step::Packet(rec) => break rec,
                Step::Consumed(n) => {
                    inner.input.consume(n as usize);
                    self.stats.stream_bytes += u64::from(n);
                }
                Step::Need(n) if !inner.input.at_eof() => {
                    if let Err(source) = inner.input.fill(n as usize) {
                        inner.done = true;
                        return Err(SourceError::Io {
                            path: self.path.clone(),
                            source,
                        });
                    }
                }
                Step::Need(_) => {
                    if available > 0 {
                        self.stats.truncated_at = Some(inner.input.offset());
                    }
                    inner.done = true;
                    return Ok(None);
                }
                Step::Corrupt(_) => {
                    self.stats.corrupt_at = Some(inner.input.offset());
                    self.stats.skipped_blocks += 1;
                    inner.done = true;
                    return Ok(None);
                }
            }
        };
        let offset = inner.input.offset();
        let (_, cursor) = inner.input.raw();
        inner.input.consume(rec.record_len as usize);
        Ok(Some((rec, offset, cursor)))
    }
}

/// The common case on its own short path: a whole record in a mapped file (everything is in the
/// map, so there is never anything to refill). pcapng blocks that carry no packet (IDB, ISB,
/// unknown) are consumed here too. `None` sends the caller to the general walk, which handles
/// the end, a cut record and a corrupt one: `step` changes no state before answering `Need` or
/// `Corrupt`, so asking it again there gives the same answer.
#[inline(always)]
fn mapped_record(inner: &mut Inner, stats: &mut ReadStats) -> Option<(Record, u64, usize)> {
    let Inner {
        input: Input::Mapped { map, pos },
        walker,
        ..
    } = inner
    else {
        return None;
    };
    // The walk is a chain (each record's length finds the next) that the hardware prefetcher
    // did not run ahead of: 65% of the walk's time was the first load of each record header.
    prefetch_ahead(map, *pos);
    let state = match walker {
        Walker::Pcap(header) => {
            let cursor = *pos;
            let Step::Packet(rec) = pcap::step(header, map.get(cursor..).unwrap_or_default())
            else {
                return None;
            };
            // `step` saw all `record_len` bytes in the window, so this stays within the map.
            *pos = cursor + rec.record_len as usize;
            return Some((rec, cursor as u64, cursor));
        }
        Walker::Pcapng(state) => state,
    };
    loop {
        let cursor = *pos;
        match state.step(map.get(cursor..).unwrap_or_default(), stats) {
            Step::Packet(rec) => {
                *pos = cursor + rec.record_len as usize;
                return Some((rec, cursor as u64, cursor));
            }
            Step::Consumed(n) => {
                *pos = (cursor + n as usize).min(map.len());
                stats.stream_bytes += u64::from(n);
            }
            Step::Need(_) | Step::Corrupt(_) => return None,
        }
    }
}

/// How far ahead of the walk the map is prefetched: a page ahead, so the next page's TLB entry
/// and first lines are in by the time the walk gets there (1 KiB ahead gained half as much).
const PREFETCH_AHEAD: usize = 4096;

#[inline(always)]
fn prefetch_ahead(map: &[u8], pos: usize) {
    crate::hint::prefetch_byte_at(map, pos + PREFETCH_AHEAD);
}

/// Re-read the exact bytes of one record (pcap record header + data, or the whole pcapng block)
/// given its location, e.g. to copy it verbatim. For a compressed file the stream is decompressed
/// up to the record, so the cost grows with the offset; plain files are read in place.
///
/// Note a pcapng block only makes sense with its section's SHB and IDBs, and a pcap record with its
/// file header: extraction writing a new file should go through `writer::PcapWriter` instead.
pub fn read_record_bytes(path: &Path, location: PacketLocation) -> Result<Vec<u8>, SourceError> {
    let io_err = |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    if location.record_len > MAX_BLOCK_LEN {
        return Err(SourceError::Corrupt {
            path: path.to_path_buf(),
            offset: location.offset,
            what: format!(
                "record length {} is larger than any record",
                location.record_len
            ),
        });
    }
    let mut file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = [0u8; 16];
    let n = read_head(&mut file, &mut head).map_err(io_err)?;
    let mut out = vec![0u8; location.record_len as usize];
    let result = match compression_of(&head[..n]) {
        None => file
            .seek(SeekFrom::Start(location.offset))
            .and_then(|_| file.read_exact(&mut out)),
        Some(c) => file.seek(SeekFrom::Start(0)).and_then(|_| {
            let mut src = stream::decoder(file, c)?;
            let skipped = io::copy(&mut (&mut src).take(location.offset), &mut io::sink())?;
            if skipped < location.offset {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            src.read_exact(&mut out)
        }),
    };
    match result {
        Ok(()) => Ok(out),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(SourceError::Corrupt {
            path: path.to_path_buf(),
            offset: location.offset,
            what: "record extends past the end of the file".to_string(),
        }),
        Err(e) => Err(io_err(e)),
    }
}
