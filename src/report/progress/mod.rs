//! The two ways progress is shown on stderr while a run works; the core only
//! emits [`Event`]s and never knows which one is listening.
//!
//! - [`Plain`]: one whole line per event, prefixed with the elapsed time and
//!   the service, written under a lock so parallel builds never interleave
//!   mid-line. For CI logs and pipes. On GitHub Actions each service's build
//!   output is held back and printed as one `::group::` when the service is
//!   done (parallel groups cannot nest), and failures become `::error`
//!   annotations.
//! - [`Tty`]: indicatif bars, one line per service (stage, build step `i/n`,
//!   bytes pushed, elapsed) and an overall bar; a finished service collapses
//!   to one line with its status, short digest and duration. Redrawn at most
//!   8 times a second, so two cores are not spent on drawing.

mod plain;
mod tty;

pub(crate) use plain::Plain;
pub(crate) use tty::Tty;

use crate::report::render::short_digest;
use crate::report::{ServiceResult, Status};

/// `built sha256:abc… in 3.2s (files changed: …)` and the like.
pub(super) fn outcome(result: &ServiceResult) -> String {
    let secs = result.duration_ms as f64 / 1000.0;
    match result.status {
        Status::Built | Status::Cached => format!(
            "{} {} in {secs:.1}s{}",
            if result.status == Status::Built {
                "built"
            } else {
                "cached"
            },
            result
                .digest
                .as_deref()
                .map(short_digest)
                .unwrap_or("(local)"),
            result
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        Status::Failed => format!("FAILED: {}", result.error.as_deref().unwrap_or("failed")),
        Status::Skipped => format!("skipped: {}", result.error.as_deref().unwrap_or("")),
    }
}

/// A GitHub Actions workflow command argument: `%`, CR and LF escaped.
pub(super) fn github_escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command property (`title=`): also `:` and `,` escaped.
pub(super) fn github_property(text: &str) -> String {
    github_escape(text).replace(':', "%3A").replace(',', "%2C")
}

/// A token for `::stop-commands::`, so build output cannot issue workflow
/// commands; not guessable by what the build prints before it.
pub(super) fn stop_token(service: &str) -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{service}{nanos}{}", std::process::id());
    hex::encode(&Sha256::digest(seed.as_bytes())[..12])
}
