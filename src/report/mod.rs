//! What a run produced, and how the core tells the outside world about it:
//!
//! - `results`: the results file and the plan report, the data a command
//!   ends with;
//! - `events`: the [`Reporter`] boundary the core reports progress through;
//! - `background`: a reporter that writes on its own thread;
//! - `progress`: the two views of the events (live bars, plain lines);
//! - `render`: results and plans as text for people.

pub mod background;
pub mod events;
pub mod progress;
pub mod render;
mod results;
#[cfg(test)]
mod tests;

pub use events::{Event, Reporter, Silent, Stage};
pub use results::*;
