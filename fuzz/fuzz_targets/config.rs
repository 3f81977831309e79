//! The `pipeline.yaml` loader: any text either parses into a config or gives
//! a config error (rendered, so its message code runs too); nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        pipeline::fuzzing::config(text);
    }
});
