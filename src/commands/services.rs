//! `pipeline services`: what discovery found.

use super::stdout;
use crate::cli::{Globals, Output};
use crate::discover::Service;
use crate::error::Error;
use crate::report::render;

pub(super) fn command(globals: &Globals, services: &[Service]) -> Result<(), Error> {
    match globals.output {
        Output::Json => stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(services).expect("services serialize")
        )),
        Output::Text => stdout(&render::services(services)),
    }
}
