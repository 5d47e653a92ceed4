//! The assembly of Pithy Jaunt that does not depend on where it runs: `pj serve` and the Lambda
//! functions read their shared configuration here (every default once, errors naming the
//! variable), build the core's settings from it, and settle queue messages the same way.

pub mod config;
pub mod env;
pub mod queue;

pub use config::{CoreConfig, Deployment, RateLimits};
pub use env::{ConfigError, Env};
pub use queue::{Settlement, carry_out, settle};
