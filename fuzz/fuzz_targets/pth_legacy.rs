#![no_main]

// posescope::fuzzing::pth_legacy documents what this feeds; tests/fuzz_corpora.rs replays the corpus.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    posescope::fuzzing::pth_legacy(data);
});
