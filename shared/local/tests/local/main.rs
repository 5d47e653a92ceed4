//! The embedded adapters against real processes, real files and a fake SMTP server.

mod addresses;
mod adopt;
mod outbox;
mod runner;
mod smtp;
mod support;
