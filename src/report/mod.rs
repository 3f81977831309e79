//! What a run produced, and how the core tells the outside world about it:
//!
//! - `results`: the results file and the plan report, the data a command
//!   ends with;
//! - `events`: the [`Reporter`] boundary the core reports progress through;
//! - `background`: a reporter that writes on its own thread;
//! - `progress`: the two views of the events (live bars, plain lines);
//! - `render`: results and plans as text for people.

pub(crate) mod background;
pub(crate) mod events;
pub(crate) mod progress;
pub(crate) mod render;
mod results;
#[cfg(test)]
mod tests;

pub(crate) use events::{Event, Reporter, Silent, Stage};
pub(crate) use results::*;
