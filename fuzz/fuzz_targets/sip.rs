//! libFuzzer entry for the `sip` target of fuzz/src/lib.rs (`cargo fuzz run sip`).
//! Seeds: fuzz/corpus/sip/; crashes land in fuzz/artifacts/sip/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipidx_fuzz::with_scratch(|scratch| sipidx_fuzz::sip_parse(data, scratch));
});
