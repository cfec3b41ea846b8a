//! libFuzzer entry for the `vq` target of fuzz/src/lib.rs (`cargo fuzz run vq`).
//! Seeds: fuzz/corpus/vq/; crashes land in fuzz/artifacts/vq/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::vq(data, scratch));
});
