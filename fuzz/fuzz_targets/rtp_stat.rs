//! libFuzzer entry for the `rtp_stat` target of fuzz/src/lib.rs (`cargo fuzz run rtp_stat`).
//! Seeds: fuzz/corpus/rtp_stat/; crashes land in fuzz/artifacts/rtp_stat/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::rtp_stat(data, scratch));
});
