//! libFuzzer entry for the `sdp` target of fuzz/src/lib.rs (`cargo fuzz run sdp`).
//! Seeds: fuzz/corpus/sdp/; crashes land in fuzz/artifacts/sdp/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::sdp(data, scratch));
});
