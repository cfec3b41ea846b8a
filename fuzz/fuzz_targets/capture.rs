//! libFuzzer entry for the `capture` target of fuzz/src/lib.rs (`cargo fuzz run capture`).
//! Seeds: fuzz/corpus/capture/; crashes land in fuzz/artifacts/capture/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::capture(data, scratch));
});
