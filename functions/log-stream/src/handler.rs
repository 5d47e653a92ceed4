//! Function URL request → the router's stream route only, its body streamed to the caller and
//! ended before the invocation's deadline (the client resumes with `Last-Event-ID`).

use pj_lambda::{Authenticator, Router, Wiring, functions};

use crate::config::Config;

pub fn router(config: &Config, wiring: &Wiring, auth: Authenticator) -> Router {
    functions::log_stream(wiring, auth, config.poll)
}
