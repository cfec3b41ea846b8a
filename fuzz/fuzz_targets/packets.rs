//! libFuzzer entry for the `packets` target of fuzz/src/lib.rs (`cargo fuzz run packets`).
//! Seeds: fuzz/corpus/packets/; crashes land in fuzz/artifacts/packets/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::packets(data, scratch));
});
