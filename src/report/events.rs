//! The narrow boundary the core reports progress through. The core sends
//! [`Event`]s and never touches the terminal; the CLI layer decides how they
//! look (`progress`), and where they are written (`background`, so that a
//! slow log pipe never holds up a build).

use crate::report::ServiceResult;

/// The stage a service is in, or failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Waiting,
    Repository,
    CacheCheck,
    Build,
    Push,
    Tag,
}

impl Stage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Repository => "repository",
            Stage::CacheCheck => "cache check",
            Stage::Build => "build",
            Stage::Push => "push",
            Stage::Tag => "tag",
        }
    }
}

/// What the core tells the outside world while it works. Owned, so that it
/// can be handed to the thread that writes it.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The run starts with these services, in plan order.
    Queued { services: Vec<String> },
    /// The plan hashed what the builds can see.
    Hashed { files: usize, millis: u64 },
    /// Something about the whole run worth one line (which builder builds).
    Note { text: String },
    /// A service entered a stage.
    Stage { service: String, stage: Stage },
    /// A build step began: `Step index/count : instruction`.
    Step {
        service: String,
        index: usize,
        count: usize,
        instruction: String,
    },
    /// A line of build or push output (also in the service's log file).
    Log { service: String, line: String },
    /// Layer bytes sent so far, of the total known so far.
    Pushed {
        service: String,
        sent: u64,
        total: u64,
    },
    /// An attempt failed with a transient error and is tried again.
    Retry {
        service: String,
        /// The attempt that failed, from 1.
        attempt: u32,
        cause: String,
        delay_ms: u64,
    },
    /// A tag was added inside the registry.
    Tagged { service: String, tag: String },
    /// The service is done (built, cached, failed or skipped); again, with
    /// the final status, when adding its tags failed afterwards.
    Finished {
        service: String,
        result: Box<ServiceResult>,
    },
    /// A manifest was patched (or left as it was), with its report.
    Patched {
        path: String,
        changed: bool,
        report: Box<crate::patch::FileReport>,
    },
}

pub(crate) trait Reporter: Send + Sync {
    fn event(&self, event: Event);
    /// Time passed with no event: a chance to redraw a spinner.
    fn tick(&self) {}
    /// The run is over: stop redrawing, and write what is pending, before
    /// the summary is printed.
    fn done(&self) {}
}

/// Reports nothing; for tests and `--progress none`.
pub(crate) struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event) {}
}

/// Keeps every event, for tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Recorder(pub std::sync::Mutex<Vec<Event>>);

#[cfg(test)]
impl Reporter for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().expect("recorder lock").push(event);
    }
}
