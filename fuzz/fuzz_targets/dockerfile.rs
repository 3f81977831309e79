//! The Dockerfile and `.dockerignore` readers: whatever the text, every query
//! the pipeline makes of a parsed file answers without panicking.
//!
//! The whole input is read both as a Dockerfile and as a `.dockerignore`; the
//! paths asked of the ignore rules are a few fixed ones plus the input's
//! first lines, so the fuzzer can aim them at its own patterns.

#![no_main]

use std::collections::BTreeMap;

use dockerfile::{DockerIgnore, Dockerfile, Frontend, Reach, reach};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 6] = [
    "src/main.rs",
    "target/debug/app",
    "services/api/Dockerfile",
    "README.md",
    ".git/HEAD",
    "a/b/c/d",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let no_args = BTreeMap::new();

    if let Ok(file) = Dockerfile::parse(text) {
        let _ = file.features();
        let _ = file.unsupported_features(Frontend::DOCKER_20_10);
        let _ = file.secret_mounts();
        let _ = file.copy_sources(&no_args, None);
        // A target named in the file, as `build.target` would.
        if let Some(name) = file.stages().iter().find_map(|s| s.name()) {
            let _ = file.copy_sources(&no_args, Some(&name));
        }
    }

    let lines: Vec<&str> = text.lines().take(4).collect();
    // Build args as `pipeline.yaml` passes them, some empty.
    let args: BTreeMap<String, String> = [("SERVICE", "api"), ("VERSION", ""), ("BASE_IMAGE", "x")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for build_args in [&no_args, &args] {
        if let Reach::Sources(sources) = reach(text, build_args, None) {
            for path in PATHS.iter().chain(&lines) {
                let _ = sources.includes(path);
                let _ = sources.may_contain(path);
            }
        }
    }

    if let Ok(ignore) = DockerIgnore::parse(text) {
        for path in PATHS.iter().chain(&lines) {
            let _ = ignore.excludes(path);
            let _ = ignore.skips_dir(path);
        }
    }
});
