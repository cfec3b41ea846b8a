//! libFuzzer entry for the `rtp` target of fuzz/src/lib.rs (`cargo fuzz run rtp`).
//! Seeds: fuzz/corpus/rtp/; crashes land in fuzz/artifacts/rtp/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::rtp(data, scratch));
});
