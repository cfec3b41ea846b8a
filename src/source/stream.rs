//! Streamed input: compressed files (gzip, bzip2, zstd, told apart by magic bytes) and plain files
//! still being written, read through one bounded buffer so memory stays flat whatever the file size.
use std::io::{self, BufReader, Read};

use super::Compression;

/// Bytes asked of the source per read; the buffer holds about this much (plus one record at most).
pub(crate) const CHUNK: usize = 1 << 20;

/// Which compression the first bytes announce, if any.
pub(crate) fn sniff_compression(b: &[u8]) -> Option<Compression> {
    match b {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [b'B', b'Z', b'h', ..] => Some(Compression::Bzip2),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
        // A zstd skippable frame (pzstd and seekable-zstd writers start with one).
        [0x50..=0x5f, 0x2a, 0x4d, 0x18, ..] => Some(Compression::Zstd),
        _ => None,
    }
}

/// A reader yielding the uncompressed capture bytes of `file`.
pub(crate) fn decoder<R: Read + Send + 'static>(
    file: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::None => Box::new(file),
        // Multi-member / multi-stream decoders: `cat a.gz b.gz` and pbzip2 output are valid files.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(
            BufReader::with_capacity(128 * 1024, file),
        )?),
    })
}

/// A window over a byte stream: `buf[start..end]` are bytes not yet consumed, and `base` is the
/// stream offset of `buf[start]`. Bytes before `start` stay valid until the next `fill`.
pub(crate) struct Stream {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
    eof: bool,
    chunk: usize,
}

impl Stream {
    pub fn new(src: Box<dyn Read + Send>, chunk: usize) -> Stream {
        let chunk = chunk.max(1);
        Stream {
            src,
            buf: vec![0; chunk],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            chunk,
        }
    }

    #[inline]
    pub fn window(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The whole buffer and the index of the window start in it.
    #[inline]
    pub fn raw(&self) -> (&[u8], usize) {
        (&self.buf, self.start)
    }

    #[inline]
    pub fn offset(&self) -> u64 {
        self.base
    }

    #[inline]
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    #[inline]
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.base += n as u64;
    }

    /// Read until the window holds `want` bytes or the source ends. `want` is bounded by the
    /// callers (record limits), and so is the buffer.
    pub fn fill(&mut self, want: usize) -> io::Result<()> {
        while self.end - self.start < want && !self.eof {
            // Move the window to the front when the record would not fit after it, or when little
            // room is left for reading (the window is at most one record, so this copy is small).
            let short_tail = self.buf.len() - self.end < self.chunk / 2;
            if self.start > 0 && (short_tail || self.buf.len() - self.start < want) {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            // Here `end < buf.len()`: the window is shorter than `want`, which fits after `start`.
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A compressed stream cut short: the data ends here, like a cut plain file.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.eof = true,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source handing out at most 3 bytes per read.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(3).min(self.0.len() - self.1);
            out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn window_refills_compacts_and_grows_for_a_large_record() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut s = Stream::new(Box::new(Trickle(data.clone(), 0)), 8);
        s.fill(5).unwrap();
        assert!(s.window().len() >= 5);
        assert_eq!(&s.window()[..5], &data[..5]);
        s.consume(5);
        s.fill(100).unwrap();
        assert_eq!(&s.window()[..100], &data[5..105]);
        assert_eq!(s.offset(), 5);
        s.consume(100);
        s.fill(10_000).unwrap();
        assert!(s.at_eof());
        assert_eq!(s.window(), &data[105..]);
    }

    #[test]
    fn compression_magics() {
        assert_eq!(
            sniff_compression(&[0x1f, 0x8b, 8, 0]),
            Some(Compression::Gzip)
        );
        assert_eq!(sniff_compression(b"BZh91AY"), Some(Compression::Bzip2));
        assert_eq!(
            sniff_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Compression::Zstd)
        );
        assert_eq!(
            sniff_compression(&[0x5e, 0x2a, 0x4d, 0x18]),
            Some(Compression::Zstd)
        );
        assert_eq!(sniff_compression(&[0xd4, 0xc3, 0xb2, 0xa1]), None);
        assert_eq!(sniff_compression(&[0x1f]), None);
    }
}
