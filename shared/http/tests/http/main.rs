//! The router served for real on a loopback port, on the embedded store: what only a running
//! server shows (a panicking handler, streams that stay open, signatures as headers).

mod support;

mod kinds;
mod messages;
mod metrics;
mod openapi;
mod panics;
mod signatures;
mod streams;
mod web;
