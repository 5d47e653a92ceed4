//! The guarded client against wiremock servers on 127.0.0.1: what reaches the server and what
//! comes back (with private networks allowed), what the address guard refuses (by default),
//! redirects, and credentials that never show.

mod exchange;
mod guard;
mod redirects;
mod secrets;
mod support;
