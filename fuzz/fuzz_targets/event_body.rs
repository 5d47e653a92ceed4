//! The runner event body, parsed as POST /webhooks/runner parses it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pj_core::fuzz::event_body(data));
