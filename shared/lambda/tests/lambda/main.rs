//! The Lambda functions against the moto emulator, from the sample events of `events/`:
//! each function's handler as its `main` builds it (the function crates are wiring only), then
//! one task from creation to email through all of them, with messages received for real.
//!
//! Run through `scripts/with-moto cargo test -p pj-lambda`, which starts moto and sets
//! `AWS_ENDPOINT_URL`. Every test makes its own table, queues, secret and SES sender.

mod api;
mod artifacts;
mod bench;
mod browsers;
mod callbacks;
mod end_to_end;
mod kinds;
mod log_stream;
mod queues;
mod support;
mod sweeper;
