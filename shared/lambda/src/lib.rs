//! The Lambda wiring of Pithy Jaunt, shared by the eight function crates under `functions/`.
//!
//! A function crate is wiring only: its `config.rs` reads the variables it gets into the typed
//! pieces of [`config`] (failing fast, naming the variable), its `main.rs` builds a [`Wiring`]
//! and its handler once per execution environment with [`functions`], and hands it to the
//! runtime. Everything with logic lives here, where the tests run it against the emulator:
//!
//! - [`config`]: typed configuration from the environment.
//! - [`wiring`]: the AWS adapters, the core's engine and settings, the metrics observer (EMF
//!   after each stored change).
//! - [`functions`]: what each function runs: the `pj_http` router limited to the function's
//!   routes (`api`, `webhook`, `log-ingest`, `log-stream`), the SQS workers (`dispatch`,
//!   `notify`, `tasks`) and the sweep.
//! - [`outbound`]: the built-in kinds' outbound HTTP clients (pj-outbound's address guard) and
//!   the courier of outbound messages.
//! - [`sqs`]: the batch loop with partial batch responses and `ChangeMessageVisibility` for a
//!   message that should come again later.
//! - [`http`]: the layers around the router: the function's routes only, API Gateway's JWT
//!   authorizer claims, the end of a stream before the deadline.
//! - [`jwks`]: the log stream's JWT keys, fetched from the issuer at cold start.
//! - [`runner`]: the runner of `PJ_RUNNER`.
//! - [`browsers`]: the browser kinds' Browserbase sessions and page model.
//!
//! Features keep each function's graph to what it uses: `http` (axum, `lambda_http`, pj-http:
//! the four HTTP functions), `artifacts` (the S3 client of pj-aws: `api` and `webhook`, with
//! `http`), `remote` (pj-remote: `dispatch`) and `outbound` (pj-outbound: `tasks`, `notify` and
//! `sweeper`, the functions that send requests and messages out) and `browsers` (pj-browser,
//! pj-llm and the S3 client: `tasks` only, which runs the browser kinds through Browserbase).
//! - [`logging`]: JSON logs.
//! - [`samples`]: the ids and development secrets of `events/` and `scripts/dev-aws`.

#[cfg(feature = "browsers")]
pub mod browsers;
pub mod config;
pub mod functions;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod jwks;
pub mod logging;
#[cfg(feature = "outbound")]
pub mod outbound;
#[cfg(feature = "http")]
mod routers;
#[cfg(feature = "remote")]
pub mod runner;
#[cfg(feature = "dev-tools")]
pub mod samples;
pub mod sqs;
pub mod wiring;

#[cfg(feature = "http")]
pub use axum::Router;
pub use config::{ConfigError, CoreConfig, Env};
#[cfg(feature = "http")]
pub use pj_http::{Authenticator, PageConfig};
#[cfg(feature = "remote")]
pub use runner::runner_from_config;
pub use sqs::{MessageHandler, QueueWorker};
pub use wiring::{MetricsObserver, Wiring};

/// The error type of the runtime, which handlers return.
pub type Error = lambda_runtime::Error;
