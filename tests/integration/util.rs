//! Helpers shared by the integration tests (modules of the one `integration` binary).
use std::path::{Path, PathBuf};

use sipidx::source::{open_capture, PcapWriter};

/// Split a capture into `n` pcap ring files of about equal packet counts, like `tcpdump -C`.
pub fn split(src: &Path, dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut r = open_capture(src, 0).unwrap();
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        packets.push((p.ts_ns, p.link_type, p.data.to_vec(), p.orig_len));
    }
    let per = packets.len().div_ceil(n);
    let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for (i, chunk) in packets.chunks(per).enumerate() {
        let path = dir.join(format!("{stem}.ring{i:02}.pcap"));
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::new(f, chunk[0].1, 262_144, true).unwrap();
        for (ts, _, data, len) in chunk {
            w.write_packet(*ts, data, *len).unwrap();
        }
        w.flush().unwrap();
        out.push(path);
    }
    out
}
