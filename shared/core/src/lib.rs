//! Pithy Jaunt's core: the task state machine, callback signing and verification, validation,
//! the ports the adapters implement, and the use cases. It knows no AWS and no Lambda; the
//! embedded deployment and the Lambda functions are two ways of wiring it.

pub mod agent;
pub mod api;
pub mod artifacts;
pub mod capacity;
pub mod create;
pub mod email;
pub mod engine;
pub mod error;
pub mod fuzz;
pub mod ids;
pub mod kinds;
pub mod machine;
pub mod messages;
pub mod net;
pub mod outbound;
pub mod ports;
pub mod ratelimit;
pub mod redact;
pub mod repos;
pub mod signing;
pub mod stream;
pub mod task;
pub mod time;
pub mod worker;

pub use api::{Principal, TaskApi};
pub use engine::{Engine, Feed, Settings};
pub use error::{AppError, ValidationError};
pub use ids::{Attempt, TaskId, UserId, WebhookId};
pub use task::{Task, TaskStatus};
