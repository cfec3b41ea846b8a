//! libFuzzer entry for the `decode` target of fuzz/src/lib.rs (`cargo fuzz run decode`).
//! Seeds: fuzz/corpus/decode/; crashes land in fuzz/artifacts/decode/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::decode(data, scratch));
});
