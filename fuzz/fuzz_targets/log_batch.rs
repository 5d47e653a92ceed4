//! The runner log batch, parsed as POST /webhooks/runner/logs parses it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pj_core::fuzz::log_batch(data));
