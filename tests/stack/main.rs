//! Every test that needs the real stack, in one binary: the Docker engine,
//! the registry and moto's ECR API that `scripts/stack up` starts (the
//! README's test command does). Built only with the `stack` feature, so that
//! `cargo test` alone runs the stack-free tests; without the stack these
//! tests fail with a message saying so, they never skip.

#[path = "../common/mod.rs"]
mod common;

mod buildkit;
mod concurrent;
mod faults;
mod incremental;
mod logins;
mod patch;
mod pool;
mod release;
mod run;
mod shard;
mod terminal;
